//! Rebooting the node once its next boot is chosen.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use nix::sys::reboot::{reboot as reboot_now, RebootMode};

use crate::exit::{fail, Code};

/// Hands the reboot to systemd where it runs (units stop, filesystems unmount cleanly);
/// elsewhere writes every filesystem's data out and reboots at once, as busybox's
/// `reboot -f` does.
pub fn reboot() -> anyhow::Result<()> {
    if Path::new("/run/systemd/system").is_dir() {
        let status = Command::new("systemctl")
            .arg("reboot")
            .status()
            .context("running systemctl reboot")?;
        if !status.success() {
            return Err(fail(
                Code::Failure,
                format!("systemctl reboot failed ({status})"),
            ));
        }
        return Ok(());
    }
    nix::unistd::sync();
    let err = reboot_now(RebootMode::RB_AUTOBOOT).unwrap_err();
    Err(fail(
        if err == nix::errno::Errno::EPERM {
            Code::Permission
        } else {
            Code::Failure
        },
        format!("reboot(2): {err}"),
    ))
}
