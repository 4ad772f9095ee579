//! How a failure leaves the process: the exit code contract (0 ok, 1 failure, 2 usage, 130
//! interrupted by Ctrl-C, 143 terminated by SIGTERM), the context added to a job's error, and
//! the two signals as a typed error.
use crate::error::Error;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::sync::watch;

/// Exit code for a failure: 2 for usage errors, 130 for Ctrl-C (143 for SIGTERM), 1 for
/// everything else.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<Error>() {
        Some(err) if err.is_usage() => 2,
        Some(Error::Interrupted) => signal_exit_code(),
        _ => 1,
    }
}

/// Whether the run ended because SIGINT or SIGTERM arrived.
pub fn interrupted(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted))
}

/// Removes the temp files and directories this process still knows of; for `main`, after the
/// runtime has shut down and no writer is left to recreate them.
pub fn remove_temp_files() {
    crate::temps::remove_all();
}

/// A registry error already names the registry, repository and what was being done, so the
/// job's own context would only make the line longer.
pub(crate) fn job_error(e: Error, context: impl FnOnce() -> String) -> anyhow::Error {
    match e {
        Error::Registry { .. } => e.into(),
        other => anyhow::Error::new(other).context(context()),
    }
}

/// 128 + the signal that stopped the job (SIGINT unless SIGTERM came).
static SIGNAL_EXIT: AtomicI32 = AtomicI32::new(130);
/// Jobs running under [`interruptible`]: they unwind themselves on a signal.
static JOBS: AtomicUsize = AtomicUsize::new(0);
static SIGNALLED: OnceLock<watch::Receiver<bool>> = OnceLock::new();

fn signal_exit_code() -> i32 {
    SIGNAL_EXIT.load(Ordering::SeqCst)
}

/// Listens for SIGINT and SIGTERM (CI cancellation and `timeout` send TERM) from now on. A job
/// under [`interruptible`] is cancelled, which drops its temp files; with none running (a
/// blocking command such as `bundle`), the temp files are removed here and the process exits.
pub(crate) fn install_signal_handlers() {
    use tokio::signal::unix::{signal, SignalKind};
    if SIGNALLED.get().is_some() {
        return;
    }
    let (tx, rx) = watch::channel(false);
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::debug!("could not install signal handlers");
        return;
    };
    let _ = SIGNALLED.set(rx);
    tokio::spawn(async move {
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        SIGNAL_EXIT.store(code, Ordering::SeqCst);
        let _ = tx.send(true);
        if JOBS.load(Ordering::SeqCst) == 0 {
            crate::temps::remove_all();
            eprintln!("error: interrupted");
            std::process::exit(code);
        }
        // Keep the handlers installed while the job unwinds: a second signal must not kill
        // the process before its temp files are gone.
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    });
}

/// Resolves once SIGINT or SIGTERM arrived (never, without [`install_signal_handlers`]).
pub(crate) async fn signalled() {
    match SIGNALLED.get() {
        Some(rx) => {
            let mut rx = rx.clone();
            let _ = rx.wait_for(|s| *s).await;
        }
        None => std::future::pending().await,
    }
}

/// Counts a job as one that unwinds itself on a signal, while alive.
pub(crate) struct Job(());

impl Job {
    pub(crate) fn start() -> Job {
        JOBS.fetch_add(1, Ordering::SeqCst);
        Job(())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        JOBS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Cancelling the job drops its temp files, so Ctrl-C or SIGTERM leaves nothing
/// half-written; what a blocking thread of the job still holds is removed by name.
pub(crate) async fn interruptible<T>(
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let _job = Job::start();
    let r = tokio::select! {
        r = fut => r,
        _ = signalled() => Err(Error::Interrupted),
    };
    if matches!(r, Err(Error::Interrupted)) {
        crate::temps::remove_all();
    }
    r
}
