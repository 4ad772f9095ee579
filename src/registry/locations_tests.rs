//! Unit tests of `locations.rs`, kept beside it.
use super::*;

fn d(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn r(s: &str) -> RegistryRef {
    RegistryRef::parse(s).unwrap()
}

#[test]
fn what_one_run_learns_the_next_run_reads() {
    let dir = tempfile::tempdir().unwrap();
    let l = Locations::open(dir.path());
    l.learn(&d(1), &r("reg.example:5000/team/a"));
    l.learn(&d(1), &r("reg.example:5000/team/b"));
    l.learn(&d(1), &r("other.example/x"));
    l.save();
    let again = Locations::open(dir.path());
    assert_eq!(
        again.repositories(&d(1), "reg.example:5000"),
        ["team/b", "team/a"],
        "newest first, this registry only"
    );
    assert!(again.holds(&d(1), &r("other.example/x:tag")));
    assert!(again.repositories(&d(2), "reg.example:5000").is_empty());
}

#[test]
fn a_refused_location_is_forgotten_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let l = Locations::open(dir.path());
    l.learn(&d(1), &r("reg.example/team/a"));
    l.save();
    let l = Locations::open(dir.path());
    l.forget(&d(1), &r("reg.example/team/a"));
    assert!(l.repositories(&d(1), "reg.example").is_empty());
    l.save();
    assert!(Locations::open(dir.path())
        .repositories(&d(1), "reg.example")
        .is_empty());
}

#[test]
fn a_missing_or_unreadable_record_is_empty_and_saving_into_a_missing_dir_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("not/yet");
    let l = Locations::open(&cache);
    assert!(l.repositories(&d(1), "reg.example").is_empty());
    l.learn(&d(1), &r("reg.example/team/a"));
    l.save();
    assert_eq!(
        Locations::open(&cache).repositories(&d(1), "reg.example"),
        ["team/a"]
    );
    // The record's name taken by a directory: read as empty, not written, no panic.
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(odd.join(FILE)).unwrap();
    let l = Locations::open(&odd);
    l.learn(&d(1), &r("reg.example/team/a"));
    l.save();
    assert!(
        l.holds(&d(1), &r("reg.example/team/a")),
        "still known in memory"
    );
}

#[test]
fn damaged_lines_are_skipped_and_the_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut text: Vec<u8> = Vec::new();
    text.extend_from_slice(b"\xff\xfe garbage \x00\n");
    text.extend_from_slice(format!("{} reg.example/team/good\n", d(1)).as_bytes());
    text.extend_from_slice(b"sha256:abc reg.example/team/short-digest\n");
    text.extend_from_slice(format!("{} reg.example/Team/Upper\n", d(1)).as_bytes());
    text.extend_from_slice(format!("{} reg.example/team/a:tag\n", d(1)).as_bytes());
    text.extend_from_slice(format!("{} team-without-host\n", d(1)).as_bytes());
    // A write torn by a crash: no newline at the end.
    text.extend_from_slice(format!("{} reg.example/team/to", d(1)).as_bytes());
    std::fs::write(dir.path().join(FILE), &text).unwrap();
    let l = Locations::open(dir.path());
    assert_eq!(
        l.repositories(&d(1), "reg.example"),
        ["team/to", "team/good"]
    );
    // The next append starts on a line of its own, so the torn line spoils nothing more.
    l.learn(&d(2), &r("reg.example/team/next"));
    l.save();
    let again = Locations::open(dir.path());
    assert_eq!(again.repositories(&d(2), "reg.example"), ["team/next"]);
    assert_eq!(
        again.repositories(&d(1), "reg.example"),
        ["team/to", "team/good"]
    );
}

#[test]
fn the_record_stays_bounded_and_keeps_the_newest_facts() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u32 {
        let l = Locations::open(dir.path());
        for i in 0..2000u32 {
            l.learn(&d(round * 2000 + i), &r("reg.example/team/a"));
        }
        l.save();
    }
    let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
    assert!(
        text.lines().count() <= MAX_LINES,
        "{} lines",
        text.lines().count()
    );
    let l = Locations::open(dir.path());
    assert!(l.holds(&d(5999), &r("reg.example/team/a")), "newest kept");
    assert!(!l.holds(&d(0), &r("reg.example/team/a")), "oldest evicted");
    // Per blob, only the newest few repositories.
    let l = Locations::open(dir.path());
    for i in 0..20u32 {
        l.learn(&d(7), &r(&format!("reg.example/team/r{i}")));
    }
    assert_eq!(l.repositories(&d(7), "reg.example").len(), PER_DIGEST);
    assert_eq!(l.repositories(&d(7), "reg.example")[0], "team/r19");
}

#[test]
fn a_huge_file_is_read_in_part_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{} reg.example/team/good\n", d(1)).into_bytes();
    text.resize(MAX_BYTES as usize + 10, b'x');
    std::fs::write(dir.path().join(FILE), &text).unwrap();
    let l = Locations::open(dir.path());
    assert!(l.holds(&d(1), &r("reg.example/team/good")));
    l.learn(&d(2), &r("reg.example/team/new"));
    l.save();
    let len = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
    assert!(len < 1000, "rewritten small: {len} bytes");
    let again = Locations::open(dir.path());
    assert!(again.holds(&d(1), &r("reg.example/team/good")));
    assert!(again.holds(&d(2), &r("reg.example/team/new")));
}

#[test]
fn concurrent_writers_lose_no_line_and_leave_no_damage() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let p = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for i in 0..20u32 {
                    // Each "process" reads, learns and appends on its own.
                    let l = Locations::open(&p);
                    l.learn(&d(t * 100 + i), &r(&format!("reg.example/t{t}")));
                    l.save();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
    // A reader can catch another process's append half-way (reads do not wait for writes)
    // and take it for a torn line: its own append then starts with a newline, which leaves
    // an empty line and damages nothing.
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 160, "{text}");
    assert!(lines.iter().all(|l| parse_line(l).is_some()), "{text}");
    let l = Locations::open(dir.path());
    for t in 0..8u32 {
        for i in 0..20u32 {
            assert!(l.holds(&d(t * 100 + i), &r(&format!("reg.example/t{t}"))));
        }
    }
}

#[test]
fn mount_from_takes_a_repository_with_or_without_its_registry() {
    let m = MountFrom::parse("team/engine").unwrap();
    assert_eq!((m.registry, m.repository.as_str()), (None, "team/engine"));
    let m = MountFrom::parse("localhost:5000/team/engine:4.9.3").unwrap();
    assert_eq!(m.registry.as_deref(), Some("localhost:5000"));
    assert_eq!(m.repository, "team/engine");
    let e = MountFrom::parse("Team/Engine").unwrap_err().to_string();
    assert!(e.contains("--mount-from") && e.contains("lowercase"), "{e}");
}
