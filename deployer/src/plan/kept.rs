//! What a deploy writes under a policy that keeps the partition tables (`verify`, or
//! `nailgun_legacy` with a filesystem that keeps its data): nothing into a filesystem that
//! keeps its data. An image whose `/` keeps its data is therefore not deployed again (its
//! boot entry is read from it); an image whose `/` is made anew is deployed onto its
//! filesystems made anew only. Bareon's `verify` deploys no image at all
//! (`GenericDeployDriver.do_provisioning`), so that its fstab survives
//! (`test_verify_policy_preserve_fstab`); here the images whose `/` is made anew are
//! deployed so that they still boot.

use super::model::{Device, FilesystemPlan, ImagePlan, Plan, Purpose};

/// A filesystem that an image not deployed again mounts, made anew and filled by no image
/// that is deployed: left empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftEmpty {
    pub image: String,
    pub mount_point: String,
    pub device: Device,
}

impl Plan {
    /// Whether the filesystem on `device` keeps its data.
    pub fn keeps_data_of(&self, device: &Device) -> bool {
        self.filesystems
            .iter()
            .any(|fs| &fs.device == device && fs.keep_data)
    }

    /// Whether `image` is deployed: unless the filesystem at its `/` keeps its data.
    pub fn deploys(&self, image: &ImagePlan) -> bool {
        !self
            .layout(image)
            .mounts
            .iter()
            .any(|m| m.mount_point == "/" && self.keeps_data_of(&m.device))
    }

    /// The filesystems made anew that only images not deployed again mount: they stay
    /// empty. In config order of the images, then mount order.
    pub fn left_empty(&self) -> Vec<LeftEmpty> {
        let filled: Vec<Device> = self
            .images
            .iter()
            .filter(|image| self.deploys(image))
            .flat_map(|image| self.layout(image).mounts)
            .map(|m| m.device)
            .collect();
        self.images
            .iter()
            .filter(|image| !self.deploys(image))
            .flat_map(|image| {
                self.layout(image)
                    .mounts
                    .into_iter()
                    .filter(|m| !self.keeps_data_of(&m.device) && !filled.contains(&m.device))
                    .map(|m| LeftEmpty {
                        image: image.name.clone(),
                        mount_point: m.mount_point,
                        device: m.device,
                    })
            })
            .collect()
    }

    /// Why this plan cannot keep what it keeps, one line each: an image not deployed
    /// again whose separate `/boot` would be made anew, left without a kernel; and what
    /// cannot be kept with LVM and md so far ([`Plan::kept_stack_refusals`]).
    pub fn kept_refusals(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .left_empty()
            .into_iter()
            .filter(|empty| empty.mount_point == "/boot")
            .map(|empty| {
                format!(
                    "image {}: its / keeps its data, so it is not deployed again, but its \
                     /boot ({}) is made anew and would hold no kernel; give /boot \
                     \"keep_data\": true, or / \"keep_data\": false to deploy the image again",
                    empty.image, empty.device
                )
            })
            .collect();
        out.extend(self.kept_stack_refusals());
        out
    }

    /// What a keeping policy cannot do with LVM and md so far, as the volume groups and
    /// arrays are made anew: keep a filesystem on a logical volume or an array, or keep an
    /// image's `/` that mounts one (made anew, with a UUID its kept fstab does not name).
    fn kept_stack_refusals(&self) -> Vec<String> {
        const SO_FAR: &str = "keeping the data of a logical volume or md array is not \
                              supported so far";
        let on_stack = |fs: &&FilesystemPlan| !matches!(fs.device, Device::Partition { .. });
        let mut out = Vec::new();
        for fs in self
            .filesystems
            .iter()
            .filter(|fs| fs.keep_data)
            .filter(on_stack)
        {
            if let Purpose::Volume(path) = &fs.purpose {
                out.push(format!(
                    "{path}: {} ({}) keeps its data, but {SO_FAR}; give it \"keep_data\": \
                     false, or use \"partitions_policy\": \"clean\"",
                    fs.device,
                    fs.usage()
                ));
            }
        }
        for image in self.images.iter().filter(|image| !self.deploys(image)) {
            let made_anew = self
                .filesystems
                .iter()
                .filter(on_stack)
                .find(|fs| fs.images.contains(&image.name) && !fs.keep_data);
            if let Some(fs) = made_anew {
                out.push(format!(
                    "image {}: its / keeps its data, but {} ({}) is made anew on LVM or RAID, \
                     with a UUID its kept fstab does not name ({SO_FAR}); give its / \
                     \"keep_data\": false to deploy it again, or use \
                     \"partitions_policy\": \"clean\"",
                    image.name,
                    fs.device,
                    fs.usage()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{config, disk, plan_ok};
    use crate::plan::Plan;

    /// alpha: `/` (kept unless `alpha_root_kept` is false), `/boot` and `/scratch` made
    /// anew; beta: `/` made anew, `/home` kept; both share `/srv`, made anew.
    fn planned(alpha_root_kept: bool) -> Plan {
        let text = format!(
            r#"{{"images": [
                {{"name": "alpha", "image_pull_url": "/a", "target": "/"}},
                {{"name": "beta", "image_pull_url": "/b", "target": "/"}}],
              "partitions": [{{"type": "disk", "id": {{"type": "name", "value": "vda"}},
                "volumes": [
                  {{"type": "partition", "mount": "/", "size": "100", "images": ["alpha"],
                   "file_system": "ext4", "keep_data": {alpha_root_kept}}},
                  {{"type": "partition", "mount": "/boot", "size": "100", "images": ["alpha"],
                   "file_system": "ext4", "keep_data": false}},
                  {{"type": "partition", "mount": "/scratch", "size": "100",
                   "images": ["alpha"], "file_system": "ext4", "keep_data": false}},
                  {{"type": "partition", "mount": "/", "size": "100", "images": ["beta"],
                   "file_system": "ext4", "keep_data": false}},
                  {{"type": "partition", "mount": "/home", "size": "100", "images": ["beta"],
                   "file_system": "ext4"}},
                  {{"type": "partition", "mount": "/srv", "size": "100",
                   "images": ["alpha", "beta"], "file_system": "ext4", "keep_data": false}}]}}],
              "partitions_policy": "verify"}}"#
        );
        plan_ok(&config(&text), &[disk("vda", 2 << 30)])
    }

    #[test]
    fn an_image_whose_root_is_kept_is_not_deployed_and_what_only_it_mounts_stays_empty() {
        let plan = planned(true);
        let deploys: Vec<bool> = plan.images.iter().map(|i| plan.deploys(i)).collect();
        assert_eq!(deploys, [false, true]);
        let empty: Vec<(String, String)> = plan
            .left_empty()
            .into_iter()
            .map(|e| (e.image, e.mount_point))
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(empty, [pair("alpha", "/boot"), pair("alpha", "/scratch")]);
        let home = &plan.layout(&plan.images[1]).mounts[1];
        assert_eq!(home.mount_point, "/home");
        assert!(plan.keeps_data_of(&home.device));

        assert_eq!(
            plan.kept_refusals(),
            [
                "image alpha: its / keeps its data, so it is not deployed again, but its /boot \
              (vda#5) is made anew and would hold no kernel; give /boot \"keep_data\": true, \
              or / \"keep_data\": false to deploy the image again"
            ]
        );

        let plan = planned(false);
        assert!(plan.images.iter().all(|i| plan.deploys(i)));
        assert_eq!(plan.left_empty(), []);
        assert!(plan.kept_refusals().is_empty());
    }

    /// alpha: `/` on a partition; beta: `/` on a logical volume; both: `/srv` on RAID1.
    fn stack(alpha_root_kept: bool, beta_root_kept: bool, srv_kept: bool) -> Vec<String> {
        let text = format!(
            r#"{{"images": [{{"name": "alpha", "image_pull_url": "/a", "target": "/"}},
                           {{"name": "beta", "image_pull_url": "/b", "target": "/"}}],
              "partitions": [{{"type": "disk", "id": {{"type": "name", "value": "vda"}}, "volumes": [
                {{"type": "partition", "mount": "/", "file_system": "ext4", "size": "100",
                  "images": ["alpha"], "keep_data": {alpha_root_kept}}},
                {{"type": "pv", "vg": "os", "size": "200"}},
                {{"type": "raid", "mount": "/srv", "file_system": "ext4", "size": "50",
                  "images": ["alpha", "beta"], "keep_data": {srv_kept}}}]}},
               {{"type": "vg", "id": "os", "volumes": [
                {{"type": "lv", "name": "root", "mount": "/", "file_system": "ext4", "size": "100",
                  "images": ["beta"], "keep_data": {beta_root_kept}}}]}}],
              "partitions_policy": "verify"}}"#
        );
        plan_ok(&config(&text), &[disk("vda", 2 << 30)]).kept_refusals()
    }

    #[test]
    fn keeping_logical_volumes_and_arrays_is_refused_so_far() {
        assert_eq!(stack(false, false, false), Vec::<String>::new());
        assert_eq!(
            stack(false, false, true),
            [
                "partitions[0].volumes[2]: md0 (/srv of alpha, beta) keeps its data, but keeping \
              the data of a logical volume or md array is not supported so far; give it \
              \"keep_data\": false, or use \"partitions_policy\": \"clean\""
            ]
        );
        // beta is not deployed again: its logical volume is kept, and its /srv made anew.
        let beta = stack(false, true, false);
        assert_eq!(beta.len(), 2, "{beta:?}");
        assert!(beta[0].starts_with("partitions[1].volumes[0]: os/root (/ of beta) keeps"));
        assert!(beta[1].starts_with("image beta: its / keeps its data, but md0 (/srv of"));
        assert_eq!(
            stack(true, false, false),
            [
                "image alpha: its / keeps its data, but md0 (/srv of alpha, beta) is made anew on \
              LVM or RAID, with a UUID its kept fstab does not name (keeping the data of a \
              logical volume or md array is not supported so far); give its / \"keep_data\": \
              false to deploy it again, or use \"partitions_policy\": \"clean\""
            ]
        );
    }
}
