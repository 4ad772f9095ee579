//! `mockimg build` command lines put together flag by flag, in place of long hand-written
//! argument lists: `env.build("examples/rest").base(&base).push(&target).run().ok()`.
use super::{Env, Run};
use std::path::Path;

/// A `mockimg build` command line for one [`Env`]; flags keep the order they are added in
/// (`--push`/`--tag` order is what the image records).
pub struct BuildCmd<'e> {
    env: &'e Env,
    args: Vec<String>,
}

impl Env {
    /// `mockimg build DIR`, flags to follow.
    pub fn build(&self, dir: &str) -> BuildCmd<'_> {
        BuildCmd {
            env: self,
            args: vec!["build".into(), dir.into()],
        }
    }
}

impl BuildCmd<'_> {
    /// `--base REF`.
    pub fn base(self, r: &str) -> Self {
        self.flag("--base", r)
    }

    /// `--push REF`.
    pub fn push(self, r: &str) -> Self {
        self.flag("--push", r)
    }

    /// `--tag REF`.
    pub fn tag(self, r: &str) -> Self {
        self.flag("--tag", r)
    }

    /// `--output PATH`.
    pub fn output(self, p: &Path) -> Self {
        self.flag("--output", p.to_str().unwrap())
    }

    /// `--oci-layout DIR`.
    pub fn oci_layout(self, p: &Path) -> Self {
        self.flag("--oci-layout", p.to_str().unwrap())
    }

    /// Any flag with a value.
    pub fn flag(self, name: &str, value: &str) -> Self {
        self.args([name, value])
    }

    /// Any further arguments, as given.
    pub fn args<'a>(mut self, more: impl IntoIterator<Item = &'a str>) -> Self {
        self.args.extend(more.into_iter().map(str::to_string));
        self
    }

    /// Runs it.
    pub fn run(&self) -> Run {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.env.run(&args)
    }
}
