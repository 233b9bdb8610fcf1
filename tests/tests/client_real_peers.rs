//! The async client (`courier`) end to end against real peers: httpbin for
//! request options, redirects, cookies, auth, content codings, streaming and
//! timeouts; nginx over TCP, TLS (the test CA) and its Unix socket; tinyproxy
//! and squid as forward proxies (absolute-form, `CONNECT`, proxy auth).
//!
//! Needs the peers running (`cargo xtask test`, or
//! `eval "$(cargo xtask peers start)"`); the peer accessors panic with
//! instructions otherwise. Every session here has a total timeout of
//! [`LIMIT`], so a broken client fails a test instead of hanging the suite.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier::multipart::{Form, Part};
use courier::{
    BasicAuth, Body, ClientResponse, ClientSession, ClientSessionBuilder, TimeoutPhase, Timeouts,
    UnixConnector,
};
use courier_pool::{PoolConfig, TcpConnector, TcpConnectorBuilder};
use courier_proto::DEFAULT_USER_AGENT;
use courier_test_support::peers::{self, Proxy};
use serde_json::{Value, json};

/// The total timeout of every session here (all peers are on loopback).
const LIMIT: Duration = Duration::from_secs(10);

/// A TCP connector builder that trusts the test CA (and the built-in roots).
fn tcp() -> TcpConnectorBuilder {
    let ca = std::fs::read(peers::ca_pem()).expect("the test CA");
    TcpConnector::builder().add_root_certificates_pem(&ca)
}

/// A session builder on a [`tcp`] connector, with the [`LIMIT`] timeout.
fn builder() -> ClientSessionBuilder {
    ClientSession::builder()
        .connector(tcp().build().unwrap())
        .timeout(LIMIT)
}

fn session() -> ClientSession {
    builder().build().unwrap()
}

/// `http://127.0.0.1:PORT{path}` on httpbin.
fn httpbin(path: &str) -> String {
    peers::httpbin().url(path)
}

#[track_caller]
fn assert_ok(resp: &ClientResponse) {
    assert_eq!(resp.status(), 200, "{resp:?}");
}

/// The body as JSON, asserting a 200 first.
async fn json_of(mut resp: ClientResponse) -> Value {
    assert_ok(&resp);
    resp.json().await.unwrap()
}

/// A file in the system's temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "courier-client-real-peers-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Text of `lines` numbered lines (about 40 bytes each).
fn numbered_lines(lines: usize) -> String {
    (0..lines)
        .map(|i| format!("line {i:06} of the upload, plain ascii\n"))
        .collect()
}

// ---------------------------------------------------------------------------
// httpbin: request options

#[tokio::test]
async fn get_sends_repeated_params_and_headers() {
    let s = session();
    let resp = s
        .get(httpbin("/get?fixed=0"))
        .query(&[("a", "1"), ("a", "2"), ("b", "x y&z"), ("u", "ünï")])
        .header("x-test", "value")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.url().query(),
        Some("fixed=0&a=1&a=2&b=x+y%26z&u=%C3%BCn%C3%AF")
    );
    let body = json_of(resp).await;
    assert_eq!(
        body["args"],
        json!({"fixed": "0", "a": ["1", "2"], "b": "x y&z", "u": "ünï"})
    );
    assert_eq!(body["headers"]["X-Test"], "value");
    assert_eq!(body["headers"]["X-Multi"], "one,two", "both values sent");
    assert_eq!(body["headers"]["User-Agent"], DEFAULT_USER_AGENT);
    assert_eq!(
        body["headers"]["Host"],
        peers::httpbin().http.to_string(),
        "Host carries the port"
    );
}

#[tokio::test]
async fn one_off_get_works_without_a_session() {
    let resp = courier::get(httpbin("/get"))
        .query(&[("one", "off")])
        .timeout(LIMIT)
        .send()
        .await
        .unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["args"], json!({"one": "off"}));
}

#[tokio::test]
async fn post_form_keeps_repeated_keys() {
    let s = session();
    let resp = s
        .post(httpbin("/post"))
        .form(&[("k", "v"), ("k", "w"), ("x", "a b&c=d")])
        .send()
        .await
        .unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["form"], json!({"k": ["v", "w"], "x": "a b&c=d"}));
    assert_eq!(
        body["headers"]["Content-Type"],
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn post_json() {
    let s = session();
    let sent = json!({"name": "courier", "n": [1, 2, 3], "nested": {"ok": true}});
    let resp = s.post(httpbin("/post")).json(&sent).send().await.unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["json"], sent);
    assert_eq!(body["headers"]["Content-Type"], "application/json");
}

#[tokio::test]
async fn post_bytes_with_content_length() {
    let s = session();
    let resp = s
        .post(httpbin("/post"))
        .data(Bytes::from_static(b"raw bytes"))
        .send()
        .await
        .unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["data"], "raw bytes");
    assert_eq!(body["headers"]["Content-Type"], "application/octet-stream");
    assert_eq!(body["headers"]["Content-Length"], "9");
    assert!(body["headers"].get("Transfer-Encoding").is_none(), "{body}");
}

#[tokio::test]
async fn post_a_stream_goes_chunked() {
    let s = session();
    let chunks =
        ["first,", "second,", "", "third"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
    let body = Body::wrap_stream(futures_util::stream::iter(chunks));
    assert!(!body.is_replayable());
    let resp = s.post(httpbin("/post")).data(body).send().await.unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["data"], "first,second,third");
    assert_eq!(body["headers"]["Transfer-Encoding"], "chunked");
    assert!(body["headers"].get("Content-Length").is_none(), "{body}");
}

#[tokio::test]
async fn post_a_file_through_from_reader() {
    // Several reader chunks (64 KiB each) of text.
    let text = numbered_lines(6000);
    assert!(text.len() > 3 * courier::READER_CHUNK_SIZE);
    let file = TempFile::new("reader.txt", text.as_bytes());
    let s = session();
    let reader = tokio::fs::File::open(&file.0).await.unwrap();
    let resp = s
        .post(httpbin("/post"))
        .data(Body::from_reader(reader))
        .send()
        .await
        .unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["headers"]["Transfer-Encoding"], "chunked");
    assert_eq!(body["data"].as_str().map(str::len), Some(text.len()));
    assert_eq!(body["data"], text);
}

#[tokio::test]
async fn multipart_with_a_text_field_and_files() {
    let contents = numbered_lines(100);
    let file = TempFile::new("upload.txt", contents.as_bytes());
    let form = Form::new()
        .text("field", "value")
        .text("other", "ünïcödé")
        .file("upload", &file.0)
        .await
        .unwrap()
        .part(
            "blob",
            Part::bytes(&b"in-memory part"[..]).file_name("blob.bin"),
        );
    let boundary = form.boundary().to_owned();
    let s = session();
    let resp = s
        .post(httpbin("/post"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = json_of(resp).await;
    assert_eq!(body["form"], json!({"field": "value", "other": "ünïcödé"}));
    assert_eq!(
        body["files"],
        json!({"upload": contents, "blob": "in-memory part"})
    );
    assert_eq!(
        body["headers"]["Content-Type"],
        format!("multipart/form-data; boundary={boundary}")
    );
}

#[tokio::test]
async fn put_patch_and_delete_reach_anything() {
    let s = session();
    let url = httpbin("/anything/item");
    for (method, request) in [
        ("PUT", s.put(&url)),
        ("PATCH", s.patch(&url)),
        ("DELETE", s.delete(&url)),
    ] {
        let resp = request
            .text(format!("body of {method}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.method().as_str(), method);
        let body = json_of(resp).await;
        assert_eq!(body["method"], method);
        assert_eq!(body["data"], format!("body of {method}"));
        assert_eq!(body["headers"]["Content-Type"], "text/plain; charset=utf-8");
        assert_eq!(body["url"], url);
    }
}

#[tokio::test]
async fn default_headers_and_skipped_auto_headers() {
    let s = builder()
        .header("x-session", "default")
        .header("x-override", "session")
        .skip_auto_headers(["user-agent"])
        .build()
        .unwrap();
    let resp = s
        .get(httpbin("/headers"))
        .header("x-override", "request")
        .send()
        .await
        .unwrap();
    let headers = json_of(resp).await["headers"].clone();
    assert_eq!(headers["X-Session"], "default");
    assert_eq!(headers["X-Override"], "request", "the request's value wins");
    assert!(headers.get("User-Agent").is_none(), "{headers}");
    assert_eq!(headers["Accept"], "*/*");

    // Skipped per request on a session that sends it.
    let resp = session()
        .get(httpbin("/headers"))
        .skip_auto_headers(["accept-encoding"])
        .send()
        .await
        .unwrap();
    let headers = json_of(resp).await["headers"].clone();
    assert!(headers.get("Accept-Encoding").is_none(), "{headers}");
    assert_eq!(headers["User-Agent"], DEFAULT_USER_AGENT);
}

// ---------------------------------------------------------------------------
// httpbin: redirects

#[tokio::test]
async fn redirect_chain_keeps_the_history() {
    let s = session();
    let resp = s.get(httpbin("/redirect/3")).send().await.unwrap();
    assert_eq!(resp.url().path(), "/get");
    let hops: Vec<(u16, String)> = resp
        .history()
        .iter()
        .map(|r| (r.status().as_u16(), r.url().path().to_owned()))
        .collect();
    assert_eq!(
        hops,
        [
            (302, "/redirect/3".to_owned()),
            (302, "/relative-redirect/2".to_owned()),
            (302, "/relative-redirect/1".to_owned()),
        ]
    );
    let body = json_of(resp).await;
    assert_eq!(body["url"], httpbin("/get"));
}

#[tokio::test]
async fn relative_and_absolute_redirects() {
    let s = session();
    for path in ["/relative-redirect/2", "/absolute-redirect/2"] {
        let resp = s.get(httpbin(path)).send().await.unwrap();
        assert_eq!(resp.history().len(), 2, "{path}");
        assert_eq!(resp.url().as_str(), httpbin("/get"), "{path}");
        assert_ok(&resp);
    }
}

#[tokio::test]
async fn redirects_307_and_308_resend_the_post_body() {
    let s = session();
    for code in ["307", "308"] {
        let resp = s
            .post(httpbin("/redirect-to"))
            .query(&[("url", "/anything/next"), ("status_code", code)])
            .text("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.history().len(), 1);
        assert_eq!(resp.history()[0].status().as_str(), code);
        assert_eq!(resp.method().as_str(), "POST");
        assert_eq!(resp.url().path(), "/anything/next");
        let body = json_of(resp).await;
        assert_eq!(body["method"], "POST", "{code}");
        assert_eq!(body["data"], "payload", "{code}");
        assert_eq!(body["headers"]["Content-Type"], "text/plain; charset=utf-8");
    }
}

#[tokio::test]
async fn a_307_cannot_resend_a_one_shot_stream() {
    let s = session();
    let items = [Ok::<_, std::io::Error>(Bytes::from_static(b"once"))];
    let err = s
        .post(httpbin("/redirect-to"))
        .query(&[("url", "/anything"), ("status_code", "307")])
        .data(Body::wrap_stream(futures_util::stream::iter(items)))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_redirect(), "{err:?}");
    assert!(err.history().is_none(), "not a too-many-redirects error");
}

#[tokio::test]
async fn redirect_303_turns_a_post_into_a_get_without_body() {
    let s = session();
    // 301 and 302 too, as browsers and aiohttp do.
    for code in ["303", "302", "301"] {
        let resp = s
            .post(httpbin("/redirect-to"))
            .query(&[("url", "/anything/next"), ("status_code", code)])
            .form(&[("k", "v")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.history()[0].status().as_str(), code);
        assert_eq!(resp.method().as_str(), "GET", "{code}");
        let body = json_of(resp).await;
        assert_eq!(body["method"], "GET", "{code}");
        assert_eq!(body["data"], "", "{code}");
        assert_eq!(body["form"], json!({}), "{code}");
        assert!(
            body["headers"].get("Content-Type").is_none(),
            "{code}: {body}"
        );
        assert!(
            body["headers"].get("Content-Length").is_none(),
            "{code}: {body}"
        );
    }
}

#[tokio::test]
async fn too_many_redirects_is_an_error_with_the_history() {
    let s = session();
    let err = s
        .get(httpbin("/redirect/5"))
        .max_redirects(2)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_redirect(), "{err:?}");
    assert_eq!(err.status(), Some(courier::http::StatusCode::FOUND));
    let history = err.history().expect("the redirects followed");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].url().path(), "/redirect/5");
    assert_eq!(history[1].url().path(), "/relative-redirect/4");

    // Not following redirects: the 302 is the response.
    let resp = s
        .get(httpbin("/redirect/5"))
        .allow_redirects(false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert!(resp.history().is_empty());
    assert_eq!(
        resp.headers().get("location").unwrap(),
        "/relative-redirect/4"
    );
}

// ---------------------------------------------------------------------------
// httpbin: cookies and auth

#[tokio::test]
async fn cookies_set_by_the_server_go_back_from_the_jar() {
    let s = session();
    let resp = s
        .get(httpbin("/cookies/set"))
        .query(&[("k", "v"), ("other", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().path(), "/cookies");
    let set: Vec<(String, String)> = resp.history()[0]
        .cookies()
        .iter()
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect();
    assert_eq!(
        set,
        [
            ("k".to_owned(), "v".to_owned()),
            ("other".to_owned(), "2".to_owned())
        ]
    );
    // The redirect's target already got them from the jar.
    assert_eq!(
        json_of(resp).await["cookies"],
        json!({"k": "v", "other": "2"})
    );

    let resp = s.get(httpbin("/cookies")).send().await.unwrap();
    assert_eq!(
        json_of(resp).await["cookies"],
        json!({"k": "v", "other": "2"})
    );
    let jar = s.cookie_jar().expect("a jar");
    assert_eq!(jar.len(), 2);

    // Deleted by the server (Max-Age=0, an expiry in the past).
    let resp = s
        .get(httpbin("/cookies/delete"))
        .query(&[("k", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["cookies"], json!({"other": "2"}));
    assert_eq!(jar.len(), 1);

    // Without a jar nothing is kept.
    let s = builder().no_cookies().build().unwrap();
    let resp = s
        .get(httpbin("/cookies/set"))
        .query(&[("k", "v")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.history()[0].cookies().len(), 1, "still reported");
    assert_eq!(json_of(resp).await["cookies"], json!({}));
}

#[tokio::test]
async fn request_cookies_are_sent() {
    let s = session();
    let resp = s
        .get(httpbin("/cookies"))
        .cookies(&[("a", "1"), ("b", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["cookies"], json!({"a": "1", "b": "2"}));
}

#[tokio::test]
async fn basic_auth_right_wrong_and_in_the_url() {
    let s = session();
    let url = httpbin("/basic-auth/user/passwd");

    let resp = s
        .get(&url)
        .auth(BasicAuth::new("user", "passwd").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(resp).await,
        json!({"authenticated": true, "user": "user"})
    );

    let resp = s
        .get(&url)
        .auth(BasicAuth::new("user", "wrong").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let err = resp.error_for_status().unwrap_err();
    assert!(err.is_status());
    assert_eq!(err.status(), Some(courier::http::StatusCode::UNAUTHORIZED));

    let resp = s.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401, "no credentials, no entry");

    let with_userinfo = format!(
        "http://user:passwd@{}/basic-auth/user/passwd",
        peers::httpbin().http
    );
    let resp = s.get(&with_userinfo).send().await.unwrap();
    assert_eq!(resp.url().username(), "", "userinfo is not kept in the URL");
    assert_eq!(resp.url().password(), None);
    assert_eq!(json_of(resp).await["authenticated"], true);

    // Session-wide credentials.
    let s = builder()
        .auth(BasicAuth::new("user", "passwd").unwrap())
        .build()
        .unwrap();
    let resp = s.get(&url).send().await.unwrap();
    assert_eq!(json_of(resp).await["user"], "user");
}

// ---------------------------------------------------------------------------
// httpbin: bodies

#[tokio::test]
async fn gzip_and_deflate_are_decoded() {
    let s = session();
    for (path, key, coding, magic) in [
        ("/gzip", "gzipped", "gzip", 0x1f_u8),
        ("/deflate", "deflated", "deflate", 0x78),
    ] {
        let resp = s.get(httpbin(path)).send().await.unwrap();
        assert_eq!(resp.headers().get("content-encoding").unwrap(), coding);
        let body = json_of(resp).await;
        assert_eq!(body[key], true, "{path}: {body}");

        // Without decoding, the compressed bytes as sent.
        let mut resp = s
            .get(httpbin(path))
            .auto_decompress(false)
            .send()
            .await
            .unwrap();
        let raw = resp.read().await.unwrap();
        assert_eq!(raw.first(), Some(&magic), "{path}");
        assert!(serde_json::from_slice::<Value>(&raw).is_err());
    }
}

#[tokio::test]
async fn stream_read_line_by_line() {
    let s = session();
    let mut resp = s.get(httpbin("/stream/20")).send().await.unwrap();
    assert_ok(&resp);
    assert_eq!(resp.headers().get("transfer-encoding").unwrap(), "chunked");
    let content = resp.content();
    let mut ids = Vec::new();
    loop {
        let line = content.readline().await.unwrap();
        if line.is_empty() {
            break;
        }
        assert_eq!(line.last(), Some(&b'\n'), "{line:?}");
        let value: Value = serde_json::from_slice(&line).unwrap();
        ids.push(value["id"].as_u64().unwrap());
    }
    assert_eq!(ids, (0..20).collect::<Vec<u64>>());
    assert!(content.is_eof());
}

#[tokio::test]
async fn drip_arrives_in_pieces_as_sent() {
    let s = session();
    let started = Instant::now();
    let mut resp = s
        .get(httpbin("/drip"))
        .query(&[("numbytes", "4"), ("duration", "0.8"), ("delay", "0")])
        .send()
        .await
        .unwrap();
    assert_ok(&resp);
    let mut body = Vec::new();
    let mut first_at = None;
    let mut chunks = 0;
    while let Some(chunk) = resp.content().chunk().await.unwrap() {
        first_at.get_or_insert_with(|| started.elapsed());
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    let done_at = started.elapsed();
    assert_eq!(body, b"****");
    assert!(chunks >= 2, "{chunks} chunk(s)");
    let first_at = first_at.unwrap();
    assert!(
        done_at - first_at >= Duration::from_millis(400),
        "the first byte came at {first_at:?}, the end at {done_at:?}: not streamed"
    );
}

#[tokio::test]
async fn range_and_bytes_sizes() {
    let s = session();
    let mut resp = s
        .get(httpbin("/range/100"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.content_length(), Some(10));
    assert_eq!(
        resp.headers().get("content-range").unwrap(),
        "bytes 10-19/100"
    );
    assert_eq!(&resp.read().await.unwrap()[..], b"klmnopqrst");

    for n in [0_usize, 1, 1000, 100_000] {
        let mut resp = s.get(httpbin(&format!("/bytes/{n}"))).send().await.unwrap();
        assert_ok(&resp);
        assert_eq!(resp.content_length(), Some(n as u64));
        assert_eq!(resp.read().await.unwrap().len(), n, "/bytes/{n}");
        // Read again: the same bytes.
        assert_eq!(resp.read().await.unwrap().len(), n);
    }
}

#[tokio::test]
async fn status_418_and_error_for_status() {
    let s = session();
    let mut resp = s.get(httpbin("/status/418")).send().await.unwrap();
    assert_eq!(resp.status(), 418);
    assert!(resp.text().await.unwrap().contains("teapot"));
    let err = resp.error_for_status().unwrap_err();
    assert!(err.is_status() && !err.is_timeout());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(418));
    assert_eq!(err.url().map(|u| u.path()), Some("/status/418"));

    let resp = s.get(httpbin("/status/204")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.error_for_status().is_ok());
}

#[tokio::test]
async fn repeated_response_headers_and_json_content_type_check() {
    let s = session();
    let resp = s
        .get(httpbin("/response-headers"))
        .query(&[("X-Rep", "one"), ("X-Rep", "two")])
        .send()
        .await
        .unwrap();
    let values: Vec<_> = resp.headers().get_all("x-rep").iter().collect();
    assert_eq!(values, ["one", "two"]);
    // As received: original case, in order.
    let raw: Vec<(&str, &[u8])> = resp
        .raw_headers()
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-rep"))
        .collect();
    assert_eq!(raw, [("X-Rep", &b"one"[..]), ("X-Rep", &b"two"[..])]);

    // json() refuses a body that is not declared JSON.
    let mut resp = s.get(httpbin("/html")).send().await.unwrap();
    assert_eq!(resp.content_type(), "text/html");
    let err = resp.json::<Value>().await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
}

#[tokio::test]
async fn utf8_text_is_decoded() {
    let s = session();
    let mut resp = s.get(httpbin("/encoding/utf8")).send().await.unwrap();
    assert_ok(&resp);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    let bytes = resp.read().await.unwrap();
    let text = resp.text().await.unwrap();
    assert_eq!(Some(text.as_str()), std::str::from_utf8(&bytes).ok());
    assert!(
        text.contains("∮ E⋅da = Q,  n → ∞, ∑ f(i) = ∏ g(i)"),
        "{text}"
    );
}

#[tokio::test]
async fn buffered_reads_are_capped_but_streaming_is_not() {
    let s = session();
    // Announced by Content-Length: refused without reading.
    let mut resp = s
        .get(httpbin("/bytes/4096"))
        .max_body_size(1024)
        .send()
        .await
        .unwrap();
    let err = resp.read().await.unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");
    assert_eq!(err.too_large_limit(), Some(1024));

    // Chunked, no length: refused once past the limit.
    let mut resp = s
        .get(httpbin("/stream-bytes/4096"))
        .query(&[("chunk_size", "512")])
        .max_body_size(1024)
        .send()
        .await
        .unwrap();
    assert!(resp.content_length().is_none());
    let err = resp.text().await.unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");

    // Streaming through content() reads it all.
    let mut resp = s
        .get(httpbin("/bytes/4096"))
        .max_body_size(1024)
        .send()
        .await
        .unwrap();
    let mut total = 0;
    while let Some(chunk) = resp.content().chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, 4096);

    // The session-wide limit applies too.
    let s = builder().max_body_size(100).build().unwrap();
    let mut resp = s.get(httpbin("/bytes/101")).send().await.unwrap();
    assert!(resp.read().await.unwrap_err().is_body_too_large());
    let mut resp = s.get(httpbin("/bytes/100")).send().await.unwrap();
    assert_eq!(resp.read().await.unwrap().len(), 100);
}

// ---------------------------------------------------------------------------
// httpbin: timeouts

#[tokio::test]
async fn total_timeout_on_a_slow_response() {
    let s = session();
    let started = Instant::now();
    let err = s
        .get(httpbin("/delay/3"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Total));
    assert_eq!(err.url().map(|u| u.path()), Some("/delay/3"));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(2),
        "{took:?}"
    );

    // The head at once, the body too slowly: the total timeout still ends it.
    let started = Instant::now();
    let mut resp = s
        .get(httpbin("/drip"))
        .query(&[("numbytes", "3"), ("duration", "3"), ("delay", "0")])
        .timeout(Duration::from_millis(600))
        .send()
        .await
        .unwrap();
    assert_ok(&resp);
    let err = resp.read().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Total));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn read_timeout_before_the_head_and_inside_the_body() {
    let s = session();
    let timeouts = Timeouts::none().read(Some(Duration::from_millis(300)));

    let started = Instant::now();
    let err = s
        .get(httpbin("/delay/2"))
        .timeouts(timeouts)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Read));
    assert!(started.elapsed() < Duration::from_millis(1500));

    // The head and a first byte at once, the second a second later.
    let started = Instant::now();
    let mut resp = s
        .get(httpbin("/drip"))
        .query(&[("numbytes", "2"), ("duration", "2"), ("delay", "0")])
        .timeouts(timeouts)
        .send()
        .await
        .unwrap();
    assert_ok(&resp);
    let err = resp.read().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Read));
    assert!(started.elapsed() < Duration::from_millis(1500));
}

// ---------------------------------------------------------------------------
// nginx: keep-alive, TLS, Unix socket

#[tokio::test]
async fn two_sequential_gets_share_one_connection() {
    let nginx = peers::nginx();
    let s = session();
    let url = nginx.url("/hello.txt");
    for round in 0..3 {
        let mut resp = s.get(&url).send().await.unwrap();
        assert_ok(&resp);
        assert_eq!(resp.read().await.unwrap(), nginx.file("hello.txt"));
        let stats = s.connector().stats();
        assert_eq!(
            (stats.open, stats.idle),
            (1, 1),
            "round {round}: one connection, back in the pool"
        );
    }
}

#[tokio::test]
async fn release_keeps_the_connection_and_drop_closes_it() {
    let nginx = peers::nginx();
    let s = session();

    // Unread, then released: drained, back in the pool.
    let mut resp = s.get(nginx.url("/data.json")).send().await.unwrap();
    assert_ok(&resp);
    resp.release().await;
    let stats = s.connector().stats();
    assert_eq!((stats.open, stats.idle), (1, 1), "released");

    // Dropped in the middle of a large body: closed, not pooled.
    let mut resp = s.get(nginx.url("/large.bin")).send().await.unwrap();
    let first = resp.content().read_exactly(1000).await.unwrap();
    assert_eq!(first, nginx.file("large.bin")[..1000]);
    drop(resp);
    let stats = s.connector().stats();
    assert_eq!((stats.open, stats.idle), (0, 0), "dropped unfinished");

    // The session still works.
    let mut resp = s.get(nginx.url("/hello.txt")).send().await.unwrap();
    assert_eq!(resp.read().await.unwrap(), nginx.file("hello.txt"));
}

#[tokio::test]
async fn head_has_no_body_and_keeps_the_connection() {
    let nginx = peers::nginx();
    let s = session();
    let mut resp = s.head(nginx.url("/large.bin")).send().await.unwrap();
    assert_ok(&resp);
    assert_eq!(resp.content_length(), Some(1024 * 1024));
    assert!(resp.read().await.unwrap().is_empty());
    let stats = s.connector().stats();
    assert_eq!((stats.open, stats.idle), (1, 1));

    // gzip'd and chunked for a GET: still no body for HEAD.
    let mut resp = s.head(nginx.url("/text.txt")).send().await.unwrap();
    assert_ok(&resp);
    assert!(resp.read().await.unwrap().is_empty());
    assert_eq!(s.connector().stats().idle, 1);

    // HEAD does not follow redirects unless asked.
    let resp = s.head(nginx.url("/redirect/302")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let resp = s
        .head(nginx.url("/redirect/302"))
        .allow_redirects(true)
        .send()
        .await
        .unwrap();
    assert_ok(&resp);
    assert_eq!(resp.url().path(), "/hello.txt");
    assert_eq!(
        resp.content_length(),
        Some(nginx.file("hello.txt").len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_session() {
    let nginx = peers::nginx();
    let s = session();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            let url = nginx.url(if i % 2 == 0 {
                "/hello.txt"
            } else {
                "/data.json"
            });
            tokio::spawn(async move {
                let mut resp = s.get(&url).send().await.unwrap();
                (url, resp.read().await.unwrap())
            })
        })
        .collect();
    for task in tasks {
        let (url, body) = task.await.unwrap();
        let name = url.rsplit('/').next().unwrap();
        assert_eq!(body, nginx.file(name), "{url}");
    }
    let stats = s.connector().stats();
    assert!(stats.open >= 1 && stats.open <= 8, "{stats:?}");
    assert_eq!(stats.open, stats.idle, "all back in the pool: {stats:?}");
}

#[tokio::test]
async fn expect_continue_with_nginx() {
    let nginx = peers::nginx();
    let s = session();
    let started = Instant::now();
    let mut resp = s
        .post(nginx.url("/echo"))
        .text("0123456789")
        .expect100(true)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.lines().any(|l| l == "content-length=10"), "{text}");
    assert!(
        started.elapsed() < courier::EXPECT_CONTINUE_TIMEOUT,
        "nginx answers 100 at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_closed_session_refuses_requests() {
    let nginx = peers::nginx();
    let s = session();
    let mut resp = s.get(nginx.url("/hello.txt")).send().await.unwrap();
    resp.read().await.unwrap();
    s.close().await;
    assert!(s.closed());
    let err = s.get(nginx.url("/hello.txt")).send().await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert_eq!(s.connector().stats().open, 0, "idle connections closed");
}

#[tokio::test]
async fn streaming_readers_over_nginx() {
    use tokio::io::AsyncReadExt as _;

    let nginx = peers::nginx();
    let s = session();

    // readline through gzip and chunked framing.
    let text = nginx.file("text.txt");
    let mut resp = s.get(nginx.url("/text.txt")).send().await.unwrap();
    assert_eq!(resp.headers().get("content-encoding").unwrap(), "gzip");
    let mut lines = Vec::new();
    loop {
        let line = resp.content().readline().await.unwrap();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let expected: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), expected.len());
    assert!(lines.iter().zip(&expected).all(|(a, b)| a == b));

    // iter_chunked: fixed-size pieces, the last one shorter.
    let large = nginx.file("large.bin");
    let mut resp = s.get(nginx.url("/large.bin")).send().await.unwrap();
    let mut pieces = Vec::new();
    let mut chunks = resp.content().iter_chunked(100_000);
    while let Some(piece) = chunks.next().await {
        pieces.push(piece.unwrap());
    }
    assert!(
        pieces[..pieces.len() - 1]
            .iter()
            .all(|p| p.len() == 100_000)
    );
    assert_eq!(pieces.last().unwrap().len(), large.len() % 100_000);
    assert_eq!(pieces.concat(), large);

    // AsyncRead.
    let resp = s.get(nginx.url("/large.bin")).send().await.unwrap();
    let mut content = resp.into_content();
    let mut body = Vec::new();
    content.read_to_end(&mut body).await.unwrap();
    assert_eq!(body, large);

    // The buffered-read cap counts decoded bytes: 32 KiB of gzip that
    // inflates to 364 KiB is over a 100 000-byte cap.
    let mut resp = s
        .get(nginx.url("/text.txt"))
        .max_body_size(100_000)
        .send()
        .await
        .unwrap();
    let err = resp.read().await.unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");
}

#[tokio::test]
async fn a_redirect_loop_stops_at_max_redirects() {
    let nginx = peers::nginx();
    let err = session()
        .get(nginx.url("/redirect/loop"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_redirect(), "{err:?}");
    assert_eq!(
        err.history().map(<[_]>::len),
        Some(courier::DEFAULT_MAX_REDIRECTS)
    );
}

#[tokio::test]
async fn nginx_over_tls_with_the_test_ca() {
    let nginx = peers::nginx();
    let s = session();
    for host in ["localhost", "127.0.0.1"] {
        let base = format!("https://{host}:{}", nginx.https.port());
        let mut resp = s.get(format!("{base}/hello.txt")).send().await.unwrap();
        assert_ok(&resp);
        assert_eq!(
            resp.read().await.unwrap(),
            nginx.file("hello.txt"),
            "{host}"
        );

        let mut resp = s.get(format!("{base}/large.bin")).send().await.unwrap();
        assert_eq!(resp.content_length(), Some(1024 * 1024));
        assert_eq!(
            resp.read().await.unwrap(),
            nginx.file("large.bin"),
            "{host}"
        );

        // gzip'd and chunked by nginx, decoded here.
        let mut resp = s.get(format!("{base}/text.txt")).send().await.unwrap();
        assert_eq!(resp.headers().get("content-encoding").unwrap(), "gzip");
        assert_eq!(resp.read().await.unwrap(), nginx.file("text.txt"), "{host}");
    }
    // One pooled connection per origin.
    assert_eq!(s.connector().stats().open, 2);
}

#[tokio::test]
async fn a_certificate_for_another_host_is_a_tls_error() {
    let nginx = peers::nginx();
    let s = session();
    let url = format!("https://127.0.0.1:{}/hello.txt", nginx.badtls.port());
    let err = s.get(&url).send().await.unwrap_err();
    assert!(err.is_tls(), "{err:?}");
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));
}

#[tokio::test]
async fn nginx_over_its_unix_socket() {
    let nginx = peers::nginx();
    let s = ClientSession::builder()
        .connector(UnixConnector::new(&nginx.unix, PoolConfig::default()))
        .timeout(LIMIT)
        .build()
        .unwrap();
    for _ in 0..2 {
        let mut resp = s.get("http://localhost/hello.txt").send().await.unwrap();
        assert_ok(&resp);
        assert_eq!(resp.read().await.unwrap(), nginx.file("hello.txt"));
    }
    assert_eq!(s.connector().stats().open, 1, "one kept-alive connection");

    // The Host comes from the URL (nginx's /echo prints it).
    let mut resp = s.get("http://unix-host.test/echo").send().await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.lines().any(|l| l == "host=unix-host.test"), "{text}");
}

// ---------------------------------------------------------------------------
// Proxies

/// A session through `proxy`, trusting the test CA, with `auth` if given.
fn via(proxy: &Proxy, auth: Option<BasicAuth>) -> ClientSession {
    let builder = tcp().proxy(&proxy.url());
    let builder = match auth {
        Some(auth) => builder.proxy_auth(auth),
        None => builder,
    };
    ClientSession::builder()
        .connector(builder.build().unwrap())
        .timeout(LIMIT)
        .build()
        .unwrap()
}

fn proxy_creds(proxy: &Proxy) -> BasicAuth {
    let (user, pass) = proxy.auth.as_ref().expect("an auth proxy");
    BasicAuth::new(user.as_str(), pass.as_str()).unwrap()
}

fn nginx_https(path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", peers::nginx().https.port())
}

#[tokio::test]
async fn plain_http_through_tinyproxy_and_squid() {
    let nginx = peers::nginx();
    for (name, proxy) in [("tinyproxy", peers::tinyproxy()), ("squid", peers::squid())] {
        let s = via(&proxy, None);
        let mut resp = s.get(nginx.url("/hello.txt")).send().await.unwrap();
        assert_ok(&resp);
        if name == "squid" {
            let via = resp.headers().get("via").expect("squid adds Via");
            assert!(via.to_str().unwrap().contains("squid"), "{via:?}");
        }
        assert_eq!(
            resp.read().await.unwrap(),
            nginx.file("hello.txt"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn redirects_and_origin_auth_through_squid() {
    let s = via(&peers::squid(), None);
    let resp = s.get(httpbin("/redirect/2")).send().await.unwrap();
    assert_eq!(resp.history().len(), 2);
    assert_eq!(resp.url().as_str(), httpbin("/get"));
    assert!(resp.headers().contains_key("via"));
    assert_eq!(json_of(resp).await["url"], httpbin("/get"));
    let resp = s
        .get(httpbin("/basic-auth/u/p"))
        .auth(BasicAuth::new("u", "p").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["authenticated"], true);
    assert_eq!(s.connector().stats().open, 1, "squid keeps the connection");
}

#[tokio::test]
async fn https_through_a_squid_tunnel() {
    let nginx = peers::nginx();
    let s = via(&peers::squid(), None);
    for _ in 0..2 {
        let mut resp = s.get(nginx_https("/hello.txt")).send().await.unwrap();
        assert_ok(&resp);
        assert!(
            resp.headers().get("via").is_none(),
            "a tunnel, not a forwarded request"
        );
        assert_eq!(resp.read().await.unwrap(), nginx.file("hello.txt"));
    }
    assert_eq!(s.connector().stats().open, 1, "the tunnel is reused");
}

#[tokio::test]
async fn squid_proxy_auth() {
    let nginx = peers::nginx();
    let proxy = peers::squid_auth();

    // Without credentials: plain http gets the proxy's 407 as the response...
    let s = via(&proxy, None);
    let resp = s.get(nginx.url("/hello.txt")).send().await.unwrap();
    assert_eq!(resp.status(), 407);
    assert!(resp.headers().contains_key("proxy-authenticate"));
    // ... and CONNECT is refused with an error carrying the status.
    let err = s.get(nginx_https("/hello.txt")).send().await.unwrap_err();
    assert!(err.is_proxy(), "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(407));

    // With them, both work.
    let s = via(&proxy, Some(proxy_creds(&proxy)));
    for url in [nginx.url("/hello.txt"), nginx_https("/hello.txt")] {
        let mut resp = s.get(&url).send().await.unwrap();
        assert_ok(&resp);
        assert_eq!(resp.read().await.unwrap(), nginx.file("hello.txt"), "{url}");
    }
}

/// tinyproxy closes the client connection after each response without
/// saying so: every request after the first meets a connection that is
/// dead or about to be, and must still succeed (a new connection, or the
/// one retry).
#[tokio::test]
async fn sequential_requests_through_tinyproxy_survive_its_closes() {
    let nginx = peers::nginx();
    let s = via(&peers::tinyproxy(), None);
    for round in 0..5 {
        let mut resp = s
            .get(nginx.url("/hello.txt"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_ok(&resp);
        assert_eq!(resp.read().await.unwrap(), nginx.file("hello.txt"));
    }
    // And a POST with a replayable body.
    for round in 0..3 {
        let mut resp = s
            .post(nginx.url("/echo"))
            .text("x")
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST round {round}: {e:?}"));
        let text = resp.text().await.unwrap();
        assert!(text.contains("method=POST"), "{text}");
    }
}
