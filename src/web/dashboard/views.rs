//! View models: what the templates show, computed from the store's state and the playbooks. Pure
//! functions of their inputs (no clock, no store), so they are tested as tables below.
//!
//! Times are shown in Asia/Shanghai; level names and colours come from the playbook that governs the
//! region (the episode's pinned version while a warning is live); text on a level colour is black or
//! white, whichever contrasts more.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;
use serde::Serialize;

use crate::domain::level::LevelId;
use crate::domain::playbook::{Playbook, PlaybookSet, SignOff};
use crate::domain::region::{RegionCode, Regions, Tier};
use crate::domain::warning::{EventKind, RegionState, Status, Warning};
use crate::engine::Playbooks;
use crate::store::DirectiveRecord;

/// `2026-12-02 15:10` in Asia/Shanghai.
pub fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Shanghai).format("%Y-%m-%d %H:%M").to_string()
}

/// `12-02` for a forecast day.
pub fn short_date(d: NaiveDate) -> String {
    d.format("%m-%d").to_string()
}

/// The sRGB relative luminance of `#RRGGBB` (WCAG 2), or `None` when it is not such a colour.
fn luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#')?;
    if h.len() != 6 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(&h[i..i + 2], 16).ok()?) / 255.0;
        Some(if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

/// WCAG contrast ratio of two `#RRGGBB` colours (1 to 21); 1 when either is not a colour.
pub fn contrast_ratio(a: &str, b: &str) -> f64 {
    match (luminance(a), luminance(b)) {
        (Some(x), Some(y)) => (x.max(y) + 0.05) / (x.min(y) + 0.05),
        _ => 1.0,
    }
}

/// Black or white, whichever reads better on `bg`.
pub fn text_colour_for(bg: &str) -> &'static str {
    if contrast_ratio(bg, "#000000") >= contrast_ratio(bg, "#FFFFFF") {
        "#000000"
    } else {
        "#FFFFFF"
    }
}

/// One colour class of the page (`.c-ff7e00`), written into the page's nonce'd `<style>`: the
/// content security policy forbids inline `style` attributes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swatch {
    /// Lower-case hex digits, the class suffix.
    pub key: String,
    /// Background.
    pub bg: String,
    /// Text on it.
    pub fg: String,
}

/// The level colours a page uses.
#[derive(Debug, Default)]
pub struct Palette(BTreeMap<String, Swatch>);

impl Palette {
    /// Adds a colour; returns its class (`c-ff7e00`), or `c-none` for something that is not `#RRGGBB`.
    pub fn class(&mut self, colour: &str) -> String {
        if luminance(colour).is_none() {
            return "c-none".into();
        }
        let key = colour.trim_start_matches('#').to_ascii_lowercase();
        self.0.entry(key.clone()).or_insert_with(|| Swatch {
            key: key.clone(),
            bg: format!("#{key}"),
            fg: text_colour_for(colour).into(),
        });
        format!("c-{key}")
    }

    /// Every colour of every level of a set.
    pub fn add_set(&mut self, set: &PlaybookSet) {
        for pb in set.iter() {
            for l in &pb.levels {
                self.class(&l.colour);
            }
        }
    }

    /// The swatches, for the template.
    pub fn swatches(&self) -> Vec<Swatch> {
        self.0.values().cloned().collect()
    }
}

/// The rule as playbooks print it (`AQI>200 for 2 days or AQI>150 for 3 days`), in Chinese.
pub fn rule_zh(rule: &str) -> String {
    let mut out = String::new();
    let mut rest = rule;
    while let Some(i) = rest.find(" for ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        let tail = after[digits.len()..]
            .strip_prefix(" days")
            .or_else(|| after[digits.len()..].strip_prefix(" day"));
        match (digits.is_empty(), tail) {
            (false, Some(tail)) => {
                out.push_str(&format!(" 持续{digits}天"));
                rest = tail;
            }
            _ => {
                out.push_str(" for ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace(" and ", " 且 ").replace(" or ", " 或 ")
}

/// A warning status in Chinese.
pub fn status_zh(s: Status) -> &'static str {
    match s {
        Status::Pending => "待签发",
        Status::Issued => "已发布，未生效",
        Status::Active => "生效中",
        Status::Lifted => "已解除",
        Status::Cancelled => "已取消",
    }
}

/// `snake_case` of a status, for `data-status` attributes and CSS.
pub fn status_id(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Issued => "issued",
        Status::Active => "active",
        Status::Lifted => "lifted",
        Status::Cancelled => "cancelled",
    }
}

/// Who did it, in Chinese where it is the system.
pub fn actor_zh(actor: &str) -> String {
    match actor {
        "consultation" => "每日会商".into(),
        "clock" => "系统时钟".into(),
        a => match a.strip_prefix("directive:") {
            Some(d) => format!("调度令 {d}"),
            None => a.to_string(),
        },
    }
}

/// Which playbook governs what, for display.
pub struct Lookup<'a> {
    /// The live set.
    pub set: Arc<PlaybookSet>,
    /// Live and pinned playbooks.
    pub playbooks: &'a Playbooks,
    /// The region table.
    pub regions: &'a Regions,
}

impl Lookup<'_> {
    /// The playbook of a warning's episode (its pinned version), else the region's live one.
    pub fn for_warning(&self, w: &Warning) -> Option<Arc<Playbook>> {
        self.playbooks.pinned(&w.playbook).or_else(|| self.for_region(w.region))
    }

    /// The live playbook that governs a region.
    pub fn for_region(&self, region: RegionCode) -> Option<Arc<Playbook>> {
        self.set.for_region(region, self.regions).cloned()
    }

    /// A playbook by pin (`id@version`), else the region's live one.
    pub fn for_pin(&self, pin: &str, region: RegionCode) -> Option<Arc<Playbook>> {
        self.playbooks.pinned(pin).or_else(|| self.for_region(region))
    }
}

/// A level's Chinese name (`橙色预警`), `无` for none, the id when the playbook does not know it.
pub fn level_name(pb: Option<&Playbook>, id: &str) -> String {
    if id == "none" || id.is_empty() {
        return "无".into();
    }
    pb.and_then(|p| p.level(id)).map_or_else(|| id.to_string(), |l| l.name.clone())
}

/// A level's colour class, `c-none` when unknown.
pub fn level_class(pb: Option<&Playbook>, id: &str, palette: &mut Palette) -> String {
    pb.and_then(|p| p.level(id))
        .map_or_else(|| "c-none".to_string(), |l| palette.class(&l.colour))
}

/// The Chinese title of a role (`分管副市长`), the id when unknown.
pub fn role_name(pb: Option<&Playbook>, id: &str) -> String {
    pb.and_then(|p| p.role(id)).map_or_else(|| id.to_string(), |r| r.name.clone())
}

/// Who must sign a level, in Chinese; `None` when it is automatic.
pub fn needs_zh(pb: Option<&Playbook>, level: &str) -> Option<String> {
    match pb.and_then(|p| p.level(level)).map(|l| &l.sign_off) {
        Some(SignOff::Role(r)) => Some(role_name(pb, r)),
        _ => None,
    }
}

/// A path segment, percent-encoded (ids are plain, but the link must not depend on that).
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A warning's page.
pub fn warning_href(id: &str) -> String {
    format!("/warnings/{}", path_segment(id))
}

/// One region on the grid.
#[derive(Debug, Clone, Serialize)]
pub struct Tile {
    /// Six digits.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// Its warning's page, when it has a live warning.
    pub href: Option<String>,
    /// Level id in force (or proposed, while pending); `none` otherwise.
    pub level: LevelId,
    /// Level name.
    pub level_name: String,
    /// `pending`, `issued`, `active` or `none`.
    pub status: String,
    /// What the tile says under the name (`生效中`, `12-02 15:10 起`, `待签发`).
    pub note: String,
    /// CSS classes.
    pub class: String,
    /// Colour class of the swatch on a pending tile.
    pub swatch: String,
}

/// A city with its counties.
#[derive(Debug, Clone, Serialize)]
pub struct CityBlock {
    /// The city.
    pub city: Tile,
    /// Its counties.
    pub counties: Vec<Tile>,
}

/// Province → cities → counties.
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    /// The province.
    pub province: Tile,
    /// Its cities.
    pub cities: Vec<CityBlock>,
}

fn tile(code: RegionCode, look: &Lookup<'_>, states: &BTreeMap<RegionCode, RegionState>, palette: &mut Palette) -> Tile {
    let name = look.regions.name(code);
    let base = Tile {
        code: code.to_string(),
        name,
        href: None,
        level: "none".into(),
        level_name: "无预警".into(),
        status: "none".into(),
        note: "无预警".into(),
        class: "tile".into(),
        swatch: String::new(),
    };
    let Some(w) = states.get(&code).and_then(RegionState::live) else {
        // No warning of its own: the city's or province's warning in force covers it (its enterprises are
        // assigned under it), so the tile says so.
        let Some(f) = crate::domain::in_force::in_force(code, look.regions, states).filter(|f| f.inherited) else {
            return base;
        };
        let pb = look.for_warning(f.warning);
        let colour = level_class(pb.as_deref(), &f.warning.level, palette);
        return Tile {
            href: Some(warning_href(&f.warning.id)),
            level: f.warning.level.id.clone(),
            level_name: level_name(pb.as_deref(), &f.warning.level),
            status: "active".into(),
            note: format!(
                "{} · 随{}生效中",
                level_name_short(pb.as_deref(), &f.warning.level),
                look.regions.name(f.from)
            ),
            class: format!("tile lv {colour}"),
            ..base
        };
    };
    let pb = look.for_warning(w);
    let colour = level_class(pb.as_deref(), &w.level, palette);
    let level_name = level_name(pb.as_deref(), &w.level);
    let short = level_name_short(pb.as_deref(), &w.level);
    let (class, note, swatch) = match w.status {
        Status::Pending => ("tile pending".to_string(), format!("待签发 · {short}"), colour),
        Status::Issued => (
            format!("tile lv {colour}"),
            format!("{short} · {} 起", local_time(w.start).get(5..).unwrap_or_default()),
            String::new(),
        ),
        _ => (format!("tile lv {colour}"), format!("{short} · 生效中"), String::new()),
    };
    let note = match &w.pending_change {
        Some(p) if w.status != Status::Pending => format!("{note} · 待升级{}", level_name_short(pb.as_deref(), &p.level)),
        _ => note,
    };
    Tile {
        href: Some(warning_href(&w.id)),
        level: w.level.id.clone(),
        level_name,
        status: status_id(w.status).into(),
        note,
        class,
        swatch,
        ..base
    }
}

/// `橙色` from `橙色预警`, for tight spaces.
fn level_name_short(pb: Option<&Playbook>, id: &str) -> String {
    let n = level_name(pb, id);
    n.strip_suffix("预警").map_or(n.clone(), str::to_string)
}

/// The grid of the province that `root` names, coloured by each region's live warning.
pub fn grid(root: RegionCode, look: &Lookup<'_>, states: &BTreeMap<RegionCode, RegionState>, palette: &mut Palette) -> Grid {
    let cities = look
        .regions
        .children(root)
        .into_iter()
        .map(|c| CityBlock {
            city: tile(c, look, states, palette),
            counties: look
                .regions
                .children(c)
                .into_iter()
                .map(|k| tile(k, look, states, palette))
                .collect(),
        })
        .collect();
    Grid {
        province: tile(root, look, states, palette),
        cities,
    }
}

/// The province of the region table (the root of the grid).
pub fn province(regions: &Regions) -> Option<RegionCode> {
    regions.all().find(|r| r.tier == Tier::Province).map(|r| r.code)
}

/// One entry of the legend.
#[derive(Debug, Clone, Serialize)]
pub struct LegendItem {
    /// Level name.
    pub name: String,
    /// Response grade (Ⅲ级).
    pub response: String,
    /// Colour class.
    pub class: String,
}

/// The levels of the live root playbooks, lowest first, one entry per name and colour.
pub fn legend(set: &PlaybookSet, palette: &mut Palette) -> Vec<LegendItem> {
    let mut seen = BTreeSet::new();
    let mut levels: Vec<_> = set.iter().flat_map(|p| p.levels.iter()).collect();
    levels.sort_by_key(|l| l.rank);
    let mut out = Vec::new();
    for l in levels {
        if seen.insert((l.name.clone(), l.colour.to_ascii_lowercase())) {
            out.push(LegendItem {
                name: l.name.clone(),
                response: l.response.clone(),
                class: palette.class(&l.colour),
            });
        }
    }
    out
}

/// A live warning, as a row of the warnings table.
#[derive(Debug, Clone, Serialize)]
pub struct WarningRow {
    /// Id.
    pub id: String,
    /// A drill (演练): marked wherever it is listed.
    pub exercise: bool,
    /// Its page.
    pub href: String,
    /// Region code.
    pub region: String,
    /// Region name.
    pub region_name: String,
    /// Level id.
    pub level: LevelId,
    /// Level name.
    pub level_name: String,
    /// Colour class.
    pub class: String,
    /// Status id.
    pub status: String,
    /// Status in Chinese.
    pub status_name: String,
    /// Start.
    pub start: String,
    /// Expected end.
    pub expected_end: String,
    /// The rule that fired, in Chinese (`调度令` when a directive set it).
    pub rule: String,
    /// A pending upgrade, in words.
    pub pending_change: Option<String>,
    /// Directives holding it.
    pub holds: Vec<String>,
}

/// Every live warning (pending, issued, active), most severe first.
pub fn warning_rows(look: &Lookup<'_>, states: &BTreeMap<RegionCode, RegionState>, palette: &mut Palette) -> Vec<WarningRow> {
    let mut live: Vec<&Warning> = states.values().filter_map(RegionState::live).collect();
    live.sort_by(|a, b| b.level.rank.cmp(&a.level.rank).then(a.region.cmp(&b.region)));
    live.into_iter().map(|w| warning_row(look, w, palette)).collect()
}

/// One warning as a row.
pub fn warning_row(look: &Lookup<'_>, w: &Warning, palette: &mut Palette) -> WarningRow {
    let pb = look.for_warning(w);
    let pb = pb.as_deref();
    WarningRow {
        id: w.id.clone(),
        exercise: w.exercise,
        href: warning_href(&w.id),
        region: w.region.to_string(),
        region_name: look.regions.name(w.region),
        level: w.level.id.clone(),
        level_name: level_name(pb, &w.level),
        class: level_class(pb, &w.level, palette),
        status: status_id(w.status).into(),
        status_name: status_zh(w.status).into(),
        start: local_time(w.start),
        expected_end: local_time(w.expected_end),
        rule: w.rule.as_deref().map_or_else(
            || match w.holds.first() {
                None => "—".into(),
                Some(h) if h.source.is_some() => "上级预警".into(),
                Some(_) => "调度令".into(),
            },
            rule_zh,
        ),
        pending_change: w.pending_change.as_ref().map(|p| {
            let who = needs_zh(pb, &p.level).map_or_else(String::new, |n| format!("，待{n}签发"));
            format!("提议升级为{}{who}", level_name(pb, &p.level))
        }),
        holds: w
            .holds
            .iter()
            .map(|h| {
                format!(
                    "{}（不低于{}）",
                    h.source.as_ref().unwrap_or(&h.directive),
                    level_name(pb, &h.min_level)
                )
            })
            .collect(),
    }
}

/// A proposal awaiting sign-off: a new warning, or a change of a live one's level.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    /// The warning id (what the sign form posts to).
    pub warning_id: String,
    /// Its page.
    pub href: String,
    /// Where the sign form posts.
    pub sign_action: String,
    /// Region code.
    pub region: String,
    /// Region name.
    pub region_name: String,
    /// `新发布` or `级别调整`.
    pub kind: String,
    /// The level in force now (for a change).
    pub from_level_name: Option<String>,
    /// Level id proposed.
    pub level: LevelId,
    /// Level name proposed.
    pub level_name: String,
    /// Colour class.
    pub class: String,
    /// The rule that fired.
    pub rule: String,
    /// From when (a new warning) to when.
    pub start: String,
    /// Expected end.
    pub expected_end: String,
    /// Who must sign, in Chinese.
    pub needs: String,
    /// Whether this member of staff may sign it.
    pub may_sign: bool,
}

/// The proposals awaiting sign-off, most severe first, with whether `role` may sign each.
pub fn proposals(look: &Lookup<'_>, states: &BTreeMap<RegionCode, RegionState>, role: &str, palette: &mut Palette) -> Vec<Proposal> {
    let mut out: Vec<(u32, Proposal)> = Vec::new();
    for w in states.values().filter_map(RegionState::live) {
        let pb = look.for_warning(w);
        let pb = pb.as_deref();
        let (kind, from, level, rank, end, rule) = match (&w.status, &w.pending_change) {
            (Status::Pending, _) => ("新发布", None, &w.level, w.level.rank, w.expected_end, &w.rule),
            (_, Some(p)) => (
                "级别调整",
                Some(level_name(pb, &w.level)),
                &p.level,
                p.level.rank,
                p.expected_end,
                &p.rule,
            ),
            _ => continue,
        };
        out.push((
            rank,
            Proposal {
                warning_id: w.id.clone(),
                href: warning_href(&w.id),
                sign_action: format!("{}/sign", warning_href(&w.id)),
                region: w.region.to_string(),
                region_name: look.regions.name(w.region),
                kind: kind.into(),
                from_level_name: from,
                level: level.id.clone(),
                level_name: level_name(pb, level),
                class: level_class(pb, level, palette),
                rule: rule.as_deref().map_or_else(|| "—".into(), rule_zh),
                start: local_time(w.start),
                expected_end: local_time(end),
                needs: needs_zh(pb, level).unwrap_or_else(|| "自动".into()),
                may_sign: pb.is_some_and(|p| p.may_sign(level, role)),
            },
        ));
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.region.cmp(&b.1.region)));
    out.into_iter().map(|(_, p)| p).collect()
}

/// An active directive (调度令), for the "now" page.
#[derive(Debug, Clone, Serialize)]
pub struct DirectiveRow {
    /// Id.
    pub id: String,
    /// Title.
    pub name: String,
    /// Least level.
    pub min_level: String,
    /// Regions named.
    pub regions: String,
    /// From.
    pub from: String,
    /// Until, or `解除前持续有效`.
    pub until: String,
}

/// The directives still in force.
pub fn directive_rows(look: &Lookup<'_>, list: &[DirectiveRecord]) -> Vec<DirectiveRow> {
    list.iter()
        .filter(|d| d.active)
        .map(|d| {
            let pb = look.for_region(d.issued_by);
            // A warning from above: its level per group of regions.
            let min_level = match &d.upstream {
                Some(u) => u
                    .areas
                    .iter()
                    .map(|a| {
                        let names: Vec<String> = a.regions.iter().map(|r| look.regions.name(*r)).collect();
                        format!("{}（{}）", level_name(pb.as_deref(), &a.level), names.join("、"))
                    })
                    .collect::<Vec<_>>()
                    .join("；"),
                None => level_name(pb.as_deref(), &d.min_level),
            };
            DirectiveRow {
                id: d.id.clone(),
                name: d.name.clone(),
                min_level,
                regions: d.regions.iter().map(|r| look.regions.name(*r)).collect::<Vec<_>>().join("、"),
                from: local_time(d.from),
                until: d.until.map_or_else(|| "解除前持续有效".into(), local_time),
            }
        })
        .collect()
}

/// What an event of a warning's history says, in Chinese: a label and the details.
pub fn event_zh(kind: &EventKind, pb: Option<&Playbook>) -> (String, String) {
    let lv = |id: &str| level_name(pb, id);
    let span = |s: &DateTime<Utc>, e: &DateTime<Utc>| format!("{} 至 {}", local_time(*s), local_time(*e));
    let rule = |r: &Option<String>| r.as_deref().map_or_else(String::new, |r| format!("；规则：{}", rule_zh(r)));
    match kind {
        EventKind::Proposed {
            level,
            start,
            expected_end,
            rule: r,
            needs,
            reopened,
            ..
        } => (
            if *reopened { "会商提议（重启）" } else { "会商提议" }.into(),
            format!(
                "{}，{}，待{}签发{}",
                lv(level),
                span(start, expected_end),
                role_name(pb, needs),
                rule(r)
            ),
        ),
        EventKind::Issued {
            level,
            start,
            expected_end,
            rule: r,
            signer,
            reopened,
            ..
        } => {
            let label = match (signer, reopened) {
                (_, true) => "重新发布",
                (Some(_), _) => "签发",
                (None, _) => "自动发布",
            };
            (label.into(), format!("{}，{}{}", lv(level), span(start, expected_end), rule(r)))
        }
        EventKind::Withdrawn => ("撤回提议".into(), String::new()),
        EventKind::Started => ("开始生效".into(), String::new()),
        EventKind::ChangeProposed {
            level,
            expected_end,
            rule: r,
            needs,
            ..
        } => (
            "提议调整级别".into(),
            format!(
                "调整为{}，预计 {} 结束，待{}签发{}",
                lv(level),
                local_time(*expected_end),
                role_name(pb, needs),
                rule(r)
            ),
        ),
        EventKind::ChangeWithdrawn => ("撤回调整提议".into(), String::new()),
        EventKind::Scheduled { to, effective, .. } => match to {
            Some(l) => ("决定调整级别".into(), format!("自 {} 起执行{}", local_time(*effective), lv(l))),
            None => ("决定解除".into(), format!("于 {} 解除", local_time(*effective))),
        },
        EventKind::Unscheduled => ("撤回已决定的调整".into(), String::new()),
        EventKind::Replanned { plan, .. } => (
            "会商更新时间线".into(),
            crate::domain::warning::timeline_text_opt(pb, &plan.steps, plan.end, plan.end < plan.until),
        ),
        EventKind::LevelChanged {
            from,
            to,
            expected_end,
            rule: r,
            ..
        } => (
            "级别调整".into(),
            format!("{} → {}，预计 {} 结束{}", lv(from), lv(to), local_time(*expected_end), rule(r)),
        ),
        EventKind::Republished { n, level, reminders } => (
            "定时重新发布".into(),
            format!("第{n}次，{}；提醒尚未确认措施落实的企业{reminders}家", lv(level)),
        ),
        EventKind::Extended { expected_end } => ("延长".into(), format!("预计结束时间延至 {}", local_time(*expected_end))),
        EventKind::Rescheduled { start } => ("调整生效时间".into(), format!("改为 {} 开始", local_time(*start))),
        EventKind::Below { since, proposal, .. } => (
            "低于当前级别".into(),
            format!(
                "会商建议{}，自 {} 起计算解除观察期",
                proposal.as_deref().map_or_else(|| "无预警".into(), lv),
                local_time(*since)
            ),
        ),
        EventKind::BelowCleared => ("重新达到当前级别".into(), "解除观察期重新计算".into()),
        EventKind::Lifted => ("解除".into(), String::new()),
        EventKind::Cancelled => ("取消".into(), String::new()),
        EventKind::DirectiveApplied {
            directive,
            min_level,
            until,
            source,
            ..
        } => (
            if source.is_some() {
                "上级预警生效"
            } else {
                "调度令生效"
            }
            .into(),
            format!(
                "{}：不低于{}{}",
                source.as_ref().unwrap_or(directive),
                lv(min_level),
                until.map_or_else(String::new, |u| format!("，至 {}", local_time(u)))
            ),
        ),
        EventKind::DirectiveReleased { directive, source, doc_no } => match source {
            Some(source) => (
                "上级预警解除".into(),
                doc_no
                    .as_ref()
                    .map_or_else(|| source.clone(), |d| format!("{source}；解除文号：{d}")),
            ),
            None => ("调度令解除".into(), directive.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_from_above_released_shows_its_lifts_document_number() {
        let kind = EventKind::DirectiveReleased {
            directive: "SX-2026-5".into(),
            source: Some("山西省重污染天气应急指挥部预警（晋重污应急〔2026〕5号）".into()),
            doc_no: Some("晋重污应急〔2026〕6号".into()),
        };
        assert_eq!(
            event_zh(&kind, None),
            (
                "上级预警解除".to_string(),
                "山西省重污染天气应急指挥部预警（晋重污应急〔2026〕5号）；解除文号：晋重污应急〔2026〕6号".to_string()
            )
        );
    }

    #[test]
    fn rules_read_in_chinese() {
        let table = [
            ("AQI>200 for 1 day", "AQI>200 持续1天"),
            ("AQI>200 for 2 days or AQI>150 for 3 days", "AQI>200 持续2天 或 AQI>150 持续3天"),
            (
                "(AQI>200 for 3 days and AQI>300 for 1 day) or AQI>300 for 2 days",
                "(AQI>200 持续3天 且 AQI>300 持续1天) 或 AQI>300 持续2天",
            ),
            ("AQI≥150 for 2 days", "AQI≥150 持续2天"),
            ("something for nothing", "something for nothing"),
        ];
        for (rule, zh) in table {
            assert_eq!(rule_zh(rule), zh, "{rule}");
        }
    }

    #[test]
    fn text_on_every_shipped_level_colour_has_at_least_aa_contrast() {
        let set = crate::domain::playbook::load_paths(
            &[std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks"))],
            Regions::shanxi(),
        )
        .expect("the shipped playbooks load");
        for pb in set.iter() {
            for l in &pb.levels {
                let fg = text_colour_for(&l.colour);
                let ratio = contrast_ratio(&l.colour, fg);
                assert!(ratio >= 4.5, "{} {}: {fg} on {} has contrast {ratio:.2}", pb.id, l.id, l.colour);
            }
        }
    }

    #[test]
    fn contrast_ratios_match_the_wcag_examples() {
        assert!((contrast_ratio("#000000", "#FFFFFF") - 21.0).abs() < 1e-9);
        assert!((contrast_ratio("#777777", "#FFFFFF") - 4.48).abs() < 0.01);
        assert_eq!(contrast_ratio("red", "#FFFFFF"), 1.0);
        assert_eq!(text_colour_for("#FFFF00"), "#000000");
        assert_eq!(text_colour_for("#7E0023"), "#FFFFFF");
    }

    #[test]
    fn palette_classes_are_hex_only() {
        let mut p = Palette::default();
        assert_eq!(p.class("#FF7E00"), "c-ff7e00");
        assert_eq!(p.class("#ff7e00"), "c-ff7e00");
        assert_eq!(p.class("url(javascript:x)"), "c-none");
        assert_eq!(
            p.swatches(),
            vec![Swatch {
                key: "ff7e00".into(),
                bg: "#ff7e00".into(),
                fg: "#000000".into()
            }]
        );
    }

    #[test]
    fn ids_in_links_are_percent_encoded() {
        assert_eq!(warning_href("140100-20261201-1"), "/warnings/140100-20261201-1");
        assert_eq!(warning_href("a/b?c"), "/warnings/a%2Fb%3Fc");
    }

    #[test]
    fn system_actors_are_named_in_chinese() {
        assert_eq!(actor_zh("consultation"), "每日会商");
        assert_eq!(actor_zh("directive:晋-4"), "调度令 晋-4");
        assert_eq!(actor_zh("王市长"), "王市长");
    }
}
