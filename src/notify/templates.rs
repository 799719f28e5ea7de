//! Message templates (minijinja 2) that operators edit: `playbooks/templates/notify/`.
//!
//! In: the folder. Each message kind `NAME` has `NAME.subject.j2` (one line), `NAME.txt.j2` (plain
//! text) and optionally `NAME.html.j2` (HTML, auto-escaped: a `<script>` in a name shows as text).
//! Out: [`Rendered`] subject, text and HTML for a message's data. Everything is read and compiled
//! once at start, so a broken template stops the daemon at start, not at 3 a.m.; the daemon must be
//! restarted to take an edit.

use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Value, json};

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no control characters.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML, when the kind has an HTML template.
    pub html: Option<String>,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

fn location(dir: &Path, e: &minijinja::Error) -> String {
    let file = e
        .name()
        .map_or_else(|| dir.display().to_string(), |n| dir.join(n).display().to_string());
    let line = e.line().unwrap_or(0);
    format!("{file}:{line}:1: {}", e.detail().unwrap_or(&e.kind().to_string()))
}

/// One line: control characters (CR, LF, tabs …) become spaces, runs of spaces collapse.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Templates {
    /// Reads and compiles every `*.j2` in the folder; errors are `file:line:column: message`.
    pub fn load(dir: &Path) -> Result<Templates, Vec<String>> {
        let rd = std::fs::read_dir(dir).map_err(|e| vec![format!("{}:0:0: cannot read the templates folder: {e}", dir.display())])?;
        let mut env = Environment::new();
        // At delivery a missing value renders empty (a message with a gap beats no message);
        // `check` renders strictly so that `hazeflow check` catches the typo first.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        let mut files: Vec<_> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "j2"))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        for f in files {
            let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            match std::fs::read_to_string(&f) {
                Ok(src) => {
                    if let Err(e) = env.add_template_owned(name, src) {
                        errors.push(location(dir, &e));
                    }
                }
                Err(e) => errors.push(format!("{}:0:0: cannot read: {e}", f.display())),
            }
        }
        if errors.is_empty() { Ok(Templates { env }) } else { Err(errors) }
    }

    /// Whether the kind has its subject and text templates.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(&format!("{name}.subject.j2")).is_ok() && self.env.get_template(&format!("{name}.txt.j2")).is_ok()
    }

    /// Renders a kind with its data.
    pub fn render(&self, name: &str, data: &Value) -> Result<Rendered, String> {
        let get = |suffix: &str| self.env.get_template(&format!("{name}.{suffix}.j2"));
        let render = |t: minijinja::Template<'_, '_>| t.render(data).map_err(|e| format!("template {}: {e:#}", t.name()));
        let subject = get("subject").map_err(|_| format!("no template {name}.subject.j2"))?;
        let text = get("txt").map_err(|_| format!("no template {name}.txt.j2"))?;
        let subject = one_line(&render(subject)?);
        let text = render(text)?;
        let html = match get("html") {
            Ok(t) => Some(render(t)?),
            Err(_) => None,
        };
        Ok(Rendered { subject, text, html })
    }

    /// Renders a kind with sample data in strict mode (an unknown variable is an error), as
    /// `hazeflow check` does.
    pub fn check(&self, name: &str) -> Result<(), String> {
        let mut env = self.env.clone();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let strict = Templates { env };
        strict.render(name, &sample_data(name)).map(|_| ())
    }
}

/// Data like the notifier gives each kind, for checks and previews.
pub fn sample_data(name: &str) -> Value {
    let mut v = json!({
        "event": name.trim_start_matches("warning_"),
        "warning_id": "140100-20261202-1",
        "region": "140100",
        "region_name": "太原市",
        "region_full_name": "山西省太原市",
        "level": "orange",
        "level_name": "橙色预警",
        "level_colour": "#FF7E00",
        "response": "Ⅱ级",
        "from_level": "yellow",
        "from_level_name": "黄色预警",
        "from_response": "Ⅲ级",
        "needs": "deputy_head",
        "needs_title": "分管副市长",
        "start": "2026年12月2日 00:00",
        "expected_end": "2026年12月5日 00:00",
        "issued_at": "2026年12月1日 16:05",
        "at": "2026年12月1日 16:05",
        "rule": "AQI>200 for 2 days",
        "reason": "consultation: orange from 2026-12-02",
        "actor": "李副市长",
        "signer": "李副市长",
        "change": false,
        "playbook": "taiyuan@2024.1",
        "playbook_name": "太原市重污染天气应急预警分级（严于全省）",
        "dashboard_url": "http://127.0.0.1:8080/",
        "warning_url": "http://127.0.0.1:8080/warnings/140100-20261202-1",
        "recipient": { "name": "王芳", "role": "duty_officer", "role_title": "值班员" },
        "recipients": [{ "name": "王芳", "role": "duty_officer", "email": "wang.fang@ty.example.cn", "phone": "0351-0000000" }],
    });
    if name == "delivery_failed" {
        v["failed"] = json!({
            "id": "42-ty-wang-fang-email", "channel": "email", "recipient_name": "王芳",
            "address": "wang.fang@ty.example.cn", "subject": "【橙色预警】太原市重污染天气橙色预警（Ⅱ级）启动通知",
            "attempts": 10, "last_error": "connection refused", "cause": "140100-20261202-1", "template": "warning_issued",
            "created_at": "2026年12月1日 16:05",
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/templates/notify"))
            .unwrap_or_else(|e| panic!("{}", e.join("\n")))
    }

    #[test]
    fn every_shipped_template_renders_its_sample_in_strict_mode() {
        let t = shipped();
        for name in [
            "warning_proposed",
            "warning_issued",
            "warning_changed",
            "warning_lifted",
            "warning_cancelled",
            "delivery_failed",
        ] {
            assert!(t.has(name), "{name}");
            t.check(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_issue_notice_has_the_subject_of_the_provincial_style() {
        let r = shipped().render("warning_issued", &sample_data("warning_issued")).unwrap();
        assert_eq!(r.subject, "【橙色预警】太原市重污染天气橙色预警（Ⅱ级）启动通知");
        assert!(r.text.contains("2026年12月2日 00:00") && r.html.is_some());
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let mut data = sample_data("warning_issued");
        data["recipient"]["name"] = json!("<script>alert(1)</script>");
        let r = shipped().render("warning_issued", &data).unwrap();
        let html = r.html.unwrap();
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
        assert!(r.text.contains("<script>alert(1)</script>"));
    }

    #[test]
    fn a_subject_is_one_line_whatever_the_data() {
        let mut data = sample_data("warning_issued");
        data["region_name"] = json!("太原市\r\nBcc: evil@example.com");
        let r = shipped().render("warning_issued", &data).unwrap();
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'), "{:?}", r.subject);
    }

    #[test]
    fn a_syntax_error_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.txt.j2"), "line one\n{% if %}\n").unwrap();
        let e = Templates::load(dir.path()).unwrap_err();
        assert!(e[0].contains("x.txt.j2:2:"), "{e:?}");
    }
}
