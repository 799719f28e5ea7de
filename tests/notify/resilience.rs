//! Nothing lost, nothing twice: the SMTP server down, the daemon restarted, a message that cannot be
//! delivered.

use std::collections::BTreeMap;

use chrono::Duration;
use hazeflow::config::WebhookEndpoint;
use hazeflow::notify::outbox::{self, Channel, OutboxMessage, Outcome, Recipient, Status};
use serde_json::json;

use crate::helpers::*;

/// Counts received emails by Message-ID.
fn counts(received: &[Received]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in received {
        *out.entry(r.message_id()).or_insert(0) += 1;
    }
    out
}

/// Every queued message reached the SMTP server exactly once, under its own Message-ID.
/// A daemon mailing `smtp` with a roster of `people` duty officers in Taiyuan, `in_flight` messages
/// sent and unrecorded at most over `sessions` SMTP sessions, after an orange proposal for Taiyuan
/// (a mail to each officer and the signer).
async fn proposal_to_many(smtp: &SmtpServer, people: usize, in_flight: usize, sessions: u32) -> TestApp {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("big-roster.yaml");
    std::fs::write(&path, big_roster(people)).unwrap();
    let port = smtp.port;
    let app = spawn_app_in(dir, clock(), move |s| {
        smtp_to(s, port);
        s.roster = path;
        s.mail.concurrency = in_flight;
        s.mail.smtp.pool_size = sessions;
    })
    .await;
    app.propose_orange_for_taiyuan().await;
    app
}

fn each_arrived_once(smtp: &SmtpServer, all: &[OutboxMessage]) {
    let c = counts(&smtp.received());
    assert_eq!(c.len(), all.len(), "every message arrived");
    assert!(c.values().all(|k| *k == 1), "none twice: {c:?}");
    let want: std::collections::BTreeSet<String> = all.iter().map(|m| format!("{}@hazeflow", m.id)).collect();
    assert_eq!(c.keys().cloned().collect::<std::collections::BTreeSet<_>>(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_smtp_server_down_for_a_while_every_message_arrives_once_after_it_returns() {
    // 15:00: the SMTP server is down (nothing listens on its port).
    let port = free_port();
    let app = spawn_app(|s| smtp_to(s, port)).await;
    let id = app.propose_orange_for_taiyuan().await;
    app.sign(&id).await;
    let n = PROPOSAL_TO.len() + ISSUE_TO.len() + UPPER_TO.len();
    // Every message has had its first attempt, failed, and waits 30 s (mail.retry.base_secs).
    eventually("every message has failed once", || async {
        let all = app.outbox();
        (all.len() == n
            && all
                .iter()
                .all(|m| m.status == Status::Pending && m.attempts == 1 && m.last_error.is_some()))
        .then_some(())
    })
    .await;
    // Nothing happens before the backoff is over.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(app.outbox().iter().all(|m| m.attempts == 1));

    // 15:02: the server is back on the same port; the retries go through.
    let smtp = SmtpServer::start(port, None);
    app.clock.advance(Duration::minutes(2));
    let got = smtp.wait_for(n).await;
    let all = app.settled(n).await;
    // Give a duplicate the chance to show up.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let got = smtp.received().len().max(got.len());
    assert_eq!(got, n, "each message arrives once");
    assert!(counts(&smtp.received()).values().all(|c| *c == 1));
    for m in &all {
        let log = app.state.engine.store.read(|r| outbox::attempts(r, &m.id)).unwrap();
        assert_eq!(
            log.iter().map(|a| a.outcome).collect::<Vec<_>>(),
            vec![Outcome::Retry, Outcome::Sent],
            "{}",
            m.id
        );
        assert!(log[0].error.as_deref().is_some_and(|e| e.contains("SMTP")), "{:?}", log[0]);
    }
    app.stop().await;
}

/// A roster whose Taiyuan day shift has `n` duty officers.
fn big_roster(n: usize) -> String {
    let mut out = String::from(
        "notify:\n  proposed: { to: [duty, signer], template: warning_proposed }\n  issued: { to: [duty], template: warning_issued }\n  delivery_failed: { to: [duty], template: delivery_failed }\nregions:\n  \"140100\":\n    - { id: ty-deputy, name: 赵建国, role: deputy_head, email: zhao.jianguo@ty.example.cn }\n",
    );
    for i in 0..n {
        out.push_str(&format!(
            "    - {{ id: ty-duty-{i:02}, name: 值班员{i:02}, role: duty_officer, email: duty{i:02}@ty.example.cn, shifts: [{{ days: [daily], from: \"00:00\", to: \"00:00\" }}] }}\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_delivery_loses_nothing_and_sends_nothing_twice() {
    let smtp = SmtpServer::start(0, None);
    let roster = big_roster(40);
    let tweak = |roster_path: std::path::PathBuf, port: u16| {
        move |s: &mut hazeflow::config::Settings| {
            smtp_to(s, port);
            s.roster = roster_path;
            s.mail.rate_per_sec = 20.0; // two seconds of delivery for 41 messages
            s.mail.concurrency = 2;
        }
    };
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("big-roster.yaml");
    std::fs::write(&path, &roster).unwrap();
    let app = spawn_app_in(dir, clock(), tweak(path.clone(), smtp.port)).await;
    app.propose_orange_for_taiyuan().await;
    let n = 41;
    eventually("all messages are queued", || async { (app.outbox().len() == n).then_some(()) }).await;

    // Some are out, most are not: stop the daemon (SIGTERM) and start it again on the same folder.
    smtp.wait_for(5).await;
    let dir = app.stop().await;
    let before = smtp.received().len();
    assert!(before < n, "the restart must come mid-delivery ({before} of {n} were out)");
    let app = spawn_app_in(dir, clock(), tweak(path, smtp.port)).await;
    let all = app.settled(n).await;
    smtp.wait_for(n).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;

    each_arrived_once(&smtp, &all);
    // Connections are pooled: two sending slots per run, not one session per message.
    assert!(smtp.sessions() <= 4, "{} SMTP sessions for {n} messages", smtp.sessions());
    // A clean stop leaves nothing interrupted: one attempt per message.
    assert!(
        all.iter().all(|m| m.attempts == 1),
        "{:?}",
        all.iter().map(|m| (&m.id, m.attempts)).collect::<Vec<_>>()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_messages_in_flight_than_smtp_sessions_share_the_pools_sessions() {
    // Eight messages may be sent and unrecorded at once (`mail.concurrency`), over at most two SMTP
    // sessions (`mail.smtp.pool_size`): the mail server never sees a third connection.
    let smtp = SmtpServer::start(0, None);
    let app = proposal_to_many(&smtp, 40, 8, 2).await;
    let n = 41;
    let all = app.settled(n).await;
    smtp.wait_for(n).await;
    each_arrived_once(&smtp, &all);
    assert!(smtp.sessions() <= 2, "{} SMTP sessions with a pool of 2", smtp.sessions());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_fails_for_good_alerts_the_duty_staff_once() {
    // A webhook endpoint that refuses everything with 400: no retry helps.
    let hook = WebhookReceiver::start_failing(usize::MAX, axum::http::StatusCode::BAD_REQUEST).await;
    let app = spawn_app(|s| {
        s.webhooks.endpoints.push(WebhookEndpoint {
            id: "sms".into(),
            url: hook.url.clone(),
            events: vec!["proposed".into()],
            regions: vec![],
            format: Default::default(),
            secret_env: None,
            secret_file: None,
            secret: Some(hazeflow::config::Secret::new("k3y")),
            ca_file: None,
        });
    })
    .await;
    app.propose_orange_for_taiyuan().await;
    // 3 proposal emails + 1 webhook, which fails → 2 alerts to the duty staff on shift.
    let all = eventually("the alert is sent", || async {
        let all = app.outbox();
        (all.len() == 6 && all.iter().all(|m| matches!(m.status, Status::Sent | Status::Failed))).then_some(all)
    })
    .await;
    let failed: Vec<&OutboxMessage> = all.iter().filter(|m| m.status == Status::Failed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].channel, Channel::Webhook);
    assert!(failed[0].last_error.as_deref().is_some_and(|e| e.contains("HTTP 400")));
    let alerts: Vec<&OutboxMessage> = all.iter().filter(|m| m.template == "delivery_failed").collect();
    let mut to: Vec<&str> = alerts.iter().map(|m| m.recipient.address.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["mallory@ty.example.cn", "wang.fang@ty.example.cn"]);
    assert!(alerts.iter().all(|m| m.cause == failed[0].id));
    // Once: more time and more wake-ups raise nothing more.
    app.clock.advance(Duration::minutes(30)); // before the 16:00 consultation
    app.state.after_change();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(app.outbox().len(), 6);
    let records = app.state.engine.store.read(|r| r.events_after(0, 10_000)).unwrap();
    assert_eq!(records.iter().filter(|r| r.body.kind() == "notify_delivery_failed").count(), 1);
    // The alert reads right.
    let eml = std::fs::read(app.state.settings.data_dir.join("mail").join(format!("{}.eml", alerts[0].id))).unwrap();
    let m = mail_parser::MessageParser::default().parse(&eml).unwrap();
    assert_eq!(m.subject(), Some("【投递失败】致sms的通知未能送达，请电话通知"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queuing_the_same_cause_twice_is_one_message() {
    let app = spawn_app(|_| {}).await;
    let now = app.clock.now();
    let msg = OutboxMessage::new(
        "99-ty-wang-fang-email",
        Channel::Email,
        Recipient {
            key: "ty-wang-fang".into(),
            name: "王芳".into(),
            address: "wang.fang@ty.example.cn".into(),
        },
        "warning_issued",
        json!({ "event": "issued", "region_name": "太原市", "level_name": "橙色预警", "response": "Ⅱ级", "recipient": { "name": "王芳" } }),
        "140100-20261202-1",
        None,
        now,
    );
    for _ in 0..2 {
        let m = msg.clone();
        app.state.engine.store.write(move |tx| outbox::enqueue(tx, m)).await.unwrap();
    }
    app.state.after_change();
    let all = app.settled(1).await;
    assert_eq!(all[0].id, "99-ty-wang-fang-email");
    // And once sent, queuing it again does not bring it back.
    let m = msg.clone();
    app.state.engine.store.write(move |tx| outbox::enqueue(tx, m)).await.unwrap();
    let again = app
        .state
        .engine
        .store
        .read(|r| outbox::message(r, "99-ty-wang-fang-email"))
        .unwrap()
        .unwrap();
    assert_eq!((again.status, again.attempts), (Status::Sent, 1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_offers_pipelining_gets_each_envelope_with_its_mail_from_and_every_message_intact() {
    // A server offering PIPELINING (RFC 2920) gets RCPT TO and DATA with each MAIL FROM (two round
    // trips a message instead of four); one that does not gets the commands one at a time. Either
    // way every message arrives once, byte for byte as rendered, over the pool's two sessions.
    for offered in [true, false] {
        let smtp = SmtpServer::start_with(0, None, offered);
        let app = proposal_to_many(&smtp, 20, 6, 2).await;
        let n = 21;
        let all = app.settled(n).await;
        let got = smtp.wait_for(n).await;
        each_arrived_once(&smtp, &all);
        for r in &got {
            let m = r.parsed();
            assert!(m.subject().is_some_and(|s| s.starts_with("【待签发】")), "{:?}", m.subject());
            assert!(m.body_text(0).is_some_and(|t| t.contains("太原市")), "the body arrived whole");
        }
        let pipelined = smtp.pipelined();
        if offered {
            assert_eq!(pipelined, n, "every transaction pipelined");
        } else {
            assert_eq!(pipelined, 0, "nothing sent ahead to a server that does not offer it");
        }
        app.stop().await;
    }
}
