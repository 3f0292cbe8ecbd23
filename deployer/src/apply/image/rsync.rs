//! An rsync source, or a tree when the config gives Bareon's `rsync_flags`, copied by
//! rsync; its itemized output read back to tell which files were there already.

use std::ffi::OsString;
use std::path::Path;

use shared::fault;

use crate::exec::run;

/// Copies `source` (a `DIR/`, or an rsync daemon source as the config writes it, rsync's
/// trailing `/` included) onto `root` with rsync,
/// itemizing every file; returns the files that existed on the target before.
pub(super) fn rsync_copy(
    name: &str,
    source: OsString,
    root: &Path,
    rsync_flags: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut argv: Vec<OsString> = ["rsync", "-aHAXS", "--numeric-ids", "-ii"]
        .iter()
        .map(OsString::from)
        .collect();
    argv.extend(
        rsync_flags
            .unwrap_or_default()
            .split_whitespace()
            .map(OsString::from),
    );
    argv.push(source);
    argv.push(dir_arg(root));
    fault::step("image:copy")?;
    let itemized = run(&format!("copy image {name}"), &argv)?;
    Ok(rsync_existing(&itemized))
}

/// The files (not directories) that rsync's `--itemize-changes` output (given twice, so
/// that unchanged files are listed too) shows were on the target already: every item
/// whose attributes are not all `+`. Paths are absolute in the image.
pub fn rsync_existing(itemized: &str) -> Vec<String> {
    itemized
        .lines()
        .filter_map(|line| {
            let bytes = line.as_bytes();
            if bytes.len() < 13 || bytes[11] != b' ' {
                return None;
            }
            let (update, kind, attributes) = (bytes[0], bytes[1], &line[2..11]);
            if !b"<>ch.".contains(&update) || !b"fLDS".contains(&kind) {
                return None;
            }
            if attributes.bytes().all(|b| b == b'+') {
                return None;
            }
            let mut path = &line[12..];
            if kind == b'L' {
                path = path.split_once(" -> ").map_or(path, |(p, _)| p);
            }
            if update == b'h' {
                path = path.split_once(" => ").map_or(path, |(p, _)| p);
            }
            Some(format!("/{}", path.trim_start_matches('/')))
        })
        .collect()
}

/// `DIR/`: rsync copies the directory's contents, not the directory.
pub(super) fn dir_arg(dir: &Path) -> OsString {
    let mut arg = dir.as_os_str().to_owned();
    arg.push("/");
    arg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsync_copies_contents() {
        assert_eq!(dir_arg(Path::new("/srv/img")), OsString::from("/srv/img/"));
    }

    #[test]
    fn rsync_items_of_files_that_were_there() {
        // Real `rsync -aHAXS -ii` output: a first copy, then a second one onto it.
        let first = ".d          ./\ncD+++++++++ dev\ncS+++++++++ fifo\n>f+++++++++ hl\n\
            cL+++++++++ sym -> a\ncd+++++++++ d/\n>f+++++++++ d/b\nhf+++++++++ a => hl\n";
        assert!(rsync_existing(first).is_empty(), "everything is new");
        let second = ".d          ./\n.f          a\n.D          dev\n.S          fifo\n\
            hf          hl\n.L          sym -> a\n.d          d/\n>f.s....... d/b\n\
            hf......... x => hl\nsending incremental file list\n\
            sent 1,234 bytes  received 56 bytes\n*deleting   old\n";
        assert_eq!(
            rsync_existing(second),
            ["/a", "/dev", "/fifo", "/hl", "/sym", "/d/b", "/x"]
        );
    }
}
