//! Deterministic parallel gzip, the way pigz does it: the input is cut into fixed-size chunks,
//! each deflated on its own thread with the previous 32 KiB as its dictionary, ended with a sync
//! flush so the pieces concatenate into one valid deflate stream. The output depends only on the
//! input, the level and the chunk size — never on how many threads ran — so digests stay
//! reproducible, while large layers compress on every core.
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Input bytes per chunk. Fixed: changing it changes every digest.
const CHUNK: usize = 512 << 10;
const WINDOW: usize = 32 << 10;
/// At most this many chunks are compressing or waiting to be written, whatever the core count:
/// each holds its input and output (about 1 MiB together), so this caps the compressor's memory
/// near 8 MiB on a 64-core runner, where one chunk per core would take 64 MiB.
const MAX_IN_FLIGHT: usize = 8;

/// A gzip writer with a pinned header (mtime 0, OS 255 "unknown") and parallel deflate.
pub(crate) struct ParallelGz<W: Write> {
    inner: W,
    level: u32,
    chunk: Vec<u8>,
    /// The tail of the previous chunk, the next chunk's dictionary.
    dict: Arc<Vec<u8>>,
    crc: Crc,
    pending: VecDeque<JoinHandle<Vec<u8>>>,
    threads: usize,
}

impl<W: Write> ParallelGz<W> {
    /// Writes the gzip header to `inner`; `level` is the deflate level, 1 to 9.
    pub(crate) fn new(mut inner: W, level: u32) -> io::Result<Self> {
        let xfl = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_IN_FLIGHT);
        Ok(ParallelGz {
            inner,
            level,
            chunk: Vec::with_capacity(CHUNK),
            dict: Arc::new(Vec::new()),
            crc: Crc::new(),
            pending: VecDeque::new(),
            threads,
        })
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let next_dict = Arc::new(data[data.len().saturating_sub(WINDOW)..].to_vec());
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let level = self.level;
        self.pending.push_back(std::thread::spawn(move || {
            deflate(&data, &dict, level, last)
        }));
        // Bounded: at most one chunk in flight per core (and MAX_IN_FLIGHT), so memory stays a
        // few chunks however large the layer.
        while self.pending.len() > self.threads {
            self.drain_one()?;
        }
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(h) = self.pending.pop_front() {
            let out = h
                .join()
                .map_err(|_| io::Error::other("a compression thread panicked"))?;
            self.inner.write_all(&out)?;
        }
        Ok(())
    }

    /// Writes the last block and the trailer; returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.dispatch(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one chunk: primed with `dict`, ended by a sync flush (or the final block).
fn deflate(data: &[u8], dict: &[u8], level: u32, last: bool) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict)
            .expect("a fresh raw deflate stream takes a dictionary");
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 << 10));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .expect("deflate of in-memory data cannot fail");
        let all_in = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => return out,
            // A sync flush is complete once all input is in and the output had room to spare.
            _ if !last && all_in && out.len() < out.capacity() => return out,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Compressible but not trivial: JSON-ish records with a counter.
        let mut v = Vec::with_capacity(n);
        let mut i = 0u64;
        while v.len() < n {
            v.extend_from_slice(
                format!("{{\"id\":{i},\"name\":\"pet-{}\"}}\n", i * 7919 % 1000).as_bytes(),
            );
            i += 1;
        }
        v.truncate(n);
        v
    }

    fn gz(data: &[u8], level: u32, write_size: usize) -> Vec<u8> {
        let mut w = ParallelGz::new(Vec::new(), level).unwrap();
        for part in data.chunks(write_size.max(1)) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_through_an_independent_decoder() {
        for n in [0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let data = sample(n);
            let z = gz(&data, 6, 7000);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "size {n}");
            assert_eq!(&z[..4], &[0x1f, 0x8b, 8, 0]);
            assert_eq!(z[9], 255);
        }
    }

    #[test]
    fn output_is_independent_of_write_pattern_and_threads() {
        let data = sample(2 * CHUNK + 999);
        let a = gz(&data, 6, 1 << 20);
        let b = gz(&data, 6, 4096);
        assert_eq!(a, b);
        let mut one = ParallelGz::new(Vec::new(), 6).unwrap();
        one.threads = 1;
        one.write_all(&data).unwrap();
        assert_eq!(one.finish().unwrap(), a, "one thread or many: same bytes");
        assert_ne!(gz(&data, 1, 4096), a, "the level matters");
    }

    #[test]
    fn dictionary_keeps_the_ratio_close_to_one_stream() {
        let data = sample(4 * CHUNK);
        let parallel = gz(&data, 6, 1 << 16).len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len();
        assert!(
            parallel as f64 <= single as f64 * 1.01,
            "{parallel} vs {single}"
        );
    }

    #[test]
    fn gzip_tool_accepts_it() {
        let data = sample(CHUNK * 2 + 77);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        std::fs::write(&p, gz(&data, 6, 5000)).unwrap();
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }
}
