//! An index of a tar's entries (name → offset and size of the data), read from the headers
//! alone: blobs are later streamed straight out of the tar, nothing is extracted. Names that
//! could point outside the archive are refused while indexing, so nothing past this point has to
//! think about them.
use crate::error::{Error, Result};
use crate::source::file::{open_regular, read_capped};
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
        let (f, len) = open_regular(path)?;
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
        resolve_links(&mut entries, &links);
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
        let (mut f, _) = open_regular(path)?;
        f.seek(SeekFrom::Start(off))
            .map_err(|e| Error::io("reading archive", path, e))?;
        Ok(Some((f.take(size), size)))
    }

    /// Reads a small file whole, refusing one over `cap` bytes.
    pub(crate) fn read(&self, name: &str, cap: u64) -> Result<Vec<u8>> {
        let (r, size) = self
            .reader(name)?
            .ok_or_else(|| Error::path(&self.path, format!("lacks {name}")))?;
        read_capped(r, size, cap, &self.path, name)
    }
}

/// How many links a name may pass through before reaching a file (the kernel's own limit):
/// a longer chain, like a loop, resolves to nothing.
const MAX_LINK_HOPS: usize = 40;

/// Adds every link that leads to a file (within [`MAX_LINK_HOPS`]) to `entries`, as that file.
/// Each link's resolution is remembered, so a chain is walked once, not once per link on it:
/// the work is linear in the number of links. Returns how many hops were followed.
fn resolve_links(entries: &mut HashMap<String, (u64, u64)>, links: &[(String, String)]) -> usize {
    // A name that is also a regular file is that file (as before: files win over links).
    let mut targets: HashMap<&str, &str> = HashMap::with_capacity(links.len());
    for (name, target) in links {
        if !entries.contains_key(name) {
            targets.entry(name.as_str()).or_insert(target.as_str());
        }
    }
    // Resolved links: the file they reach and how many hops it took; `None` for nothing.
    type Reached = Option<((u64, u64), usize)>;
    let mut memo: HashMap<&str, Reached> = HashMap::with_capacity(links.len());
    let mut hops = 0;
    for &start in targets.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut cur = start;
        let end = loop {
            if let Some(&e) = entries.get(cur) {
                break Some((e, 0));
            }
            if let Some(&m) = memo.get(cur) {
                break m;
            }
            let Some(&next) = targets.get(cur) else {
                break None; // a dangling link
            };
            if path.len() > MAX_LINK_HOPS {
                // Too long or a loop: only `start` is known to be out of reach; the links
                // nearer the file are decided by their own walks.
                path.truncate(1);
                break None;
            }
            path.push(cur);
            cur = next;
            hops += 1;
        };
        let mut end = end;
        for &name in path.iter().rev() {
            end = end.and_then(|(e, d)| (d < MAX_LINK_HOPS).then_some((e, d + 1)));
            memo.insert(name, end);
        }
    }
    for (name, m) in memo {
        if let Some((e, _)) = m {
            entries.insert(name.to_string(), e);
        }
    }
    hops
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
        ix.read(name, 1 << 20).unwrap()
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

    /// A chain `l0 -> file`, `l1 -> l0`, …, as link pairs.
    fn chain(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let target = if i == 0 {
                    "file".into()
                } else {
                    format!("l{}", i - 1)
                };
                (format!("l{i}"), target)
            })
            .collect()
    }

    #[test]
    fn a_long_link_chain_is_resolved_in_linear_steps_up_to_the_hop_limit() {
        let n = 20_000;
        let mut entries = HashMap::from([("file".to_string(), (512, 3))]);
        let hops = resolve_links(&mut entries, &chain(n));
        // Quadratic resolution would take ~n²/2 = 2·10⁸ steps; each link costs at most one walk
        // of the hop limit here.
        assert!(hops <= n * (MAX_LINK_HOPS + 2), "{hops} steps");
        assert_eq!(
            entries.get(&format!("l{}", MAX_LINK_HOPS - 1)),
            Some(&(512, 3))
        );
        assert!(!entries.contains_key(&format!("l{MAX_LINK_HOPS}")));
        assert!(!entries.contains_key(&format!("l{}", n - 1)));
        assert_eq!(entries.len(), 1 + MAX_LINK_HOPS);
    }

    #[test]
    fn a_20000_link_chain_archive_opens() {
        use tar::EntryType::{Regular, Symlink};
        let links = chain(20_000);
        let mut spec = vec![("file", Regular, "abc")];
        spec.extend(links.iter().map(|(n, t)| (n.as_str(), Symlink, t.as_str())));
        let f = tar_with(&spec);
        let ix = TarIndex::open(f.path()).unwrap();
        assert_eq!(read(&ix, "l0"), b"abc");
        assert_eq!(read(&ix, &format!("l{}", MAX_LINK_HOPS - 1)), b"abc");
        assert!(ix.get("l19999").is_none());
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_named_as_such() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &[b'z'; 1024]).unwrap();
        let e = TarIndex::open(f.path()).err().unwrap().to_string();
        assert!(e.contains("not a tar archive"), "{e}");
    }
}
