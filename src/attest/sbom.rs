//! The SBOM: an SPDX 2.3 JSON document (spdx.github.io/spdx-spec/v2.3) describing the image,
//! which contains the config layer, which contains every regular file of it (its path inside
//! the image, SHA-256, SHA-1 — which SPDX 2.3 requires of every file — and size); the image
//! depends on the base. The file list is read back from the built layer blob itself, so it is
//! what the image holds, not what the walker meant to put there.
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

/// Where SPDX document namespaces live: under the project's own URL, never spdx.org's.
pub const NAMESPACE_BASE: &str = "https://github.com/mockimg/mockimg/spdxdocs";

/// The SPDX document for the image `subject` known as `name` (`None`: an image with no pushed
/// name, which the document then names by digest alone, with no purl).
///
/// Packages: the image (`filesAnalyzed` false: the document lists only the files mockimg
/// added), which `CONTAINS` the config layer (`filesAnalyzed` true, its verification code over
/// exactly the files it `CONTAINS`) and `DEPENDS_ON` the base.
pub fn spdx(facts: &Facts, subject: &Doc, name: Option<&str>) -> Vec<u8> {
    let digest = subject.digest();
    let hex = digest.trim_start_matches("sha256:");
    let (base_name, base_digest) = facts.base_parts();
    let files: Vec<Value> = facts
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            json!({
                "SPDXID": format!("SPDXRef-File-{}", i + 1),
                // SPDX file names are relative to the package root, starting with `./`; the
                // layer is unpacked at the image's root, so this is the path inside the image.
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
    let mut relationships = vec![
        json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Package-image",
        }),
        json!({
            "spdxElementId": "SPDXRef-Package-image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-Package-config-layer",
        }),
    ];
    relationships.extend((1..=files.len()).map(|i| {
        json!({
            "spdxElementId": "SPDXRef-Package-config-layer",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": format!("SPDXRef-File-{i}"),
        })
    }));
    relationships.push(json!({
        "spdxElementId": "SPDXRef-Package-image",
        "relationshipType": "DEPENDS_ON",
        "relatedSpdxElement": "SPDXRef-Package-base",
    }));
    let mut image = json!({
        "SPDXID": "SPDXRef-Package-image",
        "name": name.unwrap_or("container image"),
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        // The base's files are not listed: the image is not analysed, its config layer is.
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": hex}],
    });
    if let Some(name) = name {
        image["externalRefs"] = json!([purl(name, &digest)]);
    }
    let layer = json!({
        "SPDXID": "SPDXRef-Package-config-layer",
        "name": "config layer",
        "versionInfo": facts.layer_digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": true,
        "packageVerificationCode": {"packageVerificationCodeValue": verification_code(&facts.files)},
        "primaryPackagePurpose": "ARCHIVE",
        "checksums": [{"algorithm": "SHA256", "checksumValue": facts.layer_digest.trim_start_matches("sha256:")}],
        "comment": format!(
            "the image's last layer, unpacked at {} (diff_id {})",
            facts.config_path, facts.layer_diff_id
        ),
    });
    let mut base = json!({
        "SPDXID": "SPDXRef-Package-base",
        "name": base_name.unwrap_or("base image"),
        "versionInfo": base_digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": base_digest.trim_start_matches("sha256:")}],
    });
    if let Some(base_name) = base_name {
        base["externalRefs"] = json!([purl(base_name, base_digest)]);
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": match name {
            Some(name) => format!("{name}@{digest}"),
            None => digest.clone(),
        },
        "creationInfo": {
            "created": facts.created.as_deref().unwrap_or("1970-01-01T00:00:00Z"),
            "creators": [format!("Tool: mockimg-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": [image, layer, base],
        "files": files,
        "relationships": relationships,
    });
    doc["documentNamespace"] = json!(namespace(&doc, name, hex));
    serde_json::to_vec_pretty(&doc).expect("JSON values serialise")
}

/// The document's namespace: under the project's URL, by the image's name (or `image`) and
/// digest, ending in a hash of the document without its namespace, so any change to the
/// document (another mockimg version, another base) is another namespace, and the same
/// document keeps its one.
fn namespace(doc: &Value, name: Option<&str>, image_hex: &str) -> String {
    let body = serde_json::to_vec(doc).expect("JSON values serialise");
    let short = hex::encode(&Sha256::digest(&body)[..8]);
    format!(
        "{NAMESPACE_BASE}/{}/{image_hex}-{short}",
        name.unwrap_or("image")
    )
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

/// SPDX's package verification code (SPDX 2.3 clause 7.9): SHA-1 over the files' SHA-1s as
/// lower-case hex, sorted, concatenated with nothing between. No file is excluded: the SPDX
/// document itself is not in the layer.
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

    fn facts(base: String) -> Facts {
        Facts {
            files: vec![FileEntry {
                path: "/opt/imposter/config/a.json".into(),
                sha256: "00".repeat(32),
                sha1: "11".repeat(20),
                size: 2,
            }],
            layer_digest: format!("sha256:{}", "cd".repeat(32)),
            base,
            created: Some("2024-01-01T00:00:00Z".into()),
            ..Facts::default()
        }
    }

    fn doc(facts: &Facts, name: Option<&str>) -> Value {
        let subject = Doc::new(crate::oci::media::OCI_INDEX, &b"{}"[..]);
        serde_json::from_slice(&spdx(facts, &subject, name)).unwrap()
    }

    fn relation(v: &Value, from: &str, kind: &str) -> Vec<String> {
        v["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["spdxElementId"] == from && r["relationshipType"] == kind)
            .map(|r| r["relatedSpdxElement"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_config_layer_package_holds_the_files_and_the_image_holds_the_layer() {
        let f = facts(format!(
            "docker.io/outofcoffee/imposter@sha256:{}",
            "ab".repeat(32)
        ));
        let v = doc(&f, Some("r.example/m"));
        assert_eq!(v["files"][0]["fileName"], "./opt/imposter/config/a.json");
        assert_eq!(v["creationInfo"]["created"], "2024-01-01T00:00:00Z");
        let [image, layer, base] = [0, 1, 2].map(|i| v["packages"][i].clone());
        assert_eq!(image["filesAnalyzed"], false);
        assert!(image.get("packageVerificationCode").is_none());
        assert_eq!(layer["filesAnalyzed"], true);
        assert_eq!(
            layer["packageVerificationCode"]["packageVerificationCodeValue"],
            verification_code(&f.files)
        );
        assert_eq!(layer["checksums"][0]["checksumValue"], "cd".repeat(32));
        assert_eq!(
            relation(&v, "SPDXRef-Package-image", "CONTAINS"),
            ["SPDXRef-Package-config-layer"]
        );
        assert_eq!(
            relation(&v, "SPDXRef-Package-config-layer", "CONTAINS"),
            ["SPDXRef-File-1"]
        );
        assert_eq!(
            relation(&v, "SPDXRef-Package-image", "DEPENDS_ON"),
            ["SPDXRef-Package-base"]
        );
        assert_eq!(base["name"], "docker.io/outofcoffee/imposter");
        assert_eq!(
            base["externalRefs"][0]["referenceLocator"],
            format!(
                "pkg:oci/imposter@sha256%3A{}?repository_url=docker.io/outofcoffee/imposter",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_local_base_and_an_unnamed_image_get_no_made_up_name_or_purl() {
        let v = doc(&facts(format!("@sha256:{}", "ab".repeat(32))), None);
        let [image, _, base] = [0, 1, 2].map(|i| v["packages"][i].clone());
        assert_eq!(base["name"], "base image");
        assert_eq!(base["versionInfo"], format!("sha256:{}", "ab".repeat(32)));
        assert!(base.get("externalRefs").is_none(), "{base}");
        assert_eq!(image["name"], "container image");
        assert!(image.get("externalRefs").is_none(), "{image}");
        // The stand-in rebase used to write reads as no name too.
        let v = doc(&facts(format!("base@sha256:{}", "ab".repeat(32))), None);
        assert_eq!(v["packages"][2]["name"], "base image");
    }

    #[test]
    fn the_namespace_is_the_projects_and_changes_with_the_document() {
        let f = facts(format!("r.example/base@sha256:{}", "ab".repeat(32)));
        let ns = |f: &Facts| doc(f, Some("r.example/m"))["documentNamespace"].clone();
        let first = ns(&f);
        let s = first.as_str().unwrap();
        assert!(
            s.starts_with(&format!("{NAMESPACE_BASE}/r.example/m/")),
            "{s}"
        );
        assert_eq!(ns(&f), first, "the same document keeps its namespace");
        let mut other = f.clone();
        other.created = Some("2025-01-01T00:00:00Z".into());
        assert_ne!(ns(&other), first, "another document, another namespace");
        // The hash is over the document without its namespace: strip it and recompute.
        let mut v = doc(&f, Some("r.example/m"));
        v.as_object_mut().unwrap().remove("documentNamespace");
        let hash = hex::encode(&Sha256::digest(serde_json::to_vec(&v).unwrap())[..8]);
        assert!(s.ends_with(&format!("-{hash}")), "{s} {hash}");
    }

    #[test]
    fn the_verification_code_is_the_sha1_of_the_sorted_file_sha1s() {
        // SPDX 2.3 clause 7.9 worked by hand: sha1("hello") and sha1(""), sorted, concatenated,
        // hashed (`printf %s aaf4…434dda39…0709 | sha1sum`).
        let file = |sha1: &str| FileEntry {
            path: String::new(),
            sha256: String::new(),
            sha1: sha1.into(),
            size: 0,
        };
        let files = [
            file("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            file("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
        ];
        assert_eq!(
            verification_code(&files),
            "7040b9aa1cc91cadeb713b1482a6de06554f8b0e"
        );
    }
}
