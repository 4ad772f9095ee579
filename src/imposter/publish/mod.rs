//! What `mockimg publish` puts in a bucket for the engine to read, and what the engine needs of
//! it: the config tree as `build` would ship it (same walker, same layer digest), the engine and
//! version recorded with it, what the JVM engine's S3 loader does with a prefix ([`jvm`]) and
//! the variables a stock Imposter Lambda reads its config by ([`lambda`]). The writers (the
//! object-store sync, its lock, the Lambda function update) are sinks: `sink::publish`,
//! `sink::lambda_fn`.
pub(crate) mod jvm;
pub(crate) mod lambda;

use crate::imposter::engine::EngineChoice;
use crate::mutate::layer::{self, LayerOptions};
use crate::mutate::walk::{self, WalkOptions};
use crate::oci::ImageRef;
use crate::sink::publish::plan::{LocalFile, RECORD_NAME};
use crate::sink::publish::{lock, read_regular, PublishError, Tree};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Walks `dir` with the same walker and filters as `build` and makes the same deterministic
/// layer tar, so the digest is that layer's diff_id. The only place publish touches the walker
/// and the layer builder.
pub(crate) fn local_tree(dir: &Path, walk: &WalkOptions, mtime: u64) -> Result<Tree, PublishError> {
    let w = walk::collect_walk(dir, walk)?;
    let built = layer::build(
        &w.entries,
        &LayerOptions {
            mtime,
            ..Default::default()
        },
    )?;
    // Every file as an engine reading the directory sees it: files, links as the file they
    // resolve to, and the files under symlinked directories. The walk resolved every link; the
    // paths read here have none left in them.
    let mut files = Vec::new();
    for e in w.entries.iter().chain(&w.linked) {
        if let Some((source, _)) = e.content() {
            files.push(hash_file(dir, &e.rel, source)?);
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    if let Some(f) = files
        .iter()
        .find(|f| f.rel == RECORD_NAME || f.rel == lock::LOCK_NAME)
    {
        return Err(crate::error::Error::path(
            dir.join(&f.rel),
            "is the name mockimg publish keeps its record under — rename or --exclude it",
        )
        .into());
    }
    Ok(Tree {
        files,
        digest: built.diff_id,
    })
}

fn rel_string(dir: &Path, rel: &Path) -> Result<String, PublishError> {
    let s = rel.to_str().ok_or_else(|| {
        crate::error::Error::path(
            dir.join(rel),
            "name is not UTF-8, so it cannot be an object key — rename or --exclude it",
        )
    })?;
    if s.chars().any(|c| c.is_control()) {
        return Err(crate::error::Error::path(
            dir.join(rel),
            "name holds a control character, so it cannot be an object key — rename or --exclude it",
        )
        .into());
    }
    Ok(s.to_string())
}

fn hash_file(dir: &Path, rel: &Path, source: &Path) -> Result<LocalFile, PublishError> {
    let bytes = read_regular(source)?;
    Ok(LocalFile {
        rel: rel_string(dir, rel)?,
        source: source.to_path_buf(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
    })
}

/// The engine and version recorded for a publish, from the engine `build` would choose for the
/// same flags and project file (see `engine::choose`): the Imposter CLI's engine name and the
/// base tag (the release), or the digest when the base is pinned by digest only.
pub(crate) fn engine_record(choice: &EngineChoice) -> (String, String) {
    let version = match &choice.base {
        ImageRef::Registry(r) => r
            .tag
            .clone()
            .or_else(|| r.digest.clone())
            .unwrap_or_else(|| "latest".into()),
        other => other.to_string(),
    };
    (choice.facts.cli_name.to_string(), version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::publish::plan::Record;
    use crate::sink::publish::store::Target;
    use crate::sink::publish::{publish, PublishOptions};
    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    use std::sync::Arc;

    fn tree_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("responses")).unwrap();
        std::fs::write(d.path().join("a-config.yaml"), "plugin: rest\n").unwrap();
        std::fs::write(d.path().join("responses/one.json"), "{}").unwrap();
        std::os::unix::fs::symlink("responses", d.path().join("linked")).unwrap();
        std::os::unix::fs::symlink("one.json", d.path().join("responses/alias.json")).unwrap();
        d
    }

    fn opts(delete_unknown: bool, dry_run: bool) -> PublishOptions {
        PublishOptions {
            target: Target::parse("s3://b/p").unwrap(),
            engine: "core".into(),
            version: "4.9.3".into(),
            delete_unknown,
            dry_run,
            reader: None,
        }
    }

    #[test]
    fn symlinks_publish_their_targets_and_digest_is_the_layer_diff_id() {
        let d = tree_dir();
        let t = local_tree(d.path(), &WalkOptions::default(), 0).unwrap();
        let rels: Vec<_> = t.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                "a-config.yaml",
                "linked/alias.json",
                "linked/one.json",
                "responses/alias.json",
                "responses/one.json"
            ]
        );
        let entries = walk::collect(d.path(), &WalkOptions::default()).unwrap();
        let l = layer::build(&entries, &LayerOptions::default()).unwrap();
        assert_eq!(t.digest, l.diff_id);
    }

    #[test]
    fn the_record_names_the_engine_build_would_choose() {
        use crate::imposter::engine::{choose, EngineFlags};
        let flags = |e: Option<&str>, v: Option<&str>| EngineFlags {
            engine: e.map(str::to_string),
            version: v.map(str::to_string),
            ..Default::default()
        };
        let c = choose(&flags(Some("docker-all"), Some("4.1.0")), None).unwrap();
        assert_eq!(
            engine_record(&c),
            ("docker-all".to_string(), "4.1.0".to_string())
        );
        let c = choose(&flags(Some("golang"), None), None).unwrap();
        assert_eq!(
            engine_record(&c).1,
            crate::imposter::engine::DEFAULT_GO_ENGINE_VERSION
        );
        let e = choose(&flags(Some("nope"), None), None).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn reserved_record_name_in_the_tree_is_refused() {
        let d = tree_dir();
        std::fs::write(d.path().join(RECORD_NAME), "{}").unwrap();
        let e = local_tree(d.path(), &WalkOptions::default(), 0).unwrap_err();
        assert!(e.to_string().contains("record"), "{e}");
    }

    #[tokio::test]
    async fn a_record_written_meanwhile_wins_and_nothing_it_lists_is_deleted() {
        let d = tree_dir();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let t = local_tree(d.path(), &WalkOptions::default(), 0).unwrap();
        publish(store.clone(), &t, &opts(false, false), &|_, _| {})
            .await
            .unwrap();
        std::fs::remove_file(d.path().join("responses/alias.json")).unwrap();
        std::fs::write(d.path().join("a-config.yaml"), "plugin: soap\n").unwrap();
        let t2 = local_tree(d.path(), &WalkOptions::default(), 0).unwrap();
        // Another writer (one that took no lock) replaces the record while this one uploads.
        let mut theirs = Record {
            digest: "sha256:theirs".into(),
            engine: "core".into(),
            version: "4.9.3".into(),
            files: Default::default(),
        };
        theirs
            .files
            .insert("responses/alias.json".into(), "00".into());
        let key: object_store::path::Path = "p/.mockimg-publish.json".into();
        let other = store.clone();
        let on_upload = move |_: &str, _: u64| {
            let put = other.put(&key, PutPayload::from(theirs.to_bytes()));
            // InMemory completes at once.
            futures_util::FutureExt::now_or_never(put).unwrap().unwrap();
        };
        let e = publish(store.clone(), &t2, &opts(false, false), &on_upload)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sha256:theirs") && e.contains("run it again"),
            "{e}"
        );
        assert!(store.head(&"p/responses/alias.json".into()).await.is_ok());
        assert!(matches!(
            store.head(&"p/.mockimg-publish.lock".into()).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn publish_then_republish_uploads_only_changes() {
        let d = tree_dir();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let t = local_tree(d.path(), &WalkOptions::default(), 0).unwrap();
        let o = publish(store.clone(), &t, &opts(false, false), &|_, _| {})
            .await
            .unwrap();
        assert_eq!(o.plan.upload.len(), 5);
        let rec = store
            .get(&"p/.mockimg-publish.json".into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let rec: Record = serde_json::from_slice(&rec).unwrap();
        assert_eq!(rec.digest, t.digest);
        let again = publish(store.clone(), &t, &opts(false, false), &|_, _| {})
            .await
            .unwrap();
        assert!(again.plan.upload.is_empty() && again.plan.record.is_none());
        std::fs::remove_file(d.path().join("responses/alias.json")).unwrap();
        let t2 = local_tree(d.path(), &WalkOptions::default(), 0).unwrap();
        let dry = publish(store.clone(), &t2, &opts(false, true), &|_, _| {})
            .await
            .unwrap();
        // The linked directory shows the same files, so the alias goes from both paths.
        let gone = ["linked/alias.json", "responses/alias.json"];
        assert_eq!(dry.plan.delete, gone);
        assert!(store.head(&"p/responses/alias.json".into()).await.is_ok());
        let o = publish(store.clone(), &t2, &opts(false, false), &|_, _| {})
            .await
            .unwrap();
        assert_eq!(o.plan.delete, gone);
        assert!(matches!(
            store.head(&"p/responses/alias.json".into()).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }
}
