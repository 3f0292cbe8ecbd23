//! `bootctl refresh`: after the image's package manager installed or removed a kernel, point
//! the image's entries in the multiboot grub.cfg at its newest kernel, so that GRUB never
//! looks for a kernel that is gone.
//!
//! [`image`] finds the image (its root UUID, the names in its `/boot`), [`plan`] works out
//! the new grub.cfg, the effects here write it as `switch` writes: under the lock, read
//! after the lock is taken, crash-safely through [`BootDir::write`].

pub mod image;
pub mod plan;
pub mod render;

use std::path::Path;

use shared::grubcfg;

use crate::change::Change;
use crate::cli::Cli;
use crate::exit::{fail, Code};
use crate::refresh::render::RefreshReport;
use crate::signals;
use crate::source::{self, Access};
use crate::store::BootDir;

/// Refreshes the running image, or with `root` the image mounted there.
pub fn run(cli: &Cli, root: Option<&Path>, dry_run: bool, json: bool) -> anyhow::Result<()> {
    if !dry_run && !nix::unistd::geteuid().is_root() {
        return Err(fail(
            Code::Permission,
            "refresh must be run as root (or use --dry-run)",
        ));
    }
    let image = image::find(root)?;
    if cli.verbose {
        eprintln!(
            "bootctl: image root UUID {}, kernels in {}",
            image.root_uuid, image.boot_dir
        );
    }
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let located = source::locate(&cli.source, access)?;
    if cli.verbose {
        eprintln!("bootctl: {}", located.describe());
    }
    let dir = BootDir::open(&located.root, located.shown_root().as_deref())?;
    // Declared after `located`, so dropped before it on every path: the lock holds the
    // partition's root open, which would keep the unmount busy.
    let lock = if dry_run {
        None
    } else {
        let lock = dir.lock()?;
        for stale in dir.sweep_temp_files()? {
            if !cli.quiet {
                eprintln!("bootctl: removed {stale}, left by an interrupted bootctl");
            }
        }
        Some(lock)
    };
    let files = dir.read()?;
    let menu = grubcfg::parse(&files.grub_cfg).map_err(|err| {
        fail(
            Code::Config,
            format!("{}: {err}", dir.shown(&dir.grub_cfg())),
        )
    })?;
    let refresh = plan::plan(&files.grub_cfg, &menu, files.boot_info.as_ref(), &image)?;
    signals::check()?;
    let change = Change {
        grub_cfg: refresh.grub_cfg.clone(),
        ..Change::default()
    };
    let changed = if dry_run {
        dir.would_write(&change)
    } else {
        dir.write(&change)?
    };
    drop(lock);
    let report = RefreshReport {
        refresh: &refresh,
        dry_run,
        changed,
    };
    if json {
        println!("{:#}", render::json(&report));
    } else if !cli.quiet {
        println!("{}", render::text(&report));
    }
    located.release()
}
