//! Publishing, end to end: the real daemon (`spawn_app` of the daemon tests: port 0, a temporary
//! folder, the shipped playbooks, a manual clock) drives warnings through issue → upgrade → lift over
//! its HTTP API, and the public reads `/public`, `/public/feed.atom` and every CAP file over real
//! HTTP. Every CAP file is validated against the OASIS schema with `xmllint` (Debian package
//! `libxml2-utils`; skipped with a note when it is missing, required when `CI=true`), and the feed is
//! read with a real feed parser (`feed-rs`).

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "daemon/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use helpers::*;
use quick_xml::Reader;
use quick_xml::events::Event;
use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

/// Taiyuan (太原市), under playbooks/taiyuan.yaml.
const TAIYUAN: &str = "140100";
/// Xiaodian district (小店区) of Taiyuan: a county, named with its city.
const XIAODIAN: &str = "140105";

/// A forecast CSV: the same daily AQI for each region, from `first` on.
fn forecast(issued_at: &str, regions: &[&str], first: &str, aqi: &[u32]) -> String {
    let first = NaiveDate::parse_from_str(first, "%Y-%m-%d").expect("a date");
    let mut out = format!("# issued_at: {issued_at}\n# source: 省生态环境监测和应急保障中心\nregion,date,aqi\n");
    for r in regions {
        for (i, v) in aqi.iter().enumerate() {
            out.push_str(&format!("{r},{},{v}\n", first + chrono::Duration::days(i as i64)));
        }
    }
    out
}

/// A public page or file: status, content type and body.
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let resp = reqwest::get(format!("{}{path}", app.base())).await.expect("the daemon answers");
    let status = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, resp.text().await.expect("a body"))
}

async fn page(app: &TestApp) -> String {
    let (status, kind, body) = fetch(app, "/public").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(kind, "text/html; charset=utf-8");
    body
}

async fn feed(app: &TestApp) -> (String, feed_rs::model::Feed) {
    let (status, kind, body) = fetch(app, "/public/feed.atom").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(kind, "application/atom+xml; charset=utf-8");
    let parsed = feed_rs::parser::parse(body.as_bytes()).unwrap_or_else(|e| panic!("the feed parses: {e}\n{body}"));
    assert_eq!(parsed.feed_type, feed_rs::model::FeedType::Atom);
    (body, parsed)
}

/// Signs whatever awaits sign-off in `region` as the deputy head, and returns the warning id.
async fn sign(app: &TestApp, region: &str) -> String {
    let w = eventually(&format!("region {region} awaits sign-off"), || async {
        app.warning_of(region).await.filter(|w| w["pending_sign_off"] == true)
    })
    .await;
    let id = w["id"].as_str().expect("an id").to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/sign"),
            Some(DEPUTY),
            &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// The text of every element called `name`, in document order.
fn texts(xml: &str, name: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut inside = false;
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("well-formed XML: {e}\n{xml}")) {
            Event::Start(e) if e.local_name().as_ref() == name.as_bytes() => {
                inside = true;
                out.push(String::new());
            }
            Event::End(e) if e.local_name().as_ref() == name.as_bytes() => inside = false,
            Event::Text(t) if inside => {
                let s = t.xml_content().expect("text");
                out.last_mut().expect("an open element").push_str(&s);
            }
            Event::GeneralRef(r) if inside => {
                let s = match r.decode().expect("a reference").as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected reference &{other};"),
                };
                out.last_mut().expect("an open element").push_str(s);
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

fn text(xml: &str, name: &str) -> String {
    texts(xml, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{name}> in\n{xml}"))
}

/// What the test reads from one CAP file.
struct Cap {
    id: String,
    msg_type: String,
    sent: String,
    references: Vec<String>,
}

impl Cap {
    /// How later messages name this one: `sender,identifier,sent`.
    fn reference(&self) -> String {
        format!("taiyuan@hazeflow.example.cn,{},{}", self.id, self.sent)
    }
}

/// The CAP path of each feed entry, from its `alternate` link of type `application/cap+xml`.
fn cap_paths(f: &feed_rs::model::Feed) -> Vec<String> {
    f.entries
        .iter()
        .map(|e| {
            let link = e
                .links
                .iter()
                .find(|l| l.rel.as_deref() == Some("alternate") && l.media_type.as_deref() == Some("application/cap+xml"))
                .unwrap_or_else(|| panic!("entry {} links to its CAP file", e.id));
            let path = &link.href[link
                .href
                .find("/public/cap/")
                .unwrap_or_else(|| panic!("a CAP address: {}", link.href))..];
            path.to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_issued_upgraded_and_lifted_reaches_the_public_as_alert_update_and_cancel() {
    let app = spawn_app(clock()).await;
    let xml_dir = TempDir::new().expect("a folder for CAP files");

    // 15:00, before any warning: the page says so, the feed is empty.
    let html = page(&app).await;
    assert!(html.contains("目前全省没有生效或即将生效的重污染天气预警"), "{html}");
    assert!(feed(&app).await.1.entries.is_empty());

    // 15:00: a forecast above 150 for two days in Taiyuan and its Xiaodian district → yellow proposed.
    let (status, body) = app
        .submit(forecast(
            "2026-12-01 14:00",
            &[TAIYUAN, XIAODIAN],
            "2026-12-02",
            &[180, 180, 120, 100, 100, 100, 100],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("both regions have a proposal", || async {
        let (a, b) = (app.warning_of(TAIYUAN).await?, app.warning_of(XIAODIAN).await?);
        (a["pending_sign_off"] == true && b["pending_sign_off"] == true).then_some(())
    })
    .await;
    // A proposal awaiting sign-off is not public.
    assert!(feed(&app).await.1.entries.is_empty(), "nothing is published before sign-off");
    assert!(page(&app).await.contains("目前全省没有生效"));

    // 15:10: the deputy head signs both → two Alerts.
    app.set_clock("2026-12-01 15:10");
    let taiyuan = sign(&app, TAIYUAN).await;
    let xiaodian = sign(&app, XIAODIAN).await;
    let html = page(&app).await;
    for needle in [
        "黄色预警",
        "Ⅲ级",
        "太原市",
        "太原市小店区",
        "即将生效",
        "易感人群",
        "中小学、幼儿园减少户外活动",
        "2026年12月2日 00:00",
        "预警时间线：12月2日0时起黄色预警；预计12月4日0时解除",
        "发布单位：太原市重污染天气应急指挥部办公室",
        "信息更新时间：<time datetime=\"2026-12-01T15:10:00+08:00\">2026年12月1日 15:10</time>",
    ] {
        assert!(html.contains(needle), "/public shows {needle}:\n{html}");
    }
    assert!(
        html.contains("style=\"background-color: #FFFF00; color: #000000\""),
        "the level colour with readable text:\n{html}"
    );

    // 2026-12-02 09:00: worse forecast → orange proposed; signed → an Update each.
    app.set_clock("2026-12-02 09:00");
    let (status, body) = app
        .submit(forecast(
            "2026-12-02 08:00",
            &[TAIYUAN, XIAODIAN],
            "2026-12-02",
            &[180, 230, 240, 180, 120, 100, 100],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(sign(&app, TAIYUAN).await, taiyuan);
    assert_eq!(sign(&app, XIAODIAN).await, xiaodian);
    let html = page(&app).await;
    assert!(html.contains("橙色预警") && html.contains("Ⅱ级应急响应"), "{html}");
    assert!(html.contains("中小学、幼儿园停止户外课程和户外活动"), "orange advice: {html}");
    assert!(
        !html.contains("id=\"level-yellow\""),
        "the upgraded warnings are no longer listed as yellow"
    );

    // 2026-12-03 10:00: in force; then lifted by hand → a Cancel each.
    app.set_clock("2026-12-03 10:00");
    for region in [TAIYUAN, XIAODIAN] {
        eventually("the warning is in force", || async {
            app.warning_of(region).await.filter(|w| w["status"] == "active")
        })
        .await;
    }
    assert!(page(&app).await.contains("生效中"));
    app.set_clock("2026-12-03 10:30");
    for id in [&taiyuan, &xiaodian] {
        let (status, body) = app
            .post_json(
                &format!("/api/v1/warnings/{id}/lift"),
                Some(DEPUTY),
                &json!({ "reason": "空气质量明显好转" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // The feed: eight entries, newest first, titled in Chinese, each linking to its CAP file: the issue, the
    // extension to 12-06 that the worse forecast brings, the upgrade and the lift of each region.
    let (_, f) = feed(&app).await;
    assert_eq!(f.title.as_ref().map(|t| t.content.as_str()), Some("山西省重污染天气预警信息"));
    let all: Vec<String> = f
        .entries
        .iter()
        .filter_map(|e| e.title.as_ref().map(|t| t.content.clone()))
        .collect();
    assert_eq!(f.entries.len(), 8, "{all:#?}");
    let updated: Vec<_> = f.entries.iter().map(|e| e.updated.expect("updated")).collect();
    assert!(updated.windows(2).all(|w| w[0] >= w[1]), "newest first: {updated:?}");
    let titles: Vec<String> = f
        .entries
        .iter()
        .filter_map(|e| e.title.as_ref().map(|t| t.content.clone()))
        .collect();
    for title in [
        "【黄色预警】太原市重污染天气黄色预警（Ⅲ级）",
        "【橙色预警】太原市重污染天气预警由黄色预警升级为橙色预警（Ⅱ级）",
        "【解除】太原市重污染天气橙色预警（Ⅱ级）解除",
        "【黄色预警】太原市小店区重污染天气黄色预警（Ⅲ级）",
        "【黄色预警】太原市重污染天气黄色预警（Ⅲ级）延长",
        "【解除】太原市小店区重污染天气橙色预警（Ⅱ级）解除",
    ] {
        assert!(titles.iter().any(|t| t == title), "{title} in {titles:#?}");
    }
    assert!(
        titles[0].starts_with("【解除】") && titles[7].starts_with("【黄色预警】"),
        "{titles:#?}"
    );
    for e in &f.entries {
        assert!(e.id.starts_with("tag:hazeflow.example.cn,2026:public/message/"), "{}", e.id);
        assert_eq!(
            e.authors.iter().map(|a| a.name.as_deref()).collect::<Vec<_>>(),
            [Some("太原市重污染天气应急指挥部办公室")],
            "each entry is in its issuer's name"
        );
        assert!(
            e.summary.as_ref().is_some_and(|s| s.content.contains("重污染天气")),
            "a Chinese summary: {e:?}"
        );
    }

    // Every CAP file: valid CAP 1.2, in Asia/Shanghai time, the region's code, both languages.
    let mut by_warning: BTreeMap<String, Vec<Cap>> = BTreeMap::new();
    for path in cap_paths(&f).iter().rev() {
        let (status, kind, xml) = fetch(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {xml}");
        assert_eq!(kind, "application/cap+xml; charset=utf-8");
        let id = text(&xml, "identifier");
        assert_eq!(path, &format!("/public/cap/{id}.xml"));
        validate_cap(xml_dir.path(), &id, &xml);
        // Taiyuan and its county are under taiyuan.yaml: the city's command office sends, never the province.
        assert_eq!(text(&xml, "sender"), "taiyuan@hazeflow.example.cn");
        assert_eq!(
            texts(&xml, "senderName"),
            [
                "太原市重污染天气应急指挥部办公室",
                "Taiyuan Municipal Heavy Pollution Weather Emergency Command Office"
            ]
        );
        let sent = text(&xml, "sent");
        for t in [
            vec![sent.clone()],
            texts(&xml, "effective"),
            texts(&xml, "onset"),
            texts(&xml, "expires"),
        ]
        .concat()
        {
            assert!(t.ends_with("+08:00") && t.len() == 25, "{id}: {t}");
        }
        assert_eq!(
            (text(&xml, "status"), text(&xml, "scope")),
            ("Actual".to_string(), "Public".to_string())
        );
        assert_eq!(texts(&xml, "language"), ["zh-CN", "en-US"]);
        assert_eq!(texts(&xml, "category"), ["Env", "Env"]);
        assert_eq!(texts(&xml, "valueName").into_iter().filter(|v| v == "GB/T 2260").count(), 2);
        let region = if id.starts_with(XIAODIAN) { XIAODIAN } else { TAIYUAN };
        assert!(texts(&xml, "value").iter().any(|v| v == region), "{id}: geocode {region}");
        assert_eq!(text(&xml, "areaDesc"), if region == XIAODIAN { "太原市小店区" } else { "太原市" });
        let references = texts(&xml, "references")
            .first()
            .map(|r| r.split(' ').map(str::to_string).collect())
            .unwrap_or_default();
        let warning = id.rsplit_once('-').expect("warning-seq").0.to_string();
        by_warning.entry(warning).or_default().push(Cap {
            id,
            msg_type: text(&xml, "msgType"),
            sent,
            references,
        });
    }
    assert_eq!(by_warning.len(), 2);
    for (warning, messages) in &by_warning {
        let types: Vec<&str> = messages.iter().map(|m| m.msg_type.as_str()).collect();
        assert_eq!(types, ["Alert", "Update", "Update", "Cancel"], "{warning}");
        let (alert, extend, upgrade, cancel) = (&messages[0], &messages[1], &messages[2], &messages[3]);
        assert!(alert.references.is_empty(), "an Alert references nothing");
        assert_eq!(extend.references, [alert.reference()], "the first Update names the Alert");
        assert_eq!(upgrade.references, [alert.reference(), extend.reference()]);
        assert_eq!(
            cancel.references,
            [alert.reference(), extend.reference(), upgrade.reference()],
            "the Cancel names all before it"
        );
    }

    // After the lift: nothing current, the lift among the latest messages.
    let html = page(&app).await;
    assert!(
        html.contains("目前全省没有生效") && html.contains("【解除】太原市重污染天气橙色预警（Ⅱ级）解除"),
        "{html}"
    );

    // Unknown messages are 404.
    for path in [
        "/public/cap/140100-20261201-1-999999.xml",
        "/public/cap/nothing.xml",
        &format!("/public/cap/{taiyuan}-1"),
    ] {
        assert_eq!(fetch(&app, path).await.0, StatusCode::NOT_FOUND, "{path}");
    }

    // The messages are derived from the log: after a restart they are the same, byte for byte.
    let (before, _) = feed(&app).await;
    let cap_before = fetch(&app, &cap_paths(&feed(&app).await.1)[0]).await.2;
    let dir = app.stop().await;
    let app = spawn_app_with(dir, clock(), |_| {}).await;
    let (after, f) = feed(&app).await;
    assert_eq!(after, before);
    assert_eq!(fetch(&app, &cap_paths(&f)[0]).await.2, cap_before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_edit_the_health_advice_and_reload_without_a_restart_and_every_way_out_escapes_it() {
    // A copy of the shipped playbooks folder whose advice an operator has edited, with markup in it.
    let root = TempDir::new().expect("a folder");
    let books = root.path().join("playbooks");
    common::copy_dir(Path::new(PLAYBOOKS), &books);
    let public = books.join("templates/public");
    let shipped = std::fs::read_to_string(Path::new(PLAYBOOKS).join("templates/public/advice.yaml")).expect("the shipped advice");
    let marked = "<script>alert(\"x\")</script> & 请关注<b>空气质量</b>";
    let edited = shipped.replacen("    zh:\n", &format!("    zh:\n      - '{marked}'\n"), 1);
    assert_ne!(edited, shipped);
    std::fs::write(public.join("advice.yaml"), &edited).expect("the edited advice");

    let app = spawn_app_with(TempDir::new().expect("a folder"), clock(), |s| s.playbooks = books.clone()).await;
    let (status, body) = app
        .submit(forecast(
            "2026-12-01 14:00",
            &[TAIYUAN],
            "2026-12-02",
            &[180, 180, 120, 100, 100, 100, 100],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = sign(&app, TAIYUAN).await;

    // The page shows it as text.
    let html = page(&app).await;
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt; &amp; 请关注&lt;b&gt;空气质量&lt;&#x2f;b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");

    // The CAP file carries it escaped, still valid; read back, it is the operator's text.
    let (_, f) = feed(&app).await;
    let path = &cap_paths(&f)[0];
    let xml = fetch(&app, path).await.2;
    let xml_dir = TempDir::new().expect("a folder for CAP files");
    validate_cap(xml_dir.path(), &id, &xml);
    assert!(text(&xml, "instruction").starts_with(marked), "{xml}");
    // The feed too.
    let content = f.entries[0].content.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
    assert!(content.contains(marked), "{content}");

    // The operator fixes the advice and reloads (as every template set is: at start and on a
    // reload, never per request): the next request has it, no restart.
    std::fs::write(
        public.join("advice.yaml"),
        shipped.replacen("    zh:\n", "    zh:\n      - 请关注空气质量预报。\n", 1),
    )
    .expect("the fixed advice");
    let html = page(&app).await;
    assert!(html.contains("&lt;script"), "not read before the reload: {html}");
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let html = page(&app).await;
    assert!(html.contains("请关注空气质量预报。") && !html.contains("&lt;script"), "{html}");

    // A broken edit: the reload is refused naming the file, and the advice in service stays.
    std::fs::write(public.join("advice.yaml"), "levels: [").expect("a broken file");
    let (status, body) = app.post("/api/v1/playbooks/reload", Some(HEAD)).await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body.to_string().contains("advice.yaml"), "{body}");
    let html = page(&app).await;
    assert!(html.contains("请关注空气质量预报。"), "{html}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ozone_led_days_get_health_advice_on_the_public_page_and_no_warning() {
    // 15:00: a summer-like forecast for Taiyuan: O3_8h 265-283 µg/m³ leads (AQI above 150), PM2.5 moderate.
    let app = spawn_app(clock()).await;
    let csv = "# issued_at: 2026-12-01 14:00\n# source: 省生态环境监测和应急保障中心\nregion,date,pm25,o3_8h\n\
               140100,2026-12-02,60,265\n140100,2026-12-03,70,283\n140100,2026-12-04,40,120\n"
        .to_string();
    let (status, body) = app.submit(csv).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let html = eventually("the consultation names the ozone days", || async {
        let html = page(&app).await;
        html.contains("臭氧污染健康提示").then_some(html)
    })
    .await;
    assert!(html.contains("太原市</span>：12月2日、12月3日"), "{html}");
    assert!(html.contains("臭氧污染不启动重污染天气应急减排措施"), "{html}");
    assert!(html.contains("目前全省没有生效"), "no warning for ozone: {html}");
    assert!(app.warning_of(TAIYUAN).await.is_none(), "nothing proposed");
    app.stop().await;
}

/// The per-county table of `/public`: each city's caption, and per county the cell's text without
/// tags (`黄色预警（随太原市预警）`, `无预警`).
fn county_table(html: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let start = html
        .find("id=\"county-title\"")
        .unwrap_or_else(|| panic!("a per-county section:\n{html}"));
    let section = &html[start..start + html[start..].find("</section>").expect("the section ends")];
    let between = |s: &str, open: &str, close: &str| -> Vec<String> {
        s.split(open)
            .skip(1)
            .map(|rest| rest[..rest.find(close).expect("closed")].to_string())
            .collect()
    };
    let strip = |s: &str| {
        let mut out = String::new();
        let mut in_tag = false;
        for ch in s.chars() {
            match ch {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    };
    let captions = between(section, "<caption>", "</caption>");
    let rows = between(section, "<tr><th scope=\"row\">", "</tr>")
        .into_iter()
        .map(|row| {
            let (name, cell) = row.split_once("</th>").expect("a name and a cell");
            (name.to_string(), strip(cell).trim().to_string())
        })
        .collect();
    (captions, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_warning_puts_every_county_of_the_city_under_its_level_on_the_public_page() {
    let app = spawn_app(clock()).await;
    let shanxi = hazeflow::domain::region::Regions::shanxi();
    let taiyuan_code = hazeflow::domain::region::RegionCode::parse(TAIYUAN).expect("a code");
    let counties: Vec<String> = shanxi.children(taiyuan_code).into_iter().map(|c| shanxi.name(c)).collect();
    assert!(counties.len() >= 10 && counties.contains(&"小店区".to_string()), "{counties:?}");
    let all_counties = shanxi.all().filter(|r| r.tier == hazeflow::domain::region::Tier::County).count();

    // Before any warning: no county is under one.
    let html = page(&app).await;
    assert!(html.contains("目前各区县均无生效中的重污染天气预警"), "{html}");
    assert!(county_table(&html).1.is_empty());

    // A yellow warning for Taiyuan only (the city), signed; announced but not yet in force: the counties
    // are not under it yet.
    let (status, body) = app
        .submit(forecast(
            "2026-12-01 14:00",
            &[TAIYUAN],
            "2026-12-02",
            &[180, 180, 120, 100, 100, 100, 100],
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.set_clock("2026-12-01 15:10");
    sign(&app, TAIYUAN).await;
    let html = page(&app).await;
    assert!(html.contains("即将生效"), "{html}");
    assert!(
        county_table(&html).1.is_empty(),
        "an announced warning is not in force yet:\n{html}"
    );

    // 2026-12-02 10:00: in force; every county of Taiyuan is shown under it, with where it comes from,
    // and no other city is listed.
    app.set_clock("2026-12-02 10:00");
    eventually("the warning is in force", || async {
        app.warning_of(TAIYUAN).await.filter(|w| w["status"] == "active")
    })
    .await;
    let html = page(&app).await;
    let (captions, rows) = county_table(&html);
    assert_eq!(captions, vec!["太原市".to_string()], "{html}");
    assert_eq!(rows.len(), counties.len(), "{rows:?}");
    for county in &counties {
        assert_eq!(
            rows.get(county).map(String::as_str),
            Some("黄色预警（随太原市预警）"),
            "{county} in {rows:?}"
        );
    }
    assert!(
        html.contains(&format!("其余 {} 个区县目前无生效中的预警", all_counties - counties.len())),
        "{html}"
    );
    assert!(html.contains("style=\"background-color: #FFFF00; color: #000000\">黄色预警</span>（随太原市预警）"));

    // Lifted: no county is under a warning any more.
    let id = app.warning_of(TAIYUAN).await.expect("the warning")["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let (status, body) = app
        .post_json(
            &format!("/api/v1/warnings/{id}/lift"),
            Some(DEPUTY),
            &json!({ "reason": "空气质量明显好转" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let html = eventually("the counties are free again", || async {
        let html = page(&app).await;
        html.contains("目前各区县均无生效中的重污染天气预警").then_some(html)
    })
    .await;
    assert!(county_table(&html).1.is_empty(), "{html}");
    app.stop().await;
}
