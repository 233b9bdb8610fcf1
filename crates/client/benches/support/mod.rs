//! What the end-to-end benchmarks `benches/http.rs` and `benches/ws.rs`
//! share: the `COURIER_BENCH_*` variables both read, the process CPU clock,
//! the figures of the interleaved rounds (quartiles, paired ratios), the
//! writer of their JSON lines, the client runtime and two helpers of their
//! hand-written floors.
//!
//! Each bench includes it with `mod support;`; being in a subdirectory
//! without a `main.rs`, it is not a bench target of its own.

use std::io::{self, Write as _};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use tokio::runtime::Runtime;

/// Where the figures are appended as JSON lines (optional).
const EXTRA_VAR: &str = "COURIER_BENCH_EXTRA";
/// `0` leaves out the criterion groups.
pub(crate) const CRITERION_VAR: &str = "COURIER_BENCH_CRITERION";
/// Only the cases whose `group/parameter` contains this text (optional).
const ONLY_VAR: &str = "COURIER_BENCH_ONLY";
/// `0` leaves out the interleaved rounds.
pub(crate) const ROUNDS_VAR: &str = "COURIER_BENCH_ROUNDS";
/// `1`: 6 rounds instead of 20 (`cargo xtask bench --quick`).
const QUICK_VAR: &str = "COURIER_BENCH_QUICK";

/// Whether the part `var` switches is on: anything but `0` (or unset).
pub(crate) fn enabled(var: &str) -> bool {
    std::env::var(var).as_deref() != Ok("0")
}

/// Rounds per case: 6 with `COURIER_BENCH_QUICK=1`, else 20.
pub(crate) fn rounds() -> usize {
    let quick = std::env::var(QUICK_VAR).is_ok_and(|v| v == "1");
    if quick { 6 } else { 20 }
}

/// Whether the case `group/parameter` is to run: it contains
/// `COURIER_BENCH_ONLY`, or that is not set.
pub(crate) fn selected(case: &str) -> bool {
    match std::env::var(ONLY_VAR) {
        Ok(only) => case.contains(&only),
        Err(_) => true,
    }
}

// ------------------------------------------------------------ measurement

/// User + system CPU time of this process.
pub(crate) fn cpu_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let micros = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(tv.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec()).unwrap_or(0))
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// First quartile, median and third quartile (linear interpolation).
fn quartiles(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    // The k-th quartile sits at k * (len - 1) / 4.
    let at = |k: usize| {
        if v.is_empty() {
            return f64::NAN;
        }
        let pos = k * (v.len() - 1);
        let (lo, frac) = (pos / 4, (pos % 4) as f64 / 4.0);
        let hi = (lo + 1).min(v.len() - 1);
        v[lo] + (v[hi] - v[lo]) * frac
    };
    (at(1), at(2), at(3))
}

/// The quartiles ([`quartiles`]) of one figure of a client's blocks, each
/// block a `(rate, CPU ns per operation)`: `pick` takes the figure.
pub(crate) fn block_quartiles(
    blocks: &[(f64, f64)],
    pick: fn(&(f64, f64)) -> f64,
) -> (f64, f64, f64) {
    quartiles(&blocks.iter().map(pick).collect::<Vec<f64>>())
}

/// A paired ratio: the median over rounds of one figure (`pick`) of `mine`
/// over the same figure of `theirs` in the same round, the blocks of two
/// clients as in [`block_quartiles`], one per round.
pub(crate) fn paired_ratio(
    mine: &[(f64, f64)],
    theirs: &[(f64, f64)],
    pick: fn(&(f64, f64)) -> f64,
) -> f64 {
    let ratios: Vec<f64> = mine
        .iter()
        .zip(theirs)
        .map(|(mine, theirs)| pick(mine) / pick(theirs))
        .collect();
    quartiles(&ratios).1
}

/// Where the figures go: JSON lines appended to `COURIER_BENCH_EXTRA`
/// (nowhere without it); a summary goes to stderr.
pub(crate) struct Extra {
    file: Option<std::fs::File>,
}

impl Extra {
    pub(crate) fn from_env() -> Extra {
        let file = std::env::var_os(EXTRA_VAR).map(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.to_string_lossy()))
        });
        Extra { file }
    }

    pub(crate) fn line(&mut self, json: &str) {
        if let Some(file) = &mut self.file {
            writeln!(file, "{json}").expect("write the extra figures");
        }
    }
}

/// The client runtime: one thread, the bench's.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

// ------------------------------------------------------------------ floor

/// An `InvalidData` error saying `what`.
pub(crate) fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Where `needle` first occurs in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
