//! `cargo xtask test`: everything CI checks, in one command.
//!
//! Steps: toolchain components, rustfmt, clippy (`-D warnings`), rustdoc
//! (`-D warnings`), the layering rules of DESIGN.md, real peers up, unit +
//! integration + doc tests, conformance (vectors, and the differential
//! suite against the running peers), a fuzz smoke run, peers down. Every
//! step runs even when an earlier one failed (unless it cannot: tests need
//! peers), and a summary table ends the run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::util::{self, Result};
use crate::{conformance, fuzz, peers};

/// Workspace crates each crate may depend on (normal and dev dependencies),
/// from the layer diagram in DESIGN.md.
const ALLOWED_DEPS: &[(&str, &[&str])] = &[
    ("courier-proto", &[]),
    ("courier-ws", &[]),
    ("courier-pool", &["courier-proto", "courier-test-support"]),
    (
        "courier-client",
        &[
            "courier-proto",
            "courier-pool",
            "courier-ws",
            "courier-test-support",
        ],
    ),
    (
        "courier",
        &[
            "courier-client",
            "courier-ws",
            "courier-pool",
            "courier-proto",
        ],
    ),
    // Test helpers never use the codec, so the parser never tests itself.
    ("courier-test-support", &[]),
];

/// The only crates that may depend on tokio (DESIGN.md): the sans-IO crates
/// must stay free of it, even transitively.
const SANS_IO: &[&str] = &["courier-proto", "courier-ws"];

/// The features CI builds and tests with: every optional feature except
/// `courier-pool/aws-lc-rs`, whose C library build (cmake, minutes on two
/// cores) would dominate the run; ring, the default provider, is tested.
const FEATURES: &[&str] = &["--features", "courier-pool/webpki-roots"];

/// Seconds each fuzz target runs in the smoke step.
const FUZZ_SECONDS: u64 = 10;

struct Outcome {
    name: &'static str,
    took: Duration,
    result: Result<()>,
}

/// Runs the command line `cargo xtask test [--skip-fuzz]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut skip_fuzz = false;
    for arg in args {
        match arg.as_str() {
            "--skip-fuzz" => skip_fuzz = true,
            other => return Err(format!("test: unknown option `{other}`")),
        }
    }
    let started = Instant::now();
    let mut outcomes = Vec::new();
    let mut step = |name: &'static str, f: &mut dyn FnMut() -> Result<()>| {
        let timer = util::step(name);
        let result = f();
        if let Err(e) = &result {
            eprintln!("xtask: step `{name}` failed: {e}");
        }
        outcomes.push(Outcome {
            name,
            took: timer.elapsed(),
            result,
        });
    };

    step("toolchain components", &mut toolchain);
    step("rustfmt", &mut fmt);
    step("clippy", &mut clippy);
    step("rustdoc", &mut docs);
    step("layering", &mut layering);
    let mut running = None;
    step("peers up", &mut || {
        running = Some(peers::start_all()?);
        Ok(())
    });
    step("unit + integration + doc tests", &mut || {
        let env = running
            .as_ref()
            .map(peers::Peers::env)
            .ok_or("no peers running")?;
        tests(&env)
    });
    // With the peers' environment: the differential suite talks to them.
    step("conformance", &mut || {
        let env = running.as_ref().map(peers::Peers::env);
        conformance::all(false, env.as_deref())
    });
    if !skip_fuzz {
        step("fuzz smoke", &mut || fuzz::smoke(FUZZ_SECONDS));
    }
    step("peers down", &mut || match running.take() {
        Some(peers) => peers.stop(),
        None => Ok(()),
    });

    eprintln!("\n==> summary ({} in all)", util::secs(started.elapsed()));
    let mut failed = 0;
    for o in &outcomes {
        let verdict = if o.result.is_ok() { "ok" } else { "FAILED" };
        eprintln!("  {:<34} {:>8}  {verdict}", o.name, util::secs(o.took));
        failed += usize::from(o.result.is_err());
    }
    if failed > 0 {
        return Err(format!("{failed} step(s) failed"));
    }
    Ok(())
}

/// rustfmt and clippy must be installed; add them if not (idempotent).
fn toolchain() -> Result<()> {
    let have_fmt = util::cargo()
        .args(["fmt", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let have_clippy = util::cargo()
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have_fmt && have_clippy {
        return Ok(());
    }
    util::run(std::process::Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))
}

fn fmt() -> Result<()> {
    util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))?;
    let fuzz = util::workspace_root().join("fuzz/Cargo.toml");
    if fuzz.is_file() {
        let manifest = fuzz.to_string_lossy().into_owned();
        util::run(util::cargo().args([
            "fmt",
            "--manifest-path",
            &manifest,
            "--all",
            "--",
            "--check",
        ]))?;
    }
    Ok(())
}

fn clippy() -> Result<()> {
    util::run(
        util::cargo()
            .args(["clippy", "--workspace", "--all-targets", "--locked"])
            .args(FEATURES)
            .args(["--", "-D", "warnings"]),
    )?;
    // The pool without hickory and platform roots: the system resolver and
    // webpki-roots alone.
    util::run(util::cargo().args([
        "clippy",
        "-p",
        "courier-pool",
        "--all-targets",
        "--no-default-features",
        "--features",
        "ring,webpki-roots",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The client and the facade with every optional feature off (no TLS
    // provider, no cookies, gzip, JSON, multipart or WebSocket), and the
    // bench servers.
    for args in [
        &[
            "-p",
            "courier-client",
            "-p",
            "courier",
            "--no-default-features",
        ][..],
        &[
            "-p",
            "courier-test-support",
            "--features",
            "bench-server,ws-bench-server",
        ][..],
    ] {
        util::run(
            util::cargo()
                .args(["clippy", "--all-targets", "--locked"])
                .args(args)
                .args(["--", "-D", "warnings"]),
        )?;
    }
    // The codec also builds without its optional compression support.
    util::run(util::cargo().args([
        "clippy",
        "-p",
        "courier-proto",
        "--all-targets",
        "--no-default-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))
}

fn docs() -> Result<()> {
    util::run(
        util::cargo()
            .args([
                "doc",
                "--workspace",
                "--no-deps",
                "--document-private-items",
                "--locked",
            ])
            .args(FEATURES)
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

/// Checks the dependency rules of DESIGN.md from `cargo metadata` and
/// `cargo tree`.
fn layering() -> Result<()> {
    let metadata = util::output(util::cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--locked",
    ]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let workspace: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_DEPS.iter().copied().collect();
    let mut problems = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        let deps = package["dependencies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for dep in deps {
            let dep_name = dep["name"].as_str().unwrap_or("?");
            // xtask is the task runner, outside the layers: its differential
            // suite drives the async client on a runtime of its own.
            if dep_name == "tokio"
                && !matches!(
                    name,
                    "courier-pool" | "courier-client" | "courier-test-support" | "xtask"
                )
                && dep["kind"].as_str() != Some("dev")
            {
                problems.push(format!("{name} depends on tokio"));
            }
            if let Some(allowed) = allowed.get(name)
                && workspace.contains(dep_name)
                && !allowed.contains(&dep_name)
            {
                problems.push(format!("{name} must not depend on {dep_name}"));
            }
        }
    }
    for krate in SANS_IO {
        let tree = util::output(util::cargo().args([
            "tree",
            "-p",
            krate,
            "-e",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "--locked",
        ]))?;
        for forbidden in ["tokio", "async-std", "futures-io", "mio"] {
            if tree
                .lines()
                .any(|l| l.split_whitespace().next() == Some(forbidden))
            {
                problems.push(format!("{krate} (sans-IO) depends on {forbidden}"));
            }
        }
    }
    if problems.is_empty() {
        eprintln!("layering ok: {} workspace crates checked", workspace.len());
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Unit, integration and doc tests of the whole workspace, with the peers'
/// environment, plus the codec without its default features.
fn tests(env: &[(String, String)]) -> Result<()> {
    let mut all = util::cargo();
    all.args(["test", "--workspace", "--locked"]).args(FEATURES);
    all.envs(env.iter().map(|(k, v)| (k, v)));
    util::run(&mut all)?;
    util::run(util::cargo().args([
        "test",
        "-p",
        "courier-proto",
        "--no-default-features",
        "--locked",
    ]))
}
