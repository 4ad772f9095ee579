//! How a failure leaves the process: the exit code contract (0 ok, 1 failure, 2 usage, 130
//! interrupted), the context added to a job's error, and Ctrl-C as a typed error.
use crate::error::Error;

/// Exit code for a failure: 2 for usage errors, 130 for Ctrl-C, 1 for everything else.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<Error>() {
        Some(err) if err.is_usage() => 2,
        Some(Error::Interrupted) => 130,
        _ => 1,
    }
}

/// A registry error already names the registry, repository and what was being done, so the
/// job's own context would only make the line longer.
pub(crate) fn job_error(e: Error, context: impl FnOnce() -> String) -> anyhow::Error {
    match e {
        Error::Registry { .. } => e.into(),
        other => anyhow::Error::new(other).context(context()),
    }
}

/// Cancelling the job drops its temp files, so Ctrl-C leaves nothing half-written.
pub(crate) async fn interruptible<T>(
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    }
}
