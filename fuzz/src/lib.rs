//! The property checks behind the fuzz targets, as plain functions.
//!
//! Each check takes the raw input bytes, runs one of the project's parsers on them and
//! panics, with a message naming the property, as soon as a property does not hold: a
//! panic is what libFuzzer records as a crash. The targets in `fuzz_targets/` only call
//! these functions; `tests/corpus.rs` runs every kept corpus file and crash input through
//! them on stable Rust.
//!
//! Besides "no panic", the checks are:
//! - [`grubcfg`]: a parse error names a line of the text, in one line of message; every
//!   entry of a parsed menu resolves back to itself by its address and, when its ids are
//!   unique and not numbers, by its ids; [`grubcfg::quote`] of any string without a NUL
//!   reads back as that one word; [`grubcfg::set_fixed_default`] gives a text that parses
//!   to the same menu with every literal default set to the value, which resolves as before.
//! - [`grubenv`]: only a block of exactly 1024 bytes parses; a parsed block writes back to
//!   1024 bytes that parse to the same environment; `set` and `unset` do what they say,
//!   refuse what grub cannot store, and never leave an environment that does not round trip.
//! - [`bootinfo`]: JSON naming a key twice in one object is refused as malformed, other
//!   JSON never is; a parsed document writes back to JSON that says the same as the text
//!   read, parses to the same document and writes the same text again; the serde derives
//!   agree with it, and the deployer's `deploy --json` summary lists its elements.
//! - [`provision`]: a rejected config gives at least one error, each in one line (a byte
//!   order mark exactly one, naming it); a valid config keeps the promises of
//!   `deployer::config` (and its kernel parameters hold no quote or backslash, and no
//!   volume takes the multiboot partition's label), plans the same twice on fixed disks,
//!   and a plan's partitions fit their disk without overlapping, its filesystems are large
//!   enough for their mkfs, data is kept only as the policy allows, its fstabs have six
//!   fields a line, and the UUIDs read from kept filesystems replace the planned ones
//!   everywhere; its JSON and text render.

mod boot_info;
mod env;
mod menu;
mod plans;
mod provision;

pub use boot_info::bootinfo;
pub use env::grubenv;
pub use menu::grubcfg;
pub use provision::provision;

/// A property check: panics when the input breaks a property.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (of `fuzz_targets/NAME.rs`, `corpus/NAME/` and
/// `artifacts-kept/NAME/`) and its check.
pub const TARGETS: [(&str, Check); 4] = [
    ("grubcfg", grubcfg),
    ("grubenv", grubenv),
    ("bootinfo", bootinfo),
    ("provision", provision),
];

/// Separates the grub.cfg text from the extra value in a [`grubcfg`] input. It never occurs
/// in UTF-8, so no text loses anything to it.
pub const VALUE_SEPARATOR: u8 = 0xff;

/// The sizes of the disks [`provision`] plans a valid config on: 1 GiB, on which the
/// examples fit and many configs do not, and 64 TiB, for sizes near the limits.
pub const DISK_SIZES: [u64; 2] = [1 << 30, 1 << 46];

/// A message meant for a person is one line: not empty, no line breaks.
pub(crate) fn check_one_line(what: &str, message: &str) {
    assert!(!message.is_empty(), "{what}: empty error message");
    assert!(
        !message.contains(['\n', '\r']),
        "{what}: error message is not one line: {message:?}"
    );
}
