//! One problem in an input — a playbook, a forecast, the emergency reduction list, its measure
//! defaults — where it is and what is wrong: the one error type every parser of a file returns.
//!
//! It displays as `file:line:column: message` (line and column 1-based; `0:0` when the problem
//! concerns the whole file, as the checkers have always printed it), `file: path: message` where the
//! place is a JSON path or a field, or `file: message` for the file as a whole without a position.
//! The message is English (logs, the CLI); [`Diagnostic::zh`] gives the line duty staff read.

/// Where in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// 1-based line and column (`0, 0`: the whole file).
    At {
        /// Line.
        line: u64,
        /// Column (characters).
        column: u64,
    },
    /// A JSON path (`values[3].aqi`) or a field.
    Path(String),
    /// The file as a whole, printed without a position.
    File,
}

/// One problem in an input file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Diagnostic {
    /// The file as named to the parser.
    pub file: String,
    /// Where.
    pub place: Place,
    /// What is wrong, in English.
    pub message: String,
}

impl Diagnostic {
    /// A problem at a line and column (`0, 0`: the whole file).
    pub fn at(file: impl Into<String>, line: u64, column: u64, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            place: Place::At { line, column },
            message: message.into(),
        }
    }

    /// A problem at a JSON path or field.
    pub fn path(file: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            place: Place::Path(path.into()),
            message: message.into(),
        }
    }

    /// A problem with the file as a whole.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            place: Place::File,
            message: message.into(),
        }
    }

    /// The 1-based line (0 when not known).
    pub fn line(&self) -> u64 {
        match self.place {
            Place::At { line, .. } => line,
            _ => 0,
        }
    }

    /// The 1-based column (0 when not known).
    pub fn column(&self) -> u64 {
        match self.place {
            Place::At { column, .. } => column,
            _ => 0,
        }
    }

    fn place_text(&self) -> String {
        match &self.place {
            Place::At { line, column } => format!("{}:{line}:{column}:", self.file),
            Place::Path(p) => format!("{}: {p}:", self.file),
            Place::File => format!("{}:", self.file),
        }
    }

    fn render(&self) -> String {
        format!("{} {}", self.place_text(), self.message)
    }

    /// The same line with its message in Chinese, for duty staff (the dashboard's 检查 page); a
    /// message without a translation stays as it is.
    pub fn zh(&self) -> String {
        format!("{} {}", self.place_text(), crate::domain::playbook::zh::message(&self.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_place_prints_the_way_the_checkers_always_printed_it() {
        assert_eq!(
            Diagnostic::at("a.yaml", 3, 7, "unknown field `x`").to_string(),
            "a.yaml:3:7: unknown field `x`"
        );
        assert_eq!(Diagnostic::at("a.yaml", 0, 0, "cannot read").to_string(), "a.yaml:0:0: cannot read");
        assert_eq!(
            Diagnostic::path("f.json", "values[3].aqi", "not a number").to_string(),
            "f.json: values[3].aqi: not a number"
        );
        assert_eq!(Diagnostic::file("f.csv", "empty file").to_string(), "f.csv: empty file");
        let d = Diagnostic::at("a.yaml", 3, 7, "x");
        assert_eq!((d.line(), d.column()), (3, 7));
        assert_eq!(Diagnostic::file("f", "x").line(), 0);
    }
}
