//! The edge of the program: parse the command line, run one job through the library, print its
//! result, and turn failures into one line and an exit code.
mod args;
mod exit;
mod output;
pub mod progress;
mod publish;

pub use args::{Cli, Command};
pub use exit::exit_code;

use crate::build::{self, BuildRequest};
use crate::error::Error;
use crate::imposter::validate::{self, ValidateOptions};
use crate::mutate::layer::{LayerOptions, WalkOptions};
use crate::oci::image::Platform;
use crate::oci::reference::ImageRef;
use crate::source::cache::Cache;
use anyhow::Context as _;
use args::{parse_kv, registry_refs, BuildArgs, BundleArgs, InspectArgs, PushArgs, ValidateArgs};
use clap::CommandFactory;
use exit::{interruptible, job_error};
use std::collections::BTreeMap;
use std::io::IsTerminal;

/// A bare path that exists is taken as an archive tar (`mockimg push mocks.tar REF`): OCI when it
/// has an index.json, else docker-archive; a directory is an OCI layout.
fn source_ref(s: &str) -> Result<ImageRef, Error> {
    let p = std::path::Path::new(s);
    let looks_like_path =
        s.ends_with(".tar") || s.starts_with('/') || s.starts_with("./") || p.exists();
    if !s.contains("://")
        && looks_like_path
        && !s.starts_with("oci:")
        && !s.starts_with("oci-archive:")
        && !s.starts_with("docker-archive:")
    {
        if p.is_dir() {
            return Ok(ImageRef::OciLayout {
                dir: p.into(),
                tag: None,
            });
        }
        if !p.exists() {
            return Err(Error::path(
                p,
                "does not exist — give the archive written by 'mockimg build --output'",
            ));
        }
        // `docker save` output (without an OCI index) is read as the docker-archive it is.
        let store = crate::sink::archive::Store::open_tar(p)?;
        if !store.has("index.json") && store.has("manifest.json") {
            return Ok(ImageRef::DockerArchive { path: p.into() });
        }
        return Ok(ImageRef::OciArchive {
            path: p.into(),
            tag: None,
        });
    }
    ImageRef::parse(s)
}

/// org.opencontainers.image.* annotations from the CI environment (GitHub Actions, GitLab CI).
/// `created` is the commit's time (or `SOURCE_DATE_EPOCH`), never the build's, so a rebuild of
/// the same commit still gives the same digest.
pub fn ci_annotations() -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut commit_time = None;
    if var("GITHUB_ACTIONS").is_some() {
        if let (Some(server), Some(repo)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
            a.insert(
                "org.opencontainers.image.source".into(),
                format!("{server}/{repo}"),
            );
        }
        if let Some(sha) = var("GITHUB_SHA") {
            a.insert("org.opencontainers.image.revision".into(), sha);
        }
        // A push event's payload carries the head commit's timestamp.
        commit_time = var("GITHUB_EVENT_PATH")
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["head_commit"]["timestamp"].as_str().map(str::to_string));
    } else if var("GITLAB_CI").is_some() {
        if let Some(url) = var("CI_PROJECT_URL") {
            a.insert("org.opencontainers.image.source".into(), url);
        }
        if let Some(sha) = var("CI_COMMIT_SHA") {
            a.insert("org.opencontainers.image.revision".into(), sha);
        }
        commit_time = var("CI_COMMIT_TIMESTAMP");
    }
    if !a.is_empty() {
        let created = match build::source_date_epoch() {
            Ok(Some(t)) => Some(build::rfc3339(t)),
            _ => commit_time.and_then(|t| {
                chrono::DateTime::parse_from_rfc3339(&t)
                    .ok()
                    .map(|d| build::rfc3339(d.timestamp().max(0) as u64))
            }),
        };
        if let Some(c) = created {
            a.insert("org.opencontainers.image.created".into(), c);
        }
    }
    a
}

fn init_logging(verbose: u8, quiet: bool) {
    // -v: mockimg's own debug lines, one per registry request; -vv: oci-client's internals too.
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "mockimg=info,warn",
        (false, 1) => "mockimg=debug,info",
        (false, _) => "mockimg=debug,oci_client=debug,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    crate::cli::progress::install(crate::cli::progress::Mode::detect(quiet));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::cli::progress::StderrWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .without_time()
        .try_init();
}

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let quiet = match &cli.command {
        Command::Build(b) => b.out.quiet,
        Command::Push(p) => p.out.quiet,
        Command::Publish(p) => p.quiet,
        _ => false,
    };
    init_logging(cli.verbose, quiet);
    let r = match cli.command {
        Command::Build(args) => run_build(args).await,
        Command::Push(args) => run_push(args).await,
        Command::Inspect(args) => run_inspect(args).await,
        Command::Validate(args) => run_validate(args),
        Command::Bundle(args) => run_bundle(args),
        Command::Publish(args) => publish::run_publish(args).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "mockimg",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    crate::cli::progress::finish();
    r
}

/// Runs validation and fails on errors; warnings are printed and tolerated.
fn validate_or_fail(dir: &std::path::Path, recursive: bool) -> anyhow::Result<()> {
    let report = validate::validate_dir(dir, &ValidateOptions { recursive })
        .map_err(|e| Error::ConfigDir(e.to_string()))?;
    output::print_findings(&report);
    if !report.is_ok() {
        return Err(output::validation_error(&report).into());
    }
    Ok(())
}

async fn run_build(a: BuildArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let imposter_yaml = validate::read_imposter_yaml(&a.config_dir)
        .map_err(|e| Error::ConfigDir(e.to_string()))
        .unwrap_or(None);
    let recursive = a.recursive
        || imposter_yaml
            .as_ref()
            .and_then(|y| y.recursive)
            .unwrap_or(false);
    if !a.no_validate {
        validate_or_fail(&a.config_dir, recursive)?;
    }
    let base = build::resolve_base(
        a.base.as_deref(),
        a.engine.as_deref(),
        a.engine_version.as_deref(),
        imposter_yaml.as_ref(),
    )?;
    let mut annotations = if a.no_ci_annotations {
        BTreeMap::new()
    } else {
        ci_annotations()
    };
    annotations.extend(parse_kv("annotation", &a.annotation)?);
    let platforms = a
        .platform
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let cache = if a.no_cache {
        None
    } else {
        match a.cache_dir.clone().or_else(Cache::default_dir) {
            Some(d) => Some(Cache::open(&d)?),
            None => None,
        }
    };
    crate::mutate::layer::config_path_components(&a.config_path)?;
    let req = BuildRequest {
        config_dir: a.config_dir.clone(),
        base: Some(base.clone()),
        platforms,
        walk: WalkOptions {
            excludes: a.exclude.clone(),
        },
        layer: LayerOptions {
            config_path: a.config_path.clone(),
            mtime: build::source_date_epoch()?.unwrap_or(0),
            replace: a.replace,
            gzip_level: a.compression_level,
        },
        labels: parse_kv("label", &a.label)?,
        annotations,
        push: registry_refs("push", &a.push)?,
        tags: registry_refs("tag", &a.tag)?,
        output: a.output.clone(),
        oci_layout: a.oci_layout.clone(),
        registry: a.registry.options(),
        cache,
    };
    if !a.out.quiet && req.push.is_empty() && req.output.is_none() && req.oci_layout.is_none() {
        tracing::warn!(
            "no --push, --output or --oci-layout: the image is built but not written anywhere"
        );
    }
    let outcome = interruptible(build::build(&req)).await.map_err(|e| {
        job_error(e, || {
            format!("building {} onto {}", a.config_dir.display(), base)
        })
    })?;
    output::report(
        &outcome,
        &a.out,
        started,
        output::Written {
            output: a.output.as_deref(),
            layout: a.oci_layout.as_deref(),
        },
    )
}

async fn run_push(a: PushArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let src = source_ref(&a.source)?;
    let targets = registry_refs("target", &a.targets)?;
    let o = interruptible(build::push_existing(&src, &targets, &a.registry.options()))
        .await
        .map_err(|e| job_error(e, || format!("pushing {src}")))?;
    output::report(
        &o,
        &a.out,
        started,
        output::Written {
            output: None,
            layout: None,
        },
    )
}

async fn run_inspect(a: InspectArgs) -> anyhow::Result<()> {
    let r = source_ref(&a.reference)?;
    let i = build::inspect(&r, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("inspecting {r}")))?;
    output::print_inspection(&i, a.json)
}

fn run_validate(a: ValidateArgs) -> anyhow::Result<()> {
    let y =
        validate::read_imposter_yaml(&a.config_dir).map_err(|e| Error::ConfigDir(e.to_string()))?;
    let recursive = a.recursive || y.and_then(|y| y.recursive).unwrap_or(false);
    let report = validate::validate_dir(&a.config_dir, &ValidateOptions { recursive })
        .map_err(|e| Error::ConfigDir(e.to_string()))?;
    output::print_validation(&a.config_dir, &report, a.json)?;
    if !report.is_ok() {
        return Err(output::validation_error(&report).into());
    }
    Ok(())
}

fn run_bundle(a: BundleArgs) -> anyhow::Result<()> {
    if !a.no_validate {
        validate_or_fail(&a.config_dir, a.recursive)?;
    }
    let engine = match (a.engine_zip, a.engine_archive) {
        (Some(z), _) => crate::imposter::bundle::EngineArchive::JvmZip(z),
        (None, Some(t)) => crate::imposter::bundle::EngineArchive::GoTarGz(t),
        (None, None) => {
            return Err(
                Error::Usage("give --engine-zip (JVM) or --engine-archive (Go)".into()).into(),
            )
        }
    };
    let s = crate::imposter::bundle::bundle(&crate::imposter::bundle::BundleOptions {
        config_dir: a.config_dir.clone(),
        engine,
        output: a.output.clone(),
        force: a.force,
        walk: WalkOptions {
            excludes: a.exclude,
        },
        mtime: build::source_date_epoch()?.unwrap_or(0),
    })
    .with_context(|| format!("bundling {} for {}", a.config_dir.display(), a.target))?;
    output::print_bundle(&s, a.json)
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_names_the_default_engine() {
        assert!(super::args::LONG_VERSION.contains(&format!(
            "imposter:{}",
            crate::build::DEFAULT_ENGINE_VERSION
        )));
    }
}
