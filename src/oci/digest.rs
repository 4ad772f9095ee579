//! sha256 digests, and a writer/stream wrapper that computes one while data passes through.
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};

/// `sha256:<hex>` of a byte slice.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `digest` is a well-formed sha256 digest, the only algorithm mockimg hashes with.
pub(crate) fn is_valid(digest: &str) -> bool {
    check(digest).is_ok()
}

/// Checks a digest read from input. A well-formed digest of another algorithm (sha512, blake3)
/// is refused by name rather than treated as corrupt, since every later check would hash sha256.
pub(crate) fn check(digest: &str) -> Result<(), String> {
    let Some((algo, hex)) = digest.split_once(':') else {
        return Err(format!(
            "invalid digest {digest:?}: expected sha256:<64 hex digits>"
        ));
    };
    let well_formed = |len: usize| {
        hex.len() == len
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match algo {
        "sha256" if well_formed(64) => Ok(()),
        "sha512" | "sha384" | "blake3" => Err(format!(
            "digest {digest:.20}… uses {algo}, which mockimg does not support: re-export the image with sha256 digests"
        )),
        _ => Err(format!("invalid digest {digest:?}: expected sha256:<64 hex digits>")),
    }
}

/// Where a blob lives in an OCI layout, relative to its root: `blobs/sha256/<hex>`. The one
/// mapping every layout, archive and cache uses; the digest is checked so it cannot escape.
pub(crate) fn blob_path(digest: &str) -> Result<String, String> {
    check(digest)?;
    let (alg, hex) = digest.split_once(':').unwrap_or_default();
    Ok(format!("blobs/{alg}/{hex}"))
}

/// Incremental sha256 + byte count.
#[derive(Default, Clone)]
pub(crate) struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.inner.finalize()))
    }
}

/// A writer that hashes everything written through it.
pub(crate) struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_is_the_well_known_one() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn validates_syntax() {
        assert!(is_valid(&sha256(b"x")));
        assert!(!is_valid("sha256:abc"));
        assert!(!is_valid("md5:d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_valid(&sha256(b"x").to_uppercase()));
    }

    #[test]
    fn other_algorithms_are_refused_by_name() {
        let d = format!("sha512:{}", "a".repeat(128));
        let e = check(&d).unwrap_err();
        assert!(
            e.contains("sha512") && e.contains("does not support"),
            "{e}"
        );
        let e = blob_path(&d).unwrap_err();
        assert!(e.contains("does not support"), "{e}");
    }

    #[test]
    fn blob_paths_cannot_escape_the_layout() {
        assert_eq!(
            blob_path(&sha256(b"")).unwrap(),
            "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let e = blob_path("sha256:../../etc/passwd").unwrap_err();
        assert!(
            e.contains("invalid digest") && e.contains("../../etc/passwd"),
            "{e}"
        );
    }

    #[test]
    fn hashing_writer_matches_one_shot() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        assert_eq!(w.hasher.len(), 11);
        assert_eq!(w.hasher.clone().finish(), sha256(b"hello world"));
    }
}
