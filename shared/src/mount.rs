//! Mount guards: mounts on a directory, detached mounts, and a private mount namespace.

use std::ffi::{CStr, CString};
use std::fs::DirBuilder;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::blockdev;

/// How often an unmount that fails with EBUSY is tried before giving up (or detaching lazily).
const UNMOUNT_ATTEMPTS: u32 = 5;
const UNMOUNT_PAUSE: Duration = Duration::from_millis(100);

/// How to mount a filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Mount read-only.
    pub read_only: bool,
    /// Filesystem type; `None` uses the type probed from the device.
    pub fstype: Option<String>,
}

/// A filesystem mounted by us: unmounted on drop (EBUSY is retried a few times, then the mount is
/// detached lazily), and its directory removed once the unmount succeeded.
#[derive(Debug)]
pub struct Mount {
    device: PathBuf,
    target: PathBuf,
    mounted: bool,
    created_dir: bool,
}

impl Mount {
    /// Mounts `dev` on a fresh private directory (mode 0700) under `base`, created if missing,
    /// with nosuid, nodev and noexec (and read-only if asked).
    pub fn new_temp(dev: &Path, base: &Path, opts: &MountOptions) -> io::Result<Mount> {
        let fstype = match &opts.fstype {
            Some(fstype) => fstype.clone(),
            None => probed_type(dev)?,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)
            .map_err(|e| context(e, format!("creating {}", base.display())))?;
        let target = private_dir(base, dev)?;
        match mount_with_flags(dev, &target, &fstype, opts) {
            Ok(()) => Ok(Mount {
                device: dev.to_owned(),
                target,
                mounted: true,
                created_dir: true,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&target);
                Err(e)
            }
        }
    }

    /// Mounts `dev` on `target`, an existing directory, with the same flags as
    /// [`Mount::new_temp`]. The directory is not ours: it is left in place after the unmount.
    pub fn at(dev: &Path, target: &Path, opts: &MountOptions) -> io::Result<Mount> {
        let fstype = match &opts.fstype {
            Some(fstype) => fstype.clone(),
            None => probed_type(dev)?,
        };
        mount_with_flags(dev, target, &fstype, opts)?;
        Ok(Mount {
            device: dev.to_owned(),
            target: target.to_owned(),
            mounted: true,
            created_dir: false,
        })
    }

    /// Bind-mounts the directory `source` on `target`, an existing directory, which is
    /// left in place after the unmount.
    pub fn bind(source: &Path, target: &Path) -> io::Result<Mount> {
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            context(
                e.into(),
                format!("binding {} on {}", source.display(), target.display()),
            )
        })?;
        Ok(Mount {
            device: source.to_owned(),
            target: target.to_owned(),
            mounted: true,
            created_dir: false,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now and reports failure instead of swallowing it in `Drop`. After an error the
    /// guard is dropped, which detaches the mount lazily.
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_retrying()?;
        self.remove_dir()
    }

    fn unmount_retrying(&mut self) -> io::Result<()> {
        let mut attempt = 1;
        loop {
            match umount2(&self.target, MntFlags::UMOUNT_NOFOLLOW) {
                Ok(()) => {
                    self.mounted = false;
                    return Ok(());
                }
                Err(Errno::EBUSY) if attempt < UNMOUNT_ATTEMPTS => {
                    attempt += 1;
                    sleep(UNMOUNT_PAUSE);
                }
                Err(e) => {
                    return Err(context(
                        e.into(),
                        format!(
                            "unmounting {} from {}",
                            self.device.display(),
                            self.target.display()
                        ),
                    ))
                }
            }
        }
    }

    fn remove_dir(&mut self) -> io::Result<()> {
        if self.created_dir && !self.mounted {
            std::fs::remove_dir(&self.target)
                .map_err(|e| context(e, format!("removing {}", self.target.display())))?;
            self.created_dir = false;
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted
            && self.unmount_retrying().is_err()
            && umount2(
                &self.target,
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            )
            .is_ok()
        {
            self.mounted = false;
        }
        let _ = self.remove_dir();
    }
}

/// A filesystem mounted where no path names it: `fsopen`, `fsconfig` and `fsmount` (Linux 5.2)
/// make a mount that belongs to no mount namespace and is reached only through its file
/// descriptor, as `/proc/self/fd/N`. No other process sees it, no directory is made for it,
/// and the kernel unmounts it when the descriptor is closed, also when the process is
/// killed. Mounted with nosuid, nodev, noexec and noatime (and read-only if asked), as
/// [`Mount`] is.
#[derive(Debug)]
pub struct DetachedMount {
    root: OwnedFd,
    path: PathBuf,
}

impl DetachedMount {
    /// Mounts `dev`, a `fstype` filesystem. `Ok(None)` when this kernel has no such calls or
    /// something (a seccomp filter, a missing capability) forbids them: the caller can fall
    /// back to [`Mount`], which says what is wrong if that fails too.
    pub fn new(dev: &Path, fstype: &str, read_only: bool) -> io::Result<Option<DetachedMount>> {
        let mounted = match detached_mount(dev, fstype, read_only) {
            // Small kernels may serve ext2/ext3 through the ext4 driver only.
            Err(Errno::ENODEV) if fstype == "ext2" || fstype == "ext3" => {
                detached_mount(dev, "ext4", read_only)
            }
            other => other,
        };
        match mounted {
            Ok(root) => {
                let path = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
                Ok(Some(DetachedMount { root, path }))
            }
            Err(Errno::ENOSYS | Errno::EPERM) => Ok(None),
            Err(e) => Err(context(
                e.into(),
                format!("mounting {} ({fstype})", dev.display()),
            )),
        }
    }

    /// The mount's root, for this process only.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts now: closes the descriptor, and the kernel unmounts the filesystem before
    /// `close` returns, unless a file in it is still open (then when the last one closes).
    pub fn unmount(self) {
        drop(self.root);
    }
}

/// `fsopen` + `fsconfig` + `fsmount` of `dev`; the new mount's descriptor.
fn detached_mount(dev: &Path, fstype: &str, read_only: bool) -> Result<OwnedFd, Errno> {
    let fstype = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
    let source = CString::new(dev.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fsopen takes a NUL-terminated string and flags; it returns a new descriptor,
    // owned from here on.
    let context = owned_fd(unsafe {
        libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC)
    })?;
    fsconfig(
        &context,
        libc::FSCONFIG_SET_STRING,
        c"source",
        Some(&source),
    )?;
    if read_only {
        fsconfig(&context, libc::FSCONFIG_SET_FLAG, c"ro", None)?;
    }
    fsconfig(&context, libc::FSCONFIG_CMD_CREATE, c"", None)?;
    // noatime: reading a file must not dirty its inode, which would cost a journal write at
    // unmount on every read-write use.
    let mut attributes = libc::MOUNT_ATTR_NOSUID
        | libc::MOUNT_ATTR_NODEV
        | libc::MOUNT_ATTR_NOEXEC
        | libc::MOUNT_ATTR_NOATIME;
    if read_only {
        attributes |= libc::MOUNT_ATTR_RDONLY;
    }
    // SAFETY: fsmount takes the filesystem context's descriptor, flags and attributes; it
    // returns a new descriptor, owned from here on.
    owned_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attributes,
        )
    })
}

/// One `fsconfig` call on the filesystem context `context`: `key` and, for a string
/// parameter, `value`; a command takes an empty key.
fn fsconfig(
    context: &OwnedFd,
    command: libc::c_uint,
    key: &CStr,
    value: Option<&CStr>,
) -> Result<(), Errno> {
    let key = if key.is_empty() {
        std::ptr::null()
    } else {
        key.as_ptr()
    };
    let value = value.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: the key and value are NUL-terminated strings (or null, where the command
    // takes none) that outlive the call; the context is an open descriptor.
    let result = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            command,
            key,
            value,
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// The descriptor a system call returned, or its error.
fn owned_fd(result: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = RawFd::try_from(Errno::result(result)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: the call succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Mounts `dev` (a `fstype` filesystem) on `target` with nosuid, nodev, noexec and noatime
/// (and read-only if asked).
fn mount_with_flags(
    dev: &Path,
    target: &Path,
    fstype: &str,
    opts: &MountOptions,
) -> io::Result<()> {
    // noatime: reading a file must not dirty its inode, which would cost a journal write at
    // unmount on every read-write use.
    let mut flags =
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOATIME;
    if opts.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    match mount(Some(dev), target, Some(fstype), flags, None::<&str>) {
        // Small kernels may serve ext2/ext3 through the ext4 driver only.
        Err(Errno::ENODEV) if fstype == "ext2" || fstype == "ext3" => {
            mount(Some(dev), target, Some("ext4"), flags, None::<&str>)
        }
        other => other,
    }
    .map_err(|e| {
        context(
            e.into(),
            format!(
                "mounting {} ({fstype}) on {}",
                dev.display(),
                target.display()
            ),
        )
    })
}

/// The mountable filesystem type found on `dev`.
fn probed_type(dev: &Path) -> io::Result<String> {
    match blockdev::probe(dev)? {
        Some(info) if info.fstype == "swap" => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds swap space, not a filesystem", dev.display()),
        )),
        Some(info) => Ok(info.fstype),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no known filesystem on {}", dev.display()),
        )),
    }
}

/// Creates a new directory, mode 0700, under `base`, named after the device, this process and
/// a counter. No randomness: early in boot, before the kernel's entropy pool is ready, a
/// random name could block a static binary for minutes.
fn private_dir(base: &Path, dev: &Path) -> io::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let stem = dev.file_name().and_then(|n| n.to_str()).unwrap_or("mount");
    let mut last_err = None;
    for _ in 0..64 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{stem}-{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(context(e, format!("creating {}", dir.display()))),
        }
    }
    Err(context(
        last_err.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into()),
        format!("creating a mount directory under {}", base.display()),
    ))
}

/// Moves this process into a private mount namespace (`unshare(CLONE_NEWNS)`, then `/` made
/// recursively private), so that its mounts are invisible to other processes and vanish with it
/// even if it is killed. Must be called while the process is single-threaded: the kernel would
/// move only the calling thread, so a multi-threaded process gets an error.
pub fn enter_private_namespace() -> io::Result<()> {
    if let Some(threads) = thread_count() {
        if threads > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "entering a private mount namespace needs a single-threaded process, \
                     this one has {threads} threads"
                ),
            ));
        }
    }
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| context(e.into(), "entering a private mount namespace".to_owned()))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| {
        context(
            e.into(),
            "making / private in the new mount namespace".to_owned(),
        )
    })
}

/// The number of threads of this process, from `/proc/self/status` (`None` without /proc).
fn thread_count() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

fn context(err: io::Error, what: String) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threaded_process_may_not_enter_a_namespace() {
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        let result = enter_private_namespace();
        drop(stop);
        let _ = other.join();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("single-threaded"), "{err}");
    }

    #[test]
    fn private_dirs_are_new_and_mode_0700() {
        let base = std::env::temp_dir().join(format!("mount-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&base).unwrap();
        let a = private_dir(&base, Path::new("/dev/loop3p2"));
        let b = private_dir(&base, Path::new("/"));
        let modes: Vec<u32> = [&a, &b]
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .filter_map(|d| std::fs::metadata(d).ok())
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .collect();
        for dir in [&a, &b].into_iter().flatten() {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir(&base);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(modes, [0o700, 0o700]);
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("loop3p2-"));
        assert!(b
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("mount-"));
        assert_ne!(a, b);
    }

    #[test]
    fn thread_count_sees_this_process() {
        assert!(thread_count().is_some_and(|n| n >= 1));
    }
}
