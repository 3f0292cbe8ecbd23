//! bootctl(8), the man page at `man/bootctl.8`: generated from bootctl's clap definitions
//! (`bootctl/src/cli.rs`) and the hand-written sections in `man/sections/bootctl.8.roff`
//! (see `e2e::manpage` for how the page is put together).
//!
//! `man_page_is_current` fails when the committed page differs from what they generate. After
//! changing either, regenerate the page and commit it:
//!
//! ```text
//! BOOTCTL_UPDATE_MAN=1 cargo test -p bootctl --test man_page
//! ```
//!
//! `man_page_renders_without_warnings` formats the committed page with the real man(1) and
//! fails on any warning.

use bootctl::cli::Cli;
use clap::CommandFactory;
use e2e::manpage::{check_renders, ManPage};

const PAGE: ManPage = ManPage {
    path: "man/bootctl.8",
    sections: "man/sections/bootctl.8.roff",
    cli_source: "bootctl/src/cli.rs",
    generator: "bootctl/tests/man_page.rs",
    update_var: "BOOTCTL_UPDATE_MAN",
    update_command: "cargo test -p bootctl --test man_page",
    title: "BOOTCTL",
    section: "8",
};

#[test]
fn man_page_is_current() {
    PAGE.check_current(&Cli::command());
}

#[test]
fn man_page_renders_without_warnings() {
    check_renders(PAGE.path);
}
