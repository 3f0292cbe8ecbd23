use std::process::ExitCode;

use clap::Parser;

use deployer::cli::Cli;

fn main() -> ExitCode {
    deployer::cli::run(&Cli::parse())
}
