//! The edge of the program: parse the command line, run one job through the library, print its
//! result, and turn failures into one line and an exit code.
mod args;
mod exit;
mod groups;
mod output;
pub mod progress;
mod publish;
mod rebase;
mod sign;

pub use args::{Cli, Command};
pub use exit::{exit_code, interrupted, remove_temp_files};

use crate::build::{self, BuildRequest};
use crate::error::Error;
use crate::imposter::engine::{self, EngineFlags};
use crate::imposter::project::{self, SCAN_RECURSIVE_ENV};
use crate::imposter::validate::Report;
use crate::imposter::validate::{self, ValidateOptions};
use crate::mutate::layer::LayerOptions;
use crate::mutate::walk::WalkOptions;
use crate::oci::image::Platform;
use crate::registry::locations::Locations;
use crate::registry::RegistryOptions;
use crate::source::cache::Cache;
use anyhow::Context as _;
use args::{
    parse_env, parse_kv, registry_refs, BuildArgs, BundleArgs, InspectArgs, LoginArgs, LogoutArgs,
    PushArgs, ValidateArgs,
};
use clap::CommandFactory;
use exit::{interruptible, job_error};
use std::collections::BTreeMap;
use std::io::IsTerminal;

fn init_logging(verbose: u8, quiet: bool) {
    // -v: mockimg's own debug lines, one per registry request; -vv: mockimg's trace lines too
    // (each request's time to answer). Every request is mockimg's own now, so other crates'
    // logs add nothing a user can act on.
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "mockimg=info,warn",
        (false, 1) => "mockimg=debug,info",
        (false, _) => "mockimg=trace,info",
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

/// The registries of `--push` references: the only ones environment credentials go to.
fn push_hosts(push: &[String]) -> Vec<String> {
    push.iter()
        .filter_map(|p| crate::oci::RegistryRef::parse(p).ok())
        .map(|r| r.registry)
        .collect()
}

/// A registry host as users type it (`https://ghcr.io/` works as `ghcr.io`).
fn login_host(host: &str) -> Result<String, Error> {
    let h = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if h.is_empty() || h.contains('/') || h.contains('@') {
        return Err(Error::Usage(format!(
            "login: {host:?} is not a registry host — give HOST[:PORT], e.g. ghcr.io"
        )));
    }
    Ok(h.to_string())
}

async fn run_login(a: LoginArgs) -> anyhow::Result<()> {
    let host = login_host(&a.host)?;
    let mut password = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    let file = crate::registry::login(&host, &a.username, password, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("logging in to {host}")))?;
    eprintln!(
        "logged in to {host} as {}; credentials stored in {}",
        a.username,
        file.display()
    );
    Ok(())
}

fn run_logout(a: LogoutArgs) -> anyhow::Result<()> {
    let host = login_host(&a.host)?;
    let (file, removed) = crate::registry::logout(&host)?;
    if removed {
        eprintln!("removed the credentials for {host} from {}", file.display());
    } else {
        eprintln!("no credentials for {host} in {}", file.display());
    }
    Ok(())
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
        Command::Validate(v) => v.findings.quiet,
        Command::Bundle(b) => b.findings.quiet,
        Command::Publish(p) => p.findings.quiet,
        Command::Rebase(r) => r.quiet,
        _ => false,
    };
    init_logging(cli.verbose, quiet);
    exit::install_signal_handlers();
    let r = match cli.command {
        Command::Build(args) => run_build(args).await,
        Command::Push(args) => run_push(args).await,
        Command::Inspect(args) => run_inspect(args).await,
        Command::Validate(args) => run_validate(args),
        Command::Bundle(args) => run_bundle(args),
        Command::Login(args) => run_login(args).await,
        Command::Logout(args) => run_logout(args),
        Command::GenerateKey(args) => sign::run_generate_key(args),
        Command::Publish(args) => publish::run_publish(args).await,
        Command::Rebase(args) => rebase::run_rebase(args).await,
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
    if let Err(e) = &r {
        if matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted)) {
            // A blocking thread of the cancelled job may have written on meanwhile.
            crate::temps::remove_all();
        }
    }
    r
}

/// Applies `--strict` and `--quiet` to a report, prints it, and fails on errors.
fn settle(report: &mut Report, f: &args::FindingsArgs) -> anyhow::Result<()> {
    f.judge(report);
    output::print_findings(report, f.quiet);
    if !report.is_ok() {
        return Err(output::validation_error(report).into());
    }
    Ok(())
}

/// What `build` and `publish` check before they touch anything.
pub(crate) struct Check<'a> {
    pub(crate) dir: &'a std::path::Path,
    pub(crate) project: Option<&'a crate::imposter::project::ProjectFile>,
    pub(crate) flags: EngineFlags,
    pub(crate) walk: &'a WalkOptions,
    pub(crate) recursive: bool,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) no_validate: bool,
    /// `--quiet` and `--strict`.
    pub(crate) findings: args::FindingsArgs,
    /// Referenced files outside the config directory: shipped or refused.
    pub(crate) outside: validate::OutsidePolicy,
}

/// One code path for build and publish: the engine choice (flags > project file > pinned
/// default) and validation with the walker filters the layer uses; warnings printed, or errors
/// with `--strict`. A config that fails here is neither built nor uploaded.
///
/// Returns the engine choice and the referenced files from outside the config directory that
/// ship with it (none with `--no-validate`: references are not read then).
pub(crate) fn check_tree(
    c: &Check<'_>,
) -> anyhow::Result<(
    crate::imposter::engine::EngineChoice,
    Vec<crate::mutate::outside::OutsideFile>,
)> {
    let choice = engine::choose(&c.flags, c.project)?;
    let mut report = if c.no_validate {
        Report {
            findings: validate::engine_findings(&choice, c.project),
            ..Report::default()
        }
    } else {
        let opts = ValidateOptions {
            recursive: c.recursive,
            walk: c.walk.clone(),
            engine: c.flags.clone(),
            env: c.env.clone(),
            outside: c.outside.clone(),
        };
        validate::validate_dir(c.dir, &opts).map_err(Error::from)?
    };
    settle(&mut report, &c.findings)?;
    Ok((choice, std::mem::take(&mut report.outside)))
}

/// The reason `--no-outside-files` gives when it refuses a file.
pub(crate) const NO_OUTSIDE_FILES: &str =
    "--no-outside-files keeps the image to the config directory";

/// `--no-outside-files` or not, for a config directory placed at `config_path`.
fn outside_policy(refuse: bool, config_path: &str) -> validate::OutsidePolicy {
    if refuse {
        validate::OutsidePolicy::Refuse(NO_OUTSIDE_FILES.to_string())
    } else {
        validate::OutsidePolicy::image(config_path)
    }
}

async fn run_build(a: BuildArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // A malformed project file is reported by validation (unless --no-validate).
    let project = project::read(&a.config_dir).unwrap_or(None);
    let walk = crate::imposter::walk_options(a.exclude.clone());
    let flags = a.engine.flags();
    let env_flags = parse_env(&a.env)?;
    let epoch = args::source_date_epoch()?;
    crate::mutate::layer::config_path_components(&a.config_path)?;
    let (choice, outside) = check_tree(&Check {
        dir: &a.config_dir,
        project: project.as_ref(),
        flags,
        walk: &walk,
        recursive: a.check.recursive,
        env: &env_flags,
        no_validate: a.check.no_validate,
        findings: args::FindingsArgs {
            quiet: a.out.quiet,
            strict: a.strict,
        },
        outside: outside_policy(a.check.no_outside_files, &a.config_path),
    })?;
    let base = choice.base.clone();
    let mut env = project::merged_env(project.as_ref(), &env_flags);
    if project::scan_recursive(a.check.recursive, project.as_ref(), &env) {
        // The engine only loads subdirectory configs when told to.
        env.insert(SCAN_RECURSIVE_ENV.to_string(), "true".to_string());
    }
    let mut annotations = if a.no_ci_annotations {
        BTreeMap::new()
    } else {
        crate::imposter::ci::ci_annotations(epoch)
    };
    annotations.extend(parse_kv("annotation", &a.annotation)?);
    let platforms = platforms(&a.platform)?;
    let cache_dir = if a.no_cache {
        None
    } else {
        a.cache_dir.clone().or_else(Cache::default_dir)
    };
    let cache = cache_dir.as_deref().map(Cache::open).transpose()?;
    let req = BuildRequest {
        config_dir: a.config_dir.clone(),
        outside,
        base: Some(base.clone()),
        base_moves: choice.floating,
        engine_config_dir: choice.facts.config_dir.to_string(),
        platforms,
        walk,
        layer: LayerOptions {
            config_path: a.config_path.clone(),
            mtime: epoch.unwrap_or(0),
            replace: a.replace,
            gzip_level: a.compression_level,
        },
        labels: parse_kv("label", &a.label)?,
        annotations,
        env,
        source_date_epoch: epoch,
        targets: targets(&a)?,
        format: match a.format.as_deref() {
            Some("docker") => Some(crate::oci::convert::Family::Docker),
            Some(_) => Some(crate::oci::convert::Family::Oci),
            None => None,
        },
        output: a.output.clone(),
        oci_layout: a.oci_layout.clone(),
        registry: RegistryOptions {
            push_hosts: push_hosts(&a.push),
            mount_from: args::mount_from(&a.mount_from)?,
            locations: Some(locations(cache_dir.as_deref())),
            ..a.registry.options()
        },
        cache,
        sign: a.sign.keys(!a.push.is_empty())?,
        sbom: !a.no_sbom,
        provenance: !a.no_provenance,
        ci: crate::imposter::ci::ci_run(),
    };
    if !a.out.quiet && !req.pushes() && req.output.is_none() && req.oci_layout.is_none() {
        tracing::warn!(
            "no --push, --output or --oci-layout: the image is built but not written anywhere"
        );
    }
    let outcome = interruptible(build::build(&req, &progress::Shown))
        .await
        .map_err(|e| {
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

/// `--push` and `--tag` names in command-line order (push then tag names when the order was not
/// kept: a command line not read by [`parse`]).
fn targets(a: &BuildArgs) -> Result<Vec<build::Target>, Error> {
    let in_order: Vec<(bool, String)> = if a.names_in_order.is_empty() {
        let push = a.push.iter().map(|v| (true, v.clone()));
        push.chain(a.tag.iter().map(|v| (false, v.clone())))
            .collect()
    } else {
        a.names_in_order.clone()
    };
    in_order
        .into_iter()
        .map(|(pushed, v)| {
            let flag = if pushed { "push" } else { "tag" };
            let r = registry_refs(flag, std::slice::from_ref(&v))?.remove(0);
            Ok(if pushed {
                build::Target::Push(r)
            } else {
                build::Target::Record(r)
            })
        })
        .collect()
}

/// The record of where blobs were seen, beside the blob cache; without a cache, one kept for
/// this run (a second target repository can still mount from the first).
fn locations(cache_dir: Option<&std::path::Path>) -> std::sync::Arc<Locations> {
    std::sync::Arc::new(match cache_dir {
        Some(d) => Locations::open(d),
        None => Locations::in_memory(),
    })
}

async fn run_push(a: PushArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let src = crate::source::parse_input(&a.source)?;
    let targets = registry_refs("target", &a.targets)?;
    let opts = RegistryOptions {
        push_hosts: targets.iter().map(|t| t.registry.clone()).collect(),
        mount_from: args::mount_from(&a.mount_from)?,
        locations: Some(locations(Cache::default_dir().as_deref())),
        ..a.registry.options()
    };
    let keys = a.sign.keys(true)?;
    let o = interruptible(build::push_existing(
        &src,
        &targets,
        &opts,
        &keys,
        &progress::Shown,
    ))
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
    let i = crate::inspect::inspect(&r, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("inspecting {r}")))?;
    output::print_inspection(&i, a.json)
}

fn run_validate(a: ValidateArgs) -> anyhow::Result<()> {
    let opts = ValidateOptions {
        recursive: a.recursive,
        walk: crate::imposter::walk_options(a.exclude),
        engine: a.engine.flags(),
        env: parse_env(&a.env)?,
        outside: outside_policy(
            a.no_outside_files,
            crate::mutate::layer::DEFAULT_CONFIG_PATH,
        ),
    };
    let mut report = validate::validate_dir(&a.config_dir, &opts).map_err(Error::from)?;
    a.findings.judge(&mut report);
    output::print_validation(&a.config_dir, &report, a.json, a.findings.quiet)?;
    if !report.is_ok() {
        return Err(output::validation_error(&report).into());
    }
    Ok(())
}

fn run_bundle(a: BundleArgs) -> anyhow::Result<()> {
    let walk = crate::imposter::walk_options(a.exclude);
    // The engine archive says which engine runs the config.
    let generation = if a.engine_zip.is_none() && a.engine_archive.is_some() {
        engine::Generation::Go
    } else {
        engine::Generation::Jvm
    };
    let mut config_files = Vec::new();
    let mut outside = Vec::new();
    if !a.check.no_validate {
        let engine = (generation == engine::Generation::Go).then(|| "go".to_string());
        let opts = ValidateOptions {
            recursive: a.check.recursive,
            walk: walk.clone(),
            engine: EngineFlags {
                engine,
                ..EngineFlags::default()
            },
            env: BTreeMap::new(),
            outside: if a.check.no_outside_files {
                validate::OutsidePolicy::Refuse(
                    "--no-outside-files keeps the zip to the config directory".to_string(),
                )
            } else {
                let root = crate::imposter::bundle::LAMBDA_TASK_ROOT;
                validate::OutsidePolicy::Ship {
                    config_path: format!("{root}/config"),
                    floor: root.to_string(),
                    into: "the Lambda zip".to_string(),
                }
            },
        };
        let mut report = validate::validate_dir(&a.config_dir, &opts).map_err(Error::from)?;
        settle(&mut report, &a.findings)?;
        config_files = report.config_files.clone();
        outside = std::mem::take(&mut report.outside);
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
        mtime: args::source_date_epoch()?.unwrap_or(0),
        outside,
    })
    .with_context(|| format!("bundling {} for {}", a.config_dir.display(), a.target))?;
    if !a.findings.quiet {
        for line in
            crate::imposter::bundle::lambda::advice(generation, &a.config_dir, &config_files)
        {
            eprintln!("{line}");
        }
    }
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
        let usage = |v: &[&str]| match p(v) {
            Err(crate::error::Error::Usage(m)) => m,
            other => panic!("{v:?}: expected a usage error, got {other:?}"),
        };
        assert!(usage(&["all", "linux/amd64"]).contains("--platform all cannot be combined"));
        assert!(usage(&["linux"]).contains("expected OS/ARCH[/VARIANT]"));
    }
}
