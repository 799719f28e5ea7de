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
        PgCluster::installed_or_skip().then(PgCluster::start)
    }

    /// Whether PostgreSQL is installed (when not, says so; with `CI=true` that is a failure).
    pub fn installed_or_skip() -> bool {
        if find_bin_dir().is_none() {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true but PostgreSQL is not installed: the PostgreSQL tests must run in CI (.ci/run installs postgresql)"
            );
            println!("skipped: postgresql not installed");
            return false;
        }
        true
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

    /// As [`PgCluster::start`], listening on `addr` too (an address of this machine outside loopback,
    /// such as a virtual link to a network namespace), where it trusts `network` as on loopback.
    pub fn start_also_on(addr: &str, network: &str) -> PgCluster {
        let temp = tempfile::Builder::new()
            .prefix("hazeflow-pg")
            .tempdir()
            .expect("a temporary folder");
        let mut cluster = PgCluster::start_with(temp.path(), false, Some((addr, network)));
        cluster._temp = Some(temp);
        cluster
    }

    /// A cluster with PostgreSQL's durable defaults (fsync, synchronous_commit and full_page_writes
    /// on), for benchmarks, in a temporary folder under `parent` (a disk, not a RAM-backed /tmp).
    pub fn start_durable(parent: &Path) -> PgCluster {
        let temp = tempfile::Builder::new()
            .prefix("hazeflow-pg")
            .tempdir_in(parent)
            .expect("a temporary folder");
        let mut cluster = PgCluster::start_with(temp.path(), true, None);
        cluster._temp = Some(temp);
        cluster
    }

    /// A streaming replica of this cluster (`pg_basebackup -R`: a hot standby following it), started on
    /// a port of its own.
    pub fn standby(&self) -> PgCluster {
        let temp = tempfile::Builder::new()
            .prefix("hazeflow-pg-standby")
            .tempdir()
            .expect("a temporary folder");
        let dir = temp.path().to_path_buf();
        Self::own(&dir, self.as_postgres);
        let data = dir.join("data").display().to_string();
        let port = self.port.to_string();
        self.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "hazeflow",
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        let mut standby = PgCluster::start_in(&dir);
        standby._temp = Some(temp);
        standby
    }

    /// Promotes this standby to a primary (`pg_ctl promote`, waiting until it accepts writes).
    pub fn promote(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-w", "-t", "60", "promote"]);
    }

    /// Stops the server at once, as a machine that dies (`-m immediate`).
    pub fn stop_immediately(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// Waits until every standby has replayed all this primary has written.
    pub fn wait_for_standbys(&self) {
        let admin = self.url("postgres");
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the primary");
            let started = std::time::Instant::now();
            loop {
                let behind: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn IS NULL OR replay_lsn < pg_current_wal_lsn()",
                        &[],
                    )
                    .and_then(|r| r.try_get(0))
                    .expect("pg_stat_replication");
                let streaming: i64 = c
                    .query_one("SELECT count(*) FROM pg_stat_replication", &[])
                    .and_then(|r| r.try_get(0))
                    .expect("pg_stat_replication");
                if behind == 0 && streaming > 0 {
                    return;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "the standby does not catch up"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
        .join()
        .expect("the standby caught up");
    }

    /// Gives the folder to the `postgres` user when the server runs as it.
    fn own(dir: &Path, as_postgres: bool) {
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
    }

    /// Starts the cluster kept in `dir`, made there first when there is none (a test daemon that is
    /// stopped and started again on its folder finds its database again).
    pub fn start_in(dir: &Path) -> PgCluster {
        PgCluster::start_with(dir, false, None)
    }

    /// Starts the cluster kept in `dir` (made there first when there is none); `durable`: with
    /// PostgreSQL's defaults for fsync and commits, else without them (tests); `also`: another address
    /// to listen on and the network trusted there.
    fn start_with(dir: &Path, durable: bool, also: Option<(&str, &str)>) -> PgCluster {
        std::fs::create_dir_all(dir).expect("the cluster folder");
        let as_postgres = is_root();
        Self::own(dir, as_postgres);
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
        let mut listen = "127.0.0.1".to_string();
        if let Some((addr, network)) = also {
            listen = format!("{listen},{addr}");
            let hba = Path::new(&data).join("pg_hba.conf");
            let mut text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            text.push_str(&format!("host all all {network} trust\n"));
            std::fs::write(&hba, text).expect("pg_hba.conf is written");
        }
        let speed = if durable {
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200"
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let opts = format!(
            "-p {} -k {} -c listen_addresses={listen} {speed}",
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

    /// A client program of the same PostgreSQL (`pgbench`, `psql`).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
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
