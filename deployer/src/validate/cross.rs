//! The checks that need the whole document, run after the walk.

use std::collections::HashMap;

use super::checker::Checker;
use super::JsonPath;
use crate::text::quote;
use crate::text::{closest, did_you_mean};

impl Checker {
    /// The checks that need the whole document.
    pub(super) fn cross_checks(&mut self) {
        if !self.lvm_incomplete {
            let vg_ids: Vec<String> = self.vg_ids.iter().map(|(_, id)| id.clone()).collect();
            for (at, vg) in self.pv_refs.clone() {
                if !vg_ids.contains(&vg) {
                    let defined = if vg_ids.is_empty() {
                        "no vg entry is defined".to_string()
                    } else {
                        format!(
                            "defined: {}",
                            vg_ids
                                .iter()
                                .map(|id| quote(id))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    let message = format!(
                        "no volume group {} is defined{}; {defined}",
                        quote(&vg),
                        did_you_mean(closest(&vg, vg_ids.iter().map(String::as_str)))
                    );
                    self.fail(&at, message);
                }
            }
            for (at, id) in self.vg_ids.clone() {
                if !self.pv_refs.iter().any(|(_, vg)| *vg == id) {
                    let message = format!(
                        "volume group {} has no physical volume; \
                         add {{\"type\": \"pv\", \"vg\": {}}} to a disk",
                        quote(&id),
                        quote(&id)
                    );
                    self.fail(&at, message);
                }
            }
        }

        let mut seen: HashMap<(String, String), (JsonPath, bool)> = HashMap::new();
        let mut duplicates = Vec::new();
        for used in &self.mounts {
            for image in &used.images {
                let key = (image.clone(), used.mount.clone());
                match seen.get(&key) {
                    Some((_, true)) if used.raid => {}
                    Some((first, _)) => duplicates.push((
                        used.volume.key("mount"),
                        format!(
                            "image {} already mounts {} from {first}",
                            quote(image),
                            quote(&used.mount)
                        ),
                    )),
                    None => {
                        seen.insert(key, (used.volume.clone(), used.raid));
                    }
                }
            }
        }
        for (at, message) in duplicates {
            self.fail(&at, message);
        }

        if !self.mounts_incomplete {
            for (name, target, at) in self.image_targets.clone() {
                let mounted = self
                    .mounts
                    .iter()
                    .any(|used| used.mount == target && used.images.contains(&name));
                if !mounted {
                    let message = format!(
                        "image {} has no volume mounted at its target {}",
                        quote(&name),
                        quote(&target)
                    );
                    self.fail(&at.key("target"), message);
                }
            }
        }
    }
}
