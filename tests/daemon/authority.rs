//! Authority on every write (issue 13, item 1): each write endpoint × each staff role, over HTTP,
//! against the shipped playbooks (yellow/orange signed by a deputy head, red by the head).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A token whose role no playbook defines.
const OBSERVER: &str = "token-of-an-observer";

/// Four cities: two heading for red, two for orange (Datong, Yangquan, Changzhi, Jincheng).
fn four_cities() -> String {
    let mut csv = String::from("# issued_at: 2026-12-01 14:00\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    for (region, aqi) in [
        ("140200", [120, 260, 320, 280, 220, 150, 100]),
        ("140300", [120, 260, 320, 280, 220, 150, 100]),
        ("140400", [120, 160, 230, 240, 180, 120, 100]),
        ("140500", [120, 160, 230, 240, 180, 120, 100]),
    ] {
        for (i, v) in aqi.iter().enumerate() {
            csv.push_str(&format!("{region},2026-12-{:02},{v}\n", i + 1));
        }
    }
    csv
}

/// One row: what, path, body, and each token with the status it gets.
type Row = (&'static str, String, Body, Vec<(&'static str, StatusCode)>);

enum Body {
    None,
    Json(Value),
    Raw(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_endpoint_needs_the_role_the_playbook_names_whatever_the_body_says() {
    let app = spawn_app_with(tempfile::TempDir::new().expect("a folder"), clock(), |s| {
        s.staff.tokens.push(hazeflow::config::StaffToken {
            name: "观察员".into(),
            role: "observer".into(),
            sha256: hazeflow::config::hash_token(OBSERVER),
        });
    })
    .await;
    let (status, body) = app.submit(four_cities()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids = eventually("four proposals", || async {
        let w = app.warnings().await;
        let ids: Vec<String> = ["140200", "140300", "140400", "140500"]
            .iter()
            .filter_map(|r| w.iter().find(|w| w["region"] == *r && w["status"] == "pending"))
            .map(|w| w["id"].as_str().unwrap_or_default().to_string())
            .collect();
        (ids.len() == 4).then_some(ids)
    })
    .await;
    let (red_a, red_b, orange_c, orange_d) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let directive = |id: &str, level: &str, region: &str| {
        Body::Json(json!({ "id": id, "name": "调度令", "min_level": level, "regions": [region], "from": "2026-12-01 16:00" }))
    };
    use StatusCode as S;
    let (forbidden, ok, created) = (S::FORBIDDEN, S::OK, S::CREATED);
    // (what, path, body, [(token, expected status, role named in the refusal)]), in order: each row's
    // last allowed call changes the state the next rows see.
    let table: Vec<Row> = vec![
        (
            "sign red (typed signer is only a note)",
            format!("/api/v1/warnings/{red_a}/sign"),
            Body::Json(json!({ "signer": "冒名者", "without_record": "本测试不涉及会商意见" })),
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, forbidden), (HEAD, ok)],
        ),
        (
            "cancel issued red",
            format!("/api/v1/warnings/{red_a}/cancel"),
            Body::Json(json!({ "reason": "x" })),
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, forbidden), (HEAD, ok)],
        ),
        (
            "lift (withdraw) pending red",
            format!("/api/v1/warnings/{red_b}/lift"),
            Body::None,
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, forbidden), (HEAD, ok)],
        ),
        (
            "sign orange",
            format!("/api/v1/warnings/{orange_c}/sign"),
            Body::Json(json!({ "without_record": "本测试不涉及会商意见" })),
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, ok)],
        ),
        (
            "lift issued orange",
            format!("/api/v1/warnings/{orange_c}/lift"),
            Body::Json(json!({ "reason": "天气转好" })),
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, ok)],
        ),
        (
            "cancel pending orange",
            format!("/api/v1/warnings/{orange_d}/cancel"),
            Body::None,
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, ok)],
        ),
        (
            "red directive",
            "/api/v1/directives".into(),
            directive("D-red", "red", "140600"),
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, forbidden), (HEAD, created)],
        ),
        (
            "orange directive",
            "/api/v1/directives".into(),
            directive("D-orange", "orange", "140700"),
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, created)],
        ),
        (
            "lift red directive",
            "/api/v1/directives/D-red/lift".into(),
            Body::None,
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, forbidden), (HEAD, ok)],
        ),
        (
            "lift orange directive",
            "/api/v1/directives/D-orange/lift".into(),
            Body::None,
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, ok)],
        ),
        (
            "reload",
            "/api/v1/playbooks/reload".into(),
            Body::None,
            vec![(OBSERVER, forbidden), (DUTY, forbidden), (DEPUTY, forbidden), (HEAD, ok)],
        ),
        // No list in this daemon: a role that may open an inspection gets as far as "no enterprise".
        (
            "open an inspection",
            "/api/v1/inspections".into(),
            Body::Json(json!({ "warning": red_a, "uscc": "91140100MA0000000X" })),
            vec![
                (OBSERVER, forbidden),
                (DUTY, S::NOT_FOUND),
                (DEPUTY, S::NOT_FOUND),
                (HEAD, S::NOT_FOUND),
            ],
        ),
        (
            "record an inspection",
            "/api/v1/inspections/no-such-task/result".into(),
            Body::Json(json!({ "compliant": true })),
            vec![
                (OBSERVER, forbidden),
                (DUTY, S::NOT_FOUND),
                (DEPUTY, S::NOT_FOUND),
                (HEAD, S::NOT_FOUND),
            ],
        ),
        (
            "forecast",
            "/api/v1/forecasts".into(),
            Body::Raw(forecast_csv("2026-12-01 14:30", SOURCE, "140800", "2026-12-02", &[80, 90])),
            vec![(DUTY, created), (DEPUTY, ok), (HEAD, ok)],
        ),
        (
            "consultation",
            "/api/v1/consultations".into(),
            Body::None,
            vec![(DUTY, created), (DEPUTY, created), (HEAD, created)],
        ),
    ];
    for (what, path, body, calls) in &table {
        for (token, expected) in calls {
            let seq = app.last_seq().await;
            let req = app.http().post(app.url(path)).bearer_auth(token);
            let req = match body {
                Body::None => req,
                Body::Json(v) => req.json(v),
                Body::Raw(t) => req.body(t.clone()),
            };
            let (status, answer) = TestApp::send(req).await;
            assert_eq!(status, *expected, "{what} with {token}: {answer}");
            if status == S::FORBIDDEN {
                let error = answer["error"].as_str().unwrap_or_default();
                let named = ["head", "deputy_head", "duty_officer"]
                    .iter()
                    .any(|r| error.contains(&format!("needs role \"{r}\"")) || error.contains(&format!("(needs {r})")));
                assert!(named, "{what} with {token}: the role needed is named: {answer}");
                assert_eq!(app.last_seq().await, seq, "{what} with {token}: a refusal records nothing");
            }
        }
    }
    // The typed signer did not sign: the head did, and the typed name is a note.
    let (_, w) = app.get(&format!("/api/v1/warnings/{red_a}"), Some(HEAD)).await;
    let issued = w["history"]
        .as_array()
        .and_then(|h| h.iter().find(|r| r["event"]["kind"] == "issued"))
        .expect("issued")
        .clone();
    assert_eq!(issued["actor"], HEAD_NAME, "{issued}");
    // (The other notes are the reasons for signing without the 会商意见, which this test gives.)
    let notes: Vec<_> = app
        .records("note")
        .into_iter()
        .filter(|n| !n["data"]["note"].as_str().is_some_and(|n| n.starts_with("未附会商意见签发")))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["actor"], HEAD_NAME);
    assert!(notes[0]["data"]["note"].as_str().is_some_and(|n| n.contains("冒名者")), "{notes:?}");
    app.stop().await;
}
