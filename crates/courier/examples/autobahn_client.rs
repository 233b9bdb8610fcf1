//! Runs the client cases of the Autobahn|Testsuite fuzzing server against
//! courier's WebSocket client, and asks the server to write its report.
//!
//! ```text
//! cargo run --release --example autobahn_client -- [BASE_URL] [AGENT]
//! ```
//!
//! `BASE_URL` defaults to `ws://127.0.0.1:9001`, `AGENT` (the name in the
//! report) to `courier`. It follows the fuzzing server's client protocol:
//!
//! 1. `GET {BASE_URL}/getCaseCount` over WebSocket: one text message, the
//!    number of cases;
//! 2. for each case N: `{BASE_URL}/runCase?case=N&agent=AGENT`, offering
//!    permessage-deflate and accepting messages up to 64 MiB (the
//!    performance cases send 16 MiB), and every text or binary message is
//!    sent back as it came until the socket closes. Some cases are meant to
//!    fail the connection (invalid UTF-8, protocol violations): an error
//!    just ends that case, and the report says whether it ended the right
//!    way;
//! 3. `{BASE_URL}/updateReports?agent=AGENT`, which writes the report.
//!
//! Build it with `--release`: the performance cases (9.*) move hundreds of
//! megabytes, which a debug build makes slow.
//!
//! # Running the fuzzing server
//!
//! With Docker, from an empty directory:
//!
//! ```text
//! mkdir -p autobahn/reports
//! cat > autobahn/fuzzingserver.json <<'EOF'
//! {
//!   "url": "ws://127.0.0.1:9001",
//!   "outdir": "/reports/clients",
//!   "cases": ["*"],
//!   "exclude-cases": [],
//!   "exclude-agent-cases": {}
//! }
//! EOF
//! docker run -it --rm -v "$PWD/autobahn:/config" -v "$PWD/autobahn/reports:/reports" \
//!     -p 9001:9001 crossbario/autobahn-testsuite \
//!     wstest -m fuzzingserver -s /config/fuzzingserver.json
//! ```
//!
//! then, in another terminal, run this example; the report is
//! `autobahn/reports/clients/index.html` (one line per case: OK,
//! NON-STRICT, INFORMATIONAL, or FAILED with the frames exchanged). List
//! case ids such as `"1.*"` or `"12.1.1"` in `"cases"` to run fewer;
//! `"exclude-cases"` leaves some out.

// Printing the progress is the point of this example.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use courier::ClientSession;
use courier::ws::{ClientWebSocket, CloseCode, Message};

type BoxError = Box<dyn Error + Send + Sync>;

/// The fuzzing server of the usual configuration.
const DEFAULT_BASE: &str = "ws://127.0.0.1:9001";

/// The agent name in the report.
const DEFAULT_AGENT: &str = "courier";

/// The largest message accepted: the performance cases send 16 MiB.
const MAX_MESSAGE: usize = 64 << 20;

/// The longest wait for one message: the server drives every case and
/// always ends it, so this only bounds a stuck run.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| DEFAULT_BASE.to_owned())
        .trim_end_matches('/')
        .to_owned();
    let agent = args.next().unwrap_or_else(|| DEFAULT_AGENT.to_owned());
    if args.next().is_some() {
        return Err("usage: autobahn_client [BASE_URL] [AGENT]".into());
    }

    let session = ClientSession::new();
    let count = case_count(&session, &base).await?;
    println!("{base}: {count} cases, agent {agent:?}");

    let started = Instant::now();
    let mut errors = 0;
    for case in 1..=count {
        let timer = Instant::now();
        let outcome = match run_case(&session, &base, &agent, case).await {
            Ok(outcome) => outcome,
            Err(e) => {
                errors += 1;
                format!("could not connect: {e}")
            }
        };
        println!(
            "case {case:>3}/{count}: {outcome} ({:.1?})",
            timer.elapsed()
        );
    }
    println!(
        "ran {count} cases in {:.1?} ({errors} could not connect)",
        started.elapsed()
    );

    update_reports(&session, &base, &agent).await?;
    println!("asked {base} to update the reports of {agent:?}");
    session.close().await;
    Ok(())
}

/// `getCaseCount`: one text message holding the number of cases.
async fn case_count(session: &ClientSession, base: &str) -> Result<u32, BoxError> {
    let mut ws = session
        .ws_connect(format!("{base}/getCaseCount"))
        .receive_timeout(RECEIVE_TIMEOUT)
        .await?;
    let text = ws.receive_str().await?;
    let count = text
        .as_str()
        .trim()
        .parse()
        .map_err(|e| format!("getCaseCount sent {:?}: {e}", text.as_str()))?;
    drain(&mut ws).await;
    Ok(count)
}

/// One case: echo every message until the server closes (or the
/// connection fails, which some cases are meant to do). Only a failed
/// handshake is an error; the outcome says how the case ended.
async fn run_case(
    session: &ClientSession,
    base: &str,
    agent: &str,
    case: u32,
) -> Result<String, courier::Error> {
    let mut ws = session
        .ws_connect(format!("{base}/runCase"))
        .query(&[("case", case.to_string().as_str()), ("agent", agent)])
        .compress(true)
        .max_msg_size(MAX_MESSAGE)
        .receive_timeout(RECEIVE_TIMEOUT)
        .await?;
    let mut echoed = 0usize;
    let mut end = None;
    loop {
        let message = match ws.receive().await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(e) => {
                end = Some(format!("failed: {e}"));
                break;
            }
        };
        let sent = match message {
            Message::Text(text) => ws.send(Message::Text(text)).await,
            Message::Binary(data) => ws.send(Message::Binary(data)).await,
            // The close frame is answered already (autoclose); the next
            // receive ends. Pings are answered and not returned (autoping).
            Message::Close(_) | Message::Ping(_) | Message::Pong(_) => continue,
        };
        match sent {
            Ok(()) => echoed += 1,
            Err(e) => {
                end = Some(format!("failed sending: {e}"));
                break;
            }
        }
    }
    // Finish the close handshake (nothing to do if it is complete).
    let _ = ws.close(CloseCode::NORMAL, "").await;
    let compressed = if ws.compress().is_some() {
        ", deflate"
    } else {
        ""
    };
    let end = end.unwrap_or_else(|| match ws.close_code() {
        Some(code) => format!("closed {code}"),
        None => "closed".to_owned(),
    });
    Ok(format!("{echoed} echoed{compressed}, {end}"))
}

/// `updateReports`: the server writes the report and closes.
async fn update_reports(session: &ClientSession, base: &str, agent: &str) -> Result<(), BoxError> {
    let mut ws = session
        .ws_connect(format!("{base}/updateReports"))
        .query(&[("agent", agent)])
        .receive_timeout(RECEIVE_TIMEOUT)
        .await?;
    drain(&mut ws).await;
    Ok(())
}

/// Reads until the server closes, then completes the close handshake.
async fn drain(ws: &mut ClientWebSocket) {
    while let Ok(Some(_)) = ws.receive().await {}
    let _ = ws.close(CloseCode::NORMAL, "").await;
}
