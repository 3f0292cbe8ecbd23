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

use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::sendfile::sendfile;
use nix::sys::stat::{
    fchmod, fchmodat, fstat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, ftruncate, linkat, lseek, symlinkat, Gid, Uid, Whence};

use super::raw::data_extents;
use crate::progress::{Meter, Total};

pub mod sys;

use sys::{
    fgetxattr, flistxattr, fremovexattr, fsetxattr, lgetxattr, llistxattr, lremovexattr, lsetxattr,
};

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

/// The attributes of a source entry that the copy gives its counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
}

impl Attrs {
    fn of(meta: &fs::Metadata) -> Self {
        Attrs {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            atime: (meta.atime(), meta.atime_nsec()),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }

    /// The permission bits with setuid, setgid and sticky.
    fn permissions(&self) -> Mode {
        Mode::from_bits_truncate(self.mode & 0o7777)
    }

    /// The file type bits (`S_IFMT`).
    fn file_type(&self) -> SFlag {
        SFlag::from_bits_truncate(self.mode & SFlag::S_IFMT.bits())
    }

    /// The access and modification times.
    fn times(&self) -> (TimeSpec, TimeSpec) {
        let spec = |(sec, nsec): (i64, i64)| TimeSpec::new(sec, nsec);
        (spec(self.atime), spec(self.mtime))
    }
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

/// The extended attributes that hold POSIX ACLs.
const ACL_ACCESS: &CStr = c"system.posix_acl_access";
const ACL_DEFAULT: &CStr = c"system.posix_acl_default";

/// What the walk leaves for after the workers.
#[derive(Default)]
struct Walked {
    /// Every directory (relative) with its attributes, a directory before its contents.
    dirs: Vec<(PathBuf, Attrs)>,
    /// `(link, first)`: a further name of a hard-linked entry and the first name copied.
    links: Vec<(PathBuf, PathBuf)>,
    /// The non-directories replaced by directories.
    overwritten: Vec<PathBuf>,
}

/// How many entries the walk hands the workers at a time (at most).
const BATCH: usize = 64;

/// The entries the walk has found and the workers have not taken yet.
#[derive(Default)]
struct Queue {
    /// The batches waiting, and whether the walk is over.
    state: Mutex<(VecDeque<Vec<Entry>>, bool)>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, batch: Vec<Entry>) {
        self.lock().0.push_back(batch);
        self.ready.notify_one();
    }

    /// No more batches: the workers finish what is queued and stop.
    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }

    /// The next batch, waiting for one; `None` once the queue is closed and empty.
    fn pop(&self) -> Option<Vec<Entry>> {
        let mut state = self.lock();
        loop {
            if let Some(batch) = state.0.pop_front() {
                return Some(batch);
            }
            if state.1 {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, (VecDeque<Vec<Entry>>, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the queue when the walk ends, also by an error or a panic, so that no worker
/// waits forever.
struct CloseOnDrop<'a>(&'a Queue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Whether a file of `size` bytes that occupies `blocks` 512-byte blocks has holes.
fn is_sparse(size: u64, blocks: u64) -> bool {
    blocks.saturating_mul(512) < size
}

/// The first copy of each hard-linked source inode (a file, symlink or node) on each
/// destination filesystem.
#[derive(Debug, Default)]
struct LinkTable {
    /// `(source device, source inode, destination device)` to the first name copied.
    first: HashMap<(u64, u64, u64), PathBuf>,
}

impl LinkTable {
    /// Records `rel`, a name of the source inode `(dev, ino)` placed on the destination
    /// filesystem `dest_dev`: the earlier name to link it to, or `None` when it is the
    /// first there and is copied.
    fn place(&mut self, dev: u64, ino: u64, dest_dev: u64, rel: &Path) -> Option<PathBuf> {
        match self.first.entry((dev, ino, dest_dev)) {
            std::collections::hash_map::Entry::Occupied(first) => Some(first.get().clone()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(rel.to_owned());
                None
            }
        }
    }
}

/// The names in a `listxattr` result: NUL-terminated, one after the other.
fn xattr_names(list: &[u8]) -> impl Iterator<Item = &CStr> {
    list.split_inclusive(|&b| b == 0)
        .filter_map(|name| CStr::from_bytes_with_nul(name).ok())
        .filter(|name| !name.is_empty())
}

/// A copy from one source directory into one destination directory.
struct Copy<'a> {
    source: &'a Path,
    dest: &'a Path,
    meter: &'a Meter,
}

impl Copy<'_> {
    /// Walks the source on this thread while `workers` threads create what it finds;
    /// returns what is left for after them, their counts and the entries they replaced.
    fn walk_and_create(
        &self,
        top: Attrs,
        top_dev: u64,
        workers: usize,
    ) -> anyhow::Result<(Walked, CopyReport, Vec<PathBuf>)> {
        let queue = Queue::default();
        let failed = AtomicBool::new(false);
        let (walked, results) = thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.max(1))
                .map(|_| scope.spawn(|| self.work(&queue, &failed)))
                .collect();
            let walked = {
                let _close = CloseOnDrop(&queue);
                let walked = self.walk(top, top_dev, &queue, &failed);
                if walked.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                self.meter.all_found();
                walked
            };
            let results: Vec<_> = handles
                .into_iter()
                .map(|handle| handle.join().expect("a copy worker panicked"))
                .collect();
            (walked, results)
        });
        let walked = walked?;
        let mut total = CopyReport::default();
        let mut overwritten = Vec::new();
        for result in results {
            let (report, more) = result?;
            total.files += report.files;
            total.bytes += report.bytes;
            overwritten.extend(more);
        }
        Ok((walked, total, overwritten))
    }

    /// Walks the source, creating each directory in the destination and queueing every
    /// other entry that is not a further hard link; stops early once `failed`.
    fn walk(
        &self,
        top: Attrs,
        top_dev: u64,
        queue: &Queue,
        failed: &AtomicBool,
    ) -> anyhow::Result<Walked> {
        let mut walked = Walked::default();
        walked.dirs.push((PathBuf::new(), top));
        let mut links = LinkTable::default();
        // Directories still to read: their index in `dirs`, their destination's device, and
        // whether that has a default ACL for the new entries to inherit (a kept directory's
        // own, or the one a new directory inherited from its parent).
        let mut pending = vec![(0, top_dev, self.has_default_acl(Path::new(""))?)];
        while let Some((dir, dest_dev, default_acl)) = pending.pop() {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            let dir_rel = walked.dirs[dir].0.clone();
            let dir_path = self.source.join(&dir_rel);
            let read = fs::read_dir(&dir_path)
                .with_context(|| format!("reading {}", dir_path.display()))?;
            let mut batch = Vec::new();
            let mut batch_bytes = 0;
            for item in read {
                let item = item.with_context(|| format!("reading {}", dir_path.display()))?;
                let rel = dir_rel.join(item.file_name());
                let meta = item
                    .metadata()
                    .with_context(|| format!("reading {}", item.path().display()))?;
                let attrs = Attrs::of(&meta);
                if meta.is_dir() {
                    let made = self.make_dir(&rel, &mut walked.overwritten)?;
                    let (dev, default_acl) = match made {
                        Some(dev) => (dev, self.has_default_acl(&rel)?),
                        None => (dest_dev, default_acl),
                    };
                    pending.push((walked.dirs.len(), dev, default_acl));
                    walked.dirs.push((rel, attrs));
                    continue;
                }
                if meta.nlink() > 1 {
                    if let Some(first) = links.place(meta.dev(), meta.ino(), dest_dev, &rel) {
                        walked.links.push((rel, first));
                        continue;
                    }
                }
                let kind = entry_kind(&meta);
                if let Kind::File { size, .. } = kind {
                    batch_bytes += size;
                }
                batch.push(Entry {
                    rel,
                    kind,
                    attrs,
                    in_default_acl: default_acl,
                });
                if batch.len() == BATCH {
                    self.meter.more_to_do(std::mem::take(&mut batch_bytes));
                    queue.push(std::mem::take(&mut batch));
                }
            }
            if !batch.is_empty() {
                self.meter.more_to_do(batch_bytes);
                queue.push(batch);
            }
        }
        Ok(walked)
    }

    /// Creates the directory `rel` in the destination, or keeps the one there; for a kept
    /// one, returns the device of the filesystem it is on (another one when it is a mount
    /// point, which only a kept directory can be).
    fn make_dir(&self, rel: &Path, overwritten: &mut Vec<PathBuf>) -> anyhow::Result<Option<u64>> {
        let path = self.dest.join(rel);
        let create = || mkdirat(None, &path, Mode::S_IRWXU);
        let context = || format!("creating directory {}", path.display());
        match create() {
            Ok(()) => Ok(None),
            Err(Errno::EEXIST) => match path.symlink_metadata() {
                Ok(meta) if meta.is_dir() => Ok(Some(meta.dev())),
                _ => {
                    make_room(&path)?;
                    overwritten.push(rel.to_owned());
                    create().map_err(io::Error::from).with_context(context)?;
                    Ok(None)
                }
            },
            Err(e) => Err(io::Error::from(e)).with_context(context),
        }
    }

    /// Whether the destination's directory `rel` has a default ACL.
    fn has_default_acl(&self, rel: &Path) -> anyhow::Result<bool> {
        let path = self.dest.join(rel);
        // An empty buffer only asks for the value's size.
        match lgetxattr(&path, ACL_DEFAULT, &mut []) {
            Ok(_) => Ok(true),
            Err(Errno::ENODATA | Errno::EOPNOTSUPP) => Ok(false),
            Err(e) => Err(io::Error::from(e))
                .with_context(|| format!("reading the ACL of {}", path.display())),
        }
    }

    /// A worker: creates the entries of the batches it takes from `queue` until it is
    /// closed and empty, or something `failed`; returns its counts and the entries it
    /// replaced.
    fn work(
        &self,
        queue: &Queue,
        failed: &AtomicBool,
    ) -> anyhow::Result<(CopyReport, Vec<PathBuf>)> {
        let mut report = CopyReport::default();
        let mut overwritten = Vec::new();
        while let Some(batch) = queue.pop() {
            for entry in &batch {
                if failed.load(Ordering::Relaxed) {
                    return Ok((report, overwritten));
                }
                let done = self.create(entry, &mut overwritten);
                if done.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                let bytes = done?;
                if bytes > 0 {
                    self.meter.add(bytes);
                }
                report.bytes += bytes;
                report.files += 1;
            }
        }
        Ok((report, overwritten))
    }

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

/// [`Copy::set_path_attrs`] from the source's `from` to the destination's `to`.
fn set_attrs_by_path(from: &Path, to: &Path, attrs: &Attrs, acls: &[&CStr]) -> io::Result<()> {
    let (uid, gid) = attrs.owner();
    fchownat(None, to, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    copy_xattrs(
        |list| llistxattr(from, list),
        |name, value| lgetxattr(from, name, value),
        |name, value| lsetxattr(to, name, value),
        acls,
        |name| lremovexattr(to, name),
    )?;
    if attrs.file_type() != SFlag::S_IFLNK {
        fchmodat(None, to, attrs.permissions(), FchmodatFlags::FollowSymlink)?;
    }
    let (atime, mtime) = attrs.times();
    utimensat(None, to, &atime, &mtime, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
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

/// Opens a source file for reading without moving its access time (`O_NOATIME`, which
/// only its owner or root may ask for; anyone else reads it the ordinary way).
fn open_source(path: &Path) -> io::Result<File> {
    let no_atime = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOATIME.bits())
        .open(path);
    match no_atime {
        Err(e) if e.raw_os_error() == Some(Errno::EPERM as i32) => File::open(path),
        other => other,
    }
}

/// The owner, extended attributes (without those of `acls` that `src` does not have),
/// mode and times of `src` onto the new `dst`. The file
/// was created with its permission bits, so most files (owned by root, as the copy runs)
/// need neither a change of owner nor of mode: one `fstat` finds out, where `fchown` and
/// `fchmod` would each write the inode.
fn set_file_attrs(src: &File, dst: &File, attrs: &Attrs, acls: &[&CStr]) -> io::Result<()> {
    let created = fstat(dst.as_raw_fd())?;
    let chown = (created.st_uid, created.st_gid) != (attrs.uid, attrs.gid);
    if chown {
        let (uid, gid) = attrs.owner();
        fchown(dst.as_raw_fd(), uid, gid)?;
    }
    let xattrs = copy_xattrs(
        |list| flistxattr(src, list),
        |name, value| fgetxattr(src, name, value),
        |name, value| fsetxattr(dst, name, value),
        acls,
        |name| fremovexattr(dst, name),
    )?;
    if chmod_needed(created.st_mode, attrs.mode, chown || xattrs) {
        fchmod(dst.as_raw_fd(), attrs.permissions())?;
    }
    let (atime, mtime) = attrs.times();
    futimens(dst.as_raw_fd(), &atime, &mtime)?;
    Ok(())
}

/// Whether a new file whose mode is `current` still needs `fchmod` to get the mode
/// `wanted`: when its permission bits differ, and always after `touched` (a change of owner
/// clears setuid and setgid bits, an ACL rewrites the group bits).
fn chmod_needed(current: u32, wanted: u32, touched: bool) -> bool {
    touched || current & 0o7777 != wanted & 0o7777
}

/// Copies every extended attribute that `list` names from `get` to `set`, then has
/// `remove` take away each of `acls` that `list` does not name (an ACL inherited from the
/// destination directory, or one that a kept directory had); returns whether anything was
/// set or removed.
fn copy_xattrs(
    list: impl Fn(&mut [u8]) -> nix::Result<usize>,
    get: impl Fn(&CStr, &mut [u8]) -> nix::Result<usize>,
    set: impl Fn(&CStr, &[u8]) -> nix::Result<()>,
    acls: &[&CStr],
    remove: impl Fn(&CStr) -> nix::Result<()>,
) -> io::Result<bool> {
    let mut buf = [0u8; 1024];
    let grown;
    let names: &[u8] = match list(&mut buf) {
        Ok(len) => &buf[..len],
        // A source filesystem without extended attributes has none to copy.
        Err(Errno::EOPNOTSUPP) => &[],
        Err(Errno::ERANGE) => {
            grown = read_grown(&list)?;
            &grown
        }
        Err(e) => return Err(e.into()),
    };
    let mut value = [0u8; 1024];
    for name in xattr_names(names) {
        let failed = |e: Errno| {
            let e = io::Error::from(e);
            io::Error::other(format!("extended attribute {name:?}: {e}"))
        };
        match get(name, &mut value) {
            Ok(len) => set(name, &value[..len]),
            Err(Errno::ERANGE) => set(name, &read_grown(|buf| get(name, buf)).map_err(failed)?),
            // Removed while the copy ran: nothing to copy.
            Err(Errno::ENODATA) => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(failed)?;
    }
    let mut removed = false;
    for &acl in missing(acls, names) {
        match remove(acl) {
            Ok(()) => removed = true,
            // The destination has none either.
            Err(Errno::ENODATA | Errno::EOPNOTSUPP) => {}
            Err(e) => {
                let e = io::Error::from(e);
                return Err(io::Error::other(format!("removing {acl:?}: {e}")));
            }
        }
    }
    Ok(removed || !names.is_empty())
}

/// Those of `wanted` that the `listxattr` result `list` does not name.
fn missing<'a, 'b>(wanted: &'a [&'b CStr], list: &[u8]) -> Vec<&'a &'b CStr> {
    wanted
        .iter()
        .filter(|name| !xattr_names(list).any(|listed| listed == **name))
        .collect()
}

/// Calls `read` with ever larger buffers until its result fits (extended attribute lists
/// and values are at most 64 KiB).
fn read_grown(read: impl Fn(&mut [u8]) -> nix::Result<usize>) -> nix::Result<Vec<u8>> {
    let mut size = 4096;
    loop {
        let mut buf = vec![0u8; size];
        match read(&mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(Errno::ERANGE) if size < 1 << 20 => size *= 4,
            Err(e) => return Err(e),
        }
    }
}

/// The most `sendfile` moves in one call.
const SENDFILE_MAX: usize = 0x7fff_f000;

/// Copies the `size` bytes of `src` to the new, empty `dst` inside the kernel, or through
/// a buffer when the source filesystem cannot splice. A source that turns out shorter is
/// copied as far as it goes.
fn copy_data(src: &File, dst: &File, size: u64) -> io::Result<()> {
    let mut copied = 0u64;
    while copied < size {
        let want = usize::try_from(size - copied).map_or(SENDFILE_MAX, |n| n.min(SENDFILE_MAX));
        match sendfile(dst, src, None, want) {
            Ok(0) => break,
            Ok(n) => copied += n as u64,
            Err(Errno::EINVAL | Errno::ENOSYS) if copied == 0 => {
                io::copy(&mut ReadOnly(src), &mut &*dst)?;
                break;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A reader that is only a reader, so that [`io::copy`] takes its generic buffered path.
struct ReadOnly<'a>(&'a File);

impl Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self.0).read(buf)
    }
}

/// Copies the data extents of the sparse `src` (`size` bytes) to the new `dst`, leaving
/// its holes as holes.
fn copy_extents(src: &File, dst: &File, size: u64) -> io::Result<()> {
    for (start, end) in data_extents(src, size)? {
        let mut at = i64::try_from(start).map_err(io::Error::other)?;
        let end = i64::try_from(end).map_err(io::Error::other)?;
        lseek(dst.as_raw_fd(), at, Whence::SeekSet)?;
        while at < end {
            let want = usize::try_from(end - at).map_or(SENDFILE_MAX, |n| n.min(SENDFILE_MAX));
            match sendfile(dst, src, Some(&mut at), want) {
                Ok(0) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    ftruncate(dst, i64::try_from(size).map_err(io::Error::other)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_when_fewer_blocks_than_bytes() {
        assert!(is_sparse(1 << 20, 8));
        assert!(!is_sparse(4096, 8));
        assert!(!is_sparse(100, 8));
        // Inline or not yet allocated data counts as sparse: SEEK_DATA still finds it.
        assert!(is_sparse(100, 0));
        assert!(!is_sparse(0, 0));
    }

    #[test]
    fn a_sparse_file_is_copied_with_its_holes() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        // Data in the middle and at the end; data in the middle and a hole at the end.
        for tail in [true, false] {
            let (from, to) = (dir.path().join("from"), dir.path().join("to"));
            let size = 8u64 << 20;
            let src = File::create(&from).unwrap();
            src.set_len(size).unwrap();
            src.write_all_at(&[7u8; 4096], 1 << 20).unwrap();
            if tail {
                src.write_all_at(b"end", size - 3).unwrap();
            }
            let src = File::open(&from).unwrap();
            let dst = File::create(&to).unwrap();
            copy_extents(&src, &dst, size).unwrap();
            assert!(fs::read(&from).unwrap() == fs::read(&to).unwrap());
            let meta = to.metadata().unwrap();
            assert_eq!(meta.len(), size);
            assert!(meta.blocks() * 512 < 1 << 20, "holes stay holes: {meta:?}");
        }
    }

    #[test]
    fn first_name_per_destination_filesystem_is_copied_the_rest_linked() {
        let mut table = LinkTable::default();
        let first = Path::new("usr/bin/a");
        assert_eq!(table.place(1, 10, 100, first), None);
        assert_eq!(
            table.place(1, 10, 100, Path::new("usr/bin/b")),
            Some(first.into())
        );
        // The same source inode on another destination filesystem: copied again there.
        let other = Path::new("usr/share/common/c");
        assert_eq!(table.place(1, 10, 200, other), None);
        assert_eq!(
            table.place(1, 10, 200, Path::new("usr/share/common/d")),
            Some(other.into())
        );
        // Same inode number on another source device: another file.
        assert_eq!(table.place(2, 10, 100, Path::new("x")), None);
        assert_eq!(table.place(1, 10, 100, Path::new("y")), Some(first.into()));
    }

    #[test]
    fn xattr_list_splits_on_nul() {
        let names: Vec<&CStr> =
            xattr_names(b"user.a\0security.capability\0system.posix_acl_access\0").collect();
        assert_eq!(
            names,
            [
                c"user.a",
                c"security.capability",
                c"system.posix_acl_access"
            ]
        );
        assert_eq!(xattr_names(b"").count(), 0);
        // A truncated last name (no NUL) is not a name.
        assert_eq!(xattr_names(b"user.a\0user.b").count(), 1);
    }

    #[test]
    fn acls_missing_from_the_source_list() {
        let both = [ACL_ACCESS, ACL_DEFAULT];
        let list = b"user.a\0system.posix_acl_default\0";
        assert_eq!(missing(&both, list), [&ACL_ACCESS]);
        assert_eq!(missing(&both, b""), [&ACL_ACCESS, &ACL_DEFAULT]);
        let all = b"system.posix_acl_access\0system.posix_acl_default\0";
        assert!(missing(&both, all).is_empty());
        assert!(missing(&[], list).is_empty());
    }

    #[test]
    fn attrs_split_mode_and_times() {
        let attrs = Attrs {
            mode: 0o104_755,
            uid: 1234,
            gid: 5678,
            atime: (10, 20),
            mtime: (30, 40),
        };
        assert_eq!(attrs.permissions(), Mode::from_bits_truncate(0o4755));
        assert_eq!(attrs.file_type(), SFlag::S_IFREG);
        let (atime, mtime) = attrs.times();
        assert_eq!((atime.tv_sec(), atime.tv_nsec()), (10, 20));
        assert_eq!((mtime.tv_sec(), mtime.tv_nsec()), (30, 40));
        let (uid, gid) = attrs.owner();
        assert_eq!(uid.map(Uid::as_raw), Some(1234));
        assert_eq!(gid.map(Gid::as_raw), Some(5678));
    }

    #[test]
    fn chmod_only_when_the_bits_differ_or_owner_or_acl_changed_them() {
        assert!(!chmod_needed(0o100_644, 0o100_644, false));
        assert!(chmod_needed(0o100_644, 0o100_664, false));
        // Setuid is never given at creation, and umask may take bits away.
        assert!(chmod_needed(0o100_755, 0o104_755, false));
        assert!(chmod_needed(0o100_755, 0o101_777, false));
        assert!(chmod_needed(0o100_644, 0o100_644, true));
    }

    #[test]
    fn grown_read_retries_until_it_fits() {
        let value = vec![7u8; 10_000];
        let read = |buf: &mut [u8]| {
            if buf.len() < value.len() {
                Err(Errno::ERANGE)
            } else {
                buf[..value.len()].copy_from_slice(&value);
                Ok(value.len())
            }
        };
        assert_eq!(read_grown(read).unwrap(), value);
        assert_eq!(read_grown(|_| Err(Errno::ERANGE)), Err(Errno::ERANGE));
    }
}
