//! CAP 1.2 (OASIS Common Alerting Protocol, `urn:oasis:names:tc:emergency:cap:1.2`), one file per
//! message, written with quick-xml so every text is escaped.
//!
//! In: a resolved [`MessageView`] and its words in `zh-CN` and `en-US`. Out: the XML text, which
//! validates against the OASIS schema (the integration tests run `xmllint --schema` on every one).
//!
//! Mapping decisions:
//!
//! - `identifier` is the message id `{warning_id}-{seq}`; `sender` is the issuing body's (its playbook's
//!   `issuer.sender`); `sent` is when the
//!   record was written, in Asia/Shanghai with `+08:00` and no fractions (the schema's pattern).
//! - `msgType`: `Alert` on issue, `Update` on a level change, extension or earlier start, `Cancel`
//!   on a lift or cancellation; `Update` and `Cancel` carry `references`, the
//!   `sender,identifier,sent` of every earlier message of the episode.
//! - `status` `Actual`, `scope` `Public`, `category` `Env`; a drill's (演练) messages have `status`
//!   `Exercise` and a `note` saying it is a drill (CAP: "primarily intended for use with status
//!   Exercise"). They are served at the same address for the drill's participants (gateways, the
//!   dashboard links them) but never listed on the public page or in the feed.
//! - `severity` from the level's rank counted down from the top level of its playbook, the usual
//!   reading of the Chinese colours: top (red, Ⅰ级) `Extreme`, next (orange) `Severe`, next (yellow)
//!   `Moderate`, any lower (blue) `Minor`.
//! - `urgency`: `Immediate` when the warning is in force as the message is sent, `Expected` when it
//!   starts later, `Past` on a `Cancel`.
//! - `certainty` `Likely`: warnings are issued on a forecast consultation.
//! - `responseType`: `Prepare` before the start, `Avoid` (outdoor exposure, per the instruction)
//!   while in force, `AllClear` on a `Cancel`.
//! - `effective` is when the change takes effect; `onset` the warning's start and `expires` its
//!   expected end (both left out of a `Cancel`).
//! - `area`: `areaDesc` the region's name (a county with its city) and a `geocode` with `valueName`
//!   `GB/T 2260` and the six-digit region code.
//! - `eventCode` `hazeflow:level` carries the level id (`orange`) for machines.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::message::MsgType;
use super::text::{Lang, MessageText};
use super::view::{LevelView, MessageView};

/// The CAP 1.2 namespace.
pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// The media type CAP files are served with.
pub const CONTENT_TYPE: &str = "application/cap+xml; charset=utf-8";

/// CAP `severity` of a level: see the module documentation.
pub fn severity(level: &LevelView) -> &'static str {
    match level.top_rank.saturating_sub(level.rank) {
        0 => "Extreme",
        1 => "Severe",
        2 => "Moderate",
        _ => "Minor",
    }
}

/// CAP `urgency` of a message.
pub fn urgency(m: &MessageView) -> &'static str {
    match (m.msg_type, m.in_force) {
        (MsgType::Cancel, _) => "Past",
        (_, true) => "Immediate",
        (_, false) => "Expected",
    }
}

/// CAP `responseType` of a message.
pub fn response_type(m: &MessageView) -> &'static str {
    match (m.msg_type, m.in_force) {
        (MsgType::Cancel, _) => "AllClear",
        (_, true) => "Avoid",
        (_, false) => "Prepare",
    }
}

/// The CAP document of a message. `web` is the public page's address.
pub fn write(m: &MessageView, zh: &MessageText, en: &MessageText, web: &str) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_alert(&mut w, m, &[(Lang::Zh, zh), (Lang::En, en)], web);
    let mut out = String::from_utf8(w.into_inner()).unwrap_or_default();
    out.push('\n');
    out
}

fn write_alert(w: &mut Writer<Vec<u8>>, m: &MessageView, infos: &[(Lang, &MessageText)], web: &str) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("alert")
        .with_attribute(("xmlns", NAMESPACE))
        .write_inner_content(|w| {
            text(w, "identifier", &m.id)?;
            text(w, "sender", &m.issuer.sender)?;
            text(w, "sent", &m.sent.iso)?;
            text(w, "status", if m.exercise { "Exercise" } else { "Actual" })?;
            text(w, "msgType", m.msg_type.as_str())?;
            text(w, "scope", "Public")?;
            if m.exercise {
                text(w, "note", "演练：本消息为重污染天气应急演练，不是真实预警。")?;
            }
            if m.msg_type != MsgType::Alert && !m.references.is_empty() {
                let refs: Vec<String> = m
                    .references
                    .iter()
                    .map(|r| format!("{},{},{}", m.issuer.sender, r.id, r.sent.iso))
                    .collect();
                text(w, "references", &refs.join(" "))?;
            }
            for (lang, t) in infos {
                write_info(w, m, *lang, t, web)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_info(w: &mut Writer<Vec<u8>>, m: &MessageView, lang: Lang, t: &MessageText, web: &str) -> io::Result<()> {
    w.create_element("info").write_inner_content(|w| {
        text(w, "language", lang.tag())?;
        text(w, "category", "Env")?;
        text(w, "event", &t.event)?;
        text(w, "responseType", response_type(m))?;
        text(w, "urgency", urgency(m))?;
        text(w, "severity", severity(&m.level))?;
        text(w, "certainty", "Likely")?;
        pair(w, "eventCode", "hazeflow:level", &m.level.id)?;
        text(w, "effective", &m.effective.iso)?;
        if m.msg_type != MsgType::Cancel {
            text(w, "onset", &m.start.iso)?;
            text(w, "expires", &m.end.iso)?;
        }
        text(w, "senderName", &t.sender_name)?;
        text(w, "headline", &t.headline)?;
        text(w, "description", &t.description)?;
        text(w, "instruction", &t.instruction)?;
        text(w, "web", web)?;
        w.create_element("area").write_inner_content(|w| {
            text(w, "areaDesc", &m.region.full_name)?;
            pair(w, "geocode", "GB/T 2260", &m.region.code)
        })?;
        Ok(())
    })?;
    Ok(())
}

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(&xml_chars(value)))?;
    Ok(())
}

fn pair(w: &mut Writer<Vec<u8>>, name: &str, value_name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_inner_content(|w| {
        text(w, "valueName", value_name)?;
        text(w, "value", value)
    })?;
    Ok(())
}

/// Drops the characters XML 1.0 cannot carry at all (control characters other than tab and line
/// breaks), which an edited template could contain; escaping is quick-xml's job.
pub fn xml_chars(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::publish::message::Change;
    use crate::web::publish::text::Texts;
    use crate::web::publish::text::tests::sample;
    use crate::web::publish::view::{ReferenceView, Time};
    use chrono::{TimeZone, Utc};

    fn cap(m: &MessageView) -> String {
        let texts = Texts::builtin();
        write(
            m,
            &texts.message(m, Lang::Zh).unwrap(),
            &texts.message(m, Lang::En).unwrap(),
            "http://x/public",
        )
    }

    #[test]
    fn severity_counts_down_from_the_top_level_of_the_playbook() {
        let l = |rank, top_rank| LevelView {
            id: "x".into(),
            name: "x".into(),
            colour: "#000000".into(),
            text_colour: "#FFFFFF",
            response: String::new(),
            rank,
            top_rank,
        };
        let shanxi: Vec<&str> = (1..=3).map(|r| severity(&l(r, 3))).collect();
        assert_eq!(shanxi, ["Moderate", "Severe", "Extreme"], "yellow, orange, red");
        let with_blue: Vec<&str> = (1..=4).map(|r| severity(&l(r, 4))).collect();
        assert_eq!(with_blue, ["Minor", "Moderate", "Severe", "Extreme"]);
    }

    #[test]
    fn an_alert_has_both_languages_the_area_code_and_no_references() {
        let texts = Texts::builtin();
        let xml = cap(&sample(Change::Issue, &texts));
        for needle in [
            r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">"#,
            "<identifier>140105-20261201-1-7</identifier>",
            "<sender>hazeflow-140100@example.cn</sender>",
            "<senderName>太原市重污染天气应急指挥部办公室</senderName>",
            "<sent>2026-12-01T17:00:00+08:00</sent>",
            "<msgType>Alert</msgType>",
            "<language>zh-CN</language>",
            "<language>en-US</language>",
            "<category>Env</category>",
            "<urgency>Expected</urgency>",
            "<severity>Severe</severity>",
            "<onset>2026-12-02T00:00:00+08:00</onset>",
            "<areaDesc>太原市小店区</areaDesc>",
            "<valueName>GB/T 2260</valueName>",
            "<value>140105</value>",
        ] {
            assert!(xml.contains(needle), "{needle} in\n{xml}");
        }
        assert!(!xml.contains("<references>"));
    }

    #[test]
    fn a_cancel_references_the_earlier_messages_and_has_no_onset() {
        let texts = Texts::builtin();
        let mut m = sample(Change::Lift, &texts);
        let sent = Time::new(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap());
        m.references = vec![
            ReferenceView {
                id: "140105-20261201-1-2".into(),
                sent: sent.clone(),
            },
            ReferenceView {
                id: "140105-20261201-1-5".into(),
                sent,
            },
        ];
        let xml = cap(&m);
        assert!(
            xml.contains("<references>hazeflow-140100@example.cn,140105-20261201-1-2,2026-12-01T17:00:00+08:00 hazeflow-140100@example.cn,140105-20261201-1-5,2026-12-01T17:00:00+08:00</references>"),
            "{xml}"
        );
        assert!(
            xml.contains("<msgType>Cancel</msgType>")
                && xml.contains("<urgency>Past</urgency>")
                && xml.contains("<responseType>AllClear</responseType>")
        );
        assert!(!xml.contains("<onset>") && !xml.contains("<expires>"));
    }

    #[test]
    fn text_is_escaped_and_characters_xml_cannot_carry_are_dropped() {
        let texts = Texts::builtin();
        let mut m = sample(Change::Issue, &texts);
        m.region.full_name = "A & <B>\u{1}".into();
        let xml = cap(&m);
        assert!(xml.contains("<areaDesc>A &amp; &lt;B&gt;</areaDesc>"), "{xml}");
        assert!(!xml.contains('\u{1}'));
    }
}
