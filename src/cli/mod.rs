//! The edge of the program: parse the command line, run one job through the library, print its
//! result, and turn failures into one line and an exit code.
mod args;
mod build;
mod bundle;
mod check;
mod env;
mod exit;
mod groups;
mod login;
mod output;
pub mod progress;
mod publish;
mod rebase;
mod sign;
mod validate;

pub use args::{Cli, Command};
pub use exit::{exit_code, interrupted, remove_temp_files};

use crate::error::Error;
use clap::CommandFactory;
use std::io::IsTerminal;

fn init_logging(verbose: u8, quiet: bool) {
    // -v: mockimg's own debug lines, one per registry request; -vv: mockimg's trace lines too
    // (each request's time to answer). Every request is mockimg's own now, so other crates'
    // logs add nothing a user can act on.
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "mockimg=info,warn",
        (false, 1) => "mockimg=debug,info",
        (false, _) => "mockimg=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    crate::cli::progress::install(crate::cli::progress::Mode::detect(quiet));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::cli::progress::StderrWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .without_time()
        .try_init();
}

/// Parses the process's command line, keeping what clap's derive loses: the order of `--push`
/// and `--tag` values among each other (the names are recorded in that order).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Build(b), Some(("build", m))) = (&mut cli.command, matches.subcommand()) {
        let mut all: Vec<(usize, bool, String)> = Vec::new();
        for (flag, is_push) in [("push", true), ("tag", false)] {
            if let (Some(idx), Some(vals)) = (m.indices_of(flag), m.get_many::<String>(flag)) {
                all.extend(idx.zip(vals).map(|(i, v)| (i, is_push, v.clone())));
            }
        }
        all.sort_by_key(|(i, _, _)| *i);
        b.names_in_order = all.into_iter().map(|(_, p, v)| (p, v)).collect();
    }
    cli
}

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let quiet = match &cli.command {
        Command::Build(b) => b.out.quiet,
        Command::Push(p) => p.out.quiet,
        Command::Validate(v) => v.findings.quiet,
        Command::Bundle(b) => b.findings.quiet,
        Command::Publish(p) => p.findings.quiet,
        Command::Rebase(r) => r.quiet,
        _ => false,
    };
    init_logging(cli.verbose, quiet);
    exit::install_signal_handlers();
    let r = match cli.command {
        Command::Build(args) => build::run_build(args).await,
        Command::Push(args) => build::run_push(args).await,
        Command::Inspect(args) => build::run_inspect(args).await,
        Command::Validate(args) => validate::run_validate(args),
        Command::Bundle(args) => bundle::run_bundle(args),
        Command::Login(args) => login::run_login(args).await,
        Command::Logout(args) => login::run_logout(args),
        Command::GenerateKey(args) => sign::run_generate_key(args),
        Command::Publish(args) => publish::run_publish(args).await,
        Command::Rebase(args) => rebase::run_rebase(args).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "mockimg",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    crate::cli::progress::finish();
    if let Err(e) = &r {
        if matches!(e.downcast_ref::<Error>(), Some(Error::Interrupted)) {
            // A blocking thread of the cancelled job may have written on meanwhile.
            crate::temps::remove_all();
        }
    }
    r
}
