//! The files the deployer puts into an image besides bootctl: the kernel hooks that run
//! `bootctl refresh` when the image's package manager installs or removes a kernel, and the
//! health unit. Their text is `packaging/image/*` (which the packages ship too), embedded
//! here once. Which of them an image gets is decided from its os-release and the
//! directories it has. Pure: no I/O.

use crate::layout::{
    HEALTH_UNIT, HEALTH_UNIT_WANTS, KERNEL_INSTALL_PLUGIN, KERNEL_POSTINST_HOOK, KERNEL_POSTRM_HOOK,
};

/// The Debian kernel hook (`/etc/kernel/postinst.d` and `postrm.d`).
pub const DEBIAN_HOOK_TEXT: &str = include_str!("../../packaging/image/zz-multiboot");

/// The kernel-install plugin (Fedora, RHEL, SUSE).
pub const KERNEL_INSTALL_PLUGIN_TEXT: &str =
    include_str!("../../packaging/image/90-multiboot.install");

/// The systemd unit that runs `bootctl health` once the image is up.
pub const HEALTH_UNIT_TEXT: &str = include_str!("../../packaging/image/multiboot-health.service");

/// What goes at a path of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A regular file with this text and mode.
    File { text: &'static str, mode: u32 },
    /// A symbolic link to this target.
    Symlink(&'static str),
}

/// One file of an image, its path as the image sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFile {
    pub path: &'static str,
    pub content: Content,
}

/// An image with one of these runs the Debian kernel hooks.
pub const DEBIAN_HOOK_DIRS: &[&str] = &["/etc/kernel/postinst.d"];

/// An image with one of these runs kernel-install plugins.
pub const KERNEL_INSTALL_DIRS: &[&str] = &["/etc/kernel/install.d", "/usr/lib/kernel/install.d"];

/// An image with one of these uses systemd.
pub const SYSTEMD_UNIT_DIRS: &[&str] = &["/usr/lib/systemd/system", "/lib/systemd/system"];

/// os-release `ID`/`ID_LIKE` words whose kernel packages run the Debian hooks.
const DEBIAN_FAMILY: &[&str] = &["debian", "ubuntu"];

/// os-release `ID`/`ID_LIKE` words whose kernel packages run kernel-install.
const KERNEL_INSTALL_FAMILY: &[&str] = &["fedora", "rhel", "centos", "suse", "opensuse"];

/// Every directory [`for_image`] may ask about.
pub fn probed_dirs() -> impl Iterator<Item = &'static str> {
    [DEBIAN_HOOK_DIRS, KERNEL_INSTALL_DIRS, SYSTEMD_UNIT_DIRS]
        .into_iter()
        .flatten()
        .copied()
}

/// The files for an image whose os-release `ID` and `ID_LIKE` words are `os_words`, where
/// `has_dir` tells whether one of [`probed_dirs`] exists in it: the hooks of each kernel
/// mechanism the image has (by its directories, or by its family where a directory is made
/// only when a kernel package first runs), and the health unit, enabled, where the image
/// uses systemd.
pub fn for_image(os_words: &[&str], has_dir: impl Fn(&str) -> bool) -> Vec<ImageFile> {
    let family = |names: &[&str]| os_words.iter().any(|word| names.contains(word));
    let any_dir = |dirs: &[&str]| dirs.iter().any(|dir| has_dir(dir));
    let hook = |path, text| ImageFile {
        path,
        content: Content::File { text, mode: 0o755 },
    };
    let mut files = Vec::new();
    if any_dir(DEBIAN_HOOK_DIRS) || family(DEBIAN_FAMILY) {
        files.push(hook(KERNEL_POSTINST_HOOK, DEBIAN_HOOK_TEXT));
        files.push(hook(KERNEL_POSTRM_HOOK, DEBIAN_HOOK_TEXT));
    }
    if any_dir(KERNEL_INSTALL_DIRS) || family(KERNEL_INSTALL_FAMILY) {
        files.push(hook(KERNEL_INSTALL_PLUGIN, KERNEL_INSTALL_PLUGIN_TEXT));
    }
    if any_dir(SYSTEMD_UNIT_DIRS) {
        files.push(ImageFile {
            path: HEALTH_UNIT,
            content: Content::File {
                text: HEALTH_UNIT_TEXT,
                mode: 0o644,
            },
        });
        files.push(ImageFile {
            path: HEALTH_UNIT_WANTS,
            content: Content::Symlink(HEALTH_UNIT),
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(os_words: &[&str], dirs: &[&str]) -> Vec<&'static str> {
        for_image(os_words, |dir| {
            assert!(probed_dirs().any(|known| known == dir), "{dir} not probed");
            dirs.contains(&dir)
        })
        .iter()
        .map(|file| file.path)
        .collect()
    }

    const DEBIAN: [&str; 2] = [KERNEL_POSTINST_HOOK, KERNEL_POSTRM_HOOK];
    const UNIT: [&str; 2] = [HEALTH_UNIT, HEALTH_UNIT_WANTS];

    #[test]
    fn an_image_without_either_mechanism_gets_nothing() {
        assert!(paths(&["fixture"], &[]).is_empty());
        assert!(paths(&[], &[]).is_empty());
        assert!(paths(&["arch"], &["/etc/kernel"]).is_empty());
    }

    #[test]
    fn the_family_alone_decides_where_no_directory_exists_yet() {
        assert_eq!(paths(&["debian"], &[]), DEBIAN);
        assert_eq!(paths(&["linuxmint", "ubuntu", "debian"], &[]), DEBIAN);
        for words in [
            &["fedora"][..],
            &["almalinux", "rhel", "centos", "fedora"],
            &["opensuse-tumbleweed", "suse", "opensuse"],
            &["sles", "suse"],
        ] {
            assert_eq!(paths(words, &[]), [KERNEL_INSTALL_PLUGIN], "{words:?}");
        }
        assert!(
            paths(&["debianish"], &[]).is_empty(),
            "whole words, not prefixes"
        );
    }

    #[test]
    fn the_directories_decide_whatever_the_family() {
        assert_eq!(paths(&["fixture"], &["/etc/kernel/postinst.d"]), DEBIAN);
        assert_eq!(
            paths(&[], &["/usr/lib/kernel/install.d"]),
            [KERNEL_INSTALL_PLUGIN]
        );
        assert_eq!(
            paths(&["debian"], &["/usr/lib/kernel/install.d"]),
            [DEBIAN[0], DEBIAN[1], KERNEL_INSTALL_PLUGIN],
            "Debian's systemd ships kernel-install too"
        );
        assert_eq!(paths(&[], &["/lib/systemd/system"]), UNIT);
        assert_eq!(
            paths(
                &["fedora"],
                &["/etc/kernel/install.d", "/usr/lib/systemd/system"]
            ),
            [KERNEL_INSTALL_PLUGIN, UNIT[0], UNIT[1]]
        );
    }

    #[test]
    fn the_hooks_are_executable_scripts_and_the_unit_is_enabled_by_a_link() {
        let all = for_image(&["debian", "fedora"], |_| true);
        for file in &all {
            match (file.path, file.content) {
                (HEALTH_UNIT, Content::File { text, mode }) => {
                    assert_eq!(mode, 0o644);
                    assert!(text.contains("ExecStart=/usr/sbin/bootctl health"));
                }
                (HEALTH_UNIT_WANTS, Content::Symlink(target)) => assert_eq!(target, HEALTH_UNIT),
                (_, Content::File { text, mode }) => {
                    assert_eq!(mode, 0o755, "{}", file.path);
                    assert!(text.starts_with("#!/bin/sh\n"), "{}", file.path);
                    assert!(text.contains("\"$bootctl\" refresh"), "{}", file.path);
                }
                (path, content) => panic!("{path}: {content:?}"),
            }
        }
        assert_eq!(all.len(), 5);
    }
}
