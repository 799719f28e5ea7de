//! End-to-end benchmark: a red warning signed over every province of a national synthetic list, until
//! the first and the last of its notices are accepted by a local SMTP sink — next to postfix's own load
//! generator sending the same count and size into the same sink, in the same run.
//!
//! ```sh
//! apt-get install postfix      # smtp-sink and smtp-source (the mail server need not run)
//! cargo run --release --example bench_e2e -- [ENTERPRISES] [SEED] [SESSIONS] [IN_FLIGHT]   # default 30000 42 20 20
//! ```
//!
//! It generates the list (the generator of `hazeflow-listgen`) and records it in a fresh store in a
//! temporary folder (a child process, as `bench_assign` does). A second child process starts
//! `smtp-sink` on a free loopback port and, on that store, the daemon's leader work that carries a
//! notice: the notice fan-out loop ([`hazeflow::engine::notice::step`], as
//! [`hazeflow::engine::notice::run`] runs it) and the delivery worker ([`hazeflow::notify::deliver::run_loop`]:
//! claim, render the shipped templates, send over `SESSIONS` pooled SMTP connections with at most
//! `IN_FLIGHT` messages in flight — `mail.concurrency`, the bound on what a crash sends twice — and
//! record each attempt). The clock starts when the red warning of each province is submitted to the writer (the
//! sign's transaction: the lifecycle event through the real assignment stage and its hooks) and
//! stops when the store has recorded the first, then the last, notice as sent (accepted by the sink
//! and committed). Then `smtp-source -s SESSIONS -d` sends as many messages of the notices' average
//! size into the same sink, timed the same way (until it exits), and the ratio is printed.
//!
//! Not included: the duty staff's own mails about the warning (a few per province), which the
//! daemon's notification stage queues in the same transaction.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use hazeflow::clock::Clock;
use hazeflow::config::{self, Settings, SmtpTls};
use hazeflow::domain::level::Ranked;
use hazeflow::domain::region::{RegionCode, Regions};
use hazeflow::domain::warning::{Event, EventKind, RegionState};
use hazeflow::engine::Stage;
use hazeflow::engine::assign::{AssignStage, TokenKey};
use hazeflow::notify::{self, deliver, outbox};
use hazeflow::registry::{ListVersion, import};
use hazeflow::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

// The generator of the `hazeflow-listgen` binary, compiled in (an example cannot use a binary's
// modules); only its list functions are used here.
#[path = "../../src/bin/hazeflow-listgen/generator.rs"]
#[allow(dead_code)]
mod generator;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args.get(1).map(String::as_str) {
        Some("prepare") => rt.block_on(prepare(&args[2], args[3].parse()?, args[4].parse()?)),
        Some("run") => rt.block_on(run(&args[2], args[3].parse()?, args[4].parse()?)),
        _ => {
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30_000);
            let seed: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(42);
            let sessions: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(20);
            let in_flight: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(sessions);
            let dir = tempfile::tempdir()?;
            let me = std::env::current_exe()?;
            let data = dir.path().display().to_string();
            for phase in [
                vec!["prepare".to_string(), data.clone(), n.to_string(), seed.to_string()],
                vec!["run".to_string(), data, sessions.to_string(), in_flight.to_string()],
            ] {
                let status = Command::new(&me).args(&phase).status()?;
                anyhow::ensure!(status.success(), "phase {} failed", phase[0]);
            }
            Ok(())
        }
    }
}

fn db_path(data: &str) -> PathBuf {
    PathBuf::from(data).join("hazeflow.redb")
}

async fn prepare(data: &str, n: usize, seed: u64) -> Result<()> {
    let store = Store::open(&db_path(data))?;
    let t = Instant::now();
    let enterprises = generator::generate(n, seed);
    let now = Utc::now();
    let version = ListVersion::new(enterprises, None, now);
    let diff = import::diff_enterprises(&[], &version.enterprises);
    hazeflow::engine::list::record(&store, version, diff, "bench", now).await?;
    println!("recorded a list of {n} enterprises in {:.2?}", t.elapsed());
    store.close();
    Ok(())
}

/// CPU seconds (user, system) this process has used (`/proc/self/stat`, 100 ticks a second).
fn cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<f64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    (f.get(11).copied().unwrap_or(0.0) / 100.0, f.get(12).copied().unwrap_or(0.0) / 100.0)
}

/// A free loopback port (bound, then released for the sink).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `smtp-sink` on `port`, accepting and discarding (`-u nobody` when run as root).
fn start_sink(port: u16) -> Result<Child> {
    let mut cmd = Command::new("smtp-sink");
    // `/proc/self` belongs to the process's effective user.
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self")?) == 0 {
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .args(["-c", &format!("127.0.0.1:{port}"), "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting smtp-sink (apt-get install postfix)")?;
    // Wait until it listens.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("smtp-sink did not listen on port {port}")
}

async fn run(data: &str, sessions: usize, in_flight: usize) -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let port = free_port()?;
    let mut sink = start_sink(port)?;
    let result = measure(data, sessions, in_flight, port, &root).await;
    let _ = sink.kill();
    let _ = sink.wait();
    result
}

async fn measure(data: &str, sessions: usize, in_flight: usize, port: u16, root: &std::path::Path) -> Result<()> {
    let mut s = Settings::parse("default", config::DEFAULT_YAML)?;
    s.data_dir = PathBuf::from(data);
    s.playbooks = root.join("playbooks");
    s.roster = root.join("config/roster.yaml");
    s.mail.smtp.host = Some("127.0.0.1".into());
    s.mail.smtp.port = Some(port);
    s.mail.smtp.tls = SmtpTls::None;
    s.mail.smtp.pool_size = sessions as u32;
    s.mail.concurrency = in_flight;
    s.mail.rate_per_sec = 0.0;
    s.validate()?;
    let regions = Regions::shanxi();
    let built = notify::build(&s, regions)?;
    let store = Store::open(&s.db_path())?;

    let set =
        hazeflow::domain::playbook::load_paths(&[root.join("playbooks/shanxi.yaml")], regions).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let pb = set.get("shanxi").cloned().context("no shanxi playbook")?;
    let defaults = Arc::new(hazeflow::registry::shanxi_defaults().clone());
    let stage = Arc::new(AssignStage {
        defaults: defaults.clone(),
        regions,
        on_round: vec![hazeflow::engine::notice::hook(), hazeflow::engine::escalate::hook(defaults.clone())],
    });
    let notices = hazeflow::engine::notice::Notices {
        defaults,
        regions,
        public_url: "https://hazeflow.example.cn".into(),
        tokens: TokenKey::new([7; 32]),
        playbooks: Arc::new(set.clone()),
        roster: {
            let stage = built.stage.clone();
            Arc::new(move || stage.roster())
        },
    };
    let counties: BTreeSet<RegionCode> = store.read(|r| {
        let keys = r.doc_keys(hazeflow::engine::list::MEMBERS, "", "", usize::MAX)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.split('/').next())
            .filter_map(|c| RegionCode::parse(c).ok())
            .collect())
    })?;
    let provinces: BTreeSet<RegionCode> = counties.iter().map(|c| c.province()).collect();

    // The leader's work that carries a notice: the fan-out loop and the delivery worker.
    let cancel = CancellationToken::new();
    let fan_out = {
        let (store, notices, cancel) = (store.clone(), notices.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut ahead = None;
            while !cancel.is_cancelled() {
                match hazeflow::engine::notice::step(&store, &notices, hazeflow::engine::notice::CHUNK, Utc::now(), &mut ahead).await {
                    Ok(0) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("fan-out: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    };
    let wake = Arc::new(Notify::new());
    let worker = tokio::spawn(deliver::run_loop(
        built.delivery.clone(),
        store.clone(),
        Clock::System,
        wake.clone(),
        cancel.clone(),
    ));

    // Sign: the red warning of every province, each one write job through the assignment stage.
    let now = Utc::now();
    let cpu = cpu_secs();
    let started = Instant::now();
    let mut jobs = Vec::new();
    for p in provinces.iter().copied() {
        let (stage, pb, store) = (stage.clone(), pb.clone(), store.clone());
        jobs.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    let e = Event {
                        region: p,
                        at: now,
                        actor: "bench".into(),
                        reason: "bench".into(),
                        forecast_id: None,
                        playbook: pb.pin(),
                        kind: EventKind::Issued {
                            id: format!("{p}-bench-1"),
                            level: Ranked::new("red", 3),
                            start: now,
                            expected_end: now,
                            rule: None,
                            signer: None,
                            reopened: false,
                            plan: Vec::new(),
                            lead_missed: false,
                        },
                        exercise: false,
                    };
                    let mut state = RegionState::default();
                    state.apply(&e);
                    stage.on_warning_events(tx, now, &[e], &state, &pb)
                })
                .await
        }));
    }
    for j in jobs {
        j.await??;
    }
    let signed = started.elapsed();
    let stats = store.stats();
    wake.notify_one();

    // Until the fan-out is done and every queued notice is recorded as sent.
    let mut first = None;
    let mut queued_all = None;
    let last = loop {
        let (sent, failed, queued, pending) = store.read(|r| {
            Ok((
                r.counter("notify_sent_email")?,
                r.counter("notify_retried_email")? + r.counter("notify_failed_email")?,
                r.counter("notify_queued_email")?,
                hazeflow::engine::notice::pending(r)?,
            ))
        })?;
        if failed > 0 {
            cancel.cancel();
            bail!("{failed} attempts failed");
        }
        if sent > 0 && first.is_none() {
            first = Some(started.elapsed());
        }
        if pending == 0 && queued > 0 && queued_all.is_none() {
            queued_all = Some((started.elapsed(), sent));
        }
        if pending == 0 && queued > 0 && sent >= queued {
            break (started.elapsed(), sent);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    cancel.cancel();
    let _ = fan_out.await;
    worker.await?;
    let (elapsed, count) = last;
    let (user, system) = cpu_secs();
    let cpu = format!("CPU user {:.2} s, system {:.2} s", user - cpu.0, system - cpu.1);
    let w = store.stats();
    let writer = format!(
        "writer: {} transactions of {} jobs, jobs {:.2} s, commits {:.2} s",
        w.batches - stats.batches,
        w.jobs - stats.jobs,
        (w.job_micros - stats.job_micros) as f64 / 1e6,
        (w.commit_micros - stats.commit_micros) as f64 / 1e6
    );
    let first = first.unwrap_or(elapsed);

    // The notices' average size as sent (a sample of 200, composed as the worker composes them).
    let sample = store.read(|r| outbox::messages(r, "", "", 200))?;
    let templates = built.stage.templates();
    let from = s.mail.from.parse()?;
    let mut bytes = 0usize;
    for m in &sample {
        let r = templates.render(&m.template, &m.data).map_err(anyhow::Error::msg)?;
        bytes += notify::email::compose(&from, &m.recipient.name, &m.recipient.address, &m.id, m.created_at, &r)?
            .formatted()
            .len();
    }
    let size = bytes / sample.len().max(1);
    store.close();

    // The reference: smtp-source, the same count and size, the same sessions, into the same sink.
    let t = Instant::now();
    let status = Command::new("smtp-source")
        .args(["-s", &sessions.to_string(), "-d", "-l", &size.to_string(), "-m", &count.to_string()])
        .args([
            "-f",
            "bench@hazeflow.example.cn",
            "-t",
            "sink@example.cn",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .status()
        .context("running smtp-source")?;
    let reference = t.elapsed();
    anyhow::ensure!(status.success(), "smtp-source failed");

    println!(
        "red over {} provinces signed in {signed:.2?}; {count} notices of {size} bytes on average, {sessions} SMTP sessions, {in_flight} messages in flight (mail.concurrency)",
        provinces.len()
    );
    println!(
        "hazeflow: sign → first accepted {:.2} s, sign → last accepted {:.2} s ({:.0} messages/s)",
        first.as_secs_f64(),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    if let Some((at, sent)) = queued_all {
        println!(
            "  every notice queued by the fan-out after {:.2} s ({sent} sent by then)",
            at.as_secs_f64()
        );
    }
    println!(
        "smtp-source -s {sessions} -d: {count} messages in {:.2} s ({:.0} messages/s)",
        reference.as_secs_f64(),
        count as f64 / reference.as_secs_f64()
    );
    println!("  {writer}; {cpu}");
    println!(
        "ratio (hazeflow last / smtp-source): {:.2}",
        elapsed.as_secs_f64() / reference.as_secs_f64()
    );
    Ok(())
}
