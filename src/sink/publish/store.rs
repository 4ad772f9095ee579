//! Where a publish goes: the `--to` URL, parsed, and the `object_store` client for it. Credentials
//! and endpoints are read from the environment by the CLI, as each ecosystem names them (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`); they are handed to the builders and never formatted into a message.
use super::PublishError;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The kind of store a `--to` URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `s3://BUCKET/PREFIX`: Amazon S3 or an S3-compatible store (`AWS_ENDPOINT_URL_S3`).
    S3,
    /// `gs://BUCKET/PREFIX`: Google Cloud Storage.
    Gcs,
    /// `az://CONTAINER/PREFIX`: Azure Blob Storage (account from `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure,
    /// `file:///DIR`: a local directory (tests, or a shared volume the engine mounts).
    File,
}

/// A parsed `--to` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Which store.
    pub scheme: Scheme,
    /// Bucket or container; for `file://`, the directory.
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the bucket root.
    pub prefix: String,
}

impl Target {
    /// Parses `s3://BUCKET[/PREFIX]`, `gs://…`, `az://CONTAINER[/PREFIX]` or `file:///DIR`.
    pub(crate) fn parse(url: &str) -> Result<Target, PublishError> {
        let bad = |why: &str| {
            PublishError::Usage(format!(
                "--to {url:?}: {why}; expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///DIR"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme {
            "s3" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" => Scheme::Azure,
            "file" => Scheme::File,
            _ => return Err(bad("unsupported scheme")),
        };
        if scheme == Scheme::File {
            if !rest.starts_with('/') || rest.len() < 2 {
                return Err(bad(
                    "a file URL needs an absolute directory, as in file:///srv/mocks",
                ));
            }
            let dir = rest.trim_end_matches('/');
            return Ok(Target {
                scheme,
                bucket: dir.to_string(),
                prefix: String::new(),
            });
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|s| s == "." || s == ".." || (s.is_empty() && !prefix.is_empty()))
        {
            return Err(bad("the prefix may not have empty, '.' or '..' segments"));
        }
        Ok(Target {
            scheme,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The prefix as a store path.
    pub(crate) fn prefix_path(&self) -> Result<StorePath, PublishError> {
        self.path(&self.prefix)
    }

    /// The key of a file at `rel` (a `/`-separated path relative to the config dir), kept
    /// literal: `object_store`'s `From<&str>` would percent-encode `%`, `{` and the like, and
    /// the engine would then look for a name that is not there.
    pub(crate) fn key(&self, rel: &str) -> Result<StorePath, PublishError> {
        if self.prefix.is_empty() {
            self.path(rel)
        } else {
            self.path(&format!("{}/{rel}", self.prefix))
        }
    }

    pub(crate) fn path(&self, key: &str) -> Result<StorePath, PublishError> {
        StorePath::parse(key).map_err(|e| {
            PublishError::Usage(format!("{self}: {key:?} cannot be an object key: {e}"))
        })
    }

    /// The bucket (or directory) as the user wrote it, for messages: `s3://mocks`.
    pub(crate) fn bucket_url(&self) -> String {
        match self.scheme {
            Scheme::File => format!("file://{}", self.bucket),
            _ => format!("{}://{}", self.scheme_name(), self.bucket),
        }
    }

    fn scheme_name(&self) -> &'static str {
        match self.scheme {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "az",
            Scheme::File => "file",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.bucket_url())?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// Environment variables a store builder reads, by name (`AWS_REGION`, …). Passed in rather
/// than read here so the choice of store can be tested without touching the process environment.
pub(crate) type Vars = BTreeMap<String, String>;

/// Retries for 5xx, 503 SlowDown, resets and timeouts: object_store's own retry with backoff,
/// bounded so a dead endpoint fails within about a minute rather than three.
fn client_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 6,
        retry_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

/// True for `http://` URLs whose host is a loopback address or `localhost`: plain HTTP is
/// allowed there, as for registries.
pub(crate) fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builds the store for `target` from `vars`, the way `object_store`'s `from_env` would, plus
/// plain HTTP for a loopback `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`.
pub(crate) fn open(target: &Target, vars: &Vars) -> Result<Arc<dyn ObjectStore>, PublishError> {
    let lower = |prefix: &str| -> Vec<(String, String)> {
        vars.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    };
    let setup = |e: object_store::Error| {
        PublishError::Setup {
        target: target.bucket_url(),
        message: match target.scheme {
            Scheme::Azure if !vars.contains_key("AZURE_STORAGE_ACCOUNT_NAME") => format!(
                "{} — set AZURE_STORAGE_ACCOUNT_NAME (and AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY)",
                super::error_line(&e)
            ),
            _ => super::error_line(&e),
        },
    }
    };
    let loopback = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| vars.get(*k))
        .is_some_and(|u| is_loopback_http(u));
    let client = ClientOptions::new().with_allow_http(loopback);
    let store: Arc<dyn ObjectStore> = match target.scheme {
        Scheme::S3 => {
            let mut b = AmazonS3Builder::new();
            for (k, v) in lower("AWS_") {
                if let Ok(key) = k.parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(
                b.with_bucket_name(&target.bucket)
                    .with_client_options(client)
                    .with_retry(client_retry())
                    .build()
                    .map_err(setup)?,
            )
        }
        Scheme::Gcs => {
            let mut b = GoogleCloudStorageBuilder::new();
            for (k, v) in lower("GOOGLE_") {
                if let Ok(key) = k.parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(
                b.with_bucket_name(&target.bucket)
                    .with_retry(client_retry())
                    .build()
                    .map_err(setup)?,
            )
        }
        Scheme::Azure => {
            let mut b = MicrosoftAzureBuilder::new();
            for (k, v) in lower("AZURE_") {
                if let Ok(key) = k.parse() {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(
                b.with_container_name(&target.bucket)
                    .with_retry(client_retry())
                    .build()
                    .map_err(setup)?,
            )
        }
        Scheme::File => {
            let dir = PathBuf::from(&target.bucket);
            std::fs::create_dir_all(&dir).map_err(|e| PublishError::Setup {
                target: target.bucket_url(),
                message: format!("cannot create the directory: {e}"),
            })?;
            Arc::new(LocalFileSystem::new_with_prefix(&dir).map_err(setup)?)
        }
    };
    Ok(store)
}

/// For a `file://` target: refuses anything below the directory that is not a directory or a
/// regular file. object_store's `LocalFileSystem` follows links when it lists, reads, creates
/// parent directories and deletes, so one link inside the target would let a stale record or
/// an upload reach files outside it; a fifo would hang the read of the record.
pub(crate) fn check_local_tree(t: &Target) -> Result<(), PublishError> {
    fn visit(t: &Target, dir: &Path, rel: &Path) -> Result<(), PublishError> {
        let rd = match std::fs::read_dir(dir.join(rel)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(local_error(t, rel, &format!("cannot be listed: {e}"))),
        };
        for ent in rd {
            let ent = ent.map_err(|e| local_error(t, rel, &format!("cannot be listed: {e}")))?;
            let child = rel.join(ent.file_name());
            let ft = std::fs::symlink_metadata(dir.join(&child))
                .map_err(|e| local_error(t, &child, &format!("cannot be read: {e}")))?
                .file_type();
            if ft.is_dir() {
                visit(t, dir, &child)?;
            } else if !ft.is_file() {
                return Err(not_plain(t, &child, ft));
            }
        }
        Ok(())
    }
    visit(t, Path::new(&t.bucket), Path::new(""))
}

/// Before one write or delete of `rel` in a `file://` target: no component of its path below
/// the directory may be a link (one may have appeared since [`check_local_tree`]).
pub(crate) fn check_local_key(t: &Target, rel: &str) -> Result<(), PublishError> {
    let dir = Path::new(&t.bucket);
    let mut at = PathBuf::new();
    for part in Path::new(&t.prefix).join(rel).components() {
        at.push(part);
        match std::fs::symlink_metadata(dir.join(&at)) {
            Ok(m) if m.file_type().is_dir() || m.file_type().is_file() => {}
            Ok(m) => return Err(not_plain(t, &at, m.file_type())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(local_error(t, &at, &format!("cannot be read: {e}"))),
        }
    }
    Ok(())
}

fn not_plain(t: &Target, rel: &Path, ft: std::fs::FileType) -> PublishError {
    let what = if ft.is_symlink() {
        "is a symlink"
    } else {
        "is a socket, fifo or device"
    };
    local_error(
        t,
        rel,
        &format!(
            "{what} — publish never reads, writes or deletes through one inside the target; \
             remove it, or publish to the directory it points to"
        ),
    )
}

fn local_error(t: &Target, rel: &Path, message: &str) -> PublishError {
    PublishError::Store {
        target: t.bucket_url(),
        message: format!("{} {message}", rel.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> Vars {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_scheme_and_trims_the_prefix() {
        let t = Target::parse("s3://mocks/team/a/").unwrap();
        assert_eq!((t.scheme, t.bucket.as_str()), (Scheme::S3, "mocks"));
        assert_eq!(t.prefix, "team/a");
        assert_eq!(t.to_string(), "s3://mocks/team/a");
        assert_eq!(t.key("x/y.json").unwrap().as_ref(), "team/a/x/y.json");
        assert_eq!(t.key("50%{a}.json").unwrap().as_ref(), "team/a/50%{a}.json");
        let root = Target::parse("gs://b").unwrap();
        assert_eq!((root.scheme, root.prefix.as_str()), (Scheme::Gcs, ""));
        assert_eq!(root.key("a-config.yaml").unwrap().as_ref(), "a-config.yaml");
        assert_eq!(Target::parse("az://c/p").unwrap().scheme, Scheme::Azure);
        let f = Target::parse("file:///srv/mocks/").unwrap();
        assert_eq!((f.scheme, f.bucket.as_str()), (Scheme::File, "/srv/mocks"));
    }

    #[test]
    fn rejects_malformed_targets_as_usage_errors() {
        for bad in [
            "mocks/prefix",
            "http://x/y",
            "s3:///prefix",
            "s3://b/a//c",
            "s3://b/../c",
            "file://relative",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(matches!(e, PublishError::Usage(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn only_loopback_endpoints_may_be_plain_http() {
        assert!(is_loopback_http("http://127.0.0.1:9000"));
        assert!(is_loopback_http("http://localhost:9000/"));
        assert!(is_loopback_http("http://[::1]:9000"));
        assert!(!is_loopback_http("http://10.0.0.1:9000"));
        assert!(!is_loopback_http("https://127.0.0.1:9000"));
    }

    #[test]
    fn gs_target_builds_a_gcs_store_for_its_bucket() {
        let t = Target::parse("gs://mock-configs/team").unwrap();
        let s = open(&t, &vars(&[])).unwrap();
        let shown = s.to_string();
        assert!(shown.contains("GoogleCloudStorage"), "{shown}");
        assert!(shown.contains("mock-configs"), "{shown}");
    }

    #[test]
    fn az_target_builds_an_azure_store_for_account_and_container() {
        let t = Target::parse("az://mocks/team").unwrap();
        let s = open(
            &t,
            &vars(&[
                ("AZURE_STORAGE_ACCOUNT_NAME", "acct1"),
                ("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0"),
            ]),
        )
        .unwrap();
        let shown = s.to_string();
        assert!(shown.contains("MicrosoftAzure"), "{shown}");
        assert!(
            shown.contains("acct1") && shown.contains("mocks"),
            "{shown}"
        );
        assert!(
            !shown.contains("c2VjcmV0"),
            "the key is never shown: {shown}"
        );
    }

    #[test]
    fn az_target_without_an_account_says_which_variable_to_set() {
        let t = Target::parse("az://mocks/team").unwrap();
        let e = open(&t, &vars(&[])).unwrap_err().to_string();
        assert!(
            e.starts_with("az://mocks: ") && e.contains("AZURE_STORAGE_ACCOUNT_NAME"),
            "{e}"
        );
    }

    #[test]
    fn s3_target_builds_an_s3_store_and_hides_the_secret() {
        let t = Target::parse("s3://bkt/p").unwrap();
        let s = open(
            &t,
            &vars(&[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
            ]),
        )
        .unwrap();
        let shown = format!("{s} {s:?}");
        assert!(
            shown.contains("AmazonS3") && shown.contains("bkt"),
            "{shown}"
        );
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }
}
