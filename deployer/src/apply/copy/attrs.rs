//! The attributes the copy gives each entry after its data: owner, extended attributes
//! (POSIX ACLs among them), mode and times, in that order.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{
    fchmod, fchmodat, fstat, futimens, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};

use super::sys::{
    fgetxattr, flistxattr, fremovexattr, fsetxattr, lgetxattr, llistxattr, lremovexattr, lsetxattr,
};

/// The attributes of a source entry that the copy gives its counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Attrs {
    pub(super) mode: u32,
    uid: u32,
    gid: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
}

impl Attrs {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
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
    pub(super) fn permissions(&self) -> Mode {
        Mode::from_bits_truncate(self.mode & 0o7777)
    }

    /// The file type bits (`S_IFMT`).
    pub(super) fn file_type(&self) -> SFlag {
        SFlag::from_bits_truncate(self.mode & SFlag::S_IFMT.bits())
    }

    /// The access and modification times.
    fn times(&self) -> (TimeSpec, TimeSpec) {
        let spec = |(sec, nsec): (i64, i64)| TimeSpec::new(sec, nsec);
        (spec(self.atime), spec(self.mtime))
    }
}

/// The extended attributes that hold POSIX ACLs.
pub(super) const ACL_ACCESS: &CStr = c"system.posix_acl_access";
pub(super) const ACL_DEFAULT: &CStr = c"system.posix_acl_default";

/// The names in a `listxattr` result: NUL-terminated, one after the other.
fn xattr_names(list: &[u8]) -> impl Iterator<Item = &CStr> {
    list.split_inclusive(|&b| b == 0)
        .filter_map(|name| CStr::from_bytes_with_nul(name).ok())
        .filter(|name| !name.is_empty())
}

/// Gives `to` (a directory, symlink or node) the owner of `attrs`, the extended attributes
/// of `from` (removing those of `acls` that `from` does not have), the mode of `attrs` (not
/// to a symlink) and its times, by path.
pub(super) fn set_attrs_by_path(
    from: &Path,
    to: &Path,
    attrs: &Attrs,
    acls: &[&CStr],
) -> io::Result<()> {
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

/// The owner, extended attributes (without those of `acls` that `src` does not have),
/// mode and times of `src` onto the new `dst`. The file
/// was created with its permission bits, so most files (owned by root, as the copy runs)
/// need neither a change of owner nor of mode: one `fstat` finds out, where `fchown` and
/// `fchmod` would each write the inode.
pub(super) fn set_file_attrs(
    src: &File,
    dst: &File,
    attrs: &Attrs,
    acls: &[&CStr],
) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
