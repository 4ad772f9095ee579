//! Transfer progress: bars on a terminal, plain log lines elsewhere (CI logs stay free of control
//! characters), nothing with `--quiet`. Sinks see a [`BlobSource`] wrapper that counts bytes as
//! they stream, so no sink needs to know progress exists.
//!
//! The reporter is process-wide, like the tracing subscriber it shares stderr with: the CLI
//! installs one, the library (and its tests) default to silence.
use crate::error::Result;
use crate::oci::blob::{BlobSource, ByteStream, Source};
use crate::oci::image::Descriptor;
use crate::oci::reference::RegistryRef;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{Stream, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How transfers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif bars on stderr (a terminal).
    Bars,
    /// One info log line per finished blob, and one every `LINE_INTERVAL` (10 s) for slow ones.
    Lines,
    /// Nothing but the final summary and errors (`--quiet`, or no stderr at all).
    Off,
}

/// How often a slow transfer reports itself in [`Mode::Lines`].
const LINE_INTERVAL: Duration = Duration::from_secs(10);

impl Mode {
    /// Bars only when stderr is a terminal that can draw them.
    pub fn detect(quiet: bool) -> Mode {
        use std::io::IsTerminal;
        if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb")
        {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// Where the tracked bytes go, which decides the verb shown.
pub use crate::sink::Kind as Sink;

/// The CLI's [`crate::sink::Progress`]: bars or lines as [`install`] set them up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shown;

impl crate::sink::Progress for Shown {
    fn track(&self, src: &Source, to: Sink) -> Source {
        track(src, to)
    }
}

struct Reporter {
    mode: Mode,
    multi: MultiProgress,
    /// Created on the first tracked blob, so a job that moves no bytes draws nothing.
    total: Mutex<Option<ProgressBar>>,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// Sets the process-wide mode; the first call wins.
pub fn install(mode: Mode) {
    let multi = MultiProgress::with_draw_target(if mode == Mode::Bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let _ = REPORTER.set(Reporter {
        mode,
        multi,
        total: Mutex::new(None),
    });
}

/// The reporting mode installed for this process.
pub fn mode() -> Mode {
    REPORTER.get().map_or(Mode::Off, |r| r.mode)
}

/// Clears the bars, so the summary line and errors start on a clean line.
pub fn finish() {
    if let Some(r) = REPORTER.get() {
        if let Some(t) = r.total.lock().expect("progress lock").take() {
            t.finish_and_clear();
        }
        let _ = r.multi.clear();
    }
}

/// Runs `f` with the bars hidden, so text written to stderr doesn't tear them.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match REPORTER.get() {
        Some(r) if r.mode == Mode::Bars => r.multi.suspend(f),
        _ => f(),
    }
}

/// A `tracing_subscriber` writer for stderr that draws around the bars.
#[derive(Clone, Copy, Default)]
pub struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer writes each event with one call, so one suspend per log line.
        suspend(|| std::io::stderr().write_all(buf)).map(|_| buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;
    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter
    }
}

/// `src` with its blob reads counted, when a reporter is installed.
pub fn track(src: &Source, sink: Sink) -> Source {
    if mode() == Mode::Off {
        return src.clone();
    }
    let verb = match (src.blobs.registry().is_some(), sink) {
        (true, Sink::File) => ("downloaded", "downloading"),
        (false, Sink::Registry) => ("uploaded", "uploading"),
        _ => ("copied", "copying"),
    };
    Source {
        blobs: Arc::new(Tracked {
            inner: src.blobs.clone(),
            verb,
        }),
        ..src.clone()
    }
}

/// Past and present forms: "uploaded", "uploading".
type Verb = (&'static str, &'static str);

struct Tracked {
    inner: Arc<dyn BlobSource>,
    verb: Verb,
}

impl BlobSource for Tracked {
    fn open<'a>(&'a self, desc: &'a Descriptor) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            let s = self.inner.open(desc).await?;
            // Configs and the new layer are already in memory: nothing to watch.
            if self.inner.in_memory(&desc.digest).is_some() {
                return Ok(s);
            }
            Ok(Counting::new(s, desc, self.verb).boxed())
        })
    }
    fn registry(&self) -> Option<&RegistryRef> {
        self.inner.registry()
    }
    fn registry_of(&self, digest: &str) -> Option<&RegistryRef> {
        self.inner.registry_of(digest)
    }
    fn in_memory(&self, digest: &str) -> Option<Bytes> {
        self.inner.in_memory(digest)
    }
    fn local(&self, digest: &str) -> bool {
        self.inner.local(digest)
    }
    fn distrust(&self, digest: &str) {
        self.inner.distrust(digest)
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &digest[..digest.len() - hex.len() + hex.len().min(12)]
}

struct Counting {
    inner: ByteStream,
    digest: String,
    size: u64,
    verb: Verb,
    done: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
    total: Option<ProgressBar>,
    finished: bool,
}

impl Counting {
    fn new(inner: ByteStream, desc: &Descriptor, verb: Verb) -> Counting {
        let (mut bar, mut total) = (None, None);
        if let Some(r) = REPORTER.get().filter(|r| r.mode == Mode::Bars) {
            let t = r
                .total
                .lock()
                .expect("progress lock")
                .get_or_insert_with(|| {
                    r.multi.add(
                        ProgressBar::new(0).with_prefix("total").with_style(
                            ProgressStyle::with_template(
                                "{prefix:>10} {wide_bar:.cyan/blue} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
                            )
                            .expect("valid template")
                            .progress_chars("=> "),
                        ),
                    )
                })
                .clone();
            t.inc_length(desc.size);
            let b = r.multi.insert_before(
                &t,
                ProgressBar::new(desc.size)
                    .with_prefix(verb.1)
                    .with_message(short(&desc.digest).to_string())
                    .with_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} {msg} {bar:30.green/white} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
            );
            bar = Some(b);
            total = Some(t);
        }
        let now = Instant::now();
        Counting {
            inner,
            digest: desc.digest.clone(),
            size: desc.size,
            verb,
            done: 0,
            started: now,
            last_line: now,
            bar,
            total,
            finished: false,
        }
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(true),
        }
    }

    /// `uploaded sha256:0123456789ab 3.4 MB in 1.2 s, 2.8 MB/s`, or `… 1.1 MB of 3.4 MB …` part-way.
    fn line(&self, finished: bool) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = (self.done as f64 / secs.max(0.001)) as u64;
        let amount = if finished {
            human_bytes(self.done)
        } else {
            format!("{} of {}", human_bytes(self.done), human_bytes(self.size))
        };
        let verb = if finished { self.verb.0 } else { self.verb.1 };
        tracing::info!(
            "{verb} {} {amount} in {secs:.1} s, {}/s",
            short(&self.digest),
            human_bytes(rate)
        );
    }
}

impl Stream for Counting {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let r = this.inner.as_mut().poll_next(cx);
        match &r {
            Poll::Ready(Some(Ok(b))) => {
                let n = b.len() as u64;
                this.done += n;
                if let (Some(bar), Some(t)) = (&this.bar, &this.total) {
                    bar.inc(n);
                    t.inc(n);
                } else if this.last_line.elapsed() >= LINE_INTERVAL {
                    this.last_line = Instant::now();
                    this.line(false);
                }
                // An HTTP body with a known length stops reading at the last byte, never
                // polling for the end: the byte count is what says the blob is done.
                if this.done >= this.size {
                    this.finish();
                }
            }
            Poll::Ready(None) => this.finish(),
            _ => {}
        }
        r
    }
}

impl Drop for Counting {
    /// A stream dropped part-way (a retry reopens the blob) takes its bytes back off the total.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let (Some(bar), Some(t)) = (&self.bar, &self.total) {
            t.dec(self.done);
            t.dec_length(self.size);
            bar.finish_and_clear();
        }
    }
}

/// Sizes for people: `610 B`, `1.5 KB`, `12 KB`, `3.4 MB` (binary multiples).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(610), "610 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(12 * 1024 + 100), "12 KB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MB");
        assert_eq!(human_bytes(5 << 30), "5.0 GB");
    }

    #[test]
    fn short_digests() {
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
        assert_eq!(short("sha256:01"), "sha256:01");
    }
}
