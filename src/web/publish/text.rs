//! The words of the public messages: minijinja templates and the health advice per level, read from
//! `{playbooks}/templates/public/` so that operators can edit them, with the shipped copies built in.
//!
//! In: that folder (any file missing there comes from the built-in copy). Out: [`Texts`], which
//! renders a message's headline, description and instruction in `zh-CN` and `en-US`, and the
//! `/public` page. A folder whose files do not load is reported once and the built-in texts are used;
//! the files are read again when they change, so an edit needs no restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

use super::view::{AdviceView, MessageView};
use crate::domain::level::LevelId;

/// Where the texts live, under the playbooks folder.
pub const TEMPLATE_DIR: &str = "templates/public";

/// The files, with their built-in copies.
const FILES: [(&str, &str); 4] = [
    (
        "page.html.j2",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/public/page.html.j2")),
    ),
    (
        "message.zh-CN.j2",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/public/message.zh-CN.j2")),
    ),
    (
        "message.en-US.j2",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/public/message.en-US.j2")),
    ),
    (
        "advice.yaml",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/public/advice.yaml")),
    ),
];

/// The two languages every message is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 中文.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The CAP `language` (RFC 3066).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en-US",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Lang::Zh => "message.zh-CN.j2",
            Lang::En => "message.en-US.j2",
        }
    }
}

/// One message's words in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageText {
    /// CAP `event` (重污染天气).
    pub event: String,
    /// CAP `senderName`, the entry's author: the issuing body, from the warning's playbook.
    pub sender_name: String,
    /// CAP `headline`, the Atom entry's title.
    pub headline: String,
    /// CAP `description`, the Atom entry's summary.
    pub description: String,
    /// CAP `instruction`: the health advice.
    pub instruction: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lines {
    zh: Vec<String>,
    en: Vec<String>,
}

/// `advice.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advice {
    levels: BTreeMap<LevelId, Lines>,
    default: Lines,
}

/// Loaded templates and advice.
pub struct Texts {
    env: Environment<'static>,
    advice: Advice,
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texts").field("advice", &self.advice).finish_non_exhaustive()
    }
}

impl Texts {
    /// The built-in copies.
    pub fn builtin() -> Arc<Texts> {
        static BUILTIN: OnceLock<Arc<Texts>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let files = FILES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
                // The shipped texts are checked by this module's tests; they cannot fail here.
                Arc::new(Texts::from_files(files).unwrap_or_else(|e| panic!("the built-in public templates are broken: {e}")))
            })
            .clone()
    }

    /// Reads the folder; a file missing there comes from the built-in copy. Errors name the file.
    pub fn load(dir: &Path) -> Result<Texts, String> {
        let files =
            crate::templates::read_shipped(dir, &FILES).map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
        Texts::from_files(files).map_err(|e| format!("{}/{e}", dir.display()))
    }

    /// Compiles `(file name, text)` pairs; errors start with the file name.
    fn from_files(files: Vec<(String, String)>) -> Result<Texts, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut advice = None;
        for (name, text) in files {
            if name.ends_with(".yaml") {
                advice = Some(serde_saphyr::from_str::<Advice>(&text).map_err(|e| {
                    let (l, c) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                    let msg = e.without_snippet().to_string();
                    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
                    format!("{name}:{l}:{c}: {msg}")
                })?);
            } else {
                env.add_template_owned(name.clone(), text)
                    .map_err(|e| format!("{name}:{}: {e}", e.line().unwrap_or(0)))?;
            }
        }
        let advice = advice.ok_or("advice.yaml: missing")?;
        Ok(Texts { env, advice })
    }

    /// The health advice for a level (the `default` entry for a level not listed).
    pub fn advice(&self, level: &str) -> AdviceView {
        let l = self.advice.levels.get(level).unwrap_or(&self.advice.default);
        AdviceView {
            zh: l.zh.clone(),
            en: l.en.clone(),
        }
    }

    fn call(&self, lang: Lang, name: &str, args: &[Value]) -> Result<String, minijinja::Error> {
        let tmpl = self.env.get_template(lang.template())?;
        let captured = tmpl.render_captured(())?;
        Ok(captured.state().call_macro(name, args)?.trim().to_string())
    }

    /// A message's words in one language.
    pub fn message(&self, m: &MessageView, lang: Lang) -> Result<MessageText, minijinja::Error> {
        let arg = [Value::from_serialize(m)];
        Ok(MessageText {
            event: self.call(lang, "event", &arg)?,
            sender_name: match lang {
                Lang::Zh => m.issuer.name.clone(),
                Lang::En => m.issuer.name_en.clone(),
            },
            headline: self.call(lang, "headline", &arg)?,
            description: self.call(lang, "description", &arg)?,
            instruction: self.call(lang, "instruction", &arg)?,
        })
    }

    /// A macro without arguments: `feed_title` (of the feed and the page).
    pub fn line(&self, lang: Lang, name: &str) -> Result<String, minijinja::Error> {
        self.call(lang, name, &[])
    }

    /// The `/public` page.
    pub fn page(&self, ctx: impl Serialize) -> Result<String, minijinja::Error> {
        self.env.get_template("page.html.j2")?.render(ctx)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::region::{RegionCode, Regions};
    use crate::web::publish::message::{Change, MsgType};
    use crate::web::publish::view::{LevelView, RegionView, Time};
    use chrono::{TimeZone, Utc};

    fn level(id: &str, name: &str, response: &str, rank: u32) -> LevelView {
        LevelView {
            id: id.into(),
            name: name.into(),
            colour: "#FF7E00".into(),
            text_colour: "#000000",
            response: response.into(),
            rank,
            top_rank: 3,
        }
    }

    pub(crate) fn sample(change: Change, texts: &Texts) -> MessageView {
        let t = |d: u32, h: u32| Time::new(Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap());
        let msg_type = match change {
            Change::Issue => MsgType::Alert,
            Change::Lift | Change::Cancel => MsgType::Cancel,
            _ => MsgType::Update,
        };
        MessageView {
            id: "140105-20261201-1-7".into(),
            warning_id: "140105-20261201-1".into(),
            msg_type,
            change,
            region: RegionView::new(RegionCode::parse("140105").unwrap(), Regions::shanxi()),
            issuer: crate::domain::playbook::Issuer::of_scope(RegionCode::parse("140100").unwrap(), Regions::shanxi()),
            level: level("orange", "橙色预警", "Ⅱ级", 2),
            previous_level: matches!(change, Change::Upgrade | Change::Downgrade).then(|| level("yellow", "黄色预警", "Ⅲ级", 1)),
            sent: t(1, 9),
            effective: t(1, 9),
            start: t(1, 16),
            end: t(4, 16),
            timeline: Some("12月2日0时起橙色预警；预计12月5日0时解除".into()),
            in_force: false,
            references: Vec::new(),
            advice: texts.advice("orange"),
            cap_url: "http://x/public/cap/140105-20261201-1-7.xml".into(),
            cap_path: "/public/cap/140105-20261201-1-7.xml".into(),
            sent_at: Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
            exercise: false,
        }
    }

    const ALL: [Change; 8] = [
        Change::Issue,
        Change::Upgrade,
        Change::Downgrade,
        Change::Extend,
        Change::Reschedule,
        Change::Lift,
        Change::Cancel,
        Change::Republish,
    ];

    #[test]
    fn the_shipped_texts_load_from_the_playbooks_folder_and_equal_the_built_in_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks").join(TEMPLATE_DIR);
        let texts = Texts::load(&dir).unwrap();
        let builtin = Texts::builtin();
        for change in ALL {
            let m = sample(change, &texts);
            for lang in [Lang::Zh, Lang::En] {
                assert_eq!(texts.message(&m, lang).unwrap(), builtin.message(&m, lang).unwrap());
            }
        }
    }

    #[test]
    fn every_change_has_its_own_headline_and_description_in_both_languages() {
        let texts = Texts::builtin();
        let mut seen = std::collections::BTreeSet::new();
        for change in ALL {
            let m = sample(change, &texts);
            for lang in [Lang::Zh, Lang::En] {
                let t = texts.message(&m, lang).unwrap();
                for (what, s) in [
                    ("event", &t.event),
                    ("sender", &t.sender_name),
                    ("headline", &t.headline),
                    ("description", &t.description),
                    ("instruction", &t.instruction),
                ] {
                    assert!(
                        !s.is_empty() && !s.contains("{{") && !s.contains("{%"),
                        "{change:?} {lang:?} {what}: {s:?}"
                    );
                }
                assert!(
                    seen.insert(t.headline.clone()),
                    "{change:?} {lang:?}: headline used twice: {}",
                    t.headline
                );
            }
        }
    }

    #[test]
    fn an_issue_reads_like_a_chinese_warning_notice() {
        let texts = Texts::builtin();
        let t = texts.message(&sample(Change::Issue, &texts), Lang::Zh).unwrap();
        assert_eq!(t.headline, "【橙色预警】太原市小店区重污染天气橙色预警（Ⅱ级）");
        assert_eq!(
            t.description,
            "经会商研判，太原市小店区将出现重污染天气过程，现发布重污染天气橙色预警，启动Ⅱ级应急响应，预警时段为2026年12月2日 00:00至2026年12月5日 00:00。"
        );
        assert!(t.instruction.starts_with("儿童、老年人和患有呼吸道"), "{}", t.instruction);
        assert!(
            t.instruction.contains("中小学、幼儿园停止户外课程"),
            "orange stops outdoor lessons: {}",
            t.instruction
        );
        assert_eq!(
            t.instruction.lines().count(),
            texts.advice("orange").zh.len(),
            "one line per item: {}",
            t.instruction
        );
        let up = texts.message(&sample(Change::Upgrade, &texts), Lang::Zh).unwrap();
        assert_eq!(up.headline, "【橙色预警】太原市小店区重污染天气预警由黄色预警升级为橙色预警（Ⅱ级）");
        let en = texts.message(&sample(Change::Issue, &texts), Lang::En).unwrap();
        assert_eq!(en.headline, "Orange warning of heavy air pollution for 太原市小店区 (140105)");
    }

    #[test]
    fn each_shipped_level_has_advice_in_both_languages_and_stricter_levels_say_more() {
        let texts = Texts::builtin();
        for id in ["yellow", "orange", "red"] {
            let a = texts.advice(id);
            assert!(!a.zh.is_empty() && a.zh.len() == a.en.len(), "{id}: {a:?}");
            assert!(a.zh[0].contains("易感人群"), "{id}: sensitive groups come first");
        }
        assert!(texts.advice("red").zh.iter().any(|l| l.contains("停课")), "red may close schools");
        assert_eq!(
            texts.advice("purple"),
            AdviceView {
                zh: texts.advice.default.zh.clone(),
                en: texts.advice.default.en.clone()
            }
        );
    }

    #[test]
    fn a_broken_template_or_advice_in_the_folder_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("message.zh-CN.j2"), "{% macro headline(m) %}{{ m.level.name ").unwrap();
        let e = Texts::load(dir.path()).unwrap_err();
        assert!(e.contains("message.zh-CN.j2"), "{e}");
        std::fs::write(
            dir.path().join("advice.yaml"),
            "levels: {}\ndefault: { zh: [a], en: [b] }\nextra: 1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("message.zh-CN.j2"), FILES[1].1).unwrap();
        let e = Texts::load(dir.path()).unwrap_err();
        assert!(e.contains("advice.yaml:3:"), "{e}");
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let texts = Texts::builtin();
        let mut m = sample(Change::Issue, &texts);
        m.level.name = "<b>橙色&预警</b>".into();
        let html = texts
            .page(minijinja::context! { title => "t", updated => None::<Time>, groups => Vec::<()>::new(), recent => vec![minijinja::context! { headline => "<script>x</script>", sent => m.sent, cap_path => m.cap_path }], feed_url => "/public/feed.atom", ozone => vec![minijinja::context! { region => "<i>太原市</i>", dates => "12月2日" }], ozone_advice => vec!["<u>少外出</u>"], counties => minijinja::context! { cities => vec![minijinja::context! { city => "<em>太原市</em>", counties => vec![minijinja::context! { name => "<s>小店区</s>", level => m.level, source => "随<b>太原市</b>预警" }] }], others => 1 } })
            .unwrap();
        assert!(html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;i&gt;太原市") && html.contains("&lt;u&gt;少外出"), "{html}");
        assert!(
            html.contains("&lt;em&gt;太原市") && html.contains("&lt;s&gt;小店区") && html.contains("随&lt;b&gt;太原市"),
            "the per-county table escapes too: {html}"
        );
    }
}
