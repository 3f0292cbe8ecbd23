//! Disk images on loop devices, mounts, what the real tools say about a disk or a
//! filesystem (blkid, sha256sum, fstab), and file-tree snapshots.
//!
//! There is no udev on the machines these tests run on: after a partition table is
//! written, [`LoopDisk::partition`] asks the kernel to re-read it (`partx`) and polls for
//! the device node with a bounded timeout. Every guard releases what it holds on drop.

use std::collections::BTreeMap;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::{cmd, tools};

/// The lines `vda 10 GiB` (or `MiB`) of the `.disks` file `path` holding `text`: disk names
/// and sizes in bytes.
pub fn parse_disk_sizes(text: &str, path: &Path) -> Vec<(String, u64)> {
    text.lines()
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, number, "MiB"] => (name.to_owned(), number.parse::<u64>().unwrap() << 20),
                [name, number, "GiB"] => (name.to_owned(), number.parse::<u64>().unwrap() << 30),
                _ => panic!("{}: {line:?} is not `DISK SIZE MiB|GiB`", path.display()),
            },
        )
        .collect()
}

/// How long to wait for a partition's device node to appear.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(15);

/// A disk-image file attached to a loop device with partition scanning; detached on drop.
#[derive(Debug)]
pub struct LoopDisk {
    device: PathBuf,
}

impl LoopDisk {
    /// Creates a sparse image file of `size` bytes at `image` and attaches it.
    pub fn create(image: &Path, size: u64) -> Self {
        let file =
            fs::File::create(image).unwrap_or_else(|e| panic!("creating {}: {e}", image.display()));
        file.set_len(size)
            .unwrap_or_else(|e| panic!("sizing {}: {e}", image.display()));
        Self::attach(image)
    }

    /// Attaches an existing image file read-write.
    pub fn attach(image: &Path) -> Self {
        Self::attach_with(image, false)
    }

    /// Attaches an existing image file read-only.
    pub fn attach_read_only(image: &Path) -> Self {
        Self::attach_with(image, true)
    }

    fn attach_with(image: &Path, read_only: bool) -> Self {
        tools::require_tools(&["losetup", "partx"]);
        let mut losetup = Command::new("losetup");
        if read_only {
            losetup.arg("--read-only");
        }
        let device = cmd::run(losetup.args(["-fP", "--show"]).arg(image));
        LoopDisk {
            device: PathBuf::from(device.trim()),
        }
    }

    /// The whole-disk device, `/dev/loopN`.
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// Makes the kernel (re-)read the partition table: adds new partitions, updates
    /// changed ones. Either may fail harmlessly when there is nothing to do.
    pub fn reread_partitions(&self) {
        cmd::output(Command::new("partx").arg("-a").arg(&self.device));
        cmd::output(Command::new("partx").arg("-u").arg(&self.device));
    }

    /// The device node of partition `number`, waiting (bounded) for it to appear.
    pub fn partition(&self, number: u32) -> PathBuf {
        let node = PathBuf::from(format!("{}p{number}", self.device.display()));
        let deadline = Instant::now() + PARTITION_TIMEOUT;
        loop {
            if is_block_device(&node) {
                return node;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not appear within {PARTITION_TIMEOUT:?} (no udev: partx -a {} did not help)",
                    node.display(),
                    self.device.display()
                );
            }
            self.reread_partitions();
            thread::sleep(Duration::from_millis(200));
        }
    }
}

fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::metadata(path)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false)
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        for attempt in 0..10 {
            let out = cmd::output(Command::new("losetup").arg("-d").arg(&self.device));
            if out.status.success() {
                return;
            }
            if attempt == 9 {
                eprintln!(
                    "losetup -d {}: {}",
                    self.device.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A mounted filesystem; unmounted on drop, then its (created) mount point removed.
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
}

impl Mount {
    /// Mounts `device` on `target` (created if missing) with `mount -o options`
    /// (no `-o` when `options` is empty).
    pub fn new(device: &Path, target: &Path, options: &str) -> Self {
        tools::require_tools(&["mount", "umount"]);
        fs::create_dir_all(target).unwrap_or_else(|e| panic!("creating {}: {e}", target.display()));
        let mut mount = Command::new("mount");
        if !options.is_empty() {
            mount.args(["-o", options]);
        }
        cmd::run(mount.arg(device).arg(target));
        Mount {
            target: target.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        for attempt in 0..20 {
            let out = cmd::output(Command::new("umount").arg(&self.target));
            if out.status.success() {
                if let Err(e) = fs::remove_dir(&self.target) {
                    eprintln!("removing mount point {}: {e}", self.target.display());
                }
                return;
            }
            if attempt == 19 {
                eprintln!(
                    "umount {}: {}",
                    self.target.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

/// One partition of a disk-image file, attached and mounted; released on drop
/// (unmounted first, then detached).
#[derive(Debug)]
pub struct MountedPartition {
    mount: Mount,
    _disk: LoopDisk,
}

impl MountedPartition {
    /// Attaches `image` and mounts its partition `number` at `target`.
    pub fn new(image: &Path, number: u32, target: &Path, read_only: bool) -> Self {
        let disk = if read_only {
            LoopDisk::attach_read_only(image)
        } else {
            LoopDisk::attach(image)
        };
        let mount = Mount::new(
            &disk.partition(number),
            target,
            if read_only { "ro" } else { "" },
        );
        MountedPartition { mount, _disk: disk }
    }

    pub fn path(&self) -> &Path {
        self.mount.path()
    }
}

/// A sparse disk-image file of `size` bytes holding a GPT with one 100 MiB partition: a
/// disk that something else partitioned.
pub fn gpt_disk_file(path: &Path, size: u64) {
    fs::File::create(path)
        .and_then(|f| f.set_len(size))
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    cmd::run_with_input(
        Command::new("sfdisk").arg("--quiet").arg(path),
        "label: gpt\nsize=100MiB\n",
    );
}

/// `blkid -p -o export DEV` (a low-level probe, no cache) as a map: `TYPE`, `UUID`,
/// `LABEL`, `PTTYPE`... Empty when blkid finds nothing.
pub fn blkid(dev: &Path) -> BTreeMap<String, String> {
    let out = cmd::output(Command::new("blkid").args(["-p", "-o", "export"]).arg(dev));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The filesystem UUID of `dev`, by [`blkid`]; panics when it has none.
pub fn fs_uuid(dev: &Path) -> String {
    blkid(dev)
        .remove("UUID")
        .unwrap_or_else(|| panic!("{} has no UUID", dev.display()))
}

/// The SHA-256 of the whole file, by `sha256sum` (the tests' dependencies are built
/// without optimisation, too slow to hash a disk).
pub fn sha256(path: &Path) -> String {
    cmd::run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("sha256sum {} printed no digest", path.display()))
        .to_owned()
}

/// What tells whether a disk-image file was written, cheaply: its length, modification
/// time and a hash of its first and last 2 MiB (where a partition table lives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub len: u64,
    pub modified: SystemTime,
    pub ends_hash: u64,
}

/// The [`Fingerprint`] of the disk-image file at `path` (at least 2 MiB long).
pub fn fingerprint(path: &Path) -> Fingerprint {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut file =
        fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut hasher = DefaultHasher::new();
    let mut buf = vec![0u8; 2 << 20];
    for from in [SeekFrom::Start(0), SeekFrom::End(-(2 << 20))] {
        file.seek(from)
            .and_then(|_| file.read_exact(&mut buf))
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        buf.hash(&mut hasher);
    }
    Fingerprint {
        len: meta.len(),
        modified: meta.modified().expect("the file's modification time"),
        ends_hash: hasher.finish(),
    }
}

/// The UUID of the `UUID=` line of `fstab` (comments skipped) mounted at `mount_point`;
/// panics, showing the fstab, when there is none.
pub fn fstab_uuid(fstab: &str, mount_point: &str) -> String {
    fstab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(1) == Some(&mount_point))
                .then(|| fields[0].strip_prefix("UUID=").map(str::to_owned))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no UUID= line for {mount_point} in fstab:\n{fstab}"))
}

/// Every regular file and symlink below `root`, by relative path, with its contents
/// (a symlink's target for a symlink), for before/after comparisons.
pub fn snapshot_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                if rel != "lost+found" {
                    walk(root, &path, out);
                }
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).expect("read_link");
                out.insert(rel, target.into_os_string().into_encoded_bytes());
            } else {
                let bytes =
                    fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Paths that differ between two [`snapshot_tree`]s (added, removed or changed).
pub fn changed_paths(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut changed: Vec<String> = before
        .iter()
        .filter(|(path, bytes)| after.get(*path) != Some(bytes))
        .map(|(path, _)| path.clone())
        .chain(
            after
                .keys()
                .filter(|path| !before.contains_key(*path))
                .cloned(),
        )
        .collect();
    changed.sort();
    changed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::changed_paths;

    #[test]
    fn changed_paths_lists_added_removed_and_modified_files() {
        let tree = |files: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            files
                .iter()
                .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
                .collect()
        };
        let before = tree(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let after = tree(&[("a", "1"), ("b", "changed"), ("d", "new")]);
        assert_eq!(changed_paths(&before, &after), ["b", "c", "d"]);
        assert!(changed_paths(&before, &before).is_empty());
    }
}
