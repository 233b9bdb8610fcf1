//! `cargo xtask fuzz-smoke`: every fuzz target of `fuzz/`, for a bounded time.
//!
//! The smoke run proves the targets build and survive a few seconds each,
//! starting from the committed seeds; long campaigns are run by hand (see
//! `fuzz/README.md`). Steps:
//!
//! 1. Make sure `cargo fuzz` exists (`cargo install cargo-fuzz --locked`
//!    otherwise).
//! 2. Pick a toolchain that can build libFuzzer targets: nightly when rustup
//!    has one, else the toolchain running this xtask with
//!    `RUSTC_BOOTSTRAP=1` (cargo-fuzz passes `-Z` flags to rustc). In the
//!    automatic mode, a toolchain whose build fails hands over to the next.
//! 3. Build every target once, then run each for the given seconds with
//!    `fuzz/corpus/<target>` (the gitignored working corpus, seeded from
//!    the committed `fuzz/seeds/<target>`) and the seeds as input.
//! 4. Print one line per target (runs, exec/s, new units, peak RSS) and
//!    fail naming each target that crashed and its artifact.
//!
//! Every child process runs under a deadline and is killed with its
//! descendants when it passes it; libFuzzer's `-max_total_time` ends the
//! runs long before that.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{self, Result};

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 10;

/// Deadline of quick probes (`--version`).
const PROBE_LIMIT: Duration = Duration::from_secs(120);

/// Deadline of `cargo install cargo-fuzz`.
const INSTALL_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Deadline of building every target.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Time a run may take beyond its `-max_total_time` (start-up, loading the
/// corpus, cargo's freshness check) before it is killed.
const RUN_SLACK: Duration = Duration::from_secs(300);

/// Lines of a failed run's log printed to the terminal.
const LOG_TAIL: usize = 60;

/// How `cargo fuzz` gets a compiler that accepts its `-Z` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    /// `rustup run nightly cargo fuzz`.
    Nightly,
    /// The cargo running this xtask, with `RUSTC_BOOTSTRAP=1`.
    Bootstrap,
}

impl Toolchain {
    /// A `cargo` command on this toolchain, in the workspace root.
    fn cargo(self) -> Command {
        match self {
            Toolchain::Nightly => {
                let mut cmd = Command::new("rustup");
                cmd.args(["run", "nightly", "cargo"])
                    .current_dir(util::workspace_root());
                cmd
            }
            Toolchain::Bootstrap => {
                let mut cmd = util::cargo();
                cmd.env("RUSTC_BOOTSTRAP", "1");
                cmd
            }
        }
    }

    /// The command line that runs `cargo fuzz` on this toolchain by hand.
    fn invocation(self) -> &'static str {
        match self {
            Toolchain::Nightly => "cargo +nightly fuzz",
            Toolchain::Bootstrap => "RUSTC_BOOTSTRAP=1 cargo fuzz",
        }
    }

    /// How the toolchain is named in messages.
    fn describe(self) -> &'static str {
        match self {
            Toolchain::Nightly => "nightly (rustup)",
            Toolchain::Bootstrap => "current toolchain with RUSTC_BOOTSTRAP=1",
        }
    }
}

/// Which toolchains to try, from `--toolchain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    /// Nightly if rustup has it, then the bootstrap fallback.
    Auto,
    /// Only this one.
    Only(Toolchain),
}

/// Runs the command line `cargo xtask fuzz-smoke [--seconds N] [--toolchain auto|nightly|bootstrap]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut choice = Choice::Auto;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("fuzz-smoke: {flag} needs a value"))
        };
        match flag {
            "--seconds" => {
                let text = value()?;
                seconds = text.parse().map_err(|_| {
                    format!("fuzz-smoke: --seconds takes a whole number, not `{text}`")
                })?;
            }
            "--toolchain" => {
                choice = match value()?.as_str() {
                    "auto" => Choice::Auto,
                    "nightly" => Choice::Only(Toolchain::Nightly),
                    "bootstrap" | "stable" => Choice::Only(Toolchain::Bootstrap),
                    other => {
                        return Err(format!(
                            "fuzz-smoke: --toolchain is auto, nightly or bootstrap, not `{other}`"
                        ));
                    }
                };
            }
            other => return Err(format!("fuzz-smoke: unknown option `{other}`")),
        }
    }
    match choice {
        Choice::Auto => smoke(seconds),
        Choice::Only(_) => smoke_with(seconds, choice),
    }
}

/// Builds every fuzz target and runs each for `seconds` seconds from its
/// committed seeds, on the first toolchain that can build them.
pub fn smoke(seconds: u64) -> Result<()> {
    smoke_with(seconds, Choice::Auto)
}

/// [`smoke`] with the toolchains to try.
fn smoke_with(seconds: u64, choice: Choice) -> Result<()> {
    if seconds == 0 {
        // libFuzzer reads -max_total_time=0 as "no limit".
        return Err("fuzz-smoke: --seconds must be at least 1".into());
    }
    let fuzz_dir = util::workspace_root().join("fuzz");
    let targets = targets(&fuzz_dir)?;
    ensure_cargo_fuzz()?;
    let toolchain = build(&fuzz_dir, choice)?;

    let started = util::step(&format!(
        "fuzz smoke: {} targets x {seconds}s on {}",
        targets.len(),
        toolchain.describe()
    ));
    let logs = fuzz_dir.join("target").join("fuzz-smoke");
    fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let mut failures = Vec::new();
    for target in &targets {
        let outcome = run_target(toolchain, &fuzz_dir, &logs, target, seconds)?;
        eprintln!("{}", outcome.line(target));
        if let Some(failure) = outcome.failure(toolchain, target) {
            eprintln!(
                "\n--- last lines of {} ---\n{}--- end of log ---\n",
                outcome.log.display(),
                outcome.tail
            );
            failures.push(failure);
        }
    }

    eprintln!(
        "fuzz smoke: {} of {} targets passed in {}",
        targets.len() - failures.len(),
        targets.len(),
        util::secs(started.elapsed())
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The fuzz targets: the file stems of `fuzz/fuzz_targets/*.rs`, each of
/// which must have committed seeds.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut targets = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            targets.push(stem.to_owned());
        }
    }
    targets.sort();
    if targets.is_empty() {
        return Err(format!("no fuzz targets in {}", dir.display()));
    }
    for target in &targets {
        let seeds = fuzz_dir.join("seeds").join(target);
        if !seeds.is_dir() {
            return Err(format!(
                "fuzz target `{target}` has no committed seeds in {}",
                seeds.display()
            ));
        }
    }
    Ok(targets)
}

/// Installs cargo-fuzz unless `cargo fuzz --version` already works.
fn ensure_cargo_fuzz() -> Result<()> {
    let mut probe = util::cargo();
    probe
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if run_bounded(&mut probe, PROBE_LIMIT).is_ok_and(|status| status.success()) {
        return Ok(());
    }
    let started = util::step("installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    let mut install = util::cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    let status = run_bounded(&mut install, INSTALL_LIMIT)?;
    check(&install, status)?;
    eprintln!("cargo-fuzz installed in {}", util::secs(started.elapsed()));
    Ok(())
}

/// Builds every target on the first workable toolchain of `choice` and
/// returns that toolchain.
fn build(fuzz_dir: &Path, choice: Choice) -> Result<Toolchain> {
    let candidates = match choice {
        Choice::Only(toolchain) => vec![toolchain],
        Choice::Auto if has_nightly() => vec![Toolchain::Nightly, Toolchain::Bootstrap],
        Choice::Auto => vec![Toolchain::Bootstrap],
    };
    let mut errors = Vec::new();
    for toolchain in candidates {
        let started = util::step(&format!(
            "building the fuzz targets on {}",
            toolchain.describe()
        ));
        let mut cmd = toolchain.cargo();
        cmd.args(["fuzz", "build", "--fuzz-dir"]).arg(fuzz_dir);
        match run_bounded(&mut cmd, BUILD_LIMIT).and_then(|status| check(&cmd, status)) {
            Ok(()) => {
                eprintln!("built in {}", util::secs(started.elapsed()));
                return Ok(toolchain);
            }
            Err(e) => {
                eprintln!("fuzz build on {} failed: {e}", toolchain.describe());
                errors.push(e);
            }
        }
    }
    Err(format!(
        "no toolchain could build the fuzz targets: {}",
        errors.join("; ")
    ))
}

/// True when rustup has a nightly toolchain that runs.
fn has_nightly() -> bool {
    let mut probe = Command::new("rustup");
    probe
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    run_bounded(&mut probe, PROBE_LIMIT).is_ok_and(|status| status.success())
}

/// What one target's run showed.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    elapsed: Duration,
    log: PathBuf,
    /// libFuzzer's final `stat::` lines.
    runs: Option<u64>,
    exec_per_sec: Option<u64>,
    new_units: Option<u64>,
    peak_rss_mb: Option<u64>,
    /// Where libFuzzer wrote the input that failed.
    artifact: Option<String>,
    /// The end of the log, kept for a failure.
    tail: String,
}

impl Outcome {
    /// The summary line for `target`.
    fn line(&self, target: &str) -> String {
        let verdict = if self.status.success() {
            "pass"
        } else {
            "FAIL"
        };
        let mut line = format!("  {target:<16} {verdict}  {:>6}", util::secs(self.elapsed));
        let stat = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        let _ = write!(
            line,
            "  {:>9} runs  {:>7} exec/s  {:>5} new units  {:>5} MB peak",
            stat(self.runs),
            stat(self.exec_per_sec),
            stat(self.new_units),
            stat(self.peak_rss_mb)
        );
        line
    }

    /// The error for a failed run, naming the target and its artifact.
    fn failure(&self, toolchain: Toolchain, target: &str) -> Option<String> {
        if self.status.success() {
            return None;
        }
        Some(match &self.artifact {
            Some(artifact) => format!(
                "fuzz target `{target}` failed ({}): input saved to {artifact}; \
                 reproduce with `{} run {target} {artifact}` (full log: {})",
                self.status,
                toolchain.invocation(),
                self.log.display()
            ),
            None => format!(
                "fuzz target `{target}` failed ({}) without saving an input; see {}",
                self.status,
                self.log.display()
            ),
        })
    }
}

/// Seeds the working corpus and fuzzes `target` for `seconds` seconds.
fn run_target(
    toolchain: Toolchain,
    fuzz_dir: &Path,
    logs: &Path,
    target: &str,
    seconds: u64,
) -> Result<Outcome> {
    let seeds = fuzz_dir.join("seeds").join(target);
    let corpus = fuzz_dir.join("corpus").join(target);
    copy_seeds(&seeds, &corpus)?;

    let log = logs.join(format!("{target}.log"));
    let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
    let mut cmd = toolchain.cargo();
    cmd.args(["fuzz", "run", "--fuzz-dir"])
        .arg(fuzz_dir)
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(["-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let started = Instant::now();
    let status = run_bounded(&mut cmd, Duration::from_secs(seconds) + RUN_SLACK)?;
    let elapsed = started.elapsed();
    let text = fs::read(&log)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut tail = String::new();
    for line in &lines[lines.len().saturating_sub(LOG_TAIL)..] {
        tail.push_str(line);
        tail.push('\n');
    }
    Ok(Outcome {
        status,
        elapsed,
        runs: stat(&text, "number_of_executed_units"),
        exec_per_sec: stat(&text, "average_exec_per_sec"),
        new_units: stat(&text, "new_units_added"),
        peak_rss_mb: stat(&text, "peak_rss_mb"),
        artifact: artifact(&text),
        log,
        tail,
    })
}

/// Copies every committed seed into the working corpus.
fn copy_seeds(seeds: &Path, corpus: &Path) -> Result<()> {
    fs::create_dir_all(corpus).map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let entries =
        fs::read_dir(seeds).map_err(|e| format!("cannot list {}: {e}", seeds.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", seeds.display()))?;
        let from = entry.path();
        if from.is_file() {
            let to = corpus.join(entry.file_name());
            fs::copy(&from, &to)
                .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// The value of libFuzzer's final `stat::<name>: N` line.
fn stat(log: &str, name: &str) -> Option<u64> {
    let key = format!("stat::{name}:");
    log.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(key.as_str()))
        .and_then(|value| value.trim().parse().ok())
}

/// The path in libFuzzer's "Test unit written to PATH" line.
fn artifact(log: &str) -> Option<String> {
    const MARK: &str = "Test unit written to ";
    log.lines().rev().find_map(|line| {
        let at = line.find(MARK)?;
        Some(line[at + MARK.len()..].trim().to_owned())
    })
}

/// An error unless `status` is a success.
fn check(cmd: &Command, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", util::describe(cmd)))
    }
}

/// Runs `cmd` and waits at most `limit` for it; past that the command and
/// every process it started are killed and the run is an error.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<ExitStatus> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", util::describe(cmd)))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for `{}`: {e}", util::describe(cmd))),
        }
        if started.elapsed() >= limit {
            kill_tree(child.id());
            // The child itself, in case the tree walk is not available.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{}` did not finish within {}; killed",
                util::describe(cmd),
                util::secs(limit)
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Kills `pid` and its descendants (found through Linux's `/proc`), all
/// listed before any is killed so that none escapes by being re-parented.
fn kill_tree(pid: u32) {
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        tree.extend(children(tree[next]));
        next += 1;
    }
    let mut kill = Command::new("kill");
    kill.arg("-KILL")
        .arg("--")
        .args(tree.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Best effort: `kill` itself ends at once, and a process that is gone
    // already needs no killing.
    let _ = kill.status();
}

/// The child processes of `pid` (empty where `/proc` does not list them).
fn children(pid: u32) -> Vec<u32> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let Ok(entries) = fs::read_dir(tasks) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|id| id.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
==1234== ERROR: libFuzzer: deadly signal
artifact_prefix='/w/fuzz/artifacts/h1_head/'; Test unit written to /w/fuzz/artifacts/h1_head/crash-abc
Base64: SFRUUA==
stat::number_of_executed_units: 16
stat::average_exec_per_sec:     0
stat::new_units_added:          3
stat::peak_rss_mb:              42
";

    #[test]
    fn reads_final_stats() {
        assert_eq!(stat(LOG, "number_of_executed_units"), Some(16));
        assert_eq!(stat(LOG, "average_exec_per_sec"), Some(0));
        assert_eq!(stat(LOG, "peak_rss_mb"), Some(42));
        assert_eq!(stat(LOG, "slowest_unit_time_sec"), None);
    }

    #[test]
    fn reads_artifact_path() {
        assert_eq!(
            artifact(LOG).as_deref(),
            Some("/w/fuzz/artifacts/h1_head/crash-abc")
        );
        assert_eq!(artifact("Done 100 runs in 5 second(s)"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn deadline_kills_the_command_and_its_children() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30; wait"]);
        let started = Instant::now();
        let result = run_bounded(&mut cmd, Duration::from_millis(300));
        assert!(result.is_err_and(|e| e.contains("killed")));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn rejects_zero_seconds_and_unknown_options() {
        assert!(run(&["--seconds".into(), "0".into()]).is_err());
        assert!(run(&["--seconds=x".into()]).is_err());
        assert!(run(&["--toolchain".into(), "beta".into()]).is_err());
        assert!(run(&["--fast".into()]).is_err());
    }
}
