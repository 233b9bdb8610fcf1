//! Criterion benchmarks of courier-proto's hot paths, each beside a floor.
//!
//! Every group pairs a `courier/<input>` benchmark with a floor that does the
//! least work the same job allows, on the same input, in the same run:
//!
//! * `head`: [`HeadParser::parse`] producing an owned [`ResponseHead`] vs
//!   bare `httparse::Response::parse` (`httparse/<size>`), which owns nothing.
//!   `courier+headermap/<size>` adds [`ResponseHead::to_header_map`], what a
//!   client exposing `http::HeaderMap` pays (for information).
//! * `chunked`: a 1 MiB body in 1, 16 and 64 KiB chunks (and 16 KiB chunks
//!   with an extension) through [`BodyDecoder`] vs a loop over
//!   `httparse::parse_chunk_size`, both fed 16 KiB reads.
//! * `decode` (information): a ~365 KiB gzip text body through
//!   [`ContentDecoder`] vs `flate2::read::GzDecoder`, into 16 KiB buffers.
//!
//! Throughput is in input bytes (`head`, `chunked`) or decoded bytes
//! (`decode`), so criterion prints MiB/s; `cargo xtask bench` turns the
//! results into courier/floor ratio tables. Chunk data is handed out as
//! ranges and never read, as a client that does not copy would, so the
//! `chunked` rates measure framing alone and run far above memory bandwidth.
//!
//! Timing is short enough for a whole run to take about two minutes on two
//! cores; `--warm-up-time`, `--measurement-time` and `--sample-size` on the
//! command line override it.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use courier_proto::{
    BodyDecoder, BodyMode, ContentCoding, ContentDecoder, HeadParser, Limits, ResponseHead,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};

/// Size of one simulated socket read, for the body benchmarks.
const READ_SIZE: usize = 16 * 1024;

/// Size of the output buffer content decoding writes into.
const DECODE_BUF: usize = 16 * 1024;

/// Decoded body length of the chunked benchmarks.
const CHUNKED_BODY: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// head

/// A small API response: status line and 3 headers (~100 B).
const HEAD_SMALL: &str = "HTTP/1.1 200 OK\r\n\
Content-Type: application/json\r\n\
Content-Length: 27\r\n\
Date: Tue, 14 Jan 2025 10:32:07 GMT\r\n\
\r\n";

/// A typical page served by nginx behind a CDN: 13 headers (~700 B).
const HEAD_TYPICAL: &str = "HTTP/1.1 200 OK\r\n\
Server: nginx/1.25.3\r\n\
Date: Tue, 14 Jan 2025 10:32:07 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 48213\r\n\
Connection: keep-alive\r\n\
Last-Modified: Mon, 13 Jan 2025 22:04:51 GMT\r\n\
ETag: \"6785900b-bc55\"\r\n\
Cache-Control: public, max-age=3600, stale-while-revalidate=60, stale-if-error=86400\r\n\
Vary: Accept-Encoding, Origin\r\n\
Strict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\n\
Via: 1.1 0b2c1e6d2f7a3e5c9d8b4a1f6e3c2d7b.cloudfront.net (CloudFront), 1.1 varnish (Varnish/7.4)\r\n\
X-Amz-Cf-Id: 5Yq0gXJd9Zk1nB3vR7tLw2sP8mH4cE6aF0uI9oK1jN3xV5zQ7yT2rW8eA6sD4fG0hJ2kL==\r\n\
Link: </assets/main.6f1c2b.css>; rel=preload; as=style, </assets/app.9e3d7a.js>; rel=preload; as=script\r\n\
\r\n";

/// A large application response: 43 headers with session cookies, a long
/// Content-Security-Policy and tracing headers (~4 KiB).
fn head_large() -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\n\
Date: Tue, 14 Jan 2025 10:32:07 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Transfer-Encoding: chunked\r\n\
Connection: keep-alive\r\n\
Server: cloudflare\r\n\
Cache-Control: private, no-cache, no-store, must-revalidate, max-age=0\r\n\
Pragma: no-cache\r\n\
Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
Vary: Accept-Encoding, Cookie, X-Requested-With\r\n\
Content-Encoding: gzip\r\n",
    );
    for (name, value) in [
        ("session_id", "c5f1d2a8e4b94f0e9a7d3c6b1e8f2a4d"),
        (
            "csrftoken",
            "Zq3N8vX1pL6tR9wY2bK5mF0hJ7cD4sG8aE1uI3oP6nV9xB2zQ5yT8rW1",
        ),
        (
            "__cf_bm",
            "kP9sD2fG5hJ8lQ1wE4rT7yU0iO3pA6sD9fG2hJ5kL8zX1cV4bN7mQ0wE3rT6y-1736850727",
        ),
        ("_ga", "GA1.2.1234567890.1736850727"),
        ("_gid", "GA1.2.987654321.1736850727"),
        ("locale", "en-GB"),
        (
            "refresh",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNzM2ODUwNzI3fQ.Xq9vR2",
        ),
    ] {
        head.push_str(&format!(
            "Set-Cookie: {name}={value}; Path=/; Domain=.example.com; \
             Expires=Wed, 14 Jan 2026 10:32:07 GMT; Secure; HttpOnly; SameSite=Lax\r\n"
        ));
    }
    head.push_str(
        "Content-Security-Policy: default-src 'self'; \
script-src 'self' 'nonce-r4nd0mN0nc3V4lu3' 'strict-dynamic' https://www.googletagmanager.com \
https://www.google-analytics.com https://cdn.jsdelivr.net https://js.stripe.com; \
style-src 'self' 'unsafe-inline' https://fonts.googleapis.com https://cdn.jsdelivr.net; \
img-src 'self' data: blob: https://*.example-cdn.com https://www.google-analytics.com \
https://stats.g.doubleclick.net https://q.stripe.com; \
font-src 'self' https://fonts.gstatic.com data:; \
connect-src 'self' https://api.example.com wss://realtime.example.com \
https://www.google-analytics.com https://region1.google-analytics.com https://api.stripe.com; \
frame-src https://js.stripe.com https://hooks.stripe.com https://www.youtube-nocookie.com; \
frame-ancestors 'none'; base-uri 'self'; form-action 'self' https://checkout.example.com; \
object-src 'none'; worker-src 'self' blob:; manifest-src 'self'; \
media-src 'self' https://media.example-cdn.com; upgrade-insecure-requests; \
report-uri https://csp-report.example.com/r/d/csp/enforce; report-to csp-endpoint\r\n\
Report-To: {\"group\":\"csp-endpoint\",\"max_age\":10886400,\"endpoints\":\
[{\"url\":\"https://csp-report.example.com/r/d/csp/enforce\"}],\"include_subdomains\":true}\r\n\
NEL: {\"success_fraction\":0.01,\"report_to\":\"csp-endpoint\",\"max_age\":604800}\r\n\
Strict-Transport-Security: max-age=63072000; includeSubDomains; preload\r\n\
X-Content-Type-Options: nosniff\r\n\
X-Frame-Options: DENY\r\n\
X-XSS-Protection: 0\r\n\
Referrer-Policy: strict-origin-when-cross-origin\r\n\
Permissions-Policy: accelerometer=(), camera=(), geolocation=(self \"https://maps.example.com\"), \
gyroscope=(), magnetometer=(), microphone=(), payment=(self \"https://js.stripe.com\"), usb=()\r\n\
Cross-Origin-Opener-Policy: same-origin-allow-popups\r\n\
Cross-Origin-Resource-Policy: same-site\r\n\
X-Request-Id: 7f3c9a2e-4b1d-4e8f-9c6a-2d5b8e1f3a7c\r\n\
X-Correlation-Id: 01HHZ5V6Q8X2K9M4N7P3R5T8W1\r\n\
traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
Server-Timing: cdn-cache;desc=MISS, edge;dur=12, origin;dur=187, db;dur=53.2, app;dur=97.4\r\n\
X-Runtime: 0.187342\r\n\
Access-Control-Allow-Origin: https://app.example.com\r\n\
Access-Control-Allow-Credentials: true\r\n\
Access-Control-Expose-Headers: X-Request-Id, X-Correlation-Id, Server-Timing, X-RateLimit-Limit, \
X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Content-Disposition, Link\r\n\
X-RateLimit-Limit: 5000\r\n\
X-RateLimit-Remaining: 4987\r\n\
Alt-Svc: h3=\":443\"; ma=86400\r\n\
Link: </static/app.7f3c9a2e.css>; rel=preload; as=style, </static/app.4b1d4e8f.js>; rel=preload; as=script\r\n\
CF-Cache-Status: DYNAMIC\r\n\
CF-RAY: 9012ab34cd56ef78-FRA\r\n\
Accept-Ranges: none\r\n\
\r\n",
    );
    head.into_bytes()
}

/// Parses `input` as a response head with httparse alone: the floor.
fn httparse_head(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(input) {
        Ok(httparse::Status::Complete(used)) => {
            black_box(&response);
            used
        }
        other => panic!("httparse: {other:?}"),
    }
}

/// Parses `input` with courier's [`HeadParser`] into an owned head.
fn courier_head(input: &[u8]) -> (ResponseHead, usize) {
    match HeadParser::new(Limits::default()).parse(input) {
        Ok(Some(done)) => done,
        other => panic!("courier: {other:?}"),
    }
}

/// Group `head`: courier, the httparse floor and courier plus a `HeaderMap`.
fn bench_head(c: &mut Criterion) {
    let large = head_large();
    let inputs: [(&str, &[u8]); 3] = [
        ("small", HEAD_SMALL.as_bytes()),
        ("typical", HEAD_TYPICAL.as_bytes()),
        ("large", &large),
    ];
    let mut group = c.benchmark_group("head");
    for (name, input) in inputs {
        // Both parsers must agree on the whole input being one head.
        let (head, used) = courier_head(input);
        assert_eq!(used, input.len(), "courier head {name}");
        assert_eq!(httparse_head(input), input.len(), "httparse head {name}");
        let map = head.to_header_map().expect("header map");
        eprintln!(
            "head/{name}: {} bytes, {} headers ({} names)",
            input.len(),
            head.fields().len(),
            map.keys_len()
        );

        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("courier", name), input, |b, input| {
            b.iter(|| black_box(courier_head(black_box(input))));
        });
        group.bench_with_input(BenchmarkId::new("httparse", name), input, |b, input| {
            b.iter(|| black_box(httparse_head(black_box(input))));
        });
        group.bench_with_input(
            BenchmarkId::new("courier+headermap", name),
            input,
            |b, input| {
                b.iter(|| {
                    let (head, _) = courier_head(black_box(input));
                    black_box(head.to_header_map().expect("header map"))
                });
            },
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// chunked

/// A chunked encoding of a [`CHUNKED_BODY`]-byte body in `chunk`-byte chunks,
/// each size line followed by `ext` (e.g. `;name=value`), then a last chunk
/// and no trailers.
fn chunked_body(chunk: usize, ext: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNKED_BODY + CHUNKED_BODY / chunk * 100 + 16);
    let mut left = CHUNKED_BODY;
    let mut n = 0u8;
    while left > 0 {
        let size = chunk.min(left);
        write!(out, "{size:x}{ext}\r\n").expect("write to Vec");
        let letters = b"abcdefghijklmnopqrstuvwxyz";
        out.extend((0..size).map(|i| letters[(i + usize::from(n)) % letters.len()]));
        out.extend_from_slice(b"\r\n");
        left -= size;
        n = n.wrapping_add(1);
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Decodes `wire` with courier's [`BodyDecoder`] the way a client does: the
/// input is a window over `wire` that grows by [`READ_SIZE`] whenever the
/// decoder has used up what it was given. Returns the body length.
fn courier_chunked(wire: &[u8]) -> usize {
    let mut decoder = BodyDecoder::new(BodyMode::Chunked, Limits::default());
    let mut pos = 0;
    let mut avail = READ_SIZE.min(wire.len());
    let mut body = 0;
    loop {
        let step = decoder.decode(&wire[pos..avail]).expect("courier chunked");
        let data = &wire[pos..][step.data];
        black_box(data);
        body += data.len();
        pos += step.consumed;
        if step.done {
            return body;
        }
        if step.consumed == 0 || pos == avail {
            assert!(avail < wire.len(), "courier chunked: body incomplete");
            avail = (avail + READ_SIZE).min(wire.len());
        }
    }
}

/// The floor: the same read loop, finding chunk sizes with
/// `httparse::parse_chunk_size` and skipping over data slices.
fn httparse_chunked(wire: &[u8]) -> usize {
    let mut pos = 0;
    let mut avail = READ_SIZE.min(wire.len());
    let mut body = 0;
    // Data bytes left in the current chunk; then whether its CRLF is due.
    let mut remaining = 0usize;
    let mut crlf_due = false;
    let mut last = false;
    loop {
        let window = &wire[pos..avail];
        let progressed = if remaining > 0 {
            let n = remaining.min(window.len());
            black_box(&window[..n]);
            body += n;
            remaining -= n;
            pos += n;
            n > 0
        } else if crlf_due || last {
            if window.len() < 2 {
                false
            } else {
                assert_eq!(&window[..2], b"\r\n", "httparse chunked: missing CRLF");
                pos += 2;
                if last {
                    return body;
                }
                crlf_due = false;
                true
            }
        } else {
            match httparse::parse_chunk_size(window).expect("httparse chunked") {
                httparse::Status::Complete((used, size)) => {
                    pos += used;
                    remaining = usize::try_from(size).expect("chunk size");
                    crlf_due = size > 0;
                    last = size == 0;
                    true
                }
                httparse::Status::Partial => false,
            }
        };
        if !progressed || pos == avail {
            assert!(avail < wire.len(), "httparse chunked: body incomplete");
            avail = (avail + READ_SIZE).min(wire.len());
        }
    }
}

/// Group `chunked`: courier's chunked decoding vs the httparse floor.
fn bench_chunked(c: &mut Criterion) {
    // An AWS SigV4 streaming upload signs every chunk in an extension.
    let signature = format!(
        ";chunk-signature={}",
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    );
    let inputs = [
        ("1KiB", chunked_body(1024, "")),
        ("16KiB", chunked_body(16 * 1024, "")),
        ("64KiB", chunked_body(64 * 1024, "")),
        ("16KiB+ext", chunked_body(16 * 1024, &signature)),
    ];
    let mut group = c.benchmark_group("chunked");
    for (name, wire) in &inputs {
        let courier = courier_chunked(wire);
        let floor = httparse_chunked(wire);
        assert_eq!(courier, CHUNKED_BODY, "courier chunked {name}");
        assert_eq!(floor, CHUNKED_BODY, "httparse chunked {name}");

        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_with_input(BenchmarkId::new("courier", name), wire, |b, wire| {
            b.iter(|| black_box(courier_chunked(black_box(wire))));
        });
        group.bench_with_input(BenchmarkId::new("httparse", name), wire, |b, wire| {
            b.iter(|| black_box(httparse_chunked(black_box(wire))));
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// decode

/// About 365 KiB of deterministic English-like text (a fixed-seed LCG
/// picking words), which gzip compresses about as well as real prose.
fn text_body() -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "the",
        "of",
        "and",
        "client",
        "request",
        "response",
        "header",
        "body",
        "server",
        "connection",
        "pool",
        "keep-alive",
        "chunked",
        "a",
        "to",
        "in",
        "is",
        "that",
        "for",
        "with",
        "as",
        "on",
        "timeout",
        "redirect",
        "cookie",
        "session",
        "stream",
        "bytes",
        "decoder",
        "proxy",
        "tls",
        "socket",
    ];
    let mut out = Vec::with_capacity(366 * 1024);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut line = 0;
    while out.len() < 365 * 1024 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let word = WORDS[usize::try_from(state >> 59).unwrap_or(0)];
        out.extend_from_slice(word.as_bytes());
        line += word.len() + 1;
        if line > 72 {
            out.push(b'\n');
            line = 0;
        } else if state >> 56 & 0x7 == 0 {
            out.extend_from_slice(b". ");
            line += 1;
        } else {
            out.push(b' ');
        }
    }
    out
}

/// Decodes the gzip body `compressed` with courier's [`ContentDecoder`] into
/// a [`DECODE_BUF`] buffer, as a client reading the body would. Returns the
/// decoded length.
fn courier_gunzip(compressed: &[u8], out: &mut [u8]) -> usize {
    let mut decoder = ContentDecoder::new(ContentCoding::Gzip, &Limits::default());
    let mut input = compressed;
    let mut total = 0;
    loop {
        let (used, produced) = decoder.decode(input, out).expect("courier gzip");
        black_box(&out[..produced]);
        input = &input[used..];
        total += produced;
        if produced < out.len() && input.is_empty() {
            break;
        }
    }
    decoder.finish().expect("courier gzip finish");
    total
}

/// The floor: `flate2::read::GzDecoder` reading into the same buffer.
fn flate2_gunzip(compressed: &[u8], out: &mut [u8]) -> usize {
    let mut decoder = flate2::read::GzDecoder::new(compressed);
    let mut total = 0;
    loop {
        let n = decoder.read(out).expect("flate2 gzip");
        if n == 0 {
            return total;
        }
        black_box(&out[..n]);
        total += n;
    }
}

/// Group `decode`: courier's gzip decoding vs flate2's `GzDecoder`.
fn bench_decode(c: &mut Criterion) {
    let text = text_body();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&text).expect("gzip");
    let compressed = encoder.finish().expect("gzip");
    let mut out = vec![0u8; DECODE_BUF];
    assert_eq!(courier_gunzip(&compressed, &mut out), text.len());
    assert_eq!(flate2_gunzip(&compressed, &mut out), text.len());
    eprintln!(
        "decode/gzip: {} bytes of text, {} compressed",
        text.len(),
        compressed.len()
    );

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(BenchmarkId::new("courier", "gzip"), |b| {
        b.iter(|| black_box(courier_gunzip(black_box(&compressed), &mut out)));
    });
    group.bench_function(BenchmarkId::new("flate2", "gzip"), |b| {
        b.iter(|| black_box(flate2_gunzip(black_box(&compressed), &mut out)));
    });
    group.finish();
}

/// Short runs: 19 benchmarks at about 5 s each (warm-up, measurement and
/// analysis) keep a whole run near two minutes on two cores.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// Runs every group with [`config`], overridden by the command line.
///
/// Written out rather than with `criterion_group!`, whose function has no
/// doc comment for the workspace's `missing_docs` lint.
fn benches() {
    let mut c = config().configure_from_args();
    bench_head(&mut c);
    bench_chunked(&mut c);
    bench_decode(&mut c);
}

criterion_main!(benches);
