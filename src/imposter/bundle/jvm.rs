//! The JVM engine's `imposter-awslambda.zip`: every entry copied with its compressed bytes
//! untouched, except the engine's own `config/`, which the bundled config replaces.
use super::CONFIG_DIR;
use crate::error::{Error, Result};
use crate::sink::lambda_zip::zip_msg;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Copies everything from a JVM engine zip except `config/`; returns (entries, 0).
pub(super) fn copy_jvm_engine<W: Write + Seek>(
    path: &Path,
    zip: &mut ZipWriter<W>,
    out: &Path,
) -> Result<(usize, usize)> {
    let bad = |msg: String| Error::path(path, msg);
    let file = File::open(path).map_err(|e| Error::io("opening engine zip", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("opening engine zip", path, e))?
        .len();
    let mut archive = ZipArchive::new(io::BufReader::new(file)).map_err(|e| {
        bad(format!(
            "not a readable zip archive ({}) — download imposter-awslambda.zip from an Imposter release again",
            zip_msg(&e)
        ))
    })?;
    if archive.is_empty() {
        return Err(bad(
            "engine zip has no entries — pass the imposter-awslambda.zip from an Imposter release"
                .into(),
        ));
    }

    // Check every entry before writing any, so a damaged download fails with its name rather
    // than producing a zip the Lambda runtime cannot load.
    let mut keep = Vec::with_capacity(archive.len());
    let mut links: Vec<(String, String)> = Vec::new();
    let mut names: Vec<String> = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let (name, method, end, link) = {
            let f = archive
                .by_index_raw(i)
                .map_err(|e| bad(format!("entry #{i}: {} — download it again", zip_msg(&e))))?;
            let end = f.data_start().checked_add(f.compressed_size());
            (f.name().to_owned(), f.compression(), end, f.is_symlink())
        };
        if unsafe_entry_name(&name) {
            return Err(bad(format!(
                "entry {name:?} has an absolute or `..` path — refusing to bundle it; use an official engine zip"
            )));
        }
        if end.is_none_or(|end| end > len) {
            return Err(bad(format!(
                "entry {name:?} runs past the end of the file (truncated?) — download it again"
            )));
        }
        if matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            let mut f = archive.by_index(i).map_err(|e| {
                bad(format!(
                    "entry {name:?}: {} — download it again",
                    zip_msg(&e)
                ))
            })?;
            io::copy(&mut f, &mut io::sink()).map_err(|e| {
                bad(format!(
                    "entry {name:?} is corrupt ({e}) — download it again"
                ))
            })?;
        }
        if link {
            let target = read_link_target(&mut archive, i)
                .map_err(|e| bad(format!("entry {name:?}: {e} — download it again")))?;
            links.push((name.clone(), target));
        }
        names.push(name.clone());
        if is_under_config(&name) {
            tracing::debug!("dropping {name} from the engine zip; the bundled config replaces it");
        } else {
            keep.push(i);
        }
    }
    if let Some(msg) = escaping_link(&links, &names) {
        return Err(bad(format!(
            "{msg} — refusing to bundle it; use an official engine zip"
        )));
    }

    let zerr = |name: &str, e: ZipError| {
        Error::path(out, format!("copying engine entry {name}: {}", zip_msg(&e)))
    };
    for &i in &keep {
        let f = archive
            .by_index_raw(i)
            .map_err(|e| bad(format!("entry #{i}: {}", zip_msg(&e))))?;
        let name = f.name().to_owned();
        let time = f
            .last_modified()
            .filter(|t| t.is_valid())
            .unwrap_or_default();
        let mode = f.unix_mode();
        if f.is_dir() {
            drop(f);
            let opts = SimpleFileOptions::default()
                .last_modified_time(time)
                .unix_permissions(mode.unwrap_or(0o755));
            zip.add_directory(name.as_str(), opts)
                .map_err(|e| zerr(&name, e))?;
        } else if f.is_symlink() {
            // The raw copy would turn the link into a regular file; keep it a link instead.
            drop(f);
            let mut target = String::new();
            archive
                .by_index(i)
                .and_then(|mut f| Ok(f.read_to_string(&mut target)?))
                .map_err(|e| bad(format!("entry {name:?}: {}", zip_msg(&e))))?;
            let opts = SimpleFileOptions::default()
                .last_modified_time(time)
                .unix_permissions(mode.unwrap_or(0o777));
            zip.add_symlink(name.as_str(), target, opts)
                .map_err(|e| zerr(&name, e))?;
        } else {
            // Compressed bytes, CRC and sizes are carried over as they are. The time is passed
            // explicitly so a missing one never becomes "now".
            zip.raw_copy_file_touch(f, time, mode)
                .map_err(|e| zerr(&name, e))?;
        }
    }
    Ok((keep.len(), 0))
}

/// A link's target is its content; a real one is a short path, so a long one is refused
/// rather than read into memory.
fn read_link_target<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    i: usize,
) -> Result<String, String> {
    const MAX_TARGET: u64 = 4096;
    let f = archive.by_index(i).map_err(|e| zip_msg(&e))?;
    if f.size() > MAX_TARGET {
        return Err(format!("is a link with a {}-byte target", f.size()));
    }
    let mut target = String::new();
    f.take(MAX_TARGET)
        .read_to_string(&mut target)
        .map_err(|e| format!("is a link with an unreadable target ({e})"))?;
    Ok(target)
}

/// The first link entry that would let the Lambda runtime (or anyone unzipping the bundle)
/// reach outside the task root: an absolute target, one whose `..` climbs above the zip root
/// (links the path passes through are followed, so `a -> .` cannot hide a climb), or an entry
/// stored beneath a link (written through it on extraction).
pub(super) fn escaping_link(links: &[(String, String)], names: &[String]) -> Option<String> {
    let map: std::collections::HashMap<&str, &str> = links
        .iter()
        .map(|(n, t)| (n.trim_end_matches('/'), t.as_str()))
        .collect();
    for (name, target) in links {
        if resolve_in_zip(name.trim_end_matches('/'), target, &map).is_none() {
            return Some(format!(
                "link entry {name:?} points outside the zip ({target:?})"
            ));
        }
    }
    for name in names {
        let parts: Vec<&str> = name
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        for k in 1..parts.len() {
            let dir = parts[..k].join("/");
            if map.contains_key(dir.as_str()) {
                return Some(format!(
                    "entry {name:?} lies beneath the link entry {dir:?}"
                ));
            }
        }
    }
    None
}

/// Resolves `target` of the link `name` to a path inside the zip, following the zip's own
/// links on the way (at most 40 hops, like the kernel); `None` if it leaves the zip or loops.
fn resolve_in_zip(
    name: &str,
    target: &str,
    links: &std::collections::HashMap<&str, &str>,
) -> Option<Vec<String>> {
    let mut hops = 0;
    let mut parts: Vec<String> = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    parts.pop();
    // Components still to walk, in reverse (a stack), so a followed link splices its target in.
    let mut todo: Vec<String> = Vec::new();
    let push_target = |todo: &mut Vec<String>, t: &str| -> Option<()> {
        if t.starts_with('/')
            || t.starts_with('\\')
            || t.contains('\0')
            || t.as_bytes().get(1) == Some(&b':')
        {
            return None;
        }
        todo.extend(t.split(['/', '\\']).rev().map(str::to_string));
        Some(())
    };
    push_target(&mut todo, target)?;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => {
                parts.push(c);
                let here = parts.join("/");
                if let Some(t) = links.get(here.as_str()) {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    parts.pop();
                    push_target(&mut todo, t)?;
                }
            }
        }
    }
    Some(parts)
}

/// True for names that would extract outside the Lambda task root.
pub(super) fn unsafe_entry_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.is_empty()
        || name.contains('\0')
        || name.starts_with('/')
        || name.starts_with('\\')
        || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic())
        || name.split(['/', '\\']).any(|c| c == "..")
}

/// True for `config`, `config/` and anything below it (also spelt `./config/...`).
pub(super) fn is_under_config(name: &str) -> bool {
    name.split('/')
        .find(|c| !c.is_empty() && *c != ".")
        .is_some_and(|c| c == CONFIG_DIR)
}
