//! Issue 16: two daemons on one PostgreSQL during a red warning. The leader is killed (SIGKILL) while
//! its notices go out; the other node leads within 10 s, takes the lift, and every notice reaches the
//! SMTP server, those sent twice being at most the ones in flight at the kill. Message-IDs are counted
//! at a real SMTP server on a socket; the event log and the outbox are read from the database after.
//! A leader cut off from the database (its connection silent, as on a cut network) stops acting as the
//! leader, and the other node leads.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Asia::Shanghai;
use hazeflow::notify::outbox::{self, Channel, Status};
use hazeflow::store::Store;
use serde_json::Value;

use crate::common::pg::PgCluster;
use crate::crash::{CONCURRENCY, counts, settled, start_node};
use crate::helpers::*;

/// Waits until the node on `port` has the role `role`; returns its term and how long that took.
async fn until_role(http: &reqwest::Client, port: u16, role: &str, within: Duration) -> (u64, Duration) {
    let started = Instant::now();
    loop {
        if let Some((r, term)) = role_of(http, port).await
            && r == role
        {
            return (term, started.elapsed());
        }
        assert!(started.elapsed() < within, "the node on {port} is not {role} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The red forecast of Taiyuan from today, issued now.
fn red_today() -> String {
    let now = Utc::now().with_timezone(&Shanghai);
    forecast_csv(
        &now.format("%Y-%m-%d %H:%M").to_string(),
        SOURCE,
        "140100",
        &now.format("%Y-%m-%d").to_string(),
        &[260, 320, 280, 220, 150, 120, 100],
    )
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String, body: Option<String>) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(HEAD);
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("the node answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_during_a_red_warning_leaves_no_notice_lost_and_at_most_those_in_flight_sent_twice() {
    let Some(cluster) = PgCluster::start_or_skip() else { return };
    let url = cluster.database("red");
    let smtp = SmtpServer::start(0, None);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let (dir_a, dir_b) = (tempfile::TempDir::new().unwrap(), tempfile::TempDir::new().unwrap());
    let (port_a, port_b) = (free_port(), free_port());

    let mut a = start_node(dir_a.path(), port_a, smtp.port, &http, Some(&url)).await;
    let (term, _) = until_role(&http, port_a, "leader", Duration::from_secs(10)).await;
    assert_eq!(term, 1);
    let b = start_node(dir_b.path(), port_b, smtp.port, &http, Some(&url)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(role_of(&http, port_b).await, Some(("follower".into(), 0)));

    // Red for Taiyuan, forecast to and signed on the follower; the leader fans the notices out.
    let (st, body) = call(
        &http,
        reqwest::Method::POST,
        format!("http://127.0.0.1:{port_b}/api/v1/forecasts"),
        Some(red_today()),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let id = eventually("red is proposed for Taiyuan", || async {
        let (_, body) = call(
            &http,
            reqwest::Method::GET,
            format!("http://127.0.0.1:{port_b}/api/v1/warnings"),
            None,
        )
        .await;
        body["warnings"]
            .as_array()?
            .iter()
            .find(|w| w["region"] == "140100" && w["status"] == "pending" && w["level"] == "red")
            .and_then(|w| w["id"].as_str().map(str::to_string))
    })
    .await;
    let (st, body) = call(
        &http,
        reqwest::Method::POST,
        format!("http://127.0.0.1:{port_b}/api/v1/warnings/{id}/sign"),
        Some(r#"{"without_record": "本测试不涉及会商意见"}"#.into()),
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // kill -9 the leader once its notices are flowing.
    let started = Instant::now();
    while smtp.received().len() < 40 {
        assert!(started.elapsed() < Duration::from_secs(60), "the notices do not flow");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.start_kill().expect("SIGKILL");
    a.wait().await.expect("it died");
    let at_kill = smtp.received().len();
    let (term, took) = until_role(&http, port_b, "leader", Duration::from_secs(10)).await;
    eprintln!(
        "failover during delivery: B leads in term {term} {} ms after the kill",
        took.as_millis()
    );
    assert_eq!(term, 2);

    // The head lifts on the new leader; the end notices go out too.
    let (st, body) = call(
        &http,
        reqwest::Method::POST,
        format!("http://127.0.0.1:{port_b}/api/v1/warnings/{id}/lift"),
        Some(r#"{"reason":"演练结束后解除"}"#.into()),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    settled(&smtp, Duration::from_secs(180)).await;
    drop(b);

    let counts = counts(&smtp);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "{at_kill} accepted before the kill, {} distinct in all, {} sent twice",
        counts.len(),
        twice.len()
    );
    assert!(at_kill < counts.len(), "the kill came after delivery had ended");
    assert!(counts.values().all(|n| *n <= 2), "{twice:?}");
    assert!(
        twice.len() <= CONCURRENCY,
        "{} sent twice, more than the {CONCURRENCY} in flight",
        twice.len()
    );
    let subjects: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| m.parsed().subject().unwrap_or_default().to_string())
        .collect();
    assert!(
        subjects.iter().any(|s| s.contains("解除")),
        "the end notices went out: {subjects:?}"
    );

    // The database: every email of the outbox was sent, and each one reached the server; nothing
    // reached the server that the outbox does not hold; the log holds every event once.
    let store = Store::open_postgres(&url).expect("the database opens");
    let messages = store.read(outbox::all_messages).expect("the outbox reads");
    let emails: Vec<_> = messages.iter().filter(|m| m.channel == Channel::Email).collect();
    assert!(emails.len() >= 200, "only {} emails", emails.len());
    let unsent: Vec<_> = emails
        .iter()
        .filter(|m| m.status != Status::Sent)
        .map(|m| (&m.id, &m.status))
        .collect();
    assert!(unsent.is_empty(), "not sent: {unsent:?}");
    let queued: BTreeSet<&str> = emails.iter().map(|m| m.id.as_str()).collect();
    let arrived: BTreeSet<&str> = counts.keys().map(|k| k.trim_end_matches("@hazeflow")).collect();
    assert_eq!(queued, arrived, "the outbox's emails and the ones the server accepted");
    let records = store.read(|r| r.events_after(0, usize::MAX)).expect("the log reads");
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "one record per sequence number");
    let kinds: Vec<&str> = records.iter().map(|r| r.body.kind()).collect();
    eprintln!("log: {kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "assignments_made").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "assignments_ended").count(), 1, "{kinds:?}");
    assert_eq!(store.read(|r| r.verify_views()).expect("views"), Vec::<String>::new());
    store.close();
}
