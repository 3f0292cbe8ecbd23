//! Confirming or ending a trial boot from inside the image tried, and whether a one-shot
//! or a trial can work at all on this boot. Pure: no I/O.

use shared::grubcfg::{Menu, BOOT_STAMP, TRY_FAILED};

use crate::change::{end_trial, plan_switch, Change, How};
use crate::exit::{fail, Code};
use crate::view::{BootFiles, Entry, GrubWrote, View};

/// What `mark-good` or `mark-bad` found to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The running image was on trial: it is now the default (`mark-good`).
    Confirmed,
    /// The running image was on trial: the next boot goes back to the default (`mark-bad`).
    Ended,
    /// No trial of the running image: nothing changes. The trial of another entry, if one
    /// is pending, is named.
    NothingToConfirm { pending: Option<String> },
}

/// The running entry, or exit 3 naming the root that has none.
pub fn running(view: &View, running_root: Option<&str>) -> anyhow::Result<Entry> {
    view.running_entry().cloned().ok_or_else(|| {
        fail(
            Code::Target,
            format!(
                "the running system (root filesystem UUID {}) boots from no entry of grub.cfg",
                running_root.unwrap_or("unknown")
            ),
        )
    })
}

/// `mark-good`: the running image becomes the default if it is on trial; otherwise nothing
/// changes (the health unit calls this on every boot).
pub fn plan_mark_good(
    files: &BootFiles,
    menu: &Menu,
    view: &View,
    running: &Entry,
) -> anyhow::Result<(Change, Verdict)> {
    if !running.trial {
        return Ok((Change::default(), nothing(view)));
    }
    let change = plan_switch(files, menu, view, running, How::Always)?;
    Ok((change, Verdict::Confirmed))
}

/// `mark-bad`: the trial of the running image ends now, noted as failed, so the next boot
/// is the default. Without such a trial there is nothing to fall back to: exit 6.
pub fn plan_mark_bad(files: &BootFiles, view: &View, running: &Entry) -> anyhow::Result<Change> {
    if !running.trial {
        let why = match nothing(view) {
            Verdict::NothingToConfirm {
                pending: Some(other),
            } => format!("the trial pending is of {other}"),
            _ => "no trial is pending".to_owned(),
        };
        return Err(fail(
            Code::Config,
            format!("the running image is not on trial ({why}): there is no default to go back to"),
        ));
    }
    let mut env = files.grubenv.clone().unwrap_or_default();
    end_trial(&mut env);
    env.set(TRY_FAILED, &running.grub_value)
        .map_err(|err| fail(Code::Config, format!("grubenv: {err}")))?;
    Ok(Change {
        grubenv: Some(env),
        ..Change::default()
    })
}

fn nothing(view: &View) -> Verdict {
    let pending = view.trial.as_ref().map(|trial| {
        view.entry(trial.entry)
            .map_or_else(|| trial.value.clone(), |entry| entry.title.clone())
    });
    Verdict::NothingToConfirm { pending }
}

/// A one-shot or a trial needs GRUB to write grubenv as it boots: else a one-shot choice
/// stays forever and a trial never counts down. Refused (exit 6) when the running entry
/// stamps its boots and GRUB did not record this one; `force` overrides.
pub fn check_grub_writes(view: &View, how: How, force: bool) -> anyhow::Result<()> {
    if how == How::Always || force || view.grub_wrote() != GrubWrote::No {
        return Ok(());
    }
    let last = view
        .last_boot
        .as_ref()
        .map_or("nothing".to_owned(), |named| format!("{:?}", named.value));
    let (option, consequence) = match how {
        How::Once => ("--once", "the one-shot choice would never be cleared"),
        _ => ("--try", "the trial would never count down"),
    };
    Err(fail(
        Code::Config,
        format!(
            "GRUB did not record this boot in grubenv ({} names {last}): it cannot write \
             grubenv, or this image was not booted by the multiboot GRUB; {option} refused, \
             {consequence} (--force to do it anyway)",
            BOOT_STAMP
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_of;
    use crate::fixtures::{self, env, trial_boot_info, trial_cfg, ROOT_A, ROOT_B};
    use crate::target;

    fn files(pairs: &[(&str, &str)]) -> BootFiles {
        BootFiles {
            grub_cfg: trial_cfg(),
            grubenv: Some(env(pairs)),
            boot_info: Some(trial_boot_info()),
        }
    }

    #[test]
    fn a_trial_is_seen_and_boots_next_while_it_has_boots_left() {
        let files = files(&[("mb_try", "multiboot-ubuntu"), ("mb_try_left", "2")]);
        let (_, view) = fixtures::load(&files, Some(ROOT_A));
        assert!(view.can_try);
        let trial = view.trial.clone().unwrap();
        assert_eq!((trial.entry, trial.tries_left), (Some(1), Some(2)));
        assert!(view.entries[1].trial && !view.entries[1].default);
        assert_eq!(view.next_boot().unwrap().index, "1");
        let spent = BootFiles {
            grubenv: Some(env(&[("mb_try", "multiboot-ubuntu"), ("mb_try_left", "0")])),
            ..files
        };
        let (_, view) = fixtures::load(&spent, Some(ROOT_B));
        assert_eq!(view.next_boot().unwrap().index, "0", "GRUB gives up next");
    }

    #[test]
    fn switch_try_sets_the_trial_and_leaves_the_default() {
        let files = files(&[("next_entry", "multiboot-centos"), ("mb_try_failed", "x")]);
        let (menu, view) = fixtures::load(&files, Some(ROOT_A));
        let ubuntu = target::resolve(&view, "ubuntu").unwrap();
        let change = plan_switch(&files, &menu, &view, ubuntu, How::Try(3)).unwrap();
        let env = change.grubenv.expect("grubenv changes");
        assert_eq!(env.get("mb_try"), Some("multiboot-ubuntu"));
        assert_eq!(env.get("mb_try_left"), Some("3"));
        assert_eq!(
            env.get("mb_try_failed"),
            None,
            "an old failure is forgotten"
        );
        assert_eq!(env.get("next_entry"), None, "a one-shot would boot first");
        assert_eq!(env.get("saved_entry"), None, "the default stays");
        assert_eq!(change.boot_info, None);
        // Trying the default ends any trial and starts none.
        let centos = target::resolve(&view, "centos").unwrap();
        let change = plan_switch(&files, &menu, &view, centos, How::Try(1)).unwrap();
        assert_eq!(change.grubenv.unwrap().get("mb_try"), None);
    }

    #[test]
    fn switch_try_needs_a_config_that_counts_down() {
        let files = fixtures::files(fixtures::saved_entry_cfg(), None);
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "ubuntu").unwrap();
        let err = plan_switch(&files, &menu, &view, entry, How::Try(1)).unwrap_err();
        assert_eq!(code_of(&err), Code::Config);
        assert!(err.to_string().contains("cannot try an entry"), "{err}");
    }

    #[test]
    fn a_persistent_switch_ends_a_trial() {
        let files = files(&[("mb_try", "multiboot-ubuntu"), ("mb_try_left", "1")]);
        let (menu, view) = fixtures::load(&files, Some(ROOT_A));
        let centos = target::resolve(&view, "centos").unwrap();
        let env = plan_switch(&files, &menu, &view, centos, How::Always)
            .unwrap()
            .grubenv
            .unwrap();
        assert_eq!((env.get("mb_try"), env.get("mb_try_left")), (None, None));
        assert_eq!(env.get("saved_entry"), Some("multiboot-centos"));
    }

    #[test]
    fn mark_good_confirms_the_running_trial_only() {
        let files = files(&[
            ("mb_try", "multiboot-ubuntu"),
            ("mb_try_left", "0"),
            ("mb_booted", "multiboot-ubuntu"),
        ]);
        let (menu, view) = fixtures::load(&files, Some(ROOT_B));
        let running = running(&view, Some(ROOT_B)).unwrap();
        let (change, verdict) = plan_mark_good(&files, &menu, &view, &running).unwrap();
        assert_eq!(verdict, Verdict::Confirmed);
        let env = change.grubenv.unwrap();
        assert_eq!(env.get("saved_entry"), Some("multiboot-ubuntu"));
        assert_eq!((env.get("mb_try"), env.get("mb_try_left")), (None, None));
        assert_eq!(change.boot_info.unwrap().current_element, 1);

        // From the default while ubuntu's trial is pending: nothing to confirm.
        let (menu, view) = fixtures::load(&files, Some(ROOT_A));
        let centos = running_entry(&view);
        let (change, verdict) = plan_mark_good(&files, &menu, &view, &centos).unwrap();
        assert!(change.is_empty());
        assert_eq!(
            verdict,
            Verdict::NothingToConfirm {
                pending: Some("Ubuntu 14.04".into())
            }
        );
    }

    fn running_entry(view: &View) -> Entry {
        view.running_entry().cloned().unwrap()
    }

    #[test]
    fn mark_bad_ends_the_trial_as_failed_and_needs_one() {
        let files = files(&[("mb_try", "multiboot-ubuntu"), ("mb_try_left", "1")]);
        let (_, view) = fixtures::load(&files, Some(ROOT_B));
        let change = plan_mark_bad(&files, &view, &running_entry(&view)).unwrap();
        let env = change.grubenv.unwrap();
        assert_eq!(env.get("mb_try"), None);
        assert_eq!(env.get("mb_try_failed"), Some("multiboot-ubuntu"));
        let (_, view) = fixtures::load(&files, Some(ROOT_A));
        let err = plan_mark_bad(&files, &view, &running_entry(&view)).unwrap_err();
        assert_eq!(code_of(&err), Code::Config);
        assert!(err.to_string().contains("not on trial"), "{err}");
        let (_, elsewhere) = fixtures::load(&files, Some("0000"));
        let err = running(&elsewhere, Some("0000")).unwrap_err();
        assert_eq!(code_of(&err), Code::Target);
        assert!(err.to_string().contains("UUID 0000"), "{err}");
    }

    #[test]
    fn once_and_try_need_grub_to_have_recorded_this_boot() {
        let stamped = files(&[("mb_booted", "multiboot-centos")]);
        let (_, view) = fixtures::load(&stamped, Some(ROOT_A));
        assert_eq!(view.grub_wrote(), GrubWrote::Yes);
        check_grub_writes(&view, How::Once, false).unwrap();
        // ubuntu runs, but grubenv says GRUB last booted centos: it did not write.
        let (_, view) = fixtures::load(&stamped, Some(ROOT_B));
        assert_eq!(view.grub_wrote(), GrubWrote::No);
        for how in [How::Once, How::Try(2)] {
            let err = check_grub_writes(&view, how, false).unwrap_err();
            assert_eq!(code_of(&err), Code::Config);
            assert!(err.to_string().contains("--force"), "{err}");
            check_grub_writes(&view, how, true).unwrap();
        }
        check_grub_writes(&view, How::Always, false).unwrap();
        let (_, view) = fixtures::load(&files(&[]), Some(ROOT_B));
        assert_eq!(view.grub_wrote(), GrubWrote::No, "no stamp at all");
        // A config whose entries do not record their boots tells nothing.
        let plain = fixtures::files(fixtures::saved_entry_cfg(), None);
        let (_, view) = fixtures::load(&plain, Some(ROOT_B));
        assert_eq!(view.grub_wrote(), GrubWrote::Unknown);
        check_grub_writes(&view, How::Once, false).unwrap();
    }
}
