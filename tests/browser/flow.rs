//! An episode run from the browser: the afternoon forecast proposes orange for Taiyuan, yellow for
//! Jinzhong and red for Linfen; the head on duty logs in, sees the proposals, signs each with one
//! click and sees the regions coloured on the grid and the warnings issued, Taiyuan's enterprises
//! given their tasks, the charts of the consultation, a playbook check, the list. An enterprise
//! acknowledges from its link; on a phone the progress shows it. Every page, at 1280 px and on a
//! 375 px phone, passes the basic checks and is photographed (target/browser-screenshots/, kept by CI).

use fantoccini::{Client, Locator};

use crate::browser::*;
use crate::helpers::*;

/// Logs in through the form (typing and clicking).
pub(crate) async fn log_in(c: &Client, base: &str, token: &str) {
    open(c, &format!("{base}/login")).await;
    let field = wait_for(c, "#token").await;
    field.send_keys(token).await.expect("the token is typed");
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .expect("a login button")
        .click()
        .await
        .expect("clicked");
    // The login page has a `main h1` too: wait for the navigation itself, not for any heading.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while path(c).await != "/" && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    wait_for(c, "main h1").await;
    assert_eq!(path(c).await, "/", "logged in, on the dashboard");
}

/// The background colour of a region's tile, as the browser computes it.
async fn background(c: &Client, region: &str) -> String {
    let script = format!("return getComputedStyle(document.querySelector(\".tile[data-region='{region}']\")).backgroundColor;");
    js(c, &script).await.as_str().unwrap_or_default().to_string()
}

/// Clicks the sign button of a region's proposal and returns the flash message.
async fn sign(c: &Client, region: &str) -> String {
    let button = wait_for(c, &format!("li.proposal[data-region='{region}'] form.sign button")).await;
    button.click().await.expect("clicked");
    // The page comes back with a message; wait until the proposal is gone.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let gone = c
            .find_all(Locator::Css(&format!("li.proposal[data-region='{region}']")))
            .await
            .map(|v| v.is_empty())
            .unwrap_or(false);
        if gone {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the proposal of {region} is still listed after signing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    text_of(c, ".flash").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_head_on_duty_signs_pending_proposals_in_the_browser_and_sees_the_regions_coloured_and_the_warnings_issued() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;

    // 15:00: the forecast centre's afternoon forecast arrives over the API; the consultation proposes
    // three warnings, each awaiting a signature.
    app.submit_forecast(&three_city_forecast()).await;
    let ids = app.pending(&[TAIYUAN, JINZHONG, LINFEN]).await;
    // The meeting's record (会商意见) is completed: the proposals may be signed.
    app.complete_record(&ids[0]).await;
    let taiyuan_id = ids[0].clone();
    let base = app.base();

    let b = base.clone();
    let tid = taiyuan_id.clone();
    browser
        .run(Screen::Desktop, move |c, camera| async move {
            log_in(&c, &b, HEAD).await;

            // The dashboard lists the three proposals, most severe first, each with a sign button.
            let regions: Vec<String> = {
                let items = c
                    .find_all(Locator::Css("section[aria-labelledby='pending-h'] li.proposal"))
                    .await
                    .expect("proposals");
                let mut out = Vec::new();
                for i in items {
                    out.push(i.attr("data-region").await.expect("an attribute").unwrap_or_default());
                }
                out
            };
            assert_eq!(regions, [LINFEN, TAIYUAN, JINZHONG]);
            let proposal = text_of(&c, &format!("li.proposal[data-region='{TAIYUAN}']")).await;
            assert!(
                proposal.contains("橙色预警") && proposal.contains("太原市") && proposal.contains("AQI>200"),
                "{proposal}"
            );
            let tile = wait_for(&c, &format!(".tile[data-region='{TAIYUAN}']")).await;
            assert_eq!(tile.attr("data-status").await.expect("attr").as_deref(), Some("pending"));
            check_basics(&c, "/ with proposals").await;
            camera.shoot(&c, "01-now-pending").await;

            // 15:05: one click signs Taiyuan's orange warning.
            let flash = sign(&c, TAIYUAN).await;
            assert!(flash.contains("已签发：太原市 橙色预警"), "{flash}");
            let tile = wait_for(&c, &format!("a.tile[data-region='{TAIYUAN}']")).await;
            assert_eq!(tile.attr("data-status").await.expect("attr").as_deref(), Some("issued"));
            assert_eq!(tile.attr("data-level").await.expect("attr").as_deref(), Some("orange"));
            assert_eq!(background(&c, TAIYUAN).await, "rgb(255, 126, 0)", "the tile is orange");
            let row = text_of(&c, &format!("tr[data-warning='{tid}']")).await;
            assert!(
                row.contains("已发布") && row.contains("橙色预警"),
                "the warning is listed as issued: {row}"
            );

            // And the others: Linfen red, Jinzhong yellow.
            assert!(sign(&c, LINFEN).await.contains("临汾市 红色预警"));
            assert!(sign(&c, JINZHONG).await.contains("晋中市 黄色预警"));
            for (region, colour) in [(LINFEN, "rgb(255, 0, 0)"), (JINZHONG, "rgb(255, 255, 0)")] {
                assert_eq!(background(&c, region).await, colour, "{region}");
            }
            assert!(
                text_of(&c, "section[aria-labelledby='pending-h']")
                    .await
                    .contains("没有待签发的提议")
            );
            check_basics(&c, "/ after signing").await;
            camera.shoot(&c, "02-now-signed").await;

            // The tile leads to the warning's page with its history in Chinese.
            wait_for(&c, &format!("a.tile[data-region='{TAIYUAN}']"))
                .await
                .click()
                .await
                .expect("clicked");
            wait_for(&c, "table.history").await;
            assert_eq!(path(&c).await, format!("/warnings/{tid}"));
            let history = text_of(&c, "table.history").await;
            assert!(
                history.contains("会商提议") && history.contains("签发") && history.contains(HEAD_NAME),
                "{history}"
            );
            assert!(
                text_of(&c, "section[aria-labelledby='actions-h']").await.contains("取消预警"),
                "an issued warning can be cancelled"
            );
            check_basics(&c, "the warning page").await;
            camera.shoot(&c, "03-warning").await;
            // Taiyuan's enterprises on the seed list were given their measures when it was signed.
            let progress = text_of(&c, "section[data-module='ack-progress']").await;
            assert!(
                progress.contains("项任务") && progress.contains("小店区"),
                "acknowledgement progress per county: {progress}"
            );
            js(&c, "document.getElementById('ack-h').scrollIntoView(); return true;").await;
            camera.shoot(&c, "03-warning-response").await;

            // The consultations page draws each forecast against the playbook's thresholds.
            open(&c, &format!("{b}/consultations")).await;
            let lines = c
                .find_all(Locator::Css(&format!(
                    "article.consult[data-region='{TAIYUAN}'] svg.chart line.thr"
                )))
                .await
                .expect("lines");
            assert_eq!(lines.len(), 3, "AQI>150, AQI>200, AQI>300");
            let covered = c
                .find_all(Locator::Css(&format!(
                    "article.consult[data-region='{TAIYUAN}'] svg.chart rect.bar.covered"
                )))
                .await
                .expect("bars");
            assert_eq!(
                covered.len(),
                4,
                "the days that fired orange: above 150 from 12-02 to 12-05, above 200 on two of them"
            );
            check_basics(&c, "/consultations").await;
            camera.shoot(&c, "04-consultations").await;

            // The playbooks page checks an edited file without changing anything.
            open(&c, &format!("{b}/playbooks")).await;
            check_basics(&c, "/playbooks").await;
            camera.shoot(&c, "05-playbooks").await;
            wait_for(&c, "#check-file").await.send_keys("taiyuan.yaml").await.expect("typed");
            wait_for(&c, "#check-yaml")
                .await
                .send_keys("id: taiyuan\nversion: \"2025.1\"\nextends: shanxi\nscope: \"140100\"\nlift_window_hours: 12\n")
                .await
                .expect("typed");
            c.find(Locator::Css("form[action='/playbooks/check'] button"))
                .await
                .expect("a button")
                .click()
                .await
                .expect("clicked");
            let result = text_of(&c, "#check-result").await;
            assert!(result.contains("taiyuan.yaml:"), "errors name the file, line and column: {result}");
            check_basics(&c, "/playbooks with a check result").await;
            camera.shoot(&c, "06-playbook-check").await;

            // The list: Taiyuan's enterprises, one of them with its measures per level and its task.
            open(&c, &format!("{b}/list?region={TAIYUAN}")).await;
            let count = text_of(&c, "#rows-h").await;
            assert!(!count.contains("（0 家"), "Taiyuan has enterprises on the seed list: {count}");
            check_basics(&c, "/list").await;
            camera.shoot(&c, "07-list").await;
            wait_for(&c, "table.enterprises tbody tr a").await.click().await.expect("clicked");
            let measures = text_of(&c, "section[aria-labelledby='m-h']").await;
            assert!(measures.contains("黄色预警") && measures.contains("红色预警"), "{measures}");
            let tasks = text_of(&c, "section[aria-labelledby='a-h']").await;
            assert!(tasks.contains(&tid), "the enterprise's task under the warning: {tasks}");
            check_basics(&c, "an enterprise's page").await;
            camera.shoot(&c, "08-enterprise").await;
            open(&c, &format!("{b}/list/reports")).await;
            assert!(text_of(&c, "main").await.contains("覆盖率"), "the coverage report");
            check_basics(&c, "/list/reports").await;
            camera.shoot(&c, "09-reports").await;
        })
        .await;

    for (region, level, status) in [
        (TAIYUAN, "orange", "issued"),
        (JINZHONG, "yellow", "issued"),
        (LINFEN, "red", "issued"),
    ] {
        let w = app.warning_of(region).await.expect("a warning");
        assert_eq!(
            (w["level"].as_str(), w["status"].as_str()),
            (Some(level), Some(status)),
            "{region}: {w}"
        );
    }

    // 15:30: an enterprise in Taiyuan acknowledges from the link in its notice ("measures in place").
    let (key, token) = {
        let assignments = app
            .state
            .engine
            .store
            .read(|r| hazeflow::engine::assign::of_warning(r, &taiyuan_id, "", 10_000))
            .expect("the store reads");
        let a = assignments
            .iter()
            .find(|a| matches!(a.party, hazeflow::engine::assign::Party::Enterprise { .. }))
            .expect("an enterprise was assigned");
        (a.key.clone(), app.state.tokens.token(a))
    };
    // 收到, then 措施已落实 with every line of its page ticked.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/acks/{token}")))
        .json(&serde_json::json!({ "step": "received", "name": "张厂长", "phone": "13800000000" }))
        .send()
        .await
        .expect("the daemon answers");
    assert!(r.status().is_success(), "{key}: {}", r.text().await.unwrap_or_default());
    let page = app
        .http
        .get(app.url(&format!("/ack/{token}")))
        .send()
        .await
        .expect("the daemon answers")
        .text()
        .await
        .expect("the page");
    let lines: Vec<&str> = page
        .split("name=\"line\" value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let r = app
        .http
        .post(app.url(&format!("/api/v1/acks/{token}")))
        .json(&serde_json::json!({ "step": "in_place", "name": "张厂长", "phone": "13800000000", "lines": lines }))
        .send()
        .await
        .expect("the daemon answers");
    assert!(r.status().is_success(), "{key}: {}", r.text().await.unwrap_or_default());

    // The same pages on a phone: nothing wider than the screen, every field labelled; the
    // acknowledgement shows in the progress.
    let b = base.clone();
    browser
        .run(Screen::Phone, move |c, camera| async move {
            open(&c, &format!("{b}/ack/{token}")).await;
            camera.shoot(&c, "10-ack-page").await;
            open(&c, &format!("{b}/login")).await;
            let width = js(&c, "return window.innerWidth;").await;
            assert_eq!(width.as_u64(), Some(375), "a phone-sized viewport");
            check_basics(&c, "/login on a phone").await;
            camera.shoot(&c, "00-login").await;
            log_in(&c, &b, HEAD).await;
            for (name, page) in [
                ("02-now-signed", "/".to_string()),
                ("03-warning", format!("/warnings/{taiyuan_id}")),
                ("04-consultations", "/consultations".into()),
                ("05-playbooks", "/playbooks".into()),
                ("07-list", format!("/list?region={TAIYUAN}")),
                ("09-reports", "/list/reports".into()),
            ] {
                open(&c, &format!("{b}{page}")).await;
                wait_for(&c, "main h1").await;
                check_basics(&c, &format!("{page} on a phone")).await;
                camera.shoot(&c, name).await;
            }
            open(&c, &format!("{b}/warnings/{taiyuan_id}")).await;
            let progress = text_of(&c, "section[data-module='ack-progress']").await;
            assert!(
                progress.contains("已收到 1") && progress.contains("措施到位 1"),
                "the acknowledgement is counted: {progress}"
            );
        })
        .await;
    println!("screenshots in {}", shown(&screenshot_dir()));
    app.stop().await;
}
