//! `deployer --help` and the help of every subcommand show examples, and `--version` works:
//! the built deployer, run as a person would.

use std::path::Path;

use clap::CommandFactory;
use deployer::cli::Cli;
use e2e::help::{check_every_command_has_help_with_an_example, check_version};

const BINARY: &str = env!("CARGO_BIN_EXE_deployer");

#[test]
fn every_command_has_help_with_an_example() {
    check_every_command_has_help_with_an_example(Path::new(BINARY), &Cli::command());
}

#[test]
fn version_names_the_program_and_its_version() {
    check_version(Path::new(BINARY), "deployer", env!("CARGO_PKG_VERSION"));
}
