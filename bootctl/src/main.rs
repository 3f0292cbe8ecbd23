use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::CompleteEnv;

use bootctl::cli::Cli;
use bootctl::exit;

fn main() -> ExitCode {
    // Shell completion (see bootctl::complete). The shell script is registered for the name
    // bootctl is called by: `BOOTCTL_COMPLETE=bash /usr/sbin/bootctl` completes
    // `/usr/sbin/bootctl` and leaves a `bootctl` that may be systemd's alone.
    let mut completion = CompleteEnv::with_factory(Cli::command).var(bootctl::complete::VAR);
    if let Some(called_as) = std::env::args_os().next() {
        completion = completion.bin(called_as.to_string_lossy());
    }
    completion.complete();

    let cli = Cli::parse();
    match bootctl::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bootctl: {err:#}");
            ExitCode::from(exit::code_of(&err) as u8)
        }
    }
}
