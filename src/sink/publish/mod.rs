//! `mockimg publish`'s writer: keeps a bucket prefix (or a directory) in sync with a config
//! tree and records what it published, so the next publish uploads only what changed and
//! deletes only what it put there. What goes up, and what the engine reading the bucket will
//! make of it, is the engine's business (`imposter::publish`); this is the store side.
//!
//! Order of a publish, so a failure part-way never leaves a record that lies: read the previous
//! record and list the prefix; upload new and changed files; write the new record; delete last.
//! All of it under the prefix's lock (see [`lock`]), so two publishes to one prefix never mix.
mod error;
mod list;
pub(crate) mod lock;
pub(crate) mod plan;
pub(crate) mod store;

pub(crate) use error::{error_line, store_error, PublishError};

use futures_util::{StreamExt, TryStreamExt};
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use plan::{LocalFile, Plan, Record, RECORD_NAME};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use store::{Scheme, Target};

/// Uploads and deletes in flight at once.
const CONCURRENCY: usize = 8;

/// The config tree as a publish sees it: its files with their hashes, and the digest of the
/// layer `build` would make of it.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// Every file (symlinks as their targets), sorted by path.
    pub files: Vec<LocalFile>,
    /// The layer's diff_id, `sha256:…`.
    pub digest: String,
}

/// What the engine that reads the target will make of a publish, asked once the plan is made
/// and before anything is written (the JVM engine's S3 loader: `imposter::publish::jvm`). It
/// may read the files (it runs on a blocking thread), warn, and refuse with
/// [`PublishError::Refused`].
pub(crate) trait ReaderCheck: Send + Sync {
    /// `files` are the tree's files; `beside` the keys beside the prefix whose names start with
    /// it (see [`list::siblings`]); `objects` how many objects the prefix holds once the
    /// publish is done.
    fn check(
        &self,
        target: &Target,
        files: &[LocalFile],
        beside: &[String],
        objects: usize,
    ) -> Result<(), PublishError>;
}

/// What to publish and how.
#[derive(Clone)]
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
    /// What the engine reading the target must be able to load, when it reads it itself.
    pub reader: Option<Arc<dyn ReaderCheck>>,
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

/// A file the walk handed out, read whole: never through a link, never a special file.
pub(crate) fn read_regular(source: &Path) -> Result<Vec<u8>, PublishError> {
    let err = |e| crate::error::Error::io("reading config file", source, e);
    let (mut f, meta) = crate::mutate::walk::open_regular(source).map_err(err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(err)?;
    Ok(bytes)
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
    let remote = list::list(store.as_ref(), t).await?;
    let (previous, version) = list::read_record(store.as_ref(), t).await?;
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
    if let Some(reader) = &opts.reader {
        // What the prefix holds once this publish is done, as a listing would show it.
        let mut after: std::collections::BTreeSet<&str> = remote
            .iter()
            .map(|r| r.rel.as_str())
            .chain(tree.files.iter().map(|f| f.rel.as_str()))
            .chain([RECORD_NAME])
            .collect();
        for d in &plan.delete {
            after.remove(d.as_str());
        }
        let beside = list::siblings(store.as_ref(), t).await?;
        let (reader, t2, files, objects) =
            (reader.clone(), t.clone(), tree.files.clone(), after.len());
        tokio::task::spawn_blocking(move || reader.check(&t2, &files, &beside, objects))
            .await
            .map_err(|e| crate::error::Error::io("reading config files", &t.bucket, e.into()))??;
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
                let winner = match list::read_record(store, t).await {
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
