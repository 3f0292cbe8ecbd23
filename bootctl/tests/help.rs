//! `bootctl --help` and the help of every subcommand show examples, and `--version` works:
//! the built bootctl, run as a person would.

use std::process::Command;

use bootctl::cli::Cli;
use clap::CommandFactory;

const BINARY: &str = env!("CARGO_BIN_EXE_bootctl");

/// Runs the built bootctl with `args`; expects status 0 and returns stdout.
fn stdout(args: &[&str]) -> String {
    let out = Command::new(BINARY)
        .args(args)
        .output()
        .expect("running bootctl");
    assert!(
        out.status.success(),
        "`bootctl {}`: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

#[test]
fn every_command_has_help_with_an_example() {
    let cli = Cli::command();
    let mut commands = vec![Vec::new()];
    commands.extend(
        cli.get_subcommands()
            .map(|sub| vec![sub.get_name().to_owned()]),
    );
    assert!(commands.len() >= 4, "{commands:?}");
    for command in commands {
        for flag in ["--help", "-h"] {
            let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
            args.push(flag);
            let help = stdout(&args);
            assert!(
                help.contains("Example"),
                "`bootctl {}` shows no example:\n{help}",
                args.join(" ")
            );
            assert!(help.contains("Usage: bootctl"), "{help}");
        }
    }
}

#[test]
fn version_names_the_program_and_its_version() {
    for flag in ["--version", "-V"] {
        assert_eq!(
            stdout(&[flag]),
            format!("bootctl {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
