//! The Go engine's `imposter-go_linux_<arch>.tar.gz`: its executable becomes `bootstrap` at the
//! zip root, as the `provided.al2023` runtime expects.
//!
//! goreleaser names the archive `{project_name}_{os}_{arch}` and the binary after the project,
//! `imposter-go`, at the archive root beside README.md and CHANGELOG.md (goreleaser's default
//! archive files): imposter-go@v5.21.3:.goreleaser.yml:1,7-31.
use super::BOOTSTRAP;
use crate::error::{Error, Result};
use crate::sink::lambda_zip::{copy_tagged, file_options, zip_msg, zip_time};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path};
use zip::ZipWriter;

/// Names of the Go engine executable inside its release tarball: the release's `imposter-go`
/// (imposter-go@v5.21.3:.goreleaser.yml:1), and `imposter` or `bootstrap` in a hand-made one.
const GO_BINARY_NAMES: &[&str] = &["imposter-go", "imposter", BOOTSTRAP];

/// Adds the Go engine binary as `bootstrap`; returns (1, 0).
pub(super) fn add_go_engine<W: Write + Seek>(
    path: &Path,
    zip: &mut ZipWriter<W>,
    mtime: u64,
    out: &Path,
) -> Result<(usize, usize)> {
    let found = find_go_binary(path)?;
    let mut archive = open_tar_gz(path)?;
    let bad = |e: io::Error| {
        Error::path(
            path,
            format!("not a readable .tar.gz archive ({e}) — download it again"),
        )
    };
    for (i, entry) in archive.entries().map_err(bad)?.enumerate() {
        let mut entry = entry.map_err(bad)?;
        if i != found.index {
            continue;
        }
        let opts = file_options(zip_time(mtime), 0o755, found.size);
        zip.start_file(BOOTSTRAP, opts).map_err(|e| {
            Error::path(
                out,
                format!("writing zip entry {BOOTSTRAP}: {}", zip_msg(&e)),
            )
        })?;
        let n = copy_tagged(&mut entry, zip, bad, |e| {
            Error::io("writing bundle", out, e)
        })?;
        if n != found.size {
            return Err(Error::path(
                path,
                format!("{} is truncated — download the archive again", found.name),
            ));
        }
        return Ok((1, 0));
    }
    Err(Error::path(
        path,
        "archive changed while it was being read — run again",
    ))
}

struct GoBinary {
    index: usize,
    name: String,
    size: u64,
}

fn open_tar_gz(
    path: &Path,
) -> Result<tar::Archive<flate2::read::MultiGzDecoder<io::BufReader<File>>>> {
    let f = File::open(path).map_err(|e| Error::io("opening engine archive", path, e))?;
    Ok(tar::Archive::new(flate2::read::MultiGzDecoder::new(
        io::BufReader::new(f),
    )))
}

/// Finds the engine executable: an ELF regular file named `imposter-go`, `imposter` or
/// `bootstrap`, the
/// shallowest one, first in archive order on a tie. Reads the whole archive, so a damaged one
/// fails here, before anything is written.
fn find_go_binary(path: &Path) -> Result<GoBinary> {
    let mut archive = open_tar_gz(path)?;
    let bad = |e: io::Error| {
        Error::path(
            path,
            format!(
                "not a readable .tar.gz archive ({e}) — pass the imposter-go_linux_<arch>.tar.gz release archive"
            ),
        )
    };
    // (is_elf, depth, index, name, size); the best is the ELF one with the smallest depth.
    let mut best: Option<(bool, usize, usize, String, u64)> = None;
    for (i, entry) in archive.entries().map_err(bad)?.enumerate() {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let p = entry.path().map_err(bad)?.into_owned();
        let Some(file_name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !GO_BINARY_NAMES.contains(&file_name) {
            continue;
        }
        let depth = p
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        let mut magic = [0u8; 4];
        let is_elf = entry.size() >= 4 && {
            entry.read_exact(&mut magic).map_err(bad)?;
            magic == *b"\x7fELF"
        };
        let better = match &best {
            None => true,
            Some((b_elf, b_depth, ..)) => {
                (is_elf, std::cmp::Reverse(depth)) > (*b_elf, std::cmp::Reverse(*b_depth))
            }
        };
        if better {
            best = Some((is_elf, depth, i, p.display().to_string(), entry.size()));
        }
    }
    match best {
        None => Err(Error::path(
            path,
            "no `imposter-go` executable in the archive (nor `imposter` or `bootstrap`) — pass the imposter-go_linux_<arch>.tar.gz release archive",
        )),
        Some((false, _, _, name, _)) => Err(Error::path(
            path,
            format!(
                "{name} is not a Linux (ELF) executable — pass the imposter-go_linux_amd64 or _arm64 .tar.gz"
            ),
        )),
        Some((true, _, index, name, size)) => Ok(GoBinary { index, name, size }),
    }
}
