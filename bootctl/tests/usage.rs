//! The new verbs' bad command lines and misuse: one line naming the fault, the documented
//! exit status, nothing written (`--boot-dir` trees whose files are compared before and
//! after).

use std::process::Command;

use e2e::completion::write_boot_dir;
use e2e::tmp::TempDir;

const BOOTCTL: &str = env!("CARGO_BIN_EXE_bootctl");

/// Runs bootctl with `args`; its exit status and standard error.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BOOTCTL)
        .args(args)
        .output()
        .expect("running bootctl");
    (
        out.status.code().expect("an exit status"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshot(dir: &TempDir) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> =
        ["boot/grub/grub.cfg", "boot/grub/grubenv", "boot-info.json"]
            .iter()
            .filter_map(|rel| {
                std::fs::read(dir.join(rel))
                    .ok()
                    .map(|b| ((*rel).to_owned(), b))
            })
            .collect();
    files.sort();
    files
}

#[test]
fn bad_tries_and_lone_options_are_usage_errors() {
    for (args, want) in [
        (&["switch", "--try=0", "x"][..], "0 is not in 1..=9"),
        (&["switch", "--try=10", "x"], "10 is not in 1..=9"),
        (&["switch", "--try", "--once", "x"], "cannot be used with"),
        (&["reboot", "--once"], "--once and --try need a TARGET"),
        (&["reboot", "--try=2"], "--once and --try need a TARGET"),
        (&["health", "--timeout", "soon"], "invalid value 'soon'"),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

/// On a tree the running system does not boot from, mark-good and mark-bad name the root
/// that has no entry and change nothing; --try on a config that cannot count down is
/// refused.
#[test]
fn marks_off_the_menu_and_tries_on_a_plain_config_change_nothing() {
    let dir = TempDir::new("usage-marks");
    write_boot_dir(dir.path());
    let before = snapshot(&dir);
    let tree = dir.path().to_str().expect("UTF-8 path");
    for verb in ["mark-good", "mark-bad"] {
        let (code, stderr) = run(&["--boot-dir", tree, verb]);
        assert_eq!(code, 3, "{verb}: {stderr}");
        assert!(
            stderr.contains("boots from no entry of grub.cfg") && stderr.lines().count() == 1,
            "{verb}: {stderr}"
        );
    }
    let (code, stderr) = run(&["--boot-dir", tree, "switch", "--try", "1"]);
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("cannot try an entry"), "{stderr}");
    assert_eq!(snapshot(&dir), before, "nothing was written");
}
