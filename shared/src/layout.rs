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

/// One of the paths above relative to the image's root, for joining onto a mounted image.
pub fn in_image(path: &str) -> &Path {
    Path::new(path.trim_start_matches('/'))
}
