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
use checker::{Checked, Checker, Keys};
use keys::{POLICIES, TOP_IGNORED, TOP_KEYS};

/// One problem in a provision.json: where, and what, in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: JsonPath,
    pub message: String,
}

/// What [`check`] found: the typed config or every error, and the warnings (keys accepted
/// and ignored, volumes skipped, labels cut, ...), which a valid config may have too.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<ProvisionConfig, Vec<ConfigError>>,
    pub warnings: Vec<ConfigError>,
}

/// Parses and validates a provision.json, without `--strict`, dropping the warnings.
pub fn validate(text: &str) -> Result<ProvisionConfig, Vec<ConfigError>> {
    check(text, false).result
}

/// Parses and validates a provision.json. Returns the typed config, or every error found,
/// in document order followed by the checks that span the document; and the warnings in
/// the same order. `strict` makes unknown keys errors.
pub fn check(text: &str, strict: bool) -> Outcome {
    let value = match parse_json(text) {
        Ok(value) => value,
        Err(error) => {
            return Outcome {
                result: Err(vec![error]),
                warnings: Vec::new(),
            }
        }
    };
    let mut checker = Checker {
        strict,
        ..Checker::default()
    };
    let config = checker.config(&value);
    checker.cross_checks();
    let result = match config {
        Ok(config) if checker.errors.is_empty() => Ok(config),
        _ => {
            debug_assert!(!checker.errors.is_empty(), "rejected without an error");
            Err(checker.errors)
        }
    };
    Outcome {
        result,
        warnings: checker.warnings,
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
        let keys = Keys {
            known: TOP_KEYS,
            required: &["images", "partitions"],
            ignored: TOP_IGNORED,
            hints: &[],
        };
        self.check_keys(map, &path, &keys);
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

    /// `image_deploy_flags` and `deploy_data`: free-form objects (bareon-ironic adds to
    /// them) of which the deployer reads one string member; it ignores the others with a
    /// warning.
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
        for other in object.keys().filter(|k| *k != member) {
            let message = format!(
                "ignored: the deployer reads only {key}.{member}{}",
                did_you_mean(closest(other, [member]))
            );
            self.warn(&at.key(other), message);
        }
        self.opt_text(object, member, &at)
    }
}
