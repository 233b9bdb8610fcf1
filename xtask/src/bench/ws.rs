//! `cargo xtask bench ws`: the WebSocket echo benchmark.
//!
//! Steps:
//!
//! 1. Build the echo server (`courier-test-support`, feature
//!    `ws-bench-server`, release) and the `ws` bench target of
//!    `courier-client`.
//! 2. Start the echo server pinned to CPU 1, reading its port from its
//!    stdout; it exits when its stdin (a pipe held here) closes.
//! 3. Run `cargo bench -p courier-client --bench ws` pinned to CPU 0 with
//!    `COURIER_BENCH_WS_SERVER`, `COURIER_BENCH_WS_SERVER_PID` and
//!    `COURIER_BENCH_EXTRA` set (see the bench's module docs).
//! 4. Stop the server, read what the bench appended to
//!    `<criterion>/ws-echo-extra.jsonl` (every case measured in
//!    interleaved rounds) and criterion's medians, and print one table per
//!    case: each client's echo round trips per second and CPU per message,
//!    ratios to fastwebsockets and to the floor (paired by round), how busy
//!    the server was, criterion's median, and the issue's targets checked
//!    on courier's row: a rate at least fastwebsockets', a CPU per message
//!    within 1.15x the floor's.
//!
//! The server is one core, like the client: when it is busy nearly all the
//! time (the `server busy` column), it is what limits the rate, and CPU
//! per message is the sharper comparison of the clients.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use super::rounds::{
    BenchServer, Extra, PinnedBench, Pinning, Report, Rounds, criterion_cell, criterion_rate,
    fresh_extra, ratio_cell, ratio_to, run_pinned, source_note, spread_cell, thousands, write_rows,
};
use crate::util::{self, Result};

/// The suite's name on the command line.
pub(super) const NAME: &str = "ws";

/// The clients of the bench, in table order.
const CLIENTS: [&str; 4] = ["courier", "fastwebsockets", "tokio-tungstenite", "floor"];

/// The file under the criterion directory the bench appends its figures to.
const EXTRA_FILE: &str = "ws-echo-extra.jsonl";

/// The crates whose sources the figures measure.
const SOURCES: &[&str] = &[
    "crates/proto/src",
    "crates/pool/src",
    "crates/ws/src",
    "crates/client/src",
];

/// Courier's CPU per message at most this many times the floor's.
const CPU_VS_FLOOR: f64 = 1.15;
/// Courier's rate at least this many times fastwebsockets'.
const RATE_VS_FASTWEBSOCKETS: f64 = 1.0;
/// Criterion's flags for `--quick`: 16 benchmarks of about 0.8 s, so that
/// the whole suite stays well under a minute.
const QUICK_FLAGS: &[&str] = &["--warm-up-time", "0.3", "--measurement-time", "0.5"];

/// A server busy this share of the time or more limits the rate.
const SERVER_BOUND: f64 = 0.9;

/// One table: a criterion group (the concurrency) and parameter (the
/// message size).
struct Case {
    title: &'static str,
    group: &'static str,
    size: &'static str,
    /// The issue's anchors, printed under the table.
    note: Option<&'static str>,
}

/// Every case, in print order (the order the bench runs them).
const CASES: &[Case] = &[
    Case {
        title: "echo of 32-byte binary messages, concurrency 1 (one connection)",
        group: "ws_echo_c1",
        size: "32B",
        note: None,
    },
    Case {
        title: "echo of 32-byte binary messages, concurrency 16 (16 connections)",
        group: "ws_echo_c16",
        size: "32B",
        note: Some(
            "issue anchors (rate): floor 296k msg/s, fastwebsockets 0.99x the floor, \
             tokio-tungstenite 0.55x",
        ),
    },
    Case {
        title: "echo of 64 KiB binary messages, concurrency 1 (one connection)",
        group: "ws_echo_c1",
        size: "64KiB",
        note: None,
    },
    Case {
        title: "echo of 64 KiB binary messages, concurrency 16 (16 connections)",
        group: "ws_echo_c16",
        size: "64KiB",
        note: Some("issue anchors (rate): fastwebsockets 0.74x the floor, tokio-tungstenite 0.59x"),
    },
];

/// Runs the WebSocket suite and renders its tables.
pub(super) fn run(
    quick: bool,
    target: &Path,
    criterion_home: &Path,
    started: SystemTime,
) -> Result<Report> {
    let pin = Pinning::detect();
    let timer = util::step(
        "cargo build --release -p courier-test-support --features ws-bench-server --bin \
         ws_bench_server",
    );
    util::run(util::cargo().args([
        "build",
        "--release",
        "-p",
        "courier-test-support",
        "--features",
        "ws-bench-server",
        "--bin",
        "ws_bench_server",
    ]))?;
    eprintln!("    done in {}", util::secs(timer.elapsed()));
    let timer = util::step("cargo bench -p courier-client --bench ws --no-run");
    util::run(util::cargo().args(["bench", "-p", "courier-client", "--bench", "ws", "--no-run"]))?;
    eprintln!("    done in {}", util::secs(timer.elapsed()));

    let server = BenchServer::start(target, &pin, "ws_bench_server", "ws echo server")?;
    let notes = [
        source_note(SOURCES),
        pin.describe("ws echo server", server.pid()),
    ];
    let extra_path = fresh_extra(criterion_home, EXTRA_FILE)?;
    let bench = run_pinned(
        &pin,
        &PinnedBench {
            bench: "ws",
            quick,
            quick_flags: QUICK_FLAGS,
            criterion_home,
            env: vec![
                (
                    "COURIER_BENCH_WS_SERVER",
                    format!("127.0.0.1:{}", server.port).into(),
                ),
                (
                    "COURIER_BENCH_WS_SERVER_PID",
                    server.pid().to_string().into(),
                ),
                ("COURIER_BENCH_EXTRA", extra_path.clone().into_os_string()),
            ],
            exclude: Vec::new(),
        },
    );
    let stopped = server.stop();
    bench.result?;
    stopped?;

    let extra = Extra::read(&extra_path, &CLIENTS)?;
    let mut out = String::new();
    let mut missing = Vec::new();
    let _ = writeln!(
        out,
        "\nWebSocket echo benchmark: courier beside fastwebsockets, tokio-tungstenite and a \
         hand-written tokio client (the floor), against one hand-written echo server\n\
         each case runs in interleaved rounds (every client once per round, about 0.1 s \
         each): msg/s = echo round trips per second, median over rounds, ±IQR/2 = half its \
         interquartile range, CPU = the client process's user + system time per message \
         (median);\n\
         xfastwebsockets, xfloor = median over rounds of the client's figure / \
         fastwebsockets' or the floor's in the same round (rates: higher is better; CPU: \
         lower is better); server busy = share of the client's blocks the server's core was \
         busy; targets are checked on the paired ratios"
    );
    for note in notes.iter().chain([&bench.noise]) {
        let _ = writeln!(out, "{note}");
    }
    for case in CASES {
        render_case(
            &mut out,
            &mut missing,
            case,
            criterion_home,
            started,
            &extra,
        );
    }
    Ok(Report {
        tables: out,
        missing,
    })
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
    let mut rows = vec![
        [
            "client",
            "msg/s",
            "±IQR/2",
            "xfastwebsockets",
            "xfloor",
            "CPU µs/msg",
            "xfastwebsockets",
            "xfloor",
            "server busy",
            "criterion msg/s",
            "targets (courier)",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut busiest: Option<f64> = None;
    let mut first: Option<Rounds<{ CLIENTS.len() }>> = None;
    for client in CLIENTS {
        let id = format!("{client}/{}", case.size);
        let rounds = extra.rounds_of(case.group, &id, missing);
        let criterion = criterion_rate(home, case.group, &id, started, missing);
        let Some(r) = rounds else {
            rows.push(vec![client.to_string(), "missing".into()]);
            continue;
        };
        first.get_or_insert(*r);
        if let Some(busy) = r.server_busy {
            busiest = Some(busiest.map_or(busy, |b: f64| b.max(busy)));
        }
        rows.push(vec![
            client.to_string(),
            thousands(r.rate),
            spread_cell(r.rate, r.q1, r.q3),
            ratio_cell(at(r.rate_vs, "fastwebsockets")),
            ratio_cell(at(r.rate_vs, "floor")),
            format!("{:.2}", r.cpu_ns / 1e3),
            ratio_cell(at(r.cpu_vs, "fastwebsockets")),
            ratio_cell(at(r.cpu_vs, "floor")),
            // Ticks of 10 ms can add up to a little over the wall time.
            r.server_busy
                .map_or("-".into(), |b| format!("{:.0}%", b.min(1.0) * 100.0)),
            criterion_cell(criterion),
            if client == "courier" {
                targets(Some(r))
            } else {
                String::new()
            },
        ]);
    }
    let _ = writeln!(out, "\n{}  [{}/{}]", case.title, case.group, case.size);
    write_rows(out, &rows);
    if let Some(r) = first {
        let _ = writeln!(
            out,
            "  {} interleaved rounds of {} round trips per client over {} connection(s) \
             kept open; ratios paired by round",
            r.rounds, r.per_block, r.concurrency
        );
    }
    if let Some(busy) = busiest.filter(|&b| b >= SERVER_BOUND) {
        let _ = writeln!(
            out,
            "  the echo server was busy up to {:.0}% of the time: its one core caps the \
             rates, so CPU per message separates the clients better than msg/s",
            busy.min(1.0) * 100.0
        );
    }
    if let Some(note) = case.note {
        let _ = writeln!(out, "  {note}");
    }
}

/// The issue's targets for courier, checked on its paired ratios: a rate
/// at least fastwebsockets', a CPU per message within [`CPU_VS_FLOOR`] the
/// floor's. Three decimals, so that a verdict never contradicts the
/// figure shown.
fn targets(courier: Option<&Rounds<{ CLIENTS.len() }>>) -> String {
    let rate = courier.and_then(|r| at(r.rate_vs, "fastwebsockets"));
    let cpu = courier.and_then(|r| at(r.cpu_vs, "floor"));
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let rate = match rate {
        Some(r) => format!(
            "{} {r:.3}x fastwebsockets (>= {RATE_VS_FASTWEBSOCKETS:.2}x)",
            mark(r >= RATE_VS_FASTWEBSOCKETS)
        ),
        None => format!("? vs fastwebsockets (>= {RATE_VS_FASTWEBSOCKETS:.2}x): missing"),
    };
    let cpu = match cpu {
        Some(r) => format!(
            "{} CPU {r:.3}x floor (<= {CPU_VS_FLOOR:.2}x)",
            mark(r <= CPU_VS_FLOOR)
        ),
        None => format!("? CPU vs floor (<= {CPU_VS_FLOOR:.2}x): missing"),
    };
    format!("{rate}; {cpu}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `rounds` line of client `id` with ratios to courier,
    /// fastwebsockets, tokio-tungstenite and the floor.
    fn line(id: &str, rate_vs: [f64; 4], cpu_vs: [f64; 4]) -> String {
        let mut s = format!(
            r#"{{"kind":"rounds","group":"ws_echo_c16","id":"{id}","rate":200000.0,"rate_q1":198000.0,"rate_q3":202000.0,"cpu_ns_per_op":4700.0,"rounds":20,"per_block":24000,"concurrency":16,"message_bytes":32,"server_busy":0.97"#
        );
        for (i, client) in CLIENTS.iter().enumerate() {
            let _ = write!(
                s,
                r#","rate_vs_{client}":{},"cpu_vs_{client}":{}"#,
                rate_vs[i], cpu_vs[i]
            );
        }
        s.push('}');
        s
    }

    #[test]
    fn targets_are_checked_on_paired_ratios() {
        let text = line(
            "courier/32B",
            [1.0, 1.01, 1.6, 0.99],
            [1.0, 0.97, 0.7, 1.16],
        );
        let extra = Extra::parse(&text, &CLIENTS).unwrap();
        let r = extra.rounds[&("ws_echo_c16".to_string(), "courier/32B".to_string())];
        assert_eq!((r.concurrency, r.server_busy), (16, Some(0.97)));
        assert_eq!(
            targets(Some(&r)),
            "✓ 1.010x fastwebsockets (>= 1.00x); ✗ CPU 1.160x floor (<= 1.15x)"
        );
        let text = line(
            "courier/32B",
            [1.0, 0.9996, 1.6, 0.99],
            [1.0, 0.97, 0.7, 1.15],
        );
        let extra = Extra::parse(&text, &CLIENTS).unwrap();
        let r = extra.rounds[&("ws_echo_c16".to_string(), "courier/32B".to_string())];
        assert_eq!(
            targets(Some(&r)),
            "✗ 1.000x fastwebsockets (>= 1.00x); ✓ CPU 1.150x floor (<= 1.15x)"
        );
        assert_eq!(
            targets(None),
            "? vs fastwebsockets (>= 1.00x): missing; ? CPU vs floor (<= 1.15x): missing"
        );
    }

    #[test]
    fn a_case_renders_every_client_and_flags_a_busy_server() {
        let mut text = String::new();
        for client in CLIENTS {
            text.push_str(&line(&format!("{client}/32B"), [1.0; 4], [1.0; 4]));
            text.push('\n');
        }
        let extra = Extra::parse(&text, &CLIENTS).unwrap();
        let (mut out, mut missing) = (String::new(), Vec::new());
        let home = std::env::temp_dir().join(format!("xtask-ws-test-{}", std::process::id()));
        render_case(
            &mut out,
            &mut missing,
            &CASES[1],
            &home,
            SystemTime::now(),
            &extra,
        );
        // Only criterion's results are missing.
        assert_eq!(missing.len(), CLIENTS.len(), "{missing:?}");
        assert!(missing.iter().all(|m| m.contains("(criterion)")));
        for client in CLIENTS {
            assert!(out.contains(&format!("\n  {client} ")), "{out}");
        }
        assert!(out.contains("200,000"), "{out}");
        assert!(out.contains("97%"), "{out}");
        assert!(out.contains("its one core caps the rates"), "{out}");
        assert!(
            out.contains("20 interleaved rounds of 24000 round trips"),
            "{out}"
        );
        assert!(out.contains("issue anchors"), "{out}");
    }
}
