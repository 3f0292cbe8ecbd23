//! `bootctl refresh`: after the image's package manager installed or removed a kernel, point
//! the image's entries in the multiboot grub.cfg at its newest kernel, so that GRUB never
//! looks for a kernel that is gone.
//!
//! [`image`] finds the image (its root UUID, the names in its `/boot`), [`plan`] works out
//! the new grub.cfg, the effects here write it as `switch` writes: under the lock, read
//! after the lock is taken, crash-safely through [`crate::store::BootDir::write`].

pub mod image;
pub mod plan;
pub mod render;

use std::path::Path;

use crate::change::Change;
use crate::cli::Cli;
use crate::exit::{fail, Code};
use crate::loaded::Loaded;
use crate::refresh::render::RefreshReport;
use crate::signals;
use crate::source::Access;

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
    // Under the lock, taken before the files are read, unless nothing is written.
    let loaded = Loaded::open(cli, access, !dry_run)?;
    let (dir, files) = (&loaded.dir, &loaded.files);
    let refresh = plan::plan(
        &files.grub_cfg,
        &loaded.menu,
        files.boot_info.as_ref(),
        &image,
    )?;
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
    // The lock holds the partition's root open: it goes before the unmount.
    drop(loaded.lock);
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
    loaded.located.release()
}
