//! Tests of [`WebSocket`]: byte vectors from the server, each fed whole,
//! split in two at every offset and byte by byte, with identical results.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::*;
use crate::deflate::DeflateError;
use crate::mask::apply_mask;

/// The masking-key seed of every test connection.
const SEED: u64 = 0x5eed_cafe;

/// How a test connection is set up.
#[derive(Debug, Clone, Copy, Default)]
struct Setup {
    limits: Limits,
    deflate: Option<DeflateParams>,
}

impl Setup {
    fn limits(limits: Limits) -> Setup {
        Setup {
            limits,
            deflate: None,
        }
    }

    fn deflate() -> Setup {
        Setup {
            limits: Limits::default(),
            deflate: Some(DeflateParams::default()),
        }
    }

    fn ws(&self) -> WebSocket {
        WebSocket::with_mask_seed(self.limits, self.deflate, SEED)
    }
}

/// A frame this side sent, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    payload: Vec<u8>,
}

impl Sent {
    fn new(opcode: OpCode, payload: &[u8]) -> Sent {
        Sent {
            fin: true,
            rsv1: false,
            opcode,
            payload: payload.to_vec(),
        }
    }

    fn pong(payload: &[u8]) -> Sent {
        Sent::new(OpCode::Pong, payload)
    }

    fn close(code: Option<u16>) -> Sent {
        Sent::new(
            OpCode::Close,
            &code.map_or_else(Vec::new, |c| c.to_be_bytes().to_vec()),
        )
    }
}

/// Decodes the frames this side sent: each must be masked, with its own
/// key.
fn sent_frames(mut out: &[u8]) -> Vec<Sent> {
    let mut frames = Vec::new();
    let mut keys = Vec::new();
    while !out.is_empty() {
        let (header, len) = FrameHeader::parse(out)
            .expect("this side sends valid frames")
            .expect("and whole ones");
        let key = header.mask.expect("client frames are masked");
        assert!(!header.rsv2 && !header.rsv3);
        keys.push(key);
        let end = len + usize::try_from(header.payload_len).unwrap();
        let mut payload = out[len..end].to_vec();
        apply_mask(&mut payload, key, 0);
        frames.push(Sent {
            fin: header.fin,
            rsv1: header.rsv1,
            opcode: header.opcode,
            payload,
        });
        out = &out[end..];
    }
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a fresh key per frame: {keys:x?}");
    frames
}

/// What a connection did with the server's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    messages: Vec<Message>,
    /// The error that failed the connection, if one did.
    error: Option<Error>,
    /// Every byte this side sent.
    out: Vec<u8>,
    /// `eof`'s verdict once the input ran out, if no error came first.
    eof: Option<Result<(), Error>>,
    close_sent: bool,
    close_received: bool,
}

impl Outcome {
    fn sent(&self) -> Vec<Sent> {
        sent_frames(&self.out)
    }
}

/// Feeds `pieces` in order, as a socket would deliver them: after each,
/// reads until the connection asks for more. Ends with `eof` unless an
/// error came first.
fn play(setup: &Setup, pieces: &[&[u8]]) -> Outcome {
    let mut ws = setup.ws();
    let mut input = BytesMut::new();
    let mut out = Vec::new();
    let mut messages = Vec::new();
    let mut error = None;
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    'pieces: for piece in pieces {
        input.extend_from_slice(piece);
        // Every message takes at least a 2-byte header.
        for _ in 0..=total {
            match ws.read(&mut input, &mut out) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => continue 'pieces,
                Err(e) => {
                    error = Some(e);
                    break 'pieces;
                }
            }
        }
        panic!("no end of reading within {total} messages");
    }
    let eof = match &error {
        Some(e) => {
            // Failed for good: the same error again, and nothing more sent.
            let sent = out.len();
            assert_eq!(ws.read(&mut input, &mut out).as_ref(), Err(e));
            assert_eq!(ws.eof(&input).as_ref(), Err(e));
            assert_eq!(out.len(), sent);
            assert!(ws.is_closed());
            assert_eq!(ws.error(), Some(e));
            assert_eq!(
                ws.send_text("x", &mut out),
                Err(UsageError::SendAfterClose.into())
            );
            None
        }
        None => {
            let eof = ws.eof(&input);
            assert!(ws.is_closed());
            Some(eof)
        }
    };
    Outcome {
        messages,
        error,
        out,
        eof,
        close_sent: ws.close_sent(),
        close_received: ws.close_received(),
    }
}

/// Plays `input` whole, split in two at every offset (a sample of them for
/// long inputs) and byte by byte: all must agree.
fn run_with(setup: &Setup, input: &[u8]) -> Outcome {
    let whole = play(setup, &[input]);
    let stride = if input.len() <= 4096 { 1 } else { 997 };
    for split in (0..=input.len()).step_by(stride).chain([input.len()]) {
        let (a, b) = input.split_at(split);
        assert_eq!(play(setup, &[a, b]), whole, "split at {split}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(play(setup, &bytes), whole, "byte by byte");
    for size in [3, 7, 130] {
        let pieces: Vec<&[u8]> = input.chunks(size).collect();
        assert_eq!(play(setup, &pieces), whole, "{size}-byte pieces");
    }
    whole
}

fn run(input: &[u8]) -> Outcome {
    run_with(&Setup::default(), input)
}

/// A server frame (unmasked) with first byte `b0` and `payload`, its
/// length in the shortest form.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let len = payload.len();
    if len <= 125 {
        out.push(u8::try_from(len).unwrap());
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&u64::try_from(len).unwrap().to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn text(s: &str) -> Message {
    Message::Text(Text::from(s.to_owned()))
}

fn binary(b: &[u8]) -> Message {
    Message::Binary(Bytes::copy_from_slice(b))
}

/// Checks that `input` fails the connection with `error`, and that the
/// last frame sent is the close frame with `code`.
fn fails(input: &[u8], error: impl Into<Error>, code: u16) -> Outcome {
    fails_with(&Setup::default(), input, error, code)
}

fn fails_with(setup: &Setup, input: &[u8], error: impl Into<Error>, code: u16) -> Outcome {
    let outcome = run_with(setup, input);
    let error = error.into();
    assert_eq!(outcome.error.as_ref(), Some(&error), "{outcome:?}");
    assert_eq!(error.close_code(), Some(CloseCode(code)));
    let sent = outcome.sent();
    assert_eq!(sent.last(), Some(&Sent::close(Some(code))), "{sent:?}");
    assert!(outcome.close_sent);
    outcome
}

// ---------------------------------------------------------------------------
// Data and control frames

#[test]
fn every_opcode() {
    let input = [
        frame(0x81, b"hello"),
        frame(0x82, b"\x00\xff"),
        frame(0x89, b"ping"),
        frame(0x8a, b"pong"),
        frame(0x81, b""),
        frame(0x82, b""),
        frame(0x89, b""),
        frame(0x88, b"\x03\xe8bye"),
    ]
    .concat();
    let outcome = run(&input);
    assert_eq!(
        outcome.messages,
        [
            text("hello"),
            binary(b"\x00\xff"),
            Message::Ping(Bytes::from_static(b"ping")),
            Message::Pong(Bytes::from_static(b"pong")),
            text(""),
            binary(b""),
            Message::Ping(Bytes::new()),
            Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))),
        ]
    );
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.sent(),
        [
            Sent::pong(b"ping"),
            Sent::pong(b""),
            Sent::close(Some(1000))
        ]
    );
    assert_eq!(outcome.eof, Some(Ok(())));
}

#[test]
fn lengths_at_each_boundary() {
    for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let input = frame(0x82, &payload);
        let header = match len {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
        assert_eq!(input.len(), header + len);
        let outcome = run(&input);
        assert_eq!(outcome.messages, [binary(&payload)], "{len}");
        assert_eq!(outcome.error, None);
        // The connection was never closed.
        assert_eq!(
            outcome.eof,
            Some(Err(ProtocolError::AbnormalClosure.into()))
        );
    }
}

#[test]
fn non_minimal_lengths_fail_with_1002() {
    for input in [
        &b"\x82\x7e\x00\x05hello"[..],
        b"\x82\x7e\x00\x7d",
        b"\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x05hello",
        b"\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff",
        b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",
    ] {
        let outcome = fails(input, ProtocolError::NonMinimalLength, 1002);
        assert!(outcome.messages.is_empty());
    }
}

#[test]
fn masked_server_frame_fails() {
    let input = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    fails(input, ProtocolError::MaskedFrame, 1002);
}

#[test]
fn reserved_bits_fail_without_an_extension() {
    for b0 in [0xc1, 0xa1, 0x91, 0xf2, 0xc9] {
        fails(&frame(b0, b"x"), ProtocolError::ReservedBits, 1002);
    }
    // RSV2 and RSV3 even with permessage-deflate.
    for b0 in [0xa1, 0x91, 0xe1] {
        fails_with(
            &Setup::deflate(),
            &frame(b0, b"x"),
            ProtocolError::ReservedBits,
            1002,
        );
    }
}

#[test]
fn unknown_opcodes_fail() {
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        let input = [frame(0x81, b"ok"), frame(0x80 | op, b"?")].concat();
        let outcome = fails(&input, ProtocolError::UnknownOpcode(op), 1002);
        assert_eq!(outcome.messages, [text("ok")]);
    }
}

#[test]
fn control_frame_rules() {
    // 125 bytes is fine.
    let big = [b'p'; 125];
    let outcome = run(&frame(0x89, &big));
    assert_eq!(
        outcome.messages,
        [Message::Ping(Bytes::copy_from_slice(&big))]
    );
    assert_eq!(outcome.sent(), [Sent::pong(&big)]);
    // 126 is not, in any opcode, and is refused from the first two bytes.
    for b0 in [0x88, 0x89, 0x8a] {
        fails(
            &frame(b0, &[b'p'; 126]),
            ProtocolError::ControlTooLong,
            1002,
        );
        fails(&[b0, 0x7e], ProtocolError::ControlTooLong, 1002);
    }
    // Control frames are never fragmented.
    for b0 in [0x08, 0x09, 0x0a] {
        fails(&frame(b0, b""), ProtocolError::FragmentedControl, 1002);
    }
}

#[test]
fn large_single_frame_messages_share_the_input_small_ones_are_copied() {
    let big = vec![7u8; SHARE_MIN];
    let mut ws = Setup::default().ws();
    let mut input = BytesMut::from(
        &[frame(0x82, &big), frame(0x81, b"text"), frame(0x82, b"bin")].concat()[..],
    );
    let start = input.as_ptr() as usize;
    let end = start + input.len();
    let mut out = Vec::new();
    let Some(Message::Binary(data)) = ws.read(&mut input, &mut out).unwrap() else {
        panic!("a binary message");
    };
    // 16 KiB needs the 16-bit length: a 4-byte header.
    assert_eq!(data.as_ptr() as usize, start + 4, "shares the input buffer");
    assert_eq!(data, big);
    for want in [
        Message::Text(Text::from("text")),
        Message::Binary(Bytes::from_static(b"bin")),
    ] {
        let got = ws.read(&mut input, &mut out).unwrap().unwrap();
        let ptr = match &got {
            Message::Text(text) => text.as_bytes().as_ptr() as usize,
            Message::Binary(data) => data.as_ptr() as usize,
            other => panic!("{other:?}"),
        };
        assert!(
            !(start..end).contains(&ptr),
            "a small message has its own buffer"
        );
        assert_eq!(got, want);
    }
    assert!(input.is_empty());
    assert_eq!(ws.read(&mut input, &mut out), Ok(None));
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------
// Fragmentation

#[test]
fn fragmented_messages_with_interleaved_control_frames() {
    let input = [
        frame(0x01, b"Hel"),
        frame(0x89, b"p1"),
        frame(0x00, b""),
        frame(0x8a, b"p2"),
        frame(0x00, b"lo, "),
        frame(0x80, "w\u{f6}rld".as_bytes()),
        frame(0x02, b"\x01"),
        frame(0x80, b"\x02"),
    ]
    .concat();
    let outcome = run(&input);
    assert_eq!(
        outcome.messages,
        [
            Message::Ping(Bytes::from_static(b"p1")),
            Message::Pong(Bytes::from_static(b"p2")),
            text("Hello, w\u{f6}rld"),
            binary(b"\x01\x02"),
        ]
    );
    assert_eq!(outcome.sent(), [Sent::pong(b"p1")]);
}

#[test]
fn characters_may_be_split_across_fragments() {
    let euro = "\u{20ac}".as_bytes();
    let input = [
        frame(0x01, &euro[..1]),
        frame(0x00, &euro[1..2]),
        frame(0x00, b""),
        frame(0x80, &euro[2..]),
    ]
    .concat();
    assert_eq!(run(&input).messages, [text("\u{20ac}")]);
}

#[test]
fn continuation_without_a_message_fails() {
    fails(
        &frame(0x80, b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    fails(
        &frame(0x00, b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    // After a complete message, too.
    let input = [frame(0x81, b"a"), frame(0x80, b"b")].concat();
    let outcome = fails(&input, ProtocolError::UnexpectedContinuation, 1002);
    assert_eq!(outcome.messages, [text("a")]);
}

#[test]
fn new_message_inside_a_fragmented_one_fails() {
    for b0 in [0x81, 0x82, 0x01, 0x02] {
        let input = [frame(0x01, b"a"), frame(b0, b"b")].concat();
        let outcome = fails(&input, ProtocolError::ExpectedContinuation, 1002);
        assert!(outcome.messages.is_empty());
    }
}

// ---------------------------------------------------------------------------
// UTF-8

#[test]
fn invalid_utf8_fails_with_1007() {
    fails(&frame(0x81, b"\xff"), ProtocolError::InvalidUtf8, 1007);
    fails(&frame(0x81, b"ok\xc3"), ProtocolError::InvalidUtf8, 1007);
    // Autobahn 6.3.1: a surrogate in the middle.
    let payload =
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";
    fails(&frame(0x81, payload), ProtocolError::InvalidUtf8, 1007);
    // Binary messages are not text.
    assert_eq!(run(&frame(0x82, b"\xff")).messages, [binary(b"\xff")]);
}

#[test]
fn invalid_utf8_fails_at_the_first_bad_fragment() {
    // Only the first fragment has arrived: it fails already.
    let outcome = fails(&frame(0x01, b"ok\xff"), ProtocolError::InvalidUtf8, 1007);
    assert_eq!(outcome.sent(), [Sent::close(Some(1007))]);
    // A bad prefix fails at once, before the rest of its character.
    fails(&frame(0x01, b"\xf4\x90"), ProtocolError::InvalidUtf8, 1007);
    let input = [frame(0x01, b"\xf4"), frame(0x00, b"\x90")].concat();
    fails(&input, ProtocolError::InvalidUtf8, 1007);
    // A message ending inside a character fails on its last frame.
    let input = [frame(0x01, b"ok"), frame(0x80, b"\xe2\x82")].concat();
    fails(&input, ProtocolError::InvalidUtf8, 1007);
}

// ---------------------------------------------------------------------------
// Limits

#[test]
fn oversized_frame_is_refused_from_its_header() {
    let setup = Setup::limits(Limits::default().max_frame_size(100));
    let error = CapacityError::FrameTooLong {
        size: 101,
        max: 100,
    };
    // The header alone: no payload has arrived.
    fails_with(&setup, b"\x82\x65", error, 1009);
    fails_with(&setup, &frame(0x82, &[0; 101]), error, 1009);
    // A 64-bit length is refused as well, without waiting for 2^62 bytes.
    let huge = b"\x82\x7f\x40\x00\x00\x00\x00\x00\x00\x00";
    let error = CapacityError::FrameTooLong {
        size: 1 << 62,
        max: 100,
    };
    fails_with(&setup, huge, error, 1009);
    // 100 bytes are fine; control frames are not counted.
    let setup = Setup::limits(Limits::default().max_frame_size(10).max_message_size(100));
    let input = [frame(0x82, &[1; 10]), frame(0x89, &[2; 125])].concat();
    let outcome = run_with(&setup, &input);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.messages.len(), 2);
}

#[test]
fn message_limit_counts_every_fragment() {
    let setup = Setup::limits(Limits::default().max_message_size(100));
    let fine = [
        frame(0x02, &[1; 40]),
        frame(0x00, &[2; 40]),
        frame(0x80, &[3; 20]),
    ]
    .concat();
    let outcome = run_with(&setup, &fine);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.messages.len(), 1);
    // The third fragment's header takes it past the limit.
    let input = [
        frame(0x02, &[1; 40]),
        frame(0x00, &[2; 40]),
        frame(0x80, &[3; 21]),
    ]
    .concat();
    let header_end = 42 + 42 + 2;
    let error = CapacityError::MessageTooLong { max: 100 };
    fails_with(&setup, &input[..header_end], error, 1009);
    fails_with(&setup, &input, error, 1009);
    // A single frame too.
    fails_with(&setup, b"\x81\x65", error, 1009);
}

#[test]
fn message_buffer_stays_within_twice_the_message() {
    let max = 1 << 20;
    let setup = Setup::limits(Limits::default().max_message_size(max));
    let mut ws = setup.ws();
    let mut out = Vec::new();
    let mut input = BytesMut::new();
    let mut len = 0;
    for (i, size) in [1usize, 7, 1000, 3, 4096, 65536, 1, 100_000, 5]
        .into_iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let b0 = if i == 0 { 0x02 } else { 0x00 };
        input.extend_from_slice(&frame(b0, &vec![7; size]));
        assert_eq!(ws.read(&mut input, &mut out), Ok(None));
        len += size;
        let capacity = ws.partial.as_ref().unwrap().data.capacity();
        assert!(capacity >= len);
        assert!(capacity <= max, "{capacity} > limit");
        assert!(capacity <= 2 * len, "{capacity} bytes for {len}");
    }
    let mut grown = Vec::with_capacity(10);
    grown.extend_from_slice(&[0; 10]);
    grow(&mut grown, 1, 15);
    assert_eq!(grown.capacity(), 15, "doubling stops at the limit");
}

// ---------------------------------------------------------------------------
// Closing

#[test]
fn server_closes_first_and_we_echo() {
    let outcome = run(&frame(0x88, b"\x03\xe9going away"));
    assert_eq!(
        outcome.messages,
        [Message::Close(Some(CloseFrame::new(
            CloseCode::GOING_AWAY,
            "going away"
        )))]
    );
    assert_eq!(outcome.sent(), [Sent::close(Some(1001))]);
    assert!(outcome.close_sent && outcome.close_received);
    assert_eq!(outcome.eof, Some(Ok(())));

    // No status code: an empty close frame in reply.
    let outcome = run(&frame(0x88, b""));
    assert_eq!(outcome.messages, [Message::Close(None)]);
    assert_eq!(outcome.sent(), [Sent::close(None)]);
    assert_eq!(outcome.eof, Some(Ok(())));

    // A close in the middle of a fragmented message drops it.
    let input = [frame(0x01, b"half"), frame(0x88, b"\x0f\xa0")].concat();
    let outcome = run(&input);
    assert_eq!(
        outcome.messages,
        [Message::Close(Some(CloseFrame::new(CloseCode(4000), "")))]
    );
    assert_eq!(outcome.sent(), [Sent::close(Some(4000))]);
}

#[test]
fn we_close_first_and_the_reply_completes() {
    let mut ws = Setup::default().ws();
    let mut out = Vec::new();
    ws.close(Some((CloseCode::NORMAL, "bye")), &mut out)
        .unwrap();
    let mut expected = Sent::close(Some(1000));
    expected.payload.extend_from_slice(b"bye");
    assert_eq!(sent_frames(&out), [expected]);
    assert!(ws.close_sent() && !ws.close_received() && !ws.is_closed());
    out.clear();

    // Messages still arrive; pings are no longer answered.
    let mut input = BytesMut::from(&[frame(0x81, b"late"), frame(0x89, b"p")].concat()[..]);
    assert_eq!(ws.read(&mut input, &mut out), Ok(Some(text("late"))));
    assert_eq!(
        ws.read(&mut input, &mut out),
        Ok(Some(Message::Ping(Bytes::from_static(b"p"))))
    );
    assert!(out.is_empty(), "nothing after our close frame");

    input.extend_from_slice(&frame(0x88, b"\x03\xe8"));
    assert_eq!(
        ws.read(&mut input, &mut out),
        Ok(Some(Message::Close(Some(CloseFrame::new(
            CloseCode::NORMAL,
            ""
        )))))
    );
    assert!(out.is_empty(), "the reply needs no reply");
    assert!(ws.is_closed() && ws.close_received());
    assert_eq!(
        ws.peer_close(),
        Some(&CloseFrame::new(CloseCode::NORMAL, ""))
    );
    assert_eq!(ws.read(&mut input, &mut out), Ok(None));
    assert_eq!(ws.eof(&input), Ok(()));
    assert_eq!(
        ws.send_ping(b"", &mut out),
        Err(UsageError::SendAfterClose.into())
    );
}

#[test]
fn errors_after_our_close_send_no_second_close() {
    let mut ws = Setup::default().ws();
    let mut out = Vec::new();
    ws.close(None, &mut out).unwrap();
    assert_eq!(sent_frames(&out), [Sent::close(None)]);
    let sent = out.len();
    let mut input = BytesMut::from(&frame(0x81, b"\xff")[..]);
    assert_eq!(
        ws.read(&mut input, &mut out),
        Err(ProtocolError::InvalidUtf8.into())
    );
    assert_eq!(out.len(), sent);
    assert!(ws.is_closed());
}

#[test]
fn invalid_close_frames() {
    fails(
        &frame(0x88, b"\x03"),
        ProtocolError::InvalidClosePayload,
        1002,
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let payload = code.to_be_bytes();
        fails(
            &frame(0x88, &payload),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
    fails(
        &frame(0x88, b"\x03\xe8\xff"),
        ProtocolError::InvalidCloseReason,
        1007,
    );
    // Valid codes are echoed, 1012-1014 included.
    for code in [1000u16, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
        let outcome = run(&frame(0x88, &code.to_be_bytes()));
        assert_eq!(outcome.sent(), [Sent::close(Some(code))]);
    }
}

#[test]
fn frame_after_close_fails_without_a_second_close() {
    let input = [frame(0x88, b"\x03\xe8"), frame(0x81, b"more")].concat();
    let outcome = run(&input);
    assert_eq!(outcome.error, Some(ProtocolError::FrameAfterClose.into()));
    assert_eq!(
        outcome.messages,
        [Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "")))]
    );
    assert_eq!(outcome.sent(), [Sent::close(Some(1000))]);
    // A single stray byte is enough.
    let input = [frame(0x88, b""), vec![0x81]].concat();
    assert_eq!(
        run(&input).error,
        Some(ProtocolError::FrameAfterClose.into())
    );
}

#[test]
fn eof_before_the_close_handshake_is_abnormal() {
    let abnormal = Some(Err(Error::from(ProtocolError::AbnormalClosure)));
    // Nothing at all, after a message, in a header, in a payload, in a
    // fragmented message.
    for input in [
        &b""[..],
        b"\x81\x02ok",
        b"\x81",
        b"\x82\x7e\x01",
        b"\x81\x05hel",
        b"\x01\x02ok",
    ] {
        let outcome = run(input);
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.eof, abnormal, "{input:x?}");
        assert!(
            outcome.out.is_empty(),
            "nothing can be sent on a closed socket"
        );
    }
    assert_eq!(
        Error::from(ProtocolError::AbnormalClosure).close_code(),
        Some(CloseCode::ABNORMAL)
    );
    // After our close, without the server's reply.
    let mut ws = Setup::default().ws();
    let mut out = Vec::new();
    ws.close(Some((CloseCode::NORMAL, "")), &mut out).unwrap();
    assert_eq!(ws.eof(b""), Err(ProtocolError::AbnormalClosure.into()));
    assert!(ws.is_closed());
}

// ---------------------------------------------------------------------------
// Sending

/// The masking keys a connection with [`SEED`] draws, in order.
fn keys() -> impl Iterator<Item = [u8; 4]> {
    let mut rng = StdRng::seed_from_u64(SEED);
    std::iter::repeat_with(move || {
        let mut key = [0u8; 4];
        rng.fill_bytes(&mut key);
        key
    })
}

fn masked(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut payload = payload.to_vec();
    apply_mask(&mut payload, key, 0);
    payload
}

#[test]
fn exact_bytes_of_each_frame_sent() {
    let mut ws = Setup::default().ws();
    let mut keys = keys();
    let mut out = Vec::new();

    ws.send_text("Hello", &mut out).unwrap();
    let key = keys.next().unwrap();
    assert_eq!(
        out,
        [&[0x81, 0x85][..], &key, &masked(b"Hello", key)].concat()
    );

    let long = vec![0xab; 300];
    out.clear();
    ws.send_binary(&long, &mut out).unwrap();
    let key = keys.next().unwrap();
    assert_eq!(
        out,
        [&[0x82, 0xfe, 0x01, 0x2c][..], &key, &masked(&long, key)].concat()
    );

    let huge = vec![0x5a; 70_000];
    out.clear();
    ws.send_binary(&huge, &mut out).unwrap();
    let key = keys.next().unwrap();
    let header = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70];
    assert_eq!(out, [&header[..], &key, &masked(&huge, key)].concat());

    out.clear();
    ws.send_ping(b"", &mut out).unwrap();
    let key = keys.next().unwrap();
    assert_eq!(out, [&[0x89, 0x80][..], &key].concat());

    out.clear();
    ws.send_pong(b"hb", &mut out).unwrap();
    let key = keys.next().unwrap();
    assert_eq!(out, [&[0x8a, 0x82][..], &key, &masked(b"hb", key)].concat());

    out.clear();
    ws.send_fragment(DataKind::Binary, b"ab", false, &mut out)
        .unwrap();
    ws.send_fragment(DataKind::Binary, b"c", true, &mut out)
        .unwrap();
    let (k1, k2) = (keys.next().unwrap(), keys.next().unwrap());
    let expected = [
        &[0x02, 0x82][..],
        &k1,
        &masked(b"ab", k1),
        &[0x80, 0x81],
        &k2,
        &masked(b"c", k2),
    ];
    assert_eq!(out, expected.concat());

    out.clear();
    ws.close(Some((CloseCode::GOING_AWAY, "")), &mut out)
        .unwrap();
    let key = keys.next().unwrap();
    assert_eq!(
        out,
        [&[0x88, 0x82][..], &key, &masked(b"\x03\xe9", key)].concat()
    );
}

#[test]
fn frames_sent_decode_to_their_payload() {
    let mut ws = Setup::default().ws();
    let mut out = Vec::new();
    let payload: Vec<u8> = (0..=255).collect();
    ws.send_binary(&payload, &mut out).unwrap();
    ws.send_text("\u{1f600}", &mut out).unwrap();
    ws.send_fragment(DataKind::Text, b"\xf0\x9f", false, &mut out)
        .unwrap();
    ws.send_ping(b"between", &mut out).unwrap();
    ws.send_fragment(DataKind::Text, b"\x98\x80", true, &mut out)
        .unwrap();
    let frag = |fin, opcode, payload: &[u8]| Sent {
        fin,
        ..Sent::new(opcode, payload)
    };
    assert_eq!(
        sent_frames(&out),
        [
            Sent::new(OpCode::Binary, &payload),
            Sent::new(OpCode::Text, "\u{1f600}".as_bytes()),
            frag(false, OpCode::Text, b"\xf0\x9f"),
            Sent::new(OpCode::Ping, b"between"),
            frag(true, OpCode::Continuation, b"\x98\x80"),
        ]
    );
}

#[test]
fn usage_errors_send_nothing() {
    let mut ws = Setup::default().ws();
    let mut out = Vec::new();
    let usage = |e: UsageError| Err(Error::from(e));

    assert_eq!(
        ws.send_ping(&[0; 126], &mut out),
        usage(UsageError::ControlTooLong)
    );
    assert_eq!(
        ws.send_pong(&[0; 126], &mut out),
        usage(UsageError::ControlTooLong)
    );
    assert_eq!(
        ws.close(Some((CloseCode::NORMAL, &"r".repeat(124))), &mut out),
        usage(UsageError::ControlTooLong)
    );
    for code in [1005, 1006, 1015, 999, 2000] {
        assert_eq!(
            ws.close(Some((CloseCode(code), "")), &mut out),
            usage(UsageError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        ws.send_fragment(DataKind::Text, b"\xff", false, &mut out),
        usage(UsageError::InvalidUtf8)
    );
    assert_eq!(
        ws.send_fragment(DataKind::Text, b"\xe2\x82", true, &mut out),
        usage(UsageError::InvalidUtf8)
    );
    assert!(out.is_empty());

    // A fragmented message in progress blocks other data messages.
    ws.send_fragment(DataKind::Text, b"\xe2", false, &mut out)
        .unwrap();
    let sent = out.len();
    assert_eq!(
        ws.send_text("x", &mut out),
        usage(UsageError::FragmentOrder)
    );
    assert_eq!(
        ws.send_binary(b"x", &mut out),
        usage(UsageError::FragmentOrder)
    );
    assert_eq!(
        ws.send_fragment(DataKind::Binary, b"x", true, &mut out),
        usage(UsageError::FragmentOrder)
    );
    // A bad continuation leaves the message as it was.
    assert_eq!(
        ws.send_fragment(DataKind::Text, b"\x82\xff", true, &mut out),
        usage(UsageError::InvalidUtf8)
    );
    assert_eq!(out.len(), sent);
    ws.send_fragment(DataKind::Text, b"\x82", false, &mut out)
        .unwrap();
    ws.send_fragment(DataKind::Text, b"\xac", true, &mut out)
        .unwrap();
    ws.send_text("next", &mut out).unwrap();

    ws.close(None, &mut out).unwrap();
    let sent = out.len();
    for result in [
        ws.send_text("x", &mut out),
        ws.send_binary(b"x", &mut out),
        ws.send_ping(b"", &mut out),
        ws.send_pong(b"", &mut out),
        ws.send_fragment(DataKind::Binary, b"", true, &mut out),
        ws.close(None, &mut out),
    ] {
        assert_eq!(result, usage(UsageError::SendAfterClose));
    }
    assert_eq!(out.len(), sent);
}

#[test]
fn fragments_may_continue_after_the_server_closes_only_if_we_did_not_reply() {
    // The server's close is answered at once, so the fragmented message
    // this side was sending can no longer be finished.
    let mut ws = Setup::default().ws();
    let mut out = Vec::new();
    ws.send_fragment(DataKind::Binary, b"a", false, &mut out)
        .unwrap();
    let mut input = BytesMut::from(&frame(0x88, b"")[..]);
    assert_eq!(
        ws.read(&mut input, &mut out),
        Ok(Some(Message::Close(None)))
    );
    assert_eq!(
        ws.send_fragment(DataKind::Binary, b"b", true, &mut out),
        Err(UsageError::SendAfterClose.into())
    );
}

// ---------------------------------------------------------------------------
// permessage-deflate

/// Raw DEFLATE of one message as a server sends it: sync-flushed, the
/// `00 00 ff ff` tail removed (RFC 7692 §7.2.1), in a fresh context.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 * 1024);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

#[test]
fn compressed_messages_are_inflated() {
    let body = "compressible ".repeat(40);
    let compressed = deflate(body.as_bytes());
    assert!(compressed.len() < body.len() / 4);
    // RFC 7692 §7.2.3.1: "Hello" compressed.
    let rfc = b"\xf2\x48\xcd\xc9\xc9\x07\x00";
    let (a, b) = compressed.split_at(compressed.len() / 2);
    let input = [
        frame(0xc1, &compressed),
        frame(0xc1, rfc),
        frame(0xc2, &deflate(b"\x00\x01\x02")),
        // Fragmented, with a ping between the fragments.
        frame(0x41, a),
        frame(0x89, b""),
        frame(0x80, b),
        // Uncompressed messages may still come.
        frame(0x81, b"plain"),
    ]
    .concat();
    let outcome = run_with(&Setup::deflate(), &input);
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.messages,
        [
            text(&body),
            text("Hello"),
            binary(b"\x00\x01\x02"),
            Message::Ping(Bytes::new()),
            text(&body),
            text("plain"),
        ]
    );
    assert_eq!(outcome.sent(), [Sent::pong(b"")]);
}

#[test]
fn compressed_errors() {
    let setup = Setup::deflate();
    // RSV1 on a continuation or a control frame.
    let input = [frame(0x41, &deflate(b"ab")), frame(0xc0, b"")].concat();
    fails_with(&setup, &input, ProtocolError::CompressedNotFirst, 1002);
    fails_with(
        &setup,
        &frame(0xc9, b""),
        ProtocolError::CompressedNotFirst,
        1002,
    );
    // Inflated text must be UTF-8.
    fails_with(
        &setup,
        &frame(0xc1, &deflate(b"\xff")),
        ProtocolError::InvalidUtf8,
        1007,
    );
    // Corrupt data.
    let outcome = run_with(&setup, &frame(0xc1, b"\xff\xff\xff\xff"));
    assert!(
        matches!(outcome.error, Some(Error::Deflate(DeflateError::Corrupt))),
        "{outcome:?}"
    );
    assert_eq!(outcome.sent(), [Sent::close(Some(1007))]);
    // A small frame inflating past the message limit.
    let setup = Setup {
        limits: Limits::default().max_message_size(1000),
        deflate: Some(DeflateParams::default()),
    };
    let bomb = deflate(&[0; 100_000]);
    assert!(bomb.len() < 1000);
    let error = CapacityError::MessageTooLong { max: 1000 };
    fails_with(&setup, &frame(0xc2, &bomb), error, 1009);
}

#[test]
fn messages_sent_are_compressed() {
    let mut ws = Setup::deflate().ws();
    let mut out = Vec::new();
    let body = "squeeze me ".repeat(50);
    ws.send_text(&body, &mut out).unwrap();
    ws.send_fragment(DataKind::Binary, b"first half, ", false, &mut out)
        .unwrap();
    ws.send_ping(b"hi", &mut out).unwrap();
    ws.send_fragment(DataKind::Binary, b"second half", true, &mut out)
        .unwrap();
    ws.close(None, &mut out).unwrap();
    let sent = sent_frames(&out);
    assert_eq!(sent.len(), 5);
    // RSV1 on the first frame of each data message only.
    let flags: Vec<(OpCode, bool, bool)> = sent.iter().map(|s| (s.opcode, s.fin, s.rsv1)).collect();
    assert_eq!(
        flags,
        [
            (OpCode::Text, true, true),
            (OpCode::Binary, false, true),
            (OpCode::Ping, true, false),
            (OpCode::Continuation, true, false),
            (OpCode::Close, true, false),
        ]
    );
    assert!(sent[0].payload.len() < body.len() / 4);
    assert_eq!(inflate(&sent[0].payload), body.as_bytes());
    assert_eq!(sent[2].payload, b"hi");
    assert_eq!(sent[4].payload, b"");

    // What we sent, played back as a server's frames, reads as sent (the
    // default parameters keep the context, so one connection reads all).
    let mut echo = Vec::new();
    for s in &sent[..4] {
        let b0 = (u8::from(s.fin) << 7) | (u8::from(s.rsv1) << 6) | s.opcode.as_u8();
        echo.extend_from_slice(&frame(b0, &s.payload));
    }
    let outcome = run_with(&Setup::deflate(), &echo);
    assert_eq!(
        outcome.messages,
        [
            text(&body),
            Message::Ping(Bytes::from_static(b"hi")),
            binary(b"first half, second half"),
        ]
    );
}

// ---------------------------------------------------------------------------
// Text

#[test]
fn text_api() {
    let owned = Text::from(String::from("h\u{e9}llo"));
    let borrowed = Text::from("h\u{e9}llo");
    assert_eq!(owned, borrowed);
    assert_eq!(owned, "h\u{e9}llo");
    assert_eq!("h\u{e9}llo", owned);
    assert_eq!(owned, String::from("h\u{e9}llo"));
    assert_eq!(owned.as_str(), "h\u{e9}llo");
    assert_eq!(owned.len(), 6);
    assert!(!owned.is_empty() && Text::default().is_empty());
    assert_eq!(owned.to_uppercase(), "H\u{c9}LLO");
    assert_eq!(owned.to_string(), "h\u{e9}llo");
    assert_eq!(format!("{owned:?}"), "\"h\u{e9}llo\"");
    assert_eq!(
        owned.clone().into_bytes(),
        Bytes::from_static("h\u{e9}llo".as_bytes())
    );
    assert_eq!(
        Text::try_from(Bytes::from_static(b"ok")),
        Ok(Text::from("ok"))
    );
    assert!(Text::try_from(Bytes::from_static(b"\xc3")).is_err());
    let s: &str = &owned;
    assert_eq!(s, "h\u{e9}llo");
}

#[test]
fn debug_hides_the_rng() {
    let ws = Setup::deflate().ws();
    let debug = format!("{ws:?}");
    assert!(debug.starts_with("WebSocket {"), "{debug}");
    assert!(!debug.contains("rng"), "{debug}");
}

#[test]
fn without_auto_replies_pings_and_closes_are_left_to_the_caller() {
    let mut ws = Setup::default().ws();
    ws.set_auto_pong(false);
    ws.set_auto_close(false);
    let mut out = Vec::new();
    let mut input = BytesMut::from(&[frame(0x89, b"hb"), frame(0x88, b"\x03\xe9bye")].concat()[..]);
    assert_eq!(
        ws.read(&mut input, &mut out),
        Ok(Some(Message::Ping(Bytes::from_static(b"hb"))))
    );
    assert!(out.is_empty(), "no automatic pong");
    ws.send_pong(b"hb", &mut out).unwrap();
    assert_eq!(
        ws.read(&mut input, &mut out),
        Ok(Some(Message::Close(Some(CloseFrame::new(
            CloseCode::GOING_AWAY,
            "bye"
        )))))
    );
    assert_eq!(sent_frames(&out), [Sent::pong(b"hb")], "no automatic close");
    assert!(ws.close_received() && !ws.close_sent() && !ws.is_closed());
    out.clear();
    // The caller completes the handshake with a code of its choosing.
    ws.close(Some((CloseCode::NORMAL, "")), &mut out).unwrap();
    assert_eq!(sent_frames(&out), [Sent::close(Some(1000))]);
    assert!(ws.is_closed());
    assert_eq!(ws.eof(&input), Ok(()));
}
