//! `mockimg rebase`: move images mockimg built onto another engine base. The config layer and
//! the build's options are read back from the image (`recover`), then the one mutation
//! (`mutate::append`) runs again on the new base, so the result is the image a fresh
//! `mockimg build` of the same config with the same options would give. The config layer is
//! reused byte for byte: mounted from the old image's repository or copied, never rebuilt.
pub(crate) mod recover;
pub(crate) mod version;

use crate::error::{Error, Result};
use crate::mutate::append::{self, AppendOptions};
use crate::oci::blob::{BlobSource, ByteStream, LocalBlob, Source};
use crate::oci::convert::convert;
use crate::oci::image::{Descriptor, Root};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::registry::{Registry, RegistryOptions};
use crate::sink::registry::PushStats;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use recover::{platform_name, recorded_base, Recovered};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Which base to move onto.
#[derive(Debug, Clone)]
pub enum NewBase {
    /// `--base REF`: this image.
    Base(ImageRef),
    /// `--engine-version V`: the old base's repository (so its engine variant) at tag `V`.
    EngineVersion(String),
    /// `--latest-patch`: the highest `X.Y.Z` of the old base's repository with its `X.Y`.
    LatestPatch,
}

/// Everything one `mockimg rebase` needs, already parsed by the CLI.
#[derive(Debug, Clone)]
pub struct RebaseRequest {
    /// The image to move (any source mockimg reads).
    pub image: ImageRef,
    /// Where to move it.
    pub new_base: NewBase,
    /// The base it was built on, when the image does not record it (Docker media types).
    pub old_base: Option<ImageRef>,
    /// References to push the result to.
    pub push: Vec<RegistryRef>,
    /// Archive tar to write.
    pub output: Option<PathBuf>,
    /// OCI layout directory to write or add to.
    pub oci_layout: Option<PathBuf>,
    /// Work everything out, write nothing.
    pub dry_run: bool,
    /// How to reach registries.
    pub registry: RegistryOptions,
    /// `SOURCE_DATE_EPOCH`: the result's `created` (else the one the image records).
    pub source_date_epoch: Option<u64>,
    /// What to attach to the result: what `build` attaches (unless `--no-sbom`,
    /// `--no-provenance`), made from the recovered build on the new base.
    pub attest: crate::attest::Wanted,
    /// `--sign-key`: sign what is pushed with each key, after the push (and the provenance).
    pub sign: Vec<crate::sign::SigningKey>,
}

/// What a rebase did: the `--json` object.
#[derive(Debug, Clone, Serialize)]
pub struct RebaseOutcome {
    /// The image as named.
    pub image: String,
    /// The base it was on, `repo@digest`.
    pub old_base: String,
    /// The base it is on now, `repo@digest`.
    pub new_base: String,
    /// Digest of the rebased image (the old image's when nothing changed).
    pub digest: String,
    /// Every pushed name as `repo@digest` (none for a dry run or when nothing changed).
    pub references: Vec<String>,
    /// The new base as asked for (`repo:4.9.10`), for messages.
    #[serde(skip)]
    pub new_base_ref: String,
    /// The image is on the new base already: nothing was written.
    #[serde(skip)]
    pub unchanged: bool,
    /// Nothing was written because `--dry-run` said so; `references` lists what would be.
    #[serde(skip)]
    pub dry_run: bool,
    /// Blob counts of the push.
    #[serde(skip)]
    pub push: Option<PushStats>,
    /// What was attached to the result (SBOM, provenance), per repository and file output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<crate::attest::Attached>,
}

/// The image's blobs: the config layer from the old image, new configs from memory, the rest
/// from the new base. Each blob says the repository it can be mounted from.
struct Rebased {
    layer: String,
    old: Arc<dyn BlobSource>,
    new: Arc<dyn BlobSource>,
    configs: HashMap<String, Bytes>,
}

impl BlobSource for Rebased {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        if let Some(b) = self.configs.get(&desc.digest) {
            let s = LocalBlob::Memory(b.clone()).stream();
            return Box::pin(async move { Ok(s) });
        }
        if desc.digest == self.layer {
            self.old.open(desc)
        } else {
            self.new.open(desc)
        }
    }
    fn registry(&self) -> Option<&RegistryRef> {
        self.new.registry()
    }
    fn registry_of(&self, digest: &str) -> Option<&RegistryRef> {
        if digest == self.layer {
            self.old.registry()
        } else {
            self.new.registry_of(digest)
        }
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.configs.get(digest).cloned()
    }
    fn local(&self, digest: &str) -> bool {
        // The config layer is never "ours to upload straight away": the target may hold it.
        self.configs.contains_key(digest) || (digest != self.layer && self.new.local(digest))
    }
    fn distrust(&self, digest: &str) {
        if digest == self.layer {
            self.old.distrust(digest)
        } else {
            self.new.distrust(digest)
        }
    }
}

/// The registry reference `repo@digest` of a recorded `base.name`.
fn registry_ref_of(name: &str) -> Result<RegistryRef> {
    RegistryRef::parse(name).map_err(|e| Error::invalid("recorded base name", e.to_string()))
}

/// Runs a rebase: open, recover, check, append onto the new base, write.
pub async fn rebase(
    req: &RebaseRequest,
    progress: &dyn crate::sink::Progress,
) -> Result<RebaseOutcome> {
    let image_name = req.image.to_string();
    let old = crate::source::open(&req.image, &req.registry, None).await?;
    // Refused before the base is looked for: an image mockimg did not build has none recorded.
    recover::appended(
        old.root
            .images()
            .first()
            .ok_or_else(|| Error::invalid(&image_name, "holds no image"))?,
        &image_name,
    )?;
    let (name, digest) = recorded_base(&old.root);
    let old_base_ref = match (&req.old_base, &name) {
        (Some(r), _) => r.clone(),
        (None, Some(n)) => ImageRef::Registry(registry_ref_of(n)?),
        (None, None) => {
            return Err(Error::Usage(format!(
                "{image_name} does not record the base it was built on (Docker media types carry \
                 no annotations, and a base read from a file is not named) — give it with \
                 --old-base REF"
            )))
        }
    };
    let old_base = crate::source::open(&old_base_ref, &req.registry, None).await?;
    let old_base_digest = old_base.root.digest();
    if let Some(d) = digest.filter(|d| *d != old_base_digest) {
        return Err(Error::invalid(
            &image_name,
            format!("records base digest {d}, but {old_base_ref} is {old_base_digest}"),
        ));
    }
    let rec = recover::recover(&old.root, &image_name, &old_base.root)?;
    self_check(&old.root, &image_name, &rec, &old_base_ref, &old_base.root)?;

    let (new_ref, new_version) = resolve_new_base(req, &old_base_ref, &old_base.root).await?;
    let new_base = crate::source::open(&new_ref, &req.registry, None).await?;
    crate::sink::note_foreign_layers(&new_base.root)?;
    for img in old.root.images() {
        let p = img.platform();
        let has = new_base
            .root
            .images()
            .iter()
            .any(|b| match (&p, b.platform()) {
                (Some(p), Some(bp)) => bp.matches(p),
                _ => new_base.root.images().len() == 1,
            });
        if !has {
            return Err(Error::Usage(format!(
                "{new_ref} has no {} image, which {image_name} has — pick a base with every \
                 platform of the image",
                platform_name(img)
            )));
        }
    }
    let new_base_digest = new_base.root.digest();
    let mut opts = AppendOptions {
        base_name: new_ref.base_name(&new_base_digest),
        base_digest: Some(new_base_digest.clone()),
        ..rec.opts.clone()
    };
    if let Some(secs) = req.source_date_epoch {
        opts.created = Some(crate::build::rfc3339(secs));
    }
    let root = append::append_layer(&convert(&new_base.root, rec.family)?, &rec.layer, &opts)?;
    let repo_at = |r: &ImageRef, d: &str| match r {
        ImageRef::Registry(rr) => format!("{}@{d}", rr.repo_name()),
        other => format!("{other}@{d}"),
    };
    let mut outcome = RebaseOutcome {
        image: image_name,
        old_base: repo_at(&old_base_ref, &old_base_digest),
        new_base: repo_at(&new_ref, &new_base_digest),
        digest: root.digest(),
        references: Vec::new(),
        new_base_ref: new_version.unwrap_or_else(|| new_ref.to_string()),
        // The same base (a newer mockimg would only rewrite its own history line), or the
        // same image.
        unchanged: new_base_digest == old_base_digest || root.digest() == old.root.digest(),
        dry_run: req.dry_run,
        push: None,
        attached: Vec::new(),
    };
    if outcome.unchanged {
        outcome.digest = old.root.digest();
        return Ok(outcome);
    }
    if req.dry_run {
        outcome.references = req
            .push
            .iter()
            .map(|r| format!("{}@{}", r.repo_name(), outcome.digest))
            .collect();
        return Ok(outcome);
    }
    // The SBOM lists the config layer's files as a fresh build reads them back from the layer
    // it made: here the layer is read once from the image it is reused from.
    // The provenance states a digest of the same file list.
    let files = if req.attest.sbom || req.attest.provenance {
        let first = old.root.images()[0].layers()?;
        let desc = first.last().expect("recover found the config layer");
        crate::attest::sbom::files_of_blob(old.blobs.as_ref(), desc).await?
    } else {
        Vec::new()
    };
    let mut attest =
        crate::attest::Attest::of_append(&req.attest, &req.sign, files, &rec.layer, &opts, &root);
    // What the image itself records of its build, and the new base as given; the layer's own
    // options (excludes, gzip level, replace) are not recorded in it, so they are left out.
    attest.facts.parameters = Some(crate::attest::Parameters {
        base: crate::build::parameters::as_given(&new_ref),
        platforms: opts.platforms.iter().map(|p| p.to_string()).collect(),
        format: None,
        engine_config_dir: opts.engine_config_dir.clone(),
        excludes: None,
        gzip_level: None,
        replace: None,
        labels: opts.labels.clone(),
        annotations: opts.annotations.clone(),
        env: opts.env.clone(),
    });
    let configs = root
        .images()
        .iter()
        .map(|i| (i.config.digest(), i.config.bytes.clone()))
        .collect();
    let src = Source {
        root,
        blobs: Arc::new(Rebased {
            layer: rec.layer.digest.clone(),
            old: old.blobs.clone(),
            new: new_base.blobs.clone(),
            configs,
        }),
        name: new_base.name.clone(),
    };
    let sinks = crate::build::Sinks {
        names: req.push.iter().map(|r| (r.clone(), true)).collect(),
        output: req.output.as_deref(),
        oci_layout: req.oci_layout.as_deref(),
        registry: &req.registry,
        sign: &req.sign,
        // What the old image carried names the old image: the result gets its own.
        attest: attest.any().then_some(&attest),
        carried: &[],
    };
    let written = crate::build::write_sinks(&src, None, &sinks, progress).await?;
    outcome.references = written.pushed;
    outcome.push = written.push;
    outcome.attached = written.attached;
    Ok(outcome)
}

/// The recovered options must rebuild the image on its own base, byte for byte, when this
/// mockimg made it (another version writes another history line): otherwise something was read
/// back wrong, or the image was changed after the build, and a rebase would not be what a
/// fresh build gives.
fn self_check(
    image: &Root,
    image_name: &str,
    rec: &Recovered,
    old_base_ref: &ImageRef,
    old_base: &Root,
) -> Result<()> {
    if rec.version != env!("CARGO_PKG_VERSION") {
        tracing::debug!(
            "{image_name} was built by mockimg {}: not reproduced before the rebase",
            rec.version
        );
        return Ok(());
    }
    let digest = old_base.digest();
    let opts = AppendOptions {
        base_name: old_base_ref.base_name(&digest),
        base_digest: Some(digest),
        ..rec.opts.clone()
    };
    let again = append::append_layer(&convert(old_base, rec.family)?, &rec.layer, &opts)?;
    if again.digest() != image.digest() {
        return Err(Error::invalid(
            image_name,
            format!(
                "cannot be rebuilt from its base {old_base_ref} with the options read back from it \
                 (got {} instead of {}) — it was changed after mockimg built it; rebuild it from \
                 its config with `mockimg build`",
                again.digest(),
                image.digest()
            ),
        ));
    }
    Ok(())
}

/// The new base reference, and the release it names when it was picked from a version.
async fn resolve_new_base(
    req: &RebaseRequest,
    old_base_ref: &ImageRef,
    old_base: &Root,
) -> Result<(ImageRef, Option<String>)> {
    let repo = || match old_base_ref {
        ImageRef::Registry(r) => Ok(RegistryRef {
            tag: None,
            digest: None,
            ..r.clone()
        }),
        other => Err(Error::Usage(format!(
            "the old base {other} is not in a registry, so it has no versions to move to — give \
             the new base with --base REF"
        ))),
    };
    match &req.new_base {
        NewBase::Base(r) => Ok((r.clone(), None)),
        NewBase::EngineVersion(v) => {
            let repo = repo()?;
            check_variant(&repo, v, env_version(old_base).as_deref())?;
            let r = RegistryRef {
                tag: Some(v.clone()),
                ..repo
            };
            Ok((ImageRef::Registry(r), Some(v.clone())))
        }
        NewBase::LatestPatch => {
            let repo = repo()?;
            let reg = Registry::connect(&repo.registry, &req.registry)?;
            let tags = reg.tags_list(&repo).await?;
            let current = match env_version(old_base) {
                Some(v) if version::parse(&v).is_some() => v,
                _ => tag_of(&reg, &repo, &tags, &old_base.digest()).await?,
            };
            let latest = version::latest_patch(&current, &tags).ok_or_else(|| {
                Error::invalid(
                    repo.repo_name(),
                    format!("lists no release tag like {current}"),
                )
            })?;
            let r = RegistryRef {
                tag: Some(latest.to_string()),
                ..repo
            };
            Ok((ImageRef::Registry(r), Some(latest.to_string())))
        }
    }
}

/// `IMPOSTER_VERSION` of the base config (the JVM engine images set it).
fn env_version(base: &Root) -> Option<String> {
    let cfg = base.images().first()?.config.json("base config").ok()?;
    cfg.get("config")?
        .get("Env")?
        .as_array()?
        .iter()
        .filter_map(|e| e.as_str()?.strip_prefix("IMPOSTER_VERSION="))
        .map(str::to_string)
        .next()
}

/// The release tag of `repo` that points at `digest`: the old base's version when its config
/// does not say (the Go engine images).
async fn tag_of(
    reg: &Registry,
    repo: &RegistryRef,
    tags: &[String],
    digest: &str,
) -> Result<String> {
    let scopes = vec![format!("repository:{}:pull", repo.repository)];
    let candidates: Vec<&String> = tags
        .iter()
        .filter(|t| version::parse(t).is_some())
        .collect();
    let found = futures_util::stream::iter(candidates)
        .map(|t| {
            let r = RegistryRef {
                tag: Some(t.clone()),
                ..repo.clone()
            };
            let scopes = &scopes;
            async move {
                (
                    t,
                    reg.manifest_head(crate::registry::Action::Pull, &r, scopes)
                        .await,
                )
            }
        })
        .buffer_unordered(reg.opts.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut hits: Vec<&String> = Vec::new();
    for (t, d) in found {
        if d?.as_deref() == Some(digest) {
            hits.push(t);
        }
    }
    // Tags re-pushed under an older name too: the highest release names it.
    hits.sort_by_key(|t| version::parse(t).map(|r| (r.major, r.minor, r.patch)));
    hits.last().map(|t| t.to_string()).ok_or_else(|| {
        Error::Usage(format!(
            "no release tag of {} points at the image's base {digest}, so its version is \
             unknown — name the new base with --engine-version V or --base REF",
            repo.repo_name()
        ))
    })
}

/// `--engine-version` keeps the engine variant: the repository (core, all, distroless) stays,
/// and the generation (JVM 4.x, Go 5.x) must too.
fn check_variant(repo: &RegistryRef, v: &str, old: Option<&str>) -> Result<()> {
    use crate::imposter::engine::{generation_of_version, Generation};
    let new_gen = generation_of_version(v).ok_or_else(|| {
        Error::Usage(format!(
            "--engine-version {v}: not a release version like 4.9.10"
        ))
    })?;
    if repo.repository.ends_with("imposter-distroless") && new_gen == Generation::Go {
        return Err(Error::Usage(format!(
            "--engine-version {v}: the distroless image has no Go engine (5.x) release"
        )));
    }
    if let Some(old_gen) = old.and_then(generation_of_version) {
        if old_gen != new_gen {
            return Err(Error::Usage(format!(
                "--engine-version {v}: the image runs the engine {} and {v} is the other \
                 engine — rebuild it with `mockimg build` to change engines",
                old.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
