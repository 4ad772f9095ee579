//! Which engine image a build starts from: the engine flavours, their repositories, and the
//! pinned default version. Nothing here looks anything up online, so an air-gapped build
//! behaves like any other.
use super::project::{ProjectFile, PROJECT_FILE};
use crate::error::{Error, Result};
use crate::oci::reference::ImageRef;

/// The engine release used when neither `--base`, `--engine-version` nor the project file says.
pub const DEFAULT_ENGINE_VERSION: &str = crate::default_engine_version!();

/// The engine image flavours (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// `outofcoffee/imposter`: openapi, rest and soap plugins.
    #[default]
    Core,
    /// `outofcoffee/imposter-all`: every plugin.
    All,
    /// `outofcoffee/imposter-distroless`: the core engine on a distroless base.
    Distroless,
}

impl Engine {
    /// The flavour for a `--engine` value or a project file's `engine:` (the Imposter CLI's
    /// names `docker` and `jvm` mean the core image).
    pub fn parse(s: &str) -> Option<Engine> {
        match s {
            "core" | "docker" | "jvm" | "imposter" => Some(Engine::Core),
            "all" | "imposter-all" => Some(Engine::All),
            "distroless" | "imposter-distroless" => Some(Engine::Distroless),
            _ => None,
        }
    }

    /// The image repository this flavour is published to.
    pub fn repository(self) -> &'static str {
        match self {
            Engine::Core => "docker.io/outofcoffee/imposter",
            Engine::All => "docker.io/outofcoffee/imposter-all",
            Engine::Distroless => "docker.io/outofcoffee/imposter-distroless",
        }
    }
}

/// The base image: `--base` wins; else `--engine`/`--engine-version`, then the project file's
/// `engine:`/`version:`, then the pinned default.
pub(crate) fn resolve_base(
    base: Option<&str>,
    engine: Option<&str>,
    version: Option<&str>,
    project: Option<&ProjectFile>,
) -> Result<ImageRef> {
    if let Some(b) = base {
        return ImageRef::parse(b).map_err(|e| Error::Usage(format!("--base: {e}")));
    }
    let (engine_name, from_file) = match engine {
        Some(e) => (Some(e.to_string()), false),
        None => (project.and_then(|y| y.engine.clone()), true),
    };
    let engine = match engine_name.as_deref() {
        None => Engine::Core,
        Some(e) => Engine::parse(e).ok_or_else(|| {
            let origin = if from_file {
                format!(" (from {PROJECT_FILE})")
            } else {
                String::new()
            };
            Error::Usage(format!(
                "engine {e:?}{origin} is not one of core, all, distroless"
            ))
        })?,
    };
    let version = version
        .map(str::to_string)
        .or_else(|| project.and_then(|y| y.version.clone()))
        .unwrap_or_else(|| DEFAULT_ENGINE_VERSION.to_string());
    ImageRef::parse(&format!("{}:{}", engine.repository(), version))
        .map_err(|e| Error::Usage(format!("--engine-version: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        base: Option<&str>,
        engine: Option<&str>,
        version: Option<&str>,
        y: Option<&ProjectFile>,
    ) -> String {
        resolve_base(base, engine, version, y).unwrap().to_string()
    }

    #[test]
    fn engine_selection_precedence() {
        assert_eq!(
            resolve(None, None, None, None),
            format!("docker.io/outofcoffee/imposter:{DEFAULT_ENGINE_VERSION}")
        );
        assert_eq!(
            resolve(None, Some("distroless"), Some("4.2.0"), None),
            "docker.io/outofcoffee/imposter-distroless:4.2.0"
        );
        let y = ProjectFile {
            version: Some("4.1.0".into()),
            engine: Some("all".into()),
            recursive: None,
        };
        assert_eq!(
            resolve(None, None, None, Some(&y)),
            "docker.io/outofcoffee/imposter-all:4.1.0"
        );
        // flags beat the file, --base beats everything
        assert_eq!(
            resolve(None, Some("core"), None, Some(&y)),
            "docker.io/outofcoffee/imposter:4.1.0"
        );
        assert_eq!(
            resolve(Some("oci:x:1"), Some("all"), Some("9"), Some(&y)),
            "oci:x:1"
        );
        let bad = ProjectFile {
            engine: Some("golang-nope".into()),
            ..Default::default()
        };
        let e = resolve_base(None, None, None, Some(&bad)).unwrap_err();
        assert!(
            e.is_usage() && e.to_string().contains(".imposter.yaml"),
            "{e}"
        );
        assert!(resolve_base(None, None, Some("bad:tag"), None).is_err());
    }
}
