//! Reloading the roster and the templates on a running daemon (the reload API and SIGHUP run the same
//! reload): a broken file is refused with its place and the old ones stay live; a good one is live for
//! the next message.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Replaces text in a file (which must contain it).
fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("the file");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("written");
}

/// Recipients and subjects of the emails received with a subject containing `marker`, sorted.
fn received_with(smtp: &SmtpServer, marker: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = smtp
        .received()
        .iter()
        .filter_map(|r| {
            let subject = r.parsed().subject().unwrap_or_default().to_string();
            subject.contains(marker).then(|| (r.to.join(","), subject))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_refuses_a_broken_roster_or_template_keeping_the_old_ones_and_puts_good_ones_live() {
    let smtp = SmtpServer::start(0, None);
    let dir = tempfile::TempDir::new().expect("a folder");
    let books = dir.path().join("playbooks");
    copy_dir(std::path::Path::new(PLAYBOOKS), &books);
    let app = spawn_app_in(dir, clock(), |s| {
        smtp_to(s, smtp.port);
        s.playbooks = books.clone();
    })
    .await;
    let roster = app.state.settings.roster.clone();
    let templates = books.join("templates/notify");

    // 15:00 orange is proposed and signed: the issue notice reaches the duty staff on the roster.
    let id = app.propose_orange_for_taiyuan().await;
    smtp.wait_for(PROPOSAL_TO.len()).await;

    // 15:05 the city edits its roster (周敏 joins the day shift, Mallory leaves it, with a typo in one
    // time) and the cancellation subject, leaving a syntax error in the lift notice. The reload is
    // refused, naming both places.
    edit(
        &roster,
        "    - id: ty-evil\n      name: \"Mallory\\r\\nBcc: evil@example.com\\r\\nX-Injected: yes <script>alert(1)</script>\"\n      role: duty_officer\n      email: mallory@ty.example.cn\n      shifts: [{ days: [weekdays], from: \"08:00\", to: \"18:00\" }]\n",
        "    - { id: ty-zhou-min, name: 周敏, role: duty_officer, email: zhou.min@ty.example.cn, shifts: [{ days: [weekdays], from: \"08:00\", to: \"1800\" }] }\n",
    );
    edit(
        &templates.join("warning_cancelled.subject.j2"),
        "【取消】",
        "【取消·请转告辖区企业】",
    );
    edit(&templates.join("warning_lifted.txt.j2"), "{{ at }}解除", "{{ at }解除");
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error");
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(
        lines[0], "not reloaded; the old playbooks, roster, templates, staff tokens and link keys stay live:",
        "{error}"
    );
    assert_eq!(
        lines[1],
        format!("{}:15:135: \"1800\" is not a time of day (HH:MM, or 24:00)", roster.display())
    );
    assert!(
        lines[2].starts_with(&format!(
            "{}:3:91: unexpected `}}`",
            templates.join("warning_lifted.txt.j2").display()
        )),
        "{error}"
    );
    assert_eq!(lines.len(), 3, "{error}");
    // As a refused playbook is: in the reload status and in the log.
    let (_, live) = app.get("/api/v1/playbooks", Some(DEPUTY)).await;
    assert_eq!(live["last_reload"]["errors"].as_array().map(Vec::len), Some(2), "{live}");
    let refusal = last_record(&app, "playbooks_reloaded");
    assert_eq!(refusal["errors"].as_array().map(Vec::len), Some(2), "{refusal}");

    // 15:10 signed: the old roster and templates are live, Mallory is told, 周敏 is not.
    app.clock.advance(chrono::Duration::minutes(5));
    app.sign(&id).await;
    smtp.wait_for(PROPOSAL_TO.len() + ISSUE_TO.len() + UPPER_TO.len()).await;
    let issued: Vec<String> = received_with(&smtp, "启动通知").into_iter().map(|(to, _)| to).collect();
    assert_eq!(issued, ["mallory@ty.example.cn", "wang.fang@ty.example.cn"]);

    // 15:15 both fixed; the reload (what SIGHUP runs) puts them live and records the new files.
    edit(&roster, "to: \"1800\"", "to: \"18:00\"");
    edit(&templates.join("warning_lifted.txt.j2"), "{{ at }解除", "{{ at }}解除");
    app.clock.advance(chrono::Duration::minutes(5));
    let versions = app.state.reload_playbooks("SIGHUP").await.expect("the reload is accepted");
    assert_eq!(
        versions,
        [
            "changzhi@2024.1",
            "datong@2024.1",
            "jincheng@2024.1",
            "jinzhong@2024.1",
            "linfen@2024.1",
            "lvliang@2024.1",
            "shanxi@2024.1",
            "shuozhou@2024.1",
            "taiyuan@2026.1",
            "xinzhou@2024.1",
            "yangquan@2024.1",
            "yuncheng@2024.1"
        ]
    );
    let reloaded = last_record(&app, "notify_reloaded");
    assert_eq!(reloaded["actor"], "SIGHUP", "{reloaded}");
    assert_eq!(reloaded["data"]["routes"], 7, "{reloaded}");
    // Reloading the same files again records no change.
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["notify"]["people"], 6, "{body}");
    assert_eq!(app.records("notify_reloaded").len(), 1);

    // 15:20 the warning is cancelled before it starts: the new roster and the new subject.
    app.clock.advance(chrono::Duration::minutes(5));
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/cancel"),
            Some(DEPUTY),
            &serde_json::json!({ "reason": "预报调整" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.state.after_change();
    // The issue and the cancellation are each reported up (信息报送).
    smtp.wait_for(PROPOSAL_TO.len() + 2 * ISSUE_TO.len() + 2 * UPPER_TO.len()).await;
    assert_eq!(
        received_with(&smtp, "取消"),
        [
            (
                "wang.fang@ty.example.cn".to_string(),
                "【取消·请转告辖区企业】太原市重污染天气橙色预警（Ⅱ级）取消通知".to_string()
            ),
            (
                "yjb@shanxi.example.cn".to_string(),
                "【预警信息报送】太原市重污染天气橙色预警取消情况报告".to_string()
            ),
            (
                "zhou.min@ty.example.cn".to_string(),
                "【取消·请转告辖区企业】太原市重污染天气橙色预警（Ⅱ级）取消通知".to_string()
            ),
        ]
    );
    app.stop().await;
}

fn last_record(app: &TestApp, kind: &str) -> Value {
    app.records(kind).pop().unwrap_or_else(|| panic!("no {kind} record"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbooks_folder_without_notice_templates_sends_the_shipped_chinese_notices() {
    let smtp = SmtpServer::start(0, None);
    let dir = tempfile::TempDir::new().expect("a folder");
    let books = dir.path().join("playbooks");
    copy_dir(std::path::Path::new(PLAYBOOKS), &books);
    std::fs::remove_dir_all(books.join("templates/notify")).expect("the notice templates are removed");
    let app = spawn_app_in(dir, clock(), |s| {
        smtp_to(s, smtp.port);
        s.playbooks = books.clone();
    })
    .await;

    // 15:00 orange is proposed: the duty staff and the signer get the shipped proposal notice.
    app.propose_orange_for_taiyuan().await;
    let got = smtp.wait_for(PROPOSAL_TO.len()).await;
    for r in &got {
        let m = r.parsed();
        assert_eq!(m.subject(), Some("【待签发】太原市重污染天气橙色预警（Ⅱ级）发布建议"));
        assert_eq!(m.html_body_count(), 1);
    }

    // A reload without the folder keeps them; a broken override is refused by name.
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notify = books.join("templates/notify");
    std::fs::create_dir_all(&notify).expect("the folder");
    std::fs::write(notify.join("warning_lifted.txt.j2"), "{{ at }解除\n").expect("an override");
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.contains(&format!("{}:1:", notify.join("warning_lifted.txt.j2").display())),
        "{error}"
    );
    app.stop().await;
}
