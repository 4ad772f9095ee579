//! The engine-like base shipped in `testdata/engine-base` (used by the README's offline example)
//! is exactly what the fixture builder makes: regenerate with MOCKIMG_REGENERATE_TESTDATA=1.
mod common;
use common::*;
use std::path::Path;

#[test]
fn shipped_engine_base_is_reproducible() {
    let shipped = Path::new(REPO_ROOT).join("testdata/engine-base");
    if std::env::var_os("MOCKIMG_REGENERATE_TESTDATA").is_some() {
        let _ = std::fs::remove_dir_all(&shipped);
        fixtures::write_layout(&shipped, &fixtures::engine_like(true), "4.9.3");
    }
    let fresh = tempfile::tempdir().unwrap();
    fixtures::write_layout(fresh.path(), &fixtures::engine_like(true), "4.9.3");
    assert_eq!(
        files(fresh.path()),
        files(&shipped),
        "testdata/engine-base is stale: regenerate it"
    );
}
