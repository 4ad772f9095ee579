//! `mockimg bundle`: check the config for the Lambda engine, then write the zip.
use super::args::BundleArgs;
use super::check::settle;
use super::output;
use crate::error::Error;
use crate::imposter::engine::{self, EngineFlags};
use crate::imposter::validate::{self, ValidateOptions};
use anyhow::Context as _;
use std::collections::BTreeMap;

pub(super) fn run_bundle(a: BundleArgs) -> anyhow::Result<()> {
    let walk = a.exclude.walk_options();
    // The engine archive says which engine runs the config.
    let generation = if a.engine_zip.is_none() && a.engine_archive.is_some() {
        engine::Generation::Go
    } else {
        engine::Generation::Jvm
    };
    let mut config_files = Vec::new();
    let mut outside = Vec::new();
    if !a.check.no_validate {
        let engine = (generation == engine::Generation::Go).then(|| "go".to_string());
        let opts = ValidateOptions {
            recursive: a.check.recursive,
            walk: walk.clone(),
            engine: EngineFlags {
                engine,
                ..EngineFlags::default()
            },
            env: BTreeMap::new(),
            outside: if a.check.no_outside_files {
                validate::OutsidePolicy::Refuse(
                    "--no-outside-files keeps the zip to the config directory".to_string(),
                )
            } else {
                let root = crate::imposter::bundle::LAMBDA_TASK_ROOT;
                validate::OutsidePolicy::Ship {
                    config_path: format!("{root}/config"),
                    floor: root.to_string(),
                    into: "the Lambda zip".to_string(),
                }
            },
        };
        let mut report = validate::validate_dir(&a.config_dir, &opts).map_err(Error::from)?;
        settle(&mut report, &a.findings)?;
        config_files = report.config_files.clone();
        outside = std::mem::take(&mut report.outside);
    }
    let engine = match (a.engine_zip, a.engine_archive) {
        (Some(z), _) => crate::imposter::bundle::EngineArchive::JvmZip(z),
        (None, Some(t)) => crate::imposter::bundle::EngineArchive::GoTarGz(t),
        (None, None) => {
            return Err(
                Error::Usage("give --engine-zip (JVM) or --engine-archive (Go)".into()).into(),
            )
        }
    };
    let s = crate::imposter::bundle::bundle(&crate::imposter::bundle::BundleOptions {
        config_dir: a.config_dir.clone(),
        engine,
        output: a.output.clone(),
        force: a.force,
        walk,
        mtime: super::env::source_date_epoch()?.unwrap_or(0),
        outside,
    })
    .with_context(|| format!("bundling {} for {}", a.config_dir.display(), a.target))?;
    if !a.findings.quiet {
        for line in
            crate::imposter::bundle::lambda::advice(generation, &a.config_dir, &config_files)
        {
            eprintln!("{line}");
        }
    }
    output::print_bundle(&s, a.json)
}
