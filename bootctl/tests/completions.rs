//! bootctl's shell completions (`packaging/completions/`, see `e2e::completion`): the
//! committed scripts are what the built bootctl generates, and bash, zsh and fish, loading
//! them, complete `bootctl switch` with the image names of a multiboot tree.
//!
//! After a change to bootctl's command line or to clap_complete, regenerate the scripts and
//! commit them:
//!
//! ```text
//! BOOTCTL_UPDATE_COMPLETIONS=1 cargo test -p bootctl --test completions
//! ```
//!
//! The scripts call the installed `/usr/sbin/bootctl`; here they are pointed at the bootctl
//! this test built, and a bare `bootctl` means that one when PATH finds it first.

use std::path::Path;

use e2e::completion::{
    bash_candidates, bootctl_scripts, fish_candidates, pointed_at, write_boot_dir, zsh_candidates,
    Script, BOOTCTL_PATH,
};
use e2e::manpage::{check_file_current, read};
use e2e::tmp::TempDir;

const BOOTCTL: &str = env!("CARGO_BIN_EXE_bootctl");
/// PATH without the built bootctl (and without any other bootctl on this host).
const PATH_WITHOUT_BOOTCTL: &str = "/usr/bin:/bin";
/// The image names of `write_boot_dir`'s tree, as `bootctl switch` offers them.
const IMAGE_NAMES: [&str; 3] = ["centos-7.1.1503", "centos", "ubuntu"];

fn bootctl() -> &'static Path {
    Path::new(BOOTCTL)
}

/// PATH where `bootctl` is the built one.
fn path_with_bootctl() -> String {
    let dir = bootctl().parent().expect("the binary is in a directory");
    format!("{}:{PATH_WITHOUT_BOOTCTL}", dir.display())
}

/// The committed script at `path`, pointed at the built bootctl, written into `dir` as `name`.
fn install_script(dir: &Path, path: &str, name: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    let text = pointed_at(&read(path), BOOTCTL_PATH, bootctl());
    e2e::fixture::write(&file, text.as_bytes(), 0o644);
    file
}

#[test]
fn completion_scripts_are_current() {
    for Script { path, text } in bootctl_scripts(bootctl()) {
        check_file_current(
            path,
            &text,
            "BOOTCTL_UPDATE_COMPLETIONS",
            "cargo test -p bootctl --test completions",
        );
    }
}

#[test]
fn bash_completes_image_names_and_leaves_systemds_bootctl_alone() {
    let tmp = TempDir::new("bash-completion");
    write_boot_dir(&tmp.join("tree"));
    let script = install_script(
        tmp.path(),
        "packaging/completions/bash/multiboot-bootctl",
        "multiboot-bootctl",
    );
    let tree = tmp.join("tree").display().to_string();
    let switch = [BOOTCTL, "--boot-dir", &tree, "switch", ""];
    let offered = bash_candidates(&script, &switch, PATH_WITHOUT_BOOTCTL)
        .expect("the full path has a completion");
    let (names, options) = offered.split_at(IMAGE_NAMES.len().min(offered.len()));
    assert!(
        names == IMAGE_NAMES && options.iter().all(|option| option.starts_with("--")),
        "the full path completes the image names, then the options: {offered:?}"
    );
    let prefix = [BOOTCTL, "--boot-dir", &tree, "switch", "ub"];
    assert_eq!(
        bash_candidates(&script, &prefix, PATH_WITHOUT_BOOTCTL),
        Some(vec!["ubuntu".to_owned()])
    );
    let subcommand = [BOOTCTL, "sw"];
    assert_eq!(
        bash_candidates(&script, &subcommand, PATH_WITHOUT_BOOTCTL),
        Some(vec!["switch".to_owned()])
    );
    let bare = ["bootctl", "--boot-dir", &tree, "switch", "c"];
    assert_eq!(
        bash_candidates(&script, &bare, &path_with_bootctl()),
        Some(vec!["centos-7.1.1503".to_owned(), "centos".to_owned()]),
        "a bare bootctl that PATH finds first is completed as this one"
    );
    assert_eq!(
        bash_candidates(&script, &bare, PATH_WITHOUT_BOOTCTL),
        None,
        "a bare bootctl that is not this one is left to its own completion"
    );
}

#[test]
fn fish_completes_image_names() {
    let tmp = TempDir::new("fish-completion");
    write_boot_dir(&tmp.join("tree"));
    install_script(
        tmp.path(),
        "packaging/completions/fish/bootctl.fish",
        "bootctl.fish",
    );
    let tree = tmp.join("tree").display().to_string();
    assert_eq!(
        fish_candidates(
            tmp.path(),
            &format!("{BOOTCTL} --boot-dir {tree} switch c"),
            &path_with_bootctl()
        ),
        ["centos-7.1.1503", "centos"]
    );
    assert_eq!(
        fish_candidates(
            tmp.path(),
            &format!("bootctl --boot-dir={tree} switch u"),
            &path_with_bootctl()
        ),
        ["ubuntu"],
        "a bare bootctl that PATH finds is completed as this one"
    );
}

#[test]
fn zsh_completes_image_names_instead_of_other_bootctl_completions() {
    let tmp = TempDir::new("zsh-completion");
    write_boot_dir(&tmp.join("tree"));
    install_script(
        tmp.path(),
        "packaging/completions/zsh/_multiboot_bootctl",
        "_multiboot_bootctl",
    );
    let tree = tmp.join("tree").display().to_string();
    let offered = zsh_candidates(
        tmp.path(),
        &format!("{BOOTCTL} --boot-dir {tree} switch "),
        PATH_WITHOUT_BOOTCTL,
    );
    for name in IMAGE_NAMES {
        assert!(
            offered.iter().any(|value| value == name),
            "{name} in {offered:?}"
        );
    }
    // Where PATH finds this bootctl, a bare `bootctl` is completed by this script alone,
    // also where systemd's _bootctl is installed as well.
    let offered = zsh_candidates(
        tmp.path(),
        &format!("bootctl --boot-dir {tree} switch c"),
        &path_with_bootctl(),
    );
    assert_eq!(offered, ["centos-7.1.1503", "centos"]);
}
