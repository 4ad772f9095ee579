//! Reads an OCI image layout (`index.json` + `blobs/sha256/…`), from a directory (`oci:DIR`) or
//! from inside a tar (`oci-archive:PATH`, and the archives `mockimg build --output` writes): the
//! format is the same, only the [`Store`] differs.
use crate::error::{Error, Result};
use crate::oci::blob::Source;
use crate::oci::digest;
use crate::oci::image::{check_manifest, media, Descriptor, Doc, Image, Root};
use crate::source::store::{blob_path, LocalBlobs, Store, MAX_CONFIG, MAX_MANIFEST};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// The index annotation naming an image by tag (`org.opencontainers.image.ref.name`).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The index annotation containerd and `docker save` name an image by, fully qualified.
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Opens an OCI layout (directory or tar) as a source, picking the entry named `tag`, or the only
/// entry when no tag is given.
pub(crate) fn open(store: Store, tag: Option<&str>, name: String) -> Result<Source> {
    let what = format!("OCI layout {}", store.describe());
    if !store.has("index.json") {
        let hint = if store.has("manifest.json") {
            "has no index.json but a manifest.json — read it as docker-archive:PATH"
        } else {
            "has no index.json — not an OCI image layout"
        };
        return Err(Error::path(PathBuf::from(store.describe()), hint));
    }
    let idx: Value =
        serde_json::from_slice(&store.read("index.json", MAX_MANIFEST)?).map_err(|e| {
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
    let chosen = choose(&descs, tag, &what)?;
    let doc = read_doc(&store, chosen, &what, MAX_MANIFEST)?;
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
            let child = read_doc(&store, &d, &what, MAX_MANIFEST)?;
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

/// The `index.json` entry the user means: the one tagged `tag` (by OCI ref name, or the tag of
/// its containerd name), or the only one; several entries of one digest are one image.
fn choose<'a>(descs: &'a [Descriptor], tag: Option<&str>, what: &str) -> Result<&'a Descriptor> {
    let mut names: Vec<String> = Vec::new();
    for n in descs.iter().filter_map(|d| d.annotation(REF_NAME)) {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    match tag {
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
            }),
        // One image under several names (`ctr images export`, `mockimg build --tag a --tag b`).
        None if descs.iter().all(|d| d.digest == descs[0].digest) && !descs.is_empty() => {
            Ok(&descs[0])
        }
        None if descs.is_empty() => Err(Error::invalid(what, "index.json lists no image")),
        None => Err(Error::Usage(format!(
            "{what} holds {} images; name one with :TAG (it has: {})",
            descs.len(),
            names.join(", ")
        ))),
    }
}

/// A manifest, index or config the layout holds, checked against its descriptor's size and
/// digest; at most `cap` bytes are read.
fn read_doc(store: &Store, d: &Descriptor, what: &str, cap: u64) -> Result<Doc> {
    let name = blob_path(&d.digest)?;
    let at = || PathBuf::from(store.describe());
    if !store.has(&name) {
        return Err(Error::path(
            at(),
            format!("{what}: blob {} is missing — the archive's index.json points at a blob it does not hold", d.digest),
        ));
    }
    if d.size > cap {
        return Err(Error::invalid(
            what,
            format!(
                "its descriptor says blob {} is {} bytes, more than the {cap} it may hold — refusing to load it",
                d.digest, d.size
            ),
        ));
    }
    let bytes = store.read(&name, cap)?;
    let got = digest::sha256(&bytes);
    if got != d.digest {
        return Err(Error::DigestMismatch {
            what: format!("{what} in {}", store.describe()),
            expected: d.digest.clone(),
            actual: got,
        });
    }
    if bytes.len() as u64 != d.size {
        return Err(Error::path(
            at(),
            format!(
                "{what}: blob {} holds {} bytes, but its descriptor says {} — fix the descriptor",
                d.digest,
                bytes.len(),
                d.size
            ),
        ));
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
    let config = read_doc(store, &cd, &format!("{what} config"), MAX_CONFIG)?;
    Ok(Image { config, ..tmp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A layout directory whose index.json lists `entry` and holds `blobs`.
    fn layout_with(entry: Value, blobs: &[&[u8]]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("blobs/sha256")).unwrap();
        for b in blobs {
            let p = d
                .path()
                .join(digest::blob_path(&digest::sha256(b)).unwrap());
            std::fs::write(p, b).unwrap();
        }
        let index = json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(d.path().join("index.json"), index.to_string()).unwrap();
        d
    }

    fn assert_refused_by_name(e: &Error) {
        let msg = e.to_string();
        assert!(
            msg.contains("sha512") && msg.contains("does not support"),
            "{msg}"
        );
        assert!(!e.is_retryable(), "refused, not retried as corrupt: {msg}");
    }

    fn entry(digest_byte: char, full: &str, tag: &str) -> Descriptor {
        let e = json!({
            "mediaType": media::OCI_INDEX,
            "digest": format!("sha256:{}", digest_byte.to_string().repeat(64)),
            "size": 2,
            "annotations": {REF_NAME: tag, CONTAINERD_NAME: full},
        });
        Descriptor::from_json(&e, "t").unwrap()
    }

    #[test]
    fn several_names_of_one_image_need_no_tag_and_share_one() {
        let one = [
            entry('a', "docker.io/team/a:1", "1"),
            entry('a', "127.0.0.1:5000/mocks/app:1", "1"),
        ];
        assert_eq!(choose(&one, None, "l").unwrap().digest, one[0].digest);
        assert_eq!(choose(&one, Some("1"), "l").unwrap().digest, one[0].digest);
        let two = [entry('a', "x/a:1", "1"), entry('b', "x/b:2", "2")];
        let e = choose(&two, None, "l").unwrap_err().to_string();
        assert!(e.contains("holds 2 images") && e.contains("1, 2"), "{e}");
        let e = choose(&one, Some("9"), "l").unwrap_err().to_string();
        assert!(e.contains("(it has: 1)"), "{e}");
    }

    #[test]
    fn a_sha512_index_entry_is_refused_by_name() {
        let sha512 = format!("sha512:{}", "a".repeat(128));
        let d = layout_with(
            json!({"mediaType": media::OCI_MANIFEST, "digest": sha512, "size": 2}),
            &[],
        );
        let e = open(Store::open_dir(d.path()).unwrap(), None, "t".into())
            .err()
            .unwrap();
        assert_refused_by_name(&e);
    }

    #[test]
    fn a_sha512_config_is_refused_by_name() {
        let sha512 = format!("sha512:{}", "b".repeat(128));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": sha512, "size": 2},
            "layers": [],
        })
        .to_string();
        let d = layout_with(
            json!({
                "mediaType": media::OCI_MANIFEST,
                "digest": digest::sha256(manifest.as_bytes()),
                "size": manifest.len(),
            }),
            &[manifest.as_bytes()],
        );
        let e = open(Store::open_dir(d.path()).unwrap(), None, "t".into())
            .err()
            .unwrap();
        assert_refused_by_name(&e);
    }
}
