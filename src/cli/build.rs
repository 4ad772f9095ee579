//! The commands that write images: `build` (check, then build and write), `push` (an exported
//! image to registries), and `inspect`, which reads one.
use super::args::{self, parse_env, parse_kv, registry_refs, BuildArgs, InspectArgs, PushArgs};
use super::check::{check_tree, outside_policy, Check};
use super::exit::{interruptible, job_error};
use super::{output, progress};
use crate::build::{self, BuildRequest};
use crate::error::Error;
use crate::imposter::project::{self, SCAN_RECURSIVE_ENV};
use crate::mutate::layer::LayerOptions;
use crate::oci::image::Platform;
use crate::registry::locations::Locations;
use crate::registry::RegistryOptions;
use crate::source::cache::Cache;
use std::collections::BTreeMap;

/// `--platform` values: empty or `all` means every platform of the base.
fn platforms(flags: &[String]) -> Result<Vec<Platform>, Error> {
    let flags: Vec<&str> = flags
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    if flags.contains(&"all") {
        if flags.len() > 1 {
            return Err(Error::Usage(
                "--platform all cannot be combined with other platforms".into(),
            ));
        }
        return Ok(Vec::new());
    }
    flags.into_iter().map(Platform::parse).collect()
}

/// The registries of `--push` references: the only ones environment credentials go to.
pub(super) fn push_hosts(push: &[String]) -> Vec<String> {
    push.iter()
        .filter_map(|p| crate::oci::RegistryRef::parse(p).ok())
        .map(|r| r.registry)
        .collect()
}

pub(super) async fn run_build(a: BuildArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // A malformed project file is reported by validation (unless --no-validate).
    let project = project::read(&a.config_dir).unwrap_or(None);
    let walk = a.exclude.walk_options();
    let flags = a.engine.flags();
    let env_flags = parse_env(&a.env)?;
    let epoch = super::env::source_date_epoch()?;
    crate::mutate::layer::config_path_components(&a.config_path)?;
    let (choice, outside) = check_tree(&Check {
        dir: &a.config_dir,
        project: project.as_ref(),
        flags,
        walk: &walk,
        recursive: a.check.recursive,
        env: &env_flags,
        no_validate: a.check.no_validate,
        findings: args::FindingsArgs {
            quiet: a.out.quiet,
            strict: a.strict,
        },
        outside: outside_policy(a.check.no_outside_files, &a.config_path),
    })?;
    let base = choice.base.clone();
    let mut env = project::merged_env(project.as_ref(), &env_flags);
    if project::scan_recursive(a.check.recursive, project.as_ref(), &env) {
        // The engine only loads subdirectory configs when told to.
        env.insert(SCAN_RECURSIVE_ENV.to_string(), "true".to_string());
    }
    let mut annotations = if a.no_ci_annotations {
        BTreeMap::new()
    } else {
        crate::imposter::ci::ci_annotations(super::env::var, epoch)
    };
    annotations.extend(parse_kv("annotation", &a.annotation)?);
    let platforms = platforms(&a.platform)?;
    let cache_dir = if a.no_cache {
        None
    } else {
        a.cache_dir.clone().or_else(super::env::cache_dir)
    };
    let cache = cache_dir.as_deref().map(Cache::open).transpose()?;
    let req = BuildRequest {
        config_dir: a.config_dir.clone(),
        outside,
        base: Some(base.clone()),
        base_moves: choice.floating,
        engine_config_dir: choice.facts.config_dir.to_string(),
        platforms,
        walk,
        layer: LayerOptions {
            config_path: a.config_path.clone(),
            mtime: epoch.unwrap_or(0),
            replace: a.replace,
            gzip_level: a.compression_level,
        },
        labels: parse_kv("label", &a.label)?,
        annotations,
        env,
        source_date_epoch: epoch,
        targets: targets(&a)?,
        format: match a.format.as_deref() {
            Some("docker") => Some(crate::oci::convert::Family::Docker),
            Some(_) => Some(crate::oci::convert::Family::Oci),
            None => None,
        },
        output: a.output.clone(),
        oci_layout: a.oci_layout.clone(),
        registry: RegistryOptions {
            push_hosts: push_hosts(&a.push),
            mount_from: a.mount.parse()?,
            locations: Some(locations(cache_dir.as_deref())),
            ..a.registry.options()
        },
        cache,
        sign: a.sign.keys(!a.push.is_empty())?,
        attest: a.attach.wanted(),
    };
    if !a.out.quiet && !req.pushes() && req.output.is_none() && req.oci_layout.is_none() {
        tracing::warn!(
            "no --push, --output or --oci-layout: the image is built but not written anywhere"
        );
    }
    let outcome = interruptible(build::build(&req, &progress::Shown))
        .await
        .map_err(|e| {
            job_error(e, || {
                format!("building {} onto {}", a.config_dir.display(), base)
            })
        })?;
    output::report(
        &outcome,
        &a.out,
        started,
        output::Written {
            output: a.output.as_deref(),
            layout: a.oci_layout.as_deref(),
        },
    )
}

/// `--push` and `--tag` names in command-line order (push then tag names when the order was not
/// kept: a command line not read by [`parse`]).
fn targets(a: &BuildArgs) -> Result<Vec<build::Target>, Error> {
    let in_order: Vec<(bool, String)> = if a.names_in_order.is_empty() {
        let push = a.push.iter().map(|v| (true, v.clone()));
        push.chain(a.tag.iter().map(|v| (false, v.clone())))
            .collect()
    } else {
        a.names_in_order.clone()
    };
    in_order
        .into_iter()
        .map(|(pushed, v)| {
            let flag = if pushed { "push" } else { "tag" };
            let r = registry_refs(flag, std::slice::from_ref(&v))?.remove(0);
            Ok(if pushed {
                build::Target::Push(r)
            } else {
                build::Target::Record(r)
            })
        })
        .collect()
}

/// The record of where blobs were seen, beside the blob cache; without a cache, one kept for
/// this run (a second target repository can still mount from the first).
pub(super) fn locations(cache_dir: Option<&std::path::Path>) -> std::sync::Arc<Locations> {
    std::sync::Arc::new(match cache_dir {
        Some(d) => Locations::open(d),
        None => Locations::in_memory(),
    })
}

pub(super) async fn run_push(a: PushArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let src = crate::source::parse_input(&a.source)?;
    let targets = registry_refs("target", &a.targets)?;
    let opts = RegistryOptions {
        push_hosts: targets.iter().map(|t| t.registry.clone()).collect(),
        mount_from: a.mount.parse()?,
        locations: Some(locations(super::env::cache_dir().as_deref())),
        ..a.registry.options()
    };
    let keys = a.sign.keys(true)?;
    let o = interruptible(build::push_existing(
        &src,
        &targets,
        &opts,
        &keys,
        &a.attach.left_out(),
        &progress::Shown,
    ))
    .await
    .map_err(|e| job_error(e, || format!("pushing {src}")))?;
    output::report(
        &o,
        &a.out,
        started,
        output::Written {
            output: None,
            layout: None,
        },
    )
}

pub(super) async fn run_inspect(a: InspectArgs) -> anyhow::Result<()> {
    let r = crate::source::parse_input(&a.reference)?;
    let i = crate::inspect::inspect(&r, &a.registry.options())
        .await
        .map_err(|e| job_error(e, || format!("inspecting {r}")))?;
    output::print_inspection(&i, a.json)
}

#[cfg(test)]
mod tests {
    #[test]
    fn platform_lists_and_all() {
        let p = |v: &[&str]| super::platforms(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(p(&["all"]).unwrap().is_empty());
        assert!(p(&[]).unwrap().is_empty());
        let two = p(&["linux/amd64", " linux/arm64/v8"]).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].to_string(), "linux/arm64/v8");
        let usage = |v: &[&str]| match p(v) {
            Err(crate::error::Error::Usage(m)) => m,
            other => panic!("{v:?}: expected a usage error, got {other:?}"),
        };
        assert!(usage(&["all", "linux/amd64"]).contains("--platform all cannot be combined"));
        assert!(usage(&["linux"]).contains("expected OS/ARCH[/VARIANT]"));
    }
}
