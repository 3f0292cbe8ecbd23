//! bootctl: list the images of a multi-image node and choose which one boots next.
//!
//! Data flow: [`source`] finds and mounts the multiboot partition, [`store`] reads its
//! files, [`view`] turns them into entries with marks, [`target`] resolves what the user
//! named, [`change`] (and [`trial`] for `mark-good`/`mark-bad`) plans the new file
//! contents, [`store`] writes them, [`render`] prints. `source`, `store`, `signals`,
//! [`health`] (runs the checks) and [`reboot`] are the only modules with side effects.

pub mod bootcode;
pub mod change;
pub mod cli;
pub mod complete;
pub mod confirm;
pub mod discover;
pub mod exit;
pub mod health;
pub mod loaded;
pub mod reboot;
pub mod refresh;
pub mod render;
pub mod signals;
pub mod source;
pub mod store;
pub mod target;
pub mod trial;
pub mod view;

use std::io::IsTerminal;

use shared::grubcfg::{self, Menu};

use crate::change::How;
use crate::cli::{Choice, Cli, Command};
use crate::confirm::Mark;
use crate::exit::{fail, Code};
use crate::loaded::{lock_and_sweep, read, Loaded};
use crate::render::{PartitionReport, SwitchReport};
use crate::source::Access;
use crate::store::BootDir;
use crate::view::{BootFiles, Entry, View};

pub fn run(cli: &Cli) -> anyhow::Result<()> {
    signals::install()?;
    match &cli.command {
        Command::List { json } => {
            let loaded = Loaded::open(cli, Access::ReadOnly, false)?;
            if *json {
                println!("{:#}", render::list_json(&loaded.view));
            } else {
                println!(
                    "{}",
                    render::list_table(&loaded.view, render::table_width())
                );
            }
            loaded.located.release()
        }
        Command::Status { json } => {
            let loaded = Loaded::open(cli, Access::ReadOnly, false)?;
            let partition = PartitionReport {
                uuid: loaded.located.uuid.clone(),
                device: loaded
                    .located
                    .device
                    .as_ref()
                    .map(|device| device.display().to_string()),
                boot_dir: if loaded.located.mounted_privately() {
                    // A mount of this run only: where the files lie in the filesystem.
                    loaded.dir.relative(&loaded.dir.grub_dir)
                } else {
                    loaded.dir.grub_dir.display().to_string()
                },
            };
            let boot_code = match (loaded.located.whole_disk(), &loaded.located.uuid) {
                (Some(disk), Some(uuid)) => {
                    Some(bootcode::check(&loaded.located.root, &disk, uuid))
                }
                _ => None,
            };
            let firmware = bootcode::running_firmware(&loaded.located);
            if *json {
                println!(
                    "{:#}",
                    render::status_json(&loaded.view, &partition, boot_code.as_ref(), firmware)
                );
            } else {
                println!(
                    "{}",
                    render::status_text(&loaded.view, &partition, boot_code.as_ref(), firmware)
                );
            }
            loaded.located.release()
        }
        Command::Switch {
            choice,
            dry_run,
            json,
        } => switch(cli, choice, *dry_run, *json),
        Command::Refresh {
            root,
            dry_run,
            json,
        } => refresh::run(cli, root.as_deref(), *dry_run, *json),
        Command::MarkGood { json } => confirm::mark(cli, Mark::Good, *json),
        Command::MarkBad { json } => confirm::mark(cli, Mark::Bad, *json),
        Command::Health { no_reboot, timeout } => confirm::health(cli, *no_reboot, *timeout),
        Command::Reboot { choice, dry_run } => {
            if choice.target.is_none() && (choice.once || choice.tries.is_some()) {
                return Err(fail(Code::Usage, "--once and --try need a TARGET"));
            }
            if !*dry_run && !nix::unistd::geteuid().is_root() {
                return Err(fail(
                    Code::Permission,
                    "reboot must be run as root (or use --dry-run)",
                ));
            }
            if choice.target.is_some() {
                switch(cli, choice, *dry_run, false)?;
            }
            if *dry_run {
                if !cli.quiet {
                    println!("would reboot (dry run: nothing changed)");
                }
                return Ok(());
            }
            reboot::reboot()
        }
    }
}

/// How a switch chooses, from its options.
fn how(choice: &Choice) -> How {
    match (choice.once, choice.tries) {
        (true, _) => How::Once,
        (false, Some(tries)) => How::Try(tries),
        (false, None) => How::Always,
    }
}

fn switch(cli: &Cli, choice: &Choice, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let (target, how) = (choice.target.as_deref(), how(choice));
    if !dry_run && !nix::unistd::geteuid().is_root() {
        return Err(fail(
            Code::Permission,
            "switch must be run as root (or use --dry-run)",
        ));
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if target.is_none() && !interactive {
        return Err(fail(
            Code::Usage,
            "switch needs a TARGET when not run on a terminal",
        ));
    }
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    // With TARGET given nothing waits for a person: the lock is taken before the files are
    // read, and they are read once. The picker reads first and locks after the choice.
    let loaded = Loaded::open(cli, access, !dry_run && target.is_some())?;
    let chosen = match target {
        Some(target) => target::resolve(&loaded.view, target)?.clone(),
        None => pick(&loaded.view)?,
    };
    trial::check_grub_writes(&loaded.view, how, choice.force)?;
    signals::check()?;

    // A dry run writes nothing; a switch that locked first has read under the lock.
    let (report, after) = if dry_run || loaded.lock.is_some() {
        apply(
            &loaded.dir,
            &loaded.files,
            &loaded.menu,
            &loaded.view,
            &chosen,
            how,
            dry_run,
        )?
    } else {
        let lock = lock_and_sweep(&loaded.dir, cli.quiet)?;
        let (files, menu, view) = read(&loaded.dir)?;
        let outcome = apply(&loaded.dir, &files, &menu, &view, &chosen, how, false)?;
        drop(lock);
        outcome
    };
    if json {
        println!("{:#}", render::switch_json(&report));
    } else if !cli.quiet {
        println!("{}", render::switch_text(&report, &after));
    }
    // The lock holds the partition's root open: it goes before the unmount.
    drop(loaded.lock);
    loaded.located.release()
}

/// Plan and write (or, for a dry run, only plan) the switch to `chosen`, found again in
/// `view` by index and title so a grub.cfg that changed since it was chosen is not edited
/// blindly. Returns the report and the view after the change.
fn apply(
    dir: &BootDir,
    files: &BootFiles,
    menu: &Menu,
    view: &View,
    chosen: &Entry,
    how: How,
    dry_run: bool,
) -> anyhow::Result<(SwitchReport, View)> {
    let entry = view
        .entries
        .iter()
        .find(|entry| entry.index == chosen.index && entry.title == chosen.title)
        .ok_or_else(|| {
            fail(
                Code::Config,
                "grub.cfg changed while bootctl was running; run it again",
            )
        })?;
    let change = change::plan_switch(files, menu, view, entry, how)?;
    signals::check()?;
    let changed = if dry_run {
        dir.would_write(&change)
    } else {
        dir.write(&change)?
    };
    let after_files = change.applied_to(files);
    let after_menu = grubcfg::parse(&after_files.grub_cfg)
        .map_err(|err| fail(Code::Config, format!("edited grub.cfg: {err}")))?;
    let after = view::build(&after_files, &after_menu, source::running_root_uuid());
    let target = after
        .entries
        .iter()
        .find(|candidate| candidate.path == entry.path)
        .cloned()
        .unwrap_or_else(|| entry.clone());
    let report = SwitchReport {
        target,
        how,
        dry_run,
        changed,
    };
    Ok((report, after))
}

/// Let the user choose an entry on the terminal.
fn pick(view: &View) -> anyhow::Result<Entry> {
    let items: Vec<String> = view
        .entries
        .iter()
        .map(|entry| render::describe(Some(entry)))
        .collect();
    let current = view
        .entries
        .iter()
        .position(|entry| entry.default)
        .unwrap_or(0);
    let choice = dialoguer::Select::new()
        .with_prompt("Boot which entry from the next reboot on? (Esc to cancel)")
        .items(&items)
        .default(current)
        .interact_opt()
        .map_err(|err| match err {
            dialoguer::Error::IO(io) if io.kind() == std::io::ErrorKind::Interrupted => {
                fail(Code::Interrupted, "interrupted; nothing was changed")
            }
            other => anyhow::Error::new(other).context("reading the choice from the terminal"),
        })?;
    match choice {
        Some(i) => Ok(view.entries[i].clone()),
        None => Err(fail(Code::Interrupted, "cancelled; nothing was changed")),
    }
}

#[cfg(test)]
mod fixtures;
