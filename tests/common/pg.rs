//! A real PostgreSQL cluster for a test: `initdb` into a temporary folder, started on a free loopback
//! port, stopped when dropped (`-m fast`: what was committed is kept, as the tests' restarts need). Debian's `postgresql` package provides the binaries
//! (`.ci/run` installs it); as root the server runs as the `postgres` user, as PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A running cluster.
pub struct PgCluster {
    dir: PathBuf,
    /// The temporary folder holding `dir`, when the cluster made it.
    _temp: Option<TempDir>,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    as_postgres: bool,
}

/// Where `initdb` and `pg_ctl` are: Debian keeps them out of PATH, under /usr/lib/postgresql/N/bin.
fn find_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop()
}

fn bin_dir() -> PathBuf {
    find_bin_dir().expect("PostgreSQL's server binaries (Debian package postgresql; .ci/run installs it) under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// A cluster, or `None` (after saying so) when PostgreSQL is not installed, unless `CI=true`, where
    /// that is a failure (as with the browser tests).
    pub fn start_or_skip() -> Option<PgCluster> {
        if find_bin_dir().is_none() {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true but PostgreSQL is not installed: the PostgreSQL tests must run in CI (.ci/run installs postgresql)"
            );
            println!("skipped: postgresql not installed");
            return None;
        }
        Some(PgCluster::start())
    }

    /// Makes and starts a cluster (a few seconds: no fsync, trust authentication on loopback only).
    pub fn start() -> PgCluster {
        let temp = tempfile::Builder::new()
            .prefix("hazeflow-pg")
            .tempdir()
            .expect("a temporary folder");
        let mut cluster = PgCluster::start_in(temp.path());
        cluster._temp = Some(temp);
        cluster
    }

    /// Starts the cluster kept in `dir`, made there first when there is none (a test daemon that is
    /// stopped and started again on its folder finds its database again).
    pub fn start_in(dir: &Path) -> PgCluster {
        std::fs::create_dir_all(dir).expect("the cluster folder");
        let as_postgres = is_root();
        if as_postgres {
            use std::os::unix::fs::PermissionsExt;
            // The server's user must reach the folder: let it through the test's own folders.
            let tmp = std::env::temp_dir();
            for up in dir.ancestors().skip(1).take_while(|p| p.starts_with(&tmp) && *p != tmp.as_path()) {
                let _ = std::fs::set_permissions(up, std::fs::Permissions::from_mode(0o755));
            }
            let ok = Command::new("chown").arg("postgres:postgres").arg(dir).status().expect("chown");
            assert!(ok.success(), "chown of the cluster folder to postgres");
        }
        let cluster = PgCluster {
            port: super::free_port(),
            bin: bin_dir(),
            dir: dir.to_path_buf(),
            _temp: None,
            as_postgres,
        };
        let data = cluster.data();
        if !Path::new(&data).join("PG_VERSION").exists() {
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
        }
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            cluster.port,
            cluster.dir.display()
        );
        let log = cluster.dir.join("server.log").display().to_string();
        cluster.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// A server program, run as the `postgres` user when this process is root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
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
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-m", "fast", "-w", "stop"])
            .output();
    }
}
