//! What the JVM engine's S3 loader does with a prefix, checked before a publish to `s3://` for
//! that engine (imposter-jvm-engine@v4.9.3:core/config-resolver-s3/src/main/java/io/gatehill/
//! imposter/config/S3FileDownloader.kt):
//! - it strips a trailing `/` and lists by the raw string prefix (lines 113-119, 134-136), so
//!   `s3://b/team/pet` also loads every key under `team/pet-v2/` and `team/pet.yaml`;
//! - it makes one ListObjectsV2 call without paging (lines 113-118): 1,000 objects at most;
//! - it reads every object through a UTF-8 reader as lines joined by `\n` (lines 89-93, 165-166):
//!   bytes that are not UTF-8 become U+FFFD, `\r\n` and `\r` become `\n`, one final line break is
//!   dropped.
//!
//! The first three lose or add config silently, so `publish` refuses them (`--force` publishes
//! anyway); the line-break changes rarely matter to config, so they are warnings.
use crate::sink::publish::plan::LocalFile;
use crate::sink::publish::store::Target;
use crate::sink::publish::{read_regular, PublishError, ReaderCheck};

/// One ListObjectsV2 page: all the JVM loader reads.
pub(crate) const MAX_OBJECTS: usize = 1000;

const CRLF: &str = "its CR/CRLF line endings become LF";
const FINAL_BREAK: &str = "its final line break is dropped";

/// Up to five of `v`, then how many more.
fn names(v: &[String]) -> String {
    let shown: Vec<&str> = v.iter().take(5).map(String::as_str).collect();
    match v.len().saturating_sub(5) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// What the JVM loader would do to one file's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TextChange {
    /// Loaded as published.
    Same,
    /// Not UTF-8: the loader replaces bytes, so the file is corrupted.
    NotUtf8,
    /// UTF-8, but the loader changes its line breaks (what, in words).
    LineBreaks(&'static str),
}

/// The text the loader writes for `s`: `BufferedReader.lines()` (a line ends at `\n`, `\r` or
/// `\r\n`; a final terminator makes no empty line) joined by `\n`.
fn loaded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut lines = Vec::new();
    let mut start = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                lines.push(&s[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&s[start..i]);
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < b.len() {
        lines.push(&s[start..]);
    }
    for (n, l) in lines.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(l);
    }
    out
}

/// What the loader does to `bytes`.
pub(crate) fn text_change(bytes: &[u8]) -> TextChange {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return TextChange::NotUtf8;
    };
    if loaded(s) == s {
        TextChange::Same
    } else if s.contains('\r') {
        TextChange::LineBreaks(CRLF)
    } else {
        TextChange::LineBreaks(FINAL_BREAK)
    }
}

/// The one-line refusal for the keys beside the prefix, the object count and what
/// [`text_change`] found, or
/// `None` when the loader would load the publish as it is.
pub(crate) fn refusal(
    t: &Target,
    siblings: &[String],
    objects: usize,
    not_utf8: &[String],
) -> Option<String> {
    let list = names;
    let mut why = Vec::new();
    if !siblings.is_empty() {
        why.push(format!(
            "it lists by string prefix, so it would also load {} — use a prefix no other key starts with",
            list(siblings)
        ));
    }
    if objects > MAX_OBJECTS {
        why.push(format!(
            "it reads one listing of {MAX_OBJECTS} objects, and the prefix would hold {objects} — split the config or --exclude files"
        ));
    }
    if !not_utf8.is_empty() {
        why.push(format!(
            "it reads every file as UTF-8 text, and {} is not — it would be corrupted; --exclude it",
            list(not_utf8)
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "{t}: the JVM engine's S3 loader would not load this publish as it is: {} (--force publishes anyway)",
            why.join("; ")
        )
    })
}

/// The JVM engine's S3 loader, as the reader of an `s3://` publish: refuses (unless `force`)
/// or warns about what it would do with the publish.
#[derive(Debug, Clone, Copy)]
pub(crate) struct S3Loader {
    /// Publish anyway what it would not load as published (`--force`): warned about instead.
    pub force: bool,
}

impl ReaderCheck for S3Loader {
    fn check(
        &self,
        t: &Target,
        files: &[LocalFile],
        siblings: &[String],
        objects: usize,
    ) -> Result<(), PublishError> {
        let changes = files
            .iter()
            .map(|f| Ok((text_change(&read_regular(&f.source)?), f.rel.clone())))
            .collect::<Result<Vec<_>, PublishError>>()?;
        let (mut not_utf8, mut crlf, mut final_break) = (Vec::new(), Vec::new(), Vec::new());
        for (change, rel) in changes {
            match change {
                TextChange::Same => {}
                TextChange::NotUtf8 => not_utf8.push(rel),
                TextChange::LineBreaks(CRLF) => crlf.push(rel),
                TextChange::LineBreaks(_) => final_break.push(rel),
            }
        }
        // Nearly every text file ends in a line break, and losing it is harmless to YAML and JSON:
        // one line for all of them, CR line endings (which can matter to a response body) per file.
        for rel in &crlf {
            tracing::warn!(
                "{rel}: the JVM engine's S3 loader reads files as lines joined by LF, so {CRLF}"
            );
        }
        if !final_break.is_empty() {
            tracing::warn!(
                "the JVM engine's S3 loader drops the final line break of {} {}: {}",
                final_break.len(),
                if final_break.len() == 1 {
                    "file"
                } else {
                    "files"
                },
                names(&final_break)
            );
        }
        match refusal(t, siblings, objects, &not_utf8) {
            Some(r) if self.force => {
                tracing::warn!("{r}");
                Ok(())
            }
            Some(r) => Err(PublishError::Refused(r)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_keeps_utf8_text_without_a_final_newline_as_is() {
        assert_eq!(text_change(b""), TextChange::Same);
        assert_eq!(
            text_change(b"plugin: rest\nresources: []"),
            TextChange::Same
        );
        assert_eq!(text_change("ünïcode".as_bytes()), TextChange::Same);
    }

    #[test]
    fn the_loader_changes_line_breaks_and_corrupts_binary() {
        assert_eq!(loaded("a\r\nb\rc\n"), "a\nb\nc");
        assert_eq!(loaded("a\n\n"), "a\n");
        assert!(matches!(text_change(b"a: 1\n"), TextChange::LineBreaks(w) if w.contains("final")));
        assert!(matches!(text_change(b"a\r\nb"), TextChange::LineBreaks(w) if w.contains("CRLF")));
        assert_eq!(text_change(&[0x89, b'P', b'N', b'G']), TextChange::NotUtf8);
    }

    #[test]
    fn the_refusal_names_every_reason_on_one_line() {
        let t = Target::parse("s3://b/team/pet").unwrap();
        assert_eq!(refusal(&t, &[], MAX_OBJECTS, &[]), None);
        let r = refusal(
            &t,
            &["team/pet-v2/".into()],
            MAX_OBJECTS + 1,
            &["logo.png".into()],
        )
        .unwrap();
        assert!(!r.contains('\n'), "{r}");
        for part in ["team/pet-v2/", "1001", "logo.png", "--force"] {
            assert!(r.contains(part), "{part}: {r}");
        }
    }
}
