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
//! another bench target, e.g. end-to-end client or WebSocket benchmarks).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::util::{self, Result};

/// One `cargo bench` target and the comparisons read from its results.
struct Suite {
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
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => return Err(format!("bench: unknown option `{other}` (try --quick)")),
        }
    }
    let criterion_home = target_dir()?.join("criterion");
    // Results older than this were not written by this run.
    let started = SystemTime::now();
    for suite in SUITES {
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

    let mut missing = Vec::new();
    let mut tables: BTreeMap<&str, Vec<Row>> = BTreeMap::new();
    let mut order = Vec::new();
    for suite in SUITES {
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
    let _ = writeln!(
        out,
        "\ncourier vs floor (or vs hyper): MiB/s, or time per iteration where no \
         throughput is declared, from each benchmark's median; time ratio = courier time / \
         the time of the benchmark after \"vs\" (1.00 = as fast, lower is better)"
    );
    for group in order {
        render_table(&mut out, group, &tables[group]);
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
    let median = estimates.median;
    Ok(Measured {
        median_ns: median.point_estimate,
        ci_ns: (
            median.confidence_interval.lower_bound,
            median.confidence_interval.upper_bound,
        ),
        bytes,
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
