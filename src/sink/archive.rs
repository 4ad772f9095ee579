//! OCI image layouts, as a directory or inside a tar, and docker-archive tars: read as sources
//! (blobs streamed straight out of the tar by offset, nothing extracted) and written as sinks
//! (one tar that is both an OCI layout and a `docker load`-able archive).
use crate::error::{Error, Result};
use crate::oci::blob::{self, BlobSource, ByteStream, Source};
use crate::oci::digest::{self, Hasher};
use crate::oci::image::{check_manifest, media, Descriptor, Doc, Image, Platform, Root};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Where the files of a layout live.
pub enum Store {
    Dir(PathBuf),
    /// Entry name → (offset of the data in the tar, size).
    Tar {
        path: PathBuf,
        entries: HashMap<String, (u64, u64)>,
    },
}

impl Store {
    pub fn open_dir(dir: &Path) -> Result<Store> {
        if !dir.is_dir() {
            return Err(Error::path(
                dir,
                "is not a directory — expected an OCI image layout",
            ));
        }
        Ok(Store::Dir(dir.to_path_buf()))
    }

    /// Indexes a tar without extracting it (headers only: file contents are seeked over, so a
    /// large archive costs a few reads). Entries with absolute or `..` paths are rejected: they
    /// mark a hostile or broken archive.
    pub fn open_tar(path: &Path) -> Result<Store> {
        let f = std::fs::File::open(path).map_err(|e| Error::io("opening archive", path, e))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut ar = tar::Archive::new(std::io::BufReader::new(f));
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let bad = |m: String| Error::path(path, m);
        let iter = ar
            .entries_with_seek()
            .map_err(|e| bad(format!("is not a tar archive ({e})")))?;
        for ent in iter {
            let ent = ent.map_err(|e| {
                // The tar crate's messages quote raw header bytes; say what it means instead.
                if entries.is_empty() && e.kind() != std::io::ErrorKind::UnexpectedEof {
                    bad("is not a tar archive (its first header is not a tar header)".into())
                } else if e.kind() == std::io::ErrorKind::UnexpectedEof || len % 512 != 0 {
                    bad(format!(
                        "is truncated ({len} bytes; a tar entry is cut short)"
                    ))
                } else {
                    bad(format!("is not a readable tar archive ({e})"))
                }
            })?;
            let p = ent
                .path()
                .map_err(|e| bad(format!("has an unreadable entry name ({e})")))?
                .into_owned();
            let name = normalise(&p).ok_or_else(|| {
                bad(format!(
                    "contains an unsafe entry path {:?} (absolute or '..') — refusing to read it",
                    p.display()
                ))
            })?;
            let kind = ent.header().entry_type();
            if kind.is_file() {
                let off = ent.raw_file_position();
                let size = ent.size();
                if off + size > len {
                    return Err(bad("is truncated (an entry runs past the end)".into()));
                }
                entries.insert(name, (off, size));
            } else if kind.is_symlink() || kind.is_hard_link() {
                // `docker save` stores a layer shared by two images once and links the other.
                let target = ent
                    .link_name()
                    .ok()
                    .flatten()
                    .and_then(|t| resolve_link(&name, &t, kind.is_symlink()))
                    .ok_or_else(|| {
                        bad(format!(
                            "contains a link {name:?} pointing outside the archive — refusing to read it"
                        ))
                    })?;
                links.push((name, target));
            }
        }
        // Links may point at links; a chain longer than the archive is a loop.
        for _ in 0..=links.len() {
            let before = entries.len();
            for (name, target) in &links {
                if let Some(&e) = entries.get(target) {
                    entries.entry(name.clone()).or_insert(e);
                }
            }
            if entries.len() == before {
                break;
            }
        }
        if entries.is_empty() {
            return Err(bad("is empty or not a tar archive".into()));
        }
        Ok(Store::Tar {
            path: path.to_path_buf(),
            entries,
        })
    }

    fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.display().to_string(),
            Store::Tar { path, .. } => path.display().to_string(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir(d) => d.join(name).is_file(),
            Store::Tar { entries, .. } => entries.contains_key(name),
        }
    }

    pub fn size(&self, name: &str) -> Option<u64> {
        match self {
            Store::Dir(d) => std::fs::metadata(d.join(name)).ok().map(|m| m.len()),
            Store::Tar { entries, .. } => entries.get(name).map(|x| x.1),
        }
    }

    /// Reads a small file whole.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let missing = || Error::path(PathBuf::from(self.describe()), format!("lacks {name}"));
        match self {
            Store::Dir(d) => std::fs::read(d.join(name)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => missing(),
                _ => Error::io("reading", d.join(name), e),
            }),
            Store::Tar { path, .. } => {
                let (mut r, size) = self.tar_entry(name)?.ok_or_else(missing)?;
                let mut v = Vec::with_capacity(size as usize);
                r.read_to_end(&mut v)
                    .map_err(|e| Error::io("reading archive", path, e))?;
                Ok(v)
            }
        }
    }

    /// A blocking reader over one entry of a tar store, and its size; `None` if absent.
    fn tar_entry(&self, name: &str) -> Result<Option<(std::io::Take<std::fs::File>, u64)>> {
        let Store::Tar { path, entries } = self else {
            return Ok(None);
        };
        let Some(&(off, size)) = entries.get(name) else {
            return Ok(None);
        };
        let mut f = std::fs::File::open(path).map_err(|e| Error::io("opening archive", path, e))?;
        f.seek(SeekFrom::Start(off))
            .map_err(|e| Error::io("reading archive", path, e))?;
        Ok(Some((f.take(size), size)))
    }

    pub async fn stream(&self, name: &str) -> Result<ByteStream> {
        let (path, off, size) = match self {
            Store::Dir(d) => {
                let p = d.join(name);
                let size = std::fs::metadata(&p)
                    .map_err(|e| Error::io("opening blob", &p, e))?
                    .len();
                (p, 0, size)
            }
            Store::Tar { path, entries } => {
                let (off, size) = *entries
                    .get(name)
                    .ok_or_else(|| Error::path(path, format!("lacks {name}")))?;
                (path.clone(), off, size)
            }
        };
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io("opening blob", &path, e))?;
        f.seek(SeekFrom::Start(off))
            .await
            .map_err(|e| Error::io("reading blob", &path, e))?;
        let r = tokio::io::AsyncReadExt::take(f, size);
        Ok(tokio_util::io::ReaderStream::with_capacity(r, 256 << 10).boxed())
    }
}

/// Where a link entry points, as an archive path: symlinks are relative to the link's directory,
/// hard links to the archive root. `None` if it leaves the archive.
fn resolve_link(name: &str, target: &Path, symlink: bool) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if symlink {
        parts.extend(name.split('/').map(str::to_string));
        parts.pop();
    }
    for c in target.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn normalise(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn blob_path(digest: &str) -> Result<String> {
    digest::blob_path(digest).map_err(|e| Error::invalid("descriptor", e))
}

/// Blobs of a local layout or archive. `paths` overrides where a digest lives (docker-archive).
pub struct LocalBlobs {
    pub store: Store,
    pub paths: HashMap<String, String>,
}

impl BlobSource for LocalBlobs {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            let name = match self.paths.get(&desc.digest) {
                Some(p) => p.clone(),
                None => blob_path(&desc.digest)?,
            };
            if !self.store.has(&name) {
                return Err(Error::path(
                    PathBuf::from(self.store.describe()),
                    format!(
                        "lacks blob {} — the image is incomplete; export it again",
                        desc.digest
                    ),
                ));
            }
            self.store.stream(&name).await
        })
    }
}

fn read_doc(store: &Store, d: &Descriptor, what: &str) -> Result<Doc> {
    let bytes = store.read(&blob_path(&d.digest)?).map_err(|_| {
        Error::path(
            PathBuf::from(store.describe()),
            format!("{what}: blob {} is missing — the archive's index.json points at a blob it does not hold", d.digest),
        )
    })?;
    let got = digest::sha256(&bytes);
    if got != d.digest {
        return Err(Error::DigestMismatch {
            what: format!("{what} in {}", store.describe()),
            expected: d.digest.clone(),
            actual: got,
        });
    }
    Ok(Doc::new(d.media_type.clone(), bytes))
}

fn load_image(
    store: &Store,
    manifest: Doc,
    entry: Option<Descriptor>,
    what: &str,
) -> Result<Image> {
    let mt = check_manifest(&manifest.bytes, Some(&manifest.media_type), what)?;
    let tmp = Image {
        manifest: Doc::new(mt, manifest.bytes),
        config: Doc::new("", Vec::new()),
        index_entry: entry,
    };
    let cd = tmp.config_descriptor()?;
    let config = read_doc(store, &cd, &format!("{what} config"))?;
    Ok(Image { config, ..tmp })
}

/// Opens an OCI layout (directory or tar) as a source, picking the entry named `tag`, or the only
/// entry when no tag is given.
pub fn open_oci(store: Store, tag: Option<&str>, name: String) -> Result<Source> {
    let what = format!("OCI layout {}", store.describe());
    if !store.has("index.json") {
        let hint = if store.has("manifest.json") {
            "has no index.json but a manifest.json — read it as docker-archive:PATH"
        } else {
            "has no index.json — not an OCI image layout"
        };
        return Err(Error::path(PathBuf::from(store.describe()), hint));
    }
    let idx: Value = serde_json::from_slice(&store.read("index.json")?).map_err(|e| {
        Error::invalid(format!("{what} index.json"), format!("not valid JSON: {e}"))
    })?;
    let entries = idx
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid(format!("{what} index.json"), "lacks a manifests array"))?;
    let descs: Vec<Descriptor> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| Descriptor::from_json(e, &format!("{what} index.json manifests[{i}]")))
        .collect::<Result<_>>()?;
    let names: Vec<String> = descs
        .iter()
        .filter_map(|d| d.annotation(REF_NAME).map(str::to_string))
        .collect();
    let chosen = match tag {
        Some(t) => descs
            .iter()
            .find(|d| {
                d.annotation(REF_NAME) == Some(t)
                    || d.annotation(CONTAINERD_NAME)
                        .is_some_and(|n| n.rsplit_once(':').map(|x| x.1) == Some(t))
            })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{what} has no image tagged {t:?} (it has: {})",
                    if names.is_empty() {
                        "no tags".into()
                    } else {
                        names.join(", ")
                    }
                ))
            })?,
        None if descs.len() == 1 => &descs[0],
        None if descs.is_empty() => {
            return Err(Error::invalid(what, "index.json lists no image"));
        }
        None => {
            return Err(Error::Usage(format!(
                "{what} holds {} images; name one with :TAG (it has: {})",
                descs.len(),
                names.join(", ")
            )))
        }
    };
    let doc = read_doc(&store, chosen, &what)?;
    let root = if media::is_index(&chosen.media_type) {
        check_manifest(&doc.bytes, Some(&chosen.media_type), &what)?;
        let v = doc.json(&what)?;
        let mut images = Vec::new();
        for (i, e) in v["manifests"].as_array().into_iter().flatten().enumerate() {
            let d = Descriptor::from_json(e, &format!("{what} manifests[{i}]"))?;
            if d.is_attestation() || !media::is_manifest(&d.media_type) {
                continue;
            }
            // `docker save` (containerd store) keeps the whole index but only the platforms it
            // pulled: a platform whose manifest is absent was never exported, so it is left out.
            // A present manifest with missing blobs is still an error.
            if !store.has(&blob_path(&d.digest)?) {
                tracing::warn!(
                    "{what}: leaving out platform {}: its manifest {} is not in the layout",
                    d.platform
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    d.digest
                );
                continue;
            }
            let child = read_doc(&store, &d, &what)?;
            images.push(load_image(&store, child, Some(d), &what)?);
        }
        if images.is_empty() {
            return Err(Error::path(
                PathBuf::from(store.describe()),
                format!(
                    "holds none of the images its index {} lists — export it again",
                    chosen.digest
                ),
            ));
        }
        Root::Index { index: doc, images }
    } else {
        Root::Image(load_image(&store, doc, None, &what)?)
    };
    Ok(Source {
        root,
        blobs: std::sync::Arc::new(LocalBlobs {
            store,
            paths: HashMap::new(),
        }),
        name,
    })
}

/// `PATH[:NAME[:TAG]]` as skopeo writes docker-archive references: when the whole string is not
/// a file, the longest existing file prefix before a ':' is the archive and the rest names the
/// image in it.
fn split_docker_archive(path: &Path) -> (PathBuf, Option<String>) {
    if path.exists() {
        return (path.to_path_buf(), None);
    }
    let s = path.to_string_lossy();
    s.match_indices(':')
        .map(|(i, _)| i)
        .rev()
        .find(|&i| Path::new(&s[..i]).is_file())
        .map(|i| (PathBuf::from(&s[..i]), Some(s[i + 1..].to_string())))
        .unwrap_or_else(|| (path.to_path_buf(), None))
}

/// Whether a `RepoTags` entry names the image the user asked for (`mocks:1`, `docker.io/library/
/// mocks:1` and `library/mocks:1` are one name).
fn same_image_name(tag: &str, wanted: &str) -> bool {
    use crate::oci::reference::RegistryRef;
    match (RegistryRef::parse(tag), RegistryRef::parse(wanted)) {
        (Ok(a), Ok(b)) => {
            a.repo_name() == b.repo_name()
                && a.tag.as_deref().unwrap_or("latest") == b.tag.as_deref().unwrap_or("latest")
        }
        _ => tag == wanted,
    }
}

/// Opens a `docker save` tar: its `manifest.json` names the config and layer files; a Docker
/// schema2 manifest is synthesised over them (layer digests are computed from the files). An
/// archive holding several images needs `:NAME:TAG` to pick one.
pub fn open_docker_archive(path: &Path, name: String) -> Result<Source> {
    let (path, wanted) = split_docker_archive(path);
    let path = path.as_path();
    let store = Store::open_tar(path)?;
    let what = format!("docker archive {}", path.display());
    let m: Value = serde_json::from_slice(&store.read("manifest.json").map_err(|_| {
        Error::path(
            path,
            "has no manifest.json — not a docker-archive (try oci-archive:)",
        )
    })?)
    .map_err(|e| {
        Error::invalid(
            format!("{what} manifest.json"),
            format!("not valid JSON: {e}"),
        )
    })?;
    let entries = m
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid(&what, "manifest.json lists no image"))?;
    let tags_of = |e: &Value| -> Vec<String> {
        e.get("RepoTags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect()
    };
    let all_tags = || {
        let t: Vec<String> = entries.iter().flat_map(tags_of).collect();
        if t.is_empty() {
            "no names".to_string()
        } else {
            t.join(", ")
        }
    };
    let first = match &wanted {
        Some(w) => entries
            .iter()
            .find(|e| tags_of(e).iter().any(|t| same_image_name(t, w)))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{what} has no image named {w:?} (it has: {})",
                    all_tags()
                ))
            })?,
        None if entries.len() == 1 => &entries[0],
        None => {
            return Err(Error::Usage(format!(
                "{what} holds {} images; name one with docker-archive:{}:NAME:TAG (it has: {})",
                entries.len(),
                path.display(),
                all_tags()
            )))
        }
    };
    let config_path = first
        .get("Config")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid(&what, "manifest.json entry lacks Config"))?;
    let config_path = normalise(Path::new(config_path))
        .ok_or_else(|| Error::invalid(&what, "manifest.json Config path is unsafe"))?;
    let config = Doc::new(media::DOCKER_CONFIG, store.read(&config_path)?);
    let diff_ids: Vec<String> = serde_json::from_slice::<Value>(&config.bytes)
        .ok()
        .and_then(|c| c["rootfs"]["diff_ids"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|d| d.as_str().unwrap_or_default().to_string())
        .collect();
    let listed = first
        .get("Layers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid(&what, "manifest.json entry lacks Layers"))?;
    if listed.len() != diff_ids.len() {
        return Err(Error::invalid(
            &what,
            format!(
                "manifest.json lists {} layers but the image config has {} diff_ids — the archive is damaged; save it again",
                listed.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut paths = HashMap::new();
    let mut layers = Vec::new();
    for (l, diff_id) in listed.iter().zip(&diff_ids) {
        let lp = l
            .as_str()
            .and_then(|s| normalise(Path::new(s)))
            .ok_or_else(|| Error::invalid(&what, "manifest.json has an unsafe layer path"))?;
        // An uncompressed layer's digest is its diff_id: no need to read it all now. Sinks
        // verify every byte they copy, so a damaged file still fails before anything is kept.
        let (digest, size, gz) = if !is_gzip(&store, &lp)? && digest::is_valid(diff_id) {
            let size = store
                .size(&lp)
                .ok_or_else(|| Error::path(path, format!("lacks layer {lp}")))?;
            (diff_id.clone(), size, false)
        } else {
            hash_entry(&store, &lp)?
        };
        layers.push(json!({
            "mediaType": if gz { media::DOCKER_LAYER_GZIP } else { media::DOCKER_LAYER_TAR },
            "digest": digest, "size": size
        }));
        paths.insert(digest, lp);
    }
    paths.insert(config.digest(), config_path);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::DOCKER_MANIFEST,
        "config": {"mediaType": media::DOCKER_CONFIG, "digest": config.digest(), "size": config.size()},
        "layers": layers,
    });
    let manifest = Doc::new(
        media::DOCKER_MANIFEST,
        serde_json::to_vec(&manifest).expect("serialises"),
    );
    Ok(Source {
        root: Root::Image(Image {
            manifest,
            config,
            index_entry: None,
        }),
        blobs: std::sync::Arc::new(LocalBlobs { store, paths }),
        name,
    })
}

fn layer_entry(store: &Store, name: &str) -> Result<(std::io::Take<std::fs::File>, u64)> {
    store.tar_entry(name)?.ok_or_else(|| {
        Error::path(
            PathBuf::from(store.describe()),
            format!("lacks layer {name}"),
        )
    })
}

fn is_gzip(store: &Store, name: &str) -> Result<bool> {
    let (r, _) = layer_entry(store, name)?;
    let mut magic = Vec::with_capacity(2);
    r.take(2)
        .read_to_end(&mut magic)
        .map_err(|e| Error::io("reading archive", store.describe(), e))?;
    Ok(magic == [0x1f, 0x8b])
}

fn hash_entry(store: &Store, name: &str) -> Result<(String, u64, bool)> {
    let (mut r, size) = layer_entry(store, name)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut first = [0u8; 2];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| Error::io("reading archive", store.describe(), e))?;
        if n == 0 {
            break;
        }
        if h.is_empty() && n >= 2 {
            first.copy_from_slice(&buf[..2]);
        }
        h.update(&buf[..n]);
    }
    Ok((h.finish(), size, first == [0x1f, 0x8b]))
}

/// How often a blob that arrived corrupted is fetched again before the export fails.
const CORRUPT_RETRIES: u32 = 2;

fn is_corrupt(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. } | Error::DigestMismatch { .. })
}

/// Names an image gets in a layout/archive: the OCI ref name (tag) and the full name.
#[derive(Debug, Clone)]
pub struct ImageName {
    /// `repo:tag` as docker prints it (`RepoTags`): Docker Hub's prefixes dropped.
    pub full: String,
    /// `registry/repo:tag` fully qualified, as containerd names images (`io.containerd.image.name`).
    pub qualified: String,
    /// The tag alone, for `org.opencontainers.image.ref.name`.
    pub tag: String,
}

impl ImageName {
    pub fn from_registry_ref(r: &crate::oci::reference::RegistryRef) -> ImageName {
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let qualified = format!("{}:{tag}", r.repo_name());
        let mut repo = r.repo_name();
        if let Some(rest) = repo.strip_prefix("docker.io/library/") {
            repo = rest.to_string();
        } else if let Some(rest) = repo.strip_prefix("docker.io/") {
            repo = rest.to_string();
        }
        ImageName {
            full: format!("{repo}:{tag}"),
            qualified,
            tag,
        }
    }
}

/// Every document of the image tree: children then root.
fn docs(root: &Root) -> Vec<&Doc> {
    let mut v: Vec<&Doc> = Vec::new();
    if let Root::Index { .. } = root {
        v.extend(root.images().iter().map(|i| &i.manifest));
    }
    v.push(root.doc());
    v
}

fn root_descriptor(root: &Root, name: Option<&ImageName>) -> Value {
    let mut d = root.doc().descriptor().to_json();
    if let Some(n) = name {
        d["annotations"] = json!({ REF_NAME: n.tag, CONTAINERD_NAME: n.qualified });
    }
    d
}

/// Writes one tar that is an OCI layout and a docker-archive. Written to a temp file beside
/// `path` and renamed, so a failure (or interrupt) leaves nothing at `path`.
pub async fn write_archive(src: &Source, path: &Path, name: Option<&ImageName>) -> Result<u64> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::path(
            path,
            format!(
                "cannot write: directory {} does not exist — create it first",
                parent.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(Error::path(
            path,
            "is a directory — give the archive a file name, e.g. mocks.tar (or use --oci-layout DIR)",
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".mockimg-")
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(|e| Error::io("creating temp file", &parent, e))?;
    let file = tokio::fs::File::from_std(
        tmp.as_file()
            .try_clone()
            .map_err(|e| Error::io("creating temp file", tmp.path(), e))?,
    );
    let mut w = TarWriter {
        out: tokio::io::BufWriter::with_capacity(1 << 20, file),
        path: tmp.path().to_path_buf(),
        dest: path.to_path_buf(),
        written: 0,
    };
    w.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .await?;
    w.dir("blobs/").await?;
    w.dir("blobs/sha256/").await?;
    let mut seen = BTreeSet::new();
    for d in src.root.blobs()? {
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        // A blob that arrives corrupted is cut off again and fetched anew: the bytes already
        // written for it are discarded, so the archive never holds a bad copy.
        let mut attempt = 0;
        loop {
            let start = w.written;
            let s = blob::verified(
                src.blobs.open(&d).await?,
                &d,
                format!("blob {} from {}", d.digest, src.name),
            );
            match w.stream(&blob_path(&d.digest)?, d.size, s).await {
                Ok(()) => break,
                Err(e) if is_corrupt(&e) && attempt < CORRUPT_RETRIES => {
                    attempt += 1;
                    tracing::warn!("{e}; fetching it again ({attempt}/{CORRUPT_RETRIES})");
                    src.blobs.distrust(&d.digest);
                    w.rewind(start).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    for doc in docs(&src.root) {
        if seen.insert(doc.digest()) {
            w.file(&blob_path(&doc.digest())?, &doc.bytes).await?;
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [root_descriptor(&src.root, name)],
    });
    w.file(
        "index.json",
        &serde_json::to_vec(&index).expect("serialises"),
    )
    .await?;
    let img = src
        .root
        .image_for(&Platform::host())
        .ok_or_else(|| Error::invalid("image index", "lists no images to export"))?;
    let layers: Vec<String> = img
        .layers()?
        .iter()
        .map(|l| blob_path(&l.digest))
        .collect::<Result<_>>()?;
    let manifest = json!([{
        "Config": blob_path(&img.config.digest())?,
        "RepoTags": name.map(|n| vec![n.full.clone()]).unwrap_or_default(),
        "Layers": layers,
    }]);
    w.file(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("serialises"),
    )
    .await?;
    w.finish().await?;
    let size = w.written;
    readable(&tmp)?;
    tmp.persist(path)
        .map_err(|e| Error::io("renaming temp file into place", path, e.error))?;
    Ok(size)
}

struct TarWriter {
    out: tokio::io::BufWriter<tokio::fs::File>,
    path: PathBuf,
    /// Where the archive will be renamed to: what error messages name.
    dest: PathBuf,
    written: u64,
}

impl TarWriter {
    fn header(name: &str, size: u64, kind: tar::EntryType) -> Result<Vec<u8>> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)
            .map_err(|e| Error::invalid("archive entry", e.to_string()))?;
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        Ok(h.as_bytes().to_vec())
    }

    async fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .await
            .map_err(|e| Error::io("writing archive", &self.path, e))?;
        self.written += b.len() as u64;
        Ok(())
    }

    async fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (512 - size % 512) % 512;
        self.raw(&vec![0u8; rem as usize]).await
    }

    async fn dir(&mut self, name: &str) -> Result<()> {
        let h = Self::header(name, 0, tar::EntryType::Directory)?;
        self.raw(&h).await
    }

    async fn file(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let h = Self::header(name, data.len() as u64, tar::EntryType::Regular)?;
        self.raw(&h).await?;
        self.raw(data).await?;
        self.pad(data.len() as u64).await
    }

    async fn stream(&mut self, name: &str, size: u64, mut s: ByteStream) -> Result<()> {
        let h = Self::header(name, size, tar::EntryType::Regular)?;
        self.raw(&h).await?;
        while let Some(chunk) = s.next().await {
            let chunk = chunk
                .map_err(|e| blob::io_to_error(&format!("writing {}", self.dest.display()), e))?;
            self.raw(&chunk).await?;
        }
        self.pad(size).await
    }

    /// Drops everything written after `to`.
    async fn rewind(&mut self, to: u64) -> Result<()> {
        let io = |e| Error::io("rewinding archive", &self.path, e);
        self.out.flush().await.map_err(io)?;
        let f = self.out.get_mut();
        f.set_len(to).await.map_err(io)?;
        f.seek(SeekFrom::Start(to)).await.map_err(io)?;
        self.written = to;
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        self.raw(&[0u8; 1024]).await?;
        self.out
            .flush()
            .await
            .map_err(|e| Error::io("writing archive", &self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .await
            .map_err(|e| Error::io("syncing archive", &self.path, e))
    }
}

/// Adds the image to an OCI layout directory (created if needed). Blobs already present are
/// kept as they are; new ones are written to a temp file, verified, then renamed into place.
pub async fn write_layout(src: &Source, dir: &Path, names: &[ImageName]) -> Result<()> {
    // A layout this call creates is removed again if the image cannot be written in full; an
    // existing one only ever gains verified blobs, and its index changes last.
    let existed = dir.exists();
    let empty = match std::fs::read_dir(dir) {
        Ok(mut d) => d.next().is_none(),
        Err(_) if !existed => true,
        Err(e) => return Err(Error::io("reading layout directory", dir, e)),
    };
    // Writing blobs/ and index.json into some other directory (`--oci-layout .`) would litter it.
    if !empty && !dir.join("oci-layout").is_file() {
        return Err(Error::path(
            dir,
            "is not empty and not an OCI image layout (no oci-layout file) — give a new or empty directory",
        ));
    }
    let r = add_to_layout(src, dir, names).await;
    if r.is_err() && empty {
        if existed {
            for name in ["blobs", "oci-layout", "index.json"] {
                let p = dir.join(name);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    r
}

async fn add_to_layout(src: &Source, dir: &Path, names: &[ImageName]) -> Result<()> {
    let blobs_dir = dir.join("blobs/sha256");
    tokio::fs::create_dir_all(&blobs_dir)
        .await
        .map_err(|e| Error::io("creating layout", &blobs_dir, e))?;
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        atomic_write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    for d in src.root.blobs()? {
        let dest = dir.join(blob_path(&d.digest)?);
        if dest.is_file() {
            continue;
        }
        let mut attempt = 0;
        loop {
            let s = blob::verified(
                src.blobs.open(&d).await?,
                &d,
                format!("blob {} from {}", d.digest, src.name),
            );
            match stream_to_file(s, &dest).await {
                Ok(()) => break,
                Err(e) if is_corrupt(&e) && attempt < CORRUPT_RETRIES => {
                    attempt += 1;
                    tracing::warn!("{e}; fetching it again ({attempt}/{CORRUPT_RETRIES})");
                    src.blobs.distrust(&d.digest);
                }
                Err(e) => return Err(e),
            }
        }
    }
    for doc in docs(&src.root) {
        let dest = dir.join(blob_path(&doc.digest())?);
        if !dest.is_file() {
            atomic_write(&dest, &doc.bytes)?;
        }
    }
    let index_path = dir.join("index.json");
    let mut index: Value = match std::fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::path(
                &index_path,
                format!("is not valid JSON ({e}) — fix or remove the layout"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []})
        }
        Err(e) => return Err(Error::io("reading", &index_path, e)),
    };
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::path(&index_path, "lacks a manifests array"))?;
    if names.is_empty() {
        // Untagged: listed once, and an entry that already names this image (tagged or not)
        // is kept as it is rather than losing its tag.
        let entry = root_descriptor(&src.root, None);
        if !manifests.iter().any(|m| m["digest"] == entry["digest"]) {
            manifests.push(entry);
        }
    }
    for n in names {
        // A tag names one image: the new one replaces an older one of the same name.
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(n.tag.as_str()));
        manifests.push(root_descriptor(&src.root, Some(n)));
    }
    atomic_write(
        &index_path,
        &serde_json::to_vec(&index).expect("serialises"),
    )
}

/// Temp files are created 0600; images and layouts are meant to be carried around and read by
/// other users (CI runners, container engines), so what gets renamed into place is 0644.
fn readable(tmp: &tempfile::NamedTempFile) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io("setting permissions", tmp.path(), e))
}

/// Writes a small file (index.json, oci-layout) through the one atomic writer.
pub fn atomic_write(dest: &Path, data: &[u8]) -> Result<()> {
    crate::sink::atomic::write(dest, data, crate::sink::atomic::READABLE)
}

/// Streams into `dest` via a temp file; on error the temp file is removed.
pub async fn stream_to_file(mut s: ByteStream, dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(parent)
        .map_err(|e| Error::io("creating temp file", parent, e))?;
    let f = tokio::fs::File::from_std(
        tmp.as_file()
            .try_clone()
            .map_err(|e| Error::io("creating temp file", tmp.path(), e))?,
    );
    let mut w = tokio::io::BufWriter::with_capacity(1 << 20, f);
    while let Some(chunk) = s.next().await {
        let chunk =
            chunk.map_err(|e| blob::io_to_error(&format!("writing {}", dest.display()), e))?;
        w.write_all(&chunk)
            .await
            .map_err(|e| Error::io("writing", tmp.path(), e))?;
    }
    w.flush()
        .await
        .map_err(|e| Error::io("writing", tmp.path(), e))?;
    readable(&tmp)?;
    tmp.persist(dest)
        .map_err(|e| Error::io("renaming into place", dest, e.error))?;
    Ok(())
}

/// In-memory bytes as a stream (used by sinks for documents).
pub fn bytes_stream(b: Bytes) -> ByteStream {
    futures_util::stream::once(async move { Ok(b) }).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &str)]) -> tempfile::NamedTempFile {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data_or_target) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            if kind.is_file() {
                h.set_size(data_or_target.len() as u64);
                b.append_data(&mut h, name, data_or_target.as_bytes())
                    .unwrap();
            } else {
                h.set_size(0);
                b.append_link(&mut h, name, data_or_target).unwrap();
            }
        }
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &b.into_inner().unwrap()).unwrap();
        f
    }

    #[test]
    fn links_resolve_inside_the_archive_only() {
        use tar::EntryType::{Link, Regular, Symlink};
        let f = tar_with(&[
            ("a/layer.tar", Regular, "layer bytes"),
            ("b/layer.tar", Symlink, "../a/layer.tar"),
            ("c/layer.tar", Symlink, "../b/layer.tar"),
            ("d.tar", Link, "a/layer.tar"),
        ]);
        let st = Store::open_tar(f.path()).unwrap();
        for n in ["a/layer.tar", "b/layer.tar", "c/layer.tar", "d.tar"] {
            assert_eq!(st.read(n).unwrap(), b"layer bytes", "{n}");
        }
        for target in ["../../etc/passwd", "/etc/passwd"] {
            let f = tar_with(&[("a/x", Regular, "x"), ("a/evil", Symlink, target)]);
            let e = Store::open_tar(f.path()).err().unwrap().to_string();
            assert!(e.contains("outside the archive"), "{e}");
        }
        // A loop resolves to nothing rather than spinning.
        let f = tar_with(&[
            ("x", Regular, "x"),
            ("l1", Symlink, "l2"),
            ("l2", Symlink, "l1"),
        ]);
        let st = Store::open_tar(f.path()).unwrap();
        assert!(!st.has("l1") && st.has("x"));
    }

    #[test]
    fn docker_archive_references_split_at_an_existing_file() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = f.path().display().to_string();
        assert_eq!(
            split_docker_archive(Path::new(&format!("{p}:team/mocks:1"))),
            (f.path().to_path_buf(), Some("team/mocks:1".into()))
        );
        assert_eq!(
            split_docker_archive(f.path()),
            (f.path().to_path_buf(), None)
        );
        let missing = Path::new("/nonexistent/x.tar:a:1");
        assert_eq!(split_docker_archive(missing), (missing.to_path_buf(), None));
        assert!(same_image_name("team/mocks:1", "docker.io/team/mocks:1"));
        assert!(same_image_name(
            "busybox:latest",
            "docker.io/library/busybox"
        ));
        assert!(!same_image_name("team/mocks:1", "team/mocks:2"));
    }
}
