//! A warning event and its assignments are written in one transaction: a crash between them cannot be
//! observed.
//!
//! - The real binary, SIGKILLed in the middle of a burst of issues and cancellations over every city:
//!   for every `issued` record in the log, its assignments (and their timers) are there, and every
//!   `cancelled` one ended them.
//! - Directly, an engine whose last stage fails on `issued` after the assignments stage has written,
//!   while other writers' jobs share its batch: the engine appends the lifecycle events before it runs
//!   the stages, and the store takes back every write of a job that returns an error (its undo log)
//!   while the rest of the batch commits. Neither the `issued` record nor the round, its entries or its
//!   timers remain; the other jobs went through.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hazeflow::clock::Clock;
use hazeflow::domain::playbook::Playbook;
use hazeflow::domain::region::Regions;
use hazeflow::domain::warning::{Event, EventKind, RegionState};
use hazeflow::engine::assign::AssignStage;
use hazeflow::engine::{Engine, Playbooks, Stage, WarningAction};
use hazeflow::registry::import::{ImportOptions, diff_enterprises, read_paths};
use hazeflow::registry::{ListVersion, load_defaults};
use hazeflow::store::{RecordBody, Store, StoreError, Tx, events};
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::helpers::*;

/// A stage that fails on `issued`, after the assignments stage has written.
struct Broken;

impl Stage for Broken {
    fn on_warning_events(
        &self,
        _tx: &mut Tx<'_>,
        _now: DateTime<Utc>,
        events: &[Event],
        _state: &RegionState,
        _pb: &Playbook,
    ) -> Result<(), StoreError> {
        if events.iter().any(|e| matches!(e.kind, EventKind::Issued { .. })) {
            return Err(StoreError::Refused("the next stage failed".into()));
        }
        Ok(())
    }
}

fn count(store: &Store, collection: hazeflow::store::Collection) -> usize {
    store.read(|r| r.doc_keys(collection, "", "", usize::MAX)).unwrap().len()
}

fn issued_records(store: &Store) -> usize {
    let all = store.read(|r| r.events_after(0, usize::MAX)).unwrap();
    all.iter()
        .filter(|r| matches!(&r.body, RecordBody::Warning { event, .. } if matches!(event.kind, EventKind::Issued { .. })))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stage_leaves_neither_the_warning_event_nor_its_assignments_and_other_jobs_of_the_batch_commit() {
    let dir = TempDir::new().unwrap();
    let regions = Regions::shanxi();
    let clock = Clock::manual(shanghai("2026-12-02 08:00"));
    let now = clock.now();
    let set = hazeflow::domain::playbook::load_paths(&[PathBuf::from(PLAYBOOKS)], regions).expect("the shipped playbooks");
    let defaults = Arc::new(load_defaults(&PathBuf::from(PLAYBOOKS).join("measures/shanxi.yaml")).expect("the shipped defaults"));
    let store = Store::open(&dir.path().join("hazeflow.redb")).unwrap();

    // The test list, as the daemon seeds it.
    let list = dir.path().join("list");
    write_list(&list);
    let opts = ImportOptions {
        defaults: &defaults,
        regions: Some(regions),
    };
    let enterprises =
        read_paths(&[list.join("enterprises.csv"), list.join("measures.csv")], &opts, &mut |_, _| {}).expect("the test list imports");
    let version = ListVersion::new(enterprises, None, now);
    let diff = diff_enterprises(&[], &version.enterprises);
    hazeflow::engine::list::record(&store, version, diff, "test", now).await.unwrap();

    let assign = Arc::new(AssignStage {
        defaults: defaults.clone(),
        regions,
        on_round: vec![hazeflow::engine::escalate::hook(defaults.clone())],
    });
    let mut engine = Engine {
        stages: vec![assign, Arc::new(Broken)],
        store: store.clone(),
        playbooks: Playbooks::new(set, now),
        regions,
        clock: clock.clone(),
        max_forecast_bytes: 1 << 20,
        forecast_max_ahead: chrono::Duration::minutes(60),
        consult_requested: Arc::default(),
        changed: Arc::default(),
    };

    // An orange proposal for Taiyuan.
    engine
        .submit_forecast("f.csv", orange_forecast("2026-12-02 07:30", "2026-12-02").as_bytes(), "test")
        .await
        .expect("the forecast");
    engine.consult("test", None, None).await.expect("the consultation");
    let id = store
        .read(|r| r.warnings())
        .unwrap()
        .into_iter()
        .find(|w| w.region.to_string() == TAIYUAN)
        .expect("a proposal")
        .id;
    let seq = store.read(|r| r.last_seq()).unwrap();

    // The deputy head signs while other writers are busy: the signature fails in the broken stage…
    let sign = engine.warning_action(
        &id,
        WarningAction::Sign {
            signer: "李副市长".into(),
            role: "deputy_head".into(),
            without_record: Some("本测试不涉及会商意见".into()),
        },
    );
    let others = futures_like_join(&store, 32);
    let (signed, probes) = tokio::join!(sign, others);
    assert!(signed.is_err(), "the signature fails: {signed:?}");

    // …and leaves no trace: no `issued` record, the warning still pending, no assignment round or timer.
    assert_eq!(issued_records(&store), 0);
    let w = store.read(|r| r.warning(&id)).unwrap().unwrap();
    assert_eq!(w.status, hazeflow::domain::warning::Status::Pending);
    for c in [
        hazeflow::engine::assign::ROUNDS,
        hazeflow::engine::assign::ROUND_SEQ,
        hazeflow::engine::escalate::TIMERS,
    ] {
        assert_eq!(count(&store, c), 0, "{c:?} is empty");
    }
    assert_eq!(store.read(|r| r.last_seq()).unwrap(), seq, "the log did not move");
    // The other jobs, some of them committed in the same batch, all went through.
    assert!(probes.iter().all(Result::is_ok), "{probes:?}");
    let probes_kept = store
        .read(|r| r.doc_keys(hazeflow::store::Collection::PlaybookSources, "probe-", "", usize::MAX))
        .unwrap()
        .len();
    assert_eq!(probes_kept, 32);
    assert!(store.read(|r| r.verify_views()).unwrap().is_empty(), "the views agree with the log");

    // With the stage mended, the same signature writes the event and the assignments together.
    engine.stages.pop();
    engine
        .warning_action(
            &id,
            WarningAction::Sign {
                signer: "李副市长".into(),
                role: "deputy_head".into(),
                without_record: Some("本测试不涉及会商意见".into()),
            },
        )
        .await
        .expect("signed");
    assert_eq!(issued_records(&store), 1);
    let n = 3 + defaults.departments.len();
    let rounds = store.read(hazeflow::engine::assign::all_rounds).unwrap();
    assert_eq!(rounds.len(), 1, "one round");
    let entries = store
        .read(|r| hazeflow::engine::assign::entries(r, &rounds[0], 0, usize::MAX))
        .unwrap();
    assert_eq!(entries.len(), n, "three enterprises and every department");
    assert_eq!(
        count(&store, hazeflow::engine::escalate::TIMERS),
        8,
        "reminder, overdue and two escalations for the batch, for receipt and for the measures in place"
    );
    store.close();
}

/// `n` small writes, queued at the same time as the signature.
async fn futures_like_join(store: &Store, n: usize) -> Vec<Result<(), StoreError>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = store.clone();
        set.spawn(async move {
            s.write(move |tx| tx.put_doc(hazeflow::store::Collection::PlaybookSources, &format!("probe-{i:04}"), &i))
                .await
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SIGKILL of the real binary
// ---------------------------------------------------------------------------------------------

/// Shanxi's eleven cities.
const CITIES: [&str; 11] = [
    "140100", "140200", "140300", "140400", "140500", "140600", "140700", "140800", "140900", "141000", "141100",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The real daemon on the embedded defaults, pointed at `dir`, the test list and `port`.
async fn start_daemon(dir: &Path, port: u16, http: &reqwest::Client) -> Child {
    let root = env!("CARGO_MANIFEST_DIR");
    let list = dir.join("list");
    write_list(&list);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hazeflow"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HAZEFLOW_") || k == "RUST_LOG") {
        cmd.env_remove(k);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .expect("a log");
    let mut child = cmd
        .arg("daemon")
        .env("HAZEFLOW_LOG_LEVEL", "warn")
        .env("HAZEFLOW_DATA_DIR", dir.join("data"))
        .env("HAZEFLOW_LIST_SEED", &list)
        .env("HAZEFLOW_PLAYBOOKS", format!("{root}/playbooks"))
        .env("HAZEFLOW_ROSTER", format!("{root}/config/roster.yaml"))
        .env("HAZEFLOW_MEASURES", format!("{root}/playbooks/measures/shanxi.yaml"))
        .env("HAZEFLOW_INBOX_DIR", dir.join("inbox"))
        .env("HAZEFLOW_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("HAZEFLOW_DEMO", "false")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the daemon starts");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the daemon exited with {status}: {}",
                std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
            );
        }
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the daemon does not answer: {}",
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One city's loop: a forecast calls for orange, the head signs it, then cancels it; again.
async fn churn(http: reqwest::Client, base: String, city: &'static str, issued: Arc<AtomicUsize>) {
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    for n in 0..1000u32 {
        let csv = forecast_csv(
            &today.format("%Y-%m-%d 00:00").to_string(),
            SOURCE,
            city,
            &today.to_string(),
            &[150, 160 + n % 30, 230, 240, 180, 120, 100],
        );
        let Ok(r) = http
            .post(format!("{base}/api/v1/forecasts"))
            .bearer_auth("hazeflow-demo")
            .body(csv)
            .send()
            .await
        else {
            return;
        };
        if !r.status().is_success() {
            return;
        }
        // Wait for the proposal the consultation makes on it.
        let mut pending = None;
        for _ in 0..200 {
            let Ok(r) = http
                .get(format!("{base}/api/v1/warnings"))
                .bearer_auth("hazeflow-demo")
                .send()
                .await
            else {
                return;
            };
            let Ok(v) = r.json::<Value>().await else { return };
            pending = v["warnings"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|w| w["region"] == city && w["status"] == "pending")
                .and_then(|w| w["id"].as_str().map(str::to_string));
            if pending.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let Some(id) = pending else { continue };
        let Ok(r) = http
            .post(format!("{base}/api/v1/warnings/{id}/sign"))
            .bearer_auth("hazeflow-demo")
            .json(&serde_json::json!({ "without_record": "本测试不涉及会商意见" }))
            .send()
            .await
        else {
            return;
        };
        if r.status().is_success() {
            issued.fetch_add(1, Ordering::SeqCst);
        }
        let Ok(_) = http
            .post(format!("{base}/api/v1/warnings/{id}/cancel"))
            .bearer_auth("hazeflow-demo")
            .send()
            .await
        else {
            return;
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_in_a_burst_of_issues_every_issued_warning_in_the_log_has_its_assignments_and_timers() {
    let dir = TempDir::new().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), port, &http).await;
    let issued = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = CITIES
        .iter()
        .map(|c| tokio::spawn(churn(http.clone(), format!("http://127.0.0.1:{port}"), c, issued.clone())))
        .collect();
    eventually("24 warnings are issued", || async {
        (issued.load(Ordering::SeqCst) >= 24).then_some(())
    })
    .await;
    daemon.kill().await.expect("SIGKILL");
    for t in tasks {
        t.await.unwrap();
    }

    // The store as the next start finds it.
    let store = Store::open(&dir.path().join("data/hazeflow.redb")).expect("the store opens after the kill");
    let log = store.read(|r| r.events_after(0, usize::MAX)).unwrap();
    let rounds = store.read(hazeflow::engine::assign::all_rounds).unwrap();
    let timers: Vec<String> = store
        .read(|r| r.doc_keys(hazeflow::engine::escalate::TIMERS, "", "", usize::MAX))
        .unwrap();
    let departments = load_defaults(&PathBuf::from(PLAYBOOKS).join("measures/shanxi.yaml"))
        .unwrap()
        .departments
        .len();
    let mut checked = 0;
    for (i, r) in log.iter().enumerate() {
        let RecordBody::Warning { warning_id, event } = &r.body else {
            continue;
        };
        if !matches!(event.kind, EventKind::Issued { .. } | EventKind::Cancelled) {
            continue;
        }
        let kind = if matches!(event.kind, EventKind::Issued { .. }) {
            "assignments_made"
        } else {
            "assignments_ended"
        };
        // The stage's record follows in the same transaction, before the next lifecycle step's.
        let made = log[i + 1..]
            .iter()
            .find(|x| match &x.body {
                RecordBody::Other(events::Event::AssignmentsMade(m)) => kind == "assignments_made" && m.warning_id == *warning_id,
                RecordBody::Other(events::Event::AssignmentsEnded(m)) => kind == "assignments_ended" && m.warning_id == *warning_id,
                _ => false,
            })
            .unwrap_or_else(|| panic!("{kind} for {warning_id} after record {}", r.seq));
        if kind == "assignments_ended" {
            continue;
        }
        let RecordBody::Other(events::Event::AssignmentsMade(m)) = &made.body else {
            unreachable!()
        };
        let n = m.count as usize;
        // Every department, and the enterprises of the list: three in Taiyuan, one in Datong.
        let want = departments
            + if warning_id.starts_with("140100-") {
                3
            } else {
                usize::from(warning_id.starts_with("140200-"))
            };
        assert_eq!(n, want, "{warning_id}");
        // The round is the stage's record: its seq, its entries, its timers.
        let round = rounds
            .iter()
            .find(|x| x.seq == made.seq)
            .unwrap_or_else(|| panic!("the round of {warning_id} issued at record {}", r.seq));
        assert_eq!(round.warning_id, *warning_id);
        let stored = store.read(|x| hazeflow::engine::assign::entries(x, round, 0, usize::MAX)).unwrap();
        assert_eq!(stored.len(), n, "the assignments of {warning_id} issued at record {}", r.seq);
        assert!(
            timers
                .iter()
                .any(|t| t.ends_with(&format!("/{warning_id}/{:012}/2-overdue", made.seq))),
            "the overdue timer of {warning_id}/{}",
            made.seq
        );
        checked += 1;
    }
    assert!(checked >= 24, "{checked} issued warnings checked");
    assert!(store.read(|r| r.verify_views()).unwrap().is_empty());
    eprintln!("{checked} issued warnings in the log, each with its assignments and timers");
    store.close();
}
