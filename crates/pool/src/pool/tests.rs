//! The pool's rules, checked over in-memory pipes ([`DuplexConnector`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Accepted, BoxFuture, Connection, Connector, Dial, DuplexConnector, DuplexServer, Error,
    Established, PoolConfig, PoolStats, Pooled, Scheme, Target,
};

fn target(host: &str) -> Target {
    Target::new(Scheme::Http, host, 80).unwrap()
}

fn stats(open: usize, idle: usize, waiting: usize) -> PoolStats {
    PoolStats {
        open,
        idle,
        waiting,
    }
}

fn pool(config: PoolConfig) -> (DuplexConnector, DuplexServer) {
    DuplexConnector::new(config)
}

fn config() -> crate::PoolConfigBuilder {
    PoolConfig::builder()
}

/// Finishes an "exchange" the way the HTTP layer will: a write, then
/// declaring the connection reusable.
async fn exchange(conn: &mut Connection) {
    conn.write_all(b"x").await.unwrap();
    conn.set_reusable(true);
}

/// Whether the server's end sees the client close (EOF), within a bound.
async fn sees_eof(accepted: &mut Accepted) -> bool {
    let mut buf = [0u8; 16];
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_secs(2), accepted.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Polls a future once; `Some` if it finished.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_millis(20), f)
        .await
        .ok()
}

#[tokio::test]
async fn a_reusable_connection_is_kept_and_reused() {
    let (connector, mut server) = pool(PoolConfig::default());
    let t = target("a.test");
    let mut conn = connector.connect(&t).await.unwrap();
    assert!(!conn.is_reused());
    exchange(&mut conn).await;
    conn.release();
    assert!(conn.closed());
    assert_eq!(connector.stats(), stats(1, 1, 0));

    let conn = connector.connect(&t).await.unwrap();
    assert!(conn.is_reused());
    assert_eq!(connector.stats(), stats(1, 0, 0));
    server.accept().await.unwrap();
    drop(conn);
    assert_eq!(connector.stats(), stats(0, 0, 0));
    // Only one connection was ever made.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), server.accept())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn release_closes_a_connection_not_declared_reusable() {
    let (connector, mut server) = pool(PoolConfig::default());
    let mut conn = connector.connect(&target("a.test")).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    conn.release();
    assert_eq!(connector.stats(), stats(0, 0, 0));
    assert!(sees_eof(&mut accepted).await);
}

#[tokio::test]
async fn a_write_after_set_reusable_makes_it_unreusable_again() {
    let (connector, mut server) = pool(PoolConfig::default());
    let mut conn = connector.connect(&target("a.test")).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    conn.set_reusable(true);
    conn.write_all(b"next request, half sent").await.unwrap();
    assert!(!conn.is_reusable());
    conn.release();
    assert_eq!(connector.stats(), stats(0, 0, 0));
    assert!(sees_eof(&mut accepted).await);
}

#[tokio::test]
async fn force_close_never_keeps() {
    let (connector, mut server) = pool(config().force_close(true).build().unwrap());
    let mut conn = connector.connect(&target("a.test")).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    assert_eq!(connector.stats(), stats(0, 0, 0));
    assert!(sees_eof(&mut accepted).await);
}

#[tokio::test]
async fn dropping_closes_and_io_after_release_fails() {
    let (connector, mut server) = pool(PoolConfig::default());
    let mut conn = connector.connect(&target("a.test")).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    let err = conn.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);

    let conn = connector.connect(&target("a.test")).await.unwrap();
    drop(conn);
    assert_eq!(connector.stats(), stats(0, 0, 0));
    assert!(sees_eof(&mut accepted).await);
}

#[tokio::test]
async fn detach_hands_over_the_stream_and_frees_its_place() {
    let (connector, mut server) = pool(
        config()
            .limit(Some(1))
            .acquire_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let mut conn = connector.connect(&target("a.test")).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    let mut stream = conn.detach().unwrap().stream;
    assert!(conn.closed());
    conn.release();
    assert_eq!(connector.stats(), stats(0, 0, 0));
    // The limit of 1 no longer counts the detached stream.
    let other = connector.connect(&target("a.test")).await.unwrap();
    assert_eq!(connector.stats(), stats(1, 0, 0));
    stream.write_all(b"still mine").await.unwrap();
    let mut buf = [0u8; 10];
    accepted.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still mine");
    drop(other);
}

#[tokio::test]
async fn waiters_are_served_in_order_and_limits_hold() {
    let (connector, mut server) = pool(config().limit_per_host(Some(1)).build().unwrap());
    let connector = Arc::new(connector);
    let t = target("a.test");
    let mut first = connector.connect(&t).await.unwrap();
    let _accepted = server.accept().await.unwrap();

    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (c, t2, order) = (connector.clone(), t.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = c.connect(&t2).await.unwrap();
            order.lock().unwrap().push(i);
            exchange(&mut conn).await;
            conn.release();
        }));
        // Queue them in a known order.
        for _ in 0..100 {
            if connector.stats().waiting == i + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(connector.stats().waiting, i + 1);
    }
    assert_eq!(connector.stats().open, 1);
    exchange(&mut first).await;
    first.release();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!(connector.stats(), stats(1, 1, 0));
}

#[tokio::test]
async fn a_cancelled_waiter_gives_its_place_back() {
    let (connector, _server) = pool(config().limit(Some(1)).build().unwrap());
    let t = target("a.test");
    let mut held = connector.connect(&t).await.unwrap();

    let mut cancelled = Box::pin(connector.connect(&t));
    assert!(poll_once(&mut cancelled).await.is_none());
    assert_eq!(connector.stats().waiting, 1);
    drop(cancelled);
    assert_eq!(connector.stats().waiting, 0);

    let mut next = Box::pin(connector.connect(&t));
    assert!(poll_once(&mut next).await.is_none());
    exchange(&mut held).await;
    held.release();
    let conn = next.await.unwrap();
    assert!(conn.is_reused());
    drop(conn);
    assert_eq!(connector.stats(), stats(0, 0, 0));
}

#[tokio::test]
async fn a_waiter_cancelled_after_being_granted_room_returns_it() {
    let (connector, _server) = pool(config().limit(Some(1)).build().unwrap());
    let t = target("a.test");
    let held = connector.connect(&t).await.unwrap();
    let mut waiter = Box::pin(connector.connect(&t));
    assert!(poll_once(&mut waiter).await.is_none());
    // Closing the held connection grants room to the waiter, which is
    // dropped before it ever runs again.
    drop(held);
    drop(waiter);
    assert_eq!(connector.stats(), stats(0, 0, 0));
    let again = connector.connect(&t).await.unwrap();
    assert_eq!(connector.stats(), stats(1, 0, 0));
    drop(again);
}

#[tokio::test(start_paused = true)]
async fn waiting_longer_than_the_acquire_timeout_fails() {
    let (connector, _server) = pool(
        config()
            .limit(Some(1))
            .acquire_timeout(Duration::from_secs(3))
            .build()
            .unwrap(),
    );
    let t = target("a.test");
    let _held = connector.connect(&t).await.unwrap();
    let err = connector.connect(&t).await.unwrap_err();
    assert!(matches!(err, Error::PoolTimeout { timeout } if timeout == Duration::from_secs(3)));
    assert!(err.is_timeout());
    assert_eq!(connector.stats(), stats(1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn idle_connections_expire() {
    let keepalive = Duration::from_secs(2);
    let (connector, mut server) = pool(config().keepalive_timeout(keepalive).build().unwrap());
    let t = target("a.test");
    let mut conn = connector.connect(&t).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    assert_eq!(connector.stats(), stats(1, 1, 0));

    tokio::time::sleep(keepalive / 2).await;
    assert_eq!(connector.stats(), stats(1, 1, 0));
    tokio::time::sleep(keepalive).await;
    // The reaper closed it without anyone asking for a connection.
    assert_eq!(connector.stats(), stats(0, 0, 0));
    assert!(sees_eof(&mut accepted).await);
    let conn = connector.connect(&t).await.unwrap();
    assert!(!conn.is_reused());
}

#[tokio::test(start_paused = true)]
async fn connections_past_their_lifetime_are_rotated() {
    let (connector, _server) = pool(
        config()
            .max_lifetime(Duration::from_secs(10))
            .keepalive_timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    let t = target("a.test");
    let mut conn = connector.connect(&t).await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    // Busy but young: reused.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut conn = connector.connect(&t).await.unwrap();
    assert!(conn.is_reused());
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Released past its lifetime: closed, not kept.
    exchange(&mut conn).await;
    conn.release();
    assert_eq!(connector.stats(), stats(0, 0, 0));

    // An idle one that ages past its lifetime is expired by the reaper.
    let mut conn = connector.connect(&t).await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(connector.stats(), stats(0, 0, 0));
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_not_reused() {
    let (connector, mut server) = pool(PoolConfig::default());
    let t = target("a.test");
    let mut conn = connector.connect(&t).await.unwrap();
    let accepted = server.accept().await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    drop(accepted);

    let conn = connector.connect(&t).await.unwrap();
    assert!(!conn.is_reused());
    assert_eq!(connector.stats(), stats(1, 0, 0));
    assert!(server.accept().await.is_some());
}

#[tokio::test]
async fn an_idle_connection_that_received_bytes_is_not_reused() {
    let (connector, mut server) = pool(PoolConfig::default());
    let t = target("a.test");
    let mut conn = connector.connect(&t).await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    exchange(&mut conn).await;
    conn.release();
    // A stray response nobody asked for: it must never be read as the
    // answer to the next request.
    accepted
        .stream
        .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
        .await
        .unwrap();

    let conn = connector.connect(&t).await.unwrap();
    assert!(!conn.is_reused());
    assert_eq!(connector.stats(), stats(1, 0, 0));
    assert!(sees_eof(&mut accepted).await);
}

#[tokio::test]
async fn a_full_pool_closes_an_idle_connection_of_another_host_to_make_room() {
    let (connector, _server) = pool(config().limit(Some(2)).build().unwrap());
    for host in ["a.test", "b.test"] {
        let mut conn = connector.connect(&target(host)).await.unwrap();
        exchange(&mut conn).await;
        conn.release();
    }
    assert_eq!(connector.stats(), stats(2, 2, 0));
    let c = connector.connect(&target("c.test")).await.unwrap();
    assert_eq!(connector.stats(), stats(2, 1, 0));
    // The oldest idle one (a.test) went.
    assert_eq!(connector.open_to(&target("a.test")), 0);
    assert_eq!(connector.open_to(&target("b.test")), 1);
    drop(c);
}

#[tokio::test]
async fn a_waiter_for_another_host_gets_room_from_a_released_connection() {
    let (connector, _server) = pool(config().limit(Some(1)).build().unwrap());
    let mut a = connector.connect(&target("a.test")).await.unwrap();
    let b_target = target("b.test");
    let mut waiter = Box::pin(connector.connect(&b_target));
    assert!(poll_once(&mut waiter).await.is_none());
    exchange(&mut a).await;
    a.release();
    let b = waiter.await.unwrap();
    assert_eq!(b.target(), Some(&target("b.test")));
    assert_eq!(connector.stats(), stats(1, 0, 0));
}

#[tokio::test]
async fn close_drops_idle_fails_waiters_and_refuses_new_connects() {
    let (connector, _server) = pool(config().limit(Some(2)).build().unwrap());
    let connector = Arc::new(connector);
    let t = target("a.test");
    let mut idle = connector.connect(&t).await.unwrap();
    let mut busy = connector.connect(&t).await.unwrap();
    exchange(&mut idle).await;
    idle.release();
    // Make the pool full so a waiter queues.
    let extra = connector.connect(&t).await.unwrap();
    let waiter = {
        let (connector, t) = (connector.clone(), t.clone());
        tokio::spawn(async move { connector.connect(&t).await })
    };
    for _ in 0..100 {
        if connector.stats().waiting == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!connector.closed());
    connector.close();
    assert!(connector.closed());
    assert!(matches!(waiter.await.unwrap(), Err(Error::Closed)));
    assert!(matches!(connector.connect(&t).await, Err(Error::Closed)));
    // Connections in use still work, and are closed when released.
    exchange(&mut busy).await;
    busy.release();
    drop(extra);
    assert_eq!(connector.stats(), stats(0, 0, 0));
}

#[derive(Debug)]
struct Failing(AtomicUsize);

impl Dial for Failing {
    fn dial<'a>(&'a self, _: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async {
            Err(Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )))
        })
    }
}

#[derive(Debug)]
struct Silent;

impl Dial for Silent {
    fn dial<'a>(&'a self, _: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_failed_dial_gives_its_place_back() {
    let connector = Pooled::new(
        config().limit(Some(1)).build().unwrap(),
        Failing(AtomicUsize::new(0)),
    );
    for _ in 0..3 {
        assert!(matches!(
            connector.connect(&target("a.test")).await,
            Err(Error::Io(_))
        ));
    }
    assert_eq!(connector.dialer().0.load(Ordering::Relaxed), 3);
    assert_eq!(connector.stats(), stats(0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_silent_dial_times_out() {
    let connector = Pooled::new(
        config()
            .conn_timeout(Duration::from_secs(7))
            .build()
            .unwrap(),
        Silent,
    );
    let err = connector.connect(&target("a.test")).await.unwrap_err();
    assert!(
        matches!(&err, Error::ConnectTimeout { host, timeout } if host == "a.test:80" && *timeout == Duration::from_secs(7)),
        "{err:?}"
    );
    assert_eq!(connector.stats(), stats(0, 0, 0));
}

/// Many tasks on few connections: the limits hold at every moment and
/// every connection is accounted for at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_hold_under_churn() {
    let limit = 6;
    let per_host = 2;
    let (connector, mut server) = pool(
        config()
            .limit(Some(limit))
            .limit_per_host(Some(per_host))
            .build()
            .unwrap(),
    );
    let connector = Arc::new(connector);
    let hosts: Vec<Target> = (0..4).map(|i| target(&format!("h{i}.test"))).collect();
    // Keep the server ends alive (and count them).
    let accepted = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(a) = server.accept().await {
            all.push(a);
        }
        all.len()
    });
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (connector, t) = (connector.clone(), hosts[i % hosts.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = connector.connect(&t).await.unwrap();
            assert!(connector.open_to(&t) <= per_host);
            assert!(connector.stats().open <= limit);
            tokio::task::yield_now().await;
            match i % 3 {
                0 => {
                    exchange(&mut conn).await;
                    conn.release();
                }
                1 => conn.close(),
                _ => drop(conn),
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let s = connector.stats();
    assert_eq!((s.open, s.waiting), (s.idle, 0), "{s:?}");
    connector.close();
    assert_eq!(connector.stats(), stats(0, 0, 0));
    drop(connector);
    assert!(accepted.await.unwrap() >= 1);
}

#[tokio::test]
async fn a_released_connection_goes_to_a_waiter_that_can_reuse_it_but_no_endpoint_starves() {
    let (connector, _server) = pool(config().limit(Some(1)).build().unwrap());
    let (a, b) = (target("a.test"), target("b.test"));
    let mut held = connector.connect(&a).await.unwrap();
    // b waits first; only closing a's connection would make room for it.
    let mut wait_b = Box::pin(connector.connect(&b));
    assert!(poll_once(&mut wait_b).await.is_none());
    let mut overtaken = 0;
    let b_conn = loop {
        let mut wait_a = Box::pin(connector.connect(&a));
        assert!(poll_once(&mut wait_a).await.is_none());
        exchange(&mut held).await;
        held.release();
        if let Some(b_conn) = poll_once(&mut wait_b).await {
            break b_conn.unwrap();
        }
        // Reused by the later waiter of its own endpoint, not closed for b.
        held = wait_a.await.unwrap();
        assert!(held.is_reused());
        overtaken += 1;
        assert!(overtaken <= super::MAX_OVERTAKEN, "b starves");
    };
    assert_eq!(overtaken, super::MAX_OVERTAKEN);
    assert_eq!(b_conn.target(), Some(&b));
    assert_eq!(connector.open_to(&a), 0);
}

#[tokio::test]
async fn a_fresh_connect_discards_the_idle_connections_and_dials() {
    let (connector, mut server) = pool(PoolConfig::default());
    let t = target("a.test");
    let mut first = connector.connect(&t).await.unwrap();
    let mut second = connector.connect(&t).await.unwrap();
    for conn in [&mut first, &mut second] {
        exchange(conn).await;
        conn.release();
    }
    assert_eq!(connector.stats(), stats(2, 2, 0));
    let mut accepted = vec![
        server.accept().await.unwrap(),
        server.accept().await.unwrap(),
    ];

    let options = crate::ConnectOptions::default().fresh(true);
    let conn = connector.connect_with(&t, options).await.unwrap();
    assert!(
        !conn.is_reused(),
        "a fresh connect never hands out an idle one"
    );
    assert_eq!(connector.stats(), stats(1, 0, 0), "both idle ones are gone");
    for accepted in &mut accepted {
        assert!(
            sees_eof(accepted).await,
            "discarded idle connections are closed"
        );
    }
    server.accept().await.unwrap();
}
