//! `boxwright completion SHELL` and `boxwright man --dir DIR`: shell
//! completions and man pages generated from the CLI's own definition, so
//! they never drift from it.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::output::{emit, emit_lines};
use super::{Cli, CliResult, Failure};

#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Where to write the pages (created if missing): boxwright.1, and
    /// boxwright-COMMAND.1 for every command and subcommand.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// The CLI's definition, as clap sees it.
fn command() -> clap::Command {
    Cli::command()
}

/// Prints the completion script; see the README for where each shell
/// looks for one.
pub fn completion(a: &CompletionArgs) -> CliResult {
    let mut cmd = command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "boxwright", &mut script);
    emit(&String::from_utf8_lossy(&script))
}

/// Writes a man page per command and prints the files written.
pub fn man(a: &ManArgs) -> CliResult {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Failure::input(format!("cannot create {}: {e}", a.dir.display())))?;
    let mut cmd = command().disable_help_subcommand(true);
    // Building gives subcommands their full names (boxwright-catalog-runtimes)
    // and their share of the global options.
    cmd.build();
    let mut written = Vec::new();
    pages(cmd, &a.dir, &mut written)
        .map_err(|e| Failure::failed(format!("writing man pages to {}: {e}", a.dir.display())))?;
    written.sort();
    emit_lines(written.iter().map(|p| p.display().to_string()))
}

/// The page of `cmd` and of each visible subcommand, depth first.
fn pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub.clone(), dir, written)?;
    }
    let page = clap_mangen::Man::new(cmd)
        .source(format!("boxwright {}", env!("CARGO_PKG_VERSION")))
        .manual("boxwright manual");
    written.push(page.generate_to(dir)?);
    Ok(())
}
