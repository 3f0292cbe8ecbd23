//! The multiboot tree located, locked when a command writes, and read: what every command
//! but `health`'s checks starts from.

use shared::atomic::Lock;
use shared::grubcfg::{self, Menu};

use crate::cli::Cli;
use crate::exit::{fail, Code};
use crate::source::{self, Access, Located};
use crate::store::BootDir;
use crate::view::{self, BootFiles, View};

/// The multiboot tree, located and read.
pub(crate) struct Loaded {
    /// Held when the files were read under the switch lock. It holds the partition's root
    /// open, so it is declared first: fields drop in order, and on an error path it must be
    /// released before `located` unmounts (else the unmount is busy).
    pub(crate) lock: Option<Lock>,
    pub(crate) located: Located,
    pub(crate) dir: BootDir,
    pub(crate) files: BootFiles,
    pub(crate) menu: Menu,
    pub(crate) view: View,
}

impl Loaded {
    /// Locates and reads the boot files; with `lock_first`, under the switch lock, taken
    /// before they are read (a switch whose TARGET is known reads them once).
    pub(crate) fn open(cli: &Cli, access: Access, lock_first: bool) -> anyhow::Result<Loaded> {
        let (source, verbose, quiet) = (&cli.source, cli.verbose, cli.quiet);
        let located = source::locate(source, access)?;
        if let (Some(note), false) = (&located.note, quiet) {
            eprintln!("bootctl: {note}");
        }
        if verbose {
            eprintln!("bootctl: {}", located.describe());
        }
        let dir = BootDir::open(&located.root, located.shown_root().as_deref())?;
        let lock = if lock_first {
            Some(lock_and_sweep(&dir, quiet)?)
        } else {
            None
        };
        let (files, menu, view) = read(&dir)?;
        Ok(Loaded {
            lock,
            located,
            dir,
            files,
            menu,
            view,
        })
    }
}

/// Takes the switch lock and removes the temp files an interrupted bootctl left, saying so
/// unless `quiet`.
pub(crate) fn lock_and_sweep(dir: &BootDir, quiet: bool) -> anyhow::Result<Lock> {
    let lock = dir.lock()?;
    for stale in dir.sweep_temp_files()? {
        if !quiet {
            eprintln!("bootctl: removed {stale}, left by an interrupted bootctl");
        }
    }
    Ok(lock)
}

pub(crate) fn read(dir: &BootDir) -> anyhow::Result<(BootFiles, Menu, View)> {
    let files = dir.read()?;
    let menu = grubcfg::parse(&files.grub_cfg).map_err(|err| {
        fail(
            Code::Config,
            format!("{}: {err}", dir.shown(&dir.grub_cfg())),
        )
    })?;
    let view = view::build(&files, &menu, source::running_root_uuid());
    Ok((files, menu, view))
}
