//! The shell completion scripts in `packaging/completions/`, which the packages install.
//!
//! Both programs complete through clap_complete's `CompleteEnv`: the script a shell loads
//! only registers a function that runs the program again at every TAB, with
//! `BOOTCTL_COMPLETE` (`DEPLOYER_COMPLETE`) set and the words typed so far, and the program
//! answers (for bootctl, `bootctl switch` offers the image names of the multiboot partition).
//! The scripts are that registration, as the installed program prints it
//! (`BOOTCTL_COMPLETE=bash /usr/sbin/bootctl`), plus what fits it to the installed system, generated here from the built programs so that a test can compare them
//! with the committed files.
//!
//! bootctl shares its name with systemd's `/usr/bin/bootctl`, whose completions bash
//! (`systemd-boot`), zsh (`systemd`) and fish (`fish-common`) install under the name
//! `bootctl`. Ours never take those file names and complete `/usr/sbin/bootctl`; a bare
//! `bootctl` is completed as ours where `PATH` finds ours (root's `PATH` lists `/usr/sbin`
//! before `/usr/bin`), and left to systemd's completion where it finds systemd's:
//!
//! | shell | installed as | how |
//! |---|---|---|
//! | bash | `/etc/bash_completion.d/multiboot-bootctl` | read at start-up: bash-completion's lazy loading goes by command name, which cannot tell the two apart |
//! | zsh | `_multiboot_bootctl` in zsh's vendor directory | `#compdef -p`: tried before `_bootctl`, for the full path and for a bare name `PATH` resolves to it |
//! | fish | `vendor_completions.d/bootctl.fish` | `complete --path`, which fish also applies to a bare name that resolves to the path; fish's own `bootctl.fish`, which this file shadows, is loaded where `PATH` finds another bootctl |

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::cmd;

/// Where the installed bootctl lives; the scripts call it.
pub const BOOTCTL_PATH: &str = "/usr/sbin/bootctl";
/// Where the installed deployer lives; the scripts call it.
pub const DEPLOYER_PATH: &str = "/usr/sbin/deployer";
/// The variable that asks bootctl for completions.
const BOOTCTL_VAR: &str = "BOOTCTL_COMPLETE";
/// The variable that asks the deployer for completions.
const DEPLOYER_VAR: &str = "DEPLOYER_COMPLETE";

/// One completion script: its path in the repository and its text.
pub struct Script {
    /// Relative to the workspace root, such as `packaging/completions/bash/deployer`.
    pub path: &'static str,
    pub text: String,
}

/// The registration `program` prints for `shell` when it is called as `called_as` with `var`
/// set to the shell's name.
pub fn registration(program: &Path, called_as: &str, var: &str, shell: &str) -> String {
    cmd::run(
        Command::new(program)
            .arg0(called_as)
            .env(var, shell)
            .current_dir("/"),
    )
}

/// The comment block at the top of a script: what it is, where it goes, how to regenerate it.
fn header(what: &str, installed_as: &str, update: &str) -> String {
    format!(
        "# {what}\n\
         # Installed as {installed_as}.\n\
         # Generated from the program; do not edit, regenerate:\n\
         #     {update}\n"
    )
}

/// bootctl's scripts, from the built bootctl at `program`.
pub fn bootctl_scripts(program: &Path) -> Vec<Script> {
    const UPDATE: &str = "BOOTCTL_UPDATE_COMPLETIONS=1 cargo test -p bootctl --test completions";
    let bash = format!(
        "{}# bash-completion reads this file at start-up, so that it completes the full path, which\n\
         # its loading by command name cannot tell from systemd's bootctl.\n\
         {}\
         # A bare `bootctl` is completed as this one where PATH finds this one first (root's PATH\n\
         # lists /usr/sbin before /usr/bin), and left to systemd's completion elsewhere.\n\
         if [[ $(type -P bootctl) == {BOOTCTL_PATH} ]]; then\n    \
             eval \"$(complete -p {BOOTCTL_PATH}) bootctl\"\n\
         fi\n",
        header(
            "bash completion for /usr/sbin/bootctl, the multi-image bootctl (bootctl(8)).",
            "/etc/bash_completion.d/multiboot-bootctl",
            UPDATE
        ),
        registration(program, BOOTCTL_PATH, BOOTCTL_VAR, "bash").trim_start()
    );
    let zsh_registration = registration(program, BOOTCTL_PATH, BOOTCTL_VAR, "zsh");
    let zsh = format!(
        "#compdef -p {BOOTCTL_PATH}\n\
         {}# -p: tried before the completion of the command's name (systemd's _bootctl), for the\n\
         # full path and for a bare `bootctl` that PATH resolves to it; _compskip=all then keeps\n\
         # _bootctl from adding systemd's subcommands. (The #compdef line below is only a\n\
         # comment here: zsh reads the first line.)\n\
         {}\n\
         _compskip=all\n\
         _clap_dynamic_completer_bootctl \"$@\"\n",
        header(
            "zsh completion for /usr/sbin/bootctl, the multi-image bootctl (bootctl(8)).",
            "_multiboot_bootctl in zsh's vendor completion directory",
            UPDATE
        ),
        zsh_registration.trim_end()
    );
    let fish_registration = registration(program, BOOTCTL_PATH, BOOTCTL_VAR, "fish");
    let by_name = format!("--command {BOOTCTL_PATH} ");
    assert_eq!(
        fish_registration.matches(&by_name).count(),
        1,
        "clap_complete's fish registration no longer names the command with {by_name:?}:\n\
         {fish_registration}"
    );
    let fish = format!(
        "{}# complete --path: for /usr/sbin/bootctl and for a bare `bootctl` that PATH resolves to\n\
         # it, not for systemd's /usr/bin/bootctl.\n\
         {}\
         # This file shadows fish's own bootctl.fish, the completion of systemd's bootctl: where\n\
         # PATH finds another bootctl, load that one as well.\n\
         set -l bootctl_on_path (command -v bootctl)\n\
         if test \"$bootctl_on_path\" != {BOOTCTL_PATH}; and test -f $__fish_data_dir/completions/bootctl.fish\n    \
             source $__fish_data_dir/completions/bootctl.fish\n\
         end\n",
        header(
            "fish completion for /usr/sbin/bootctl, the multi-image bootctl (bootctl(8)).",
            "vendor_completions.d/bootctl.fish",
            UPDATE
        ),
        fish_registration.replace(&by_name, &format!("--path {BOOTCTL_PATH} "))
    );
    vec![
        Script {
            path: "packaging/completions/bash/multiboot-bootctl",
            text: bash,
        },
        Script {
            path: "packaging/completions/zsh/_multiboot_bootctl",
            text: zsh,
        },
        Script {
            path: "packaging/completions/fish/bootctl.fish",
            text: fish,
        },
    ]
}

/// The deployer's scripts, from the built deployer at `program`.
pub fn deployer_scripts(program: &Path) -> Vec<Script> {
    const UPDATE: &str = "DEPLOYER_UPDATE_COMPLETIONS=1 cargo test -p deployer --test completions";
    let what = |shell: &str| format!("{shell} completion for deployer(8).");
    let bash = format!(
        "{}{}",
        header(
            &what("bash"),
            "/usr/share/bash-completion/completions/deployer",
            UPDATE
        ),
        registration(program, DEPLOYER_PATH, DEPLOYER_VAR, "bash").trim_start()
    );
    let zsh_registration = registration(program, DEPLOYER_PATH, DEPLOYER_VAR, "zsh");
    let (compdef_line, zsh_body) = zsh_registration
        .split_once('\n')
        .expect("the zsh registration has more than one line");
    let zsh = format!(
        "{compdef_line}\n{}{}\n_clap_dynamic_completer_deployer \"$@\"\n",
        header(
            &what("zsh"),
            "_deployer in zsh's vendor completion directory",
            UPDATE
        ),
        zsh_body.trim_end()
    );
    let fish = format!(
        "{}{}",
        header(&what("fish"), "vendor_completions.d/deployer.fish", UPDATE),
        registration(program, DEPLOYER_PATH, DEPLOYER_VAR, "fish")
    );
    vec![
        Script {
            path: "packaging/completions/bash/deployer",
            text: bash,
        },
        Script {
            path: "packaging/completions/zsh/_deployer",
            text: zsh,
        },
        Script {
            path: "packaging/completions/fish/deployer.fish",
            text: fish,
        },
    ]
}

/// `script` with the installed program's path `installed` replaced by `program`, to try the
/// script with a program that is not installed.
pub fn pointed_at(script: &str, installed: &str, program: &Path) -> String {
    script.replace(installed, &program.display().to_string())
}

/// Writes a multiboot tree into `dir` for `--boot-dir`: a grub.cfg with two entries and the
/// boot-info.json that names their images `centos-7.1.1503` (provision name `centos`) and
/// `ubuntu`.
pub fn write_boot_dir(dir: &Path) {
    const CENTOS_ROOT: &str = "7d29825c-7552-4255-83cf-17102b7f7f86";
    const UBUNTU_ROOT: &str = "8621a03f-e0bb-4b7b-8e1f-7555983aa92f";
    let grub = dir.join("boot/grub");
    std::fs::create_dir_all(&grub)
        .unwrap_or_else(|err| panic!("creating {}: {err}", grub.display()));
    let grub_cfg = format!(
        "set default=\"0\"\n\
         menuentry 'CentOS Linux 7 (Core)' --id multiboot-centos {{\n\
         \tlinux /boot/vmlinuz root=UUID={CENTOS_ROOT} ro\n}}\n\
         menuentry 'Ubuntu 14.04.3 LTS' --id multiboot-ubuntu {{\n\
         \tlinux /boot/vmlinuz root=UUID={UBUNTU_ROOT} ro\n}}\n"
    );
    let boot_info = serde_json::json!({
        "elements": [
            {"grub_id": 0, "image_name": "centos-7.1.1503", "os_id": "centos",
             "image_uuid": "2a86b00d-cfa4-49d9-a008-13c7940ed02d",
             "boot_name": "CentOS Linux 7 (Core)", "root_uuid": CENTOS_ROOT, "name": "centos"},
            {"grub_id": 1, "image_name": "ubuntu", "os_id": "ubuntu",
             "image_uuid": "157636d8-62ad-499d-aecc-2ea4917ee396",
             "boot_name": "Ubuntu 14.04.3 LTS", "root_uuid": UBUNTU_ROOT, "name": "ubuntu"}
        ],
        "current_element": 0,
        "multiboot_partition": "3ee57890-41c9-4ac3-b3b8-488c368cb0a6"
    });
    crate::fixture::write(&grub.join("grub.cfg"), grub_cfg.as_bytes(), 0o644);
    crate::fixture::write(
        &dir.join("boot-info.json"),
        format!("{boot_info:#}\n").as_bytes(),
        0o644,
    );
}

/// The shell `name`, or a panic naming scripts/setup.
fn shell(name: &str) -> std::path::PathBuf {
    crate::tools::find_tool(name)
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup (see README)"))
}

/// What bash offers for the last of `words` (the word being completed, maybe empty) after
/// sourcing `script`, with `path` as PATH: the function bash would call for `words[0]`
/// (registered for it, or for its last path component), called as bash calls it. `None`
/// when no completion is registered for `words[0]`.
pub fn bash_candidates(script: &Path, words: &[&str], path: &str) -> Option<Vec<String>> {
    const DRIVER: &str = r#"
source "$1"
cword=$2
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$cword
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
spec=$(complete -p "$1" 2>/dev/null || complete -p "${1##*/}" 2>/dev/null) || exit 3
[[ $spec =~ -F\ ([^ ]+) ]] || exit 4
"${BASH_REMATCH[1]}" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let output = cmd::output(
        Command::new(shell("bash"))
            .args(["--norc", "--noprofile", "-c", DRIVER, "bash"])
            .arg(script)
            .arg((words.len() - 1).to_string())
            .args(words)
            .env("PATH", path),
    );
    match output.status.code() {
        Some(0) => Some(lines(&output.stdout)),
        Some(3) => None,
        _ => panic!(
            "bash completion of {words:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// What fish offers for `line` (`complete -C`: the last word is being completed) with the
/// scripts of `dir` first in its completion path, as a vendor directory is, and `path` as
/// PATH: the values, without their descriptions.
pub fn fish_candidates(dir: &Path, line: &str, path: &str) -> Vec<String> {
    let out = cmd::run(
        Command::new(shell("fish"))
            .args(["--no-config", "-c"])
            .arg("set -p fish_complete_path $argv[1]; complete -C $argv[2]")
            .arg(dir)
            .arg(line)
            .env("PATH", path),
    );
    out.lines()
        .map(|line| line.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

/// What zsh lists for `line` (the last word is being completed, maybe empty) in an
/// interactive zsh, run in a pseudo-terminal (zsh's zpty module), whose `compinit` found the
/// scripts of `dir` first in `fpath`, with `path` as PATH: zle's list of choices (Ctrl-D), one
/// entry per value, descriptions left out. The keys are sent once zle shows its prompt: typed
/// earlier, the terminal's line discipline would take Ctrl-D and Ctrl-U for itself. Panics,
/// showing the terminal, when zsh lists nothing.
pub fn zsh_candidates(dir: &Path, line: &str, path: &str) -> Vec<String> {
    const DRIVER: &str = r#"
zmodload zsh/zpty
export PATH=$2
zpty -b z 'TERM=dumb COLUMNS=400 LINES=200 zsh -f -i'
zpty -w z "PS1='%% '; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D; print RE''ADY"
zpty -r -m z out '*READY*% *'
zpty -w -n z "$3"$'\C-d'
zpty -w -n z $'\C-u'
zpty -w z "print DO''NE"
zpty -r -m z out '*DONE*'
print -r -- "$out"
zpty -d z
"#;
    let run = cmd::output_with_timeout(
        Command::new(shell("zsh"))
            .args(["-f", "-c", DRIVER, "zsh"])
            .arg(dir)
            .args([path, line]),
        std::time::Duration::from_secs(60),
    );
    assert!(
        run.status.is_some_and(|status| status.success()),
        "zsh completion of {line:?} failed or timed out\n{}",
        run.stderr
    );
    let listed = zsh_listing(&run.stdout, line);
    assert!(
        !listed.is_empty(),
        "zsh listed nothing for {line:?}; the terminal showed:\n{:?}",
        run.stdout
    );
    listed
}

/// The values of the list zle printed below the echoed `line`, up to the next prompt (`% `).
fn zsh_listing(terminal: &str, line: &str) -> Vec<String> {
    let text = terminal
        .replace("\x1b[?2004h", "")
        .replace("\x1b[?2004l", "")
        .replace('\r', "\n");
    text.lines()
        .skip_while(|echoed| !echoed.trim_end().ends_with(line.trim_end()))
        .skip(1)
        .take_while(|listed| !listed.starts_with("% "))
        .flat_map(|listed| {
            let values = listed
                .split_once(" -- ")
                .map_or(listed, |(values, _)| values);
            values
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}
