//! The jobs, wired from the pieces: open any source, append the config layer, write to any sink.
use crate::error::{Error, Result};
use crate::mutate::append::{self, AppendOptions, LayerInfo};
use crate::mutate::layer::{self, LayerOptions};
use crate::mutate::walk::{self, WalkOptions};
use crate::oci::blob::{LocalBlob, Overlay, Source};
use crate::oci::convert::{convert, Family};
use crate::oci::image::Platform;
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::registry::RegistryOptions;
use crate::sink::layout::ImageName;
use crate::sink::registry::PushStats;
use crate::sink::{archive, layout};
use crate::sink::{Kind, Progress};
use crate::source::cache::Cache;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod offline;
pub mod parameters;

use offline::offline_hint;

/// `secs` since the epoch as RFC 3339 in UTC, to the second (what image configs use).
pub fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Everything one `mockimg build` needs, already validated by the CLI.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Imposter config directory to bundle.
    pub config_dir: PathBuf,
    /// Referenced files from outside `config_dir`, placed where the engine reads them (found
    /// by validation).
    pub outside: Vec<crate::mutate::outside::OutsideFile>,
    /// The base image; `None` only in tests that build a layer alone.
    pub base: Option<ImageRef>,
    /// The base's tag moves (the engine's facts say which do): the digest it resolved to is
    /// logged, so a build says what it was built on.
    pub base_moves: bool,
    /// Where the base's engine reads config when told nothing (its facts' `config_dir`): a
    /// `--config-path` equal to it leaves the run settings alone.
    pub engine_config_dir: String,
    /// Platforms to keep from a multi-platform base; empty keeps all.
    pub platforms: Vec<Platform>,
    /// Which files of `config_dir` go into the layer.
    pub walk: WalkOptions,
    /// Where and how the layer is written (path in the image, mtime, gzip level).
    pub layer: LayerOptions,
    /// Image config labels to add.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations to add (OCI bases).
    pub annotations: BTreeMap<String, String>,
    /// Variables set in the image's `Env` (project file `env:`, `--env`, recursion).
    pub env: BTreeMap<String, String>,
    /// The image's names in command-line order (`--push` and `--tag`); every one gets the same
    /// digest, and file outputs record them in this order.
    pub targets: Vec<Target>,
    /// Archive tar to write (OCI layout + docker-archive).
    pub output: Option<PathBuf>,
    /// OCI layout directory to write or add to.
    pub oci_layout: Option<PathBuf>,
    /// How to reach registries.
    pub registry: RegistryOptions,
    /// Blob cache for registry bases written to files.
    pub cache: Option<Cache>,
    /// `--format`: one media-type family for every sink; `None`: OCI for files, the base's
    /// family for registries.
    pub format: Option<Family>,
    /// `SOURCE_DATE_EPOCH`: the image config's `created` (else the base's stays).
    pub source_date_epoch: Option<u64>,
    /// `--sign-key`: sign what is pushed with each key (cosign's format), after the push.
    pub sign: Vec<crate::sign::SigningKey>,
    /// What to attach: the SBOM, the provenance (unless `--no-sbom`, `--no-provenance`), and
    /// the CI run building this.
    pub attest: crate::attest::Wanted,
}

/// One name of a built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Pushed to its registry (`--push`), and recorded in file outputs.
    Push(RegistryRef),
    /// Only recorded in file outputs (`--tag`).
    Record(RegistryRef),
}

impl Target {
    /// The name.
    pub fn reference(&self) -> &RegistryRef {
        match self {
            Target::Push(r) | Target::Record(r) => r,
        }
    }
}

impl BuildRequest {
    /// Every name to record, in command-line order, each marked whether it is pushed.
    pub fn names(&self) -> Vec<(RegistryRef, bool)> {
        self.targets
            .iter()
            .map(|t| (t.reference().clone(), matches!(t, Target::Push(_))))
            .collect()
    }

    /// Whether any name is pushed.
    pub fn pushes(&self) -> bool {
        self.targets.iter().any(|t| matches!(t, Target::Push(_)))
    }
}

/// The config layer as `--json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    /// Digest of the compressed layer blob.
    pub digest: String,
    /// Digest of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// Regular files in the layer.
    pub files: usize,
}

/// The base image as it was resolved, so a build on a moving tag says what it was built on.
#[derive(Debug, Clone, Serialize)]
pub struct BaseSummary {
    /// The reference as asked for.
    pub reference: String,
    /// The digest it resolved to (the index digest for a multi-platform base).
    pub digest: String,
}

/// What a build or push produced: the `--json` object.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Digest of the image (the index for a multi-platform image).
    pub digest: String,
    /// Every pushed or recorded name as `repo@digest`.
    pub references: Vec<String>,
    /// The pushed references alone: what plain (not `--json`) output prints.
    #[serde(skip)]
    pub pushed: Vec<String>,
    /// The platforms of the result, `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// The new layer; absent for a push of an existing image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerSummary>,
    /// Blob counts of the registry push, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushStats>,
    /// The base as resolved (reference and digest), for builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseSummary>,
    /// Files from outside the config directory in the layer, where the engine reads them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside: Vec<crate::mutate::outside::OutsideFile>,
    /// What was attached to the image (SBOM, provenance), per repository and file output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<crate::attest::Attached>,
}

fn platforms_of(src: &Source) -> Vec<String> {
    src.root
        .images()
        .iter()
        .map(|i| {
            i.platform()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unknown".into())
        })
        .collect()
}

/// Builds the layer, appends it to the base, and writes the result to every requested sink.
pub async fn build(req: &BuildRequest, progress: &dyn Progress) -> Result<Outcome> {
    if let Some(dir) = &req.oci_layout {
        crate::sink::layout::check_target(dir)?;
    }
    let entries = walk::collect(&req.config_dir, &req.walk)?;
    let base_ref = req
        .base
        .clone()
        .ok_or_else(|| Error::Usage("no base image given".into()))?;
    let file_sink = req.output.is_some() || req.oci_layout.is_some();
    // The layer is CPU work and the base is network work: do them at the same time. A task
    // that is dropped (on error or Ctrl-C) just finishes in the background and is discarded.
    let (entries_len, layer_opts) = (entries.len(), req.layer.clone());
    let outside = req.outside.clone();
    // A large layer is spooled to the system temp dir (TMPDIR), not the cache: a build must work
    // with a read-only or absent cache, and the file has no name, so nothing is left to clean.
    // The SBOM lists the files; the provenance states their digest.
    let want_files = req.attest.sbom || req.attest.provenance;
    let layer_task = tokio::task::spawn_blocking(move || {
        let l = layer::build_in(&entries, &outside, &layer_opts, None)?;
        // The SBOM lists what the layer holds, read back from the blob itself.
        let files = if want_files {
            crate::attest::sbom::files_of_layer(&l.blob)?
        } else {
            Vec::new()
        };
        Ok::<_, Error>((l, files))
    });
    let base = crate::source::open(
        &base_ref,
        &req.registry,
        if file_sink { req.cache.as_ref() } else { None },
    )
    .await
    .map_err(|e| offline_hint(e, &base_ref))?;
    if req.base_moves {
        tracing::info!("base {base_ref} resolved to {}", base.root.digest());
    }
    crate::sink::note_foreign_layers(&base.root)?;
    let (layer, files) = layer_task
        .await
        .map_err(|e| Error::invalid("layer", e.to_string()))??;
    tracing::debug!(entries = entries_len, size = layer.size(), digest = %layer.digest, "built config layer");
    let base_digest = base.root.digest();
    let opts = AppendOptions {
        config_path: req.layer.config_path.clone(),
        engine_config_dir: req.engine_config_dir.clone(),
        env: req.env.clone(),
        created: req.source_date_epoch.map(rfc3339),
        labels: req.labels.clone(),
        annotations: req.annotations.clone(),
        // A normalised, digest-pinned registry name, never a local path: the same base typed two
        // ways must give one digest, and a build machine's directories must not end up in
        // published images.
        base_name: base_ref.base_name(&base_digest),
        base_digest: Some(base_digest.clone()),
        platforms: req.platforms.clone(),
    };
    let info = LayerInfo {
        digest: layer.digest.clone(),
        diff_id: layer.diff_id.clone(),
        size: layer.size(),
    };
    // OCI layouts and archives must hold OCI media types; a registry gets the base's family
    // unless --format says otherwise. The base is re-described before the append so the new
    // layer and the annotations follow the family the image is written in.
    let file_family = req.format.unwrap_or(Family::Oci);
    // A docker-archive has no manifest of its own (mockimg writes it), so it has no family to
    // keep: OCI, and the registry gets the same image as the files.
    let registry_family = req.format.unwrap_or(match base_ref {
        ImageRef::DockerArchive { .. } => Family::Oci,
        _ => Family::of(&base.root),
    });
    let image_in = |family: Family| -> Result<Source> {
        let root = append::append_layer(&convert(&base.root, family)?, &info, &opts)?;
        let mut local = HashMap::new();
        local.insert(layer.digest.clone(), layer.blob.clone());
        for img in root.images() {
            local.insert(
                img.config.digest(),
                LocalBlob::Memory(img.config.bytes.clone()),
            );
        }
        Ok(Source {
            root,
            blobs: Arc::new(Overlay {
                local,
                base: base.blobs.clone(),
            }),
            name: base.name.clone(),
        })
    };
    let for_files = image_in(file_family)?;
    let for_registries = if registry_family == file_family {
        None
    } else {
        Some(image_in(registry_family)?)
    };
    let mut attest = crate::attest::Attest::of_append(
        &req.attest,
        &req.sign,
        files,
        &info,
        &opts,
        &for_files.root,
    );
    attest.facts.parameters = Some(req.parameters(&base_ref));
    let sinks = Sinks {
        names: req.names(),
        output: req.output.as_deref(),
        oci_layout: req.oci_layout.as_deref(),
        registry: &req.registry,
        sign: &req.sign,
        attest: attest.any().then_some(&attest),
        carried: &[],
    };
    let mut outcome = write_sinks(&for_files, for_registries.as_ref(), &sinks, progress).await?;
    outcome.base = Some(BaseSummary {
        reference: base_ref.to_string(),
        digest: base.root.digest(),
    });
    outcome.layer = Some(LayerSummary {
        size: layer.size(),
        digest: layer.digest,
        diff_id: layer.diff_id,
        files: layer.files,
    });
    outcome.outside = req.outside.clone();
    Ok(outcome)
}

/// Where a finished image goes.
#[derive(Debug, Clone)]
pub struct Sinks<'a> {
    /// Every `--push` (true) and `--tag` (false) name, in command-line order.
    pub names: Vec<(RegistryRef, bool)>,
    /// `--output`: the archive tar.
    pub output: Option<&'a Path>,
    /// `--oci-layout`: the layout directory.
    pub oci_layout: Option<&'a Path>,
    /// How to reach registries.
    pub registry: &'a RegistryOptions,
    /// Keys to sign the pushed image with, once it and its tags are in place.
    pub sign: &'a [crate::sign::SigningKey],
    /// What to attach to the image (SBOM, provenance), in files and once pushed.
    pub attest: Option<&'a crate::attest::Attest>,
    /// Attachments the source already carries (a layout or archive): pushed with the image.
    pub carried: &'a [crate::attest::Attachment],
}

/// Writes a finished image to every sink: files are staged first (written in full and
/// verified), then pushed, and the files are put in place only once every push succeeded, so a
/// failed build leaves the disk as it was. `for_registries` is the image to push when it is
/// described in another media-type family than the file sinks' `src`.
pub async fn write_sinks(
    src: &Source,
    for_registries: Option<&Source>,
    sinks: &Sinks<'_>,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let names: Vec<ImageName> = sinks
        .names
        .iter()
        .map(|(r, _)| ImageName::from_registry_ref(r))
        .collect();
    let push: Vec<RegistryRef> = sinks
        .names
        .iter()
        .filter(|(_, p)| *p)
        .map(|(r, _)| r.clone())
        .collect();
    // Where the base's blobs were read from, for later pushes of what is written here.
    crate::sink::registry::note_source(src, sinks.registry);
    let to_file = progress.track(src, Kind::File);
    // The file outputs carry the attachments too, as blobs beside the image.
    let file_sink = sinks.output.is_some() || sinks.oci_layout.is_some();
    let (extra, mut attached) = match (sinks.attest, file_sink) {
        // The first pushed name: a `--tag` alone is no claim the image is there.
        (Some(a), true) => a.for_files(
            &src.root,
            sinks
                .names
                .iter()
                .find(|(_, pushed)| *pushed)
                .map(|(r, _)| r),
        )?,
        _ => Default::default(),
    };
    let archive = match sinks.output {
        Some(path) => Some(archive::stage(&to_file, path, &names, &extra).await?),
        None => None,
    };
    let layout = match sinks.oci_layout {
        Some(dir) => Some(layout::stage(&to_file, dir, &names, &extra).await?),
        None => None,
    };
    let pushed = for_registries.unwrap_or(src);
    let stats = if push.is_empty() {
        None
    } else {
        let tracked = progress.track(pushed, Kind::Registry);
        let res = crate::sink::registry::push(&tracked, &push, sinks.registry).await;
        // What the push found out holds whether or not it got to the end.
        save_locations(sinks.registry);
        let stats = res?;
        if !sinks.sign.is_empty() {
            crate::sign::push_signatures(&pushed.root, &push, sinks.sign, sinks.registry).await?;
        }
        if let Some(a) = sinks.attest {
            attached.extend(
                crate::attest::push_attachments(&pushed.root, &push, a, sinks.registry).await?,
            );
        }
        if !sinks.carried.is_empty() {
            let doc = pushed.root.doc();
            attached.extend(
                crate::attest::push_referrers(doc, sinks.carried, &push, sinks.registry).await?,
            );
        }
        Some(stats)
    };
    save_locations(sinks.registry);
    if let Some(a) = archive {
        a.commit()?;
    }
    if let Some(l) = layout {
        l.commit()?;
    }
    let mut references: Vec<String> = Vec::new();
    let mut pushed_refs: Vec<String> = Vec::new();
    for (r, is_push) in &sinks.names {
        // A --tag name is recorded only in files; a pushed name in the registry (with the
        // registry's digest) and in the files.
        let digest = if *is_push {
            pushed.root.digest()
        } else if file_sink {
            src.root.digest()
        } else {
            continue;
        };
        let line = format!("{}@{digest}", r.repo_name());
        // One line per name, as before: a deploy step may count them against its --push flags.
        if *is_push {
            pushed_refs.push(line.clone());
        }
        references.push(line);
    }
    let shown = if push.is_empty() { src } else { pushed };
    Ok(Outcome {
        digest: shown.root.digest(),
        references,
        pushed: pushed_refs,
        platforms: platforms_of(shown),
        layer: None,
        push: stats,
        base: None,
        outside: Vec::new(),
        attached,
    })
}

fn save_locations(opts: &RegistryOptions) {
    if let Some(l) = &opts.locations {
        l.save();
    }
}

/// `mockimg push SOURCE REF...`: any source to registries, unchanged, with the attachments a
/// layout or archive carries beside it but those of the kinds `left_out` (`sbom`, `provenance`).
pub async fn push_existing(
    source: &ImageRef,
    targets: &[RegistryRef],
    opts: &RegistryOptions,
    sign: &[crate::sign::SigningKey],
    left_out: &[&str],
    progress: &dyn Progress,
) -> Result<Outcome> {
    let src = crate::source::open(source, opts, None).await?;
    crate::sink::note_foreign_layers(&src.root)?;
    // What a layout or archive carries beside the image (its SBOM and provenance) goes along.
    let mut carried = crate::source::referrers::carried(source, &src.root.digest())?
        .iter()
        .map(crate::attest::Attachment::from_carried)
        .collect::<Result<Vec<_>>>()?;
    carried.retain(|a| !left_out.contains(&a.kind.as_str()));
    let sinks = Sinks {
        names: targets.iter().map(|t| (t.clone(), true)).collect(),
        output: None,
        oci_layout: None,
        registry: opts,
        sign,
        attest: None,
        carried: &carried,
    };
    write_sinks(&src, None, &sinks, progress).await
}
