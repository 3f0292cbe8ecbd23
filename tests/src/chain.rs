//! Booting one disk several times in a row, as a node reboots: every boot must come up
//! in the image the test expects and its run script must finish, and a failure names
//! which boot of the chain went wrong, what came up instead and where its console log is.
//!
//! What a run script wants the test to read it prints with the [`SHOW`] shell function
//! (`show NAME COMMAND...`), and the test reads it back with [`shown`]: every line of the
//! command's output is prefixed with `NAME| `, so kernel messages that land on the same
//! console between them are left out.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::qemu::{self, BootOutcome, Firmware};

/// How many console lines a failure message quotes.
const TAIL_LINES: usize = 30;

/// What one boot of a chain must bring up, and what led to it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The fixture image name that must come up.
    pub image: String,
    /// Why this image: "first boot", "after alpha ran `bootctl switch beta`".
    pub context: String,
}

impl Expect {
    /// The first boot of a freshly deployed disk brings up `image`.
    pub fn first(image: &str) -> Self {
        Expect {
            image: image.to_owned(),
            context: "first boot".to_owned(),
        }
    }

    /// `image` comes up because of `what` happened in the boot before ("alpha ran
    /// `bootctl switch beta`").
    pub fn after(image: &str, what: &str) -> Self {
        Expect {
            image: image.to_owned(),
            context: format!("after {what}"),
        }
    }
}

/// Boots `disk` once per entry of `expected`, in order, each boot limited to `timeout`
/// and its console kept at `tests/artifacts/<name>-<n>.log`. Panics at the first boot
/// that does not come up in its image or whose run script does not exit 0 (later boots
/// would prove nothing); returns every boot's outcome otherwise.
#[track_caller]
pub fn boot_chain(
    disk: &Path,
    firmware: Firmware,
    timeout: Duration,
    name: &str,
    expected: &[Expect],
) -> Vec<BootOutcome> {
    let total = expected.len();
    let mut outcomes = Vec::with_capacity(total);
    for (i, expect) in expected.iter().enumerate() {
        let n = i + 1;
        let outcome = qemu::boot(disk, firmware, timeout, &format!("{name}-{n}"));
        check_or_panic(&outcome, expect, &format!("{name}: boot {n} of {total}"));
        outcomes.push(outcome);
    }
    outcomes
}

/// Boots `disks` once (BIOS boots the first), its console kept at
/// `tests/artifacts/<name>.log`; panics, quoting the last console lines, unless `expect`
/// came up and its run script exited 0.
#[track_caller]
pub fn boot_disks_expecting(
    disks: &[&Path],
    firmware: Firmware,
    timeout: Duration,
    name: &str,
    expect: &Expect,
) -> BootOutcome {
    let outcome = qemu::boot_disks(disks, firmware, timeout, name);
    check_or_panic(&outcome, expect, name);
    outcome
}

/// Panics unless `outcome` is the boot `expect` describes, naming `which` boot it was and
/// quoting the last console lines.
#[track_caller]
fn check_or_panic(outcome: &BootOutcome, expect: &Expect, which: &str) {
    if let Err(problem) = check(outcome, expect) {
        panic!(
            "{which} ({}): {problem}; log: {}\n--- last console lines ---\n{}",
            expect.context,
            outcome.log.display(),
            tail(&outcome.serial, TAIL_LINES)
        );
    }
}

/// Whether `outcome` is the boot `expect` describes: the image came up and its run
/// script exited 0. The error says what happened instead.
pub fn check(outcome: &BootOutcome, expect: &Expect) -> Result<(), String> {
    let wanted = &expect.image;
    let elapsed = outcome.elapsed.as_secs();
    let stopped = if outcome.timed_out {
        format!("QEMU timed out after {elapsed} s")
    } else {
        format!("the machine stopped after {elapsed} s")
    };
    match (&outcome.booted, outcome.run_rc) {
        (Some(image), _) if image != wanted => Err(format!("expected {wanted}, came up: {image}")),
        (None, _) => Err(format!("expected {wanted}, nothing came up: {stopped}")),
        (Some(_), Some(0)) => Ok(()),
        (Some(_), Some(rc)) => Err(format!(
            "{wanted} came up but its run script exited {rc}\n--- run script output ---\n{}",
            outcome.run_output
        )),
        (Some(_), None) => Err(format!(
            "{wanted} came up but its run script did not finish: {stopped}\n--- run script output ---\n{}",
            outcome.run_output
        )),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A busybox `sh` function for run scripts: `show NAME COMMAND...` runs COMMAND, prints
/// each line of its standard output as `NAME| line` and then `NAME exit=STATUS`, and
/// returns COMMAND's status (its standard error goes to the console unprefixed).
pub const SHOW: &str = r#"show() {
    show_name=$1
    shift
    show_rc=0
    "$@" >/tmp/show.out || show_rc=$?
    sed "s/^/$show_name| /" /tmp/show.out
    echo "$show_name exit=$show_rc"
    return $show_rc
}
"#;

/// The device and type of the filesystem at `mount_point` in a `cat /proc/mounts`.
pub fn mounted<'a>(mounts: &'a str, mount_point: &str) -> Option<(&'a str, &'a str)> {
    mounts.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        (words.get(1) == Some(&mount_point)).then(|| (words[0], words[2]))
    })
}

/// What a run script printed with `show NAME ...` (see [`SHOW`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// `NAME`, for messages.
    pub name: String,
    /// The command's standard output.
    pub stdout: String,
    /// The command's exit status, if its `NAME exit=` line was printed.
    pub rc: Option<i32>,
}

impl Shown {
    /// Panics unless the command exited 0; returns its output parsed as JSON.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.rc,
            Some(0),
            "`show {}` in the guest: the command exited {:?}\n{}",
            self.name,
            self.rc,
            self.stdout
        );
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`show {}` in the guest printed invalid JSON ({e}):\n{}",
                self.name, self.stdout
            )
        })
    }
}

/// The output of `show NAME ...` in `console` (a run script's output or a whole log).
pub fn shown(console: &str, name: &str) -> Shown {
    let prefix = format!("{name}|");
    let exit = format!("{name} exit=");
    let mut lines = Vec::new();
    let mut rc = None;
    for line in console.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            lines.push(rest.strip_prefix(' ').unwrap_or(rest));
        } else if let Some(status) = line.strip_prefix(&exit) {
            rc = status.trim().parse().ok();
        }
    }
    let mut stdout = lines.join("\n");
    if !lines.is_empty() {
        stdout.push('\n');
    }
    Shown {
        name: name.to_owned(),
        stdout,
        rc,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::{check, shown, tail, Expect, SHOW};
    use crate::qemu::BootOutcome;

    fn outcome(booted: Option<&str>, run_rc: Option<i32>, timed_out: bool) -> BootOutcome {
        BootOutcome {
            booted: booted.map(str::to_owned),
            run_output: "switched\n".to_owned(),
            run_rc,
            serial: String::new(),
            log: PathBuf::from("tests/artifacts/x-1.log"),
            elapsed: Duration::from_millis(42_300),
            timed_out,
        }
    }

    #[test]
    fn a_boot_into_the_expected_image_whose_script_succeeded_passes() {
        let expect = Expect::first("alpha");
        assert_eq!(
            check(&outcome(Some("alpha"), Some(0), false), &expect),
            Ok(())
        );
    }

    #[test]
    fn each_failure_says_what_came_up_instead() {
        let expect = Expect::after("gamma", "beta ran `bootctl switch gamma`");
        assert_eq!(expect.context, "after beta ran `bootctl switch gamma`");
        let cases = [
            (
                Some("beta"),
                Some(0),
                false,
                "expected gamma, came up: beta",
            ),
            (
                None,
                None,
                true,
                "expected gamma, nothing came up: QEMU timed out after 42 s",
            ),
            (
                None,
                None,
                false,
                "expected gamma, nothing came up: the machine stopped after 42 s",
            ),
            (
                Some("gamma"),
                Some(4),
                false,
                "gamma came up but its run script exited 4\n--- run script output ---\nswitched\n",
            ),
            (
                Some("gamma"),
                None,
                true,
                "gamma came up but its run script did not finish: QEMU timed out after 42 s\n\
                 --- run script output ---\nswitched\n",
            ),
        ];
        for (booted, rc, timed_out, message) in cases {
            assert_eq!(
                check(&outcome(booted, rc, timed_out), &expect),
                Err(message.to_owned())
            );
        }
    }

    #[test]
    fn shown_output_is_read_back_without_the_console_noise_between() {
        let console = "list| {\n\
            [   12.5] random: crng init done\n\
            list|   \"a\": 1\n\
            list| }\n\
            list exit=0\n\
            status| \n\
            status exit=6\n";
        let list = shown(console, "list");
        assert_eq!(list.stdout, "{\n  \"a\": 1\n}\n");
        assert_eq!(list.rc, Some(0));
        assert_eq!(list.json(), serde_json::json!({"a": 1}));
        let status = shown(console, "status");
        assert_eq!((status.stdout.as_str(), status.rc), ("\n", Some(6)));
        let missing = shown(console, "switch");
        assert_eq!((missing.stdout.as_str(), missing.rc), ("", None));
    }

    #[test]
    fn the_show_function_runs_in_busybox_sh_and_stops_a_failing_script() {
        crate::tools::require_tools(&["busybox"]);
        let script = format!(
            "set -e\n{SHOW}show list printf 'one\\n\\ntwo\\n'\nshow failing sh -c 'echo half; exit 3'\necho not reached\n"
        );
        let out = crate::cmd::output_with_timeout(
            std::process::Command::new("busybox").args(["sh", "-c", &script]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.and_then(|s| s.code()), Some(3), "{out:?}");
        assert!(!out.stdout.contains("not reached"), "{}", out.stdout);
        let list = shown(&out.stdout, "list");
        assert_eq!((list.stdout.as_str(), list.rc), ("one\n\ntwo\n", Some(0)));
        let failing = shown(&out.stdout, "failing");
        assert_eq!((failing.stdout.as_str(), failing.rc), ("half\n", Some(3)));
    }

    #[test]
    #[should_panic(expected = "`show status` in the guest: the command exited Some(6)")]
    fn json_of_a_failed_command_panics_naming_it() {
        shown("status exit=6\n", "status").json();
    }

    #[test]
    fn a_failure_quotes_the_last_console_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a");
    }
}
