//! The deployer's shell completions (`packaging/completions/`, see `e2e::completion`): the
//! committed scripts are what the built deployer generates, and bash, zsh and fish, loading
//! them, complete the deployer's subcommands, options and values.
//!
//! After a change to the deployer's command line or to clap_complete, regenerate the scripts
//! and commit them:
//!
//! ```text
//! DEPLOYER_UPDATE_COMPLETIONS=1 cargo test -p deployer --test completions
//! ```
//!
//! The scripts call the installed `/usr/sbin/deployer`; here they are pointed at the deployer
//! this test built.

use std::path::{Path, PathBuf};

use e2e::completion::{
    bash_candidates, deployer_scripts, fish_candidates, pointed_at, zsh_candidates, Script,
    DEPLOYER_PATH,
};
use e2e::manpage::{check_file_current, read};
use e2e::tmp::TempDir;

const DEPLOYER: &str = env!("CARGO_BIN_EXE_deployer");
const PATH: &str = "/usr/bin:/bin";

fn deployer() -> &'static Path {
    Path::new(DEPLOYER)
}

/// The committed script at `path`, pointed at the built deployer, written into `dir` as
/// `name`.
fn install_script(dir: &Path, path: &str, name: &str) -> PathBuf {
    let file = dir.join(name);
    let text = pointed_at(&read(path), DEPLOYER_PATH, deployer());
    e2e::fixture::write(&file, text.as_bytes(), 0o644);
    file
}

#[test]
fn completion_scripts_are_current() {
    for Script { path, text } in deployer_scripts(deployer()) {
        check_file_current(
            path,
            &text,
            "DEPLOYER_UPDATE_COMPLETIONS",
            "cargo test -p deployer --test completions",
        );
    }
}

#[test]
fn bash_completes_subcommands_and_values() {
    let tmp = TempDir::new("bash-completion");
    let script = install_script(
        tmp.path(),
        "packaging/completions/bash/deployer",
        "deployer",
    );
    assert_eq!(
        bash_candidates(&script, &[DEPLOYER, "dep"], PATH),
        Some(vec!["deploy".to_owned()])
    );
    assert_eq!(
        bash_candidates(
            &script,
            &[DEPLOYER, "deploy", "--bootloader-config", ""],
            PATH
        ),
        Some(vec!["generated".to_owned(), "os-prober".to_owned()])
    );
    let config = tmp.join("provision.json");
    e2e::fixture::write(&config, b"{}", 0o644);
    let prefix = tmp.join("prov").display().to_string();
    assert_eq!(
        bash_candidates(&script, &[DEPLOYER, "validate", &prefix], PATH),
        Some(vec![config.display().to_string()]),
        "the config is a path"
    );
}

#[test]
fn fish_and_zsh_complete_subcommands_and_values() {
    let tmp = TempDir::new("shell-completion");
    install_script(
        tmp.path(),
        "packaging/completions/fish/deployer.fish",
        "deployer.fish",
    );
    install_script(
        tmp.path(),
        "packaging/completions/zsh/_deployer",
        "_deployer",
    );
    let dir = deployer().parent().expect("the binary is in a directory");
    let path = format!("{}:{PATH}", dir.display());
    assert_eq!(
        fish_candidates(tmp.path(), "deployer val", &path),
        ["validate"]
    );
    assert_eq!(
        zsh_candidates(tmp.path(), "deployer deploy --bootloader-config ", &path),
        ["generated", "os-prober"]
    );
    let image = tmp.join("node.img");
    e2e::fixture::write(&image, b"", 0o644);
    let typed = format!("vda={}", tmp.join("node.i").display());
    assert_eq!(
        fish_candidates(tmp.path(), &format!("deployer plan --disk {typed}"), &path),
        [format!("vda={}", image.display())],
        "--disk NAME=PATH completes PATH as a path"
    );
}
