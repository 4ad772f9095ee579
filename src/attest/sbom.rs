//! The SBOM: an SPDX 2.3 JSON document (spdx.github.io/spdx-spec/v2.3) describing the image,
//! which contains every regular file of the config layer (its path inside the image, SHA-256,
//! SHA-1 — which SPDX 2.3 requires of every file — and size) and depends on the base image
//! (`name@digest`). The file list is read back from the built layer blob itself, so it is what
//! the image holds, not what the walker meant to put there.
use super::Facts;
use crate::error::{Error, Result};
use crate::mutate::spool::Spool;
use crate::oci::blob::{io_to_error, verified, BlobSource, LocalBlob};
use crate::oci::image::Doc;
use crate::oci::Descriptor;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};

/// One regular file of the config layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path inside the image (`/opt/imposter/config/x.json`).
    pub path: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Hex SHA-1 of the content (SPDX 2.3 requires it).
    pub sha1: String,
    /// Size in bytes.
    pub size: u64,
}

/// Every regular file of a gzipped layer tar, in tar order; whiteouts are markers, not files,
/// and are left out. Blocking: reads the whole layer once.
pub fn files_of_layer(blob: &LocalBlob) -> Result<Vec<FileEntry>> {
    let bad = |e: std::io::Error| Error::invalid("config layer", format!("reading it back: {e}"));
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(blob.reader()));
    let mut tar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let rel = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        if rel
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with(".wh."))
        {
            continue;
        }
        let (mut s256, mut s1, mut size) = (Sha256::new(), Sha1::new(), 0u64);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = entry.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            s256.update(&buf[..n]);
            s1.update(&buf[..n]);
            size += n as u64;
        }
        out.push(FileEntry {
            path: format!("/{}", rel.trim_start_matches("./").trim_start_matches('/')),
            sha256: hex::encode(s256.finalize()),
            sha1: hex::encode(s1.finalize()),
            size,
        });
    }
    Ok(out)
}

/// [`files_of_layer`] for a layer read from `src` (a rebase's config layer, in the image's
/// registry or file): fetched once, verified against `desc`, kept in memory while small and in
/// an unnamed temp file when not, then read back off the async threads.
pub async fn files_of_blob(src: &dyn BlobSource, desc: &Descriptor) -> Result<Vec<FileEntry>> {
    let what = format!("config layer {}", desc.digest);
    let mut stream = verified(src.open(desc).await?, desc, what.clone());
    let mut spool = Spool::new(None);
    let spooling = |e: std::io::Error| Error::io("spooling", "<config layer>", e);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| io_to_error(&what, e))?;
        spool.write_all(&chunk).map_err(spooling)?;
    }
    let blob = spool.finish().map_err(spooling)?;
    tokio::task::spawn_blocking(move || files_of_layer(&blob))
        .await
        .map_err(|e| Error::invalid("config layer", e.to_string()))?
}

/// The SPDX document for the image `subject` known as `name`.
pub fn spdx(facts: &Facts, subject: &Doc, name: &str) -> Vec<u8> {
    let digest = subject.digest();
    let hex = digest.trim_start_matches("sha256:");
    let (base_name, base_digest) = facts
        .base
        .split_once('@')
        .unwrap_or((facts.base.as_str(), ""));
    let files: Vec<Value> = facts
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            json!({
                "SPDXID": format!("SPDXRef-File-{}", i + 1),
                // SPDX file names are relative to the package root, starting with `./`; the
                // package is the image, so this is the path inside it.
                "fileName": format!(".{}", f.path),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": f.sha1},
                    {"algorithm": "SHA256", "checksumValue": f.sha256},
                ],
                // SPDX 2.3 has no size field for a file; the comment carries it.
                "comment": format!("size: {} bytes", f.size),
            })
        })
        .collect();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Package-image",
    })];
    relationships.extend((1..=files.len()).map(|i| {
        json!({
            "spdxElementId": "SPDXRef-Package-image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": format!("SPDXRef-File-{i}"),
        })
    }));
    relationships.push(json!({
        "spdxElementId": "SPDXRef-Package-image",
        "relationshipType": "DEPENDS_ON",
        "relatedSpdxElement": "SPDXRef-Package-base",
    }));
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name}@{digest}"),
        // Unique per image and name, and the same on every rebuild of it.
        "documentNamespace": format!("https://spdx.org/spdxdocs/mockimg/{name}/{hex}"),
        "creationInfo": {
            "created": facts.created.as_deref().unwrap_or("1970-01-01T00:00:00Z"),
            "creators": [format!("Tool: mockimg-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": [
            {
                "SPDXID": "SPDXRef-Package-image",
                "name": name,
                "versionInfo": digest,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": true,
                "packageVerificationCode": {"packageVerificationCodeValue": verification_code(&facts.files)},
                "primaryPackagePurpose": "CONTAINER",
                "checksums": [{"algorithm": "SHA256", "checksumValue": hex}],
                "externalRefs": [purl(name, &digest)],
                "comment": format!(
                    "config layer {} (diff_id {}) at {}",
                    facts.layer_digest, facts.layer_diff_id, facts.config_path
                ),
            },
            {
                "SPDXID": "SPDXRef-Package-base",
                "name": base_name,
                "versionInfo": base_digest,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "CONTAINER",
                "checksums": [{"algorithm": "SHA256", "checksumValue": base_digest.trim_start_matches("sha256:")}],
                "externalRefs": [purl(base_name, base_digest)],
            },
        ],
        "files": files,
        "relationships": relationships,
    });
    serde_json::to_vec_pretty(&doc).expect("JSON values serialise")
}

/// The package URL of an OCI image (`pkg:oci/NAME@DIGEST?repository_url=HOST/PATH`, the purl
/// spec's `oci` type: the name is the last path component, the digest percent-encoded).
fn purl(name: &str, digest: &str) -> Value {
    let last = name.rsplit('/').next().unwrap_or(name);
    let repo = name.rsplit_once('/').map(|(r, _)| r).unwrap_or("");
    let mut locator = format!("pkg:oci/{last}@{}", digest.replace(':', "%3A"));
    if !repo.is_empty() {
        locator.push_str(&format!("?repository_url={name}"));
    }
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": locator,
    })
}

/// SPDX's package verification code: SHA-1 over the files' SHA-1s, sorted, concatenated.
fn verification_code(files: &[FileEntry]) -> String {
    let mut sums: Vec<&str> = files.iter().map(|f| f.sha1.as_str()).collect();
    sums.sort_unstable();
    hex::encode(Sha1::digest(sums.concat().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::layer::{self, LayerOptions};

    #[test]
    fn the_file_list_is_read_back_from_the_layer() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("a.json"), b"{}").unwrap();
        std::fs::write(d.path().join("sub/b.txt"), b"hello").unwrap();
        let entries =
            crate::mutate::walk::collect(d.path(), &crate::mutate::walk::WalkOptions::default())
                .unwrap();
        let opts = LayerOptions {
            replace: true,
            ..LayerOptions::default()
        };
        let l = layer::build(&entries, &opts).unwrap();
        let files = files_of_layer(&l.blob).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/opt/imposter/config/a.json",
                "/opt/imposter/config/sub/b.txt"
            ]
        );
        assert_eq!(files[1].size, 5);
        assert_eq!(
            files[1].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn the_document_lists_the_files_and_depends_on_the_base() {
        let facts = Facts {
            files: vec![FileEntry {
                path: "/opt/imposter/config/a.json".into(),
                sha256: "00".repeat(32),
                sha1: "11".repeat(20),
                size: 2,
            }],
            base: format!("docker.io/outofcoffee/imposter@sha256:{}", "ab".repeat(32)),
            created: Some("2024-01-01T00:00:00Z".into()),
            ..Facts::default()
        };
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        let v: Value = serde_json::from_slice(&spdx(&facts, &subject, "r.example/m")).unwrap();
        assert_eq!(v["files"][0]["fileName"], "./opt/imposter/config/a.json");
        assert_eq!(v["creationInfo"]["created"], "2024-01-01T00:00:00Z");
        assert_eq!(v["packages"][1]["name"], "docker.io/outofcoffee/imposter");
        assert_eq!(v["relationships"][2]["relationshipType"], "DEPENDS_ON");
    }
}
