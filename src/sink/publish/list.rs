//! What a prefix holds, read from the store: its objects (not the lock), the publish record
//! with the version to write the next one over, and the keys beside it that share its name as
//! a string.
use super::lock;
use super::plan::{Record, Remote, RECORD_NAME};
use super::store::Target;
use super::{store_error, PublishError};
use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, UpdateVersion};

/// The objects under the prefix, relative to it; the lock is not one of them.
pub(crate) async fn list(store: &dyn ObjectStore, t: &Target) -> Result<Vec<Remote>, PublishError> {
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
pub(crate) async fn read_record(
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

/// Keys beside the prefix that start with the same string (`team/pet-v2/…` for `team/pet`),
/// shown as a listing by string prefix takes them in: a folder as `name/`, an object as its
/// key. One delimited listing of the parent finds them. (The JVM engine's S3 loader lists so:
/// see `imposter::publish::jvm`.)
pub(crate) async fn siblings(
    store: &dyn ObjectStore,
    t: &Target,
) -> Result<Vec<String>, PublishError> {
    if t.prefix.is_empty() {
        return Ok(Vec::new());
    }
    let (parent, name) = match t.prefix.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, t.prefix.as_str()),
    };
    let parent_path = parent.map(|p| t.path(p)).transpose()?;
    let listed = store
        .list_with_delimiter(parent_path.as_ref())
        .await
        .map_err(|e| store_error(t, "listing beside the prefix", &e))?;
    let last = |p: &object_store::path::Path| p.filename().unwrap_or_default().to_string();
    let mut found: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter(|p| {
            let n = last(p);
            n.starts_with(name) && n != name
        })
        .map(|p| format!("{}/", p.as_ref()))
        .chain(
            listed
                .objects
                .iter()
                .filter(|o| {
                    let n = last(&o.location);
                    n.starts_with(name) && n != name
                })
                .map(|o| o.location.as_ref().to_string()),
        )
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn siblings_are_keys_that_share_the_string_prefix() {
        use object_store::{memory::InMemory, ObjectStoreExt, PutPayload};
        let store = InMemory::new();
        for k in [
            "team/pet/a-config.yaml",
            "team/pet-v2/a-config.yaml",
            "team/pet.yaml",
            "team/petal/x",
            "team/other/x",
            "teamx/pet/x",
        ] {
            store
                .put(&k.into(), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let t = Target::parse("s3://b/team/pet").unwrap();
        assert_eq!(
            siblings(&store, &t).await.unwrap(),
            ["team/pet-v2/", "team/pet.yaml", "team/petal/"]
        );
        let top = Target::parse("s3://b/team").unwrap();
        assert_eq!(siblings(&store, &top).await.unwrap(), ["teamx/"]);
    }
}
