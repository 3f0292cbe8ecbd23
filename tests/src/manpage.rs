//! Man pages generated from a program's clap definitions plus hand-written roff, kept in
//! `man/` and compared with what the code generates.
//!
//! A page ([`ManPage::render`]): NAME, SYNOPSIS, DESCRIPTION and OPTIONS from clap_mangen;
//! the hand-written text before the first `.SH` of the sections file continues DESCRIPTION;
//! SUBCOMMANDS gives each subcommand a subsection with its synopsis, description and options,
//! where clap_mangen would only point to pages of their own; the hand-written sections follow.
//!
//! [`ManPage::check_current`] fails while a committed page differs from what its test
//! generates, and rewrites the page instead when the page's update variable is `1`. [`check_renders`]
//! formats a page with the real man(1) (man-db and groff, installed by `scripts/setup`) and
//! fails on any warning.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use clap::Command;
use clap_mangen::Man;

/// What the roff crate writes before every piece clap_mangen renders: defines `\*(Aq`.
const ROFF_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// A page generated from a clap command and a sections file.
pub struct ManPage {
    /// The committed page, relative to the workspace root: `man/bootctl.8`.
    pub path: &'static str,
    /// The hand-written sections, relative to the workspace root.
    pub sections: &'static str,
    /// Where the clap definitions live, for the page's header comment.
    pub cli_source: &'static str,
    /// The test that generates the page, for the header comment.
    pub generator: &'static str,
    /// Set to `1`, the drift test writes the page instead of comparing.
    pub update_var: &'static str,
    /// The command that regenerates the page, without the variable.
    pub update_command: &'static str,
    /// `.TH` title, such as `BOOTCTL`.
    pub title: &'static str,
    /// The manual section, such as `8`.
    pub section: &'static str,
}

impl ManPage {
    /// The whole page, as the committed file must hold it.
    pub fn render(&self, command: &Command) -> String {
        let version = command.get_version().expect("the command has a version");
        let man = Man::new(command.clone())
            .title(self.title)
            .section(self.section)
            // No date, so the page does not change with the day it is generated. roff writes
            // an empty argument as nothing, which would move the source into the date's place.
            .date("\"\"")
            .source(format!("{} {version}", command.get_name()))
            .manual("System Manager's Manual");

        let sections = read(self.sections);
        let sections = without_leading_comments(&sections);
        let (description, later_sections) = sections.split_at(
            sections
                .find("\n.SH ")
                .map_or(sections.len(), |newline| newline + 1),
        );

        let mut page = format!(
            ".\\\" Generated from {} and {} by {}.\n\
             .\\\" Do not edit: {}=1 {}\n\
             {ROFF_PREAMBLE}",
            self.cli_source, self.sections, self.generator, self.update_var, self.update_command
        );
        page += &piece(|w| man.render_title(w));
        page += &piece(|w| man.render_name_section(w));
        page += &piece(|w| man.render_synopsis_section(w));
        page += &piece(|w| man.render_description_section(w));
        page += description;
        page += &piece(|w| man.render_options_section(w));
        page += &subcommands_section(command);
        page += later_sections;
        page
    }

    /// Fails while the committed page differs from [`ManPage::render`] (see
    /// [`check_file_current`]).
    pub fn check_current(&self, command: &Command) {
        check_file_current(
            self.path,
            &self.render(command),
            self.update_var,
            self.update_command,
        );
    }
}

/// The text of a file in the workspace.
pub fn read(relative: &str) -> String {
    let path = crate::workspace_root().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

/// The sections file without the comment lines at its top, which speak of that file.
pub fn without_leading_comments(text: &str) -> &str {
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

/// Fails unless the committed file `relative` holds `generated`; with `update_var` set to
/// `1`, writes it instead. `regenerate` is the command line that does that, for the message.
pub fn check_file_current(relative: &str, generated: &str, update_var: &str, regenerate: &str) {
    let path = crate::workspace_root().join(relative);
    if std::env::var_os(update_var).is_some_and(|value| value == "1") {
        // Write beside the file and rename, so a test reading it never sees half of it.
        let mut temp = path.clone().into_os_string();
        temp.push(".new");
        let temp = PathBuf::from(temp);
        fs::write(&temp, generated).unwrap_or_else(|err| panic!("writing {relative}.new: {err}"));
        fs::rename(&temp, &path).unwrap_or_else(|err| panic!("replacing {relative}: {err}"));
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
            "{relative} is not what the code generates; first difference at line {}:\n\
             committed: {old}\ngenerated: {new}\n\
             Regenerate it with: {update_var}=1 {regenerate}",
            line + 1
        );
    }
}

/// Formats the page at `relative` with `man --warnings` and fails on any warning.
pub fn check_renders(relative: &str) {
    let path = crate::workspace_root().join(relative);
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
        "man --warnings -l {relative}: {}\n{stderr}",
        output.status
    );
}
