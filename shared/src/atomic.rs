//! Crash-safe file replacement and an exclusive advisory lock.
//!
//! A reboot depends on grub.cfg, grubenv and boot-info.json, so they are never written in
//! place: [`replace_file`] writes a temp file beside the target and renames it over, so
//! after a crash the path holds either the old or the new content. Writers serialise
//! with [`lock`].

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::fault;

/// How long [`lock`] sleeps between attempts.
const RETRY_INTERVAL: Duration = Duration::from_millis(20);

/// How many temp file names [`replace_file`] tries before giving up.
const TEMP_ATTEMPTS: u32 = 100;

/// Tells apart the temp files of concurrent calls within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replace `path` with `contents`: write a temp file in the same directory (name starting
/// with '.' and ending in ".tmp", unique per process), fsync it, set `mode`, rename over
/// `path`, fsync the directory. On any error the temp file is removed and `path` is
/// untouched, except when only the final directory fsync fails: the rename has then
/// happened, and the error says the new content may not be durable yet.
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (temp, mut file) = create_temp(dir, name)?;
    fault::point("replace:created");
    let written = (|| {
        file.write_all(contents)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        fault::point("replace:written");
        file.sync_all()?;
        drop(file);
        fault::point("replace:synced");
        fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        // Best effort: the error to report is the one that stopped the write.
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    fault::point("replace:renamed");
    File::open(dir)?.sync_all()?;
    fault::point("replace:done");
    Ok(())
}

/// Creates `DIR/.NAME.PID.N.tmp`, mode 0600, with the first `N` not already taken (a
/// crashed run may have left one behind under a reused pid).
fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    for _ in 0..TEMP_ATTEMPTS {
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            result => return result.map(|file| (temp, file)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: no free temp file name after {TEMP_ATTEMPTS} attempts",
            dir.display()
        ),
    ))
}

/// An exclusive advisory lock (flock on a lock file, created if missing, mode 0600, or on a
/// directory) held until drop.
#[derive(Debug)]
pub struct Lock {
    /// Held for its `Drop`, which releases the lock.
    _file: Flock<File>,
}

/// Why [`lock`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another open file description held the lock for the whole timeout.
    #[error("lock {} is busy: still held elsewhere after waiting {waited:?}", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long this call waited.
        waited: Duration,
    },
    /// Opening or locking the lock file failed.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Try to take the lock, retrying every 20 ms until `timeout`; [`LockError::Busy`] after
/// that. A zero timeout tries once. `path` is a lock file, created if missing, or an existing
/// directory, which is locked itself so that no file has to be created.
pub fn lock(path: &Path, timeout: Duration) -> Result<Lock, LockError> {
    let io_error = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let opened = if path.is_dir() {
        File::open(path)
    } else {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
    };
    let mut file = opened.map_err(io_error)?;
    let start = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(Lock { _file: locked }),
            Err((unlocked, Errno::EWOULDBLOCK)) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(LockError::Busy {
                        path: path.to_owned(),
                        waited,
                    });
                }
                thread::sleep(RETRY_INTERVAL.min(timeout - waited));
                file = unlocked;
            }
            Err((unlocked, Errno::EINTR)) => file = unlocked,
            Err((_, errno)) => return Err(io_error(errno.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, pause, pipe, setfsuid, ForkResult, Uid};
    use std::io::Read;
    use std::sync::mpsc;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn replace_leaves_new_content_and_mode_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grubenv");
        fs::write(&path, b"old content that is longer").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();

        replace_file(&path, b"new", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&path), 0o644);

        replace_file(&path, b"", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(names(dir.path()), ["grubenv"]);
    }

    #[test]
    fn replace_skips_a_stale_temp_file_of_a_reused_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grubenv");
        let next = TEMP_COUNTER.load(Ordering::Relaxed);
        let pid = std::process::id();
        let stale: Vec<_> = (next..next + 5)
            .map(|n| format!(".grubenv.{pid}.{n}.tmp"))
            .collect();
        for name in &stale {
            fs::write(dir.path().join(name), b"stale").unwrap();
        }
        replace_file(&path, b"new", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mut want = stale.clone();
        want.push("grubenv".to_owned());
        want.sort();
        assert_eq!(names(dir.path()), want);
    }

    #[test]
    fn replace_creates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot-info.json");
        replace_file(&path, b"{}\n", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}\n");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(names(dir.path()), ["boot-info.json"]);
    }

    #[test]
    fn replace_in_a_missing_directory_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("grub.cfg");
        let err = replace_file(&path, b"x", 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn replace_in_a_read_only_directory_fails_and_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grub.cfg");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o555)).unwrap();
        // Root ignores directory permissions; a thread whose filesystem uid is `nobody`
        // does not (setfsuid is per thread, and is a no-op when not root).
        let result = thread::scope(|s| {
            s.spawn(|| {
                setfsuid(Uid::from_raw(65534));
                replace_file(&path, b"new", 0o644)
            })
            .join()
            .unwrap()
        });
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["grub.cfg"]);
    }

    #[test]
    fn failed_rename_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"keep").unwrap();
        assert!(replace_file(&path, b"new", 0o644).is_err());
        assert_eq!(names(dir.path()), ["target"]);
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"keep");
    }

    #[test]
    fn replace_rejects_a_path_without_file_name() {
        let err = replace_file(Path::new("/"), b"x", 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn lock_file_is_created_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _held = lock(&path, Duration::ZERO).unwrap();
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn second_lock_is_busy_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = lock(&path, Duration::ZERO).unwrap();

        let timeout = Duration::from_millis(150);
        let busy = thread::scope(|s| s.spawn(|| lock(&path, timeout)).join().unwrap());
        let message = busy.as_ref().map(|_| ()).unwrap_err().to_string();
        match busy {
            Err(LockError::Busy { path: p, waited }) => {
                assert_eq!(p, path);
                assert!(waited >= timeout, "{waited:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(message.contains("is busy"), "{message}");

        drop(first);
        let second = thread::scope(|s| s.spawn(|| lock(&path, Duration::ZERO)).join().unwrap());
        assert!(second.is_ok());
    }

    #[test]
    fn a_directory_is_locked_itself_and_no_file_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), Duration::ZERO).unwrap();
        let busy = thread::scope(|s| s.spawn(|| lock(dir.path(), Duration::ZERO)).join().unwrap());
        assert!(matches!(busy, Err(LockError::Busy { .. })), "{busy:?}");
        drop(first);
        assert!(lock(dir.path(), Duration::ZERO).is_ok());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn waiting_lock_succeeds_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let (taken, is_taken) = mpsc::channel();
        thread::scope(|s| {
            s.spawn(|| {
                let held = lock(&path, Duration::ZERO).unwrap();
                taken.send(()).unwrap();
                thread::sleep(Duration::from_millis(100));
                drop(held);
            });
            is_taken.recv().unwrap();
            let start = Instant::now();
            lock(&path, Duration::from_secs(10)).unwrap();
            assert!(start.elapsed() >= Duration::from_millis(50));
        });
    }

    #[test]
    fn lock_file_left_by_a_dead_holder_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let file = File::create(&path).unwrap();
        let (ready, tell) = pipe().unwrap();
        let mut ready = File::from(ready);
        // SAFETY: the child only calls flock(2), write(2) and pause(2), all
        // async-signal-safe, and never returns into the test harness.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let status: &[u8] = match Flock::lock(file, FlockArg::LockExclusive) {
                    Ok(held) => {
                        std::mem::forget(held);
                        b"1"
                    }
                    Err(_) => b"0",
                };
                let _ = nix::unistd::write(&tell, status);
                loop {
                    pause();
                }
            }
            ForkResult::Parent { child } => {
                drop(file);
                drop(tell);
                let mut status = [0u8];
                ready.read_exact(&mut status).unwrap();
                let busy = lock(&path, Duration::from_millis(50));
                kill(child, Signal::SIGKILL).unwrap();
                waitpid(child, None).unwrap();
                assert_eq!(&status, b"1");
                assert!(matches!(busy, Err(LockError::Busy { .. })), "{busy:?}");
                assert!(path.exists());
                lock(&path, Duration::ZERO).unwrap();
            }
        }
    }

    #[test]
    fn lock_in_a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("lock");
        match lock(&path, Duration::ZERO) {
            Err(LockError::Io { path: p, source }) => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }
}
