//! Reads a `docker save` tar (`docker-archive:PATH[:NAME:TAG]`): its `manifest.json` names the
//! config and layer files, and a Docker schema2 manifest is synthesised over them.
use crate::error::{Error, Result};
use crate::oci::blob::Source;
use crate::oci::digest::{self, Hasher};
use crate::oci::image::{media, Doc, Image, Root};
use crate::source::store::{LocalBlobs, Store, MAX_CONFIG, MAX_MANIFEST};
use crate::source::tar_index::{entry_name, TarIndex};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Opens a `docker save` tar; layer digests are computed from the files (or taken from the
/// config's diff_ids for uncompressed layers). An archive holding several images needs
/// `:NAME:TAG` after the path to pick one.
pub(crate) fn open(path: &Path, name: String) -> Result<Source> {
    let (path, wanted) = split_reference(path);
    let path = path.as_path();
    let index = TarIndex::open(path)?;
    let what = format!("docker archive {}", path.display());
    if index.get("manifest.json").is_none() {
        return Err(Error::path(
            path,
            "has no manifest.json — not a docker-archive (try oci-archive:)",
        ));
    }
    let m: Value =
        serde_json::from_slice(&index.read("manifest.json", MAX_MANIFEST)?).map_err(|e| {
            Error::invalid(
                format!("{what} manifest.json"),
                format!("not valid JSON: {e}"),
            )
        })?;
    let entries = m
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid(&what, "manifest.json lists no image"))?;
    let first = choose(entries, wanted.as_deref(), path, &what)?;
    let config_path = first
        .get("Config")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid(&what, "manifest.json entry lacks Config"))?;
    let config_path = entry_name(Path::new(config_path))
        .ok_or_else(|| Error::invalid(&what, "manifest.json Config path is unsafe"))?;
    let config = Doc::new(media::DOCKER_CONFIG, index.read(&config_path, MAX_CONFIG)?);
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
            .and_then(|s| entry_name(Path::new(s)))
            .ok_or_else(|| Error::invalid(&what, "manifest.json has an unsafe layer path"))?;
        // An uncompressed layer's digest is its diff_id: no need to read it all now. Sinks
        // verify every byte they copy, so a damaged file still fails before anything is kept.
        let (digest, size, gz) = if !is_gzip(&index, &lp)? && digest::is_valid(diff_id) {
            let size = index
                .get(&lp)
                .map(|x| x.1)
                .ok_or_else(|| Error::path(path, format!("lacks layer {lp}")))?;
            (diff_id.clone(), size, false)
        } else {
            hash_entry(&index, &lp)?
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
        blobs: std::sync::Arc::new(LocalBlobs {
            store: Store::Tar(index),
            paths,
        }),
        name,
    })
}

/// The `manifest.json` entry the user means: the one whose `RepoTags` hold `wanted`, or the only
/// one.
fn choose<'a>(
    entries: &'a [Value],
    wanted: Option<&str>,
    path: &Path,
    what: &str,
) -> Result<&'a Value> {
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
    match wanted {
        Some(w) => entries
            .iter()
            .find(|e| tags_of(e).iter().any(|t| same_image_name(t, w)))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{what} has no image named {w:?} (it has: {})",
                    all_tags()
                ))
            }),
        None if entries.len() == 1 => Ok(&entries[0]),
        None => Err(Error::Usage(format!(
            "{what} holds {} images; name one with docker-archive:{}:NAME:TAG (it has: {})",
            entries.len(),
            path.display(),
            all_tags()
        ))),
    }
}

/// `PATH[:NAME[:TAG]]` as skopeo writes docker-archive references: when the whole string is not
/// a file, the longest existing file prefix before a ':' is the archive and the rest names the
/// image in it.
fn split_reference(path: &Path) -> (PathBuf, Option<String>) {
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

fn layer_entry(index: &TarIndex, name: &str) -> Result<(std::io::Take<std::fs::File>, u64)> {
    index
        .reader(name)?
        .ok_or_else(|| Error::path(index.path(), format!("lacks layer {name}")))
}

fn is_gzip(index: &TarIndex, name: &str) -> Result<bool> {
    let (r, _) = layer_entry(index, name)?;
    let mut magic = Vec::with_capacity(2);
    r.take(2)
        .read_to_end(&mut magic)
        .map_err(|e| Error::io("reading archive", index.path(), e))?;
    Ok(magic == [0x1f, 0x8b])
}

/// A layer's digest and size, and whether it is gzip, read through once.
fn hash_entry(index: &TarIndex, name: &str) -> Result<(String, u64, bool)> {
    let (mut r, size) = layer_entry(index, name)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut first = [0u8; 2];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| Error::io("reading archive", index.path(), e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_archive_references_split_at_an_existing_file() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = f.path().display().to_string();
        assert_eq!(
            split_reference(Path::new(&format!("{p}:team/mocks:1"))),
            (f.path().to_path_buf(), Some("team/mocks:1".into()))
        );
        assert_eq!(split_reference(f.path()), (f.path().to_path_buf(), None));
        let missing = Path::new("/nonexistent/x.tar:a:1");
        assert_eq!(split_reference(missing), (missing.to_path_buf(), None));
        assert!(same_image_name("team/mocks:1", "docker.io/team/mocks:1"));
        assert!(same_image_name(
            "busybox:latest",
            "docker.io/library/busybox"
        ));
        assert!(!same_image_name("team/mocks:1", "team/mocks:2"));
    }
}
