//! `bootctl --help` and the help of every subcommand show examples, and `--version` works:
//! the built bootctl, run as a person would.

use std::path::Path;

use bootctl::cli::Cli;
use clap::CommandFactory;
use e2e::help::{check_every_command_has_help_with_an_example, check_version};

const BINARY: &str = env!("CARGO_BIN_EXE_bootctl");

#[test]
fn every_command_has_help_with_an_example() {
    check_every_command_has_help_with_an_example(Path::new(BINARY), &Cli::command());
}

#[test]
fn version_names_the_program_and_its_version() {
    check_version(Path::new(BINARY), "bootctl", env!("CARGO_PKG_VERSION"));
}
