//! Acknowledgement-link keys with ids: links made before a rotation keep working, links of the
//! single key of earlier releases (no key id) too, until their key file is removed; a reload puts new
//! keys in service all or nothing.

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::*;
use hazeflow::engine::assign::{self, TokenKey};
use hazeflow::engine::link_keys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_links_of_every_key_in_service_work_and_removing_a_key_ends_its_links() {
    if on_postgres() {
        // The keys of a shared store live in the store (the next test), not in the data folder.
        return;
    }
    // A data folder of an earlier release: its one key in token.key.
    let dir = TempDir::new().expect("a folder");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("the data folder");
    let legacy_secret = [7u8; 32];
    std::fs::write(data.join("token.key"), hex::encode(legacy_secret)).expect("token.key");
    let app = spawn_in(dir, hazeflow::clock::Clock::manual(shanghai("2026-12-02 08:00"))).await;
    let id = app
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    app.set_clock("2026-12-02 08:05");
    app.sign(&id, DEPUTY).await;
    let key = TestApp::of(&app.assignments(&id, Some("active")).await, &cement().uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let page = |token: String| {
        let app = &app;
        async move { app.get_text(&format!("/ack/{token}")).await.0 }
    };

    // The first start of this release made k1, which signs; the link of the old key still opens.
    let k1 = app.token(&key);
    assert!(k1.starts_with("k1."), "{k1}");
    let a = app
        .state
        .engine
        .store
        .read(|r| assign::get(r, &key))
        .unwrap()
        .expect("the assignment");
    let legacy = TokenKey::new(legacy_secret).token(&a).trim_start_matches("k1.").to_string();
    assert_eq!(page(legacy.clone()).await, StatusCode::OK);
    assert_eq!(page(k1.clone()).await, StatusCode::OK);

    // Rotated: k2 signs after the reload; the links of k1 and of the old key go on working, and acknowledge.
    let (n, _) = link_keys::rotate(&data).expect("rotated");
    assert_eq!(n, 2);
    assert!(app.token(&key).starts_with("k1."), "not before the reload");
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["link_keys"], json!(["legacy", "k1", "k2"]), "{body}");
    let k2 = app.token(&key);
    assert!(k2.starts_with("k2.") && k2 != k1, "{k2}");
    for t in [&legacy, &k1, &k2] {
        assert_eq!(page(t.clone()).await, StatusCode::OK, "{t}");
    }
    let (status, body) = app
        .post_json(
            &format!("/api/v1/acks/{k1}"),
            None,
            &json!({ "step": "received", "name": "王建国", "phone": "13800000001" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a link sent before the rotation acknowledges: {body}");

    // A broken key file refuses the whole reload, naming the file; k2 still signs.
    let keys = data.join(link_keys::FOLDER);
    std::fs::write(keys.join("k3.key"), "not a key").expect("written");
    let errors = app.state.reload_playbooks("test").await.expect_err("refused");
    assert!(errors.iter().any(|e| e.contains("k3.key must hold 64 hex digits")), "{errors:?}");
    assert!(app.token(&key).starts_with("k2."));
    std::fs::remove_file(keys.join("k3.key")).expect("removed");

    // k1 and the old key removed: their links say 链接无效 (404); k2's go on.
    std::fs::remove_file(keys.join("k1.key")).expect("removed");
    std::fs::remove_file(data.join("token.key")).expect("removed");
    app.state.reload_playbooks("test").await.expect("the reload is accepted");
    assert_eq!(page(k1.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(page(legacy.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(page(k2.clone()).await, StatusCode::OK);

    // Every key removed: refused, since nothing could sign.
    std::fs::remove_file(keys.join("k2.key")).expect("removed");
    let errors = app.state.reload_playbooks("test").await.expect_err("refused");
    assert!(errors.iter().any(|e| e.contains("no acknowledgement-link key")), "{errors:?}");
    assert_eq!(page(k2).await, StatusCode::OK, "the keys in service stay");
    app.stop().await;
}

/// `hazeflow token-key rotate` with a configuration holding only the data folder and the store.
fn rotate_with_the_cli(dir: &std::path::Path, url: &str) -> String {
    let config = dir.join("cli.yaml");
    std::fs::write(
        &config,
        format!("data_dir: \"{}/cli-data\"\nstore:\n  url: \"{url}\"\n", dir.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hazeflow"))
        .args(["token-key", "rotate", "--config"])
        .arg(&config)
        .env("HAZEFLOW_LOG_LEVEL", "warn")
        .output()
        .expect("hazeflow runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// The `csrf` field of a dashboard page.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form with a CSRF token")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgresql_share_the_link_keys_and_the_dashboard_key_so_either_serves_what_the_other_signed() {
    let Some(cluster) = crate::common::pg::PgCluster::start_or_skip() else {
        return;
    };
    let url = cluster.database("keys");
    let node = |url: String| async move {
        let dir = TempDir::new().expect("a folder");
        let mut settings = settings_in(dir.path());
        settings.store.url = Some(url);
        TestApp::start(dir, hazeflow::clock::Clock::manual(shanghai("2026-12-02 08:00")), settings).await
    };
    let a = node(url.clone()).await;
    let b = node(url.clone()).await;
    let id = a
        .propose(TAIYUAN, &orange_forecast("2026-12-02 07:30", "2026-12-02"), "orange")
        .await;
    a.set_clock("2026-12-02 08:05");
    a.sign(&id, DEPUTY).await;
    let key = TestApp::of(&a.assignments(&id, Some("active")).await, &cement().uscc)["key"]
        .as_str()
        .unwrap()
        .to_string();

    // One k1 in the database, none on either node's disk: a link signed on A opens and acknowledges on B.
    let link = a.token(&key);
    assert!(link.starts_with("k1."), "{link}");
    assert_eq!(b.token(&key), link, "both nodes sign with the same key");
    for app in [&a, &b] {
        let data = app.dir.path().join("data");
        assert!(
            !data.join(link_keys::FOLDER).exists() && !data.join("session.key").exists(),
            "no key on a node's disk"
        );
    }
    assert_eq!(b.get_text(&format!("/ack/{link}")).await.0, StatusCode::OK);
    let (status, body) = b
        .post_json(
            &format!("/api/v1/acks/{link}"),
            None,
            &json!({ "step": "received", "name": "王建国", "phone": "13800000001" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Rotated once with the CLI (into the database); after each node's reload both sign with k2, and
    // the k1 link still opens on both.
    let said = rotate_with_the_cli(a.dir.path(), &url);
    assert!(said.contains("made k2") && said.contains("secrets/link/k2"), "{said}");
    for app in [&a, &b] {
        let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["link_keys"], json!(["k1", "k2"]), "{body}");
    }
    let k2 = a.token(&key);
    assert!(k2.starts_with("k2."), "{k2}");
    assert_eq!(b.token(&key), k2);
    for app in [&a, &b] {
        assert_eq!(app.get_text(&format!("/ack/{link}")).await.0, StatusCode::OK);
    }

    // A dashboard form served by A is accepted by B (one session key): 立即会商 posted to B.
    let cookie = format!("{}={HEAD}", hazeflow::web::dashboard::SESSION_COOKIE);
    let page = a
        .http()
        .get(a.url("/consultations"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.unwrap());
    let posted = b
        .http()
        .post(b.url("/consultations/run"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        posted.status(),
        StatusCode::SEE_OTHER,
        "{}",
        posted.text().await.unwrap_or_default()
    );
    let refused = b
        .http()
        .post(b.url("/consultations/run"))
        .header("cookie", &cookie)
        .form(&[("csrf", "00".repeat(32).as_str())])
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status(), StatusCode::SEE_OTHER, "a wrong token is refused");
    a.stop().await;
    b.stop().await;
}
