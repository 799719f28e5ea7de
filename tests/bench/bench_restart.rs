//! Benchmark: the daemon's restart after kill -9 with a national list (300,000 enterprises) and a red
//! warning out — time from start until `GET /healthz` answers 200.
//!
//! ```sh
//! cargo run --release --example bench_restart -- [ENTERPRISES] [SEED] [RUNS] [--acks]   # default 300000 42 3
//! ```
//!
//! With `--acks` the busy writer writes as acknowledgements do (`Store::write_journaled`: the
//! journal beside the file, redb's commits without durability between checkpoints), so the kill
//! lands after commits that are not durable in the file; the restart redoes the journal.
//!
//! Phases, each a child process of this one (so a kill -9 is a real one):
//!
//! 1. `prepare`: generates the list (the generator of `hazeflow-listgen`), records it, and issues
//!    red over every province (the lifecycle record and the real assignment stage with its hooks: the
//!    escalation timers and the notice fan-out), into `DIR/data/hazeflow.redb`;
//! 2. per run, `busy`: opens the store and turns queued notices into outbox messages (the daemon's
//!    notice loop: a write transaction after another) until the parent kills it with SIGKILL;
//! 3. then `restart`: builds the daemon on that folder (the shipped playbooks, roster and measures; no
//!    list seed, no demo) — opening the store includes redb's repair after the crash — runs it, and
//!    times until `/healthz` answers 200 on its socket. It then stops cleanly.
//!
//! Run from the repository root (the shipped playbooks are read from `playbooks/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hazeflow::domain::level::Ranked;
use hazeflow::domain::region::{RegionCode, Regions};
use hazeflow::domain::warning::{Event, EventKind, RegionState};
use hazeflow::engine::Stage;
use hazeflow::engine::assign::{AssignStage, TokenKey};
use hazeflow::registry::{ListVersion, import};
use hazeflow::store::{RecordBody, Store};

// The generator of the `hazeflow-listgen` binary, compiled in (an example cannot use a binary's
// modules); only its list functions are used here.
#[path = "../../src/bin/hazeflow-listgen/generator.rs"]
#[allow(dead_code)]
mod generator;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args.get(1).map(String::as_str) {
        Some("prepare") => rt.block_on(prepare(Path::new(&args[2]), args[3].parse()?, args[4].parse()?)),
        Some("busy") => rt.block_on(busy(Path::new(&args[2]), false)),
        Some("busy-acks") => rt.block_on(busy(Path::new(&args[2]), true)),
        Some("restart") => rt.block_on(restart(Path::new(&args[2]))),
        _ => {
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300_000);
            let seed: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(42);
            let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
            let dir = tempfile::tempdir()?;
            let me = std::env::current_exe()?;
            let d = dir.path().display().to_string();
            let status = std::process::Command::new(&me)
                .args(["prepare", &d, &n.to_string(), &seed.to_string()])
                .status()?;
            anyhow::ensure!(status.success(), "prepare failed");
            let size = std::fs::metadata(dir.path().join("data/hazeflow.redb"))?.len();
            println!("store file: {:.0} MiB", size as f64 / (1 << 20) as f64);
            for run in 1..=runs {
                let busy = if args.iter().any(|a| a == "--acks") { "busy-acks" } else { "busy" };
                let mut child = std::process::Command::new(&me).args([busy, &d]).spawn()?;
                std::thread::sleep(Duration::from_millis(2500));
                child.kill()?; // SIGKILL
                let status = child.wait()?;
                let journal =
                    std::fs::metadata(hazeflow::store::journal_path(&dir.path().join("data/hazeflow.redb"))).map_or(0, |m| m.len());
                println!("run {run}: busy writer killed ({status}); the journal holds {journal} bytes");
                let status = std::process::Command::new(&me).args(["restart", &d]).status()?;
                anyhow::ensure!(status.success(), "restart failed");
            }
            Ok(())
        }
    }
}

fn db_of(dir: &Path) -> PathBuf {
    dir.join("data").join("hazeflow.redb")
}

async fn prepare(dir: &Path, n: usize, seed: u64) -> anyhow::Result<()> {
    let store = Store::open(&db_of(dir))?;
    let t = Instant::now();
    let enterprises = generator::generate(n, seed);
    let now = Utc::now();
    let version = ListVersion::new(enterprises, None, now);
    let diff = import::diff_enterprises(&[], &version.enterprises);
    hazeflow::engine::list::record(&store, version, diff, "bench", now).await?;
    println!("recorded {n} enterprises in {:.2?}", t.elapsed());

    let counties: BTreeSet<RegionCode> = store.read(|r| {
        let keys = r.doc_keys(hazeflow::engine::list::MEMBERS, "", "", usize::MAX)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.split('/').next())
            .filter_map(|c| RegionCode::parse(c).ok())
            .collect())
    })?;
    let regions = Regions::shanxi();
    let set =
        hazeflow::domain::playbook::load_paths(&[PathBuf::from("playbooks/shanxi.yaml")], regions).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let pb = set.get("shanxi").cloned().ok_or_else(|| anyhow::anyhow!("no shanxi playbook"))?;
    let defaults = Arc::new(hazeflow::registry::shanxi_defaults().clone());
    let stage = Arc::new(AssignStage {
        defaults: defaults.clone(),
        regions,
        on_round: vec![hazeflow::engine::notice::hook(), hazeflow::engine::escalate::hook(defaults.clone())],
    });
    let provinces: BTreeSet<RegionCode> = counties.iter().map(|c| c.province()).collect();
    let t = Instant::now();
    for p in provinces.iter().copied() {
        let (stage, pb) = (stage.clone(), pb.clone());
        store
            .write(move |tx| {
                let id = format!("{p}-bench-1");
                let e = Event {
                    region: p,
                    at: now,
                    actor: "bench".into(),
                    reason: "bench".into(),
                    forecast_id: None,
                    playbook: pb.pin(),
                    kind: EventKind::Issued {
                        id: id.clone(),
                        level: Ranked::new("red", 3),
                        start: now,
                        expected_end: now + chrono::Duration::days(3),
                        rule: None,
                        signer: None,
                        reopened: false,
                        plan: Vec::new(),
                        lead_missed: false,
                    },
                    exercise: false,
                };
                tx.append(
                    now,
                    "bench",
                    Some(pb.pin()),
                    RecordBody::Warning {
                        warning_id: id,
                        event: e.clone(),
                    },
                )?;
                let mut state = RegionState::default();
                state.apply(&e);
                stage.on_warning_events(tx, now, &[e], &state, &pb)
            })
            .await?;
    }
    let count: u64 = store.read(|r| Ok(hazeflow::engine::assign::all_rounds(r)?.iter().map(|r| u64::from(r.count)).sum()))?;
    println!("red over {} provinces: {count} assignments in {:.2?}", provinces.len(), t.elapsed());
    store.close();
    Ok(())
}

/// Writes without pause (the notice fan-out) until killed; with `journaled`, journaled jobs only (as
/// acknowledgements are written), so that most commits are not durable in the file.
async fn busy(dir: &Path, journaled: bool) -> anyhow::Result<()> {
    let store = Store::open(&db_of(dir))?;
    if journaled {
        let bump: hazeflow::store::Replayer = Arc::new(|tx, _| tx.bump("bench_busy", 1));
        store.replay_journal(bump).await?;
        let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
        loop {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let (store, n) = (store.clone(), n.clone());
                    tokio::spawn(async move {
                        let record = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes().to_vec();
                        store
                            .write_journaled::<_, hazeflow::store::StoreError, _>(Vec::new(), record, |tx| tx.bump("bench_busy", 1))
                            .await
                    })
                })
                .collect();
            for t in tasks {
                t.await??;
            }
        }
    }
    let defaults = Arc::new(hazeflow::registry::shanxi_defaults().clone());
    let notices = hazeflow::engine::notice::Notices {
        defaults,
        regions: Regions::shanxi(),
        public_url: "https://hazeflow.example.cn".into(),
        tokens: TokenKey::new([7; 32]),
        playbooks: Arc::new(
            hazeflow::domain::playbook::load_paths(&[PathBuf::from("playbooks/shanxi.yaml")], Regions::shanxi())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        ),
        roster: {
            let roster = Arc::new(hazeflow::notify::Roster::load(Path::new("config/roster.yaml")).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            Arc::new(move || roster.clone())
        },
    };
    loop {
        let n = notices.clone();
        let done = store
            .write(move |tx| hazeflow::engine::notice::expand(&n, tx, hazeflow::engine::notice::CHUNK, Utc::now()))
            .await?;
        if done == 0 {
            // Nothing left to fan out: keep writing something else, as acknowledgements would.
            store.write(|tx| tx.bump("bench_busy", 1)).await?;
        }
    }
}

async fn restart(dir: &Path) -> anyhow::Result<()> {
    let mut s = hazeflow::config::Settings::parse("config/default.yaml", hazeflow::config::DEFAULT_YAML)?;
    s.data_dir = dir.join("data");
    s.inbox.dir = dir.join("inbox");
    s.http.listen = "127.0.0.1:0".into();
    s.list_seed = None;
    s.demo = false;
    s.validate()?;
    let t = Instant::now();
    let app = hazeflow::app::Application::build(s, hazeflow::clock::Clock::System).await?;
    let built = t.elapsed();
    let port = app.port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "the daemon does not answer");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "restart after kill -9: serving (GET /healthz 200) {:.2?} after start (the daemon built, store opened and repaired, in {built:.2?})",
        t.elapsed()
    );
    shutdown.cancel();
    run.await??;
    Ok(())
}
