//! Writes an image into an OCI image layout directory (`--oci-layout DIR`), in two steps: staged
//! (every blob on disk and verified) and committed (the image becomes visible). A build commits
//! only after every push succeeded, so a failed build leaves the disk as it was.
use crate::atomic;
use crate::error::{Error, Result};
use crate::oci::blob::Source;
use crate::oci::image::{media, Doc, Root};
use crate::sink::names::add_entries;
pub use crate::sink::names::ImageName;
use crate::sink::refetch::copy_blob;
use crate::source::store::blob_path;
use crate::temps;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The `oci-layout` file every layout starts with.
pub(crate) const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Every document of the image tree: children then root.
pub(crate) fn docs(root: &Root) -> Vec<&Doc> {
    let mut v: Vec<&Doc> = Vec::new();
    if let Root::Index { .. } = root {
        v.extend(root.images().iter().map(|i| &i.manifest));
    }
    v.push(root.doc());
    v
}

/// A layout written but not yet visible as such: dropping it undoes the write.
pub(crate) struct StagedLayout {
    dir: PathBuf,
    /// A new layout is built in a temp directory beside `dir` and renamed into place.
    fresh: Option<(tempfile::TempDir, temps::Live)>,
    /// Blobs this write added to an existing layout: removed again unless committed.
    added: Vec<PathBuf>,
    index: Vec<u8>,
}

impl StagedLayout {
    /// Makes the image visible: renames a new layout into place, or writes the existing
    /// layout's `index.json` (its blobs are already there).
    pub(crate) fn commit(mut self) -> Result<()> {
        match self.fresh.take() {
            Some((tmp, _live)) => {
                let path = tmp.keep();
                let r = commit_fresh(&path, &self.dir);
                if r.is_err() {
                    let _ = std::fs::remove_dir_all(&path);
                }
                r
            }
            None => {
                atomic::write(&self.dir.join("index.json"), &self.index, atomic::READABLE)?;
                self.added.clear();
                Ok(())
            }
        }
    }
}

fn commit_fresh(tmp: &Path, dir: &Path) -> Result<()> {
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("setting permissions", tmp, e))?;
    // `rename` replaces an empty directory, which is what an existing `dir` was at staging.
    std::fs::rename(tmp, dir).map_err(|e| Error::io("renaming into place", dir, e))?;
    if let Ok(d) = std::fs::File::open(atomic::parent_of(dir)) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Drop for StagedLayout {
    fn drop(&mut self) {
        for p in &self.added {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Adds the image to an OCI layout directory now (created if needed), once per name in `names`
/// (untagged when there are none).
#[cfg(test)]
pub(crate) async fn write(src: &Source, dir: &Path, names: &[ImageName]) -> Result<()> {
    stage(src, dir, names, &[]).await?.commit()
}

/// Refuses a layout target that is a symlink, before any work: the new layout is renamed into
/// place at the end, and a rename replaces the link (or fails on it) instead of writing where
/// it points.
pub(crate) fn check_target(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            let to = std::fs::read_link(dir)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            Err(Error::path(
                dir,
                format!("is a symlink{to} — give the directory it points to as --oci-layout"),
            ))
        }
        _ => Ok(()),
    }
}

/// Writes every blob of the image into the layout `dir` (a new one in a temp directory beside
/// it), verified, and prepares its `index.json`; nothing shows as an image until
/// [`StagedLayout::commit`]. Blobs already present are kept as they are. `extra` are small
/// blobs stored beside the image and listed nowhere in `index.json` (its referrers, found by
/// their `subject`: an entry there would be a second image to readers that take the only one).
pub(crate) async fn stage(
    src: &Source,
    dir: &Path,
    names: &[ImageName],
    extra: &[bytes::Bytes],
) -> Result<StagedLayout> {
    check_target(dir)?;
    let empty = match std::fs::read_dir(dir) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Error::io("reading layout directory", dir, e)),
    };
    // Writing blobs/ and index.json into some other directory (`--oci-layout .`) would litter it.
    if !empty && !dir.join("oci-layout").is_file() {
        return Err(Error::path(
            dir,
            "is not empty and not an OCI image layout (no oci-layout file) — give a new or empty directory",
        ));
    }
    let mut staged = StagedLayout {
        dir: dir.to_path_buf(),
        fresh: None,
        added: Vec::new(),
        index: Vec::new(),
    };
    let work = if empty {
        let parent = atomic::parent_of(dir);
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        temps::clean_stale(parent);
        let tmp = tempfile::Builder::new()
            .prefix(&temps::dir_prefix())
            .tempdir_in(parent)
            .map_err(|e| Error::io("creating temp directory", parent, e))?;
        let p = tmp.path().to_path_buf();
        staged.fresh = Some((tmp, temps::Live::dir(&p)));
        atomic::write(&p.join("oci-layout"), OCI_LAYOUT_FILE, atomic::READABLE)?;
        p
    } else {
        dir.to_path_buf()
    };
    // The names are checked before any blob is copied: a refused name costs nothing.
    let mut index = read_index(&work.join("index.json"), empty)?;
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::path(dir.join("index.json"), "lacks a manifests array"))?;
    add_entries(manifests, &src.root, names, dir)?;
    let blobs_dir = work.join("blobs/sha256");
    // Not tokio::fs: a cancelled job must not leave a blocking thread that recreates the
    // temp directory after it was removed.
    std::fs::create_dir_all(&blobs_dir).map_err(|e| Error::io("creating layout", &blobs_dir, e))?;
    for d in src.root.distributable_blobs()? {
        let mut dest = work.join(blob_path(&d.digest)?);
        let present = dest.exists();
        if present && holds(&dest, &d.digest, d.size).await {
            continue;
        }
        copy_blob(src, &d, &mut dest, |dest, s| {
            Box::pin(atomic::write_stream(dest, s))
        })
        .await?;
        if !present {
            staged.added.push(dest);
        }
    }
    let extra_docs = extra.iter().map(|b| Doc::new("", b.clone()));
    for doc in docs(&src.root).into_iter().cloned().chain(extra_docs) {
        let dest = work.join(blob_path(&doc.digest())?);
        let present = dest.exists();
        if !present || !holds(&dest, &doc.digest(), doc.bytes.len() as u64).await {
            atomic::write(&dest, &doc.bytes, atomic::READABLE)?;
            if !present {
                staged.added.push(dest);
            }
        }
    }
    if staged.fresh.is_some() {
        staged.added.clear(); // the temp directory goes as a whole
    }
    staged.index = serde_json::to_vec(&index).expect("serialises");
    if staged.fresh.is_some() {
        atomic::write(&work.join("index.json"), &staged.index, atomic::READABLE)?;
    }
    Ok(staged)
}

/// Whether the blob already in the layout at `path` is the one its name says: a regular file of
/// `size` bytes hashing to `digest`. A corrupt or truncated copy (a crash, a disk error, a
/// hand edit) is then written again rather than kept, and readers would refuse it.
async fn holds(path: &Path, digest: &str, size: u64) -> bool {
    let (p, want) = (path.to_path_buf(), digest.to_string());
    let check = move || -> std::io::Result<bool> {
        let (f, len) = match crate::source::file::open_regular(&p) {
            Ok(x) => x,
            Err(_) => return Ok(false),
        };
        if len != size {
            return Ok(false);
        }
        let mut h = crate::oci::digest::HashingWriter::new(std::io::sink());
        std::io::copy(&mut std::io::Read::take(f, size), &mut h)?;
        Ok(h.hasher.finish() == want)
    };
    let ok = tokio::task::spawn_blocking(check)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(false);
    if !ok {
        tracing::warn!(
            "{} is not the blob {digest} its name says; writing it again",
            path.display()
        );
    }
    ok
}

fn read_index(path: &Path, new: bool) -> Result<Value> {
    if new {
        return Ok(json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}));
    }
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::path(
                path,
                format!("is not valid JSON ({e}) — fix or remove the layout"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}))
        }
        Err(e) => Err(Error::io("reading", path, e)),
    }
}
