//! Copying an image's directory tree onto its mounted filesystems: [`copy_tree`].
//!
//! The copy keeps everything an installed system depends on: numeric owners, modes with
//! the setuid, setgid and sticky bits, access and modification times, hard links, symlinks
//! (never followed), device nodes, fifos and sockets, the holes of sparse files, and every
//! extended attribute, which carries `user.*` and `security.*` (file capabilities) as well
//! as POSIX ACLs (`system.posix_acl_access` and `system.posix_acl_default`).
//!
//! It runs in three steps:
//! 1. one thread walks the source (one `lstat` per entry) and creates each directory in
//!    the destination as it meets it, merging with directories that are already there,
//!    mount points below the destination included; meanwhile a worker per core creates
//!    the regular files, symlinks and nodes found so far, each with its data, owner,
//!    extended attributes, mode and times, in that order: a change of owner clears the
//!    setuid bits and file capabilities, and writing the data would move the times;
//! 2. the further names of hard-linked entries are linked to the first one copied onto the
//!    same filesystem (a hard link cannot cross the mount points below the destination, so
//!    a group split by one is copied once per filesystem);
//! 3. the directories get their attributes last, deepest first, so that creating their
//!    entries does not move their times and a default ACL is not inherited by the copies.
//!
//! An entry that already exists in the destination (a shared partition that an earlier
//! image filled) is replaced and reported in [`CopyReport::overwritten`]; an existing
//! directory is merged. Data goes through `sendfile`, inside the kernel; a sparse file
//! copies only its data extents (`SEEK_DATA`/`SEEK_HOLE`) and gets its holes back with
//! its size. Errors name the path at fault. The copy does not sync: unmounting the
//! filesystems does.
//!
//! Its progress is shown by a [`Meter`]: the walk adds the size of each batch of files it
//! queues to the bytes to do, each worker the size of each file it copied to the bytes
//! done, one relaxed atomic addition each.
//!
//! Here: creating one entry. `walk`: step 1's walk and workers. `attrs`: owners, extended
//! attributes, modes and times. `data`: the files' data. [`sys`]: the extended attribute
//! calls that nix lacks.

use std::ffi::CStr;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::mknodat;
use nix::unistd::{linkat, symlinkat};

use crate::progress::{Meter, Total};

mod attrs;
mod data;
pub mod sys;
mod walk;

use attrs::{set_attrs_by_path, set_file_attrs, Attrs, ACL_ACCESS, ACL_DEFAULT};
use data::{copy_data, copy_extents, is_sparse, open_source};

/// Gives the directory `to` the owner, extended attributes (ACLs included), mode and
/// times of the directory `from`.
pub fn copy_dir_attrs(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    set_attrs_by_path(from, to, &Attrs::of(&meta), &[ACL_ACCESS, ACL_DEFAULT])
}

/// What [`copy_tree`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Non-directory entries created: regular files, hard links, symlinks and nodes.
    pub files: u64,
    /// The sizes of the regular files copied (a hard-linked file counted once per
    /// filesystem it was copied to, a sparse file with its holes).
    pub bytes: u64,
    /// The non-directory entries, relative to the destination, that existed there before
    /// the copy and were replaced, sorted.
    pub overwritten: Vec<PathBuf>,
}

/// Copies the contents of the directory `source` into the existing directory `dest`,
/// keeping every attribute (see the module documentation); `dest` itself gets the mode,
/// owner, times and extended attributes of `source`.
///
/// Nothing is written when `source` or `dest` is not a directory. An error names the path
/// at fault; what was copied before it stays.
pub fn copy_tree(source: &Path, dest: &Path) -> anyhow::Result<CopyReport> {
    let source_meta =
        fs::metadata(source).with_context(|| format!("image source {}", source.display()))?;
    if !source_meta.is_dir() {
        bail!("image source {}: not a directory", source.display());
    }
    let dest_meta =
        fs::metadata(dest).with_context(|| format!("copy destination {}", dest.display()))?;
    if !dest_meta.is_dir() {
        bail!("copy destination {}: not a directory", dest.display());
    }

    let meter = Meter::start(format!("tree {}", source.display()), "copied", Total::Found);
    let copy = Copy {
        source,
        dest,
        meter: &meter,
    };
    let workers = thread::available_parallelism().map_or(1, |n| n.get());
    let (walked, mut report, mut overwritten) =
        copy.walk_and_create(Attrs::of(&source_meta), dest_meta.dev(), workers)?;
    overwritten.extend(walked.overwritten);
    for (rel, first) in &walked.links {
        copy.link(first, rel, &mut overwritten)?;
        report.files += 1;
    }
    for (rel, attrs) in walked.dirs.iter().rev() {
        copy.set_path_attrs(rel, attrs, &[ACL_ACCESS, ACL_DEFAULT])?;
    }
    overwritten.sort();
    report.overwritten = overwritten;
    meter.finish(&format!("{} files", report.files));
    Ok(report)
}

/// What an entry is, and what creating it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File {
        size: u64,
        sparse: bool,
    },
    Symlink,
    /// A device node, fifo or socket.
    Node {
        rdev: u64,
    },
}

/// What a non-directory whose lstat gave `meta` is.
fn entry_kind(meta: &fs::Metadata) -> Kind {
    let file_type = meta.file_type();
    if file_type.is_file() {
        Kind::File {
            size: meta.size(),
            sparse: is_sparse(meta.size(), meta.blocks()),
        }
    } else if file_type.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Node { rdev: meta.rdev() }
    }
}

/// A regular file, symlink or node for a worker to create.
#[derive(Debug)]
struct Entry {
    /// Relative to the source and the destination.
    rel: PathBuf,
    kind: Kind,
    attrs: Attrs,
    /// Whether its destination directory has a default ACL during the copy, which the
    /// new entry inherits as its access ACL.
    in_default_acl: bool,
}

/// A copy from one source directory into one destination directory.
struct Copy<'a> {
    source: &'a Path,
    dest: &'a Path,
    meter: &'a Meter,
}

impl Copy<'_> {
    /// Creates one regular file, symlink or node with its attributes; returns the bytes
    /// of data copied.
    fn create(&self, entry: &Entry, overwritten: &mut Vec<PathBuf>) -> anyhow::Result<u64> {
        let from = self.source.join(&entry.rel);
        let to = self.dest.join(&entry.rel);
        match entry.kind {
            Kind::File { size, sparse } => {
                self.copy_file(&from, &to, entry, size, sparse, overwritten)?;
                return Ok(size);
            }
            Kind::Symlink => {
                let target = fs::read_link(&from)
                    .with_context(|| format!("reading the symlink {}", from.display()))?;
                self.replacing(&entry.rel, overwritten, || symlinkat(&target, None, &to))
                    .with_context(|| format!("creating the symlink {}", to.display()))?;
            }
            Kind::Node { rdev } => {
                let attrs = &entry.attrs;
                let make = || mknodat(None, &to, attrs.file_type(), attrs.permissions(), rdev);
                self.replacing(&entry.rel, overwritten, make)
                    .with_context(|| format!("creating the node {}", to.display()))?;
            }
        }
        let inherited: &[&CStr] = match entry.kind {
            Kind::Node { .. } if entry.in_default_acl => &[ACL_ACCESS],
            _ => &[],
        };
        self.set_path_attrs(&entry.rel, &entry.attrs, inherited)?;
        Ok(0)
    }

    /// Copies the regular file `from` to the new `to` with its data and attributes.
    fn copy_file(
        &self,
        from: &Path,
        to: &Path,
        entry: &Entry,
        size: u64,
        sparse: bool,
        overwritten: &mut Vec<PathBuf>,
    ) -> anyhow::Result<()> {
        let src = open_source(from).with_context(|| format!("opening {}", from.display()))?;
        let create = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(entry.attrs.mode & 0o777)
                .open(to)
        };
        let dst = match create() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                make_room(to)?;
                overwritten.push(entry.rel.clone());
                create()
            }
            other => other,
        }
        .with_context(|| format!("creating {}", to.display()))?;
        if sparse {
            copy_extents(&src, &dst, size)
        } else {
            copy_data(&src, &dst, size)
        }
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        let inherited: &[&CStr] = if entry.in_default_acl {
            &[ACL_ACCESS]
        } else {
            &[]
        };
        set_file_attrs(&src, &dst, &entry.attrs, inherited)
            .with_context(|| format!("setting the attributes of {}", to.display()))
    }

    /// Links the destination's `rel` to its `first` (both relative).
    fn link(&self, first: &Path, rel: &Path, overwritten: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let (existing, new) = (self.dest.join(first), self.dest.join(rel));
        self.replacing(rel, overwritten, || {
            linkat(None, &existing, None, &new, AtFlags::empty())
        })
        .with_context(|| format!("linking {} to {}", new.display(), existing.display()))
    }

    /// Runs `create` for the destination's `rel`; when the name exists, replaces it.
    /// nix's errors become [`io::Error`]s, so that they read as those of `std::fs` do.
    fn replacing(
        &self,
        rel: &Path,
        overwritten: &mut Vec<PathBuf>,
        create: impl Fn() -> nix::Result<()>,
    ) -> anyhow::Result<()> {
        match create() {
            Err(Errno::EEXIST) => {
                make_room(&self.dest.join(rel))?;
                overwritten.push(rel.to_owned());
                Ok(create().map_err(io::Error::from)?)
            }
            other => Ok(other.map_err(io::Error::from)?),
        }
    }

    /// Gives the destination's `rel` (a directory, symlink or node) its owner, extended
    /// attributes (removing those of `acls` that the source does not have), mode (not for
    /// a symlink) and times, by path.
    fn set_path_attrs(&self, rel: &Path, attrs: &Attrs, acls: &[&CStr]) -> anyhow::Result<()> {
        let (from, to) = (self.source.join(rel), self.dest.join(rel));
        set_attrs_by_path(&from, &to, attrs, acls)
            .with_context(|| format!("setting the attributes of {}", to.display()))
    }
}

/// Removes the non-directory at `path` so that the copy can take its name; refuses a
/// directory (the image has something else there).
fn make_room(path: &Path) -> anyhow::Result<()> {
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        bail!(
            "{}: cannot replace a directory with the image's non-directory",
            path.display()
        );
    }
    fs::remove_file(path).with_context(|| format!("replacing {}", path.display()))
}
