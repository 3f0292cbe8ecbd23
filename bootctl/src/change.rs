//! What a switch changes, as new file contents. Pure: no I/O.

use shared::bootinfo::BootInfo;
use shared::grubcfg::{self, Menu, TRY_FAILED, TRY_LEFT, TRY_VARIABLE};
use shared::grubenv::GrubEnv;

use crate::exit::{fail, Code};
use crate::view::{BootFiles, Entry, Method, View};

/// New contents for the files a switch changes; None for a file that stays as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub grub_cfg: Option<String>,
    pub grubenv: Option<GrubEnv>,
    pub boot_info: Option<BootInfo>,
}

impl Change {
    /// The boot files as they are once this change is written.
    pub fn applied_to(&self, files: &BootFiles) -> BootFiles {
        BootFiles {
            grub_cfg: self
                .grub_cfg
                .clone()
                .unwrap_or_else(|| files.grub_cfg.clone()),
            grubenv: self.grubenv.clone().or_else(|| files.grubenv.clone()),
            boot_info: self.boot_info.clone().or_else(|| files.boot_info.clone()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.grub_cfg.is_none() && self.grubenv.is_none() && self.boot_info.is_none()
    }
}

/// How a switch chooses its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// From the next boot on.
    Always,
    /// At the next boot only.
    Once,
    /// The next N boots, until confirmed (`mark-good`); then back to the default.
    Try(u32),
}

/// Plan making `target` the entry GRUB boots, as `how` says. A persistent switch also drops
/// a pending one-shot choice and ends a trial (a failed one is forgotten too), so the next
/// boot is `target` either way. A trial drops a pending one-shot choice, which would boot
/// first. boot-info.json's `current_element` follows the persistent default.
pub fn plan_switch(
    files: &BootFiles,
    menu: &Menu,
    view: &View,
    target: &Entry,
    how: How,
) -> anyhow::Result<Change> {
    let value = target.grub_value.as_str();
    let mut env = files.grubenv.clone().unwrap_or_default();
    let mut grub_cfg = None;
    let set = |env: &mut GrubEnv, key: &str, value: &str| {
        env.set(key, value)
            .map_err(|err| fail(Code::Config, format!("grubenv: {err}")))
    };
    match how {
        How::Once => {
            if view.one_shot.is_none() {
                return Err(fail(
                    Code::Config,
                    "this grub.cfg cannot boot an entry once: it does not read next_entry from \
                     grubenv (load_env and ${next_entry}); switch without --once instead",
                ));
            }
            set(&mut env, "next_entry", value)?;
        }
        How::Try(tries) => {
            if !view.can_try {
                // A grub.cfg with only a literal `set default=` (Bareon's) can do neither.
                let instead = if view.one_shot.is_some() {
                    "use switch --once instead"
                } else {
                    "switch without --try instead"
                };
                return Err(fail(
                    Code::Config,
                    format!(
                        "this grub.cfg cannot try an entry: it does not count trial boots down \
                         (${{{TRY_VARIABLE}}} after load_env, as the deployer's grub.cfg does); \
                         {instead}"
                    ),
                ));
            }
            end_trial(&mut env);
            env.unset(TRY_FAILED);
            if !target.default {
                set(&mut env, TRY_VARIABLE, value)?;
                set(&mut env, TRY_LEFT, &tries.to_string())?;
            }
            env.unset("next_entry");
        }
        How::Always => {
            match view.persistent {
                Method::GrubCfg => {
                    let edited = grubcfg::set_fixed_default(&files.grub_cfg, menu, value);
                    check_edit(&edited, target)?;
                    grub_cfg = (edited != files.grub_cfg).then_some(edited);
                }
                Method::Grubenv => set(&mut env, "saved_entry", value)?,
            }
            env.unset("next_entry");
            end_trial(&mut env);
            env.unset(TRY_FAILED);
        }
    }
    let grubenv = match &files.grubenv {
        Some(old) if *old == env => None,
        None if env == GrubEnv::new() => None,
        _ => Some(env),
    };
    if let Some(env) = &grubenv {
        env.to_bytes()
            .map_err(|err| fail(Code::Config, format!("grubenv: {err}")))?;
    }
    let boot_info = match (&files.boot_info, target.element) {
        (Some(info), Some(element)) if how == How::Always && info.current_element != element => {
            let mut info = info.clone();
            info.current_element = element;
            Some(info)
        }
        _ => None,
    };
    Ok(Change {
        grub_cfg,
        grubenv,
        boot_info,
    })
}

/// Drops an active trial from `env`.
pub fn end_trial(env: &mut GrubEnv) {
    env.unset(TRY_VARIABLE);
    env.unset(TRY_LEFT);
}

/// The edited grub.cfg must still parse and choose `target`, or it is not written.
fn check_edit(edited: &str, target: &Entry) -> anyhow::Result<()> {
    let menu = grubcfg::parse(edited).map_err(|err| {
        fail(
            Code::Config,
            format!("edited grub.cfg does not parse: {err}"),
        )
    })?;
    let chosen = menu
        .defaults
        .iter()
        .rev()
        .find(|assignment| assignment.literal)
        .and_then(|assignment| menu.resolve(&assignment.value));
    match chosen {
        Some(entry) if entry.path == target.path => Ok(()),
        _ => Err(fail(
            Code::Config,
            format!(
                "editing grub.cfg's default would not select entry {}; grub.cfg left unchanged",
                target.index
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use shared::grubcfg;
    use shared::grubenv::GrubEnv;

    use super::{plan_switch, How};
    use crate::exit::{code_of, Code};
    use crate::fixtures;
    use crate::target;

    #[test]
    fn persistent_switch_of_a_fixed_config_rewrites_only_the_default_value() {
        let mut env = GrubEnv::new();
        env.set("next_entry", "img-centos").unwrap();
        let files = fixtures::files(fixtures::fixed_cfg(), Some(env));
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "ubuntu").unwrap();
        let change = plan_switch(&files, &menu, &view, entry, How::Always).unwrap();
        let cfg = change.grub_cfg.expect("grub.cfg changes");
        assert_eq!(
            cfg,
            fixtures::fixed_cfg().replace(r#"set default="0""#, "set default='2'")
        );
        assert_eq!(
            change
                .grubenv
                .expect("pending one-shot dropped")
                .get("next_entry"),
            None
        );
        assert_eq!(
            change
                .boot_info
                .expect("current_element follows")
                .current_element,
            1
        );
        let menu = grubcfg::parse(&cfg).unwrap();
        assert_eq!(menu.resolve("2").unwrap().item.title, "Ubuntu 14.04");
    }

    #[test]
    fn once_goes_to_next_entry_and_leaves_the_default_alone() {
        let files = fixtures::files(fixtures::fixed_cfg(), None);
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "img-centos-recovery").unwrap();
        let change = plan_switch(&files, &menu, &view, entry, How::Once).unwrap();
        assert_eq!(change.grub_cfg, None);
        assert_eq!(change.boot_info, None);
        let env = change.grubenv.expect("grubenv created");
        assert_eq!(
            env.get("next_entry"),
            Some("img-centos-advanced>img-centos-recovery")
        );
    }

    #[test]
    fn saved_entry_configs_switch_through_grubenv_only() {
        let files = fixtures::files(fixtures::saved_entry_cfg(), None);
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "ubuntu").unwrap();
        let change = plan_switch(&files, &menu, &view, entry, How::Always).unwrap();
        assert_eq!(change.grub_cfg, None);
        assert_eq!(change.grubenv.unwrap().get("saved_entry"), Some("2"));
    }

    #[test]
    fn once_on_a_config_without_next_entry_is_refused() {
        let cfg = fixtures::fixed_cfg().replace("${next_entry}", "${other}");
        let files = fixtures::files(cfg, None);
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "ubuntu").unwrap();
        let err = plan_switch(&files, &menu, &view, entry, How::Once).unwrap_err();
        assert_eq!(code_of(&err), Code::Config);
        assert!(err.to_string().contains("cannot boot an entry once"));
    }

    #[test]
    fn bareons_config_switches_by_its_fixed_default_alone() {
        let files = crate::view::BootFiles {
            grub_cfg: fixtures::bareon_cfg(),
            grubenv: None,
            boot_info: None,
        };
        let (menu, view) = fixtures::load(&files, Some(fixtures::ROOT_A));
        assert!(view.entries[0].running && view.entries[0].default);
        let entry = target::resolve(&view, "Ubuntu 14.04 (on /dev/sda4)").unwrap();
        let change = plan_switch(&files, &menu, &view, entry, How::Always).unwrap();
        assert_eq!(
            change.grub_cfg.as_deref(),
            Some(
                fixtures::bareon_cfg()
                    .replace("set default=0", "set default=1")
                    .as_str()
            ),
            "the digit alone changes, as bareon-ironic's sed changes it"
        );
        assert_eq!(
            (change.grubenv, change.boot_info),
            (None, None),
            "no grubenv is made"
        );
        for how in [How::Once, How::Try(1)] {
            let err = plan_switch(&files, &menu, &view, entry, how).unwrap_err();
            assert_eq!(code_of(&err), Code::Config, "{how:?}");
            assert!(err.to_string().contains("instead"), "{err}");
            assert!(!err.to_string().contains("use switch --once"), "{err}");
        }
    }

    #[test]
    fn switching_to_the_current_default_changes_nothing() {
        let files = fixtures::files(fixtures::fixed_cfg(), None);
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "0").unwrap();
        let change = plan_switch(&files, &menu, &view, entry, How::Always).unwrap();
        assert!(
            change.grub_cfg.is_some(),
            "the value is written as the entry's id"
        );
        let files = fixtures::files(change.grub_cfg.unwrap(), None);
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "centos").unwrap();
        assert!(plan_switch(&files, &menu, &view, entry, How::Always)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_grubenv_that_cannot_hold_the_value_is_refused() {
        let mut env = GrubEnv::new();
        env.set("filler", &"x".repeat(900)).unwrap();
        assert!(env.to_bytes().is_ok(), "the filler alone fits");
        let files = fixtures::files(fixtures::saved_entry_cfg(), Some(env));
        let (menu, view) = fixtures::load(&files, None);
        let entry = target::resolve(&view, "img-centos-recovery").unwrap();
        let err = plan_switch(&files, &menu, &view, entry, How::Always).unwrap_err();
        assert_eq!(code_of(&err), Code::Config);
    }
}
