//! Parse and validate provision.json: pure, and every error at once.
//!
//! [`validate`] reads the text as JSON (rejecting duplicate keys), walks it once checking
//! each value where it stands (types, unknown and missing keys, sizes, names, paths, URLs)
//! and building the typed [`ProvisionConfig`], then runs the checks that span the document
//! (one `/` per image, image references, pv/vg links). Each problem becomes a
//! [`ConfigError`] naming its JSON path, such as `partitions[0].volumes[2].images[1]`.
//! A value that is wrong is reported once: checks that depend on it skip it instead of
//! reporting follow-up errors.

mod checker;
mod cross;
mod fs_volume;
mod images;
mod json_path;
mod keys;
mod storage;
mod syntax;
#[cfg(test)]
mod tests;

pub use json_path::JsonPath;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{PartitionsPolicy, ProvisionConfig};
use crate::text::{closest, did_you_mean, quote};
use checker::{Checked, Checker};
use keys::{POLICIES, TOP_HINTS, TOP_KEYS};

/// One problem in a provision.json: where, and what, in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: JsonPath,
    pub message: String,
}

/// Parses and validates a provision.json. Returns the typed config, or every error found,
/// in document order followed by the checks that span the document.
pub fn validate(text: &str) -> Result<ProvisionConfig, Vec<ConfigError>> {
    let value = parse_json(text).map_err(|error| vec![error])?;
    let mut checker = Checker::default();
    let config = checker.config(&value);
    checker.cross_checks();
    match config {
        Ok(config) if checker.errors.is_empty() => Ok(config),
        _ => {
            debug_assert!(!checker.errors.is_empty(), "rejected without an error");
            Err(checker.errors)
        }
    }
}

fn parse_json(text: &str) -> Result<Value, ConfigError> {
    // Editors on Windows save one; serde_json would only say "expected value" at 1:1.
    if text.starts_with('\u{feff}') {
        return Err(ConfigError {
            path: JsonPath::root(),
            message: "the file starts with a byte order mark (U+FEFF), which JSON does not \
                      allow; save it as UTF-8 without one"
                .to_string(),
        });
    }
    shared::json::from_str(text).map_err(|error| {
        let full = error.to_string();
        let location = format!(" at line {} column {}", error.line(), error.column());
        let what = full.strip_suffix(&location).unwrap_or(&full);
        ConfigError {
            path: JsonPath::root(),
            message: format!(
                "malformed JSON at line {}, column {}: {what}",
                error.line(),
                error.column()
            ),
        }
    })
}

impl Checker {
    fn config(&mut self, root: &Value) -> Checked<ProvisionConfig> {
        let path = JsonPath::root();
        let map = self.object(root, &path)?;
        self.check_keys(map, &path, TOP_KEYS, &["images", "partitions"], TOP_HINTS);
        let images = self.images(map.get("images"), &path.key("images"));
        let partitions = self.partitions(map.get("partitions"), &path.key("partitions"));
        let policy = self.policy(map, &path);
        let rsync_flags = self.sub_object(map, &path, "image_deploy_flags", "rsync_flags");
        let kernel_params = self.sub_object(map, &path, "deploy_data", "kernel_params");
        let kernel_params = match kernel_params {
            Ok(Some(params)) if params.contains(['"', '\'', '\\']) => {
                let message = format!(
                    "{} contains a quote or a backslash: GRUB hands \", ' and \\ to the kernel \
                     with a backslash in front, so the kernel would not get the parameters as \
                     written",
                    quote(&params)
                );
                Err(self.fail(&path.key("deploy_data").key("kernel_params"), message))
            }
            other => other,
        };
        Ok(ProvisionConfig {
            images: images?,
            partitions: partitions?,
            partitions_policy: policy?,
            rsync_flags: rsync_flags?,
            kernel_params: kernel_params?,
        })
    }

    fn policy(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<PartitionsPolicy> {
        Ok(match self.opt_str(map, "partitions_policy", path)? {
            None | Some("verify") => PartitionsPolicy::Verify,
            Some("clean") => PartitionsPolicy::Clean,
            Some("nailgun_legacy") => PartitionsPolicy::NailgunLegacy,
            Some(other) => {
                let message = format!(
                    "unknown policy {}{}; expected one of: {}",
                    quote(other),
                    did_you_mean(closest(other, POLICIES.iter().copied())),
                    POLICIES.join(", ")
                );
                return Err(self.fail(&path.key("partitions_policy"), message));
            }
        })
    }

    /// `image_deploy_flags` and `deploy_data`: objects with a single known string member.
    fn sub_object(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        key: &str,
        member: &str,
    ) -> Checked<Option<String>> {
        let Some(value) = map.get(key) else {
            return Ok(None);
        };
        let at = path.key(key);
        let object = self.object(value, &at)?;
        self.check_keys(object, &at, &[member], &[], &[]);
        self.opt_text(object, member, &at)
    }
}
