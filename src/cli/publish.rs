//! `mockimg publish`: validate like `build`, sync to the bucket, optionally repoint a Lambda,
//! and print the summary (or one JSON object).
use crate::error::Error;
use crate::imposter::engine::{EngineFlags, Generation};
use crate::imposter::publish::lambda::{self, LambdaUpdate};
use crate::imposter::publish::{self, jvm};
use crate::sink::publish::store::{self, Scheme, Target};
use crate::sink::publish::{Outcome, PublishError, PublishOptions, ReaderCheck};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// `mockimg publish` flags.
#[derive(Args, Debug)]
#[command(mut_arg("quiet", |a| a.help("Only errors on stderr")))]
#[command(mut_arg("strict", |a| a.help("Treat validation warnings as errors (for CI)")))]
#[command(mut_arg("exclude", |a| a.help(
    "Leave out paths matching this gitignore-style pattern (repeatable); .imposterignore is honoured too"
)))]
pub struct PublishArgs {
    /// Directory holding the Imposter config (*-config.yaml and the files they reference).
    #[arg(default_value = ".")]
    pub config_dir: PathBuf,
    /// Where to: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///DIR.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Also delete objects under the prefix that mockimg did not publish.
    #[arg(long)]
    pub delete: bool,
    /// Publish to s3:// even what the JVM engine's S3 loader would not load as published (keys sharing the prefix as a string, over 1,000 objects, files that are not UTF-8).
    #[arg(long)]
    pub force: bool,
    /// Print what would be uploaded and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After publishing to s3://, point this Lambda function at it (IMPOSTER_CONFIG_DIR and a revision variable; other variables are kept).
    #[arg(long, value_name = "NAME")]
    pub lambda_function: Option<String>,
    #[command(flatten)]
    pub exclude: super::groups::ExcludeArgs,
    /// Engine the config is validated for, as for build (docker, docker-all, docker-distroless, golang, …); recorded in the publish record.
    #[arg(long)]
    pub engine: Option<String>,
    /// Engine version the config is validated for (never looked up online).
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,
    /// Skip config validation.
    #[arg(long)]
    pub no_validate: bool,
    /// Validate config files in subdirectories too (the engine scans recursively).
    #[arg(long)]
    pub recursive: bool,
    /// Print one JSON object on stdout: {"to", "digest", "uploaded", "unchanged", "deleted", "dry_run"}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub findings: super::groups::FindingsArgs,
}

/// `publish --json`.
#[derive(Serialize)]
struct PublishJson<'a> {
    to: &'a str,
    digest: &'a str,
    uploaded: usize,
    unchanged: usize,
    deleted: usize,
    dry_run: bool,
}

/// Usage errors keep exit code 2; everything else is a failure (1).
fn cli_error(e: PublishError) -> anyhow::Error {
    match e {
        PublishError::Usage(m) => Error::Usage(m).into(),
        PublishError::Local(e) => e.into(),
        other => other.into(),
    }
}

pub(crate) async fn run_publish(a: PublishArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let target = Target::parse(&a.to).map_err(cli_error)?;
    if a.lambda_function.is_some() && target.scheme != Scheme::S3 {
        return Err(Error::Usage(format!(
            "--lambda-function needs an s3:// target (the engine reads IMPOSTER_CONFIG_DIR from S3), not {target}"
        ))
        .into());
    }
    // A malformed project file is reported by validation, as for build.
    let project = crate::imposter::project::read(&a.config_dir).unwrap_or(None);
    let walk = a.exclude.walk_options();
    let env = BTreeMap::new();
    // The same checks as build, through the same function: nothing is uploaded for an invalid
    // config.
    let (choice, _) = super::check::check_tree(&super::check::Check {
        dir: &a.config_dir,
        project: project.as_ref(),
        flags: EngineFlags {
            base: None,
            engine: a.engine.clone(),
            version: a.engine_version.clone(),
        },
        walk: &walk,
        recursive: a.recursive,
        env: &env,
        no_validate: a.no_validate,
        findings: a.findings.clone(),
        // A bucket prefix is the whole config: the engine reading it has no outside.
        outside: crate::imposter::validate::OutsidePolicy::Refuse(
            "publish copies the config directory alone, and a bucket prefix has no outside for \
             the engine to reach"
                .to_string(),
        ),
    })?;
    if let Some(f) = &a.lambda_function {
        // Refused before anything is uploaded: only the JVM engine reads a bucket.
        if choice.facts.generation == Generation::Go {
            return Err(Error::Usage(format!(
                "--lambda-function {f}: the config is validated for {}, and {}",
                choice.facts.label,
                lambda::GO_READS_NO_BUCKET
            ))
            .into());
        }
        lambda::check_function(f).await.map_err(cli_error)?;
    }
    let (engine, version) = publish::engine_record(&choice);
    let mtime = super::env::source_date_epoch()?.unwrap_or(0);
    let (dir, w) = (a.config_dir.clone(), walk);
    let tree = tokio::task::spawn_blocking(move || publish::local_tree(&dir, &w, mtime))
        .await?
        .map_err(cli_error)?;
    let store = store::open(&target, &super::env::store_vars()).map_err(cli_error)?;
    let opts = PublishOptions {
        target: target.clone(),
        engine,
        version: version.clone(),
        delete_unknown: a.delete,
        dry_run: a.dry_run,
        // Only the JVM engine reads a bucket itself, and only s3://.
        reader: (target.scheme == Scheme::S3 && choice.facts.generation == Generation::Jvm)
            .then(|| Arc::new(jvm::S3Loader { force: a.force }) as Arc<dyn ReaderCheck>),
    };
    let bar = upload_bar(a.findings.quiet, tree.files.len());
    let on_upload = |rel: &str, size: u64| match &bar {
        Some(b) => b.inc(1),
        None => tracing::debug!("uploaded {rel} ({size} bytes)"),
    };
    // Dropping the publish on Ctrl-C leaves no partial object: each upload is one PUT (or a
    // temp file and a rename), and the record is only written after all of them.
    let job = super::exit::Job::start();
    let outcome = tokio::select! {
        r = crate::sink::publish::publish(store, &tree, &opts, &on_upload) => r.map_err(cli_error)?,
        _ = super::exit::signalled() => return Err(Error::Interrupted.into()),
    };
    drop(job);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let lambda_line = match (&a.lambda_function, a.dry_run) {
        (Some(f), true) => Some(format!(
            "would set {} and {} on lambda function {f}",
            lambda::CONFIG_DIR_VAR,
            lambda::REVISION_VAR
        )),
        (Some(f), false) => {
            let o = lambda::update(&LambdaUpdate {
                function: f.clone(),
                config_dir: target.to_string(),
                digest: outcome.digest.clone(),
                go_engine: choice.facts.generation == Generation::Go,
            })
            .await
            .map_err(cli_error)?;
            if let Some(w) = &o.warning {
                tracing::warn!("lambda function {f}: {w}");
            }
            Some(if o.updated {
                format!("lambda function {f} now reads {target}")
            } else {
                format!("lambda function {f} already reads this config")
            })
        }
        (None, _) => None,
    };
    report(&outcome, &a, tree.files.len(), lambda_line, started)
}

fn upload_bar(quiet: bool, files: usize) -> Option<indicatif::ProgressBar> {
    if crate::cli::progress::mode() != crate::cli::progress::Mode::Bars || quiet {
        return None;
    }
    let b = indicatif::ProgressBar::new(files as u64).with_style(
        indicatif::ProgressStyle::with_template("publishing {bar:30} {pos}/{len} files")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(b)
}

fn report(
    o: &Outcome,
    a: &PublishArgs,
    files: usize,
    lambda_line: Option<String>,
    started: std::time::Instant,
) -> anyhow::Result<()> {
    let p = &o.plan;
    if a.json {
        let j = PublishJson {
            to: &o.to,
            digest: &o.digest,
            uploaded: p.upload.len(),
            unchanged: p.unchanged.len(),
            deleted: p.delete.len(),
            dry_run: a.dry_run,
        };
        println!("{}", serde_json::to_string(&j)?);
    } else if a.dry_run {
        for f in &p.upload {
            println!("upload {}", f.rel);
        }
        if p.record.is_some() {
            println!("record {}", crate::sink::publish::plan::RECORD_NAME);
        }
        for d in &p.delete {
            println!("delete {d}");
        }
    } else {
        println!("{}", o.digest);
    }
    if !a.findings.quiet {
        if let Some(l) = lambda_line {
            eprintln!("{l}");
        }
        eprintln!("{}", summary(o, files, a.dry_run, started.elapsed()));
    }
    Ok(())
}

/// `published 201 files to s3://…: 2 uploaded, 199 unchanged, 1 deleted, 0.4 s`.
fn summary(o: &Outcome, files: usize, dry_run: bool, elapsed: std::time::Duration) -> String {
    let p = &o.plan;
    let (verb, up, del) = if dry_run {
        ("would publish", "to upload", "to delete")
    } else {
        ("published", "uploaded", "deleted")
    };
    // Only the JVM engine reads a bucket itself, and only s3:// (its S3 resolver:
    // imposter-jvm-engine@v4.9.3:core/config-resolver-s3/src/main/java/io/gatehill/imposter/config/S3FileDownloader.kt).
    let how = if o.to.starts_with("gs://") || o.to.starts_with("az://") {
        " — no engine reads it directly: mount it as a volume (Cloud Run GCS volume, Azure Files) \
         and set IMPOSTER_CONFIG_DIR=/mount/path"
    } else {
        ""
    };
    format!(
        "{verb} {files} {} to {}: {} {up}, {} unchanged, {} {del}, {:.1} s{how}",
        if files == 1 { "file" } else { "files" },
        o.to,
        p.upload.len(),
        p.unchanged.len(),
        p.delete.len(),
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::publish::plan::Plan;

    #[test]
    fn summary_counts_uploads_unchanged_and_deletes() {
        let o = Outcome {
            to: "s3://b/p".into(),
            digest: "sha256:0".into(),
            plan: Plan {
                unchanged: vec!["a".into(), "b".into()],
                delete: vec!["c".into()],
                ..Default::default()
            },
        };
        assert_eq!(
            summary(&o, 2, false, std::time::Duration::from_millis(400)),
            "published 2 files to s3://b/p: 0 uploaded, 2 unchanged, 1 deleted, 0.4 s"
        );
        assert!(summary(&o, 1, true, std::time::Duration::ZERO).starts_with("would publish 1 file"));
    }

    #[test]
    fn gs_and_az_summaries_say_the_bucket_is_mounted_not_read() {
        for to in ["gs://b/p", "az://c/p"] {
            let o = Outcome {
                to: to.into(),
                digest: "sha256:0".into(),
                plan: Plan::default(),
            };
            let s = summary(&o, 1, false, std::time::Duration::ZERO);
            assert!(
                s.contains("no engine reads it directly")
                    && s.contains("IMPOSTER_CONFIG_DIR=/mount/path"),
                "{s}"
            );
        }
    }
}
