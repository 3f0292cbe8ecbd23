//! A stream fed through a chain of commands, as a shell's `a | b` does: an image's bytes,
//! from a file or from a download being hashed as it arrives, through a decompressor into
//! tar. Each command runs as [`crate::exec::run`] runs one (named step, logged, the tail
//! of its stderr in its error); the commands and this process work at the same time, so
//! no copy of the stream is kept anywhere.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{ChildStdin, Stdio};
use std::thread::{self, ScopedJoinHandle};
use std::time::Instant;

use anyhow::Context;
use nix::fcntl::{fcntl, FcntlArg};

use crate::exec::{failed, log_end, start, Started};

/// Where the first command's stdin comes from.
pub enum Input<'a> {
    /// A file, read by the command itself.
    File(File),
    /// Bytes this process reads and passes on (a download).
    Reader(&'a mut (dyn Read + Send)),
}

/// How much is passed on at a time from an [`Input::Reader`].
const BUF: usize = 1 << 20;

/// Runs `stages` (each a command line, program first) as the step `step`, each reading
/// what the one before writes, the first reading `input`; returns the last one's stdout.
///
/// What failed first is reported: the input (a download cut off), else the first command
/// that failed (a decompressor's error rather than tar's complaint about the end of its
/// input), else the passing on itself.
///
/// # Panics
/// When `stages` is empty.
pub fn run_pipeline(step: &str, stages: &[Vec<OsString>], input: Input) -> anyhow::Result<String> {
    assert!(!stages.is_empty(), "a pipeline needs a command");
    let began = Instant::now();
    let (first_stdin, mut reader) = match input {
        Input::File(file) => (Stdio::from(file), None),
        Input::Reader(reader) => (Stdio::piped(), Some(reader)),
    };
    let mut started: Vec<Started> = Vec::new();
    let mut stdin = Some(first_stdin);
    for argv in stages {
        let this_stdin = match stdin.take() {
            Some(stdin) => stdin,
            None => {
                let previous = started.last_mut().expect("a command before this one");
                let pipe = previous.child.stdout.take().expect("piped stdout");
                widen(&pipe);
                Stdio::from(pipe)
            }
        };
        match start(step, argv, this_stdin, Stdio::piped()) {
            Ok(one) => started.push(one),
            Err(err) => {
                for mut one in started {
                    let _ = one.child.kill();
                    let _ = one.child.wait();
                }
                return Err(err.into());
            }
        }
    }
    let feed = started[0].child.stdin.take();
    if let Some(feed) = &feed {
        widen(feed);
    }
    let last_stdout = started
        .last_mut()
        .and_then(|one| one.child.stdout.take())
        .expect("piped stdout");
    thread::scope(|scope| {
        let stderrs: Vec<ScopedJoinHandle<Vec<u8>>> = started
            .iter_mut()
            .map(|one| {
                let pipe = one.child.stderr.take();
                scope.spawn(move || read_all(pipe))
            })
            .collect();
        let stdout = scope.spawn(move || read_all(Some(last_stdout)));
        let fed = match (reader.as_mut(), feed) {
            (Some(reader), Some(feed)) => pass_on(&mut **reader, feed),
            _ => Ok(()),
        };
        if let Err(Fed::Read(_)) = &fed {
            // The commands would only fail on a stream cut short: what failed is the input.
            for one in &mut started {
                let _ = one.child.kill();
            }
        }
        let statuses: Vec<io::Result<std::process::ExitStatus>> =
            started.iter_mut().map(|one| one.child.wait()).collect();
        let stderrs: Vec<Vec<u8>> = stderrs
            .into_iter()
            .map(|handle| handle.join().unwrap_or_default())
            .collect();
        let stdout = stdout.join().unwrap_or_default();
        if let Err(Fed::Read(err)) = fed {
            return Err(anyhow::Error::new(err).context(format!("{step}: reading the input")));
        }
        for ((one, status), stderr) in started.iter().zip(statuses).zip(&stderrs) {
            let status = status.with_context(|| format!("{step}: waiting for {}", one.command))?;
            log_end(step, &status, began.elapsed());
            if !status.success() {
                return Err(failed(step, one.command.clone(), status, stderr).into());
            }
        }
        if let Err(Fed::Write(err)) = fed {
            return Err(anyhow::Error::new(err).context(format!("{step}: passing the input on")));
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    })
}

/// Gives `pipe` a buffer of [`BUF`] (as far as the system allows) instead of 64 KiB: each
/// side then wakes the other once a megabyte, not sixteen times.
fn widen(pipe: &impl AsFd) {
    let _ = fcntl(pipe.as_fd().as_raw_fd(), FcntlArg::F_SETPIPE_SZ(BUF as i32));
}

/// Why passing the input on stopped early.
enum Fed {
    Read(io::Error),
    /// Writing failed other than by the command's closing its stdin.
    Write(io::Error),
}

/// Copies `reader` into `feed` until the end of the input, then closes it. A command that
/// stops reading is judged by its exit status.
fn pass_on(reader: &mut dyn Read, mut feed: ChildStdin) -> Result<(), Fed> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Fed::Read(err)),
        };
        match feed.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => return Err(Fed::Write(err)),
        }
    }
}

fn read_all(pipe: Option<impl Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::StepError;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_reader_goes_through_every_command() {
        let mut input: &[u8] = b"b\na\nc\n";
        let out = run_pipeline(
            "sort and number",
            &[argv(&["sort"]), argv(&["cat", "-n"])],
            Input::Reader(&mut input),
        )
        .unwrap();
        assert_eq!(out, "     1\ta\n     2\tb\n     3\tc\n");
    }

    #[test]
    fn a_file_is_the_first_commands_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        std::fs::write(&path, "x".repeat(3 << 20)).unwrap();
        let out = run_pipeline(
            "count",
            &[
                argv(&["gzip", "-c"]),
                argv(&["gzip", "-dc"]),
                argv(&["wc", "-c"]),
            ],
            Input::File(File::open(&path).unwrap()),
        )
        .unwrap();
        assert_eq!(out.trim(), (3 << 20).to_string());
    }

    #[test]
    fn the_first_failing_command_is_reported() {
        let mut input: &[u8] = b"not gzip data at all";
        let err = run_pipeline(
            "extract",
            &[
                argv(&["gzip", "-dc"]),
                argv(&["sh", "-c", "cat >/dev/null; exit 2"]),
            ],
            Input::Reader(&mut input),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with("extract: `gzip -dc` failed (exit 1)"),
            "{text}"
        );
        assert!(err.downcast_ref::<StepError>().is_some());
    }

    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "reset by peer",
                ));
            }
            self.0 -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn an_input_that_fails_is_what_is_reported() {
        let err = run_pipeline(
            "extract",
            &[argv(&["gzip", "-dc"]), argv(&["cat"])],
            Input::Reader(&mut Broken(3)),
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "extract: reading the input: reset by peer"
        );
        assert!(err.downcast_ref::<StepError>().is_none());
    }

    #[test]
    fn a_command_that_stops_reading_is_judged_by_its_status() {
        let mut input = io::repeat(b'y').take(8 << 20);
        let out = run_pipeline(
            "head",
            &[argv(&["head", "-c", "3"])],
            Input::Reader(&mut input),
        )
        .unwrap();
        assert_eq!(out, "yyy");
    }
}
