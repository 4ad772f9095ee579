//! Writes the archive tar of `--output`: one file that is an OCI image layout and a
//! docker-archive at once (`oci-layout`, `index.json`, `blobs/sha256/…` plus `manifest.json`), so
//! `docker load`, skopeo and `mockimg push` all read it. The bytes are deterministic: fixed
//! headers, and entries in the order of the image's descriptors.
use crate::atomic::{self, AtomicFile};
use crate::error::{Error, Result};
use crate::oci::blob::{self, ByteStream, Source};
use crate::oci::image::{media, Platform};
use crate::sink::layout::{docs, ImageName, OCI_LAYOUT_FILE};
use crate::sink::names::{add_entries, distinct};
use crate::sink::refetch::{copy_blob, is_corrupt};
use crate::source::store::blob_path;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// An archive written to a temp file beside its destination, not yet renamed into place;
/// dropping it removes the temp file.
pub(crate) struct StagedArchive {
    file: AtomicFile,
}

impl StagedArchive {
    /// Syncs the archive and renames it into place.
    pub(crate) fn commit(self) -> Result<()> {
        self.file.commit(atomic::READABLE)
    }
}

/// Writes the image to the archive `path` under every name in `names` at once (the build
/// stages and commits separately, after its pushes). A failure leaves nothing at `path`.
#[cfg(test)]
pub(crate) async fn write(src: &Source, path: &Path, names: &[ImageName]) -> Result<()> {
    stage(src, path, names, &[]).await?.commit()
}

/// Writes the archive for `path` in full, verified, without putting it at `path` yet. `extra`
/// are small blobs stored beside the image but listed nowhere in `index.json` (its referrers:
/// an extra entry there would be a second image to `docker load`, `ctr import` and skopeo).
pub(crate) async fn stage(
    src: &Source,
    path: &Path,
    names: &[ImageName],
    extra: &[bytes::Bytes],
) -> Result<StagedArchive> {
    let names = distinct(names);
    let parent = atomic::parent_of(path);
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
    let mut out = AtomicFile::create(path)?;
    let tmp = out.temp_path().to_path_buf();
    let file = out
        .file()
        .try_clone()
        .map_err(|e| Error::io("creating temp file", &tmp, e))?;
    let mut w = TarWriter {
        out: tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file)),
        path: tmp,
        dest: path.to_path_buf(),
        written: 0,
    };
    w.file("oci-layout", OCI_LAYOUT_FILE).await?;
    w.dir("blobs/").await?;
    w.dir("blobs/sha256/").await?;
    let mut seen = BTreeSet::new();
    for d in src.root.distributable_blobs()? {
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        let entry = blob_path(&d.digest)?;
        let size = d.size;
        // A corrupted copy is cut off again before it is fetched anew, so the archive never
        // holds a bad copy.
        copy_blob(src, &d, &mut w, move |w, s| {
            let entry = entry.clone();
            Box::pin(async move {
                let start = w.written;
                let r = w.stream(&entry, size, s).await;
                if r.as_ref().is_err_and(is_corrupt) {
                    w.rewind(start).await?;
                }
                r
            })
        })
        .await?;
    }
    for doc in docs(&src.root) {
        if seen.insert(doc.digest()) {
            w.file(&blob_path(&doc.digest())?, &doc.bytes).await?;
        }
    }
    for b in extra {
        let d = crate::oci::digest::sha256(b);
        if seen.insert(d.clone()) {
            w.file(&blob_path(&d)?, b).await?;
        }
    }
    let mut manifests = Vec::new();
    add_entries(&mut manifests, &src.root, &names, path)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    w.file(
        "index.json",
        &serde_json::to_vec(&index).expect("serialises"),
    )
    .await?;
    // The docker-archive half names one image: the host's platform when the base has several.
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
        // Every name: `docker load` tags the image with each of them.
        "RepoTags": names.iter().map(|n| n.full.clone()).collect::<Vec<_>>(),
        "Layers": layers,
    }]);
    w.file(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("serialises"),
    )
    .await?;
    w.finish().await?;
    drop(w);
    Ok(StagedArchive { file: out })
}

/// A tar written entry by entry with fixed headers (mode, owner, mtime 0), so the same image
/// gives the same bytes.
struct TarWriter {
    out: tokio::io::BufWriter<tokio::fs::File>,
    /// The temp file being written, for errors about the write itself.
    path: PathBuf,
    /// Where the archive will be renamed to: what errors about its content name.
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

    /// Writes the end-of-archive blocks and flushes; the commit syncs and renames.
    async fn finish(&mut self) -> Result<()> {
        self.raw(&[0u8; 1024]).await?;
        self.out
            .flush()
            .await
            .map_err(|e| Error::io("writing archive", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::blob::BlobSource;
    use crate::oci::image::{Doc, Image, Root};
    use futures_util::future::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct NeverOpened(AtomicUsize);
    impl BlobSource for NeverOpened {
        fn open<'a>(
            &'a self,
            _d: &'a crate::oci::image::Descriptor,
        ) -> BoxFuture<'a, Result<ByteStream>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(futures_util::stream::empty().boxed()) })
        }
    }

    /// An image whose one layer claims a sha512 digest.
    fn sha512_layer_image(blobs: Arc<NeverOpened>) -> Source {
        let config = Doc::new(media::OCI_CONFIG, b"{}".to_vec());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": config.descriptor().to_json(),
            "layers": [{
                "mediaType": media::OCI_LAYER_GZIP,
                "digest": format!("sha512:{}", "c".repeat(128)),
                "size": 3,
            }],
        });
        let manifest = Doc::new(media::OCI_MANIFEST, manifest.to_string().into_bytes());
        Source {
            root: Root::Image(Image {
                manifest,
                config,
                index_entry: None,
            }),
            blobs,
            name: "t".into(),
        }
    }

    #[tokio::test]
    async fn a_sha512_blob_is_refused_by_name_not_fetched_as_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let blobs = Arc::new(NeverOpened(AtomicUsize::new(0)));
        let src = sha512_layer_image(blobs.clone());
        let out = d.path().join("mocks.tar");
        let e = write(&src, &out, &[]).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("sha512") && msg.contains("does not support"),
            "{msg}"
        );
        assert!(!out.exists());
        let e = crate::sink::layout::write(&src, &d.path().join("layout"), &[])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
        assert!(!d.path().join("layout").exists());
        assert_eq!(blobs.0.load(Ordering::SeqCst), 0);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
