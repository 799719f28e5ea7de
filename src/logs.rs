//! The process's log: text or JSON lines on stderr, and list fields that stay lists.
//!
//! A field that is a list (a reload's `versions`, the warnings and rounds of a timer job, the
//! messages of a claim) is logged with [`list`]: in text logs it reads `["a","b"]`; in JSON logs it
//! is a JSON array, not a string holding one. (tracing's own `valuable` support needs an unstable
//! compiler flag; instead, in JSON mode the list's text carries a mark that the line's formatter
//! turns back into the JSON value.)

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tracing::Subscriber;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether the log is JSON (set once, by [`init`]).
static JSON: AtomicBool = AtomicBool::new(false);

/// What starts the text of a JSON value in a JSON log line, before the line's formatter unwraps it.
const MARK: &str = "\u{1}json:";
/// The mark as the JSON formatter writes it inside a string.
const MARK_ESCAPED: &str = "\\u0001json:";

/// Starts the log: `format` is `text` or `json`, `level` a tracing filter (`RUST_LOG` wins). Colour
/// only on a terminal: a log written to a file or the journal has no escape codes.
pub fn init(format: &str, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        JSON.store(true, Ordering::SeqCst);
        builder
            .json()
            .event_format(JsonValues(tracing_subscriber::fmt::format().json()))
            .init();
    } else {
        builder.init();
    }
}

/// A list field: `tracing::info!(versions = logs::list(&versions), …)`.
pub fn list<T: Serialize>(items: &[T]) -> tracing::field::DebugValue<List<'_, [T]>> {
    tracing::field::debug(List(items))
}

/// Any value as JSON in the log (an object stays an object in JSON logs): `notify = logs::json(&n)`.
pub fn json<T: Serialize + ?Sized>(value: &T) -> tracing::field::DebugValue<List<'_, T>> {
    tracing::field::debug(List(value))
}

/// A list (or any value) as a log field, written as JSON (see [`list`]).
pub struct List<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> fmt::Debug for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self.0).unwrap_or_else(|_| "null".into());
        if JSON.load(Ordering::Relaxed) {
            write!(f, "{MARK}{text}")
        } else {
            f.write_str(&text)
        }
    }
}

/// The JSON line formatter, with marked values unwrapped into JSON.
struct JsonValues<E>(E);

impl<S, N, E> FormatEvent<S, N> for JsonValues<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &tracing::Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        if line.contains(MARK_ESCAPED)
            && let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&line)
        {
            unmark(&mut value);
            return writeln!(writer, "{value}");
        }
        writer.write_str(&line)
    }
}

/// Replaces every marked string in `v` by the JSON value it holds.
fn unmark(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Some(inner) = s.strip_prefix(MARK)
                && let Ok(parsed) = serde_json::from_str::<Value>(inner)
            {
                *v = parsed;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unmark),
        Value::Object(map) => map.values_mut().for_each(unmark),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_json_line_holds_list_fields_as_arrays_in_its_fields_and_its_spans() {
        JSON.store(true, Ordering::SeqCst);
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .event_format(JsonValues(tracing_subscriber::fmt::format().json()))
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", kind = "timers", rounds = list(&[3u64, 4]));
            let _in = span.enter();
            tracing::info!(
                warnings = list(&["140100-20261202-1"]),
                notify = json(&serde_json::json!({ "people": 2 })),
                "timers fired"
            );
            tracing::info!(file = "[1].csv", "a plain string that looks like a list stays a string");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["fields"]["warnings"], serde_json::json!(["140100-20261202-1"]), "{text}");
        assert_eq!(lines[0]["fields"]["notify"], serde_json::json!({ "people": 2 }), "{text}");
        assert_eq!(lines[0]["span"]["rounds"], serde_json::json!([3, 4]), "{text}");
        assert_eq!(lines[0]["spans"][0]["kind"], "timers", "{text}");
        assert_eq!(lines[1]["fields"]["file"], "[1].csv", "{text}");
    }

    #[test]
    fn marked_strings_become_json_values_anywhere_in_a_line() {
        let mut line = serde_json::json!({
            "fields": { "versions": format!("{MARK}[\"a@1\",\"b@2\"]"), "plain": "[1]" },
            "spans": [{ "rounds": format!("{MARK}[3,4]") }],
        });
        unmark(&mut line);
        assert_eq!(line["fields"]["versions"], serde_json::json!(["a@1", "b@2"]));
        assert_eq!(line["fields"]["plain"], "[1]", "an unmarked string stays a string");
        assert_eq!(line["spans"][0]["rounds"], serde_json::json!([3, 4]));
    }
}
