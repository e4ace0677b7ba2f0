//! A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` in a temporary directory,
//! run as the `postgres` user when the tests run as root (PostgreSQL refuses root), with a
//! private socket directory, a free port on 127.0.0.1 and fast, unsafe settings (no fsync).
//!
//! - [`PgServer::shared`]: one server per test binary, shared by its tests, stopped when the
//!   test process ends (however it ends: a watchdog process stops it and removes its files).
//! - [`PgServer::start`]: a server of a test's own (to stop and start it under a monitor),
//!   stopped and removed on drop, also when the test panics.
//! - [`PgServer::keep_at`]: a server whose data directory stays where it is named, to be
//!   started on it again (the benchmarks keep a loaded cluster between runs); stopped on drop.
//! - [`PgServer::create_db`] / [`db`]: a fresh database per test, with its `postgres://` URL.
//!
//! Authentication: the superuser `postgres` is trusted (socket and 127.0.0.1); every other
//! role needs its password (scram-sha-256), so credential handling can be tested.
//!
//! Nothing is skipped: without PostgreSQL the test fails, saying how to get it
//! (`.ci/run` installs the `postgresql` package; `TOKMON_PG_BIN` points at another bin dir).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static DB_SEQ: AtomicUsize = AtomicUsize::new(0);
static SHARED: OnceLock<PgServer> = OnceLock::new();

/// Where the server's programs are: `TOKMON_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else the directory of an `initdb` on `PATH`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TOKMON_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").exists(),
            "TOKMON_PG_BIN={} has no initdb in it",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    match on_path {
        // Follow a symlink (Debian links /usr/local/bin/initdb into the version's bin dir),
        // so psql and postgres are found beside it.
        Some(d) => std::fs::canonicalize(d.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(d),
        None => panic!(
            "PostgreSQL is not installed: no initdb in /usr/lib/postgresql/*/bin or on PATH. \
             These tests start their own server: install the `postgresql` package \
             (`.ci/run` does, with apt), or set TOKMON_PG_BIN to the directory holding \
             initdb, pg_ctl and psql."
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of the `postgres` user (only looked up when running as root).
fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("run id");
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .expect("run id");
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>();
    match (uid, gid) {
        (Ok(u), Ok(g)) => (u, g),
        _ => panic!(
            "the tests run as root and PostgreSQL refuses root, but there is no `postgres` \
             user to run it as (the `postgresql` package creates one)"
        ),
    }
}

fn runuser() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A database on a test server: its name and `postgres://` URL, and `psql` on it.
#[derive(Debug, Clone)]
pub struct PgDb {
    pub name: String,
    /// Over the private socket, as the trusted superuser.
    pub url: String,
    /// Over TCP on 127.0.0.1, as the trusted superuser.
    pub tcp_url: String,
    conn: ConnInfo,
}

#[derive(Debug, Clone)]
struct ConnInfo {
    bin: PathBuf,
    socket_dir: PathBuf,
    port: u16,
}

impl ConnInfo {
    fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@/{db}?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    fn tcp_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `psql` on `db` as the superuser, stopping at the first error.
    fn psql_output(&self, db: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .output()
            .expect("run psql")
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_output(db, sql);
        assert!(
            out.status.success(),
            "psql on {db} failed running {sql:?}: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

impl PgDb {
    /// Run SQL as the superuser; its output unaligned, tuples only (`|` between columns).
    pub fn psql(&self, sql: &str) -> String {
        self.conn.psql(&self.name, sql)
    }

    /// Run SQL that may fail: the whole output.
    pub fn psql_output(&self, sql: &str) -> Output {
        self.conn.psql_output(&self.name, sql)
    }

    /// A role that logs in with a password (scram-sha-256) and may only read this database's
    /// tables in `public`; returns its `postgres://` URL (over the socket).
    pub fn read_only_role(&self, role: &str, password: &str) -> String {
        self.psql(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}';
               END IF;
             END $$;
             GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\";
             GRANT USAGE ON SCHEMA public TO \"{role}\";
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{role}\";",
            db = self.name
        ));
        format!(
            "postgres://{role}:{password}@/{}?host={}&port={}",
            self.name,
            self.conn.socket_dir.display(),
            self.conn.port
        )
    }

    /// Drop every other connection to this database, as a network failure would.
    pub fn terminate_connections(&self) -> usize {
        let n = self.psql(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()) t",
            self.name
        ));
        n.trim().parse().unwrap_or(0)
    }
}

/// A PostgreSQL server in a temporary directory.
pub struct PgServer {
    /// Holds `data/`, `sock/` and `server.log`; owned by `postgres` when running as root.
    dir: PathBuf,
    conn: ConnInfo,
    as_postgres: bool,
    /// The data stays in `dir` (see [`PgServer::keep_at`]): stopped cleanly, never removed.
    keep: bool,
    /// Stops the server (and removes `dir`, unless it is kept) once this process is gone.
    watchdog: Option<Child>,
}

impl PgServer {
    /// The server of this test binary, started by the first test that asks.
    pub fn shared() -> &'static PgServer {
        SHARED.get_or_init(PgServer::start)
    }

    /// A server of the caller's own: stopped and removed on drop.
    pub fn start() -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("tokmon-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL")
            .keep();
        PgServer::start_in(dir, false)
    }

    /// A server whose files live in `dir` and stay there: started on the data already in it
    /// (a new cluster the first time), stopped cleanly on drop or when the process ends,
    /// never removed.
    pub fn keep_at(dir: &Path) -> PgServer {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("create {} for PostgreSQL: {e}", dir.display()));
        let dir = std::fs::canonicalize(dir)
            .unwrap_or_else(|e| panic!("canonicalize {}: {e}", dir.display()));
        PgServer::start_in(dir, true)
    }

    fn start_in(dir: PathBuf, keep: bool) -> PgServer {
        let bin = bin_dir();
        let as_postgres = is_root();
        let socket_dir = dir.join("sock");
        if !socket_dir.exists() {
            std::fs::create_dir(&socket_dir).expect("socket dir");
        }
        if as_postgres {
            let (uid, gid) = postgres_ids();
            for p in [&dir, &socket_dir] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", p.display()));
            }
        }
        let mut server = PgServer {
            conn: ConnInfo {
                bin,
                socket_dir,
                port: 0,
            },
            dir,
            as_postgres,
            keep,
            watchdog: None,
        };
        // Before anything is started, so nothing outlives this process.
        server.watchdog = Some(server.spawn_watchdog());
        if !(keep && server.data_dir().join("PG_VERSION").exists()) {
            server.initdb();
        }
        // The port is free when picked, but another process may take it first: try again.
        let mut last = String::new();
        for _ in 0..3 {
            server.conn.port = free_port();
            server.write_conf();
            match server.pg_ctl_start() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    /// `initdb`/`pg_ctl` as the server's user.
    fn server_cmd(&self, program: &str) -> Command {
        let path = self.conn.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new(runuser());
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // The postgres user may not enter the test's working directory.
        c.current_dir("/")
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .stdin(Stdio::null());
        c
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket_dir(&self) -> &Path {
        &self.conn.socket_dir
    }

    pub fn port(&self) -> u16 {
        self.conn.port
    }

    pub fn bin(&self) -> &Path {
        &self.conn.bin
    }

    /// The server's log, to show when something failed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn initdb(&self) {
        let out = self
            .server_cmd("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", describe(&out));
        let hba = "local all postgres trust\n\
                   host all postgres 127.0.0.1/32 trust\n\
                   local all all scram-sha-256\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";
        self.write_server_file("pg_hba.conf", hba);
    }

    /// Settings for a throwaway server: fast and unsafe, private socket, 127.0.0.1 only.
    fn write_conf(&self) {
        let conf = format!(
            "listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             wal_level = minimal\n\
             max_wal_senders = 0\n\
             max_connections = 60\n\
             shared_buffers = 64MB\n\
             log_min_messages = warning\n\
             timezone = 'UTC'\n",
            self.conn.port,
            self.conn.socket_dir.display()
        );
        self.write_server_file("postgresql.auto.conf", &conf);
    }

    /// Write a file in the data directory (as root it stays readable to postgres: 0644).
    fn write_server_file(&self, name: &str, text: &str) {
        let path = self.data_dir().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        if self.as_postgres {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let out = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .expect("run pg_ctl start");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{}\nserver log:\n{}", describe(&out), self.log()))
        }
    }

    /// Start the server again after [`PgServer::stop`] (same port, same data).
    pub fn restart(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("PostgreSQL did not start again: {e}");
        }
    }

    /// Stop the server (fast: clients are disconnected) and wait until it is down.
    pub fn stop(&self) {
        let out = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "30", "-m", "fast", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            describe(&out)
        );
    }

    /// Whether the postmaster is running.
    pub fn is_running(&self) -> bool {
        self.server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// A shell process in a process group of its own that waits for this test process to
    /// end, then stops the server at once (SIGQUIT to the postmaster; SIGINT, a clean fast
    /// shutdown, when the data is kept) and removes its files (unless they are kept).
    /// It covers what Drop cannot: the shared server (statics are never dropped), a test
    /// binary killed by a signal, a panic while panicking.
    fn spawn_watchdog(&self) -> Child {
        let script = r#"
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            pid=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null)
            if [ -n "$pid" ]; then
                if [ "$3" = keep ]; then kill -INT "$pid" 2>/dev/null; else kill -QUIT "$pid" 2>/dev/null; fi
                for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
            if [ "$3" != keep ]; then rm -rf "$2"; fi
        "#;
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("tokmon-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.dir)
            .arg(if self.keep { "keep" } else { "remove" })
            .process_group(0)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the PostgreSQL watchdog")
    }

    /// The database named `name` (made by [`PgServer::create_named_db`]), if it exists, and
    /// its comment (`COMMENT ON DATABASE`, empty when it has none).
    pub fn existing_db(&self, name: &str) -> Option<(PgDb, String)> {
        let found = self.conn.psql(
            "postgres",
            &format!(
                "SELECT 'found:' || COALESCE(shobj_description(oid, 'pg_database'), '') \
                 FROM pg_database WHERE datname = '{}'",
                name.replace('\'', "''")
            ),
        );
        let comment = found.strip_prefix("found:")?.to_string();
        Some((self.db_handle(name), comment))
    }

    /// A new database named exactly `name` (a plain identifier).
    pub fn create_named_db(&self, name: &str) -> PgDb {
        self.conn
            .psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.db_handle(name)
    }

    fn db_handle(&self, name: &str) -> PgDb {
        PgDb {
            url: self.conn.url(name),
            tcp_url: self.conn.tcp_url(name),
            name: name.to_string(),
            conn: self.conn.clone(),
        }
    }

    /// A fresh, empty database; its name starts with `hint` (made safe).
    pub fn create_db(&self, hint: &str) -> PgDb {
        let mut name: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            name.insert(0, 't');
        }
        let name = format!("{name}_{}", DB_SEQ.fetch_add(1, Ordering::SeqCst));
        self.create_named_db(&name)
    }

    /// Wait until the server accepts connections again (after [`PgServer::restart`]).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .conn
            .psql_output("postgres", "SELECT 1")
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL does not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.keep {
            // The data stays: a clean stop, so the next start needs no recovery.
            if self.is_running() {
                self.stop();
            }
            if let Some(mut w) = self.watchdog.take() {
                let _ = w.kill();
                let _ = w.wait();
            }
            return;
        }
        if let Some(pid) = self.pid() {
            // Immediate shutdown: nothing to keep. SIGQUIT, as `pg_ctl stop -m immediate`.
            // SAFETY: kill with a pid read from the server's own pid file.
            unsafe {
                libc::kill(pid, libc::SIGQUIT);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            // SAFETY: signal 0 only checks that the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A fresh database on this test binary's shared server.
/// The team service's `ai_usage` table, as that service creates it (tokmon reads it as it is).
pub const AI_USAGE_TABLE: &str =
    "CREATE TABLE ai_usage (id uuid PRIMARY KEY, user_id uuid NOT NULL, project_id uuid,
       provider text NOT NULL, model text NOT NULL, prompt_tokens integer NOT NULL,
       completion_tokens integer NOT NULL, total_tokens integer NOT NULL,
       cost integer NOT NULL, cached boolean NOT NULL DEFAULT false,
       timestamp timestamp NOT NULL DEFAULT now())";

pub fn db(hint: &str) -> PgDb {
    PgServer::shared().create_db(hint)
}
