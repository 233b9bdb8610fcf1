//! What the end-to-end benchmarks (`client`, `ws`) share: a bench target
//! run under `taskset` on [`CLIENT_CPU`] against servers on
//! [`SERVER_CPU`], how busy the machine was meanwhile, the figures the
//! target appends to `COURIER_BENCH_EXTRA` (every case measured in
//! interleaved rounds, see `crates/client/benches/http.rs`), and the
//! aligned tables they are printed in.
//!
//! A suite using it:
//!
//! 1. builds its server and its bench target, and starts the server with
//!    [`BenchServer::start`] (pinned, its port read from its stdout);
//! 2. runs the target with [`run_pinned`], which also measures the CPU
//!    time other processes used meanwhile ([`noise_note`]);
//! 3. stops the server and reads the figures with [`Extra::read`];
//! 4. prints one table per case, each client's row from
//!    [`Extra::rounds_of`] and [`criterion_rate`] (what is missing noted),
//!    its cells formatted by [`thousands`], [`spread_cell`],
//!    [`ratio_cell`] (with [`ratio_to`]) and [`criterion_cell`], aligned by
//!    [`write_rows`], under the notes of [`source_note`],
//!    [`Pinning::describe`] and the noise.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::read_result;
use crate::util::{self, Result};

/// The CPU the servers are pinned to.
pub(super) const SERVER_CPU: &str = "1";
/// The CPU the client bench is pinned to.
pub(super) const CLIENT_CPU: &str = "0";

/// Clock ticks per second in `/proc` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// What a suite hands back to [`super::run`].
pub(super) struct Report {
    /// The tables, ready to print.
    pub(super) tables: String,
    /// Results that were expected and not found.
    pub(super) missing: Vec<String>,
}

/// A bench target of `courier-client` to run pinned to [`CLIENT_CPU`].
pub(super) struct PinnedBench<'a> {
    /// The `[[bench]]` name.
    pub(super) bench: &'a str,
    /// `--quick`: `quick_flags` for criterion and `COURIER_BENCH_QUICK=1`.
    pub(super) quick: bool,
    /// Criterion's flags for `--quick` (shorter warm-up and measurement).
    pub(super) quick_flags: &'a [&'a str],
    /// Where criterion writes (`CRITERION_HOME`).
    pub(super) criterion_home: &'a Path,
    /// The variables that tell the target where its servers are.
    pub(super) env: Vec<(&'static str, OsString)>,
    /// Processes of ours that the noise measurement leaves out (nginx).
    pub(super) exclude: Vec<u32>,
}

/// What [`run_pinned`] hands back.
pub(super) struct PinnedRun {
    /// Whether `cargo bench` succeeded.
    pub(super) result: Result<()>,
    /// How busy the machine was besides the bench ([`noise_note`]).
    pub(super) noise: String,
}

/// Runs `cargo bench -p courier-client --bench <bench>` under `taskset -c
/// CLIENT_CPU` (unpinned without taskset), measuring the load average
/// before and the CPU time other processes used during the run.
pub(super) fn run_pinned(pin: &Pinning, spec: &PinnedBench<'_>) -> PinnedRun {
    let load = load_average();
    let before = OthersSnapshot::take(&spec.exclude);
    let timer = util::step(&format!(
        "cargo bench -p courier-client --bench {} (client on CPU {CLIENT_CPU}, servers on \
         CPU {SERVER_CPU})",
        spec.bench
    ));
    let cargo = util::cargo();
    let mut cmd = pin.command(CLIENT_CPU, cargo.get_program());
    cmd.current_dir(util::workspace_root())
        .args(["bench", "-p", "courier-client", "--bench", spec.bench])
        .args(["--", "--noplot"]);
    if spec.quick {
        cmd.args(spec.quick_flags).env("COURIER_BENCH_QUICK", "1");
    }
    cmd.env("CRITERION_HOME", spec.criterion_home);
    for (var, value) in &spec.env {
        cmd.env(var, value);
    }
    let result = util::run(&mut cmd);
    let took = timer.elapsed();
    eprintln!("    done in {}", util::secs(took));
    let after = OthersSnapshot::take(&spec.exclude);
    PinnedRun {
        result,
        noise: noise_note(load, after.since(&before), took),
    }
}

/// `<criterion_home>/<file>`, where the bench appends its figures:
/// created the directory, removed what an earlier run left there.
pub(super) fn fresh_extra(criterion_home: &Path, file: &str) -> Result<std::path::PathBuf> {
    fs::create_dir_all(criterion_home)
        .map_err(|e| format!("cannot create {}: {e}", criterion_home.display()))?;
    let path = criterion_home.join(file);
    if path.exists() {
        fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// Writes `rows` aligned: the first column and the last (targets) to
/// the left, numbers to the right.
pub(super) fn write_rows(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            line.push_str(if i == 0 { " " } else { "  " });
            if i == 0 || i + 1 == columns {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `1234567.8` as `1,234,568`.
pub(super) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Half the interquartile range of a median rate, relative to it:
/// `±1.2%`.
pub(super) fn spread_cell(median: f64, q1: f64, q3: f64) -> String {
    format!("±{:.1}%", (q3 - q1) / 2.0 / median * 100.0)
}

/// A paired ratio as shown: `1.02x`, or `-` without one.
pub(super) fn ratio_cell(ratio: Option<f64>) -> String {
    ratio.map_or("-".into(), |r| format!("{r:.2}x"))
}

/// The ratio to `client` of `ratios` (paired ratios to each of `clients`,
/// in the bench's order, as [`Rounds::rate_vs`]); an unknown name counts
/// as the first client.
pub(super) fn ratio_to<const N: usize>(
    clients: &[&str; N],
    ratios: Option<[f64; N]>,
    client: &str,
) -> Option<f64> {
    let index = clients.iter().position(|c| *c == client).unwrap_or(0);
    ratios.map(|r| r[index])
}

/// Criterion's rate for `group/id` (elements per second, from this run's
/// results, those written at or after `started`): its median and the
/// bounds from the median's confidence interval, low and high. `None`
/// when the benchmark declared no elements, or when there is no result
/// (noted in `missing`).
pub(super) fn criterion_rate(
    home: &Path,
    group: &str,
    id: &str,
    started: SystemTime,
    missing: &mut Vec<String>,
) -> Option<(f64, f64, f64)> {
    match read_result(home, group, id, started) {
        Ok(m) => m.elements.map(|n| {
            let per_sec = |ns: f64| n as f64 / (ns * 1e-9);
            (per_sec(m.median_ns), per_sec(m.ci_ns.1), per_sec(m.ci_ns.0))
        }),
        Err(e) => {
            missing.push(format!("{group}/{id} (criterion): {e}"));
            None
        }
    }
}

/// A rate of [`criterion_rate`] as shown: `17,157 ±1.8%` (half its
/// confidence interval, relative), or `missing`.
pub(super) fn criterion_cell(rate: Option<(f64, f64, f64)>) -> String {
    rate.map_or("missing".into(), |(m, lo, hi)| {
        format!("{} ±{:.1}%", thousands(m), (hi - lo) / 2.0 / m * 100.0)
    })
}

/// What the bench appended to `COURIER_BENCH_EXTRA`, its ratios to the
/// `N` clients of the bench.
#[derive(Debug)]
pub(super) struct Extra<const N: usize> {
    /// `(group, client/parameter)` to its figures from interleaved rounds.
    pub(super) rounds: HashMap<(String, String), Rounds<N>>,
    /// Client to its idle-pool figures.
    pub(super) rss: HashMap<String, Rss>,
}

/// One client's figures in one case, from interleaved rounds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rounds<const N: usize> {
    /// Median block rate.
    pub(super) rate: f64,
    /// Its first quartile.
    pub(super) q1: f64,
    /// Its third quartile.
    pub(super) q3: f64,
    /// Median CPU nanoseconds per operation.
    pub(super) cpu_ns: f64,
    /// How many rounds.
    pub(super) rounds: u64,
    /// Operations per timed block.
    pub(super) per_block: u64,
    /// Operations in flight (connections, for the WebSocket bench).
    pub(super) concurrency: u64,
    /// Paired ratios to each client of the bench, in its order, when all
    /// are there.
    pub(super) rate_vs: Option<[f64; N]>,
    pub(super) cpu_vs: Option<[f64; N]>,
    /// The share of the blocks' wall time the server's CPU was busy, where
    /// the bench measured it.
    pub(super) server_busy: Option<f64>,
}

/// One client's idle-pool memory figures.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rss {
    pub(super) kib_per_conn: f64,
    pub(super) new_conns: u64,
    pub(super) pool_idle: Option<u64>,
    pub(super) before_kib: f64,
    pub(super) after_kib: f64,
}

impl<const N: usize> Extra<N> {
    /// Reads the lines of `path` (none if it does not exist); `clients`
    /// names the ratios (`rate_vs_<client>`), in the bench's order.
    pub(super) fn read(path: &Path, clients: &[&str; N]) -> Result<Extra<N>> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Extra::parse(&text, clients).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The figures from the rounds of `group/id` (`client/parameter`);
    /// noted in `missing` when there are none, or no paired ratios.
    pub(super) fn rounds_of(
        &self,
        group: &str,
        id: &str,
        missing: &mut Vec<String>,
    ) -> Option<&Rounds<N>> {
        let rounds = self.rounds.get(&(group.to_string(), id.to_string()));
        match rounds {
            Some(r) if r.rate_vs.is_none() || r.cpu_vs.is_none() => {
                missing.push(format!("{group}/{id}: no paired ratios"));
            }
            Some(_) => {}
            None => missing.push(format!("{group}/{id}: no figures from the rounds")),
        }
        rounds
    }

    /// Parses the lines of [`Extra::read`].
    pub(super) fn parse(text: &str, clients: &[&str; N]) -> Result<Extra<N>> {
        let mut extra = Extra {
            rounds: HashMap::new(),
            rss: HashMap::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("bad line `{line}`: {e}"))?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let vs = |prefix: &str| {
                let mut ratios = [f64::NAN; N];
                for (ratio, client) in ratios.iter_mut().zip(clients) {
                    *ratio = f(&format!("{prefix}{client}"));
                }
                ratios.iter().all(|r| r.is_finite()).then_some(ratios)
            };
            match v["kind"].as_str() {
                Some("rounds") => {
                    let rounds = Rounds {
                        rate: f("rate"),
                        q1: f("rate_q1"),
                        q3: f("rate_q3"),
                        cpu_ns: f("cpu_ns_per_op"),
                        rounds: v["rounds"].as_u64().unwrap_or(0),
                        per_block: v["per_block"].as_u64().unwrap_or(0),
                        concurrency: v["concurrency"].as_u64().unwrap_or(0),
                        rate_vs: vs("rate_vs_"),
                        cpu_vs: vs("cpu_vs_"),
                        server_busy: v["server_busy"].as_f64(),
                    };
                    extra.rounds.insert((s("group"), s("id")), rounds);
                }
                Some("rss") => {
                    let rss = Rss {
                        kib_per_conn: f("kib_per_conn"),
                        new_conns: v["new_conns"].as_u64().unwrap_or(0),
                        pool_idle: v["pool_idle"].as_u64(),
                        before_kib: f("rss_before_kib"),
                        after_kib: f("rss_after_kib"),
                    };
                    extra.rss.insert(s("client"), rss);
                }
                _ => return Err(format!("unknown line `{line}`")),
            }
        }
        Ok(extra)
    }
}

/// Whether processes can be pinned (`taskset`, two CPUs or more).
pub(super) struct Pinning {
    taskset: bool,
}

impl Pinning {
    /// Looks for `taskset` and two CPUs; warns when either is missing.
    pub(super) fn detect() -> Pinning {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let taskset = Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !taskset {
            eprintln!("xtask: warning: no taskset (util-linux): client and servers unpinned");
        } else if cpus < 2 {
            eprintln!("xtask: warning: fewer than 2 CPUs: client and servers unpinned");
        }
        Pinning {
            taskset: taskset && cpus >= 2,
        }
    }

    /// `program` to run on `cpu` (unpinned without taskset).
    pub(super) fn command(&self, cpu: &str, program: &OsStr) -> Command {
        if self.taskset {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpu]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// Whether the client and the servers are pinned apart.
    pub(super) fn pinned(&self) -> bool {
        self.taskset
    }

    /// Where the client bench and the server (`name`, PID `server`) are
    /// allowed to run, as read back.
    pub(super) fn describe(&self, name: &str, server: u32) -> String {
        if !self.taskset {
            return "pinning: none (no taskset or one CPU): expect more noise".into();
        }
        format!(
            "pinning: client bench on CPU {CLIENT_CPU}; {name} on CPU {}",
            cpus_allowed(server).unwrap_or_else(|| "?".into())
        )
    }
}

/// `Cpus_allowed_list` of a process.
pub(super) fn cpus_allowed(pid: u32) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

/// The fields of `/proc/<pid>/stat` after the command name: index 0 is
/// field 3 (state), so field `n` is at `n - 3`.
pub(super) fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU ticks of every other process on the machine: user + system +
/// reaped children (so a compiler that came and went during the run is
/// counted in its cargo's figure), keyed by PID and start time. This
/// process is left out (cargo, the bench and the bench server are its
/// children, reaped into its own counters), and so are the `exclude`d
/// PIDs (nginx). Kernel threads are in (their work may be ours: softirq).
struct OthersSnapshot(HashMap<(u32, u64), u64>);

impl OthersSnapshot {
    fn take(exclude: &[u32]) -> OthersSnapshot {
        let me = std::process::id();
        let mut ticks = HashMap::new();
        let Ok(entries) = fs::read_dir("/proc") else {
            return OthersSnapshot(ticks);
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me || exclude.contains(&pid) {
                continue;
            }
            // utime, stime, cutime, cstime: fields 14 to 17; starttime: 22.
            if let Some(f) = stat_fields(&pid.to_string())
                && f.len() > 19
                // Our own children (cargo and below, the server) are ours.
                && f[1] != u64::from(me)
            {
                ticks.insert((pid, f[19]), f[11] + f[12] + f[13] + f[14]);
            }
        }
        OthersSnapshot(ticks)
    }

    /// Ticks the other processes used from `before` to `self`.
    fn since(&self, before: &OthersSnapshot) -> u64 {
        self.0
            .iter()
            .map(|(key, &t)| t.saturating_sub(before.0.get(key).copied().unwrap_or(0)))
            .sum()
    }
}

/// Which courier was measured: the commit, and whether `sources` (the
/// crates under test) had uncommitted changes (others work in the same
/// tree).
pub(super) fn source_note(sources: &[&str]) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(util::workspace_root())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "courier: not a git checkout".into();
    };
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend(sources);
    match git(&args) {
        Some(changes) if changes.is_empty() => {
            format!(
                "courier: commit {head}, no uncommitted change in {}",
                sources.join(" ")
            )
        }
        Some(changes) => format!(
            "courier: commit {head} plus uncommitted changes to {} file(s) under {}",
            changes.lines().count(),
            sources.join(" ")
        ),
        None => format!("courier: commit {head}"),
    }
}

/// The line saying how busy the machine was besides the benchmark.
fn noise_note(load: Option<f64>, others_ticks: u64, took: Duration) -> String {
    let load = load.map_or("?".into(), |l| format!("{l:.2}"));
    let others = others_ticks as f64 / TICKS_PER_SEC;
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    format!(
        "machine: load average (1 min) {load} before the run; during its {:.0} s, other \
         processes used {others:.1} s of CPU ({:.1}% of the {cores:.0} cores)",
        took.as_secs_f64(),
        others / (took.as_secs_f64() * cores) * 100.0
    )
}

/// A bench server of `courier-test-support` (`bench_server`,
/// `ws_bench_server`), pinned; stopped when dropped.
pub(super) struct BenchServer {
    child: Child,
    /// Held open: the server exits when it closes.
    stdin: Option<ChildStdin>,
    /// The port it printed.
    pub(super) port: u16,
    /// What messages call it (`bench server`).
    label: &'static str,
}

impl BenchServer {
    /// Starts `<target>/release/<bin> --stdin-eof-exits` on
    /// [`SERVER_CPU`] and reads its port from the first line of its
    /// stdout; `label` names it in messages.
    pub(super) fn start(
        target: &Path,
        pin: &Pinning,
        bin: &str,
        label: &'static str,
    ) -> Result<BenchServer> {
        let exe = target.join("release").join(bin);
        let mut cmd = pin.command(SERVER_CPU, exe.as_os_str());
        cmd.arg("--stdin-eof-exits")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", util::describe(&cmd)))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let mut server = BenchServer {
            child,
            stdin,
            port: 0,
            label,
        };
        match (read, line.trim().parse()) {
            (Some(Ok(_)), Ok(port)) => server.port = port,
            _ => {
                return Err(format!(
                    "{bin} printed no port (`{}`)",
                    util::describe(&cmd)
                ));
            }
        }
        eprintln!(
            "[xtask] {label} on 127.0.0.1:{} (pid {})",
            server.port,
            server.child.id()
        );
        Ok(server)
    }

    /// Its PID.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin, waits a little, kills its PID if still running.
    pub(super) fn stop(mut self) -> Result<()> {
        self.shut()
    }

    fn shut(&mut self) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break,
            }
        }
        let _ = self.child.kill();
        self.child
            .wait()
            .map(drop)
            .map_err(|e| format!("cannot stop the {}: {e}", self.label))
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None))
            && let Err(e) = self.shut()
        {
            eprintln!("xtask: {e}");
        }
    }
}
