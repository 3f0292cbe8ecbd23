//! The external programs and GRUB platform files a deploy needs, checked before the first
//! write: a deploy that would stop at `grub-install` after partitioning is refused with
//! the missing program's name instead.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::apply::boot::BootloaderConfig;
use crate::apply::mkfs::mkfs_program;
use crate::apply::osprober::OS_PROBER_PROGRAMS;
use crate::config::FileSystem;
use crate::plan::Plan;
use crate::source::format::{Compression, FileFormat};
use crate::source::{CheckedSource, SourceKind};

/// The programs every deploy runs, whatever the plan.
const ALWAYS: &[&str] = &[
    "losetup",
    "wipefs",
    "sfdisk",
    "partx",
    "grub-install",
    "grub-mkimage",
    "mmd",
    "mcopy",
];

/// GRUB's platform directories: BIOS and UEFI boot code both go onto the first disk.
pub const GRUB_PLATFORMS: &[&str] = &["/usr/lib/grub/i386-pc", "/usr/lib/grub/x86_64-efi"];

/// The programs deploying `plan` with grub.cfg made the `mode` way runs, sorted.
pub fn required_programs(plan: &Plan, mode: BootloaderConfig) -> Vec<&'static str> {
    let mut programs: BTreeSet<&'static str> = ALWAYS.iter().copied().collect();
    programs.extend(
        plan.filesystems
            .iter()
            .filter(|fs| !fs.keep_data)
            .map(|fs| mkfs_program(fs.fs_type)),
    );
    if plan.filesystems.iter().any(|fs| fs.keep_data) {
        programs.insert("blkid");
    }
    if plan
        .filesystems
        .iter()
        .any(|fs| fs.fs_type == FileSystem::Vfat && fs.images.len() > 1)
    {
        // Lists a shared vfat filesystem filled through mtools, for the overlap report.
        programs.insert("mdir");
    }
    if mode == BootloaderConfig::OsProber {
        programs.extend(OS_PROBER_PROGRAMS);
    }
    programs.into_iter().collect()
}

/// The programs putting a filesystem image of type `fs_type` onto its partition runs.
fn filesystem_image_programs(fs_type: FileSystem) -> &'static [&'static str] {
    match fs_type {
        FileSystem::Xfs => &["xfs_admin", "xfs_growfs"],
        _ => &["e2fsck", "tune2fs", "resize2fs"],
    }
}

/// The programs deploying the checked `sources` runs besides those of the plan, sorted;
/// `rsync_flags`: the config gives rsync flags, so directory trees are copied by rsync. A
/// download's format is known only once it is fetched: it needs every program of every
/// format.
pub fn source_programs(sources: &[CheckedSource], rsync_flags: bool) -> Vec<&'static str> {
    let mut programs = BTreeSet::new();
    for source in sources {
        match &source.kind {
            SourceKind::Tree(_) => {
                if rsync_flags {
                    programs.insert("rsync");
                }
            }
            SourceKind::Rsync(_) => {
                programs.insert("rsync");
            }
            SourceKind::File { format, .. } => match format {
                FileFormat::Tar(compression) => {
                    programs.insert("tar");
                    programs.extend(match compression {
                        Compression::None => None,
                        Compression::Gzip => Some("gzip"),
                        Compression::Xz => Some("xz"),
                        Compression::Zstd => Some("zstd"),
                    });
                }
                FileFormat::Raw(fs) => programs.extend(filesystem_image_programs(fs.fs_type)),
                FileFormat::Qcow2 { filesystem, .. } => {
                    programs.insert("qemu-img");
                    programs.extend(
                        filesystem.map_or(&[][..], |fs| filesystem_image_programs(fs.fs_type)),
                    );
                }
            },
            SourceKind::Http { .. } => programs.extend([
                "tar",
                "gzip",
                "xz",
                "zstd",
                "qemu-img",
                "e2fsck",
                "tune2fs",
                "resize2fs",
                "xfs_admin",
                "xfs_growfs",
            ]),
        }
    }
    programs.into_iter().collect()
}

/// One line per program of `programs` not found in `path` (a `PATH` value).
pub fn missing(programs: &[&str], path: &str) -> Vec<String> {
    let dirs: Vec<PathBuf> = std::env::split_paths(path).collect();
    programs
        .iter()
        .filter(|program| !dirs.iter().any(|dir| is_executable(&dir.join(program))))
        .map(|program| format!("{program}: program not found in PATH (see the README's setup)"))
        .collect()
}

/// One line per GRUB platform directory missing on this host.
pub fn missing_grub_platforms() -> Vec<String> {
    GRUB_PLATFORMS
        .iter()
        .filter(|dir| !Path::new(dir).is_dir())
        .map(|dir| format!("{dir}: GRUB platform files not installed"))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, DiskInput, SequentialIds};
    use crate::validate::validate;

    #[test]
    fn programs_follow_the_planned_filesystems() {
        let config = validate(include_str!("../../examples/every-filesystem.json"))
            .unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        let disk = DiskInput {
            name: "vda".to_string(),
            path: "/dev/vda".into(),
            size_bytes: 2 << 30,
            sector_size: 512,
        };
        let plan = plan(&config, &[disk], &mut SequentialIds::default())
            .unwrap_or_else(|e| panic!("planning failed: {e:?}"));
        let programs = required_programs(&plan, BootloaderConfig::Generated);
        for program in [
            "mkfs.ext2",
            "mkfs.ext3",
            "mkfs.ext4",
            "mkfs.xfs",
            "mkfs.vfat",
            "mkswap",
            "grub-install",
            "mcopy",
        ] {
            assert!(programs.contains(&program), "{program}: {programs:?}");
        }
        assert!(!programs.contains(&"os-prober"));
        let with_os_prober = required_programs(&plan, BootloaderConfig::OsProber);
        assert!(with_os_prober.contains(&"os-prober") && with_os_prober.contains(&"grub-mkconfig"));
        let mut sorted = programs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(programs, sorted);
    }

    #[test]
    fn sources_add_the_programs_of_their_format() {
        let source = |kind| CheckedSource {
            image: "a".to_owned(),
            kind,
            target: Err("no target".to_owned()),
        };
        let tree = || source(SourceKind::Tree("/srv/a".into()));
        assert!(source_programs(&[tree()], false).is_empty());
        assert_eq!(source_programs(&[tree()], true), ["rsync"]);
        let programs = source_programs(
            &[
                source(SourceKind::Rsync("rsync://host/a/".to_owned())),
                source(SourceKind::File {
                    path: "/srv/a.tar.zst".into(),
                    format: FileFormat::Tar(Compression::Zstd),
                }),
            ],
            false,
        );
        assert_eq!(programs, ["rsync", "tar", "zstd"]);
        let download = source_programs(
            &[source(SourceKind::Http {
                url: "https://host/a".to_owned(),
                sha256: None,
            })],
            false,
        );
        assert!(download.contains(&"qemu-img") && download.contains(&"xfs_growfs"));
    }

    #[test]
    fn a_program_missing_from_path_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = dir.path().join("present-tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(dir.path().join("not-executable"), "").expect("write");
        let path = dir.path().display().to_string();
        let missing = missing(&["present-tool", "not-executable", "absent-tool"], &path);
        let programs: Vec<&str> = missing
            .iter()
            .filter_map(|line| line.split(':').next())
            .collect();
        assert_eq!(programs, ["not-executable", "absent-tool"]);
    }
}
