//! `cargo xtask peers`: the real servers the end-to-end tests talk to.
//!
//! The peers are started by the scripts in `../shared/peers/` (see its
//! `PEERS.md`), all in one scratch directory,
//! `<target>/peers/run-<unique>/`, and stopped by that directory's
//! `stop.sh`, which only signals the PIDs the scripts recorded there. Each
//! peer gets free loopback ports picked here (bind `127.0.0.1:0`, read the
//! port); a start that fails because a port was taken in between is retried
//! with new ports.
//!
//! The tests learn where the peers are from environment variables, read by
//! `courier_test_support::peers`:
//!
//! ```text
//! COURIER_PEERS_SCRATCH           the scratch directory
//! COURIER_PEERS_CA                certs/ca.pem: the test CA every TLS peer's certificate chains to
//! COURIER_PEER_<PEER>_<ENDPOINT>  one endpoint of one peer: 127.0.0.1:PORT or a path
//! ```
//!
//! `<PEER>_<ENDPOINT>` today: `NGINX_HTTP`, `NGINX_HTTPS`, `NGINX_BADTLS`
//! (HTTPS with a certificate for `wrong.example` only), `NGINX_UNIX`,
//! `NGINX_WWW` (its document root, to compare bodies with the files),
//! `HTTPBIN_HTTP`, `HTTPBIN_UNIX`, `AIOHTTP_HTTP`, `AIOHTTP_HTTPS`,
//! `AIOHTTP_UNIX`, and the forward proxies `TINYPROXY_HTTP`,
//! `TINYPROXY_AUTH_HTTP`, `SQUID_HTTP`, `SQUID_AUTH_HTTP` (the `-auth` ones
//! want Basic proxy auth `user:pass`). The list is [`PEERS`]: a new peer is
//! one entry there.
//!
//! Commands:
//!
//! ```text
//! cargo xtask peers start   start them all, print `export K=V` lines (eval-able)
//! cargo xtask peers env     print those lines again for the running set
//! cargo xtask peers stop    stop the set recorded in <target>/peers/current
//! ```
//!
//! Set `COURIER_PEERS_KEEP=1` to keep a scratch directory (logs, configs)
//! after its peers are stopped; by default it is removed.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{self, Result};

/// Starts of one peer tried before giving up, when a start fails because a
/// port picked as free was taken before the peer bound it.
const START_TRIES: usize = 3;

/// The scripts refuse Unix socket paths from 100 bytes on (`sun_path` is 108).
const MAX_SOCKET_PATH: usize = 99;

/// One endpoint of a peer, exported as `COURIER_PEER_<PEER>_<name>`.
#[derive(Debug)]
enum Endpoint {
    /// `127.0.0.1:<base port + offset>`.
    Tcp(&'static str, u16),
    /// A path inside the scratch directory; `{port}` stands for the base port.
    Path(&'static str, &'static str),
}

/// A peer and how to start it: `script PORT SCRATCH`, with `env` set.
#[derive(Debug)]
struct Spec {
    /// Display name; upper-cased with `-` as `_`, the `<PEER>` of its variables.
    name: &'static str,
    /// The start script in `../shared/peers/`.
    script: &'static str,
    /// Extra environment for the script (`PROXY_KIND=squid`, `PROXY_AUTH=user:pass`...).
    env: &'static [(&'static str, &'static str)],
    /// Extra environment set to one of the peer's ports: `(name, offset)`
    /// is `name=<base port + offset>` (`NGINX_BADTLS_PORT=PORT+2`).
    port_env: &'static [(&'static str, u16)],
    /// Consecutive free ports from the base port (aiohttp takes PORT for
    /// http and PORT+1 for https; nginx also PORT+2 for the wrong-host https).
    ports: u16,
    /// What the tests are told about it.
    endpoints: &'static [Endpoint],
}

/// Every peer `start_all` starts, in the order their variables are listed.
/// Adding one is one entry here and its accessor in
/// `courier-test-support`'s `peers` module.
const PEERS: &[Spec] = {
    use Endpoint::{Path, Tcp};
    &[
        Spec {
            name: "nginx",
            script: "start-nginx.sh",
            env: &[],
            // The https port is the script's default, PORT+1; the wrong-host
            // one is off unless set.
            port_env: &[("NGINX_BADTLS_PORT", 2)],
            ports: 3,
            endpoints: &[
                Tcp("HTTP", 0),
                Tcp("HTTPS", 1),
                Tcp("BADTLS", 2),
                Path("UNIX", "nginx-{port}.sock"),
                Path("WWW", "nginx-{port}/www"),
            ],
        },
        Spec {
            name: "httpbin",
            script: "start-httpbin.sh",
            env: &[],
            port_env: &[],
            ports: 1,
            endpoints: &[Tcp("HTTP", 0), Path("UNIX", "httpbin-{port}.sock")],
        },
        Spec {
            name: "aiohttp",
            script: "start-aiohttp.sh",
            env: &[],
            port_env: &[],
            ports: 2,
            endpoints: &[
                Tcp("HTTP", 0),
                Tcp("HTTPS", 1),
                Path("UNIX", "aiohttp-{port}.sock"),
            ],
        },
        // The Python websockets echo server: ws, wss (PORT+1) and a Unix
        // socket; permessage-deflate when the client offers it.
        Spec {
            name: "ws-echo",
            script: "start-ws-echo.sh",
            env: &[],
            port_env: &[],
            ports: 2,
            endpoints: &[
                Tcp("WS", 0),
                Tcp("WSS", 1),
                Path("UNIX", "ws-echo-{port}.sock"),
            ],
        },
        // Forward proxies: absolute-form requests and CONNECT to any
        // 127.0.0.1 port. The `-auth` ones want Basic proxy auth `user:pass`
        // (tinyproxy answers wrong credentials with 401, squid with 407).
        Spec {
            name: "tinyproxy",
            script: "start-proxy.sh",
            env: &[("PROXY_KIND", "tinyproxy"), ("PROXY_AUTH", "")],
            port_env: &[],
            ports: 1,
            endpoints: &[Tcp("HTTP", 0)],
        },
        Spec {
            name: "tinyproxy-auth",
            script: "start-proxy.sh",
            env: &[("PROXY_KIND", "tinyproxy"), ("PROXY_AUTH", "user:pass")],
            port_env: &[],
            ports: 1,
            endpoints: &[Tcp("HTTP", 0)],
        },
        Spec {
            name: "squid",
            script: "start-proxy.sh",
            env: &[("PROXY_KIND", "squid"), ("PROXY_AUTH", "")],
            port_env: &[],
            ports: 1,
            endpoints: &[Tcp("HTTP", 0)],
        },
        Spec {
            name: "squid-auth",
            script: "start-proxy.sh",
            env: &[("PROXY_KIND", "squid"), ("PROXY_AUTH", "user:pass")],
            port_env: &[],
            ports: 1,
            endpoints: &[Tcp("HTTP", 0)],
        },
    ]
};

/// A peer that is up.
#[derive(Debug)]
struct Running {
    spec: &'static Spec,
    port: u16,
    took: Duration,
}

/// The environment of running peers for a suite: `given` (from
/// `cargo xtask test`), else the `COURIER_PEER*` variables of this process
/// when they include every name in `required`, else a set started here.
/// The started set comes back too: the caller stops it (dropping it does
/// as well).
///
/// # Errors
///
/// Starting the peers failed.
pub fn env_or_start(
    given: Option<&[(String, String)]>,
    required: &[&str],
    suite: &str,
) -> Result<(BTreeMap<String, String>, Option<Peers>)> {
    if let Some(env) = given {
        return Ok((env.iter().cloned().collect(), None));
    }
    let from_process: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("COURIER_PEER"))
        .collect();
    if required.iter().all(|v| from_process.contains_key(*v)) {
        return Ok((from_process, None));
    }
    eprintln!("[{suite}] no COURIER_PEER_* variables: starting the peers");
    let peers = start_all()?;
    let env = peers.env().into_iter().collect();
    Ok((env, Some(peers)))
}

/// A set of running peers sharing one scratch directory.
///
/// Dropping it stops them (errors are printed); [`Peers::stop`] does the
/// same and reports errors.
#[derive(Debug)]
pub struct Peers {
    scratch: PathBuf,
    running: Vec<Running>,
    /// False once stopped or detached: `Drop` then leaves them alone.
    armed: bool,
}

impl Peers {
    /// The scratch directory holding the peers' PID files, configs and logs.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The variables that tell a test process where the peers are.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("COURIER_PEERS_SCRATCH".to_owned(), display(&self.scratch)),
            (
                "COURIER_PEERS_CA".to_owned(),
                display(&self.scratch.join("certs/ca.pem")),
            ),
        ];
        for run in &self.running {
            let peer = run.spec.name.to_ascii_uppercase().replace('-', "_");
            for endpoint in run.spec.endpoints {
                let (name, value) = match *endpoint {
                    Endpoint::Tcp(name, offset) => {
                        (name, format!("127.0.0.1:{}", run.port + offset))
                    }
                    Endpoint::Path(name, path) => {
                        let path = path.replace("{port}", &run.port.to_string());
                        (name, display(&self.scratch.join(path)))
                    }
                };
                env.push((format!("COURIER_PEER_{peer}_{name}"), value));
            }
        }
        env
    }

    /// Stops the peers (`stop.sh SCRATCH`) and removes the scratch directory
    /// unless `COURIER_PEERS_KEEP` is set.
    ///
    /// # Errors
    ///
    /// `stop.sh` could not run or could not stop every process.
    pub fn stop(mut self) -> Result<()> {
        self.armed = false;
        stop_scratch(&self.scratch, false)
    }

    /// Leaves the peers running past this value (for `cargo xtask peers
    /// start`) and returns their scratch directory.
    fn detach(mut self) -> PathBuf {
        self.armed = false;
        self.scratch.clone()
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            if let Err(e) = stop_scratch(&self.scratch, false) {
                eprintln!("xtask: stopping the peers failed: {e}");
            }
        }
    }
}

/// Starts every peer of [`PEERS`] in a new scratch directory.
///
/// The peers start in parallel; the scripts install what is missing (apt,
/// a pip venv) on a fresh machine. If any peer fails, the ones that did
/// start are stopped again.
///
/// # Errors
///
/// A script failed (its output is printed), or the scratch directory could
/// not be made.
pub fn start_all() -> Result<Peers> {
    start(PEERS)
}

fn start(specs: &'static [Spec]) -> Result<Peers> {
    let started = Instant::now();
    let scripts = util::shared_dir()?.join("peers");
    reap_stale()?;
    let scratch = new_scratch()?;
    // From here on, dropping `peers` stops whatever started in `scratch`.
    let mut peers = Peers {
        scratch,
        running: Vec::new(),
        armed: true,
    };
    let scratch = peers.scratch.clone();
    eprintln!(
        "[xtask] starting peers {} in {}",
        specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        scratch.display()
    );
    // The TLS peers would each make the certificates, and two concurrent
    // make-certs.sh runs may mix a CA with a leaf it did not sign: make them once.
    let certs_started = Instant::now();
    certs(&scripts, &scratch)?;
    let certs_took = certs_started.elapsed();

    let taken = Mutex::new(HashSet::new());
    let results: Vec<Result<Running>> = thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| {
                let (scripts, scratch, taken) = (&scripts, &scratch, &taken);
                s.spawn(move || start_one(spec, scripts, scratch, taken))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a start thread panicked".into()))
            })
            .collect()
    });
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(run) => peers.running.push(run),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        // Stop the ones that did start, but keep the logs the errors point to.
        peers.armed = false;
        if let Err(e) = stop_scratch(&scratch, true) {
            errors.push(e);
        }
        return Err(errors.join("; "));
    }
    let mut summary = format!(" certs {},", util::secs(certs_took));
    for run in &peers.running {
        let _ = write!(summary, " {} {},", run.spec.name, util::secs(run.took));
    }
    eprintln!(
        "[xtask] peers up in {} (took:{})",
        util::secs(started.elapsed()),
        summary.trim_end_matches(',')
    );
    Ok(peers)
}

/// Stops peer sets left behind by a run that was killed (Ctrl-C: `Drop` did
/// not run), except the set `cargo xtask peers start` recorded as current.
/// `stop.sh` signals only PIDs whose command line names their scratch
/// directory, so this never touches anything else.
fn reap_stale() -> Result<()> {
    let root = peers_root();
    let Ok(entries) = fs::read_dir(&root) else {
        return Ok(());
    };
    let current = current()?.and_then(|c| fs::canonicalize(c).ok());
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_run = entry.file_name().to_string_lossy().starts_with("run-");
        if !is_run || !dir.is_dir() || fs::canonicalize(&dir).ok() == current {
            continue;
        }
        eprintln!(
            "[xtask] stopping peers left by an earlier run in {}",
            dir.display()
        );
        stop_scratch(&dir, false)?;
    }
    Ok(())
}

/// Creates `<target>/peers/run-<secs>-<pid>[-n]`, canonical as the scripts see it.
fn new_scratch() -> Result<PathBuf> {
    let root = peers_root();
    fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("run-{secs}-{}", std::process::id());
    for n in 0..100 {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = root.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {
                let dir = fs::canonicalize(&dir)
                    .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
                // The longest socket name a script makes: `ws-echo-65535.sock`.
                let longest = dir.join("ws-echo-65535.sock");
                if longest.as_os_str().len() > MAX_SOCKET_PATH {
                    let _ = fs::remove_dir(&dir);
                    return Err(format!(
                        "{} is too deep for Unix socket paths (over {MAX_SOCKET_PATH} bytes): \
                         set CARGO_TARGET_DIR to a shorter directory",
                        dir.display()
                    ));
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot find a free scratch name {base}-N in {}",
        root.display()
    ))
}

/// `<target>/peers`: `CARGO_TARGET_DIR` (relative to the workspace) or `target/`.
fn peers_root() -> PathBuf {
    let root = util::workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    target.join("peers")
}

/// Makes the test CA and certificates in `SCRATCH/certs` (installing
/// openssl if needed, the way the start scripts do).
fn certs(scripts: &Path, scratch: &Path) -> Result<()> {
    let log = scratch.join("xtask-certs.log");
    let script = r#"source "$1/common.sh" && ensure_apt openssl && "$1/make-certs.sh" "$2""#;
    let mut cmd = Command::new("bash");
    cmd.args(["-c", script, "bash"])
        .arg(scripts)
        .arg(scratch.join("certs"));
    let (ok, output) = run_logged(&mut cmd, &log)?;
    if ok {
        Ok(())
    } else {
        eprint!("{output}");
        Err(format!(
            "making the test certificates in {}/certs failed",
            scratch.display()
        ))
    }
}

/// Starts one peer, retrying with new ports when its ports were taken.
fn start_one(
    spec: &'static Spec,
    scripts: &Path,
    scratch: &Path,
    taken: &Mutex<HashSet<u16>>,
) -> Result<Running> {
    for attempt in 1..=START_TRIES {
        let port = free_ports(spec.ports, taken)?;
        let started = Instant::now();
        let log = scratch.join(format!("xtask-start-{}-{port}.log", spec.name));
        let mut cmd = Command::new("bash");
        cmd.arg(scripts.join(spec.script))
            .arg(port.to_string())
            .arg(scratch)
            .envs(spec.env.iter().copied())
            .envs(
                spec.port_env
                    .iter()
                    .map(|&(name, offset)| (name, (port + offset).to_string())),
            );
        let (ok, output) = run_logged(&mut cmd, &log)?;
        // One write per peer, so parallel starts do not interleave lines.
        eprint!("{output}");
        if ok {
            return Ok(Running {
                spec,
                port,
                took: started.elapsed(),
            });
        }
        if attempt < START_TRIES && port_was_taken(&output) {
            eprintln!(
                "[xtask] {}: a port was taken after it was picked; new ports",
                spec.name
            );
            continue;
        }
        return Err(format!(
            "peer {} did not start (`{} {port} {}`, output above and in {})",
            spec.name,
            spec.script,
            scratch.display(),
            log.display()
        ));
    }
    Err(format!(
        "peer {}: no ports after {START_TRIES} tries",
        spec.name
    ))
}

/// True when a start script's output says a port was in use: the scripts'
/// own check ("port P is already in use"), nginx and Python ("Address
/// already in use"), gunicorn ("Connection in use").
fn port_was_taken(output: &str) -> bool {
    output.to_ascii_lowercase().contains(" in use")
}

/// Runs `cmd` with stdout and stderr sent to the file `log` (not a pipe: the
/// daemons a script leaves behind would hold a pipe open), and returns
/// whether it succeeded and what it printed.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<(bool, String)> {
    let file =
        fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", util::describe(cmd)))?;
    let output = fs::read(log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    Ok((
        status.success(),
        String::from_utf8_lossy(&output).into_owned(),
    ))
}

/// A base port such that `count` consecutive loopback ports from it are free
/// now and not handed out earlier in this run.
fn free_ports(count: u16, taken: &Mutex<HashSet<u16>>) -> Result<u16> {
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
        let base = first
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?
            .port();
        let Some(last) = base.checked_add(count.saturating_sub(1)) else {
            continue;
        };
        // Hold every port until all are checked.
        let mut held = vec![first];
        for port in base + 1..=last {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(listener) => held.push(listener),
                Err(_) => break,
            }
        }
        if held.len() != usize::from(count) {
            continue;
        }
        let mut taken = taken.lock().unwrap_or_else(|e| e.into_inner());
        if (base..=last).any(|p| taken.contains(&p)) {
            continue;
        }
        taken.extend(base..=last);
        return Ok(base);
    }
    Err(format!(
        "found no {count} consecutive free ports on 127.0.0.1"
    ))
}

/// Stops every peer started in `scratch`, then removes it (unless `keep`,
/// `COURIER_PEERS_KEEP` is set, or something was left running).
fn stop_scratch(scratch: &Path, keep: bool) -> Result<()> {
    let script = util::shared_dir()?.join("peers/stop.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(scratch).stdin(Stdio::null());
    let status = util::status(&mut cmd)?;
    if !status.success() {
        return Err(format!(
            "`{}` failed ({status}); scratch kept for its logs",
            util::describe(&cmd)
        ));
    }
    if keep || std::env::var_os("COURIER_PEERS_KEEP").is_some() {
        eprintln!("[xtask] peers stopped; kept {}", scratch.display());
    } else if scratch.is_dir() {
        fs::remove_dir_all(scratch)
            .map_err(|e| format!("cannot remove {}: {e}", scratch.display()))?;
    }
    Ok(())
}

/// Runs the command line `cargo xtask peers start | env | stop`.
pub fn run(args: &[String]) -> Result<()> {
    match args {
        [cmd] if cmd == "start" => start_detached(),
        [cmd] if cmd == "env" => print_env(),
        [cmd] if cmd == "stop" => stop_current(),
        _ => Err("usage: cargo xtask peers start | env | stop".into()),
    }
}

/// The file recording the scratch directory of `cargo xtask peers start`.
fn current_file() -> PathBuf {
    peers_root().join("current")
}

/// The file in a scratch directory holding its `export` lines.
const ENV_FILE: &str = "peers.env";

/// The recorded scratch directory, if any.
fn current() -> Result<Option<PathBuf>> {
    match fs::read_to_string(current_file()) {
        Ok(text) => Ok(Some(PathBuf::from(text.trim_end_matches('\n')))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", current_file().display())),
    }
}

/// True while `scratch` holds PID files (stop.sh removes them).
fn has_pid_files(scratch: &Path) -> bool {
    fs::read_dir(scratch).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "pid"))
    })
}

fn start_detached() -> Result<()> {
    if let Some(old) = current()?
        && has_pid_files(&old)
    {
        return Err(format!(
            "peers from an earlier `cargo xtask peers start` are still running in {}: \
             run `cargo xtask peers stop` first (or `cargo xtask peers env` to use them)",
            old.display()
        ));
    }
    let peers = start_all()?;
    let mut exports = String::new();
    for (key, value) in peers.env() {
        let _ = writeln!(exports, "export {key}={}", shell_quote(&value));
    }
    let env_file = peers.scratch().join(ENV_FILE);
    fs::write(&env_file, &exports)
        .map_err(|e| format!("cannot write {}: {e}", env_file.display()))?;
    let current = current_file();
    fs::write(&current, format!("{}\n", peers.scratch().display()))
        .map_err(|e| format!("cannot write {}: {e}", current.display()))?;
    let scratch = peers.detach();
    print_exports(&exports, &scratch)
}

fn print_env() -> Result<()> {
    let scratch = current()?
        .filter(|s| has_pid_files(s))
        .ok_or("no peers running: start them with `cargo xtask peers start`")?;
    let env_file = scratch.join(ENV_FILE);
    let exports = fs::read_to_string(&env_file)
        .map_err(|e| format!("cannot read {}: {e}", env_file.display()))?;
    print_exports(&exports, &scratch)
}

fn print_exports(exports: &str, scratch: &Path) -> Result<()> {
    let mut out = std::io::stdout().lock();
    write!(out, "{exports}")
        .and_then(|()| {
            writeln!(
                out,
                "# peers running in {}; stop them with `cargo xtask peers stop`",
                scratch.display()
            )
        })
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

fn stop_current() -> Result<()> {
    let Some(scratch) = current()? else {
        eprintln!(
            "[xtask] no peers recorded in {}: nothing to stop",
            current_file().display()
        );
        return Ok(());
    };
    if scratch.is_dir() {
        stop_scratch(&scratch, false)?;
    } else {
        eprintln!("[xtask] {} is gone: nothing to stop", scratch.display());
    }
    fs::remove_file(current_file())
        .map_err(|e| format!("cannot remove {}: {e}", current_file().display()))
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `value` as one shell word.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:,+@%=".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_and_values() {
        let peers = Peers {
            scratch: PathBuf::from("/s"),
            running: vec![
                Running {
                    spec: &PEERS[0],
                    port: 4000,
                    took: Duration::ZERO,
                },
                Running {
                    spec: &PEERS[2],
                    port: 5000,
                    took: Duration::ZERO,
                },
                Running {
                    spec: &PEERS[3],
                    port: 6500,
                    took: Duration::ZERO,
                },
                Running {
                    spec: &PEERS[7],
                    port: 6000,
                    took: Duration::ZERO,
                },
            ],
            armed: false,
        };
        let env = peers.env();
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("COURIER_PEERS_SCRATCH"), Some("/s"));
        assert_eq!(get("COURIER_PEERS_CA"), Some("/s/certs/ca.pem"));
        assert_eq!(get("COURIER_PEER_NGINX_HTTP"), Some("127.0.0.1:4000"));
        assert_eq!(get("COURIER_PEER_NGINX_HTTPS"), Some("127.0.0.1:4001"));
        assert_eq!(get("COURIER_PEER_NGINX_BADTLS"), Some("127.0.0.1:4002"));
        assert_eq!(get("COURIER_PEER_NGINX_UNIX"), Some("/s/nginx-4000.sock"));
        assert_eq!(get("COURIER_PEER_NGINX_WWW"), Some("/s/nginx-4000/www"));
        assert_eq!(
            get("COURIER_PEER_AIOHTTP_UNIX"),
            Some("/s/aiohttp-5000.sock")
        );
        assert_eq!(get("COURIER_PEER_WS_ECHO_WS"), Some("127.0.0.1:6500"));
        assert_eq!(get("COURIER_PEER_WS_ECHO_WSS"), Some("127.0.0.1:6501"));
        assert_eq!(
            get("COURIER_PEER_WS_ECHO_UNIX"),
            Some("/s/ws-echo-6500.sock")
        );
        assert_eq!(get("COURIER_PEER_SQUID_AUTH_HTTP"), Some("127.0.0.1:6000"));
        assert_eq!(env.len(), 2 + 5 + 3 + 3 + 1);
    }

    #[test]
    fn every_spec_stays_within_its_ports() {
        let mut names = HashSet::new();
        for spec in PEERS {
            assert!(names.insert(spec.name), "{} twice", spec.name);
            for endpoint in spec.endpoints {
                if let Endpoint::Tcp(name, offset) = *endpoint {
                    assert!(offset < spec.ports, "{} {name}", spec.name);
                }
            }
            for &(name, offset) in spec.port_env {
                assert!(offset < spec.ports, "{} {name}", spec.name);
            }
        }
    }

    #[test]
    fn port_env_is_set_from_the_base_port() {
        let dir =
            std::env::temp_dir().join(format!("xtask-peers-port-env-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("fake.sh"),
            r#"echo "$1 $NGINX_BADTLS_PORT $PROXY_KIND" > "$2/seen""#,
        )
        .unwrap();
        let spec: &'static Spec = Box::leak(Box::new(Spec {
            name: "fake",
            script: "fake.sh",
            env: &[("PROXY_KIND", "squid"), ("PROXY_AUTH", "")],
            port_env: &[("NGINX_BADTLS_PORT", 2)],
            ports: 3,
            endpoints: &[],
        }));
        let taken = Mutex::new(HashSet::new());
        let run = start_one(spec, &dir, &dir, &taken).unwrap();
        let seen = fs::read_to_string(dir.join("seen")).unwrap();
        assert_eq!(seen.trim(), format!("{} {} squid", run.port, run.port + 2));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn free_ports_are_consecutive_and_not_reused() {
        let taken = Mutex::new(HashSet::new());
        let a = free_ports(2, &taken).unwrap();
        let b = free_ports(2, &taken).unwrap();
        assert!(b != a && b != a + 1 && a != b + 1);
        assert_eq!(taken.lock().unwrap().len(), 4);
    }

    #[test]
    fn a_start_that_lost_its_port_is_retried_with_new_ports() {
        let dir = std::env::temp_dir().join(format!("xtask-peers-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // Fails like start-*.sh when its port was taken, the first time only.
        let script = r#"
            n=$(cat "$2/tries" 2>/dev/null || echo 0); echo $((n + 1)) > "$2/tries"
            [ "$n" -gt 0 ] || { echo "[peers] ERROR: port $1 is already in use" >&2; exit 1; }
            echo "$1" > "$2/port""#;
        fs::write(dir.join("fake.sh"), script).unwrap();
        let spec: &'static Spec = Box::leak(Box::new(Spec {
            name: "fake",
            script: "fake.sh",
            env: &[],
            port_env: &[],
            ports: 1,
            endpoints: &[],
        }));
        let taken = Mutex::new(HashSet::new());
        let run = start_one(spec, &dir, &dir, &taken).unwrap();
        assert_eq!(fs::read_to_string(dir.join("tries")).unwrap().trim(), "2");
        let port: u16 = fs::read_to_string(dir.join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(run.port, port);
        assert_eq!(taken.lock().unwrap().len(), 2, "a new port for the retry");

        // Any other failure is reported at once.
        fs::write(dir.join("fake.sh"), "echo broken >&2; exit 1").unwrap();
        let err = start_one(spec, &dir, &dir, &taken).unwrap_err();
        assert!(err.starts_with("peer fake did not start"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn port_in_use_messages() {
        assert!(port_was_taken(
            "[peers] ERROR: port 80 is already in use: LISTEN"
        ));
        assert!(port_was_taken(
            "bind() to 127.0.0.1:80 failed (98: Address already in use)"
        ));
        assert!(port_was_taken(
            "[ERROR] Connection in use: ('127.0.0.1', 80)"
        ));
        assert!(!port_was_taken(
            "[peers] ERROR: apt-get install nginx failed"
        ));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
