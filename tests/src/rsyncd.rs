//! A real `rsync --daemon` on the loopback network serving one directory as the module
//! `images`, for the deploys whose image sources are rsync daemons.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cmd::ChildGuard;
use crate::net::wait_until_listening_at;
use crate::tmp::TempDir;

/// The daemon; killed when dropped (also when the test panics).
pub struct RsyncDaemon {
    address: Ipv4Addr,
    _child: ChildGuard,
}

impl RsyncDaemon {
    /// Serves `dir` as module `images`, as root with numeric ids, on port 873 (the port
    /// `HOST::MODULE` means) of a loopback address of its own, 127.X.Y.Z, chosen from the
    /// process id and `seed` so that concurrent tests do not meet. Its config and log go
    /// into `scratch`.
    pub fn start(scratch: &TempDir, dir: &Path, seed: u8) -> RsyncDaemon {
        let pid = std::process::id();
        let address = Ipv4Addr::new(127, (pid >> 8) as u8 | 1, pid as u8, seed.max(2));
        let config = scratch.join("rsyncd.conf");
        std::fs::write(
            &config,
            format!(
                "use chroot = no\nnumeric ids = yes\nuid = 0\ngid = 0\nlog file = {}\n\
                 [images]\n    path = {}\n    read only = yes\n",
                scratch.join("rsyncd.log").display(),
                dir.display()
            ),
        )
        .expect("writing rsyncd.conf");
        let child = ChildGuard::spawn(
            Command::new("rsync")
                .args(["--daemon", "--no-detach", "--port=873"])
                .arg(format!("--address={address}"))
                .arg(format!("--config={}", config.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_until_listening_at(address, 873, "the rsync daemon", Duration::from_secs(10));
        RsyncDaemon {
            address,
            _child: child,
        }
    }

    /// `rsync://ADDRESS/images/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("rsync://{}/images/{path}", self.address)
    }

    /// `ADDRESS::images/PATH`, the form bareon-ironic writes.
    pub fn daemon_path(&self, path: &str) -> String {
        format!("{}::images/{path}", self.address)
    }
}
