//! The PostgreSQL test harness itself: a database per test on the binary's shared server,
//! and a server of a test's own that is gone once it is dropped, also after a panic.

mod common;

use common::pg::{PgServer, db};

#[test]
fn databases_are_fresh_and_separate() {
    let a = db("harness a");
    let b = db("harness b");
    assert_ne!(a.name, b.name);
    a.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)");
    assert_eq!(a.psql("SELECT sum(x) FROM t"), "3");
    // The other database has no such table.
    let out = b.psql_output("SELECT * FROM t");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"t\" does not exist"));
    assert!(
        a.url.starts_with("postgres://postgres@/harness_a_"),
        "{}",
        a.url
    );
    assert_eq!(
        a.psql("SHOW fsync"),
        "off",
        "the test server runs without fsync"
    );
}

#[test]
fn a_read_only_role_logs_in_with_its_password_and_cannot_write() {
    let d = db("readonly");
    d.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
    let url = d.read_only_role("reader", "s3cret");
    let psql = |url: &str, sql: &str| {
        std::process::Command::new(PgServer::shared().bin().join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .unwrap()
    };
    let read = psql(&url, "SELECT x FROM t");
    assert!(read.status.success(), "{read:?}");
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "7");
    let write = psql(&url, "INSERT INTO t VALUES (8)");
    assert!(!write.status.success());
    assert!(String::from_utf8_lossy(&write.stderr).contains("permission denied"));
    let wrong = psql(&url.replace("s3cret", "wrong"), "SELECT 1");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"));
}

#[test]
fn an_own_server_stops_and_starts_and_is_gone_after_a_panic() {
    let (pid, dir) = {
        let server = PgServer::start();
        let d = server.create_db("own");
        d.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (5)");
        server.stop();
        assert!(!server.is_running());
        assert!(!d.psql_output("SELECT 1").status.success());
        server.restart();
        server.wait_ready();
        assert_eq!(
            d.psql("SELECT x FROM t"),
            "5",
            "the data survives a restart"
        );
        let pid = server.pid().expect("postmaster.pid");
        let dir = server.data_dir();
        // A test that panics while holding the server still stops it.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _server = server;
            panic!("a failing test");
        }));
        assert!(panicked.is_err());
        (pid, dir)
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the postmaster {pid} still runs");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
