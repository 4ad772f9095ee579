//! The walker on small trees: filters, link resolution, special files, loops and whiteouts.
use super::*;

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir_all(p.join("responses/nested")).unwrap();
    fs::write(p.join("a-config.yaml"), "plugin: rest\n").unwrap();
    fs::write(p.join("responses/one.json"), "{}").unwrap();
    fs::write(p.join("responses/nested/two.json"), "[]").unwrap();
    fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::create_dir_all(p.join(".git/objects")).unwrap();
    fs::write(p.join(".git/HEAD"), "ref").unwrap();
    fs::write(p.join(".imposter.yaml"), "version: 4.9.3\n").unwrap();
    d
}

fn rels(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.rel.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn excludes_name_their_pattern_and_imposterignore_filters_nothing() {
    let d = tree();
    fs::write(d.path().join(".imposterignore"), "*.sh\nresponses\n").unwrap();
    fs::write(d.path().join("imposter-project.yaml"), "engine: docker\n").unwrap();
    let w = walk(
        d.path(),
        &WalkOptions {
            excludes: vec!["nested/".into()],
            never_at_top: TOP,
        },
    )
    .unwrap();
    let r = rels(&w.entries);
    assert!(r.contains(&".imposterignore".to_string()));
    assert!(r.contains(&"run.sh".to_string()), "{r:?}");
    assert!(r.contains(&"responses/one.json".to_string()), "{r:?}");
    assert!(!r
        .iter()
        .any(|r| r.contains("nested") || r.contains("imposter-project")));
    // A file below an excluded directory names the directory and the pattern.
    assert_eq!(
        w.exclusion(Path::new("responses/nested/two.json")),
        Some((
            Path::new("responses/nested"),
            &Excluded::Exclude("nested/".into())
        ))
    );
    assert_eq!(
        w.exclusion(Path::new(".git/HEAD")).map(|x| x.1),
        Some(&Excluded::Always(".git"))
    );
    assert_eq!(
        w.exclusion(Path::new("imposter-project.yaml")).map(|x| x.1),
        Some(&Excluded::Always("imposter-project.yaml"))
    );
    assert_eq!(w.exclusion(Path::new("responses/one.json")), None);
}

#[test]
fn an_exclude_negation_keeps_a_file() {
    let d = tree();
    let w = walk(
        d.path(),
        &WalkOptions {
            excludes: vec!["*.json".into(), "!one.json".into()],
            never_at_top: TOP,
        },
    )
    .unwrap();
    let r = rels(&w.entries);
    assert!(r.contains(&"responses/one.json".to_string()), "{r:?}");
    assert!(!r.contains(&"responses/nested/two.json".to_string()));
}

#[test]
fn problems_are_reported_not_fatal_until_collect() {
    let d = tree();
    std::os::unix::fs::symlink("../../etc/passwd", d.path().join("responses/x")).unwrap();
    let w = walk(d.path(), &top_only()).unwrap();
    assert_eq!(w.problems.len(), 1);
    assert!(matches!(w.problems[0].kind, ProblemKind::LinkOutside(_)));
    let err = collect(d.path(), &top_only()).unwrap_err().to_string();
    assert!(err.contains("outside the config directory"), "{err}");
}

#[test]
fn symlinks_inside_kept_outside_rejected() {
    let d = tree();
    std::os::unix::fs::symlink("one.json", d.path().join("responses/alias.json")).unwrap();
    let e = collect(d.path(), &top_only()).unwrap();
    assert!(e
        .iter()
        .any(|e| matches!(e.kind, EntryKind::Symlink { .. })));
    std::os::unix::fs::symlink("../../etc/passwd", d.path().join("responses/x")).unwrap();
    let err = collect(d.path(), &top_only()).unwrap_err().to_string();
    assert!(err.contains("outside the config directory"), "{err}");
}

#[test]
fn fifo_rejected_and_file_as_dir_rejected() {
    let d = tree();
    let st = std::process::Command::new("mkfifo")
        .arg(d.path().join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    let err = collect(d.path(), &top_only()).unwrap_err().to_string();
    assert!(err.contains("fifo"), "{err}");
    let err = collect(&d.path().join("run.sh"), &top_only())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn normalize_resolves_dots_and_refuses_to_climb_out() {
    assert_eq!(normalize(Path::new("a/./b/../c")), Some("a/c".into()));
    assert_eq!(normalize(Path::new("/r/x/../y")), Some("/r/y".into()));
    assert_eq!(normalize(Path::new("a/../..")), None);
    assert_eq!(normalize(Path::new("/..")), None);
    assert_eq!(normalize(Path::new("")), Some(PathBuf::new()));
    assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../c")));
    assert!(link_stays_inside(Path::new("l"), Path::new("./x")));
    assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../x")));
    assert!(!link_stays_inside(Path::new("l"), Path::new("/etc/passwd")));
}

fn symlink(target: &str, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn excluding(p: &str) -> WalkOptions {
    WalkOptions {
        excludes: vec![p.into()],
        never_at_top: TOP,
    }
}

/// The problems of a walk as (path, kind name) pairs.
fn problems(w: &Walk) -> Vec<(String, String)> {
    w.problems
        .iter()
        .map(|p| {
            let kind = format!("{:?}", p.kind);
            let kind = kind.split(['(', ' ']).next().unwrap().to_string();
            (p.rel.to_string_lossy().into_owned(), kind)
        })
        .collect()
}

fn mkfifo(at: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(at)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_link_chain_through_a_link_to_the_root_is_refused_where_it_resolves_outside() {
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("secret.txt"), "host secret").unwrap();
    let c = host.path().join("c");
    fs::create_dir_all(c.join("sub/sub2")).unwrap();
    fs::write(c.join("a-config.yaml"), "plugin: rest\n").unwrap();
    symlink("../..", &c.join("sub/sub2/s"));
    symlink("sub/sub2/s/../secret.txt", &c.join("leak.txt"));
    let w = walk(&c, &top_only()).unwrap();
    assert_eq!(
        problems(&w),
        [
            ("leak.txt".into(), "ResolvesOutside".into()),
            ("sub/sub2/s".into(), "Loop".into())
        ]
    );
    let err = collect(&c, &top_only()).unwrap_err().to_string();
    assert!(
        err.contains("leak.txt") && err.contains("resolves outside the config directory"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn a_link_through_an_excluded_link_is_refused_where_it_resolves_outside() {
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("secret.txt"), "host secret").unwrap();
    let c = host.path().join("c");
    fs::create_dir(&c).unwrap();
    std::os::unix::fs::symlink(host.path(), c.join("inner")).unwrap();
    symlink("inner/secret.txt", &c.join("x.json"));
    let w = walk(&c, &excluding("inner")).unwrap();
    assert_eq!(problems(&w), [("x.json".into(), "ResolvesOutside".into())]);
    assert!(w.entries.is_empty() && w.linked.is_empty(), "{w:?}");
}

#[test]
fn links_resolve_once_to_canonical_paths_inside_the_tree() {
    let d = tree();
    symlink("one.json", &d.path().join("responses/alias.json"));
    symlink("responses", &d.path().join("linked"));
    let w = collect_walk(d.path(), &top_only()).unwrap();
    let real = fs::canonicalize(d.path()).unwrap();
    let alias = w
        .entry(Path::new("responses/alias.json"))
        .and_then(Entry::content)
        .unwrap();
    assert_eq!(alias, (real.join("responses/one.json").as_path(), false));
    let linked: Vec<_> = w
        .linked
        .iter()
        .map(|e| (e.rel.to_string_lossy().into_owned(), e.source.clone()))
        .collect();
    assert_eq!(
        linked,
        [
            ("linked/alias.json".into(), real.join("responses/one.json")),
            (
                "linked/nested/two.json".into(),
                real.join("responses/nested/two.json")
            ),
            ("linked/one.json".into(), real.join("responses/one.json")),
        ]
    );
    assert!(matches!(
        &w.entry(Path::new("linked")).unwrap().kind,
        EntryKind::Symlink { target, resolved: Resolved::Dir { path } }
            if target == Path::new("responses") && path == &real.join("responses")
    ));
}

#[test]
fn directory_link_loops_are_refused_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    symlink(".", &p.join("a"));
    symlink(".", &p.join("b"));
    fs::create_dir_all(p.join("x")).unwrap();
    fs::create_dir_all(p.join("y")).unwrap();
    symlink("../y", &p.join("x/l"));
    symlink("../x", &p.join("y/m"));
    symlink("l2", &p.join("l1"));
    symlink("l1", &p.join("l2"));
    let w = walk(p, &top_only()).unwrap();
    assert_eq!(
        problems(&w),
        [
            ("a".into(), "Loop".into()),
            ("b".into(), "Loop".into()),
            ("l1".into(), "Loop".into()),
            ("l2".into(), "Loop".into()),
            ("x/l/m".into(), "Loop".into()),
            ("y/m/l".into(), "Loop".into()),
        ]
    );
}

#[test]
fn exponential_directory_links_stop_at_the_expansion_limit() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir(p.join("d0")).unwrap();
    fs::write(p.join("d0/f.json"), "{}").unwrap();
    // d(i) holds two links to d(i-1): 2^24 paths, no loop.
    for i in 1..=24 {
        fs::create_dir(p.join(format!("d{i}"))).unwrap();
        for l in ["a", "b"] {
            symlink(&format!("../d{}", i - 1), &p.join(format!("d{i}/{l}")));
        }
    }
    let started = std::time::Instant::now();
    let w = walk(p, &top_only()).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        problems(&w).iter().any(|(_, k)| k == "TooManyLinked"),
        "{:?}",
        problems(&w)
    );
    assert!(w.linked.len() <= resolve::MAX_LINKED);
}

#[test]
fn special_files_are_refused_directly_and_through_links_even_when_excluded() {
    let d = tree();
    let p = d.path();
    mkfifo(&p.join("pipe"));
    symlink("pipe", &p.join("pipe.json"));
    let _sock = std::os::unix::net::UnixListener::bind(p.join("sock")).unwrap();
    symlink("sock", &p.join("sock.json"));
    let w = walk(p, &top_only()).unwrap();
    assert_eq!(
        problems(&w),
        [
            ("pipe".into(), "Special".into()),
            ("pipe.json".into(), "LinkToSpecial".into()),
            ("sock".into(), "Special".into()),
            ("sock.json".into(), "LinkToSpecial".into()),
        ]
    );
    let opts = WalkOptions {
        excludes: vec!["pipe".into(), "sock".into()],
        never_at_top: TOP,
    };
    let err = collect(p, &opts).unwrap_err().to_string();
    assert!(
        err.contains("pipe.json") && err.contains("symlink points to a fifo"),
        "{err}"
    );
}

#[test]
fn dangling_links_are_refused() {
    let d = tree();
    symlink("responses/missing.json", &d.path().join("gone.json"));
    let err = collect(d.path(), &top_only()).unwrap_err().to_string();
    assert!(
        err.contains("gone.json") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn whiteout_names_are_refused_unless_excluded() {
    let d = tree();
    let p = d.path();
    fs::write(p.join(".wh.README.txt"), "").unwrap();
    fs::write(p.join("responses/.wh..wh..opq"), "").unwrap();
    let w = walk(p, &top_only()).unwrap();
    assert_eq!(
        problems(&w),
        [
            (".wh.README.txt".into(), "Whiteout".into()),
            ("responses/.wh..wh..opq".into(), "Whiteout".into()),
        ]
    );
    let err = collect(p, &excluding(".wh.README.txt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("responses/.wh..wh..opq") && err.contains("whiteout"),
        "{err}"
    );
    assert!(collect(p, &excluding(".wh.*")).is_ok());
}

#[test]
fn open_regular_refuses_links_and_fifos_without_blocking() {
    let d = tree();
    let p = d.path();
    mkfifo(&p.join("pipe"));
    symlink("run.sh", &p.join("link"));
    let e = open_regular(&p.join("pipe")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    let e = open_regular(&p.join("link")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    let (_, meta) = open_regular(&p.join("run.sh")).unwrap();
    assert!(meta.is_file());
}

/// What an Imposter caller hands the walk to leave at the top (a part of the project files):
/// the walker's own tests know no engine either.
const TOP: &[&str] = &[".imposter.yaml", "imposter-project.yaml"];

fn top_only() -> WalkOptions {
    WalkOptions {
        never_at_top: TOP,
        ..WalkOptions::default()
    }
}
