//! The names an image gets in a layout or archive, and the `index.json` entries that carry them.
//!
//! A layout's `org.opencontainers.image.ref.name` is a tag (`1.4`, as `docker save` and skopeo
//! write it, and as `skopeo copy oci:DIR:1.4` looks it up); the full name goes beside it in
//! `io.containerd.image.name`, which `docker load` and `ctr images import` read. Every name gets
//! its own entry, as `ctr images export` writes them: two names with one tag (`team/a:1`,
//! `127.0.0.1:5000/mocks/app:1`) give two entries with ref name `1` and one digest, so a lookup
//! by tag finds the same image whichever entry it picks.
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

/// `names` with repeats dropped, in their order. Several names may share a tag (`team/a:1`,
/// `other/c:1`): they all name this one image, so each keeps its own entry.
pub(crate) fn distinct(names: &[ImageName]) -> Vec<ImageName> {
    let mut out: Vec<ImageName> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o.qualified == n.qualified) {
            out.push(n.clone());
        }
    }
    out
}

fn collision(dest: &Path, tag: &str, other: &str, new: &str) -> Error {
    Error::path(
        dest,
        format!(
            "cannot name {new} here: its tag {tag:?} (org.opencontainers.image.ref.name) already \
             names {other}, a different image, and readers look images up by that tag — write \
             to a new layout or give it a different tag"
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
/// there are none), as `ctr images export` does: each entry carries the full name and the tag, and
/// entries of one image may share a tag. An entry with the same full name moves to the new image.
/// The one refusal is a tag that already names a different image in the layout (written by an
/// earlier run): a reader asking for that tag would get either image.
pub(crate) fn add_entries(
    manifests: &mut Vec<Value>,
    root: &Root,
    names: &[ImageName],
    dest: &Path,
) -> Result<()> {
    let names = distinct(names);
    if names.is_empty() {
        // Untagged: listed once, and an entry that already names this image (tagged or not)
        // is kept as it is rather than losing its tag.
        let entry = root_descriptor(root, None);
        if !manifests.iter().any(|m| m["digest"] == entry["digest"]) {
            manifests.push(entry);
        }
        return Ok(());
    }
    let digest = json!(root.digest());
    // The entries this write replaces: the same full name, or the same tag without a full name.
    let replaced = |m: &Value, n: &ImageName| {
        let a = &m["annotations"];
        match a[CONTAINERD_NAME].as_str() {
            Some(full) => full == n.qualified,
            None => a[REF_NAME].as_str() == Some(n.tag.as_str()),
        }
    };
    for n in &names {
        for m in manifests.iter() {
            if m["annotations"][REF_NAME].as_str() != Some(n.tag.as_str())
                || m["digest"] == digest
                || replaced(m, n)
            {
                continue;
            }
            // Another name of an earlier image shares this tag; unless this write moves that
            // name too, the tag would name two images.
            let other = m["annotations"][CONTAINERD_NAME].as_str();
            if other.is_some_and(|o| names.iter().any(|x| x.qualified == o)) {
                continue;
            }
            let other = other
                .map(str::to_string)
                .unwrap_or_else(|| format!("image {}", m["digest"].as_str().unwrap_or("?")));
            return Err(collision(dest, &n.tag, &other, &n.full));
        }
    }
    manifests.retain(|m| !names.iter().any(|n| replaced(m, n)));
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
    fn names_sharing_a_tag_each_get_an_entry_for_the_one_image() {
        let mut m = Vec::new();
        let names = [name("team/a:1"), name("127.0.0.1:5000/mocks/app:1")];
        add_entries(&mut m, &root(1), &names, Path::new("l")).unwrap();
        assert_eq!(m.len(), 2);
        for (e, full) in m
            .iter()
            .zip(["docker.io/team/a:1", "127.0.0.1:5000/mocks/app:1"])
        {
            assert_eq!(e["annotations"][REF_NAME], "1");
            assert_eq!(e["annotations"][CONTAINERD_NAME], full);
            assert_eq!(e["digest"], json!(root(1).digest()));
        }
        // Written again (an unchanged rebuild): still one entry per name.
        add_entries(&mut m, &root(1), &names, Path::new("l")).unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_tag_naming_a_different_earlier_image_is_refused() {
        let mut m = Vec::new();
        add_entries(&mut m, &root(1), &[name("other/c:1")], Path::new("l")).unwrap();
        let e = add_entries(&mut m, &root(2), &[name("team/a:1")], Path::new("l")).unwrap_err();
        assert!(e.to_string().contains("other/c:1"), "{e}");
        assert_eq!(m.len(), 1, "nothing changed");
        // Moving both names of the tag to the new image leaves no collision.
        add_entries(&mut m, &root(1), &[name("team/a:1")], Path::new("l")).unwrap();
        add_entries(
            &mut m,
            &root(2),
            &[name("team/a:1"), name("other/c:1")],
            Path::new("l"),
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|e| e["digest"] == json!(root(2).digest())));
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
