//! An index of a tar's entries (name → offset and size of the data), read from the headers
//! alone: blobs are later streamed straight out of the tar, nothing is extracted. Names that
//! could point outside the archive are refused while indexing, so nothing past this point has to
//! think about them.
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// The regular files of one tar, links resolved to the files they point at.
pub struct TarIndex {
    path: PathBuf,
    /// Entry name → (offset of the data in the tar, size).
    entries: HashMap<String, (u64, u64)>,
}

/// Whether the archive's last 512-byte block is all zeros (the end-of-archive marker).
fn ends_with_zero_block(path: &Path, len: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    if len < 512 {
        return false;
    }
    let mut block = [0u8; 512];
    std::fs::File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(len - 512))?;
            f.read_exact(&mut block)
        })
        .is_ok_and(|()| block.iter().all(|b| *b == 0))
}

impl TarIndex {
    /// Indexes a tar without extracting it (headers only: file contents are seeked over, so a
    /// large archive costs a few reads). Entries with absolute or `..` paths are rejected: they
    /// mark a hostile or broken archive.
    pub fn open(path: &Path) -> Result<TarIndex> {
        let f = std::fs::File::open(path).map_err(|e| Error::io("opening archive", path, e))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut ar = tar::Archive::new(std::io::BufReader::new(f));
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let bad = |m: String| Error::path(path, m);
        let iter = ar
            .entries_with_seek()
            .map_err(|e| bad(format!("is not a tar archive ({e})")))?;
        for ent in iter {
            let ent = ent.map_err(|e| {
                // The tar crate's messages quote raw header bytes; say what it means instead.
                if entries.is_empty() && e.kind() != std::io::ErrorKind::UnexpectedEof {
                    bad("is not a tar archive (its first header is not a tar header)".into())
                } else if e.kind() == std::io::ErrorKind::UnexpectedEof || len % 512 != 0 {
                    bad(format!(
                        "is truncated ({len} bytes; a tar entry is cut short)"
                    ))
                } else {
                    bad(format!("is not a readable tar archive ({e})"))
                }
            })?;
            let p = ent
                .path()
                .map_err(|e| bad(format!("has an unreadable entry name ({e})")))?
                .into_owned();
            let name = entry_name(&p).ok_or_else(|| {
                bad(format!(
                    "contains an unsafe entry path {:?} (absolute or '..') — refusing to read it",
                    p.display()
                ))
            })?;
            let kind = ent.header().entry_type();
            if kind.is_file() {
                let off = ent.raw_file_position();
                let size = ent.size();
                if off + size > len {
                    return Err(bad("is truncated (an entry runs past the end)".into()));
                }
                entries.insert(name, (off, size));
            } else if kind.is_symlink() || kind.is_hard_link() {
                // `docker save` stores a layer shared by two images once and links the other.
                let target = ent
                    .link_name()
                    .ok()
                    .flatten()
                    .and_then(|t| resolve_link(&name, &t, kind.is_symlink()))
                    .ok_or_else(|| {
                        bad(format!(
                            "contains a link {name:?} pointing outside the archive — refusing to read it"
                        ))
                    })?;
                links.push((name, target));
            }
        }
        // A tar ends with zero blocks; one cut exactly between entries reads as complete
        // otherwise.
        if !entries.is_empty() && !ends_with_zero_block(path, len) {
            return Err(bad(format!(
                "is truncated ({len} bytes; the end-of-archive marker is missing)"
            )));
        }
        // Links may point at links; a chain longer than the archive is a loop.
        for _ in 0..=links.len() {
            let before = entries.len();
            for (name, target) in &links {
                if let Some(&e) = entries.get(target) {
                    entries.entry(name.clone()).or_insert(e);
                }
            }
            if entries.len() == before {
                break;
            }
        }
        if entries.is_empty() {
            return Err(bad("is empty or not a tar archive".into()));
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The tar file itself.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Every file as (name, offset of its data, size), in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.entries
            .iter()
            .map(|(name, &(off, size))| (name.as_str(), off, size))
    }

    /// Offset and size of the file `name`, if the tar holds it.
    pub(crate) fn get(&self, name: &str) -> Option<(u64, u64)> {
        self.entries.get(name).copied()
    }

    /// A blocking reader over one file and its size; `None` if the tar lacks it.
    pub(crate) fn reader(&self, name: &str) -> Result<Option<(std::io::Take<std::fs::File>, u64)>> {
        let Some((off, size)) = self.get(name) else {
            return Ok(None);
        };
        let path = &self.path;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io("opening archive", path, e))?;
        f.seek(SeekFrom::Start(off))
            .map_err(|e| Error::io("reading archive", path, e))?;
        Ok(Some((f.take(size), size)))
    }

    /// Reads a small file whole.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>> {
        let (mut r, size) = self
            .reader(name)?
            .ok_or_else(|| Error::path(&self.path, format!("lacks {name}")))?;
        let mut v = Vec::with_capacity(size as usize);
        r.read_to_end(&mut v)
            .map_err(|e| Error::io("reading archive", &self.path, e))?;
        Ok(v)
    }
}

/// A path named inside an archive (an entry, or a file `manifest.json` points at) as the key the
/// index uses: `./a//b` and `a/b` are one file. `None` for an absolute path or one with `..`,
/// which could only mean something outside the archive.
pub(crate) fn entry_name(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    push_components(&mut parts, p, false)?;
    Some(parts.join("/"))
}

/// Where a link entry points, as an entry name: symlinks are relative to the link's directory,
/// hard links to the archive root. `None` if it leaves the archive.
fn resolve_link(name: &str, target: &Path, symlink: bool) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if symlink {
        parts.extend(name.split('/').map(str::to_string));
        parts.pop();
    }
    push_components(&mut parts, target, true)?;
    Some(parts.join("/"))
}

/// The one lexical walk over an archive path: appends `p`'s components to `parts`. `..` pops a
/// component when `parent_ok` (a link target may climb, as long as it stays inside) and is
/// refused otherwise; a root or prefix is always refused.
fn push_components(parts: &mut Vec<String>, p: &Path, parent_ok: bool) -> Option<()> {
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir if parent_ok => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &str)]) -> tempfile::NamedTempFile {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data_or_target) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            if kind.is_file() {
                h.set_size(data_or_target.len() as u64);
                b.append_data(&mut h, name, data_or_target.as_bytes())
                    .unwrap();
            } else {
                h.set_size(0);
                b.append_link(&mut h, name, data_or_target).unwrap();
            }
        }
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &b.into_inner().unwrap()).unwrap();
        f
    }

    /// A tar whose one entry has exactly `name`: `tar::Builder` refuses `..` and absolute
    /// names, so the header is written by hand as a hostile archive would be.
    fn tar_named(name: &str) -> tempfile::NamedTempFile {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut v = h.as_bytes().to_vec();
        v.extend_from_slice(b"x");
        v.resize(512 * 4, 0);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &v).unwrap();
        f
    }

    fn read(ix: &TarIndex, name: &str) -> Vec<u8> {
        ix.read(name).unwrap()
    }

    #[test]
    fn entries_with_absolute_or_parent_names_are_refused() {
        for name in ["../escape", "/etc/passwd", "a/../../b"] {
            let f = tar_named(name);
            let e = TarIndex::open(f.path()).err().unwrap().to_string();
            assert!(e.contains("unsafe entry path"), "{name}: {e}");
        }
        let f = tar_named("./a//b");
        let ix = TarIndex::open(f.path()).unwrap();
        assert_eq!(read(&ix, "a/b"), b"x");
    }

    #[test]
    fn entry_names_are_normalised_one_way() {
        assert_eq!(
            entry_name(Path::new("./blobs//sha256/x")).unwrap(),
            "blobs/sha256/x"
        );
        assert_eq!(entry_name(Path::new("a/./b")).unwrap(), "a/b");
        assert!(entry_name(Path::new("a/../b")).is_none());
        assert!(entry_name(Path::new("/a")).is_none());
    }

    #[test]
    fn links_resolve_inside_the_archive_only() {
        use tar::EntryType::{Link, Regular, Symlink};
        let f = tar_with(&[
            ("a/layer.tar", Regular, "layer bytes"),
            ("b/layer.tar", Symlink, "../a/layer.tar"),
            ("c/layer.tar", Symlink, "../b/layer.tar"),
            ("d.tar", Link, "a/layer.tar"),
        ]);
        let ix = TarIndex::open(f.path()).unwrap();
        for n in ["a/layer.tar", "b/layer.tar", "c/layer.tar", "d.tar"] {
            assert_eq!(read(&ix, n), b"layer bytes", "{n}");
        }
        for target in ["../../etc/passwd", "/etc/passwd"] {
            let f = tar_with(&[("a/x", Regular, "x"), ("a/evil", Symlink, target)]);
            let e = TarIndex::open(f.path()).err().unwrap().to_string();
            assert!(e.contains("outside the archive"), "{e}");
        }
        // A loop resolves to nothing rather than spinning.
        let f = tar_with(&[
            ("x", Regular, "x"),
            ("l1", Symlink, "l2"),
            ("l2", Symlink, "l1"),
        ]);
        let ix = TarIndex::open(f.path()).unwrap();
        assert!(ix.get("l1").is_none() && ix.get("x").is_some());
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_named_as_such() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &[b'z'; 1024]).unwrap();
        let e = TarIndex::open(f.path()).err().unwrap().to_string();
        assert!(e.contains("not a tar archive"), "{e}");
    }
}
