//! The edge of the program: parse the command line, run one job through the library, print its
//! result, and turn failures into one line and an exit code.
mod args;
mod exit;
mod output;
pub mod progress;

pub use args::{Cli, Command};
pub use exit::exit_code;

use crate::build::{self, BuildRequest};
use crate::error::Error;
use crate::imposter::validate::{self, ValidateOptions};
use crate::mutate::layer::LayerOptions;
use crate::mutate::walk::WalkOptions;
use crate::oci::image::Platform;
use crate::source::cache::Cache;
use anyhow::Context as _;
use args::{parse_kv, registry_refs, BuildArgs, BundleArgs, InspectArgs, PushArgs, ValidateArgs};
use clap::CommandFactory;
use exit::{interruptible, job_error};
use std::collections::BTreeMap;
use std::io::IsTerminal;

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

/// `--platform` values: empty or `all` means every platform of the base.
fn platforms(flags: &[String]) -> Result<Vec<Platform>, Error> {
    let flags: Vec<&str> = flags
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    if flags.contains(&"all") {
        if flags.len() > 1 {
            return Err(Error::Usage(
                "--platform all cannot be combined with other platforms".into(),
            ));
        }
        return Ok(Vec::new());
    }
    flags.into_iter().map(Platform::parse).collect()
}

/// Parses the process's command line, keeping what clap's derive loses: the order of `--push`
/// and `--tag` values among each other (the names are recorded in that order).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Build(b), Some(("build", m))) = (&mut cli.command, matches.subcommand()) {
        let mut all: Vec<(usize, bool, String)> = Vec::new();
        for (flag, is_push) in [("push", true), ("tag", false)] {
            if let (Some(idx), Some(vals)) = (m.indices_of(flag), m.get_many::<String>(flag)) {
                all.extend(idx.zip(vals).map(|(i, v)| (i, is_push, v.clone())));
            }
        }
        all.sort_by_key(|(i, _, _)| *i);
        b.names_in_order = all.into_iter().map(|(_, p, v)| (p, v)).collect();
    }
    cli
}

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let quiet = match &cli.command {
        Command::Build(b) => b.out.quiet,
        Command::Push(p) => p.out.quiet,
        _ => false,
    };
    init_logging(cli.verbose, quiet);
    let r = match cli.command {
        Command::Build(args) => run_build(args).await,
        Command::Push(args) => run_push(args).await,
        Command::Inspect(args) => run_inspect(args).await,
        Command::Validate(args) => run_validate(args),
        Command::Bundle(args) => run_bundle(args),
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
fn validate_or_fail(dir: &std::path::Path, opts: &ValidateOptions) -> anyhow::Result<()> {
    let report = validate::validate_dir(dir, opts).map_err(Error::from)?;
    output::print_findings(&report);
    if !report.is_ok() {
        return Err(output::validation_error(&report).into());
    }
    Ok(())
}

async fn run_build(a: BuildArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // A malformed project file is reported by validation (unless --no-validate).
    let project = crate::imposter::project::read(&a.config_dir).unwrap_or(None);
    let walk = WalkOptions {
        excludes: a.exclude.clone(),
    };
    if !a.no_validate {
        let opts = ValidateOptions {
            recursive: a.recursive,
            walk: walk.clone(),
        };
        validate_or_fail(&a.config_dir, &opts)?;
    }
    let base = crate::imposter::engine::resolve_base(
        a.base.as_deref(),
        a.engine.as_deref(),
        a.engine_version.as_deref(),
        project.as_ref(),
    )?;
    let mut annotations = if a.no_ci_annotations {
        BTreeMap::new()
    } else {
        crate::imposter::ci::ci_annotations()
    };
    annotations.extend(parse_kv("annotation", &a.annotation)?);
    let platforms = platforms(&a.platform)?;
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
        walk,
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
        order: a
            .names_in_order
            .iter()
            .map(|(p, v)| {
                let flag = if *p { "push" } else { "tag" };
                Ok((registry_refs(flag, std::slice::from_ref(v))?.remove(0), *p))
            })
            .collect::<Result<_, Error>>()?,
        format: match a.format.as_deref() {
            Some("docker") => Some(crate::oci::convert::Family::Docker),
            Some(_) => Some(crate::oci::convert::Family::Oci),
            None => None,
        },
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
    let src = crate::source::parse_input(&a.source)?;
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
    let r = crate::source::parse_input(&a.reference)?;
    let i = build::inspect(&r, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("inspecting {r}")))?;
    output::print_inspection(&i, a.json)
}

fn run_validate(a: ValidateArgs) -> anyhow::Result<()> {
    let opts = ValidateOptions {
        recursive: a.recursive,
        walk: WalkOptions {
            excludes: a.exclude,
        },
    };
    let report = validate::validate_dir(&a.config_dir, &opts).map_err(Error::from)?;
    output::print_validation(&a.config_dir, &report, a.json)?;
    if !report.is_ok() {
        return Err(output::validation_error(&report).into());
    }
    Ok(())
}

fn run_bundle(a: BundleArgs) -> anyhow::Result<()> {
    let walk = WalkOptions {
        excludes: a.exclude,
    };
    if !a.no_validate {
        let opts = ValidateOptions {
            recursive: a.recursive,
            walk: walk.clone(),
        };
        validate_or_fail(&a.config_dir, &opts)?;
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
        walk,
        mtime: build::source_date_epoch()?.unwrap_or(0),
    })
    .with_context(|| format!("bundling {} for {}", a.config_dir.display(), a.target))?;
    output::print_bundle(&s, a.json)
}

#[cfg(test)]
mod tests {
    #[test]
    fn platform_lists_and_all() {
        let p = |v: &[&str]| super::platforms(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(p(&["all"]).unwrap().is_empty());
        assert!(p(&[]).unwrap().is_empty());
        let two = p(&["linux/amd64", " linux/arm64/v8"]).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].to_string(), "linux/arm64/v8");
        assert!(p(&["all", "linux/amd64"]).is_err());
        assert!(p(&["linux"]).is_err());
    }

    #[test]
    fn version_names_the_default_engine() {
        assert!(super::args::LONG_VERSION.contains(&format!(
            "imposter:{}",
            crate::imposter::engine::DEFAULT_ENGINE_VERSION
        )));
    }
}
