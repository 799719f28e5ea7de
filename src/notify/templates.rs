//! Message templates (minijinja 2) that operators edit: `playbooks/templates/notify/`.
//!
//! In: the folder, over the copies shipped in the binary ([`SHIPPED`]): a file of a shipped name
//! wins, a folder without one still sends the shipped Chinese notices, and the folder's other
//! `*.j2` files are kinds of its own (a roster's route may name them). Each message kind `NAME` has
//! `NAME.subject.j2` (one line), `NAME.txt.j2` (plain text) and optionally `NAME.html.j2` (HTML,
//! auto-escaped: a `<script>` in a name shows as text). Out: [`Rendered`] subject, text and HTML
//! for a message's data. Everything is read and compiled at start, so a broken template stops the
//! daemon at start, not at 3 a.m.; a reload (SIGHUP, `hazeflow reload`) reads the folder again and
//! keeps the old templates when the new ones do not compile ([`crate::templates`]: the one policy
//! of every template set). `hazeflow check` also renders every kind with sample data in strict mode
//! ([`Templates::check_all`]), so that a misspelt variable is caught before a message goes out.

use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What a drill's (演练) message subject starts with.
pub const DRILL_MARK: &str = "【演练】";

/// The first line of a drill's message, text and HTML.
pub const DRILL_LINE: &str = "【演练】本通知为重污染天气应急演练，不是真实预警，请按演练方案处理。";

/// The shipped notice templates, by name: a file of the same name in the folder overrides one.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "ack_escalated.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_escalated.html.j2"
        )),
    ),
    (
        "ack_escalated.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_escalated.subject.j2"
        )),
    ),
    (
        "ack_escalated.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_escalated.txt.j2"
        )),
    ),
    (
        "ack_overdue.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_overdue.html.j2"
        )),
    ),
    (
        "ack_overdue.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_overdue.subject.j2"
        )),
    ),
    (
        "ack_overdue.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_overdue.txt.j2"
        )),
    ),
    (
        "ack_reminder.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_reminder.html.j2"
        )),
    ),
    (
        "ack_reminder.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_reminder.subject.j2"
        )),
    ),
    (
        "ack_reminder.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/ack_reminder.txt.j2"
        )),
    ),
    (
        "approval_overdue.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/approval_overdue.html.j2"
        )),
    ),
    (
        "approval_overdue.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/approval_overdue.subject.j2"
        )),
    ),
    (
        "approval_overdue.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/approval_overdue.txt.j2"
        )),
    ),
    (
        "assignment_cancelled.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_cancelled.html.j2"
        )),
    ),
    (
        "assignment_cancelled.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_cancelled.subject.j2"
        )),
    ),
    (
        "assignment_cancelled.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_cancelled.txt.j2"
        )),
    ),
    (
        "assignment_issued.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_issued.html.j2"
        )),
    ),
    (
        "assignment_issued.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_issued.subject.j2"
        )),
    ),
    (
        "assignment_issued.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_issued.txt.j2"
        )),
    ),
    (
        "assignment_lifted.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_lifted.html.j2"
        )),
    ),
    (
        "assignment_lifted.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_lifted.subject.j2"
        )),
    ),
    (
        "assignment_lifted.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_lifted.txt.j2"
        )),
    ),
    (
        "assignment_withdrawn.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_withdrawn.html.j2"
        )),
    ),
    (
        "assignment_withdrawn.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_withdrawn.subject.j2"
        )),
    ),
    (
        "assignment_withdrawn.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/assignment_withdrawn.txt.j2"
        )),
    ),
    (
        "delivery_failed.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/delivery_failed.html.j2"
        )),
    ),
    (
        "delivery_failed.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/delivery_failed.subject.j2"
        )),
    ),
    (
        "delivery_failed.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/delivery_failed.txt.j2"
        )),
    ),
    (
        "department_cancelled.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_cancelled.html.j2"
        )),
    ),
    (
        "department_cancelled.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_cancelled.subject.j2"
        )),
    ),
    (
        "department_cancelled.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_cancelled.txt.j2"
        )),
    ),
    (
        "department_issued.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_issued.html.j2"
        )),
    ),
    (
        "department_issued.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_issued.subject.j2"
        )),
    ),
    (
        "department_issued.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_issued.txt.j2"
        )),
    ),
    (
        "department_lifted.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_lifted.html.j2"
        )),
    ),
    (
        "department_lifted.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_lifted.subject.j2"
        )),
    ),
    (
        "department_lifted.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_lifted.txt.j2"
        )),
    ),
    (
        "department_reminder.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_reminder.html.j2"
        )),
    ),
    (
        "department_reminder.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_reminder.subject.j2"
        )),
    ),
    (
        "department_reminder.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_reminder.txt.j2"
        )),
    ),
    (
        "department_withdrawn.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_withdrawn.html.j2"
        )),
    ),
    (
        "department_withdrawn.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_withdrawn.subject.j2"
        )),
    ),
    (
        "department_withdrawn.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/department_withdrawn.txt.j2"
        )),
    ),
    (
        "layout.html.j2",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/notify/layout.html.j2")),
    ),
    (
        "measures_reminder.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/measures_reminder.html.j2"
        )),
    ),
    (
        "measures_reminder.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/measures_reminder.subject.j2"
        )),
    ),
    (
        "measures_reminder.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/measures_reminder.txt.j2"
        )),
    ),
    (
        "negotiated_issued.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/negotiated_issued.html.j2"
        )),
    ),
    (
        "negotiated_issued.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/negotiated_issued.subject.j2"
        )),
    ),
    (
        "negotiated_issued.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/negotiated_issued.txt.j2"
        )),
    ),
    (
        "report_daily.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/report_daily.html.j2"
        )),
    ),
    (
        "report_daily.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/report_daily.subject.j2"
        )),
    ),
    (
        "report_daily.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/report_daily.txt.j2"
        )),
    ),
    (
        "report_up.html.j2",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/notify/report_up.html.j2")),
    ),
    (
        "report_up.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/report_up.subject.j2"
        )),
    ),
    (
        "report_up.txt.j2",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/notify/report_up.txt.j2")),
    ),
    (
        "store_fault.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/store_fault.html.j2"
        )),
    ),
    (
        "store_fault.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/store_fault.subject.j2"
        )),
    ),
    (
        "store_fault.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/store_fault.txt.j2"
        )),
    ),
    (
        "warning_cancelled.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_cancelled.html.j2"
        )),
    ),
    (
        "warning_cancelled.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_cancelled.subject.j2"
        )),
    ),
    (
        "warning_cancelled.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_cancelled.txt.j2"
        )),
    ),
    (
        "warning_changed.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_changed.html.j2"
        )),
    ),
    (
        "warning_changed.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_changed.subject.j2"
        )),
    ),
    (
        "warning_changed.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_changed.txt.j2"
        )),
    ),
    (
        "warning_issued.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_issued.html.j2"
        )),
    ),
    (
        "warning_issued.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_issued.subject.j2"
        )),
    ),
    (
        "warning_issued.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_issued.txt.j2"
        )),
    ),
    (
        "warning_lifted.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_lifted.html.j2"
        )),
    ),
    (
        "warning_lifted.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_lifted.subject.j2"
        )),
    ),
    (
        "warning_lifted.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_lifted.txt.j2"
        )),
    ),
    (
        "warning_proposed.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_proposed.html.j2"
        )),
    ),
    (
        "warning_proposed.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_proposed.subject.j2"
        )),
    ),
    (
        "warning_proposed.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_proposed.txt.j2"
        )),
    ),
    (
        "warning_extended.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_extended.html.j2"
        )),
    ),
    (
        "warning_extended.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_extended.subject.j2"
        )),
    ),
    (
        "warning_extended.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_extended.txt.j2"
        )),
    ),
    (
        "warning_unscheduled.html.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_unscheduled.html.j2"
        )),
    ),
    (
        "warning_unscheduled.subject.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_unscheduled.subject.j2"
        )),
    ),
    (
        "warning_unscheduled.txt.j2",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/notify/warning_unscheduled.txt.j2"
        )),
    ),
];

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

/// A JSON value as the templates see it, read in place: a map or list is looked up when a template
/// asks for one of its members, and only what is asked for becomes a template value. Member order,
/// numbers, `none` for null and undefined for a missing key are as `minijinja::Value::from_serialize`
/// gives them.
#[derive(Debug)]
struct JsonContext {
    root: std::sync::Arc<Value>,
    /// Where this node is under the root.
    path: Vec<JsonStep>,
}

#[derive(Debug, Clone)]
enum JsonStep {
    Key(String),
    Index(usize),
}

impl JsonContext {
    /// The template value of the root.
    fn value(root: std::sync::Arc<Value>) -> minijinja::Value {
        let node = JsonContext { root, path: Vec::new() };
        match node.node() {
            Value::Object(_) | Value::Array(_) => minijinja::Value::from_object(node),
            other => minijinja::Value::from_serialize(other),
        }
    }

    fn node(&self) -> &Value {
        let mut v = &*self.root;
        for step in &self.path {
            v = match (step, v) {
                (JsonStep::Key(k), Value::Object(m)) => m.get(k).unwrap_or(&Value::Null),
                (JsonStep::Index(i), Value::Array(a)) => a.get(*i).unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        v
    }

    fn member(&self, step: JsonStep, v: &Value) -> minijinja::Value {
        match v {
            Value::Null => minijinja::Value::from(()),
            Value::Bool(b) => minijinja::Value::from(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => minijinja::Value::from(i),
                (None, Some(u), _) => minijinja::Value::from(u),
                (None, None, Some(f)) => minijinja::Value::from(f),
                _ => minijinja::Value::from(()),
            },
            Value::String(s) => minijinja::Value::from(s.as_str()),
            Value::Array(_) | Value::Object(_) => {
                let mut path = Vec::with_capacity(self.path.len() + 1);
                path.extend(self.path.iter().cloned());
                path.push(step);
                minijinja::Value::from_object(JsonContext {
                    root: self.root.clone(),
                    path,
                })
            }
        }
    }
}

impl minijinja::value::Object for JsonContext {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        match self.node() {
            Value::Array(_) => minijinja::value::ObjectRepr::Seq,
            _ => minijinja::value::ObjectRepr::Map,
        }
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match self.node() {
            Value::Object(m) => {
                let k = key.as_str()?;
                m.get(k).map(|v| self.member(JsonStep::Key(k.to_string()), v))
            }
            Value::Array(a) => {
                let i = usize::try_from(key.clone()).ok()?;
                a.get(i).map(|v| self.member(JsonStep::Index(i), v))
            }
            _ => None,
        }
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        match self.node() {
            Value::Array(a) => minijinja::value::Enumerator::Seq(a.len()),
            Value::Object(m) => minijinja::value::Enumerator::Values(m.keys().map(|k| minijinja::Value::from(k.as_str())).collect()),
            _ => minijinja::value::Enumerator::Empty,
        }
    }
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    digest: String,
}

/// `file:line:column: message` of a template error; `source` is the text of the template it names,
/// when known (for the column and the failing expression).
fn location(dir: &Path, e: &minijinja::Error, source: Option<&str>) -> String {
    let file = e
        .name()
        .map_or_else(|| dir.display().to_string(), |n| dir.join(n).display().to_string());
    let mut line = e.line().unwrap_or(0);
    let mut column = 1;
    let mut what = String::new();
    if let (Some(src), Some(range)) = (source, e.range())
        && let Some(before) = src.get(..range.start)
    {
        line = before.matches('\n').count() + 1;
        column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        if let Some(expr) = src.get(range).filter(|x| !x.trim().is_empty() && !x.contains('\n')) {
            what = format!(" (`{}`)", expr.trim());
        }
    }
    let message = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
    format!("{file}:{line}:{column}: {message}{what}")
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
    /// Reads and compiles the notices: each shipped template ([`SHIPPED`]) or the folder's file of
    /// the same name, and every other `*.j2` in the folder (kinds of its own); a folder that does not
    /// exist gives the shipped set. Loaded like every template set ([`crate::templates`]): at start
    /// and on a reload, whole or not at all. Errors are `file:line:column: message`.
    pub fn load(dir: &Path) -> Result<Templates, Vec<String>> {
        let files = crate::templates::read_shipped_and_own(dir, SHIPPED, ".j2")
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())?;
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
        let mut errors = Vec::new();
        let mut digest = Sha256::new();
        for (name, src) in files {
            digest.update(format!("{name}\0{}\0{src}\0", src.len()).as_bytes());
            if let Err(e) = env.add_template_owned(name, src.clone()) {
                errors.push(location(dir, &e, Some(&src)));
            }
        }
        if errors.is_empty() {
            Ok(Templates {
                env,
                digest: hex::encode(digest.finalize()),
            })
        } else {
            Err(errors)
        }
    }

    /// SHA-256 (hex) over every file's name and text: tells changed templates from the same ones.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether the kind has its subject and text templates.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(&format!("{name}.subject.j2")).is_ok() && self.env.get_template(&format!("{name}.txt.j2")).is_ok()
    }

    /// Renders a kind with its data. A drill's message (`"exercise": true` in its data, 演练) is
    /// marked here, whatever the template (an operator's own kind included): the subject starts with
    /// 【演练】 and the text and HTML open with [`DRILL_LINE`]. Templates may also use `exercise`.
    pub fn render(&self, name: &str, data: &Value) -> Result<Rendered, String> {
        self.render_shared(name, &std::sync::Arc::new(data.clone()))
    }

    /// [`Templates::render`] of data the caller shares: the templates read it where it is
    /// ([`JsonContext`]), nothing of it converted but what they print. The delivery worker renders
    /// every message this way (converting a notice's data whole into template values took ~14 % of
    /// its CPU: `perf`, `mail_bench`).
    pub fn render_shared(&self, name: &str, data: &std::sync::Arc<Value>) -> Result<Rendered, String> {
        let get = |suffix: &str| self.env.get_template(&format!("{name}.{suffix}.j2"));
        // One context for the two or three parts.
        let ctx = JsonContext::value(data.clone());
        let render = |t: minijinja::Template<'_, '_>| t.render(ctx.clone()).map_err(|e| format!("template {}: {e:#}", t.name()));
        let subject = get("subject").map_err(|_| format!("no template {name}.subject.j2"))?;
        let text = get("txt").map_err(|_| format!("no template {name}.txt.j2"))?;
        let mut subject = one_line(&render(subject)?);
        let mut text = render(text)?;
        let mut html = match get("html") {
            Ok(t) => Some(render(t)?),
            Err(_) => None,
        };
        if data.get("exercise") == Some(&Value::Bool(true)) {
            if !subject.starts_with(DRILL_MARK) {
                subject = format!("{DRILL_MARK}{subject}");
            }
            text = format!("{DRILL_LINE}\n\n{text}");
            html = html.map(|h| format!("<p><strong>{DRILL_LINE}</strong></p>\n{h}"));
        }
        Ok(Rendered { subject, text, html })
    }

    /// Every message kind in the folder: each `NAME` with a `NAME.subject.j2` or a `NAME.txt.j2`.
    pub fn kinds(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .env
            .templates()
            .filter_map(|(n, _)| n.strip_suffix(".subject.j2").or_else(|| n.strip_suffix(".txt.j2")))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Renders a kind with sample data in strict mode (an unknown variable is an error), as
    /// `hazeflow check` does; the error is `file:line:column: message` within `dir`.
    pub fn check(&self, dir: &Path, name: &str) -> Result<(), String> {
        let mut env = self.env.clone();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for part in ["subject", "txt", "html"] {
            let file = format!("{name}.{part}.j2");
            let Ok(t) = env.get_template(&file) else {
                if part == "html" {
                    continue;
                }
                return Err(format!(
                    "{}: missing ({name}.subject.j2 and {name}.txt.j2 make a message; {name}.html.j2 is optional)",
                    dir.join(&file).display()
                ));
            };
            for data in sample_variants(name) {
                if let Err(e) = t.render(&data) {
                    let source = e.name().and_then(|n| env.get_template(n).ok()).map(|t| t.source().to_string());
                    return Err(location(dir, &e, source.as_deref()));
                }
            }
        }
        Ok(())
    }

    /// [`Templates::check`] for every kind in the folder: every problem, one per kind at most.
    pub fn check_all(&self, dir: &Path) -> Vec<String> {
        self.kinds().iter().filter_map(|k| self.check(dir, k).err()).collect()
    }
}

/// The sample data of a kind, and the same with each flag flipped (`change`, `overdue`, a negotiated
/// reduction, more missing parties than listed), so that both sides of their `if`s are rendered.
fn sample_variants(name: &str) -> [Value; 2] {
    let base = sample_data(name);
    let mut flipped = base.clone();
    flipped["change"] = json!(true);
    flipped["exercise"] = json!(true);
    flipped["overdue"] = json!(true);
    flipped["stage"] = json!("in_place");
    flipped["more"] = json!(3);
    flipped["inspections_opened"] = json!(0);
    flipped["negotiated"] = negotiated();
    flipped["measures"] = json!([]);
    if flipped.get("report").is_some() {
        flipped["report"]["problems"] = json!([]);
    }
    flipped["missing"][0]["uscc"] = Value::Null;
    flipped["missing"][0]["contact_name"] = Value::Null;
    // A digest of two regions, one of each stage.
    let section = base["sections"][0].clone();
    let mut second = section.clone();
    second["stage"] = json!("in_place");
    flipped["sections"] = json!([section, second]);
    flipped["total"] = json!(4);
    [base, flipped]
}

/// A negotiated reduction (协商减排), as its notice and reminders carry it.
fn negotiated() -> Value {
    json!({
        "commitment": "2#焦炉出焦时间延长至72小时", "reductions": { "so2": 0.3, "nox": 0.5, "pm": 0.0, "vocs": 0.0 },
        "agreed_by": "值班员", "note": "电话协商",
    })
}

/// Data like the notifiers give their kinds, for checks and previews: every value a warning notice
/// (the lifecycle's context), a delivery failure, an enterprise's task (assignment, reminder,
/// negotiated reduction) or an overdue report carries, so that any kind renders with it and a
/// misspelt name does not.
pub fn sample_data(name: &str) -> Value {
    let mut v = json!({
        "event": name.trim_start_matches("warning_"),
        "stage": "received",
        "exercise": false,
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
        "decided_at": "2026年12月1日 16:05",
        "parties_told_at": "2026年12月4日 00:00",
        "ends_at": "2026年12月5日 00:00",
        "timeline": "12月2日0时起橙色预警；预计12月5日0时解除",
        "rule": "日AQI>200持续48小时或日AQI>150持续72小时",
        "reason": "会商预测达到橙色预警条件：12月2日0时起橙色预警；预计12月5日0时解除",
        "actor": "李副市长",
        "signer": "李副市长",
        "change": false,
        "playbook": "taiyuan@2026.1",
        "playbook_name": "太原市重污染天气应急预警分级",
        "issuer": "太原市重污染天气应急指挥部办公室",
        "dashboard_url": "http://127.0.0.1:8080/",
        "warning_url": "http://127.0.0.1:8080/warnings/140100-20261202-1",
        "recipient": { "name": "王芳", "role": "duty_officer", "role_title": "值班员", "region": "140100" },
        "recipients": [{ "name": "王芳", "role": "duty_officer", "email": "wang.fang@ty.example.cn", "phone": "0351-0000000" }],
    });
    // An enterprise's task (assignment_issued, ack_reminder, negotiated_issued) and an overdue report
    // (ack_overdue, ack_escalated).
    let more = json!({
        "enterprise": { "name": "太原市晋阳水泥有限公司", "uscc": "91140105MA0K3T7W5X" },
        "measures": [
            { "item": "1#熟料线：限产20%", "subject": "1#熟料线", "line_name": "1#熟料线", "process": null, "text": "限产20%", "note": "" },
            { "item": "全厂：停止公路运输（国五及以下）", "subject": "全厂", "line_name": null, "process": null, "text": "停止公路运输", "note": "国五及以下" },
        ],
        "negotiated": null,
        "department": { "id": "housing", "name": "太原市住房和城乡建设局" },
        "duty": "施工工地停止土石方作业、建筑拆除、喷涂粉刷、护坡喷浆、混凝土搅拌等作业，增加洒水降尘频次。",
        "applies_from": "2026年12月3日 08:05",
        "deadline": "2026年12月2日 12:05",
        "in_place_deadline": "2026年12月3日 08:05",
        "hotline": "12369",
        "ack_url": "http://127.0.0.1:8080/ack/0123456789abcdef",
        "overdue": false,
        "tier": "county",
        "round": 0,
        "tier_region": "140105",
        "tier_region_name": "小店区",
        "count": 2,
        "enterprises": 1,
        "departments": 1,
        "more": 0,
        "inspections_opened": 1,
        "acks_url": "http://127.0.0.1:8080/api/v1/warnings/140100-20261202-1/acks",
        "missing": [
            { "kind": "enterprise", "kind_name": "企业", "name": "太原市晋阳水泥有限公司", "uscc": "91140105MA0K3T7W5X",
              "region_name": "小店区", "contact_name": "王建国", "contact_phone": "13800000001", "deadline": "2026年12月2日 12:05", "assignment": "k1" },
            { "kind": "department", "kind_name": "部门", "name": "小店区住房和城乡建设局", "uscc": null,
              "region_name": "小店区", "contact_name": null, "contact_phone": null, "deadline": "2026年12月2日 12:05", "assignment": "k2" },
        ],
    });
    if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
        v.extend(more);
    }
    // An overdue digest: one section per region and timer (ack_overdue, ack_escalated).
    v["sections"] = json!([v.clone()]);
    v["total"] = v["count"].clone();
    if name == "negotiated_issued" {
        v["negotiated"] = negotiated();
    }
    if name == "approval_overdue" {
        v["form"] = json!({ "id": "140100-20261202-1.1", "kind": "issue", "kind_name": "发布" });
        v["stage"] = json!("relay");
        v["step"] = json!("escalate-1");
        v["approval_url"] = json!("http://127.0.0.1:8080/approvals/140100-20261202-1.1");
    }
    if name == "report_daily" {
        v["title"] = json!("太原市重污染天气橙色预警应急响应日报（2026年12月3日）");
        v["heading"] = v["title"].clone();
        v["lead"] =
            json!("太原市橙色预警（Ⅱ级应急响应）自2026年12月3日 00:00起执行。截至2026年12月3日 12:00，共对3家企业下达应急减排措施。");
        v["columns"] = json!(["区县", "下达措施企业", "已确认收到"]);
        v["rows"] = json!([["小店区", "2", "1"], ["合计", "2", "1"]]);
        v["report"] = json!({ "problems": [{ "county_name": "小店区", "enterprise": "太原市晋阳水泥有限公司", "note": "1#熟料线未限产", "inspected_at": "2026年12月3日 10:00" }] });
        v["page_url"] = json!("http://127.0.0.1:8080/reports/140100-20261202-1.daily.20261203");
        v["docx_url"] = json!("http://127.0.0.1:8080/api/v1/reports/140100-20261202-1.daily.20261203/docx");
    }
    if name == "report_up" {
        v["title"] = json!("太原市重污染天气橙色预警发布情况报告");
        v["heading"] = v["title"].clone();
        v["lead"] =
            json!("太原市于2026年12月2日 08:05发布重污染天气橙色预警（Ⅱ级应急响应），预警时段为2026年12月3日 00:00至2026年12月5日 00:00。");
        v["deadline"] = json!("2026年12月2日 10:05");
        v["columns"] = json!(["区县", "下达措施企业", "已确认收到"]);
        v["rows"] = json!([["小店区", "2", "1"], ["合计", "2", "1"]]);
        v["sections"] = json!([{ "heading": "一、预警过程", "paragraphs": ["说明"], "columns": ["预警级别"], "rows": [["橙色预警"]] }]);
        v["report"] = json!({ "kind": "issue" });
        v["page_url"] = json!("http://127.0.0.1:8080/reports/140100-20261202-1.event.01");
        v["docx_url"] = json!("http://127.0.0.1:8080/api/v1/reports/140100-20261202-1.event.01/docx");
        v["docx_attached"] = json!(false);
    }
    if name == "measures_reminder" {
        v["at"] = json!("2026年12月3日 04:00");
        v["hours"] = json!(4);
        v["expected_end"] = json!("2026年12月5日 00:00");
        v["received"] = json!(true);
    }
    if name == "store_fault" {
        v["outage"] = json!({
            "reason": "I/O error: No space left on device (os error 28)", "cause": "磁盘空间已满", "since": "2026年12月1日 16:05",
            "until": "2026年12月1日 16:12", "minutes": 7, "refused": 3, "seq": 42,
        });
    }
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

    #[test]
    fn a_drills_message_is_marked_in_its_subject_text_and_html_whatever_the_template() {
        let dir = tempfile::TempDir::new().unwrap();
        let t = Templates::load(dir.path()).unwrap();
        let mut data = sample_data("assignment_issued");
        let real = t.render("assignment_issued", &data).unwrap();
        assert!(!real.subject.contains("演练") && !real.text.contains("演练"), "{real:?}");
        data["exercise"] = json!(true);
        let drill = t.render("assignment_issued", &data).unwrap();
        assert_eq!(drill.subject, format!("{DRILL_MARK}{}", real.subject));
        assert_eq!(drill.text, format!("{DRILL_LINE}\n\n{}", real.text));
        assert!(drill.html.unwrap().contains(DRILL_LINE));
    }

    fn shipped() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/templates/notify"))
            .unwrap_or_else(|e| panic!("{}", e.join("\n")))
    }

    #[test]
    fn the_data_read_in_place_renders_every_shipped_kind_as_the_converted_data_does() {
        // Every kind and both sample variants: subject, text and HTML byte for byte as with the
        // data converted whole (`from_serialize`), in strict mode too (an unknown name is an error
        // either way).
        let t = shipped();
        let mut env = t.env.clone();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut compared = 0;
        for name in t.kinds() {
            for data in sample_variants(&name) {
                let shared = std::sync::Arc::new(data.clone());
                for part in ["subject", "txt", "html"] {
                    let Ok(tmpl) = env.get_template(&format!("{name}.{part}.j2")) else {
                        continue;
                    };
                    let converted = tmpl.render(minijinja::Value::from_serialize(&data));
                    let in_place = tmpl.render(JsonContext::value(shared.clone()));
                    match (converted, in_place) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}.{part}"),
                        (Err(_), Err(_)) => {}
                        (a, b) => panic!("{name}.{part}: {a:?} against {b:?}"),
                    }
                    compared += 1;
                }
            }
        }
        assert!(compared > 150, "{compared} renders compared");
        // Lists, numbers, null, a missing key, a loop over a map's keys, length and indexing.
        let data = json!({ "n": 3, "f": 1.5, "big": u64::MAX, "z": null, "list": [{ "a": "x" }, { "a": "y" }], "m": { "b": 2, "a": 1 } });
        let src = "{{ n }} {{ f }} {{ big }} {{ z }} {{ list|length }} {% for i in list %}{{ i.a }}{{ loop.index }}{% endfor %} {% for k in m %}{{ k }}={{ m[k] }};{% endfor %} {{ list[1].a }} {{ missing is defined }} {{ m|length }} {% if list %}full{% endif %}";
        let mut env = Environment::new();
        env.add_template("t", src).unwrap();
        let tmpl = env.get_template("t").unwrap();
        assert_eq!(
            tmpl.render(JsonContext::value(std::sync::Arc::new(data.clone()))).unwrap(),
            tmpl.render(minijinja::Value::from_serialize(&data)).unwrap()
        );
    }

    #[test]
    fn every_shipped_template_renders_its_sample_in_strict_mode() {
        let t = shipped();
        let dir = Path::new("playbooks/templates/notify");
        let kinds = t.kinds();
        for name in [
            "warning_proposed",
            "warning_issued",
            "warning_changed",
            "warning_lifted",
            "warning_cancelled",
            "warning_unscheduled",
            "warning_extended",
            "delivery_failed",
            "store_fault",
            "assignment_issued",
            "ack_reminder",
            "ack_overdue",
            "ack_escalated",
            "negotiated_issued",
            "report_daily",
            "report_up",
            "measures_reminder",
        ] {
            assert!(t.has(name) && kinds.iter().any(|k| k == name), "{name}");
        }
        assert!(!kinds.iter().any(|k| k == "layout"), "{kinds:?}");
        assert_eq!(t.check_all(dir), Vec::<String>::new());
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

    #[test]
    fn a_misspelt_variable_is_named_with_its_file_line_and_column_and_a_lone_part_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("x.subject.j2"), "【{{ level_name }}】{{ region_name }}").unwrap();
        std::fs::write(p.join("x.txt.j2"), "{{ recipient.name }}同志：\n\n  预警编号：{{ warning_idd }}\n").unwrap();
        std::fs::write(p.join("y.txt.j2"), "{{ recipient.name }}\n").unwrap();
        let t = Templates::load(p).unwrap();
        // The folder's own kinds beside the shipped ones.
        let kinds = t.kinds();
        assert!(kinds.iter().any(|k| k == "x") && kinds.iter().any(|k| k == "y"), "{kinds:?}");
        assert_eq!(kinds.len(), shipped().kinds().len() + 2, "{kinds:?}");
        let errors = t.check_all(p);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        let x = format!("{}:3:11: ", p.join("x.txt.j2").display());
        assert!(errors[0].starts_with(&x) && errors[0].contains("`warning_idd`"), "{errors:#?}");
        assert!(
            errors[1].starts_with(&format!("{}: missing", p.join("y.subject.j2").display())),
            "{errors:#?}"
        );
    }

    #[test]
    fn the_shipped_table_holds_every_file_of_the_shipped_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/templates/notify");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        on_disk.sort();
        let mut table: Vec<String> = SHIPPED.iter().map(|(n, _)| (*n).to_string()).collect();
        table.sort();
        assert_eq!(table, on_disk);
        for (name, text) in SHIPPED {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *text, "{name}");
        }
    }

    #[test]
    fn without_a_folder_or_with_an_empty_one_the_shipped_notices_are_sent() {
        let empty = tempfile::tempdir().unwrap();
        let missing = empty.path().join("no-such-folder");
        let want = shipped();
        for dir in [empty.path(), missing.as_path()] {
            let t = Templates::load(dir).unwrap_or_else(|e| panic!("{}", e.join("\n")));
            assert_eq!(t.kinds(), want.kinds());
            assert_eq!(t.digest(), want.digest(), "the same texts as the shipped folder's");
            let r = t.render("warning_issued", &sample_data("warning_issued")).unwrap();
            assert_eq!(r.subject, "【橙色预警】太原市重污染天气橙色预警（Ⅱ级）启动通知");
            assert_eq!(t.check_all(dir), Vec::<String>::new());
        }
    }

    #[test]
    fn a_file_of_a_shipped_name_overrides_it_and_a_broken_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("warning_issued.subject.j2"), "【{{ level_name }}】{{ region_name }}启动").unwrap();
        let t = Templates::load(p).unwrap();
        let r = t.render("warning_issued", &sample_data("warning_issued")).unwrap();
        assert_eq!(r.subject, "【橙色预警】太原市启动");
        assert_ne!(t.digest(), shipped().digest());

        std::fs::write(p.join("warning_lifted.txt.j2"), "{{ at }解除\n").unwrap();
        let e = Templates::load(p).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        let file = p.join("warning_lifted.txt.j2").display().to_string();
        assert!(e[0].starts_with(&format!("{file}:1:")), "{e:?}");
    }
}
