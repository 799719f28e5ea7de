//! The one wording of a measure line (措施条目), as the 公示牌 states it: what it applies to — the
//! line, the process or equipment, or 全厂 — then the measure, then its note:
//! `烧结机、球团设备：停产`, `1#焦炉：出焦时间延长至28小时`, `全厂：限产30%（以热定产）`.
//!
//! Every place that shows an enterprise its measures (the notice, the reminder, the acknowledgement
//! page, the dashboard, the after-episode summary, the board) renders them here, so a plant reads the
//! same line on its gate and in its mail. Pure: no template, no store.

use serde_json::{Value, json};

use super::AssignedMeasure;

/// What a measure without a line or process applies to: the whole enterprise.
pub const WHOLE_PLANT: &str = "全厂";

/// What a measure applies to: the line's name, the process or equipment named (both when the line's
/// name does not already say the process: `2#生产线（烧结机）`), else 全厂.
pub fn measure_subject(line_name: Option<&str>, process: Option<&str>) -> String {
    let line = line_name.map(str::trim).filter(|s| !s.is_empty());
    let process = process.map(str::trim).filter(|s| !s.is_empty());
    match (line, process) {
        (Some(l), Some(p)) if l.contains(p) => l.to_string(),
        (Some(l), Some(p)) => format!("{l}（{p}）"),
        (Some(l), None) => l.to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => WHOLE_PLANT.to_string(),
    }
}

/// A measure as one line: `{subject}：{measure}` and `（{note}）` when there is a note.
pub fn measure_item(line_name: Option<&str>, process: Option<&str>, text: &str, note: &str) -> String {
    let mut s = format!("{}：{}", measure_subject(line_name, process), text.trim());
    let note = note.trim();
    if !note.is_empty() {
        s.push('（');
        s.push_str(note);
        s.push('）');
    }
    s
}

impl AssignedMeasure {
    /// What it applies to (line, process or 全厂).
    pub fn subject(&self) -> String {
        measure_subject(self.line_name.as_deref().or(self.line.as_deref()), self.process.as_deref())
    }

    /// The measure as one line, in the board's words.
    pub fn item(&self) -> String {
        measure_item(
            self.line_name.as_deref().or(self.line.as_deref()),
            self.process.as_deref(),
            &self.text_zh,
            &self.note,
        )
    }
}

/// What message and page templates get for a measure: `item` (the whole line, as on the board),
/// `subject`, and the parts (`line_name`, `process`, `text`, `note`) for templates that lay it out
/// themselves.
pub fn measure_json(m: &AssignedMeasure) -> Value {
    json!({
        "item": m.item(),
        "subject": m.subject(),
        "line_name": m.line_name,
        "process": m.process,
        "text": m.text_zh,
        "note": m.note,
    })
}

/// The same for a negotiated commitment (协商减排), which names its own lines: the commitment and the
/// agreed reductions in brackets.
pub fn commitment_json(commitment: &str, reductions: &str) -> Value {
    let item = if reductions.trim().is_empty() {
        commitment.trim().to_string()
    } else {
        format!("{}（{}）", commitment.trim(), reductions.trim())
    };
    json!({
        "item": item,
        "subject": Value::Null,
        "line_name": Value::Null,
        "process": Value::Null,
        "text": commitment,
        "note": reductions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Line name, process, measure, note → the line.
    type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a str, &'a str, &'a str);

    #[test]
    fn a_measure_line_names_its_line_or_process_or_the_whole_plant() {
        let table: &[Case] = &[
            (None, Some("烧结机、球团设备"), "停产", "", "烧结机、球团设备：停产"),
            (Some("1#焦炉"), None, "出焦时间延长至28小时", "", "1#焦炉：出焦时间延长至28小时"),
            (None, None, "限产30%", "以热定产", "全厂：限产30%（以热定产）"),
            (Some("2#生产线"), Some("烧结机"), "停产", " ", "2#生产线（烧结机）：停产"),
            (Some("1#烧结机"), Some("烧结机"), "停产", "", "1#烧结机：停产"),
            (Some(" "), Some(""), "停产", "", "全厂：停产"),
        ];
        for (line, process, text, note, want) in table {
            assert_eq!(measure_item(*line, *process, text, note), *want);
        }
        assert_eq!(
            commitment_json("2#焦炉出焦时间延长至72小时", "SO2 0.3")["item"],
            "2#焦炉出焦时间延长至72小时（SO2 0.3）"
        );
    }
}
