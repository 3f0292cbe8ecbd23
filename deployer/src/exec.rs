//! The one way the deployer runs an external command: named for humans, stdin closed,
//! stdout and stderr captured, and a failure that carries the tail of stderr.
//!
//! [`run`] never asks a tool a question it could wait on (stdin is `/dev/null`), and a
//! failure reads as one line, ``<step>: `<command>` failed (exit N): <last stderr line>``,
//! with the last 20 lines of stderr kept in [`StepError::Failed`] for whoever wants more.
//!
//! A program named without a directory is looked up in `PATH` under either of its names
//! ([`find_program`]: Fedora's `grub2-install` for `grub-install`). Every command
//! is logged ([`output::detail`]: on stderr with `-v`, always in the log file) with its
//! duration and exit status, and with the tail of its stderr when it failed.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::output;

/// How many lines of stderr a failure keeps.
pub const STDERR_TAIL_LINES: usize = 20;

/// Why a step did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The command ran and exited unsuccessfully.
    #[error(
        "{step}: `{command}` failed ({}){}",
        status_text(status),
        last_line(stderr_tail)
    )]
    Failed {
        step: String,
        /// The command line, shell-quoted for display.
        command: String,
        status: ExitStatus,
        /// The last [`STDERR_TAIL_LINES`] lines of stderr.
        stderr_tail: String,
    },
    /// The program is not installed (under either of its names).
    #[error(
        "{step}: {program} not found{}: run scripts/setup (see README)",
        fedora_name(program).map(|other| format!(", nor {other}")).unwrap_or_default()
    )]
    NotFound { step: String, program: String },
    /// The program exists but could not be started.
    #[error("{step}: cannot start `{command}`: {source}")]
    Spawn {
        step: String,
        command: String,
        source: io::Error,
    },
}

impl StepError {
    /// The step, as the caller named it.
    pub fn step(&self) -> &str {
        match self {
            StepError::Failed { step, .. }
            | StepError::NotFound { step, .. }
            | StepError::Spawn { step, .. } => step,
        }
    }
}

fn status_text(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

fn last_line(tail: &str) -> String {
    tail.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| format!(": {l}"))
        .unwrap_or_default()
}

/// Runs `argv` (program first) as the step `step`, with stdin from `/dev/null`, and returns
/// its stdout (invalid UTF-8 replaced).
///
/// # Panics
/// When `argv` is empty: a step always names its program.
pub fn run(step: &str, argv: &[OsString]) -> Result<String, StepError> {
    run_with_stdin(step, argv, None, &mut |_| {})
}

/// Runs `argv` as [`run`] does, with `input` as its whole stdin (then closed): for small
/// inputs such as an sfdisk script, written before any output is read.
///
/// # Panics
/// When `argv` is empty: a step always names its program.
pub fn run_with_input(step: &str, argv: &[OsString], input: &[u8]) -> Result<String, StepError> {
    run_with_stdin(step, argv, Some(input), &mut |_| {})
}

/// Runs `argv` as [`run`] does, handing `report` each piece of its stdout between carriage
/// returns and newlines as it comes: for a tool that reports its progress there, such as
/// `qemu-img convert -p`.
///
/// # Panics
/// When `argv` is empty: a step always names its program.
pub fn run_reporting(
    step: &str,
    argv: &[OsString],
    report: &mut dyn FnMut(&str),
) -> Result<String, StepError> {
    run_with_stdin(step, argv, None, report)
}

fn run_with_stdin(
    step: &str,
    argv: &[OsString],
    input: Option<&[u8]>,
    report: &mut dyn FnMut(&str),
) -> Result<String, StepError> {
    let started = Instant::now();
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let Started { mut child, command } = start(step, argv, stdin, Stdio::piped())?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A tool that exits without reading all of its input is judged by its status.
        let _ = stdin.write_all(input);
    }
    let output = collect(child, report).map_err(|source| StepError::Spawn {
        step: step.to_owned(),
        command: command.clone(),
        source,
    })?;
    log_end(step, &output.status, started.elapsed());
    if !output.status.success() {
        return Err(failed(step, command, output.status, &output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A command started by [`start`], and its command line for messages.
pub(crate) struct Started {
    pub child: Child,
    pub command: String,
}

/// Starts `argv` (looked up as [`run`] does) as the step `step` with stderr piped and
/// `stdin` and `stdout` as given, and logs it.
pub(crate) fn start(
    step: &str,
    argv: &[OsString],
    stdin: Stdio,
    stdout: Stdio,
) -> Result<Started, StepError> {
    let (program, args) = argv.split_first().expect("a step needs a program");
    let (program, shown) = resolve(program, &std::env::var("PATH").unwrap_or_default());
    let command = quote_command(&[&[shown], args].concat());
    output::detail(format_args!("deployer: {step}: running {command}"));
    let spawned = Command::new(&program)
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn();
    match spawned {
        Ok(child) => Ok(Started { child, command }),
        Err(source) => {
            output::detail(format_args!(
                "deployer: {step}: cannot start {command}: {source}"
            ));
            Err(match source.kind() {
                io::ErrorKind::NotFound => StepError::NotFound {
                    step: step.to_owned(),
                    program: argv[0].to_string_lossy().into_owned(),
                },
                _ => StepError::Spawn {
                    step: step.to_owned(),
                    command,
                    source,
                },
            })
        }
    }
}

/// The error of `command` (step `step`) that exited with `status`, with the tail of its
/// `stderr`, which is logged.
pub(crate) fn failed(step: &str, command: String, status: ExitStatus, stderr: &[u8]) -> StepError {
    let stderr = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    for line in tail.lines() {
        output::detail(format_args!("deployer: {step}: stderr: {line}"));
    }
    StepError::Failed {
        step: step.to_owned(),
        command,
        status,
        stderr_tail: tail,
    }
}

/// Logs how `step` ended.
pub(crate) fn log_end(step: &str, status: &ExitStatus, elapsed: Duration) {
    output::detail(format_args!(
        "deployer: {step}: {}, {}",
        status_text(status),
        seconds(elapsed)
    ));
}

/// Waits for `child`, reading its stderr on a thread of its own and its stdout on this one,
/// handing `report` each piece of stdout that ends with a carriage return or a newline.
fn collect(mut child: Child, report: &mut dyn FnMut(&str)) -> io::Result<Output> {
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).map(|_| bytes)
        })
    });
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        let mut buf = [0u8; 8192];
        let mut reported = 0;
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            stdout.extend_from_slice(&buf[..n]);
            while let Some(end) = stdout[reported..]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
            {
                report(&String::from_utf8_lossy(&stdout[reported..reported + end]));
                reported += end + 1;
            }
        }
    }
    let status = child.wait()?;
    let stderr = match stderr {
        Some(thread) => thread
            .join()
            .map_err(|_| io::Error::other("reading stderr failed"))??,
        None => Vec::new(),
    };
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// The program to start for `program`, and its name for messages: as given when it names
/// a directory, else the one [`find_program`] finds in `path` (a `PATH` value, under
/// Debian's or Fedora's name); as given when there is none, for the start to fail with
/// [`StepError::NotFound`].
fn resolve(program: &OsStr, path: &str) -> (OsString, OsString) {
    let found = program
        .to_str()
        .filter(|name| !name.contains('/'))
        .and_then(|name| find_program(name, path));
    match found {
        Some(found) => {
            let name = found
                .file_name()
                .map_or_else(|| program.to_owned(), OsStr::to_owned);
            (found.into_os_string(), name)
        }
        None => (program.to_owned(), program.to_owned()),
    }
}

/// `0.012 s`: how long a command ran.
fn seconds(elapsed: Duration) -> String {
    format!("{:.3} s", elapsed.as_secs_f64())
}

/// The command line as a POSIX shell would need it typed, for messages.
pub fn quote_command(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &OsStr) -> String {
    let text = arg.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `grub2-install`, `grub2-mkimage`, `grub2-mkconfig`, ... where Debian has `grub-install`.
pub fn fedora_name(program: &str) -> Option<String> {
    program
        .strip_prefix("grub-")
        .map(|rest| format!("grub2-{rest}"))
}

/// Where `program` (a bare name) is in `path` (a `PATH` value): the first directory that
/// holds an executable of that name, else of its [`fedora_name`].
pub fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    let find = |name: &str| {
        std::env::split_paths(path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    };
    find(program).or_else(|| fedora_name(program).and_then(|other| find(&other)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn success_returns_stdout() {
        let out = run(
            "say hello",
            &argv(&["sh", "-c", "echo hello; echo noise >&2"]),
        )
        .unwrap();
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn failure_names_step_command_status_and_last_stderr_line() {
        let err = run(
            "partition vda",
            &argv(&["sh", "-c", "echo out; echo first >&2; echo err >&2; exit 3"]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition vda: `sh -c 'echo out; echo first >&2; echo err >&2; exit 3'` failed (exit 3): err"
        );
        let StepError::Failed {
            step,
            command,
            status,
            stderr_tail,
        } = err
        else {
            panic!("not a failure: {err:?}");
        };
        assert_eq!(step, "partition vda");
        assert_eq!(
            command,
            "sh -c 'echo out; echo first >&2; echo err >&2; exit 3'"
        );
        assert_eq!(status.code(), Some(3));
        assert_eq!(stderr_tail, "first\nerr");
    }

    #[test]
    fn stderr_tail_keeps_the_last_twenty_lines() {
        let err = run(
            "count",
            &argv(&[
                "sh",
                "-c",
                "for i in $(seq 1 30); do echo line$i >&2; done; exit 1",
            ]),
        )
        .unwrap_err();
        let StepError::Failed { stderr_tail, .. } = &err else {
            panic!("not a failure: {err:?}");
        };
        let lines: Vec<&str> = stderr_tail.lines().collect();
        assert_eq!(lines.len(), STDERR_TAIL_LINES);
        assert_eq!(lines[0], "line11");
        assert_eq!(lines[19], "line30");
        assert!(
            err.to_string().ends_with("failed (exit 1): line30"),
            "{err}"
        );
    }

    #[test]
    fn silent_failure_and_signal() {
        let err = run("quiet", &argv(&["false"])).unwrap_err();
        assert_eq!(err.to_string(), "quiet: `false` failed (exit 1)");
        let err = run("killed", &argv(&["sh", "-c", "kill -9 $$"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "killed: `sh -c 'kill -9 $$'` failed (killed by signal 9)"
        );
    }

    #[test]
    fn missing_program_names_it_and_the_setup_script() {
        let err = run(
            "make filesystem",
            &argv(&["mkfs.nonexistent-xyz", "/dev/null"]),
        )
        .unwrap_err();
        assert!(
            matches!(err, StepError::NotFound { ref program, .. } if program == "mkfs.nonexistent-xyz")
        );
        assert_eq!(
            err.to_string(),
            "make filesystem: mkfs.nonexistent-xyz not found: run scripts/setup (see README)"
        );
    }

    #[test]
    fn program_that_cannot_start_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("not executable");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let err = run("start", &[script.clone().into_os_string()]).unwrap_err();
        assert!(matches!(err, StepError::Spawn { .. }), "{err:?}");
        let shown = format!("start: cannot start `'{}'`: ", script.display());
        assert!(err.to_string().starts_with(&shown), "{err}");
    }

    #[test]
    fn stdin_is_null() {
        // cat would wait for a terminal or a pipe; with /dev/null it returns at once.
        let started = std::time::Instant::now();
        assert_eq!(run("read stdin", &argv(&["cat"])).unwrap(), "");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Whatever the test harness was given as stdin, the command gets /dev/null.
        let stdin = run("show stdin", &argv(&["readlink", "/proc/self/fd/0"])).unwrap();
        assert_eq!(stdin, "/dev/null\n");
    }

    #[test]
    fn input_is_the_whole_stdin() {
        let out = run_with_input("count lines", &argv(&["wc", "-l"]), b"a\nb\nc\n").unwrap();
        assert_eq!(out.trim(), "3");
        let err = run_with_input("fail", &argv(&["sh", "-c", "cat >/dev/null; exit 4"]), b"x")
            .unwrap_err();
        assert!(err.to_string().starts_with("fail: "), "{err}");
    }

    #[test]
    fn grub_programs_run_under_fedoras_names_where_debians_are_missing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("grub2-editenv");
        std::fs::write(&shim, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().display().to_string();
        assert_eq!(
            resolve(OsStr::new("grub-editenv"), &path),
            (shim.into_os_string(), "grub2-editenv".into())
        );
        assert_eq!(
            resolve(OsStr::new("grub-install"), &path),
            ("grub-install".into(), "grub-install".into()),
            "under neither name: left for the start to fail"
        );
        assert_eq!(
            resolve(OsStr::new("./grub-editenv"), &path),
            ("./grub-editenv".into(), "./grub-editenv".into())
        );
        let err = run("install GRUB", &argv(&["grub-nonexistent-xyz"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "install GRUB: grub-nonexistent-xyz not found, nor grub2-nonexistent-xyz: run \
             scripts/setup (see README)"
        );
    }

    #[test]
    fn progress_on_stdout_is_reported_as_it_comes() {
        let mut pieces = Vec::new();
        let out = run_reporting(
            "report",
            &argv(&[
                "sh",
                "-c",
                "printf '  (0.00/100%%)\\r'; echo err >&2; printf '(50.00/100%%)\\rdone\\n'",
            ]),
            &mut |piece| pieces.push(piece.to_owned()),
        )
        .unwrap();
        assert_eq!(pieces, ["  (0.00/100%)", "(50.00/100%)", "done"]);
        assert_eq!(out, "  (0.00/100%)\r(50.00/100%)\rdone\n");
        let err = run_reporting(
            "fail",
            &argv(&["sh", "-c", "echo half; echo why >&2; exit 2"]),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "fail: `sh -c 'echo half; echo why >&2; exit 2'` failed (exit 2): why"
        );
    }

    #[test]
    fn quoting_for_display() {
        assert_eq!(
            quote_command(&argv(&[
                "mkfs.ext4",
                "-L",
                "my disk",
                "",
                "it's",
                "/dev/vda1"
            ])),
            "mkfs.ext4 -L 'my disk' '' 'it'\\''s' /dev/vda1"
        );
    }
}
