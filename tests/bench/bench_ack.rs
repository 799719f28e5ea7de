//! Benchmark: enterprise acknowledgements over HTTP under 64 concurrent clients — durable acks per
//! second and latency.
//!
//! ```sh
//! cargo run --release --example bench_ack -- [ASSIGNMENTS] [CLIENTS] [--during-delivery] [--store postgres://…] [--nginx]   # default 100000 64
//! ```
//!
//! With `--store`, the daemon's store is that (empty) PostgreSQL database (`bench_pg` runs both).
//!
//! By default the acknowledgements start once every notice is in the outbox (the mail worker goes on
//! sending at its rate limit meanwhile): enterprises answer what they received. With
//! `--during-delivery` they start at once and compete with the notice fan-out (300,000 notices are
//! turned into outbox messages 500 per transaction) for the writer and the two cores.
//!
//! It starts the real daemon (`Application::build` + `run_until_stopped`, the embedded default
//! configuration) on port 0 in a temporary folder, records a synthetic list of ASSIGNMENTS enterprises
//! (the Shanxi profile of `hazeflow-listgen`'s generator, all moved into Taiyuan's counties), and issues an orange
//! warning for Taiyuan through the real flow (forecast → consultation → signature), which makes one
//! assignment per enterprise. Then CLIENTS tasks, each with its own keep-alive HTTP/1.1 connection (a
//! minimal client, like `wrk`'s, so that the load generator costs little of the two cores), POST
//! `/api/v1/acks/{token}` (`{"step": "received", …}`) for every assignment, each as fast as the answers
//! come. A 200 answer is sent only after the acknowledgement is committed with fsync (the store's
//! group commit), so every answered request is a durable ack. It prints acks/s over the whole run and
//! the p50/p99/max latency, then checks in the store that every assignment is acknowledged.
//!
//! The load generator runs in the same process as the daemon and shares its two cores.
//!
//! With `--nginx` (`apt-get install nginx`), the same run then starts nginx on a free loopback port (two
//! workers, no log, `return 200` for every request: the HTTP ceiling of this machine) and sends it the
//! same requests from the same clients, and prints its requests/s and the ratio of hazeflow's
//! acknowledgements to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use hazeflow::app::Application;
use hazeflow::clock::Clock;
use hazeflow::config::{self, Settings, StaffToken};
use hazeflow::domain::region::RegionCode;
use hazeflow::engine::WarningAction;
use hazeflow::engine::assign::{self, AssignmentStatus, Party};
use hazeflow::registry::{ListVersion, import};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

// The generator of the `hazeflow-listgen` binary, compiled in (an example cannot use a binary's
// modules); only its list functions are used here.
#[path = "../../src/bin/hazeflow-listgen/generator.rs"]
#[allow(dead_code)]
mod generator;

const TAIYUAN_COUNTIES: [u32; 10] = [140105, 140106, 140107, 140108, 140109, 140110, 140121, 140122, 140123, 140181];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let during_delivery = args.iter().any(|a| a == "--during-delivery");
    let url = args.iter().position(|a| a == "--store").and_then(|i| args.get(i + 1)).cloned();
    let nginx = args.iter().any(|a| a == "--nginx");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(n, clients, during_delivery, url, nginx))
}

async fn run(n: usize, clients: usize, during_delivery: bool, url: Option<String>, nginx: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut s = Settings::parse("config/default.yaml", config::DEFAULT_YAML)?;
    s.data_dir = dir.path().join("data");
    s.inbox.dir = dir.path().join("inbox");
    s.http.listen = "127.0.0.1:0".into();
    s.store.url = url;
    s.playbooks = format!("{root}/playbooks").into();
    s.roster = format!("{root}/config/roster.yaml").into();
    s.measures = format!("{root}/playbooks/measures/shanxi.yaml").into();
    s.list_seed = None;
    s.demo = false;
    s.log.level = "warn".into();
    s.staff.tokens.push(StaffToken {
        name: "bench".into(),
        role: "head".into(),
        sha256: config::hash_token("bench"),
    });
    s.validate()?;
    let at = |t: &str| {
        Shanghai
            .from_local_datetime(&NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").expect("a time"))
            .single()
            .expect("a time")
            .with_timezone(&Utc)
    };
    // A manual clock that stays put: no consultation slot, reminder or deadline falls in the run.
    let clock = Clock::manual(at("2026-12-02 08:00"));
    let app = Application::build(s, clock.clone()).await?;
    let state = app.state();
    let port = app.port();

    // The list: n synthetic enterprises, all in Taiyuan.
    let t = Instant::now();
    let mut enterprises = generator::generate_shanxi(n, 42);
    for (i, e) in enterprises.iter_mut().enumerate() {
        e.county = RegionCode::from_u32(TAIYUAN_COUNTIES[i % TAIYUAN_COUNTIES.len()])?;
    }
    let now = clock.now();
    let version = ListVersion::new(enterprises, None, now);
    let diff = import::diff_enterprises(&[], &version.enterprises);
    hazeflow::engine::list::record(&state.engine.store, version, diff, "bench", now).await?;
    println!("recorded {n} enterprises in {:.2?}", t.elapsed());

    // An orange warning for Taiyuan, through the real flow.
    let csv = "# issued_at: 2026-12-02 07:30\n# source: bench\nregion,date,aqi\n140100,2026-12-02,120\n140100,2026-12-03,160\n140100,2026-12-04,230\n140100,2026-12-05,240\n140100,2026-12-06,180\n";
    state
        .engine
        .submit_forecast("bench.csv", csv.as_bytes(), "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state.engine.consult("bench", None, None).await?;
    let id = state
        .engine
        .store
        .read(|r| r.warnings())?
        .into_iter()
        .find(|w| w.region.as_u32() == 140_100)
        .map(|w| w.id)
        .ok_or_else(|| anyhow::anyhow!("no proposal"))?;
    let t = Instant::now();
    state
        .engine
        .warning_action(
            &id,
            WarningAction::Sign {
                signer: "bench".into(),
                role: "head".into(),
                without_record: Some("本测试不涉及会商意见".into()),
            },
        )
        .await?;
    println!("issued {id}: assignments durable in {:.2?}", t.elapsed());

    let mut tokens = Vec::with_capacity(n);
    let mut after = String::new();
    loop {
        let page = state.engine.store.read(|r| assign::of_warning(r, &id, &after, 10_000))?;
        let Some(last) = page.last() else { break };
        after = last.key.clone();
        tokens.extend(
            page.iter()
                .filter(|a| matches!(a.party, Party::Enterprise { .. }))
                .map(|a| state.tokens.token(a)),
        );
    }
    anyhow::ensure!(tokens.len() == n, "{} enterprise assignments, expected {n}", tokens.len());

    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    if !during_delivery {
        // Enterprises acknowledge what they have received: let the fan-out queue every notice first.
        // (The mail worker keeps sending at its configured rate, 50/s by default, meanwhile.)
        let t = Instant::now();
        while state.engine.store.read(hazeflow::engine::notice::pending)? > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{n} notices queued in the outbox in {:.2?}", t.elapsed());
    }

    let paths: Arc<Vec<String>> = Arc::new(tokens.iter().map(|t| format!("/api/v1/acks/{t}")).collect());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let before = state.engine.store.stats();
    let started = Instant::now();
    let mut lat = load(addr, clients, paths.clone()).await?;
    let elapsed = started.elapsed();
    lat.sort();
    let p = |q: f64| lat[((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "{} acks from {clients} clients in {:.2?}: {:.0} durable acks/s; latency p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        lat.len(),
        elapsed,
        lat.len() as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99),
        lat[lat.len() - 1]
    );

    let w = state.engine.store.stats();
    let (batches, jobs) = (w.batches - before.batches, w.jobs - before.jobs);
    println!(
        "writer: {jobs} jobs in {batches} commits ({:.1} jobs per commit); per job {:.0} µs running, per commit {:.0} µs committing; writer busy {:.0} % of the run",
        jobs as f64 / batches.max(1) as f64,
        (w.job_micros - before.job_micros) as f64 / jobs.max(1) as f64,
        (w.commit_micros - before.commit_micros) as f64 / batches.max(1) as f64,
        ((w.job_micros - before.job_micros) + (w.commit_micros - before.commit_micros)) as f64 / 1e4 / elapsed.as_secs_f64()
    );

    shutdown.cancel();
    server.await??;
    // Every enterprise assignment acknowledged, as the store now says.
    let store = state.engine.store.clone();
    let mut acked = 0;
    let mut after = String::new();
    loop {
        let page = store.read(|r| assign::of_warning(r, &id, &after, 10_000))?;
        let Some(last) = page.last() else { break };
        after = last.key.clone();
        acked += page
            .iter()
            .filter(|a| {
                matches!(a.party, Party::Enterprise { .. })
                    && a.status == AssignmentStatus::Active
                    && a.has(hazeflow::domain::ack_step::AckStep::Received)
            })
            .count();
    }
    anyhow::ensure!(acked == n, "{acked} of {n} acknowledgements in the store");
    println!("checked: all {n} acknowledgements are in the store");

    if nginx {
        let acks_per_sec = lat.len() as f64 / elapsed.as_secs_f64();
        let (child, addr) = start_nginx(dir.path())?;
        let started = Instant::now();
        let result = load(addr, clients, paths).await;
        let elapsed = started.elapsed();
        stop_nginx(child);
        let mut lat = result?;
        lat.sort();
        let per_sec = lat.len() as f64 / elapsed.as_secs_f64();
        println!(
            "nginx (2 workers, `return 200`): the same {} requests from the same {clients} clients in {elapsed:.2?}: {per_sec:.0} requests/s; latency p50 {:.2?}, p99 {:.2?}",
            lat.len(),
            lat[lat.len() / 2],
            lat[(lat.len() * 99 / 100).min(lat.len() - 1)]
        );
        println!("ratio (hazeflow acks/s / nginx requests/s): {:.2}", acks_per_sec / per_sec);
    }
    Ok(())
}

/// `clients` keep-alive connections to `addr`, each POSTing the next of `paths` (the acknowledgement
/// body) as soon as the answer to its last came; every answer must be 200. The latency of each.
async fn load(addr: std::net::SocketAddr, clients: usize, paths: Arc<Vec<String>>) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (paths, next) = (paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let t = Instant::now();
                let status = conn
                    .post(path, br#"{"step":"received","name":"bench","phone":"13800000000"}"#)
                    .await?;
                anyhow::ensure!(status == 200, "request {i}: HTTP {status}");
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::with_capacity(paths.len());
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok(lat)
}

/// nginx on a free loopback port, its files in `dir/nginx`: two workers, no access log, `return 200`.
fn start_nginx(dir: &std::path::Path) -> anyhow::Result<(std::process::Child, std::net::SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let home = dir.join("nginx");
    std::fs::create_dir_all(home.join("tmp"))?;
    let tmp = home.join("tmp").display().to_string();
    let conf = format!(
        "worker_processes 2;\ndaemon off;\npid {home}/nginx.pid;\nerror_log {home}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  keepalive_requests 10000000;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n  server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\"; }} }}\n}}\n",
        home = home.display()
    );
    std::fs::write(home.join("nginx.conf"), conf)?;
    let child = std::process::Command::new("nginx")
        .arg("-p")
        .arg(&home)
        .arg("-e")
        .arg(home.join("error.log"))
        .arg("-c")
        .arg(home.join("nginx.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting nginx (apt-get install nginx): {e}"))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok((child, addr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::bail!(
        "nginx did not listen on {addr}: {}",
        std::fs::read_to_string(home.join("error.log")).unwrap_or_default()
    )
}

/// Stops nginx (SIGQUIT: its workers finish, then exit).
fn stop_nginx(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill").arg("-QUIT").arg(child.id().to_string()).status();
    if child.wait().is_err() {
        let _ = child.kill();
    }
}

/// One keep-alive HTTP/1.1 connection: a request out, the response read by its Content-Length.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// POSTs a JSON body; returns the status.
    async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<u16> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).await?;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])?;
                let status: u16 = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("bad status line: {head}"))?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                            .map(|(_, v)| v.trim().to_string())
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let total = end + 4 + len;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                self.buf.drain(..total);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
