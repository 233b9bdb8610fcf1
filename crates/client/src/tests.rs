//! The client's rules, checked over in-memory pipes: exact request bytes,
//! scripted responses, no sockets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use courier_pool::{Accepted, DuplexConnector, DuplexServer, PoolConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::http::{Method, StatusCode};
use crate::{BasicAuth, Body, ClientSession, Timeouts};

/// A session over in-memory pipes, and the server end.
fn session() -> (ClientSession, DuplexServer) {
    let (connector, server) = DuplexConnector::new(PoolConfig::default());
    let session = ClientSession::builder()
        .connector(connector)
        .build()
        .unwrap();
    (session, server)
}

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }
}

/// Reads one request (head, then a Content-Length or chunked body); `None`
/// at EOF.
async fn read_request(stream: &mut DuplexStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await {
            Ok(Ok(1)) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(buf).unwrap();
    let mut seen = Seen {
        head,
        body: Vec::new(),
    };
    if let Some(len) = seen.header("content-length") {
        let mut body = vec![0; len.parse().unwrap()];
        stream.read_exact(&mut body).await.unwrap();
        seen.body = body;
    } else if seen
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).await.unwrap();
                line.push(byte[0]);
            }
            let size =
                usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.unwrap();
            if size == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(seen)
}

type Respond = Arc<dyn Fn(usize, &Seen) -> Option<Vec<u8>> + Send + Sync>;

/// What the scripted server logged and how it answers.
struct Script {
    log: Vec<(usize, Seen)>,
    /// Given the request's number on its connection (when set).
    per_conn: Option<Respond>,
}

type Log = Arc<Mutex<Script>>;

/// Serves every connection: for each request, `respond` gets its index in
/// the log and gives the bytes to send (`None` closes the connection
/// without answering). Returns the log of requests, each with the number
/// of the connection it came on.
fn serve<F>(mut server: DuplexServer, respond: F) -> Log
where
    F: Fn(usize, &Seen) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let log = Arc::new(Mutex::new(Script {
        log: Vec::new(),
        per_conn: None,
    }));
    let respond: Respond = Arc::new(respond);
    let log2 = Arc::clone(&log);
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(Accepted { mut stream, .. }) = server.accept().await {
            let conn = n;
            n += 1;
            let log = Arc::clone(&log2);
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let mut nth = 0;
                while let Some(seen) = read_request(&mut stream).await {
                    let (index, per_conn) = {
                        let mut script = log.lock().unwrap();
                        script.log.push((conn, seen.clone()));
                        (script.log.len() - 1, script.per_conn.clone())
                    };
                    let reply = match per_conn {
                        Some(f) => f(nth, &seen),
                        None => respond(index, &seen),
                    };
                    nth += 1;
                    match reply {
                        Some(bytes) => stream.write_all(&bytes).await.unwrap(),
                        None => return,
                    }
                }
            });
        }
    });
    log
}

/// Answers by the request's number on its connection instead.
fn set_script<F>(log: &Log, respond: F)
where
    F: Fn(usize, &Seen) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    log.lock().unwrap().per_conn = Some(Arc::new(respond));
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn redirect(status: u16, location: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

fn requests(log: &Log) -> Vec<(usize, Seen)> {
    log.lock().unwrap().log.clone()
}

#[tokio::test]
async fn a_get_sends_exact_bytes_and_reuses_the_connection() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("hello")));
    for _ in 0..2 {
        let mut resp = session.get("http://a.test/path?x=1").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.read().await.unwrap(), "hello");
        assert!(resp.connection().is_none(), "the body is complete");
    }
    let log = requests(&log);
    assert_eq!(
        log[0].1.head,
        format!(
            "GET /path?x=1 HTTP/1.1\r\nHost: a.test\r\nUser-Agent: {}\r\nAccept: */*\r\n{}\r\n",
            courier_proto::DEFAULT_USER_AGENT,
            if cfg!(feature = "gzip") {
                "Accept-Encoding: gzip, deflate\r\n"
            } else {
                ""
            }
        )
    );
    assert_eq!((log[0].0, log[1].0), (0, 0), "one connection for both");
    assert_eq!(session.connector().stats().idle, 1);
}

#[tokio::test]
async fn params_headers_and_form_bodies() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("")));
    session
        .post("http://a.test/p?a=1")
        .query(&[("b", "x y"), ("b", "é")])
        .query_raw("raw=%20")
        .header("x-trace", "t1")
        .form(&[("k", "v&w"), ("k", "2")])
        .send()
        .await
        .unwrap();
    let seen = &requests(&log)[0].1;
    assert_eq!(
        seen.request_line(),
        "POST /p?a=1&b=x+y&b=%C3%A9&raw=%20 HTTP/1.1"
    );
    assert_eq!(seen.header("x-trace"), Some("t1"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.body, b"k=v%26w&k=2");
}

#[tokio::test]
async fn encoding_applies_to_text_forms_and_params() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("")));
    session
        .post("http://a.test/")
        .encoding("latin1")
        .query(&[("q", "é")])
        .text("café")
        .send()
        .await
        .unwrap();
    let seen = &requests(&log)[0].1;
    assert_eq!(seen.request_line(), "POST /?q=%E9 HTTP/1.1");
    assert_eq!(seen.body, b"caf\xe9");
    assert_eq!(
        seen.header("content-type"),
        Some("text/plain; charset=windows-1252")
    );
}

#[cfg(feature = "json")]
#[tokio::test]
async fn json_in_and_out() {
    let (session, server) = session();
    let log = serve(server, |_, _| {
        Some(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"answer\":42}"
                .to_vec(),
        )
    });
    let mut resp = session
        .post("http://a.test/")
        .json(&serde_json::json!({"q": "life"}))
        .send()
        .await
        .unwrap();
    let value: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(value["answer"], 42);
    let seen = &requests(&log)[0].1;
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.body, br#"{"q":"life"}"#);
}

#[cfg(feature = "json")]
#[tokio::test]
async fn json_refuses_other_content_types_unless_asked() {
    let (session, server) = session();
    serve(server, |_, _| {
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\n{}".to_vec())
    });
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    let err = resp.json::<serde_json::Value>().await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert!(err.to_string().contains("text/html"), "{err}");
    let value: serde_json::Value = resp.json_any_content_type().await.unwrap();
    assert!(value.as_object().unwrap().is_empty());
}

#[tokio::test]
async fn redirects_follow_rfc_9110_and_keep_history() {
    let (session, server) = session();
    let log = serve(server, |_, seen| {
        let path = seen.request_line().split(' ').nth(1).unwrap().to_owned();
        Some(match path.as_str() {
            "/302" => redirect(302, "/303"),
            "/303" => redirect(303, "http://a.test/307"),
            "/307" => redirect(307, "/end"),
            _ => ok("done"),
        })
    });
    // POST through 302 becomes GET without body.
    let mut resp = session
        .post("http://a.test/302")
        .data("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "done");
    assert_eq!(resp.url().as_str(), "http://a.test/end");
    assert_eq!(resp.method(), Method::GET);
    let statuses: Vec<u16> = resp.history().iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [302, 303, 307]);
    let log = requests(&log);
    assert_eq!(log[0].1.request_line(), "POST /302 HTTP/1.1");
    assert_eq!(log[1].1.request_line(), "GET /303 HTTP/1.1");
    assert!(log[1].1.body.is_empty() && log[1].1.header("content-type").is_none());
    assert_eq!(log[3].1.request_line(), "GET /end HTTP/1.1");
    assert!(
        log.iter().all(|(conn, _)| *conn == 0),
        "one kept-alive connection"
    );
}

#[tokio::test]
async fn a_307_resends_a_replayable_body_and_refuses_a_one_shot_one() {
    let (session, server) = session();
    let log = serve(server, |_, seen| {
        Some(if seen.request_line().contains("/start") {
            redirect(307, "/next")
        } else {
            ok("ok")
        })
    });
    let resp = session
        .put("http://a.test/start")
        .data(Bytes::from_static(b"abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log_now = requests(&log);
    assert_eq!(log_now[1].1.request_line(), "PUT /next HTTP/1.1");
    assert_eq!(log_now[1].1.body, b"abc");

    let stream = futures_stream(vec![Bytes::from_static(b"one-shot")]);
    let err = session
        .post("http://a.test/start")
        .data(Body::wrap_stream(stream))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_redirect(), "{err}");
    assert!(err.to_string().contains("one-shot"), "{err}");
}

/// A stream of ready chunks.
fn futures_stream(
    chunks: Vec<Bytes>,
) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    struct Iter(std::vec::IntoIter<Bytes>);
    impl futures_core::Stream for Iter {
        type Item = Result<Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    Iter(chunks.into_iter())
}

#[tokio::test]
async fn a_streamed_body_goes_chunked() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("")));
    let stream = futures_stream(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")]);
    session
        .post("http://a.test/")
        .data(Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let seen = &requests(&log)[0].1;
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
    assert_eq!(seen.body, b"abcde");
}

#[tokio::test]
async fn credentials_never_cross_origins() {
    let (session, server) = session();
    let log = serve(server, |_, seen| {
        let host = seen.header("host").unwrap().to_owned();
        let path = seen.request_line().split(' ').nth(1).unwrap().to_owned();
        Some(match (host.as_str(), path.as_str()) {
            ("a.test", "/go") => redirect(302, "/same"),
            ("a.test", "/same") => redirect(302, "http://b.test/other"),
            _ => ok("end"),
        })
    });
    let resp = session
        .get("http://user:pass@a.test/go")
        .header("cookie", "manual=1")
        .header("proxy-authorization", "Basic eA==")
        .cookies(&[("own", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), "http://b.test/other");
    let log = requests(&log);
    let basic = BasicAuth::new("user", "pass").unwrap().encode();
    for (_, seen) in &log[..2] {
        assert_eq!(
            seen.header("authorization"),
            Some(basic.as_str()),
            "{}",
            seen.head
        );
        assert_eq!(seen.header("cookie"), Some("manual=1; own=2"));
    }
    let last = &log[2].1;
    assert_eq!(last.header("host"), Some("b.test"));
    for name in ["authorization", "cookie", "proxy-authorization"] {
        assert_eq!(last.header(name), None, "{name} leaked: {}", last.head);
    }
    assert!(!resp.url().as_str().contains("pass"));
}

#[tokio::test]
async fn two_sources_of_credentials_and_bad_input_are_errors_not_panics() {
    let (session, _server) = session();
    let auth = BasicAuth::new("a", "b").unwrap();
    let err = session
        .get("http://u:p@a.test/")
        .auth(auth.clone())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{err}");
    assert!(!format!("{err} {err:?}").contains(":p@"));

    let err = session
        .get("http://a.test/")
        .auth(auth)
        .header("authorization", "Bearer x")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{err}");

    for url in [
        "ftp://a.test/",
        "not a url",
        "http://exa mple.test/",
        "file:///etc/passwd",
    ] {
        let err = session.get(url).send().await.unwrap_err();
        assert!(err.is_builder(), "{url}: {err}");
    }
    let err = session
        .get("http://a.test/")
        .header("x-bad", "a\r\nInjected: 1")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{err}");
    let err = session
        .request(Method::GET, "http://a.test/")
        .header("bad name", "v")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{err}");
}

#[tokio::test]
async fn too_many_redirects_carries_the_history() {
    let (session, server) = session();
    serve(server, |i, _| Some(redirect(302, &format!("/r{i}"))));
    let err = session
        .get("http://a.test/start")
        .max_redirects(3)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_redirect(), "{err}");
    let history = err.history().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].url().path(), "/r1");
    assert_eq!(err.status(), Some(StatusCode::FOUND));
    let mut history = err.into_history();
    assert_eq!(history.len(), 3);
    assert_eq!(
        history[0].read().await.unwrap(),
        "",
        "the redirect bodies are kept"
    );
}

#[tokio::test]
async fn head_does_not_follow_redirects_by_default() {
    let (session, server) = session();
    serve(server, |_, _| Some(redirect(301, "/elsewhere")));
    let resp = session.head("http://a.test/").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(resp.history().is_empty());
}

#[tokio::test]
async fn a_stale_kept_alive_connection_is_retried_once_on_a_new_one() {
    let (session, server) = session();
    // Each connection answers its first request, and closes without a word
    // when a second one arrives (a keep-alive timeout racing the request).
    let log = serve(server, |_, _| None);
    set_script(&log, |nth, _| (nth == 0).then(|| ok("fine")));
    for path in ["/1", "/2"] {
        let mut resp = session
            .get(format!("http://a.test{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.read().await.unwrap(), "fine");
    }
    let conns: Vec<usize> = requests(&log).iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0, 1], "sent again on a new connection");

    // A one-shot body cannot be sent again: the error is reported.
    let stream = futures_stream(vec![Bytes::from_static(b"x")]);
    let err = session
        .post("http://a.test/3")
        .data(Body::wrap_stream(stream))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_disconnected(), "{err}");
}

#[tokio::test]
async fn a_new_connection_closed_before_the_response_is_not_retried() {
    let (session, server) = session();
    let log = serve(server, |_, _| None);
    let err = session.get("http://a.test/").send().await.unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert_eq!(requests(&log).len(), 1);
}

/// A server that reads requests and never answers, keeping each
/// connection open.
fn silent(mut server: DuplexServer) {
    tokio::spawn(async move {
        while let Some(Accepted { mut stream, .. }) = server.accept().await {
            tokio::spawn(async move {
                let _ = read_request(&mut stream).await;
                std::future::pending::<()>().await;
                drop(stream);
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn timeouts_say_which_phase_expired() {
    let (session, server) = session();
    silent(server);
    let err = session
        .get("http://a.test/")
        .timeouts(Timeouts::none().read(Some(Duration::from_secs(3))))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.timeout_phase(), Some(crate::TimeoutPhase::Read));
    assert!(err.to_string().contains("read timeout"), "{err}");

    let err = session
        .get("http://a.test/")
        .timeout(Duration::from_secs(7))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.timeout_phase(),
        Some(crate::TimeoutPhase::Total),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_total_timeout_covers_the_body() {
    let (session, mut server) = session();
    tokio::spawn(async move {
        let Accepted { mut stream, .. } = server.accept().await.unwrap();
        read_request(&mut stream).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            .await
            .unwrap();
        std::future::pending::<()>().await;
    });
    let mut resp = session
        .get("http://a.test/")
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    let err = resp.read().await.unwrap_err();
    assert_eq!(
        err.timeout_phase(),
        Some(crate::TimeoutPhase::Total),
        "{err}"
    );
}

/// Answers the first request of the first connection with `bytes`, then
/// hangs up.
fn answer_and_close(
    mut server: DuplexServer,
    bytes: &'static [u8],
) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let Accepted { mut stream, .. } = server.accept().await.unwrap();
        let seen = read_request(&mut stream).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        seen
    })
}

#[tokio::test]
async fn a_truncated_body_is_an_error_never_a_short_success() {
    let cases: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        // A gzip stream cut short (the first bytes of gzip("hello world")).
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48",
    ];
    for bytes in cases {
        if !cfg!(feature = "gzip") && bytes.windows(4).any(|w| w == b"gzip") {
            continue;
        }
        let (session, server) = session();
        answer_and_close(server, bytes);
        let mut resp = session.get("http://a.test/").send().await.unwrap();
        let err = resp.read().await.unwrap_err();
        assert!(err.is_payload(), "{err}");
        assert_eq!(
            session.connector().stats().open,
            0,
            "the connection is closed"
        );
    }
}

#[cfg(feature = "gzip")]
#[tokio::test]
async fn gzip_and_deflate_bodies_are_decoded_unless_turned_off() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"hello gzip").unwrap();
    let gz = gz.finish().unwrap();
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(b"hello deflate").unwrap();
    let zl = zl.finish().unwrap();
    let (session, server) = session();
    let bodies = [("gzip", gz.clone()), ("deflate", zl)];
    let bodies2 = bodies.clone();
    serve(server, move |i, _| {
        let (coding, body) = &bodies2[i % 2];
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        Some(bytes)
    });
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello gzip");
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello deflate");
    let mut resp = session
        .get("http://a.test/")
        .auto_decompress(false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), gz);
}

#[tokio::test]
async fn buffered_reads_refuse_bodies_over_the_limit_but_streams_do_not() {
    let (session, server) = session();
    serve(server, |i, _| {
        Some(if i == 0 {
            ok("0123456789")
        } else {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n".to_vec()
        })
    });
    let mut resp = session
        .get("http://a.test/")
        .max_body_size(4)
        .send()
        .await
        .unwrap();
    let err = resp.read().await.unwrap_err();
    assert!(err.is_body_too_large() && err.is_payload(), "{err}");
    assert_eq!(err.too_large_limit(), Some(4));
    // Without Content-Length the limit is found while reading.
    let mut resp = session
        .get("http://a.test/")
        .max_body_size(7)
        .send()
        .await
        .unwrap();
    assert!(resp.read().await.unwrap_err().is_body_too_large());
    // Streaming is not capped.
    let mut resp = session
        .get("http://a.test/")
        .max_body_size(4)
        .send()
        .await
        .unwrap();
    let mut total = 0;
    while let Some(chunk) = resp.content().chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, 10);
}

#[tokio::test]
async fn content_has_aiohttps_stream_readers() {
    let (session, server) = session();
    serve(server, |_, _| {
        Some(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              7\r\nline 1\n\r\n9\r\nline 2\nAB\r\nC\r\nCDEFGHIJKLMN\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    let content = resp.content();
    assert_eq!(content.readline().await.unwrap(), "line 1\n");
    assert_eq!(content.readline().await.unwrap(), "line 2\n");
    assert_eq!(content.read_exactly(3).await.unwrap(), "ABC");
    assert_eq!(content.read(2).await.unwrap(), "DE");
    let mut chunks = Vec::new();
    let mut iter = content.iter_chunked(4);
    while let Some(chunk) = iter.next().await {
        chunks.push(chunk.unwrap());
    }
    assert_eq!(chunks, ["FGHI", "JKLM", "N"]);
    assert!(content.is_eof());
    assert_eq!(content.readany().await.unwrap(), "");
    assert!(content.read_exactly(1).await.unwrap_err().is_payload());
    assert_eq!(session.connector().stats().idle, 1, "back in the pool");
}

#[tokio::test]
async fn content_is_an_async_read() {
    let (session, server) = session();
    serve(server, |_, _| Some(ok("streamed through AsyncRead")));
    let resp = session.get("http://a.test/").send().await.unwrap();
    let mut content = resp.into_content();
    let mut text = String::new();
    content.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "streamed through AsyncRead");
}

#[tokio::test]
async fn dropping_an_unfinished_response_closes_its_connection_and_release_keeps_it() {
    let (session, server) = session();
    // A body larger than what arrives with the head.
    let log = serve(server, |_, _| Some(ok(&"0123456789".repeat(20_000))));
    // Release drains and keeps the connection.
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    resp.release().await;
    assert_eq!(session.connector().stats().idle, 1);
    // Dropping an unread response closes it: the next request needs a new one.
    let resp = session.get("http://a.test/").send().await.unwrap();
    drop(resp);
    assert_eq!(session.connector().stats().open, 0);
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    resp.read().await.unwrap();
    let conns: Vec<usize> = requests(&log).iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0, 1]);
}

#[tokio::test]
async fn error_for_status_reports_4xx_and_5xx() {
    let (session, server) = session();
    serve(server, |i, _| {
        Some(match i {
            0 => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            1 => b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_vec(),
            _ => ok(""),
        })
    });
    let resp = session.get("http://a.test/x").send().await.unwrap();
    assert_eq!(resp.reason(), "Not Found");
    let err = resp.error_for_status().unwrap_err();
    assert!(err.is_status());
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.url().unwrap().path(), "/x");
    let resp = session.get("http://a.test/").send().await.unwrap();
    assert_eq!(
        resp.error_for_status().unwrap_err().status(),
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    let resp = session.get("http://a.test/").send().await.unwrap();
    assert!(resp.error_for_status().is_ok());
}

#[cfg(feature = "cookies")]
#[tokio::test]
async fn cookies_from_redirects_are_stored_before_the_next_hop_and_stay_on_their_host() {
    let (session, server) = session();
    let log = serve(server, |_, seen| {
        let host = seen.header("host").unwrap().to_owned();
        Some(match (host.as_str(), seen.request_line()) {
            ("a.test", line) if line.starts_with("GET /login") => {
                b"HTTP/1.1 302 Found\r\nSet-Cookie: sid=42; Path=/\r\nLocation: /home\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
            ("a.test", _) => redirect(302, "http://b.test/"),
            _ => ok("b"),
        })
    });
    let resp = session.get("http://a.test/login").send().await.unwrap();
    assert_eq!(resp.history()[0].cookies()[0].name(), "sid");
    let log = requests(&log);
    assert_eq!(
        log[1].1.header("cookie"),
        Some("sid=42"),
        "stored before the next hop"
    );
    assert_eq!(log[2].1.header("cookie"), None, "not sent to another host");
    assert_eq!(session.cookie_jar().unwrap().len(), 1);
}

#[tokio::test]
async fn expect_100_continue_waits_for_the_go_ahead() {
    let (session, mut server) = session();
    let server = tokio::spawn(async move {
        let Accepted { mut stream, .. } = server.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .unwrap();
        let mut body = [0u8; 4];
        stream.read_exact(&mut body).await.unwrap();
        stream.write_all(&ok("got it")).await.unwrap();
        (head, body)
    });
    let mut resp = session
        .put("http://a.test/")
        .expect100(true)
        .data("data")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.read().await.unwrap(), "got it");
    let (head, body) = server.await.unwrap();
    assert!(head.contains("Expect: 100-continue\r\n"), "{head}");
    assert_eq!(&body, b"data");
}

#[cfg(feature = "gzip")]
#[tokio::test]
async fn http_1_0_and_compressed_uploads() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("")));
    session
        .get("http://a.test/")
        .version(crate::http::Version::HTTP_10)
        .send()
        .await
        .unwrap();
    session
        .post("http://a.test/")
        .compress(crate::Compression::Gzip)
        .data("squeeze me")
        .send()
        .await
        .unwrap();
    let log = requests(&log);
    assert!(
        log[0].1.head.starts_with("GET / HTTP/1.0\r\n"),
        "{}",
        log[0].1.head
    );
    let upload = &log[1].1;
    assert_eq!(upload.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&upload.body[..]),
        &mut text,
    )
    .unwrap();
    assert_eq!(text, "squeeze me");
}

#[tokio::test]
async fn a_closed_session_refuses_requests() {
    let (session, _server) = session();
    session.close().await;
    assert!(session.closed());
    let err = session.get("http://a.test/").send().await.unwrap_err();
    assert!(err.is_closed(), "{err}");
}

#[tokio::test]
async fn a_small_body_that_arrived_with_the_head_frees_the_connection_unread() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("unread body")));
    for _ in 0..3 {
        let resp = session.get("http://a.test/").send().await.unwrap();
        assert!(resp.connection().is_none(), "already back in the pool");
        drop(resp);
    }
    let conns: Vec<usize> = requests(&log).iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, [0, 0, 0]);
    // The body is still readable.
    let mut resp = session.get("http://a.test/").send().await.unwrap();
    assert_eq!(resp.read().await.unwrap(), "unread body");
}

#[test]
fn a_request_in_flight_stays_small() {
    // Each request in flight holds its future: keep it to a few KiB (it
    // was 14 KiB before the exchange and the checked request were boxed),
    // so that many concurrent requests cost little memory.
    let (session, _server) = session();
    let fut = session.get("http://a.test/").send();
    let size = std::mem::size_of_val(&fut);
    assert!(size <= 3 * 1024, "send future is {size} bytes");
}

#[tokio::test]
async fn large_bodies_with_a_length_arrive_intact_and_a_short_stream_fails() {
    let (session, server) = session();
    let log = serve(server, |_, _| Some(ok("")));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    session
        .put("http://a.test/")
        .data(big.clone())
        .send()
        .await
        .unwrap();
    let pieces = vec![
        Bytes::copy_from_slice(&big[..100_000]),
        Bytes::copy_from_slice(&big[100_000..100_010]),
        Bytes::copy_from_slice(&big[100_010..]),
    ];
    session
        .put("http://a.test/")
        .data(Body::wrap_stream(futures_stream(pieces)).with_length(big.len() as u64))
        .send()
        .await
        .unwrap();
    let log = requests(&log);
    for (_, seen) in &log {
        assert_eq!(seen.header("content-length"), Some("300000"));
        assert!(seen.body == big, "body differs");
    }
    // A stream shorter than its declared length is an error, not a hang.
    let short = futures_stream(vec![Bytes::from(vec![1u8; 50_000])]);
    let err = session
        .put("http://a.test/")
        .data(Body::wrap_stream(short).with_length(60_000))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request_body(), "{err}");
}
