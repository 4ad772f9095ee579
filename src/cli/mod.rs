//! Command-line interface: argument parsing, output (human / `--json`), exit codes.
pub mod progress;

use crate::build::{self, BuildRequest, Outcome};
use crate::error::Error;
use crate::imposter::validate::{self, ValidateOptions};
use crate::mutate::layer::{LayerOptions, WalkOptions, DEFAULT_CONFIG_PATH, DEFAULT_GZIP_LEVEL};
use crate::oci::image::Platform;
use crate::oci::reference::RegistryRef;
use crate::registry::RegistryOptions;
use crate::source::cache::Cache;
use anyhow::Context as _;
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (default engine: outofcoffee/imposter:",
    crate::default_engine_version!(),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "mockimg",
    version = LONG_VERSION,
    long_version = LONG_VERSION,
    about = "Bundle Imposter mock configuration into a ready-to-run container image, without Docker",
    after_help = "Examples:\n  mockimg build config/ --push registry.example.com/team/mocks:1.4\n  mockimg build config/ --base oci:engine-layout --output mocks.tar\n  mockimg push mocks.tar registry.internal/team/mocks:1.4\n  mockimg inspect registry.example.com/team/mocks:1.4\n  mockimg validate config/"
)]
pub struct Cli {
    /// Debug logs: -v one line per registry request (method, URL, status), -vv oci-client's too; RUST_LOG works as well.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Build an image from a config directory and a base engine image.
    #[command(
        after_help = "Examples:\n  mockimg build config/ --push registry.example.com/team/mocks:1.4 --push registry.example.com/team/mocks:latest\n  mockimg build config/ --engine distroless --engine-version 4.9.3 --output mocks.tar --tag team/mocks:1.4\n  mockimg build config/ --base oci-archive:imposter.tar --oci-layout ./layout --tag mocks:dev\n  SOURCE_DATE_EPOCH=1700000000 mockimg build config/ --push 127.0.0.1:5000/mocks:ci --json"
    )]
    Build(BuildArgs),
    /// Push an exported image (archive tar or OCI layout) to one or more registries.
    #[command(
        after_help = "Examples:\n  mockimg push mocks.tar registry.internal/team/mocks:1.4\n  mockimg push oci:./layout:dev registry.internal/team/mocks:dev"
    )]
    Push(PushArgs),
    /// Show platforms, layers and config summary of any image source.
    #[command(
        after_help = "Examples:\n  mockimg inspect registry.example.com/team/mocks:1.4\n  mockimg inspect oci-archive:mocks.tar --json"
    )]
    Inspect(InspectArgs),
    /// Check an Imposter config directory (build and bundle run this first).
    #[command(
        after_help = "Examples:\n  mockimg validate config/\n  mockimg validate . --recursive"
    )]
    Validate(ValidateArgs),
    /// Make an AWS Lambda zip: the engine's release archive plus the config under config/.
    #[command(
        after_help = "Examples:\n  mockimg bundle config/ --target awslambda --engine-zip imposter-awslambda.zip -o bundle.zip\n  mockimg bundle config/ --target awslambda --engine-archive imposter-go_linux_arm64.tar.gz -o bundle.zip --force"
    )]
    Bundle(BundleArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  mockimg completions bash > /etc/bash_completion.d/mockimg"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry reached over plain HTTP (loopback registries always are).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Retries for transient registry failures (5xx, 429, resets, timeouts).
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
}

impl RegistryArgs {
    fn options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure: self.insecure_registry.clone(),
            retries: self.retries,
            ..Default::default()
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Write the image digest to this file.
    #[arg(long, value_name = "PATH")]
    pub digest_file: Option<PathBuf>,
    /// Print one JSON object on stdout (logs go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Only errors on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Directory holding the Imposter config (*-config.yaml and the files they reference).
    #[arg(default_value = ".")]
    pub config_dir: PathBuf,
    /// Base engine image: registry reference, oci:DIR[:TAG], oci-archive:PATH[:TAG], docker-archive:PATH.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Engine flavour when --base is not given.
    #[arg(long, value_parser = ["core", "all", "distroless"])]
    pub engine: Option<String>,
    /// Engine version when --base is not given (never looked up online).
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,
    /// Push to this reference (repeatable; every tag gets the same digest).
    #[arg(long, value_name = "REF")]
    pub push: Vec<String>,
    /// Name recorded in --output/--oci-layout without pushing (repeatable).
    #[arg(long, value_name = "REF")]
    pub tag: Vec<String>,
    /// Write an archive tar (OCI layout + docker-archive manifest.json).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write (or add to) an OCI image layout directory.
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    /// Only these platforms of a multi-platform base (repeatable), e.g. linux/amd64.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Vec<String>,
    /// Where the config goes in the image.
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    pub config_path: String,
    /// Hide whatever the base has at --config-path (opaque whiteout).
    #[arg(long)]
    pub replace: bool,
    /// Leave out paths matching this gitignore-style pattern (repeatable); .imposterignore is honoured too.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Image config label (repeatable).
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Manifest annotation, OCI bases only (repeatable).
    #[arg(long, value_name = "K=V")]
    pub annotation: Vec<String>,
    /// Skip config validation.
    #[arg(long)]
    pub no_validate: bool,
    /// Validate config files in subdirectories too (the engine scans recursively).
    #[arg(long)]
    pub recursive: bool,
    /// Don't add org.opencontainers.image.source/revision/created from GitHub Actions / GitLab CI.
    #[arg(long)]
    pub no_ci_annotations: bool,
    /// gzip level for the config layer (1-9).
    #[arg(long, default_value_t = DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub compression_level: u32,
    /// Blob cache directory (default $MOCKIMG_CACHE_DIR or $XDG_CACHE_HOME/mockimg).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Don't use the blob cache.
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The exported image: archive tar path, oci:DIR[:TAG], oci-archive:, docker-archive: or a registry reference.
    pub source: String,
    /// Target references.
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Registry reference, oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH, or an archive path.
    pub reference: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct BundleArgs {
    #[arg(default_value = ".")]
    pub config_dir: PathBuf,
    /// Deployment target; only awslambda for now.
    #[arg(long, value_parser = ["awslambda"], default_value = "awslambda")]
    pub target: String,
    /// The JVM engine's imposter-awslambda.zip release asset (a local file).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "engine_archive",
        required_unless_present = "engine_archive"
    )]
    pub engine_zip: Option<PathBuf>,
    /// The Go engine's imposter-go_linux_ARCH.tar.gz release asset (a local file).
    #[arg(long, value_name = "PATH")]
    pub engine_archive: Option<PathBuf>,
    /// Output zip.
    #[arg(short = 'o', long, value_name = "PATH", default_value = "bundle.zip")]
    pub output: PathBuf,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub no_validate: bool,
    #[arg(long)]
    pub recursive: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[arg(default_value = ".")]
    pub config_dir: PathBuf,
    #[arg(long)]
    pub recursive: bool,
    #[arg(long)]
    pub json: bool,
}

/// Exit code for a failure: 2 for usage errors, 130 for Ctrl-C, 1 for everything else.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<Error>() {
        Some(err) if err.is_usage() => 2,
        Some(Error::Interrupted) => 130,
        _ => 1,
    }
}

fn parse_kv(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Usage(format!("--{flag} {s:?}: expected KEY=VALUE"))),
        })
        .collect()
}

fn registry_refs(flag: &str, items: &[String]) -> Result<Vec<RegistryRef>, Error> {
    items
        .iter()
        .map(|s| RegistryRef::parse(s).map_err(|e| Error::Usage(format!("--{flag}: {e}"))))
        .collect()
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

/// Prints warnings, and errors when there are several; a lone error is told by the final
/// `error:` line instead, so a simple mistake reads as one line.
fn print_findings(report: &validate::Report) {
    let lone_error = report.errors() == 1;
    for f in &report.findings {
        if !(lone_error && f.severity == validate::Severity::Error) {
            eprintln!("{f}");
        }
    }
}

fn validation_error(report: &validate::Report) -> Error {
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

/// Runs validation and fails on errors; warnings are printed and tolerated.
fn validate_or_fail(dir: &std::path::Path, recursive: bool) -> anyhow::Result<()> {
    let report = validate::validate_dir(dir, &ValidateOptions { recursive })
        .map_err(|e| Error::ConfigDir(e.to_string()))?;
    print_findings(&report);
    if !report.is_ok() {
        return Err(validation_error(&report).into());
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
    report(
        &outcome,
        &a.out,
        started,
        a.output.as_deref(),
        a.oci_layout.as_deref(),
    )
}

/// A registry error already names the registry, repository and what was being done, so the
/// job's own context would only make the line longer.
fn job_error(e: Error, context: impl FnOnce() -> String) -> anyhow::Error {
    match e {
        Error::Registry { .. } => e.into(),
        other => anyhow::Error::new(other).context(context()),
    }
}

/// Cancelling the job drops its temp files, so Ctrl-C leaves nothing half-written.
async fn interruptible<T>(
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    }
}

fn report(
    o: &Outcome,
    out: &OutputArgs,
    started: std::time::Instant,
    output: Option<&std::path::Path>,
    layout: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let Some(f) = &out.digest_file {
        crate::sink::atomic::write(
            f,
            format!("{}\n", o.digest).as_bytes(),
            crate::sink::atomic::READABLE,
        )?;
    }
    if out.json {
        println!("{}", serde_json::to_string(o)?);
    } else {
        for r in &o.references {
            println!("{r}");
        }
        if o.references.is_empty() {
            println!("{}", o.digest);
        }
    }
    crate::cli::progress::finish();
    if !out.quiet {
        eprintln!("{}", summary(o, output, layout, started.elapsed()));
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The last line a person reads: `pushed 2 platforms, 1 new layer (12 KB), 3 blobs uploaded
/// (14 KB), 14 blobs mounted, 0.4 s`. Zero counts are left out.
fn summary(
    o: &Outcome,
    output: Option<&std::path::Path>,
    layout: Option<&std::path::Path>,
    elapsed: std::time::Duration,
) -> String {
    use crate::cli::progress::human_bytes;
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
    parts.push(format!("{:.1} s", elapsed.as_secs_f64()));
    parts.join(", ")
}

async fn run_push(a: PushArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let src = crate::source::parse_input(&a.source)?;
    let targets = registry_refs("target", &a.targets)?;
    let o = interruptible(build::push_existing(&src, &targets, &a.registry.options()))
        .await
        .map_err(|e| job_error(e, || format!("pushing {src}")))?;
    report(&o, &a.out, started, None, None)
}

async fn run_inspect(a: InspectArgs) -> anyhow::Result<()> {
    let r = crate::source::parse_input(&a.reference)?;
    let i = build::inspect(&r, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("inspecting {r}")))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&i)?);
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
    Ok(())
}

fn run_validate(a: ValidateArgs) -> anyhow::Result<()> {
    let y =
        validate::read_imposter_yaml(&a.config_dir).map_err(|e| Error::ConfigDir(e.to_string()))?;
    let recursive = a.recursive || y.and_then(|y| y.recursive).unwrap_or(false);
    let report = validate::validate_dir(&a.config_dir, &ValidateOptions { recursive })
        .map_err(|e| Error::ConfigDir(e.to_string()))?;
    if a.json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| serde_json::json!({"severity": if f.severity == validate::Severity::Error {"error"} else {"warning"}, "file": f.file, "key": f.key, "message": f.message}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"ok": report.is_ok(), "config_files": report.config_files, "findings": findings})
        );
    } else {
        print_findings(&report);
        eprintln!(
            "{}: {} config file(s), {} error(s), {} warning(s)",
            a.config_dir.display(),
            report.config_files.len(),
            report.errors(),
            report.warnings()
        );
    }
    if !report.is_ok() {
        return Err(validation_error(&report).into());
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
    if a.json {
        println!(
            "{}",
            serde_json::json!({"output": s.output, "entries": s.entries, "config_files": s.config_files, "size": s.size, "sha256": s.sha256})
        );
    } else {
        println!("{}", s.output.display());
        eprintln!(
            "wrote {}: {} entries ({} config files), {}, sha256 {}",
            s.output.display(),
            s.entries,
            s.config_files,
            crate::cli::progress::human_bytes(s.size),
            s.sha256
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::LayerSummary;
    use crate::registry::PushStats;
    use std::time::Duration;

    #[test]
    fn version_names_the_default_engine() {
        assert!(LONG_VERSION.contains(&format!(
            "imposter:{}",
            crate::build::DEFAULT_ENGINE_VERSION
        )));
    }

    fn outcome(push: Option<PushStats>) -> Outcome {
        Outcome {
            digest: "sha256:00".into(),
            references: vec![],
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            layer: Some(LayerSummary {
                digest: "sha256:01".into(),
                diff_id: "sha256:02".into(),
                size: 12 * 1024,
                files: 3,
            }),
            push,
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
