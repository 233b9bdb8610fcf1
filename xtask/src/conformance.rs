//! `cargo xtask conformance`: replays public test vectors against the codec
//! and the cookie jar.
//!
//! Five suites: three replay vectors from `../shared/conformance/` (see
//! that directory's README), one compares courier with aiohttp, one runs
//! courier's WebSocket client against real servers:
//!
//! * `http1`: the HTTP/1.1 response vectors (llhttp and http-parser cases).
//!   Every case is fed whole, split in two at every offset, and byte by
//!   byte, each time followed by EOF, through the same [`Exchange`] a client
//!   uses; all feeds must agree with the expectation.
//! * `cookies`: the http-state cases (`cookies.json`): Set-Cookie headers
//!   stored in a fresh `courier_client::cookies::CookieJar`, then the Cookie
//!   header of the next request compared byte for byte.
//! * `cookie-dates`: the RFC 6265 §5.1.1 cookie-date cases
//!   (`cookie-dates.json`) against `courier_client::cookies::parse_cookie_date`.
//! * `differential`: the scenarios of `xtask/scenarios/differential.json`
//!   through the aiohttp client and through courier against the real peers,
//!   results compared ([`crate::differential`]; it starts the peers if no
//!   `COURIER_PEER_*` variables say where they are).
//! * `websocket`: WebSocket interop cases against the Python websockets
//!   echo server (ws, wss, Unix socket, through tinyproxy) and the aiohttp
//!   server's `/ws`, with and without permessage-deflate
//!   ([`crate::ws_interop`]; no vector file, peers as for `differential`).
//!
//! Each vector suite's outcome is compared with its committed expected-results file
//! in `xtask/expected/`: any difference (a regression, or a case that starts
//! passing) fails the run until the file is re-blessed with `--bless`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use courier_client::cookies::{CookieJar, parse_cookie_date};
use courier_proto::http::{Method, Version};
use courier_proto::{
    BodyMode, CloseReason, Exchange, Limits, RecvHeadResult, Request, ResponseEvent, ResponseHead,
    SendHeadResult, state,
};
use serde::Deserialize;

use crate::util::{self, Result};
use crate::{differential, ws_interop};

/// The expected-results file of the HTTP/1.1 suite, relative to the
/// workspace root.
const EXPECTED: &str = "xtask/expected/http1-responses.json";

/// The suites: name, vector file in `../shared/conformance/` (for
/// `differential`: the scenario file, relative to the workspace root;
/// `websocket` has none).
const SUITES: [(&str, &str); 5] = [
    ("http1", "http1-responses.json"),
    ("cookies", "cookies.json"),
    ("cookie-dates", "cookie-dates.json"),
    ("differential", differential::SCENARIOS),
    ("websocket", ""),
];

/// Runs the command line
/// `cargo xtask conformance [--suite NAME]... [--vectors PATH] [--bless]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut vectors = None;
    let mut bless = false;
    let mut suites = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vectors" => {
                let path = args.next().ok_or("--vectors needs a path")?;
                vectors = Some(PathBuf::from(path));
            }
            "--suite" => {
                let name = args.next().ok_or("--suite needs a name")?;
                if !SUITES.iter().any(|(s, _)| s == name) {
                    return Err(format!(
                        "conformance: unknown suite `{name}` (one of: {})",
                        SUITES.map(|(s, _)| s).join(", ")
                    ));
                }
                suites.push(name.clone());
            }
            "--bless" => bless = true,
            other => return Err(format!("conformance: unknown option `{other}`")),
        }
    }
    if let Some(path) = vectors {
        // Another vector file: for one suite (the HTTP/1.1 one by default).
        let suite = match suites.as_slice() {
            [] => "http1".to_owned(),
            [one] => one.clone(),
            _ => return Err("--vectors needs exactly one --suite".into()),
        };
        if suite == "websocket" {
            return Err("the websocket suite has no vector file".into());
        }
        return run_suite(&suite, &path, bless, None);
    }
    if suites.is_empty() {
        return all(bless, None);
    }
    run_suites(suites.iter().map(String::as_str), bless, None)
}

/// Runs every suite on the shared vectors (what `cargo xtask test` runs,
/// passing the environment of the peers it started as `peers_env`).
pub fn all(bless: bool, peers_env: Option<&[(String, String)]>) -> Result<()> {
    run_suites(SUITES.iter().map(|(s, _)| *s), bless, peers_env)
}

/// Runs the named suites on the shared vectors; all run even when one
/// fails.
fn run_suites<'a>(
    suites: impl Iterator<Item = &'a str>,
    bless: bool,
    peers_env: Option<&[(String, String)]>,
) -> Result<()> {
    let dir = util::shared_dir()?.join("conformance");
    let mut errors = Vec::new();
    for suite in suites {
        let file = SUITES
            .iter()
            .find(|(s, _)| *s == suite)
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("unknown suite `{suite}`"))?;
        let path = if suite == "differential" {
            util::workspace_root().join(file)
        } else {
            dir.join(file)
        };
        if let Err(e) = run_suite(suite, &path, bless, peers_env) {
            errors.push(format!("{suite}: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn run_suite(
    suite: &str,
    vectors: &Path,
    bless: bool,
    peers_env: Option<&[(String, String)]>,
) -> Result<()> {
    match suite {
        "http1" => http1(vectors, bless),
        "cookies" => cookies(vectors, bless),
        "cookie-dates" => cookie_dates(vectors, bless),
        "differential" => differential::run(vectors, bless, peers_env),
        // Nothing to bless: its known bugs and skips
        // (xtask/expected/websocket.json) are written by hand.
        "websocket" => ws_interop::run(peers_env),
        other => Err(format!("unknown suite `{other}`")),
    }
}

/// Replays the HTTP/1.1 response vectors in `path` and compares with the
/// expected-results file.
pub fn http1(path: &Path, bless: bool) -> Result<()> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let cases: Vec<Case> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let expected_path = util::workspace_root().join(EXPECTED);
    let expected: BTreeMap<String, Verdict> = match fs::read_to_string(&expected_path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", expected_path.display()))?
        }
        Err(_) if bless => BTreeMap::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", expected_path.display())),
    };

    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    let mut feeds = 0usize;
    let mut seen = BTreeMap::<String, usize>::new();
    for case in &cases {
        // Two inputs of one source test share a location: number them.
        let base = case.id();
        let n = seen.entry(base.clone()).or_default();
        *n += 1;
        let id = if *n == 1 { base } else { format!("{base}#{n}") };
        let allowed = expected.get(&id);
        let (verdict, detail, n) = judge(case, allowed)?;
        feeds += n;
        if let Some(detail) = detail {
            failures.push((id.clone(), case.name.clone(), detail));
        }
        results.insert(id, verdict);
    }

    // Compare with the committed expectations.
    let mut changes = Vec::new();
    for (id, verdict) in &results {
        match expected.get(id) {
            Some(old) if old == verdict => {}
            Some(old) => changes.push(format!("{id}: expected {old}, got {verdict}")),
            None => changes.push(format!("{id}: new case, got {verdict}")),
        }
    }
    for id in expected.keys().filter(|id| !results.contains_key(*id)) {
        changes.push(format!("{id}: in the expected file but not in the vectors"));
    }

    print_table(&cases, &results, feeds);
    for (id, name, detail) in &failures {
        eprintln!("FAIL {id} ({name}):\n{detail}");
    }
    if bless {
        let mut text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        text.push('\n');
        fs::write(&expected_path, text)
            .map_err(|e| format!("cannot write {}: {e}", expected_path.display()))?;
        eprintln!("wrote {}", expected_path.display());
        return Ok(());
    }
    if !changes.is_empty() {
        let mut msg = format!(
            "{} case(s) differ from {EXPECTED} (run with --bless after checking):",
            changes.len()
        );
        for c in &changes {
            let _ = write!(msg, "\n  {c}");
        }
        return Err(msg);
    }
    Ok(())
}

fn print_table(cases: &[Case], results: &BTreeMap<String, Verdict>, feeds: usize) {
    let count = |pred: &dyn Fn(&Verdict) -> bool| results.values().filter(|v| pred(v)).count();
    let passed = count(&|v| matches!(v, Verdict::Pass));
    let failed = count(&|v| matches!(v, Verdict::Fail));
    let skipped = count(&|v| matches!(v, Verdict::Skip { .. }));
    println!(
        "http1-responses conformance ({} cases, {feeds} feeds)",
        cases.len()
    );
    println!("  {:<28}{:>6}", "cases", cases.len());
    println!("  {:<28}{:>6}", "passed", passed);
    println!("  {:<28}{:>6}", "failed", failed);
    println!("  {:<28}{:>6}", "skipped (by tolerance)", skipped);
    for (id, verdict) in results {
        if let Verdict::Skip { tolerance, reason } = verdict {
            println!("    {id}: {tolerance}: {reason}");
        }
    }
}

/// A case's outcome as recorded in the expected-results file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// Behaves as the vector expects.
    Pass,
    /// Does not.
    Fail,
    /// Needs a lenient behaviour (`tolerance`) that the codec deliberately
    /// refuses; the case must then fail in the codec, for `reason`.
    Skip { tolerance: String, reason: String },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Pass => f.write_str("pass"),
            Verdict::Fail => f.write_str("fail"),
            Verdict::Skip { tolerance, .. } => write!(f, "skip ({tolerance})"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    source: String,
    source_file: String,
    source_line: u64,
    raw_b64: String,
    request_method: String,
    #[serde(default)]
    request_headers: Vec<(String, String)>,
    #[serde(default)]
    tolerances: Vec<String>,
    expect: Expect,
}

impl Case {
    /// A stable identifier: source repository, file and line.
    fn id(&self) -> String {
        let repo = self.source.split('@').next().unwrap_or(&self.source);
        format!("{repo}:{}:{}", self.source_file, self.source_line)
    }
}

#[derive(Debug, Deserialize)]
struct Expect {
    ok: bool,
    #[serde(flatten)]
    response: ExpectedResponse,
    #[serde(default)]
    informational: Vec<ExpectedHead>,
    #[serde(default)]
    next_responses: Vec<ExpectedResponse>,
    #[serde(default)]
    trailing_b64: Option<String>,
    error_phase: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExpectedHead {
    status: Option<u16>,
    reason: Option<String>,
    version: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct ExpectedResponse {
    #[serde(flatten)]
    head: ExpectedHead,
    body_b64: Option<String>,
    chunked: Option<bool>,
    body_until_eof: Option<bool>,
    should_keep_alive: Option<bool>,
    upgrade: Option<bool>,
}

/// What the codec made of a case's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    informational: Vec<Head>,
    /// Complete responses in order (the first is the case's response).
    responses: Vec<Response>,
    /// The head of a response whose body then failed, if any.
    failed_head: Option<Head>,
    /// The error that ended the first response, with the phase it hit.
    error: Option<(Phase, String)>,
    /// Bytes after the last complete response.
    trailing: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    reason: Vec<u8>,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    fn of(head: &ResponseHead) -> Head {
        Head {
            status: head.status().as_u16(),
            reason: head.reason().to_vec(),
            version: head.version(),
            headers: head
                .fields()
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    head: Head,
    body: Vec<u8>,
    mode: BodyMode,
    close: Option<CloseReason>,
}

/// Runs every feed of `case` and returns its verdict, a failure description
/// (when the verdict is not what the expected file allows), and the number
/// of feeds.
fn judge(case: &Case, allowed: Option<&Verdict>) -> Result<(Verdict, Option<String>, usize)> {
    let raw = B64
        .decode(&case.raw_b64)
        .map_err(|e| format!("{}: raw_b64: {e}", case.name))?;
    let mut problems = Vec::new();
    let mut feeds = 0;
    for pieces in splits(&raw) {
        feeds += 1;
        let outcome = replay(case, &pieces)?;
        if let Err(why) = check(case, &outcome) {
            problems.push(format!("  feed {}: {why}", describe_split(&pieces)));
            if problems.len() >= 3 {
                break;
            }
        }
    }
    let passed = problems.is_empty();
    Ok(match allowed {
        Some(Verdict::Skip { tolerance, reason }) if case.tolerances.contains(tolerance) => {
            if passed {
                // The codec now accepts what it was meant to refuse.
                (
                    Verdict::Pass,
                    Some("  passes, but is expected to be refused".into()),
                    feeds,
                )
            } else {
                let verdict = Verdict::Skip {
                    tolerance: tolerance.clone(),
                    reason: reason.clone(),
                };
                (verdict, None, feeds)
            }
        }
        _ if passed => (Verdict::Pass, None, feeds),
        _ => (Verdict::Fail, Some(problems.join("\n")), feeds),
    })
}

/// The ways to cut `raw` into pieces: whole, in two at every offset, and
/// byte by byte.
fn splits(raw: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![vec![raw]];
    for at in 1..raw.len() {
        all.push(vec![&raw[..at], &raw[at..]]);
    }
    if raw.len() > 2 {
        all.push(raw.chunks(1).collect());
    }
    all
}

fn describe_split(pieces: &[&[u8]]) -> String {
    match pieces {
        [_] => "whole".into(),
        [a, _] => format!("split at {}", a.len()),
        _ => "byte by byte".into(),
    }
}

/// Where a replay stands between feeds.
enum Stage {
    Head(Exchange<state::RecvHead>),
    Body(Exchange<state::RecvBody>, Head, Vec<u8>),
    /// No further response is read from these bytes.
    Stopped,
}

/// Plays the client side: a request went out, the server sends `pieces`,
/// then closes the connection.
fn replay(case: &Case, pieces: &[&[u8]]) -> Result<Outcome> {
    let mut outcome = Outcome {
        informational: Vec::new(),
        responses: Vec::new(),
        failed_head: None,
        error: None,
        trailing: Vec::new(),
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut at = 0; // bytes of `buf` used up
    let mut msg_start = 0; // where the response being read began
    let mut stage = Stage::Head(new_exchange(case)?);
    for piece in pieces {
        buf.extend_from_slice(piece);
        stage = drive(
            case,
            stage,
            &buf,
            &mut at,
            &mut msg_start,
            &mut outcome,
            false,
        )?;
    }
    stage = drive(
        case,
        stage,
        &buf,
        &mut at,
        &mut msg_start,
        &mut outcome,
        true,
    )?;
    drop(stage);
    outcome.trailing = buf[msg_start..].to_vec();
    Ok(outcome)
}

/// Advances as far as the buffered bytes allow; with `eof`, the server has
/// closed the connection.
fn drive(
    case: &Case,
    mut stage: Stage,
    buf: &[u8],
    at: &mut usize,
    msg_start: &mut usize,
    outcome: &mut Outcome,
    eof: bool,
) -> Result<Stage> {
    loop {
        stage = match stage {
            Stage::Stopped => return Ok(Stage::Stopped),
            Stage::Head(mut exchange) => match exchange.try_response(&buf[*at..]) {
                Err(e) => {
                    if outcome.responses.is_empty() {
                        outcome.error = Some((Phase::Head, e.to_string()));
                    }
                    Stage::Stopped
                }
                Ok((used, Some(ResponseEvent::Informational(head)))) => {
                    *at += used;
                    if outcome.responses.is_empty() {
                        outcome.informational.push(Head::of(&head));
                    }
                    Stage::Head(exchange)
                }
                Ok((used, Some(ResponseEvent::Final(head)))) => {
                    *at += used;
                    let head = Head::of(&head);
                    match exchange.proceed().map_err(|e| e.to_string())? {
                        RecvHeadResult::RecvBody(body) => Stage::Body(body, head, Vec::new()),
                        RecvHeadResult::Done(done) => {
                            finish(case, done, head, Vec::new(), at, msg_start, outcome)?
                        }
                    }
                }
                Ok((_, None)) if eof => {
                    if outcome.responses.is_empty() {
                        let e = exchange.eof(&buf[*at..]);
                        outcome.error = Some((Phase::Head, e.to_string()));
                    }
                    Stage::Stopped
                }
                Ok((_, None)) => return Ok(Stage::Head(exchange)),
            },
            Stage::Body(mut exchange, head, mut body) => match exchange.read(&buf[*at..]) {
                Err(e) => {
                    if outcome.responses.is_empty() {
                        outcome.failed_head = Some(head);
                        outcome.error = Some((Phase::Body, e.to_string()));
                    }
                    Stage::Stopped
                }
                Ok(step) => {
                    body.extend_from_slice(&buf[*at..][step.data.clone()]);
                    *at += step.consumed;
                    if exchange.is_done() {
                        let done = exchange.proceed().map_err(|e| e.to_string())?;
                        finish(case, done, head, body, at, msg_start, outcome)?
                    } else if step.consumed > 0 {
                        Stage::Body(exchange, head, body)
                    } else if eof {
                        match exchange.eof() {
                            Ok(()) => {
                                let done = exchange.proceed().map_err(|e| e.to_string())?;
                                finish(case, done, head, body, at, msg_start, outcome)?
                            }
                            Err(e) => {
                                if outcome.responses.is_empty() {
                                    outcome.failed_head = Some(head);
                                    outcome.error = Some((Phase::Body, e.to_string()));
                                }
                                Stage::Stopped
                            }
                        }
                    } else {
                        return Ok(Stage::Body(exchange, head, body));
                    }
                }
            },
        };
    }
}

/// Records a complete response and decides whether another may follow on
/// the same connection (only when this one left it reusable).
fn finish(
    case: &Case,
    done: Exchange<state::Done>,
    head: Head,
    body: Vec<u8>,
    at: &mut usize,
    msg_start: &mut usize,
    outcome: &mut Outcome,
) -> Result<Stage> {
    let close = done.close_reason();
    outcome.responses.push(Response {
        head,
        body,
        mode: done.body_mode(),
        close,
    });
    *msg_start = *at;
    Ok(match close {
        None | Some(CloseReason::UnexpectedData) => Stage::Head(new_exchange(case)?),
        Some(_) => Stage::Stopped,
    })
}

/// A fresh exchange in RecvHead, after sending the case's request.
fn new_exchange(case: &Case) -> Result<Exchange<state::RecvHead>> {
    let method = Method::from_bytes(case.request_method.as_bytes())
        .map_err(|e| format!("{}: method: {e}", case.name))?;
    let mut request = Request::new(method, "http://example.com/".parse().map_err(|_| "uri")?);
    for (name, value) in &case.request_headers {
        request = request.header(name, value);
    }
    let mut exchange = Exchange::new(request, Limits::default())
        .proceed()
        .map_err(|e| format!("{}: encoding the request: {e}", case.name))?;
    let mut sink = Vec::new();
    exchange.write(&mut sink);
    match exchange.proceed().map_err(|e| e.to_string())? {
        SendHeadResult::RecvHead(exchange) => Ok(exchange),
        _ => Err(format!(
            "{}: a request without a body must go to RecvHead",
            case.name
        )),
    }
}

/// Compares an outcome with the case's expectation; `Err` says what differs.
fn check(case: &Case, outcome: &Outcome) -> std::result::Result<(), String> {
    let expect = &case.expect;
    check_informational(&expect.informational, &outcome.informational)?;
    if !expect.ok {
        let Some((phase, error)) = &outcome.error else {
            return Err(format!(
                "expected an error, got {} response(s)",
                outcome.responses.len()
            ));
        };
        let want = match expect.error_phase.as_deref() {
            Some("head") => Phase::Head,
            Some("body") => Phase::Body,
            other => return Err(format!("unknown error_phase {other:?}")),
        };
        if *phase != want {
            return Err(format!(
                "expected a {want:?} error, got a {phase:?} error: {error}"
            ));
        }
        if want == Phase::Body {
            let head = outcome
                .failed_head
                .as_ref()
                .ok_or("no head before body error")?;
            check_head(&expect.response.head, head)?;
        }
        return Ok(());
    }
    if let Some((phase, error)) = &outcome.error {
        return Err(format!("unexpected {phase:?} error: {error}"));
    }
    let mut responses = outcome.responses.iter();
    let first = responses.next().ok_or("no response")?;
    check_response(&expect.response, first).map_err(|e| format!("response: {e}"))?;
    for (i, want) in expect.next_responses.iter().enumerate() {
        let got = responses
            .next()
            .ok_or_else(|| format!("next response {i} missing"))?;
        check_response(want, got).map_err(|e| format!("next response {i}: {e}"))?;
    }
    if let Some(extra) = responses.next() {
        return Err(format!("unexpected extra response {:?}", extra.head.status));
    }
    let trailing = match &expect.trailing_b64 {
        Some(b64) => B64.decode(b64).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    if outcome.trailing != trailing {
        return Err(format!(
            "trailing bytes {:?}, expected {:?}",
            String::from_utf8_lossy(&outcome.trailing),
            String::from_utf8_lossy(&trailing)
        ));
    }
    Ok(())
}

fn check_informational(want: &[ExpectedHead], got: &[Head]) -> std::result::Result<(), String> {
    if want.len() != got.len() {
        return Err(format!(
            "{} informational responses, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (w, g) in want.iter().zip(got) {
        check_head(w, g).map_err(|e| format!("informational: {e}"))?;
    }
    Ok(())
}

fn check_head(want: &ExpectedHead, got: &Head) -> std::result::Result<(), String> {
    if let Some(status) = want.status
        && status != got.status
    {
        return Err(format!("status {}, expected {status}", got.status));
    }
    if let Some(reason) = &want.reason
        && reason.as_bytes() != got.reason
    {
        return Err(format!(
            "reason {:?}, expected {reason:?}",
            String::from_utf8_lossy(&got.reason)
        ));
    }
    if let Some(version) = &want.version {
        let got_version = match got.version {
            Version::HTTP_10 => "1.0",
            Version::HTTP_11 => "1.1",
            _ => "?",
        };
        if version != got_version {
            return Err(format!("version {got_version}, expected {version}"));
        }
    }
    let got_headers: Vec<(&str, &[u8])> = got
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let want_headers: Vec<(&str, &[u8])> = want
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    if got_headers != want_headers {
        return Err(format!(
            "headers {:?}, expected {:?}",
            got.headers, want.headers
        ));
    }
    Ok(())
}

fn check_response(want: &ExpectedResponse, got: &Response) -> std::result::Result<(), String> {
    check_head(&want.head, &got.head)?;
    if let Some(b64) = &want.body_b64 {
        let body = B64.decode(b64).map_err(|e| e.to_string())?;
        if body != got.body {
            return Err(format!(
                "body {:?}, expected {:?}",
                String::from_utf8_lossy(&got.body),
                String::from_utf8_lossy(&body)
            ));
        }
    }
    let flag = |name: &str, want: Option<bool>, got: bool| match want {
        Some(w) if w != got => Err(format!("{name} is {got}, expected {w}")),
        _ => Ok(()),
    };
    flag("chunked", want.chunked, got.mode == BodyMode::Chunked)?;
    flag(
        "body_until_eof",
        want.body_until_eof,
        got.mode == BodyMode::UntilEof,
    )?;
    flag(
        "upgrade",
        want.upgrade,
        got.close == Some(CloseReason::Upgrade),
    )?;
    // The RFC 9112 §9.3 verdict; bytes that happened to follow the response
    // (a pipelined next response in these vectors) do not change it.
    let keep_alive = matches!(got.close, None | Some(CloseReason::UnexpectedData));
    flag("should_keep_alive", want.should_keep_alive, keep_alive)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Cookie suites

/// The expected-results file of the cookie suite.
const EXPECTED_COOKIES: &str = "xtask/expected/cookies.json";

/// The expected-results file of the cookie-date suite.
const EXPECTED_COOKIE_DATES: &str = "xtask/expected/cookie-dates.json";

/// The clock injected into the cookie jar: 2019-01-01T00:00:00Z, before
/// every case's `clock_before` (checked), so dated cases replay the same
/// on any day.
const COOKIE_CLOCK: &str = "2019-01-01T00:00:00Z";

/// A cookie case's outcome as recorded in its expected-results file:
/// `"pass"`, `{"skip": {"reason": ...}}` or `{"fail": {"reason": ...}}`.
/// Every case that does not pass carries its reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CaseVerdict {
    /// Behaves as the vector expects.
    Pass,
    /// Deliberately does not behave as the vector expects, for `reason`
    /// (written by hand); the runner then requires the case not to pass.
    Skip { reason: String },
    /// Does not behave as the vector expects: a bug; `reason` says what
    /// differs (written by `--bless`).
    Fail { reason: String },
}

impl CaseVerdict {
    fn kind(&self) -> &'static str {
        match self {
            CaseVerdict::Pass => "pass",
            CaseVerdict::Skip { .. } => "skip",
            CaseVerdict::Fail { .. } => "fail",
        }
    }

    /// The verdict of a case that passed (`None`) or failed (`Some(why)`),
    /// given what the expected-results file allows.
    fn judge(failure: Option<String>, allowed: Option<&CaseVerdict>) -> CaseVerdict {
        match (failure, allowed) {
            (None, _) => CaseVerdict::Pass,
            (Some(_), Some(CaseVerdict::Skip { reason })) => CaseVerdict::Skip {
                reason: reason.clone(),
            },
            (Some(reason), _) => CaseVerdict::Fail { reason },
        }
    }
}

fn read_expected(rel: &str, bless: bool) -> Result<BTreeMap<String, CaseVerdict>> {
    let path = util::workspace_root().join(rel);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(_) if bless => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Prints the table, then compares `results` with the expected-results
/// file `rel` (or rewrites it with `bless`).
fn settle(
    title: &str,
    rel: &str,
    results: &BTreeMap<String, CaseVerdict>,
    expected: &BTreeMap<String, CaseVerdict>,
    bless: bool,
) -> Result<()> {
    let count = |kind: &str| results.values().filter(|v| v.kind() == kind).count();
    println!("{title} conformance ({} cases)", results.len());
    println!("  {:<28}{:>6}", "cases", results.len());
    println!("  {:<28}{:>6}", "passed", count("pass"));
    println!("  {:<28}{:>6}", "failed", count("fail"));
    println!("  {:<28}{:>6}", "skipped", count("skip"));
    for (id, verdict) in results {
        match verdict {
            CaseVerdict::Pass => {}
            CaseVerdict::Skip { reason } => println!("    skip {id}: {reason}"),
            CaseVerdict::Fail { reason } => eprintln!("FAIL {id}: {reason}"),
        }
    }

    let mut changes = Vec::new();
    for (id, verdict) in results {
        match expected.get(id) {
            Some(old) if old.kind() == verdict.kind() => {}
            Some(old) => changes.push(format!(
                "{id}: expected {}, got {}",
                old.kind(),
                verdict.kind()
            )),
            None => changes.push(format!("{id}: new case, got {}", verdict.kind())),
        }
    }
    for id in expected.keys().filter(|id| !results.contains_key(*id)) {
        changes.push(format!("{id}: in the expected file but not in the vectors"));
    }
    if bless {
        let path = util::workspace_root().join(rel);
        let mut text = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
        text.push('\n');
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    if !changes.is_empty() {
        let mut msg = format!(
            "{} case(s) differ from {rel} (run with --bless after checking):",
            changes.len()
        );
        for c in &changes {
            let _ = write!(msg, "\n  {c}");
        }
        return Err(msg);
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct CookieCase {
    name: String,
    set_url: String,
    set_cookie_headers: Vec<String>,
    request_url: String,
    /// `null` (or `""`) = no Cookie header.
    expected_cookie_header: Option<String>,
    #[serde(default)]
    clock_before: Option<String>,
    #[serde(default)]
    rfc6265bis_differs: bool,
    #[serde(default)]
    requires_public_suffix_list: bool,
}

/// Replays the cookie cases in `path` and compares with the expected-results
/// file.
///
/// Each case starts from an empty jar with the default policy. Cases with a
/// `clock_before` run at [`COOKIE_CLOCK`] (injected with the `_at`
/// methods); the others run twice, through the plain methods (the system
/// clock, as the client calls them) and at [`COOKIE_CLOCK`], and both must
/// pass.
pub fn cookies(path: &Path, bless: bool) -> Result<()> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let cases: Vec<CookieCase> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let expected = read_expected(EXPECTED_COOKIES, bless)?;
    let clock = parse_rfc3339(COOKIE_CLOCK).ok_or("bad COOKIE_CLOCK")?;

    let mut results = BTreeMap::new();
    let (mut bis, mut psl) = ((0, 0), (0, 0));
    for case in &cases {
        let failure = match &case.clock_before {
            Some(before) => {
                let before = parse_rfc3339(before)
                    .ok_or_else(|| format!("{}: bad clock_before {before:?}", case.name))?;
                if before <= clock {
                    return Err(format!(
                        "{}: clock_before {:?} is not after the injected clock {COOKIE_CLOCK}",
                        case.name, case.clock_before
                    ));
                }
                replay_cookies(case, Some(clock))?
            }
            None => match replay_cookies(case, None)? {
                None => replay_cookies(case, Some(clock))?
                    .map(|why| format!("at the injected clock {COOKIE_CLOCK}: {why}")),
                Some(why) => Some(format!("with the system clock: {why}")),
            },
        };
        let passed = failure.is_none();
        if case.rfc6265bis_differs {
            bis.0 += usize::from(passed);
            bis.1 += 1;
        }
        if case.requires_public_suffix_list {
            psl.0 += usize::from(passed);
            psl.1 += 1;
        }
        if results.contains_key(&case.name) {
            return Err(format!("duplicate cookie case name {}", case.name));
        }
        let verdict = CaseVerdict::judge(failure, expected.get(&case.name));
        results.insert(case.name.clone(), verdict);
    }
    settle("cookies", EXPECTED_COOKIES, &results, &expected, bless)?;
    println!(
        "  (rfc6265bis_differs: {}/{} pass as RFC 6265; requires_public_suffix_list: {}/{} pass)",
        bis.0, bis.1, psl.0, psl.1
    );
    Ok(())
}

/// Plays one cookie case at `clock` (`None`: the plain methods and the
/// system clock); `Some(why)` when the Cookie header is not the expected one.
fn replay_cookies(case: &CookieCase, clock: Option<SystemTime>) -> Result<Option<String>> {
    let parse = |u: &str| url::Url::parse(u).map_err(|e| format!("{}: {u}: {e}", case.name));
    let (set_url, request_url) = (parse(&case.set_url)?, parse(&case.request_url)?);
    let jar = CookieJar::new();
    let headers = case.set_cookie_headers.iter().map(|h| h.as_bytes());
    let header = match clock {
        Some(now) => {
            jar.store_response_cookies_at(&set_url, headers, now);
            jar.cookie_header_at(&request_url, now)
        }
        None => {
            jar.store_response_cookies(&set_url, headers);
            jar.cookie_header(&request_url)
        }
    };
    let got = header.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let want = case
        .expected_cookie_header
        .clone()
        .filter(|h| !h.is_empty());
    Ok((got != want).then(|| format!("Cookie header {got:?}, expected {want:?}")))
}

#[derive(Debug, Deserialize)]
struct DateCase {
    input: String,
    /// An IMF-fixdate, or `null` when the algorithm must fail.
    expected: Option<String>,
    source_file: String,
    index: u64,
}

/// Replays the cookie-date cases in `path` and compares with the
/// expected-results file. A case's id is its source file's name and index.
pub fn cookie_dates(path: &Path, bless: bool) -> Result<()> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let cases: Vec<DateCase> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let expected = read_expected(EXPECTED_COOKIE_DATES, bless)?;
    let mut results = BTreeMap::new();
    for case in &cases {
        let file = Path::new(&case.source_file).file_name().map_or_else(
            || case.source_file.clone(),
            |f| f.to_string_lossy().into_owned(),
        );
        let id = format!("{file}#{}", case.index);
        let got = parse_cookie_date(&case.input).map(imf_fixdate);
        let failure = (got != case.expected).then(|| {
            format!(
                "{:?} parsed to {got:?}, expected {:?}",
                case.input, case.expected
            )
        });
        if results.contains_key(&id) {
            return Err(format!("duplicate cookie-date case {id}"));
        }
        results.insert(id.clone(), CaseVerdict::judge(failure, expected.get(&id)));
    }
    settle(
        "cookie-dates",
        EXPECTED_COOKIE_DATES,
        &results,
        &expected,
        bless,
    )
}

/// `2019-08-07T08:04:19Z` (the only form the vectors use).
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
fn imf_fixdate(t: SystemTime) -> String {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = usize::try_from(days.rem_euclid(7)).map_or("?", |i| WEEKDAYS[i]);
    let month = usize::try_from(m - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("?");
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
