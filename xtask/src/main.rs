//! `cargo xtask`: courier's task runner.
//!
//! ```text
//! cargo xtask test          the whole suite: fmt, clippy, docs, layering, unit +
//!                           integration tests against real peers, conformance, fuzz smoke
//! cargo xtask conformance   replay the HTTP/1.1 response and cookie vectors, and compare
//!                           courier with aiohttp on real peers (see docs/conformance.md)
//! cargo xtask bench         criterion benchmarks, courier side by side with the floor
//! cargo xtask fuzz-smoke    run every fuzz target for a bounded time
//! cargo xtask peers         start | stop the real test peers for a manual test run
//! ```

// Items are `pub` inside private modules of this binary: that is the
// module's interface to `main`, not a public API.
#![allow(unreachable_pub)]
// Tables and export lines on stdout are what this tool is for.
#![allow(clippy::print_stdout)]

mod bench;
mod conformance;
mod differential;
mod fuzz;
mod peers;
mod test;
mod util;
mod ws_interop;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test          fmt, clippy, docs, layering, unit + integration tests (real peers),
                conformance and a fuzz smoke run: what CI runs
                  --skip-fuzz     leave out the fuzz smoke run
  conformance   replay the vectors of ../shared/conformance/: the suites
                  http1 (http1-responses.json), cookies (cookies.json) and
                  cookie-dates (cookie-dates.json); and differential:
                  xtask/scenarios/differential.json through aiohttp and
                  courier against the real peers (started unless the
                  COURIER_PEER_* variables are set); websocket: the
                  WebSocket client against the websockets echo server
                  and aiohttp's /ws (ws, wss, Unix, tinyproxy; same peers)
                  --suite NAME    only this suite (repeatable)
                  --vectors PATH  another vector (or scenario) file for one
                                  suite (http1 unless --suite says otherwise)
                  --bless         rewrite the expected-results files
  bench [proto|pool|client|ws] [--quick]
                criterion benchmarks with ratio tables (client: courier,
                reqwest, hyper-util and the floor, pinned apart)
                  --quick         shorter measurement (noisier)
  fuzz-smoke    each fuzz target for a bounded time
                  --seconds N     per target (default 10)
                  --toolchain T   auto (default), nightly, or bootstrap (stable
                                  with RUSTC_BOOTSTRAP=1)
  peers start   start the real peers, print the environment the tests read
  peers env     print that environment again
  peers stop    stop them
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        "test" => test::run(rest),
        "conformance" => conformance::run(rest),
        "bench" => bench::run(rest),
        "fuzz-smoke" => fuzz::run(rest),
        "peers" => peers::run(rest),
        "help" | "--help" | "-h" => {
            eprint!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
