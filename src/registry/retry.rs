//! Retrying: the one backoff formula, and the loop every registry request runs in.
use super::Registry;
use crate::error::{Error, Result};
use std::time::Duration;

/// No wait grows past this: a registry that is down for longer fails the job instead.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// No wait is shorter than this, so a zero base never turns retries into a busy loop.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// How long to wait before retry number `attempt + 1`: `base · 2^attempt`, capped at
/// [`MAX_WAIT`], then jittered into its upper half so concurrent blobs that failed together do
/// not retry together.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    backoff_with(base, attempt, jitter())
}

/// A number in `[0, 1)` that differs between calls and processes. Jitter only has to keep
/// retries apart, not be unpredictable, so the standard library's randomly keyed hasher over
/// the clock does (one dependency fewer than a random-number crate).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(now);
    // The top 53 bits fill an f64's mantissa exactly.
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// [`backoff`] with the jitter drawn by the caller (`unit` in `[0, 1)`).
fn backoff_with(base: Duration, attempt: u32, unit: f64) -> Duration {
    // 2^16 already takes any sensible base past the cap; a larger shift would overflow.
    let exp = base.saturating_mul(1 << attempt.min(16)).min(MAX_WAIT);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    exp.mul_f64(0.5 + 0.5 * unit).clamp(MIN_WAIT, MAX_WAIT)
}

/// The wait before the next try: what the registry's `Retry-After` asked for when it asked for
/// at most [`super::transport::MAX_RETRY_AFTER`], else the usual backoff.
fn wait_before_retry(asked: Option<Duration>, base: Duration, attempt: u32) -> Duration {
    match asked {
        Some(a) if a <= super::transport::MAX_RETRY_AFTER => a.max(MIN_WAIT),
        _ => backoff(base, attempt),
    }
}

impl Registry {
    /// Runs `f` until it succeeds, fails for good, or the retries run out; every failure ends as
    /// an [`Error::Registry`] naming this registry and `op`.
    pub(crate) async fn retry<T, F, Fut>(&self, op: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.opts.retries => {
                    let asked = match &e {
                        Error::Registry { cause, .. } => {
                            cause.retry_after.map(|s| Duration::from_secs(u64::from(s)))
                        }
                        _ => None,
                    };
                    let wait = wait_before_retry(asked, self.opts.backoff, attempt);
                    attempt += 1;
                    // `e` names the operation already when it is a registry error.
                    let what = match &e {
                        Error::Registry { .. } => e.to_string(),
                        other => format!("{op}: {other}"),
                    };
                    tracing::warn!(
                        "{what}; retry {attempt}/{} in {:?}",
                        self.opts.retries,
                        wait
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    return Err(match e {
                        Error::Registry { .. } => e,
                        other => Error::Registry {
                            registry: self.host.clone(),
                            operation: op.to_string(),
                            message: other.to_string(),
                            cause: Default::default(),
                        },
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)), "{draws:?}");
        let first = draws[0];
        assert!(draws.iter().any(|u| *u != first), "{draws:?}");
    }

    #[test]
    fn backoff_doubles_and_stays_in_its_upper_half() {
        let base = Duration::from_millis(400);
        for attempt in 0..4 {
            let full = base * (1 << attempt);
            assert_eq!(backoff_with(base, attempt, 0.0), full / 2);
            assert!(backoff_with(base, attempt, 0.999) < full);
            let drawn = backoff(base, attempt);
            assert!(drawn >= full / 2 && drawn < full, "{attempt}: {drawn:?}");
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        for base in [
            Duration::from_millis(400),
            Duration::from_secs(3600),
            Duration::MAX,
        ] {
            for attempt in [5, 10, 31, 32, 63, 64, u32::MAX] {
                for unit in [0.0, 0.5, 0.999_999, 1.0, f64::NAN] {
                    let w = backoff_with(base, attempt, unit);
                    assert!(
                        w <= MAX_WAIT && w >= MAX_WAIT / 2,
                        "{base:?} {attempt} {w:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_minute() {
        let base = Duration::from_millis(400);
        assert_eq!(
            wait_before_retry(Some(Duration::from_secs(3)), base, 0),
            Duration::from_secs(3)
        );
        assert_eq!(
            wait_before_retry(Some(Duration::from_secs(60)), base, 2),
            Duration::from_secs(60)
        );
        assert_eq!(wait_before_retry(Some(Duration::ZERO), base, 0), MIN_WAIT);
    }

    #[test]
    fn retry_after_past_a_minute_or_absent_falls_back_to_backoff() {
        let base = Duration::from_millis(400);
        for asked in [None, Some(Duration::from_secs(61)), Some(Duration::MAX)] {
            let w = wait_before_retry(asked, base, 1);
            assert!(w >= base && w < base * 2, "{asked:?}: {w:?}");
        }
    }

    #[test]
    fn backoff_is_never_zero() {
        for attempt in [0, 1, 40] {
            assert_eq!(backoff_with(Duration::ZERO, attempt, 0.0), MIN_WAIT);
        }
        assert!(backoff(Duration::from_nanos(1), 0) >= MIN_WAIT);
    }
}
