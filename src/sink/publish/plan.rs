//! What a publish will do, decided before anything is written: the local files with their
//! hashes, the previous record, and what the store holds, in; uploads, deletes and the new
//! record, out. Pure, so every rule of the sync is tested without a store.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The name of the record object, directly under the prefix.
pub(crate) const RECORD_NAME: &str = ".mockimg-publish.json";

/// The record of a publish, stored as `PREFIX/.mockimg-publish.json`: what was published, so the
/// next publish knows what it owns and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The config layer's diff_id (`sha256:…`): the same value `build` records for this tree.
    pub digest: String,
    /// The engine the config was validated for (`core`, `all`, `distroless`).
    pub engine: String,
    /// The engine version the config was validated for.
    pub version: String,
    /// Every published file, `/`-separated path relative to the prefix → lowercase hex sha256.
    pub files: BTreeMap<String, String>,
}

impl Record {
    /// The record's bytes as stored: pretty JSON with a final newline, keys in a stable order.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a record always serialises");
        v.push(b'\n');
        v
    }
}

/// One file to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalFile {
    /// `/`-separated path relative to the config dir.
    pub rel: String,
    /// Where to read it (a symlink's path: reading follows it, so its target's bytes go up).
    pub source: PathBuf,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// An object the store already holds under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    /// Path relative to the prefix, `/`-separated.
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a publish does, in the order it does it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// New or changed files, uploaded first.
    pub upload: Vec<LocalFile>,
    /// Files already there with the same content.
    pub unchanged: Vec<String>,
    /// The new record, written after every upload; `None` when the stored one is identical.
    pub record: Option<Record>,
    /// Paths (relative to the prefix) deleted last.
    pub delete: Vec<String>,
}

/// Decides the sync. A file is unchanged only if the previous record has the same hash and the
/// object is still there with the same size, so an object removed by hand is put back. Deletes
/// are what the previous record listed that is gone now; with `delete_unknown`, also every other
/// object under the prefix that this publish does not hold.
pub(crate) fn plan(
    local: &[LocalFile],
    previous: Option<&Record>,
    remote: &[Remote],
    next: Record,
    delete_unknown: bool,
) -> Plan {
    let remote_size: BTreeMap<&str, u64> =
        remote.iter().map(|r| (r.rel.as_str(), r.size)).collect();
    let mut p = Plan::default();
    for f in local {
        let same_hash = previous
            .and_then(|r| r.files.get(&f.rel))
            .is_some_and(|h| *h == f.sha256);
        let still_there = remote_size.get(f.rel.as_str()) == Some(&f.size);
        if same_hash && still_there {
            p.unchanged.push(f.rel.clone());
        } else {
            p.upload.push(f.clone());
        }
    }
    let keep: BTreeSet<&str> = local
        .iter()
        .map(|f| f.rel.as_str())
        .chain([RECORD_NAME])
        .collect();
    let mut delete = BTreeSet::new();
    if let Some(prev) = previous {
        for rel in prev.files.keys() {
            if !keep.contains(rel.as_str()) && remote_size.contains_key(rel.as_str()) {
                delete.insert(rel.clone());
            }
        }
    }
    if delete_unknown {
        for r in remote {
            if !keep.contains(r.rel.as_str()) {
                delete.insert(r.rel.clone());
            }
        }
    }
    p.delete = delete.into_iter().collect();
    let record_there = remote_size.contains_key(RECORD_NAME);
    if !(record_there && previous == Some(&next)) {
        p.record = Some(next);
    }
    p
}

/// A sensible `Content-Type` for a config file, by extension.
pub(crate) fn content_type(rel: &str) -> &'static str {
    let ext = rel
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "yaml" | "yml" => "application/yaml",
        "json" => "application/json",
        "xml" | "wsdl" | "xsd" => "application/xml",
        "js" | "mjs" => "text/javascript",
        "groovy" => "text/x-groovy",
        "txt" | "csv" | "properties" | "env" | "md" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html",
        "graphql" | "proto" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rel: &str, sha: &str, size: u64) -> LocalFile {
        LocalFile {
            rel: rel.into(),
            source: PathBuf::from(rel),
            sha256: sha.into(),
            size,
        }
    }

    fn record(files: &[(&str, &str)]) -> Record {
        Record {
            digest: "sha256:d".into(),
            engine: "core".into(),
            version: "4.9.3".into(),
            files: files
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn remote(items: &[(&str, u64)]) -> Vec<Remote> {
        items
            .iter()
            .map(|(r, s)| Remote {
                rel: r.to_string(),
                size: *s,
            })
            .collect()
    }

    #[test]
    fn first_publish_uploads_everything_and_writes_the_record() {
        let local = [file("a-config.yaml", "aa", 2), file("r/b.json", "bb", 3)];
        let next = record(&[("a-config.yaml", "aa"), ("r/b.json", "bb")]);
        let p = plan(&local, None, &[], next.clone(), false);
        assert_eq!(p.upload.len(), 2);
        assert_eq!(p.record, Some(next));
        assert!(p.delete.is_empty() && p.unchanged.is_empty());
    }

    #[test]
    fn unchanged_tree_plans_nothing_at_all() {
        let local = [file("a-config.yaml", "aa", 2)];
        let rec = record(&[("a-config.yaml", "aa")]);
        let rem = remote(&[("a-config.yaml", 2), (RECORD_NAME, 100)]);
        let p = plan(&local, Some(&rec), &rem, rec.clone(), false);
        assert_eq!(p.unchanged, ["a-config.yaml"]);
        assert!(p.upload.is_empty() && p.delete.is_empty() && p.record.is_none());
    }

    #[test]
    fn changed_added_and_removed_files() {
        let local = [file("a-config.yaml", "a2", 2), file("new.json", "nn", 1)];
        let prev = record(&[("a-config.yaml", "aa"), ("old.json", "oo")]);
        let rem = remote(&[("a-config.yaml", 2), ("old.json", 1), (RECORD_NAME, 9)]);
        let next = record(&[("a-config.yaml", "a2"), ("new.json", "nn")]);
        let p = plan(&local, Some(&prev), &rem, next, false);
        let up: Vec<_> = p.upload.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(up, ["a-config.yaml", "new.json"]);
        assert_eq!(p.delete, ["old.json"]);
        assert!(p.record.is_some());
    }

    #[test]
    fn foreign_objects_stay_unless_delete_unknown() {
        let local = [file("a-config.yaml", "aa", 2)];
        let rec = record(&[("a-config.yaml", "aa")]);
        let rem = remote(&[("a-config.yaml", 2), ("theirs.txt", 5), (RECORD_NAME, 9)]);
        let p = plan(&local, Some(&rec), &rem, rec.clone(), false);
        assert!(p.delete.is_empty());
        let p = plan(&local, Some(&rec), &rem, rec.clone(), true);
        assert_eq!(
            p.delete,
            ["theirs.txt"],
            "the record itself is never deleted"
        );
    }

    #[test]
    fn object_removed_by_hand_is_uploaded_again() {
        let local = [file("a-config.yaml", "aa", 2)];
        let rec = record(&[("a-config.yaml", "aa")]);
        let p = plan(
            &local,
            Some(&rec),
            &remote(&[(RECORD_NAME, 9)]),
            rec.clone(),
            false,
        );
        assert_eq!(p.upload.len(), 1);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a-config.YAML"), "application/yaml");
        assert_eq!(content_type("x/y.json"), "application/json");
        assert_eq!(content_type("svc.wsdl"), "application/xml");
        assert_eq!(content_type("s.js"), "text/javascript");
        assert_eq!(content_type("s.groovy"), "text/x-groovy");
        assert_eq!(content_type("notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
