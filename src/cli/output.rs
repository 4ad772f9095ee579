//! What a command prints: the human summary line, `--json` objects (as `Serialize` structs, never
//! hand-built strings), validation findings, the inspect listing, and the `--digest-file`.
use crate::build::Outcome;
use crate::cli::groups::OutputArgs;
use crate::cli::progress::{self, human_bytes};
use crate::error::Error;
use crate::imposter::bundle::BundleSummary;
use crate::imposter::validate::{self, Report};
use crate::inspect::Inspection;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a build or push wrote files, for the summary line.
pub(crate) struct Written<'a> {
    pub(crate) output: Option<&'a Path>,
    pub(crate) layout: Option<&'a Path>,
}

/// Prints a build or push result: references (or the digest) on stdout, or one JSON object with
/// `--json`; the digest file; then the summary line on stderr unless `--quiet`.
pub(crate) fn report(
    o: &Outcome,
    out: &OutputArgs,
    started: Instant,
    written: Written<'_>,
) -> anyhow::Result<()> {
    if let Some(f) = &out.digest_file {
        crate::atomic::write(
            f,
            format!("{}\n", o.digest).as_bytes(),
            crate::atomic::READABLE,
        )?;
    }
    if let Some(f) = &out.image_refs {
        let lines: String = o.references.iter().map(|r| format!("{r}\n")).collect();
        crate::atomic::write(f, lines.as_bytes(), crate::atomic::READABLE)?;
    }
    if out.json {
        println!("{}", serde_json::to_string(o)?);
    } else {
        // Plain output keeps its contract: pushed references, else the digest (--json and
        // --image-refs carry every recorded name).
        for r in &o.pushed {
            println!("{r}");
        }
        if o.pushed.is_empty() {
            println!("{}", o.digest);
        }
    }
    progress::finish();
    if !out.quiet {
        eprintln!(
            "{}",
            summary(o, written.output, written.layout, started.elapsed())
        );
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The last line a person reads: `pushed 2 platforms, 1 new layer (12 KB), 3 blobs uploaded
/// (14 KB), 14 blobs mounted, 0.4 s`. Zero counts are left out.
pub(crate) fn summary(
    o: &Outcome,
    output: Option<&Path>,
    layout: Option<&Path>,
    elapsed: Duration,
) -> String {
    let platforms = plural(o.platforms.len(), "platform", "platforms");
    let mut files: Vec<String> = output
        .map(|p| p.display().to_string())
        .into_iter()
        .collect();
    files.extend(layout.map(|p| format!("oci:{}", p.display())));
    let mut parts = vec![match (&o.push, files.is_empty()) {
        (Some(_), _) => format!("pushed {platforms}"),
        (None, false) => format!("wrote {platforms} to {}", files.join(" and ")),
        (None, true) => format!("built {platforms} (not written anywhere)"),
    }];
    if let Some(l) = &o.layer {
        parts.push(format!(
            "1 new layer ({}, {})",
            human_bytes(l.size),
            plural(l.files, "file", "files")
        ));
    }
    if let Some(s) = &o.push {
        if s.uploaded > 0 {
            parts.push(format!(
                "{} uploaded ({})",
                plural(s.uploaded, "blob", "blobs"),
                human_bytes(s.uploaded_bytes)
            ));
        }
        if s.mounted > 0 {
            parts.push(format!("{} mounted", plural(s.mounted, "blob", "blobs")));
        }
        if s.existing > 0 {
            parts.push(format!(
                "{} already there",
                plural(s.existing, "blob", "blobs")
            ));
        }
        if !files.is_empty() {
            parts.push(format!("wrote {}", files.join(" and ")));
        }
    }
    if !o.outside.is_empty() {
        let paths: Vec<&str> = o.outside.iter().map(|f| f.path.as_str()).collect();
        parts.push(format!(
            "{} from outside the config directory ({})",
            plural(o.outside.len(), "file", "files"),
            paths.join(", ")
        ));
    }
    parts.extend(attached_summary(&o.attached));
    parts.push(format!("{:.1} s", elapsed.as_secs_f64()));
    parts.join(", ")
}

/// `attached sbom and provenance (2 referrers)`: one line of kinds, not of repositories
/// (`--json` lists each attachment); `None` when nothing was attached.
pub(crate) fn attached_summary(attached: &[crate::attest::Attached]) -> Option<String> {
    if attached.is_empty() {
        return None;
    }
    let mut kinds: Vec<&str> = Vec::new();
    for a in attached {
        if !kinds.contains(&a.kind.as_str()) {
            kinds.push(&a.kind);
        }
    }
    let mut digests: Vec<&str> = attached.iter().map(|a| a.digest.as_str()).collect();
    digests.sort_unstable();
    digests.dedup();
    Some(format!(
        "attached {} ({})",
        kinds.join(" and "),
        plural(digests.len(), "referrer", "referrers")
    ))
}

/// Prints warnings and notes (unless `quiet`), and errors when there are several; a lone error
/// is told by the final `error:` line instead, so a simple mistake reads as one line.
pub(crate) fn print_findings(report: &Report, quiet: bool) {
    let lone_error = report.errors() == 1;
    for f in &report.findings {
        let shown = match f.severity {
            validate::Severity::Error => !lone_error,
            validate::Severity::Warning | validate::Severity::Note => !quiet,
        };
        if shown {
            eprintln!("{f}");
        }
    }
}

pub(crate) fn validation_error(report: &Report) -> Error {
    let first = report
        .findings
        .iter()
        .find(|f| f.severity == validate::Severity::Error)
        .map(|f| f.detail())
        .unwrap_or_default();
    Error::Validation {
        errors: report.errors(),
        first,
    }
}

/// One finding in `validate --json`.
#[derive(Serialize)]
struct FindingJson<'a> {
    severity: &'static str,
    file: &'a str,
    key: &'a str,
    message: &'a str,
}

/// `validate --json`: `{"ok", "config_files", "findings": [{severity, file, key, message}]}`.
#[derive(Serialize)]
struct ValidationJson<'a> {
    ok: bool,
    config_files: &'a [String],
    findings: Vec<FindingJson<'a>>,
    /// Referenced files outside the config directory that would ship in the image.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    outside: &'a [crate::mutate::outside::OutsideFile],
}

/// Prints a validation report as `validate` does: JSON on stdout, or findings and a count line
/// on stderr.
pub(crate) fn print_validation(
    dir: &Path,
    report: &Report,
    json: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    if json {
        let findings = report
            .findings
            .iter()
            .map(|f| FindingJson {
                severity: match f.severity {
                    validate::Severity::Error => "error",
                    validate::Severity::Warning => "warning",
                    validate::Severity::Note => "note",
                },
                file: &f.file,
                key: &f.key,
                message: &f.message,
            })
            .collect();
        let v = ValidationJson {
            ok: report.is_ok(),
            config_files: &report.config_files,
            findings,
            outside: &report.outside,
        };
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print_findings(report, quiet);
        if quiet {
            return Ok(());
        }
        eprintln!(
            "{}: {} config file(s), {} error(s), {} warning(s)",
            dir.display(),
            report.config_files.len(),
            report.errors(),
            report.warnings()
        );
    }
    Ok(())
}

/// `bundle --json`: `{"output", "entries", "config_files", "size", "sha256"}`.
#[derive(Serialize)]
struct BundleJson<'a> {
    output: &'a PathBuf,
    entries: usize,
    config_files: usize,
    size: u64,
    sha256: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    outside: &'a [crate::mutate::outside::OutsideFile],
}

/// Prints what `bundle` wrote.
pub(crate) fn print_bundle(s: &BundleSummary, json: bool) -> anyhow::Result<()> {
    if json {
        let v = BundleJson {
            output: &s.output,
            entries: s.entries,
            config_files: s.config_files,
            size: s.size,
            sha256: &s.sha256,
            outside: &s.outside,
        };
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("{}", s.output.display());
        let outside = if s.outside.is_empty() {
            String::new()
        } else {
            let paths: Vec<&str> = s.outside.iter().map(|f| f.path.as_str()).collect();
            format!(
                ", {} from outside the config directory ({})",
                plural(s.outside.len(), "file", "files"),
                paths.join(", ")
            )
        };
        eprintln!(
            "wrote {}: {} entries ({} config files{outside}), {}, sha256 {}",
            s.output.display(),
            s.entries,
            s.config_files,
            human_bytes(s.size),
            s.sha256
        );
    }
    Ok(())
}

/// Prints `inspect`'s listing: one line per image, its run settings and layers.
pub(crate) fn print_inspection(i: &Inspection, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(i)?);
        return Ok(());
    }
    // Strings bare, absent fields as "-", lists as JSON so argument boundaries stay visible.
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) if s.is_empty() => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("{}  {}  {}", i.reference, i.media_type, i.digest);
    for img in &i.images {
        println!("  platform: {}  manifest {}", img.platform, img.digest);
        println!(
            "    entrypoint: {}  cmd: {}  user: {}  workdir: {}",
            show(&img.entrypoint),
            show(&img.cmd),
            show(&img.user),
            show(&img.working_dir)
        );
        println!("    env: {}", show(&img.env));
        for l in &img.layers {
            println!("    layer {}  {:>10}  {}", l.digest, l.size, l.media_type);
        }
    }
    for a in &i.attached {
        println!(
            "  attached: {}  {}",
            a["artifactType"].as_str().unwrap_or("-"),
            a["digest"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::LayerSummary;
    use crate::sink::registry::PushStats;
    use std::time::Duration;

    fn outcome(push: Option<PushStats>) -> Outcome {
        Outcome {
            digest: "sha256:00".into(),
            references: vec![],
            pushed: vec![],
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            layer: Some(LayerSummary {
                digest: "sha256:01".into(),
                diff_id: "sha256:02".into(),
                size: 12 * 1024,
                files: 3,
            }),
            push,
            base: None,
            outside: Vec::new(),
            attached: Vec::new(),
        }
    }

    #[test]
    fn summary_lines() {
        let pushed = outcome(Some(PushStats {
            uploaded: 3,
            uploaded_bytes: 14 * 1024,
            mounted: 14,
            existing: 0,
        }));
        assert_eq!(
            summary(&pushed, None, None, Duration::from_millis(420)),
            "pushed 2 platforms, 1 new layer (12 KB, 3 files), 3 blobs uploaded (14 KB), 14 blobs mounted, 0.4 s"
        );
        let wrote = outcome(None);
        assert_eq!(
            summary(
                &wrote,
                Some(std::path::Path::new("mocks.tar")),
                None,
                Duration::ZERO
            ),
            "wrote 2 platforms to mocks.tar, 1 new layer (12 KB, 3 files), 0.0 s"
        );
        let mut copied = outcome(Some(PushStats {
            existing: 1,
            ..Default::default()
        }));
        copied.layer = None;
        copied.platforms.pop();
        assert_eq!(
            summary(&copied, None, None, Duration::from_secs(2)),
            "pushed 1 platform, 1 blob already there, 2.0 s"
        );
    }
}
