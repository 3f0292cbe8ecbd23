//! Parse and validate provision.json: pure, and every error at once.
//!
//! [`validate`] reads the text as JSON (rejecting duplicate keys), walks it once checking
//! each value where it stands (types, unknown and missing keys, sizes, names, paths, URLs)
//! and building the typed [`ProvisionConfig`], then runs the checks that span the document
//! (one `/` per image, image references, pv/vg links). Each problem becomes a
//! [`ConfigError`] naming its JSON path, such as `partitions[0].volumes[2].images[1]`.
//! A value that is wrong is reported once: checks that depend on it skip it instead of
//! reporting follow-up errors.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::config::{
    BootVolume, Disk, DiskId, DiskIdKind, DiskVolume, FileSystem, FsVolume, Image, ImageSource,
    LogicalVolume, LvmMetaPool, Mount, Partition, PartitionsPolicy, PhysicalVolume,
    ProvisionConfig, Raid, StorageEntry, VolumeGroup,
};
use crate::size::{Size, MIB};
use crate::text::{format_percent, quote};
use shared::layout::MULTIBOOT_LABEL;

/// A location in the JSON document. Displays as `partitions[0].volumes[2].images[1]`;
/// the document itself is `$`; keys that are not plain identifiers are written `["a b"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// The whole document (`$`).
    pub fn root() -> JsonPath {
        JsonPath::default()
    }

    /// The member `key` of the object at this path.
    pub fn key(&self, key: &str) -> JsonPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        JsonPath(segments)
    }

    /// Element `index` of the array at this path.
    pub fn index(&self, index: usize) -> JsonPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        JsonPath(segments)
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_identifier(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{}]", quote(key))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

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

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Edit distance between two strings (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The candidate `word` is most likely a typo of: at most two edits away (ignoring case),
/// and fewer edits than the candidate has characters.
fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (levenshtein(&word, &candidate.to_lowercase()), candidate))
        .filter(|&(distance, candidate)| distance <= 2 && distance < candidate.chars().count())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean {}?)", quote(s)))
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks an absolute path that later joins onto a directory: `/`, or `/a/b` with no
/// empty, `.` or `..` component, no trailing `/` and no control characters.
fn check_absolute_path(s: &str) -> Result<(), String> {
    if has_control(s) {
        return Err(format!("{} contains control characters", quote(s)));
    }
    if !s.starts_with('/') {
        return Err(format!("{} is not an absolute path", quote(s)));
    }
    if s == "/" {
        return Ok(());
    }
    if s.ends_with('/') {
        return Err(format!(
            "write {} without the trailing \"/\"",
            quote(s.trim_end_matches('/'))
        ));
    }
    for component in s[1..].split('/') {
        match component {
            "" => return Err(format!("{} has an empty component", quote(s))),
            "." | ".." => {
                return Err(format!(
                    "{} has a \".\" or \"..\" component; write the path without it",
                    quote(s)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_mount(s: &str) -> Result<Mount, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Mount::None);
    }
    if s.eq_ignore_ascii_case("swap") {
        return Ok(Mount::Swap);
    }
    if !s.starts_with('/') && !has_control(s) {
        return Err(format!(
            "mount point {} is not an absolute path (nor \"swap\" or \"none\")",
            quote(s)
        ));
    }
    check_absolute_path(s)?;
    if s.chars().any(char::is_whitespace) {
        return Err(format!(
            "mount point {} contains whitespace, which is not supported",
            quote(s)
        ));
    }
    Ok(Mount::Path(s.to_string()))
}

fn check_image_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the image name is empty".into());
    }
    let safe = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !safe {
        return Err(format!(
            "image name {} may only contain ASCII letters, digits, \".\", \"_\" and \"-\", \
             and must start with a letter or digit (it names a directory and a GRUB entry)",
            quote(name)
        ));
    }
    if name.len() > 64 {
        return Err(format!(
            "image name {} is longer than 64 characters",
            quote(name)
        ));
    }
    Ok(())
}

/// LVM's rule for volume group and logical volume names.
fn check_lvm_name(name: &str, what: &str) -> Result<(), String> {
    let charset = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-'));
    if name.is_empty()
        || name.len() > 127
        || !charset
        || name.starts_with('-')
        || name == "."
        || name == ".."
    {
        return Err(format!(
            "{what} {} must be 1 to 127 of letters, digits, \"+\", \"_\", \".\" and \"-\", \
             not starting with \"-\"",
            quote(name)
        ));
    }
    Ok(())
}

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && is_hex(group))
}

fn is_md_name(name: &str) -> bool {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    if let Some(number) = name.strip_prefix("md/") {
        return number
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    }
    name.strip_prefix("md")
        .is_some_and(|number| !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
}

/// Decodes `%XX` escapes of a `file://` URL's path.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| is_hex(h))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_source(url: &str) -> Result<ImageSource, String> {
    const EXPECTED: &str = "use a file://, http://, https:// or rsync:// URL or an absolute path";
    if url.is_empty() {
        return Err(format!("the image URL is empty; {EXPECTED}"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the image URL contains whitespace or control characters".into());
    }
    if url.starts_with('/') {
        return Ok(ImageSource::Path(url.to_string()));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        if url.contains("::") {
            return Err(format!(
                "{} looks like an rsync daemon address; write it as rsync://HOST/MODULE/PATH",
                quote(url)
            ));
        }
        return Err(format!(
            "{} is not a URL or an absolute path; {EXPECTED}",
            quote(url)
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            match percent_decode(path) {
                Some(path) if path.starts_with('/') && !path.contains('\0') => {
                    Ok(ImageSource::Path(path))
                }
                Some(_) if !path.starts_with('/') => Err(format!(
                    "{} names a remote host or a relative path; a file:// URL is \
                     file:///ABSOLUTE/PATH",
                    quote(url)
                )),
                _ => Err(format!("{} has a bad %-escape", quote(url))),
            }
        }
        kind @ ("http" | "https" | "rsync") => {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(format!("{} has no host", quote(url)));
            }
            Ok(match kind {
                "http" => ImageSource::Http(url.to_string()),
                "https" => ImageSource::Https(url.to_string()),
                _ => ImageSource::Rsync(url.to_string()),
            })
        }
        _ => Err(format!(
            "unsupported URL scheme {}; {EXPECTED}",
            quote(scheme)
        )),
    }
}

const TOP_KEYS: &[&str] = &[
    "images",
    "partitions",
    "partitions_policy",
    "image_deploy_flags",
    "deploy_data",
];
const IMAGE_KEYS: &[&str] = &[
    "name",
    "boot",
    "image_name",
    "image_uuid",
    "image_pull_url",
    "target",
    "sha256",
];
const DISK_KEYS: &[&str] = &["type", "id", "name", "size", "volumes"];
const DISK_ID_KEYS: &[&str] = &["type", "value"];
const VG_KEYS: &[&str] = &[
    "type",
    "id",
    "label",
    "min_size",
    "_allocate_size",
    "keep_data",
    "volumes",
];
const PARTITION_KEYS: &[&str] = &[
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
const RAID_KEYS: &[&str] = &[
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
const PV_KEYS: &[&str] = &["type", "size", "vg", "keep_data", "lvm_meta_size"];
const BOOT_KEYS: &[&str] = &["type", "size", "keep_data"];
const LVM_META_POOL_KEYS: &[&str] = &["type", "size"];
const LV_KEYS: &[&str] = &[
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
const DISK_VOLUME_TYPES: &[&str] = &["partition", "raid", "pv", "boot", "lvm_meta_pool"];
const POLICIES: &[&str] = &["verify", "clean", "nailgun_legacy"];

const TOP_HINTS: &[(&str, &str)] = &[(
    "on_fail_script",
    "Ironic's conductor runs on_fail_script; it is not part of the agent's provision.json",
)];
const IMAGE_HINTS: &[(&str, &str)] = &[
    (
        "url",
        "the agent's provision.json names the image source \"image_pull_url\"",
    ),
    ("checksum", "give the image's SHA-256 digest as \"sha256\""),
];
const PV_HINTS: &[(&str, &str)] = &[(
    "images",
    "a pv holds no filesystem; put \"images\" on the logical volumes of its vg",
)];

/// Marks a value that failed its checks; the error is already recorded.
struct Invalid;

type Checked<T> = Result<T, Invalid>;

/// Where a volume's filesystem is: decides which keys and rules apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FsKind {
    Partition,
    Raid,
    Lv,
}

/// Space bookkeeping for one disk or volume group.
struct Tally {
    remaining: Option<JsonPath>,
    percent: u32,
}

/// A mounted volume as the cross checks see it.
struct MountUse {
    volume: JsonPath,
    mount: String,
    images: Vec<String>,
    raid: bool,
}

/// The first member of an md array (raid volumes sharing a mount point).
struct RaidFirst {
    volume: JsonPath,
    file_system: Option<FileSystem>,
    images: Vec<String>,
    name: Option<String>,
}

#[derive(Default)]
struct Checker {
    errors: Vec<ConfigError>,
    /// Every image name, valid or not (so that a bad name is reported once, not again at
    /// every reference); `None` when `images` or some image's `name` could not be read.
    image_names: Option<Vec<String>>,
    /// `images[0].name` when it is a string: the image of volumes without `images`.
    first_image: Option<String>,
    /// `(name, target, image path)` of images whose name and target are valid.
    image_targets: Vec<(String, String, JsonPath)>,
    mounts: Vec<MountUse>,
    /// False once a volume's mount or images could not be read: "no volume at the
    /// target" would then be a guess.
    mounts_incomplete: bool,
    raids: HashMap<String, RaidFirst>,
    /// The first raid member giving each md device name (without `/dev/`), and its mount.
    md_names: HashMap<String, (JsonPath, String)>,
    disk_ids: HashMap<String, JsonPath>,
    guids: HashMap<String, JsonPath>,
    /// `(vg path, vg id)` of every pv with a readable `vg`.
    pv_refs: Vec<(JsonPath, String)>,
    /// `(id path, id)` of every vg with a valid id.
    vg_ids: Vec<(JsonPath, String)>,
    /// False once a pv's `vg` or a vg's `id` could not be read.
    lvm_incomplete: bool,
}

impl Checker {
    fn fail(&mut self, path: &JsonPath, message: impl Into<String>) -> Invalid {
        self.errors.push(ConfigError {
            path: path.clone(),
            message: message.into(),
        });
        Invalid
    }

    /// `value` as the JSON type `expected` names ("a string", ...), taken out by `get`; else
    /// an error at `path` saying what was found instead.
    fn typed<'a, T>(
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
                format!("expected {expected}, found {}", describe(value)),
            )),
        }
    }

    fn object<'a>(&mut self, value: &'a Value, path: &JsonPath) -> Checked<&'a Map<String, Value>> {
        self.typed(value, path, "an object", Value::as_object)
    }

    fn array<'a>(&mut self, value: &'a Value, path: &JsonPath) -> Checked<&'a Vec<Value>> {
        self.typed(value, path, "an array", Value::as_array)
    }

    /// Passes `checked` through; when it failed, the document holds something unreadable
    /// (an entry or volume that is not an object, or has no valid type), so checks that need
    /// every mount point or every pv/vg are skipped.
    fn unreadable_unless<T>(&mut self, checked: Checked<T>) -> Checked<T> {
        if checked.is_err() {
            self.mounts_incomplete = true;
            self.lvm_incomplete = true;
        }
        checked
    }

    /// Reports unknown keys (with a likely intended key, or the known ones) and missing
    /// required keys. A missing key that an unknown key looks like a typo of is not
    /// reported twice.
    fn check_keys(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        known: &[&str],
        required: &[&str],
        hints: &[(&str, &str)],
    ) {
        let mut suggested = HashSet::new();
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let message = if let Some((_, hint)) = hints.iter().find(|(k, _)| k == key) {
                format!("unknown key; {hint}")
            } else if let Some(suggestion) = closest(key, known.iter().copied()) {
                suggested.insert(suggestion);
                format!("unknown key{}", did_you_mean(Some(suggestion)))
            } else {
                format!("unknown key; expected one of: {}", known.join(", "))
            };
            self.fail(&path.key(key), message);
        }
        for key in required {
            if !map.contains_key(*key) && !suggested.contains(key) {
                self.fail(&path.key(key), "missing required key");
            }
        }
    }

    fn opt_str<'a>(
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
    fn opt_text(
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

    fn opt_bool(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        path: &JsonPath,
    ) -> Checked<Option<bool>> {
        map.get(key)
            .map(|value| self.typed(value, &path.key(key), "a boolean", Value::as_bool))
            .transpose()
    }

    fn opt_size(
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
                format!("expected a size string, found {}", describe(other)),
            )),
        }
    }

    /// An exact size in bytes, for sizes that cannot be relative.
    fn opt_bytes(
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

    /// A volume's required `size`, counted into its disk's or volume group's tally.
    fn volume_size(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        tally: &mut Tally,
        container: &str,
    ) -> Checked<Size> {
        let size = self.opt_size(map, "size", path)?.ok_or(Invalid)?;
        match size {
            Size::Remaining => {
                if let Some(first) = &tally.remaining {
                    let message = format!(
                        "only one volume per {container} may use \"remaining\"; \
                         {first} already does"
                    );
                    return Err(self.fail(&path.key("size"), message));
                }
                tally.remaining = Some(path.clone());
            }
            Size::Percent(hundredths) => tally.percent += hundredths,
            Size::Bytes(_) => {}
        }
        Ok(size)
    }

    fn check_percent_total(&mut self, tally: &Tally, path: &JsonPath, container: &str) {
        if tally.percent > 10_000 {
            self.fail(
                path,
                format!(
                    "the percentages of this {container}'s volumes add up to {}, more than 100%",
                    format_percent(tally.percent)
                ),
            );
        }
    }

    /// The `type` of an entry, which decides its keys. Unknown types get a suggestion, or
    /// `misplaced` explains a type that belongs elsewhere.
    fn entry_type<'a>(
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

    fn images(&mut self, value: Option<&Value>, path: &JsonPath) -> Checked<Vec<Image>> {
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
        let mut first_boot: Option<JsonPath> = None;
        let mut images = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let at = path.index(i);
            let image = self.image(item, &at, &mut names);
            if let Ok(image) = &image {
                let boot_at = at.key("boot");
                if image.boot {
                    if let Some(first) = &first_boot {
                        self.fail(
                            &boot_at,
                            format!(
                                "only one image may have \"boot\": true; {first} already has it"
                            ),
                        );
                    } else {
                        first_boot = Some(at.clone());
                    }
                    if image.target != "/" {
                        self.fail(
                            &boot_at,
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
        images.into_iter().collect()
    }

    fn image(
        &mut self,
        value: &Value,
        path: &JsonPath,
        names: &mut HashMap<String, JsonPath>,
    ) -> Checked<Image> {
        let map = self.object(value, path)?;
        self.check_keys(
            map,
            path,
            IMAGE_KEYS,
            &["name", "image_pull_url", "target"],
            IMAGE_HINTS,
        );
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
                    describe(other)
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

    fn partitions(&mut self, value: Option<&Value>, path: &JsonPath) -> Checked<Vec<StorageEntry>> {
        let Some(value) = value else {
            self.mounts_incomplete = true;
            return Err(Invalid);
        };
        let list = self
            .array(value, path)
            .inspect_err(|_| self.mounts_incomplete = true)?;
        let mut entries = Vec::new();
        let mut any_disk = false;
        for (i, item) in list.iter().enumerate() {
            let at = path.index(i);
            entries.push(self.storage_entry(item, &at, &mut any_disk));
        }
        if !any_disk {
            self.mounts_incomplete = true;
            self.fail(path, "at least one \"disk\" entry is required");
        }
        entries.into_iter().collect()
    }

    fn storage_entry(
        &mut self,
        value: &Value,
        path: &JsonPath,
        any_disk: &mut bool,
    ) -> Checked<StorageEntry> {
        let map = self.object(value, path);
        let map = self.unreadable_unless(map)?;
        let kind = self.entry_type(map, path, &["disk", "vg"], &[]);
        let kind = self.unreadable_unless(kind)?;
        match kind {
            "disk" => {
                *any_disk = true;
                self.disk(map, path).map(StorageEntry::Disk)
            }
            _ => self.volume_group(map, path).map(StorageEntry::VolumeGroup),
        }
    }

    fn disk(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<Disk> {
        self.check_keys(map, path, DISK_KEYS, &["type", "id", "volumes"], &[]);
        let id = match map.get("id") {
            Some(id) => self.disk_id(id, &path.key("id"), path),
            None => Err(Invalid),
        };
        let name = self.opt_text(map, "name", path);
        let size = self.opt_bytes(map, "size", path, "a disk's size");
        let volumes_at = path.key("volumes");
        let list = match map.get("volumes") {
            Some(value) => self.array(value, &volumes_at),
            None => Err(Invalid),
        };
        let mut volumes = Vec::new();
        if let Ok(list) = list {
            let mut tally = Tally {
                remaining: None,
                percent: 0,
            };
            let mut boot: Option<JsonPath> = None;
            for (j, item) in list.iter().enumerate() {
                let at = volumes_at.index(j);
                volumes.push(self.disk_volume(item, &at, &mut tally, &mut boot));
            }
            self.check_percent_total(&tally, &volumes_at, "disk");
        } else {
            self.mounts_incomplete = true;
            self.lvm_incomplete = true;
        }
        let volumes: Checked<Vec<DiskVolume>> = volumes.into_iter().collect();
        list?;
        Ok(Disk {
            id: id?,
            name: name?,
            size: size?,
            volumes: volumes?,
        })
    }

    fn disk_id(&mut self, value: &Value, path: &JsonPath, disk: &JsonPath) -> Checked<DiskId> {
        let map = self.object(value, path)?;
        self.check_keys(map, path, DISK_ID_KEYS, &["type", "value"], &[]);
        let kind = match self.opt_str(map, "type", path) {
            Ok(Some("name")) => Ok(DiskIdKind::Name),
            Ok(Some("path")) => Ok(DiskIdKind::Path),
            Ok(Some("scsi")) => Ok(DiskIdKind::Scsi),
            Ok(Some(other)) => {
                let message = format!(
                    "unknown disk id type {}{}; expected one of: name, path, scsi",
                    quote(other),
                    did_you_mean(closest(other, ["name", "path", "scsi"]))
                );
                Err(self.fail(&path.key("type"), message))
            }
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let value = self.opt_str(map, "value", path)?.ok_or(Invalid)?;
        let at = path.key("value");
        if value.is_empty() {
            return Err(self.fail(&at, "the disk id is empty"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.fail(
                &at,
                format!("{} contains whitespace or control characters", quote(value)),
            ));
        }
        let kind = kind?;
        let valid = match kind {
            DiskIdKind::Scsi => {
                let parts: Vec<&str> = value.split(':').collect();
                parts.len() == 4
                    && parts
                        .iter()
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            }
            DiskIdKind::Name | DiskIdKind::Path => !value.split('/').any(|c| c == ".."),
        };
        if !valid {
            let message = match kind {
                DiskIdKind::Scsi => format!(
                    "{} is not a SCSI address HOST:CHANNEL:TARGET:LUN such as \"6:1:0:0\"",
                    quote(value)
                ),
                DiskIdKind::Name | DiskIdKind::Path => {
                    format!("{} has a \"..\" component", quote(value))
                }
            };
            return Err(self.fail(&at, message));
        }
        let key = value.strip_prefix("/dev/").unwrap_or(value).to_string();
        if let Some(first) = self.disk_ids.get(&key) {
            let message = format!("disk {} is already defined at {first}", quote(value));
            return Err(self.fail(&at, message));
        }
        self.disk_ids.insert(key, disk.clone());
        Ok(DiskId {
            kind,
            value: value.to_string(),
        })
    }

    fn disk_volume(
        &mut self,
        value: &Value,
        path: &JsonPath,
        tally: &mut Tally,
        boot: &mut Option<JsonPath>,
    ) -> Checked<DiskVolume> {
        let map = self.object(value, path);
        let map = self.unreadable_unless(map)?;
        let kind = self.entry_type(
            map,
            path,
            DISK_VOLUME_TYPES,
            &[(
                "lv",
                "\"lv\" volumes belong in a \"vg\" entry of partitions[], not on a disk",
            )],
        );
        match self.unreadable_unless(kind)? {
            "partition" => {
                self.check_keys(map, path, PARTITION_KEYS, &["type", "size", "mount"], &[]);
                let fs = self.fs_volume(map, path, FsKind::Partition, tally, "disk");
                let name = match self.opt_text(map, "name", path) {
                    Ok(Some(name)) if name.encode_utf16().count() > 36 => Err(self.fail(
                        &path.key("name"),
                        format!(
                            "GPT partition name {} is longer than 36 characters",
                            quote(&name)
                        ),
                    )),
                    other => other,
                };
                let guid = self.partition_guid(map, path);
                Ok(DiskVolume::Partition(Partition {
                    fs: fs?,
                    name: name?,
                    partition_guid: guid?,
                }))
            }
            "raid" => {
                self.check_keys(map, path, RAID_KEYS, &["type", "size", "mount"], &[]);
                let fs = self.fs_volume(map, path, FsKind::Raid, tally, "disk");
                let name = match self.opt_str(map, "name", path) {
                    Ok(Some(name)) if !is_md_name(name) => Err(self.fail(
                        &path.key("name"),
                        format!(
                            "md device name {} is not \"mdN\" or \"md/NAME\" \
                             (optionally under \"/dev/\")",
                            quote(name)
                        ),
                    )),
                    other => other.map(|name| name.map(str::to_string)),
                };
                if let (Ok(fs), Ok(name)) = (&fs, &name) {
                    self.raid_member(fs, name, path);
                }
                Ok(DiskVolume::Raid(Raid {
                    fs: fs?,
                    name: name?,
                }))
            }
            "pv" => {
                self.check_keys(map, path, PV_KEYS, &["type", "size", "vg"], PV_HINTS);
                let size = self.volume_size(map, path, tally, "disk");
                let vg = match self.opt_str(map, "vg", path) {
                    Ok(Some(vg)) => {
                        self.pv_refs.push((path.key("vg"), vg.to_string()));
                        Ok(vg.to_string())
                    }
                    Ok(None) | Err(Invalid) => {
                        self.lvm_incomplete = true;
                        Err(Invalid)
                    }
                };
                let meta = match self.opt_bytes(map, "lvm_meta_size", path, "lvm_meta_size") {
                    Ok(Some(bytes)) if bytes < 10 * MIB => Err(self.fail(
                        &path.key("lvm_meta_size"),
                        "lvm_meta_size must be at least 10 MiB",
                    )),
                    other => other,
                };
                let keep_data = self.opt_bool(map, "keep_data", path);
                keep_data?;
                Ok(DiskVolume::Pv(PhysicalVolume {
                    vg: vg?,
                    size: size?,
                    lvm_meta_size: meta?,
                }))
            }
            "boot" => {
                self.check_keys(map, path, BOOT_KEYS, &["type", "size"], &[]);
                if let Some(first) = boot {
                    let message =
                        format!("only one \"boot\" volume per disk; {first} already is one");
                    self.fail(&path.key("type"), message);
                } else {
                    *boot = Some(path.clone());
                }
                let size = self.volume_size(map, path, tally, "disk");
                let keep_data = self.opt_bool(map, "keep_data", path);
                Ok(DiskVolume::Boot(BootVolume {
                    size: size?,
                    keep_data: keep_data?.unwrap_or(true),
                }))
            }
            _ => {
                self.check_keys(map, path, LVM_META_POOL_KEYS, &["type", "size"], &[]);
                let size = self.volume_size(map, path, tally, "disk");
                Ok(DiskVolume::LvmMetaPool(LvmMetaPool { size: size? }))
            }
        }
    }

    fn partition_guid(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
    ) -> Checked<Option<String>> {
        let Some(guid) = self.opt_str(map, "partition_guid", path)? else {
            return Ok(None);
        };
        let at = path.key("partition_guid");
        if !is_guid(guid) {
            return Err(self.fail(
                &at,
                format!(
                    "{} is not a GUID such as \"0fc63daf-8483-4772-8e79-3d69d8477de4\"",
                    quote(guid)
                ),
            ));
        }
        let guid = guid.to_ascii_lowercase();
        if let Some(first) = self.guids.get(&guid) {
            let message = format!("partition GUID {} is already used by {first}", quote(&guid));
            return Err(self.fail(&at, message));
        }
        self.guids.insert(guid.clone(), path.clone());
        Ok(Some(guid))
    }

    /// Raid members with the same mount point make one md array: they must agree.
    fn raid_member(&mut self, fs: &FsVolume, name: &Option<String>, path: &JsonPath) {
        let key = match &fs.mount {
            Mount::Path(p) => p.clone(),
            Mount::Swap => "swap".to_string(),
            Mount::None => return,
        };
        let mut images = fs.images.clone();
        images.sort();
        let Some(first) = self.raids.get(&key) else {
            if let Some(name) = name {
                let device = name.strip_prefix("/dev/").unwrap_or(name);
                match self.md_names.get(device) {
                    Some((other, other_key)) => {
                        let message = format!(
                            "md device {} is already the array of the raid members with mount \
                             {} ({other}): each array needs a name of its own",
                            quote(device),
                            quote(other_key)
                        );
                        self.fail(&path.key("name"), message);
                    }
                    None => {
                        self.md_names
                            .insert(device.to_string(), (path.clone(), key.clone()));
                    }
                }
            }
            self.raids.insert(
                key,
                RaidFirst {
                    volume: path.clone(),
                    file_system: fs.file_system,
                    images,
                    name: name.clone(),
                },
            );
            return;
        };
        let show_fs =
            |fs: Option<FileSystem>| fs.map_or("none given".to_string(), |f| quote(f.as_str()));
        let mut problems = Vec::new();
        if first.file_system != fs.file_system {
            problems.push((
                "file_system",
                format!(
                    "file_system {} here, {} there",
                    show_fs(fs.file_system),
                    show_fs(first.file_system)
                ),
            ));
        }
        if first.images != images {
            problems.push((
                "images",
                format!(
                    "images [{}] here, [{}] there",
                    images.join(", "),
                    first.images.join(", ")
                ),
            ));
        }
        if &first.name != name {
            let show = |n: &Option<String>| n.as_deref().map_or("none given".to_string(), quote);
            problems.push((
                "name",
                format!("name {} here, {} there", show(name), show(&first.name)),
            ));
        }
        let first = first.volume.clone();
        for (field, what) in problems {
            self.fail(
                &path.key(field),
                format!(
                    "raid members with mount {} form one array and must agree with {first}: {what}",
                    quote(&key)
                ),
            );
        }
    }

    /// The filesystem part of partitions, raid members and logical volumes.
    fn fs_volume(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        kind: FsKind,
        tally: &mut Tally,
        container: &str,
    ) -> Checked<FsVolume> {
        let size = self.volume_size(map, path, tally, container);
        let mount_at = path.key("mount");
        let mount = match self.opt_str(map, "mount", path) {
            Ok(Some(mount)) => parse_mount(mount).map_err(|message| self.fail(&mount_at, message)),
            Ok(None) if kind == FsKind::Lv => Ok(Mount::None),
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let fs_at = path.key("file_system");
        let file_system = match self.opt_str(map, "file_system", path) {
            Ok(Some(name)) => match FileSystem::parse(name) {
                Some(fs) => Ok(Some(fs)),
                None => {
                    let supported: Vec<&str> = FileSystem::ALL.iter().map(|f| f.as_str()).collect();
                    Err(self.fail(
                        &fs_at,
                        format!(
                            "unsupported file_system {}; supported: {}",
                            quote(name),
                            supported.join(", ")
                        ),
                    ))
                }
            },
            other => other.map(|_| None),
        };
        let (mount, file_system) = match (mount, file_system) {
            (Ok(mount), Ok(fs)) => match self.mount_and_fs(mount, fs, kind, &mount_at, &fs_at) {
                Ok((mount, fs)) => (Ok(mount), Ok(fs)),
                Err(Invalid) => (Err(Invalid), Err(Invalid)),
            },
            (mount, fs) => (mount, fs),
        };
        let images = self.volume_images(map, path);
        let keep_data = self.opt_bool(map, "keep_data", path);
        let fstab_enabled = self.opt_bool(map, "fstab_enabled", path);
        let fstab_options = match self.opt_str(map, "fstab_options", path) {
            Ok(Some(options))
                if options.is_empty()
                    || options.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Err(self.fail(
                    &path.key("fstab_options"),
                    format!(
                        "fstab options {} must be non-empty, without whitespace \
                         (such as \"defaults,noatime\")",
                        quote(options)
                    ),
                ))
            }
            other => other.map(|options| {
                let default = if matches!(mount, Ok(Mount::Swap)) {
                    "sw"
                } else {
                    "defaults"
                };
                options.unwrap_or(default).to_string()
            }),
        };
        let label = if kind == FsKind::Raid {
            Ok(None)
        } else {
            self.label(map, path, file_system.as_ref().ok().copied().flatten())
        };
        match (&mount, &images) {
            (Ok(Mount::Path(mount)), Ok(images)) => self.mounts.push(MountUse {
                volume: path.clone(),
                mount: mount.clone(),
                images: images.clone(),
                raid: kind == FsKind::Raid,
            }),
            (Ok(_), Ok(_)) => {}
            _ => self.mounts_incomplete = true,
        }
        Ok(FsVolume {
            size: size?,
            mount: mount?,
            file_system: file_system?,
            images: images?,
            keep_data: keep_data?.unwrap_or(true),
            fstab_enabled: fstab_enabled?.unwrap_or(true),
            fstab_options: fstab_options?,
            label: label?,
        })
    }

    /// Rules that tie a volume's mount point to its file system.
    fn mount_and_fs(
        &mut self,
        mount: Mount,
        fs: Option<FileSystem>,
        kind: FsKind,
        mount_at: &JsonPath,
        fs_at: &JsonPath,
    ) -> Checked<(Mount, Option<FileSystem>)> {
        match (&mount, fs) {
            (Mount::Path(_), Some(FileSystem::Swap)) => Err(self.fail(
                mount_at,
                "a swap volume is not mounted on a path; use \"mount\": \"swap\" or \"none\"",
            )),
            (Mount::Swap, Some(other)) if other != FileSystem::Swap => Err(self.fail(
                fs_at,
                format!(
                    "a volume with \"mount\": \"swap\" needs \"file_system\": \"swap\", not {}",
                    quote(other.as_str())
                ),
            )),
            (Mount::Swap, _) => Ok((mount, Some(FileSystem::Swap))),
            (Mount::Path(path), Some(FileSystem::Vfat)) if path == "/" => Err(self.fail(
                fs_at,
                "\"/\" needs a POSIX file system (ext2, ext3, ext4 or xfs), not vfat",
            )),
            (Mount::None, _) if kind == FsKind::Raid => Err(self.fail(
                mount_at,
                "a raid member needs a mount point or \"swap\": members are grouped into \
                 arrays by mount point",
            )),
            _ => Ok((mount, fs)),
        }
    }

    fn label(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        fs: Option<FileSystem>,
    ) -> Checked<Option<String>> {
        let Some(label) = self.opt_text(map, "disk_label", path)? else {
            return Ok(None);
        };
        let at = path.key("disk_label");
        if label.is_empty() {
            return Err(self.fail(&at, "the label is empty; leave \"disk_label\" out for none"));
        }
        let (limit, whose) = match fs {
            Some(fs) => (fs.max_label_len(), fs.as_str()),
            None => (16, "any supported file system"),
        };
        if label.len() > limit {
            let message = format!(
                "label {} is longer than {limit} bytes, the limit of {whose}",
                quote(&label)
            );
            return Err(self.fail(&at, message));
        }
        if label == MULTIBOOT_LABEL {
            let message = format!(
                "label {} is the implicit multiboot partition's: bootctl finds that \
                 partition by it, so no other filesystem may have it",
                quote(&label)
            );
            return Err(self.fail(&at, message));
        }
        Ok(Some(label))
    }

    /// A volume's `images`, or the first image when absent.
    fn volume_images(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<Vec<String>> {
        let at = path.key("images");
        let Some(value) = map.get("images") else {
            return self
                .first_image
                .clone()
                .map(|first| vec![first])
                .ok_or(Invalid);
        };
        let list = self.array(value, &at)?;
        if list.is_empty() {
            return Err(self.fail(
                &at,
                "the list is empty; leave \"images\" out to use the first image",
            ));
        }
        let known = self.image_names.clone();
        let mut names: Vec<String> = Vec::new();
        let mut valid = true;
        for (k, item) in list.iter().enumerate() {
            let item_at = at.index(k);
            let Value::String(name) = item else {
                self.fail(
                    &item_at,
                    format!("expected an image name, found {}", describe(item)),
                );
                valid = false;
                continue;
            };
            if names.contains(name) {
                self.fail(&item_at, format!("image {} is listed twice", quote(name)));
                valid = false;
                continue;
            }
            if let Some(known) = &known {
                if !known.contains(name) {
                    let message = format!(
                        "no image is named {}{}; images: {}",
                        quote(name),
                        did_you_mean(closest(name, known.iter().map(String::as_str))),
                        known
                            .iter()
                            .map(|n| quote(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.fail(&item_at, message);
                    valid = false;
                }
            }
            names.push(name.clone());
        }
        if valid {
            Ok(names)
        } else {
            Err(Invalid)
        }
    }

    fn volume_group(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<VolumeGroup> {
        self.check_keys(map, path, VG_KEYS, &["type", "id", "volumes"], &[]);
        let id_at = path.key("id");
        let id = match self.opt_str(map, "id", path) {
            Ok(Some(id)) => match check_lvm_name(id, "volume group name") {
                Err(message) => Err(self.fail(&id_at, message)),
                Ok(()) => match self.vg_ids.iter().find(|(_, known)| known == id) {
                    Some((first, _)) => {
                        let message =
                            format!("volume group {} is already defined at {first}", quote(id));
                        Err(self.fail(&id_at, message))
                    }
                    None => {
                        self.vg_ids.push((id_at.clone(), id.to_string()));
                        Ok(id.to_string())
                    }
                },
            },
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        if id.is_err() {
            self.lvm_incomplete = true;
        }
        let label = self.opt_text(map, "label", path);
        let min_size = map
            .get("min_size")
            .map(|value| {
                let at = path.key("min_size");
                self.typed(value, &at, "a non-negative integer", Value::as_u64)
            })
            .transpose();
        let allocate = self.opt_str(map, "_allocate_size", path);
        let keep_data = self.opt_bool(map, "keep_data", path);
        let volumes_at = path.key("volumes");
        let list = match map.get("volumes") {
            Some(value) => self.array(value, &volumes_at),
            None => Err(Invalid),
        };
        let mut volumes = Vec::new();
        if let Ok(list) = list {
            let mut tally = Tally {
                remaining: None,
                percent: 0,
            };
            let mut names: HashMap<String, JsonPath> = HashMap::new();
            for (j, item) in list.iter().enumerate() {
                let at = volumes_at.index(j);
                volumes.push(self.logical_volume(item, &at, &mut tally, &mut names));
            }
            self.check_percent_total(&tally, &volumes_at, "volume group");
        } else {
            self.mounts_incomplete = true;
        }
        let volumes: Checked<Vec<LogicalVolume>> = volumes.into_iter().collect();
        list?;
        label?;
        min_size?;
        allocate?;
        keep_data?;
        Ok(VolumeGroup {
            id: id?,
            volumes: volumes?,
        })
    }

    fn logical_volume(
        &mut self,
        value: &Value,
        path: &JsonPath,
        tally: &mut Tally,
        names: &mut HashMap<String, JsonPath>,
    ) -> Checked<LogicalVolume> {
        let map = self.object(value, path);
        let map = self.unreadable_unless(map)?;
        let misplaced =
            "a vg holds only \"lv\" volumes; put partitions, raid members and pvs on a disk";
        let kind = self.entry_type(
            map,
            path,
            &["lv"],
            &[
                ("partition", misplaced),
                ("raid", misplaced),
                ("pv", misplaced),
                ("boot", misplaced),
                ("lvm_meta_pool", misplaced),
            ],
        );
        self.unreadable_unless(kind)?;
        self.check_keys(map, path, LV_KEYS, &["type", "size", "name"], &[]);
        let name = match self.opt_str(map, "name", path) {
            Ok(Some(name)) => {
                let at = path.key("name");
                match check_lvm_name(name, "logical volume name") {
                    Err(message) => Err(self.fail(&at, message)),
                    Ok(()) => match names.get(name) {
                        Some(first) => {
                            let message = format!(
                                "logical volume {} is already defined at {first}",
                                quote(name)
                            );
                            Err(self.fail(&at, message))
                        }
                        None => {
                            names.insert(name.to_string(), path.clone());
                            Ok(name.to_string())
                        }
                    },
                }
            }
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let fs = self.fs_volume(map, path, FsKind::Lv, tally, "volume group");
        Ok(LogicalVolume {
            name: name?,
            fs: fs?,
        })
    }

    /// The checks that need the whole document.
    fn cross_checks(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match validate(text) {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn two_images(volumes: &str) -> String {
        format!(
            r#"{{"images": [
                {{"name": "centos", "image_pull_url": "http://h/c.tar", "target": "/", "boot": true}},
                {{"name": "ubuntu", "image_pull_url": "/srv/ubuntu", "target": "/"}}],
              "partitions": [{{"type": "disk", "id": {{"type": "name", "value": "vda"}},
                               "volumes": [{volumes}]}}]}}"#
        )
    }

    const ROOTS: &str = r#"{"type": "partition", "mount": "/", "size": "4000", "images": ["centos"]},
                           {"type": "partition", "mount": "/", "size": "5000", "images": ["ubuntu"]}"#;

    #[test]
    fn paths_display_like_javascript() {
        let path = JsonPath::root()
            .key("partitions")
            .index(0)
            .key("volumes")
            .index(2);
        assert_eq!(path.to_string(), "partitions[0].volumes[2]");
        assert_eq!(JsonPath::root().to_string(), "$");
        assert_eq!(
            JsonPath::root().key("a b").key("c").to_string(),
            r#"["a b"].c"#
        );
        assert_eq!(JsonPath::root().key("_x1").to_string(), "_x1");
    }

    #[test]
    fn levenshtein_and_closest() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("size", "size"), 0);
        assert_eq!(closest("sise", ["size", "type"]), Some("size"));
        assert_eq!(closest("Mount", ["mount"]), Some("mount"));
        assert_eq!(closest("xy", ["id"]), None);
        assert_eq!(closest("foobar", ["size"]), None);
    }

    #[test]
    fn percent_formatting() {
        assert_eq!(format_percent(13_000), "130%");
        assert_eq!(format_percent(10_050), "100.5%");
        assert_eq!(format_percent(10_001), "100.01%");
    }

    #[test]
    fn accepts_the_spec_layout() {
        let config = validate(&two_images(&format!(
            r#"{ROOTS}, {{"type": "partition", "mount": "/usr/share/common", "size": "10000",
                         "images": ["centos", "ubuntu"], "file_system": "EXT4"}}"#
        )))
        .unwrap();
        assert_eq!(config.images.len(), 2);
        assert_eq!(config.boot_image().name, "centos");
        assert_eq!(config.partitions_policy, PartitionsPolicy::Verify);
        let disk = config.disks().next().unwrap();
        let DiskVolume::Partition(shared) = &disk.volumes[2] else {
            panic!("not a partition")
        };
        assert_eq!(shared.fs.images, ["centos", "ubuntu"]);
        assert_eq!(shared.fs.file_system, Some(FileSystem::Ext4));
        assert_eq!(shared.fs.size, Size::Bytes(10_000 * MIB));
        assert_eq!(shared.fs.fstab_options, "defaults");
        assert!(shared.fs.keep_data && shared.fs.fstab_enabled);
        assert_eq!(config.volume_count(), 3);
        assert_eq!(
            config.images[1].source,
            ImageSource::Path("/srv/ubuntu".into())
        );
    }

    #[test]
    fn volumes_without_images_belong_to_the_first_image() {
        let config = validate(&two_images(
            r#"{"type": "partition", "mount": "/", "size": "4000"},
               {"type": "partition", "mount": "/", "size": "4000", "images": ["ubuntu"]},
               {"type": "partition", "mount": "swap", "size": "1000"}"#,
        ))
        .unwrap();
        let disk = config.disks().next().unwrap();
        let fs: Vec<&FsVolume> = disk
            .volumes
            .iter()
            .map(|v| match v {
                DiskVolume::Partition(p) => &p.fs,
                _ => panic!("not a partition"),
            })
            .collect();
        assert_eq!(fs[0].images, ["centos"]);
        assert_eq!(fs[2].images, ["centos"]);
        assert_eq!(fs[2].mount, Mount::Swap);
        assert_eq!(fs[2].file_system, Some(FileSystem::Swap));
    }

    #[test]
    fn boot_defaults_to_the_first_image_and_takes_integers() {
        let text = two_images(ROOTS).replace(r#", "boot": true"#, "");
        assert_eq!(validate(&text).unwrap().boot_image().name, "centos");
        let text = two_images(ROOTS)
            .replace(r#", "boot": true"#, r#", "boot": 0"#)
            .replace(r#""target": "/"}]"#, r#""target": "/", "boot": 1}]"#);
        assert_eq!(validate(&text).unwrap().boot_image().name, "ubuntu");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        assert_eq!(
            errors("{\n  \"images\": [,]\n}"),
            ["$: malformed JSON at line 2, column 14: expected value"]
        );
        assert_eq!(
            errors(r#"{"images": [], "images": []}"#),
            [r#"$: malformed JSON at line 1, column 23: duplicate key "images""#]
        );
    }

    #[test]
    fn collects_errors_from_everywhere_at_once() {
        let text = two_images(
            r#"{"type": "partition", "mount": "/", "size": "4 gb", "images": ["centos"]},
               {"type": "partiton", "mount": "/", "size": "5000"},
               {"type": "partition", "mount": "usr", "size": "1", "images": ["ubuntu", "debian"]}"#,
        );
        assert_eq!(
            errors(&text),
            [
                r#"partitions[0].volumes[0].size: invalid size "4 gb": unknown unit "gb" (did you mean "GB"?); units: B, s, KiB, MiB, GiB, TiB, PiB, EiB, ZiB, YiB, kB, KB, MB, GB, TB, PB, EB, ZB, YB, %"#,
                r#"partitions[0].volumes[1].type: unknown type "partiton" (did you mean "partition"?); expected one of: partition, raid, pv, boot, lvm_meta_pool"#,
                r#"partitions[0].volumes[2].mount: mount point "usr" is not an absolute path (nor "swap" or "none")"#,
                r#"partitions[0].volumes[2].images[1]: no image is named "debian"; images: "centos", "ubuntu""#,
            ]
        );
    }

    #[test]
    fn raid_members_with_one_mount_are_one_array() {
        let text = format!(
            r#"{{"images": [{{"name": "a", "image_pull_url": "/a", "target": "/"}}],
                "partitions": [
                  {{"type": "disk", "id": {{"type": "name", "value": "sda"}}, "volumes": [
                     {{"type": "raid", "mount": "/", "size": "4000", "name": "md0"}}]}},
                  {{"type": "disk", "id": {{"type": "name", "value": "sdb"}}, "volumes": [
                     {{"type": "raid", "mount": "/", "size": "4000", "name": "{}"}}]}}]}}"#,
            "/dev/md0"
        );
        assert_eq!(
            errors(&text),
            [
                r#"partitions[1].volumes[0].name: raid members with mount "/" form one array and must agree with partitions[0].volumes[0]: name "/dev/md0" here, "md0" there"#
            ]
        );
        assert!(validate(&text.replace("/dev/md0", "md0")).is_ok());
    }

    #[test]
    fn two_raid_arrays_cannot_share_an_md_name() {
        // Found by fuzzing (fuzz/artifacts-kept/provision/crash-24e21ba7...): the members
        // of "/" and of swap both named md0 were planned as two arrays /dev/md0, each
        // with a filesystem; the second mdadm --create would fail after partitioning.
        let text = r#"{"images": [{"name": "a", "image_pull_url": "/a", "target": "/"}],
            "partitions": [
              {"type": "disk", "id": {"type": "name", "value": "sda"}, "volumes": [
                 {"type": "raid", "mount": "/", "size": "4000", "name": "md0"},
                 {"type": "raid", "mount": "swap", "size": "1000", "name": "/dev/md0"}]},
              {"type": "disk", "id": {"type": "name", "value": "sdb"}, "volumes": [
                 {"type": "raid", "mount": "/", "size": "4000", "name": "md0"},
                 {"type": "raid", "mount": "/srv", "size": "1000", "name": "md0"}]}]}"#;
        assert_eq!(
            errors(text),
            [
                r#"partitions[0].volumes[1].name: md device "md0" is already the array of the raid members with mount "/" (partitions[0].volumes[0]): each array needs a name of its own"#,
                r#"partitions[1].volumes[1].name: md device "md0" is already the array of the raid members with mount "/" (partitions[0].volumes[0]): each array needs a name of its own"#,
            ]
        );
        assert!(validate(&text.replace(r#""/dev/md0""#, r#""md1""#).replace(
            r#""/srv", "size": "1000", "name": "md0""#,
            r#""/srv", "size": "1000", "name": "md/srv""#
        ))
        .is_ok());
    }

    #[test]
    fn sources() {
        assert_eq!(
            parse_source("file:///srv/my%20image.tar"),
            Ok(ImageSource::Path("/srv/my image.tar".into()))
        );
        assert_eq!(
            parse_source("file://localhost/srv/x"),
            Ok(ImageSource::Path("/srv/x".into()))
        );
        assert_eq!(
            parse_source("HTTPS://h/x"),
            Ok(ImageSource::Https("HTTPS://h/x".into()))
        );
        assert_eq!(
            parse_source("rsync://10.0.0.1/images/x/"),
            Ok(ImageSource::Rsync("rsync://10.0.0.1/images/x/".into()))
        );
        assert!(parse_source("file:///srv/%00").is_err());
        assert!(parse_source("file:///srv/%zz").is_err());
        assert!(parse_source("file://host/srv").is_err());
        assert!(parse_source("http:///x").is_err());
        assert!(parse_source("swift://c/o").is_err());
        assert!(parse_source("10.0.0.1::module/x").is_err());
        assert!(parse_source("images/x").is_err());
    }

    #[test]
    fn names_and_paths() {
        assert!(check_image_name("centos-7.1_b").is_ok());
        for bad in ["", "-x", ".x", "a b", "a/b", "..", "a\0", "é"] {
            assert!(check_image_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_image_name(&"a".repeat(65)).is_err());
        assert!(check_absolute_path("/").is_ok());
        assert!(check_absolute_path("/usr/share/common").is_ok());
        for bad in ["", "usr", "/usr/", "/a//b", "/a/../b", "/a/.", "/a\0b"] {
            assert!(check_absolute_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_mount("NONE"), Ok(Mount::None));
        assert_eq!(parse_mount("swap"), Ok(Mount::Swap));
        assert!(parse_mount("/my data").is_err());
        assert!(is_guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4"));
        assert!(!is_guid("0FC63DAF84834772-8E79-3D69D8477DE4"));
        for good in ["md0", "/dev/md127", "md/root", "/dev/md/data-1"] {
            assert!(is_md_name(good), "{good}");
        }
        for bad in ["md", "sda", "md/", "md/../x", "/dev/mdx"] {
            assert!(!is_md_name(bad), "{bad}");
        }
        assert!(check_lvm_name("vg_root-1.a+b", "vg").is_ok());
        for bad in ["", "-a", ".", "..", "a b", "a/b"] {
            assert!(check_lvm_name(bad, "vg").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lvm_raid_and_verify_with_keep_data_are_valid() {
        let config = validate(include_str!("../examples/lvm.json")).unwrap();
        assert_eq!(config.partitions_policy, PartitionsPolicy::Verify);
        let vg = config.volume_groups().next().unwrap();
        assert_eq!(vg.id, "os");
        assert_eq!(vg.volumes[0].fs.size, Size::Percent(3000));
        assert_eq!(vg.volumes[2].fs.mount, Mount::Swap);
        assert_eq!(vg.volumes[3].fs.size, Size::Remaining);
        assert!(vg.volumes[3].fs.keep_data);
        assert_eq!(vg.volumes[3].fs.fstab_options, "defaults,noatime");
        let disk = config.disks().next().unwrap();
        assert_eq!(disk.id.kind, DiskIdKind::Path);
        assert_eq!(disk.size, Some(40 << 30));
        let DiskVolume::Pv(pv) = &disk.volumes[2] else {
            panic!("not a pv")
        };
        assert_eq!((pv.vg.as_str(), pv.lvm_meta_size), ("os", Some(64 * MIB)));
        assert_eq!(
            config.images[1].source,
            ImageSource::Path("/srv/images/ubuntu-14.04.tar.xz".into())
        );
        assert_eq!(
            config.rsync_flags.as_deref(),
            Some("-a -A -X --timeout 300")
        );

        let config = validate(include_str!("../examples/raid.json")).unwrap();
        let disks: Vec<&Disk> = config.disks().collect();
        assert_eq!(disks[1].id.kind, DiskIdKind::Scsi);
        assert!(matches!(&disks[0].volumes[0], DiskVolume::Boot(b) if b.keep_data));
        let DiskVolume::Raid(raid) = &disks[1].volumes[1] else {
            panic!("not a raid member")
        };
        assert_eq!(raid.fs.file_system, Some(FileSystem::Swap));
        assert_eq!(raid.name.as_deref(), Some("md1"));
        let DiskVolume::Partition(unmounted) = &disks[1].volumes[2] else {
            panic!("not a partition")
        };
        assert_eq!(unmounted.fs.mount, Mount::None);
        assert!(!unmounted.fs.fstab_enabled);
        assert!(matches!(&disks[1].volumes[3], DiskVolume::LvmMetaPool(_)));

        let config = validate(include_str!("../examples/multi-image.json")).unwrap();
        assert_eq!(
            config.kernel_params.as_deref(),
            Some("console=ttyS0,115200n8")
        );
        assert_eq!(
            config.images[0].image_uuid.as_deref(),
            Some("2a86b00d-cfa4-49d9-a008-13c7940ed02d")
        );
    }

    #[test]
    fn serialises_normalised() {
        let config = validate(&two_images(ROOTS)).unwrap();
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["partitions"][0]["type"], "disk");
        assert_eq!(json["partitions"][0]["id"]["type"], "name");
        let volume = &json["partitions"][0]["volumes"][1];
        assert_eq!(volume["type"], "partition");
        assert_eq!(volume["mount"], "/");
        assert_eq!(volume["size"]["bytes"], 5000 * MIB);
        assert_eq!(volume["images"][0], "ubuntu");
        assert_eq!(json["images"][0]["source"]["http"], "http://h/c.tar");
        assert_eq!(json["partitions_policy"], "verify");
    }
}
