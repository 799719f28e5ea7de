//! A drill (演练) from the dashboard: Taiyuan is under a real orange warning when a drill's red
//! forecast (marked in the file, `# exercise: true`) comes in. The head on duty finds the drill's
//! proposal on the 演练 page — not among the real proposals of the start page — signs it with one
//! click, and sees it listed as a drill with its report; the start page still shows the real orange
//! warning only, and the drill's own page says it is a drill.

use fantoccini::Locator;

use crate::browser::*;
use crate::flow::log_in;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_head_signs_a_drill_on_the_drills_page_and_the_start_page_keeps_showing_the_real_warning_only() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;
    app.submit_forecast(&forecast_of(TAIYUAN, [120, 160, 230, 240, 180, 120, 100]))
        .await;
    let real = app.pending(&[TAIYUAN]).await.remove(0);
    app.sign(&real).await;
    let drill_csv = forecast_of(TAIYUAN, [260, 320, 280, 220, 150, 120, 100]).replacen("\nregion,", "\n# exercise: true\nregion,", 1);
    app.submit_forecast(&drill_csv).await;
    let drills = app.api("/api/v1/drills").await;
    let drill = drills["drills"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a drill: {drills}"))
        .to_string();
    // The drill's consultation takes its record (会商意见) like a real one: then its proposal signs.
    app.complete_record(&drill).await;
    let base = app.base();

    let (b, r, d) = (base.clone(), real.clone(), drill.clone());
    browser
        .run(Screen::Desktop, move |c, camera| async move {
            log_in(&c, &b, HEAD).await;
            // The start page: the real warning, no drill, nothing to sign.
            wait_for(&c, &format!("tr[data-warning='{r}']")).await;
            assert!(c.find_all(Locator::Css(&format!("[data-warning='{d}']"))).await.unwrap().is_empty());
            assert!(c.find_all(Locator::Css("li.proposal")).await.unwrap().is_empty());

            // The 演练 page: the drill's proposal, signed with one click.
            c.find(Locator::Css("nav a[href='/drills']"))
                .await
                .expect("a 演练 link")
                .click()
                .await
                .expect("clicked");
            let button = wait_for(&c, &format!("li.proposal[data-warning='{d}'] form.sign button")).await;
            check_basics(&c, "/drills with a proposal").await;
            button.click().await.expect("clicked");
            // The page comes back with a message (the old page, listing the proposal, has none).
            let flash = text_of(&c, ".flash").await;
            assert!(flash.contains("已签发：【演练】太原市 红色预警"), "{flash}");
            assert_eq!(path(&c).await, "/drills");
            assert!(c.find_all(Locator::Css("li.proposal")).await.unwrap().is_empty());
            let row = text_of(&c, &format!("tr[data-warning='{d}'][data-exercise='true']")).await;
            assert!(
                row.contains("演练") && row.contains("太原市") && row.contains("红色预警") && row.contains("生效中"),
                "{row}"
            );
            let report = text_of(&c, &format!("article.drill-report[data-warning='{d}']")).await;
            assert!(report.contains("合计") && report.contains("太原市"), "{report}");
            check_basics(&c, "/drills with a drill in force").await;
            camera.shoot(&c, "drills").await;

            // Its page says it is a drill.
            open(&c, &format!("{b}/warnings/{d}")).await;
            let h1 = text_of(&c, "main h1").await;
            assert!(h1.starts_with("演练"), "{h1}");
            assert!(text_of(&c, ".drill-note").await.contains("不是真实预警"));
            // The start page is as it was: Taiyuan orange.
            open(&c, &format!("{b}/")).await;
            let tile = wait_for(&c, &format!("a.tile[data-region='{TAIYUAN}']")).await;
            assert_eq!(tile.attr("data-level").await.expect("attr").as_deref(), Some("orange"));
        })
        .await;
    app.stop().await;
}
