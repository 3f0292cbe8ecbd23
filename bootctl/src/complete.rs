//! Shell completion of `bootctl switch TARGET`: the image names of the multiboot partition.
//!
//! The shells' scripts come from clap_complete's `CompleteEnv` (`BOOTCTL_COMPLETE=bash
//! bootctl` prints bash's; the packages install them from `packaging/completions/`): at every
//! TAB they run bootctl again with [`VAR`] set and the words typed so far after a `--`.
//! clap_complete completes subcommands and options itself and asks [`image_names`] for
//! TARGET.
//!
//! The partition is the one those words name (`--multiboot`, `--disk`, `--boot-dir`), else the
//! one bootctl finds by itself, opened read-only as `bootctl list` does. Completion shows no
//! errors: where the partition cannot be read (not root, no partition) nothing is offered.

use std::collections::HashSet;

use clap::{CommandFactory, FromArgMatches};
use clap_complete::CompletionCandidate;
use shared::grubcfg;

use crate::cli::{Cli, SourceArgs};
use crate::source::{self, Access};
use crate::store::BootDir;
use crate::view::{self, View};

/// The environment variable that asks bootctl for completions instead of running it: named
/// after bootctl, so that a `COMPLETE` set for some other program cannot reach it.
pub const VAR: &str = "BOOTCTL_COMPLETE";

/// The candidates for TARGET on the command line being completed.
pub fn image_names() -> Vec<CompletionCandidate> {
    image_names_at(&completing_source()).unwrap_or_default()
}

/// `--multiboot`, `--disk` and `--boot-dir` of the words being completed: the arguments after
/// the first `--` in bootctl's own command line. Parsed leniently: the words are a command
/// line someone is still typing.
fn completing_source() -> SourceArgs {
    let words = std::env::args_os().skip_while(|arg| arg != "--").skip(1);
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(words)
        .ok()
        .and_then(|matches| SourceArgs::from_arg_matches(&matches).ok())
        .unwrap_or_default()
}

fn image_names_at(source_args: &SourceArgs) -> anyhow::Result<Vec<CompletionCandidate>> {
    let located = source::locate(source_args, Access::ReadOnly)?;
    let files = BootDir::open(&located.root, located.shown_root().as_deref())?.read()?;
    located.release()?;
    let menu = grubcfg::parse(&files.grub_cfg)?;
    Ok(candidates(&view::build(&files, &menu, None)))
}

/// Every image name of `view` once, described by the title of its image's own entry (or of
/// the first entry that boots it): the images' own entries first, in menu order.
fn candidates(view: &View) -> Vec<CompletionCandidate> {
    let own_entries = view.entries.iter().filter(|entry| entry.primary);
    let other_entries = view.entries.iter().filter(|entry| !entry.primary);
    let mut seen = HashSet::new();
    own_entries
        .chain(other_entries)
        .flat_map(|entry| {
            entry
                .image_names
                .iter()
                .map(move |name| (name, &entry.title))
        })
        .filter(|(name, _)| seen.insert(name.as_str()))
        .map(|(name, title)| CompletionCandidate::new(name).help(Some(title.into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn offered(view: &View) -> Vec<(String, String)> {
        candidates(view)
            .iter()
            .map(|candidate| {
                (
                    candidate.get_value().to_string_lossy().into_owned(),
                    candidate
                        .get_help()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn image_names_with_their_entry_titles() {
        let (_, view) = fixtures::load(&fixtures::files(fixtures::fixed_cfg(), None), None);
        assert_eq!(
            offered(&view),
            [
                ("centos-7.1.1503".to_owned(), "CentOS Linux".to_owned()),
                ("centos".to_owned(), "CentOS Linux".to_owned()),
                ("ubuntu".to_owned(), "Ubuntu 14.04".to_owned()),
            ]
        );
    }

    #[test]
    fn nothing_without_boot_info() {
        let mut files = fixtures::files(fixtures::fixed_cfg(), None);
        files.boot_info = None;
        let (_, view) = fixtures::load(&files, None);
        assert!(offered(&view).is_empty());
    }
}
