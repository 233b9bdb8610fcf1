//! The async client (`courier`) against scripted raw servers
//! ([`RawServer`]): the exact bytes it sends (heads, forms, chunked
//! uploads, cookies), what crosses a redirect to another origin, the retry
//! on a connection the server closed, keep-alive verdicts, the pool and read
//! timeouts, hooks, `Expect: 100-continue`, and how broken responses
//! (truncated bodies and gzip streams, malformed status lines, silence)
//! surface as errors.
//!
//! No peers needed: every server here is started by its test on
//! `127.0.0.1:0`. Every session has a total timeout of [`LIMIT`], so a
//! broken client fails a test instead of hanging the suite.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier::{BasicAuth, Body, ClientSession, TimeoutPhase, Timeouts};
use courier_proto::DEFAULT_USER_AGENT;
use courier_test_support::raw::{self, RawConn, RawServer};

/// The total timeout of every session here.
const LIMIT: Duration = Duration::from_secs(5);

fn session() -> ClientSession {
    ClientSession::builder().timeout(LIMIT).build().unwrap()
}

/// Answers every request on a connection with 200 `ok`, keeping it open.
async fn serve_ok(mut conn: RawConn) {
    while conn.read_request().await.is_some() {
        conn.write(&raw::response(
            200,
            &[("Content-Type", "text/plain")],
            b"ok",
        ))
        .await;
    }
}

async fn ok_server() -> RawServer {
    RawServer::start(serve_ok).await
}

/// The automatic headers after `Host` for a request without a body.
fn auto_headers() -> String {
    format!("User-Agent: {DEFAULT_USER_AGENT}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n")
}

#[track_caller]
fn assert_no_server_errors(server: &RawServer) {
    assert!(server.errors().is_empty(), "{:?}", server.errors());
}

// ---------------------------------------------------------------------------
// What goes on the wire

#[tokio::test]
async fn get_head_bytes_exactly() {
    assert_eq!(
        DEFAULT_USER_AGENT,
        concat!("courier/", env!("CARGO_PKG_VERSION"))
    );
    let server = ok_server().await;
    let s = session();
    let mut resp = s
        .get(server.url("/path/x?q=1#fragment"))
        .query(&[("r", "a b")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let port = server.addr().port();
    let expected = format!(
        "GET /path/x?q=1&r=a+b HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}\r\n",
        auto_headers()
    );
    assert_eq!(requests[0].head, expected);
    assert_eq!(requests[0].raw, expected.as_bytes(), "no body bytes");
    assert_eq!(resp.url().fragment(), Some("fragment"), "kept, never sent");
    assert_no_server_errors(&server);
}

#[tokio::test]
async fn post_form_bytes_exactly() {
    let server = ok_server().await;
    let s = session();
    let resp = s
        .post(server.url("/submit"))
        .header("X-Custom", "1")
        .form(&[("name", "courier"), ("a", "b c&d")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let port = server.addr().port();
    let body = "name=courier&a=b+c%26d";
    let expected = format!(
        "POST /submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-custom: 1\r\n{}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        auto_headers(),
        body.len()
    );
    let requests = server.requests();
    assert_eq!(String::from_utf8_lossy(&requests[0].raw), expected);
    assert_no_server_errors(&server);
}

#[tokio::test]
async fn chunked_uploads_on_the_wire() {
    let server = ok_server().await;
    let s = session();

    // A stream: one chunk per item, empty items skipped.
    let items = ["hello", ", ", "", "world"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
    s.post(server.url("/stream"))
        .data(Body::wrap_stream(futures_util::stream::iter(items)))
        .send()
        .await
        .unwrap();
    // In-memory bytes split by `chunked(4)`.
    s.put(server.url("/sized"))
        .text("hello world")
        .chunked(4)
        .send()
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let port = server.addr().port();
    let expected = format!(
        "POST /stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n2\r\n, \r\n5\r\nworld\r\n0\r\n\r\n",
        auto_headers()
    );
    assert_eq!(String::from_utf8_lossy(&requests[0].raw), expected);
    let expected = format!(
        "PUT /sized HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}\
         Content-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n\
         4\r\nhell\r\n4\r\no wo\r\n3\r\nrld\r\n0\r\n\r\n",
        auto_headers()
    );
    assert_eq!(String::from_utf8_lossy(&requests[1].raw), expected);
    assert_eq!(server.accepted(), 1, "both on one kept-alive connection");
    assert_no_server_errors(&server);
}

#[tokio::test]
async fn cookies_from_the_jar_the_request_and_a_header_go_in_one_field() {
    let server = RawServer::start(|mut conn| async move {
        while let Some(request) = conn.read_request().await {
            let headers: &[(&str, &str)] = if request.target == "/login" {
                &[("Set-Cookie", "jar=1; Path=/")]
            } else {
                &[]
            };
            conn.write(&raw::response(200, headers, b"ok")).await;
        }
    })
    .await;
    let s = session();
    let mut resp = s.get(server.url("/login")).send().await.unwrap();
    resp.read().await.unwrap();
    let mut resp = s
        .get(server.url("/page"))
        .cookies(&[("own", "2")])
        .header("cookie", "hdr=3")
        .send()
        .await
        .unwrap();
    resp.read().await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].header("cookie"), None);
    assert_eq!(requests[1].header_all("cookie"), ["hdr=3; own=2; jar=1"]);
}

#[tokio::test]
async fn a_host_header_from_the_user_replaces_the_automatic_one() {
    let server = ok_server().await;
    let s = session();
    let mut resp = s
        .get(server.url("/"))
        .header("host", "virtual.test")
        .send()
        .await
        .unwrap();
    resp.read().await.unwrap();
    assert_eq!(server.requests()[0].header_all("host"), ["virtual.test"]);
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let server = ok_server().await;
    let s = session();
    for _ in 0..3 {
        let mut resp = s.get(server.url("/again")).send().await.unwrap();
        assert_eq!(resp.read().await.unwrap(), "ok");
    }
    assert_eq!(server.accepted(), 1);
    let on: Vec<usize> = server.requests().iter().map(|r| r.conn_index).collect();
    assert_eq!(on, [0, 0, 0]);
}

// ---------------------------------------------------------------------------
// Redirects across origins

/// A server answering `/cross` with a redirect to `other` (another port,
/// so another origin), `/same` with a redirect to its own `/landing`, and
/// anything else with 200.
async fn redirecting_server(other: String) -> RawServer {
    RawServer::start(move |mut conn| {
        let other = other.clone();
        async move {
            while let Some(request) = conn.read_request().await {
                let response = match request.target.as_str() {
                    "/cross" => raw::response(302, &[("Location", &other)], b""),
                    "/same" => raw::response(302, &[("Location", "/landing")], b""),
                    _ => raw::response(200, &[], b"landed"),
                };
                conn.write(&response).await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn credentials_do_not_cross_to_another_origin() {
    let b = ok_server().await;
    let a = redirecting_server(b.url("/landing")).await;
    let s = session();

    // Credentials from auth() and cookies().
    let mut resp = s
        .get(a.url("/cross"))
        .auth(BasicAuth::new("user", "secret").unwrap())
        .cookies(&[("session", "s1")])
        .header("x-other", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");
    assert_eq!(resp.url().port(), Some(b.addr().port()));
    // Credentials as plain headers.
    let mut resp = s
        .get(a.url("/cross"))
        .header("authorization", "Bearer token")
        .header("cookie", "h=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");

    let sent_to_a = a.requests();
    assert_eq!(sent_to_a.len(), 2);
    assert_eq!(
        sent_to_a[0].header("authorization"),
        Some("Basic dXNlcjpzZWNyZXQ=")
    );
    assert_eq!(sent_to_a[0].header("cookie"), Some("session=s1"));
    assert_eq!(sent_to_a[1].header("authorization"), Some("Bearer token"));
    assert_eq!(sent_to_a[1].header("cookie"), Some("h=1"));

    let sent_to_b = b.requests();
    assert_eq!(sent_to_b.len(), 2);
    for request in &sent_to_b {
        assert_eq!(request.target, "/landing");
        assert_eq!(request.header("authorization"), None, "{}", request.head);
        assert_eq!(request.header("cookie"), None, "{}", request.head);
    }
    assert_eq!(sent_to_b[0].header("x-other"), Some("kept"));
}

#[tokio::test]
async fn credentials_stay_on_a_same_origin_redirect() {
    let a = redirecting_server(String::new()).await;
    let s = session();
    let mut resp = s
        .get(a.url("/same"))
        .auth(BasicAuth::new("user", "secret").unwrap())
        .cookies(&[("session", "s1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "landed");
    let requests = a.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].target, "/landing");
    assert_eq!(
        requests[1].header("authorization"),
        Some("Basic dXNlcjpzZWNyZXQ=")
    );
    assert_eq!(requests[1].header("cookie"), Some("session=s1"));
}

// ---------------------------------------------------------------------------
// A kept-alive connection the server closed

#[tokio::test]
async fn a_connection_closed_after_the_answer_is_not_a_failure() {
    // One request per connection, then a clean close (no `Connection: close`).
    let server = RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            conn.write(&raw::response(200, &[], b"ok")).await;
        }
        conn.close().await;
    })
    .await;
    let s = session();
    for round in 0..2 {
        let mut resp = s
            .get(server.url("/"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(resp.read().await.unwrap(), "ok");
    }
    assert_eq!(server.accepted(), 2);
    assert_no_server_errors(&server);
}

/// The first connection answers one request, then reads the next and
/// closes without answering; later connections answer everything.
async fn drops_the_second_request() -> RawServer {
    RawServer::start(|mut conn| async move {
        if conn.index() > 0 {
            return serve_ok(conn).await;
        }
        if conn.read_request().await.is_some() {
            conn.write(&raw::response(200, &[], b"ok")).await;
            let _ = conn.read_request().await;
        }
        conn.close().await;
    })
    .await
}

#[tokio::test]
async fn a_request_the_server_dropped_is_retried_once_on_a_new_connection() {
    let server = drops_the_second_request().await;
    let s = session();
    let mut resp = s.get(server.url("/first")).send().await.unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");
    let mut resp = s
        .post(server.url("/second"))
        .text("replayable")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");

    assert_eq!(server.accepted(), 2);
    let log: Vec<(String, usize, Vec<u8>)> = server
        .requests()
        .into_iter()
        .map(|r| (r.target, r.conn_index, r.body))
        .collect();
    assert_eq!(
        log,
        [
            ("/first".to_owned(), 0, Vec::new()),
            ("/second".to_owned(), 0, b"replayable".to_vec()),
            ("/second".to_owned(), 1, b"replayable".to_vec()),
        ]
    );
}

#[tokio::test]
async fn a_one_shot_body_is_not_retried() {
    let server = drops_the_second_request().await;
    let s = session();
    let mut resp = s.get(server.url("/first")).send().await.unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");
    let items = [Ok::<_, std::io::Error>(Bytes::from_static(b"once"))];
    let err = s
        .post(server.url("/second"))
        .data(Body::wrap_stream(futures_util::stream::iter(items)))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_disconnected(), "{err:?}");
    assert_eq!(server.accepted(), 1, "no second attempt");
    assert_eq!(server.requests().len(), 2);
}

// ---------------------------------------------------------------------------
// Broken responses

/// A server that reads one request and writes `bytes`, then closes.
async fn answers_with(bytes: &'static [u8]) -> RawServer {
    RawServer::start(move |mut conn| async move {
        if conn.read_request().await.is_some() {
            conn.write(bytes).await;
        }
        conn.close().await;
    })
    .await
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_a_payload_error() {
    let server = answers_with(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await;
    let s = session();
    let mut resp = s.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let err = resp.read().await.unwrap_err();
    assert!(err.is_payload(), "{err:?}");
    assert!(!err.is_timeout());

    // The same through the stream: the 10 bytes, then the error.
    let mut resp = s.get(server.url("/")).send().await.unwrap();
    let first = resp.content().read_exactly(10).await.unwrap();
    assert_eq!(&first[..], b"0123456789");
    let err = resp.content().chunk().await.unwrap_err();
    assert!(err.is_payload(), "{err:?}");
}

#[tokio::test]
async fn an_unfinished_chunked_body_is_a_payload_error() {
    let server =
        answers_with(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab")
            .await;
    let s = session();
    let mut resp = s.get(server.url("/")).send().await.unwrap();
    let err = resp.read().await.unwrap_err();
    assert!(err.is_payload(), "{err:?}");
}

#[tokio::test]
async fn malformed_status_lines_are_payload_errors() {
    let cases: [&'static [u8]; 4] = [
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTZ/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"200 OK\r\nContent-Length: 0\r\n\r\n",
    ];
    for case in cases {
        let server = answers_with(case).await;
        let err = session().get(server.url("/")).send().await.unwrap_err();
        assert!(
            err.is_payload(),
            "{:?}: {err:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[tokio::test]
async fn a_silent_server_hits_the_read_timeout() {
    let server = RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    })
    .await;
    let s = session();
    let started = Instant::now();
    let err = s
        .get(server.url("/"))
        .timeouts(Timeouts::none().read(Some(Duration::from_millis(200))))
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Read));
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

/// `hello hello hello hello` gzip'd (mtime 0): 10 bytes of header, 10 of
/// deflate data, 8 of trailer (CRC-32 and length).
const GZIPPED: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\
    \xcb\x48\xcd\xc9\xc9\x57\xc8\x40\x27\x01\xe3\x51\x3d\x8d\x17\x00\x00\x00";

/// A server answering every request with 200, `Content-Encoding: gzip`
/// and `body`, keeping the connection open.
async fn gzip_server(body: &'static [u8]) -> RawServer {
    RawServer::start(move |mut conn| async move {
        while conn.read_request().await.is_some() {
            conn.write(&raw::response(200, &[("Content-Encoding", "gzip")], body))
                .await;
        }
    })
    .await
}

#[tokio::test]
async fn a_gzip_body_is_decoded_and_a_truncated_one_is_an_error() {
    let server = gzip_server(GZIPPED).await;
    let mut resp = session().get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello hello hello hello");

    // Without its trailer: complete framing, incomplete gzip stream.
    let server = gzip_server(&GZIPPED[..GZIPPED.len() - 8]).await;
    let mut resp = session().get(server.url("/")).send().await.unwrap();
    let err = resp.read().await.unwrap_err();
    assert!(err.is_payload(), "{err:?}");

    // Not gzip at all.
    let server = gzip_server(b"plain text, not gzip").await;
    let mut resp = session().get(server.url("/")).send().await.unwrap();
    let err = resp.read().await.unwrap_err();
    assert!(err.is_payload(), "{err:?}");
}

#[tokio::test]
async fn a_body_without_framing_is_read_until_close_unless_refused() {
    let server =
        answers_with(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close").await;
    let s = session();
    let mut resp = s.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "until close");
    assert_eq!(s.connector().stats().open, 0, "a body ended by close");

    let result = s.get(server.url("/")).read_until_eof(false).send().await;
    let err = match result {
        Ok(mut resp) => resp.read().await.unwrap_err(),
        Err(err) => err,
    };
    assert!(err.is_payload(), "{err:?}");
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let server = answers_with(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
    )
    .await;
    let mut resp = session().get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("link").is_none());
    assert_eq!(resp.text().await.unwrap(), "final");
}

#[tokio::test]
async fn connection_close_from_the_server_is_honoured() {
    let server = RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            conn.write(&raw::response(200, &[("Connection", "close")], b"bye"))
                .await;
        }
        conn.close().await;
    })
    .await;
    let s = session();
    for _ in 0..3 {
        let mut resp = s.get(server.url("/")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "bye");
        assert_eq!(s.connector().stats().open, 0, "not pooled");
    }
    assert_eq!(server.accepted(), 3);
    let on: Vec<usize> = server.requests().iter().map(|r| r.conn_index).collect();
    assert_eq!(
        on,
        [0, 1, 2],
        "each request went once, on its own connection"
    );
}

#[tokio::test]
async fn bytes_past_the_body_make_the_connection_unusable() {
    let server = RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
                .await;
        }
        while conn.read_request().await.is_some() {
            conn.write(&raw::response(200, &[], b"ok")).await;
        }
    })
    .await;
    let s = session();
    for _ in 0..2 {
        let mut resp = s.get(server.url("/")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    let on: Vec<usize> = server.requests().iter().map(|r| r.conn_index).collect();
    assert_eq!(on, [0, 1], "the second request went on a new connection");
}

#[tokio::test]
async fn a_304_has_no_body_whatever_its_content_length() {
    let server = RawServer::start(|mut conn| async move {
        while conn.read_request().await.is_some() {
            conn.write(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 100\r\n\r\n")
                .await;
        }
    })
    .await;
    let s = session();
    for _ in 0..2 {
        let mut resp = s
            .get(server.url("/cached"))
            .header("if-none-match", "\"v1\"")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 304);
        assert!(resp.read().await.unwrap().is_empty());
    }
    assert_eq!(server.accepted(), 1, "the connection stays usable");
}

#[tokio::test]
async fn text_follows_the_declared_charset() {
    let server = RawServer::start(|mut conn| async move {
        while conn.read_request().await.is_some() {
            conn.write(&raw::response(
                200,
                &[("Content-Type", "text/plain; charset=iso-8859-1")],
                b"caf\xe9",
            ))
            .await;
        }
    })
    .await;
    let s = session();
    let mut resp = s.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "café");
    let mut resp = s.get(server.url("/")).send().await.unwrap();
    assert_eq!(
        resp.text_with_encoding("windows-1251").await.unwrap(),
        "cafй"
    );
}

/// `Content::bytes_received` is documented as the body bytes received from
/// the network so far; the body bytes that arrived in the same read as the
/// head are left out.
#[tokio::test]
async fn bytes_received_counts_the_whole_body() {
    let body = vec![b'x'; 3000];
    let server = RawServer::start(move |mut conn| {
        let body = body.clone();
        async move {
            while conn.read_request().await.is_some() {
                // Head and body in one write: one read on the client.
                conn.write(&raw::response(200, &[], &body)).await;
            }
        }
    })
    .await;
    let resp = session().get(server.url("/")).send().await.unwrap();
    let mut content = resp.into_content();
    let mut total = 0;
    while let Some(chunk) = content.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, 3000);
    assert_eq!(content.bytes_received(), 3000);
}

#[tokio::test]
async fn http_1_0_requests() {
    let server = RawServer::start(|mut conn| async move {
        while conn.read_request().await.is_some() {
            conn.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
    })
    .await;
    let s = session();
    let mut resp = s
        .get(server.url("/old"))
        .version(courier::http::Version::HTTP_10)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), courier::http::Version::HTTP_10);
    assert_eq!(resp.text().await.unwrap(), "ok");
    let requests = server.requests();
    assert_eq!(requests[0].version, "HTTP/1.0");
    assert_eq!(requests[0].header("connection"), Some("keep-alive"));
    // The server's HTTP/1.0 answer did not say keep-alive: not pooled.
    assert_eq!(s.connector().stats().open, 0);
}

/// RFC 9112 §9.5: a client sending a body "SHOULD monitor the network
/// connection for an error response while it is transmitting the request";
/// a server that refuses an upload at once (413, 401) and closes must not
/// turn into a broken-pipe error that hides its answer.
#[tokio::test]
async fn an_early_refusal_during_an_upload_is_the_response() {
    let server = RawServer::start(|mut conn| async move {
        if conn.read_head().await.is_some() {
            conn.write(&raw::response(413, &[("Connection", "close")], b"too big"))
                .await;
            // Time for the answer to reach the client before the reset.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        conn.close().await;
    })
    .await;
    let s = session();
    let result = s
        .post(server.url("/upload"))
        .data(vec![0_u8; 8 * 1024 * 1024])
        .send()
        .await;
    let mut resp = result.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.text().await.unwrap(), "too big");
}

#[tokio::test]
async fn waiting_for_the_pool_times_out_in_the_pool_phase() {
    // `/held` gets its head and part of its body, the rest never comes.
    let server = RawServer::start(|mut conn| async move {
        while let Some(request) = conn.read_request().await {
            if request.target == "/held" {
                conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
                    .await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                return;
            }
            conn.write(&raw::response(200, &[], b"ok")).await;
        }
    })
    .await;
    let connector = courier::TcpConnector::builder()
        .limit(Some(1))
        .build()
        .unwrap();
    let s = ClientSession::builder()
        .connector(connector)
        .timeout(LIMIT)
        .build()
        .unwrap();
    // Holds the only connection: its body is unfinished.
    let held = s.get(server.url("/held")).send().await.unwrap();
    assert!(held.connection().is_some());
    let started = Instant::now();
    let err = s
        .get(server.url("/waiting"))
        .timeouts(Timeouts::default().pool(Some(Duration::from_millis(200))))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Pool));
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(held);
    // With the connection given back, the next request goes through.
    let mut resp = s.get(server.url("/after")).send().await.unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_refused_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = session()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.is_timeout() && !err.is_tls() && !err.is_proxy());
}

#[tokio::test]
async fn hooks_see_every_hop() {
    let b = ok_server().await;
    let a = redirecting_server(b.url("/landing")).await;
    let seen: Arc<Mutex<Vec<u16>>> = Arc::default();
    let log = Arc::clone(&seen);
    let s = ClientSession::builder()
        .timeout(LIMIT)
        .on_request(|parts| {
            parts
                .headers
                .insert("x-hooked", parts.url.path().parse().unwrap());
        })
        .on_response(move |resp| log.lock().unwrap().push(resp.status().as_u16()))
        .build()
        .unwrap();
    let mut resp = s.get(a.url("/cross")).send().await.unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");
    assert_eq!(*seen.lock().unwrap(), [302, 200]);
    assert_eq!(a.requests()[0].header("x-hooked"), Some("/cross"));
    assert_eq!(b.requests()[0].header("x-hooked"), Some("/landing"));
}

// ---------------------------------------------------------------------------
// Expect: 100-continue

#[tokio::test]
async fn expect_continue_sends_the_body_after_100() {
    let server = RawServer::start(|mut conn| async move {
        let Some(head) = conn.read_head().await else {
            return;
        };
        assert_eq!(head.header("expect"), Some("100-continue"));
        conn.write(b"HTTP/1.1 100 Continue\r\n\r\n").await;
        let Some(request) = conn.read_body(head).await else {
            return;
        };
        let answer = format!("got {}", String::from_utf8_lossy(&request.body));
        conn.write(&raw::response(200, &[], answer.as_bytes()))
            .await;
    })
    .await;
    let s = session();
    let started = Instant::now();
    let mut resp = s
        .post(server.url("/upload"))
        .text("payload")
        .expect100(true)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "got payload");
    assert!(
        started.elapsed() < courier::EXPECT_CONTINUE_TIMEOUT,
        "the body went on the 100, not after the fallback wait: {:?}",
        started.elapsed()
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("expect"), Some("100-continue"));
    assert_eq!(requests[0].body, b"payload");
    assert_no_server_errors(&server);
}

#[tokio::test]
async fn expect_continue_ignored_by_the_server_sends_the_body_after_the_wait() {
    let server = ok_server().await;
    let started = Instant::now();
    let mut resp = session()
        .post(server.url("/upload"))
        .text("late")
        .expect100(true)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "ok");
    let took = started.elapsed();
    assert!(
        took >= courier::EXPECT_CONTINUE_TIMEOUT - Duration::from_millis(50)
            && took < courier::EXPECT_CONTINUE_TIMEOUT * 2,
        "{took:?}"
    );
    assert_eq!(server.requests()[0].body, b"late");
}

#[tokio::test]
async fn expect_continue_refused_keeps_the_body_and_closes() {
    let after_head: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let seen = Arc::clone(&after_head);
    let server = RawServer::builder()
        .read_timeout(Duration::from_millis(1500))
        .start(move |mut conn| {
            let seen = Arc::clone(&seen);
            async move {
                if conn.read_head().await.is_none() {
                    return;
                }
                conn.write(&raw::response(401, &[], b"no")).await;
                // Whatever the client sends next, until it closes.
                let rest = conn.read_to_eof().await;
                *seen.lock().unwrap() = Some(rest);
            }
        })
        .await;
    let s = session();
    let mut resp = s
        .post(server.url("/upload"))
        .text("must not be sent")
        .expect100(true)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), "no");
    assert_eq!(
        s.connector().stats().open,
        0,
        "a connection whose body was never sent cannot be reused"
    );
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(3);
    let rest = loop {
        if let Some(rest) = after_head.lock().unwrap().take() {
            break rest;
        }
        assert!(Instant::now() < deadline, "the server never saw the end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(String::from_utf8_lossy(&rest), "", "the body was sent");
}
