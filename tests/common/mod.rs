//! Shared helpers for the CLI tests: a private home so no user file is ever read or written.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// A temporary home for one test: HOME and the XDG directories point inside it.
pub struct Sandbox {
    pub dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tokmon` with the environment pinned to this sandbox and UTC.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("tokmon").expect("binary");
        let home = self.dir.path();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("TZ", "UTC")
            .env("NO_COLOR", "1");
        c
    }
}

/// The bytes of a file, to prove it was not changed.
pub fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// Run and parse stdout as JSON, asserting success.
pub fn json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// Run a command that must be refused as bad input: exit 2, and stderr names `named`.
pub fn refused(cmd: &mut Command, named: &str) {
    let out = cmd.output().expect("run tokmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
    assert!(err.contains(named), "{cmd:?} should name {named}: {err}");
}

/// A throwaway PostgreSQL server and a database per test.
pub mod pg;

/// The real binary in a private tmux server.
pub mod tmux;
