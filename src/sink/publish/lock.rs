//! One publish per prefix at a time. Two publishes to one prefix at once (two CI pipelines after
//! quick merges) would each upload their files over the other's and both write a record, leaving
//! the bucket mixed. Before it uploads anything a publish creates `PREFIX/.mockimg-publish.lock`
//! with a create-only put (`If-None-Match: *` on S3; a hard link on `file://`); the one that
//! finds it there changes nothing, names the digest the holder is publishing, and exits 1. The
//! lock is deleted when the publish ends, failed or not.
//!
//! Why a lock and not only a conditional put of the record: uploads come before the record, so
//! a publish that loses the record write would already have overwritten the winner's files.
use super::store::{self, Scheme, Target};
use super::{store_error, PublishError};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// The name of the lock object, directly under the prefix.
pub(crate) const LOCK_NAME: &str = ".mockimg-publish.lock";

/// What the lock holds: who holds it, for the message of the publish that finds it.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    /// The digest the holding publish is publishing.
    digest: String,
    /// When it started, seconds since the Unix epoch.
    started: u64,
}

/// Takes the lock for `digest`, or says who holds it.
pub(crate) async fn acquire(
    store: &dyn ObjectStore,
    t: &Target,
    digest: &str,
) -> Result<(), PublishError> {
    if t.scheme == Scheme::File {
        store::check_local_key(t, LOCK_NAME)?;
    }
    let key = t.key(LOCK_NAME)?;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = serde_json::to_vec(&Holder {
        digest: digest.to_string(),
        started,
    })
    .expect("a lock always serialises");
    let body = PutPayload::from(body);
    // The holder may finish between our failed create and our read of its lock: then the prefix
    // is free, and we try again rather than name nobody.
    let mut attempts = 3;
    loop {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match store.put_opts(&key, body.clone(), opts).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(store_error(t, "taking the publish lock", &e)),
        }
        attempts -= 1;
        let holder = match store.get(&key).await {
            Ok(r) => r
                .bytes()
                .await
                .ok()
                .map(|b| serde_json::from_slice::<Holder>(&b).ok()),
            Err(object_store::Error::NotFound { .. }) if attempts > 0 => continue,
            Err(_) => Some(None),
        };
        return Err(held(t, holder.flatten()));
    }
}

/// The error for a lock another publish holds, naming its digest.
fn held(t: &Target, holder: Option<Holder>) -> PublishError {
    let who = match holder {
        Some(h) => format!(
            "another publish of {} (started at {} Unix time)",
            h.digest, h.started
        ),
        None => "another publish".to_string(),
    };
    PublishError::Store {
        target: t.to_string(),
        message: format!(
            "{who} is writing this prefix, so this one changed nothing — run it again when that \
             one is done (if none is running, delete {t}/{LOCK_NAME})"
        ),
    }
}

/// Gives the lock back. A failure is only warned about: the publish itself is done or failed
/// already, and the next publish names the stale lock.
pub(crate) async fn release(store: &dyn ObjectStore, t: &Target) {
    let Ok(key) = t.key(LOCK_NAME) else { return };
    if t.scheme == Scheme::File && store::check_local_key(t, LOCK_NAME).is_err() {
        return;
    }
    match store.delete(&key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(
            "{t}: could not delete the publish lock ({}); delete {t}/{LOCK_NAME} before the next publish",
            super::error_line(&e)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_held_lock_names_the_holders_digest_until_released() {
        let store = InMemory::new();
        let t = Target::parse("s3://b/p").unwrap();
        acquire(&store, &t, "sha256:aaa").await.unwrap();
        let e = acquire(&store, &t, "sha256:bbb")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("another publish of sha256:aaa"), "{e}");
        assert!(e.contains("s3://b/p/.mockimg-publish.lock"), "{e}");
        release(&store, &t).await;
        acquire(&store, &t, "sha256:bbb").await.unwrap();
    }

    #[tokio::test]
    async fn file_targets_take_the_lock_with_a_create_only_put() {
        let d = tempfile::tempdir().unwrap();
        let t = Target::parse(&format!("file://{}", d.path().display())).unwrap();
        let store = store::open(&t, &store::Vars::new()).unwrap();
        acquire(store.as_ref(), &t, "sha256:aaa").await.unwrap();
        let e = acquire(store.as_ref(), &t, "sha256:bbb").await.unwrap_err();
        assert!(e.to_string().contains("sha256:aaa"), "{e}");
        release(store.as_ref(), &t).await;
        assert!(!d.path().join(LOCK_NAME).exists());
    }
}
