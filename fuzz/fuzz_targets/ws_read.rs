//! A client-role `WebSocket` reading arbitrary bytes from the server.
//!
//! Input: byte 0 holds flags: bit 0 negotiates permessage-deflate, bit 1
//! picks `ws_tight_limits` over the defaults, bit 2 makes this side send
//! its close frame before reading, bit 3 sets `server_no_context_takeover`
//! and bits 4-6 give `server_max_window_bits` (8 + n). Byte 1 sizes the
//! pieces (see `Feed`); the rest is what the server sends before it closes
//! the connection.
//!
//! The driver is what `courier-client`'s adapter does: it reads until the
//! connection asks for more, appends the next piece, and calls `eof` when
//! the input runs out. Every message keeps its promises (text is UTF-8,
//! sizes within the limits, close codes valid); everything this side sends
//! is a masked pong or close frame, at most one close and nothing after
//! it; an error queues the close frame for its code and sticks. The run in
//! pieces must agree with the one-shot run on the messages, the error, the
//! bytes sent and the end.

#![no_main]

use courier_fuzz::{Feed, ws_tight_limits};
use courier_ws::bytes::BytesMut;
use courier_ws::deflate::DeflateParams;
use courier_ws::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
use courier_ws::mask::apply_mask;
use courier_ws::{CloseCode, Error, Limits, Message, WebSocket};
use libfuzzer_sys::fuzz_target;

/// The masking-key seed: both runs must send the same bytes.
const SEED: u64 = 0x00c0_ffee;

/// How a connection is set up.
#[derive(Debug, Clone, Copy)]
struct Setup {
    limits: Limits,
    deflate: Option<DeflateParams>,
    close_first: bool,
}

/// What a run saw.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<Error>,
    sent: Vec<u8>,
    eof: Option<Result<(), Error>>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, pieces], server)) = data.split_first_chunk::<2>() else {
        return;
    };
    let deflate = (flags & 1 != 0).then(|| DeflateParams {
        server_no_context_takeover: flags & 8 != 0,
        server_max_window_bits: 8 + ((flags >> 4) & 7),
        ..DeflateParams::default()
    });
    let setup = Setup {
        limits: if flags & 2 != 0 {
            ws_tight_limits()
        } else {
            Limits::default()
        },
        deflate,
        close_first: flags & 4 != 0,
    };
    let one_shot = run(&setup, Feed::whole(server));
    let piecewise = run(&setup, Feed::new(server, pieces));
    assert_eq!(one_shot, piecewise, "one-shot and piecewise runs differ");
});

/// Runs one connection against the bytes `feed` delivers.
fn run(setup: &Setup, mut feed: Feed<'_>) -> Outcome {
    let mut ws = WebSocket::with_mask_seed(setup.limits, setup.deflate, SEED);
    let mut input = BytesMut::new();
    let mut sent = Vec::new();
    if setup.close_first {
        ws.close(Some((CloseCode::NORMAL, "bye")), &mut sent)
            .expect("a first close is allowed");
    }
    let mut messages = Vec::new();
    let mut error = None;
    let mut eof = None;
    let mut delivered = 0;
    let mut ended = false;
    // Every pass returns a message (which used at least a 2-byte header),
    // takes the next piece, or ends.
    for _ in 0..feed.max_passes() {
        let close_sent = ws.close_sent();
        let before = sent.len();
        match ws.read(&mut input, &mut sent) {
            Ok(Some(message)) => {
                check_message(setup, &message);
                check_replies(&sent[before..], close_sent, &message);
                messages.push(message);
            }
            Ok(None) => {
                assert_eq!(sent.len(), before, "bytes sent without a message");
                if feed.more() {
                    input.extend_from_slice(&feed.received()[delivered..]);
                    delivered = feed.received().len();
                } else {
                    let end = ws.eof(&input);
                    assert_eq!(end.is_ok(), ws.close_sent() && ws.close_received());
                    eof = Some(end);
                    ended = true;
                    break;
                }
            }
            Err(e) => {
                check_error(&e, &sent[before..], close_sent);
                let sent_len = sent.len();
                assert_eq!(ws.read(&mut input, &mut sent).as_ref(), Err(&e));
                assert_eq!(sent.len(), sent_len, "a failed connection sends nothing");
                assert!(ws.is_closed());
                error = Some(e);
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "no end within {} passes", feed.max_passes());
    check_sent(&sent);
    Outcome {
        messages,
        error,
        sent,
        eof,
    }
}

/// The promises of a message returned by `read`.
fn check_message(setup: &Setup, message: &Message) {
    let max = setup.limits.max_message_size;
    match message {
        Message::Text(text) => {
            assert!(std::str::from_utf8(text.as_bytes()).is_ok());
            assert!(text.len() <= max);
        }
        Message::Binary(data) => assert!(data.len() <= max),
        Message::Ping(data) | Message::Pong(data) => {
            assert!(data.len() <= MAX_CONTROL_PAYLOAD)
        }
        Message::Close(Some(frame)) => {
            assert!(frame.code.is_valid_on_wire(), "{frame:?}");
            assert!(frame.reason.len() <= MAX_CONTROL_PAYLOAD - 2);
        }
        Message::Close(None) => {}
    }
}

/// What `read` sent along with `message`: a pong echoing a ping, a close
/// echoing the server's close, or nothing; never anything after our close.
fn check_replies(sent: &[u8], close_sent: bool, message: &Message) {
    let frames = frames(sent);
    if close_sent {
        assert!(frames.is_empty(), "sent after our close: {frames:?}");
        return;
    }
    match message {
        Message::Ping(data) => assert_eq!(frames, [(OpCode::Pong, data.to_vec())]),
        Message::Close(frame) => {
            let echo = frame
                .as_ref()
                .map_or_else(Vec::new, |f| f.code.0.to_be_bytes().to_vec());
            assert_eq!(frames, [(OpCode::Close, echo)]);
        }
        _ => assert!(frames.is_empty(), "sent for a data message: {frames:?}"),
    }
}

/// An error from `read`: the peer's fault, with a close code, whose close
/// frame was queued unless this side had closed already.
fn check_error(e: &Error, sent: &[u8], close_sent: bool) {
    assert!(
        matches!(
            e,
            Error::Protocol(_) | Error::Capacity(_) | Error::Deflate(_)
        ),
        "{e:?} from server bytes"
    );
    let code = e.close_code().expect("read errors have a close code");
    let frames = frames(sent);
    if close_sent {
        assert!(frames.is_empty(), "sent after our close: {frames:?}");
    } else {
        assert_eq!(frames, [(OpCode::Close, code.0.to_be_bytes().to_vec())]);
    }
}

/// Everything this side sent: pongs and closes, at most one close, and
/// nothing after it.
fn check_sent(sent: &[u8]) {
    let frames = frames(sent);
    let closes = frames.iter().filter(|(op, _)| *op == OpCode::Close).count();
    assert!(closes <= 1, "{closes} close frames");
    if closes == 1 {
        assert_eq!(frames.last().map(|(op, _)| *op), Some(OpCode::Close));
    }
    for (opcode, _) in &frames {
        assert!(
            matches!(opcode, OpCode::Pong | OpCode::Close),
            "sent {opcode:?}"
        );
    }
}

/// Decodes frames this side sent: complete, final, masked, unmasked here.
fn frames(mut sent: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    let mut frames = Vec::new();
    while !sent.is_empty() {
        let (header, len) = FrameHeader::parse(sent)
            .expect("valid frames")
            .expect("whole frames");
        assert!(header.fin && !header.rsv1 && !header.rsv2 && !header.rsv3);
        let key = header.mask.expect("client frames are masked");
        let end = len + usize::try_from(header.payload_len).expect("a control frame");
        let mut payload = sent[len..end].to_vec();
        apply_mask(&mut payload, key, 0);
        frames.push((header.opcode, payload));
        sent = &sent[end..];
    }
    frames
}
