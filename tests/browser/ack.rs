//! An enterprise acknowledges its task on a phone, from the link in the notice the daemon mailed it:
//! 收到 (received), then 措施已落实 (measures in place) once every line is ticked (the browser holds the
//! form back while one is not), with a note; at the duty office the warning's page shows the county's
//! progress move at each step. And the page itself at
//! phone width: nothing wider than the screen, every control named for a screen reader, Tab reaching
//! every control in the order shown, and the buttons pressed with Space and Enter alone.
//!
//! The link is the one in the `.eml` file the daemon wrote (no SMTP server is configured in the
//! tests), not one made from the store, so a broken link in the notice fails here.

use std::sync::{Arc, Mutex};

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::browser::*;
use crate::flow::log_in;
use crate::helpers::*;

/// Taiyuan above 200 on two days: orange.
const ORANGE: [u32; 7] = [120, 160, 230, 240, 180, 120, 100];
/// Taiyuan above 200 on four days and above 300 on one: red.
const RED: [u32; 7] = [150, 260, 320, 280, 210, 140, 100];

/// Who acknowledges, and what they write.
const NAME: &str = "张厂长";
const PHONE: &str = "13800000000";
const NOTE: &str = "已按一厂一策落实，用电量已核定";

/// What a scenario in the browser leaves for the checks on the record afterwards: the enterprise's
/// credit code, the lines left ticked, and the one unticked.
#[derive(Debug, Default)]
struct Acked {
    uscc: String,
    kept: Vec<String>,
    off: String,
}

/// Hands an [`Acked`] out of a scenario.
type Handoff = Arc<Mutex<Option<Acked>>>;

/// Issues a Taiyuan warning from a forecast, signed by the head; returns its id and the task notices
/// mailed to enterprises, sorted by file name.
async fn issue(app: &TestApp, aqi: [u32; 7], level_name: &str) -> (String, Vec<Notice>) {
    app.submit_forecast(&forecast_of(TAIYUAN, aqi)).await;
    let id = app.pending(&[TAIYUAN]).await.remove(0);
    app.sign(&id).await;
    let notices = app.task_notices(&format!("太原市重污染天气{level_name}应急减排任务通知")).await;
    (id, notices)
}

/// The first notice listing two measures or more, and its link pointed at the test daemon (the link
/// is written with the configured `public_url`; the daemon under test listens on another port).
fn pick(app: &TestApp, notices: &[Notice]) -> (Notice, String) {
    let n = notices
        .iter()
        .find(|n| n.measures.len() >= 2)
        .unwrap_or_else(|| panic!("no notice lists two measures: {notices:#?}"))
        .clone();
    let public = app.state.settings.http.public_url.trim_end_matches('/');
    let path = n
        .link
        .strip_prefix(public)
        .unwrap_or_else(|| panic!("the link {} is not under the public URL {public}", n.link));
    assert!(path.starts_with("/ack/"), "{}", n.link);
    let link = app.url(path);
    (n, link)
}

/// What a field holds.
async fn value(c: &Client, css: &str) -> String {
    wait_for(c, css)
        .await
        .prop("value")
        .await
        .unwrap_or_else(|e| panic!("cannot read {css}: {e}"))
        .unwrap_or_default()
}

/// Types into a field (WebDriver clicks it first, as a finger would).
async fn fill(c: &Client, css: &str, text: &str) {
    wait_for(c, css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
}

/// The acknowledgements the page confirms (`✓ 已收到：…`), read in one go (the page may be
/// reloading after a post).
async fn confirmed(c: &Client) -> Vec<String> {
    let v = js(
        c,
        "return Array.prototype.map.call(document.querySelectorAll('p.done'), function (p) { return p.innerText.trim(); });",
    )
    .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// Waits until the page confirms `n` acknowledgements (the form posts, and the page comes back).
async fn wait_confirmed(c: &Client, n: usize) -> Vec<String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let done = confirmed(c).await;
        if done.len() >= n {
            return done;
        }
        assert!(std::time::Instant::now() < until, "the page confirms {done:?}, not {n} steps");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The text of the submit button.
async fn button(c: &Client) -> String {
    text_of(c, "form button[type=submit]").await
}

/// The words of each line to tick (its label without the number), as the record keeps them.
async fn line_items(c: &Client) -> Vec<String> {
    let v = js(
        c,
        "return Array.prototype.map.call(document.querySelectorAll(\"input[type=checkbox][name=line]\"), \
         function (b) { return b.parentElement.textContent.trim().replace(/^\\d+\\.\\s*/, ''); });",
    )
    .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// Whether the browser holds the form back: a required line box left unticked.
async fn held_back(c: &Client) -> bool {
    js(c, "return !document.querySelector('form').checkValidity();")
        .await
        .as_bool()
        .unwrap_or(false)
}

/// The line checkboxes: `(value, checked)`.
async fn lines(c: &Client) -> Vec<(String, bool)> {
    let v = js(
        c,
        "return Array.prototype.map.call(document.querySelectorAll(\"input[type=checkbox][name=line]\"), \
         function (b) { return [b.value, b.checked]; });",
    )
    .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| (p[0].as_str().unwrap_or_default().to_string(), p[1].as_bool().unwrap_or(false)))
                .collect()
        })
        .unwrap_or_default()
}

/// What the page must pass on a phone: the basic checks (nothing wider than the 375 px screen, every
/// field labelled, readable contrast), a name a screen reader reads out for every control, including
/// each of `names`, and Tab from the top reaching every control in the order shown, ending on the
/// submit button, with the focus visible there. Call it on a freshly loaded page.
async fn phone_checks(c: &Client, what: &str, names: &[&str]) {
    check_basics(c, what).await;
    assert_eq!(
        js(c, "return window.innerWidth;").await.as_u64(),
        Some(375),
        "{what}: the page fits the 375 px phone without zooming out"
    );
    let controls = control_names(c).await;
    for (control, name) in &controls {
        assert!(!name.is_empty(), "{what}: {control} has no accessible name: {controls:?}");
    }
    for n in names {
        assert!(
            controls.iter().any(|(_, name)| name.contains(n)),
            "{what}: no control is named {n}: {controls:?}"
        );
    }
    let mut order = Vec::new();
    for _ in 0..controls.len() + 3 {
        press(c, Key::Tab).await;
        let f = focused(c).await;
        let end = f.starts_with("button[submit]");
        order.push(f);
        if end {
            break;
        }
    }
    let shown: Vec<&str> = controls.iter().map(|(control, _)| control.as_str()).collect();
    assert_eq!(order, shown, "{what}: Tab goes through the controls in the order shown");
    let (shows, outline) = focus_shows(c).await;
    assert!(shows, "{what}: the focused button shows it: {outline}");
}

/// On the enterprise's page at the duty office: its county (`县区`, by name) and what the 确认 column
/// says of its task under the warning.
async fn enterprise_page(c: &Client, base: &str, uscc: &str, warning: &str) -> (String, String) {
    open(c, &format!("{base}/list/{uscc}")).await;
    wait_for(c, "section[aria-labelledby='a-h']").await;
    let script = format!(
        "var county = null; \
         document.querySelectorAll('dl.facts dt').forEach(function (dt) {{ \
           if (dt.textContent.trim() === '县区') county = dt.nextElementSibling.innerText.trim(); }}); \
         var acks = null; \
         document.querySelectorAll(\"section[aria-labelledby='a-h'] tbody tr\").forEach(function (tr) {{ \
           if (tr.querySelector(\"td[data-label='预警']\").innerText.trim() === {warning}) \
             acks = tr.querySelector(\"td[data-label='确认']\").innerText.trim(); }}); \
         return [county, acks];",
        warning = serde_json::to_string(warning).expect("JSON")
    );
    let v = js(c, &script).await;
    let county = v[0].as_str().unwrap_or_else(|| panic!("no 县区 on the page of {uscc}"));
    let acks = v[1]
        .as_str()
        .unwrap_or_else(|| panic!("no task under {warning} on the page of {uscc}"));
    (county.split('（').next().unwrap_or(county).to_string(), acks.to_string())
}

/// A county's row of the progress table on the warning page: `[tasks, received, in place]` as the
/// figures read; the two bars beside them must show the same.
async fn county_progress(c: &Client, county: &str) -> [u64; 3] {
    let script = format!(
        "var rows = document.querySelectorAll(\"section[data-module='ack-progress'] table.progress tbody tr\"); \
         for (var i = 0; i < rows.length; i++) {{ \
           var r = rows[i]; \
           var cell = function (l) {{ return r.querySelector(\"td[data-label='\" + l + \"']\"); }}; \
           if (cell('地区').textContent.trim() !== {county}) continue; \
           return {{ figures: [cell('任务'), cell('已收到'), cell('措施到位')].map(function (c) {{ return parseInt(c.textContent, 10); }}), \
                    bars: Array.prototype.map.call(r.querySelectorAll('progress'), function (b) {{ return [b.value, b.max]; }}) }}; \
         }} return null;",
        county = serde_json::to_string(county).expect("JSON")
    );
    let v = js(c, &script).await;
    assert!(!v.is_null(), "no row for {county} in the progress table");
    let n = |x: &Value| x.as_u64().unwrap_or_else(|| panic!("not a number in the row of {county}: {v}"));
    let f = [n(&v["figures"][0]), n(&v["figures"][1]), n(&v["figures"][2])];
    let bars: Vec<[u64; 2]> = v["bars"]
        .as_array()
        .map(|a| a.iter().map(|b| [n(&b[0]), n(&b[1])]).collect())
        .unwrap_or_default();
    assert_eq!(bars, [[f[1], f[0]], [f[2], f[0]]], "the bars of {county} show the figures {f:?}");
    f
}

/// Scrolls the warning page to its progress table, for the screenshot.
async fn show_progress(c: &Client) {
    js(c, "document.getElementById('ack-h').scrollIntoView(); return true;").await;
}

/// The enterprise's credit code as the page shows it beside its name (`名称（代码）`).
async fn uscc_on_page(c: &Client, enterprise: &str) -> String {
    let main = text_of(c, "main").await;
    let after = main
        .split_once(&format!("{enterprise}（"))
        .unwrap_or_else(|| panic!("the page does not name {enterprise}: {main}"))
        .1;
    after.split('）').next().unwrap_or_default().trim().to_string()
}

/// The acknowledgements recorded on an enterprise's current task, as the staff API lists them.
async fn recorded(app: &TestApp, uscc: &str) -> Vec<Value> {
    let e = app.api(&format!("/api/v1/enterprises/{uscc}")).await;
    e["current_assignment"]["acks"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enterprise_acknowledges_on_a_phone_and_the_duty_officer_sees_its_county_progress_move() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;
    // 15:00: the head signs Taiyuan's orange warning; every enterprise on the list is mailed its task.
    let (id, notices) = issue(&app, ORANGE, "橙色预警").await;
    let (notice, link) = pick(&app, &notices);
    let base = app.base();
    let out = Handoff::default();
    let found = out.clone();
    let n = notice.clone();
    browser
        .run_pair(Screen::Phone, Screen::Desktop, move |(phone, pcam), (desk, dcam)| async move {
            // The enterprise opens the link of its notice on a phone: its task, its measures as the
            // mail listed them, and a form to say 收到.
            open(&phone, &link).await;
            let title = text_of(&phone, "h1").await;
            assert!(title.contains("太原市重污染天气橙色预警"), "{title}");
            let uscc = uscc_on_page(&phone, &n.enterprise).await;
            let measures = text_of(&phone, "main ul").await;
            for m in &n.measures {
                assert!(measures.contains(m.as_str()), "the page lists \"{m}\" as the mail did: {measures}");
            }
            assert_eq!(button(&phone).await, "收到");
            assert!(lines(&phone).await.is_empty(), "no lines to tick before receiving");
            phone_checks(&phone, "the link opened on a phone", &["姓名", "联系电话", "备注", "收到"]).await;
            pcam.shoot(&phone, "ack-1-opened").await;

            // At the duty office: the enterprise's task is not acknowledged; its county's row on the
            // warning's page counts its tasks.
            log_in(&desk, &base, DUTY).await;
            let (county, acks) = enterprise_page(&desk, &base, &uscc, &id).await;
            assert_eq!(acks, "未确认");
            let contacts = text_of(&desk, "main").await;
            assert!(contacts.contains(&n.to), "the notice went to a contact on the list: {}", n.to);
            let warning = format!("{base}/warnings/{id}");
            open(&desk, &warning).await;
            let [tasks, received, in_place] = county_progress(&desk, &county).await;
            assert!(
                received < tasks && in_place < tasks,
                "{county} has a task left to acknowledge: {tasks} {received} {in_place}"
            );
            show_progress(&desk).await;
            dcam.shoot(&desk, "ack-0-dashboard-before").await;

            // Name and phone, then 收到: the page confirms it.
            fill(&phone, "#name", NAME).await;
            fill(&phone, "#phone", PHONE).await;
            pcam.shoot(&phone, "ack-2-filled").await;
            wait_for(&phone, "form button[type=submit]").await.click().await.expect("clicked");
            let done = wait_confirmed(&phone, 1).await;
            assert_eq!(done, [format!("✓ 已收到：2026年12月1日 15:00，{NAME}")]);
            // Next: the measures, line by line, none ticked to begin with (one tap must not confirm
            // every line).
            assert_eq!(button(&phone).await, "措施已落实");
            let ticks = lines(&phone).await;
            assert!(ticks.len() >= 2, "the enterprise's lines to tick: {ticks:?}");
            assert!(ticks.iter().all(|(_, on)| !*on), "none ticked to begin with: {ticks:?}");
            let items = line_items(&phone).await;
            for m in &n.measures {
                assert!(items.contains(m), "a box for \"{m}\", the mail's line: {items:?}");
            }
            phone_checks(&phone, "the page after 收到", &["姓名", "联系电话", "备注", "措施已落实"]).await;
            pcam.shoot(&phone, "ack-3-received").await;

            // At the duty office the county counts one more received, no more in place.
            open(&desk, &warning).await;
            assert_eq!(county_progress(&desk, &county).await, [tasks, received + 1, in_place]);
            show_progress(&desk).await;
            dcam.shoot(&desk, "ack-4-dashboard-received").await;

            // Measures in place: the same person is filled in already; every line but the last ticked, a
            // note: the browser holds the form back, nothing is sent.
            assert_eq!(
                (value(&phone, "#name").await, value(&phone, "#phone").await),
                (NAME.to_string(), PHONE.to_string()),
                "who confirmed receipt is filled in for the second step"
            );
            let (off, _) = ticks.last().cloned().expect("a line");
            for (v, _) in ticks.iter().filter(|(v, _)| *v != off) {
                wait_for(&phone, &format!("input[name=line][value='{v}']"))
                    .await
                    .click()
                    .await
                    .expect("clicked");
            }
            let now = lines(&phone).await;
            assert_eq!(
                now.iter().filter(|(_, on)| !on).map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
                [off.as_str()],
                "one line left unticked"
            );
            fill(&phone, "#note", NOTE).await;
            assert!(held_back(&phone).await, "a line left unticked holds the form back");
            wait_for(&phone, "form button[type=submit]").await.click().await.expect("clicked");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            assert_eq!(confirmed(&phone).await.len(), 1, "not sent with a line unticked");
            pcam.shoot(&phone, "ack-5-in-place-one-left").await;
            // The last line ticked too: sent.
            wait_for(&phone, &format!("input[name=line][value='{off}']"))
                .await
                .click()
                .await
                .expect("clicked");
            assert!(!held_back(&phone).await, "every line ticked");
            wait_for(&phone, "form button[type=submit]").await.click().await.expect("clicked");
            let done = wait_confirmed(&phone, 2).await;
            assert_eq!(
                done,
                [
                    format!("✓ 已收到：2026年12月1日 15:00，{NAME}"),
                    format!("✓ 措施已落实：2026年12月1日 15:00，{NAME}")
                ]
            );
            assert!(
                phone.find_all(Locator::Css("form")).await.expect("the page").is_empty(),
                "nothing left to acknowledge"
            );
            check_basics(&phone, "the page after 措施已落实").await;
            // The note given is shown back.
            let note = phone
                .find(Locator::Css(".ack-note"))
                .await
                .expect("the note shown back")
                .text()
                .await
                .expect("its text");
            assert_eq!(note, format!("备注：{NOTE}"));
            pcam.shoot(&phone, "ack-6-in-place").await;

            // At the duty office: one more in place in the county; the enterprise's page lists both.
            open(&desk, &warning).await;
            assert_eq!(county_progress(&desk, &county).await, [tasks, received + 1, in_place + 1]);
            show_progress(&desk).await;
            dcam.shoot(&desk, "ack-7-dashboard-in-place").await;
            let (_, acks) = enterprise_page(&desk, &base, &uscc, &id).await;
            assert!(
                acks.contains(&format!("已收到（{NAME}）")) && acks.contains(&format!("措施已落实（{NAME}）")),
                "the enterprise's page shows both steps: {acks}"
            );
            dcam.shoot(&desk, "ack-8-enterprise").await;
            *found.lock().expect("the lock") = Some(Acked { uscc, kept: items, off });
        })
        .await;

    // On the record, as the staff API lists it: who, the lines ticked (not the one unticked), the note.
    let Acked { uscc, kept, off } = out.lock().expect("the lock").take().expect("the scenario ran to its end");
    let acks = recorded(&app, &uscc).await;
    let step = |s: &str| acks.iter().find(|a| a["step"] == s).cloned().unwrap_or_default();
    let (received, in_place) = (step("received"), step("in_place"));
    assert_eq!(
        (received["name"].as_str(), received["phone"].as_str()),
        (Some(NAME), Some(PHONE)),
        "{acks:?}"
    );
    assert_eq!(in_place["note"].as_str(), Some(NOTE), "{acks:?}");
    let lines: Vec<String> = serde_json::from_value(in_place["lines"].clone()).expect("lines");
    assert_eq!(lines, kept, "every line is recorded in its words, {off} (ticked last) too");
    println!("{}: acknowledged from {}", notice.enterprise, notice.file);
    println!("screenshots in {}", shown(&screenshot_dir()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enterprise_acknowledges_a_red_warning_on_a_phone_with_the_keyboard_alone() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;
    let (_, notices) = issue(&app, RED, "红色预警").await;
    let (notice, link) = pick(&app, &notices);
    let out = Handoff::default();
    let found = out.clone();
    let n = notice.clone();
    browser
        .run(Screen::Phone, move |c, camera| async move {
            open(&c, &link).await;
            assert!(text_of(&c, "h1").await.contains("红色预警"));
            // The red badge is as readable as the rest (check_basics measures its contrast).
            phone_checks(&c, "a red task on a phone", &["姓名", "联系电话", "备注", "收到"]).await;
            let uscc = uscc_on_page(&c, &n.enterprise).await;

            // Reload, then Tab from the top, typing into each field as it takes the focus; Space on
            // the button says 收到.
            open(&c, &link).await;
            let mut order = Vec::new();
            while order.len() < 8 {
                press(&c, Key::Tab).await;
                let f = focused(&c).await;
                let typed = match f.as_str() {
                    "input[text] name" => NAME,
                    "input[tel] phone" => PHONE,
                    _ => "",
                };
                if !typed.is_empty() {
                    c.active_element().await.expect("the focus").send_keys(typed).await.expect("typed");
                }
                order.push(f);
                if order.last().is_some_and(|f| f.starts_with("button")) {
                    break;
                }
            }
            assert_eq!(
                order,
                ["input[text] name", "input[tel] phone", "textarea[textarea] note", "button[submit]"],
                "Tab reaches the fields and the button"
            );
            press(&c, Key::Space).await;
            let done = wait_confirmed(&c, 1).await;
            assert_eq!(done, [format!("✓ 已收到：2026年12月1日 15:00，{NAME}")], "Space on 收到 sends it");
            camera.shoot(&c, "ack-kb-1-received").await;

            // Again: name and phone are filled in already; Space on every line's box but the last ticks
            // it, a note, Enter on the button: held back, the browser takes the focus to the box left.
            let ticks = lines(&c).await;
            let items = line_items(&c).await;
            let (off, _) = ticks.last().cloned().expect("lines to tick");
            let mut order = Vec::new();
            while order.len() < 12 {
                press(&c, Key::Tab).await;
                let f = focused(&c).await;
                match f.as_str() {
                    "textarea[textarea] note" => c.active_element().await.expect("focus").send_keys(NOTE).await.expect("typed"),
                    f if f.starts_with("input[checkbox] line=") && f != format!("input[checkbox] line={off}") => {
                        press(&c, Key::Space).await
                    }
                    _ => {}
                }
                order.push(f);
                if order.last().is_some_and(|f| f.starts_with("button")) {
                    break;
                }
            }
            let mut expected = vec!["input[text] name".to_string(), "input[tel] phone".into()];
            expected.extend(ticks.iter().map(|(v, _)| format!("input[checkbox] line={v}")));
            expected.extend(["textarea[textarea] note".into(), "button[submit]".into()]);
            assert_eq!(order, expected, "Tab reaches every line's box, the note and the button");
            let now = lines(&c).await;
            assert_eq!(
                now.iter().filter(|(_, on)| !on).map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
                [off.as_str()],
                "Space ticked every line but one"
            );
            camera.shoot(&c, "ack-kb-2-in-place-filled").await;
            press(&c, Key::Enter).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            assert_eq!(confirmed(&c).await.len(), 1, "not sent with a line unticked");
            assert_eq!(
                focused(&c).await,
                format!("input[checkbox] line={off}"),
                "the box left has the focus"
            );
            // Space ticks it; Tab past the note to the button, Enter sends.
            press(&c, Key::Space).await;
            press(&c, Key::Tab).await;
            press(&c, Key::Tab).await;
            assert_eq!(focused(&c).await, "button[submit]");
            press(&c, Key::Enter).await;
            let done = wait_confirmed(&c, 2).await;
            assert_eq!(
                done.last().map(String::as_str),
                Some(format!("✓ 措施已落实：2026年12月1日 15:00，{NAME}").as_str()),
                "Enter on 措施已落实 sends it"
            );
            check_basics(&c, "a red task after 措施已落实").await;
            camera.shoot(&c, "ack-kb-3-in-place").await;
            *found.lock().expect("the lock") = Some(Acked { uscc, kept: items, off });
        })
        .await;
    let Acked { uscc, kept, off } = out.lock().expect("the lock").take().expect("the scenario ran to its end");
    let acks = recorded(&app, &uscc).await;
    let in_place = acks.iter().find(|a| a["step"] == "in_place").cloned().unwrap_or_default();
    assert_eq!(in_place["note"].as_str(), Some(NOTE), "{acks:?}");
    let lines: Vec<String> = serde_json::from_value(in_place["lines"].clone()).expect("lines");
    assert_eq!(
        lines, kept,
        "every line is recorded in its words, {off} (ticked last) too: {acks:?}"
    );
    println!("{}: acknowledged with the keyboard from {}", notice.enterprise, notice.file);
    app.stop().await;
}

/// Ends the warning `id` on the test daemon (`lift` or `cancel`) as the head.
async fn end(app: &TestApp, id: &str, action: &str) {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/warnings/{id}/{action}")))
        .bearer_auth(HEAD)
        .json(&serde_json::json!({ "reason": "会商结果调整" }))
        .send()
        .await
        .expect("the daemon answers");
    let status = resp.status();
    assert!(status.is_success(), "{action}: {status} {}", resp.text().await.unwrap_or_default());
}

/// The ack page of an ended task on a phone: the notice says how it ended, nothing is left to confirm,
/// and the page still fits the screen.
async fn ended_page(c: &Client, link: &str, says: &str, not: &str, what: &str) {
    open(c, link).await;
    let notice = text_of(c, "main .notice").await;
    assert!(notice.contains(says) && !notice.contains(not), "{what}: {notice}");
    assert!(
        c.find_all(Locator::Css("form")).await.expect("the page").is_empty(),
        "{what}: nothing left to confirm"
    );
    check_basics(c, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_the_lift_the_link_says_lifted_and_after_a_cancel_it_says_cancelled() {
    let Some(browser) = Browser::start().await else { return };
    // Lifted: the orange warning starts, the enterprise confirms receipt, then the head lifts it.
    let app = spawn_app(&[]).await;
    let (id, notices) = issue(&app, ORANGE, "橙色预警").await;
    let (_, link) = pick(&app, &notices);
    let w = app.warning_of(TAIYUAN).await.expect("the warning");
    let start: chrono::DateTime<chrono::Utc> = serde_json::from_value(w["start"].clone()).expect("a start");
    app.state.engine.clock.set(start + chrono::Duration::minutes(5));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.warning_of(TAIYUAN).await.is_none_or(|w| w["status"] != "active") {
        assert!(std::time::Instant::now() < deadline, "the warning becomes active at its start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lifted_link = link.clone();
    browser
        .run(Screen::Phone, move |phone, camera| async move {
            open(&phone, &lifted_link).await;
            assert_eq!(button(&phone).await, "收到");
            camera.shoot(&phone, "end-1-active").await;
        })
        .await;
    end(&app, &id, "lift").await;
    browser
        .run(Screen::Phone, move |phone, camera| async move {
            ended_page(&phone, &link, "预警已解除", "已取消", "the page after the lift").await;
            camera.shoot(&phone, "end-2-lifted").await;
        })
        .await;
    app.stop().await;

    // Cancelled: a second daemon; the head calls the warning off before its start.
    let app = spawn_app(&[]).await;
    let (id, notices) = issue(&app, ORANGE, "橙色预警").await;
    let (_, link) = pick(&app, &notices);
    end(&app, &id, "cancel").await;
    browser
        .run(Screen::Phone, move |phone, camera| async move {
            ended_page(&phone, &link, "预警已取消", "已解除", "the page after a cancel").await;
            camera.shoot(&phone, "end-3-cancelled").await;
        })
        .await;
    app.stop().await;
}
