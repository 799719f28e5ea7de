//! What the dashboard must refuse or get right whatever the browser: CSRF, logins, escaping, and the
//! playbook check. Plain HTTP; these run everywhere, Chromium or not.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_without_a_login_redirects_to_the_login_page() {
    let app = spawn_app(&[]).await;
    for path in ["/", "/consultations", "/playbooks", "/warnings/140100-20261201-1"] {
        let (status, headers, _) = app.page(path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(header(&headers, LOCATION), "/login", "{path}");
    }
    // A cookie with a token nobody holds is no better, and is dropped on the way.
    let (status, headers, _) = app.page("/", Some("hazeflow_session=not-a-token")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(set_cookie(&headers, "hazeflow_session").map(|c| c.value), Some(String::new()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_a_right_one_sets_an_http_only_same_site_strict_session_cookie() {
    let app = spawn_app(&[]).await;
    let (nonce, csrf) = app.login_form().await;
    let cookie = format!("hazeflow_login={nonce}");
    let (status, _, body) = app.post_form("/login", Some(&cookie), &[("token", "guess"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("令牌无效"), "{body}");

    let (status, headers, _) = app.post_form("/login", Some(&cookie), &[("token", HEAD), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = set_cookie(&headers, "hazeflow_session").expect("a session cookie");
    assert_eq!(session.value, HEAD);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.attributes.contains(attribute), "{attribute} in {}", session.attributes);
    }
    // The page greets them, and the same cookie works on the JSON API (one session, two faces).
    let (status, headers, body) = app.page("/", Some(&format!("hazeflow_session={}", session.value))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(HEAD_NAME), "the page names who is logged in");
    assert!(
        header(&headers, CONTENT_SECURITY_POLICY).contains("script-src 'self'"),
        "pages carry a content security policy"
    );
    let r = app
        .http
        .get(app.url("/api/v1/warnings"))
        .header("cookie", format!("hazeflow_session={}", session.value))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_without_its_csrf_token_is_refused_with_403_and_changes_nothing() {
    let app = spawn_app(&[]).await;
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN]).await;
    let session = app.login(HEAD).await;
    let sign = format!("/warnings/{}/sign", ids[0]);
    let seq = app.last_seq();

    // No token, a wrong one, and a right one from another session: all refused before anything runs.
    let (_, _, page) = app.page("/", Some(&session)).await;
    let good = hidden_field(&page, "csrf").expect("the page's CSRF token");
    let other = app.login(DUTY).await;
    let (_, _, other_page) = app.page("/", Some(&other)).await;
    let others = hidden_field(&other_page, "csrf").expect("the other page's CSRF token");
    for (what, fields) in [
        ("none", vec![("back", "/")]),
        ("wrong", vec![("csrf", "00ff"), ("back", "/")]),
        ("another session's", vec![("csrf", others.as_str())]),
    ] {
        let (status, _, body) = app.post_form(&sign, Some(&session), &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what} token");
        assert!(body.contains("请求被拒绝"), "a page that says why: {body}");
    }
    // No session at all, even with a token lifted from a page.
    let (status, _, _) = app.post_form(&sign, None, &[("csrf", &good)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for path in [
        "/logout",
        "/playbooks/reload",
        "/playbooks/check",
        "/consultations/run",
        "/forecasts",
    ] {
        let (status, _, _) = app.post_form(path, Some(&session), &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    // A login form posted without the nonce it was served with.
    let (_, csrf) = app.login_form().await;
    let (status, _, _) = app.post_form("/login", None, &[("token", HEAD), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let recorded = app.kinds_since(seq);
    assert!(
        !recorded.iter().any(|k| k == "warning"),
        "no warning event was recorded: {recorded:?}"
    );
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the proposal")["status"], "pending");

    // With the token, the same form signs.
    let (status, headers, _) = app
        .post_form(
            &sign,
            Some(&session),
            &[("csrf", &good), ("back", "/"), ("without_record", "本测试不涉及会商意见")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, LOCATION), "/");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the warning")["status"], "issued");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_staff_and_operators_is_html_escaped_on_every_page() {
    let name = "<script>alert('名')</script>值班长";
    let app = spawn_app(&[(name, "head", "token-with-markup-in-the-name")]).await;
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN]).await;
    let session = app.login("token-with-markup-in-the-name").await;
    let (_, _, page) = app.page("/", Some(&session)).await;
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    assert!(!page.contains("<script>alert"), "the name in the header is escaped");
    assert!(page.contains("&lt;script&gt;alert("), "and still shown");

    // Signed by that name, then cancelled with a reason that is markup: the history shows both as text.
    let href = format!("/warnings/{}", ids[0]);
    let (status, _, _) = app
        .post_form(
            &format!("{href}/sign"),
            Some(&session),
            &[("csrf", &csrf), ("back", &href), ("without_record", "本测试不涉及会商意见")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let reason = "<img src=x onerror=alert(1)> \"引号\" & 'apostrophe'";
    let (status, _, _) = app
        .post_form(
            &format!("{href}/cancel"),
            Some(&session),
            &[("csrf", &csrf), ("back", &href), ("reason", reason)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = app.page(&href, Some(&session)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("取消"), "the cancellation is in the history");
    assert!(!page.contains("<img src=x"), "the reason is not markup: {page}");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "the reason is shown as text");
    assert!(page.contains("&amp; "), "ampersands are escaped");
    assert!(!page.contains("<script>alert"), "the signer's name is not markup");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duty_officer_sees_the_proposal_but_no_sign_button_and_cannot_sign_by_posting() {
    let app = spawn_app(&[]).await;
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN]).await;
    let session = app.login(DUTY).await;
    let (_, _, page) = app.page("/", Some(&session)).await;
    assert!(page.contains(&format!("data-warning=\"{}\"", ids[0])), "the proposal is listed");
    assert!(!page.contains(&format!("/warnings/{}/sign", ids[0])), "without a sign form");
    assert!(page.contains("无权签发"), "and says why");
    // Posting anyway is refused by the engine, and the page says so.
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    let (status, headers, _) = app
        .post_form(
            &format!("/warnings/{}/sign", ids[0]),
            Some(&session),
            &[("csrf", &csrf), ("back", "/")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let flash = set_cookie(&headers, "hazeflow_flash").expect("a message for the next page");
    let (_, _, page) = app.page("/", Some(&format!("{session}; hazeflow_flash={}", flash.value))).await;
    assert!(page.contains("签发未成功：无权操作"), "the refusal is shown");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the proposal")["status"], "pending");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_an_edited_playbook_shows_errors_as_file_line_column_and_changes_nothing() {
    let app = spawn_app(&[]).await;
    let session = app.login(HEAD).await;
    let (_, _, page) = app.page("/playbooks", Some(&session)).await;
    assert!(page.contains("taiyuan@2026.1"), "the live versions are listed");
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    let original = std::fs::read_to_string(format!("{PLAYBOOKS}/taiyuan.yaml")).expect("the shipped file");
    let seq = app.last_seq();
    let live_before: Vec<String> = app
        .state
        .engine
        .playbooks
        .live()
        .iter()
        .map(|p| format!("{}:{}", p.pin(), p.digest))
        .collect();

    // A laxer lift window and a misspelt key: both reported where they are.
    let edited = original.replace("scope: \"140100\"\n", "scope: \"140100\"\nlift_window_hours: 24\nlift_windows: 3\n");
    let (status, _, page) = app
        .post_form(
            "/playbooks/check",
            Some(&session),
            &[("csrf", &csrf), ("file", "taiyuan.yaml"), ("yaml", &edited)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let errors_at = page.find("class=\"errors\"").expect("an error list");
    let errors = &page[errors_at..page[errors_at..].find("</pre>").map_or(page.len(), |e| errors_at + e)];
    assert!(errors.contains("taiyuan.yaml:"), "errors name the file: {errors}");
    let line_col = errors.lines().any(|l| {
        let after = l.split("taiyuan.yaml:").nth(1).unwrap_or("");
        let mut parts = after.splitn(3, ':');
        parts.next().is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0)) && parts.next().is_some_and(|n| n.parse::<u32>().is_ok())
    });
    assert!(line_col, "errors give line and column: {errors}");
    assert!(page.contains("lift_windows"), "the pasted text is kept in the form");

    // The unchanged file passes and is reported as unchanged.
    let (_, _, page) = app
        .post_form(
            "/playbooks/check",
            Some(&session),
            &[("csrf", &csrf), ("file", "taiyuan.yaml"), ("yaml", &original)],
        )
        .await;
    assert!(page.contains("检查通过"), "{page}");
    assert!(page.contains("taiyuan@2026.1") && page.contains("未变"));

    // Nothing changed: the file, the live set, the log.
    assert_eq!(
        std::fs::read_to_string(format!("{PLAYBOOKS}/taiyuan.yaml")).expect("the file"),
        original
    );
    let live_after: Vec<String> = app
        .state
        .engine
        .playbooks
        .live()
        .iter()
        .map(|p| format!("{}:{}", p.pin(), p.digest))
        .collect();
    assert_eq!(live_after, live_before);
    let recorded = app.kinds_since(seq);
    assert!(
        !recorded.iter().any(|k| k == "playbooks_reloaded"),
        "no reload was recorded: {recorded:?}"
    );

    // A file name that is not a plain *.yaml name is refused before anything is read.
    let (_, _, page) = app
        .post_form(
            "/playbooks/check",
            Some(&session),
            &[("csrf", &csrf), ("file", "../config/x.yaml"), ("yaml", "id: x")],
        )
        .await;
    assert!(page.contains("文件名须为预案目录中的"), "{page}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_ends_the_session_in_the_browser() {
    let app = spawn_app(&[]).await;
    let session = app.login(HEAD).await;
    let (_, _, page) = app.page("/", Some(&session)).await;
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    let (status, headers, _) = app.post_form("/logout", Some(&session), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, LOCATION), "/login");
    let cleared = set_cookie(&headers, "hazeflow_session").expect("the cookie is cleared");
    assert_eq!(cleared.value, "");
    assert!(cleared.attributes.contains("Max-Age=0"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_enforces_the_same_authority_as_the_api_on_lift_cancel_and_reload() {
    const DEPUTY: &str = "token-of-the-deputy-head";
    let app = spawn_app(&[("李副市长", "deputy_head", DEPUTY)]).await;
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN]).await;
    let session = app.login(DUTY).await;
    let (_, _, page) = app.page("/", Some(&session)).await;
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    let seq = app.last_seq();
    // Taiyuan's orange proposal: a duty officer may neither withdraw (lift) nor cancel it, nor reload.
    for (path, refused) in [
        (format!("/warnings/{}/lift", ids[0]), "解除未成功：无权操作"),
        (format!("/warnings/{}/cancel", ids[0]), "取消未成功：无权操作"),
        ("/playbooks/reload".to_string(), "未重新载入：无权操作"),
    ] {
        let (status, headers, _) = app
            .post_form(&path, Some(&session), &[("csrf", &csrf), ("back", "/"), ("reason", "试试")])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        let flash = set_cookie(&headers, "hazeflow_flash").expect("a message for the next page");
        let back = if path.starts_with("/playbooks") { "/playbooks" } else { "/" };
        let (_, _, page) = app.page(back, Some(&format!("{session}; hazeflow_flash={}", flash.value))).await;
        assert!(page.contains(refused), "{path}: the refusal is shown");
        assert!(
            page.contains("deputy_head") || page.contains("head"),
            "{path}: the role needed is named"
        );
    }
    assert_eq!(app.last_seq(), seq, "nothing was recorded");
    assert_eq!(app.warning_of(TAIYUAN).await.expect("the proposal")["status"], "pending");
    // The deputy head may withdraw it.
    let deputy = app.login(DEPUTY).await;
    let (_, _, page) = app.page("/", Some(&deputy)).await;
    let csrf = hidden_field(&page, "csrf").expect("a CSRF token");
    let (status, _, _) = app
        .post_form(
            &format!("/warnings/{}/lift", ids[0]),
            Some(&deputy),
            &[("csrf", &csrf), ("back", "/")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_ne!(app.warning_of(TAIYUAN).await.map(|w| w["status"].clone()), Some("pending".into()));
    app.stop().await;
}

/// The tile of region `code` in the dashboard's grid: its opening tag and the note under its name.
fn grid_tile(html: &str, code: &str) -> (String, String) {
    let at = html
        .find(&format!("data-region=\"{code}\""))
        .unwrap_or_else(|| panic!("a tile for {code}"));
    let open = html[..at].rfind('<').expect("the tile's tag");
    let tag = html[open..].split('>').next().unwrap_or_default().to_string();
    let rest = html[at..].split("<span class=\"note\">").nth(1).unwrap_or_default();
    // A pending tile's note starts with an empty swatch span.
    let rest = match rest.strip_prefix("<span class=\"sw") {
        Some(sw) => sw.split_once("</span>").map_or("", |(_, r)| r),
        None => rest,
    };
    let note = rest.split("</span>").next().unwrap_or_default().to_string();
    (tag, note)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_city_warning_every_county_tile_of_the_grid_shows_its_level_and_links_to_the_citys_warning() {
    let app = spawn_app(&[]).await;
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN]).await;
    app.sign(&ids[0]).await;
    app.state.engine.clock.set(shanghai("2026-12-02 10:00"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.warning_of(TAIYUAN).await.is_none_or(|w| w["status"] != "active") {
        assert!(std::time::Instant::now() < until, "Taiyuan's warning starts");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let session = app.login(DUTY).await;
    let (status, _, html) = app.page("/", Some(&session)).await;
    assert_eq!(status, StatusCode::OK);
    let html = html.replace("&#x2f;", "/");
    let href = format!("href=\"/warnings/{}\"", ids[0]);
    let (city, note) = grid_tile(&html, TAIYUAN);
    assert!(city.contains(&href) && city.contains("data-status=\"active\""), "{city}");
    assert!(note.contains("生效中") && !note.contains('随'), "the city's own warning: {note}");
    let counties = [
        "140105", "140106", "140107", "140108", "140109", "140110", "140121", "140122", "140123", "140181",
    ];
    for county in counties {
        let (tag, note) = grid_tile(&html, county);
        assert!(tag.contains(&href), "{county} links to Taiyuan's warning: {tag}");
        assert!(
            tag.contains("data-level=\"orange\"") && tag.contains("data-status=\"active\""),
            "{county}: {tag}"
        );
        assert!(tag.contains("tile lv"), "{county} is coloured by the level: {tag}");
        assert!(note.contains("随太原市生效中"), "{county}: {note}");
    }
    // A county of a city without a warning stays 无预警, with no link.
    let (tag, note) = grid_tile(&html, "140302");
    assert!(!tag.contains("href") && tag.contains("data-level=\"none\""), "{tag}");
    assert_eq!(note, "无预警");
    app.stop().await;
}
