//! The PostgreSQL store (`store.url`), against a real cluster started for the test: the same promises
//! as the embedded file, read through the same typed API, and the daemon's flow on it.

use std::sync::mpsc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use hazeflow::store::{Collection, RecordBody, Store, StoreError, events};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::pg::PgCluster;
use crate::helpers::*;

fn note(kind: &str) -> RecordBody {
    RecordBody::Other(events::Event::Unknown {
        kind: kind.into(),
        data: json!({}),
    })
}

/// Writes the same things into `store` and reads them back: the transcript of what a user of the
/// typed API sees. One batch holds a job that fails after writing; key ranges cross text that sorts
/// differently by bytes and by a locale.
async fn transcript(store: &Store) -> Vec<String> {
    let at = Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap();
    let mut out = Vec::new();
    // A batch of four: the first holds the writer until the others are queued.
    let (open, gate) = mpsc::channel::<()>();
    let first = store.write(move |tx| {
        let _ = gate.recv_timeout(Duration::from_secs(10));
        tx.append(at, "test", None, note("first"))?;
        Ok::<_, StoreError>(1)
    });
    let second = store.write(move |tx| {
        tx.put_doc(Collection::Inspections, "140100/b", &json!({"n": 2}))?;
        tx.append(at, "test", None, note("second"))?;
        Ok::<_, StoreError>(2)
    });
    let failing = store.write(move |tx| {
        tx.put_doc(Collection::Inspections, "140100/a", &json!({"n": "never"}))?;
        tx.put_doc(Collection::Inspections, "140100/b", &json!({"n": "overwritten, then taken back"}))?;
        // A scan sees the job's own writes (on PostgreSQL they are sent first, after a savepoint).
        let seen = tx.doc_keys(Collection::Inspections, "140100/", "", 10)?;
        if seen != ["140100/a", "140100/b"] {
            return Err(StoreError::Refused(format!("the job's scan saw {seen:?}")));
        }
        tx.put_items(9, &["x", "y"])?;
        // A bulk write (sent at once rather than buffered on PostgreSQL), taken back with the rest.
        tx.put_items(8, &(0..400u32).collect::<Vec<_>>())?;
        tx.remove_doc(Collection::Inspections, "140100/b")?;
        tx.bump("things", 5)?;
        tx.append(at, "test", None, note("failing"))?;
        Err::<u64, _>(StoreError::Refused("this job fails".into()))
    });
    let fourth = store.write(move |tx| {
        let docs: Vec<(String, Value)> = ["140100/c", "140100/é", "140100/Z", "140100/", "140200/a", "1401000"]
            .iter()
            .map(|k| (k.to_string(), json!({ "key": k })))
            .collect();
        tx.put_docs(Collection::Inspections, &docs)?;
        tx.put_items(7, &(0..250u32).collect::<Vec<_>>())?;
        tx.put_items(6, &(0..300u32).collect::<Vec<_>>())?;
        let n: Vec<(u32, u32)> = tx.items(6, 295, 10)?;
        if n.len() != 5 {
            return Err(StoreError::Refused(format!("the job read back {n:?} of its bulk write")));
        }
        tx.bump("things", 2)?;
        tx.append(at, "test", None, note("fourth"))?;
        Ok::<_, StoreError>(4)
    });
    let all = async { tokio::join!(first, second, failing, fourth) };
    let opener = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = open.send(());
    };
    let ((a, b, c, d), ()) = tokio::join!(all, opener);
    out.push(format!("results {a:?} {b:?} {c:?} {d:?}"));
    let r = store
        .read(|r| {
            let mut t = Vec::new();
            t.push(format!("last seq {}", r.last_seq()?));
            let kinds: Vec<String> = r
                .events_after(0, 100)?
                .iter()
                .map(|e| format!("{}:{}", e.seq, e.body.kind()))
                .collect();
            t.push(format!("events {kinds:?}"));
            t.push(format!(
                "after 1, 1: {:?}",
                r.events_after(1, 1)?.iter().map(|e| e.seq).collect::<Vec<_>>()
            ));
            t.push(format!("counter {}", r.counter("things")?));
            t.push(format!("doc a {:?}", r.doc::<Value>(Collection::Inspections, "140100/a")?));
            t.push(format!("doc b {:?}", r.doc::<Value>(Collection::Inspections, "140100/b")?));
            t.push(format!("prefix {:?}", r.doc_keys(Collection::Inspections, "140100/", "", 100)?));
            t.push(format!(
                "prefix after c {:?}",
                r.doc_keys(Collection::Inspections, "140100/", "140100/c", 100)?
            ));
            t.push(format!(
                "prefix limit 2 {:?}",
                r.doc_keys(Collection::Inspections, "140100/", "", 2)?
            ));
            t.push(format!("all {:?}", r.doc_keys(Collection::Inspections, "", "", 100)?));
            let docs: Vec<(String, Value)> = r.docs(Collection::Inspections, "1402", "", 10)?;
            t.push(format!("docs 1402 {docs:?}"));
            t.push(format!("items 9 {:?}", r.items::<String>(9, 0, 10)?));
            t.push(format!("items 8 {:?}", r.items::<u32>(8, 0, 10)?));
            let items: Vec<(u32, u32)> = r.items(7, 240, 100)?;
            t.push(format!("items 7 from 240 {items:?}"));
            t.push(format!("item 7/3 {:?}", r.item::<u32>(7, 3)?));
            t.push(format!("item 6/299 {:?}", r.item::<u32>(6, 299)?));
            t.push(format!("event count {}", r.event_count()?));
            Ok(t)
        })
        .expect("the store reads");
    out.extend(r);
    // Removal and bulk reads inside a write.
    let got = store
        .write(|tx| {
            tx.remove_doc(Collection::Inspections, "140100/c")?;
            let many: Vec<Option<Value>> = tx.get_docs(Collection::Inspections, &["140100/c".into(), "140100/é".into(), "nope".into()])?;
            Ok::<_, StoreError>(format!("{many:?}"))
        })
        .await
        .expect("a write");
    out.push(format!("get_docs after removal {got}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_store_keeps_the_promises_of_the_embedded_file_and_survives_a_restart() {
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let dir = TempDir::new().unwrap();
    let file = Store::open(&dir.path().join("s.redb")).expect("the embedded store opens");
    let url = cluster.database("conformance");
    let pg = Store::open_postgres(&url).expect("the PostgreSQL store opens and migrates");
    assert_eq!((file.kind(), pg.kind()), ("embedded", "postgres"));

    let expected = transcript(&file).await;
    let seen = transcript(&pg).await;
    assert_eq!(seen, expected, "PostgreSQL and the embedded file answer alike");
    // What the transcript shows, spelled out: the failing job left nothing, the others committed with
    // a gap-free log, and keys sort by their bytes.
    assert!(
        expected[0].contains("Ok(1) Ok(2) Err(Refused(\"this job fails\")) Ok(4)"),
        "{expected:?}"
    );
    assert!(
        expected.contains(&"events [\"1:first\", \"2:second\", \"3:fourth\"]".to_string()),
        "{expected:?}"
    );
    assert!(expected.contains(&"counter 2".to_string()), "{expected:?}");
    assert!(expected.contains(&"doc a None".to_string()), "{expected:?}");
    assert!(expected.contains(&"items 8 []".to_string()), "{expected:?}");
    assert!(expected.contains(&"item 6/299 Some(299)".to_string()), "{expected:?}");
    assert!(
        expected.contains(&"prefix [\"140100/\", \"140100/Z\", \"140100/b\", \"140100/c\", \"140100/é\"]".to_string()),
        "{expected:?}"
    );
    pg.close();

    // Started again on the same database: the migrations are not run twice, and the data is there.
    let again = Store::open_postgres(&url).expect("opens again");
    let seq = again.read(|r| r.last_seq()).unwrap();
    assert_eq!(seq, 3);
    // A backup of the PostgreSQL store is an embedded file with the same content.
    let out = dir.path().join("from-postgres.redb");
    let summary = again.backup_to(&out).expect("a backup");
    assert_eq!(summary.events, 3);
    let copy = Store::open(&out).expect("the backup opens as an embedded store");
    let keys = |s: &Store| s.read(|r| r.doc_keys(Collection::Inspections, "", "", 100)).unwrap();
    assert_eq!(keys(&copy), keys(&again));
    assert_eq!(copy.read(|r| r.verify_views()).unwrap(), Vec::<String>::new());
    again.close();
    copy.close();
    file.close();
}

/// An orange forecast for Taiyuan from 12-01 dropped into the inbox: the consultation proposes orange,
/// the deputy head signs it at 15:10. Returns the warning's id.
async fn orange_proposed_and_signed(app: &TestApp) -> String {
    let orange = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        "140100",
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    app.drop_in_inbox("taiyuan.csv", &orange);
    let w = eventually("the consultation proposes orange for Taiyuan", || async {
        app.warning_of("140100").await
    })
    .await;
    assert_eq!(
        (w["status"].as_str(), w["level"].as_str()),
        (Some("pending"), Some("orange")),
        "{w}"
    );
    let id = w["id"].as_str().unwrap().to_string();
    app.set_clock("2026-12-01 15:10");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_postgresql_proposes_signs_and_keeps_its_warning_across_a_restart() {
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let url = cluster.database("daemon");
    let with_pg = |url: String| move |s: &mut hazeflow::config::Settings| s.store.url = Some(url);
    let app = spawn_app_with(TempDir::new().unwrap(), clock(), with_pg(url.clone())).await;
    let (status, health) = app.get("/healthz", None).await;
    assert_eq!((status, health["store"].as_str()), (StatusCode::OK, Some("postgres")), "{health}");
    assert!(!app.dir.path().join("data/hazeflow.redb").exists(), "no embedded file is made");

    let id = orange_proposed_and_signed(&app).await;
    let seq = app.last_seq().await;
    let dir = app.stop().await;

    // Another daemon (a new folder: nothing on local disk) on the same database carries on.
    drop(dir);
    let again = spawn_app_with(TempDir::new().unwrap(), clock(), with_pg(url)).await;
    let w = again.warning_of("140100").await.expect("the warning is still there");
    assert_eq!((w["id"].as_str(), w["status"].as_str()), (Some(id.as_str()), Some("issued")), "{w}");
    assert!(again.last_seq().await >= seq);
    again.stop().await;
    assert!(cluster.log().contains("database system is ready"), "the cluster ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_is_killed_the_other_node_leads_within_ten_seconds_and_carries_the_warning_on() {
    use crate::restart::start_daemon_with;
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let url = cluster.database("ha");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let with_store = |url: String| move |text: String| format!("{text}\nstore:\n  url: \"{url}\"\n");
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (port_a, port_b) = (free_port(), free_port());

    // Node A starts first and leads in term 1; node B, on the same database, follows.
    let mut a = start_daemon_with(dir_a.path(), port_a, &http, with_store(url.clone())).await;
    let lead = eventually("node A leads", || async {
        role_of(&http, port_a).await.filter(|(role, _)| role == "leader")
    })
    .await;
    assert_eq!(lead.1, 1, "the first leader's term");
    let b = start_daemon_with(dir_b.path(), port_b, &http, with_store(url)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        role_of(&http, port_b).await,
        Some(("follower".into(), 0)),
        "B follows while A leads"
    );

    // A forecast posted to B (a follower) is recorded there; the leader consults on it and proposes a
    // warning, which B shows.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let csv = forecast_csv(
        &now.format("%Y-%m-%d %H:%M").to_string(),
        "省生态环境监测和应急保障中心",
        "140100",
        &now.format("%Y-%m-%d").to_string(),
        &[120, 230, 240, 250, 180, 120, 100],
    );
    let posted = http
        .post(format!("http://127.0.0.1:{port_b}/api/v1/forecasts"))
        .bearer_auth("hazeflow-demo")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::CREATED, "{}", posted.text().await.unwrap_or_default());
    let warnings_on = |port: u16| {
        let http = http.clone();
        async move {
            let body: Value = http
                .get(format!("http://127.0.0.1:{port}/api/v1/warnings"))
                .bearer_auth("hazeflow-demo")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            body["warnings"]
                .as_array()
                .and_then(|w| w.iter().find(|w| w["region"] == "140100").cloned())
        }
    };
    let proposed = eventually("B shows the warning A proposed on B's forecast", || warnings_on(port_b)).await;
    assert_eq!(proposed["status"], "pending", "{proposed}");
    let id = proposed["id"].as_str().unwrap().to_string();

    // The leader dies (SIGKILL): B leads within 10 s, in a new term.
    a.kill().await.expect("SIGKILL");
    let killed = std::time::Instant::now();
    let (role, term) = eventually("B leads", || async {
        role_of(&http, port_b).await.filter(|(role, _)| role == "leader")
    })
    .await;
    let took = killed.elapsed();
    eprintln!("failover: B leads {} ms after A was killed", took.as_millis());
    assert!(took < Duration::from_secs(10), "B led {took:?} after the kill");
    assert_eq!((role.as_str(), term), ("leader", 2));

    // The head signs on B; B's own delivery now mails the duty staff (the leader's work moved).
    let signed = http
        .post(format!("http://127.0.0.1:{port_b}/api/v1/warnings/{id}/sign"))
        .bearer_auth("hazeflow-demo")
        .json(&serde_json::json!({ "without_record": "本测试不涉及会商意见" }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::OK, "{}", signed.text().await.unwrap_or_default());
    let issued = warnings_on(port_b).await.expect("the warning");
    assert_eq!(issued["status"], "issued", "{issued}");
    eventually("B mails the start notices", || async {
        (!mails_in(dir_b.path()).is_empty()).then_some(())
    })
    .await;
    drop(b);
}

/// Runs `hazeflow migrate --from FROM --to TO`: (success, stdout, stderr).
fn migrate(from: &str, to: &str) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(["migrate", "--from", from, "--to", to])
        .env("HAZEFLOW_LOG_LEVEL", "warn")
        .output()
        .expect("hazeflow runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hazeflow_migrate_moves_an_embedded_store_into_postgresql_and_back_row_for_row_and_never_into_a_store_with_events() {
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let url = cluster.database("moved");
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    let original = {
        let s = Store::open(&a).unwrap();
        let seen = transcript(&s).await;
        s.close();
        seen
    };

    let (ok, out, err) = migrate(&a.display().to_string(), &url);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("3 events") && out.contains("identical") && !out.contains("password"),
        "{out}"
    );
    // The command was a client only: it never took part in the election, so no term was taken.
    // (The blocking client runs a runtime of its own: off the test's.)
    let admin = url.clone();
    let leader = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        let row = c.query_one("SELECT term, node FROM hazeflow_leader WHERE id = 1", &[]).unwrap();
        (row.get::<_, i64>(0), row.get::<_, String>(1))
    })
    .join()
    .unwrap();
    assert_eq!(leader, (0, String::new()), "the leader's row after migrate");
    // Into a store that holds events: refused, and nothing changes.
    let (ok, out, err) = migrate(&a.display().to_string(), &url);
    assert!(!ok, "{out}");
    assert!(err.contains("already holds 3 events"), "{err}");

    let (ok, out, err) = migrate(&url, &b.display().to_string());
    assert!(ok, "{out}{err}");
    let (first, back) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
    assert_eq!(hazeflow::store::differences(&first, &back).unwrap(), Vec::<String>::new());
    let pg = Store::open_postgres(&url).unwrap();
    assert_eq!(hazeflow::store::differences(&first, &pg).unwrap(), Vec::<String>::new());
    // The same reads give the same answers (the transcript's reads, on the copy that went there and back).
    let keys = |s: &Store| s.read(|r| r.doc_keys(Collection::Inspections, "140100/", "", 100)).unwrap();
    assert_eq!(keys(&back), keys(&first));
    assert!(original.iter().any(|l| l.starts_with("prefix [")), "{original:?}");
    for s in [first, back, pg] {
        s.close();
    }
}

/// Right after A (at `a`, `host:port`) was cut off from the database: B (on `port_b`) leads in term 2
/// and A stops acting as the leader, each within 10 s of the cut (`what`, said with the times).
async fn b_takes_over(http: &reqwest::Client, a: &str, port_b: u16, what: &str) {
    let cut = std::time::Instant::now();
    let (role, term) = eventually("B leads", || async {
        role_of(http, port_b).await.filter(|(role, _)| role == "leader")
    })
    .await;
    let b_leads = cut.elapsed();
    eventually("A no longer acts as the leader", || async {
        role_at(http, a).await.filter(|(role, _)| role == "follower")
    })
    .await;
    let a_stepped_down = cut.elapsed();
    eprintln!(
        "{what}: B leads after {} ms, A stops leading after {} ms",
        b_leads.as_millis(),
        a_stepped_down.as_millis()
    );
    assert_eq!((role.as_str(), term), ("leader", 2));
    assert!(b_leads < Duration::from_secs(10), "{b_leads:?}");
    assert!(a_stepped_down < Duration::from_secs(10), "{a_stepped_down:?}");
}

/// A TCP relay to the database that can be cut: after [`CutRelay::cut`], the database's side of every
/// relayed connection is closed (the server ends those sessions, freeing their locks) while the
/// client's side stays open and silent, as over a cut network, and new connections hang.
struct CutRelay {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CutRelay {
    fn to(upstream: u16) -> CutRelay {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut2 = cut.clone();
        std::thread::spawn(move || {
            let mut silent = Vec::new();
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if cut2.load(Ordering::SeqCst) {
                    silent.push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    let (cut, server) = (cut2.clone(), server.try_clone().unwrap());
                    let _keep = client.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let _keep = _keep;
                        from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                        let mut buf = [0u8; 16384];
                        loop {
                            if cut.load(Ordering::SeqCst) {
                                let _ = server.shutdown(std::net::Shutdown::Both);
                                // The client's side: open and silent for as long as the test runs.
                                std::thread::sleep(Duration::from_secs(600));
                                return;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => return,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            }
        });
        CutRelay { port, cut }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_stops_leading_and_the_other_node_leads_within_ten_seconds() {
    use crate::restart::start_daemon_with;
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let url = cluster.database("cut");
    let relay = CutRelay::to(cluster.port);
    let via_relay = url.replace(&format!(":{}/", cluster.port), &format!(":{}/", relay.port));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let with_store = |url: String| move |text: String| format!("{text}\nstore:\n  url: \"{url}\"\n");
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (port_a, port_b) = (free_port(), free_port());

    // A reaches the database through the relay and leads; B reaches it directly and follows.
    let _a = start_daemon_with(dir_a.path(), port_a, &http, with_store(via_relay)).await;
    eventually("node A leads", || async {
        role_of(&http, port_a).await.filter(|(role, _)| role == "leader")
    })
    .await;
    let _b = start_daemon_with(dir_b.path(), port_b, &http, with_store(url)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(role_of(&http, port_b).await, Some(("follower".into(), 0)));

    // The network between A and the database is cut: A's calls hang, the database ends A's sessions.
    relay.cut();
    b_takes_over(&http, &format!("127.0.0.1:{port_a}"), port_b, "network cut").await;
    // A stays a follower while it cannot reach the database.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(role_of(&http, port_a).await.map(|r| r.0), Some("follower".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_primary_dies_and_its_streaming_replica_is_promoted_the_daemon_follows_the_new_primary() {
    let Some(primary) = PgCluster::start_or_skip() else { return };
    primary.database("promoted");
    let standby = primary.standby();
    // Both servers in the connection string; only the one that takes writes is used.
    let url = format!(
        "postgres://hazeflow@127.0.0.1:{},127.0.0.1:{}/promoted?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let with_pg = |url: String| move |s: &mut hazeflow::config::Settings| s.store.url = Some(url);
    let app = spawn_app_with(TempDir::new().unwrap(), clock(), with_pg(url)).await;
    eventually("the daemon leads on the primary", || async {
        let (_, h) = app.get("/healthz", None).await;
        (h["role"] == "leader").then_some(())
    })
    .await;

    let id = orange_proposed_and_signed(&app).await;

    // The primary's machine dies once the replica has everything; the replica is promoted.
    primary.wait_for_standbys();
    primary.stop_immediately();
    let died = std::time::Instant::now();
    standby.promote();
    let (_, health) = eventually("the daemon leads again, on the promoted replica", || async {
        let (status, h) = app.get("/healthz", None).await;
        (status == StatusCode::OK && h["role"] == "leader" && h["term"] != 1).then_some((status, h))
    })
    .await;
    eprintln!(
        "promotion: the daemon leads again {} ms after the primary died",
        died.elapsed().as_millis()
    );
    assert_eq!(health["term"], 2, "a new term on the new primary: {health}");

    // What was signed before is there; the lift is written to the new primary.
    let w = app.warning_of("140100").await.expect("the warning");
    assert_eq!((w["id"].as_str(), w["status"].as_str()), (Some(id.as_str()), Some("issued")), "{w}");
    app.set_clock("2026-12-02 10:00");
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/lift"), Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, shown) = app.get(&format!("/api/v1/warnings/{id}"), Some(HEAD)).await;
    assert_eq!(shown["warning"]["status"], "lifted", "{shown}");
    eprintln!("promotion: lifted {} ms after the primary died", died.elapsed().as_millis());
    app.stop().await;
    eprintln!("promotion: stopped {} ms after the primary died", died.elapsed().as_millis());
    assert!(
        standby.log().contains("database system is ready to accept connections"),
        "{}",
        standby.log()
    );
}

/// `hazeflow backup OUT` with `store.url` naming PostgreSQL takes the copy from the database (not from
/// a `.redb` file the configuration does not use): an embedded file with its events, checked, 0600;
/// `--output json` says the same as one object. `restore` into such a configuration is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hazeflow_backup_of_a_postgresql_store_takes_the_copy_from_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let url = cluster.database("backedup");
    {
        let pg = Store::open_postgres(&url).expect("the PostgreSQL store opens");
        transcript(&pg).await;
        pg.close();
    }
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("site.yaml");
    std::fs::write(
        &config,
        format!("data_dir: {}\nstore:\n  url: {url}\n", dir.path().join("data").display()),
    )
    .unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("HAZEFLOW_LOG_LEVEL", "warn")
            .env_remove("HAZEFLOW_STORE_URL")
            .env_remove("HAZEFLOW_DATA_DIR")
            .output()
            .expect("hazeflow runs")
    };
    let text = dir.path().join("text.redb");
    let out = run(&["backup".as_ref(), text.as_os_str()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        said.contains(": 3 events,") && said.contains("taken from PostgreSQL") && said.contains("its views agree with its log"),
        "{said}"
    );
    assert_eq!(std::fs::metadata(&text).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!dir.path().join("data/hazeflow.redb").exists(), "no embedded store was made");

    let json = dir.path().join("json.redb");
    let out = run(&["backup".as_ref(), json.as_os_str(), "--output".as_ref(), "json".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["events"], 3, "{v}");
    assert_eq!(v["taken"], "from PostgreSQL", "{v}");
    assert_eq!(v["views_agree"], true, "{v}");
    assert!(v["store"].as_str().is_some_and(|s| !s.contains("password")), "{v}");
    let copy = Store::open(&json).expect("the backup opens as an embedded store");
    assert_eq!(copy.read(|r| r.event_count()).unwrap(), 3);
    copy.close();

    let out = run(&["restore".as_ref(), json.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hazeflow migrate --from"), "{out:?}");
}

/// A network namespace joined to this machine by two virtual links: one to the database (`db`), which
/// the test cuts by taking its end here down, so that packets between the two sides are dropped without
/// a word (no reset, no close: as a cut cable or a dead switch), and one for the test's own HTTP
/// requests (`web`), which stays up. Needs root and `ip` (iproute2); removed when dropped.
struct NetCut {
    ns: String,
    db_link: String,
    /// This machine's and the namespace's addresses on the database link.
    db_here: String,
    db_there: String,
    /// The namespace's address on the web link.
    web_there: String,
}

impl NetCut {
    /// The namespace and its links, or `None` (said) where they cannot be made: not root, or no
    /// network namespaces on this kernel.
    fn make() -> Option<NetCut> {
        if !std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        {
            println!("SKIPPED: a real network cut needs root (network namespaces)");
            return None;
        }
        // Names and addresses of this process's own (a test binary may run twice at once).
        let id = std::process::id() % 60_000;
        let (k, j) = (id / 250 % 250 + 1, id % 250 + 1);
        let cut = NetCut {
            ns: format!("hzcut{id}"),
            db_link: format!("hzd{id}"),
            db_here: format!("10.231.{k}.{j}"),
            db_there: format!("10.232.{k}.{j}"),
            web_there: format!("10.234.{k}.{j}"),
        };
        let web_here = format!("10.233.{k}.{j}");
        let steps: Vec<Vec<String>> = [
            format!("netns add {}", cut.ns),
            format!("link add {} type veth peer name {}n", cut.db_link, cut.db_link),
            format!("link add hzw{id} type veth peer name hzw{id}n"),
            format!("link set {}n netns {}", cut.db_link, cut.ns),
            format!("link set hzw{id}n netns {}", cut.ns),
            format!("addr add {}/32 peer {} dev {}", cut.db_here, cut.db_there, cut.db_link),
            format!("addr add {web_here}/32 peer {} dev hzw{id}", cut.web_there),
            format!("link set {} up", cut.db_link),
            format!("link set hzw{id} up"),
            format!(
                "-n {} addr add {}/32 peer {} dev {}n",
                cut.ns, cut.db_there, cut.db_here, cut.db_link
            ),
            format!("-n {} addr add {}/32 peer {web_here} dev hzw{id}n", cut.ns, cut.web_there),
            format!("-n {} link set {}n up", cut.ns, cut.db_link),
            format!("-n {} link set hzw{id}n up", cut.ns),
            format!("-n {} link set lo up", cut.ns),
        ]
        .iter()
        .map(|s| s.split(' ').map(str::to_string).collect())
        .collect();
        for args in steps {
            let out = std::process::Command::new("ip").args(&args).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    println!(
                        "SKIPPED: `ip {}` failed ({}): no network namespaces here",
                        args.join(" "),
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                    return None;
                }
                Err(e) => {
                    println!("SKIPPED: `ip` (iproute2) cannot run: {e}");
                    return None;
                }
            }
        }
        Some(cut)
    }

    /// `ip` with these arguments; panics with its answer when it fails.
    fn ip(&self, args: &[&str]) {
        let out = std::process::Command::new("ip").args(args).output().expect("ip runs");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The database link goes down at this end: from now on every packet between the namespace and
    /// the database is dropped.
    fn cut(&self) {
        self.ip(&["link", "set", &self.db_link, "down"]);
    }

    /// The link comes back.
    fn mend(&self) {
        self.ip(&["link", "set", &self.db_link, "up"]);
    }
}

impl Drop for NetCut {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes the other; the namespace goes with its ends.
        let _ = std::process::Command::new("ip").args(["link", "del", &self.db_link]).output();
        let web = self.db_link.replacen("hzd", "hzw", 1);
        let _ = std::process::Command::new("ip").args(["link", "del", &web]).output();
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// The leader in a network namespace whose only way to the database is a virtual link, and the link
/// taken down: a real cut, where the kernel drops every packet and no side hears a reset or a close.
/// The database must notice by itself (the election session's keepalives and `tcp_user_timeout`) and
/// free the leader's lock, and the cut-off leader must stop by its lease, its calls hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_behind_a_network_that_drops_every_packet_stops_leading_and_the_other_node_leads_within_ten_seconds() {
    use crate::restart::{answering_at, hazeflow_command_in, start_daemon_with, write_config};
    if !PgCluster::installed_or_skip() {
        return;
    }
    let Some(net) = NetCut::make() else { return };
    let cluster = PgCluster::start_also_on(&net.db_here, &format!("{}/32", net.db_there));
    let url = cluster.database("dropped");
    let url_a = url.replace("@127.0.0.1:", &format!("@{}:", net.db_here));
    assert_ne!(url_a, url, "{url}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let web_a = format!("{}:{port_a}", net.web_there);

    // A runs in the namespace, listening on its web link, and leads; B runs here and follows.
    let config = write_config(dir_a.path(), port_a);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("127.0.0.1:{port_a}"), &web_a);
    std::fs::write(&config, format!("{text}\nstore:\n  url: \"{url_a}\"\n")).unwrap();
    let log_a = dir_a.path().join("daemon.log");
    let mut a = hazeflow_command_in(dir_a.path(), &["ip", "netns", "exec", &net.ns])
        .arg("daemon")
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_a).unwrap())
        .spawn()
        .expect("the daemon starts in the namespace");
    answering_at(&mut a, &web_a, &http, &log_a).await;
    eventually("node A leads", || async {
        role_at(&http, &web_a).await.filter(|(role, _)| role == "leader")
    })
    .await;
    let _b = start_daemon_with(dir_b.path(), port_b, &http, |text| format!("{text}\nstore:\n  url: \"{url}\"\n")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(role_of(&http, port_b).await, Some(("follower".into(), 0)));

    // The link to the database goes down: A's packets and the database's to A are dropped.
    net.cut();
    b_takes_over(&http, &web_a, port_b, "packets dropped").await;

    // The link mended: A reaches the database again and finds B leading; it follows, B keeps leading.
    net.mend();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(role_at(&http, &web_a).await.map(|r| r.0), Some("follower".into()));
    assert_eq!(role_of(&http, port_b).await, Some(("leader".into(), 2)));
    let log = std::fs::read_to_string(&log_a).unwrap_or_default();
    assert!(a.try_wait().unwrap().is_none(), "A keeps running as a follower: {log}");
}
