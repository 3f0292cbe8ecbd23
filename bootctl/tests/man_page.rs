//! bootctl(8), the man page at `man/bootctl.8`: generated from bootctl's clap definitions
//! (`bootctl/src/cli.rs`) and the hand-written sections in `man/sections/bootctl.8.roff`.
//!
//! `man_page_is_current` fails when the committed page differs from what they generate. After
//! changing either, regenerate the page and commit it:
//!
//! ```text
//! BOOTCTL_UPDATE_MAN=1 cargo test -p bootctl --test man_page
//! ```
//!
//! With `BOOTCTL_UPDATE_MAN=1` that test writes `man/bootctl.8` instead of comparing.
//! `man_page_renders_without_warnings` formats the committed page with the real man(1)
//! (man-db and groff, installed by `scripts/setup`) and fails on any warning.
//!
//! The page: NAME, SYNOPSIS, DESCRIPTION and OPTIONS from clap_mangen; the hand-written text
//! before the first `.SH` of the sections file continues DESCRIPTION; SUBCOMMANDS gives each
//! subcommand a subsection with its synopsis, description and options, where clap_mangen
//! would only point to pages of their own; the hand-written sections follow.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use bootctl::cli::Cli;
use clap::{Command, CommandFactory};
use clap_mangen::Man;

/// The committed page, relative to the repository root.
const PAGE: &str = "man/bootctl.8";
/// The hand-written sections, relative to the repository root.
const SECTIONS: &str = "man/sections/bootctl.8.roff";
/// What the roff crate writes before every piece clap_mangen renders: defines `\*(Aq`.
const ROFF_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn repo_path(relative: &str) -> PathBuf {
    let bootctl_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    bootctl_dir
        .parent()
        .expect("bootctl/ lies in the repository")
        .join(relative)
}

/// The whole page, as `man/bootctl.8` must hold it.
fn render_page() -> String {
    let command = Cli::command();
    let version = command.get_version().expect("bootctl has a version");
    let man = Man::new(command.clone())
        .title("BOOTCTL")
        .section("8")
        // No date, so the page does not change with the day it is generated. roff writes an
        // empty argument as nothing, which would move the source into the date's place.
        .date("\"\"")
        .source(format!("bootctl {version}"))
        .manual("System Manager's Manual");

    let sections_path = repo_path(SECTIONS);
    let sections = fs::read_to_string(&sections_path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", sections_path.display()));
    let sections = without_leading_comments(&sections);
    let (description, later_sections) = sections.split_at(
        sections
            .find("\n.SH ")
            .map_or(sections.len(), |newline| newline + 1),
    );

    let mut page = format!(
        ".\\\" Generated from bootctl/src/cli.rs and {SECTIONS} by bootctl/tests/man_page.rs.\n\
         .\\\" Do not edit: BOOTCTL_UPDATE_MAN=1 cargo test -p bootctl --test man_page\n\
         {ROFF_PREAMBLE}"
    );
    page += &piece(|w| man.render_title(w));
    page += &piece(|w| man.render_name_section(w));
    page += &piece(|w| man.render_synopsis_section(w));
    page += &piece(|w| man.render_description_section(w));
    page += description;
    page += &piece(|w| man.render_options_section(w));
    page += &subcommands_section(&command);
    page += later_sections;
    page
}

/// The sections file without the comment lines at its top, which speak of that file.
fn without_leading_comments(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with(".\\\"") {
        rest = rest.split_once('\n').map_or("", |(_, after)| after);
    }
    rest
}

/// Every subcommand as a subsection: its synopsis, its description and its own options.
fn subcommands_section(command: &Command) -> String {
    let mut section = String::from(".SH SUBCOMMANDS\n");
    for subcommand in command.get_subcommands() {
        let name = subcommand.get_name();
        let man = Man::new(
            subcommand
                .clone()
                .bin_name(format!("{} {name}", command.get_name()))
                .disable_help_flag(true),
        );
        section += &format!(".SS {name}\n");
        section += &section_body(piece(|w| man.render_synopsis_section(w)));
        section += ".PP\n";
        section += &section_body(piece(|w| man.render_description_section(w)));
        section += &section_body(piece(|w| man.render_options_section(w)));
    }
    section
}

/// One piece of clap_mangen output, without the roff preamble and without trailing blanks.
fn piece(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).expect("rendering into memory");
    let text = String::from_utf8(out).expect("clap_mangen writes UTF-8");
    let text = text
        .strip_prefix(ROFF_PREAMBLE)
        .unwrap_or_else(|| panic!("the roff crate no longer starts with its preamble:\n{text}"));
    text.lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

/// A rendered section without its `.SH` heading line.
fn section_body(section: String) -> String {
    let (heading, body) = section
        .split_once('\n')
        .expect("a section starts with its heading");
    assert!(heading.starts_with(".SH "), "not a heading: {heading}");
    body.to_owned()
}

#[test]
fn man_page_is_current() {
    let generated = render_page();
    let path = repo_path(PAGE);
    if std::env::var_os("BOOTCTL_UPDATE_MAN").is_some_and(|value| value == "1") {
        // Write beside the page and rename, so a test reading the page never sees half of it.
        let temp = path.with_extension("8.new");
        fs::write(&temp, &generated).expect("writing the new man page");
        fs::rename(&temp, &path).expect("replacing man/bootctl.8");
        return;
    }
    let committed =
        fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    if committed != generated {
        let committed: Vec<&str> = committed.split('\n').collect();
        let generated: Vec<&str> = generated.split('\n').collect();
        let line = (0..committed.len().max(generated.len()))
            .find(|&i| committed.get(i) != generated.get(i))
            .expect("texts that differ differ in a line");
        let old = committed.get(line).copied().unwrap_or("(end of file)");
        let new = generated.get(line).copied().unwrap_or("(end of file)");
        panic!(
            "{PAGE} is not what the code generates; first difference at line {}:\n\
             committed: {old}\ngenerated: {new}\n\
             Regenerate it with: BOOTCTL_UPDATE_MAN=1 cargo test -p bootctl --test man_page",
            line + 1
        );
    }
}

#[test]
fn man_page_renders_without_warnings() {
    let path = repo_path(PAGE);
    let output = Process::new("man")
        .args(["--warnings", "-E", "UTF-8", "-P", "cat", "-l"])
        .arg(&path)
        .env("MANWIDTH", "80")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let output = match output {
        Err(err) if err.kind() == ErrorKind::NotFound => {
            panic!("man not found: run scripts/setup (see README)")
        }
        other => other.expect("running man"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "man --warnings -l {PAGE}: {}\n{stderr}",
        output.status
    );
}
