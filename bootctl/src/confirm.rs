//! Confirming a trial from inside the image tried: `mark-good`, `mark-bad`, and `health`,
//! which runs the checks first.

use std::path::Path;
use std::time::Duration;

use shared::grubcfg;

use crate::change::Change;
use crate::cli::Cli;
use crate::exit::{self, fail, Code};
use crate::loaded::Loaded;
use crate::render::{self, MarkReport};
use crate::source::{self, Access};
use crate::trial::{self, Verdict};
use crate::view::{self, Entry};
use crate::{health, reboot, signals};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Good,
    Bad,
}

/// `mark-good` or `mark-bad`. The files are read without writing first: on most boots (no
/// trial) there is nothing to change, and the partition is not mounted for writing.
pub fn mark(cli: &Cli, mark: Mark, json: bool) -> anyhow::Result<()> {
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
pub fn health(cli: &Cli, no_reboot: bool, timeout: u64) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(fail(Code::Permission, "health must be run as root"));
    }
    let checks = health::run_checks(
        Path::new(shared::layout::HEALTH_DIR),
        Duration::from_secs(timeout),
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
