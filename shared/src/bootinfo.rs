//! `boot-info.json`: which images a node has and which one GRUB boots by default.
//!
//! The keys are those of the Bareon "Multi image deployment" specification:
//! `elements[]` (`grub_id`, `image_name`, `os_id`, `image_uuid`, `boot_name`, `root_uuid`),
//! `current_element` and `multiboot_partition`. Keys the specification does not name are
//! kept in `extra` and written back after the specification's keys.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole `boot-info.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootInfo {
    /// The bootable images, in GRUB menu order.
    pub elements: Vec<BootElement>,
    /// Index into `elements` of the element GRUB boots by default (the persistent choice).
    pub current_element: usize,
    /// Filesystem UUID of the multiboot partition holding grub.cfg and grubenv.
    pub multiboot_partition: String,
    /// Keys the specification does not name, kept and written back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One bootable image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootElement {
    /// GRUB's top-level menu index of this image's entry.
    pub grub_id: u32,
    /// The image's `image_name` from provision.json.
    pub image_name: String,
    /// The operating system's id (for example `centos`, `ubuntu`).
    pub os_id: String,
    /// The image's `image_uuid` from provision.json.
    pub image_uuid: String,
    /// The menu entry's title.
    pub boot_name: String,
    /// Filesystem UUID of the image's root filesystem.
    pub root_uuid: String,
    /// Keys the specification does not name, kept and written back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why a `boot-info.json` text was rejected; messages start with the key's path.
#[derive(Debug, thiserror::Error)]
pub enum BootInfoError {
    /// The text is not JSON.
    #[error("malformed JSON: {source}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A required key is absent.
    #[error("{path}: missing")]
    Missing {
        /// Path of the key, for example `elements[1].root_uuid`.
        path: String,
    },
    /// A key holds a value of the wrong JSON type or range.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        /// Path of the key.
        path: String,
        /// What the specification wants.
        expected: &'static str,
        /// What the document holds.
        found: String,
    },
    /// A value of the right type that is not allowed.
    #[error("{path}: {reason}")]
    Invalid {
        /// Path of the key.
        path: String,
        /// Why the value is not allowed.
        reason: String,
    },
}

impl BootInfo {
    /// Parses and validates a document: JSON without duplicate keys, every required key
    /// present and of its type, `current_element` an index into `elements` (when there are
    /// any), and `multiboot_partition` not empty.
    pub fn from_json(text: &str) -> Result<Self, BootInfoError> {
        let value = crate::json::from_str(text).map_err(|source| BootInfoError::Syntax {
            line: source.line(),
            column: source.column(),
            source,
        })?;
        let mut top = into_object(value, "(top level)")?;
        let elements = match take(&mut top, "elements", "elements")? {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| BootElement::from_value(item, &format!("elements[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(wrong_type("elements", "an array", &other)),
        };
        let current_element = take_unsigned(&mut top, "current_element", "current_element")?;
        let multiboot_partition =
            take_string(&mut top, "multiboot_partition", "multiboot_partition")?;
        let current_element =
            usize::try_from(current_element).map_err(|_| BootInfoError::Invalid {
                path: "current_element".to_owned(),
                reason: format!("{current_element} is too large"),
            })?;
        if !elements.is_empty() && current_element >= elements.len() {
            return Err(BootInfoError::Invalid {
                path: "current_element".to_owned(),
                reason: format!(
                    "{current_element} is out of range: there are {} elements",
                    elements.len()
                ),
            });
        }
        if multiboot_partition.is_empty() {
            return Err(BootInfoError::Invalid {
                path: "multiboot_partition".to_owned(),
                reason: "must not be empty".to_owned(),
            });
        }
        Ok(Self {
            elements,
            current_element,
            multiboot_partition,
            extra: top,
        })
    }

    /// Pretty JSON (2-space indent, trailing newline): the specification's keys in its
    /// order, then the extra keys. An extra key named like a specification key is left
    /// out; the field wins.
    pub fn to_json(&self) -> String {
        let mut top = Map::new();
        top.insert(
            "elements".to_owned(),
            Value::Array(self.elements.iter().map(BootElement::to_value).collect()),
        );
        top.insert("current_element".to_owned(), self.current_element.into());
        top.insert(
            "multiboot_partition".to_owned(),
            self.multiboot_partition.clone().into(),
        );
        append_extra(&mut top, &self.extra);
        format!("{:#}\n", Value::Object(top))
    }
}

impl BootElement {
    fn from_value(value: Value, path: &str) -> Result<Self, BootInfoError> {
        let mut obj = into_object(value, path)?;
        let at = |key: &str| format!("{path}.{key}");
        let grub_id = take_unsigned(&mut obj, "grub_id", &at("grub_id"))?;
        let grub_id = u32::try_from(grub_id).map_err(|_| BootInfoError::WrongType {
            path: at("grub_id"),
            expected: "an unsigned 32-bit integer",
            found: grub_id.to_string(),
        })?;
        Ok(Self {
            grub_id,
            image_name: take_string(&mut obj, "image_name", &at("image_name"))?,
            os_id: take_string(&mut obj, "os_id", &at("os_id"))?,
            image_uuid: take_string(&mut obj, "image_uuid", &at("image_uuid"))?,
            boot_name: take_string(&mut obj, "boot_name", &at("boot_name"))?,
            root_uuid: take_string(&mut obj, "root_uuid", &at("root_uuid"))?,
            extra: obj,
        })
    }

    fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("grub_id".to_owned(), self.grub_id.into());
        for (key, value) in [
            ("image_name", &self.image_name),
            ("os_id", &self.os_id),
            ("image_uuid", &self.image_uuid),
            ("boot_name", &self.boot_name),
            ("root_uuid", &self.root_uuid),
        ] {
            obj.insert(key.to_owned(), value.clone().into());
        }
        append_extra(&mut obj, &self.extra);
        Value::Object(obj)
    }
}

/// Adds the `extra` keys not already in `obj`, in their order.
fn append_extra(obj: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        if !obj.contains_key(key) {
            obj.insert(key.clone(), value.clone());
        }
    }
}

fn into_object(value: Value, path: &str) -> Result<Map<String, Value>, BootInfoError> {
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(wrong_type(path, "an object", &other)),
    }
}

/// Removes `key` from `obj`, keeping the order of the remaining keys.
fn take(obj: &mut Map<String, Value>, key: &str, path: &str) -> Result<Value, BootInfoError> {
    obj.shift_remove(key).ok_or_else(|| BootInfoError::Missing {
        path: path.to_owned(),
    })
}

fn take_string(
    obj: &mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<String, BootInfoError> {
    match take(obj, key, path)? {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(path, "a string", &other)),
    }
}

fn take_unsigned(
    obj: &mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<u64, BootInfoError> {
    let value = take(obj, key, path)?;
    value
        .as_u64()
        .ok_or_else(|| wrong_type(path, "an unsigned integer", &value))
}

fn wrong_type(path: &str, expected: &'static str, found: &Value) -> BootInfoError {
    let found = match found {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    };
    BootInfoError::WrongType {
        path: path.to_owned(),
        expected,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's example, converted from Python's repr to JSON.
    const SPEC_EXAMPLE: &str = r#"{
        "elements": [
            {
                "grub_id": 0,
                "image_name": "centos-7.1.1503",
                "os_id": "centos",
                "image_uuid": "2a86b00d-cfa4-49d9-a008-13c7940ed02d",
                "boot_name": "CentOSLinuxrelease7.1.1503(Core)(on/dev/vda3)",
                "root_uuid": "2abf123d-d52f-4f62-a351-7358221bc51f"
            },
            {
                "grub_id": 2,
                "image_name": "ubuntu",
                "os_id": "ubuntu",
                "image_uuid": "157636d8-62ad-499d-aecc-2ea4917ee396",
                "boot_name": "Ubuntu14.04.3LTS(14.04)(on/dev/vda4)",
                "root_uuid": "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2"
            }
        ],
        "current_element": 0,
        "multiboot_partition": "3b360901-7896-48d4-a14d-fc35e1582c74"
    }"#;

    const ELEMENT_KEYS: [&str; 6] = [
        "grub_id",
        "image_name",
        "os_id",
        "image_uuid",
        "boot_name",
        "root_uuid",
    ];

    fn example() -> Value {
        serde_json::from_str(SPEC_EXAMPLE).unwrap()
    }

    fn error_of(value: &Value) -> String {
        BootInfo::from_json(&value.to_string())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn spec_example_parses() {
        let info = BootInfo::from_json(SPEC_EXAMPLE).unwrap();
        assert_eq!(info.elements.len(), 2);
        assert_eq!(info.current_element, 0);
        assert_eq!(
            info.multiboot_partition,
            "3b360901-7896-48d4-a14d-fc35e1582c74"
        );
        let ubuntu = &info.elements[1];
        assert_eq!(ubuntu.grub_id, 2);
        assert_eq!(ubuntu.image_name, "ubuntu");
        assert_eq!(ubuntu.os_id, "ubuntu");
        assert_eq!(ubuntu.image_uuid, "157636d8-62ad-499d-aecc-2ea4917ee396");
        assert_eq!(ubuntu.boot_name, "Ubuntu14.04.3LTS(14.04)(on/dev/vda4)");
        assert_eq!(ubuntu.root_uuid, "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2");
        assert!(info.extra.is_empty() && ubuntu.extra.is_empty());
    }

    #[test]
    fn to_json_is_pretty_in_spec_order() {
        let info = BootInfo::from_json(SPEC_EXAMPLE).unwrap();
        let text = info.to_json();
        assert!(text.ends_with("}\n"));
        assert!(text.starts_with("{\n  \"elements\": [\n    {\n      \"grub_id\": 0,\n"));
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed, example());
        let top: Vec<_> = reparsed.as_object().unwrap().keys().cloned().collect();
        assert_eq!(top, ["elements", "current_element", "multiboot_partition"]);
        let element: Vec<_> = reparsed["elements"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(element, ELEMENT_KEYS);
        assert_eq!(BootInfo::from_json(&text).unwrap(), info);
    }

    #[test]
    fn extra_keys_survive_a_round_trip_after_the_spec_keys() {
        let mut value = example();
        value["zz_top"] = "kept".into();
        value["name"] = serde_json::json!({"nested": [1, 2]});
        value["elements"][1]["kernel"] = "/boot/vmlinuz".into();
        value["elements"][1]["a_first"] = true.into();
        let info = BootInfo::from_json(&value.to_string()).unwrap();
        assert_eq!(info.extra.keys().collect::<Vec<_>>(), ["zz_top", "name"]);
        assert_eq!(info.elements[1].extra["kernel"], "/boot/vmlinuz");
        let text = info.to_json();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed, value);
        let keys: Vec<_> = reparsed.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "elements",
                "current_element",
                "multiboot_partition",
                "zz_top",
                "name"
            ]
        );
        let keys: Vec<_> = reparsed["elements"][1]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys[6..], ["kernel", "a_first"]);
        assert_eq!(BootInfo::from_json(&text).unwrap(), info);
    }

    #[test]
    fn extra_key_named_like_a_field_does_not_duplicate_it() {
        let mut info = BootInfo::from_json(SPEC_EXAMPLE).unwrap();
        info.extra
            .insert("current_element".to_owned(), "bogus".into());
        let reparsed: Value = serde_json::from_str(&info.to_json()).unwrap();
        assert_eq!(reparsed["current_element"], 0);
    }

    #[test]
    fn each_missing_key_names_its_path() {
        for key in ["elements", "current_element", "multiboot_partition"] {
            let mut value = example();
            value.as_object_mut().unwrap().remove(key);
            assert_eq!(error_of(&value), format!("{key}: missing"));
        }
        for key in ELEMENT_KEYS {
            let mut value = example();
            value["elements"][1].as_object_mut().unwrap().remove(key);
            assert_eq!(error_of(&value), format!("elements[1].{key}: missing"));
        }
    }

    #[test]
    fn each_mistyped_key_names_its_path_and_types() {
        let cases: [(&str, Value, &str); 9] = [
            (
                "/current_element",
                "0".into(),
                "current_element: expected an unsigned integer, found a string",
            ),
            (
                "/current_element",
                (-1).into(),
                "current_element: expected an unsigned integer, found the number -1",
            ),
            (
                "/current_element",
                1.5.into(),
                "current_element: expected an unsigned integer, found the number 1.5",
            ),
            (
                "/multiboot_partition",
                Value::Null,
                "multiboot_partition: expected a string, found null",
            ),
            (
                "/elements",
                serde_json::json!({}),
                "elements: expected an array, found an object",
            ),
            (
                "/elements/1",
                "x".into(),
                "elements[1]: expected an object, found a string",
            ),
            (
                "/elements/0/grub_id",
                true.into(),
                "elements[0].grub_id: expected an unsigned integer, found a boolean",
            ),
            (
                "/elements/0/grub_id",
                4_294_967_296_u64.into(),
                "elements[0].grub_id: expected an unsigned 32-bit integer, found 4294967296",
            ),
            (
                "/elements/1/root_uuid",
                serde_json::json!([1]),
                "elements[1].root_uuid: expected a string, found an array",
            ),
        ];
        for (pointer, bad, want) in cases {
            let mut value = example();
            *value.pointer_mut(pointer).unwrap() = bad;
            assert_eq!(error_of(&value), want);
        }
        for key in &ELEMENT_KEYS[1..] {
            let mut value = example();
            value["elements"][0][key] = 7.into();
            assert_eq!(
                error_of(&value),
                format!("elements[0].{key}: expected a string, found the number 7")
            );
        }
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert_eq!(
            BootInfo::from_json("[]").unwrap_err().to_string(),
            "(top level): expected an object, found an array"
        );
    }

    #[test]
    fn current_element_must_index_elements() {
        let mut value = example();
        value["current_element"] = 2.into();
        assert_eq!(
            error_of(&value),
            "current_element: 2 is out of range: there are 2 elements"
        );
        value["current_element"] = 1.into();
        assert_eq!(
            BootInfo::from_json(&value.to_string())
                .unwrap()
                .current_element,
            1
        );
        value["elements"] = serde_json::json!([]);
        value["current_element"] = 5.into();
        assert!(BootInfo::from_json(&value.to_string()).is_ok());
    }

    #[test]
    fn multiboot_partition_must_not_be_empty() {
        let mut value = example();
        value["multiboot_partition"] = "".into();
        assert_eq!(error_of(&value), "multiboot_partition: must not be empty");
    }

    #[test]
    fn malformed_json_gives_line_and_column() {
        let text = "{\n  \"elements\": [],\n  \"current_element\": 0,\n}\n";
        match BootInfo::from_json(text) {
            Err(err @ BootInfoError::Syntax { line, column, .. }) => {
                assert_eq!((line, column), (4, 1));
                assert!(err.to_string().starts_with("malformed JSON: "), "{err}");
                assert!(err.to_string().contains("line 4 column 1"), "{err}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            BootInfo::from_json(""),
            Err(BootInfoError::Syntax { .. })
        ));
        assert!(matches!(
            BootInfo::from_json("{u'elements': []}"),
            Err(BootInfoError::Syntax {
                line: 1,
                column: 2,
                ..
            })
        ));
    }

    #[test]
    fn a_key_given_twice_is_malformed() {
        // serde_json alone would keep the second value, and a rewrite would drop the first.
        let text = SPEC_EXAMPLE.replace(
            "\"current_element\": 0,",
            "\"current_element\": 0,\n        \"current_element\": 1,",
        );
        let err = BootInfo::from_json(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON: duplicate key \"current_element\" at line 21 column 25"
        );
        let text = SPEC_EXAMPLE.replace(
            "\"os_id\": \"ubuntu\",",
            "\"os_id\": \"ubuntu\", \"os_id\": \"x\",",
        );
        assert!(matches!(
            BootInfo::from_json(&text),
            Err(BootInfoError::Syntax { line: 14, .. })
        ));
    }

    #[test]
    fn extra_numbers_survive_a_rewrite() {
        // Found by fuzzing (fuzz/artifacts-kept/bootinfo/crash-75ec910b...): with serde_json's
        // default float parser, which is not correctly rounded, 1999...9 (93 digits) read as
        // 1.9999999999999998e92, written back as that, and read again as 2e92: writing
        // boot-info.json back changed a number in a key we only keep.
        let text = format!(
            r#"{{"elements": [], "current_element": 0, "multiboot_partition": "m",
                "n": [1{}, 1.9999999999999998e92, 2.5e-308, 0.1]}}"#,
            "9".repeat(92)
        );
        let info = BootInfo::from_json(&text).unwrap();
        let n: Vec<f64> = info.extra["n"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(n, [2e92, 1.999_999_999_999_999_8e92, 2.5e-308, 0.1]);
        let again = BootInfo::from_json(&info.to_json()).unwrap();
        assert_eq!(again, info);
        assert_eq!(again.to_json(), info.to_json());
    }

    #[test]
    fn serde_derives_agree_with_to_json() {
        let info = BootInfo::from_json(SPEC_EXAMPLE).unwrap();
        let via_serde: BootInfo = serde_json::from_str(&info.to_json()).unwrap();
        assert_eq!(via_serde, info);
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            serde_json::from_str::<Value>(&info.to_json()).unwrap()
        );
    }
}
