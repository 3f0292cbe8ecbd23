use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::CompleteEnv;

use deployer::cli::Cli;

fn main() -> ExitCode {
    // Shell completion: `COMPLETE=bash deployer` prints the script that bash runs at each TAB.
    CompleteEnv::with_factory(Cli::command).complete();
    deployer::cli::run(&Cli::parse())
}
