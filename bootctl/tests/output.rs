//! What bootctl prints for people, from the built binary: `list` fits 80 columns through a
//! pipe and on an 80-column terminal (a pty made by util-linux `script`), bootctl never
//! writes escape sequences (it has no colours: not on a terminal, not with `NO_COLOR`), and
//! `-q` leaves only errors and what was asked for.

use std::path::Path;
use std::process::{Command, Output};

use e2e::completion::write_boot_dir;
use e2e::tmp::TempDir;
use e2e::tools::require_tools;

const BOOTCTL: &str = env!("CARGO_BIN_EXE_bootctl");

/// A multiboot tree whose entries have long titles, as os-prober writes them.
fn long_titles_tree(dir: &Path) {
    write_boot_dir(dir);
    let cfg = dir.join("boot/grub/grub.cfg");
    let text = std::fs::read_to_string(&cfg)
        .expect("reading grub.cfg")
        .replace(
            "'Ubuntu 14.04.3 LTS'",
            "'Ubuntu 14.04.3 LTS, with Linux 3.13.0-170-generic (recovery mode) (on /dev/sda5)'",
        );
    e2e::fixture::write(&cfg, text.as_bytes(), 0o644);
}

fn bootctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(BOOTCTL)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running bootctl");
    assert!(
        out.status.success(),
        "bootctl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `command` (a shell command line) on a pty of `columns` columns with util-linux
/// `script`; returns what the pty showed, without the carriage returns.
fn on_terminal(command: &str, columns: u16, env: &[(&str, &str)]) -> String {
    require_tools(&["script"]);
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("stty cols {columns} rows 40; {command}"))
        .arg("/dev/null")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .output()
        .expect("running script");
    assert!(out.status.success(), "`{command}` on a pty: {out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn assert_fits(text: &str, columns: usize) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= columns,
            "wider than {columns} columns: {line:?}\n{text}"
        );
    }
}

fn assert_plain(text: &str) {
    assert!(!text.contains('\x1b'), "an escape sequence: {text:?}");
}

#[test]
fn list_fits_80_columns_through_a_pipe_and_on_a_terminal() {
    let dir = TempDir::new("output-list");
    long_titles_tree(dir.path());
    let tree = dir.path().to_str().expect("UTF-8 path");
    let piped = bootctl(&["--boot-dir", tree, "list"], &[]);
    let table = String::from_utf8(piped.stdout).expect("UTF-8");
    assert_fits(&table, 80);
    assert!(
        table.contains("mode) (on /dev/sda5)"),
        "the title is there, wrapped: {table}"
    );
    assert!(table.contains("7d29825c"), "the short root UUID: {table}");
    assert!(
        !table.contains("7d29825c-7552"),
        "not the whole UUID: {table}"
    );

    let command = format!("{BOOTCTL} --boot-dir {tree} list");
    let narrow = on_terminal(&command, 80, &[]);
    assert_fits(&narrow, 80);
    assert_eq!(narrow, table, "a pty of 80 columns, as a pipe");
    let wide = on_terminal(&command, 160, &[]);
    assert!(
        wide.contains("(recovery mode) (on /dev/sda5)"),
        "a wide terminal's whole title: {wide}"
    );
    assert_fits(&wide, 160);
}

#[test]
fn no_escape_sequences_through_a_pipe_with_no_color_or_on_a_terminal() {
    let dir = TempDir::new("output-plain");
    long_titles_tree(dir.path());
    let tree = dir.path().to_str().expect("UTF-8 path");
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        for command in [
            &["list"][..],
            &["status"],
            &["switch", "--dry-run", "ubuntu"],
        ] {
            let mut args = vec!["-v", "--boot-dir", tree];
            args.extend(command);
            let out = bootctl(&args, env);
            assert_plain(&String::from_utf8_lossy(&out.stdout));
            assert_plain(&String::from_utf8_lossy(&out.stderr));
            let shown = on_terminal(&format!("{BOOTCTL} {}", args.join(" ")), 80, env);
            assert_plain(&shown);
        }
    }
}

#[test]
fn quiet_leaves_errors_and_what_was_asked_for() {
    let dir = TempDir::new("output-quiet");
    write_boot_dir(dir.path());
    let tree = dir.path().to_str().expect("UTF-8 path");
    let switch = bootctl(&["-q", "--boot-dir", tree, "switch", "ubuntu"], &[]);
    assert_eq!(
        (switch.stdout.as_slice(), switch.stderr.as_slice()),
        (&b""[..], &b""[..])
    );
    let list = bootctl(&["--boot-dir", tree, "--quiet", "list"], &[]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("ubuntu"),
        "list still lists"
    );
    let json = bootctl(
        &["-q", "--boot-dir", tree, "switch", "--json", "centos"],
        &[],
    );
    assert!(!json.stdout.is_empty(), "--json still prints");

    let missing = Command::new(BOOTCTL)
        .args(["-q", "--boot-dir", tree, "switch", "fedora"])
        .output()
        .expect("running bootctl");
    assert_eq!(missing.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.starts_with("bootctl: "), "{stderr}");
    let both = Command::new(BOOTCTL)
        .args(["-q", "-v", "--boot-dir", tree, "list"])
        .output()
        .expect("running bootctl");
    assert_eq!(both.status.code(), Some(2), "-q and -v conflict");
}
