//! `cargo xtask bench`: criterion benchmarks, courier side by side with a floor.
//!
//! Speed is only ever judged against a floor measured in the same run on the
//! same machine (a shared, noisy one): each [`Comparison`] names a courier
//! benchmark and the floor it is held to (or another client it is compared
//! with, such as hyper), both criterion ids in one group.
//! The command runs every [`Suite`] with `cargo bench`, reads criterion's
//! results back from `<target>/criterion/<group>/<function>/<param>/new/`
//! (`estimates.json` for the time, `benchmark.json` for the throughput) and
//! prints one table per group:
//!
//! ```text
//! benchmark                        courier MiB/s  floor MiB/s  time ratio (95% CI)  budget
//! courier/small vs httparse/small         993.3       1423.3  1.43 (1.42-1.44)     <= 2.00
//! ```
//!
//! A group whose benchmarks declare no throughput (connection set-up, say)
//! shows each median time per iteration instead of MiB/s.
//!
//! The time ratio is courier's median time per iteration divided by the
//! floor's: 1.00 is as fast as the floor, 2.00 twice as slow. Its interval
//! combines the two medians' 95% confidence intervals. A budget is the ratio
//! an issue asked for; going over it is reported, not failed, since one noisy
//! run proves little. The command fails when a result is missing or was not
//! written by this run.
//!
//! Adding a benchmark means adding a [`Comparison`] (or a [`Suite`], for
//! another bench target).
//!
//! `cargo xtask bench [proto|pool|client|ws]... [--quick]` runs the named
//! suites only (all of them without a name):
//!
//! * `proto`: `courier-proto`'s `parse` target (head parsing, chunked
//!   decoding, gzip);
//! * `pool`: `courier-pool`'s `connect` target (pool checkout, TCP and TLS
//!   connects);
//! * `client`: the end-to-end client benchmark, `courier-client`'s `http`
//!   target (see [`client`]): courier beside reqwest, hyper-util's legacy
//!   client and a hand-written floor against a hyper server and nginx, the
//!   servers pinned to CPU 1 and the clients to CPU 0, printed as one table
//!   per case with ratios to reqwest and to the floor and the issue's
//!   targets checked;
//! * `ws`: the WebSocket echo benchmark, `courier-client`'s `ws` target
//!   (see [`ws`]): courier beside fastwebsockets, tokio-tungstenite and a
//!   hand-written floor against the hand-written echo server of
//!   `courier-test-support`, pinned the same way, one table per message
//!   size and concurrency with ratios to fastwebsockets and to the floor.
//!
//! The two end-to-end suites share their machinery (pinning, the servers'
//! lifetime, the noise notes, the figures of the interleaved rounds and
//! the table layout) in [`rounds`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::util::{self, Result};

mod rounds;
mod ws;

/// One `cargo bench` target and the comparisons read from its results.
struct Suite {
    /// The name that selects it on the command line.
    name: &'static str,
    /// The package holding the bench target.
    package: &'static str,
    /// The `[[bench]]` name.
    bench: &'static str,
    /// Features to enable (none: the target's required features are defaults).
    features: &'static [&'static str],
    /// What to compare once it has run.
    comparisons: &'static [Comparison],
}

/// A courier benchmark and the floor (or other client) it is measured against.
struct Comparison {
    /// The criterion group both benchmarks belong to.
    group: &'static str,
    /// Courier's benchmark, `function/parameter` within the group.
    courier: &'static str,
    /// The floor's benchmark, `function/parameter` within the group; or
    /// another client's (`hyper/...`), which the table reads the same way.
    floor: &'static str,
    /// The time ratio (courier / floor) courier aims to stay under, if any.
    budget: Option<f64>,
}

impl Comparison {
    /// A comparison of `courier` with `floor` in `group`.
    const fn new(
        group: &'static str,
        courier: &'static str,
        floor: &'static str,
        budget: Option<f64>,
    ) -> Comparison {
        Comparison {
            group,
            courier,
            floor,
            budget,
        }
    }
}

/// Head parsing should cost at most twice bare httparse.
const HEAD_BUDGET: Option<f64> = Some(2.0);
/// Chunked decoding should cost at most 1.5 times a bare httparse loop.
const CHUNKED_BUDGET: Option<f64> = Some(1.5);

/// A new connection (TCP, TCP + TLS) should cost at most a quarter more
/// than bare tokio (+ tokio-rustls): generous, the OS does most of the work.
const CONNECT_BUDGET: Option<f64> = Some(1.25);
/// Against hyper (the stack under reqwest), courier should not be more than
/// a tenth slower at the same job.
const HYPER_BUDGET: Option<f64> = Some(1.1);

/// Every benchmark suite, in the order they run.
const SUITES: &[Suite] = &[
    Suite {
        name: "proto",
        package: "courier-proto",
        bench: "parse",
        features: &[],
        comparisons: &[
            Comparison::new("head", "courier/small", "httparse/small", HEAD_BUDGET),
            Comparison::new("head", "courier/typical", "httparse/typical", HEAD_BUDGET),
            Comparison::new("head", "courier/large", "httparse/large", HEAD_BUDGET),
            Comparison::new("head", "courier+headermap/small", "httparse/small", None),
            Comparison::new(
                "head",
                "courier+headermap/typical",
                "httparse/typical",
                None,
            ),
            Comparison::new("head", "courier+headermap/large", "httparse/large", None),
            Comparison::new("chunked", "courier/1KiB", "httparse/1KiB", CHUNKED_BUDGET),
            Comparison::new("chunked", "courier/16KiB", "httparse/16KiB", CHUNKED_BUDGET),
            Comparison::new("chunked", "courier/64KiB", "httparse/64KiB", CHUNKED_BUDGET),
            Comparison::new(
                "chunked",
                "courier/16KiB+ext",
                "httparse/16KiB+ext",
                CHUNKED_BUDGET,
            ),
            Comparison::new("decode", "courier/gzip", "flate2/gzip", None),
        ],
    },
    Suite {
        name: "pool",
        package: "courier-pool",
        bench: "connect",
        features: &[],
        comparisons: &[
            // The floor is a bare Mutex<Vec> with the same liveness probe:
            // what the pool's bookkeeping costs, for information.
            Comparison::new(
                "pool_acquire_release",
                "courier/keepalive",
                "floor/mutex_vec",
                None,
            ),
            Comparison::new(
                "pool_acquire_release",
                "courier/keepalive",
                "hyper/legacy_pool",
                HYPER_BUDGET,
            ),
            Comparison::new("connect_tcp", "courier/tcp", "floor/tokio", CONNECT_BUDGET),
            Comparison::new(
                "connect_tcp",
                "courier/tcp",
                "hyper/http_connector",
                HYPER_BUDGET,
            ),
            Comparison::new(
                "connect_tls",
                "courier/tls",
                "floor/tokio_rustls",
                CONNECT_BUDGET,
            ),
            Comparison::new(
                "connect_tls",
                "courier/tls",
                "hyper/https_connector",
                HYPER_BUDGET,
            ),
        ],
    },
];

/// Criterion flags for `--quick`: shorter warm-up and measurement (noisier).
const QUICK_FLAGS: &[&str] = &["--warm-up-time", "0.5", "--measurement-time", "1"];

/// Runs the benchmarks and prints the ratio tables.
///
/// # Errors
///
/// An unknown option, a failing `cargo bench`, or a comparison whose results
/// are missing or stale.
pub fn run(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut names = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            name if SUITES.iter().any(|s| s.name == name)
                || name == client::NAME
                || name == ws::NAME =>
            {
                names.push(name);
            }
            other => {
                return Err(format!(
                    "bench: unknown option or suite `{other}` (usage: cargo xtask bench \
                     [proto|pool|client|ws]... [--quick])"
                ));
            }
        }
    }
    let selected = |name: &str| names.is_empty() || names.contains(&name);
    let suites: Vec<&'static Suite> = SUITES.iter().filter(|s| selected(s.name)).collect();
    let target = target_dir()?;
    let criterion_home = target.join("criterion");
    // Results older than this were not written by this run.
    let started = SystemTime::now();
    for suite in &suites {
        let timer = util::step(&format!(
            "cargo bench -p {} --bench {}",
            suite.package, suite.bench
        ));
        let mut cmd = util::cargo();
        cmd.args(["bench", "-p", suite.package, "--bench", suite.bench]);
        if !suite.features.is_empty() {
            cmd.args(["--features", &suite.features.join(",")]);
        }
        cmd.args(["--", "--noplot"]);
        if quick {
            cmd.args(QUICK_FLAGS);
        }
        // Pin where criterion writes, so that it is where the results are read.
        cmd.env("CRITERION_HOME", &criterion_home);
        util::run(&mut cmd)?;
        eprintln!("    done in {}", util::secs(timer.elapsed()));
    }

    let client_report = if selected(client::NAME) {
        Some(client::run(quick, &target, &criterion_home, started)?)
    } else {
        None
    };
    let ws_report = if selected(ws::NAME) {
        Some(ws::run(quick, &target, &criterion_home, started)?)
    } else {
        None
    };

    let mut missing = Vec::new();
    let mut tables: BTreeMap<&str, Vec<Row>> = BTreeMap::new();
    let mut order = Vec::new();
    for suite in &suites {
        for cmp in suite.comparisons {
            let courier = read_result(&criterion_home, cmp.group, cmp.courier, started);
            let floor = read_result(&criterion_home, cmp.group, cmp.floor, started);
            for (id, result) in [(cmp.courier, &courier), (cmp.floor, &floor)] {
                if let Err(e) = result {
                    missing.push(format!("{}/{id}: {e}", cmp.group));
                }
            }
            if !order.contains(&cmp.group) {
                order.push(cmp.group);
            }
            tables.entry(cmp.group).or_default().push(Row {
                cmp,
                courier: courier.ok(),
                floor: floor.ok(),
            });
        }
    }

    let mut out = String::new();
    if !order.is_empty() {
        let _ = writeln!(
            out,
            "\ncourier vs floor (or vs hyper): MiB/s, or time per iteration where no \
             throughput is declared, from each benchmark's median; time ratio = courier time / \
             the time of the benchmark after \"vs\" (1.00 = as fast, lower is better)"
        );
    }
    for group in order {
        render_table(&mut out, group, &tables[group]);
    }
    for report in [client_report, ws_report].into_iter().flatten() {
        out.push_str(&report.tables);
        missing.extend(report.missing);
    }
    if quick {
        let _ = writeln!(out, "\n(--quick: short measurements, expect more noise)");
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| format!("bench: cannot write the results: {e}"))?;

    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bench: {} result(s) missing under {}:\n  {}",
            missing.len(),
            criterion_home.display(),
            missing.join("\n  ")
        ))
    }
}

/// One comparison with whatever results were found.
struct Row {
    cmp: &'static Comparison,
    courier: Option<Measured>,
    floor: Option<Measured>,
}

/// One benchmark's result: median time per iteration and its throughput.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Median time per iteration, in nanoseconds.
    median_ns: f64,
    /// Lower and upper bound of the median's confidence interval, in ns.
    ci_ns: (f64, f64),
    /// Bytes processed per iteration, when the benchmark declared them.
    bytes: Option<u64>,
    /// Elements (requests, say) per iteration, when declared instead.
    elements: Option<u64>,
}

impl Measured {
    /// Throughput in MiB/s (as criterion prints it), if bytes were declared.
    fn mib_per_s(&self) -> Option<f64> {
        let bytes = self.bytes? as f64;
        Some(bytes / (self.median_ns * 1e-9) / (1024.0 * 1024.0))
    }
}

/// The parts of criterion's `estimates.json` read here.
#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

/// One statistic of `estimates.json`, in nanoseconds.
#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: ConfidenceInterval,
}

/// A confidence interval of `estimates.json` (95% by default).
#[derive(Deserialize)]
struct ConfidenceInterval {
    lower_bound: f64,
    upper_bound: f64,
}

/// The parts of criterion's `benchmark.json` read here.
#[derive(Deserialize)]
struct Benchmark {
    /// Criterion's `Throughput`, externally tagged: `{"Bytes": n}`,
    /// `{"BytesDecimal": n}`, `{"Elements": n}` or null.
    throughput: Option<serde_json::Value>,
}

/// Reads the result of `group/id` written at or after `since`.
fn read_result(home: &Path, group: &str, id: &str, since: SystemTime) -> Result<Measured> {
    let mut dir = home.join(filename_safe(group));
    for part in id.split('/') {
        dir.push(filename_safe(part));
    }
    let dir = dir.join("new");
    let estimates_path = dir.join("estimates.json");
    let modified = std::fs::metadata(&estimates_path)
        .and_then(|m| m.modified())
        .map_err(|_| "no results (did the benchmark run?)".to_string())?;
    if modified < since {
        return Err("results are from an earlier run (did the benchmark run?)".into());
    }
    let estimates: Estimates = read_json(&estimates_path)?;
    let benchmark: Benchmark = read_json(&dir.join("benchmark.json"))?;
    let bytes = benchmark.throughput.as_ref().and_then(|t| {
        t.get("Bytes")
            .or_else(|| t.get("BytesDecimal"))
            .and_then(serde_json::Value::as_u64)
    });
    let elements = benchmark
        .throughput
        .as_ref()
        .and_then(|t| t.get("Elements").and_then(serde_json::Value::as_u64));
    let median = estimates.median;
    Ok(Measured {
        median_ns: median.point_estimate,
        ci_ns: (
            median.confidence_interval.lower_bound,
            median.confidence_interval.upper_bound,
        ),
        bytes,
        elements,
    })
}

/// Reads and parses one JSON file.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// A criterion id part as criterion names its directory.
fn filename_safe(part: &str) -> String {
    part.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_")
}

/// The cargo target directory, where criterion keeps its results.
fn target_dir() -> Result<PathBuf> {
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    let json =
        util::output(util::cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let metadata: Metadata =
        serde_json::from_str(&json).map_err(|e| format!("cannot parse cargo metadata: {e}"))?;
    Ok(metadata.target_directory)
}

/// Appends the table of one group to `out`.
fn render_table(out: &mut String, group: &str, rows: &[Row]) {
    // Rates when the group declares throughput, times per iteration otherwise.
    let rates = rows.iter().any(|row| {
        [&row.courier, &row.floor]
            .into_iter()
            .flatten()
            .any(|m| m.bytes.is_some())
    });
    let cells: Vec<[String; 5]> = rows.iter().map(|row| row_cells(row, rates)).collect();
    let (courier_head, floor_head) = if rates {
        ("courier MiB/s", "floor MiB/s")
    } else {
        ("courier time", "vs time")
    };
    let header = [
        "benchmark".to_string(),
        courier_head.into(),
        floor_head.into(),
        "time ratio (95% CI)".into(),
        "budget".into(),
    ];
    let mut widths = header.each_ref().map(String::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let _ = writeln!(out, "\n{group}");
    for row in std::iter::once(&header).chain(&cells) {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
}

/// The cells of one table row: MiB/s when `rates`, else median times.
fn row_cells(row: &Row, rates: bool) -> [String; 5] {
    let name = format!("{} vs {}", row.cmp.courier, row.cmp.floor);
    let rate = |m: &Option<Measured>| match m {
        None => "missing".to_string(),
        Some(m) if !rates => format_time(m.median_ns),
        Some(m) => m.mib_per_s().map_or("-".into(), |r| {
            if r >= 1000.0 {
                format!("{r:.0}")
            } else {
                format!("{r:.1}")
            }
        }),
    };
    let (ratio, over) = match (&row.courier, &row.floor) {
        (Some(c), Some(f)) => {
            let ratio = c.median_ns / f.median_ns;
            let low = c.ci_ns.0 / f.ci_ns.1;
            let high = c.ci_ns.1 / f.ci_ns.0;
            let over = row.cmp.budget.is_some_and(|b| ratio > b);
            (format!("{ratio:.2} ({low:.2}-{high:.2})"), over)
        }
        _ => ("missing".to_string(), false),
    };
    let budget = match row.cmp.budget {
        None => "-".to_string(),
        Some(b) if over => format!("<= {b:.2} OVER"),
        Some(b) => format!("<= {b:.2}"),
    };
    [name, rate(&row.courier), rate(&row.floor), ratio, budget]
}

/// A time in nanoseconds with a unit that keeps it short, as criterion
/// prints it (`266.52 ns`, `33.00 µs`).
fn format_time(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    format!("{value:.2} {unit}")
}

/// `cargo xtask bench client`: the end-to-end client benchmark.
///
/// Steps:
///
/// 1. Build the bench server (`courier-test-support`, feature
///    `bench-server`, release) and the `http` bench target of
///    `courier-client`.
/// 2. Start the bench server pinned to CPU 1 (`taskset -c 1`), reading its
///    port from its stdout; it also exits when its stdin (a pipe held here)
///    closes, so it never outlives this process.
/// 3. Start an nginx of its own from `../shared/peers/start-nginx.sh` under
///    `taskset -c 1` (the master and its worker inherit the affinity), in
///    `<target>/peers/bench-<secs>-<pid>/`, a name `cargo xtask peers` and
///    `cargo xtask test` leave alone (they reap `run-*` only). Without the
///    shared directory or nginx, its cases are left out with a warning.
///    Its configuration is then tuned for serving small files fast and
///    reloaded (`Nginx::tune`: no access log, `open_file_cache`), so that
///    the client, not nginx, is the bottleneck.
/// 4. Run `cargo bench -p courier-client --bench http` under `taskset -c 0`
///    with `COURIER_BENCH_SERVER`, `COURIER_BENCH_NGINX` and
///    `COURIER_BENCH_EXTRA` set (see the bench's module docs).
/// 5. Stop nginx (`stop.sh` on its directory: only the PIDs it recorded)
///    and the server (its stdin closed, then its PID killed if need be).
/// 6. Read what the bench appended to `<criterion>/client-http-extra.jsonl`
///    (every case measured in interleaved rounds: rates, CPU per operation
///    and paired ratios; and the idle-pool memory) and criterion's medians
///    of the small GETs, and print one table per case: each client's
///    figures, ratios to reqwest and to the floor (paired by round), the
///    criterion median for the GETs, and the issue's targets checked on
///    courier's row (✓ met, ✗ missed, ? missing).
///
/// Why rounds: on this shared machine one client's rate moved by a factor
/// of two within seconds, so criterion's one benchmark after the other
/// compared moments more than clients; a ratio taken within a round (all
/// four clients within about half a second) cancels that.
///
/// The machine is shared: the tables come with the commit measured (and
/// whether its sources had uncommitted changes), the 1-minute load average
/// before the run and the CPU time other processes used during it.
mod client {
    use std::ffi::OsStr;
    use std::fmt::Write as _;
    use std::fs;
    use std::net::{Ipv4Addr, TcpListener};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::QUICK_FLAGS;
    use super::rounds::{
        BenchServer, Extra, PinnedBench, Pinning, Report, SERVER_CPU, cpus_allowed, criterion_cell,
        criterion_rate, fresh_extra, ratio_cell, ratio_to, run_pinned, source_note, spread_cell,
        stat_fields, thousands, write_rows,
    };
    use crate::util::{self, Result};

    /// The suite's name on the command line.
    pub(super) const NAME: &str = "client";

    /// The clients of the bench, in table order.
    const CLIENTS: [&str; 4] = ["courier", "reqwest", "hyper-util", "floor"];

    /// The file under the criterion directory the bench appends CPU and
    /// memory figures to.
    const EXTRA_FILE: &str = "client-http-extra.jsonl";

    /// The crates whose sources the figures measure.
    const SOURCES: &[&str] = &["crates/proto/src", "crates/pool/src", "crates/client/src"];

    /// What a case's throughput counts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Unit {
        /// Requests per second; CPU in µs per request.
        Requests,
        /// MB/s (10^6 bytes); CPU in ms per 100 MiB download.
        Download,
        /// MB/s; CPU in µs per 1 MiB upload.
        Upload,
    }

    impl Unit {
        fn rate_head(self) -> &'static str {
            match self {
                Unit::Requests => "req/s",
                Unit::Download | Unit::Upload => "MB/s",
            }
        }

        fn cpu_head(self) -> &'static str {
            match self {
                Unit::Requests => "CPU µs/req",
                Unit::Download => "CPU ms/download",
                Unit::Upload => "CPU µs/upload",
            }
        }

        /// CPU nanoseconds per iteration in the unit of [`Unit::cpu_head`].
        fn cpu_cell(self, ns: f64) -> String {
            match self {
                Unit::Requests => format!("{:.2}", ns / 1e3),
                Unit::Download => format!("{:.1}", ns / 1e6),
                Unit::Upload => format!("{:.0}", ns / 1e3),
            }
        }
    }

    /// One table: a criterion group on one server, and the targets courier
    /// is held to there.
    struct Case {
        title: &'static str,
        group: &'static str,
        server: &'static str,
        unit: Unit,
        /// Courier's CPU per iteration at most this many times the floor's.
        cpu_vs_floor: Option<f64>,
        /// Courier's throughput at least this many times the floor's.
        rate_vs_floor: Option<f64>,
        /// Courier's throughput above hyper-util's.
        beat_hyper: bool,
        /// The issue's anchors, printed under the table.
        note: Option<&'static str>,
    }

    /// Every case, in print order. The targets are the issue's: courier
    /// within 1.3x the floor's CPU per small GET at concurrency 1 and 64,
    /// above hyper-util's throughput everywhere, 100 MiB downloads at 0.95x
    /// the floor, 1 MiB uploads at 0.97x (and at most 12 KiB per idle
    /// pooled connection, [`RSS_TARGET_KIB`]).
    const CASES: &[Case] = &[
        Case {
            title: "GET /small (13 B), concurrency 1, bench server (hyper)",
            group: "client_get_c1",
            server: "bench-server",
            unit: Unit::Requests,
            cpu_vs_floor: Some(1.3),
            rate_vs_floor: None,
            beat_hyper: true,
            note: None,
        },
        Case {
            title: "GET /small (13 B), concurrency 64, bench server (hyper)",
            group: "client_get_c64",
            server: "bench-server",
            unit: Unit::Requests,
            cpu_vs_floor: Some(1.3),
            rate_vs_floor: None,
            beat_hyper: true,
            note: Some(
                "issue anchors (CPU per request): floor 3.7 µs, hyper-util 6.5 µs (1.8x), \
                 reqwest 9.2 µs (2.5x)",
            ),
        },
        Case {
            title: "GET /hello.txt (12 B), concurrency 1, nginx",
            group: "client_get_c1",
            server: "nginx",
            unit: Unit::Requests,
            cpu_vs_floor: Some(1.3),
            rate_vs_floor: None,
            beat_hyper: true,
            note: None,
        },
        Case {
            title: "GET /hello.txt (12 B), concurrency 64, nginx",
            group: "client_get_c64",
            server: "nginx",
            unit: Unit::Requests,
            cpu_vs_floor: Some(1.3),
            rate_vs_floor: None,
            beat_hyper: true,
            note: Some(
                "nginx tuned for the bench (access_log off, open_file_cache); it closes a \
                 connection after 1,000 requests (keepalive_requests)",
            ),
        },
        Case {
            title: "download 100 MiB, Content-Length, bench server",
            group: "client_download_len",
            server: "bench-server",
            unit: Unit::Download,
            cpu_vs_floor: None,
            rate_vs_floor: Some(0.95),
            beat_hyper: true,
            note: None,
        },
        Case {
            title: "download 100 MiB, chunked, bench server",
            group: "client_download_chunked",
            server: "bench-server",
            unit: Unit::Download,
            cpu_vs_floor: None,
            rate_vs_floor: Some(0.95),
            beat_hyper: true,
            note: Some("issue anchor: reqwest 0.80x the floor, chunked"),
        },
        Case {
            title: "upload 1 MiB (POST), bench server",
            group: "client_upload",
            server: "bench-server",
            unit: Unit::Upload,
            cpu_vs_floor: None,
            rate_vs_floor: Some(0.97),
            beat_hyper: true,
            note: None,
        },
    ];

    /// Courier's resident memory per idle pooled connection, at most.
    const RSS_TARGET_KIB: f64 = 12.0;

    /// Runs the client suite and renders its tables.
    pub(super) fn run(
        quick: bool,
        target: &Path,
        criterion_home: &Path,
        started: SystemTime,
    ) -> Result<Report> {
        let pin = Pinning::detect();
        let timer = util::step(
            "cargo build --release -p courier-test-support --features bench-server --bin bench_server",
        );
        util::run(util::cargo().args([
            "build",
            "--release",
            "-p",
            "courier-test-support",
            "--features",
            "bench-server",
            "--bin",
            "bench_server",
        ]))?;
        eprintln!("    done in {}", util::secs(timer.elapsed()));
        let timer = util::step("cargo bench -p courier-client --bench http --no-run");
        util::run(util::cargo().args([
            "bench",
            "-p",
            "courier-client",
            "--bench",
            "http",
            "--no-run",
        ]))?;
        eprintln!("    done in {}", util::secs(timer.elapsed()));

        let server = BenchServer::start(target, &pin, "bench_server", "bench server")?;
        let nginx = match Nginx::start(target, &pin) {
            Ok(nginx) => Some(nginx),
            Err(e) => {
                eprintln!("xtask: warning: nginx did not start, its cases are left out: {e}");
                None
            }
        };
        let nginx_ran = nginx.is_some();
        let mut notes = vec![source_note(SOURCES)];
        notes.push(describe_pinning(&pin, &server, nginx.as_ref()));

        let extra_path = fresh_extra(criterion_home, EXTRA_FILE)?;
        let mut env = vec![
            (
                "COURIER_BENCH_SERVER",
                format!("127.0.0.1:{}", server.port).into(),
            ),
            ("COURIER_BENCH_EXTRA", extra_path.clone().into_os_string()),
        ];
        if let Some(nginx) = &nginx {
            env.push((
                "COURIER_BENCH_NGINX",
                format!("127.0.0.1:{}", nginx.port).into(),
            ));
        }
        let bench = run_pinned(
            &pin,
            &PinnedBench {
                bench: "http",
                quick,
                quick_flags: QUICK_FLAGS,
                criterion_home,
                env,
                exclude: nginx.as_ref().map(Nginx::pids).unwrap_or_default(),
            },
        );

        let mut stop_errors = Vec::new();
        if let Some(nginx) = nginx
            && let Err(e) = nginx.stop()
        {
            stop_errors.push(e);
        }
        if let Err(e) = server.stop() {
            stop_errors.push(e);
        }
        bench.result?;
        if !stop_errors.is_empty() {
            return Err(stop_errors.join("; "));
        }
        notes.push(bench.noise);

        let extra = Extra::read(&extra_path, &CLIENTS)?;
        let mut out = String::new();
        let mut missing = Vec::new();
        let _ = writeln!(
            out,
            "\nclient benchmark: courier beside reqwest, hyper-util's legacy Client and a \
             hand-written tokio client (the floor)\n\
             each case runs in interleaved rounds (every client once per round, about 0.1 s \
             each): rate = median over rounds, ±IQR/2 = half its interquartile range, \
             CPU = the client process's user + system time per operation (median);\n\
             xreqwest, xfloor = median over rounds of the client's figure / reqwest's or the \
             floor's in the same round (rates: higher is better; CPU, memory: lower is better); \
             targets are checked on these ratios"
        );
        for note in &notes {
            let _ = writeln!(out, "{note}");
        }
        for case in CASES {
            if case.server == "nginx" && !nginx_ran {
                let _ = writeln!(out, "\n{}\n  (not run: nginx did not start)", case.title);
                continue;
            }
            render_case(
                &mut out,
                &mut missing,
                case,
                criterion_home,
                started,
                &extra,
            );
        }
        render_rss(&mut out, &mut missing, &extra);
        Ok(Report {
            tables: out,
            missing,
        })
    }

    /// Where the client bench, the bench server and nginx are allowed to
    /// run, as read back.
    fn describe_pinning(pin: &Pinning, server: &BenchServer, nginx: Option<&Nginx>) -> String {
        let mut s = pin.describe("bench server", server.pid());
        if pin.pinned()
            && let Some(nginx) = nginx
        {
            let pids = nginx.pids();
            let cpus: Vec<String> = pids
                .iter()
                .map(|&p| cpus_allowed(p).unwrap_or_else(|| "?".into()))
                .collect();
            let _ = write!(
                s,
                "; nginx ({} processes) on CPU {}",
                pids.len(),
                cpus.join("/")
            );
        }
        s
    }

    /// The criterion id of `client` in `case`.
    fn id(client: &str, case: &Case) -> String {
        format!("{client}/{}", case.server)
    }

    /// One client's figures in one case.
    #[derive(Debug, Clone, Copy, Default)]
    struct Figures {
        /// Interleaved rounds: median block rate and its quartiles.
        rate: Option<(f64, f64, f64)>,
        /// Median CPU nanoseconds per operation.
        cpu_ns: Option<f64>,
        /// Paired ratios to each client of [`CLIENTS`] (median over rounds
        /// of this client's rate, or CPU, over that one's in the round).
        rate_vs: Option<[f64; CLIENTS.len()]>,
        cpu_vs: Option<[f64; CLIENTS.len()]>,
        /// Criterion's median rate and the bounds from its 95% CI (GETs).
        criterion: Option<(f64, f64, f64)>,
    }

    /// One ratio of `ratios` (a client's, to each client of [`CLIENTS`]).
    fn at(ratios: Option<[f64; CLIENTS.len()]>, client: &str) -> Option<f64> {
        ratio_to(&CLIENTS, ratios, client)
    }

    fn render_case(
        out: &mut String,
        missing: &mut Vec<String>,
        case: &Case,
        home: &Path,
        started: SystemTime,
        extra: &Extra<{ CLIENTS.len() }>,
    ) {
        let gets = case.unit == Unit::Requests;
        let mut figures = [Figures::default(); CLIENTS.len()];
        for (client, fig) in CLIENTS.iter().zip(&mut figures) {
            let id = id(client, case);
            if let Some(r) = extra.rounds_of(case.group, &id, missing) {
                fig.rate = Some((r.rate, r.q1, r.q3));
                fig.cpu_ns = Some(r.cpu_ns);
                fig.rate_vs = r.rate_vs;
                fig.cpu_vs = r.cpu_vs;
            }
            if gets {
                fig.criterion = criterion_rate(home, case.group, &id, started, missing);
            }
        }
        let mut header = vec![
            "client".to_string(),
            case.unit.rate_head().to_string(),
            "±IQR/2".into(),
            "xreqwest".into(),
            "xfloor".into(),
            case.unit.cpu_head().to_string(),
            "xreqwest".into(),
            "xfloor".into(),
        ];
        if gets {
            header.push("criterion req/s".into());
        }
        header.push("targets (courier)".into());
        let mut rows = vec![header];
        for (client, fig) in CLIENTS.iter().zip(&figures) {
            let mut row = vec![
                (*client).to_string(),
                fig.rate.map_or("missing".into(), |r| thousands(r.0)),
                fig.rate
                    .map_or(String::new(), |(m, q1, q3)| spread_cell(m, q1, q3)),
                ratio_cell(at(fig.rate_vs, "reqwest")),
                ratio_cell(at(fig.rate_vs, "floor")),
                fig.cpu_ns
                    .map_or("missing".into(), |ns| case.unit.cpu_cell(ns)),
                ratio_cell(at(fig.cpu_vs, "reqwest")),
                ratio_cell(at(fig.cpu_vs, "floor")),
            ];
            if gets {
                row.push(criterion_cell(fig.criterion));
            }
            row.push(if *client == "courier" {
                targets(case, fig)
            } else {
                String::new()
            });
            rows.push(row);
        }
        let _ = writeln!(out, "\n{}  [{}]", case.title, case.group);
        write_rows(out, &rows);
        let courier = extra
            .rounds
            .get(&(case.group.to_string(), id("courier", case)));
        if let Some(r) = courier {
            let _ = writeln!(
                out,
                "  {} interleaved rounds of {} {} per client{}; ratios paired by round",
                r.rounds,
                r.per_block,
                if gets { "requests" } else { "transfers" },
                if gets {
                    ""
                } else {
                    ", a new connection per block"
                }
            );
        }
        if let Some(note) = case.note {
            let _ = writeln!(out, "  {note}");
        }
    }

    /// The issue's targets for courier in `case`, checked on the paired
    /// ratios.
    fn targets(case: &Case, courier: &Figures) -> String {
        let mut checks = Vec::new();
        if let Some(max) = case.cpu_vs_floor {
            checks.push(match at(courier.cpu_vs, "floor") {
                Some(r) => {
                    let mark = if r <= max { "✓" } else { "✗" };
                    format!("{mark} CPU {r:.2}x floor (<= {max:.2}x)")
                }
                None => format!("? CPU vs floor (<= {max:.2}x): missing"),
            });
        }
        if let Some(min) = case.rate_vs_floor {
            checks.push(match at(courier.rate_vs, "floor") {
                Some(r) => {
                    let mark = if r >= min { "✓" } else { "✗" };
                    format!("{mark} {r:.2}x floor (>= {min:.2}x)")
                }
                None => format!("? vs floor (>= {min:.2}x): missing"),
            });
        }
        if case.beat_hyper {
            checks.push(match at(courier.rate_vs, "hyper-util") {
                Some(r) => {
                    let mark = if r > 1.0 { "✓" } else { "✗" };
                    format!("{mark} {r:.2}x hyper-util (> 1)")
                }
                None => "? vs hyper-util: missing".into(),
            });
        }
        checks.join("; ")
    }

    fn render_rss(out: &mut String, missing: &mut Vec<String>, extra: &Extra<{ CLIENTS.len() }>) {
        let kib = |client: &str| extra.rss.get(client).map(|r| r.kib_per_conn);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        let mut rows = vec![
            [
                "client",
                "KiB/conn",
                "xreqwest",
                "xfloor",
                "new conns",
                "idle in pool",
                "RSS before -> after",
                "target (courier)",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for client in CLIENTS {
            let Some(rss) = extra.rss.get(client) else {
                missing.push(format!("idle pool memory of {client}: no figure"));
                rows.push(vec![client.to_string(), "missing".into()]);
                continue;
            };
            let target = if client == "courier" {
                let mark = if rss.kib_per_conn <= RSS_TARGET_KIB {
                    "✓"
                } else {
                    "✗"
                };
                format!("{mark} <= {RSS_TARGET_KIB:.0} KiB")
            } else {
                String::new()
            };
            rows.push(vec![
                client.to_string(),
                format!("{:.1}", rss.kib_per_conn),
                ratio(Some(rss.kib_per_conn), kib("reqwest")),
                ratio(Some(rss.kib_per_conn), kib("floor")),
                rss.new_conns.to_string(),
                rss.pool_idle.map_or("-".into(), |n| n.to_string()),
                format!(
                    "{:.1} -> {:.1} MiB",
                    rss.before_kib / 1024.0,
                    rss.after_kib / 1024.0
                ),
                target,
            ]);
        }
        let _ = writeln!(
            out,
            "\nresident memory per idle keep-alive connection: 1,000 concurrent GETs, then all \
             idle in the pool; (RSS after - RSS before) / new connections, a fresh process per \
             client"
        );
        write_rows(out, &rows);
        let _ = writeln!(
            out,
            "  new conns = connections the server saw opened by the burst and still open \
             (a request may reuse one released early); issue anchors: floor 5.5 KiB, \
             hyper-util 22.6, reqwest 27.4"
        );
    }

    /// An nginx of the client bench's own, pinned; stopped when dropped.
    struct Nginx {
        scratch: PathBuf,
        port: u16,
        master: Option<u32>,
        armed: bool,
    }

    /// Prefix of the nginx scratch directories under `<target>/peers`.
    const NGINX_PREFIX: &str = "bench-";

    impl Nginx {
        fn start(target: &Path, pin: &Pinning) -> Result<Nginx> {
            let scripts = util::shared_dir()?.join("peers");
            let root = target.join("peers");
            reap_stale(&root);
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let dir = root.join(format!("{NGINX_PREFIX}{secs}-{}", std::process::id()));
            fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let scratch = fs::canonicalize(&dir)
                .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
            let mut nginx = Nginx {
                scratch,
                port: 0,
                master: None,
                armed: true,
            };
            // Two free ports: http, and the https one the script always opens.
            let (port, tls_port) = {
                let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0));
                let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0));
                match (
                    a.and_then(|l| l.local_addr()),
                    b.and_then(|l| l.local_addr()),
                ) {
                    (Ok(a), Ok(b)) => (a.port(), b.port()),
                    _ => return Err("cannot find free loopback ports".into()),
                }
            };
            nginx.port = port;
            let log_path = nginx.scratch.join("xtask-start-nginx.log");
            let log = fs::File::create(&log_path)
                .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
            let log_err = log
                .try_clone()
                .map_err(|e| format!("cannot reopen {}: {e}", log_path.display()))?;
            let script = scripts.join("start-nginx.sh");
            let mut cmd = pin.command(SERVER_CPU, OsStr::new("bash"));
            cmd.arg(&script)
                .arg(port.to_string())
                .arg(&nginx.scratch)
                .env("NGINX_TLS_PORT", tls_port.to_string())
                .env_remove("NGINX_BADTLS_PORT")
                .env_remove("NGINX_WS_UPSTREAM")
                .env_remove("NGINX_HTTPBIN_UPSTREAM")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            let status = util::status(&mut cmd)?;
            if !status.success() {
                let output = fs::read_to_string(&log_path).unwrap_or_default();
                eprint!("{output}");
                return Err(format!("`{}` failed ({status})", util::describe(&cmd)));
            }
            let pid_file = nginx.scratch.join(format!("nginx-{port}.pid"));
            nginx.master = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse().ok());
            nginx.tune()?;
            eprintln!(
                "[xtask] nginx on 127.0.0.1:{port} (master pid {}) in {}",
                nginx.master.map_or("?".into(), |p| p.to_string()),
                nginx.scratch.display()
            );
            Ok(nginx)
        }

        /// Rewrites the peer's configuration for the bench and reloads it:
        /// `access_log off` and `open_file_cache`, as a production nginx
        /// serving small static files runs. With the peer's test
        /// configuration (a log line written and the file opened, stat'ed
        /// and closed per request) nginx's one core was the bottleneck at
        /// concurrency 64, and its CPU per request then grew with how often
        /// the client went idle: waking an idle client costs the sender
        /// about 9 µs (an inter-processor interrupt on this VM), so the
        /// case measured nginx and ranked the clients by how slow they were
        /// (the floor below hyper-util). Tuned, the client is the
        /// bottleneck again, which is what the case is for.
        fn tune(&self) -> Result<()> {
            let conf = self.scratch.join(format!("nginx-{}/nginx.conf", self.port));
            let text = fs::read_to_string(&conf)
                .map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
            let mut logs = 0;
            let mut tuned = String::with_capacity(text.len() + 64);
            for line in text.lines() {
                if line.trim_start().starts_with("access_log ") {
                    tuned.push_str("  access_log off;\n");
                    if logs == 0 {
                        tuned.push_str("  open_file_cache max=64 inactive=60s;\n");
                    }
                    logs += 1;
                } else {
                    tuned.push_str(line);
                    tuned.push('\n');
                }
            }
            if logs == 0 {
                return Err(format!(
                    "no access_log line in {}: start-nginx.sh changed, the bench \
                     tuning needs a look",
                    conf.display()
                ));
            }
            fs::write(&conf, tuned).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
            let master = self.master.ok_or("nginx wrote no PID file")?;
            let before: Vec<u32> = self.pids().into_iter().filter(|&p| p != master).collect();
            let mut cmd = Command::new("kill");
            cmd.arg("-HUP").arg(master.to_string());
            let status = util::status(&mut cmd)?;
            if !status.success() {
                return Err(format!("`{}` failed ({status})", util::describe(&cmd)));
            }
            // The old worker leaves (it has no connections) and a new one
            // with the new configuration starts: wait for both, bounded.
            for _ in 0..100 {
                let now: Vec<u32> = self.pids().into_iter().filter(|&p| p != master).collect();
                if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(format!(
                "nginx did not reload {} within 5 s (see its error.log)",
                conf.display()
            ))
        }

        /// The master and its children (the worker).
        fn pids(&self) -> Vec<u32> {
            let Some(master) = self.master else {
                return Vec::new();
            };
            let mut pids = vec![master];
            if let Ok(entries) = fs::read_dir("/proc") {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                        continue;
                    };
                    // ppid: field 4.
                    if stat_fields(&pid.to_string()).is_some_and(|f| f[1] == u64::from(master)) {
                        pids.push(pid);
                    }
                }
            }
            pids
        }

        fn stop(mut self) -> Result<()> {
            self.armed = false;
            stop_scratch(&self.scratch)
        }
    }

    impl Drop for Nginx {
        fn drop(&mut self) {
            if self.armed {
                self.armed = false;
                if let Err(e) = stop_scratch(&self.scratch) {
                    eprintln!("xtask: {e}");
                }
            }
        }
    }

    /// Stops what the peers scripts started in `scratch` (`stop.sh`: only
    /// the PIDs recorded there) and removes it.
    fn stop_scratch(scratch: &Path) -> Result<()> {
        let script = util::shared_dir()?.join("peers/stop.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(scratch).stdin(Stdio::null());
        let status = util::status(&mut cmd)?;
        if !status.success() {
            return Err(format!(
                "`{}` failed ({status}); {} kept for its logs",
                util::describe(&cmd),
                scratch.display()
            ));
        }
        fs::remove_dir_all(scratch).map_err(|e| format!("cannot remove {}: {e}", scratch.display()))
    }

    /// Stops the nginx of an earlier client bench that was killed before it
    /// could (its directory names a process that is gone).
    fn reap_stale(root: &Path) {
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(NGINX_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            eprintln!(
                "[xtask] stopping the nginx of an earlier client bench in {}",
                entry.path().display()
            );
            if let Err(e) = stop_scratch(&entry.path()) {
                eprintln!("xtask: {e}");
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn extra_lines_are_parsed() {
            let text = r#"{"kind":"rounds","group":"client_upload","id":"courier/bench-server","rate":4000.5,"rate_q1":3900.0,"rate_q3":4100.0,"cpu_ns_per_op":210000.0,"rounds":20,"per_block":200,"concurrency":1,"rate_vs_courier":1.0,"cpu_vs_courier":1.0,"rate_vs_reqwest":1.05,"cpu_vs_reqwest":0.9,"rate_vs_hyper-util":1.1,"cpu_vs_hyper-util":0.8,"rate_vs_floor":0.98,"cpu_vs_floor":1.2}
{"kind":"rss","client":"floor","kib_per_conn":1.25,"requests":1000,"new_conns":1000,"pool_idle":1000,"rss_before_kib":3000,"rss_after_kib":4250}
"#;
            let extra = Extra::parse(text, &CLIENTS).unwrap();
            let key = (
                "client_upload".to_string(),
                "courier/bench-server".to_string(),
            );
            let r = extra.rounds[&key];
            assert_eq!(
                (r.rate, r.cpu_ns, r.rounds, r.per_block),
                (4000.5, 210000.0, 20, 200)
            );
            assert_eq!(r.rate_vs, Some([1.0, 1.05, 1.1, 0.98]));
            assert_eq!(r.cpu_vs, Some([1.0, 0.9, 0.8, 1.2]));
            let floor = extra.rss["floor"];
            assert_eq!((floor.kib_per_conn, floor.new_conns), (1.25, 1000));
            assert_eq!(floor.pool_idle, Some(1000));
            // A ratio missing: no paired ratios at all.
            let partial = text
                .lines()
                .next()
                .unwrap()
                .replace(r#","cpu_vs_floor":1.2"#, "");
            let extra = Extra::parse(&partial, &CLIENTS).unwrap();
            assert_eq!(extra.rounds[&key].cpu_vs, None);
            assert!(Extra::parse("{\"kind\":\"what\"}", &CLIENTS).is_err());
        }

        #[test]
        fn targets_are_checked_on_paired_ratios() {
            // Ratios to courier, reqwest, hyper-util, floor.
            let fig = |rate_vs: [f64; 4], cpu_vs: [f64; 4]| Figures {
                rate: Some((100.0, 99.0, 101.0)),
                cpu_ns: Some(1000.0),
                rate_vs: Some(rate_vs),
                cpu_vs: Some(cpu_vs),
                criterion: None,
            };
            let get = &CASES[1];
            let courier = fig([1.0, 1.3, 1.11, 0.7], [1.0, 0.7, 0.9, 1.35]);
            assert_eq!(
                targets(get, &courier),
                "✗ CPU 1.35x floor (<= 1.30x); ✓ 1.11x hyper-util (> 1)"
            );
            let upload = &CASES[6];
            let courier = fig([1.0, 1.0, 0.99, 0.98], [1.0; 4]);
            assert_eq!(
                targets(upload, &courier),
                "✓ 0.98x floor (>= 0.97x); ✗ 0.99x hyper-util (> 1)"
            );
            let t = targets(upload, &Figures::default());
            assert_eq!(
                t,
                "? vs floor (>= 0.97x): missing; ? vs hyper-util: missing"
            );
        }

        #[test]
        fn numbers_are_grouped_and_rows_aligned() {
            assert_eq!(thousands(1_234_567.8), "1,234,568");
            assert_eq!(thousands(999.0), "999");
            assert_eq!(thousands(1000.0), "1,000");
            let rows = vec![
                vec!["client".to_string(), "req/s".into(), "targets".into()],
                vec!["courier".to_string(), "1,000".into(), "✓ ok".into()],
            ];
            let mut out = String::new();
            write_rows(&mut out, &rows);
            assert_eq!(out, "  client   req/s  targets\n  courier  1,000  ✓ ok\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a criterion result for `group/id` under `home`.
    fn write_result(home: &Path, group: &str, id: &str, median_ns: f64, bytes: u64) {
        let dir = home.join(group).join(id).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        let estimate = format!(
            r#"{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{lo},"upper_bound":{hi}}},"point_estimate":{median_ns},"standard_error":1.0}}"#,
            lo = median_ns * 0.99,
            hi = median_ns * 1.01,
        );
        let estimates = format!(
            r#"{{"mean":{estimate},"median":{estimate},"median_abs_dev":{estimate},"slope":null,"std_dev":{estimate}}}"#
        );
        std::fs::write(dir.join("estimates.json"), estimates).unwrap();
        let benchmark = format!(
            r#"{{"group_id":"{group}","function_id":"x","value_str":"y","throughput":{{"Bytes":{bytes}}},"full_id":"{group}/{id}","directory_name":"{group}/{id}","title":"{group}/{id}"}}"#
        );
        std::fs::write(dir.join("benchmark.json"), benchmark).unwrap();
    }

    #[test]
    fn results_are_read_and_compared() {
        let home = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let since = SystemTime::now() - std::time::Duration::from_secs(5);
        write_result(&home, "head", "courier/small", 200.0, 1024 * 1024);
        write_result(&home, "head", "httparse/small", 100.0, 1024 * 1024);

        let courier = read_result(&home, "head", "courier/small", since).unwrap();
        assert_eq!(courier.median_ns, 200.0);
        assert_eq!(courier.bytes, Some(1024 * 1024));
        // 1 MiB in 200 ns.
        assert!((courier.mib_per_s().unwrap() - 5e6).abs() < 1e-3);

        const CMP: Comparison =
            Comparison::new("head", "courier/small", "httparse/small", Some(1.5));
        let row = Row {
            cmp: &CMP,
            courier: Some(courier),
            floor: read_result(&home, "head", "httparse/small", since).ok(),
        };
        let cells = row_cells(&row, true);
        assert_eq!(cells[0], "courier/small vs httparse/small");
        assert!(cells[3].starts_with("2.00 (1.96-2.04)"), "{}", cells[3]);
        assert_eq!(cells[4], "<= 1.50 OVER");
        // Without throughput, the times per iteration.
        let cells = row_cells(&row, false);
        assert_eq!(
            (cells[1].as_str(), cells[2].as_str()),
            ("200.00 ns", "100.00 ns")
        );
        assert_eq!(format_time(33_001.0), "33.00 µs");
        assert_eq!(format_time(2.5e6), "2.50 ms");

        // Missing and stale results are errors.
        assert!(read_result(&home, "head", "courier/large", since).is_err());
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(read_result(&home, "head", "courier/small", later).is_err());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
