//! The system calls the copy needs that nix 0.29 does not wrap: the extended attribute
//! calls. nix is the project's one OS-binding crate; these are thin wrappers over `libc`
//! in its style (paths as [`NixPath`], errors as [`Errno`]), so that the copy handles the
//! errors of every call the same way. Public for the copy's example and tests.
//!
//! The `l*` calls do not follow a symlink in the last component of `path`; the `f*` calls
//! act on an open file. As in the kernel's interface, an empty buffer asks `*listxattr`
//! and `*getxattr` for the size the result needs, and a buffer that is too small fails
//! with `ERANGE`.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::NixPath;

/// The names of the extended attributes of `path`, each NUL-terminated, into `list`;
/// returns their length in bytes.
pub fn llistxattr<P: ?Sized + NixPath>(path: &P, list: &mut [u8]) -> nix::Result<usize> {
    let len = path.with_nix_path(|path| {
        // SAFETY: `path` is a NUL-terminated string that lives through the call, and the
        // kernel writes at most `list.len()` bytes into `list`.
        unsafe { libc::llistxattr(path.as_ptr(), list.as_mut_ptr().cast(), list.len()) }
    })?;
    Errno::result(len).map(|len| len as usize)
}

/// The value of the extended attribute `name` of `path` into `value`; returns its length.
pub fn lgetxattr<P: ?Sized + NixPath>(
    path: &P,
    name: &CStr,
    value: &mut [u8],
) -> nix::Result<usize> {
    let len = path.with_nix_path(|path| {
        // SAFETY: `path` and `name` are NUL-terminated strings that live through the call,
        // and the kernel writes at most `value.len()` bytes into `value`.
        unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        }
    })?;
    Errno::result(len).map(|len| len as usize)
}

/// Sets the extended attribute `name` of `path` to `value`, creating or replacing it.
pub fn lsetxattr<P: ?Sized + NixPath>(path: &P, name: &CStr, value: &[u8]) -> nix::Result<()> {
    let res = path.with_nix_path(|path| {
        // SAFETY: `path` and `name` are NUL-terminated strings and `value` is `value.len()`
        // readable bytes, all living through the call; the kernel only reads them.
        unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        }
    })?;
    Errno::result(res).map(drop)
}

/// Removes the extended attribute `name` of `path`.
pub fn lremovexattr<P: ?Sized + NixPath>(path: &P, name: &CStr) -> nix::Result<()> {
    let res = path.with_nix_path(|path| {
        // SAFETY: `path` and `name` are NUL-terminated strings that live through the call.
        unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) }
    })?;
    Errno::result(res).map(drop)
}

/// [`llistxattr`] of an open file.
pub fn flistxattr(fd: impl AsFd, list: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: the descriptor is open while `fd` is borrowed, and the kernel writes at most
    // `list.len()` bytes into `list`.
    let len =
        unsafe { libc::flistxattr(fd.as_fd().as_raw_fd(), list.as_mut_ptr().cast(), list.len()) };
    Errno::result(len).map(|len| len as usize)
}

/// [`lgetxattr`] of an open file.
pub fn fgetxattr(fd: impl AsFd, name: &CStr, value: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: the descriptor is open while `fd` is borrowed, `name` is a NUL-terminated
    // string, and the kernel writes at most `value.len()` bytes into `value`.
    let len = unsafe {
        libc::fgetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    Errno::result(len).map(|len| len as usize)
}

/// [`lsetxattr`] of an open file.
pub fn fsetxattr(fd: impl AsFd, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: the descriptor is open while `fd` is borrowed, `name` is a NUL-terminated
    // string and `value` is `value.len()` readable bytes; the kernel only reads them.
    let res = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(res).map(drop)
}

/// [`lremovexattr`] of an open file.
pub fn fremovexattr(fd: impl AsFd, name: &CStr) -> nix::Result<()> {
    // SAFETY: the descriptor is open while `fd` is borrowed, and `name` is a
    // NUL-terminated string.
    let res = unsafe { libc::fremovexattr(fd.as_fd().as_raw_fd(), name.as_ptr()) };
    Errno::result(res).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_list_get_and_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        match lsetxattr(&path, c"user.test", b"value") {
            Ok(()) => {}
            // A scratch filesystem without user xattrs (tmpfs before Linux 6.6): nothing to test.
            Err(Errno::EOPNOTSUPP) => return,
            Err(e) => panic!("lsetxattr: {e}"),
        }
        let mut list = [0u8; 256];
        let len = llistxattr(&path, &mut list).unwrap();
        assert_eq!(llistxattr(&path, &mut []).unwrap(), len, "size query");
        assert!(list[..len]
            .split(|&b| b == 0)
            .any(|name| name == b"user.test"));
        let mut value = [0u8; 16];
        assert_eq!(lgetxattr(&path, c"user.test", &mut value), Ok(5));
        assert_eq!(&value[..5], b"value");
        assert_eq!(
            lgetxattr(&path, c"user.test", &mut value[..2]),
            Err(Errno::ERANGE)
        );
        assert_eq!(fgetxattr(&file, c"user.test", &mut []), Ok(5), "size query");

        fsetxattr(&file, c"user.other", b"xy").unwrap();
        assert_eq!(fgetxattr(&file, c"user.other", &mut value), Ok(2));
        assert_eq!(flistxattr(&file, &mut list), llistxattr(&path, &mut list));
        fremovexattr(&file, c"user.other").unwrap();
        lremovexattr(&path, c"user.test").unwrap();
        assert_eq!(
            lgetxattr(&path, c"user.test", &mut value),
            Err(Errno::ENODATA)
        );
        assert_eq!(lremovexattr(&path, c"user.test"), Err(Errno::ENODATA));
    }

    #[test]
    fn a_missing_path_fails_with_enoent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        assert_eq!(llistxattr(&path, &mut [0u8; 64]), Err(Errno::ENOENT));
        assert_eq!(lsetxattr(&path, c"user.a", b""), Err(Errno::ENOENT));
    }
}
