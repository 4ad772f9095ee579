//! The names an image gets in a layout or archive, and the `index.json` entries that carry them.
//!
//! A layout's `org.opencontainers.image.ref.name` is a tag (`1.4`, as `docker save` and skopeo
//! write it, and as `skopeo copy oci:DIR:1.4` looks it up); the full name goes beside it in
//! `io.containerd.image.name`, which `docker load` reads. Two names with one tag (`team/a:1`,
//! `other/c:1`) would need one ref name for two entries, which readers resolve by picking one:
//! that is refused, never settled by dropping a name.
use crate::error::{Error, Result};
use crate::oci::image::Root;
use crate::oci::reference::RegistryRef;
use crate::source::layout::{CONTAINERD_NAME, REF_NAME};
use serde_json::{json, Value};
use std::path::Path;

/// Names an image gets in a layout/archive: the OCI ref name (tag) and the full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `repo:tag` as docker prints it (`RepoTags`): Docker Hub's prefixes dropped.
    pub full: String,
    /// `registry/repo:tag` fully qualified, as containerd names images (`io.containerd.image.name`).
    pub qualified: String,
    /// The tag alone, for `org.opencontainers.image.ref.name`.
    pub tag: String,
}

impl ImageName {
    /// The names for an image pushed or tagged as `r` (`latest` when it has no tag).
    pub fn from_registry_ref(r: &RegistryRef) -> ImageName {
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let qualified = format!("{}:{tag}", r.repo_name());
        let mut repo = r.repo_name();
        if let Some(rest) = repo.strip_prefix("docker.io/library/") {
            repo = rest.to_string();
        } else if let Some(rest) = repo.strip_prefix("docker.io/") {
            repo = rest.to_string();
        }
        ImageName {
            full: format!("{repo}:{tag}"),
            qualified,
            tag,
        }
    }
}

/// `names` with repeats dropped, in their order; two different names with one tag are an error.
pub(crate) fn distinct(names: &[ImageName], dest: &Path) -> Result<Vec<ImageName>> {
    let mut out: Vec<ImageName> = Vec::new();
    for n in names {
        match out.iter().find(|o| o.tag == n.tag) {
            Some(o) if o.qualified == n.qualified => {}
            Some(o) => return Err(collision(dest, &n.tag, &o.full, &n.full)),
            None => out.push(n.clone()),
        }
    }
    Ok(out)
}

fn collision(dest: &Path, tag: &str, a: &str, b: &str) -> Error {
    Error::path(
        dest,
        format!(
            "cannot name both {a} and {b}: an OCI layout names images by tag alone \
             (org.opencontainers.image.ref.name {tag:?}), one image per tag — write them to \
             separate outputs or give them different tags"
        ),
    )
}

/// The `index.json` entry for the image, annotated with its names when it has them.
pub(crate) fn root_descriptor(root: &Root, name: Option<&ImageName>) -> Value {
    let mut d = root.doc().descriptor().to_json();
    if let Some(n) = name {
        d["annotations"] = json!({ REF_NAME: n.tag, CONTAINERD_NAME: n.qualified });
    }
    d
}

/// Adds `root` to the `manifests` of an `index.json` at `dest`, once per name (untagged when
/// there are none). A tag already naming this image, or the same full name, moves to the new
/// image; a tag that names some other image under another name is an error.
pub(crate) fn add_entries(
    manifests: &mut Vec<Value>,
    root: &Root,
    names: &[ImageName],
    dest: &Path,
) -> Result<()> {
    let names = distinct(names, dest)?;
    if names.is_empty() {
        // Untagged: listed once, and an entry that already names this image (tagged or not)
        // is kept as it is rather than losing its tag.
        let entry = root_descriptor(root, None);
        if !manifests.iter().any(|m| m["digest"] == entry["digest"]) {
            manifests.push(entry);
        }
        return Ok(());
    }
    let digest = root.digest();
    for n in &names {
        for m in manifests.iter() {
            if m["annotations"][REF_NAME].as_str() != Some(n.tag.as_str()) {
                continue;
            }
            let other = m["annotations"][CONTAINERD_NAME].as_str();
            let same = other == Some(n.qualified.as_str()) || m["digest"] == json!(digest);
            if !same {
                let other = other
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("image {}", m["digest"].as_str().unwrap_or("?")));
                return Err(collision(dest, &n.tag, &other, &n.full));
            }
        }
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(n.tag.as_str()));
    }
    for n in &names {
        manifests.push(root_descriptor(root, Some(n)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::image::{media, Doc, Image};

    fn name(s: &str) -> ImageName {
        ImageName::from_registry_ref(&RegistryRef::parse(s).unwrap())
    }

    fn root(n: u8) -> Root {
        let config = Doc::new(media::OCI_CONFIG, vec![b'{', n, b'}']);
        Root::Image(Image {
            manifest: Doc::new(media::OCI_MANIFEST, vec![n]),
            config,
            index_entry: None,
        })
    }

    #[test]
    fn every_name_gets_an_entry_in_command_line_order() {
        let mut m = Vec::new();
        let names = [
            name("team/a:1"),
            name("reg.example/x/y:2"),
            name("team/a:1"),
        ];
        add_entries(&mut m, &root(1), &names, Path::new("out")).unwrap();
        let refs: Vec<&str> = m
            .iter()
            .map(|e| e["annotations"][REF_NAME].as_str().unwrap())
            .collect();
        assert_eq!(refs, ["1", "2"]);
        assert_eq!(m[1]["annotations"][CONTAINERD_NAME], "reg.example/x/y:2");
    }

    #[test]
    fn two_names_sharing_a_tag_are_refused_not_dropped() {
        let mut m = Vec::new();
        let e = add_entries(
            &mut m,
            &root(1),
            &[name("team/a:1"), name("other/c:1")],
            Path::new("l"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("team/a:1") && e.to_string().contains("other/c:1"),
            "{e}"
        );
        assert!(m.is_empty());
        // Across runs too: the layout already names other/c:1 with tag 1.
        add_entries(&mut m, &root(1), &[name("other/c:1")], Path::new("l")).unwrap();
        let e = add_entries(&mut m, &root(2), &[name("team/a:1")], Path::new("l")).unwrap_err();
        assert!(e.to_string().contains("other/c:1"), "{e}");
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_same_name_moves_to_the_new_image() {
        let mut m = Vec::new();
        add_entries(&mut m, &root(1), &[name("team/a:1")], Path::new("l")).unwrap();
        add_entries(&mut m, &root(2), &[name("team/a:1")], Path::new("l")).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["digest"], json!(root(2).digest()));
    }
}
