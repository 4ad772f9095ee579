//! The folders of `src/` import only downwards (ARCHITECTURE.md, "Rules the layout keeps"): a
//! folder names no folder that stands above it, so engine facts and writers never leak into the
//! layers below. Read from the source text, as `grep` would; comments do not count.
use std::fs;
use std::path::Path;

/// Top to bottom; a folder (or file) may import those after it only. Ones on one line stand
/// side by side and import neither way.
const ORDER: &[&[&str]] = &[
    &["cli"],
    &["rebase"],
    &["imposter"],
    &["build", "inspect"],
    &["sink"],
    &["attest"],
    &["source", "sign"],
    &["registry"],
    &["mutate"],
    &["oci"],
];

fn rust_files(p: &Path, out: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            rust_files(&n, out);
        }
    } else if p.is_file() && p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

#[test]
fn no_folder_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (level, row) in ORDER.iter().enumerate() {
        // Everything above this row, and the others on it.
        let above: Vec<&str> = ORDER[..level]
            .iter()
            .flat_map(|r| r.iter().copied())
            .collect();
        for me in row.iter() {
            let others = row.iter().copied().filter(|o| o != me);
            let banned: Vec<&str> = above.iter().copied().chain(others).collect();
            let mut files = Vec::new();
            rust_files(&src.join(me), &mut files);
            rust_files(&src.join(format!("{me}.rs")), &mut files);
            assert!(!files.is_empty(), "src/{me} is gone: update ORDER");
            for f in files {
                let text = fs::read_to_string(&f).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    for b in &banned {
                        if code.contains(&format!("crate::{b}::"))
                            || code.contains(&format!("crate::{b};"))
                        {
                            found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                        }
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports of a folder above:\n{}",
        found.join("\n")
    );
}

/// Deployment targets are sinks (ARCHITECTURE.md): outside `src/sink/`, no code talks to an
/// object store or to Lambda, so `imposter/` keeps the engine's knowledge and hands it down as
/// values. Tests (after `#[cfg(test)]`) may use an in-memory store.
#[test]
fn only_sinks_write_buckets_and_lambda_functions() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sink = src.join("sink");
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&sink)) {
        let text = fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            if ["object_store::", "aws_sdk_lambda::", "aws_config::"]
                .iter()
                .any(|c| code.contains(c))
            {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "store or Lambda clients outside src/sink/:\n{}",
        found.join("\n")
    );
}
