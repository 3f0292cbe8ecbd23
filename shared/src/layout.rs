//! Names and paths the deployer writes and bootctl reads: the contract between them.

use std::path::Path;

/// The filesystem label of the multiboot partition.
pub const MULTIBOOT_LABEL: &str = "multiboot";

/// The filesystem label of the EFI system partition the deployer makes.
pub const ESP_LABEL: &str = "ESP";

/// Where each image keeps its copy of boot-info.json, as the image sees it.
pub const IMAGE_BOOT_INFO: &str = "/etc/multiboot/boot-info.json";

/// Where each image carries bootctl, as the image sees it.
pub const BOOTCTL: &str = "/usr/sbin/bootctl";

/// The health checks `bootctl health` runs before it confirms a boot, as the image sees it.
pub const HEALTH_DIR: &str = "/etc/multiboot/health.d";

/// The Debian kernel hooks the deployer installs into an image (run-parts runs them with the
/// kernel's version and path after a kernel is installed, or removed).
pub const KERNEL_POSTINST_HOOK: &str = "/etc/kernel/postinst.d/zz-multiboot";
pub const KERNEL_POSTRM_HOOK: &str = "/etc/kernel/postrm.d/zz-multiboot";

/// The kernel-install(8) plugin as the deployer installs it into an image. The packages put
/// it into `/usr/lib/kernel/install.d/` under the same name, which the copy in `/etc`
/// overrides, so that it runs once.
pub const KERNEL_INSTALL_PLUGIN: &str = "/etc/kernel/install.d/90-multiboot.install";

/// The health unit as the deployer installs it into an image that uses systemd, and the
/// link that enables it (the packages put the unit into `/usr/lib/systemd/system/`).
pub const HEALTH_UNIT: &str = "/etc/systemd/system/multiboot-health.service";
pub const HEALTH_UNIT_WANTS: &str =
    "/etc/systemd/system/multi-user.target.wants/multiboot-health.service";

/// One of the paths above relative to the image's root, for joining onto a mounted image.
pub fn in_image(path: &str) -> &Path {
    Path::new(path.trim_start_matches('/'))
}
