//! Writing back an image's filesystems while its files are still being written: without
//! it the kernel keeps them in memory until the unmount (dirty data is written back only
//! after half a minute, or once a tenth of memory is dirty), and the whole write-back then
//! waits on the disk with the processors idle. Started every [`EVERY`], it goes to the disk
//! while tar or the copy goes on, and the unmount has little left to do.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the filesystems are written back.
pub const EVERY: Duration = Duration::from_millis(500);

/// Writes back the filesystems mounted at its directories until dropped.
pub struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts writing back the filesystems mounted at `mount_points` every [`EVERY`].
    pub fn start(mount_points: &[PathBuf]) -> Flusher {
        let dirs: Vec<File> = mount_points
            .iter()
            .filter_map(|dir| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nix::libc::O_DIRECTORY)
                    .open(dir)
                    .ok()
            })
            .collect();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                for dir in &dirs {
                    // Only an earlier start of the unmount's work: a failure there is the
                    // unmount's to report.
                    let _ = nix::unistd::syncfs(dir.as_raw_fd());
                }
            }
        });
        Flusher {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
