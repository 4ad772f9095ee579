//! Engine release tags: `X.Y.Z`, or `X.Y.Z-beta` for the Go engine. `--latest-patch` takes the
//! highest patch of the same `X.Y` and the same suffix; moving tags (`latest`, `4`, `4.9`) never
//! qualify, so the result names one release.

/// A release tag split into its numbers and suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Release {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) patch: u64,
    /// `""`, or `-beta` and the like.
    pub(crate) suffix: String,
}

/// `X.Y.Z` or `X.Y.Z-SUFFIX`; anything else (`latest`, `4.9`, `v4.9.3`) is not a release tag.
pub(crate) fn parse(tag: &str) -> Option<Release> {
    let (nums, suffix) = match tag.split_once('-') {
        Some((n, s)) if !s.is_empty() => (n, format!("-{s}")),
        Some(_) => return None,
        None => (tag, String::new()),
    };
    let mut it = nums.split('.');
    let mut num = || -> Option<u64> {
        let s = it.next()?;
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (major, minor, patch) = (num()?, num()?, num()?);
    if it.next().is_some() {
        return None;
    }
    Some(Release {
        major,
        minor,
        patch,
        suffix,
    })
}

/// The highest release in `tags` with `current`'s `X.Y` and suffix (possibly `current` itself).
pub(crate) fn latest_patch<'a>(current: &str, tags: &'a [String]) -> Option<&'a str> {
    let cur = parse(current)?;
    tags.iter()
        .filter_map(|t| parse(t).map(|r| (r, t.as_str())))
        .filter(|(r, _)| r.major == cur.major && r.minor == cur.minor && r.suffix == cur.suffix)
        .max_by_key(|(r, _)| r.patch)
        .map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<String> {
        [
            "4.9.2",
            "4.9.3",
            "4.9.10",
            "4.10.0",
            "latest",
            "5.21.3-beta",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn the_highest_patch_of_the_same_minor_wins_numerically() {
        assert_eq!(latest_patch("4.9.3", &tags()), Some("4.9.10"));
        assert_eq!(latest_patch("4.9.2", &tags()), Some("4.9.10"));
        assert_eq!(latest_patch("4.10.0", &tags()), Some("4.10.0"));
    }

    #[test]
    fn go_engine_betas_stay_betas_and_moving_tags_never_count() {
        assert_eq!(latest_patch("5.21.0-beta", &tags()), Some("5.21.3-beta"));
        assert_eq!(latest_patch("5.21.0", &tags()), None);
        assert_eq!(latest_patch("latest", &tags()), None);
        for t in ["latest", "4", "4.9", "v4.9.3", "4.9.3-", "4..3", "4.9.3.1"] {
            assert_eq!(parse(t), None, "{t}");
        }
    }
}
