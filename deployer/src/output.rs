//! Everything the deployer says besides its results goes through here: errors, warnings,
//! step lines, the log of the external commands it runs, and the log file.
//!
//! Errors always go to stderr, one line each, and are kept for `deploy --json`'s summary.
//! Warnings and step lines (`deployer: making ext4 on vda4`) and progress go to stderr
//! unless `-q`; the commands the deployer runs, with their duration, exit status and, on
//! failure, the tail of their stderr, only with `-v`. `--log-file PATH` gets all of it,
//! whatever `-v` or `-q` say, each line with the seconds since the start. [`init`] sets
//! this up once, from the command line; until then (in unit tests, in the benchmarks)
//! lines go to stderr and nothing else.

use std::fmt;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

/// How much the deployer says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Step lines and progress.
    Normal,
    /// `-v`: also every external command.
    Verbose,
}

struct Output {
    verbosity: Verbosity,
    log: Option<Mutex<File>>,
    started: Instant,
}

static OUTPUT: OnceLock<Output> = OnceLock::new();

/// What went wrong so far, for `deploy --json`.
#[derive(Debug, Default)]
struct Failure {
    /// Every error line, without the `deployer: ` every program message starts with.
    errors: Vec<String>,
    /// The step that failed after the first write.
    step: Option<String>,
}

static FAILURE: Mutex<Failure> = Mutex::new(Failure {
    errors: Vec::new(),
    step: None,
});

fn failure() -> std::sync::MutexGuard<'static, Failure> {
    FAILURE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the verbosity and opens the log file (created, or emptied, mode 0600) for the
/// rest of the run; the first line of the log is `command_line`. Called once; a second
/// call changes nothing.
pub fn init(
    verbosity: Verbosity,
    log_file: Option<&Path>,
    command_line: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let log = match log_file {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("--log-file {}", path.display()))?;
            writeln!(
                file,
                "deployer {}: {command_line}",
                env!("CARGO_PKG_VERSION")
            )
            .with_context(|| format!("--log-file {}", path.display()))?;
            Some(Mutex::new(file))
        }
        None => None,
    };
    let _ = OUTPUT.set(Output {
        verbosity,
        log,
        started: Instant::now(),
    });
    Ok(())
}

fn verbosity() -> Verbosity {
    OUTPUT.get().map_or(Verbosity::Normal, |out| out.verbosity)
}

/// Whether step lines and progress are shown (not `-q`).
pub fn shows_progress() -> bool {
    verbosity() >= Verbosity::Normal
}

/// Whether stderr is a terminal that gets progress bars: not with `-q`, not through a
/// pipe or into a file.
pub fn progress_bars() -> bool {
    shows_progress() && std::io::stderr().is_terminal()
}

/// Whether stderr may get colours: a terminal whose `TERM` is set and not `dumb`, and no
/// `NO_COLOR` (<https://no-color.org>: set and not empty).
pub fn colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let term = std::env::var_os("TERM").is_some_and(|term| !term.is_empty() && term != "dumb");
    std::io::stderr().is_terminal() && term && !no_color
}

/// Whether there is a log file.
pub fn logs() -> bool {
    OUTPUT.get().is_some_and(|out| out.log.is_some())
}

/// Appends `line` to the log file, if there is one.
pub fn log(line: fmt::Arguments) {
    if let Some(Output {
        log: Some(file),
        started,
        ..
    }) = OUTPUT.get()
    {
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        // A log that cannot be written must not stop a deploy half-way.
        let _ = writeln!(file, "[{:9.3}] {line}", started.elapsed().as_secs_f64());
    }
}

/// A step line: on stderr unless `-q`, and in the log.
pub fn info(line: fmt::Arguments) {
    if shows_progress() {
        to_stderr(line);
    }
    log(line);
}

/// One line on stderr; a stderr that cannot be written (closed, a broken pipe) must not
/// stop a deploy half-way. Progress bars shown make room for it.
fn to_stderr(line: fmt::Arguments) {
    let write = || {
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    match BARS.get() {
        Some(bars) => bars.suspend(write),
        None => write(),
    }
}

/// The progress bars on stderr: several at once (images deployed at the same time) are
/// drawn one below the other, and lines are written above them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Shows `bar` on stderr with the others.
pub fn add_bar(bar: ProgressBar) -> ProgressBar {
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        .add(bar)
}

/// A line about an external command: on stderr with `-v`, and in the log.
pub fn detail(line: fmt::Arguments) {
    if verbosity() >= Verbosity::Verbose {
        to_stderr(line);
    }
    log(line);
}

/// A warning: something the operator should know that does not stop the deploy. On
/// stderr unless `-q`, and in the log.
pub fn warn(line: fmt::Arguments) {
    if shows_progress() {
        to_stderr(line);
    }
    log(line);
}

/// An error: always on stderr, in the log, and in [`errors`].
pub fn error(line: fmt::Arguments) {
    to_stderr(line);
    log(line);
    let text = line.to_string();
    let text = text.strip_prefix("deployer: ").unwrap_or(&text).to_owned();
    failure().errors.push(text);
}

/// A block of text for the operator to read before answering a question (the plan before
/// a deploy): on stderr whatever `-q` says, and in the log.
pub fn show(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
    for line in text.lines() {
        log(format_args!("{line}"));
    }
}

/// Records the step that failed after the first write, for [`failed_step`].
pub fn set_failed_step(step: String) {
    failure().step = Some(step);
}

/// Every error line so far, without the `deployer: ` prefix.
pub fn errors() -> Vec<String> {
    failure().errors.clone()
}

/// The step that failed after the first write, if one did.
pub fn failed_step() -> Option<String> {
    failure().step.clone()
}

/// A step line (see [`info`]), formatted as by `eprintln!`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::output::info(format_args!($($arg)*))
    };
}

/// A warning line (see [`warn`]), formatted as by `eprintln!`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::output::warn(format_args!($($arg)*))
    };
}

/// An error line (see [`error`]), formatted as by `eprintln!`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::output::error(format_args!($($arg)*))
    };
}
