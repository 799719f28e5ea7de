//! Chinese for every person who reads it (issue 12 item 5): a whole episode on the real daemon — issue in three
//! cities, a change of level, a cancellation before the start and a lift — then every page duty staff, enterprises
//! and the public read (dashboard pages, a playbook check with errors, acknowledgement pages, `/public`) and every
//! mail the episode produced, with no English sentence in any of them.
//!
//! An English sentence is three or more ASCII words in a stretch of text without Chinese in it. Codes are not
//! words: tokens with digits or `@ . / : _ = # -` (ids, times, addresses, file paths, `taiyuan@2026.1`), and the
//! names in [`ALLOWED`].

use reqwest::StatusCode;

use crate::helpers::*;

/// Words that may stand in Chinese text: units, pollutants, formats and the system's name.
const ALLOWED: &[&str] = &[
    "AQI", "PM", "CAP", "XML", "Atom", "NOx", "VOCs", "hazeflow", "YAML", "CSV", "JSON", "SMTP", "UTC", "ID", "h", "t",
];

/// The English sentences in a text, with the stretch they were found in.
fn english_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stretch in text.split(|c: char| !c.is_ascii() || c == '\n') {
        let words = stretch
            .split_ascii_whitespace()
            .map(|w| w.trim_matches(|c: char| "(),.;:!?\"'`<>[]{}|*".contains(c)))
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()))
            .filter(|w| !ALLOWED.contains(w))
            .count();
        if words >= 3 {
            out.push(stretch.trim().to_string());
        }
    }
    out
}

/// The text a reader sees of an HTML page: no tags, scripts, styles or comments; entities decoded.
fn visible_text(html: &str) -> String {
    let mut s = html.to_string();
    // A form's textarea holds what the user pasted (a playbook's YAML), not the page's words.
    for (open, close) in [
        ("<script", "</script>"),
        ("<style", "</style>"),
        ("<!--", "-->"),
        ("<textarea", "</textarea>"),
    ] {
        while let Some(a) = s.find(open) {
            let b = s[a..].find(close).map_or(s.len(), |b| a + b + close.len());
            s.replace_range(a..b, "\n");
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push('\n');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first link of a page whose path starts with `prefix`.
fn link(html: &str, prefix: &str) -> Option<String> {
    html.replace("&#x2f;", "/")
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.starts_with(prefix))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_mail_of_an_episode_is_chinese_throughout() {
    let app = spawn_app(&[]).await;
    // Issue: Taiyuan orange, Jinzhong yellow, Linfen red, signed by the head.
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN, JINZHONG, LINFEN]).await;
    for id in &ids {
        app.sign(id).await;
    }
    // Change: Taiyuan goes red.
    app.submit_forecast(&forecast_of(TAIYUAN, [120, 260, 320, 280, 220, 150, 100]))
        .await;
    let taiyuan = &ids[0];
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.warning_of(TAIYUAN).await.is_none_or(|w| w["pending_change"].is_null()) {
        assert!(std::time::Instant::now() < until, "Taiyuan's change is proposed");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    app.sign(taiyuan).await;
    // Cancel Jinzhong before its start; lift Taiyuan once in force.
    let post = |path: String| {
        app.http
            .post(app.url(&path))
            .bearer_auth(HEAD)
            .json(&serde_json::json!({ "reason": "会商研判空气质量好转" }))
            .send()
    };
    let r = post(format!("/api/v1/warnings/{}/cancel", ids[1])).await.expect("answers");
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    app.state.engine.clock.set(shanghai("2026-12-02 10:00"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.warning_of(TAIYUAN).await.is_none_or(|w| w["status"] != "active") {
        assert!(std::time::Instant::now() < until, "Taiyuan's warning starts");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let r = post(format!("/api/v1/warnings/{taiyuan}/lift")).await.expect("answers");
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());

    // Every page.
    let mut read: Vec<(String, String)> = Vec::new();
    let (_, _, login) = app.page("/login", None).await;
    read.push(("/login".into(), visible_text(&login)));
    let session = app.login(HEAD).await;
    let mut paths: Vec<String> = ["/", "/consultations", "/list", "/list/reports", "/playbooks"]
        .map(String::from)
        .to_vec();
    paths.extend(ids.iter().map(|id| format!("/warnings/{id}")));
    let (_, _, list) = app.page("/list", Some(&session)).await;
    paths.push(link(&list, "/list/9").expect("an enterprise's page"));
    // The drills page, the latest consultation's record (会商意见) and each approval form (审批表).
    paths.push("/drills".into());
    let api = |path: &str| {
        let url = app.url(path);
        let http = app.http.clone();
        async move {
            let r = http.get(url).bearer_auth(HEAD).send().await.expect("answers");
            r.json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let consultations = api("/api/v1/consultations?limit=1").await;
    let seq = consultations["consultations"][0]["seq"].as_u64().expect("a consultation");
    paths.push(format!("/consultations/{seq}"));
    let forms = api("/api/v1/approvals").await;
    let forms = forms["approvals"].as_array().cloned().unwrap_or_default();
    assert!(!forms.is_empty(), "the episode's decisions opened approval forms");
    paths.extend(forms.iter().filter_map(|f| f["id"].as_str()).map(|id| format!("/approvals/{id}")));
    for path in &paths {
        let (status, _, html) = app.page(path, Some(&session)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        read.push((path.clone(), visible_text(&html)));
    }
    // The playbook check page with errors (a misspelt key, a laxer lift window, a bad CAP sender).
    let (_, _, books) = app.page("/playbooks", Some(&session)).await;
    let csrf = hidden_field(&books, "csrf").expect("a CSRF token");
    let original = std::fs::read_to_string(format!("{PLAYBOOKS}/taiyuan.yaml")).expect("taiyuan.yaml");
    let broken = original.replace("scope: \"140100\"\n", "scope: \"140100\"\nlift_window_hours: 24\nlift_windows: 3\n");
    let (_, _, check) = app
        .post_form(
            "/playbooks/check",
            Some(&session),
            &[("csrf", &csrf), ("file", "taiyuan.yaml"), ("yaml", &broken)],
        )
        .await;
    let shown = visible_text(&check);
    assert!(shown.contains("taiyuan.yaml:"), "the check shows its errors: {shown}");
    read.push(("/playbooks/check".into(), shown));
    let (_, _, public) = app.page("/public", None).await;
    read.push(("/public".into(), visible_text(&public)));
    // Every mail of the episode, once all are written: subject, From name, text and HTML.
    let dir = app.state.settings.mail.dir_in(&app.state.settings.data_dir);
    let emails = || {
        app.state
            .engine
            .store
            .read(hazeflow::notify::outbox::all_messages)
            .expect("the outbox reads")
            .iter()
            .filter(|m| m.channel == hazeflow::notify::outbox::Channel::Email)
            .count()
    };
    let files = || std::fs::read_dir(&dir).map_or(0, |d| d.count());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while files() < emails() {
        assert!(std::time::Instant::now() < until, "{} of {} mails written", files(), emails());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut mails = 0;
    let mut ack_links = Vec::new();
    for path in std::fs::read_dir(&dir)
        .expect("the mail folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
    {
        let bytes = std::fs::read(&path).expect("a mail");
        let m = mail_parser::MessageParser::default().parse(&bytes).expect("a parsable mail");
        let from = m
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .unwrap_or_default()
            .to_string();
        let body = m.body_text(0).unwrap_or_default().to_string();
        if ack_links.len() < 3
            && let Some(at) = body.find("/ack/")
        {
            ack_links.push(body[at..].split_whitespace().next().unwrap_or_default().to_string());
        }
        let mut text = format!("{}\n{from}\n{body}\n", m.subject().unwrap_or_default());
        text.push_str(&visible_text(&m.body_html(0).unwrap_or_default()));
        read.push((path.display().to_string(), text));
        mails += 1;
    }
    // The enterprises' acknowledgement pages, from the links in their notices.
    assert!(!ack_links.is_empty(), "the enterprises were sent links");
    for path in &ack_links {
        // The warning is over by now: the page says so (410), in Chinese too.
        let (status, _, html) = app.page(path, None).await;
        assert!(status == StatusCode::OK || status == StatusCode::GONE, "{path}: {status}");
        read.push((path.clone(), visible_text(&html)));
    }
    assert!(mails > 10, "the episode mailed duty staff and enterprises: {mails}");

    let found: Vec<String> = read
        .iter()
        .flat_map(|(what, text)| english_sentences(text).into_iter().map(move |s| format!("{what}: {s}")))
        .collect();
    assert!(found.is_empty(), "English in Chinese pages and mails:\n{}", found.join("\n"));
    app.stop().await;
}

#[test]
fn the_checker_finds_english_sentences_and_lets_codes_and_units_pass() {
    assert_eq!(
        english_sentences("触发条件：AQI>200 for 1 day or more"),
        ["AQI>200 for 1 day or more"]
    );
    assert_eq!(english_sentences("说明：forecast meets orange"), ["forecast meets orange"]);
    assert!(english_sentences("日AQI>200持续48小时，PM2.5 为首要污染物，taiyuan@2026.1，见 /public/cap/x.xml").is_empty());
    assert!(english_sentences("本邮件由重污染天气应急系统（hazeflow）自动发送").is_empty());
    assert!(english_sentences("太原市.yaml:7:20: 解除时长 24 h 短于上级的 36 h").is_empty());
}

/// A forecast pasted on the dashboard and refused is explained in Chinese, each at its place: the parser's
/// English reasons (CLI, API, logs) are not shown to duty staff after the Chinese lead-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_refused_on_the_dashboard_says_why_in_chinese_at_its_place() {
    let app = spawn_app(&[]).await;
    let session = app.login(HEAD).await;
    let head = "# issued_at: 2026-12-01 14:00\n";
    let good_row = format!("{TAIYUAN},2026-12-02,180\n");
    let eleven: String = (1..=11).map(|d| format!("{TAIYUAN},2026-12-{d:02},180\n")).collect();
    let cases: Vec<(String, &str)> = vec![
        (format!("{head}region,date,aqi\n{TAIYUAN},2026-13-02,180\n"), ":3:"),
        (format!("{head}region,date,aqi\n{TAIYUAN},2026-12-02,high\n"), ":3:"),
        (format!("{head}region,date,aqi,wind\n{good_row}"), ":2:"),
        (format!("region,date,aqi\n{good_row}"), "dashboard.csv"),
        (format!("{head}region,date,aqi\n{TAIYUAN},2026-12-02,600\n"), ":3:"),
        (format!("{head}region,date,aqi\n{TAIYUAN},2026-12-02,-5\n"), ":3:"),
        (format!("{head}region,date,aqi\n{TAIYUAN},2026-12-02,180.5\n"), ":3:"),
        (format!("{head}region,date,aqi\n{good_row}{TAIYUAN},2026-12-04,180\n"), ":4:"),
        (format!("{head}region,date,aqi\n{good_row}{good_row}"), ":4:"),
        (format!("{head}region,date,aqi\n{eleven}"), ":3:"),
        (format!("{head}region,date\n{TAIYUAN},2026-12-02\n"), ":2:"),
        (format!("{head}region,aqi\n{TAIYUAN},180\n"), ":2:"),
        (format!("{head}region,date,aqi\n{TAIYUAN},2026-12-02\n"), ":3:"),
        (format!("{head}region,date,aqi,primary\n{TAIYUAN},2026-12-02,180,smoke\n"), ":3:"),
        (format!("{head}region,date,aqi,pm25\n{TAIYUAN},2026-12-02,180,-3\n"), ":3:"),
        (format!("{head}region,date,aqi,pm25\n{TAIYUAN},2026-12-02,180,99999\n"), ":3:"),
        (format!("{head}region,date,aqi\n\"{TAIYUAN}\",2026-12-02,180\n"), ":3:"),
        (format!("{head}region,date,aqi\n"), "dashboard.csv"),
        (format!("# issued_at: yesterday\nregion,date,aqi\n{good_row}"), ":1:"),
        (format!("# issued_at: 2026-12-09 14:00\nregion,date,aqi\n{good_row}"), ":1:"),
        (format!("# issued_at: 2026-11-01 14:00\nregion,date,aqi\n{good_row}"), ":1:"),
        (format!("{head}region,date,aqi\n999999,2026-12-02,180\n"), ":3:"),
        (format!("{head}region,date,aqi\n14010,2026-12-02,180\n"), ":3:"),
        (r#"{"issued_at": "2026-12-01 14:00", "values": [}"#.to_string(), ":1:"),
        (
            r#"{"issued_at": "2026-12-01 14:00", "values": [{"region": "140100", "date": "2026-12-02", "aqi": "x"}]}"#.to_string(),
            "values[0].aqi",
        ),
        (
            r#"{"issued_at": "2026-12-01 14:00", "values": [{"region": "140100", "date": "2026-12-02", "wind": 3}]}"#.to_string(),
            "values[0].wind",
        ),
        (
            r#"{"issued_at": "2026-12-01 14:00", "values": [{"date": "2026-12-02", "aqi": 3}]}"#.to_string(),
            "values[0]",
        ),
        (
            r#"{"issued_at": "2026-12-01 14:00", "values": [{"region": 140100, "date": 2, "aqi": 3}]}"#.to_string(),
            "values[0].date",
        ),
        (
            r#"{"issued_at": "2026-12-01 14:00", "values": [{"region": "140100", "date": "2026-12-02", "aqi": 1, "aqi": 2}]}"#.to_string(),
            "values[0].aqi",
        ),
    ];
    let mut found = Vec::new();
    for (text, place) in &cases {
        let (_, _, page) = app.page("/consultations", Some(&session)).await;
        let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
        let (status, headers, _) = app
            .post_form("/forecasts", Some(&session), &[("csrf", &csrf), ("name", ""), ("forecast", text)])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{text}");
        let flash = set_cookie(&headers, "hazeflow_flash").expect("a message for the next page");
        let (_, _, shown) = app
            .page("/consultations", Some(&format!("{session}; hazeflow_flash={}", flash.value)))
            .await;
        let shown = visible_text(&shown);
        let line = shown
            .lines()
            .find(|l| l.contains("预报被拒绝"))
            .unwrap_or_else(|| panic!("the refusal is shown for {text:?}: {shown}"))
            .to_string();
        assert!(line.contains(place), "the place {place} is kept: {line}");
        if !english_sentences(&line).is_empty() || line.split("：").nth(1).is_some_and(|m| !m.contains(|c: char| !c.is_ascii())) {
            found.push(format!("{text:?}\n  → {line}"));
        }
    }
    assert!(found.is_empty(), "English in the dashboard's refusals:\n{}", found.join("\n"));
    app.stop().await;
}

/// The flash of a refused action on the dashboard, as the next page shows it: the line with `lead`.
async fn refusal(app: &TestApp, session: &str, path: &str, back: &str, lead: &str) -> String {
    let (_, _, page) = app.page(back, Some(session)).await;
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    let (status, headers, _) = app
        .post_form(path, Some(session), &[("csrf", &csrf), ("back", back), ("reason", "会商研判")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
    let flash = set_cookie(&headers, "hazeflow_flash").expect("a message for the next page");
    let (_, _, shown) = app.page(back, Some(&format!("{session}; hazeflow_flash={}", flash.value))).await;
    let shown = visible_text(&shown);
    shown
        .lines()
        .find(|l| l.contains(lead))
        .unwrap_or_else(|| panic!("{path}: the refusal {lead} is shown: {shown}"))
        .to_string()
}

/// Sign, lift, cancel and reload refused on the dashboard say why in Chinese: no authority (the role needed
/// named), nothing to sign, a warning that has started or is over, one that is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_refused_on_the_dashboard_say_why_in_chinese() {
    let app = spawn_app(&[]).await;
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN, JINZHONG]).await;
    let duty = app.login(DUTY).await;
    let head = app.login(HEAD).await;
    let mut shown = Vec::new();
    // A duty officer may not sign, lift, cancel or reload.
    for (action, lead) in [("sign", "签发未成功"), ("lift", "解除未成功"), ("cancel", "取消未成功")] {
        let line = refusal(&app, &duty, &format!("/warnings/{}/{action}", ids[0]), "/", lead).await;
        assert!(line.contains("duty_officer"), "the role is named: {line}");
        shown.push(line);
    }
    shown.push(refusal(&app, &duty, "/playbooks/reload", "/playbooks", "未重新载入").await);
    // Signed twice; a warning that is not there.
    app.sign(&ids[0]).await;
    shown.push(refusal(&app, &head, &format!("/warnings/{}/sign", ids[0]), "/", "签发未成功").await);
    shown.push(refusal(&app, &head, "/warnings/no-such-warning/sign", "/", "签发未成功").await);
    // Cancelled, then lifted; a started warning cancelled.
    app.sign(&ids[1]).await;
    let r = app
        .http
        .post(app.url(&format!("/api/v1/warnings/{}/cancel", ids[1])))
        .bearer_auth(HEAD)
        .json(&serde_json::json!({ "reason": "会商研判空气质量好转" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    shown.push(refusal(&app, &head, &format!("/warnings/{}/lift", ids[1]), "/", "解除未成功").await);
    app.state.engine.clock.set(shanghai("2026-12-02 10:00"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.warning_of(TAIYUAN).await.is_none_or(|w| w["status"] != "active") {
        assert!(std::time::Instant::now() < until, "Taiyuan's warning starts");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    shown.push(refusal(&app, &head, &format!("/warnings/{}/cancel", ids[0]), "/", "取消未成功").await);
    // After the lead-in and the kind of refusal, the reason itself is Chinese too.
    let reason = |l: &str| {
        let rest = l.split_once('：').map_or(l, |(_, r)| r);
        ["无权操作：", "当前状态不允许此操作：", "未找到："]
            .iter()
            .find_map(|k| rest.strip_prefix(k))
            .unwrap_or(rest)
            .to_string()
    };
    let english: Vec<&String> = shown
        .iter()
        .filter(|l| !english_sentences(l).is_empty() || reason(l).is_ascii())
        .collect();
    assert!(
        english.is_empty(),
        "English in the dashboard's refusals:\n{english:#?}\nall:\n{shown:#?}"
    );
    app.stop().await;
}
