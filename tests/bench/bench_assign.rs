//! Benchmark: a red warning over every region of a national-scale synthetic list — time until every
//! assignment is durable, and peak memory.
//!
//! ```sh
//! cargo run --release --example bench_assign -- [ENTERPRISES] [SEED] [--store postgres://…]   # default 300000 42
//! ```
//!
//! With `--store`, the store is that (empty) PostgreSQL database instead of an embedded file
//! (`bench_pg` runs both side by side).
//!
//! It generates the list (the generator of `hazeflow-listgen`) and records it in a fresh store in a
//! temporary folder (in a child process, so that generating does not count towards peak memory), then,
//! in a second child process that opens that store as the daemon would, issues red for every province at once: one lifecycle `Issued` event per
//! province, each a write job through the real group-committing writer and the real assignment stage
//! (the same code the daemon runs). The clock starts when the jobs are submitted and stops when the
//! last commit (fsync) has returned. Peak memory is the process's VmHWM.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use hazeflow::domain::level::Ranked;
use hazeflow::domain::region::{RegionCode, Regions};
use hazeflow::domain::warning::{Event, EventKind, RegionState};
use hazeflow::engine::Stage;
use hazeflow::engine::assign::{AssignStage, TokenKey};
use hazeflow::registry::{ListVersion, import};
use hazeflow::store::Store;

// The generator of the `hazeflow-listgen` binary, compiled in (an example cannot use a binary's
// modules); only its list functions are used here.
#[path = "../../src/bin/hazeflow-listgen/generator.rs"]
#[allow(dead_code)]
mod generator;

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args.get(1).map(String::as_str) {
        Some("prepare") => rt.block_on(prepare(&args[2], args[3].parse()?, args[4].parse()?)),
        Some("run") => rt.block_on(run(&args[2])),
        _ => {
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300_000);
            let seed: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(42);
            let dir = tempfile::tempdir()?;
            let me = std::env::current_exe()?;
            let url = args.iter().position(|a| a == "--store").and_then(|i| args.get(i + 1)).cloned();
            let db = url.unwrap_or_else(|| dir.path().join("bench.redb").display().to_string());
            for phase in [
                vec!["prepare".to_string(), db.clone(), n.to_string(), seed.to_string()],
                vec!["run".to_string(), db],
            ] {
                let status = std::process::Command::new(&me).args(&phase).status()?;
                anyhow::ensure!(status.success(), "phase {} failed", phase[0]);
            }
            Ok(())
        }
    }
}

/// The store: a PostgreSQL database (as a command connects: never the leader, writes fenced by the
/// write lock) or an embedded file.
fn open(db: &str) -> anyhow::Result<Store> {
    Ok(if db.starts_with("postgres") {
        Store::open_postgres_client(db)?
    } else {
        Store::open(std::path::Path::new(db))?
    })
}

async fn prepare(db: &str, n: usize, seed: u64) -> anyhow::Result<()> {
    let store = open(db)?;

    let t = Instant::now();
    let enterprises = generator::generate(n, seed);
    let lines: usize = enterprises.iter().map(|e| e.measures.len()).sum();
    let counties: BTreeSet<RegionCode> = enterprises.iter().map(|e| e.county).collect();
    println!(
        "generated {n} enterprises, {lines} line measures, {} counties in {:.2?}",
        counties.len(),
        t.elapsed()
    );

    let t = Instant::now();
    let now = Utc::now();
    let version = ListVersion::new(enterprises, None, now);
    let diff = import::diff_enterprises(&[], &version.enterprises);
    hazeflow::engine::list::record(&store, version, diff, "bench", now).await?;
    println!(
        "recorded the list in {:.2?} (peak memory of this phase {:.0} MiB)",
        t.elapsed(),
        vm_hwm_mib()
    );

    store.close();
    Ok(())
}

async fn run(db: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    let store = open(db)?;
    println!("opened the store in {:.2?}", t.elapsed());
    let now = Utc::now();
    let counties: BTreeSet<RegionCode> = store.read(|r| {
        let keys = r.doc_keys(hazeflow::engine::list::MEMBERS, "", "", usize::MAX)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.split('/').next())
            .filter_map(|c| RegionCode::parse(c).ok())
            .collect())
    })?;

    let regions = Regions::shanxi();
    let set = hazeflow::domain::playbook::load_paths(&[std::path::PathBuf::from("playbooks/shanxi.yaml")], regions)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let pb = set.get("shanxi").cloned().ok_or_else(|| anyhow::anyhow!("no shanxi playbook"))?;
    let defaults = Arc::new(hazeflow::registry::shanxi_defaults().clone());
    // The daemon's hooks: escalation timers and the notice fan-out (all notices queued with the round).
    let stage = Arc::new(AssignStage {
        defaults: defaults.clone(),
        regions,
        on_round: vec![hazeflow::engine::notice::hook(), hazeflow::engine::escalate::hook(defaults.clone())],
    });
    let provinces: BTreeSet<RegionCode> = counties.iter().map(|c| c.province()).collect();

    // The red warning of each province, and its lift decided an hour later (told at once: within the
    // lead time).
    let issued = move |p: RegionCode, pb: &hazeflow::domain::playbook::Playbook| Event {
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
    let lift_at = now + chrono::Duration::hours(1);

    let t = Instant::now();
    let mut jobs = Vec::new();
    for p in provinces.iter().copied() {
        let (stage, pb) = (stage.clone(), pb.clone());
        let store = store.clone();
        jobs.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    let e = issued(p, &pb);
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
    let elapsed = t.elapsed();
    let count: u64 = store.read(|r| Ok(hazeflow::engine::assign::all_rounds(r)?.iter().map(|r| u64::from(r.count)).sum()))?;
    println!(
        "red over {} provinces: {count} assignments durable in {:.2?} ({:.0}/s); peak memory {:.0} MiB",
        provinces.len(),
        elapsed,
        count as f64 / elapsed.as_secs_f64(),
        vm_hwm_mib()
    );
    // After the clock: the fan-out turns the queued notices into outbox messages (rendered data,
    // links), chunk by chunk ([`hazeflow::engine::notice::CHUNK`] per transaction), as the daemon's notice loop does while mail goes out.
    let notices = hazeflow::engine::notice::Notices {
        defaults,
        regions,
        public_url: "https://hazeflow.example.cn".into(),
        tokens: TokenKey::new([7; 32]),
        playbooks: Arc::new(set.clone()),
        roster: {
            let roster =
                Arc::new(hazeflow::notify::Roster::load(std::path::Path::new("config/roster.yaml")).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            Arc::new(move || roster.clone())
        },
    };
    let (entries, queued, elapsed) = fan_out(&store, &notices).await?;
    println!(
        "start fan-out: {entries} entries turned into {queued} outbox messages in {:.2?} ({:.0} entries/s); peak memory {:.0} MiB",
        elapsed,
        entries as f64 / elapsed.as_secs_f64(),
        vm_hwm_mib()
    );

    // The lift of every province decided at once: the end notices (解除) of every enterprise and
    // department told of the start, through the same fan-out.
    let t = Instant::now();
    let mut jobs = Vec::new();
    for p in provinces.iter().copied() {
        let (stage, pb) = (stage.clone(), pb.clone());
        let store = store.clone();
        jobs.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    let mut state = RegionState::default();
                    state.apply(&issued(p, &pb));
                    let e = Event {
                        kind: EventKind::Scheduled {
                            to: None,
                            rank: 0,
                            effective: lift_at,
                            signer: None,
                            rule: None,
                        },
                        exercise: false,
                        ..issued(p, &pb)
                    };
                    state.apply(&e);
                    stage.on_warning_events(tx, now, &[e], &state, &pb)
                })
                .await
        }));
    }
    for j in jobs {
        j.await??;
    }
    let decided = t.elapsed();
    let (entries, queued, elapsed) = fan_out(&store, &notices).await?;
    println!(
        "lift decided over {} provinces in {decided:.2?}; end fan-out: {entries} entries turned into {queued} outbox messages in {:.2?} ({:.0} entries/s); peak memory {:.0} MiB",
        provinces.len(),
        elapsed,
        entries as f64 / elapsed.as_secs_f64(),
        vm_hwm_mib()
    );
    store.close();
    Ok(())
}

/// Runs the notice fan-out until nothing is left, as the daemon's notice loop does (each chunk
/// prepared on a snapshot while the writer queues the one before): (entries gone
/// through, outbox messages queued, time).
async fn fan_out(store: &Store, notices: &hazeflow::engine::notice::Notices) -> anyhow::Result<(usize, u64, std::time::Duration)> {
    let before = store.read(|r| r.counter("notify_queued_email"))?;
    let stats = store.stats();
    let t = Instant::now();
    let mut entries = 0usize;
    let mut ahead = None;
    loop {
        let now = chrono::Utc::now();
        let chunk = std::env::var("BENCH_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(hazeflow::engine::notice::CHUNK);
        let done = hazeflow::engine::notice::step(store, notices, chunk, now, &mut ahead).await?;
        if done == 0 {
            break;
        }
        entries += done;
    }
    let elapsed = t.elapsed();
    let s = store.stats();
    println!(
        "  writer: {} transactions, jobs {:.2} s, commits {:.2} s",
        s.batches - stats.batches,
        (s.job_micros - stats.job_micros) as f64 / 1e6,
        (s.commit_micros - stats.commit_micros) as f64 / 1e6
    );
    let after = store.read(|r| r.counter("notify_queued_email"))?;
    if std::env::var_os("BENCH_SIZES").is_some() {
        let sizes: Vec<usize> = store.read(|r| {
            Ok(hazeflow::notify::outbox::messages(r, "", "", 1000)?
                .iter()
                .map(|m| serde_json::to_vec(m).map_or(0, |v| v.len()))
                .collect())
        })?;
        println!(
            "  message record: {} bytes on average (first 1000)",
            sizes.iter().sum::<usize>() / sizes.len().max(1)
        );
    }
    Ok((entries, after - before, elapsed))
}
