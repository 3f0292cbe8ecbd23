//! sfdisk's formats: the JSON `sfdisk -J` reports a partition table in, and the quoting of
//! names in its scripts. The plan's script and the checks of a table against the plan are
//! [`mod@crate::plan`]'s.

use std::fmt::Write as _;

use serde::Deserialize;

/// sfdisk's name for GPT attribute bit 2, "legacy BIOS bootable".
pub const LEGACY_BIOS_BOOTABLE: &str = "LegacyBIOSBootable";

/// `text` in double quotes, escaped as `sfdisk --dump` escapes partition names.
pub fn quote_name(text: &str) -> String {
    let mut quoted = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' | b'`' | b'$' | ..=0x1f | 0x7f.. => {
                let _ = write!(quoted, "\\x{byte:02x}");
            }
            _ => quoted.push(char::from(byte)),
        }
    }
    quoted.push('"');
    quoted
}

/// `sfdisk -J DISK`: `{"partitiontable": {...}}`.
#[derive(Debug, Deserialize)]
struct Dump {
    partitiontable: Table,
}

/// A partition table as `sfdisk -J` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Table {
    /// `gpt`, `dos`, ...
    pub label: String,
    pub firstlba: Option<u64>,
    pub sectorsize: Option<u64>,
    #[serde(default)]
    pub partitions: Vec<Entry>,
}

/// One partition of a [`Table`]; starts and sizes in sectors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// The partition's device name: the disk's path with the number appended
    /// (`disk.img3`, `/dev/nvme0n1p3`).
    pub node: String,
    pub start: u64,
    pub size: u64,
    #[serde(rename = "type")]
    pub type_guid: String,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub attrs: Option<String>,
}

/// Reads `sfdisk -J`'s output; the error is a phrase.
pub fn parse_table(sfdisk_json: &str) -> Result<Table, String> {
    serde_json::from_str::<Dump>(sfdisk_json)
        .map(|dump| dump.partitiontable)
        .map_err(|e| format!("sfdisk -J output is not a partition table: {e}"))
}

/// The partition number at the end of a partition's device name.
pub fn partition_number(node: &str) -> Option<u32> {
    let digits = node.len() - node.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    node[node.len() - digits..].parse().ok()
}
