//! Which engine image a build starts from, and what that engine is like: one table of engine
//! facts (repository, generation, user, config dir, built-in plugins) that build, validate and
//! bundle all read. Nothing here looks anything up online, so an air-gapped build behaves like
//! any other.
use super::project::ProjectFile;
use crate::error::{Error, Result};
use crate::oci::reference::ImageRef;

/// The JVM engine release used when neither `--base`, `--engine-version` nor the project file
/// says.
pub const DEFAULT_ENGINE_VERSION: &str = crate::default_engine_version!();

/// The Go engine release used for `--engine golang` (or `go`, `native`) without a version. The
/// Go images are pushed as `VERSION-beta` and `5-beta` only
/// (imposter-go@v5.21.3:.github/workflows/ci.yml:347-348): there is no `5.21.3` tag.
pub(crate) const DEFAULT_GO_ENGINE_VERSION: &str = "5.21.3-beta";

/// The suffix every Go image tag carries (imposter-go@v5.21.3:.github/workflows/ci.yml:348).
pub(crate) const GO_TAG_SUFFIX: &str = "-beta";

/// Where the engine images read their config unless told otherwise.
pub(crate) const ENGINE_CONFIG_DIR: &str = "/opt/imposter/config";

/// The two engine implementations, which share image names but not plugins or layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The JVM engine, releases 4.x and earlier.
    Jvm,
    /// The Go engine, releases 5.x.
    Go,
}

/// The image flavour: which repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// `outofcoffee/imposter`.
    #[default]
    Core,
    /// `outofcoffee/imposter-all`.
    All,
    /// `outofcoffee/imposter-distroless` (JVM only).
    Distroless,
}

/// What one engine image is like.
#[derive(Debug, PartialEq, Eq)]
pub struct EngineFacts {
    /// Short name used in messages, e.g. `core (JVM)`.
    pub label: &'static str,
    /// The Imposter CLI's name for it, suggested in hints.
    pub cli_name: &'static str,
    /// Which repository.
    pub flavour: Flavour,
    /// Which implementation.
    pub generation: Generation,
    /// The image repository.
    pub repository: &'static str,
    /// The image config's `User` (empty: root).
    pub user: &'static str,
    /// Where the image reads config by default.
    pub config_dir: &'static str,
    /// Plugins in the image, by their short names.
    pub plugins: &'static [&'static str],
}

impl EngineFacts {
    /// Whether `plugin` (a short name) is in this image.
    pub fn has_plugin(&self, plugin: &str) -> bool {
        self.plugins.contains(&plugin)
    }

    /// The release used when no version is given.
    pub fn pinned_version(&self) -> &'static str {
        match self.generation {
            Generation::Jvm => DEFAULT_ENGINE_VERSION,
            Generation::Go => DEFAULT_GO_ENGINE_VERSION,
        }
    }

    /// The flags that select this engine, for hints: `--engine docker-all`, plus the version
    /// when the name alone would pick the other generation.
    pub fn flags(&self) -> String {
        match (self.generation, self.cli_name) {
            (Generation::Go, "golang") | (Generation::Jvm, _) => {
                format!("--engine {}", self.cli_name)
            }
            (Generation::Go, name) => {
                format!("--engine {name} --engine-version {DEFAULT_GO_ENGINE_VERSION}")
            }
        }
    }
}

// Plugins by the short names a config's `plugin:` or the project file's `plugins:` use
// (`@PluginInfo("…")` in the JVM engine, the `case` labels and external plugin directories in
// the Go engine). Every fact is cited in docs/engine-facts.md, "Plugins per image".
//
// Every JVM image carries the server's scripting and store modules
// (imposter-jvm-engine@v4.9.3:server/build.gradle:13-19: groovy, which has no plugin name, js-graal
// and store-inmem) and the core mock plugins (distro/core/build.gradle:15-17). The distroless
// image copies distro/core's libraries (distro/distroless/Dockerfile:17).
const JVM_CORE_PLUGINS: &[&str] = &[
    "openapi",
    "rest",
    "soap",
    "js-graal",
    "js-graal-compat",
    "store-inmem",
];
/// imposter-jvm-engine@v4.9.3:distro/all/build.gradle:18-36: hbase is commented out (:25).
const JVM_ALL_PLUGINS: &[&str] = &[
    "openapi",
    "rest",
    "soap",
    "js-graal",
    "js-graal-compat",
    "store-inmem",
    "sfdc",
    "wiremock",
    "store-dynamodb",
    "store-redis",
    "store-graphql",
    "fake-data",
];
/// imposter-go@v5.21.3:plugin/plugin.go:52-59.
const GO_CORE_PLUGINS: &[&str] = &["openapi", "rest", "soap", "websocket"];
/// The `-all` image builds every directory of external/plugins into IMPOSTER_PLUGIN_DIR and
/// sets IMPOSTER_EXTERNAL_PLUGINS=true (imposter-go@v5.21.3:distro/all/Dockerfile:20-27,40).
const GO_ALL_PLUGINS: &[&str] = &[
    "openapi",
    "rest",
    "soap",
    "websocket",
    "grpc",
    "oidc-server",
    "swaggerui",
    "wsdlweb",
    "fake-data",
];

/// Plugins Imposter has that no engine image ships: installed into `IMPOSTER_PLUGIN_DIR` by
/// hand. hbase (imposter-jvm-engine@v4.9.3:mock/hbase/src/main/java/io/gatehill/imposter/plugin/hbase/HBasePluginImpl.kt:83,
/// commented out of distro/all/build.gradle:25) and js-nashorn
/// (scripting/nashorn/src/main/java/io/gatehill/imposter/scripting/nashorn/service/NashornScriptServiceImpl.kt:77,
/// in no distro's build.gradle).
pub(crate) const PLUGINS_IN_NO_IMAGE: &[&str] = &["hbase", "js-nashorn"];

/// The Go engine's stores are built in and chosen by `IMPOSTER_STORE_DRIVER`
/// (imposter-go@v5.21.3:internal/store/store.go:78-85), not plugins.
pub(crate) const GO_STORE_DRIVERS: &[&str] = &["store-dynamodb", "store-redis"];

/// Every plugin name Imposter knows: the images' and [`PLUGINS_IN_NO_IMAGE`].
pub(crate) fn known_plugins() -> impl Iterator<Item = &'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for name in ENGINES
        .iter()
        .flat_map(|f| f.plugins.iter().copied())
        .chain(PLUGINS_IN_NO_IMAGE.iter().copied())
    {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen.into_iter()
}

/// Every engine image mockimg knows, the first row being the default.
pub const ENGINES: [EngineFacts; 5] = [
    EngineFacts {
        label: "core (JVM)",
        cli_name: "docker",
        flavour: Flavour::Core,
        generation: Generation::Jvm,
        repository: "docker.io/outofcoffee/imposter",
        // imposter-jvm-engine@v4.9.3:distro/base/Dockerfile:5-6,35 (uid 2048).
        user: "imposter",
        config_dir: ENGINE_CONFIG_DIR,
        plugins: JVM_CORE_PLUGINS,
    },
    EngineFacts {
        label: "all (JVM)",
        cli_name: "docker-all",
        flavour: Flavour::All,
        generation: Generation::Jvm,
        repository: "docker.io/outofcoffee/imposter-all",
        user: "imposter",
        config_dir: ENGINE_CONFIG_DIR,
        plugins: JVM_ALL_PLUGINS,
    },
    EngineFacts {
        label: "distroless (JVM)",
        cli_name: "docker-distroless",
        flavour: Flavour::Distroless,
        generation: Generation::Jvm,
        repository: "docker.io/outofcoffee/imposter-distroless",
        // imposter-jvm-engine@v4.9.3:distro/distroless/Dockerfile:29 (uid 65532).
        user: "nonroot",
        config_dir: ENGINE_CONFIG_DIR,
        plugins: JVM_CORE_PLUGINS,
    },
    EngineFacts {
        label: "core (Go)",
        cli_name: "golang",
        flavour: Flavour::Core,
        generation: Generation::Go,
        repository: "docker.io/outofcoffee/imposter",
        // `FROM scratch` with no USER: root (imposter-go@v5.21.3:distro/core/Dockerfile:17-25).
        user: "",
        config_dir: ENGINE_CONFIG_DIR,
        plugins: GO_CORE_PLUGINS,
    },
    EngineFacts {
        label: "all (Go)",
        cli_name: "docker-all",
        flavour: Flavour::All,
        generation: Generation::Go,
        repository: "docker.io/outofcoffee/imposter-all",
        user: "",
        config_dir: ENGINE_CONFIG_DIR,
        plugins: GO_ALL_PLUGINS,
    },
];

/// Engine names accepted by `--engine` and the project file's `engine:`: the Imposter CLI's
/// and mockimg's own.
pub(crate) const ENGINE_NAMES: [&str; 12] = [
    "docker",
    "docker-all",
    "docker-distroless",
    "jvm",
    "unpacked",
    "native",
    "golang",
    "core",
    "all",
    "distroless",
    "go",
    "awslambda",
];

/// The flavour an engine name picks, and the generation when the name fixes it.
fn parse_name(name: &str) -> Option<(Flavour, Option<Generation>)> {
    Some(match name {
        "docker" | "core" | "imposter" => (Flavour::Core, None),
        // The CLI runs these outside containers; the image that runs the same engine is core.
        "jvm" | "unpacked" => (Flavour::Core, Some(Generation::Jvm)),
        "docker-all" | "all" | "imposter-all" => (Flavour::All, None),
        "docker-distroless" | "distroless" | "imposter-distroless" => {
            (Flavour::Distroless, Some(Generation::Jvm))
        }
        "golang" | "native" | "go" => (Flavour::Core, Some(Generation::Go)),
        // The CLI's Lambda engine (imposter-cli@main:internal/engine/builder.go:33): the config
        // is the same; the deployment is `mockimg bundle`.
        "awslambda" => (Flavour::Core, None),
        _ => return None,
    })
}

/// What a name the Imposter CLI runs outside a container means for an image.
fn name_note(name: &str) -> Option<String> {
    match name {
        // `golang` is the CLI's old alias of `native`, the downloaded imposter-go binary
        // (imposter-cli@main:internal/engine/builder.go:39,46-48).
        "golang" | "native" => Some(format!(
            "engine {name}: the Imposter CLI runs the downloaded imposter-go binary; the image \
             that runs the same engine is the Go engine's (outofcoffee/imposter:VERSION-beta)"
        )),
        "awslambda" => Some(
            "engine awslambda: the Imposter CLI deploys to AWS Lambda — `mockimg bundle` makes \
             the Lambda zip; an image of this config uses the core image"
                .to_string(),
        ),
        _ => None,
    }
}

/// The generation a release belongs to: 5.x and later is Go. `None` for `latest` and other
/// tags that are not versions.
pub(crate) fn generation_of_version(version: &str) -> Option<Generation> {
    let major: u32 = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .next()?
        .parse()
        .ok()?;
    Some(if major >= 5 {
        Generation::Go
    } else {
        Generation::Jvm
    })
}

/// The facts row for a flavour and generation.
pub(crate) fn facts(flavour: Flavour, generation: Generation) -> Option<&'static EngineFacts> {
    ENGINES
        .iter()
        .find(|f| f.flavour == flavour && f.generation == generation)
}

/// The engine flags as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineFlags {
    /// `--base`.
    pub base: Option<String>,
    /// `--engine`.
    pub engine: Option<String>,
    /// `--engine-version`.
    pub version: Option<String>,
}

/// The engine a build runs on: its facts and the base image reference.
#[derive(Debug, Clone)]
pub struct EngineChoice {
    /// What the engine is like.
    pub facts: &'static EngineFacts,
    /// The base image.
    pub base: ImageRef,
    /// The tag moves (`latest`, `5-beta`, or none): the build is neither reproducible nor
    /// air-gap-safe.
    pub floating: bool,
    /// What the choice means beyond the base, said on stderr: how a version became the tag
    /// that exists (`5.21.3` → `5.21.3-beta`), and what a CLI-only engine name maps to.
    pub notes: Vec<String>,
}

/// Picks the engine and base: flags beat the project file, which beats the pinned default;
/// `--base` names the image outright, and the engine name (or the base's repository and tag)
/// then only says what engine it holds.
pub(crate) fn choose(flags: &EngineFlags, project: Option<&ProjectFile>) -> Result<EngineChoice> {
    let (name, origin) = match (&flags.engine, project.and_then(|p| p.engine.as_ref())) {
        (Some(e), _) => (Some(e.as_str()), "--engine"),
        (None, Some(e)) => (Some(e.as_str()), "the project file's `engine:`"),
        (None, None) => (None, ""),
    };
    let parsed = match name {
        None => None,
        Some(n) => Some(parse_name(n).ok_or_else(|| {
            Error::Usage(format!(
                "engine {n:?} (from {origin}) is not one of {}",
                ENGINE_NAMES.join(", ")
            ))
        })?),
    };
    if let Some(b) = &flags.base {
        let base = ImageRef::parse(b).map_err(|e| Error::Usage(format!("--base: {e}")))?;
        let (repo, tag) = match &base {
            ImageRef::Registry(r) => (r.repository.as_str(), r.tag.as_deref()),
            ImageRef::OciLayout { tag, .. } | ImageRef::OciArchive { tag, .. } => {
                ("", tag.as_deref())
            }
            ImageRef::DockerArchive { .. } => ("", None),
        };
        let flavour = parsed
            .map(|p| p.0)
            .unwrap_or(if repo.ends_with("imposter-all") {
                Flavour::All
            } else if repo.ends_with("imposter-distroless") {
                Flavour::Distroless
            } else {
                Flavour::Core
            });
        let generation = tag
            .and_then(generation_of_version)
            .or(parsed.and_then(|p| p.1))
            .unwrap_or(Generation::Jvm);
        let facts = facts(flavour, generation)
            .or_else(|| facts(flavour, Generation::Jvm))
            .expect("every flavour has a JVM row");
        return Ok(EngineChoice {
            facts,
            floating: is_moving_tag(&base),
            base,
            notes: Vec::new(),
        });
    }
    let (flavour, forced) = parsed.unwrap_or((Flavour::Core, None));
    let version = flags
        .version
        .clone()
        .or_else(|| project.and_then(|y| y.version.clone()));
    let generation = match (forced, version.as_deref().and_then(generation_of_version)) {
        (Some(f), Some(v)) if f != v => {
            let (n, v) = (name.unwrap_or_default(), version.unwrap_or_default());
            let hint = match f {
                Generation::Go => "the Go engine is 5.x: pick a 5.x version or --engine docker",
                Generation::Jvm => "the Go engine (5.x) is --engine golang or docker-all",
            };
            return Err(Error::Usage(format!(
                "engine {n:?} cannot run version {v} — {hint}"
            )));
        }
        (Some(f), _) => f,
        (None, Some(v)) => v,
        (None, None) => Generation::Jvm,
    };
    let facts = facts(flavour, generation).ok_or_else(|| {
        Error::Usage(format!(
            "engine {:?} has no {} release ({}) — use --engine docker or docker-all",
            name.unwrap_or_default(),
            version.as_deref().unwrap_or_default(),
            "the Go engine 5.x is published as imposter and imposter-all only"
        ))
    })?;
    let mut notes = name.and_then(name_note).into_iter().collect::<Vec<_>>();
    let (tag, note) = match version {
        None => (facts.pinned_version().to_string(), None),
        Some(v) => match go_tag(facts.generation, &v) {
            Some(tag) => {
                let note = format!(
                    "version {v}: the Go engine's images are tagged {tag} (there is no {v} tag), \
                     so {}:{tag} is used",
                    facts.repository
                );
                (tag, Some(note))
            }
            None => (v, None),
        },
    };
    let base = ImageRef::parse(&format!("{}:{}", facts.repository, tag))
        .map_err(|e| Error::Usage(format!("engine version: {e}")))?;
    notes.extend(note);
    Ok(EngineChoice {
        facts,
        floating: is_moving_tag(&base),
        base,
        notes,
    })
}

/// The tag a Go engine version is published under: the Go images exist only as
/// `VERSION-beta` and `5-beta` (imposter-go@v5.21.3:.github/workflows/ci.yml:347-348), so a bare
/// version (`5.21.3`, `v5.21.3`, `5`) gains the suffix. `None` when the version is used as given.
fn go_tag(generation: Generation, version: &str) -> Option<String> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let plain = !bare.is_empty()
        && bare
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (generation == Generation::Go && plain).then(|| format!("{bare}{GO_TAG_SUFFIX}"))
}

/// A registry reference whose tag moves: `latest`, a major-version tag such as the Go engine's
/// `5-beta` (re-pushed by every 5.x release, imposter-go@v5.21.3:.github/workflows/ci.yml:347),
/// or no tag and no digest. A local copy does not move, whatever its tag says.
pub(crate) fn is_moving_tag(base: &ImageRef) -> bool {
    let moving = |t: &str| {
        let t = t.strip_suffix(GO_TAG_SUFFIX).unwrap_or(t);
        t == "latest" || t == "beta" || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(base, ImageRef::Registry(r)
        if r.digest.is_none() && r.tag.as_deref().is_none_or(moving))
}

/// The base image alone (see [`choose`]); the tests' shorthand.
#[cfg(test)]
pub(crate) fn resolve_base(
    base: Option<&str>,
    engine: Option<&str>,
    version: Option<&str>,
    project: Option<&ProjectFile>,
) -> Result<ImageRef> {
    let flags = EngineFlags {
        base: base.map(str::to_string),
        engine: engine.map(str::to_string),
        version: version.map(str::to_string),
    };
    choose(&flags, project).map(|c| c.base)
}

#[cfg(test)]
mod tests;
