//! What templates and writers see of a message: names resolved, levels with their colours, times in
//! Asia/Shanghai. Built once per message; the CAP, Atom and page writers only read it.

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use super::message::{Change, Message, MsgType};
use crate::domain::level::LevelId;
use crate::domain::playbook::{Issuer, Level};
use crate::domain::region::{RegionCode, Regions, Tier};

/// A time, ready for every reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Time {
    /// `2026年12月2日 00:00` (Asia/Shanghai).
    pub zh: String,
    /// `2026-12-02 00:00 (UTC+8)`.
    pub en: String,
    /// `2026-12-02T00:00:00+08:00`: CAP and Atom.
    pub iso: String,
}

impl Time {
    /// Formats a UTC instant for Asia/Shanghai, to the second (CAP allows no fractions).
    pub fn new(t: DateTime<Utc>) -> Time {
        let local = t.with_timezone(&Shanghai);
        Time {
            zh: local.format("%Y年%-m月%-d日 %H:%M").to_string(),
            en: local.format("%Y-%m-%d %H:%M (UTC+8)").to_string(),
            iso: local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        }
    }
}

/// A warning level as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelView {
    /// `orange`.
    pub id: LevelId,
    /// 橙色预警.
    pub name: String,
    /// `#FF7E00`.
    pub colour: String,
    /// Black or white, whichever reads better on `colour`.
    pub text_colour: &'static str,
    /// Ⅱ级.
    pub response: String,
    /// Its rank.
    pub rank: u32,
    /// The highest rank of its playbook (for the CAP severity).
    pub top_rank: u32,
}

impl LevelView {
    /// From the playbook's level.
    pub fn new(level: &Level, top_rank: u32) -> LevelView {
        LevelView {
            id: level.id.clone(),
            name: level.name.clone(),
            colour: level.colour.clone(),
            text_colour: text_colour_on(&level.colour),
            response: level.response.clone(),
            rank: level.rank,
            top_rank,
        }
    }

    /// A level no playbook knows any more (the one pinned was replaced): shown by its id, in grey.
    pub fn unknown(id: &str, rank: u32) -> LevelView {
        LevelView {
            id: id.into(),
            name: id.into(),
            colour: "#808080".into(),
            text_colour: text_colour_on("#808080"),
            response: String::new(),
            rank,
            top_rank: rank,
        }
    }
}

/// A region as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionView {
    /// `140105`.
    pub code: String,
    /// 小店区.
    pub name: String,
    /// 太原市小店区: a county with its city.
    pub full_name: String,
}

impl RegionView {
    /// Names from the region table.
    pub fn new(code: RegionCode, regions: &Regions) -> RegionView {
        let name = regions.name(code);
        let full_name = match (code.tier(), regions.ancestors(code).first()) {
            (Tier::County, Some(city)) => format!("{}{name}", regions.name(*city)),
            _ => name.clone(),
        };
        RegionView {
            code: code.to_string(),
            name,
            full_name,
        }
    }
}

/// Health advice for one level, in both languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdviceView {
    /// 中文.
    pub zh: Vec<String>,
    /// English.
    pub en: Vec<String>,
}

/// An earlier message, as referenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceView {
    /// Its identifier.
    pub id: String,
    /// When it was sent.
    pub sent: Time,
}

/// One message, everything resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// `{warning_id}-{seq}`.
    pub id: String,
    /// The warning.
    pub warning_id: String,
    /// `Alert`, `Update`, `Cancel`.
    pub msg_type: MsgType,
    /// `issue`, `upgrade`, `downgrade`, `extend`, `reschedule`, `lift`, `cancel`.
    pub change: Change,
    /// The region.
    pub region: RegionView,
    /// Who issues it (the warning's playbook): CAP `sender`/`senderName`, the entry's author, 发布单位.
    pub issuer: Issuer,
    /// The level (after the change).
    pub level: LevelView,
    /// The level before a level change.
    pub previous_level: Option<LevelView>,
    /// When it was published.
    pub sent: Time,
    /// When the change takes effect.
    pub effective: Time,
    /// When the warning starts (starts, for an update).
    pub start: Time,
    /// When it is expected to end.
    pub end: Time,
    /// The level timeline in words (`12月5日0时起黄色预警；12月6日0时起橙色预警；预计12月8日0时解除`), when the
    /// consultation gave one.
    pub timeline: Option<String>,
    /// Whether it was in force when the message was sent.
    pub in_force: bool,
    /// Earlier messages of the episode.
    pub references: Vec<ReferenceView>,
    /// Health advice for the level.
    pub advice: AdviceView,
    /// `/public/cap/{id}.xml`, absolute (feed, CAP).
    pub cap_url: String,
    /// `/public/cap/{id}.xml` (the page links relative, so it works behind any address).
    pub cap_path: String,
    #[serde(skip)]
    /// The raw send time, for sorting.
    pub sent_at: DateTime<Utc>,
    /// Of a drill (演练): CAP `status` `Exercise`; never on the public page or in the feed.
    pub exercise: bool,
}

impl MessageView {
    /// Resolves a message; `level` looks a level id up in the warning's playbook.
    pub fn new(
        m: &Message,
        regions: &Regions,
        issuer: Issuer,
        level: impl Fn(&str, u32) -> LevelView,
        advice: AdviceView,
        base_url: &str,
    ) -> MessageView {
        let w = &m.warning;
        let previous_level = m.previous_level.as_deref().map(|id| level(id, 0));
        MessageView {
            id: m.id.clone(),
            warning_id: m.warning_id.clone(),
            msg_type: m.msg_type,
            change: m.change,
            region: RegionView::new(w.region, regions),
            issuer,
            level: level(&w.level, w.level.rank),
            previous_level,
            sent: Time::new(m.sent),
            effective: Time::new(m.effective),
            start: Time::new(w.start),
            end: Time::new(w.expected_end),
            timeline: crate::domain::warning::timeline_named(w, |id| {
                let rank = w
                    .plan
                    .iter()
                    .flat_map(|p| &p.steps)
                    .find(|s| s.level.id == id)
                    .map_or(0, |s| s.level.rank);
                level(id, rank).name
            }),
            in_force: w.start <= m.sent,
            references: m
                .references
                .iter()
                .map(|r| ReferenceView {
                    id: r.id.clone(),
                    sent: Time::new(r.sent),
                })
                .collect(),
            advice,
            cap_url: format!("{}{}", base_url.trim_end_matches('/'), cap_path(&m.id)),
            cap_path: cap_path(&m.id),
            sent_at: m.sent,
            exercise: w.exercise,
        }
    }
}

/// Where a message's CAP file is served.
pub fn cap_path(id: &str) -> String {
    format!("/public/cap/{id}.xml")
}

/// Black or white text on `#RRGGBB`, whichever has the higher WCAG 2 contrast ratio (black on the
/// usual yellow, orange and even pure red: 5.3:1 against white's 4.0:1).
pub fn text_colour_on(bg: &str) -> &'static str {
    let l = relative_luminance(bg).unwrap_or(1.0);
    // contrast(black) = (l + 0.05) / 0.05, contrast(white) = 1.05 / (l + 0.05).
    if (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) {
        "#000000"
    } else {
        "#FFFFFF"
    }
}

/// WCAG 2 relative luminance of `#RRGGBB`.
pub fn relative_luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(h.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

/// WCAG 2 contrast ratio of two `#RRGGBB` colours.
pub fn contrast_ratio(a: &str, b: &str) -> Option<f64> {
    let (x, y) = (relative_luminance(a)?, relative_luminance(b)?);
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    Some((hi + 0.05) / (lo + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_shown_in_asia_shanghai_with_the_offset() {
        let t = Time::new(Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap());
        assert_eq!(t.zh, "2026年12月2日 00:00");
        assert_eq!(t.en, "2026-12-02 00:00 (UTC+8)");
        assert_eq!(t.iso, "2026-12-02T00:00:00+08:00");
        let with_fraction = Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap() + chrono::Duration::milliseconds(1500);
        assert_eq!(
            Time::new(with_fraction).iso,
            "2026-12-02T00:00:01+08:00",
            "CAP allows no fractions of a second"
        );
    }

    #[test]
    fn level_text_keeps_at_least_the_aa_contrast_on_every_shipped_colour() {
        for bg in ["#FFFF00", "#FF7E00", "#FF0000", "#0000FF", "#7E0023", "#99004C", "#808080"] {
            let fg = text_colour_on(bg);
            let ratio = contrast_ratio(bg, fg).unwrap();
            assert!(ratio >= 4.5, "{fg} on {bg}: {ratio:.2}");
        }
        assert_eq!(text_colour_on("#FF0000"), "#000000");
        assert_eq!(text_colour_on("#0000FF"), "#FFFFFF");
    }

    #[test]
    fn a_county_is_named_with_its_city() {
        let regions = Regions::shanxi();
        let r = RegionView::new(RegionCode::parse("140105").unwrap(), regions);
        assert_eq!((r.name.as_str(), r.full_name.as_str()), ("小店区", "太原市小店区"));
        let r = RegionView::new(RegionCode::parse("140100").unwrap(), regions);
        assert_eq!(r.full_name, "太原市");
    }
}
