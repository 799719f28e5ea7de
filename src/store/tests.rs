//! The writer's promise: a job that fails leaves no trace, the other jobs of its batch commit.

use std::collections::BTreeMap;
use std::sync::mpsc;

use chrono::{DateTime, TimeZone, Utc};
use tempfile::TempDir;

use super::keys::*;
use super::*;
use crate::domain::forecast::{self, ParseOptions};
use crate::domain::level::Ranked;
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Event, EventKind};

type TestJob = Box<dyn FnOnce(&mut Tx<'_>) -> Result<u64, StoreError> + Send>;

const TAIYUAN: u32 = 140100;
const DATONG: u32 = 140200;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, hour, 0, 0).unwrap()
}

fn region(code: u32) -> RegionCode {
    RegionCode::from_u32(code).unwrap()
}

fn warning_event(code: u32, id: &str, issued: bool) -> RecordBody {
    let kind = if issued {
        EventKind::Issued {
            id: id.into(),
            level: Ranked::new("orange", 2),
            start: at(12),
            expected_end: at(23),
            rule: None,
            signer: Some("李副市长".into()),
            reopened: false,
            plan: Vec::new(),
            lead_missed: false,
        }
    } else {
        EventKind::Proposed {
            id: id.into(),
            level: Ranked::new("orange", 2),
            start: at(12),
            expected_end: at(23),
            rule: None,
            needs: "deputy_head".into(),
            reopened: false,
            plan: Vec::new(),
        }
    };
    RecordBody::Warning {
        warning_id: id.into(),
        event: Event {
            region: region(code),
            at: at(8),
            actor: "test".into(),
            reason: "test".into(),
            forecast_id: None,
            playbook: "shanxi@1".into(),
            kind,
            exercise: false,
        },
    }
}

fn directive(id: &str) -> RecordBody {
    RecordBody::DirectiveIssued {
        directive: DirectiveRecord {
            id: id.into(),
            name: "调度令".into(),
            min_level: "orange".into(),
            regions: vec![region(TAIYUAN)],
            from: at(8),
            until: None,
            issued_by: region(140000),
            active: true,
            exercise: false,
            upstream: None,
        },
    }
}

fn forecast_accepted(issued_at: &str) -> RecordBody {
    let csv = format!("# issued_at: {issued_at}\n# source: test\nregion,date,aqi\n{TAIYUAN},2026-12-02,230\n{TAIYUAN},2026-12-03,240\n");
    let f = forecast::parse("f.csv", csv.as_bytes(), Regions::shanxi(), &ParseOptions::forecast()).expect("a forecast");
    RecordBody::ForecastAccepted {
        forecast: f,
        via: "test".into(),
    }
}

fn other(kind: &str) -> RecordBody {
    RecordBody::Other(events::Event::Unknown {
        kind: kind.into(),
        data: serde_json::json!({}),
    })
}

/// Every row of every table, as text (through the port: the same for every backend).
fn dump(store: &Store) -> BTreeMap<&'static str, Vec<String>> {
    store
        .read(|r| {
            let mut out = BTreeMap::new();
            for table in port::Table::ALL {
                let mut rows = Vec::new();
                r.port().scan(table, port::Scan::All { rev: false }, usize::MAX, &mut |k, v| {
                    // The store's history holds the time it was made: two stores differ there.
                    if k != port::Key::Name("history") {
                        rows.push(format!("{k:?} => {v:?}"));
                    }
                    Ok(true)
                })?;
                out.insert(table.name(), rows);
            }
            Ok(out)
        })
        .unwrap()
}

/// Runs `jobs` in one batch: a first job holds the writer until all of them are queued (a batch takes
/// whatever is waiting, up to 4096 jobs). Returns their results, in order.
fn in_one_batch(store: &Store, jobs: Vec<TestJob>) -> Vec<Result<u64, StoreError>> {
    let (open, gate) = mpsc::channel::<()>();
    let hold = store
        .submit(
            move |_| {
                let _ = gate.recv();
                Ok::<_, StoreError>(0)
            },
            Vec::new(),
        )
        .unwrap();
    let waiting: Vec<_> = jobs.into_iter().map(|j| store.submit(j, Vec::new()).unwrap()).collect();
    open.send(()).unwrap();
    hold.blocking_recv().unwrap().unwrap();
    waiting.into_iter().map(|r| r.blocking_recv().unwrap()).collect()
}

/// A store with something in every table.
fn seeded(dir: &TempDir, name: &str) -> Store {
    let store = Store::open(&dir.path().join(name)).unwrap();
    let seed: TestJob = Box::new(|tx| {
        tx.append(at(7), "test", None, forecast_accepted("2026-12-02 07:30"))?;
        tx.append(at(8), "test", None, warning_event(TAIYUAN, "w1", false))?;
        tx.append(at(8), "test", None, directive("d1"))?;
        tx.append(
            at(8),
            "test",
            None,
            RecordBody::ConsultationHeld {
                consultation: ConsultationRecord {
                    seq: 0,
                    at: at(8),
                    trigger: "test".into(),
                    assessments: vec![],
                    exercise: false,
                },
            },
        )?;
        tx.put_doc(Collection::Test("c"), "kept", &1)?;
        tx.put_doc(Collection::Test("c"), "gone", &2)?;
        tx.put_items(7, &["a", "b", "c"])?;
        tx.bump("n", 5)?;
        Ok(0)
    });
    in_one_batch(&store, vec![seed]).pop().unwrap().unwrap();
    store
}

/// The jobs that succeed, around the failing one.
fn first_ok() -> TestJob {
    Box::new(|tx| {
        tx.put_doc(Collection::Test("ok"), "1", &"first")?;
        tx.bump("n", 1)?;
        Ok(tx.append(at(9), "test", None, other("first"))?.seq)
    })
}

fn second_ok() -> TestJob {
    Box::new(|tx| {
        // It runs after the failed job: none of that job's writes may show.
        let kept: Option<i32> = tx.doc(Collection::Test("c"), "kept")?;
        let gone: Option<i32> = tx.doc(Collection::Test("c"), "gone")?;
        let item: Option<String> = tx.item(7, 1)?;
        let state = tx.region_state(region(TAIYUAN))?;
        if kept != Some(1) || gone != Some(2) || item.as_deref() != Some("b") || tx.counter("n")? != 6 {
            return Err(StoreError::Refused(format!("saw the failed job: {kept:?} {gone:?} {item:?}")));
        }
        if state.warning.map(|w| w.status) != Some(crate::domain::warning::Status::Pending) || tx.directive("d2")?.is_some() {
            return Err(StoreError::Refused("saw the failed job's records".into()));
        }
        tx.put_doc(Collection::Test("ok"), "2", &"second")?;
        Ok(tx.append(at(9), "test", None, other("second"))?.seq)
    })
}

/// Writes to every table (new keys and existing ones, some twice), then fails.
fn failing() -> TestJob {
    Box::new(|tx| {
        tx.append(at(10), "test", None, forecast_accepted("2026-12-02 10:30"))?;
        tx.append(at(10), "test", None, warning_event(TAIYUAN, "w1", true))?;
        tx.append(at(10), "test", None, warning_event(DATONG, "w2", false))?;
        tx.append(at(10), "test", None, directive("d2"))?;
        tx.append(
            at(10),
            "test",
            None,
            RecordBody::DirectiveLifted {
                id: "d1".into(),
                doc_no: None,
            },
        )?;
        tx.append(
            at(10),
            "test",
            None,
            RecordBody::ConsultationHeld {
                consultation: ConsultationRecord {
                    seq: 0,
                    at: at(10),
                    trigger: "test".into(),
                    assessments: vec![],
                    exercise: false,
                },
            },
        )?;
        tx.put_doc(Collection::Test("c"), "kept", &100)?;
        tx.put_doc(Collection::Test("c"), "new", &3)?;
        tx.remove_doc(Collection::Test("c"), "gone")?;
        tx.put_docs(Collection::Test("c"), &[("kept".to_string(), 200), ("zz".to_string(), 4)])?;
        tx.put_doc(Collection::Test("other"), "x", &5)?;
        tx.put_items(7, &["a", "B", "c", "d", "e"])?;
        tx.put_item(7, 0, &"A")?;
        tx.put_items(8, &(0..1000).collect::<Vec<u32>>())?;
        tx.bump("n", 10)?;
        tx.bump("fresh", 1)?;
        // The writes are there, for this job.
        let seen = tx.doc::<i32>(Collection::Test("c"), "kept")? == Some(200)
            && tx.doc::<i32>(Collection::Test("c"), "gone")?.is_none()
            && tx.item::<String>(7, 4)?.as_deref() == Some("e")
            && tx.counter("n")? == 16
            && tx.directive("d1")?.is_some_and(|d| !d.active)
            && tx.warning("w2")?.is_some();
        if !seen {
            return Err(StoreError::Refused("the writes did not show".into()));
        }
        Err(StoreError::Refused("the next stage failed".into()))
    })
}

#[test]
fn a_failing_job_leaves_every_table_as_before_and_the_other_jobs_of_its_batch_commit() {
    let dir = TempDir::new().unwrap();
    let with = seeded(&dir, "with.redb");
    let without = seeded(&dir, "without.redb");
    assert_eq!(dump(&with), dump(&without), "the same start");
    let before = dump(&with);

    let results = in_one_batch(&with, vec![first_ok(), failing(), second_ok()]);
    assert_eq!(results[0].as_ref().ok(), Some(&5), "{:?}", results[0]);
    assert!(
        matches!(&results[1], Err(StoreError::Refused(m)) if m == "the next stage failed"),
        "{:?}",
        results[1]
    );
    // The log stays gap-free: the failed job's sequence numbers are used again.
    assert_eq!(results[2].as_ref().ok(), Some(&6), "{:?}", results[2]);

    // The same batch without the failing job writes exactly the same.
    let results = in_one_batch(&without, vec![first_ok(), second_ok()]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let after = dump(&with);
    assert_eq!(after, dump(&without));
    assert_ne!(after, before, "the successful jobs committed");
    assert_eq!(
        with.read(|r| r.doc::<String>(Collection::Test("ok"), "2")).unwrap().as_deref(),
        Some("second")
    );
    assert!(with.read(|r| r.verify_views()).unwrap().is_empty());
    let seqs: Vec<u64> = with.read(|r| r.events_after(0, 100)).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>());

    // A later batch appends after them.
    let next: TestJob = Box::new(|tx| Ok(tx.append(at(11), "test", None, other("next"))?.seq));
    assert_eq!(in_one_batch(&with, vec![next]).pop().unwrap().unwrap(), 7);
    with.close();
    without.close();
}

#[test]
fn a_failed_job_puts_back_an_overwritten_doc_and_a_removed_one() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let seed: TestJob = Box::new(|tx| {
        tx.put_doc(Collection::Test("c"), "a", &"old a")?;
        tx.put_doc(Collection::Test("c"), "b", &"old b")?;
        tx.put_item(3, 0, &"old item")?;
        Ok(0)
    });
    let failing: TestJob = Box::new(|tx| {
        tx.put_doc(Collection::Test("c"), "a", &"new a")?;
        tx.put_doc(Collection::Test("c"), "a", &"newer a")?;
        tx.remove_doc(Collection::Test("c"), "b")?;
        tx.put_doc(Collection::Test("c"), "b", &"new b")?;
        tx.put_item(3, 0, &"new item")?;
        tx.remove_doc(Collection::Test("c"), "never there")?;
        Err(StoreError::Refused("no".into()))
    });
    in_one_batch(&store, vec![seed]).pop().unwrap().unwrap();
    let before = dump(&store);
    assert!(in_one_batch(&store, vec![failing]).pop().unwrap().is_err());
    assert_eq!(
        store.read(|r| r.doc::<String>(Collection::Test("c"), "a")).unwrap().as_deref(),
        Some("old a")
    );
    assert_eq!(
        store.read(|r| r.doc::<String>(Collection::Test("c"), "b")).unwrap().as_deref(),
        Some("old b")
    );
    assert_eq!(store.read(|r| r.item::<String>(3, 0)).unwrap().as_deref(), Some("old item"));
    assert_eq!(dump(&store), before);
    store.close();
}

#[test]
fn a_memo_passes_to_later_jobs_and_batches_and_goes_with_a_failed_job() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    // Each job answers what it found (0: nothing) and keeps one more.
    let next = |fail: bool| -> TestJob {
        Box::new(move |tx| {
            let found = tx.take_memo::<u64>().unwrap_or(0);
            tx.keep_memo(found + 1);
            tx.put_doc(Collection::Test("m"), &found.to_string(), &found)?;
            if fail { Err(StoreError::Refused("no".into())) } else { Ok(found) }
        })
    };
    let found: Vec<Option<u64>> = in_one_batch(&store, vec![next(false), next(false), next(true), next(false)])
        .into_iter()
        .map(Result::ok)
        .collect();
    // The third job's memo (and its write) went with it: the fourth starts afresh.
    assert_eq!(found, vec![Some(0), Some(1), None, Some(0)]);
    // The next batch starts with what the last committed one kept.
    assert_eq!(in_one_batch(&store, vec![next(false)]).pop().unwrap().unwrap(), 1);
    // A memo of another type is not handed out as this one.
    let other: TestJob = Box::new(|tx| {
        tx.keep_memo("text");
        Ok(tx.take_memo::<u64>().unwrap_or(0))
    });
    assert_eq!(in_one_batch(&store, vec![other]).pop().unwrap().unwrap(), 0);
    assert_eq!(in_one_batch(&store, vec![next(false)]).pop().unwrap().unwrap(), 0);
    store.close();
}

#[test]
fn bulk_writes_of_fresh_keys_keep_the_undo_log_small() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let before = dump(&store);
    let job: TestJob = Box::new(|tx| {
        let items: Vec<u32> = (0..100_000).collect();
        tx.put_items(42, &items)?;
        let one_range = tx.undo_cost().0 == 1 && tx.undo_cost().1 < 1024;
        // A run written again with the same values adds nothing.
        tx.put_items(42, &items)?;
        let unchanged = tx.undo_cost().0 == 1;
        let docs: Vec<(String, u32)> = (0..10_000).map(|i| (format!("county/{i:08}"), i)).collect();
        tx.put_docs(Collection::Test("enterprises"), &docs)?;
        // One entry for the run of documents, its keys packed in one string with a `u32` end each: at
        // most twice that (vectors grow by doubling), no allocation per key.
        let packed = tx.undo_cost().0 == 2 && tx.undo_cost().1 < 2 * 10_000 * ("county/00000000".len() + 4) + 1024;
        if !(one_range && unchanged && packed) {
            return Err(StoreError::Refused(format!(
                "range {one_range}, unchanged {unchanged}, packed {packed}: {} entries, {} bytes",
                tx.undo_cost().0,
                tx.undo_cost().1
            )));
        }
        Err(StoreError::Refused("undo".into()))
    });
    let r = in_one_batch(&store, vec![job]).pop().unwrap();
    assert!(matches!(&r, Err(StoreError::Refused(m)) if m == "undo"), "{r:?}");
    assert_eq!(dump(&store), before, "100,000 items and 10,000 documents taken back");
    store.close();
}

/// Puts a store back to format `v` as a build of that format left it (no history).
fn downgrade(path: &std::path::Path, v: u32) {
    let store = Store::open(path).unwrap();
    store
        .write_blocking(move |tx| {
            tx.put_meta(upgrade::FORMAT_KEY, &v.to_le_bytes())?;
            tx.remove_meta(upgrade::HISTORY_KEY)
        })
        .unwrap();
    store.close();
    drop(store);
}

#[test]
fn an_older_store_is_upgraded_after_a_backup_and_not_at_all_when_the_backup_cannot_be_written() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let history = store.read(|r| r.store_history()).unwrap();
    assert_eq!(
        history.iter().map(|h| (h.format, h.how.as_str())).collect::<Vec<_>>(),
        [(FORMAT_VERSION, "created")]
    );
    store
        .write_blocking(|tx| tx.append(at(9), "test", None, other("first")).map(drop))
        .unwrap();
    store.close();
    drop(store);
    downgrade(&path, 2);

    // The backup cannot be written (its temporary name is taken by a folder): nothing changes.
    let backup = dir.path().join("s.redb.format-2.bak");
    std::fs::create_dir(dir.path().join("s.redb.format-2.bak.part")).unwrap();
    let refused = Store::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("the backup before the upgrade from format 2 could not be written") && refused.contains("nothing was changed"),
        "{refused}"
    );
    let scratch = TempDir::new().unwrap();
    let checked = Checked::open_copy(&path, scratch.path()).unwrap();
    assert_eq!(checked.read(|r| r.format_version()).unwrap(), Some(2), "still format 2");
    drop(checked);

    // With room for it: upgraded, the backup holds the old store.
    std::fs::remove_dir(dir.path().join("s.redb.format-2.bak.part")).unwrap();
    let store = Store::open(&path).unwrap();
    let (version, history, events) = store
        .read(|r| Ok((r.format_version()?, r.store_history()?, r.event_count()?)))
        .unwrap();
    store.close();
    drop(store);
    assert_eq!((version, events), (Some(FORMAT_VERSION), 1));
    assert_eq!(
        history.iter().map(|h| (h.format, h.how.as_str())).collect::<Vec<_>>(),
        [(2, "found"), (3, "upgraded")]
    );
    assert_eq!(history[0].at, Some(at(9)), "the log's first record");
    assert_eq!(history[1].backup.as_deref(), Some(backup.to_str().unwrap()));
    let checked = Checked::open_copy(&backup, scratch.path()).unwrap();
    assert_eq!(checked.read(|r| Ok((r.format_version()?, r.event_count()?))).unwrap(), (Some(2), 1));
    drop(checked);

    // Opened again: nothing more to do, no second backup.
    Store::open(&path).unwrap().close();
    let baks = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".bak"))
        .count();
    assert_eq!(baks, 1);

    // A format older than the oldest step is refused by name.
    downgrade(&path, 1);
    let refused = Store::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("has format version 1") && refused.contains("upgrades format 2 and later"),
        "{refused}"
    );
}
