//! `mockimg publish`: the external-config pattern. A stock engine reads its config from a bucket
//! (`IMPOSTER_CONFIG_DIR=s3://bucket/prefix`); this module keeps that bucket in sync with a
//! config directory and records what it published, so the next publish uploads only what changed
//! and deletes only what it put there.
//!
//! Order of a publish, so a failure part-way never leaves a record that lies: read the previous
//! record and list the prefix; upload new and changed files; write the new record; delete last.
//! All of it under the prefix's lock (see [`lock`]), so two publishes to one prefix never mix.
pub(crate) mod jvm;
pub(crate) mod lambda;
pub(crate) mod lock;
pub(crate) mod plan;
pub(crate) mod store;

use crate::imposter::engine::EngineChoice;
use crate::mutate::layer::{self, LayerOptions};
use crate::mutate::walk::{self, WalkOptions};
use crate::oci::ImageRef;
use futures_util::{StreamExt, TryStreamExt};
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use plan::{LocalFile, Plan, Record, Remote, RECORD_NAME};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use store::{Scheme, Target};

/// Uploads and deletes in flight at once.
const CONCURRENCY: usize = 8;

/// Why a publish failed. Every message is one line naming the bucket (or file) and the fix;
/// none ever holds a credential.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// A malformed `--to` or a flag that does not fit it (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The config directory could not be walked, read or turned into a layer.
    #[error(transparent)]
    Local(#[from] crate::error::Error),
    /// The store client could not be set up (bad endpoint, missing account name, …).
    #[error("{target}: {message}")]
    Setup {
        /// The bucket or directory URL.
        target: String,
        /// What is wrong and the fix.
        message: String,
    },
    /// The store refused or failed a request after its retries.
    #[error("{target}: {message}")]
    Store {
        /// The bucket URL, or the full target.
        target: String,
        /// What failed and the fix.
        message: String,
    },
    /// The publish would not be loaded as published (see [`jvm`]); `--force` overrides.
    #[error("{0}")]
    Refused(String),
    /// The Lambda function could not be read or updated.
    #[error("lambda function {function}: {message}")]
    Lambda {
        /// The function name or ARN given with `--lambda-function`.
        function: String,
        /// What failed and the fix.
        message: String,
    },
}

/// The config tree as a publish sees it: its files with their hashes, and the digest of the
/// layer `build` would make of it.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// Every file (symlinks as their targets), sorted by path.
    pub files: Vec<LocalFile>,
    /// The layer's diff_id, `sha256:…`.
    pub digest: String,
}

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

/// A file the walk handed out, read whole: never through a link, never a special file.
fn read_regular(source: &Path) -> Result<Vec<u8>, PublishError> {
    let err = |e| crate::error::Error::io("reading config file", source, e);
    let (mut f, meta) = walk::open_regular(source).map_err(err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(err)?;
    Ok(bytes)
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

/// What to publish and how.
#[derive(Debug, Clone)]
pub(crate) struct PublishOptions {
    /// Where to.
    pub target: Target,
    /// The engine and version the config was validated for, recorded in the record.
    pub engine: String,
    /// See [`PublishOptions::engine`].
    pub version: String,
    /// Also delete objects under the prefix that mockimg did not publish.
    pub delete_unknown: bool,
    /// Decide and report the plan, change nothing.
    pub dry_run: bool,
    /// The target is read by the JVM engine's S3 loader: check what it would load.
    pub jvm_loader: bool,
    /// Publish even what the loader would not load as published.
    pub force: bool,
}

/// What a publish did (or, with `dry_run`, would do).
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The target URL.
    pub to: String,
    /// The layer diff_id of the published tree.
    pub digest: String,
    /// The plan that was carried out.
    pub plan: Plan,
}

/// Syncs `tree` to `store` under `opts.target`. `on_upload` is told each uploaded path, for
/// progress.
pub(crate) async fn publish(
    store: Arc<dyn ObjectStore>,
    tree: &Tree,
    opts: &PublishOptions,
    on_upload: &(dyn Fn(&str, u64) + Send + Sync),
) -> Result<Outcome, PublishError> {
    let t = &opts.target;
    let local = t.scheme == Scheme::File;
    if local {
        let t2 = t.clone();
        tokio::task::spawn_blocking(move || store::check_local_tree(&t2))
            .await
            .map_err(|e| crate::error::Error::io("checking", &t.bucket, e.into()))??;
    }
    if opts.dry_run {
        return sync(store, tree, opts, on_upload).await;
    }
    lock::acquire(store.as_ref(), t, &tree.digest).await?;
    let r = sync(store.clone(), tree, opts, on_upload).await;
    lock::release(store.as_ref(), t).await;
    r
}

/// The publish itself, under the lock unless it is a dry run.
async fn sync(
    store: Arc<dyn ObjectStore>,
    tree: &Tree,
    opts: &PublishOptions,
    on_upload: &(dyn Fn(&str, u64) + Send + Sync),
) -> Result<Outcome, PublishError> {
    let t = &opts.target;
    let local = t.scheme == Scheme::File;
    let remote = list(store.as_ref(), t).await?;
    let (previous, version) = read_record(store.as_ref(), t).await?;
    let next = Record {
        digest: tree.digest.clone(),
        engine: opts.engine.clone(),
        version: opts.version.clone(),
        files: tree
            .files
            .iter()
            .map(|f| (f.rel.clone(), f.sha256.clone()))
            .collect(),
    };
    let plan = plan::plan(
        &tree.files,
        previous.as_ref(),
        &remote,
        next,
        opts.delete_unknown,
    );
    if opts.jvm_loader {
        // What the prefix holds once this publish is done, as the loader would list it.
        let mut after: std::collections::BTreeSet<&str> = remote
            .iter()
            .map(|r| r.rel.as_str())
            .chain(tree.files.iter().map(|f| f.rel.as_str()))
            .chain([RECORD_NAME])
            .collect();
        for d in &plan.delete {
            after.remove(d.as_str());
        }
        jvm::check(store.as_ref(), t, &tree.files, after.len(), opts.force).await?;
    }
    let outcome = Outcome {
        to: t.to_string(),
        digest: tree.digest.clone(),
        plan,
    };
    if opts.dry_run {
        return Ok(outcome);
    }
    let attributes = t.scheme != Scheme::File;
    let store: &dyn ObjectStore = store.as_ref();
    futures_util::stream::iter(outcome.plan.upload.iter())
        .map(|f| async move {
            upload(store, t, f, attributes).await?;
            on_upload(&f.rel, f.size);
            Ok::<_, PublishError>(())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    if let Some(record) = &outcome.plan.record {
        if local {
            store::check_local_key(t, RECORD_NAME)?;
        }
        let key = t.key(RECORD_NAME)?;
        let mut po = PutOptions::default();
        if attributes {
            po.attributes = content_type_attr("application/json");
        }
        // The record is written only over the one read at the start (If-Match on its ETag, or
        // If-None-Match: * when there was none): a second guard behind the lock, for a lock
        // deleted by hand or a publish by a mockimg without one. LocalFileSystem has no
        // conditional update, so a file:// target relies on the lock for that case.
        po.mode = match version {
            Some(_) if local => PutMode::Overwrite,
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        match store
            .put_opts(&key, PutPayload::from(record.to_bytes()), po)
            .await
        {
            Ok(_) => {}
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                // Nothing of the winner's is deleted: deletes come after the record.
                let winner = match read_record(store, t).await {
                    Ok((Some(r), _)) => r.digest,
                    _ => "an unreadable record".to_string(),
                };
                return Err(PublishError::Store {
                    target: t.to_string(),
                    message: format!(
                        "another publish wrote {winner} here meanwhile, so this one's record was not written — run it again"
                    ),
                });
            }
            Err(e) => return Err(store_error(t, "writing the publish record", &e)),
        }
    }
    futures_util::stream::iter(outcome.plan.delete.iter())
        .map(|rel| async move {
            if local {
                store::check_local_key(t, rel)?;
            }
            let key = t.key(rel)?;
            match store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(store_error(t, &format!("deleting {rel}"), &e)),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(outcome)
}

fn content_type_attr(ct: &'static str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, ct.into());
    a
}

async fn upload(
    store: &dyn ObjectStore,
    t: &Target,
    f: &LocalFile,
    attributes: bool,
) -> Result<(), PublishError> {
    let source = f.source.clone();
    let bytes = tokio::task::spawn_blocking(move || read_regular(&source))
        .await
        .map_err(|e| crate::error::Error::io("reading config file", &f.source, e.into()))??;
    // The record will claim this hash: a file edited since the walk must not be uploaded under it.
    if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
        return Err(crate::error::Error::path(
            &f.source,
            "changed while publishing — run mockimg publish again",
        )
        .into());
    }
    if t.scheme == Scheme::File {
        store::check_local_key(t, &f.rel)?;
    }
    let mut po = PutOptions::default();
    if attributes {
        po.attributes = content_type_attr(plan::content_type(&f.rel));
    }
    store
        .put_opts(&t.key(&f.rel)?, PutPayload::from(bytes), po)
        .await
        .map_err(|e| store_error(t, &format!("uploading {}", f.rel), &e))?;
    Ok(())
}

async fn list(store: &dyn ObjectStore, t: &Target) -> Result<Vec<Remote>, PublishError> {
    let prefix = t.prefix_path()?;
    let metas: Vec<object_store::ObjectMeta> = store
        .list((!t.prefix.is_empty()).then_some(&prefix))
        .try_collect()
        .await
        .map_err(|e| store_error(t, "listing", &e))?;
    let strip = if t.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", t.prefix)
    };
    Ok(metas
        .into_iter()
        .filter_map(|m| {
            let rel = m
                .location
                .as_ref()
                .strip_prefix(strip.as_str())?
                .to_string();
            (rel != lock::LOCK_NAME).then_some(())?;
            Some(Remote { rel, size: m.size })
        })
        .collect())
}

/// The stored record, and the version of the object holding it (also when it is not a record),
/// for the conditional write of the next one.
async fn read_record(
    store: &dyn ObjectStore,
    t: &Target,
) -> Result<(Option<Record>, Option<UpdateVersion>), PublishError> {
    let key = t.key(RECORD_NAME)?;
    let (bytes, version) = match store.get(&key).await {
        Ok(r) => {
            let version = UpdateVersion {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            let b = r
                .bytes()
                .await
                .map_err(|e| store_error(t, "reading the publish record", &e))?;
            (b, version)
        }
        Err(object_store::Error::NotFound { .. }) => return Ok((None, None)),
        Err(e) => return Err(store_error(t, "reading the publish record", &e)),
    };
    match serde_json::from_slice(&bytes) {
        Ok(r) => Ok((Some(r), Some(version))),
        Err(e) => {
            // Without a record nothing is deleted, which is the safe way to be wrong.
            tracing::warn!(
                "{t}/{RECORD_NAME} is not a mockimg publish record ({e}); it will be replaced and nothing it listed is deleted"
            );
            Ok((None, Some(version)))
        }
    }
}

/// The first line of an error, short enough for one line of output.
pub(crate) fn error_line(e: &dyn std::error::Error) -> String {
    let s = e.to_string();
    let line = s.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// Store error codes (S3, GCS, Azure) that mean the bucket or container is missing.
const MISSING_BUCKET: &[&str] = &[
    "NoSuchBucket",
    "ContainerNotFound",
    "The specified bucket does not exist",
];
/// Store error codes that mean the credentials are wrong or lack a permission.
const DENIED: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
];

/// Words `e` as one line naming the bucket and the fix. The class comes from the error variant
/// where object_store gives one, else from the store's error code in the response.
pub(crate) fn store_error(t: &Target, op: &str, e: &object_store::Error) -> PublishError {
    let text = format!(
        "{e} {:?}",
        std::error::Error::source(e).map(|s| s.to_string())
    );
    let bucket = t.bucket_url();
    let (creds, create) = match t.scheme {
        Scheme::S3 => (
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, web identity or the instance role",
            format!("aws s3 mb {bucket}"),
        ),
        Scheme::Gcs => (
            "GOOGLE_APPLICATION_CREDENTIALS or the instance service account",
            format!("gcloud storage buckets create {bucket}"),
        ),
        Scheme::Azure => (
            "AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or the managed identity",
            format!("az storage container create --name {}", t.bucket),
        ),
        Scheme::File => ("the directory's permissions", format!("mkdir -p {}", t.bucket)),
    };
    let message = if MISSING_BUCKET.iter().any(|c| text.contains(c)) {
        format!("{op}: the bucket does not exist — create it ({create}) or fix --to")
    } else if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || DENIED.iter().any(|c| text.contains(c))
    {
        format!(
            "{op}: access denied — check the credentials ({creds}) and that they may list, read, write and delete under {t}"
        )
    } else {
        format!("{op} failed: {}", error_line(e))
    };
    PublishError::Store {
        target: bucket,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

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
            jvm_loader: false,
            force: false,
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
        assert!(choose(&flags(Some("nope"), None), None).is_err());
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
        assert!(store.head(&"p/.mockimg-publish.lock".into()).await.is_err());
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
        assert!(store.head(&"p/responses/alias.json".into()).await.is_err());
    }
}
