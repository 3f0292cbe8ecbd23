//! What every program's `--help` and `--version` must show, checked on the built binary run
//! as a person would.

use std::path::Path;
use std::process::Command;

/// Runs `binary args`; expects status 0 and returns stdout.
fn stdout(binary: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    assert!(
        out.status.success(),
        "`{} {}`: {}\n{}",
        binary.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// `NAME --help`, `NAME -h` and the same for every subcommand of `cli` (the program's clap
/// definition) show its usage and at least one example.
pub fn check_every_command_has_help_with_an_example(binary: &Path, cli: &clap::Command) {
    let name = cli.get_name();
    let mut commands = vec![Vec::new()];
    commands.extend(
        cli.get_subcommands()
            .map(|sub| vec![sub.get_name().to_owned()]),
    );
    assert!(commands.len() >= 4, "{name}: {commands:?}");
    for command in commands {
        for flag in ["--help", "-h"] {
            let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
            args.push(flag);
            let help = stdout(binary, &args);
            assert!(
                help.contains("Example"),
                "`{name} {}` shows no example:\n{help}",
                args.join(" ")
            );
            assert!(help.contains(&format!("Usage: {name}")), "{help}");
        }
    }
}

/// `NAME --version` and `NAME -V` print `NAME VERSION`.
pub fn check_version(binary: &Path, name: &str, version: &str) {
    for flag in ["--version", "-V"] {
        assert_eq!(stdout(binary, &[flag]), format!("{name} {version}\n"));
    }
}
