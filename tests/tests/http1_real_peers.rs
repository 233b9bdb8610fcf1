//! HTTP/1.1 end to end: `courier-proto` over real sockets against real servers.
//!
//! Each test drives the codec with [`courier_tests::blocking`] against one of
//! the peers `cargo xtask test` starts (nginx, httpbin, the aiohttp server;
//! see `../shared/peers/PEERS.md`) and asserts what a user of the client
//! relies on: the bytes of a file arrive exactly, compressed bodies decode,
//! connections are reused only when both sides allow it, requests reach the
//! server as they were built.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use courier_proto::http::{Method, StatusCode, Version};
use courier_proto::{
    AutoHeader, BodyMode, CloseReason, Compression, ContentCoding, DEFAULT_USER_AGENT, Request,
};
use courier_test_support::peers;
use courier_tests::blocking::{self, Conn, Error, Options, Outcome, Transport};
use serde_json::Value;

/// How long a server gets to close a connection it said it would close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

fn request(method: Method, url: &str) -> Request {
    Request::new(method, url.parse().expect("test URL"))
}

fn get(url: &str) -> Request {
    request(Method::GET, url)
}

/// A request over a Unix socket: the Host is whatever the client sends.
fn unix_get(path: &str) -> Request {
    get(&format!("http://localhost{path}"))
}

fn run<S: Transport>(conn: &mut Conn<S>, request: Request) -> Outcome {
    conn.exchange(request, None)
        .unwrap_or_else(|e| panic!("exchange failed: {e}"))
}

/// Asserts a complete 200 whose connection may carry another request.
#[track_caller]
fn assert_reusable_ok(outcome: &Outcome) {
    assert_eq!(outcome.status, StatusCode::OK, "{outcome:?}");
    assert!(
        !outcome.must_close,
        "connection must stay usable: {outcome:?}"
    );
    assert_eq!(outcome.close_reason, None);
    assert_eq!(outcome.leftover, 0);
}

/// Asserts a complete 200 with `body`, after which the connection closes
/// because the request asked for it: courier marks it unusable, the server
/// answered `Connection: close`, and then really closed it.
#[track_caller]
fn assert_closed_on_request<S: Transport>(outcome: &Outcome, conn: &mut Conn<S>, body: &[u8]) {
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.body, body);
    assert!(outcome.must_close);
    assert_eq!(outcome.close_reason, Some(CloseReason::RequestClose));
    assert_eq!(outcome.header("connection"), Some("close"));
    assert!(
        conn.peer_closed(CLOSE_WAIT).unwrap(),
        "the server closes the connection"
    );
}

/// The body pattern of the aiohttp peer's `/bytes/N` and of request bodies here.
fn pattern(n: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(n).collect()
}

// ---------------------------------------------------------------- nginx

#[test]
fn nginx_get_over_tcp_matches_the_file_and_keeps_the_connection() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let outcome = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&outcome);
    assert_eq!(outcome.body, nginx.file("hello.txt"));
    assert_eq!(outcome.body_mode, BodyMode::Length(12));
    assert_eq!(outcome.header("content-length"), Some("12"));
    assert_eq!(outcome.version, Version::HTTP_11);
    assert_eq!(outcome.reason, "OK");
    // Reusable means reusable: the same connection answers again.
    let again = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&again);
    assert_eq!(again.body, nginx.file("hello.txt"));
}

#[test]
fn nginx_get_over_unix_socket_matches_the_file() {
    let nginx = peers::nginx();
    let mut conn = Conn::unix(&nginx.unix).unwrap();
    for _ in 0..2 {
        let outcome = run(&mut conn, unix_get("/hello.txt"));
        assert_reusable_ok(&outcome);
        assert_eq!(outcome.body, nginx.file("hello.txt"));
        assert_eq!(outcome.body_mode, BodyMode::Length(12));
    }
}

#[test]
fn nginx_gzip_text_arrives_chunked_and_decodes_to_the_file() {
    let nginx = peers::nginx();
    let file = nginx.file("text.txt");
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&nginx.url("/text.txt")).header("Accept-Encoding", "gzip"),
    );
    assert_reusable_ok(&outcome);
    assert_eq!(outcome.header("content-encoding"), Some("gzip"));
    assert_eq!(outcome.header("content-length"), None);
    assert_eq!(outcome.body_mode, BodyMode::Chunked);
    assert_eq!(outcome.content_coding, Some(ContentCoding::Gzip));
    assert!(
        outcome.wire_body_len < file.len() / 4,
        "{} bytes on the wire",
        outcome.wire_body_len
    );
    assert!(outcome.body == file, "decoded body differs from text.txt");

    // Without Accept-Encoding the same file comes as is, with a length.
    let plain = run(
        &mut conn,
        get(&nginx.url("/text.txt")).skip_auto_header(AutoHeader::AcceptEncoding),
    );
    assert_reusable_ok(&plain);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body_mode, BodyMode::Length(file.len() as u64));
    assert!(plain.body == file, "plain body differs from text.txt");
}

#[test]
fn nginx_large_binary_file_arrives_exactly_over_tcp_and_unix() {
    let nginx = peers::nginx();
    let file = nginx.file("large.bin");
    assert_eq!(file.len(), 1 << 20);

    let mut tcp = Conn::tcp(nginx.http).unwrap();
    let outcome = run(&mut tcp, get(&nginx.url("/large.bin")));
    assert_reusable_ok(&outcome);
    assert_eq!(outcome.body_mode, BodyMode::Length(1 << 20));
    assert!(outcome.body == file, "large.bin differs over TCP");

    let mut unix = Conn::unix(&nginx.unix).unwrap();
    let outcome = run(&mut unix, unix_get("/large.bin"));
    assert_reusable_ok(&outcome);
    assert!(
        outcome.body == file,
        "large.bin differs over the Unix socket"
    );
}

#[test]
fn nginx_head_has_no_body_and_keeps_the_connection() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let head = run(&mut conn, request(Method::HEAD, &nginx.url("/hello.txt")));
    assert_reusable_ok(&head);
    assert_eq!(head.body_mode, BodyMode::None);
    assert!(head.body.is_empty());
    // The length describes the GET body that was not sent.
    assert_eq!(head.header("content-length"), Some("12"));
    assert!(conn.buffered().is_empty());

    let after = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&after);
    assert_eq!(after.body, nginx.file("hello.txt"));
}

#[test]
fn nginx_five_requests_on_one_kept_alive_connection() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    // Lengths, gzip + chunked (html above gzip_min_length), an empty body,
    // a directory index.
    let cases = [
        ("/hello.txt", "hello.txt", BodyMode::Length(12)),
        ("/data.json", "data.json", BodyMode::Length(27)),
        ("/index.html", "index.html", BodyMode::Chunked),
        ("/empty.txt", "empty.txt", BodyMode::Length(0)),
        ("/dir/", "dir/index.html", BodyMode::Length(19)),
    ];
    for (path, file, mode) in cases {
        let outcome = run(&mut conn, get(&nginx.url(path)));
        assert_reusable_ok(&outcome);
        assert_eq!(outcome.body_mode, mode, "{path}");
        assert_eq!(outcome.body, nginx.file(file), "{path}");
    }
    assert!(!conn.is_eof());
}

#[test]
fn nginx_empty_file_and_204_have_no_body() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let empty = run(&mut conn, get(&nginx.url("/empty.txt")));
    assert_reusable_ok(&empty);
    assert_eq!(empty.body_mode, BodyMode::Length(0));
    assert!(empty.body.is_empty());

    let no_content = run(&mut conn, get(&nginx.url("/status/204")));
    assert_eq!(no_content.status, StatusCode::NO_CONTENT);
    assert_eq!(no_content.body_mode, BodyMode::None);
    assert!(no_content.body.is_empty());
    assert!(!no_content.must_close);

    let after = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&after);
}

#[test]
fn nginx_redirect_and_error_statuses_keep_the_connection() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let moved = run(&mut conn, get(&nginx.url("/redirect/301")));
    assert_eq!(moved.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(moved.reason, "Moved Permanently");
    assert_eq!(
        moved.header("location"),
        Some(nginx.url("/hello.txt").as_str())
    );
    assert!(!moved.must_close);
    assert!(
        moved.text().contains("301"),
        "nginx's redirect page: {}",
        moved.text()
    );

    let missing = run(&mut conn, get(&nginx.url("/no-such-file")));
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.must_close);

    let boom = run(&mut conn, get(&nginx.url("/status/500")));
    assert_eq!(boom.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(boom.body, b"boom\n");
    assert!(!boom.must_close);

    let after = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&after);
}

#[test]
fn nginx_sees_the_automatic_request_headers() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let outcome = run(&mut conn, get(&nginx.url("/echo?x=1")));
    assert_reusable_ok(&outcome);
    let text = outcome.text();
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert_eq!(line("method"), "GET");
    assert_eq!(line("uri"), "/echo?x=1");
    assert_eq!(line("host"), nginx.http.to_string());
    assert_eq!(line("user-agent"), DEFAULT_USER_AGENT);
    assert_eq!(line("accept-encoding"), "gzip, deflate");
    assert_eq!(line("content-length"), "");
}

#[test]
fn nginx_http10_request_with_keep_alive_is_kept_alive() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    // HTTP/1.0 keeps a connection only when asked: the request says
    // `Connection: keep-alive`, nginx agrees.
    for _ in 0..2 {
        let outcome = run(
            &mut conn,
            get(&nginx.url("/hello.txt")).version(Version::HTTP_10),
        );
        assert_reusable_ok(&outcome);
        assert_eq!(outcome.header("connection"), Some("keep-alive"));
        assert_eq!(outcome.body, nginx.file("hello.txt"));
    }
}

#[test]
fn nginx_http10_request_without_keep_alive_closes() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&nginx.url("/hello.txt"))
            .version(Version::HTTP_10)
            .keep_alive(false),
    );
    assert_closed_on_request(&outcome, &mut conn, &nginx.file("hello.txt"));
}

#[test]
fn nginx_connection_close_request_must_close() {
    let nginx = peers::nginx();
    for explicit_header in [false, true] {
        let mut conn = Conn::tcp(nginx.http).unwrap();
        let base = get(&nginx.url("/hello.txt"));
        let request = if explicit_header {
            base.header("Connection", "close")
        } else {
            base.keep_alive(false)
        };
        let outcome = run(&mut conn, request);
        assert_closed_on_request(&outcome, &mut conn, &nginx.file("hello.txt"));
    }
}

#[test]
fn nginx_head_of_a_gzip_resource_has_no_body() {
    // nginx answers this HEAD like the GET: gzip, no Content-Length. A HEAD
    // response never has a body, whatever its headers say.
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let head = run(
        &mut conn,
        request(Method::HEAD, &nginx.url("/text.txt")).header("Accept-Encoding", "gzip"),
    );
    assert_reusable_ok(&head);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(head.body_mode, BodyMode::None);
    assert!(head.body.is_empty());
    let after = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_eq!(after.body, nginx.file("hello.txt"));
}

#[test]
fn nginx_conditional_get_304_has_no_body() {
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let first = run(&mut conn, get(&nginx.url("/hello.txt")));
    let etag = first
        .header("etag")
        .expect("nginx sends an ETag")
        .to_owned();
    let cached = run(
        &mut conn,
        get(&nginx.url("/hello.txt")).header("If-None-Match", &etag),
    );
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.body_mode, BodyMode::None);
    assert!(cached.body.is_empty());
    assert!(!cached.must_close);
    let after = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&after);
    assert_eq!(after.body, nginx.file("hello.txt"));
}

#[test]
fn nginx_range_request_gets_exactly_that_range() {
    let nginx = peers::nginx();
    let file = nginx.file("large.bin");
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let part = run(
        &mut conn,
        get(&nginx.url("/large.bin")).header("Range", "bytes=1000-1999"),
    );
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body_mode, BodyMode::Length(1000));
    assert_eq!(
        part.header("content-range"),
        Some("bytes 1000-1999/1048576")
    );
    assert!(part.body == file[1000..2000]);
    assert!(!part.must_close);
}

#[test]
fn nginx_expect_continue_answered_with_a_final_status_must_close() {
    // nginx refuses a POST to a static file (405) without asking for the
    // body: the body was never sent, so the connection cannot be reused
    // (the server might still read it as the next request).
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let outcome = conn
        .exchange(
            request(Method::POST, &nginx.url("/hello.txt"))
                .content_length(5)
                .expect_continue(true),
            Some(b"hello"),
        )
        .unwrap();
    assert_eq!(outcome.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        outcome.informational.is_empty(),
        "{:?}",
        outcome.informational
    );
    assert!(outcome.text().contains("405 Not Allowed"));
    assert!(outcome.must_close);
    assert_eq!(outcome.close_reason, Some(CloseReason::BodyNotSent));
}

#[test]
fn nginx_expect_continue_then_an_early_answer_keeps_the_connection() {
    // For `return 200` nginx sends `100 Continue` and the final response at
    // once; the body still goes out (nginx reads and discards it).
    let nginx = peers::nginx();
    let mut conn = Conn::tcp(nginx.http).unwrap();
    let outcome = conn
        .exchange(
            request(Method::POST, &nginx.url("/echo"))
                .content_length(5)
                .expect_continue(true),
            Some(b"hello"),
        )
        .unwrap();
    assert_eq!(
        outcome.informational,
        vec![(StatusCode::CONTINUE, "Continue".to_owned())]
    );
    assert_reusable_ok(&outcome);
    assert!(
        outcome.text().contains("content-length=5\n"),
        "{}",
        outcome.text()
    );
    let after = run(&mut conn, get(&nginx.url("/hello.txt")));
    assert_reusable_ok(&after);
    assert_eq!(after.body, nginx.file("hello.txt"));
}

#[test]
fn responses_read_a_byte_at_a_time_decode_the_same() {
    // The socket hands the codec every response split at every offset: head,
    // chunk framing and the gzip stream all resume mid-token.
    let nginx = peers::nginx();
    let aiohttp = peers::aiohttp();
    let mut options = Options::default();
    options.read_size = 1;

    let mut conn = Conn::tcp(nginx.http).unwrap();
    conn.set_options(options.clone()).unwrap();
    let gz = run(
        &mut conn,
        get(&nginx.url("/text.txt")).header("Accept-Encoding", "gzip"),
    );
    assert_reusable_ok(&gz);
    assert_eq!(gz.body_mode, BodyMode::Chunked);
    assert!(
        gz.body == nginx.file("text.txt"),
        "gzip text.txt read bytewise differs"
    );
    let index = run(&mut conn, get(&nginx.url("/index.html")));
    assert_reusable_ok(&index);
    assert_eq!(index.body, nginx.file("index.html"));

    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    conn.set_options(options).unwrap();
    let chunked = run(&mut conn, get(&aiohttp.url("/chunked?n=4&size=300")));
    assert_reusable_ok(&chunked);
    assert_eq!(chunked.body.len(), 1200);
    let deflated = run(&mut conn, get(&aiohttp.url("/deflate")));
    assert_reusable_ok(&deflated);
    let json: Value = serde_json::from_slice(&deflated.body).expect("decoded JSON");
    assert_eq!(json["deflated"], true);
}

// ---------------------------------------------------------------- aiohttp server

/// The JSON the aiohttp peer's `/echo` answers.
fn echo_json(outcome: &Outcome) -> Value {
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.text());
    serde_json::from_slice(&outcome.body).expect("/echo answers JSON")
}

fn echo_body(echo: &Value) -> Vec<u8> {
    B64.decode(echo["body_b64"].as_str().expect("body_b64"))
        .expect("body_b64 is base64")
}

fn echo_headers(echo: &Value) -> Vec<(String, String)> {
    echo["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| {
            let s = |i: usize| pair[i].as_str().expect("header pair").to_owned();
            (s(0), s(1))
        })
        .collect()
}

fn echo_header(echo: &Value, name: &str) -> Option<String> {
    echo_headers(echo)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[test]
fn aiohttp_sees_headers_in_the_order_and_case_sent() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&aiohttp.url("/echo"))
            .header("X-First", "1")
            .header("x-second", "two")
            .header("X-THIRD", "3")
            .header("X-Dup", "a")
            .header("X-Dup", "b"),
    );
    assert_reusable_ok(&outcome);
    let echo = echo_json(&outcome);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["version"], "1.1");
    let host = aiohttp.http.to_string();
    let expected = [
        ("Host", host.as_str()),
        ("X-First", "1"),
        ("x-second", "two"),
        ("X-THIRD", "3"),
        ("X-Dup", "a"),
        ("X-Dup", "b"),
        ("User-Agent", DEFAULT_USER_AGENT),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(echo_headers(&echo), expected);
}

#[test]
fn aiohttp_sees_the_query_in_order_with_repeats() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let echo = echo_json(&run(&mut conn, get(&aiohttp.url("/echo?b=2&a=1&b=3"))));
    assert_eq!(echo["path"], "/echo");
    assert_eq!(
        echo["query"],
        serde_json::json!([["b", "2"], ["a", "1"], ["b", "3"]])
    );
}

#[test]
fn aiohttp_post_with_content_length_arrives_exactly() {
    let aiohttp = peers::aiohttp();
    let body = pattern(100_000);
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let outcome = conn
        .exchange(
            request(Method::POST, &aiohttp.url("/echo"))
                .content_type("application/octet-stream")
                .content_length(body.len() as u64),
            Some(&body),
        )
        .unwrap();
    assert_reusable_ok(&outcome);
    let echo = echo_json(&outcome);
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo_header(&echo, "Content-Length").as_deref(),
        Some("100000")
    );
    assert_eq!(echo_header(&echo, "Transfer-Encoding"), None);
    assert_eq!(
        echo_header(&echo, "Content-Type").as_deref(),
        Some("application/octet-stream")
    );
    assert!(echo_body(&echo) == body, "the server got a different body");
}

#[test]
fn aiohttp_chunked_post_with_small_chunks_arrives_intact() {
    let aiohttp = peers::aiohttp();
    let body = pattern(1000);
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let outcome = conn
        .exchange(
            request(Method::POST, &aiohttp.url("/echo")).chunk_size(7),
            Some(&body),
        )
        .unwrap();
    assert_reusable_ok(&outcome);
    let echo = echo_json(&outcome);
    assert_eq!(
        echo_header(&echo, "Transfer-Encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(echo_header(&echo, "Content-Length"), None);
    assert_eq!(echo_body(&echo), body);
}

#[test]
fn aiohttp_compressed_posts_arrive_decompressed() {
    // aiohttp's server removes a request's Content-Encoding itself
    // (gzip and deflate), so the echoed body is the original.
    let aiohttp = peers::aiohttp();
    let mut body = b"compress me, compress me, compress me; ".repeat(500);
    body.extend(pattern(3000));
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    for (coding, token) in [
        (Compression::Gzip, "gzip"),
        (Compression::Deflate, "deflate"),
    ] {
        let outcome = conn
            .exchange(
                request(Method::POST, &aiohttp.url("/echo"))
                    .content_length(body.len() as u64)
                    .compress(coding),
                Some(&body),
            )
            .unwrap();
        assert_reusable_ok(&outcome);
        let echo = echo_json(&outcome);
        assert_eq!(
            echo_header(&echo, "Content-Encoding").as_deref(),
            Some(token)
        );
        // The compressed length is unknown up front: the body goes chunked.
        assert_eq!(
            echo_header(&echo, "Transfer-Encoding").as_deref(),
            Some("chunked")
        );
        assert!(
            echo_body(&echo) == body,
            "{token}: the server got a different body"
        );
    }
}

#[test]
fn aiohttp_expect_100_continue_gets_continue_then_the_response() {
    let aiohttp = peers::aiohttp();
    let body = b"sent only after 100 Continue".to_vec();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let outcome = conn
        .exchange(
            request(Method::POST, &aiohttp.url("/echo"))
                .content_length(body.len() as u64)
                .expect_continue(true),
            Some(&body),
        )
        .unwrap();
    assert_eq!(
        outcome.informational,
        vec![(StatusCode::CONTINUE, "Continue".to_owned())]
    );
    assert_reusable_ok(&outcome);
    let echo = echo_json(&outcome);
    assert_eq!(
        echo_header(&echo, "Expect").as_deref(),
        Some("100-continue")
    );
    assert_eq!(echo_body(&echo), body);

    // The connection carries on normally.
    let after = run(&mut conn, get(&aiohttp.url("/echo")));
    assert_reusable_ok(&after);
}

#[test]
fn aiohttp_ignoring_expect_gets_the_body_after_the_wait() {
    // A server ignores `Expect` in an HTTP/1.0 request (RFC 9110 §10.1.1):
    // no 100 comes, so the body goes out once the client stops waiting.
    let aiohttp = peers::aiohttp();
    let mut options = Options::default();
    options.continue_timeout = Duration::from_millis(300);
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    conn.set_options(options).unwrap();
    let started = std::time::Instant::now();
    let outcome = conn
        .exchange(
            request(Method::POST, &aiohttp.url("/echo"))
                .version(Version::HTTP_10)
                .content_length(4)
                .expect_continue(true),
            Some(b"late"),
        )
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        outcome.informational.is_empty(),
        "{:?}",
        outcome.informational
    );
    let echo = echo_json(&outcome);
    assert_eq!(echo["version"], "1.0");
    assert_eq!(echo_body(&echo), b"late");
}

#[test]
fn aiohttp_truncated_body_is_an_incomplete_body_error() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let err = conn
        .exchange(get(&aiohttp.url("/truncated")), None)
        .unwrap_err();
    assert!(
        matches!(err, Error::Proto(courier_proto::Error::IncompleteBody)),
        "expected IncompleteBody, got {err}"
    );
}

#[test]
fn aiohttp_gzip_and_deflate_responses_decode() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    for (path, coding, key) in [
        ("/gzip", ContentCoding::Gzip, "gzipped"),
        ("/deflate", ContentCoding::Deflate, "deflated"),
    ] {
        let outcome = run(&mut conn, get(&aiohttp.url(path)));
        assert_reusable_ok(&outcome);
        assert_eq!(outcome.content_coding, Some(coding), "{path}");
        let json: Value = serde_json::from_slice(&outcome.body).expect("decoded JSON");
        assert_eq!(json[key], true, "{path}: {json}");
        assert_eq!(json["headers"]["User-Agent"], DEFAULT_USER_AGENT);
    }
}

#[test]
fn aiohttp_chunked_response_gives_the_right_body() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    for (n, size) in [(5usize, 1000usize), (30, 1), (3, 100_000)] {
        let outcome = run(
            &mut conn,
            get(&aiohttp.url(&format!("/chunked?n={n}&size={size}"))),
        );
        assert_reusable_ok(&outcome);
        assert_eq!(outcome.body_mode, BodyMode::Chunked);
        let expected: Vec<u8> = (0..n)
            .flat_map(|i| std::iter::repeat_n(b"abcdefghijklmnopqrstuvwxyz"[i % 26], size))
            .collect();
        assert!(outcome.body == expected, "n={n} size={size}");
    }
}

#[test]
fn aiohttp_bytes_with_content_length() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let outcome = run(&mut conn, get(&aiohttp.url("/bytes/70000")));
    assert_reusable_ok(&outcome);
    assert_eq!(outcome.body_mode, BodyMode::Length(70_000));
    assert_eq!(outcome.body, pattern(70_000));
}

#[test]
fn aiohttp_over_unix_socket() {
    let aiohttp = peers::aiohttp();
    let mut stream = std::os::unix::net::UnixStream::connect(&aiohttp.unix).unwrap();
    let body = pattern(5000);
    // The one-shot driver sets the stream's timeouts itself.
    let outcome = blocking::exchange(
        &mut stream,
        request(Method::PUT, "http://localhost/echo?via=unix").content_length(5000),
        Some(&body),
    )
    .unwrap();
    assert_reusable_ok(&outcome);
    let echo = echo_json(&outcome);
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo_header(&echo, "Host").as_deref(), Some("localhost"));
    assert_eq!(echo_body(&echo), body);
}

#[test]
fn aiohttp_http10_request() {
    let aiohttp = peers::aiohttp();
    let mut conn = Conn::tcp(aiohttp.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&aiohttp.url("/echo")).version(Version::HTTP_10),
    );
    let echo = echo_json(&outcome);
    assert_eq!(echo["version"], "1.0");
    assert_eq!(
        echo_header(&echo, "Connection").as_deref(),
        Some("keep-alive")
    );
    // aiohttp answers in the request's version and agrees to keep-alive.
    assert_eq!(outcome.version, Version::HTTP_10);
    assert_eq!(outcome.header("connection"), Some("keep-alive"));
    assert_reusable_ok(&outcome);
    let after = run(&mut conn, get(&aiohttp.url("/echo")));
    assert_reusable_ok(&after);
}

// ---------------------------------------------------------------- httpbin

#[test]
fn httpbin_stream_is_chunked_json_lines() {
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let outcome = run(&mut conn, get(&httpbin.url("/stream/5")));
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.body_mode, BodyMode::Chunked);
    let text = outcome.text();
    let ids: Vec<u64> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("one JSON object per line");
            v["id"].as_u64().expect("id")
        })
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
}

#[test]
fn httpbin_gzip_and_deflate_decode() {
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    for (path, coding, key) in [
        ("/gzip", ContentCoding::Gzip, "gzipped"),
        ("/deflate", ContentCoding::Deflate, "deflated"),
    ] {
        let outcome = run(&mut conn, get(&httpbin.url(path)));
        assert_eq!(outcome.status, StatusCode::OK, "{path}");
        assert_eq!(outcome.content_coding, Some(coding), "{path}");
        let json: Value = serde_json::from_slice(&outcome.body).expect("decoded JSON");
        assert_eq!(json[key], true, "{path}: {json}");
    }
}

#[test]
fn httpbin_unknown_coding_is_handed_over_undecoded() {
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let outcome = run(&mut conn, get(&httpbin.url("/brotli")));
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.header("content-encoding"), Some("br"));
    assert_eq!(outcome.content_coding, None);
    assert_eq!(outcome.body.len(), outcome.wire_body_len);
    assert!(
        serde_json::from_slice::<Value>(&outcome.body).is_err(),
        "still brotli"
    );
}

#[test]
fn httpbin_response_headers_come_back() {
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&httpbin.url("/response-headers?X-Test=1&X-Test=2")),
    );
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.header_all("x-test"), ["1", "2"]);
}

#[test]
fn httpbin_keeps_the_connection_alive_and_answers_on_its_unix_socket() {
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    for i in 0..3 {
        let outcome = run(&mut conn, get(&httpbin.url(&format!("/get?i={i}"))));
        assert_reusable_ok(&outcome);
        let json: Value = serde_json::from_slice(&outcome.body).unwrap();
        assert_eq!(json["args"]["i"], i.to_string());
    }

    let mut unix = Conn::unix(&httpbin.unix).unwrap();
    let outcome = run(&mut unix, unix_get("/get"));
    assert_reusable_ok(&outcome);
    let json: Value = serde_json::from_slice(&outcome.body).unwrap();
    assert_eq!(json["headers"]["Host"], "localhost");
}

#[test]
fn httpbin_drip_body_arrives_over_several_reads() {
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&httpbin.url("/drip?numbytes=5&duration=0.5&delay=0&code=200")),
    );
    assert_reusable_ok(&outcome);
    assert_eq!(outcome.body_mode, BodyMode::Length(5));
    assert_eq!(outcome.body, b"*****");
}

#[test]
fn httpbin_dropping_an_idle_connection_is_closed_before_response() {
    // gunicorn closes a kept-alive connection after 5 idle seconds. A request
    // sent on it then gets no byte back: `ClosedBeforeResponse`, the error a
    // pool retries on a fresh connection.
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let first = run(&mut conn, get(&httpbin.url("/get")));
    assert_reusable_ok(&first);
    assert!(
        conn.peer_closed(Duration::from_secs(8)).unwrap(),
        "gunicorn drops idle connections"
    );
    let err = conn.exchange(get(&httpbin.url("/get")), None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Proto(courier_proto::Error::ClosedBeforeResponse)
        ),
        "expected ClosedBeforeResponse, got {err}"
    );
}

#[test]
fn httpbin_http10_stream_is_read_until_the_server_closes() {
    // gunicorn cannot chunk for HTTP/1.0, so a streamed body has no length
    // and ends when the server closes: the connection cannot be kept.
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let outcome = run(
        &mut conn,
        get(&httpbin.url("/stream/3")).version(Version::HTTP_10),
    );
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.version, Version::HTTP_10);
    assert_eq!(outcome.body_mode, BodyMode::UntilEof);
    assert_eq!(outcome.header("connection"), Some("close"));
    assert!(outcome.must_close);
    assert_eq!(outcome.close_reason, Some(CloseReason::ResponseClose));
    assert!(conn.is_eof());
    assert_eq!(outcome.text().lines().count(), 3);
}

#[test]
fn httpbin_receives_expect_continue_and_chunked_bodies() {
    // gunicorn: a second server implementation of 100-continue and of
    // chunked request bodies.
    let httpbin = peers::httpbin();
    let mut conn = Conn::tcp(httpbin.http).unwrap();
    let data = |outcome: &Outcome| {
        let json: Value = serde_json::from_slice(&outcome.body).expect("JSON");
        json["data"].as_str().expect("data").to_owned()
    };

    let expect = conn
        .exchange(
            request(Method::POST, &httpbin.url("/post"))
                .content_length(5)
                .expect_continue(true),
            Some(b"hello"),
        )
        .unwrap();
    assert_eq!(
        expect.informational,
        vec![(StatusCode::CONTINUE, "Continue".to_owned())]
    );
    assert_reusable_ok(&expect);
    assert_eq!(data(&expect), "hello");

    let chunked = conn
        .exchange(
            request(Method::POST, &httpbin.url("/post")).chunk_size(3),
            Some(b"chunked body"),
        )
        .unwrap();
    assert_reusable_ok(&chunked);
    assert_eq!(data(&chunked), "chunked body");
}
