//! The `differential` conformance suite: the same scenarios through the
//! aiohttp client and through courier, against the same real peers, and
//! the observable results compared.
//!
//! * The scenarios are `xtask/scenarios/differential.json`, each in the
//!   format of `../shared/peers/aiohttp_oracle.py` (a `session` and
//!   `requests`), plus `name`, `category` and `about`, which the oracle
//!   ignores. `{placeholders}` (`{httpbin}`, `{nginx_https}`,
//!   `{squid_auth}`, `{ca_file}`, `{unused_port}`...: [`placeholders`])
//!   are replaced with the running peers' addresses before a scenario runs.
//! * aiohttp: `bash ../shared/peers/run-oracle.sh FILE`, one process per
//!   scenario, a few at a time ([`ORACLE_WORKERS`]), while courier runs
//!   the scenarios one after the other on this thread ([`courier_side`]),
//!   through the public API of the `courier` facade, into the oracle's
//!   JSON shape.
//! * Both outputs are normalised ([`view`]) and compared field by field;
//!   the differing fields of a scenario (`/0/body/headers/Cookie`,
//!   `/1/cookies`...) make its verdict, checked against
//!   `xtask/expected/differential.json`: `"pass"`, or
//!   `{"differs": {"fields", "reason"}}` for a deliberate difference (the
//!   reason cites the RFC), or `{"bug": {"fields", "reason"}}` for a courier
//!   bug not fixed yet. Any other outcome (a new difference, a difference
//!   gone, another set of fields) fails the run until re-blessed.
//!
//! Both raw outputs of every scenario are kept in
//! `<target>/differential/<name>.{scenario,aiohttp,courier}.json`.
//!
//! The peers: the `COURIER_PEER_*` variables given by `cargo xtask test`,
//! else those of the environment (`eval "$(cargo xtask peers start)"`), else
//! the suite starts its own set and stops it afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use courier::cookies::{CookieJar, IpHosts};
use courier::http::Method;
use courier::{BasicAuth, ClientSession, TcpConnector, TimeoutPhase, UnixConnector};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::peers;
use crate::util::{self, Result};

/// The scenario file, relative to the workspace root.
pub const SCENARIOS: &str = "xtask/scenarios/differential.json";

/// The expected-results file, relative to the workspace root.
const EXPECTED: &str = "xtask/expected/differential.json";

/// Oracle processes run at once (each is mostly Python start-up, ~0.3 s of
/// CPU); courier runs beside them on this thread.
const ORACLE_WORKERS: usize = 3;

/// A scenario that takes longer than this on the courier side is reported
/// as hung (the longest scenario waits 1 s for a timeout).
const SCENARIO_DEADLINE: Duration = Duration::from_secs(60);

/// The total timeout of a request when its scenario names none: the
/// oracle's default.
const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

/// The peer variables the scenarios need.
const REQUIRED_VARS: &[&str] = &[
    "COURIER_PEERS_CA",
    "COURIER_PEER_HTTPBIN_HTTP",
    "COURIER_PEER_HTTPBIN_UNIX",
    "COURIER_PEER_AIOHTTP_HTTP",
    "COURIER_PEER_NGINX_HTTP",
    "COURIER_PEER_NGINX_HTTPS",
    "COURIER_PEER_NGINX_BADTLS",
    "COURIER_PEER_NGINX_UNIX",
    "COURIER_PEER_TINYPROXY_HTTP",
    "COURIER_PEER_TINYPROXY_AUTH_HTTP",
    "COURIER_PEER_SQUID_HTTP",
    "COURIER_PEER_SQUID_AUTH_HTTP",
];

/// A scenario's outcome as recorded in the expected-results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// Every compared field is the same.
    Pass,
    /// `fields` differ on purpose, for `reason` (written by hand, with the
    /// RFC that courier follows).
    Differs { fields: Vec<String>, reason: String },
    /// `fields` differ because of a courier bug, described in `reason`;
    /// `--bless` records new differences this way until reviewed.
    Bug { fields: Vec<String>, reason: String },
}

impl Verdict {
    fn kind(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Differs { .. } => "differs",
            Verdict::Bug { .. } => "bug",
        }
    }

    fn fields(&self) -> &[String] {
        match self {
            Verdict::Pass => &[],
            Verdict::Differs { fields, .. } | Verdict::Bug { fields, .. } => fields,
        }
    }

    /// The verdict for `fields`, keeping the kind and reason of `old` when
    /// there still is a difference.
    fn bless(fields: Vec<String>, old: Option<&Verdict>) -> Verdict {
        if fields.is_empty() {
            return Verdict::Pass;
        }
        match old {
            Some(Verdict::Differs { reason, .. }) => Verdict::Differs {
                fields,
                reason: reason.clone(),
            },
            Some(Verdict::Bug { reason, .. }) => Verdict::Bug {
                fields,
                reason: reason.clone(),
            },
            _ => Verdict::Bug {
                fields,
                reason: "new difference, not reviewed yet".into(),
            },
        }
    }
}

/// One scenario of the file, with its placeholders replaced.
struct Scenario {
    name: String,
    category: String,
    /// What goes to the oracle (and to the courier runner).
    body: Value,
}

/// Runs the suite on the scenario file `path`; `peers_env` is the
/// environment of running peers, if the caller has them.
pub fn run(path: &Path, bless: bool, peers_env: Option<&[(String, String)]>) -> Result<()> {
    let started = Instant::now();
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw = file["scenarios"]
        .as_array()
        .ok_or_else(|| format!("{}: no \"scenarios\" array", path.display()))?;
    let expected = read_expected(bless)?;

    // The peers: given, in the environment, or started here.
    let (env, own_peers) = peers::env_or_start(peers_env, REQUIRED_VARS, "differential")?;
    let result = run_with_peers(raw, &env, &expected, bless, started);
    if let Some(peers) = own_peers {
        peers.stop()?;
    }
    result
}

fn run_with_peers(
    raw: &[Value],
    env: &BTreeMap<String, String>,
    expected: &BTreeMap<String, Verdict>,
    bless: bool,
    started: Instant,
) -> Result<()> {
    let values = placeholders(env)?;
    let mut scenarios = Vec::new();
    let mut names = BTreeSet::new();
    for scn in raw {
        let name = scn["name"]
            .as_str()
            .ok_or("a scenario without a \"name\"")?
            .to_owned();
        if !names.insert(name.clone()) {
            return Err(format!("scenario {name} twice"));
        }
        let category = scn["category"].as_str().unwrap_or("other").to_owned();
        let body = substitute(scn, &values).map_err(|e| format!("{name}: {e}"))?;
        scenarios.push(Scenario {
            name,
            category,
            body,
        });
    }

    let out = out_dir();
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for scn in &scenarios {
        let file = out.join(format!("{}.scenario.json", scn.name));
        write_json(&file, &scn.body)?;
    }
    let oracle = util::shared_dir()?.join("peers/run-oracle.sh");
    prepare_oracle(&oracle)?;

    // aiohttp in worker threads, courier here, at the same time.
    let next = AtomicUsize::new(0);
    let oracle_results: Mutex<Vec<Option<Result<Value>>>> =
        Mutex::new((0..scenarios.len()).map(|_| None).collect());
    let mut courier_results = Vec::with_capacity(scenarios.len());
    let mut courier_time = Duration::ZERO;
    thread::scope(|s| -> Result<()> {
        for _ in 0..ORACLE_WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scn) = scenarios.get(i) else { break };
                    let file = out.join(format!("{}.scenario.json", scn.name));
                    let result = run_oracle(&oracle, &file);
                    oracle_results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
        let timer = Instant::now();
        for scn in &scenarios {
            let output = runtime.block_on(async {
                match tokio::time::timeout(SCENARIO_DEADLINE, courier_side(&scn.body)).await {
                    Ok(output) => output,
                    Err(_) => json!({"results": [{
                        "ok": false,
                        "error_type": "xtask: scenario hung",
                        "error": format!("no result after {SCENARIO_DEADLINE:?}"),
                    }]}),
                }
            });
            courier_results.push(output);
        }
        courier_time = timer.elapsed();
        Ok(())
    })?;
    let oracle_results = oracle_results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());

    // Compare.
    let mut results = BTreeMap::new();
    let mut details = BTreeMap::new();
    for ((scn, oracle), courier) in scenarios.iter().zip(oracle_results).zip(&courier_results) {
        let oracle = oracle.ok_or_else(|| format!("{}: the oracle did not run", scn.name))??;
        write_json(&out.join(format!("{}.aiohttp.json", scn.name)), &oracle)?;
        write_json(&out.join(format!("{}.courier.json", scn.name)), courier)?;
        let diffs = compare(&scn.body, &oracle, courier);
        let fields: Vec<String> = diffs.iter().map(|d| d.path.clone()).collect();
        details.insert(scn.name.clone(), diffs);
        results.insert(
            scn.name.clone(),
            Verdict::bless(fields, expected.get(&scn.name)),
        );
    }

    print_table(&scenarios, &results);
    println!(
        "  ({} in all; courier side {})",
        util::secs(started.elapsed()),
        util::secs(courier_time)
    );
    settle(&results, expected, &details, bless, &out)
}

/// The expected verdicts (empty when blessing a missing file).
fn read_expected(bless: bool) -> Result<BTreeMap<String, Verdict>> {
    let path = util::workspace_root().join(EXPECTED);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(_) if bless => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// `<target>/differential`: `CARGO_TARGET_DIR` (relative to the workspace)
/// or `target/`.
fn out_dir() -> PathBuf {
    let root = util::workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    target.join("differential")
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    text.push('\n');
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Placeholders

/// The value of every `{placeholder}` the scenarios may use, from the
/// peers' variables.
fn placeholders(env: &BTreeMap<String, String>) -> Result<BTreeMap<&'static str, String>> {
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .ok_or_else(|| format!("{name} is not set: the peers are not all running"))
    };
    let port = |name: &str| -> Result<String> {
        let addr = var(name)?;
        addr.rsplit_once(':')
            .map(|(_, p)| p.to_owned())
            .ok_or_else(|| format!("{name}={addr} has no port"))
    };
    let httpbin = var("COURIER_PEER_HTTPBIN_HTTP")?;
    let mut values = BTreeMap::new();
    values.insert("httpbin", format!("http://{httpbin}"));
    values.insert("httpbin_host", httpbin);
    values.insert("httpbin_port", port("COURIER_PEER_HTTPBIN_HTTP")?);
    values.insert("httpbin_unix", var("COURIER_PEER_HTTPBIN_UNIX")?);
    values.insert(
        "aiohttp",
        format!("http://{}", var("COURIER_PEER_AIOHTTP_HTTP")?),
    );
    values.insert(
        "nginx",
        format!("http://{}", var("COURIER_PEER_NGINX_HTTP")?),
    );
    values.insert("nginx_port", port("COURIER_PEER_NGINX_HTTP")?);
    values.insert(
        "nginx_https",
        format!("https://{}", var("COURIER_PEER_NGINX_HTTPS")?),
    );
    values.insert("nginx_https_port", port("COURIER_PEER_NGINX_HTTPS")?);
    values.insert(
        "nginx_badtls",
        format!("https://{}", var("COURIER_PEER_NGINX_BADTLS")?),
    );
    values.insert("nginx_unix", var("COURIER_PEER_NGINX_UNIX")?);
    for (key, name) in [
        ("tinyproxy", "COURIER_PEER_TINYPROXY_HTTP"),
        ("tinyproxy_auth", "COURIER_PEER_TINYPROXY_AUTH_HTTP"),
        ("squid", "COURIER_PEER_SQUID_HTTP"),
        ("squid_auth", "COURIER_PEER_SQUID_AUTH_HTTP"),
    ] {
        values.insert(key, format!("http://{}", var(name)?));
    }
    values.insert("ca_file", var("COURIER_PEERS_CA")?);
    values.insert("unused_port", unused_port()?.to_string());
    Ok(values)
}

/// A loopback port nothing listens on (free now; nothing here binds it).
fn unused_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no local address: {e}"))
}

/// `value` with every `{name}` of `values` replaced in its strings; a
/// `{lowercase_name}` that is not a placeholder is an error (a typo).
fn substitute(value: &Value, values: &BTreeMap<&'static str, String>) -> Result<Value> {
    Ok(match value {
        Value::String(s) => Value::String(substitute_str(s, values)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, values))
                .collect::<Result<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, values)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

fn substitute_str(s: &str, values: &BTreeMap<&'static str, String>) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            let value = values
                .get(name)
                .ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
            out.push_str(value);
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------
// The aiohttp side

/// Makes sure the oracle's venv exists before oracles start in parallel
/// (`ensure_venv` of the peers scripts: idempotent, installs aiohttp on a
/// fresh machine).
fn prepare_oracle(oracle: &Path) -> Result<()> {
    let dir = oracle.parent().ok_or("run-oracle.sh has no directory")?;
    util::run(
        Command::new("bash")
            .args([
                "-c",
                r#"source "$1/common.sh" && ensure_venv aiohttp"#,
                "bash",
            ])
            .arg(dir)
            .stdin(Stdio::null()),
    )
}

/// Runs one scenario file through the oracle and parses its JSON.
fn run_oracle(oracle: &Path, scenario: &Path) -> Result<Value> {
    let out = Command::new("bash")
        .arg(oracle)
        .arg(scenario)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", oracle.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            oracle.display(),
            scenario.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("oracle output for {}: {e}", scenario.display()))
}

// ---------------------------------------------------------------------------
// The courier side

/// Where a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `send()`: connecting, sending, waiting for the head, redirects.
    Send,
    /// `read()`: the body, after the head arrived.
    Body,
}

/// Why a request failed: a courier error (and when), or a scenario the
/// runner could not set up.
enum Failure {
    Courier(courier::Error, Phase),
    Setup(String),
}

/// The session-wide settings of a scenario (the oracle's `session`).
struct Settings {
    unix_socket: Option<String>,
    ca_pem: Option<Vec<u8>>,
    verify_ssl: bool,
    headers: Vec<(String, String)>,
    auto_decompress: bool,
}

/// The sessions of one scenario: one direct (or Unix socket) session, and
/// one per proxy, all sharing one cookie jar, as the oracle's single
/// `ClientSession` does (courier sets proxies on the connector, aiohttp
/// per request).
struct Sessions {
    settings: Settings,
    jar: Arc<CookieJar>,
    direct: ClientSession,
    proxied: HashMap<String, ClientSession>,
}

/// Runs a scenario through courier; the output has the oracle's shape.
async fn courier_side(scn: &Value) -> Value {
    let requests: Vec<&Value> = match scn["requests"].as_array() {
        Some(list) => list.iter().collect(),
        None if scn.get("url").is_some() => vec![scn],
        None => Vec::new(),
    };
    let mut sessions = match Sessions::new(&scn["session"], requests.first().copied()) {
        Ok(s) => s,
        Err(e) => {
            let failed = setup_error(&e);
            return json!({"results": requests.iter().map(|_| failed.clone()).collect::<Vec<_>>()});
        }
    };
    let mut results = Vec::new();
    for request in requests {
        let result = match sessions.request(request).await {
            Ok(v) => v,
            Err(Failure::Courier(e, phase)) => json!({
                "ok": false,
                "error_type": aiohttp_error_type(&e, phase, proxy_of(request)),
                "error": e.to_string(),
            }),
            Err(Failure::Setup(e)) => setup_error(&e),
        };
        results.push(result);
    }
    sessions.close().await;
    json!({"results": results})
}

fn setup_error(e: &str) -> Value {
    json!({"ok": false, "error_type": "xtask: setup failed", "error": e})
}

fn str_pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|list| {
            list.iter()
                .filter_map(|pair| {
                    Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn proxy_of(request: &Value) -> Option<&str> {
    request["proxy"].as_str().filter(|p| !p.is_empty())
}

impl Sessions {
    fn new(session: &Value, first: Option<&Value>) -> std::result::Result<Sessions, String> {
        let ca_pem = match session["ca_file"].as_str() {
            Some(path) => {
                Some(fs::read(path).map_err(|e| format!("cannot read ca_file {path}: {e}"))?)
            }
            None => None,
        };
        let settings = Settings {
            unix_socket: session["unix_socket"].as_str().map(str::to_owned),
            ca_pem,
            verify_ssl: session["verify_ssl"].as_bool().unwrap_or(true),
            headers: str_pairs(&session["headers"]),
            auto_decompress: session["auto_decompress"].as_bool().unwrap_or(true),
        };
        // aiohttp's CookieJar(unsafe=True) (the oracle's default) takes
        // cookies from IP hosts; unsafe=False is IpHosts::Reject.
        let jar = if session["unsafe_cookies"].as_bool().unwrap_or(true) {
            CookieJar::new()
        } else {
            CookieJar::builder().ip_hosts(IpHosts::Reject).build()
        };
        let jar = Arc::new(jar);
        let mut builder = session_builder(&settings, &jar);
        // aiohttp's session `cookies=` are not scoped to a host; courier's
        // are (host-only), so they go to the first request's URL.
        if let Some(cookies) = session["cookies"].as_object() {
            let url = first
                .and_then(|r| courier_url(r))
                .ok_or("session cookies need a request URL")?;
            for (name, value) in cookies {
                builder = builder.cookie(url, name, value.as_str().unwrap_or_default());
            }
        }
        let direct = match &settings.unix_socket {
            Some(path) => builder.connector(UnixConnector::new(
                path.as_str(),
                courier_pool::PoolConfig::default(),
            )),
            None => builder.connector(tcp_builder(&settings).build().map_err(|e| e.to_string())?),
        }
        .build()
        .map_err(|e| e.to_string())?;
        Ok(Sessions {
            settings,
            jar,
            direct,
            proxied: HashMap::new(),
        })
    }

    /// The session for a request: the direct one, or one through its proxy.
    fn session_for(&mut self, request: &Value) -> std::result::Result<ClientSession, Failure> {
        let Some(proxy) = proxy_of(request) else {
            return Ok(self.direct.clone());
        };
        let auth = str_pairs(&json!([request["proxy_auth"]])).pop();
        let key = format!("{proxy} {auth:?}");
        if let Some(session) = self.proxied.get(&key) {
            return Ok(session.clone());
        }
        let mut builder = tcp_builder(&self.settings).proxy(proxy);
        if let Some((user, pass)) = &auth {
            builder = builder.proxy_auth(
                BasicAuth::new(user.as_str(), pass.as_str())
                    .map_err(|e| Failure::Setup(e.to_string()))?,
            );
        }
        let connector = builder.build().map_err(|e| Failure::Setup(e.to_string()))?;
        let session = session_builder(&self.settings, &self.jar)
            .connector(connector)
            .build()
            .map_err(|e| Failure::Setup(e.to_string()))?;
        self.proxied.insert(key, session.clone());
        Ok(session)
    }

    /// One request of the scenario, read to the end, as the oracle reports it.
    async fn request(&mut self, r: &Value) -> std::result::Result<Value, Failure> {
        let session = self.session_for(r)?;
        let url = courier_url(r).ok_or_else(|| Failure::Setup("a request without a url".into()))?;
        let method = r["method"].as_str().unwrap_or("GET");
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| Failure::Setup(format!("method {method:?}: {e}")))?;
        let hint = &r["courier"];
        let mut rb = session.request(method, url);
        let params = str_pairs(&hint["params"]);
        if !params.is_empty() {
            rb = rb.query(&params);
        }
        // A body hint builds the body (and its Content-Type) with courier's
        // API; the oracle's spelling of it is then not used.
        let body_hint = ["form", "json", "text"]
            .iter()
            .any(|k| hint.get(*k).is_some());
        for (name, value) in str_pairs(&r["headers"]) {
            if body_hint && name.eq_ignore_ascii_case("content-type") {
                continue;
            }
            rb = rb.header(name.as_str(), value.as_str());
        }
        if let Some(form) = hint.get("form") {
            rb = rb.form(&str_pairs(form));
        } else if let Some(value) = hint.get("json") {
            rb = rb.json(value);
        } else if let Some(text) = hint["text"].as_str() {
            rb = rb.text(text);
        } else if let Some(b64) = r["body_b64"].as_str() {
            let bytes = B64
                .decode(b64)
                .map_err(|e| Failure::Setup(format!("body_b64: {e}")))?;
            rb = rb.data(bytes);
        } else if let Some(text) = r["body_text"].as_str() {
            rb = rb.data(text.as_bytes().to_vec());
        }
        if let Some(size) = hint["chunked"].as_u64() {
            rb = rb.chunked(usize::try_from(size).unwrap_or(usize::MAX));
        }
        if let Some((user, pass)) = str_pairs(&json!([r["auth"]])).pop() {
            let auth = BasicAuth::new(user, pass).map_err(|e| Failure::Setup(e.to_string()))?;
            rb = rb.auth(auth);
        }
        let max_redirects = r["max_redirects"].as_u64().unwrap_or(10);
        let timeout = r["timeout"].as_f64().unwrap_or(DEFAULT_TIMEOUT_SECS);
        rb = rb
            .allow_redirects(r["allow_redirects"].as_bool().unwrap_or(true))
            .max_redirects(usize::try_from(max_redirects).unwrap_or(usize::MAX))
            .timeout(Duration::from_secs_f64(timeout));

        let mut resp = rb
            .send()
            .await
            .map_err(|e| Failure::Courier(e, Phase::Send))?;
        let body = resp
            .read()
            .await
            .map_err(|e| Failure::Courier(e, Phase::Body))?;
        let history: Vec<Value> = resp
            .history()
            .iter()
            .map(|h| {
                json!({
                    "status": h.status().as_u16(),
                    "url": h.url().as_str(),
                    "headers": raw_headers(h),
                })
            })
            .collect();
        let version = match resp.version() {
            courier::http::Version::HTTP_10 => "1.0",
            courier::http::Version::HTTP_11 => "1.1",
            _ => "?",
        };
        Ok(json!({
            "ok": true,
            "status": resp.status().as_u16(),
            "reason": resp.reason(),
            "version": version,
            "method": resp.method().as_str(),
            "url": resp.url().as_str(),
            "headers": raw_headers(&resp),
            "body_b64": B64.encode(&body),
            "body_len": body.len(),
            "history": history,
            "cookies": self.jar(),
        }))
    }

    /// The jar as the oracle lists it.
    fn jar(&self) -> Value {
        self.jar
            .cookies()
            .iter()
            .map(|c| {
                json!({
                    "name": c.name(),
                    "value": c.value(),
                    "domain": c.domain().unwrap_or_default(),
                    "path": c.path().unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn close(self) {
        self.direct.close().await;
        for session in self.proxied.values() {
            session.close().await;
        }
    }
}

/// The URL courier requests: the hint's, else the oracle's.
fn courier_url(request: &Value) -> Option<&str> {
    request["courier"]["url"]
        .as_str()
        .or_else(|| request["url"].as_str())
}

fn session_builder(settings: &Settings, jar: &Arc<CookieJar>) -> courier::ClientSessionBuilder {
    let mut builder = ClientSession::builder()
        .cookie_jar(Arc::clone(jar))
        .auto_decompress(settings.auto_decompress);
    for (name, value) in &settings.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
}

fn tcp_builder(settings: &Settings) -> courier_pool::TcpConnectorBuilder {
    let mut builder = TcpConnector::builder().verify_ssl(settings.verify_ssl);
    if let Some(pem) = &settings.ca_pem {
        builder = builder.add_root_certificates_pem(pem);
    }
    builder
}

/// Response headers in order as received, decoded as Latin-1 (as the
/// oracle does).
fn raw_headers(resp: &courier::ClientResponse) -> Value {
    resp.raw_headers()
        .iter()
        .map(|(name, value)| json!([name, latin1(value)]))
        .collect()
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The aiohttp exception a courier error corresponds to, from the error's
/// predicates (and, for TLS and connect errors, the connector error under
/// it).
///
/// `phase` separates what aiohttp separates by phase: a connection closed
/// before the head is `ServerDisconnectedError`, a body cut short
/// `ClientPayloadError` (courier: `is_disconnected` only before the head,
/// `is_payload` for the body).
fn aiohttp_error_type(e: &courier::Error, phase: Phase, proxy: Option<&str>) -> &'static str {
    let pool = pool_error(e);
    if e.is_timeout() {
        // aiohttp: the total timeout is asyncio's TimeoutError; sock_connect
        // and sock_read are ServerTimeoutError subclasses.
        return match e.timeout_phase() {
            Some(TimeoutPhase::Connect) => "ConnectionTimeoutError",
            Some(TimeoutPhase::Read) => "SocketTimeoutError",
            _ => "TimeoutError",
        };
    }
    if e.is_tls() {
        return match pool {
            Some(courier_pool::Error::FingerprintMismatch { .. }) => "ServerFingerprintMismatch",
            Some(courier_pool::Error::Tls {
                kind: courier_pool::TlsErrorKind::Handshake,
                ..
            }) => "ClientConnectorSSLError",
            _ => "ClientConnectorCertificateError",
        };
    }
    if e.is_proxy() {
        return if e.status().is_some() {
            "ClientHttpProxyError"
        } else {
            "ClientProxyConnectionError"
        };
    }
    if e.is_redirect() {
        if e.history().is_some() {
            return "TooManyRedirects";
        }
        return if e.to_string().contains("unsupported scheme") {
            "NonHttpUrlRedirectClientError"
        } else {
            "InvalidUrlRedirectClientError"
        };
    }
    if e.is_disconnected() && phase == Phase::Send {
        return "ServerDisconnectedError";
    }
    if e.is_payload() || e.is_decode() {
        return "ClientPayloadError";
    }
    if e.is_connect() {
        return match pool {
            Some(courier_pool::Error::ConnectUnix { .. }) => "UnixClientConnectorError",
            // A connect error naming the proxy's address: aiohttp's
            // ClientProxyConnectionError.
            Some(courier_pool::Error::Connect { addr, .. })
                if proxy.is_some_and(|p| p.ends_with(&format!("//{addr}"))) =>
            {
                "ClientProxyConnectionError"
            }
            _ => "ClientConnectorError",
        };
    }
    if e.is_io() {
        return "ClientOSError";
    }
    if e.is_status() {
        return "ClientResponseError";
    }
    if e.is_closed() {
        return "RuntimeError";
    }
    if e.is_builder() {
        return "InvalidUrlClientError";
    }
    "ClientError"
}

/// The connector error under a courier error, if any.
fn pool_error(e: &courier::Error) -> Option<&courier_pool::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(pool) = err.downcast_ref::<courier_pool::Error>() {
            return Some(pool);
        }
        source = err.source();
    }
    None
}

// ---------------------------------------------------------------------------
// Normalisation and comparison

/// Response headers never compared: `Date` changes from one response to
/// the next.
const VOLATILE_HEADERS: &[&str] = &["date"];

/// Request headers whose echo is not compared unless the scenario sets
/// them: each client sends its own `User-Agent`, and aiohttp offers `br`
/// in `Accept-Encoding` (courier does not decode brotli).
const OWN_REQUEST_HEADERS: &[&str] = &["user-agent", "accept-encoding"];

/// One difference: where, what aiohttp gave, what courier gave.
struct Diff {
    path: String,
    oracle: Value,
    courier: Value,
}

/// The differing fields of a scenario's two outputs.
fn compare(scn: &Value, oracle: &Value, courier: &Value) -> Vec<Diff> {
    let requests: Vec<&Value> = match scn["requests"].as_array() {
        Some(list) => list.iter().collect(),
        None => vec![scn],
    };
    let empty = Vec::new();
    let a = oracle["results"].as_array().unwrap_or(&empty);
    let b = courier["results"].as_array().unwrap_or(&empty);
    let mut diffs = Vec::new();
    if a.len() != b.len() {
        diffs.push(Diff {
            path: "/results".into(),
            oracle: json!(a.len()),
            courier: json!(b.len()),
        });
        return diffs;
    }
    for (i, ((ra, rb), req)) in a.iter().zip(b).zip(requests).enumerate() {
        let own = own_headers(&scn["session"], req);
        let (va, vb) = (view(ra, &own), view(rb, &own));
        if va["ok"] != vb["ok"] {
            // A response on one side, an error on the other: one field.
            diffs.push(Diff {
                path: format!("/{i}"),
                oracle: va,
                courier: vb,
            });
        } else {
            diff_values(&format!("/{i}"), &va, &vb, &mut diffs);
        }
    }
    diffs
}

/// The request headers of `OWN_REQUEST_HEADERS` the scenario does not set
/// (lower case): their echo is left out.
fn own_headers(session: &Value, request: &Value) -> Vec<&'static str> {
    let set: Vec<String> = str_pairs(&session["headers"])
        .into_iter()
        .chain(str_pairs(&request["headers"]))
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    OWN_REQUEST_HEADERS
        .iter()
        .copied()
        .filter(|h| !set.iter().any(|s| s == h))
        .collect()
}

/// What is compared of one result.
///
/// * errors: `ok` and `error_type` (not the messages);
/// * responses: status, reason, version, method, final URL, headers
///   (without [`VOLATILE_HEADERS`]), body, body length, history (status,
///   URL, headers of each), and the cookie jar (sorted: the order a jar
///   lists its cookies in is not behaviour);
/// * a body that parses as JSON (or JSON lines) is compared as JSON, so a
///   difference shows where it is;
/// * a body that echoes the request (JSON with `headers`: httpbin, the
///   aiohttp peer's `/echo`, whose header list is compared as one text, in
///   order, names lower-cased; nginx's `/echo` text) leaves out the echo of the client's own
///   headers ([`own_headers`]); its `Content-Length` and `body_len` are then
///   not compared, since they count those bytes.
///
/// `request_headers` of the oracle is not compared: courier has no
/// `request_info`; what reached the server is compared through the echoes.
fn view(result: &Value, own: &[&str]) -> Value {
    if result["ok"] != json!(true) {
        return json!({"ok": result["ok"], "error_type": result["error_type"]});
    }
    let body = B64
        .decode(result["body_b64"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let (body, echo) = normalise_body(&body, own);
    let mut v = json!({
        "ok": true,
        "status": result["status"],
        "reason": result["reason"],
        "version": result["version"],
        "method": result["method"],
        "url": result["url"],
        "headers": header_text(&result["headers"], echo),
        "body": body,
        "history": result["history"].as_array().map(|h| h.iter().map(|h| json!({
            "status": h["status"],
            "url": h["url"],
            "headers": header_text(&h["headers"], false),
        })).collect::<Vec<_>>()),
        "cookies": cookie_text(&result["cookies"]),
    });
    if !echo {
        v["body_len"] = result["body_len"].clone();
    }
    v
}

/// Headers as one text (`Name: value` lines, in order), without the
/// volatile ones and, for echoes, without `Content-Length`.
fn header_text(headers: &Value, echo: bool) -> Value {
    let mut text = String::new();
    for (name, value) in str_pairs(headers) {
        let lower = name.to_ascii_lowercase();
        if VOLATILE_HEADERS.contains(&lower.as_str()) || (echo && lower == "content-length") {
            continue;
        }
        let _ = writeln!(text, "{name}: {value}");
    }
    Value::String(text)
}

/// The jar as sorted `name=value; domain=...; path=...` lines.
fn cookie_text(cookies: &Value) -> Value {
    let mut lines: Vec<String> = cookies
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| {
                    format!(
                        "{}={}; domain={}; path={}",
                        c["name"].as_str().unwrap_or_default(),
                        c["value"].as_str().unwrap_or_default(),
                        c["domain"].as_str().unwrap_or_default(),
                        c["path"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    lines.sort_by(|a, b| {
        let key = |l: &str| {
            let (cookie, rest) = l.split_once("; domain=").unwrap_or((l, ""));
            (rest.to_owned(), cookie.to_owned())
        };
        key(a).cmp(&key(b))
    });
    Value::String(lines.join("\n"))
}

/// The body as compared, and whether it is an echo of the request.
fn normalise_body(body: &[u8], own: &[&str]) -> (Value, bool) {
    if let Ok(mut json) = serde_json::from_slice::<Value>(body) {
        let echo = strip_echo(&mut json, own);
        return (json!({"json": json}), echo);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > 1 {
            let parsed: Option<Vec<Value>> = lines
                .iter()
                .map(|l| serde_json::from_str::<Value>(l).ok())
                .collect();
            if let Some(mut items) = parsed {
                let mut echo = false;
                for item in &mut items {
                    echo |= strip_echo(item, own);
                }
                return (json!({"json_lines": items}), echo);
            }
        }
        // nginx's /echo: `name=value` lines, one of them user-agent=.
        if text.starts_with("method=") && text.contains("\nuser-agent=") {
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    !own.iter()
                        .any(|h| l.strip_prefix(h).is_some_and(|r| r.starts_with('=')))
                })
                .collect();
            return (json!({"text": kept.join("\n")}), true);
        }
        return (json!({"text": text}), false);
    }
    (json!({"base64": B64.encode(body)}), false)
}

/// Removes the echo of the client's own headers from a JSON body that
/// echoes the request's `headers` (httpbin: an object; the aiohttp peer's
/// `/echo`: `[name, value]` pairs in order); true if it does.
fn strip_echo(json: &mut Value, own: &[&str]) -> bool {
    let is_own = |name: &str| own.contains(&name.to_ascii_lowercase().as_str());
    let Some(headers) = json.get_mut("headers") else {
        return false;
    };
    match headers {
        Value::Object(map) => map.retain(|name, _| !is_own(name)),
        Value::Array(_) => {
            // In the order sent, names lower-cased: field names are
            // case-insensitive (RFC 9110 section 5.1), and courier sends the
            // names the caller gives in lower case (the `http` crate's
            // HeaderName).
            let mut text = String::new();
            for (name, value) in str_pairs(headers) {
                if !is_own(&name) {
                    let _ = writeln!(text, "{}: {value}", name.to_ascii_lowercase());
                }
            }
            *headers = Value::String(text);
        }
        _ => return false,
    }
    true
}

/// Appends the paths where `a` and `b` differ: objects and same-length
/// arrays field by field, anything else as a whole.
fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<Diff>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let null = Value::Null;
                diff_values(
                    &format!("{path}/{key}"),
                    x.get(key).unwrap_or(&null),
                    y.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_values(&format!("{path}/{i}"), p, q, out);
            }
        }
        _ if a != b => out.push(Diff {
            path: path.to_owned(),
            oracle: a.clone(),
            courier: b.clone(),
        }),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Report

fn print_table(scenarios: &[Scenario], results: &BTreeMap<String, Verdict>) {
    let mut by_category: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for scn in scenarios {
        let counts = by_category.entry(&scn.category).or_default();
        match results.get(&scn.name) {
            Some(Verdict::Pass) => counts[0] += 1,
            Some(Verdict::Differs { .. }) => counts[1] += 1,
            Some(Verdict::Bug { .. }) | None => counts[2] += 1,
        }
    }
    let count = |kind: &str| results.values().filter(|v| v.kind() == kind).count();
    println!(
        "differential conformance, courier vs aiohttp ({} scenarios)",
        results.len()
    );
    println!(
        "  {:<16}{:>6}{:>8}{:>9}{:>6}",
        "category", "total", "same", "differs", "bug"
    );
    for (category, [same, differs, bug]) in &by_category {
        println!(
            "  {category:<16}{:>6}{same:>8}{differs:>9}{bug:>6}",
            same + differs + bug
        );
    }
    println!(
        "  {:<16}{:>6}{:>8}{:>9}{:>6}",
        "all",
        results.len(),
        count("pass"),
        count("differs"),
        count("bug")
    );
    for (name, verdict) in results {
        match verdict {
            Verdict::Pass => {}
            Verdict::Differs { fields, reason } => {
                println!("    differs {name} [{}]: {reason}", fields.join(", "));
            }
            Verdict::Bug { fields, reason } => {
                println!("    BUG {name} [{}]: {reason}", fields.join(", "));
            }
        }
    }
}

/// Compares the verdicts with the expected file (or rewrites it).
fn settle(
    results: &BTreeMap<String, Verdict>,
    expected: &BTreeMap<String, Verdict>,
    details: &BTreeMap<String, Vec<Diff>>,
    bless: bool,
    out: &Path,
) -> Result<()> {
    let mut changes = Vec::new();
    for (name, verdict) in results {
        let changed = match expected.get(name) {
            Some(old) => {
                let set = |v: &Verdict| v.fields().iter().cloned().collect::<BTreeSet<_>>();
                old.kind() != verdict.kind() || set(old) != set(verdict)
            }
            None => true,
        };
        if !changed {
            continue;
        }
        let mut msg = match expected.get(name) {
            Some(old) => format!(
                "{name}: expected {} [{}], got {} [{}]",
                old.kind(),
                old.fields().join(", "),
                verdict.kind(),
                verdict.fields().join(", ")
            ),
            None => format!("{name}: new scenario, got {}", verdict.kind()),
        };
        for d in details.get(name).map(Vec::as_slice).unwrap_or_default() {
            let _ = write!(
                msg,
                "\n      {}\n        aiohttp: {}\n        courier: {}",
                d.path,
                shorten(&d.oracle),
                shorten(&d.courier)
            );
        }
        changes.push(msg);
    }
    for name in expected.keys().filter(|n| !results.contains_key(*n)) {
        changes.push(format!("{name}: in the expected file but not a scenario"));
    }
    if bless {
        let path = util::workspace_root().join(EXPECTED);
        let mut text = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
        text.push('\n');
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        for c in &changes {
            eprintln!("  changed: {c}");
        }
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    if !changes.is_empty() {
        let mut msg = format!(
            "{} scenario(s) differ from {EXPECTED} (outputs in {}; run with --bless after checking):",
            changes.len(),
            out.display()
        );
        for c in &changes {
            let _ = write!(msg, "\n  {c}");
        }
        return Err(msg);
    }
    Ok(())
}

/// A value for a one-line report, cut to a readable length.
fn shorten(v: &Value) -> String {
    const MAX: usize = 400;
    let s = v.to_string();
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_typos_refused() {
        let mut values = BTreeMap::new();
        values.insert("httpbin", "http://127.0.0.1:1".to_owned());
        let v = json!({"url": "{httpbin}/get", "body_text": "{\"k\":\"{x\"}"});
        let got = substitute(&v, &values).unwrap();
        assert_eq!(got["url"], "http://127.0.0.1:1/get");
        assert_eq!(got["body_text"], "{\"k\":\"{x\"}");
        assert!(substitute(&json!("{htpbin}/get"), &values).is_err());
    }

    #[test]
    fn echoes_leave_out_the_clients_own_headers() {
        let body =
            br#"{"headers": {"User-Agent": "x", "Accept-Encoding": "gzip", "Cookie": "a=1"}}"#;
        let (v, echo) = normalise_body(body, &["user-agent", "accept-encoding"]);
        assert!(echo);
        assert_eq!(v, json!({"json": {"headers": {"Cookie": "a=1"}}}));
        let (v, _) = normalise_body(body, &["accept-encoding"]);
        assert_eq!(v["json"]["headers"]["User-Agent"], "x");
        let text = b"method=GET\nuser-agent=x\naccept-encoding=gzip\ncookie=\n";
        let (v, echo) = normalise_body(text, &["user-agent", "accept-encoding"]);
        assert!(echo);
        assert_eq!(v, json!({"text": "method=GET\ncookie="}));
    }

    #[test]
    fn verdicts_round_trip_and_keep_reasons() {
        let text = r#"{"a": "pass", "b": {"differs": {"fields": ["/0/url"], "reason": "r"}},
                       "c": {"bug": {"fields": ["/0/body"], "reason": "b"}}}"#;
        let map: BTreeMap<String, Verdict> = serde_json::from_str(text).unwrap();
        assert_eq!(map["a"], Verdict::Pass);
        let again = Verdict::bless(vec!["/1/url".into()], map.get("b"));
        assert_eq!(again.kind(), "differs");
        assert_eq!(Verdict::bless(vec!["/0/x".into()], None).kind(), "bug");
        assert_eq!(Verdict::bless(Vec::new(), map.get("c")), Verdict::Pass);
    }

    #[test]
    fn diffs_name_the_field() {
        let mut out = Vec::new();
        diff_values(
            "/0",
            &json!({"a": 1, "b": {"c": [1, 2]}, "h": "x"}),
            &json!({"a": 1, "b": {"c": [1, 3]}, "h": "y", "extra": true}),
            &mut out,
        );
        let paths: Vec<&str> = out.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/0/b/c/1", "/0/extra", "/0/h"]);
    }
}
