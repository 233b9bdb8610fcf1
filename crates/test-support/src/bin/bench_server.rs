//! A fast HTTP/1.1 server for the client benchmark (`cargo xtask bench
//! client`): hyper on a current-thread tokio runtime, meant to be pinned to
//! a core of its own (`taskset -c 1 bench_server`).
//!
//! It binds `127.0.0.1:0` and prints the port it got on the first line of
//! stdout. Keep-alive is on and nothing is limited: no header read
//! timeout, no cap on requests per connection.
//!
//! ```text
//! GET  /small                13-byte body with Content-Length
//! GET  /download/len/N       N bytes with Content-Length
//! GET  /download/chunked/N   N bytes, chunked (no Content-Length)
//! POST /upload               reads and discards the body, answers its length
//! GET  /conns                how many connections are open now (this one too)
//! ```
//!
//! Downloads are streamed from one static 64 KiB buffer in 64 KiB frames:
//! nothing of size N is allocated per request.
//!
//! With `--stdin-eof-exits` the server exits when its stdin reaches the end,
//! so that a parent holding a pipe to it never leaves it behind.
//!
//! Built only with the `bench-server` feature:
//! `cargo build --release -p courier-test-support --features bench-server
//! --bin bench_server`.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Size of the static buffer downloads are cut from, and of their frames.
const FRAME: usize = 64 * 1024;

/// What every download body is made of.
static FILL: [u8; FRAME] = [b'x'; FRAME];

/// The body of `/small`: 13 bytes.
const SMALL: &[u8] = b"Hello, World!";

/// A response body: a whole buffer, or `remaining` bytes of [`FILL`].
enum Reply {
    /// One frame, then the end.
    Full(Option<Bytes>),
    /// Frames of up to [`FRAME`] bytes; `exact` declares the length (so
    /// hyper writes Content-Length), else hyper uses chunked framing.
    Fill { remaining: u64, exact: bool },
}

impl Reply {
    fn full(bytes: impl Into<Bytes>) -> Reply {
        Reply::Full(Some(bytes.into()))
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            Reply::Full(bytes) => bytes.take(),
            Reply::Fill { remaining, .. } => {
                if *remaining == 0 {
                    None
                } else {
                    let n = usize::try_from(*remaining).map_or(FRAME, |r| r.min(FRAME));
                    *remaining -= n as u64;
                    Some(Bytes::from_static(&FILL[..n]))
                }
            }
        };
        Poll::Ready(frame.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Full(bytes) => bytes.is_none(),
            Reply::Fill { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Reply::Fill {
                remaining,
                exact: true,
            } => SizeHint::with_exact(*remaining),
            Reply::Fill { exact: false, .. } => SizeHint::default(),
        }
    }
}

/// Answers one request.
async fn handle(
    req: Request<Incoming>,
    open: Arc<AtomicUsize>,
) -> Result<Response<Reply>, hyper::Error> {
    let path = req.uri().path();
    let reply = match (req.method(), path) {
        (&Method::GET, "/small") => Reply::full(Bytes::from_static(SMALL)),
        (&Method::GET, "/conns") => Reply::full(open.load(Ordering::Relaxed).to_string()),
        (&Method::POST, "/upload") => {
            let mut body = req.into_body();
            let mut len = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    len += data.len() as u64;
                }
            }
            Reply::full(len.to_string())
        }
        (&Method::GET, _) => {
            let (rest, exact) = if let Some(n) = path.strip_prefix("/download/len/") {
                (n, true)
            } else if let Some(n) = path.strip_prefix("/download/chunked/") {
                (n, false)
            } else {
                return Ok(not_found());
            };
            match rest.parse::<u64>() {
                Ok(remaining) => Reply::Fill { remaining, exact },
                Err(_) => return Ok(not_found()),
            }
        }
        _ => return Ok(not_found()),
    };
    Ok(Response::new(reply))
}

fn not_found() -> Response<Reply> {
    let mut resp = Response::new(Reply::full(Bytes::from_static(b"not found\n")));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// Decrements the open-connection count when a connection task ends.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(listener: TcpListener) {
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let builder = Arc::new(builder);
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a little, keep serving.
                eprintln!("bench_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(open.clone());
        let builder = builder.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let service = service_fn(move |req| handle(req, open.clone()));
            // Errors are clients going away mid-request; nothing to report.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> std::io::Result<()> {
    let mut stdin_eof_exits = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--stdin-eof-exits" => stdin_eof_exits = true,
            other => {
                eprintln!("usage: bench_server [--stdin-eof-exits] (unknown argument `{other}`)");
                std::process::exit(2);
            }
        }
    }
    if stdin_eof_exits {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port}")?;
        out.flush()?;
        drop(out);
        serve(listener).await;
        Ok(())
    })
}
