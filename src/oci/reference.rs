//! Image references: registry references with docker.io normalisation, and the local transports
//! `oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`, `docker-archive:PATH`.
use crate::error::{Error, Result};
use crate::oci::digest;
use std::fmt;
use std::path::PathBuf;

pub(crate) const DOCKER_HUB: &str = "docker.io";

/// A reference to an image in a registry, normalised as docker does it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryRef {
    /// Registry host (and port), normalised: `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path, with `library/` for official Docker Hub images.
    pub repository: String,
    /// Tag, if given (or defaulted).
    pub tag: Option<String>,
    /// Digest pin, if given.
    pub digest: Option<String>,
}

/// Any place an image can be read from or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// An image in a registry.
    Registry(RegistryRef),
    /// `oci:DIR[:TAG]`, an OCI image layout directory.
    OciLayout {
        /// The layout's root directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick; `None` when the layout has one image.
        tag: Option<String>,
    },
    /// `oci-archive:PATH[:TAG]`, an OCI layout in a tar.
    OciArchive {
        /// The tar file.
        path: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick; `None` when the archive has one image.
        tag: Option<String>,
    },
    /// `docker-archive:PATH`, what `docker save` writes.
    DockerArchive {
        /// The tar file.
        path: PathBuf,
    },
}

impl ImageRef {
    /// Parses a user-typed reference: `oci:`, `oci-archive:`, `docker-archive:`, `docker://` or a registry reference.
    pub fn parse(input: &str) -> Result<Self> {
        if let Some(rest) = input.strip_prefix("oci:") {
            let (dir, tag) = split_path_tag(input, rest)?;
            return Ok(ImageRef::OciLayout { dir, tag });
        }
        if let Some(rest) = input.strip_prefix("oci-archive:") {
            let (path, tag) = split_path_tag(input, rest)?;
            return Ok(ImageRef::OciArchive { path, tag });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(bad(input, "docker-archive: needs a path"));
            }
            return Ok(ImageRef::DockerArchive {
                path: PathBuf::from(rest),
            });
        }
        if let Some(rest) = input.strip_prefix("docker://") {
            return RegistryRef::parse(rest).map(ImageRef::Registry);
        }
        RegistryRef::parse(input).map(ImageRef::Registry)
    }

    /// The name to record as `org.opencontainers.image.base.name`, given the digest the base
    /// resolved to: `docker.io/library/alpine@sha256:…`, whatever spelling the user typed
    /// (`alpine:3`, `alpine@sha256:…` and `alpine:3@sha256:…` name one image, so they must give
    /// one output digest; a tag cannot be recovered from a digest-only spelling, so none is
    /// recorded). A local base has none: its path is the build machine's business, and the base
    /// digest annotation already says exactly what was built on.
    pub fn base_name(&self, resolved_digest: &str) -> Option<String> {
        match self {
            ImageRef::Registry(r) => {
                Some(format!("{}/{}@{resolved_digest}", r.registry, r.repository))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `oci:5000/x` is a registry on port 5000 only when the scheme says so.
            ImageRef::Registry(r) => {
                let s = r.to_string();
                if ["oci:", "oci-archive:", "docker-archive:"]
                    .iter()
                    .any(|p| s.starts_with(p))
                {
                    f.write_str("docker://")?;
                }
                f.write_str(&s)
            }
            ImageRef::OciLayout { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                tag.iter().try_for_each(|t| write!(f, ":{t}"))
            }
            ImageRef::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}", path.display())?;
                tag.iter().try_for_each(|t| write!(f, ":{t}"))
            }
            ImageRef::DockerArchive { path } => write!(f, "docker-archive:{}", path.display()),
        }
    }
}

/// `PATH[:TAG]`: the tag is whatever follows the last ':' if it is a valid tag and the path part
/// is not empty, so Windows-less paths with colons stay usable by giving a tag explicitly.
fn split_path_tag(input: &str, rest: &str) -> Result<(PathBuf, Option<String>)> {
    if rest.is_empty() {
        return Err(bad(input, "the transport needs a path"));
    }
    if let Some((path, tag)) = rest.rsplit_once(':') {
        if !path.is_empty() && !tag.contains('/') {
            if !is_valid_tag(tag) {
                return Err(bad(input, &format!("{tag:?} is not a valid tag")));
            }
            return Ok((PathBuf::from(path), Some(tag.to_string())));
        }
    }
    Ok((PathBuf::from(rest), None))
}

fn bad(input: &str, reason: &str) -> Error {
    Error::Reference {
        input: input.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// One path component of a repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `host[:port]`, the host being DNS labels, an IPv4 address or a bracketed IPv6 address.
fn is_valid_registry(r: &str) -> bool {
    let (host_ok, port) = match r.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let end = r.find(':').unwrap_or(r.len());
            (is_valid_domain(&r[..end]), &r[end..])
        }
    };
    host_ok
        && (port.is_empty()
            || port.strip_prefix(':').is_some_and(|p| {
                !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
            }))
}

fn is_valid_domain(h: &str) -> bool {
    !h.is_empty()
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn looks_like_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[')
}

impl RegistryRef {
    /// Parses a registry reference the way Docker does (`alpine` is `docker.io/library/alpine:latest`).
    pub fn parse(input: &str) -> Result<Self> {
        if input.is_empty() {
            return Err(bad(input, "empty reference"));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                if !digest::is_valid(d) {
                    return Err(bad(
                        input,
                        &format!(
                            "{d:?} is not a valid digest (expected sha256:<64 lowercase hex>)"
                        ),
                    ));
                }
                (n, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A ':' after the last '/' separates the tag; one before it belongs to host:port.
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if last_slash.is_none_or(|s| i > s) => {
                (&name_tag[..i], Some(name_tag[i + 1..].to_string()))
            }
            _ => (name_tag, None),
        };
        if let Some(t) = &tag {
            if !is_valid_tag(t) {
                return Err(bad(
                    input,
                    &format!(
                        "{t:?} is not a valid tag (letters, digits, '_', '.', '-'; at most 128)"
                    ),
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if looks_like_registry(first) => {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(bad(input, "missing repository name"));
        }
        for c in repository.split('/') {
            if !is_valid_component(c) {
                let reason = if c.bytes().any(|b| b.is_ascii_uppercase()) {
                    format!("repository {repository:?} must be lowercase")
                } else {
                    format!("{c:?} is not a valid repository path component")
                };
                return Err(bad(input, &reason));
            }
        }
        if repository.len() > 255 {
            return Err(bad(input, "repository name is longer than 255 characters"));
        }
        if !is_valid_registry(&registry) {
            return Err(bad(
                input,
                &format!("{registry:?} is not a valid registry (expected HOST[:PORT])"),
            ));
        }
        Ok(RegistryRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Host without port, for loopback checks.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// Loopback registries are plain HTTP by default, like docker and skopeo treat them.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.host())
    }

    /// The same repository, pinned to a digest (tag dropped).
    pub fn with_digest(&self, digest: &str) -> RegistryRef {
        RegistryRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What the manifest endpoint is addressed by: the digest if pinned, else the tag (or latest).
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether both name the same registry (a mount is possible only then).
    pub fn same_registry(&self, other: &RegistryRef) -> bool {
        self.registry == other.registry
    }
}

pub(crate) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RegistryRef {
        RegistryRef::parse(s).unwrap()
    }

    #[test]
    fn docker_hub_normalisation() {
        let x = r("outofcoffee/imposter:4.9.3");
        assert_eq!(x.registry, "docker.io");
        assert_eq!(x.repository, "outofcoffee/imposter");
        assert_eq!(x.tag.as_deref(), Some("4.9.3"));
        assert_eq!(r("alpine").repository, "library/alpine");
        assert_eq!(r("index.docker.io/library/alpine").registry, "docker.io");
    }

    #[test]
    fn registry_with_port_and_digest() {
        let d = crate::oci::digest::sha256(b"x");
        let x = r(&format!("127.0.0.1:5000/team/mocks:1.4@{d}"));
        assert_eq!(x.registry, "127.0.0.1:5000");
        assert_eq!(x.repository, "team/mocks");
        assert_eq!(x.tag.as_deref(), Some("1.4"));
        assert_eq!(x.digest.as_deref(), Some(d.as_str()));
        assert!(x.is_loopback());
        assert_eq!(x.tag_or_digest(), d);
        let y = r("localhost:5000/mocks");
        assert_eq!(y.tag, None);
        assert!(y.is_loopback());
        assert!(r("[::1]:5000/mocks").is_loopback());
        assert!(!r("registry.example.com/team/mocks").is_loopback());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "UPPER/case",
            "repo:tag:tag",
            "repo@sha256:abc",
            "",
            "example.com/",
            "a//b",
            "repo:-tag",
            "re--po_/x",
        ] {
            let e = RegistryRef::parse(bad)
                .expect_err(&format!("{bad} should be rejected"))
                .to_string();
            assert!(
                e.contains(&format!("{bad:?}")),
                "{bad}: the error names it: {e}"
            );
        }
        let e = RegistryRef::parse("UPPER/case").unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "127.0.0.1:5000/team/mocks:1.4",
            "docker.io/library/alpine:3",
        ] {
            assert_eq!(r(s).to_string(), s);
        }
    }

    #[test]
    fn transports() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/layout:v1").unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:layout").unwrap(),
            ImageRef::OciLayout {
                dir: "layout".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:a.tar").unwrap(),
            ImageRef::DockerArchive {
                path: "a.tar".into()
            }
        );
        assert!(matches!(
            ImageRef::parse("oci-archive:x.tar").unwrap(),
            ImageRef::OciArchive { tag: None, .. }
        ));
        let e = ImageRef::parse("oci:").unwrap_err().to_string();
        assert!(e.contains("oci:"), "{e}");
    }

    #[test]
    fn base_names_are_normalised_and_never_local_paths() {
        let d = format!("sha256:{}", "a".repeat(64));
        let name = |s: &str| ImageRef::parse(s).unwrap().base_name(&d);
        let want = format!("docker.io/library/alpine@{d}");
        for spelling in [
            "alpine:3".to_string(),
            "docker.io/library/alpine:3".to_string(),
            format!("alpine:3@{d}"),
            format!("alpine@{d}"),
        ] {
            assert_eq!(
                name(&spelling).as_deref(),
                Some(want.as_str()),
                "{spelling}"
            );
        }
        assert_eq!(name("oci:testdata/engine-base:4.9.3"), None);
        assert_eq!(name("oci-archive:/tmp/x.tar"), None);
        assert_eq!(name("docker-archive:x.tar"), None);
    }
}
