//! The walk's state, and the checks every part of the document uses: JSON types, keys,
//! optional members, sizes and entry types.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::keys::Ignored;
use super::syntax::has_control;
use super::{ConfigError, JsonPath};
use crate::config::FileSystem;
use crate::size::Size;
use crate::text::quote;
use crate::text::{closest, did_you_mean};

/// Marks a value that failed its checks; the error is already recorded.
pub(super) struct Invalid;

pub(super) type Checked<T> = Result<T, Invalid>;

/// A mounted volume as the cross checks see it.
pub(super) struct MountUse {
    pub(super) volume: JsonPath,
    pub(super) mount: String,
    pub(super) images: Vec<String>,
    pub(super) raid: bool,
}

/// The first member of an md array (raid volumes sharing a mount point).
pub(super) struct RaidFirst {
    pub(super) volume: JsonPath,
    pub(super) file_system: Option<FileSystem>,
    pub(super) images: Vec<String>,
    pub(super) name: Option<String>,
}

/// What an object's keys may be (see [`Checker::check_keys`]).
pub(super) struct Keys<'a> {
    pub(super) known: &'a [&'a str],
    pub(super) required: &'a [&'a str],
    pub(super) ignored: &'a [Ignored],
    pub(super) hints: &'a [(&'a str, &'a str)],
}

#[derive(Default)]
pub(super) struct Checker {
    /// `--strict`: unknown keys are errors, not warnings.
    pub(super) strict: bool,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
    /// Every image name, valid or not (so that a bad name is reported once, not again at
    /// every reference); `None` when `images` or some image's `name` could not be read.
    pub(super) image_names: Option<Vec<String>>,
    /// `images[0].name` when it is a string: the image of volumes without `images`.
    pub(super) first_image: Option<String>,
    /// `(name, target, image path)` of images whose name and target are valid.
    pub(super) image_targets: Vec<(String, String, JsonPath)>,
    pub(super) mounts: Vec<MountUse>,
    /// False once a volume's mount or images could not be read: "no volume at the
    /// target" would then be a guess.
    pub(super) mounts_incomplete: bool,
    pub(super) raids: HashMap<String, RaidFirst>,
    /// The first raid member giving each md device name (without `/dev/`), and its mount.
    pub(super) md_names: HashMap<String, (JsonPath, String)>,
    pub(super) disk_ids: HashMap<String, JsonPath>,
    pub(super) guids: HashMap<String, JsonPath>,
    /// `(vg path, vg id)` of every pv with a readable `vg`.
    pub(super) pv_refs: Vec<(JsonPath, String)>,
    /// `(id path, id)` of every vg with a valid id.
    pub(super) vg_ids: Vec<(JsonPath, String)>,
    /// False once a pv's `vg` or a vg's `id` could not be read.
    pub(super) lvm_incomplete: bool,
}

pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Checker {
    /// Records a warning: something accepted that the operator should know about.
    pub(super) fn warn(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            path: path.clone(),
            message: message.into(),
        });
    }

    pub(super) fn fail(&mut self, path: &JsonPath, message: impl Into<String>) -> Invalid {
        self.errors.push(ConfigError {
            path: path.clone(),
            message: message.into(),
        });
        Invalid
    }

    /// `value` as the JSON type `expected` names ("a string", ...), taken out by `get`; else
    /// an error at `path` saying what was found instead.
    pub(super) fn typed<'a, T>(
        &mut self,
        value: &'a Value,
        path: &JsonPath,
        expected: &str,
        get: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Checked<T> {
        match get(value) {
            Some(typed) => Ok(typed),
            None => Err(self.fail(
                path,
                format!("expected {expected}, found {}", json_kind(value)),
            )),
        }
    }

    pub(super) fn object<'a>(
        &mut self,
        value: &'a Value,
        path: &JsonPath,
    ) -> Checked<&'a Map<String, Value>> {
        self.typed(value, path, "an object", Value::as_object)
    }

    pub(super) fn array<'a>(
        &mut self,
        value: &'a Value,
        path: &JsonPath,
    ) -> Checked<&'a Vec<Value>> {
        self.typed(value, path, "an array", Value::as_array)
    }

    /// Passes `checked` through; when it failed, the document holds something unreadable
    /// (an entry or volume that is not an object, or has no valid type), so checks that need
    /// every mount point or every pv/vg are skipped.
    pub(super) fn unreadable_unless<T>(&mut self, checked: Checked<T>) -> Checked<T> {
        if checked.is_err() {
            self.mounts_incomplete = true;
            self.lvm_incomplete = true;
        }
        checked
    }

    /// Checks an object's keys against `keys`: a known key passes, an ignored one gets a
    /// warning saying why, a missing required key is an error. An unknown key gets a
    /// likely intended key or the known ones; it is an error under `--strict`, or when it
    /// looks like a typo of a missing required key (the config cannot work without it),
    /// and otherwise a warning, since Bareon ignores keys it does not know. A missing key
    /// that an unknown key looks like a typo of is not reported twice.
    pub(super) fn check_keys(&mut self, map: &Map<String, Value>, path: &JsonPath, keys: &Keys) {
        let mut suggested = HashSet::new();
        for key in map.keys() {
            if keys.known.contains(&key.as_str()) {
                continue;
            }
            if let Some((_, why)) = keys.ignored.iter().find(|(k, _)| k == key) {
                self.warn(&path.key(key), format!("ignored: {why}"));
                continue;
            }
            let hint = keys.hints.iter().find(|(k, _)| k == key).map(|(_, h)| *h);
            let suggestion = closest(key, keys.known.iter().copied());
            let missing_required =
                suggestion.is_some_and(|s| keys.required.contains(&s) && !map.contains_key(s));
            let strict = self.strict || missing_required;
            let head = if strict {
                "unknown key"
            } else {
                "unknown key, ignored"
            };
            let message = match (hint, suggestion) {
                (Some(hint), _) => format!("{head}; {hint}"),
                (None, Some(suggestion)) => format!("{head}{}", did_you_mean(Some(suggestion))),
                (None, None) => format!("{head}; expected one of: {}", keys.known.join(", ")),
            };
            if let Some(suggestion) = suggestion {
                suggested.insert(suggestion);
            }
            if strict {
                self.fail(&path.key(key), message);
            } else {
                self.warn(&path.key(key), message);
            }
        }
        for key in keys.required {
            if !map.contains_key(*key) && !suggested.contains(key) {
                self.fail(&path.key(key), "missing required key");
            }
        }
    }

    pub(super) fn opt_str<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        key: &str,
        path: &JsonPath,
    ) -> Checked<Option<&'a str>> {
        map.get(key)
            .map(|value| self.typed(value, &path.key(key), "a string", Value::as_str))
            .transpose()
    }

    /// A string without control characters (it ends up in files and command lines).
    pub(super) fn opt_text(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        path: &JsonPath,
    ) -> Checked<Option<String>> {
        match self.opt_str(map, key, path)? {
            Some(s) if has_control(s) => Err(self.fail(
                &path.key(key),
                format!("{} contains control characters", quote(s)),
            )),
            other => Ok(other.map(str::to_string)),
        }
    }

    pub(super) fn opt_bool(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        path: &JsonPath,
    ) -> Checked<Option<bool>> {
        map.get(key)
            .map(|value| self.typed(value, &path.key(key), "a boolean", Value::as_bool))
            .transpose()
    }

    pub(super) fn opt_size(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        path: &JsonPath,
    ) -> Checked<Option<Size>> {
        let at = path.key(key);
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => match Size::parse(s) {
                Ok(size) => Ok(Some(size)),
                Err(error) => Err(self.fail(&at, format!("invalid size {}: {error}", quote(s)))),
            },
            Some(Value::Number(_)) => Err(self.fail(
                &at,
                "expected a string, found a number; Bareon writes sizes as strings, \
                 such as \"4000\" (MiB) or \"4 GiB\"",
            )),
            Some(other) => Err(self.fail(
                &at,
                format!("expected a size string, found {}", json_kind(other)),
            )),
        }
    }

    /// An exact size in bytes, for sizes that cannot be relative.
    pub(super) fn opt_bytes(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        path: &JsonPath,
        what: &str,
    ) -> Checked<Option<u64>> {
        match self.opt_size(map, key, path)? {
            None => Ok(None),
            Some(Size::Bytes(bytes)) => Ok(Some(bytes)),
            Some(_) => Err(self.fail(
                &path.key(key),
                format!("{what} must be an exact amount such as \"100 GiB\""),
            )),
        }
    }

    /// The `type` of an entry, which decides its keys. Unknown types get a suggestion, or
    /// `misplaced` explains a type that belongs elsewhere.
    pub(super) fn entry_type<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &JsonPath,
        allowed: &[&str],
        misplaced: &[(&str, &str)],
    ) -> Checked<&'a str> {
        let at = path.key("type");
        let Some(kind) = self.opt_str(map, "type", path)? else {
            return Err(self.fail(&at, "missing required key"));
        };
        if allowed.contains(&kind) {
            return Ok(kind);
        }
        let message = match misplaced.iter().find(|(k, _)| *k == kind) {
            Some((_, why)) => why.to_string(),
            None => format!(
                "unknown type {}{}; expected one of: {}",
                quote(kind),
                did_you_mean(closest(kind, allowed.iter().copied())),
                allowed.join(", ")
            ),
        };
        Err(self.fail(&at, message))
    }
}
