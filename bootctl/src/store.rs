//! Reading and writing the boot files of a mounted multiboot tree. The only module of
//! bootctl that writes files.

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use shared::atomic::{self, Lock, LockError};
use shared::bootinfo::BootInfo;
use shared::grubenv::GrubEnv;

use crate::change::Change;
use crate::exit::{fail, Code};
use crate::signals;
use crate::view::BootFiles;

/// The largest grub.cfg, grubenv or boot-info.json bootctl reads: 16 MiB. Real ones are
/// kilobytes (grubenv is exactly 1024 bytes, a grub-mkconfig menu of dozens of kernels
/// stays under 1 MiB); a larger file, or one that never ends, is refused, not read into
/// memory.
pub const MAX_BOOT_FILE_BYTES: u64 = 16 << 20;

/// How long `switch` waits for another bootctl to finish before giving up with "busy".
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt at the lock waits before bootctl checks for Ctrl-C.
const LOCK_STEP: Duration = Duration::from_millis(200);

/// The boot files of a multiboot tree: `boot/grub/grub.cfg` and `boot/grub/grubenv` (or
/// `boot/grub2/...`, see [`find_grub_dir`]; or
/// `grub/...` when the tree is a /boot directory) and `boot-info.json` at its root.
#[derive(Debug, Clone)]
pub struct BootDir {
    pub root: PathBuf,
    pub grub_dir: PathBuf,
    /// How messages name the tree when `root` means nothing to the reader (a mount of
    /// bootctl's own run): the device, its files as `DEVICE:PATH`.
    shown_root: Option<String>,
}

impl BootDir {
    /// The tree at `root`, named `shown_root` in messages if given (else by `root`).
    pub fn open(root: &Path, shown_root: Option<&str>) -> anyhow::Result<BootDir> {
        let shown = shown_root.map_or_else(|| root.display().to_string(), str::to_owned);
        let not_multiboot = || {
            fail(
                Code::NotFound,
                format!(
                    "{shown} holds no boot/grub/grub.cfg or boot/grub2/grub.cfg: \
                     not a multiboot partition"
                ),
            )
        };
        let grub_dir = find_grub_dir(root);
        let dir = BootDir {
            root: root.to_owned(),
            grub_dir: grub_dir.ok_or_else(not_multiboot)?,
            shown_root: shown_root.map(str::to_owned),
        };
        dir.check_inside()?;
        if !dir.grub_cfg().exists() {
            return Err(not_multiboot());
        }
        Ok(dir)
    }

    /// The grub directory and the boot files must resolve inside the tree: a symlink that
    /// leads out of it (to the running system's files, once the partition is mounted)
    /// would have `switch` write there. The kernel resolves each path beneath the tree's
    /// root (`openat2` with `RESOLVE_BENEATH`, Linux 5.6), which refuses absolute links and
    /// `..` above the root; older kernels get the same answer from the canonical paths.
    fn check_inside(&self) -> anyhow::Result<()> {
        let root = fs::File::open(&self.root)
            .with_context(|| format!("reading {}", self.shown(&self.root)))?;
        for path in self.checked_paths() {
            let inside = path.strip_prefix(&self.root).unwrap_or(&path);
            match resolve_beneath(&root, inside) {
                Err(Errno::EXDEV) => return Err(self.leads_out(&path, None)),
                Err(Errno::ENOSYS) => return self.check_inside_by_canonical_paths(),
                // Missing files, and any other trouble, are met where the file is read.
                _ => {}
            }
        }
        Ok(())
    }

    /// What [`BootDir::check_inside`] checks: the grub directory and the boot files.
    fn checked_paths(&self) -> [PathBuf; 4] {
        [
            self.grub_dir.clone(),
            self.grub_cfg(),
            self.grubenv(),
            self.boot_info(),
        ]
    }

    fn check_inside_by_canonical_paths(&self) -> anyhow::Result<()> {
        let root = fs::canonicalize(&self.root)
            .with_context(|| format!("reading {}", self.shown(&self.root)))?;
        for path in self.checked_paths() {
            if let Ok(real) = fs::canonicalize(&path) {
                if !real.starts_with(&root) {
                    return Err(self.leads_out(&path, Some(&real)));
                }
            }
        }
        Ok(())
    }

    fn leads_out(&self, path: &Path, to: Option<&Path>) -> anyhow::Error {
        let to = to.map_or(String::new(), |to| format!(" (to {})", to.display()));
        fail(
            Code::Config,
            format!(
                "{}: a symlink that leads out of {}{to}",
                self.shown(path),
                self.shown(&self.root)
            ),
        )
    }

    pub fn grub_cfg(&self) -> PathBuf {
        self.grub_dir.join("grub.cfg")
    }

    pub fn grubenv(&self) -> PathBuf {
        self.grub_dir.join("grubenv")
    }

    pub fn boot_info(&self) -> PathBuf {
        self.root.join("boot-info.json")
    }

    /// Path of a file relative to the tree's root, for reports.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// A path in the tree as messages name it: `DEVICE:PATH` (the device alone for the
    /// root) in a mount of bootctl's own run, else the path itself.
    pub fn shown(&self, path: &Path) -> String {
        match &self.shown_root {
            Some(root) if path == self.root => root.clone(),
            Some(root) => format!("{root}:{}", self.relative(path)),
            None => path.display().to_string(),
        }
    }

    pub fn read(&self) -> anyhow::Result<BootFiles> {
        let grub_cfg_shown = self.shown(&self.grub_cfg());
        let grub_cfg = read_boot_file(&self.grub_cfg(), &grub_cfg_shown)?.ok_or_else(|| {
            fail(
                Code::Config,
                format!("{grub_cfg_shown}: vanished while bootctl ran"),
            )
        })?;
        let grub_cfg = utf8_text(&grub_cfg_shown, grub_cfg)?;
        let grubenv_shown = self.shown(&self.grubenv());
        let grubenv = read_boot_file(&self.grubenv(), &grubenv_shown)?
            .map(|bytes| {
                GrubEnv::parse(&bytes)
                    .map_err(|err| fail(Code::Config, format!("{grubenv_shown}: {err}")))
            })
            .transpose()?;
        let boot_info_shown = self.shown(&self.boot_info());
        let boot_info = read_boot_file(&self.boot_info(), &boot_info_shown)?
            .map(|bytes| parse_boot_info(&boot_info_shown, bytes))
            .transpose()?;
        Ok(BootFiles {
            grub_cfg,
            grubenv,
            boot_info,
        })
    }

    /// Serialise writers: another bootctl switching the same tree waits, then gets "busy".
    /// The lock is a flock on the tree's root directory, so no lock file is left behind.
    /// The wait goes in short steps so that Ctrl-C ends it at once.
    pub fn lock(&self) -> anyhow::Result<Lock> {
        let started = Instant::now();
        loop {
            match atomic::lock(&self.root, LOCK_STEP) {
                Ok(lock) => {
                    shared::fault::point("lock:acquired");
                    return Ok(lock);
                }
                Err(LockError::Busy { .. }) if started.elapsed() < LOCK_TIMEOUT => signals::check()?,
                Err(LockError::Busy { .. }) => {
                    return Err(fail(
                        Code::Busy,
                        format!(
                            "busy: another bootctl is switching {} (waited {LOCK_TIMEOUT:?}); try again",
                            self.shown(&self.root)
                        ),
                    ))
                }
                Err(other) => return Err(anyhow::Error::new(other)),
            }
        }
    }

    /// Remove the temp files of a bootctl killed between writing and renaming
    /// (`.grub.cfg.PID.N.tmp` and the like). GRUB never reads them; call under the lock.
    pub fn sweep_temp_files(&self) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for target in [self.grub_cfg(), self.grubenv(), self.boot_info()] {
            let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
                continue;
            };
            let prefix = format!(".{}.", name.to_string_lossy());
            for entry in
                fs::read_dir(dir).with_context(|| format!("listing {}", self.shown(dir)))?
            {
                let path = entry
                    .with_context(|| format!("listing {}", self.shown(dir)))?
                    .path();
                let file_name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if file_name.starts_with(&prefix) && file_name.ends_with(".tmp") {
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", self.shown(&path)))?;
                    removed.push(self.relative(&path));
                }
            }
        }
        Ok(removed)
    }

    /// Write a change, each file replaced crash-safely. What GRUB reads goes first;
    /// boot-info.json, which only mirrors it, goes last. Returns the files written.
    pub fn write(&self, change: &Change) -> anyhow::Result<Vec<String>> {
        let mut written = Vec::new();
        if let Some(text) = &change.grub_cfg {
            self.replace(&self.grub_cfg(), text.as_bytes())?;
            written.push(self.relative(&self.grub_cfg()));
        }
        if let Some(env) = &change.grubenv {
            let bytes = env
                .to_bytes()
                .map_err(|err| fail(Code::Config, format!("grubenv: {err}")))?;
            self.replace(&self.grubenv(), &bytes)?;
            written.push(self.relative(&self.grubenv()));
        }
        if let Some(info) = &change.boot_info {
            self.replace(&self.boot_info(), info.to_json().as_bytes())?;
            written.push(self.relative(&self.boot_info()));
        }
        Ok(written)
    }

    /// The files a change would write, for `--dry-run`.
    pub fn would_write(&self, change: &Change) -> Vec<String> {
        [
            (change.grub_cfg.is_some(), self.grub_cfg()),
            (change.grubenv.is_some(), self.grubenv()),
            (change.boot_info.is_some(), self.boot_info()),
        ]
        .into_iter()
        .filter(|(changed, _)| *changed)
        .map(|(_, path)| self.relative(&path))
        .collect()
    }

    fn replace(&self, path: &Path, contents: &[u8]) -> anyhow::Result<()> {
        let mode = fs::metadata(path)
            .map(|meta| meta.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        atomic::replace_file(path, contents, mode)
            .with_context(|| format!("writing {}", self.shown(path)))
    }
}

/// Whether this kernel resolves paths beneath a directory (`openat2`, Linux 5.6), which
/// [`BootDir`] needs to check a tree that has no path of its own (a detached mount).
pub fn can_resolve_beneath() -> bool {
    let here = fs::File::open("/");
    here.is_ok_and(|dir| resolve_beneath(&dir, Path::new(".")) != Err(Errno::ENOSYS))
}

/// Resolves `path` beneath the directory `dir` as the kernel would open it, following
/// symlinks that stay inside: `EXDEV` if it leads out, `ENOSYS` on a kernel without
/// `openat2`.
fn resolve_beneath(dir: &fs::File, path: &Path) -> Result<(), Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut result = Err(Errno::EAGAIN);
    // EAGAIN: a rename elsewhere in the filesystem during the walk; walk again, a few times.
    for _ in 0..RESOLVE_ATTEMPTS {
        result = openat2(dir.as_raw_fd(), path, how).map(|fd| {
            // SAFETY: openat2 returned a new descriptor that nothing else owns.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        });
        if result != Err(Errno::EAGAIN) {
            break;
        }
    }
    result
}

/// How often [`resolve_beneath`] walks a path that renames keep disturbing.
const RESOLVE_ATTEMPTS: u32 = 16;

/// The grub directory of the tree at `root`: `boot/grub` (GRUB's own name, the deployer's),
/// `boot/grub2` (what Bareon writes: `grub2-install`'s name on CentOS), or `grub` and
/// `grub2` when the tree is a /boot directory; the first that holds grub.cfg. Where both
/// names do, the one holding GRUB's modules (`i386-pc` or `x86_64-efi`), which is the
/// one the core image was made for. Any kind of file counts: one that is not a regular
/// file is refused when it is read. A symlink that leads nowhere inside the tree is looked
/// at too, so that one leading out of it is named as such.
pub fn find_grub_dir(root: &Path) -> Option<PathBuf> {
    let candidates = ["boot/grub", "boot/grub2", "grub", "grub2"].map(|dir| root.join(dir));
    let has_cfg = |dir: &&PathBuf| dir.join("grub.cfg").exists();
    let has_modules = |dir: &&PathBuf| {
        ["i386-pc", "x86_64-efi"]
            .iter()
            .any(|p| dir.join(p).is_dir())
    };
    candidates
        .iter()
        .filter(has_cfg)
        .find(has_modules)
        .or_else(|| candidates.iter().find(has_cfg))
        .or_else(|| {
            candidates
                .iter()
                .find(|dir| fs::symlink_metadata(dir.join("grub.cfg")).is_ok())
        })
        .cloned()
}

/// The bytes of one of the boot files, `None` if it does not exist. A file that is not a
/// regular file (a FIFO would block, a device may never end) or that is larger than
/// [`MAX_BOOT_FILE_BYTES`] is refused with exit status 6, without reading it whole.
/// Messages name the file `shown`.
pub fn read_boot_file(path: &Path, shown: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(anyhow::Error::new(err).context(format!("reading {shown}"))),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {shown}"))?;
    if !meta.is_file() {
        return Err(fail(Code::Config, format!("{shown}: not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BOOT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {shown}"))?;
    if bytes.len() as u64 > MAX_BOOT_FILE_BYTES {
        return Err(fail(
            Code::Config,
            format!(
                "{shown}: larger than {} MiB, the most bootctl reads of a boot file",
                MAX_BOOT_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(Some(bytes))
}

/// `bytes` as text; not UTF-8 is exit status 6, naming the first bad byte and its line.
fn utf8_text(shown: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        let line = 1 + err.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        fail(
            Code::Config,
            format!("{shown}: not UTF-8 text (invalid byte at offset {offset}, line {line})"),
        )
    })
}

/// boot-info.json read from `bytes`: UTF-8 JSON that [`BootInfo::from_json`] accepts, else
/// exit status 6 naming the file `shown`.
pub fn parse_boot_info(shown: &str, bytes: Vec<u8>) -> anyhow::Result<BootInfo> {
    let text = utf8_text(shown, bytes)?;
    BootInfo::from_json(&text).map_err(|err| fail(Code::Config, format!("{shown}: {err}")))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use e2e::tmp::TempDir;

    use super::{find_grub_dir, BootDir};
    use crate::exit::{code_of, Code};

    fn tree(files: &[&str]) -> TempDir {
        let dir = TempDir::new("grub-dir");
        for file in files {
            let path = dir.path().join(file);
            if file.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, "").unwrap();
            }
        }
        dir
    }

    fn found(files: &[&str]) -> Option<String> {
        let dir = tree(files);
        find_grub_dir(dir.path()).map(|found| {
            found
                .strip_prefix(dir.path())
                .unwrap()
                .display()
                .to_string()
        })
    }

    #[test]
    fn bareons_boot_grub2_is_found_and_boot_grub_comes_first() {
        assert_eq!(
            found(&["boot/grub2/grub.cfg"]).as_deref(),
            Some("boot/grub2")
        );
        assert_eq!(found(&["grub2/grub.cfg"]).as_deref(), Some("grub2"));
        assert_eq!(
            found(&["boot/grub/grub.cfg", "boot/grub2/grub.cfg"]).as_deref(),
            Some("boot/grub")
        );
        assert_eq!(found(&["boot/grub2/i386-pc/"]), None);
    }

    #[test]
    fn where_both_hold_a_grub_cfg_the_one_with_grubs_modules_wins() {
        let files = [
            "boot/grub/grub.cfg",
            "boot/grub2/grub.cfg",
            "boot/grub2/i386-pc/",
        ];
        assert_eq!(found(&files).as_deref(), Some("boot/grub2"));
    }

    #[test]
    fn a_tree_without_either_names_both_and_exits_4() {
        let dir = tree(&["boot/grub2/i386-pc/"]);
        let err = BootDir::open(dir.path(), Some("/dev/vda2")).unwrap_err();
        assert_eq!(code_of(&err), Code::NotFound);
        assert!(err.to_string().contains("boot/grub2/grub.cfg"), "{err}");
    }
}
