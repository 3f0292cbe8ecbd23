//! What a real deploy says, as root with the real tools: through pipes, step lines and a
//! summary line for the tree copy, no escape sequences, every external command in the
//! `--log-file` with its duration and exit status, and the `--json` summary following
//! its schema; `-v` shows the commands on stderr, `-q` leaves stderr empty; on a terminal
//! (a pty made by util-linux `script`) the copy shows a bar, in colour unless `NO_COLOR`.
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use e2e::cmd::describe_output;
use e2e::deploy::one_image_config;
use e2e::fixture::{populate_image, FixtureImage};
use e2e::schema::check;
use e2e::tmp::TempDir;
use e2e::tools::require_deploy_tools;
use serde_json::Value;

const TOOLS: &[&str] = &["script"];

/// A one-image deploy: the image's tree, its config, a stand-in bootctl, and where the
/// disk image and boot-info.json go.
struct Deploy {
    scratch: TempDir,
    tree: PathBuf,
}

impl Deploy {
    fn new(label: &str) -> Deploy {
        require_deploy_tools(TOOLS);
        let scratch = TempDir::new(label);
        let tree = scratch.join("solo");
        std::fs::create_dir(&tree).expect("creating the image tree");
        populate_image(&tree, &FixtureImage::new("solo"));
        let config = one_image_config(
            serde_json::json!({"name": "solo", "image_pull_url": tree, "target": "/"}),
            "400 MiB",
            serde_json::json!([{"type": "partition", "mount": "/", "size": "150",
                                "file_system": "ext4"}]),
        );
        e2e::fixture::write(
            &scratch.join("solo.json"),
            config.to_string().as_bytes(),
            0o644,
        );
        e2e::fixture::write(&scratch.join("bootctl"), b"#!/bin/sh\n", 0o755);
        Deploy { scratch, tree }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// `deployer OPTIONS deploy solo.json --disk vda=node.img ... --yes EXTRA`.
    fn args(&self, options: &[&str], extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        args.extend([
            "deploy".to_owned(),
            self.path("solo.json").display().to_string(),
            "--disk".to_owned(),
            format!("vda={}", self.path("node.img").display()),
            "--bootctl".to_owned(),
            self.path("bootctl").display().to_string(),
            "--boot-info".to_owned(),
            self.path("boot-info.json").display().to_string(),
            "--yes".to_owned(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs the deploy through pipes; it must succeed.
    fn run(&self, options: &[&str], extra: &[&str]) -> Output {
        let out = self.run_failing(options, extra, None);
        assert!(
            out.status.success(),
            "deploy failed: {}",
            describe_output(&out)
        );
        out
    }

    /// Runs the deploy through pipes, with `path` first on PATH if given, however it ends.
    fn run_failing(&self, options: &[&str], extra: &[&str], path: Option<&Path>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
        command
            .args(self.args(options, extra))
            .stdin(Stdio::null())
            .env_remove("NO_COLOR");
        if let Some(dir) = path {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![dir.to_owned()];
            dirs.extend(std::env::split_paths(&path));
            command.env("PATH", std::env::join_paths(dirs).expect("a PATH"));
        }
        command.output().expect("running deployer")
    }

    /// Runs the deploy on a pty of 100 columns (stdout and stderr both go there); returns
    /// what the pty showed.
    fn run_on_terminal(&self, env: &[(&str, &str)]) -> String {
        let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_deployer").to_owned())
            .chain(self.args(&[], &[]))
            .map(|arg| format!("'{arg}'"))
            .collect();
        let out = Command::new("script")
            .args(["--quiet", "--return", "--command"])
            .arg(format!("stty cols 100 rows 40; {}", command.join(" ")))
            .arg("/dev/null")
            .stdin(Stdio::null())
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .envs(env.iter().copied())
            .output()
            .expect("running script");
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "deploy on a pty failed:\n{shown}");
        shown
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// The log's record of a step that ran `program`: the line that ran it and the line with
/// its exit status and duration, as `(command line, "exit 0, 0.012 s")`.
fn logged_command(log: &str, program: &str) -> (String, String) {
    let lines: Vec<&str> = log.lines().collect();
    let marker = format!(": running {program} ");
    let at = lines
        .iter()
        .position(|line| line.contains(&marker))
        .unwrap_or_else(|| panic!("the log names no {program}:\n{log}"));
    let ran = lines[at];
    let step_start = ran.find("deployer: ").expect("a deployer line") + "deployer: ".len();
    let step = &ran[step_start..ran.find(&marker).expect("the marker")];
    let done = lines[at + 1..]
        .iter()
        .find_map(|line| {
            line.split_once(&format!("deployer: {step}: "))
                .map(|(_, rest)| rest)
        })
        .unwrap_or_else(|| panic!("no outcome of {step:?} in the log:\n{log}"));
    (ran.to_owned(), done.to_owned())
}

/// Whether `text` holds an SGR sequence (colours, bold): `ESC [ ... m`.
fn has_sgr(text: &str) -> bool {
    text.split('\x1b').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|params| {
            let end = params.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|end| params[end..].starts_with('m'))
        })
    })
}

#[test]
fn through_pipes_a_deploy_says_its_steps_and_logs_every_command() {
    let deploy = Deploy::new("output-pipes");
    let log_path = deploy.path("deploy.log");
    let log_arg = log_path.display().to_string();
    let out = deploy.run(&[], &["--json", "--log-file", &log_arg]);
    let stderr = text(&out.stderr);

    for step in [
        "deployer: creating disk image",
        "deployer: partitioning disk vda",
        "deployer: making ext4 on vda#4",
        "deployer: deploying image solo from",
        "deployer: installing GRUB on the multiboot partition",
        "deployer: deployed 1 image(s)",
    ] {
        assert!(stderr.contains(step), "no {step:?} in:\n{stderr}");
    }
    let copied = format!("deployer: tree {}: copied ", deploy.tree.display());
    let summary = stderr
        .lines()
        .find(|line| line.starts_with(&copied))
        .unwrap_or_else(|| panic!("no copy summary in:\n{stderr}"));
    assert!(
        summary.contains(" files) in ") && summary.ends_with("/s"),
        "{summary}"
    );
    assert!(
        !stderr.contains(": running "),
        "commands only with -v:\n{stderr}"
    );
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "no bar, no escape sequence through a pipe: {stderr:?}"
    );

    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    check(
        "deployer-deploy.v1.json",
        "deployer deploy --json",
        &summary,
    );
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.path("boot-info.json")).expect("boot-info.json"),
    )
    .expect("boot-info.json is JSON");
    assert_eq!(summary["exit"], 0);
    assert_eq!(summary["deployed"], true);
    assert_eq!(summary["images"][0]["name"], "solo");
    assert_eq!(summary["images"][0]["default"], true);
    assert_eq!(
        summary["images"][0]["root_uuid"],
        info["elements"][0]["root_uuid"]
    );
    assert_eq!(summary["multiboot_partition"], info["multiboot_partition"]);
    assert_eq!(
        summary["boot_info"],
        log_arg.replace("deploy.log", "boot-info.json")
    );

    let log = std::fs::read_to_string(&log_path).expect("the log file");
    let first = log.lines().next().expect("a first line");
    assert!(
        first.starts_with(&format!("deployer {}: ", env!("CARGO_PKG_VERSION")))
            && first.contains(" deploy "),
        "{first}"
    );
    assert!(
        log.lines()
            .last()
            .is_some_and(|line| line.ends_with("deployer: exit status 0")),
        "{log}"
    );
    for program in ["sfdisk", "mkfs.ext4", "grub-install"] {
        let (ran, done) = logged_command(&log, program);
        assert!(ran.starts_with('['), "seconds since the start: {ran}");
        let (status, seconds) = done
            .split_once(", ")
            .unwrap_or_else(|| panic!("{program}: {done}"));
        assert_eq!(status, "exit 0", "{program}: {done}");
        let seconds: f64 = seconds
            .strip_suffix(" s")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{program}: a duration in {done:?}"));
        assert!(seconds >= 0.0, "{done}");
    }
    assert!(
        log.contains(&copied),
        "the copy summary is logged too:\n{log}"
    );
    assert!(log.contains("deployer: partitioning disk vda"), "{log}");
}

#[test]
fn verbose_shows_the_commands_and_quiet_shows_nothing() {
    let deploy = Deploy::new("output-verbosity");
    let verbose = text(&deploy.run(&["-v"], &[]).stderr);
    for program in [
        "wipefs",
        "sfdisk",
        "mkfs.ext4",
        "grub-mkimage",
        "grub-install",
    ] {
        assert!(
            verbose.contains(&format!(": running {program} ")),
            "-v shows {program}:\n{verbose}"
        );
    }
    assert!(verbose.contains(": exit 0, "), "{verbose}");

    std::fs::remove_file(deploy.path("node.img")).expect("removing the disk image");
    let quiet = deploy.run(&["-q"], &["--json"]);
    assert_eq!(text(&quiet.stderr), "", "-q: nothing on stderr");
    let summary: Value = serde_json::from_slice(&quiet.stdout).expect("--json prints JSON");
    assert_eq!(summary["deployed"], true);
}

#[test]
fn on_a_terminal_the_copy_shows_a_bar_in_colour_unless_no_color() {
    let deploy = Deploy::new("output-terminal");
    let shown = deploy.run_on_terminal(&[]);
    let bar_start = format!("deployer: tree {} [", deploy.tree.display());
    assert!(shown.contains(&bar_start), "a bar:\n{shown}");
    assert!(has_sgr(&shown), "in colour: {shown:?}");
    assert!(
        shown.contains(&format!(
            "deployer: tree {}: copied ",
            deploy.tree.display()
        )),
        "and the summary line after it:\n{shown}"
    );

    std::fs::remove_file(deploy.path("node.img")).expect("removing the disk image");
    let plain = deploy.run_on_terminal(&[("NO_COLOR", "1")]);
    assert!(plain.contains(&bar_start), "a bar:\n{plain}");
    assert!(!has_sgr(&plain), "no colour with NO_COLOR: {plain:?}");
}

#[test]
fn sgr_sequences_are_told_from_other_escapes() {
    assert!(has_sgr("a \x1b[36mcyan\x1b[0m"));
    assert!(has_sgr("\x1b[1;38;5;12mx"));
    assert!(!has_sgr("\r\x1b[2K\x1b[1Aline"));
    assert!(!has_sgr("plain"));
}

#[test]
fn a_refused_deploy_says_why_in_its_json_and_in_its_log() {
    let deploy = Deploy::new("output-refused");
    std::fs::remove_dir_all(&deploy.tree).expect("removing the image tree");
    let log_path = deploy.path("deploy.log");
    let log_arg = log_path.display().to_string();
    let out = deploy.run_failing(&[], &["--json", "--log-file", &log_arg], None);
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let refusal = format!(
        "image solo: source {} does not exist",
        deploy.tree.display()
    );
    assert_eq!(
        text(&out.stderr),
        format!("deployer: {refusal}\n"),
        "one line on stderr"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    check(
        "deployer-deploy.v1.json",
        "deployer deploy --json",
        &summary,
    );
    assert_eq!(summary["exit"], 3);
    assert_eq!(summary["deployed"], false);
    assert_eq!(summary["errors"], serde_json::json!([refusal]));
    assert_eq!(summary["failed_step"], Value::Null);
    assert!(!deploy.path("node.img").exists(), "nothing was written");
    let log = std::fs::read_to_string(&log_path).expect("the log file");
    assert!(log.contains(&format!("deployer: {refusal}")), "{log}");
    assert!(log.ends_with("deployer: exit status 3\n"), "{log}");
}

#[test]
fn a_deploy_that_fails_names_the_failed_step_in_its_json_and_its_log() {
    let deploy = Deploy::new("output-failed");
    let stubs = deploy.path("stubs");
    std::fs::create_dir(&stubs).expect("creating the stub directory");
    e2e::fixture::write(
        &stubs.join("grub-install"),
        b"#!/bin/sh\necho 'grub-install: error: stub says no' >&2\nexit 1\n",
        0o755,
    );
    let log_path = deploy.path("deploy.log");
    let log_arg = log_path.display().to_string();
    let out = deploy.run_failing(&["-q"], &["--json", "--log-file", &log_arg], Some(&stubs));
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    check(
        "deployer-deploy.v1.json",
        "deployer deploy --json",
        &summary,
    );
    assert_eq!(summary["exit"], 1);
    assert_eq!(summary["deployed"], false);
    assert_eq!(
        summary["failed_step"],
        "install GRUB's BIOS files on the multiboot partition"
    );
    let errors = summary["errors"].as_array().expect("errors");
    assert!(
        errors[0]
            .as_str()
            .is_some_and(|e| e.starts_with("deploy failed: ")
                && e.ends_with("grub-install: error: stub says no")),
        "{errors:?}"
    );
    let log = std::fs::read_to_string(&log_path).expect("the log file");
    assert!(log.contains("deployer: deploy failed: "), "{log}");
    assert!(log.ends_with("deployer: exit status 1\n"), "{log}");
}
