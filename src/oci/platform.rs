//! Platforms (`os/arch[/variant]`): parsing, matching a request, the host's.
use crate::error::{Error, Result};
use serde_json::Value;
use std::fmt;

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, … (OCI spelling).
    pub architecture: String,
    /// `v8`, `v7`, … when the architecture has variants.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `OS/ARCH[/VARIANT]`; a malformed value is a usage error naming `--platform`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |x: &&str| !x.is_empty();
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(Error::Usage(format!(
                "--platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
            ))),
        }
    }

    /// The platform object of an index entry or an image config.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Platform {
            os: v.get("os")?.as_str()?.to_string(),
            architecture: v.get("architecture")?.as_str()?.to_string(),
            variant: v.get("variant").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The platform this binary runs on, in OCI spelling.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether a requested platform selects this one; a request without variant matches any
    /// variant, and arm64's implicit v8 matches an explicit one.
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && match (&wanted.variant, &self.variant) {
                (None, _) => true,
                (Some(w), Some(v)) => w == v,
                (Some(w), None) => self.architecture == "arm64" && w == "v8",
            }
    }

    /// Whether this is buildx's `unknown/unknown` platform of attestation entries.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
