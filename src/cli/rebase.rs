//! `mockimg rebase`: parse the flags into a [`RebaseRequest`], run it, print what it did.
use super::args::{registry_refs, RebaseArgs};
use super::exit::{interruptible, job_error};
use crate::error::Error;
use crate::oci::reference::ImageRef;
use crate::rebase::{NewBase, RebaseOutcome, RebaseRequest};
use crate::registry::RegistryOptions;

pub(crate) async fn run_rebase(a: RebaseArgs) -> anyhow::Result<()> {
    let image = crate::source::parse_input(&a.image)?;
    let new_base = match (&a.base, &a.engine_version, a.latest_patch) {
        (Some(b), _, _) => {
            NewBase::Base(ImageRef::parse(b).map_err(|e| Error::Usage(format!("--base: {e}")))?)
        }
        (None, Some(v), _) => NewBase::EngineVersion(v.clone()),
        (None, None, _) => NewBase::LatestPatch,
    };
    let old_base = a
        .old_base
        .as_deref()
        .map(|b| ImageRef::parse(b).map_err(|e| Error::Usage(format!("--old-base: {e}"))))
        .transpose()?;
    let push = registry_refs("push", &a.push)?;
    if !a.quiet && !a.dry_run && push.is_empty() && a.output.is_none() && a.oci_layout.is_none() {
        tracing::warn!(
            "no --push, --output or --oci-layout: the image is rebased but not written anywhere"
        );
    }
    let req = RebaseRequest {
        image: image.clone(),
        new_base,
        old_base,
        push,
        output: a.output.clone(),
        oci_layout: a.oci_layout.clone(),
        dry_run: a.dry_run,
        attest: a.attach.wanted(),
        sign: a.sign.keys(!a.push.is_empty())?,
        source_date_epoch: super::env::source_date_epoch()?,
        registry: RegistryOptions {
            push_hosts: super::build::push_hosts(&a.push),
            mount_from: a.mount.parse()?,
            locations: Some(super::build::locations(super::env::cache_dir().as_deref())),
            ..a.registry.options()
        },
    };
    let o = interruptible(crate::rebase::rebase(&req, &crate::cli::progress::Shown))
        .await
        .map_err(|e| job_error(e, || format!("rebasing {image}")))?;
    print(&o, a.json, a.quiet)
}

fn print(o: &RebaseOutcome, json: bool, quiet: bool) -> anyhow::Result<()> {
    crate::cli::progress::finish();
    if json {
        println!("{}", serde_json::to_string(o)?);
    }
    if o.unchanged {
        if !json {
            println!("{}", o.digest);
        }
        if !quiet {
            eprintln!(
                "{}: already on {} ({}); nothing pushed",
                o.image, o.new_base_ref, o.new_base
            );
        }
        return Ok(());
    }
    if o.dry_run {
        if !json {
            println!("{}: {} → {}", o.image, o.old_base, o.new_base);
            match o.references.is_empty() {
                true => println!("would write {} (no --push given)", o.digest),
                false => o.references.iter().for_each(|r| println!("would push {r}")),
            }
        }
        return Ok(());
    }
    if !json {
        for r in &o.references {
            println!("{r}");
        }
        if o.references.is_empty() {
            println!("{}", o.digest);
        }
    }
    if !quiet {
        let stats = o
            .push
            .as_ref()
            .map(|s| {
                format!(
                    ", {} blobs uploaded, {} mounted, {} already there",
                    s.uploaded, s.mounted, s.existing
                )
            })
            .unwrap_or_default();
        let attached = super::output::attached_summary(&o.attached)
            .map(|a| format!(", {a}"))
            .unwrap_or_default();
        eprintln!(
            "rebased {} onto {}{stats}{attached}",
            o.image, o.new_base_ref
        );
    }
    Ok(())
}
