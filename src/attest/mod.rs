//! Attachments: what a build says about the image it made, attached to it as OCI 1.1 referrers
//! (an artifact manifest whose `subject` is the image), so `oras discover`, `cosign tree`,
//! `regctl artifact tree` and scanners find them next to the image.
//!
//! | file | holds |
//! | --- | --- |
//! | `sbom.rs` | the SPDX 2.3 JSON document: the image, which contains the config layer, which contains its files; the base as a dependency |
//! | `provenance.rs` | the in-toto Statement v1 with a SLSA provenance v1 predicate |
//! | `dsse.rs` | the DSSE envelope (PAE, signatures by the `--sign-key` keys) |
//! | `artifact.rs` | the referrer manifest (empty config, one layer, `subject`), the referrers index entry |
//! | `push.rs` | [`push_attachments`]: after the image, its tags (and signatures), every step for all attachments at once: the referrers API where the registry has it, else the `sha256-<hex>` referrers tag, read and written once |
//!
//! Everything here is a function of the build's inputs: no clock is read, so the same inputs
//! give the same attachment digests.
pub mod artifact;
pub mod dsse;
pub mod provenance;
mod push;
pub mod sbom;
mod tag;

pub use artifact::Attachment;
pub use push::{push_attachments, push_referrers, Attached};
pub use sbom::FileEntry;

use crate::error::Result;
use crate::mutate::append::{AppendOptions, LayerInfo};
use crate::oci::image::{Doc, Root};
use crate::sign::SigningKey;
use std::collections::BTreeMap;

/// Where a CI run came from, for the provenance (read by the caller from the CI environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiRun {
    /// The source repository's URL (`https://github.com/org/repo`).
    pub repository: Option<String>,
    /// The commit built.
    pub revision: Option<String>,
    /// The run (GitHub Actions run, GitLab job) that built it.
    pub run_url: Option<String>,
}

/// What a build knows that its attachments say, handed down by the build job.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Every regular file of the config layer, in layer order.
    pub files: Vec<FileEntry>,
    /// Digest of the config layer blob.
    pub layer_digest: String,
    /// Digest of the uncompressed config layer (`diff_id`).
    pub layer_diff_id: String,
    /// The base image as built on: `name@digest` for a registry base (the name normalised,
    /// `host/path`), `@digest` alone for a local one (`oci:`, `oci-archive:`,
    /// `docker-archive:`), which has no name worth stating.
    pub base: String,
    /// Where the config sits in the image (`--config-path`).
    pub config_path: String,
    /// The documents' time: from `SOURCE_DATE_EPOCH`, else the image's `created`; RFC 3339.
    pub created: Option<String>,
    /// `SOURCE_DATE_EPOCH` as RFC 3339: the only time the provenance states.
    pub source_date_epoch: Option<String>,
    /// The CI run, when built in one.
    pub ci: Option<CiRun>,
    /// What the user asked for that shapes the image, for the provenance's
    /// `externalParameters`; `None` states only what the fields above say.
    pub parameters: Option<Parameters>,
}

/// The build's parameters under the user's control that change the image's bytes (SLSA's
/// `externalParameters`), taken from the build request. `SOURCE_DATE_EPOCH` and the config path
/// are [`Facts`] fields already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters {
    /// The base as the user gave it (`outofcoffee/imposter:4`); for a local base only its
    /// transport (`oci-archive:`): a build machine's paths stay out of published documents.
    pub base: String,
    /// `--platform`, `os/arch[/variant]`; empty keeps every platform of the base.
    pub platforms: Vec<String>,
    /// `--format` (`oci`, `docker`), when given.
    pub format: Option<String>,
    /// Where the base's engine reads config when told nothing (its engine facts).
    pub engine_config_dir: String,
    /// `--exclude` patterns (`None`: not known, as in a rebase, which reuses the layer).
    pub excludes: Option<Vec<String>>,
    /// The config layer's gzip level (`None`: not known, as in a rebase).
    pub gzip_level: Option<u32>,
    /// Whether the layer hides what the base has at the config path (opaque whiteout; `None`:
    /// not known, as in a rebase).
    pub replace: Option<bool>,
    /// Image config labels added.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations added.
    pub annotations: BTreeMap<String, String>,
    /// Variables set in the image's `Env`.
    pub env: BTreeMap<String, String>,
}

impl Facts {
    /// The base's name (`None` for a local base) and digest.
    pub fn base_parts(&self) -> (Option<&str>, &str) {
        let (name, digest) = self
            .base
            .split_once('@')
            .unwrap_or(("", self.base.as_str()));
        // A registry base's name is always `host/path`: anything else (empty, or a stand-in
        // such as `base`) is no name.
        (name.contains('/').then_some(name), digest)
    }

    /// A digest of the files the config layer holds, independent of how the layer is packed:
    /// SHA-256 over `<sha256 hex>  <path>` lines (`sha256sum`'s format), sorted by path.
    pub fn config_files_digest(&self) -> String {
        let mut files: Vec<&FileEntry> = self.files.iter().collect();
        files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let lines: String = files
            .iter()
            .map(|f| format!("{}  {}\n", f.sha256, f.path))
            .collect();
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(lines.as_bytes()))
    }
}

/// What a job is asked to attach, before the image exists: the flags and the CI run, read at
/// the edge. `build` and `rebase` both turn it into an [`Attest`] with [`Attest::of_append`].
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// The SPDX SBOM (`--no-sbom` turns it off).
    pub sbom: bool,
    /// The SLSA provenance (`--no-provenance` turns it off).
    pub provenance: bool,
    /// The CI run doing the job, for the provenance.
    pub ci: Option<CiRun>,
}

/// Which attachments to make, and the keys that sign the provenance.
#[derive(Debug, Clone, Default)]
pub struct Attest {
    /// The SPDX SBOM (`--no-sbom` turns it off).
    pub sbom: bool,
    /// The SLSA provenance (`--no-provenance` turns it off).
    pub provenance: bool,
    /// `--sign-key`: the provenance goes in a DSSE envelope signed with each.
    pub keys: Vec<SigningKey>,
    /// What the documents say.
    pub facts: Facts,
}

impl Attest {
    /// The attachments of `root`, the image made by appending `layer` (whose regular files are
    /// `files`) with `opts`. Build and rebase both come here, so a rebased image carries the
    /// documents a fresh build of its config on the new base would: the base is the one `opts`
    /// records, the time is `opts.created` (`SOURCE_DATE_EPOCH`), else the image's.
    pub fn of_append(
        wanted: &Wanted,
        keys: &[SigningKey],
        files: Vec<FileEntry>,
        layer: &LayerInfo,
        opts: &AppendOptions,
        root: &Root,
    ) -> Attest {
        // A local base has no name worth stating: its digest alone.
        let base = match (&opts.base_name, &opts.base_digest) {
            (Some(n), _) => n.clone(),
            (None, Some(d)) => format!("@{d}"),
            (None, None) => String::new(),
        };
        Attest {
            sbom: wanted.sbom,
            provenance: wanted.provenance,
            keys: keys.to_vec(),
            facts: Facts {
                files,
                layer_digest: layer.digest.clone(),
                layer_diff_id: layer.diff_id.clone(),
                base,
                config_path: opts.config_path.clone(),
                created: opts.created.clone().or_else(|| created_of(root)),
                source_date_epoch: opts.created.clone(),
                ci: wanted.ci.clone(),
                // The caller adds what only it knows (build: the request's parameters).
                parameters: None,
            },
        }
    }

    /// Whether anything is attached at all.
    pub fn any(&self) -> bool {
        self.sbom || self.provenance
    }

    /// The attachments for the image `subject` (its top document) known as `name` (a repository
    /// name, `host/path`, no tag): the SBOM, then the provenance.
    pub fn for_subject(&self, subject: &Doc, name: &str) -> Result<Vec<Attachment>> {
        self.for_subject_named(subject, Some(name))
    }

    /// [`Attest::for_subject`] for an image that may have no name (a layout-only build): then
    /// the documents name it by digest alone, with no purl.
    pub fn for_subject_named(&self, subject: &Doc, name: Option<&str>) -> Result<Vec<Attachment>> {
        let mut out = Vec::new();
        if self.sbom {
            let doc = sbom::spdx(&self.facts, subject, name);
            out.push(artifact::sbom(doc, subject));
        }
        if self.provenance {
            let statement = provenance::statement(&self.facts, subject, name);
            out.push(if self.keys.is_empty() {
                artifact::provenance(statement, subject)
            } else {
                artifact::signed_provenance(dsse::envelope(&statement, &self.keys), subject)
            });
        }
        Ok(out)
    }
}

impl Attest {
    /// What the file outputs hold for the image `root` first named `name` (its first `--push`
    /// name; `None` when nothing is pushed, and the documents then claim no name): every blob
    /// of every attachment (manifests, documents, the empty config), and the record of each for
    /// `--json`.
    pub fn for_files(
        &self,
        root: &Root,
        name: Option<&crate::oci::reference::RegistryRef>,
    ) -> Result<(Vec<bytes::Bytes>, Vec<Attached>)> {
        let name = name.map(|r| r.repo_name());
        let (mut blobs, mut records) = (Vec::new(), Vec::new());
        for a in self.for_subject_named(root.doc(), name.as_deref())? {
            blobs.push(a.manifest.bytes.clone());
            blobs.extend(a.blobs.iter().map(|(_, b)| b.clone()));
            records.push(Attached::of(&a, &root.digest()));
        }
        Ok((blobs, records))
    }
}

/// The image's `created` (the first image config's), as SPDX writes times (RFC 3339, to the
/// second, UTC): the SBOM's time when `SOURCE_DATE_EPOCH` is not set.
pub fn created_of(root: &Root) -> Option<String> {
    let img = root.images().first()?;
    let c: serde_json::Value = serde_json::from_slice(&img.config.bytes).ok()?;
    let t = chrono::DateTime::parse_from_rfc3339(c.get("created")?.as_str()?).ok()?;
    Some(
        t.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::image::Image;
    use crate::oci::media;

    #[test]
    fn the_images_created_is_written_as_spdx_writes_times() {
        let img = |created: &str| {
            Root::Image(Image {
                manifest: Doc::new(media::OCI_MANIFEST, &b"{}"[..]),
                config: Doc::new(
                    media::OCI_CONFIG,
                    format!("{{\"created\":\"{created}\"}}").into_bytes(),
                ),
                index_entry: None,
            })
        };
        assert_eq!(
            created_of(&img("2024-05-01T10:20:30.123456789+02:00")).as_deref(),
            Some("2024-05-01T08:20:30Z")
        );
        assert_eq!(created_of(&img("yesterday")), None);
    }
}
