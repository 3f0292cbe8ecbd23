//! Files an image brings onto a filesystem an earlier image filled are overwritten and
//! reported, one line each. Where the filesystem is staged ([`super::Staging`]) the merge
//! tells; elsewhere copy_tree and rsync's itemized output tell which files were there, and
//! a tar archive is listed first and each member looked up inside the image.

use crate::plan::{ImageLayout, ImagePlan, Plan};

/// The mount points of `image` whose filesystem an image deployed before it (in plan
/// order) also gets.
pub fn shared_mount_points(plan: &Plan, image: &ImagePlan) -> Vec<String> {
    let position = |name: &str| plan.images.iter().position(|i| i.name == name);
    let this = position(&image.name);
    plan.layout(image)
        .mounts
        .iter()
        .filter(|mount| {
            plan.filesystems
                .iter()
                .filter(|fs| fs.device == mount.device)
                .flat_map(|fs| &fs.images)
                .any(|other| position(other) < this)
        })
        .map(|mount| mount.mount_point.clone())
        .collect()
}

/// One stderr line for each file an earlier image brought already: of `paths` (the files
/// that were there before this image's copy), those on a filesystem of `shared`. A file
/// elsewhere was on a filesystem kept from the disk (`keep_data`), where overwriting is
/// what keeping the data means, as in Bareon's rsync copy.
pub(super) fn report_existing(
    name: &str,
    layout: &ImageLayout,
    shared: &[String],
    paths: &[String],
) {
    for path in paths.iter().filter(|path| {
        mount_point_of(path, layout.mounts.iter().map(|m| m.mount_point.as_str()))
            .is_some_and(|mount_point| shared.iter().any(|s| s == mount_point))
    }) {
        crate::warn!(
            "deployer: image {name}: {path} already brought by an earlier image, overwritten"
        );
    }
}

/// The mount point, of `mount_points`, whose filesystem holds `path` (absolute in the
/// image): the longest one that contains it.
pub fn mount_point_of<'a>(
    path: &str,
    mount_points: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    mount_points
        .filter(|mount_point| {
            *mount_point == "/"
                || path == *mount_point
                || path
                    .strip_prefix(mount_point)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|mount_point| mount_point.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_mount_points_are_those_an_earlier_image_got() {
        let plan = crate::apply::images::tests::plan_of(
            r#", {"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "20", "images": ["c", "b"]}
               , {"type": "partition", "mount": "/opt", "file_system": "ext4", "size": "20", "images": ["a", "c"]}"#,
        );
        let shared = |name: &str| {
            let image = plan.images.iter().find(|i| i.name == name).unwrap();
            shared_mount_points(&plan, image)
        };
        assert!(shared("a").is_empty());
        assert!(shared("b").is_empty(), "c comes after b in config order");
        assert_eq!(shared("c"), ["/opt", "/srv"]);
    }

    #[test]
    fn a_path_belongs_to_the_deepest_mount_point_holding_it() {
        let mounts = ["/", "/usr", "/usr/share/common", "/srv"];
        let of = |path| mount_point_of(path, mounts.iter().copied());
        assert_eq!(of("/etc/fstab"), Some("/"));
        assert_eq!(of("/usr/bin/sh"), Some("/usr"));
        assert_eq!(of("/usr/share/common/a.txt"), Some("/usr/share/common"));
        assert_eq!(of("/usr/share/commonplace"), Some("/usr"));
        assert_eq!(of("/srv"), Some("/srv"));
        assert_eq!(of("/srvx/a"), Some("/"));
        assert_eq!(mount_point_of("/a", ["/b"].into_iter()), None);
    }
}
