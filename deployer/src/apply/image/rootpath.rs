//! Paths inside an image, resolved as a chroot into it would resolve them: the image's
//! symlinks, absolute or climbing with `..`, never lead the deployer to a file of the host.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

/// Whether `rel` exists under `root` (as a file of any type, the last component not
/// followed if it is a symlink), judged as [`resolve_in`] does: nothing outside the image
/// is ever looked at.
pub fn exists_in(root: &Path, rel: &Path) -> bool {
    resolve_in(root, rel, false).is_some()
}

/// `rel`, a path in the image whose `/` is `root`, resolved as a chroot into `root` would
/// resolve it: every symlink on the way, absolute or relative, is followed inside `root`,
/// and `..` never climbs above it. Returns the path below `root` that has no symlink left
/// in it (the last component stays a symlink when `follow_last` is false), or `None` when
/// a component is missing, a component before the last is not a directory, or symlinks
/// nest deeper than 40 (a loop).
pub fn resolve_in(root: &Path, rel: &Path, follow_last: bool) -> Option<PathBuf> {
    const MAX_LINKS: usize = 40;
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut at = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            at.pop();
            continue;
        }
        let candidate = at.join(&part);
        let full = root.join(&candidate);
        let meta = std::fs::symlink_metadata(&full).ok()?;
        let last = pending.is_empty();
        if meta.file_type().is_symlink() && (follow_last || !last) {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&full).ok()?;
            if target.is_absolute() {
                at = PathBuf::new();
            }
            push_components(&mut pending, &target);
        } else if last {
            return Some(candidate);
        } else if meta.is_dir() {
            at = candidate;
        } else {
            return None;
        }
    }
    Some(at)
}

/// Where to write the file `rel` (such as `etc/fstab`) into the image whose root is
/// mounted at `root`, as the image itself sees that path: the symlinks among its
/// directories are followed inside `root` (an absolute link names the image's own path,
/// never the host's), missing directories are created, and a symlink in the file's own
/// place is left to be replaced, not followed.
pub fn file_in_image(root: &Path, rel: &Path) -> anyhow::Result<PathBuf> {
    let name = rel.file_name().context("not a file path")?;
    let mut dir = PathBuf::new();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        let next = dir.join(part);
        if std::fs::symlink_metadata(root.join(&next)).is_err() {
            std::fs::create_dir(root.join(&next))
                .with_context(|| format!("creating /{}", next.display()))?;
            dir = next;
            continue;
        }
        dir = resolve_in(root, &next, true)
            .filter(|resolved| root.join(resolved).is_dir())
            .with_context(|| {
                format!(
                    "/{} is not a directory, nor a symlink to one inside the image",
                    next.display()
                )
            })?;
    }
    Ok(root.join(dir).join(name))
}

/// Pushes the components of `path` onto `pending` so that the first is popped first:
/// names as they are, `..` as `..`, the root and `.` left out.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(part) => pending.push(part.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existence_is_judged_inside_the_image() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/libc.so"), b"").unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/usr/lib", root.join("lib-abs")).unwrap();
        symlink("../../usr/lib", root.join("usr/lib/up")).unwrap();
        symlink("/nowhere", root.join("dangling")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        // Outside the image: a file the absolute link would find on the host.
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/host-only"), b"").unwrap();
        let exists = |rel: &str| exists_in(&root, Path::new(rel));
        assert!(exists("usr/lib/libc.so"));
        assert!(exists("lib/libc.so"), "through a relative link");
        assert!(
            exists("lib-abs/libc.so"),
            "an absolute link stays in the image"
        );
        assert!(exists("usr/lib/up/libc.so"), "through ..");
        assert!(exists("dangling"), "the link itself is there");
        assert!(!exists("dangling/x"));
        assert!(!exists("loop/x"), "a symlink loop ends");
        assert!(!exists("usr/lib/libc.so/x"), "a file is not a directory");
        assert!(!exists("usr/lib/missing"));
        let host = dir.path().join("root/../usr/lib/host-only");
        assert!(host.exists(), "the host file is there");
        assert!(!exists("lib-abs/../../usr/lib/host-only"));
    }

    #[test]
    fn files_are_written_where_the_image_sees_them_never_on_the_host() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path();
        let root = host.join("root");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(host.join("usr/bin")).unwrap();
        std::fs::create_dir_all(host.join("host-etc")).unwrap();
        // /usr/sbin merged into /usr/bin, by an absolute link: the image's /usr/bin.
        symlink("/usr/bin", root.join("usr/sbin")).unwrap();
        let at = |rel: &str| file_in_image(&root, Path::new(rel)).map_err(|e| e.to_string());
        assert_eq!(at("usr/sbin/bootctl"), Ok(root.join("usr/bin/bootctl")));
        // Missing directories are made inside the image.
        assert_eq!(
            at("etc/multiboot/boot-info.json"),
            Ok(root.join("etc/multiboot/boot-info.json"))
        );
        assert!(root.join("etc/multiboot").is_dir());
        // A link to a host directory by its absolute path is the image's path, which it
        // lacks: refused, nothing made on the host or in the image.
        std::fs::remove_dir_all(root.join("etc")).unwrap();
        let host_etc = host.join("host-etc");
        symlink(&host_etc, root.join("etc")).unwrap();
        assert_eq!(
            at("etc/fstab"),
            Err("/etc is not a directory, nor a symlink to one inside the image".to_owned())
        );
        assert_eq!(std::fs::read_dir(&host_etc).unwrap().count(), 0);
        // Climbing out with .. stops at the image's root.
        std::fs::remove_file(root.join("etc")).unwrap();
        symlink("../../../..", root.join("etc")).unwrap();
        assert_eq!(at("etc/fstab"), Ok(root.join("fstab")));
        // A file where a directory must be.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::fs::write(root.join("etc"), b"").unwrap();
        assert_eq!(
            at("etc/fstab"),
            Err("/etc is not a directory, nor a symlink to one inside the image".to_owned())
        );
    }
}
