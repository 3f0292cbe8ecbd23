//! Step 1 of the copy: the walk of the source, which creates the directories and queues
//! everything else, and the workers, which create what it queued.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::stat::{mkdirat, Mode};

use super::attrs::{Attrs, ACL_DEFAULT};
use super::sys::lgetxattr;
use super::{entry_kind, make_room, Copy, CopyReport, Entry, Kind};

/// What the walk leaves for after the workers.
#[derive(Default)]
pub(super) struct Walked {
    /// Every directory (relative) with its attributes, a directory before its contents.
    pub(super) dirs: Vec<(PathBuf, Attrs)>,
    /// `(link, first)`: a further name of a hard-linked entry and the first name copied.
    pub(super) links: Vec<(PathBuf, PathBuf)>,
    /// The non-directories replaced by directories.
    pub(super) overwritten: Vec<PathBuf>,
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

impl Copy<'_> {
    /// Walks the source on this thread while `workers` threads create what it finds;
    /// returns what is left for after them, their counts and the entries they replaced.
    pub(super) fn walk_and_create(
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
