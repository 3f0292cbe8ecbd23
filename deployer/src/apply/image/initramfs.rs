//! The kernel an image's entry boots, and whether its initramfs can start the image's `/`
//! on LVM or md: it must hold `lvm` or `mdadm`, as Debian's initramfs-tools and dracut do
//! when the image has lvm2 or mdadm installed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use shared::kernels::{newest_kernel, KernelPair};

use super::rootpath::resolve_in;
use crate::plan::Device;

/// The `/boot` of the image rooted at `root` as the image sees it (a symlink to "/boot"
/// must not list the host's kernels), and the newest kernel there.
pub fn image_kernel(name: &str, root: &Path) -> anyhow::Result<(PathBuf, Option<KernelPair>)> {
    let boot_dir = resolve_in(root, Path::new("boot"), true).map(|dir| root.join(dir));
    let names = match &boot_dir {
        Some(dir) => list_names(dir).with_context(|| format!("image {name}: reading /boot"))?,
        None => Vec::new(),
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let kernel = newest_kernel(&names);
    Ok((boot_dir.unwrap_or_else(|| root.join("boot")), kernel))
}

/// The names in `dir` (none when it does not exist).
fn list_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Whether the initramfs of `kernel` (in `boot_dir`) holds `program`, which image `name`
/// needs to start its `/` on `device`; the error is the refusal. An initramfs this
/// deployer cannot read is warned about and let through: it may well boot.
pub fn check_root_starter(
    name: &str,
    boot_dir: &Path,
    kernel: &KernelPair,
    (program, device): (&str, &Device),
) -> Result<(), String> {
    let (what, package) = match program {
        "lvm" => ("LVM", "lvm2"),
        _ => ("RAID", "mdadm"),
    };
    let Some(initrd) = &kernel.initrd else {
        return Err(format!(
            "image {name}: its / is on {what} ({device}), but its kernel /boot/{} has no \
             initramfs to start it with {program}",
            kernel.kernel
        ));
    };
    match crate::initrd::programs_in(&boot_dir.join(initrd)) {
        Ok(programs) if programs.contains(program) => Ok(()),
        Ok(_) => Err(format!(
            "image {name}: its / is on {what} ({device}), but its initramfs /boot/{initrd} \
             holds no {program} to start it; install {package} in the image and rebuild \
             its initramfs"
        )),
        Err(err) => {
            crate::warn!(
                "deployer: image {name}: cannot tell whether /boot/{initrd} holds {program} \
                 for its / on {what}: {err:#}"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// `/boot` with `vmlinuz-6.1` and an initrd holding `usr/sbin/mdadm` and no lvm,
    /// written as Debian writes one (newc cpio, gzip).
    fn boot_with_mdadm(dir: &Path) -> PathBuf {
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("usr/sbin")).unwrap();
        std::fs::write(tree.join("usr/sbin/mdadm"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            tree.join("usr/sbin/mdadm"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let boot = dir.join("root/boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("vmlinuz-6.1"), "kernel").unwrap();
        let script = format!(
            "cd {} && find . | cpio -o -H newc --quiet | gzip >{}",
            tree.display(),
            boot.join("initrd.img-6.1").display()
        );
        let status = Command::new("sh").args(["-c", &script]).status().unwrap();
        assert!(status.success(), "{script}");
        dir.join("root")
    }

    #[test]
    fn an_initramfs_without_the_program_its_root_needs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = boot_with_mdadm(dir.path());
        let (boot_dir, kernel) = image_kernel("beta", &root).unwrap();
        let kernel = kernel.expect("vmlinuz-6.1");
        assert_eq!(kernel.initrd.as_deref(), Some("initrd.img-6.1"));
        let lv = Device::LogicalVolume {
            vg: "os".to_owned(),
            lv: "root".to_owned(),
        };
        let md = Device::RaidArray {
            name: "md0".to_owned(),
        };
        assert_eq!(
            check_root_starter("beta", &boot_dir, &kernel, ("lvm", &lv)),
            Err(
                "image beta: its / is on LVM (os/root), but its initramfs /boot/initrd.img-6.1 \
                 holds no lvm to start it; install lvm2 in the image and rebuild its initramfs"
                    .to_owned()
            )
        );
        assert_eq!(
            check_root_starter("beta", &boot_dir, &kernel, ("mdadm", &md)),
            Ok(())
        );
        let without = KernelPair {
            initrd: None,
            ..kernel.clone()
        };
        assert_eq!(
            check_root_starter("beta", &boot_dir, &without, ("mdadm", &md)),
            Err(
                "image beta: its / is on RAID (md0), but its kernel /boot/vmlinuz-6.1 has no \
                 initramfs to start it with mdadm"
                    .to_owned()
            )
        );
        // One it cannot read is let through, with a warning.
        std::fs::write(boot_dir.join("initrd.img-6.1"), "not an initramfs").unwrap();
        assert_eq!(
            check_root_starter("beta", &boot_dir, &kernel, ("lvm", &lv)),
            Ok(())
        );
    }
}
