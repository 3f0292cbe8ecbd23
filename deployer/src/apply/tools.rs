//! The external programs and GRUB platform files a deploy needs, checked before the first
//! write: a deploy that would stop at `grub-install` after partitioning is refused with
//! the missing program's name instead.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::apply::boot::BootloaderConfig;
use crate::apply::mkfs::mkfs_program;
use crate::apply::osprober::OS_PROBER_PROGRAMS;
use crate::plan::Plan;

/// The programs every deploy runs, whatever the plan.
const ALWAYS: &[&str] = &[
    "losetup",
    "wipefs",
    "sfdisk",
    "partx",
    "rsync",
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
    programs.extend(plan.filesystems.iter().map(|fs| mkfs_program(fs.fs_type)));
    if mode == BootloaderConfig::OsProber {
        programs.extend(OS_PROBER_PROGRAMS);
    }
    programs.into_iter().collect()
}

/// One line per program of `programs` not found in `path` (a `PATH` value) and per GRUB
/// platform directory missing on this host.
pub fn missing(programs: &[&str], path: &str) -> Vec<String> {
    let dirs: Vec<PathBuf> = std::env::split_paths(path).collect();
    let mut out: Vec<String> = programs
        .iter()
        .filter(|program| !dirs.iter().any(|dir| is_executable(&dir.join(program))))
        .map(|program| format!("{program}: program not found in PATH (see the README's setup)"))
        .collect();
    out.extend(
        GRUB_PLATFORMS
            .iter()
            .filter(|dir| !Path::new(dir).is_dir())
            .map(|dir| format!("{dir}: GRUB platform files not installed")),
    );
    out
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
            .filter(|name| !name.starts_with('/'))
            .collect();
        assert_eq!(programs, ["not-executable", "absent-tool"]);
    }
}
