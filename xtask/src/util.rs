//! Small helpers shared by the xtask commands: paths and child processes.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// A failure of an xtask step, printed as one line.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    let manifest = env!("CARGO_MANIFEST_DIR");
    Path::new(manifest)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The shared directory next to the checkout (`../shared`), holding the
/// peers scripts and the conformance vectors. `COURIER_SHARED` overrides it.
pub fn shared_dir() -> Result<PathBuf> {
    let dir = match env::var_os("COURIER_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("..").join("shared"),
    };
    if !dir.join("peers").is_dir() || !dir.join("conformance").is_dir() {
        return Err(format!(
            "{} does not hold peers/ and conformance/: courier expects the shared \
             directory next to its checkout (set COURIER_SHARED to point elsewhere)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// The `cargo` that runs this xtask.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd`, inheriting stdio; an error names the command and its status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(cmd)))
    }
}

/// Runs `cmd`, inheriting stdio, and returns its exit status.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    cmd.status()
        .map_err(|e| format!("cannot run `{}`: {e}", describe(cmd)))
}

/// Runs `cmd` and returns its stdout; stderr is inherited.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", describe(cmd)))?;
    if !out.status.success() {
        return Err(format!("`{}` failed ({})", describe(cmd), out.status));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("`{}` printed non-UTF-8", describe(cmd)))
}

/// `program arg arg...` for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Prints a step banner to stderr and returns a timer for the step.
pub fn step(name: &str) -> Instant {
    eprintln!("\n==> {name}");
    Instant::now()
}

/// Formats a duration as seconds with one decimal.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
