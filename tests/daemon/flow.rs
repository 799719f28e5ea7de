//! The flow of an episode, as duty staff live it: a forecast arrives, the consultation proposes a
//! level, the right person signs, the warning starts, a worse forecast upgrades it, a clean one
//! lifts it after the lift window. Directives and playbook reloads on a running daemon.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Taiyuan (太原市), governed by playbooks/taiyuan.yaml: yellow/orange signed by a deputy head, red
/// by the head, lifted after 36 h below the level.
const TAIYUAN: &str = "140100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_in_the_inbox_becomes_an_orange_warning_that_is_signed_upgraded_to_red_and_lifted_after_the_lift_window() {
    // 2026-12-01 15:00: the forecast centre drops its forecast into the inbox: Taiyuan above 150 for
    // four days from tomorrow, above 200 on two of them.
    let app = spawn_app(clock()).await;
    let orange = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    app.drop_in_inbox("taiyuan-20261201-1400.csv", &orange);

    // → a consultation is held on it and proposes orange, awaiting a deputy head's signature.
    let w = eventually("the consultation proposes a warning for Taiyuan", || async {
        app.warning_of(TAIYUAN).await
    })
    .await;
    assert_eq!(
        (w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()),
        (Some("pending"), Some("orange"), Some(true)),
        "{w}"
    );
    assert_eq!(w["playbook"], "taiyuan@2026.1");
    let id = w["id"].as_str().expect("an id").to_string();
    assert_eq!(id, "140100-20261201-1");
    let (status, body) = app.get("/api/v1/consultations", Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK);
    let held = &body["consultations"][0];
    assert_eq!(held["trigger"], "forecast received", "{held}");
    let assessment = held["assessments"]
        .as_array()
        .expect("assessments")
        .iter()
        .find(|a| a["region"] == TAIYUAN)
        .expect("Taiyuan assessed")
        .clone();
    assert_eq!(assessment["level"], "orange", "{assessment}");
    assert!(
        assessment["rule"].as_str().is_some_and(|r| r.contains("200") || r.contains("150")),
        "the rule that fired is named: {assessment}"
    );
    let orange_id = assessment["forecast_id"].as_str().expect("the forecast used").to_string();
    assert_eq!(files_in(&app.inbox().join("processed")), ["taiyuan-20261201-1400.csv"]);
    assert!(files_in(&app.inbox()).is_empty(), "the inbox is empty again");

    // 15:05: the duty officer tries to sign: refused, and nothing changes.
    app.set_clock("2026-12-01 15:05");
    let seq = app.last_seq().await;
    let before = app.warnings().await;
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"],
        "role \"duty_officer\" may not sign a orange warning (needs deputy_head)"
    );
    assert_eq!(app.last_seq().await, seq, "a refused signature is not recorded");
    assert_eq!(app.warnings().await, before);

    // 15:10: the deputy head signs → issued for 00:00 of the run's first day (12-02), less than the 24 h lead
    // time ahead: the lead time says how early to announce, it never postpones the start; the record says so.
    // The forecast shows 48 h of clean air from 12-06 (Taiyuan's lift window): the lift is decided with it.
    app.set_clock("2026-12-01 15:10");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!(
        (w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()),
        (Some("issued"), Some("orange"), Some(false)),
        "{w}"
    );
    let start: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).expect("a start");
    assert_eq!(start, shanghai("2026-12-02 00:00"), "自12月2日0时起");
    assert_eq!(w["lead_missed"], true, "{w}");
    let lift: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["next"]["at"].clone()).expect("a decided lift");
    assert_eq!((lift, &w["next"]["level"]), (shanghai("2026-12-06 00:00"), &Value::Null), "{w}");

    // 2026-12-03 01:00, past the start: the clock tick makes it active.
    app.set_clock("2026-12-03 01:00");
    assert!(start <= app.clock.now());
    eventually("the warning starts", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;

    // 01:05: a worse forecast (above 300 today, above 200 for four days) calls for red, which only the head may
    // sign; the decided lift no longer holds, and the orange stays in force meanwhile.
    app.set_clock("2026-12-03 01:05");
    let red = forecast_csv(
        "2026-12-03 00:30",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-03",
        &[260, 320, 280, 220, 150, 120, 100],
    );
    app.drop_in_inbox("taiyuan-20261203-0030.csv", &red);
    let w = eventually("the consultation proposes red", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["pending_change"]["level"] == "red")
    })
    .await;
    assert_eq!(
        (w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()),
        (Some("active"), Some("orange"), Some(true)),
        "{w}"
    );
    assert_eq!(w["next"], Value::Null, "the lift of 12-06 is withdrawn: {w}");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "role \"deputy_head\" may not sign a red warning (needs head)");
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(HEAD),
            &json!({ "role": "head", "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!(
        (w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()),
        (Some("active"), Some("red"), Some(false)),
        "red at once: its day has begun: {w}"
    );
    let lift: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["next"]["at"].clone()).expect("a decided lift");
    assert_eq!(lift, shanghai("2026-12-07 00:00"), "the run ends with 12-06: {w}");

    // 02:00: a clean forecast from today: the air is below every level for more than 48 h from 12-03 00:00,
    // which has passed: lifted at once.
    app.set_clock("2026-12-03 02:00");
    let clean = forecast_csv(
        "2026-12-03 01:45",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-03",
        &[90, 80, 70, 60, 60, 60, 60],
    );
    app.drop_in_inbox("taiyuan-20261203-0145.csv", &clean);
    let w = eventually("the warning is lifted", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "lifted")
    })
    .await;
    let ended: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["ended_at"].clone()).expect("an end");
    assert_eq!(
        ended,
        shanghai("2026-12-03 02:00"),
        "lifted when the lift was decided, its time having passed"
    );

    // The history tells the whole story, in order, with who did what and on which forecast (the timeline
    // updates aside).
    let history = history_of(&app, &id).await;
    let story: Vec<(String, String, Option<String>)> = history
        .iter()
        .filter(|r| !matches!(r["event"]["kind"].as_str(), Some("replanned" | "extended")))
        .map(|r| {
            (
                r["event"]["kind"].as_str().unwrap_or("?").to_string(),
                r["actor"].as_str().unwrap_or("?").to_string(),
                r["event"]["forecast_id"].as_str().map(str::to_string),
            )
        })
        .collect();
    let ids = forecast_ids(&app).await;
    let (red_id, clean_id) = (ids[1].clone(), ids[2].clone());
    assert_eq!(ids[0], orange_id);
    let s = |k: &str, a: &str, f: Option<&String>| (k.to_string(), a.to_string(), f.cloned());
    assert_eq!(
        story,
        vec![
            s("proposed", "consultation", Some(&orange_id)),
            s("issued", DEPUTY_NAME, None),
            s("scheduled", "consultation", None),
            s("started", "clock", None),
            s("unscheduled", "consultation", Some(&red_id)),
            s("change_proposed", "consultation", Some(&red_id)),
            s("scheduled", HEAD_NAME, None),
            s("level_changed", HEAD_NAME, None),
            s("scheduled", "consultation", None),
            s("unscheduled", "consultation", Some(&clean_id)),
            s("scheduled", "consultation", Some(&clean_id)),
            s("lifted", "clock", None),
        ]
    );
    assert!(
        history
            .iter()
            .all(|r| r["playbook"] == "taiyuan@2026.1" && r["warning_id"] == id.as_str()),
        "every event names the episode and its playbook"
    );
    let changed = history
        .iter()
        .find(|r| r["event"]["kind"] == "level_changed")
        .expect("a level change");
    assert_eq!(
        (&changed["event"]["from"], &changed["event"]["to"]),
        (&json!("orange"), &json!("red"))
    );
    assert!(history.windows(2).all(|p| p[0]["seq"].as_u64() < p[1]["seq"].as_u64()));
    assert_eq!(
        files_in(&app.inbox().join("processed")),
        [
            "taiyuan-20261201-1400.csv",
            "taiyuan-20261203-0030.csv",
            "taiyuan-20261203-0145.csv"
        ]
    );
    app.stop().await;
}

/// `GET /api/v1/warnings/{id}`'s history.
pub async fn history_of(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/warnings/{id}"), Some(DUTY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["history"].as_array().cloned().unwrap_or_default()
}

/// The ids of the accepted forecasts, in the order they were recorded.
pub async fn forecast_ids(app: &TestApp) -> Vec<String> {
    app.events()
        .await
        .iter()
        .filter(|r| r["type"] == "forecast_accepted")
        .map(|r| r["forecast"]["id"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provincial_directive_issues_orange_without_sign_off_and_holds_it_until_the_directive_is_lifted() {
    // 2026-12-01 15:00: the province orders Taiyuan and its counties to at least orange from now.
    let app = spawn_app(clock()).await;
    let directive = json!({ "id": "晋气调〔2026〕1号", "name": "全省重污染天气应急调度令", "min_level": "orange", "regions": [TAIYUAN], "from": "2026-12-01 15:00" });
    let (status, body) = app.post_json("/api/v1/directives", Some(HEAD), &directive).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // → Taiyuan and its ten counties are at orange at once, nobody had to sign.
    let warnings = app.warnings().await;
    assert_eq!(warnings.len(), 11, "Taiyuan and its counties: {warnings:?}");
    for w in &warnings {
        assert_eq!(
            (w["status"].as_str(), w["level"].as_str(), w["pending_sign_off"].as_bool()),
            (Some("active"), Some("orange"), Some(false)),
            "{w}"
        );
        assert_eq!(w["holds"][0]["directive"], "晋气调〔2026〕1号");
    }
    let w = app.warning_of(TAIYUAN).await.expect("Taiyuan's warning");
    let id = w["id"].as_str().expect("an id").to_string();
    let history = history_of(&app, &id).await;
    assert_eq!(history[0]["event"]["kind"], "issued");
    assert_eq!(history[0]["actor"], "directive:晋气调〔2026〕1号");

    // 15:30: the deputy head tries to lift Taiyuan's warning: refused while the directive holds it.
    app.set_clock("2026-12-01 15:30");
    let seq = app.last_seq().await;
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/lift"),
            Some(DEPUTY),
            &json!({ "reason": "天气转好" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"],
        format!("warning {id} is held by directive 晋气调〔2026〕1号 until it is released")
    );
    assert_eq!(app.last_seq().await, seq, "nothing is recorded");

    // A clean forecast and two days later: still orange, the directive holds it.
    let clean = forecast_csv(
        "2026-12-01 15:40",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[60, 60, 60, 60, 60, 60, 60],
    );
    let (status, body) = app.submit(clean).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("the consultation on the clean forecast is held", || async {
        let (_, body) = app.get("/api/v1/consultations", Some(DUTY)).await;
        body["consultations"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["assessments"].as_array().is_some_and(|a| !a.is_empty())))
            .then_some(())
    })
    .await;
    app.set_clock("2026-12-03 16:30");
    app.state.engine.tick().await.expect("a tick");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["level"], "orange");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "active");

    // The province lifts the directive → Taiyuan is released, and with the clean forecast its warning
    // ends at once, without a further wait (a warning raised by a directive ends with it).
    let (status, body) = app.post("/api/v1/directives/晋气调〔2026〕1号/lift", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = app.get("/api/v1/directives", Some(DUTY)).await;
    assert_eq!(body["directives"][0]["active"], false, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!((w["status"].as_str(), &w["holds"]), (Some("lifted"), &json!([])), "{w}");
    let ended: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["ended_at"].clone()).expect("an end");
    assert_eq!(ended, shanghai("2026-12-03 16:30"));
    let history = history_of(&app, &id).await;
    let kinds: Vec<&str> = history
        .iter()
        .rev()
        .take(3)
        .map(|r| r["event"]["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, ["lifted", "scheduled", "directive_released"]);

    // Lifting it again: refused, it is over.
    let (status, body) = app.post(&format!("/api/v1/warnings/{id}/lift"), Some(DEPUTY)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], format!("warning {id} is lifted, not live"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_playbook_governs_new_episodes_while_a_running_one_keeps_its_version_and_a_broken_one_is_refused() {
    // The daemon runs on a copy of the shipped playbooks that operators edit.
    let dir = tempfile::TempDir::new().expect("a folder");
    let books = dir.path().join("playbooks");
    copy_dir(std::path::Path::new(PLAYBOOKS), &books);
    let app = spawn_app_with(dir, clock(), |s| s.playbooks = books.clone()).await;

    // 15:00: an orange proposal for Taiyuan under taiyuan@2026.1.
    let orange = forecast_csv(
        "2026-12-01 14:00",
        "省生态环境监测和应急保障中心",
        TAIYUAN,
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    app.drop_in_inbox("taiyuan.csv", &orange);
    let w = eventually("orange is proposed", || async { app.warning_of(TAIYUAN).await }).await;
    assert_eq!(w["playbook"], "taiyuan@2026.1");
    let id = w["id"].as_str().expect("an id").to_string();

    // 15:10: the city makes orange the head's to sign, as version 2026.2, and reloads.
    let stricter = make_orange_the_heads_to_sign(&books);
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["versions"].as_array().expect("versions").contains(&json!("taiyuan@2026.2")),
        "{body}"
    );

    // The running episode keeps 2026.1: the deputy head may still sign its orange.
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!(
        (w["status"].as_str(), w["playbook"].as_str()),
        (Some("issued"), Some("taiyuan@2026.1")),
        "{w}"
    );

    // A new episode in a Taiyuan county (小店区) falls under 2026.2: its orange needs the head.
    let xiaodian = forecast_csv(
        "2026-12-01 15:05",
        "省生态环境监测和应急保障中心",
        "140105",
        "2026-12-01",
        &[120, 160, 230, 240, 180, 120, 100],
    );
    app.drop_in_inbox("xiaodian.csv", &xiaodian);
    let county = eventually("orange is proposed for 小店区", || async { app.warning_of("140105").await }).await;
    assert_eq!(
        (county["level"].as_str(), county["playbook"].as_str()),
        (Some("orange"), Some("taiyuan@2026.2")),
        "{county}"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/warnings/{}/sign", county["id"].as_str().unwrap_or("?")),
            Some(DEPUTY),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // 15:20: someone saves a broken taiyuan.yaml and reloads: refused with file:line:column, and
    // 2026.2 stays live; only the refusal is recorded.
    let broken = stricter.replace("scope: \"140100\"\n", "scope: \"140100\"\nlift_window_hours: soon\n");
    assert_ne!(broken, stricter);
    std::fs::write(books.join("taiyuan.yaml"), broken).expect("written");
    let seq = app.last_seq().await;
    let before = app.warnings().await;
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.starts_with("not reloaded; the old playbooks, roster, templates, staff tokens and link keys stay live:\n"),
        "{error}"
    );
    let line = error.lines().nth(1).expect("one error line");
    let file = books.join("taiyuan.yaml").display().to_string();
    let place = line
        .strip_prefix(&format!("{file}:"))
        .unwrap_or_else(|| panic!("names the file: {line}"));
    let mut parts = place.splitn(3, ':');
    let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    assert!(l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok(), "file:line:column: {line}");
    let (_, live) = app.get("/api/v1/playbooks", Some(DUTY)).await;
    let versions: Vec<&Value> = live["playbooks"]
        .as_array()
        .expect("playbooks")
        .iter()
        .map(|p| &p["version"])
        .collect();
    assert!(versions.contains(&&json!("2026.2")), "{live}");
    assert_eq!(
        live["last_reload"]["versions"],
        json!([
            "changzhi@2024.1",
            "datong@2024.1",
            "jincheng@2024.1",
            "jinzhong@2024.1",
            "linfen@2024.1",
            "lvliang@2024.1",
            "shanxi@2024.1",
            "shuozhou@2024.1",
            "taiyuan@2026.2",
            "xinzhou@2024.1",
            "yangquan@2024.1",
            "yuncheng@2024.1"
        ]),
        "{live}"
    );
    assert_eq!(app.warnings().await, before);
    let events = app.events().await;
    assert_eq!(events.len() as u64, seq + 1);
    let refusal = events.last().expect("an event");
    assert_eq!(refusal["type"], "playbooks_reloaded");
    assert_eq!(
        refusal["versions"],
        json!([
            "changzhi@2024.1",
            "datong@2024.1",
            "jincheng@2024.1",
            "jinzhong@2024.1",
            "linfen@2024.1",
            "lvliang@2024.1",
            "shanxi@2024.1",
            "shuozhou@2024.1",
            "taiyuan@2026.2",
            "xinzhou@2024.1",
            "yangquan@2024.1",
            "yuncheng@2024.1"
        ])
    );
    assert_eq!(refusal["errors"].as_array().map(Vec::len), Some(1), "{refusal}");
    app.stop().await;
}

/// A forecast CSV with the same daily AQI for several regions.
fn forecast_for(issued_at: &str, regions: &[&str], first: &str, aqi: &[u32]) -> String {
    let mut out = format!("# issued_at: {issued_at}\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    for r in regions {
        let one = forecast_csv(issued_at, "-", r, first, aqi);
        out.extend(one.lines().skip(3).map(|l| format!("{l}\n")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_episode_within_the_merge_gap_reopens_the_lifted_warning_and_one_after_it_gets_a_new_id() {
    // Datong and Changzhi, under the provincial playbook (36 h lift window, 48 h merge gap), go
    // through the same episode: orange proposed on 12-01, signed (its lift decided for 12-06 00:00),
    // started; a clean forecast at 12-03 02:00 shows today clean: lifted at once.
    const DATONG: &str = "140200";
    const CHANGZHI: &str = "140400";
    let app = spawn_app(clock()).await;
    app.drop_in_inbox(
        "f1.csv",
        forecast_for(
            "2026-12-01 14:00",
            &[DATONG, CHANGZHI],
            "2026-12-01",
            &[120, 160, 230, 240, 180, 120, 100],
        ),
    );
    let both = || async {
        let a = app.warning_of(DATONG).await?;
        let b = app.warning_of(CHANGZHI).await?;
        Some((a, b))
    };
    let (datong, changzhi) = eventually("both are proposed", both).await;
    let (datong_id, changzhi_id) = (
        datong["id"].as_str().unwrap_or("?").to_string(),
        changzhi["id"].as_str().unwrap_or("?").to_string(),
    );
    for id in [&datong_id, &changzhi_id] {
        assert_eq!(
            app.post_json(
                &format!("/api/v1/warnings/{id}/sign"),
                Some(DEPUTY),
                &serde_json::json!({ "without_record": "本测试不涉及会商意见" })
            )
            .await
            .0,
            StatusCode::OK
        );
    }
    app.set_clock("2026-12-03 01:00");
    eventually("both start", || async {
        both().await.filter(|(a, b)| a["status"] == "active" && b["status"] == "active")
    })
    .await;
    app.set_clock("2026-12-03 02:00");
    assert_eq!(
        app.submit(forecast_for("2026-12-03 01:45", &[DATONG, CHANGZHI], "2026-12-03", &[60; 7]))
            .await
            .0,
        StatusCode::CREATED
    );
    let (datong, _) = eventually("both are lifted", || async {
        both().await.filter(|(a, b)| a["status"] == "lifted" && b["status"] == "lifted")
    })
    .await;
    assert_eq!(datong["ended_at"], "2026-12-02T18:00:00Z", "12-03 02:00 in Shanxi time");

    // 12-04 10:00: Datong is forecast above 200 again from tomorrow: the run starts 12-05 00:00, 46 h after
    // the lift, within the 48 h merge gap: the same warning re-opens, awaiting sign-off.
    app.set_clock("2026-12-04 10:00");
    app.settled().await;
    assert_eq!(
        app.submit(forecast_for(
            "2026-12-04 09:30",
            &[DATONG],
            "2026-12-04",
            &[150, 230, 240, 180, 120, 100, 100]
        ))
        .await
        .0,
        StatusCode::CREATED
    );
    let datong = eventually("Datong's warning re-opens", || async {
        app.warning_of(DATONG).await.filter(|w| w["status"] == "pending")
    })
    .await;
    assert_eq!(datong["id"], datong_id.as_str());
    let history = history_of(&app, &datong_id).await;
    assert_eq!(
        kinds(&history),
        [
            "proposed",
            "issued",
            "scheduled",
            "started",
            "unscheduled",
            "scheduled",
            "lifted",
            "proposed"
        ]
    );
    let reopened = history
        .iter()
        .rev()
        .find(|r| r["event"]["kind"] == "proposed")
        .expect("re-proposed");
    assert_eq!(reopened["event"]["reopened"], true);

    // 12-07 10:00: Changzhi is forecast above 200 again, now long after its merge gap: a new episode
    // with a new id; the old one's history ends with its lift.
    app.set_clock("2026-12-07 10:00");
    app.settled().await;
    assert_eq!(
        app.submit(forecast_for(
            "2026-12-07 09:30",
            &[CHANGZHI],
            "2026-12-07",
            &[150, 230, 240, 180, 120, 100, 100]
        ))
        .await
        .0,
        StatusCode::CREATED
    );
    let changzhi = eventually("Changzhi has a new warning", || async {
        app.warning_of(CHANGZHI).await.filter(|w| w["status"] == "pending")
    })
    .await;
    assert_eq!(changzhi["id"], "140400-20261207-2");
    assert_eq!(
        kinds(&history_of(&app, &changzhi_id).await),
        ["proposed", "issued", "scheduled", "started", "unscheduled", "scheduled", "lifted"]
    );
    let new = history_of(&app, "140400-20261207-2").await;
    assert_eq!(kinds(&new), ["proposed"]);
    assert_eq!(new[0]["event"]["reopened"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_that_starts_with_the_last_day_of_a_run_keeps_its_level_from_the_days_read_before() {
    // Datong (province, 36 h lift window): orange for 12-02..12-03 (two days above 200), signed.
    const DATONG: &str = "140200";
    let app = spawn_app(clock()).await;
    let first = forecast_for("2026-12-01 14:00", &[DATONG], "2026-12-01", &[100, 230, 240, 100, 100, 100, 100]);
    assert_eq!(app.submit(first).await.0, StatusCode::CREATED);
    let w = eventually("orange is proposed", || async { app.warning_of(DATONG).await }).await;
    let id = w["id"].as_str().expect("an id").to_string();
    assert_eq!(
        app.post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" })
        )
        .await
        .0,
        StatusCode::OK
    );

    // 12-02 16:00: the new forecast starts tomorrow with 230, then clean. Alone, 12-03 would be one day above
    // 200 (yellow); read after 12-02's 240 it is the second day of the orange run: no downgrade, lifted 12-04.
    app.set_clock("2026-12-02 16:00");
    let next = forecast_for("2026-12-02 15:00", &[DATONG], "2026-12-03", &[230, 100, 100, 100, 100, 100, 100]);
    let (_, body) = app.submit(next).await;
    let fid = body["id"].as_str().expect("the forecast's id").to_string();
    eventually("the new forecast is consulted on", || async {
        history_of(&app, &id)
            .await
            .iter()
            .any(|r| r["event"]["forecast_id"] == fid.as_str())
            .then_some(())
    })
    .await;
    let w = app.warning_of(DATONG).await.expect("the warning");
    assert_eq!(w["next"]["at"], "2026-12-03T16:00:00Z", "{w}");
    assert_eq!((w["level"].as_str(), &w["next"]["level"]), (Some("orange"), &Value::Null), "{w}");
    let history = history_of(&app, &id).await;
    assert!(
        !history
            .iter()
            .any(|r| r["event"]["kind"] == "scheduled" && r["event"]["to"] == "yellow"),
        "no downgrade to yellow for the run's last day: {history:#?}"
    );
    app.stop().await;
}
