//! Why a publish failed, and the one line a store failure is told in: the class from the error
//! variant where `object_store` gives one, else from the store's error code, with the fix.
use super::store::{Scheme, Target};

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
    /// The engine reading the target would not load the publish as published (see
    /// [`super::ReaderCheck`]); `--force` overrides.
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
