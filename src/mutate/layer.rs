//! The config layer: the walked config tree, tarred and gzipped in one pass with every header
//! field and the gzip header pinned, so the same tree always gives the same digest.
use crate::error::{Error, Result};
use crate::mutate::gzip::ParallelGz;
use crate::mutate::outside::{self, OutsideFile};
use crate::mutate::spool::Spool;
use crate::mutate::walk::{open_regular, Entry, EntryKind};
use crate::oci::blob::LocalBlob;
use crate::oci::digest::HashingWriter;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the JVM and Go engines read their config from.
pub(crate) const DEFAULT_CONFIG_PATH: &str = "/opt/imposter/config";

/// gzip level 6: on the bench's 100 MB JSON fixture, level 9 took 1.2× the time for a larger
/// layer, level 1 was 3× faster but 66 % larger (BENCHMARKS.md, scenario 5).
pub(crate) const DEFAULT_GZIP_LEVEL: u32 = 6;

/// How the layer is laid out and compressed.
#[derive(Debug, Clone)]
pub struct LayerOptions {
    /// Absolute path in the image, e.g. `/opt/imposter/config`.
    pub config_path: String,
    /// Seconds since the epoch for every entry (`SOURCE_DATE_EPOCH`, else 0).
    pub mtime: u64,
    /// Add an opaque whiteout so the base's content at `config_path` is hidden.
    pub replace: bool,
    /// gzip level, 1 to 9; part of what pins the digest.
    pub gzip_level: u32,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self {
            config_path: DEFAULT_CONFIG_PATH.into(),
            mtime: 0,
            replace: false,
            gzip_level: DEFAULT_GZIP_LEVEL,
        }
    }
}

/// The built layer blob: in memory when small, else in a temp file that lives as long as the
/// last clone of it (so memory does not grow with the config).
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzipped tar.
    pub blob: LocalBlob,
    /// sha256 of the compressed blob.
    pub digest: String,
    /// sha256 of the uncompressed tar, as recorded in the image config's rootfs.
    pub diff_id: String,
    /// Regular files written (directories and symlinks not counted).
    pub files: usize,
}

impl Layer {
    /// Size of the compressed blob in bytes.
    pub fn size(&self) -> u64 {
        self.blob.len()
    }
}

/// Checks `--config-path`: absolute, normalised, no `..`; returns its components.
pub(crate) fn config_path_components(p: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::Usage(format!(
            "--config-path {p:?}: must be an absolute path like /opt/imposter/config"
        ))
    };
    let rest = p.strip_prefix('/').ok_or_else(bad)?;
    let parts: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if parts.is_empty() || parts.iter().any(|s| s == "." || s == "..") {
        return Err(bad());
    }
    Ok(parts)
}

/// Tars and gzips `entries` (from [`crate::mutate::walk::collect`]) under `opts.config_path`,
/// spooling a large layer to the system temp dir.
pub(crate) fn build(entries: &[Entry], opts: &LayerOptions) -> Result<Layer> {
    build_in(entries, &[], opts, None)
}

/// [`build`], with a large layer spooled into `spool_dir` (`None`: the system temp dir). One
/// pass over the files: the tar is hashed (diff_id) on its way into the compressor and the gzip
/// (digest) on its way into the spool, and files are read in small pieces, so memory stays a
/// few compressor chunks whatever the config's size.
///
/// `outside` are referenced files from outside the config directory
/// ([`crate::mutate::outside`]); they go into the same layer at their own paths, merged into the
/// path order, so a config without them gives the same bytes as before they existed.
pub(crate) fn build_in(
    entries: &[Entry],
    outside: &[OutsideFile],
    opts: &LayerOptions,
    spool_dir: Option<PathBuf>,
) -> Result<Layer> {
    let spool_path = spool_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join("<layer spool>");
    build_into(entries, outside, opts, Spool::new(spool_dir), &spool_path)
}

/// One top-level step of the layer, in path order.
enum Step {
    /// An ancestor directory of the config path.
    ConfigParent,
    /// The config path and the whole config tree below it.
    Config,
    /// A directory an outside file needs.
    OutsideDir,
    /// An outside file.
    OutsideFile(OutsideFile),
}

fn build_into(
    entries: &[Entry],
    outside: &[OutsideFile],
    opts: &LayerOptions,
    spool: Spool,
    spool_path: &Path,
) -> Result<Layer> {
    let parts = config_path_components(&opts.config_path)?;
    let io = |e: std::io::Error| Error::io("writing layer", spool_path, e);
    let gz = ParallelGz::new(HashingWriter::new(spool), opts.gzip_level).map_err(io)?;
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    tar.mode(tar::HeaderMode::Deterministic);

    // Paths compare component by component, so a parent sorts before its children and the
    // config tree (nothing outside lies below the config path) stays one block.
    let mut steps: std::collections::BTreeMap<PathBuf, Step> = Default::default();
    let mut prefix = PathBuf::new();
    for p in &parts {
        prefix.push(p);
        steps.insert(prefix.clone(), Step::ConfigParent);
    }
    steps.insert(prefix.clone(), Step::Config);
    for (path, file) in outside::plan(outside, &opts.config_path) {
        if steps.contains_key(&path) {
            return Err(Error::path(
                path,
                "an outside file would replace a directory of the config path",
            ));
        }
        steps.insert(path, file.map_or(Step::OutsideDir, Step::OutsideFile));
    }
    let mut files = 0;
    for (path, step) in steps {
        match step {
            Step::ConfigParent | Step::OutsideDir => {
                append_dir(&mut tar, &path, opts.mtime).map_err(io)?
            }
            Step::OutsideFile(f) => {
                append_file(&mut tar, &path, &f.source, f.executable, opts.mtime)?;
                files += 1;
            }
            Step::Config => files += append_config(&mut tar, &prefix, entries, opts, &io)?,
        }
    }
    let tar_hw = tar.into_inner().map_err(io)?;
    let diff_id = tar_hw.hasher.finish();
    let gz_hw = tar_hw.inner.finish().map_err(io)?;
    let digest = gz_hw.hasher.finish();
    Ok(Layer {
        blob: gz_hw.inner.finish().map_err(io)?,
        digest,
        diff_id,
        files,
    })
}

/// The config path's own directory entry and the config tree; returns the files written.
fn append_config<W: Write>(
    tar: &mut tar::Builder<W>,
    prefix: &Path,
    entries: &[Entry],
    opts: &LayerOptions,
    io: &dyn Fn(std::io::Error) -> Error,
) -> Result<usize> {
    append_dir(tar, prefix, opts.mtime).map_err(io)?;
    if opts.replace {
        let mut h = header(tar::EntryType::Regular, 0o644, opts.mtime);
        h.set_size(0);
        tar.append_data(&mut h, prefix.join(".wh..wh..opq"), std::io::empty())
            .map_err(io)?;
    }
    let mut files = 0;
    for e in entries {
        let path = prefix.join(&e.rel);
        match &e.kind {
            EntryKind::Dir => append_dir(tar, &path, opts.mtime).map_err(io)?,
            EntryKind::File { executable, .. } => {
                append_file(tar, &path, &e.source, *executable, opts.mtime)?;
                files += 1;
            }
            EntryKind::Symlink { target, .. } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, opts.mtime);
                h.set_size(0);
                tar.append_link(&mut h, &path, target).map_err(io)?;
            }
        }
    }
    Ok(files)
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    source: &Path,
    executable: bool,
    mtime: u64,
) -> Result<()> {
    let read_err = |err| Error::io("reading config file", source, err);
    // Never through a link, never a fifo swapped in since the walk; the size comes from the
    // open file, so a file that changed in between is written consistently.
    let (f, meta) = open_regular(source).map_err(read_err)?;
    let size = meta.len();
    let mode = if executable { 0o755 } else { 0o644 };
    let mut h = header(tar::EntryType::Regular, mode, mtime);
    h.set_size(size);
    tar.append_data(&mut h, path, std::io::Read::take(f, size))
        .map_err(read_err)
}

fn header(kind: tar::EntryType, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &Path, mtime: u64) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, mtime);
    h.set_size(0);
    // A trailing slash marks directories the way docker and umoci write them.
    let mut p = path.as_os_str().to_owned();
    p.push("/");
    tar.append_data(&mut h, PathBuf::from(p), std::io::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutate::walk::{collect, WalkOptions};
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("responses/nested")).unwrap();
        fs::write(p.join("a-config.yaml"), "plugin: rest\n").unwrap();
        fs::write(p.join("responses/one.json"), "{}").unwrap();
        fs::write(p.join("responses/nested/two.json"), "[]").unwrap();
        fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(p.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(p.join(".git/objects")).unwrap();
        fs::write(p.join(".git/HEAD"), "ref").unwrap();
        fs::write(p.join(".imposter.yaml"), "version: 4.9.3\n").unwrap();
        fs::write(p.join(".env"), "A=1\n").unwrap();
        d
    }

    /// The project file an Imposter caller leaves out, as the walk is handed it.
    fn top_only() -> WalkOptions {
        WalkOptions {
            never_at_top: &[".imposter.yaml"],
            ..WalkOptions::default()
        }
    }

    fn list(layer: &Layer) -> Vec<(String, u32, u64, u64)> {
        let mut out = Vec::new();
        let data = layer.blob.to_vec().unwrap();
        let gz = flate2::read::GzDecoder::new(&data[..]);
        let mut raw = Vec::new();
        let mut gz = gz;
        gz.read_to_end(&mut raw).unwrap();
        assert_eq!(crate::oci::digest::sha256(&raw), layer.diff_id);
        let mut a = tar::Archive::new(&raw[..]);
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            out.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
            ));
        }
        out
    }

    #[test]
    fn layout_order_modes_and_exclusions() {
        let d = tree();
        let entries = collect(d.path(), &top_only()).unwrap();
        let layer = build(&entries, &LayerOptions::default()).unwrap();
        let names: Vec<_> = list(&layer).into_iter().map(|x| x.0).collect();
        assert_eq!(
            names,
            [
                "opt/",
                "opt/imposter/",
                "opt/imposter/config/",
                "opt/imposter/config/.env",
                "opt/imposter/config/a-config.yaml",
                "opt/imposter/config/responses/",
                "opt/imposter/config/responses/nested/",
                "opt/imposter/config/responses/nested/two.json",
                "opt/imposter/config/responses/one.json",
                "opt/imposter/config/run.sh",
            ]
        );
        for (name, mode, uid, mtime) in list(&layer) {
            assert_eq!(uid, 0);
            assert_eq!(mtime, 0);
            let want = if name.ends_with('/') || name.ends_with(".sh") {
                0o755
            } else {
                0o644
            };
            assert_eq!(mode, want, "{name}");
        }
    }

    #[test]
    fn deterministic_and_sensitive_to_content() {
        let d = tree();
        let e = collect(d.path(), &top_only()).unwrap();
        let a = build(&e, &LayerOptions::default()).unwrap();
        let b = build(&e, &LayerOptions::default()).unwrap();
        assert_eq!(a.digest, b.digest);
        let (a_data, b_data) = (a.blob.to_vec().unwrap(), b.blob.to_vec().unwrap());
        assert_eq!(a_data, b_data);
        assert_eq!(&a_data[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(a_data[9], 255, "gzip OS byte pinned");
        fs::write(d.path().join("responses/one.json"), "{ }").unwrap();
        let e2 = collect(d.path(), &top_only()).unwrap();
        let c = build(&e2, &LayerOptions::default()).unwrap();
        assert_ne!(a.digest, c.digest);
        let t = build(
            &e,
            &LayerOptions {
                mtime: 1_700_000_000,
                ..Default::default()
            },
        )
        .unwrap();
        assert_ne!(a.digest, t.digest);
    }

    #[test]
    fn replace_adds_opaque_whiteout_and_custom_path() {
        let d = tree();
        let e = collect(d.path(), &top_only()).unwrap();
        let l = build(
            &e,
            &LayerOptions {
                replace: true,
                config_path: "/srv/mocks/".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<_> = list(&l).into_iter().map(|x| x.0).collect();
        assert_eq!(names[..3], ["srv/", "srv/mocks/", "srv/mocks/.wh..wh..opq"]);
        for bad in ["relative/x", "/a/../b"] {
            let e = config_path_components(bad).unwrap_err();
            assert!(
                e.is_usage() && e.to_string().contains("--config-path"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_layer_spooled_to_disk_is_byte_identical_to_one_in_memory() {
        let d = tree();
        let e = collect(d.path(), &top_only()).unwrap();
        let opts = LayerOptions::default();
        let p = Path::new("<spool>");
        let mem = build_into(&e, &[], &opts, Spool::with_limit(None, usize::MAX), p).unwrap();
        let disk = build_into(&e, &[], &opts, Spool::with_limit(None, 16), p).unwrap();
        assert!(matches!(mem.blob, LocalBlob::Memory(_)));
        assert!(matches!(disk.blob, LocalBlob::File(_)));
        let bytes = disk.blob.to_vec().unwrap();
        assert_eq!(bytes, mem.blob.to_vec().unwrap());
        assert_eq!(disk.size(), bytes.len() as u64);
        assert_eq!(crate::oci::digest::sha256(&bytes), disk.digest);
        assert_eq!((&disk.digest, &disk.diff_id), (&mem.digest, &mem.diff_id));
    }

    #[test]
    fn outside_files_go_at_their_own_paths_in_path_order_with_their_exec_bit() {
        let d = tree();
        let outside_dir = tempfile::tempdir().unwrap();
        let spec = outside_dir.path().join("openapi.yaml");
        fs::write(&spec, "openapi: 3.0.0\n").unwrap();
        let hook = outside_dir.path().join("hook.sh");
        fs::write(&hook, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o750)).unwrap();
        let file = |source: &Path, path: &str, executable| OutsideFile {
            reference: "../x".into(),
            config: "a-config.yaml".into(),
            key: "specFile".into(),
            source: source.to_path_buf(),
            path: path.into(),
            executable,
        };
        let outside = [
            file(&spec, "/opt/openapi.yaml", false),
            file(&hook, "/opt/aa/hook.sh", true),
        ];
        let e = collect(d.path(), &top_only()).unwrap();
        let opts = LayerOptions::default();
        let plain = build(&e, &opts).unwrap();
        let none = build_in(&e, &[], &opts, None).unwrap();
        assert_eq!(
            plain.digest, none.digest,
            "no outside files: the same layer"
        );
        let l = build_in(&e, &outside, &opts, None).unwrap();
        assert_eq!(l.files, plain.files + 2);
        let listed = list(&l);
        let names: Vec<_> = listed.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names[..3], ["opt/", "opt/aa/", "opt/aa/hook.sh"]);
        assert_eq!(names[3..5], ["opt/imposter/", "opt/imposter/config/"]);
        assert_eq!(names.last(), Some(&"opt/openapi.yaml"));
        let mode = |n: &str| listed.iter().find(|x| x.0 == n).unwrap().1;
        assert_eq!(mode("opt/aa/hook.sh"), 0o755);
        assert_eq!(mode("opt/openapi.yaml"), 0o644);
        assert_ne!(l.digest, plain.digest);
    }

    #[test]
    fn long_and_unicode_names() {
        let d = tempfile::tempdir().unwrap();
        let long = "x".repeat(200);
        let deep = d.path().join(&long).join("ünï côdé");
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join(format!("{long} with spaces.json")), "1").unwrap();
        let e = collect(d.path(), &top_only()).unwrap();
        let l = build(&e, &LayerOptions::default()).unwrap();
        let names: Vec<_> = list(&l).into_iter().map(|x| x.0).collect();
        assert!(names
            .iter()
            .any(|n| n.len() > 400 && n.ends_with("with spaces.json")));
    }
}
