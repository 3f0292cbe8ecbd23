//! Running external commands: stdin closed, output captured, failures named.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// `program arg1 arg2 ...` for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion with stdin closed; panics only if it cannot be started.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)))
}

/// Runs `cmd`, panics unless it exits 0, and returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    check(cmd, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`run`], feeding `input` to the command's stdin.
pub fn run_with_input(cmd: &mut Command, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .unwrap_or_else(|e| panic!("writing to `{}`: {e}", describe(cmd)));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for `{}`: {e}", describe(cmd)));
    check(cmd, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(cmd: &Command, out: &Output) {
    if !out.status.success() {
        panic!(
            "`{}` failed ({}):\n{}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A child process that is killed (by its own pid) and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    /// The child was reaped: its pid no longer names its process group.
    reaped: bool,
}

impl ChildGuard {
    /// Spawns `cmd` as the leader of a process group of its own, panicking if it cannot be
    /// started. Killing the guard kills the whole group, so that what the child started
    /// (`flock DIR sleep 60` runs a sleep) does not outlive the test.
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)));
        ChildGuard {
            child,
            reaped: false,
        }
    }

    /// The child process, to take the pipes it was spawned with.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits up to `timeout` for the child to exit. `None` means it was still running
    /// and has been killed.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
                Ok(None) => {
                    self.kill();
                    return None;
                }
                Err(e) => panic!("waiting for child {}: {e}", self.child.id()),
            }
        }
    }

    fn kill(&mut self) {
        if !self.reaped {
            // Not reaped yet (running, or a zombie): its pid still names its group.
            let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Output of a command run with a time limit.
#[derive(Debug)]
pub struct TimedOutput {
    /// The exit status, or `None` if the command ran out of time and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with stdin closed, capturing stdout and stderr, killing it after `timeout`.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> TimedOutput {
    let mut guard = ChildGuard::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = drain(guard.child_mut().stdout.take().expect("stdout is piped"));
    let stderr = drain(guard.child_mut().stderr.take().expect("stderr is piped"));
    let status = guard.wait_timeout(timeout);
    TimedOutput {
        status,
        stdout: stdout.join().expect("stdout reader thread"),
        stderr: stderr.join().expect("stderr reader thread"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}
