//! `images[]`: names, sources, targets and the boot image.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::checker::{json_kind, Checked, Checker, Invalid, Keys};
use super::keys::{IMAGE_HINTS, IMAGE_IGNORED, IMAGE_KEYS};
use super::syntax::{check_absolute_path, check_image_name, is_hex, parse_source};
use super::JsonPath;
use crate::config::Image;
use crate::text::quote;

impl Checker {
    pub(super) fn images(&mut self, value: Option<&Value>, path: &JsonPath) -> Checked<Vec<Image>> {
        let list = self.array(value.ok_or(Invalid)?, path)?;
        if list.is_empty() {
            return Err(self.fail(path, "at least one image is required"));
        }
        let names: Option<Vec<String>> = list
            .iter()
            .map(|image| {
                image
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        self.image_names = names;
        self.first_image = list[0]
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut names: HashMap<String, JsonPath> = HashMap::new();
        let mut boots: Vec<JsonPath> = Vec::new();
        let mut images = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let at = path.index(i);
            let image = self.image(item, &at, &mut names);
            if let Ok(image) = &image {
                if image.boot {
                    boots.push(at.clone());
                    // Only the image that boots must be an OS; Bareon ignores the others'
                    // "boot".
                    if image.target != "/" && boots.len() == 1 {
                        self.fail(
                            &at.key("boot"),
                            format!(
                                "image {} is deployed to {}, not \"/\", so it cannot boot",
                                quote(&image.name),
                                quote(&image.target)
                            ),
                        );
                    }
                }
            }
            images.push(image);
        }
        if let [first, second, ..] = boots.as_slice() {
            // bareon/drivers/deploy/generic.py (_get_multiboot_boot_image) boots the
            // first; bareon-ironic sets "boot" on every copy of an image listed twice.
            let others: Vec<String> = boots[1..].iter().map(ToString::to_string).collect();
            let message = format!(
                "{} also {} \"boot\": true; the first, {first}, boots by default, as in Bareon",
                others.join(", "),
                if others.len() == 1 { "has" } else { "have" }
            );
            self.warn(&second.key("boot"), message);
        }
        images.into_iter().collect()
    }

    fn image(
        &mut self,
        value: &Value,
        path: &JsonPath,
        names: &mut HashMap<String, JsonPath>,
    ) -> Checked<Image> {
        let map = self.object(value, path)?;
        let keys = Keys {
            known: IMAGE_KEYS,
            required: &["name", "image_pull_url", "target"],
            ignored: IMAGE_IGNORED,
            hints: IMAGE_HINTS,
        };
        self.check_keys(map, path, &keys);
        let name = self.image_name(map, path, names);
        let boot = match map.get("boot") {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                Ok(!matches!(n.as_i64(), Some(0)))
            }
            Some(other) => Err(self.fail(
                &path.key("boot"),
                format!(
                    "expected a boolean or an integer, found {}",
                    json_kind(other)
                ),
            )),
        };
        let image_name = self.opt_text(map, "image_name", path);
        let image_uuid = self.opt_text(map, "image_uuid", path);
        let source = match self.opt_str(map, "image_pull_url", path) {
            Ok(Some(url)) => {
                parse_source(url).map_err(|message| self.fail(&path.key("image_pull_url"), message))
            }
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let target = match self.opt_str(map, "target", path) {
            Ok(Some(target)) => match check_absolute_path(target) {
                Ok(()) => Ok(target.to_string()),
                Err(message) => Err(self.fail(&path.key("target"), message)),
            },
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let sha256 = match self.opt_str(map, "sha256", path) {
            Ok(Some(digest)) if digest.len() == 64 && is_hex(digest) => {
                Ok(Some(digest.to_ascii_lowercase()))
            }
            Ok(Some(_)) => Err(self.fail(
                &path.key("sha256"),
                "expected 64 hexadecimal digits (a SHA-256 digest)",
            )),
            other => other.map(|_| None),
        };
        if let (Ok(name), Ok(target)) = (&name, &target) {
            self.image_targets
                .push((name.clone(), target.clone(), path.clone()));
        }
        Ok(Image {
            name: name?,
            boot: boot?,
            image_name: image_name?,
            image_uuid: image_uuid?,
            source: source?,
            target: target?,
            sha256: sha256?,
        })
    }

    fn image_name(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        names: &mut HashMap<String, JsonPath>,
    ) -> Checked<String> {
        let name = self.opt_str(map, "name", path)?.ok_or(Invalid)?;
        let at = path.key("name");
        if let Err(message) = check_image_name(name) {
            return Err(self.fail(&at, message));
        }
        if let Some(first) = names.get(name) {
            let message = format!("image name {} is already used by {first}", quote(name));
            return Err(self.fail(&at, message));
        }
        names.insert(name.to_string(), path.clone());
        Ok(name.to_string())
    }
}
