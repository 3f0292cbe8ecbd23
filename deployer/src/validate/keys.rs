//! The keys each object may have, the values of enumerated keys, and hints for keys
//! that belong to other documents.

pub(super) const TOP_KEYS: &[&str] = &[
    "images",
    "partitions",
    "partitions_policy",
    "image_deploy_flags",
    "deploy_data",
];
pub(super) const IMAGE_KEYS: &[&str] = &[
    "name",
    "boot",
    "image_name",
    "image_uuid",
    "image_pull_url",
    "target",
    "sha256",
];
pub(super) const DISK_KEYS: &[&str] = &["type", "id", "name", "size", "volumes"];
pub(super) const DISK_ID_KEYS: &[&str] = &["type", "value"];
pub(super) const VG_KEYS: &[&str] = &[
    "type",
    "id",
    "label",
    "min_size",
    "_allocate_size",
    "keep_data",
    "volumes",
];
pub(super) const PARTITION_KEYS: &[&str] = &[
    "type",
    "size",
    "mount",
    "name",
    "file_system",
    "keep_data",
    "images",
    "disk_label",
    "partition_guid",
    "fstab_enabled",
    "fstab_options",
];
pub(super) const RAID_KEYS: &[&str] = &[
    "type",
    "size",
    "mount",
    "name",
    "file_system",
    "keep_data",
    "images",
    "fstab_enabled",
    "fstab_options",
];
pub(super) const PV_KEYS: &[&str] = &["type", "size", "vg", "keep_data", "lvm_meta_size"];
pub(super) const BOOT_KEYS: &[&str] = &["type", "size", "keep_data"];
pub(super) const LVM_META_POOL_KEYS: &[&str] = &["type", "size"];
pub(super) const LV_KEYS: &[&str] = &[
    "type",
    "name",
    "size",
    "mount",
    "file_system",
    "keep_data",
    "images",
    "disk_label",
    "fstab_enabled",
    "fstab_options",
];
pub(super) const DISK_VOLUME_TYPES: &[&str] = &["partition", "raid", "pv", "boot", "lvm_meta_pool"];
pub(super) const POLICIES: &[&str] = &["verify", "clean", "nailgun_legacy"];

pub(super) const TOP_HINTS: &[(&str, &str)] = &[(
    "on_fail_script",
    "Ironic's conductor runs on_fail_script; it is not part of the agent's provision.json",
)];
pub(super) const IMAGE_HINTS: &[(&str, &str)] = &[
    (
        "url",
        "the agent's provision.json names the image source \"image_pull_url\"",
    ),
    ("checksum", "give the image's SHA-256 digest as \"sha256\""),
];
pub(super) const PV_HINTS: &[(&str, &str)] = &[(
    "images",
    "a pv holds no filesystem; put \"images\" on the logical volumes of its vg",
)];
