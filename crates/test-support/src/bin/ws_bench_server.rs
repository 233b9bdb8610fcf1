//! A fast WebSocket echo server for the WebSocket benchmark (`cargo xtask
//! bench ws`): hand-written on a current-thread tokio runtime, meant to be
//! pinned to a core of its own (`taskset -c 1 ws_bench_server`).
//!
//! It binds `127.0.0.1:0` and prints the port it got on the first line of
//! stdout. Every connection starts with an HTTP/1.1 upgrade (any path; the
//! request needs `Sec-WebSocket-Key`, which is answered with
//! `Sec-WebSocket-Accept`, RFC 6455 §4.2.2); then each frame the client
//! sends is unmasked and sent back unmasked with the same FIN bit, opcode
//! and payload:
//!
//! ```text
//! text, binary, continuation   echoed as they are (fragments as fragments)
//! ping                         answered with a pong of the same payload
//! pong                         ignored
//! close                        echoed (same code and reason), then the
//!                              connection is shut down
//! ```
//!
//! No extension is negotiated (no permessage-deflate) and nothing is
//! validated beyond the framing: text is not checked for UTF-8, a frame
//! from the client need not be masked (it is unmasked if it is). A frame
//! over 64 MiB, a request head over 16 KiB or a request without
//! `Sec-WebSocket-Key` ends the connection (the head with a 400), so what
//! a connection holds is bounded by one frame.
//!
//! The frames that arrived together are answered together: small ones are
//! copied into one write buffer, a large one is written straight from the
//! read buffer after its header (one vectored write).
//!
//! With `--stdin-eof-exits` the server exits when its stdin reaches the end,
//! so that a parent holding a pipe to it never leaves it behind.
//!
//! Built only with the `ws-bench-server` feature:
//! `cargo build --release -p courier-test-support --features ws-bench-server
//! --bin ws_bench_server`.

use std::io::{self, IoSlice, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The largest frame payload echoed; a larger one ends the connection.
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// The largest upgrade request head.
const MAX_HEAD: usize = 16 * 1024;
/// Room the read buffer starts with: a 64 KiB frame and its header fit.
const READ_ROOM: usize = 128 * 1024;
/// A read buffer grown past this (for a large frame) is given back once
/// it is empty.
const READ_KEEP: usize = 1024 * 1024;
/// Payloads up to this size are copied into the write buffer; larger ones
/// are written from the read buffer.
const COPY_MAX: usize = 4 * 1024;
/// The GUID of RFC 6455 §1.3, appended to the key for the accept value.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frame opcodes (RFC 6455 §5.2).
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of `Sec-WebSocket-Key` in a request head (CRLFCRLF included).
fn websocket_key(head: &[u8]) -> Option<&[u8]> {
    let mut lines = head.split(|&b| b == b'\n');
    let request = lines.next()?;
    if !request.starts_with(b"GET ") {
        return None;
    }
    lines.find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        (name.eq_ignore_ascii_case(b"sec-websocket-key") && !value.is_empty()).then_some(value)
    })
}

/// Reads the upgrade request into `buf` and answers it; on success `buf`
/// holds what the client sent after the head (frames already, maybe).
async fn handshake(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let end = loop {
        let searched = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD {
            return Err(invalid("request head over 16 KiB"));
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(i) = find(&buf[searched..], b"\r\n\r\n") {
            break searched + i + 4;
        }
    };
    let Some(key) = websocket_key(&buf[..end]) else {
        stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Err(invalid("not a WebSocket upgrade request"));
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    );
    stream.write_all(response.as_bytes()).await?;
    buf.drain(..end);
    Ok(())
}

/// A frame header (RFC 6455 §5.2) at the front of a buffer.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// The first byte: FIN, RSV1-3 and the opcode.
    first: u8,
    /// The masking key, if the frame is masked.
    mask: Option<[u8; 4]>,
    /// Bytes of the header.
    len: usize,
    /// Bytes of the payload.
    payload: usize,
}

impl Header {
    fn opcode(&self) -> u8 {
        self.first & 0x0F
    }
}

/// The header at the front of `buf`; `None` while incomplete, an error for
/// a payload over [`MAX_FRAME`].
fn parse_header(buf: &[u8]) -> io::Result<Option<Header>> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let masked = second & 0x80 != 0;
    let (extra, payload) = match second & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let len = 2 + extra + if masked { 4 } else { 0 };
    if buf.len() < len {
        return Ok(None);
    }
    let payload = match payload {
        Some(n) => n,
        None if extra == 2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        None => {
            let mut be = [0; 8];
            be.copy_from_slice(&buf[2..10]);
            u64::from_be_bytes(be)
        }
    };
    let payload = usize::try_from(payload)
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or_else(|| invalid("frame over 64 MiB"))?;
    let mask = masked.then(|| {
        let at = 2 + extra;
        [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
    });
    Ok(Some(Header {
        first,
        mask,
        len,
        payload,
    }))
}

/// XORs `payload` with `key` repeated (RFC 6455 §5.3), eight bytes at a
/// time.
fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Appends an unmasked server frame header to `out`.
fn put_header(out: &mut Vec<u8>, first: u8, payload: usize) {
    out.push(first);
    if let Ok(n) = u8::try_from(payload)
        && n < 126
    {
        out.push(n);
    } else if let Ok(n) = u16::try_from(payload) {
        out.push(126);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(payload as u64).to_be_bytes());
    }
}

/// Writes all of `head` then all of `body`, vectored.
async fn write_all_vectored(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut done = 0;
    let total = head.len() + body.len();
    while done < total {
        let n = if done < head.len() {
            stream
                .write_vectored(&[IoSlice::new(&head[done..]), IoSlice::new(body)])
                .await?
        } else {
            stream.write(&body[done - head.len()..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

/// Echoes frames until the client closes (or breaks the framing).
async fn echo(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut out = Vec::with_capacity(2 * COPY_MAX);
    loop {
        // Answer every complete frame in `buf`.
        let mut pos = 0;
        let mut need = 2;
        while let Some(head) = parse_header(&buf[pos..])? {
            let end = pos + head.len + head.payload;
            if buf.len() < end {
                need = end - pos;
                break;
            }
            let payload = &mut buf[pos + head.len..end];
            if let Some(key) = head.mask {
                unmask(payload, key);
            }
            match head.opcode() {
                PONG => {}
                CLOSE => {
                    put_header(&mut out, head.first, head.payload);
                    out.extend_from_slice(payload);
                    stream.write_all(&out).await?;
                    return stream.shutdown().await;
                }
                opcode => {
                    // Data frames as they are; a ping is answered by a pong.
                    let first = if opcode == PING {
                        (head.first & 0xF0) | PONG
                    } else {
                        head.first
                    };
                    put_header(&mut out, first, head.payload);
                    if head.payload <= COPY_MAX {
                        out.extend_from_slice(payload);
                    } else {
                        write_all_vectored(stream, &out, payload).await?;
                        out.clear();
                    }
                }
            }
            pos = end;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        buf.drain(..pos);
        if buf.is_empty() && buf.capacity() > READ_KEEP {
            *buf = Vec::with_capacity(READ_ROOM);
        }
        // Room for the rest of a frame begun, and for reading ahead.
        let room = need.max(READ_ROOM / 2);
        if buf.capacity() - buf.len() < room {
            buf.reserve(room);
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(());
        }
    }
}

/// One connection: the upgrade, then the echo.
async fn serve_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(READ_ROOM);
    handshake(&mut stream, &mut buf).await?;
    echo(&mut stream, &mut buf).await
}

async fn serve(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a little, keep serving.
                eprintln!("ws_bench_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // Errors are clients going away or breaking the framing;
            // nothing to report.
            let _ = serve_connection(stream).await;
        });
    }
}

fn main() -> io::Result<()> {
    let mut stdin_eof_exits = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--stdin-eof-exits" => stdin_eof_exits = true,
            other => {
                eprintln!(
                    "usage: ws_bench_server [--stdin-eof-exits] (unknown argument `{other}`)"
                );
                std::process::exit(2);
            }
        }
    }
    if stdin_eof_exits {
        std::thread::spawn(|| {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            std::process::exit(0);
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        let mut out = io::stdout().lock();
        writeln!(out, "{port}")?;
        out.flush()?;
        drop(out);
        serve(listener).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn headers_of_every_length_form() {
        assert!(parse_header(&[0x82]).unwrap().is_none());
        let h = parse_header(&[0x82, 0x85, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!((h.len, h.payload, h.mask), (6, 5, Some([1, 2, 3, 4])));
        let h = parse_header(&[0x82, 126, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.len, h.payload, h.mask), (4, 256, None));
        let mut long = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9];
        let h = parse_header(&long).unwrap().unwrap();
        assert_eq!((h.len, h.payload), (14, 65536));
        long[5] = 0x10; // 2^36 bytes: refused.
        assert!(parse_header(&long).is_err());
        assert!(parse_header(&[0x82, 0xFF, 0, 0]).unwrap().is_none());
    }

    #[test]
    fn unmask_matches_the_bytewise_xor() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40u8 {
            let data: Vec<u8> = (0..len).collect();
            let mut fast = data.clone();
            unmask(&mut fast, key);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn headers_are_written_in_the_shortest_form() {
        for (len, want) in [
            (5, vec![0x82, 5]),
            (126, vec![0x82, 126, 0, 126]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut out = Vec::new();
            put_header(&mut out, 0x82, len);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn the_key_is_found_case_insensitively() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nsec-websocket-KEY:  abc== \r\n\r\n";
        assert_eq!(websocket_key(head), Some(&b"abc=="[..]));
        assert_eq!(websocket_key(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        assert_eq!(
            websocket_key(b"POST / HTTP/1.1\r\nSec-WebSocket-Key: a\r\n\r\n"),
            None
        );
    }
}
