//! The external programs and GRUB platform files a deploy needs, checked before the first
//! write: a deploy that would stop at `grub-install` after partitioning is refused with
//! the missing program's name instead. The bootctl the images get must be the static
//! build ([`bootctl_problem`]): a dynamically linked one needs a libc and loader the
//! images may not have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::apply::boot::{grub_bios_setup, BootloaderConfig, BIOS_PLATFORM};
use crate::apply::mkfs::mkfs_program;
use crate::apply::osprober::OS_PROBER_PROGRAMS;
use crate::config::FileSystem;
use crate::exec::{fedora_name, find_program};
use crate::plan::Plan;
use crate::source::format::{Compression, FileFormat};
use crate::source::{CheckedSource, SourceKind};

/// The programs every deploy runs, whatever the plan.
const ALWAYS: &[&str] = &["losetup", "wipefs", "sfdisk", "partx", "grub-install"];

/// The programs that put GRUB for UEFI onto the ESP (none in Bareon's layout).
const UEFI: &[&str] = &["grub-mkimage", "mmd", "mcopy"];

/// GRUB's platform directories: BIOS and UEFI boot code both go onto the first disk.
pub const GRUB_PLATFORMS: &[&str] = &["/usr/lib/grub/i386-pc", "/usr/lib/grub/x86_64-efi"];

/// The programs deploying `plan` with grub.cfg made the `mode` way runs, sorted.
pub fn required_programs(plan: &Plan, mode: BootloaderConfig) -> Vec<&'static str> {
    let mut programs: BTreeSet<&'static str> = ALWAYS.iter().copied().collect();
    if plan.esp_uuid().is_some() {
        programs.extend(UEFI);
    }
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
    if plan.needs_device_mapper {
        programs.insert("lvm");
    }
    if plan.needs_md {
        programs.insert("mdadm");
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
            SourceKind::File { format, .. } | SourceKind::Http { format, .. } => {
                programs.extend(format_programs(format));
            }
        }
    }
    programs.into_iter().collect()
}

/// The programs a file of `format` is deployed with; for a qcow2 image whose filesystem is
/// not known yet (a download), those of every filesystem type.
fn format_programs(format: &FileFormat) -> Vec<&'static str> {
    match format {
        FileFormat::Tar(compression) => {
            let mut programs = vec!["tar"];
            programs.extend(match compression {
                Compression::None => None,
                Compression::Gzip => Some("gzip"),
                Compression::Xz => Some("xz"),
                Compression::Zstd => Some("zstd"),
            });
            programs
        }
        FileFormat::Raw(fs) => filesystem_image_programs(fs.fs_type).to_vec(),
        FileFormat::Qcow2 { filesystem, .. } => {
            let mut programs = vec!["qemu-img"];
            match filesystem {
                Some(fs) => programs.extend(filesystem_image_programs(fs.fs_type)),
                None => {
                    for fs_type in [FileSystem::Ext4, FileSystem::Xfs] {
                        programs.extend(filesystem_image_programs(fs_type));
                    }
                }
            }
            programs
        }
    }
}

/// The other name a distribution gives `program`: Fedora calls GRUB's programs
/// One line per program of `programs` not found in `path` (a `PATH` value) under either
/// of its names.
pub fn missing(programs: &[&str], path: &str) -> Vec<String> {
    programs
        .iter()
        .filter(|program| find_program(program, path).is_none())
        .map(|program| match fedora_name(program) {
            Some(other) => format!(
                "{program}: program not found in PATH, nor {other} (see the README's setup)"
            ),
            None => format!("{program}: program not found in PATH (see the README's setup)"),
        })
        .collect()
}

/// One line per GRUB platform directory missing on this host.
pub fn missing_grub_platforms() -> Vec<String> {
    let mut out: Vec<String> = GRUB_PLATFORMS
        .iter()
        .filter(|dir| !Path::new(dir).is_dir())
        .map(|dir| format!("{dir}: GRUB platform files not installed"))
        .collect();
    if out.is_empty() && grub_bios_setup().is_none() {
        out.push(format!(
            "grub-bios-setup: not found in PATH nor in {BIOS_PLATFORM} (see the README's setup)"
        ));
    }
    out
}

/// Where `packaging/build-static-bootctl` puts the static bootctl, relative to cargo's
/// target directory.
const STATIC_BOOTCTL: &str = "static/x86_64-unknown-linux-gnu/release/bootctl";

/// The ELF program header type of a program interpreter (the dynamic loader).
const PT_INTERP: u32 = 3;

/// Whether the ELF file `bytes` asks for a program interpreter (a `PT_INTERP` program
/// header): a dynamically linked executable, which needs the image's own libc and
/// loader. `None` when `bytes` is not an ELF file this reads (32 or 64 bits, either byte
/// order) or its program headers lie outside it.
pub fn asks_for_interpreter(bytes: &[u8]) -> Option<bool> {
    if bytes.get(..4)? != b"\x7fELF" {
        return None;
    }
    let little = match bytes.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let field = |at: usize, len: usize| -> Option<u64> {
        let raw = bytes.get(at..at + len)?;
        Some(raw.iter().enumerate().fold(0u64, |value, (i, byte)| {
            let shift = if little { i } else { len - 1 - i };
            value | u64::from(*byte) << (8 * shift)
        }))
    };
    // e_phoff, e_phentsize and e_phnum: where ELFCLASS32 and ELFCLASS64 put them.
    let (phoff, phentsize, phnum) = match bytes.get(4)? {
        1 => (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?),
        2 => (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?),
        _ => return None,
    };
    let mut interp = false;
    for index in 0..phnum {
        let at = usize::try_from(phoff.checked_add(index.checked_mul(phentsize)?)?).ok()?;
        interp |= field(at, 4)? == u64::from(PT_INTERP);
    }
    Some(interp)
}

/// Why the bootctl at `path` must not go into the images, in one line; `None` when it
/// may: it exists and is not dynamically linked. (A file that is not ELF, such as a
/// test's stand-in script, is installed as given.)
pub fn bootctl_problem(path: &Path) -> Option<String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!(
                "bootctl binary {} not found (give --bootctl PATH; \
                 packaging/build-static-bootctl builds it)",
                path.display()
            ))
        }
        Err(e) => return Some(format!("bootctl binary {}: {e}", path.display())),
    };
    (asks_for_interpreter(&bytes) == Some(true)).then(|| {
        format!(
            "bootctl binary {} is dynamically linked; the images need the static build: \
             run packaging/build-static-bootctl and give --bootctl the path it prints",
            path.display()
        )
    })
}

/// The bootctl a deploy installs when `--bootctl` is not given, for the deployer at
/// `exe`: `bootctl` next to it, unless that is missing or dynamically linked and the
/// static build (`packaging/build-static-bootctl`'s output under the same cargo target
/// directory) is there. The one next to the deployer otherwise, for
/// [`bootctl_problem`] to name.
pub fn default_bootctl(exe: &Path) -> PathBuf {
    let beside = exe.with_file_name("bootctl");
    let fine = |path: &Path| bootctl_problem(path).is_none();
    if fine(&beside) {
        return beside;
    }
    exe.parent()
        .and_then(Path::parent)
        .map(|target| target.join(STATIC_BOOTCTL))
        .filter(|static_build| fine(static_build))
        .unwrap_or(beside)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

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
            existing: None,
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
                format: FileFormat::Qcow2 {
                    header: crate::source::format::Qcow2Header {
                        virtual_size: 1 << 30,
                        has_backing_file: false,
                        has_data_file: false,
                    },
                    filesystem: None,
                },
                length: None,
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

    /// An executable shell script named `name` in `dir`.
    fn shim(dir: &Path, name: &str) {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn grub_programs_are_found_under_fedoras_names_too() {
        let fedora = tempfile::tempdir().expect("tempdir");
        for name in [
            "grub2-install",
            "grub2-mkimage",
            "grub2-mkconfig",
            "grub2-probe",
        ] {
            shim(fedora.path(), name);
        }
        shim(fedora.path(), "sfdisk");
        let path = fedora.path().display().to_string();
        assert_eq!(
            find_program("grub-install", &path),
            Some(fedora.path().join("grub2-install"))
        );
        assert_eq!(
            find_program("sfdisk", &path),
            Some(fedora.path().join("sfdisk"))
        );
        assert!(missing(
            &["grub-install", "grub-mkimage", "grub-probe", "sfdisk"],
            &path
        )
        .is_empty());
        assert_eq!(
            missing(&["grub-editenv", "mkfs.xfs"], &path),
            [
                "grub-editenv: program not found in PATH, nor grub2-editenv (see the README's setup)",
                "mkfs.xfs: program not found in PATH (see the README's setup)"
            ]
        );
        assert_eq!(
            find_program("grub2-install", &path),
            Some(fedora.path().join("grub2-install"))
        );
        assert_eq!(fedora_name("sfdisk"), None);

        // Debian's name comes first where a PATH has both.
        let debian = tempfile::tempdir().expect("tempdir");
        shim(debian.path(), "grub-install");
        let both = std::env::join_paths([fedora.path(), debian.path()]).expect("join");
        assert_eq!(
            find_program("grub-install", both.to_str().expect("UTF-8")),
            Some(debian.path().join("grub-install"))
        );
    }

    /// A minimal ELF header and program header table: `class` 1 (32-bit) or 2 (64-bit),
    /// little-endian, with program headers of the given types.
    fn elf(class: u8, types: &[u32]) -> Vec<u8> {
        let (phoff, phentsize, header): (usize, usize, usize) = if class == 2 {
            (64, 56, 64)
        } else {
            (52, 32, 52)
        };
        let mut bytes = vec![0u8; header + phentsize * types.len()];
        bytes[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', class, 1]);
        let (at_phoff, at_phentsize, at_phnum) = if class == 2 {
            (0x20, 0x36, 0x38)
        } else {
            (0x1c, 0x2a, 0x2c)
        };
        bytes[at_phoff] = u8::try_from(phoff).unwrap();
        bytes[at_phentsize] = u8::try_from(phentsize).unwrap();
        bytes[at_phnum] = u8::try_from(types.len()).unwrap();
        for (i, kind) in types.iter().enumerate() {
            let at = phoff + i * phentsize;
            bytes[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn an_interpreter_program_header_means_dynamically_linked() {
        const PT_LOAD: u32 = 1;
        const PT_DYNAMIC: u32 = 2;
        assert_eq!(
            asks_for_interpreter(&elf(2, &[PT_LOAD, PT_INTERP, PT_LOAD])),
            Some(true)
        );
        assert_eq!(
            asks_for_interpreter(&elf(2, &[PT_LOAD, PT_DYNAMIC])),
            Some(false),
            "a static-pie has PT_DYNAMIC but no interpreter"
        );
        assert_eq!(asks_for_interpreter(&elf(1, &[PT_INTERP])), Some(true));
        assert_eq!(asks_for_interpreter(&elf(1, &[PT_LOAD])), Some(false));
        assert_eq!(asks_for_interpreter(b"#!/bin/sh\n"), None);
        let truncated = elf(2, &[PT_LOAD, PT_INTERP]);
        assert_eq!(asks_for_interpreter(&truncated[..100]), None);
    }

    #[test]
    fn the_static_build_is_found_when_the_bootctl_beside_the_deployer_is_not_fit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        let exe = target.join("debug/deployer");
        std::fs::create_dir_all(exe.parent().unwrap()).expect("mkdir");
        let beside = target.join("debug/bootctl");
        let static_build = target.join(STATIC_BOOTCTL);
        assert_eq!(
            default_bootctl(&exe),
            beside,
            "nothing there: named for the error"
        );
        std::fs::write(&beside, elf(2, &[PT_INTERP])).expect("write");
        assert_eq!(default_bootctl(&exe), beside, "dynamic and no static build");
        assert!(bootctl_problem(&beside).unwrap().contains(
            "is dynamically linked; the images need the static build: run \
                       packaging/build-static-bootctl"
        ));
        std::fs::create_dir_all(static_build.parent().unwrap()).expect("mkdir");
        std::fs::write(&static_build, elf(2, &[1, 2])).expect("write");
        assert_eq!(default_bootctl(&exe), static_build);
        std::fs::write(&beside, elf(2, &[1])).expect("write");
        assert_eq!(
            default_bootctl(&exe),
            beside,
            "a static one beside comes first"
        );
    }
}
