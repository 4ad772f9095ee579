//! The config tree as zip entries under `config/`: walked with the layer's filters, symlinks
//! stored as copies of what they point to.
use super::{BundleOptions, CONFIG_DIR, LAMBDA_TASK_ROOT};
use crate::error::{Error, Result};
use crate::mutate::outside::OutsideFile;
use crate::mutate::walk::{self, EntryKind};
use crate::sink::lambda_zip::{copy_tagged, file_options, zip_msg, zip_time};
use std::fs;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

/// One config-tree entry as it will appear in the zip.
pub(super) struct ConfigItem {
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
pub(super) fn collect_config(opts: &BundleOptions, out_dir: &Path) -> Result<Vec<ConfigItem>> {
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
        if e.kind == EntryKind::Dir {
            out.push(ConfigItem {
                name: name + "/",
                kind: ConfigKind::Dir,
            });
            continue;
        }
        // Lambda deployment zips do not reliably preserve symlinks (the console, some
        // uploaders and unzip tools store or extract them as plain files holding the target
        // path), so a symlink is stored as a copy of the file the walk resolved it to.
        let Some((source, executable)) = e.content() else {
            return Err(Error::path(
                &e.source,
                "symlink to a directory cannot go into a Lambda zip — replace it with a real directory or --exclude it",
            ));
        };
        let kind = ConfigKind::File {
            source: source.to_path_buf(),
            executable,
        };
        out.push(ConfigItem { name, kind });
    }
    Ok(out)
}

/// Writes `config/` and the config tree; returns (entries written, files written).
pub(super) fn add_config<W: Write + Seek>(
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
                let (mut f, meta) = walk::open_regular(source)
                    .map_err(|e| Error::io("reading config file", source, e))?;
                let size = meta.len();
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

/// Writes the referenced files from outside the config directory at their paths below the zip's
/// root, sorted by path; returns the entries written. No directory entries: a name the engine's
/// archive holds as a directory stays its own. A name the engine already uses is refused.
pub(super) fn add_outside<W: Write + Seek>(
    files: &[OutsideFile],
    zip: &mut ZipWriter<W>,
    mtime: u64,
    out: &Path,
) -> Result<usize> {
    let time = zip_time(mtime);
    let mut sorted: Vec<&OutsideFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &sorted {
        let name = Path::new(&f.path)
            .strip_prefix(LAMBDA_TASK_ROOT)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                Error::path(
                    &f.source,
                    format!("'{}' has no place in the Lambda zip", f.path),
                )
            })?;
        let (mut src, meta) = walk::open_regular(&f.source)
            .map_err(|e| Error::io("reading config file", &f.source, e))?;
        let size = meta.len();
        let opts = file_options(time, if f.executable { 0o755 } else { 0o644 }, size);
        zip.start_file(name, opts).map_err(|e| {
            Error::path(
                &f.source,
                format!(
                    "'{}' ({}: {}) would be {} in the Lambda zip, which the engine's archive \
                     cannot share ({}) — move the file into the config directory",
                    f.reference,
                    f.config,
                    f.key,
                    f.path,
                    zip_msg(&e)
                ),
            )
        })?;
        copy_tagged(
            &mut src,
            zip,
            |e| Error::io("reading config file", &f.source, e),
            |e| Error::io("writing bundle", out, e),
        )?;
    }
    Ok(sorted.len())
}
