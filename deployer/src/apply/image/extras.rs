//! The files an image gets besides bootctl ([`shared::image_files`]): the kernel hooks that
//! keep its boot entry on its newest kernel, and the health unit. Written where the image
//! itself sees their paths.

use std::path::Path;

use anyhow::Context;
use shared::atomic::replace_file;
use shared::image_files::{for_image, Content};
use shared::layout::in_image;

use super::os_release::OsRelease;
use super::rootpath::{file_in_image, resolve_in};

/// Installs into the image whose root is mounted at `root` the files its os-release and
/// directories call for; returns their paths.
pub(super) fn install(
    name: &str,
    root: &Path,
    os_release: &OsRelease,
) -> anyhow::Result<Vec<&'static str>> {
    let words: Vec<&str> = [&os_release.id, &os_release.id_like]
        .into_iter()
        .flatten()
        .flat_map(|value| value.split_whitespace())
        .collect();
    let has_dir = |dir: &str| {
        resolve_in(root, in_image(dir), true).is_some_and(|found| root.join(found).is_dir())
    };
    let files = for_image(&words, has_dir);
    for file in &files {
        let what = || format!("image {name}: installing {}", file.path);
        let path = file_in_image(root, in_image(file.path)).with_context(what)?;
        match file.content {
            Content::File { text, mode } => {
                replace_file(&path, text.as_bytes(), mode).with_context(what)?;
            }
            Content::Symlink(target) => {
                // A link or file already there (an earlier deploy's) is replaced.
                if std::fs::symlink_metadata(&path).is_ok_and(|meta| !meta.is_dir()) {
                    std::fs::remove_file(&path).with_context(what)?;
                }
                std::os::unix::fs::symlink(target, &path).with_context(what)?;
            }
        }
    }
    Ok(files.iter().map(|file| file.path).collect())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use shared::layout::{
        HEALTH_UNIT, HEALTH_UNIT_WANTS, KERNEL_POSTINST_HOOK, KERNEL_POSTRM_HOOK,
    };

    use super::*;

    fn os(id: &str, id_like: Option<&str>) -> OsRelease {
        OsRelease {
            id: Some(id.to_owned()),
            id_like: id_like.map(str::to_owned),
            pretty_name: None,
        }
    }

    #[test]
    fn an_image_gets_the_files_of_its_mechanisms_through_its_own_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        // Merged /usr: /lib is a link to usr/lib, absolute as some images make it.
        std::fs::create_dir_all(root.join("usr/lib/systemd/system")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        // A stale link where the enabling link goes.
        std::fs::create_dir_all(root.join("etc/systemd/system/multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join(in_image(HEALTH_UNIT_WANTS))).unwrap();
        let installed = install("img", &root, &os("linuxmint", Some("ubuntu debian"))).unwrap();
        assert_eq!(
            installed,
            [
                KERNEL_POSTINST_HOOK,
                KERNEL_POSTRM_HOOK,
                HEALTH_UNIT,
                HEALTH_UNIT_WANTS
            ]
        );
        for hook in [KERNEL_POSTINST_HOOK, KERNEL_POSTRM_HOOK] {
            let meta = std::fs::metadata(root.join(in_image(hook))).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{hook}");
        }
        assert_eq!(
            std::fs::read_link(root.join(in_image(HEALTH_UNIT_WANTS))).unwrap(),
            Path::new(HEALTH_UNIT)
        );
        assert!(std::fs::read_to_string(root.join(in_image(HEALTH_UNIT)))
            .unwrap()
            .contains("bootctl health"));
        assert!(!root.join("etc/kernel/install.d").exists());
    }

    #[test]
    fn an_image_without_the_mechanisms_gets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // The host's directories must not count: an absolute link leads into the image.
        std::os::unix::fs::symlink("/usr", root.join("usr")).unwrap();
        let installed = install("img", &root, &os("alpine", None)).unwrap();
        assert_eq!(installed, Vec::<&str>::new());
        assert_eq!(std::fs::read_dir(root.join("etc")).unwrap().count(), 0);
    }
}
