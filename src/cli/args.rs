//! The command line as clap sees it: every subcommand, flag and help text, and the small parsers
//! that turn repeatable `K=V` / reference flags into typed values.
pub(super) use crate::cli::groups::{
    AttachArgs, CheckArgs, EngineArgs, ExcludeArgs, FindingsArgs, MountFromArgs, OutputArgs,
};
use crate::error::Error;
use crate::mutate::layer::{DEFAULT_CONFIG_PATH, DEFAULT_GZIP_LEVEL};
use crate::oci::reference::RegistryRef;
use crate::registry::RegistryOptions;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(crate) const LONG_VERSION: &str = concat!(
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
/// The whole command line.
pub struct Cli {
    /// Debug logs: -v one line per registry request (method, URL, status) and cache and TLS decisions, -vv also how long each request took to answer; RUST_LOG works as well.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
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
    /// Check registry credentials and store them where builds and pushes find them.
    #[command(
        after_help = "Examples:\n  echo \"$GITHUB_TOKEN\" | mockimg login ghcr.io -u \"$GITHUB_ACTOR\" --password-stdin\n  mockimg login registry.internal:5000 -u ci --password-stdin < token.txt\n\nCredentials go to $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json (mode 0600)."
    )]
    Login(LoginArgs),
    /// Remove the stored credentials for a registry.
    #[command(after_help = "Examples:\n  mockimg logout ghcr.io")]
    Logout(LogoutArgs),
    /// Write a cosign-compatible signing key pair (cosign.key encrypted with COSIGN_PASSWORD, cosign.pub).
    #[command(
        after_help = "Examples:\n  COSIGN_PASSWORD=... mockimg generate-key\n  COSIGN_PASSWORD=... mockimg generate-key --output-prefix keys/mocks --force"
    )]
    GenerateKey(crate::cli::sign::GenerateKeyArgs),
    /// Sync a config directory to a bucket: s3:// for the JVM engine's S3 loader
    /// (IMPOSTER_CONFIG_DIR=s3://…); gs://, az:// and file:// for a bucket or share mounted into
    /// the engine as a volume (IMPOSTER_CONFIG_DIR=/mount/path), which no engine reads itself.
    #[command(
        after_help = "Examples:\n  mockimg publish config/ --to s3://team-mocks/petstore\n  mockimg publish config/ --to s3://team-mocks/petstore --lambda-function petstore-mock\n  mockimg publish . --to gs://team-mocks/petstore --delete --dry-run\n  mockimg publish . --to file:///srv/mocks --json\n\nCredentials come from the environment: AWS_* (and web identity, instance role), GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*. AWS_ENDPOINT_URL_S3 points at an S3-compatible store."
    )]
    Publish(crate::cli::publish::PublishArgs),
    /// Move images mockimg built onto another engine base (a patch release), every platform,
    /// without their config directory: the result is what a fresh build on that base gives.
    #[command(
        after_help = "Examples:\n  mockimg rebase registry.example.com/team/mocks:1.4 --latest-patch --push registry.example.com/team/mocks:1.4\n  mockimg rebase registry.example.com/team/mocks:1.4 --engine-version 4.9.10 --dry-run\n  mockimg rebase oci-archive:mocks.tar --base registry.example.com/mirror/imposter:4.9.10 --output mocks-patched.tar"
    )]
    Rebase(RebaseArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  mockimg completions bash > /etc/bash_completion.d/mockimg"
    )]
    Completions {
        /// The shell to print completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry whose TLS certificate is not checked (plain HTTP if it does not speak TLS).
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        env = "MOCKIMG_INSECURE_REGISTRY",
        value_delimiter = ','
    )]
    pub insecure_registry: Vec<String>,
    /// CA certificates (*.crt) and a client pair (*.cert + *.key) for registries, in place of
    /// /etc/containers/certs.d/HOST[:PORT] and /etc/docker/certs.d/HOST[:PORT].
    #[arg(long, value_name = "DIR", env = "MOCKIMG_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Retries for transient registry failures (5xx, 429, resets, timeouts).
    #[arg(long, default_value_t = 4, env = "MOCKIMG_RETRIES")]
    pub retries: u32,
    /// Registry requests in flight at once per step (blobs, manifests, configs).
    #[arg(long, value_name = "N", default_value_t = 4, env = "MOCKIMG_JOBS",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

impl RegistryArgs {
    /// The registry client options these flags select.
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure: self.insecure_registry.clone(),
            cert_dir: self.cert_dir.clone(),
            retries: self.retries,
            concurrency: usize::from(self.jobs),
            ..super::env::registry_options()
        }
    }
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Directory holding the Imposter config (*-config.yaml and the files they reference).
    #[arg(default_value = ".")]
    pub config_dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Environment variable in the image (repeatable; over the project file's `env:` and the
    /// base's value).
    #[arg(long, value_name = "K=V")]
    pub env: Vec<String>,
    /// Treat warnings (validation, moving base tags, deprecated names) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Push to this reference (repeatable; every tag gets the same digest).
    #[arg(long, value_name = "REF")]
    pub push: Vec<String>,
    /// Name recorded in --output/--oci-layout without pushing (repeatable).
    #[arg(long, value_name = "REF")]
    pub tag: Vec<String>,
    /// Every --push (true) and --tag (false) value in command-line order (filled by
    /// [`crate::cli::parse`]: clap's derive keeps each flag's values apart).
    #[arg(skip)]
    pub names_in_order: Vec<(bool, String)>,
    /// Media types to write: oci or docker (default: oci for --output/--oci-layout, the base's
    /// for --push).
    #[arg(long, value_name = "FAMILY", value_parser = ["oci", "docker"])]
    pub format: Option<String>,
    /// Write an archive tar (OCI layout + docker-archive manifest.json).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write (or add to) an OCI image layout directory.
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    /// Only these platforms of a multi-platform base (repeatable or comma-separated, e.g.
    /// linux/amd64,linux/arm64); `all` (the default) keeps every platform.
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT]",
        env = "MOCKIMG_PLATFORM",
        value_delimiter = ','
    )]
    pub platform: Vec<String>,
    /// Where the config goes in the image.
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    pub config_path: String,
    /// Hide whatever the base has at --config-path (opaque whiteout).
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub exclude: ExcludeArgs,
    /// Image config label (repeatable).
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Manifest annotation, OCI bases only (repeatable).
    #[arg(long, value_name = "K=V")]
    pub annotation: Vec<String>,
    #[command(flatten)]
    pub check: CheckArgs,
    /// Don't add org.opencontainers.image.source/revision/created from GitHub Actions / GitLab CI.
    #[arg(long)]
    pub no_ci_annotations: bool,
    #[command(flatten)]
    pub attach: AttachArgs,
    /// gzip level for the config layer (1-9).
    #[arg(long, default_value_t = DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub compression_level: u32,
    /// Blob cache directory (default $MOCKIMG_CACHE_DIR or $XDG_CACHE_HOME/mockimg).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Don't use the blob cache (nor the record of where blobs were seen, kept beside it).
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub mount: MountFromArgs,
    #[command(flatten)]
    pub sign: crate::cli::sign::SignArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("new_base")
        .required(true)
        .args(["base", "engine_version", "latest_patch"])
))]
#[command(mut_arg("mount_from", |a| a.help(
    "Repository on the target registry that holds the new base's layers, to mount them from \
     (repeatable; REPO or HOST/REPO)"
)))]
pub struct RebaseArgs {
    /// The image to move: registry reference, oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH.
    pub image: String,
    /// The new base image.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// The old base's repository (its engine variant) at this release.
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,
    /// The highest X.Y.Z tag of the old base's repository with the same X.Y (never a moving tag).
    #[arg(long)]
    pub latest_patch: bool,
    /// The base the image was built on, for images that do not record it (Docker media types).
    #[arg(long, value_name = "REF")]
    pub old_base: Option<String>,
    /// Push the result here (repeatable; often the image's own tag).
    #[arg(long, value_name = "REF")]
    pub push: Vec<String>,
    /// Write the result as an archive tar (OCI layout + docker-archive manifest.json).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write the result into an OCI image layout directory.
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    #[command(flatten)]
    pub mount: MountFromArgs,
    #[command(flatten)]
    pub attach: AttachArgs,
    #[command(flatten)]
    pub sign: crate::cli::sign::SignArgs,
    /// Print the old base, the new base and what would be pushed; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout: image, old_base, new_base, digest, references.
    #[arg(long)]
    pub json: bool,
    /// Only errors on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
#[command(mut_arg("mount_from", |a| a.help(
    "Repository on the target registry that holds the image's base layers, to mount them \
     from (repeatable; REPO or HOST/REPO)"
)))]
#[command(mut_arg("no_sbom", |a| a.help(
    "Don't carry the SPDX SBOM an archive or layout holds beside the image"
)))]
#[command(mut_arg("no_provenance", |a| a.help(
    "Don't carry the SLSA provenance an archive or layout holds beside the image"
)))]
pub struct PushArgs {
    /// The exported image: archive tar path, oci:DIR[:TAG], oci-archive:, docker-archive: or a registry reference.
    pub source: String,
    /// Target references.
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub attach: AttachArgs,
    #[command(flatten)]
    pub mount: MountFromArgs,
    #[command(flatten)]
    pub sign: crate::cli::sign::SignArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Registry reference, oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH, or an archive path.
    pub reference: String,
    /// Print the inspection as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
#[command(mut_arg("no_outside_files", |a| a.help(
    "Refuse referenced files outside the config directory instead of putting them at the zip's \
     root (/var/task), where the engine reads them"
)))]
#[command(mut_arg("recursive", |a| a.help(
    "Validate config files in subdirectories too (the engine scans recursively)"
)))]
#[command(mut_arg("strict", |a| a.help("Treat warnings as errors")))]
#[command(mut_arg("exclude", |a| a.help(
    "Leave out of the zip paths matching this gitignore-style pattern (repeatable)"
)))]
pub struct BundleArgs {
    /// Directory holding the Imposter config.
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
    #[command(flatten)]
    pub exclude: ExcludeArgs,
    #[command(flatten)]
    pub check: CheckArgs,
    /// Print what was written as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub findings: FindingsArgs,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host, e.g. ghcr.io or registry.internal:5000.
    pub host: String,
    /// Username.
    #[arg(short, long)]
    pub username: String,
    /// Read the password (or token) from standard input, so it stays out of the process list.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host whose stored credentials to remove.
    pub host: String,
}

#[derive(Args, Debug)]
#[command(mut_arg("base", |a| a.help("Check against this base image's engine (as build's --base)")))]
#[command(mut_arg("engine", |a| a.help("Check against this engine (as build's --engine)")))]
#[command(mut_arg("engine_version", |a| a.help(
    "Check against this engine version (as build's --engine-version)"
)))]
#[command(mut_arg("exclude", |a| a.help("Check as if built with this --exclude pattern (repeatable)")))]
pub struct ValidateArgs {
    /// Directory holding the Imposter config.
    #[arg(default_value = ".")]
    pub config_dir: PathBuf,
    /// Check config files in subdirectories too (the engine scans recursively).
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub exclude: ExcludeArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Environment variable the image will have (as build's --env).
    #[arg(long, value_name = "K=V")]
    pub env: Vec<String>,
    /// Refuse referenced files outside the config directory (as build's --no-outside-files).
    #[arg(long)]
    pub no_outside_files: bool,
    /// Print findings as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub findings: FindingsArgs,
}

/// `K=V` items of a repeatable flag, as a sorted map.
pub(crate) fn parse_kv(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Usage(format!("--{flag} {s:?}: expected KEY=VALUE"))),
        })
        .collect()
}

/// `--env K=V` items: the name must be a variable name.
pub(crate) fn parse_env(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let env = parse_kv("env", items)?;
    match env
        .keys()
        .find(|k| !crate::imposter::project::valid_env_name(k))
    {
        Some(k) => Err(Error::Usage(format!("--env {k:?}: not a variable name"))),
        None => Ok(env),
    }
}

pub(crate) fn registry_refs(flag: &str, items: &[String]) -> Result<Vec<RegistryRef>, Error> {
    items
        .iter()
        .map(|s| RegistryRef::parse(s).map_err(|e| Error::Usage(format!("--{flag}: {e}"))))
        .collect()
}
