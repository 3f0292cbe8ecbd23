//! Command-line definition and dispatch. One definition drives parsing and `--help`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::config::ProvisionConfig;
use crate::validate::{validate, ConfigError, JsonPath};

/// Deploy several OS images from a Bareon provision.json onto one node's disks.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The exit statuses, shown by `--help` and `validate --help`.
macro_rules! exit_status {
    () => {
        "Exit status: 0 valid, 1 the config file cannot be read (or the output cannot be \
         written), 2 usage error, 3 invalid config."
    };
}

const AFTER_HELP: &str = exit_status!();

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a provision.json and report every error with its JSON path
    ///
    /// Reads the config and touches nothing else. Every error is reported at once, one
    /// "PATH: message" line each on stderr, PATH being a JSON path such as
    /// partitions[0].volumes[2].images[1]; a valid config gets one summary line on stdout.
    #[command(after_help = VALIDATE_HELP)]
    Validate {
        /// The provision.json to check; "-" reads standard input.
        config: PathBuf,
        /// Print {"version": 1, "valid": BOOL, "errors": [{"path": PATH, "message": TEXT}]}
        /// on stdout instead.
        #[arg(long)]
        json: bool,
    },
}

const VALIDATE_HELP: &str = concat!(
    "Examples:\n",
    "  deployer validate provision.json\n",
    "  deployer validate --json provision.json | jq -r '.errors[].path'\n\n",
    exit_status!()
);

/// The documented exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The config is valid.
    Valid = 0,
    /// The config file cannot be read, or the report cannot be written.
    Failure = 1,
    /// The config has errors.
    Invalid = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Runs a parsed command line and returns the exit status. Usage errors (status 2) are
/// clap's, before this runs.
pub fn run(cli: &Cli) -> ExitCode {
    match &cli.command {
        Command::Validate { config, json } => validate_command(config, *json).into(),
    }
}

#[derive(Serialize)]
struct Report<'a> {
    version: u32,
    valid: bool,
    errors: &'a [ConfigError],
}

fn read_config(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn validate_command(path: &Path, json: bool) -> Exit {
    let bytes = match read_config(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("deployer: {err:#}");
            return Exit::Failure;
        }
    };
    let result = match String::from_utf8(bytes) {
        Ok(text) => validate(&text),
        Err(err) => Err(vec![ConfigError {
            path: JsonPath::root(),
            message: format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            ),
        }]),
    };
    if let Err(err) = report(path, &result, json) {
        eprintln!("deployer: cannot write the report: {err}");
        return Exit::Failure;
    }
    if result.is_ok() {
        Exit::Valid
    } else {
        Exit::Invalid
    }
}

fn report(
    path: &Path,
    result: &Result<ProvisionConfig, Vec<ConfigError>>,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let report = Report {
            version: 1,
            valid: result.is_ok(),
            errors: result.as_ref().err().map_or(&[][..], Vec::as_slice),
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        return writeln!(out);
    }
    match result {
        Ok(config) => writeln!(
            std::io::stdout(),
            "{}: valid: {}, {}, {}",
            path.display(),
            plural(config.images.len(), "image"),
            plural(config.disks().count(), "disk"),
            plural(config.volume_count(), "volume"),
        ),
        Err(errors) => {
            let mut err = std::io::stderr().lock();
            errors.iter().try_for_each(|error| writeln!(err, "{error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "disk"), "1 disk");
        assert_eq!(plural(0, "image"), "0 images");
        assert_eq!(plural(3, "volume"), "3 volumes");
    }

    #[test]
    fn usage_errors_are_clap_status_2() {
        let err = Cli::try_parse_from(["deployer", "validate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let cli = Cli::try_parse_from(["deployer", "validate", "--json", "x.json"]).unwrap();
        let Command::Validate { config, json } = cli.command;
        assert_eq!(config, PathBuf::from("x.json"));
        assert!(json);
    }
}
