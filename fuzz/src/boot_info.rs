use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use deployer::render;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use shared::bootinfo::{BootInfo, BootInfoError};

use crate::check_one_line;

/// boot-info.json: `shared::bootinfo::BootInfo::{from_json, to_json}`, and
/// `deployer::render::deploy_json` of what it accepts (input lossily UTF-8).
pub fn bootinfo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let repeated = serde_json::from_str::<RepeatedKey>(&text)
        .ok()
        .and_then(|RepeatedKey(key)| key);
    let info = match BootInfo::from_json(&text) {
        Ok(info) => info,
        Err(err) => {
            check_one_line("boot-info.json", &err.to_string());
            let malformed = matches!(err, BootInfoError::Syntax { .. });
            if let Some(key) = repeated {
                let named = format!("duplicate key {}", Value::from(key));
                assert!(
                    malformed && err.to_string().contains(&named),
                    "a document with a repeated key is refused as {err:?}, not for {named}"
                );
            } else {
                assert!(
                    !malformed || serde_json::from_str::<Value>(&text).is_err(),
                    "JSON without a repeated key is refused as malformed: {err}"
                );
            }
            return;
        }
    };
    if let Some(key) = repeated {
        panic!("a document naming {key:?} twice in one object is accepted");
    }
    assert!(
        !info.multiboot_partition.is_empty(),
        "an empty multiboot_partition is accepted"
    );
    assert!(
        info.elements.is_empty() || info.current_element < info.elements.len(),
        "current_element {} of {} elements is accepted",
        info.current_element,
        info.elements.len()
    );
    let json = info.to_json();
    let read: Value = serde_json::from_str(&text).expect("an accepted document is JSON");
    let written: Value = serde_json::from_str(&json).expect("to_json is JSON");
    assert_eq!(
        written, read,
        "to_json says something else than the text read"
    );
    let again = BootInfo::from_json(&json)
        .unwrap_or_else(|err| panic!("to_json gives a document that does not parse: {err}"));
    assert_eq!(again, info, "to_json then from_json changes it");
    assert_eq!(again.to_json(), json, "to_json is not stable");
    let via_serde: BootInfo = serde_json::from_str(&json)
        .unwrap_or_else(|err| panic!("the serde derive does not read to_json: {err}"));
    assert_eq!(
        via_serde, info,
        "the serde derive reads to_json differently"
    );
    let serialized = serde_json::to_value(&info).expect("the serde derive serialises");
    assert_eq!(serialized, written, "the serde derive writes differently");
    check_deploy_summary(&info);
}

/// `deploy --json`'s summary of a deploy that wrote `info`: one image per element, in
/// order, the element at `current_element` the only default, and its multiboot partition.
fn check_deploy_summary(info: &BootInfo) {
    let summary = render::deploy_json(&render::DeployOutcome {
        exit: 0,
        disks: &[],
        boot_info: Some((Path::new("/boot-info.json"), info)),
        errors: &[],
        failed_step: None,
        timings: &deployer::timing::Timings::default(),
    });
    let images = summary["images"].as_array().expect("images is an array");
    assert_eq!(images.len(), info.elements.len(), "deploy summary images");
    for (index, (image, element)) in images.iter().zip(&info.elements).enumerate() {
        assert_eq!(image["image_name"], element.image_name.as_str());
        assert_eq!(image["root_uuid"], element.root_uuid.as_str());
        assert_eq!(image["grub_id"], element.grub_id);
        assert_eq!(
            image["default"],
            index == info.current_element,
            "deploy summary image {index} default"
        );
    }
    assert_eq!(
        summary["multiboot_partition"],
        info.multiboot_partition.as_str()
    );
}

/// A JSON document read without refusing anything, keeping the first key that an object
/// names a second time (keys compared after unescaping), in document order: the model of
/// what boot-info.json's strict reader must refuse.
struct RepeatedKey(Option<String>);

impl<'de> Deserialize<'de> for RepeatedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RepeatedKeyVisitor)
    }
}

struct RepeatedKeyVisitor;

impl<'de> Visitor<'de> for RepeatedKeyVisitor {
    type Value = RepeatedKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_unit<E>(self) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RepeatedKey, A::Error> {
        let mut first = None;
        while let Some(RepeatedKey(inner)) = seq.next_element()? {
            first = first.or(inner);
        }
        Ok(RepeatedKey(first))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RepeatedKey, A::Error> {
        let mut first = None;
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                first = first.or(Some(key));
            } else {
                keys.insert(key);
            }
            let RepeatedKey(inner) = map.next_value()?;
            first = first.or(inner);
        }
        Ok(RepeatedKey(first))
    }
}
