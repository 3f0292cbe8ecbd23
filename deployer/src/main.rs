use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::CompleteEnv;

use deployer::cli::Cli;

fn main() -> ExitCode {
    // Shell completion: `DEPLOYER_COMPLETE=bash deployer` prints the script bash runs at each
    // TAB (a variable named after the deployer, so that a `COMPLETE` meant for another program
    // cannot reach it).
    CompleteEnv::with_factory(Cli::command)
        .var("DEPLOYER_COMPLETE")
        .complete();
    deployer::cli::run(&Cli::parse())
}
