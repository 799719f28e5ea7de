//! A real PostgreSQL cluster for a test: `initdb` into a temporary folder, started on a free loopback
//! port, stopped (immediately) when dropped. Debian's `postgresql` package provides the binaries
//! (`.ci/run` installs it); as root the server runs as the `postgres` user, as PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A running cluster.
pub struct PgCluster {
    dir: TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    as_postgres: bool,
}

/// Where `initdb` and `pg_ctl` are: Debian keeps them out of PATH, under /usr/lib/postgresql/N/bin.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL's server binaries (Debian package postgresql; .ci/run installs it) under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// Makes and starts a cluster (a few seconds: no fsync, trust authentication on loopback only).
    pub fn start() -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("hazeflow-pg")
            .tempdir()
            .expect("a temporary folder");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown of the cluster folder to postgres");
        }
        let cluster = PgCluster {
            port: super::free_port(),
            bin: bin_dir(),
            dir,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "hazeflow",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            cluster.port,
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log").display().to_string();
        cluster.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let out = if self.as_postgres {
            Command::new("runuser")
                .arg("-u")
                .arg("postgres")
                .arg("--")
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// A new, empty database of this cluster; its connection string.
    pub fn database(&self, name: &str) -> String {
        let admin = format!("postgres://hazeflow@127.0.0.1:{}/postgres", self.port);
        let db = name.to_string();
        // The blocking client runs a runtime of its own: keep it off any test runtime's thread.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test cluster");
            c.batch_execute(&format!("CREATE DATABASE \"{db}\""))
                .expect("create the test database");
        })
        .join()
        .expect("the database is made");
        self.url(name)
    }

    /// The connection string of a database of this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://hazeflow@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The cluster's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .arg("-u")
                .arg("postgres")
                .arg("--")
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}
