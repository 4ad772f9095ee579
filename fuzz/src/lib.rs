//! The fuzz harnesses, as plain functions so `tests/fuzz_regressions.rs` can replay saved inputs
//! through exactly the code the fuzzer ran (it includes this file with `#[path]`). Each returns a
//! one-line outcome for the regression tests to assert on; a broken invariant panics, which is
//! what libFuzzer reports as a crash.
//!
//! Input framings (so seeds can be written by hand in `scripts/fuzz`):
//! - `reference`: the bytes as a UTF-8 string.
//! - `manifest`: `FLAGS MANIFEST [SEP CONFIG [SEP INDEX]]`; `@@M@@` in INDEX is replaced by the
//!   manifest's digest, since a fuzzer cannot forge a sha256 to link them. FLAGS bits 0-2 pick
//!   the declared manifest media type, 3-5 the index's, 6-7 the append options.
//! - `archive`: `MODE` then raw tar bytes (`MODE & 9 == 0`; `== 8`: header checksums fixed up)
//!   or (`MODE & 1`) records `KIND NAME \0 DATA` joined by SEP, written into a tar by hand (any
//!   name, including `../x` and `/x`). `(MODE >> 1) & 3` picks the tag to open. In DATA,
//!   `@@N@@` becomes the digest and `@#N@` the size of the earlier record N; a NAME of `@` becomes
//!   `blobs/sha256/<hex of DATA>`.
//! - `config_tree`: records `KIND NAME \0 DATA` joined by SEP that build a config tree of
//!   files, directories, symlinks, fifos and sockets, plus `--exclude` patterns (see `tree.rs`).
use mockimg::mutate::{append_layer, AppendOptions, LayerInfo};
use mockimg::oci::{self as blob, media, sha256};
use mockimg::oci::{check_manifest, Descriptor, Doc, Image, ImageRef, Platform, RegistryRef, Root};
use mockimg::registry::RegistryOptions;
use mockimg::source::TarIndex;
use serde_json::Value;

// A path relative to this file, so `tests/fuzz_regressions.rs` (which includes this file) finds
// it too.
#[path = "tree.rs"]
mod tree;
pub use tree::config_tree;

/// Separates the parts of a `manifest` input and the records of a structured `archive` input.
pub const SEP: &[u8] = b"\xff--\xff";

/// Never panics; a parsed reference prints as a string that parses back to the same reference.
pub fn reference(data: &[u8]) -> String {
    let Ok(s) = std::str::from_utf8(data) else {
        return "not utf-8".into();
    };
    if let Ok(r) = RegistryRef::parse(s) {
        let shown = r.to_string();
        let again = RegistryRef::parse(&shown).unwrap_or_else(|e| {
            panic!("{s:?} parsed as {r:?}, but its Display {shown:?} does not parse: {e}")
        });
        assert_eq!(again, r, "{s:?}: Display {shown:?} parses differently");
        let _ = (r.host(), r.is_loopback(), r.tag_or_digest(), r.repo_name());
    }
    match ImageRef::parse(s) {
        Ok(i) => {
            let shown = i.to_string();
            let again = ImageRef::parse(&shown).unwrap_or_else(|e| {
                panic!("{s:?} parsed as {i:?}, but its Display {shown:?} does not parse: {e}")
            });
            assert_eq!(again, i, "{s:?}: Display {shown:?} parses differently");
            format!("ok {shown}")
        }
        Err(e) => format!("error: {e}"),
    }
}

fn split_sep(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    out.push(rest);
    out
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn declared(sel: u8) -> Option<&'static str> {
    match sel & 7 {
        0 => None,
        1 => Some(media::OCI_MANIFEST),
        2 => Some(media::DOCKER_MANIFEST),
        3 => Some(media::OCI_INDEX),
        4 => Some(media::DOCKER_LIST),
        5 => Some("application/json"),
        6 => Some(""),
        _ => Some("text/plain"),
    }
}

/// Every object under `layers`, `manifests` and `config` goes through `Descriptor::from_json`;
/// one that parses must survive `to_json` unchanged.
fn descriptors(v: &Value) {
    let mut all: Vec<&Value> = Vec::new();
    for key in ["layers", "manifests"] {
        all.extend(v.get(key).and_then(Value::as_array).into_iter().flatten());
    }
    all.extend(v.get("config"));
    for d in all {
        if let Ok(desc) = Descriptor::from_json(d, "fuzz descriptor") {
            let again = Descriptor::from_json(&desc.to_json(), "fuzz descriptor again")
                .expect("a descriptor's JSON form parses");
            assert_eq!(again, desc, "descriptor changed through to_json");
            let _ = desc.is_attestation();
        }
    }
}

fn layer() -> LayerInfo {
    LayerInfo {
        digest: sha256(b"fuzz layer"),
        diff_id: sha256(b"fuzz layer tar"),
        size: 10,
    }
}

/// Never panics; a successful append yields documents whose digests all line up.
pub fn manifest(data: &[u8]) -> String {
    let Some((&flags, rest)) = data.split_first() else {
        return "empty".into();
    };
    let parts = split_sep(rest);
    let manifest = parts[0];
    let config = parts.get(1).copied().unwrap_or(b"");
    for p in &parts {
        if let Ok(v) = serde_json::from_slice::<Value>(p) {
            descriptors(&v);
        }
    }
    let mt = match check_manifest(manifest, declared(flags), "fuzz manifest") {
        Ok(mt) => mt,
        Err(e) => return format!("error: {e}"),
    };
    if !media::is_manifest(&mt) {
        return format!("index {mt}");
    }
    let config_mt = if media::is_docker(&mt) {
        media::DOCKER_CONFIG
    } else {
        media::OCI_CONFIG
    };
    let image = Image {
        manifest: Doc::new(mt.clone(), manifest.to_vec()),
        config: Doc::new(config_mt, config.to_vec()),
        index_entry: None,
    };
    let root = match parts.get(2) {
        None => Root::Image(image),
        Some(ix) => {
            let ix = replace(ix, b"@@M@@", image.manifest.digest().as_bytes());
            let imt = match check_manifest(&ix, declared(flags >> 3), "fuzz index") {
                Ok(imt) if media::is_index(&imt) => imt,
                Ok(imt) => return format!("index part is {imt}"),
                Err(e) => return format!("error: {e}"),
            };
            // As the loaders do: every manifest entry that is not an attestation must resolve.
            let v: Value = serde_json::from_slice(&ix).expect("check_manifest parsed it");
            let mut images = Vec::new();
            for e in v["manifests"].as_array().into_iter().flatten() {
                let d = match Descriptor::from_json(e, "fuzz index entry") {
                    Ok(d) => d,
                    Err(e) => return format!("error: {e}"),
                };
                if d.is_attestation() || !media::is_manifest(&d.media_type) {
                    continue;
                }
                if d.digest != image.manifest.digest() {
                    return "index entry points at a missing manifest".into();
                }
                images.push(Image {
                    index_entry: Some(d),
                    ..image.clone()
                });
            }
            Root::Index {
                index: Doc::new(imt, ix),
                images,
            }
        }
    };
    let mut opts = AppendOptions {
        config_path: "/opt/imposter/config".into(),
        ..Default::default()
    };
    if flags & 0x40 != 0 {
        opts.platforms.push(Platform::parse("linux/amd64").unwrap());
    }
    if flags & 0x80 != 0 {
        opts.platforms
            .push(Platform::parse("linux/arm64/v8").unwrap());
        opts.created = Some("2025-01-01T00:00:00Z".into());
        opts.labels.insert("team".into(), "mocks".into());
        opts.annotations.insert("a".into(), "b".into());
        opts.base_name = Some("example.com/base:1".into());
    }
    let out = match append_layer(&root, &layer(), &opts) {
        Ok(out) => out,
        Err(e) => return format!("error: {e}"),
    };
    let _ = root.blobs();
    for img in out.images() {
        check_image(img);
    }
    out.blobs().expect("the appended image lists its blobs");
    if let Root::Index { index, images } = &out {
        let v = index.json("appended index").expect("we wrote it");
        check_manifest(&index.bytes, Some(&index.media_type), "appended index")
            .expect("the appended index is a valid index");
        let entries = v["manifests"].as_array().expect("manifests array");
        assert_eq!(entries.len(), images.len(), "one index entry per image");
        for (e, img) in entries.iter().zip(images) {
            let d = Descriptor::from_json(e, "appended entry").expect("entry is a descriptor");
            assert_eq!(d.digest, sha256(&img.manifest.bytes), "entry digest");
            assert_eq!(d.size, img.manifest.size(), "entry size");
            assert_eq!(d.media_type, img.manifest.media_type, "entry media type");
            // `extra` keeps the base's raw object; what counts is the JSON written out.
            assert_eq!(
                img.index_entry.as_ref().map(Descriptor::to_json).as_ref(),
                Some(e),
                "image keeps its entry"
            );
        }
    }
    format!("appended {}", out.digest())
}

fn check_image(img: &Image) {
    check_manifest(
        &img.manifest.bytes,
        Some(&img.manifest.media_type),
        "appended manifest",
    )
    .expect("the appended manifest is a valid manifest");
    let cd = img.config_descriptor().expect("config descriptor");
    assert_eq!(cd.digest, sha256(&img.config.bytes), "config digest");
    assert_eq!(cd.size, img.config.size(), "config size");
    let layers = img.layers().expect("layers");
    let last = layers.last().expect("at least the new layer");
    assert_eq!((&last.digest, last.size), (&layer().digest, layer().size));
    let c = img.config.json("appended config").expect("config object");
    let diff_ids = c["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(diff_ids.len(), layers.len(), "one diff_id per layer");
    assert_eq!(diff_ids.last(), Some(&Value::from(layer().diff_id)));
}

const SENTINEL: &[u8] = b"FUZZ-SENTINEL-OUTSIDE-THE-ARCHIVE";

/// Never panics; whatever the reader accepts lies inside the archive.
pub fn archive(data: &[u8]) -> String {
    let Some((&mode, rest)) = data.split_first() else {
        return "empty".into();
    };
    let tar = match mode & 9 {
        0 => rest.to_vec(),
        8 => fix_checksums(rest.to_vec()),
        _ => build_tar(rest),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // A file beside the archive that hostile entry names may point at: it must never be read.
    std::fs::write(dir.path().join("secret"), SENTINEL).expect("sentinel");
    std::fs::create_dir(dir.path().join("blobs")).expect("blobs dir");
    std::fs::write(dir.path().join("index.json"), SENTINEL).expect("sentinel");
    let path = dir.path().join("in.tar");
    std::fs::write(&path, &tar).expect("write archive");
    let len = tar.len() as u64;
    let may_hold_sentinel = data.windows(SENTINEL.len()).any(|w| w == SENTINEL);
    let tag = match (mode >> 1) & 3 {
        0 | 3 => None,
        1 => Some("4.9.3"),
        _ => Some("latest"),
    };
    let mut outcome = Vec::new();
    match TarIndex::open(&path) {
        Ok(index) => {
            for (name, off, size) in index.entries() {
                assert!(
                    off.checked_add(size).is_some_and(|end| end <= len),
                    "entry {name:?} runs outside the archive"
                );
                assert!(
                    !name.starts_with('/') && !name.split('/').any(|c| c == ".."),
                    "unsafe entry name {name:?} accepted"
                );
            }
            let oci = ImageRef::OciArchive {
                path: path.clone(),
                tag: tag.map(str::to_string),
            };
            match runtime().block_on(mockimg::source::open(
                &oci,
                &RegistryOptions::default(),
                None,
            )) {
                Ok(src) => outcome.push(exercise(&src, len, may_hold_sentinel)),
                Err(e) => outcome.push(format!("oci error: {e}")),
            }
        }
        Err(e) => outcome.push(format!("tar error: {e}")),
    }
    let docker = ImageRef::DockerArchive { path: path.clone() };
    match runtime().block_on(mockimg::source::open(
        &docker,
        &RegistryOptions::default(),
        None,
    )) {
        Ok(src) => outcome.push(exercise(&src, len, may_hold_sentinel)),
        Err(e) => outcome.push(format!("docker error: {e}")),
    }
    // Stable outcomes for the regression tests: the temp dir's name varies.
    outcome
        .join("; ")
        .replace(&dir.path().display().to_string(), "TMP")
}

/// One runtime per process: building one per input would dominate the run time.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Reads everything a sink would read from an opened source.
fn exercise(src: &blob::Source, len: u64, may_hold_sentinel: bool) -> String {
    let root = &src.root;
    let outside = |b: &[u8]| !may_hold_sentinel && b.windows(SENTINEL.len()).any(|w| w == SENTINEL);
    assert!(
        !outside(&root.doc().bytes),
        "root document read from outside"
    );
    for img in root.images() {
        assert!(!outside(&img.manifest.bytes), "manifest read from outside");
        assert!(!outside(&img.config.bytes), "config read from outside");
        let _ = (img.layers(), img.config_descriptor(), img.platform());
    }
    if !root.images().is_empty() {
        let _ = root.image_for(&Platform::host());
    }
    let Ok(blobs) = root.blobs() else {
        return "opened; blobs unlisted".into();
    };
    let rt = runtime();
    let mut read = 0;
    for d in &blobs {
        if let Ok(b) = rt.block_on(blob::read_all(src.blobs.as_ref(), d, "fuzz blob")) {
            assert!(b.len() as u64 <= len, "blob larger than the archive");
            assert!(!outside(&b), "blob read from outside the archive");
            assert_eq!(sha256(&b), d.digest, "read_all returned unverified bytes");
            read += 1;
        }
    }
    format!(
        "opened {} image(s), read {read}/{} blob(s)",
        root.images().len(),
        blobs.len()
    )
}

/// Walks the headers of raw tar bytes and rewrites their checksums, so the fuzzer's mutations of
/// sizes, types and names reach the reader instead of dying at the checksum test.
fn fix_checksums(mut t: Vec<u8>) -> Vec<u8> {
    let mut off = 0usize;
    while off + 512 <= t.len() {
        let h = &mut t[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let digits: String = h[124..136]
            .iter()
            .take_while(|&&b| (b'0'..=b'7').contains(&b) || b == b' ')
            .filter(|&&b| b != b' ')
            .map(|&b| char::from(b))
            .collect();
        let Ok(size) = usize::from_str_radix(&digits, 8) else {
            break;
        };
        off = match size
            .checked_next_multiple_of(512)
            .and_then(|s| s.checked_add(off + 512))
        {
            Some(next) => next,
            None => break,
        };
    }
    t
}

/// Writes ustar entries by hand so names the `tar` crate's builder refuses (`..`, absolute) can
/// be fed to the reader; names over 100 bytes go in a GNU long-name entry.
fn build_tar(rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut done: Vec<Vec<u8>> = Vec::new();
    for rec in split_sep(rest) {
        let Some((&kind, rec)) = rec.split_first() else {
            continue;
        };
        let (name, body) = match rec.iter().position(|&b| b == 0) {
            Some(i) => (&rec[..i], &rec[i + 1..]),
            None => (rec, &[][..]),
        };
        let mut body = body.to_vec();
        for (n, prev) in done.iter().enumerate().take(10) {
            body = replace(
                &body,
                format!("@@{n}@@").as_bytes(),
                sha256(prev).as_bytes(),
            );
            body = replace(
                &body,
                format!("@#{n}@").as_bytes(),
                prev.len().to_string().as_bytes(),
            );
        }
        let name = if name == b"@" {
            format!("blobs/sha256/{}", &sha256(&body)[7..]).into_bytes()
        } else {
            name.to_vec()
        };
        let (typeflag, link) = match kind {
            b'f' => (b'0', &[][..]),
            b'd' => (b'5', &[][..]),
            b'l' => (b'2', &body[..]),
            b'h' => (b'1', &body[..]),
            other => (other, &[][..]),
        };
        let data: &[u8] = if link.is_empty() { &body } else { &[] };
        if name.len() > 100 {
            let mut long = name.clone();
            long.push(0);
            push_entry(&mut out, b"././@LongLink", b'L', &[], &long);
        }
        push_entry(&mut out, &name, typeflag, link, data);
        done.push(body);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn push_entry(out: &mut Vec<u8>, name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}
