//! JSON read strictly: an object that names a key twice is an error.
//!
//! serde_json keeps the last of two equal keys, other readers keep the first: a document
//! with one is ambiguous, and a program that rewrites it would silently drop a value. Both
//! provision.json and boot-info.json are read this way.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `text` as one JSON value, rejecting duplicate object keys with the error
/// `duplicate key "NAME"` at the second occurrence's line and column.
pub fn from_str(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|Strict(value)| value)
}

/// A JSON value read with duplicate object keys rejected.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {}",
                    Value::from(key)
                )));
            }
            let Strict(value) = map.next_value()?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text = r#"{"b": [1, -2, 2.5, 18446744073709551615, "x\u00e9", null, true, {}],
            "a": {"c": 1.5e300}}"#;
        let value = from_str(text).unwrap();
        assert_eq!(value, serde_json::from_str::<Value>(text).unwrap());
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a"], "keys keep the document's order");
    }

    #[test]
    fn a_key_given_twice_is_an_error_where_it_repeats() {
        let err = from_str("{\"a\": {\"x\": 1,\n \"x\": 2}}").unwrap_err();
        assert_eq!(err.to_string(), "duplicate key \"x\" at line 2 column 4");
        assert_eq!((err.line(), err.column()), (2, 4));
        assert!(
            from_str(r#"[{"x": 1}, {"x": 2}]"#).is_ok(),
            "one key per object"
        );
        let err = from_str(r#"{"a\u0000": 1, "a\u0000": 1}"#).unwrap_err();
        assert!(
            err.to_string().starts_with(r#"duplicate key "a\u0000""#),
            "{err}"
        );
    }
}
