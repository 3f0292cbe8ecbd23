//! The keys each object may have, the values of enumerated keys, the keys Bareon knows
//! that the deployer accepts and ignores, and hints for keys that belong to other
//! documents.
//!
//! Bareon's schema (`bareon/drivers/data/json_schemes/ironic.json`) is open: it names keys
//! but has no `additionalProperties: false`, so real configs carry keys Bareon never reads.
//! The ignored lists below are the keys named by that schema, by `nailgun.json`, by
//! `doc/source/deployment.rst` and by bareon-ironic's deploy_config that the deployer has
//! no use for though Bareon or bareon-ironic may; each is accepted with a warning saying
//! so. Keys that Bareon reads and uses no more than the deployer pass silently.

/// A key that Bareon's schema, docs or bareon-ironic name and the deployer ignores, with
/// why (the warning's text after "ignored: ").
pub(super) type Ignored = (&'static str, &'static str);

pub(super) const TOP_KEYS: &[&str] = &[
    "images",
    "partitions",
    "partitions_policy",
    "image_deploy_flags",
    "deploy_data",
];
pub(super) const TOP_IGNORED: &[Ignored] = &[(
    "on_fail_script",
    "Ironic's conductor runs on_fail_script (bareon-ironic takes it out of provision.json)",
)];
pub(super) const IMAGE_KEYS: &[&str] = &[
    "name",
    "boot",
    "image_name",
    "image_uuid",
    "image_pull_url",
    "target",
    "sha256",
];
pub(super) const IMAGE_IGNORED: &[Ignored] = &[
    (
        "url",
        "bareon-ironic's deploy_config names the image by \"url\" and writes it to the \
         agent as \"image_pull_url\", which is what the deployer reads",
    ),
    (
        "mode",
        "bareon-ironic's resource mode (how the conductor fetches the image); the deployer \
         reads \"image_pull_url\"",
    ),
];
pub(super) const DISK_KEYS: &[&str] = &["type", "id", "name", "size", "volumes"];
pub(super) const DISK_IGNORED: &[Ignored] = &[
    (
        "extra",
        "Fuel's list of the disk's other names (nailgun.json)",
    ),
    (
        "free_space",
        "Fuel's unallocated space (nailgun.json); the deployer reads the disk's size",
    ),
    ("bootable", "Fuel's boot disk flag (nailgun.py)"),
];
pub(super) const DISK_ID_KEYS: &[&str] = &["type", "value"];
/// A vg's `label`, `min_size`, `_allocate_size` and `keep_data` are in Bareon's schema;
/// Bareon reads them and uses none (`LVMvg` in bareon/objects/block_device.py), nor does
/// the deployer, so they pass without a warning.
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
pub(super) const RAID_IGNORED: &[Ignored] = &[(
    "disk_label",
    "an md array's filesystem gets no label (the Bareon version that read it is gone)",
)];
/// A pv's `keep_data` is in Bareon's schema and unused there too.
pub(super) const PV_KEYS: &[&str] = &["type", "size", "vg", "keep_data", "lvm_meta_size"];
pub(super) const PV_IGNORED: &[Ignored] = &[
    (
        "images",
        "a pv holds no filesystem; the images of its vg's logical volumes are what counts \
         (deployment.rst documents the key, Bareon never reads it)",
    ),
    (
        "keep_data",
        "Bareon reads a pv's keep_data and never uses it",
    ),
];
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

/// Hints for unknown keys that are known elsewhere.
pub(super) const IMAGE_HINTS: &[(&str, &str)] =
    &[("checksum", "give the image's SHA-256 digest as \"sha256\"")];
