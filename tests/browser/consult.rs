//! The consultation's paperwork in the browser: the duty officer completes the 会商意见 of the afternoon
//! consultation (units and people, the analysis, Taiyuan lowered to yellow with a reason), finds the
//! 审批表 on the warning's page, completes it and prints it: Chromium's own print to PDF, read back as
//! text, holds the form's fields and none of the page's forms (the print styles leave them out).

use std::io::Write;

use fantoccini::wd::PrintConfiguration;
use fantoccini::{Client, Locator};

use crate::browser::*;
use crate::flow::log_in;
use crate::helpers::*;

async fn type_into(c: &Client, css: &str, text: &str) {
    wait_for(c, css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
}

async fn submit(c: &Client, css: &str) {
    let before = c.current_url().await.expect("a URL");
    wait_for(c, css).await.click().await.expect("clicked");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    // The form posts and the page comes back with a message.
    while c.find(Locator::Css(".flash")).await.is_err() && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        c.find(Locator::Css(".flash")).await.is_ok(),
        "no message after submitting on {before}"
    );
}

/// The text of a PDF, as `pdftotext` reads it; `None` where poppler-utils is not installed (a
/// failure under CI, which installs it).
fn pdf_text(pdf: &[u8]) -> Option<String> {
    if std::process::Command::new("pdftotext").arg("-v").output().is_err() {
        assert!(std::env::var("CI").is_err(), "pdftotext (poppler-utils) is needed under CI");
        eprintln!("skipped: pdftotext not installed, the printed form is not read back");
        return None;
    }
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    f.write_all(pdf).expect("written");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", &f.path().display().to_string(), "-"])
        .output()
        .expect("pdftotext runs");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_duty_officer_completes_the_consultation_record_lowering_a_proposal_then_completes_and_prints_its_approval_form() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;
    app.submit_forecast(&forecast_of(TAIYUAN, [120, 160, 230, 240, 180, 120, 100]))
        .await;
    let id = app.pending(&[TAIYUAN]).await.remove(0);
    let base = app.base();

    let b = base.clone();
    let wid = id.clone();
    browser
        .run(Screen::Desktop, move |c, camera| async move {
            log_in(&c, &b, DUTY).await;
            open(&c, &format!("{b}/consultations")).await;
            c.find(Locator::LinkText("会商意见"))
                .await
                .expect("the record's link")
                .click()
                .await
                .expect("clicked");
            wait_for(&c, "#opinion-form").await;
            assert!(path(&c).await.starts_with("/consultations/"), "{}", path(&c).await);
            let card = text_of(&c, &format!("article[data-region='{TAIYUAN}']")).await;
            assert!(card.contains("系统建议") && card.contains("橙色预警"), "{card}");
            wait_for(&c, &format!("article[data-region='{TAIYUAN}'] svg.chart")).await;

            type_into(&c, "#units", "省生态环境监测和应急保障中心：张明\n太原市气象局：李华、周婷").await;
            type_into(&c, "#weather", "受弱高压控制，近地面静风，逆温层厚。").await;
            type_into(&c, "#trend", "3日至4日污染持续，5日冷空气过境后好转。").await;
            type_into(&c, "#primary_pollutant", "PM2.5").await;
            wait_for(&c, &format!("#decision_{TAIYUAN}"))
                .await
                .select_by_value("change")
                .await
                .expect("调整");
            wait_for(&c, &format!("#level_{TAIYUAN}"))
                .await
                .select_by_value("yellow")
                .await
                .expect("黄色");
            check_basics(&c, "the consultation's record").await;
            camera.shoot(&c, "30-opinion-form").await;
            // A change without a reason is refused, naming what is missing, and nothing is recorded.
            submit(&c, "#opinion-form button[type=submit]").await;
            let flash = text_of(&c, ".flash").await;
            assert!(
                flash.contains("会商意见未记录") && flash.contains("第1个地区的理由：调整系统建议须说明理由"),
                "{flash}"
            );
            // (the form comes back empty: the record is typed again, with the reason)
            type_into(&c, "#units", "省生态环境监测和应急保障中心：张明\n太原市气象局：李华、周婷").await;
            type_into(&c, "#weather", "受弱高压控制，近地面静风，逆温层厚。").await;
            type_into(&c, "#trend", "3日至4日污染持续，5日冷空气过境后好转。").await;
            type_into(&c, "#primary_pollutant", "PM2.5").await;
            wait_for(&c, &format!("#decision_{TAIYUAN}"))
                .await
                .select_by_value("change")
                .await
                .expect("调整");
            wait_for(&c, &format!("#level_{TAIYUAN}"))
                .await
                .select_by_value("yellow")
                .await
                .expect("黄色");
            type_into(
                &c,
                &format!("#reason_{TAIYUAN}"),
                "模式对逆温层厚度预报偏高，会商认为达不到橙色条件",
            )
            .await;
            submit(&c, "#opinion-form button[type=submit]").await;
            let flash = text_of(&c, ".flash").await;
            assert!(flash.contains("会商意见已记录"), "{flash}");
            let card = text_of(&c, &format!("article[data-region='{TAIYUAN}']")).await;
            assert!(
                card.contains("会商结论") && card.contains("调整：黄色预警") && card.contains("逆温层厚度预报偏高"),
                "the proposal and the decision side by side: {card}"
            );
            let record = text_of(&c, "section[aria-labelledby='rec-h']").await;
            assert!(record.contains("太原市气象局（李华、周婷）"), "{record}");
            camera.shoot(&c, "31-opinion-recorded").await;

            // The warning's page lists its 审批表; it opens as a sheet to print.
            open(&c, &format!("{b}/warnings/{wid}")).await;
            let listed = text_of(&c, "section[aria-labelledby='approvals-h']").await;
            assert!(
                listed.contains("重污染天气预警信息发布审批表") && listed.contains("待填报") && listed.contains("已过0分钟"),
                "the form, its state and the time taken so far: {listed}"
            );
            wait_for(&c, "section[aria-labelledby='approvals-h'] a")
                .await
                .click()
                .await
                .expect("clicked");
            wait_for(&c, "table.sheet").await;
            let sheet = text_of(&c, ".approval-sheet").await;
            for want in [
                "重污染天气预警信息发布审批表",
                "出现时段",
                "黄色预警（Ⅲ级应急响应）",
                "不利气象条件",
                "会商意见",
                "调整系统建议（橙色预警）",
            ] {
                assert!(sheet.contains(want), "the sheet lacks {want}: {sheet}");
            }
            let weather = wait_for(&c, "#weather")
                .await
                .prop("value")
                .await
                .expect("a value")
                .unwrap_or_default();
            assert_eq!(weather, "受弱高压控制，近地面静风，逆温层厚。", "prefilled from the record");
            wait_for(&c, "#trend").await.clear().await.expect("cleared");
            type_into(&c, "#trend", "12月2日至4日中度至重度污染，5日起好转。").await;
            type_into(&c, "#measures", "启动Ⅲ级应急响应，清单内企业落实黄色预警减排措施。").await;
            submit(&c, "form[action$='/complete'] button[type=submit]").await;
            assert!(text_of(&c, ".flash").await.contains("审批表已填报"));
            let sheet = text_of(&c, ".approval-sheet").await;
            assert!(
                sheet.contains("值班员小张") && sheet.contains("按时"),
                "who completed it and in time: {sheet}"
            );
            let docx = wait_for(&c, "a[download]")
                .await
                .attr("href")
                .await
                .expect("attr")
                .unwrap_or_default();
            assert!(docx.ends_with("/docx"), "{docx}");
            check_basics(&c, "the approval form").await;
            camera.shoot(&c, "32-approval-form").await;

            // Printed by Chromium: the sheet, without the page's forms and navigation.
            let pdf = c.print(PrintConfiguration::default()).await.expect("the page prints");
            assert!(pdf.starts_with(b"%PDF"), "a PDF");
            if let Some(text) = pdf_text(&pdf) {
                let flat: String = text.split_whitespace().collect();
                for want in [
                    "重污染天气预警信息发布审批表",
                    "出现时段",
                    "黄色预警",
                    "应急措施",
                    "会商意见",
                    "值班员小张",
                ] {
                    assert!(flat.contains(want), "the printed form lacks {want}: {text}");
                }
                for gone in ["填报审批表", "下载", "态势", "退出"] {
                    assert!(!flat.contains(gone), "the print shows {gone}: {text}");
                }
            }
        })
        .await;

    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    assert_eq!(
        (w["status"].as_str(), w["level"].as_str()),
        (Some("pending"), Some("yellow")),
        "{w}"
    );
    let forms = app.api(&format!("/api/v1/approvals?warning={id}")).await;
    assert!(forms["approvals"][0]["form"]["completed_at"].is_string(), "{forms}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sign_form_waits_for_the_consultations_record_and_signs_once_it_is_completed() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;
    app.submit_forecast(&forecast_of(TAIYUAN, [120, 160, 230, 240, 180, 120, 100]))
        .await;
    let id = app.pending(&[TAIYUAN]).await.remove(0);
    let base = app.base();
    let app = std::sync::Arc::new(app);

    let (b, wid, a) = (base.clone(), id.clone(), app.clone());
    browser
        .run(Screen::Desktop, move |c, camera| async move {
            log_in(&c, &b, HEAD).await;
            // The warning page says whose record is awaited; signing without it (and without a
            // reason) is refused on that page, and the proposal still waits.
            open(&c, &format!("{b}/warnings/{wid}")).await;
            let note = text_of(&c, "#record-awaited").await;
            assert!(note.contains("号会商提出") && note.contains("会商意见尚未填写"), "{note}");
            wait_for(&c, "#without_record").await;
            check_basics(&c, "a warning awaiting its consultation's record").await;
            camera.shoot(&c, "32-sign-awaits-record").await;
            submit(&c, "form[action$='/sign'] button[type=submit]").await;
            let flash = text_of(&c, ".flash").await;
            assert!(flash.contains("签发未成功") && flash.contains("须先完成会商意见"), "{flash}");
            assert_eq!(path(&c).await, format!("/warnings/{wid}"));
            assert_eq!(a.warning_of(TAIYUAN).await.expect("the proposal")["status"], "pending");

            // The meeting's record completed, the same form signs.
            a.complete_record(&wid).await;
            open(&c, &format!("{b}/warnings/{wid}")).await;
            assert!(c.find(Locator::Css("#record-awaited")).await.is_err(), "no longer awaited");
            submit(&c, "form[action$='/sign'] button[type=submit]").await;
            let flash = text_of(&c, ".flash").await;
            assert!(flash.contains("已签发：太原市 橙色预警"), "{flash}");
            assert_eq!(a.warning_of(TAIYUAN).await.expect("the warning")["status"], "issued");
        })
        .await;
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
}
