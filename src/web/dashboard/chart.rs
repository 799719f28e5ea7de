//! The forecast chart of a consultation: one bar per forecast day (its AQI), the days the rule fired
//! on in the proposed level's colour, and one dashed line per threshold that the playbook's entry
//! rules compare against. Only geometry here; `_chart.html` draws it as inline SVG.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::views::{Palette, short_date};
use crate::domain::playbook::{Playbook, Rule};

/// Size of the drawing (the SVG's viewBox; it scales to the width of its box).
const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 34.0;
const RIGHT: f64 = 84.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// A bar (one forecast day).
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// Centre, for the labels.
    pub cx: f64,
    /// `12-02`.
    pub date: String,
    /// The AQI, or `缺` when the forecast has no value that day.
    pub value: String,
    /// Whether the rule that fired matched on this day.
    pub covered: bool,
    /// Colour class of a covered bar.
    pub class: String,
}

/// A threshold line.
#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    /// Height of the line.
    pub y: f64,
    /// `AQI>200`.
    pub label: String,
    /// Colour classes of the levels whose rules use it, lowest first.
    pub levels: Vec<String>,
    /// The names of those levels, for the description.
    pub level_names: String,
}

/// A tick on the AQI axis.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Height.
    pub y: f64,
    /// Value.
    pub label: String,
}

/// The whole chart.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// viewBox width.
    pub width: f64,
    /// viewBox height.
    pub height: f64,
    /// Plot area: left, top, right, bottom.
    pub left: f64,
    /// Top of the plot area.
    pub top: f64,
    /// Right of the plot area.
    pub right: f64,
    /// Bottom of the plot area (the zero line).
    pub bottom: f64,
    /// Bars.
    pub bars: Vec<Bar>,
    /// Thresholds.
    pub thresholds: Vec<Threshold>,
    /// Axis ticks.
    pub ticks: Vec<Tick>,
    /// What a screen reader says: the values and thresholds in words.
    pub description: String,
}

/// `(threshold, inclusive)` → the levels (rank, id) whose entry rule compares against it.
fn thresholds_of(pb: &Playbook) -> BTreeMap<(u16, bool), Vec<(u32, String)>> {
    fn walk(rule: &Rule, rank: u32, id: &str, out: &mut BTreeMap<(u16, bool), Vec<(u32, String)>>) {
        match rule {
            Rule::Above { threshold, inclusive, .. } => {
                let levels = out.entry((*threshold, *inclusive)).or_default();
                if !levels.iter().any(|(_, l)| l == id) {
                    levels.push((rank, id.to_string()));
                }
            }
            Rule::All(parts) | Rule::Any(parts) => parts.iter().for_each(|p| walk(p, rank, id, out)),
        }
    }
    let mut out = BTreeMap::new();
    for l in &pb.levels {
        walk(&l.entry, l.rank, &l.id, &mut out);
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Lays out the chart of a forecast window assessed against `pb`; `covered` are the days the rule
/// fired on, drawn in `covered_class`.
pub fn forecast_chart(
    window: &[(NaiveDate, Option<u16>)],
    covered: &[NaiveDate],
    covered_class: &str,
    pb: Option<&Playbook>,
    palette: &mut Palette,
) -> Chart {
    let lines = pb.map(thresholds_of).unwrap_or_default();
    let max_value = window.iter().filter_map(|(_, v)| *v).max().unwrap_or(0);
    let max_line = lines.keys().map(|(t, _)| *t).max().unwrap_or(0);
    let top_value = f64::from(max_value.max(max_line).max(100)) * 1.12;
    let step = if top_value > 320.0 { 100.0 } else { 50.0 };
    let y_max = (top_value / step).ceil() * step;
    let (left, top, right, bottom) = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM);
    let y_of = |v: f64| bottom - (v / y_max) * (bottom - top);
    let slot = (right - left) / window.len().max(1) as f64;
    let bars = window
        .iter()
        .enumerate()
        .map(|(i, (date, v))| {
            let value = v.map_or(0.0, f64::from);
            let is_covered = covered.contains(date);
            let w = slot * 0.62;
            let x = left + slot * i as f64 + (slot - w) / 2.0;
            Bar {
                x: round(x),
                y: round(y_of(value)),
                w: round(w),
                h: round(bottom - y_of(value)),
                cx: round(x + w / 2.0),
                date: short_date(*date),
                value: v.map_or_else(|| "缺".into(), |v| v.to_string()),
                covered: is_covered,
                class: if is_covered { covered_class.to_string() } else { String::new() },
            }
        })
        .collect::<Vec<_>>();
    let thresholds = lines
        .iter()
        .map(|((t, inclusive), levels)| Threshold {
            y: round(y_of(f64::from(*t))),
            label: format!("AQI{}{t}", if *inclusive { "≥" } else { ">" }),
            levels: levels
                .iter()
                .map(|(_, id)| {
                    pb.and_then(|p| p.level(id))
                        .map_or_else(|| "c-none".into(), |l| palette.class(&l.colour))
                })
                .collect(),
            level_names: levels
                .iter()
                .map(|(_, id)| pb.and_then(|p| p.level(id)).map_or_else(|| id.clone(), |l| l.name.clone()))
                .collect::<Vec<_>>()
                .join("、"),
        })
        .collect::<Vec<_>>();
    let mut ticks = Vec::new();
    let mut v = 0.0;
    while v <= y_max {
        ticks.push(Tick {
            y: round(y_of(v)),
            label: format!("{v}"),
        });
        v += step;
    }
    let values = bars
        .iter()
        .map(|b| format!("{} {}", b.date, b.value))
        .collect::<Vec<_>>()
        .join("，");
    let lines_text = thresholds
        .iter()
        .map(|t| format!("{}（{}）", t.label, t.level_names))
        .collect::<Vec<_>>()
        .join("，");
    let description = if lines_text.is_empty() {
        format!("逐日预报AQI：{values}。")
    } else {
        format!("逐日预报AQI：{values}。预警阈值：{lines_text}。")
    };
    Chart {
        width: WIDTH,
        height: HEIGHT,
        left,
        top,
        right,
        bottom,
        bars,
        thresholds,
        ticks,
        description,
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::region::Regions;

    fn shanxi() -> std::sync::Arc<Playbook> {
        let set = crate::domain::playbook::load_paths(
            &[std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks"))],
            Regions::shanxi(),
        )
        .expect("the shipped playbooks load");
        set.get("shanxi").expect("shanxi").clone()
    }

    #[test]
    fn the_shanxi_thresholds_are_drawn_once_each_with_the_levels_that_use_them() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let window = [(d("2026-12-02"), Some(160)), (d("2026-12-03"), Some(230)), (d("2026-12-04"), None)];
        let mut palette = Palette::default();
        let c = forecast_chart(
            &window,
            &[d("2026-12-02"), d("2026-12-03")],
            "c-ff7e00",
            Some(&shanxi()),
            &mut palette,
        );
        let labels: Vec<&str> = c.thresholds.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["AQI>150", "AQI>200", "AQI>300"]);
        assert_eq!(c.thresholds[0].level_names, "黄色预警、橙色预警");
        assert_eq!(c.thresholds[2].level_names, "红色预警");
        // Higher values are drawn higher; every line lies inside the plot.
        assert!(c.thresholds[0].y > c.thresholds[1].y && c.thresholds[1].y > c.thresholds[2].y);
        assert!(c.thresholds.iter().all(|t| t.y >= c.top && t.y <= c.bottom));
        assert_eq!(
            c.bars.iter().map(|b| (b.value.as_str(), b.covered)).collect::<Vec<_>>(),
            [("160", true), ("230", true), ("缺", false)]
        );
        assert_eq!(c.bars[2].h, 0.0);
        assert!(
            c.description.contains("12-03 230") && c.description.contains("AQI>300（红色预警）"),
            "{}",
            c.description
        );
    }
}
