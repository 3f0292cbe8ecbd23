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
pub mod exit;
pub mod health;
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

use shared::atomic::Lock;
use shared::grubcfg::{self, Menu};

use crate::change::{Change, How};
use crate::cli::{Choice, Cli, Command};
use crate::exit::{fail, Code};
use crate::render::{MarkReport, PartitionReport, SwitchReport};
use crate::source::{Access, Located};
use crate::store::BootDir;
use crate::trial::Verdict;
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
        Command::MarkGood { json } => mark(cli, Mark::Good, *json),
        Command::MarkBad { json } => mark(cli, Mark::Bad, *json),
        Command::Health { no_reboot, timeout } => health(cli, *no_reboot, *timeout),
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

/// The multiboot tree, located and read.
struct Loaded {
    /// Held when the files were read under the switch lock. It holds the partition's root
    /// open, so it is declared first: fields drop in order, and on an error path it must be
    /// released before `located` unmounts (else the unmount is busy).
    lock: Option<Lock>,
    located: Located,
    dir: BootDir,
    files: BootFiles,
    menu: Menu,
    view: View,
}

impl Loaded {
    /// Locates and reads the boot files; with `lock_first`, under the switch lock, taken
    /// before they are read (a switch whose TARGET is known reads them once).
    fn open(cli: &Cli, access: Access, lock_first: bool) -> anyhow::Result<Loaded> {
        let (source, verbose, quiet) = (&cli.source, cli.verbose, cli.quiet);
        let located = source::locate(source, access)?;
        if verbose {
            eprintln!(
                "bootctl: multiboot partition {} on {} {}",
                located.uuid.as_deref().unwrap_or("(uuid unknown)"),
                located
                    .device
                    .as_ref()
                    .map_or("(no device)".into(), |d| d.display().to_string()),
                if located.mounted_privately() {
                    "mounted for this run only".to_owned()
                } else {
                    format!("at {}", located.root.display())
                }
            );
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
fn lock_and_sweep(dir: &BootDir, quiet: bool) -> anyhow::Result<Lock> {
    let lock = dir.lock()?;
    for stale in dir.sweep_temp_files()? {
        if !quiet {
            eprintln!("bootctl: removed {stale}, left by an interrupted bootctl");
        }
    }
    Ok(lock)
}

fn read(dir: &BootDir) -> anyhow::Result<(BootFiles, Menu, View)> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Good,
    Bad,
}

/// `mark-good` or `mark-bad`. The files are read without writing first: on most boots (no
/// trial) there is nothing to change, and the partition is not mounted for writing.
fn mark(cli: &Cli, mark: Mark, json: bool) -> anyhow::Result<()> {
    let verb = match mark {
        Mark::Good => "mark-good",
        Mark::Bad => "mark-bad",
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(fail(
            Code::Permission,
            format!("{verb} must be run as root"),
        ));
    }
    let plan = |loaded: &Loaded| -> anyhow::Result<(Change, Verdict, Entry)> {
        let running = trial::running(&loaded.view, source::running_root_uuid())?;
        let (change, verdict) = match mark {
            Mark::Good => {
                trial::plan_mark_good(&loaded.files, &loaded.menu, &loaded.view, &running)?
            }
            Mark::Bad => (
                trial::plan_mark_bad(&loaded.files, &loaded.view, &running)?,
                Verdict::Ended,
            ),
        };
        Ok((change, verdict, running))
    };
    let looked = Loaded::open(cli, Access::ReadOnly, false)?;
    let (change, verdict, running) = plan(&looked)?;
    let (verdict, running, changed, default) = if change.is_empty() {
        let default = looked.view.default_entry().cloned();
        looked.located.release()?;
        (verdict, running, Vec::new(), default)
    } else {
        looked.located.release()?;
        let loaded = Loaded::open(cli, Access::ReadWrite, true)?;
        let (change, verdict, running) = plan(&loaded)?;
        signals::check()?;
        let changed = loaded.dir.write(&change)?;
        let after_files = change.applied_to(&loaded.files);
        let after_menu = grubcfg::parse(&after_files.grub_cfg)
            .map_err(|err| fail(Code::Config, format!("edited grub.cfg: {err}")))?;
        let after = view::build(&after_files, &after_menu, source::running_root_uuid());
        let default = after.default_entry().cloned();
        drop(loaded.lock);
        loaded.located.release()?;
        (verdict, running, changed, default)
    };
    let report = MarkReport {
        verdict,
        running,
        default,
        changed,
    };
    if json {
        println!("{:#}", render::mark_json(&report));
    } else if !cli.quiet {
        println!("{}", render::mark_text(&report));
    }
    Ok(())
}

/// `health`: the checks, then mark-good; or, after a failed check of a trial, mark-bad and
/// a reboot into the default.
fn health(cli: &Cli, no_reboot: bool, timeout: u64) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(fail(Code::Permission, "health must be run as root"));
    }
    let checks = health::run_checks(
        std::path::Path::new(shared::layout::HEALTH_DIR),
        std::time::Duration::from_secs(timeout),
    )?;
    let Some(failed) = checks.failed else {
        if !cli.quiet {
            println!("{}", render::health_passed(checks.passed));
        }
        // An image the menu does not boot (bootctl installed by hand, or started by another
        // boot loader) has no trial to confirm: the checks passed, and that is all.
        return match mark(cli, Mark::Good, false) {
            Err(err) if exit::code_of(&err) == Code::Target => {
                if !cli.quiet {
                    println!("nothing to confirm: {err}");
                }
                Ok(())
            }
            other => other,
        };
    };
    let loaded = Loaded::open(cli, Access::ReadOnly, false)?;
    let on_trial = loaded.view.running_entry().is_some_and(|entry| entry.trial);
    loaded.located.release()?;
    if !on_trial {
        return Err(fail(
            Code::Unhealthy,
            format!("{failed}; the running image is not on trial: it stays the default"),
        ));
    }
    mark(cli, Mark::Bad, false)?;
    if no_reboot {
        return Err(fail(
            Code::Unhealthy,
            format!("{failed}; the trial ended: the next boot is the default (--no-reboot)"),
        ));
    }
    eprintln!("bootctl: {failed}; the trial ended: rebooting into the default");
    reboot::reboot()?;
    Err(fail(Code::Unhealthy, failed))
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
