//! What a deploy writes under a policy that keeps the partition tables (`verify`, or
//! `nailgun_legacy` with a filesystem that keeps its data): nothing into a filesystem that
//! keeps its data. An image whose `/` keeps its data is therefore not deployed again (its
//! boot entry is read from it); an image whose `/` is made anew is deployed onto its
//! filesystems made anew only. Bareon's `verify` deploys no image at all
//! (`GenericDeployDriver.do_provisioning`), so that its fstab survives
//! (`test_verify_policy_preserve_fstab`); here the images whose `/` is made anew are
//! deployed so that they still boot.

use super::model::{Device, ImagePlan, Plan};

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
    /// again whose separate `/boot` would be made anew, left without a kernel.
    pub fn kept_refusals(&self) -> Vec<String> {
        self.left_empty()
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
            .collect()
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
}
