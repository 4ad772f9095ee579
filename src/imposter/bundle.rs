//! AWS Lambda bundles: a zip holding the engine plus the config tree under `config/`, which the
//! Lambda runtime sees as `/var/task/config`.
//!
//! * JVM engine (`imposter-awslambda.zip`): every engine entry is copied in its original order
//!   with its compressed bytes untouched (raw copy), except anything under `config/`, which the
//!   bundled config replaces.
//! * Go engine (`imposter-go_linux_<arch>.tar.gz`): the `imposter` (or `bootstrap`) executable
//!   becomes `bootstrap` at the zip root, as the `provided.al2023` runtime expects.
//!
//! The output is deterministic: the same engine, config tree and `mtime` give a byte-identical
//! zip. Config entries come sorted, every new entry carries the same DOS timestamp, a fixed unix
//! mode and no extra fields, and files are deflated at a fixed level.
use crate::error::{Error, Result};
use crate::mutate::walk::{self, EntryKind, WalkOptions};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// Top-level directory of the zip that the Lambda runtime reads config from.
pub const CONFIG_DIR: &str = "config";

/// Name the Lambda custom runtime executes.
pub const BOOTSTRAP: &str = "bootstrap";

/// Deflate level for entries written here; pinned so the output does not depend on a default.
pub const ZIP_DEFLATE_LEVEL: i64 = 6;

/// Sizes at or above this need zip64 headers.
const ZIP64_THRESHOLD: u64 = 0xFFFF_FFFF;

/// Names of the Go engine executable inside its release tarball, in order of preference.
const GO_BINARY_NAMES: &[&str] = &["imposter", BOOTSTRAP];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineArchive {
    /// `imposter-awslambda.zip` from an Imposter release (JVM engine).
    JvmZip(PathBuf),
    /// `imposter-go_linux_<arch>.tar.gz` from an imposter-go release.
    GoTarGz(PathBuf),
}

impl EngineArchive {
    pub fn path(&self) -> &Path {
        match self {
            EngineArchive::JvmZip(p) | EngineArchive::GoTarGz(p) => p,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BundleOptions {
    pub config_dir: PathBuf,
    pub engine: EngineArchive,
    pub output: PathBuf,
    /// Replace `output` if it exists.
    pub force: bool,
    pub walk: WalkOptions,
    /// Seconds since the epoch for every entry written here (`SOURCE_DATE_EPOCH`, else 0).
    /// Zip timestamps cannot go below 1980-01-01, so earlier values are clamped to it.
    pub mtime: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    pub output: PathBuf,
    /// Every entry in the zip: engine entries, `config/` and the config tree.
    pub entries: usize,
    /// Regular files under `config/` (symlinks count once, as the file they were stored as).
    pub config_files: usize,
    /// Size of the zip in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the zip, as `sha256sum` prints it.
    pub sha256: String,
}

/// Builds the Lambda zip described by `opts` and moves it into place atomically.
pub fn bundle(opts: &BundleOptions) -> Result<BundleSummary> {
    let out_dir = check_output(&opts.output, opts.force)?;
    let config = collect_config(opts, &out_dir)?;
    check_engine_file(opts.engine.path())?;

    let mut tmp = tempfile::Builder::new()
        .prefix(".mockimg-bundle-")
        .suffix(".zip.tmp")
        .tempfile_in(&out_dir)
        .map_err(|e| Error::io("creating temporary file in", &out_dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    let write_err = |e: io::Error| Error::io("writing bundle", &tmp_path, e);

    let counts = {
        let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 16, tmp.as_file_mut()));
        let mut counts = match &opts.engine {
            EngineArchive::JvmZip(p) => copy_jvm_engine(p, &mut zip, &tmp_path)?,
            EngineArchive::GoTarGz(p) => add_go_engine(p, &mut zip, opts.mtime, &tmp_path)?,
        };
        let (entries, files) = add_config(&config, &mut zip, opts.mtime, &tmp_path)?;
        counts.0 += entries;
        counts.1 += files;
        let buf = zip
            .finish()
            .map_err(|e| Error::path(&tmp_path, format!("finishing zip: {}", zip_msg(&e))))?;
        buf.into_inner()
            .map_err(|e| write_err(e.into_error()))?
            .sync_all()
            .map_err(write_err)?;
        counts
    };

    let (size, sha256) = hash_file(tmp.as_file_mut()).map_err(write_err)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(write_err)?;

    let persisted = if opts.force {
        tmp.persist(&opts.output)
    } else {
        // Fails rather than replacing a file that appeared while we were writing.
        tmp.persist_noclobber(&opts.output)
    };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            exists_error(&opts.output)
        } else {
            Error::io("moving bundle into place", &opts.output, e.error)
        }
    })?;

    Ok(BundleSummary {
        output: opts.output.clone(),
        entries: counts.0,
        config_files: counts.1,
        size,
        sha256,
    })
}

fn exists_error(output: &Path) -> Error {
    Error::Usage(format!(
        "{}: already exists — pass --force to overwrite it",
        output.display()
    ))
}

/// Checks the output can be written; returns the directory the temp file goes in.
fn check_output(output: &Path, force: bool) -> Result<PathBuf> {
    let name_ok = output.file_name().is_some_and(|n| n != "." && n != "..");
    if !name_ok {
        return Err(Error::path(
            output,
            "output must be a file name such as lambda.zip",
        ));
    }
    match fs::symlink_metadata(output) {
        Ok(m) if m.is_dir() => {
            return Err(Error::path(
                output,
                "is a directory — pass a file name such as lambda.zip",
            ))
        }
        Ok(_) if !force => return Err(exists_error(output)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("checking output", output, e)),
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(Error::path(
            &dir,
            "output's parent is not a directory — choose another output path",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::path(
            &dir,
            "output directory does not exist — create it first or choose another output path",
        )),
        Err(e) => Err(Error::io("checking output directory", &dir, e)),
    }
}

fn check_engine_file(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Error::path(
            path,
            "engine archive is not a file — pass the downloaded release archive",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::path(
            path,
            "engine archive does not exist — download it from the Imposter releases page",
        )),
        Err(e) => Err(Error::io("opening engine archive", path, e)),
    }
}

/// One config-tree entry as it will appear in the zip.
struct ConfigItem {
    /// Zip name, `config/...`, with a trailing `/` for directories.
    name: String,
    kind: ConfigKind,
}

enum ConfigKind {
    Dir,
    /// A regular file, or the file a symlink resolves to.
    File {
        source: PathBuf,
        executable: bool,
    },
}

/// Walks the config dir and resolves what each entry becomes, before anything is written.
fn collect_config(opts: &BundleOptions, out_dir: &Path) -> Result<Vec<ConfigItem>> {
    let entries = walk::collect(&opts.config_dir, &opts.walk)?;
    let root = fs::canonicalize(&opts.config_dir)
        .map_err(|e| Error::io("reading config directory", &opts.config_dir, e))?;
    // A previous bundle written into the config dir must not end up inside the next one.
    let output_abs = fs::canonicalize(out_dir)
        .ok()
        .zip(opts.output.file_name())
        .map(|(d, n)| d.join(n));

    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if output_abs.as_deref() == Some(root.join(&e.rel).as_path()) {
            continue;
        }
        let rel = e.rel.to_str().ok_or_else(|| {
            Error::path(
                &e.source,
                "file name is not valid UTF-8, which zip names need — rename it or --exclude it",
            )
        })?;
        let name = format!("{CONFIG_DIR}/{rel}");
        let kind = match e.kind {
            EntryKind::Dir => {
                out.push(ConfigItem {
                    name: name + "/",
                    kind: ConfigKind::Dir,
                });
                continue;
            }
            EntryKind::File { executable, .. } => ConfigKind::File {
                source: e.source,
                executable,
            },
            // Lambda deployment zips do not reliably preserve symlinks (the console, some
            // uploaders and unzip tools store or extract them as plain files holding the target
            // path), so a symlink is stored as a copy of the file it points to.
            EntryKind::Symlink { .. } => resolve_symlink(&e.source, &root)?,
        };
        out.push(ConfigItem { name, kind });
    }
    Ok(out)
}

fn resolve_symlink(link: &Path, root: &Path) -> Result<ConfigKind> {
    let target = fs::canonicalize(link).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::path(
                link,
                "symlink target does not exist — fix the link or --exclude it",
            )
        } else {
            Error::io("resolving symlink", link, e)
        }
    })?;
    // The walk checked the link text lexically; this also catches chains through links that
    // were excluded from the walk.
    if !target.starts_with(root) {
        return Err(Error::path(
            link,
            format!(
                "symlink resolves outside the config directory (to {}) — copy the file in instead",
                target.display()
            ),
        ));
    }
    let meta = fs::metadata(&target).map_err(|e| Error::io("reading symlink target", link, e))?;
    if !meta.is_file() {
        return Err(Error::path(
            link,
            "symlink to a directory cannot go into a Lambda zip — replace it with a real directory or --exclude it",
        ));
    }
    Ok(ConfigKind::File {
        source: target,
        executable: meta.permissions().mode() & 0o111 != 0,
    })
}

/// Writes `config/` and the config tree; returns (entries written, files written).
fn add_config<W: Write + Seek>(
    items: &[ConfigItem],
    zip: &mut ZipWriter<W>,
    mtime: u64,
    out: &Path,
) -> Result<(usize, usize)> {
    let time = zip_time(mtime);
    let dir_opts = SimpleFileOptions::default()
        .last_modified_time(time)
        .unix_permissions(0o755);
    let zerr = |name: &str, e: ZipError| {
        Error::path(out, format!("writing zip entry {name}: {}", zip_msg(&e)))
    };
    let top = format!("{CONFIG_DIR}/");
    zip.add_directory(top.as_str(), dir_opts)
        .map_err(|e| zerr(&top, e))?;
    let mut files = 0;
    for item in items {
        match &item.kind {
            ConfigKind::Dir => zip
                .add_directory(item.name.as_str(), dir_opts)
                .map_err(|e| zerr(&item.name, e))?,
            ConfigKind::File { source, executable } => {
                let mut f =
                    File::open(source).map_err(|e| Error::io("reading config file", source, e))?;
                let size = f
                    .metadata()
                    .map_err(|e| Error::io("reading config file", source, e))?
                    .len();
                let opts = file_options(time, if *executable { 0o755 } else { 0o644 }, size);
                zip.start_file(item.name.as_str(), opts)
                    .map_err(|e| zerr(&item.name, e))?;
                let n = copy_tagged(
                    &mut f,
                    zip,
                    |e| Error::io("reading config file", source, e),
                    |e| Error::io("writing bundle", out, e),
                )?;
                if n != size {
                    return Err(Error::path(
                        source,
                        "file changed while it was being bundled — run again",
                    ));
                }
                files += 1;
            }
        }
    }
    Ok((items.len() + 1, files))
}

fn file_options(time: DateTime, mode: u32, size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(ZIP_DEFLATE_LEVEL))
        .last_modified_time(time)
        .unix_permissions(mode)
        .large_file(size >= ZIP64_THRESHOLD)
}

/// Copies everything from a JVM engine zip except `config/`; returns (entries, 0).
fn copy_jvm_engine<W: Write + Seek>(
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
    for i in 0..archive.len() {
        let (name, method, end) = {
            let f = archive
                .by_index_raw(i)
                .map_err(|e| bad(format!("entry #{i}: {} — download it again", zip_msg(&e))))?;
            let end = f.data_start().checked_add(f.compressed_size());
            (f.name().to_owned(), f.compression(), end)
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
        if is_under_config(&name) {
            tracing::debug!("dropping {name} from the engine zip; the bundled config replaces it");
        } else {
            keep.push(i);
        }
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

/// True for names that would extract outside the Lambda task root.
fn unsafe_entry_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.is_empty()
        || name.contains('\0')
        || name.starts_with('/')
        || name.starts_with('\\')
        || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic())
        || name.split(['/', '\\']).any(|c| c == "..")
}

/// True for `config`, `config/` and anything below it (also spelt `./config/...`).
fn is_under_config(name: &str) -> bool {
    name.split('/')
        .find(|c| !c.is_empty() && *c != ".")
        .is_some_and(|c| c == CONFIG_DIR)
}

/// Adds the Go engine binary as `bootstrap`; returns (1, 0).
fn add_go_engine<W: Write + Seek>(
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

/// Finds the engine executable: an ELF regular file named `imposter` or `bootstrap`, the
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
            "no `imposter` or `bootstrap` executable in the archive — pass the imposter-go_linux_<arch>.tar.gz release archive",
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

/// `io::copy` that tells read errors from write errors.
fn copy_tagged<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    read_err: impl Fn(io::Error) -> Error,
    write_err: impl Fn(io::Error) -> Error,
) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(&buf[..n]).map_err(&write_err)?;
        total += n as u64;
    }
}

fn hash_file(f: &mut File) -> io::Result<(u64, String)> {
    f.seek(SeekFrom::Start(0))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

/// `mtime` (seconds since the epoch, UTC) as a zip timestamp, clamped to the DOS range
/// 1980-01-01 00:00:00 ..= 2107-12-31 23:59:58. DOS time has 2-second resolution.
pub fn zip_time(mtime: u64) -> DateTime {
    use chrono::{Datelike, Timelike};
    let min = DateTime::default();
    let max = DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58).unwrap_or(min);
    let Some(t) = i64::try_from(mtime)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    else {
        return max;
    };
    match t.year() {
        y if y < 1980 => min,
        y if y > 2107 => max,
        y => DateTime::from_date_and_time(
            y as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
        )
        .unwrap_or(min),
    }
}

/// The zip crate's `Display` for I/O errors hides the cause; show it.
fn zip_msg(e: &ZipError) -> String {
    match e {
        ZipError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::os::unix::fs::symlink;

    fn config_tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("responses/nested")).unwrap();
        fs::write(p.join("a-config.yaml"), "plugin: rest\n").unwrap();
        fs::write(p.join("responses/one.json"), "{\"one\":1}").unwrap();
        fs::write(p.join("responses/nested/two.json"), "[2]").unwrap();
        fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(p.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("responses/one.json", p.join("alias.json")).unwrap();
        fs::create_dir_all(p.join(".git")).unwrap();
        fs::write(p.join(".git/HEAD"), "ref").unwrap();
        d
    }

    /// A JVM-style engine zip written with the zip crate: stored and deflated files, a
    /// directory, a symlink, a `config/` tree that must be dropped, odd modes and times.
    fn engine_zip(dir: &Path) -> PathBuf {
        let path = dir.join("engine.zip");
        let mut z = ZipWriter::new(File::create(&path).unwrap());
        let t = DateTime::from_date_and_time(2024, 5, 6, 7, 8, 10).unwrap();
        let o = SimpleFileOptions::default().last_modified_time(t);
        z.add_directory("lib/", o.unix_permissions(0o750)).unwrap();
        z.start_file("lib/a.jar", o.compression_method(CompressionMethod::Stored))
            .unwrap();
        z.write_all(&[7u8; 3000]).unwrap();
        z.start_file(
            "lib/b.txt",
            o.compression_method(CompressionMethod::Deflated)
                .compression_level(Some(9))
                .unix_permissions(0o600),
        )
        .unwrap();
        z.write_all("hello engine ".repeat(500).as_bytes()).unwrap();
        z.add_directory("config/", o).unwrap();
        z.start_file("config/old-config.yaml", o).unwrap();
        z.write_all(b"plugin: old\n").unwrap();
        z.start_file("bin/run", o.unix_permissions(0o755)).unwrap();
        z.write_all(b"#!/bin/sh\nexec java\n").unwrap();
        z.add_symlink("bin/link", "run", o).unwrap();
        z.finish().unwrap();
        path
    }

    fn tar_gz(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("engine.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), Default::default());
        let mut t = tar::Builder::new(gz);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Regular);
            t.append_data(&mut h, name, *data).unwrap();
        }
        t.into_inner().unwrap().finish().unwrap();
        path
    }

    fn elf(len: usize) -> Vec<u8> {
        let mut v = b"\x7fELF".to_vec();
        v.extend((0..len).map(|i| (i * 31 % 251) as u8));
        v
    }

    fn opts(config: &Path, engine: EngineArchive, output: PathBuf) -> BundleOptions {
        BundleOptions {
            config_dir: config.to_path_buf(),
            engine,
            output,
            force: false,
            walk: WalkOptions::default(),
            mtime: 1_700_000_000,
        }
    }

    fn read_zip(path: &Path) -> ZipArchive<File> {
        ZipArchive::new(File::open(path).unwrap()).unwrap()
    }

    fn names(z: &mut ZipArchive<File>) -> Vec<String> {
        (0..z.len())
            .map(|i| z.by_index_raw(i).unwrap().name().to_owned())
            .collect()
    }

    fn content(z: &mut ZipArchive<File>, name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        z.by_name(name).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    fn raw(
        z: &mut ZipArchive<File>,
        name: &str,
    ) -> (u32, u64, CompressionMethod, Option<u32>, DateTime, Vec<u8>) {
        let i = z.index_for_name(name).unwrap();
        let mut f = z.by_index_raw(i).unwrap();
        let meta = (
            f.crc32(),
            f.compressed_size(),
            f.compression(),
            f.unix_mode(),
            f.last_modified().unwrap(),
        );
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        (meta.0, meta.1, meta.2, meta.3, meta.4, v)
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".mockimg-bundle-"))
            .collect()
    }

    #[test]
    fn jvm_layout_raw_copy_and_modes() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let engine = engine_zip(work.path());
        let out = work.path().join("lambda.zip");
        let s = bundle(&opts(
            cfg.path(),
            EngineArchive::JvmZip(engine.clone()),
            out.clone(),
        ))
        .unwrap();
        let mut z = read_zip(&out);
        assert_eq!(
            names(&mut z),
            [
                "lib/",
                "lib/a.jar",
                "lib/b.txt",
                "bin/run",
                "bin/link",
                "config/",
                "config/a-config.yaml",
                "config/alias.json",
                "config/responses/",
                "config/responses/nested/",
                "config/responses/nested/two.json",
                "config/responses/one.json",
                "config/run.sh",
            ]
        );
        assert_eq!(s.entries, 13);
        assert_eq!(s.config_files, 5);
        assert_eq!(s.size, fs::metadata(&out).unwrap().len());
        assert_eq!(
            s.sha256,
            hex::encode(Sha256::digest(fs::read(&out).unwrap()))
        );

        let mut src = read_zip(&engine);
        for n in ["lib/a.jar", "lib/b.txt", "bin/run"] {
            assert_eq!(raw(&mut src, n), raw(&mut z, n), "{n} copied unchanged");
        }
        assert_eq!(
            z.by_name("lib/b.txt").unwrap().compression(),
            CompressionMethod::Deflated
        );
        assert_eq!(z.by_name("lib/b.txt").unwrap().unix_mode(), Some(0o100600));
        assert_eq!(z.by_name("lib/").unwrap().unix_mode(), Some(0o040750));
        assert!(z.by_name("bin/link").unwrap().is_symlink());
        assert_eq!(content(&mut z, "bin/link"), b"run");

        let t = zip_time(1_700_000_000);
        for (name, mode) in [
            ("config/", 0o040755),
            ("config/responses/nested/", 0o040755),
            ("config/a-config.yaml", 0o100644),
            ("config/run.sh", 0o100755),
            ("config/alias.json", 0o100644),
        ] {
            let f = z.by_name(name).unwrap();
            assert_eq!(f.unix_mode(), Some(mode), "{name}");
            assert_eq!(f.last_modified(), Some(t), "{name}");
            assert!(
                f.extra_data().is_none_or(|d| d.is_empty()),
                "{name} has extra data"
            );
        }
        assert_eq!(content(&mut z, "config/alias.json"), b"{\"one\":1}");
        assert_eq!(content(&mut z, "config/responses/nested/two.json"), b"[2]");
        assert_eq!(
            z.by_name("config/a-config.yaml").unwrap().compression(),
            CompressionMethod::Deflated
        );
        assert!(leftovers(work.path()).is_empty());
    }

    #[test]
    fn deterministic_and_sensitive_to_inputs() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let engine = EngineArchive::JvmZip(engine_zip(work.path()));
        let run = |name: &str, mtime: u64| {
            let mut o = opts(cfg.path(), engine.clone(), work.path().join(name));
            o.mtime = mtime;
            let s = bundle(&o).unwrap();
            (s.sha256, fs::read(work.path().join(name)).unwrap())
        };
        let a = run("a.zip", 1_700_000_000);
        let b = run("b.zip", 1_700_000_000);
        assert_eq!(a, b);
        let c = run("c.zip", 1_800_000_000);
        assert_ne!(a.0, c.0);
        fs::write(cfg.path().join("responses/one.json"), "{\"one\":2}").unwrap();
        let d = run("d.zip", 1_700_000_000);
        assert_ne!(a.0, d.0);
    }

    #[test]
    fn zip_time_conversion_and_clamping() {
        let min = DateTime::from_date_and_time(1980, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(zip_time(0), min);
        assert_eq!(zip_time(315_532_799), min);
        assert_eq!(zip_time(315_532_800), min);
        assert_eq!(
            zip_time(1_700_000_000),
            DateTime::from_date_and_time(2023, 11, 14, 22, 13, 20).unwrap()
        );
        let max = DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58).unwrap();
        assert_eq!(zip_time(u64::MAX), max);
        assert_eq!(zip_time(5_000_000_000), max, "year 2128 clamps");
        assert_eq!(
            zip_time(1_700_000_001),
            zip_time(1_700_000_000),
            "2-second resolution"
        );
    }

    #[test]
    fn go_engine_bootstrap_from_top_level_imposter() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let bin = elf(100_000);
        let tgz = tar_gz(
            work.path(),
            &[
                ("LICENSE", b"Apache"),
                ("docs/bootstrap", b"#!/bin/sh\n"),
                ("imposter", &bin),
                ("README.md", b"# go"),
            ],
        );
        let out = work.path().join("go.zip");
        let s = bundle(&opts(cfg.path(), EngineArchive::GoTarGz(tgz), out.clone())).unwrap();
        let mut z = read_zip(&out);
        let n = names(&mut z);
        assert_eq!(n[..3], ["bootstrap", "config/", "config/a-config.yaml"]);
        // bootstrap, config/ and the 7 entries of the tree.
        assert_eq!(s.entries, 9);
        assert_eq!(content(&mut z, "bootstrap"), bin);
        let f = z.by_name("bootstrap").unwrap();
        assert_eq!(f.unix_mode(), Some(0o100755));
        assert_eq!(f.compression(), CompressionMethod::Deflated);
        assert_eq!(f.last_modified(), Some(zip_time(1_700_000_000)));
    }

    #[test]
    fn go_engine_nested_binary_and_failures() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let bin = elf(10);
        // A non-ELF shallower candidate loses to a nested ELF one.
        let tgz = tar_gz(
            work.path(),
            &[
                ("bootstrap", b"#!/bin/sh\n"),
                ("imposter_1.2/bin/imposter", &bin),
            ],
        );
        let out = work.path().join("go.zip");
        bundle(&opts(cfg.path(), EngineArchive::GoTarGz(tgz), out.clone())).unwrap();
        assert_eq!(content(&mut read_zip(&out), "bootstrap"), bin);

        let out2 = work.path().join("go2.zip");
        let none = tar_gz(work.path(), &[("README.md", b"x"), ("imposterx", &bin)]);
        let err = bundle(&opts(
            cfg.path(),
            EngineArchive::GoTarGz(none.clone()),
            out2.clone(),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no `imposter` or `bootstrap`") && err.contains("engine.tar.gz"),
            "{err}"
        );

        let mac = tar_gz(work.path(), &[("imposter", b"\xcf\xfa\xed\xfe mach-o")]);
        let err = bundle(&opts(cfg.path(), EngineArchive::GoTarGz(mac), out2.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a Linux (ELF) executable"), "{err}");

        let full = tar_gz(work.path(), &[("imposter", &elf(200_000))]);
        let bytes = fs::read(&full).unwrap();
        fs::write(&full, &bytes[..bytes.len() / 2]).unwrap();
        let err = bundle(&opts(
            cfg.path(),
            EngineArchive::GoTarGz(full),
            out2.clone(),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("engine.tar.gz") && err.contains("tar.gz archive"),
            "{err}"
        );

        fs::write(&none, b"not gzip at all").unwrap();
        let err = bundle(&opts(
            cfg.path(),
            EngineArchive::GoTarGz(none),
            out2.clone(),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a readable .tar.gz"), "{err}");
        assert!(!out2.exists());
        assert!(leftovers(work.path()).is_empty());
    }

    #[test]
    fn refuses_overwrite_without_force() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let engine = EngineArchive::JvmZip(engine_zip(work.path()));
        let out = work.path().join("lambda.zip");
        fs::write(&out, "precious").unwrap();
        let mut o = opts(cfg.path(), engine, out.clone());
        let err = bundle(&o).unwrap_err();
        assert!(err.is_usage());
        let msg = err.to_string();
        assert!(
            msg.contains("lambda.zip") && msg.contains("--force"),
            "{msg}"
        );
        assert_eq!(fs::read(&out).unwrap(), b"precious");
        o.force = true;
        bundle(&o).unwrap();
        assert_eq!(&fs::read(&out).unwrap()[..4], b"PK\x03\x04");
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn output_path_errors() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let engine = EngineArchive::JvmZip(engine_zip(work.path()));
        let err = bundle(&opts(
            cfg.path(),
            engine.clone(),
            work.path().join("nope/x.zip"),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("nope") && err.contains("does not exist"),
            "{err}"
        );
        let mut o = opts(cfg.path(), engine.clone(), work.path().to_path_buf());
        o.force = true;
        let err = bundle(&o).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = bundle(&opts(
            cfg.path(),
            EngineArchive::JvmZip(work.path().join("missing.zip")),
            work.path().join("x.zip"),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("missing.zip") && err.contains("does not exist"),
            "{err}"
        );
        assert!(!work.path().join("x.zip").exists());
    }

    #[test]
    fn bad_engine_zips_leave_nothing_behind() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let good = fs::read(engine_zip(work.path())).unwrap();
        let out = work.path().join("out.zip");
        let bad = work.path().join("bad.zip");
        let try_bundle = |bytes: &[u8]| {
            fs::write(&bad, bytes).unwrap();
            let r = bundle(&opts(
                cfg.path(),
                EngineArchive::JvmZip(bad.clone()),
                out.clone(),
            ));
            assert!(!out.exists());
            assert!(leftovers(work.path()).is_empty());
            r.unwrap_err().to_string()
        };
        let err = try_bundle(b"this is not a zip file at all");
        assert!(
            err.contains("bad.zip") && err.contains("not a readable zip"),
            "{err}"
        );
        let err = try_bundle(&good[..good.len() / 2]);
        assert!(err.contains("bad.zip"), "{err}");
        // Flip a byte inside the stored lib/a.jar data (3000 × 7): CRC check fails.
        let mut corrupt = good.clone();
        let at = corrupt
            .windows(64)
            .position(|w| w.iter().all(|&b| b == 7))
            .unwrap()
            + 10;
        corrupt[at] = 8;
        let err = try_bundle(&corrupt);
        assert!(
            err.contains("lib/a.jar") && err.contains("corrupt"),
            "{err}"
        );
        let mut empty = ZipWriter::new(Cursor::new(Vec::new()));
        empty.set_comment("");
        let err = try_bundle(&empty.finish().unwrap().into_inner());
        assert!(err.contains("no entries"), "{err}");
    }

    #[test]
    fn unsafe_engine_names_rejected() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        for evil in ["../escape.txt", "/etc/passwd", "lib/../../x", "C:\\win.ini"] {
            let path = work.path().join("evil.zip");
            let mut z = ZipWriter::new(File::create(&path).unwrap());
            z.start_file("ok.txt", SimpleFileOptions::default())
                .unwrap();
            z.start_file(evil, SimpleFileOptions::default()).unwrap();
            z.write_all(b"x").unwrap();
            z.finish().unwrap();
            let out = work.path().join("out.zip");
            let err = bundle(&opts(cfg.path(), EngineArchive::JvmZip(path), out.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("absolute or `..` path") && err.contains("evil.zip"),
                "{evil}: {err}"
            );
            assert!(!out.exists());
        }
        assert!(!unsafe_entry_name("lib/a..b.jar"));
        assert!(is_under_config("config/"));
        assert!(is_under_config("./config/x.yaml"));
        assert!(is_under_config("config"));
        assert!(!is_under_config("configs/x"));
        assert!(!is_under_config("lib/config/x"));
    }

    #[test]
    fn symlinks_to_dirs_rejected_and_own_output_skipped() {
        let cfg = config_tree();
        let work = tempfile::tempdir().unwrap();
        let engine = EngineArchive::JvmZip(engine_zip(work.path()));
        // Output inside the config dir: a second, forced run must not bundle the first zip.
        let out = cfg.path().join("lambda.zip");
        let mut o = opts(cfg.path(), engine.clone(), out.clone());
        let first = bundle(&o).unwrap();
        o.force = true;
        let second = bundle(&o).unwrap();
        assert_eq!(first.sha256, second.sha256);
        assert!(!names(&mut read_zip(&out))
            .iter()
            .any(|n| n.ends_with("lambda.zip")));

        symlink("responses", cfg.path().join("dirlink")).unwrap();
        let err = bundle(&opts(cfg.path(), engine, work.path().join("x.zip")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dirlink") && err.contains("directory"),
            "{err}"
        );
        assert!(!work.path().join("x.zip").exists());
    }

    #[test]
    fn empty_config_dir_still_has_config_root() {
        let cfg = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let tgz = tar_gz(work.path(), &[("imposter", &elf(8))]);
        let out = work.path().join("o.zip");
        let s = bundle(&opts(cfg.path(), EngineArchive::GoTarGz(tgz), out.clone())).unwrap();
        assert_eq!(names(&mut read_zip(&out)), ["bootstrap", "config/"]);
        assert_eq!((s.entries, s.config_files), (2, 0));
    }
}
