use std::process::ExitCode;

use clap::Parser;

use bootctl::cli::Cli;
use bootctl::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match bootctl::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bootctl: {err:#}");
            ExitCode::from(exit::code_of(&err) as u8)
        }
    }
}
