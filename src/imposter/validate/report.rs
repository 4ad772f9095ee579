//! What validation found: findings with a severity, sorted so the output reads in file order.
use std::cmp::Ordering;
use std::fmt;

/// How bad a [`Finding`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Severity {
    /// Imposter would fail to start, or the image would miss a file.
    Error,
    /// Probably a mistake, but the image can still be built.
    Warning,
    /// Worth knowing, never a problem (not counted, not made an error by `--strict`).
    Note,
}

impl Severity {
    fn rank(&self) -> u8 {
        match self {
            Severity::Error => 0,
            Severity::Warning => 1,
            Severity::Note => 2,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// One problem found in the config directory.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// Path of the config file, relative to the config directory, `/`-separated;
    /// empty when the finding is about the directory as a whole.
    pub file: String,
    /// Where in the file, e.g. `resources[2].response.file`; empty if not applicable.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Finding {
    /// An error about `file` (empty: the directory) at `key` (empty: the whole file).
    pub fn error(file: &str, key: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            file: file.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A warning, placed like [`Finding::error`].
    pub fn warning(file: &str, key: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(file, key, message)
        }
    }

    /// A note, placed like [`Finding::error`].
    pub fn note(file: &str, key: &str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Note,
            ..Finding::error(file, key, message)
        }
    }

    /// The finding without its severity: `file: key: message`.
    pub fn detail(&self) -> String {
        let s = self.to_string();
        let prefix = format!("{}: ", self.severity);
        s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// The result of [`super::validate_dir`].
#[derive(Debug, Default)]
pub struct Report {
    /// Sorted by file, then key.
    pub findings: Vec<Finding>,
    /// The config files that were checked, relative to the config directory, sorted.
    pub config_files: Vec<String>,
    /// Referenced files outside the config directory that ship in the image, by image path.
    pub outside: Vec<crate::mutate::outside::OutsideFile>,
}

impl Report {
    /// Number of [`Severity::Error`] findings.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of [`Severity::Warning`] findings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    /// True when there are no errors (warnings are allowed).
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// `--strict`: every warning becomes an error, so CI fails on it.
    pub fn make_warnings_errors(&mut self) {
        for f in &mut self.findings {
            if f.severity == Severity::Warning {
                f.severity = Severity::Error;
            }
        }
    }

    /// Puts config files and findings in reading order.
    pub fn sort(&mut self) {
        self.config_files.sort_by(|a, b| natural_cmp(a, b));
        self.findings.sort_by(|a, b| {
            natural_cmp(&a.file, &b.file)
                .then_with(|| natural_cmp(&a.key, &b.key))
                .then_with(|| a.severity.rank().cmp(&b.severity.rank()))
                .then_with(|| a.message.cmp(&b.message))
        });
    }
}

/// Compares strings with digit runs compared as numbers, so `resources[2]` sorts
/// before `resources[10]`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let len_a = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let len_b = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let trim = |digits: &'_ [u8]| -> usize {
                    digits.iter().take_while(|&&c| c == b'0').count()
                };
                let num_a = &a[trim(&a[..len_a])..len_a];
                let num_b = &b[trim(&b[..len_b])..len_b];
                let order = num_a
                    .len()
                    .cmp(&num_b.len())
                    .then_with(|| num_a.cmp(num_b))
                    .then_with(|| len_a.cmp(&len_b));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[len_a..];
                b = &b[len_b..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a[2]", "a[10]"), Ordering::Less);
        assert_eq!(natural_cmp("a[10]", "a[2]"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a.b"), Ordering::Less);
        assert_eq!(natural_cmp("x1y", "x1y"), Ordering::Equal);
        assert_eq!(natural_cmp("b", "a[1]"), Ordering::Greater);
    }

    #[test]
    fn finding_display_formats() {
        let f = Finding::error("", "", "no config");
        assert_eq!(f.to_string(), "error: no config");
        let f = Finding::warning("a-config.yaml", "", "hmm");
        assert_eq!(f.to_string(), "warning: a-config.yaml: hmm");
        let f = Finding::error("a-config.yaml", "plugin", "missing");
        assert_eq!(f.to_string(), "error: a-config.yaml: plugin: missing");
        assert_eq!(f.detail(), "a-config.yaml: plugin: missing");
    }
}
