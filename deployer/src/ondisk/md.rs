//! The md RAID superblock of version 1.2, as a member device holds it: the kernel's
//! `struct mdp_superblock_1` (include/uapi/linux/raid/md_p.h), all fields little-endian,
//! 4 KiB from the start of the member.
//!
//! Field offsets: magic 0, major_version 4, feature_map 8, set_uuid 16, set_name 32,
//! level 72, size 80, raid_disks 92, data_offset 128, data_size 136, super_offset 144,
//! dev_number 160, device_uuid 168, events 200, sb_csum 216, max_dev 220, dev_roles 256.

use super::{le16, le32, u32_at, u64_at};

/// Where a version 1.2 superblock lies on a member: 4 KiB from its start.
pub const SUPERBLOCK_1_2_OFFSET: u64 = 4096;

/// What to read at [`SUPERBLOCK_1_2_OFFSET`]: the 256-byte superblock and its role table
/// (2 bytes a device), which mdadm keeps within 4 KiB.
pub const SUPERBLOCK_READ_BYTES: usize = 4096;

const MAGIC: u32 = 0xa92b_4efc;
const HEADER_BYTES: usize = 256;
const SECTOR: u64 = 512;
const FEATURE_RESHAPE_ACTIVE: u32 = 4;

/// A member's role in its array (`dev_roles[dev_number]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// An active member in this slot.
    Active(u16),
    Spare,
    Faulty,
    /// The write journal of a RAID4/5/6 array.
    Journal,
}

/// A member's version 1.2 superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdSuperblock {
    /// The array's UUID (`set_uuid`), lowercase 8-4-4-4-12 as blkid shows it as `UUID` of a
    /// `linux_raid_member`. mdadm shows the same 32 digits in 4 groups of 8 joined by `:`
    /// (`--detail`, `--examine`, `/dev/disk/by-id/md-uuid-*`) and its `--uuid=` takes either
    /// form (it skips `:`, `.`, `-` and spaces). blkid on the array's own device shows the
    /// UUID of the filesystem inside, not this one.
    pub uuid: String,
    /// This member's UUID (`device_uuid`), blkid's `UUID_SUB`, in the same form.
    pub device_uuid: String,
    /// `set_name`, e.g. `host:md0` (mdadm's `homehost:name`); blkid's `LABEL`.
    pub name: String,
    /// 1 for RAID1; -1 linear, 0, 4, 5, 6, 10.
    pub level: i32,
    pub raid_disks: u32,
    pub role: MemberRole,
    /// Bumped at every superblock update: the member with the most is the newest.
    pub events: u64,
    /// Where the array's data starts on this member.
    pub data_offset_bytes: u64,
    /// The room for data on this member from `data_offset_bytes`.
    pub data_size_bytes: u64,
    /// The part of `data_size_bytes` the array uses (`size`): a RAID1 array's own size.
    /// 0 for RAID0 and linear arrays, whose superblocks leave it unset.
    pub used_size_bytes: u64,
}

/// Parses the bytes read at [`SUPERBLOCK_1_2_OFFSET`] (at least 256, and the role table:
/// read [`SUPERBLOCK_READ_BYTES`]). `Ok(None)` without the md magic; an error for a
/// superblock that is truncated, of another version or layout, fails its checksum, or is
/// in the middle of a reshape (its data is then in two places).
pub fn parse_superblock(bytes: &[u8]) -> Result<Option<MdSuperblock>, String> {
    let Some(magic) = le32(bytes, 0) else {
        return Err(truncated(bytes.len(), HEADER_BYTES));
    };
    if magic != MAGIC {
        return Ok(None);
    }
    if bytes.len() < HEADER_BYTES {
        return Err(truncated(bytes.len(), HEADER_BYTES));
    }
    let word = |at| u32_at(bytes, at);
    let sectors = |at| u64_at(bytes, at);
    let major = word(4);
    if major != 1 {
        return Err(format!(
            "md superblock: major version {major}, only 1 is supported"
        ));
    }
    let max_dev = word(220) as usize;
    let needed = HEADER_BYTES + 2 * max_dev;
    if bytes.len() < needed {
        return Err(truncated(bytes.len(), needed));
    }
    let stored = word(216);
    let computed = checksum(&bytes[..needed]);
    if stored != computed {
        return Err(format!(
            "md superblock: checksum {stored:#010x} does not match its contents ({computed:#010x})"
        ));
    }
    let super_offset = sectors(144);
    if super_offset != SUPERBLOCK_1_2_OFFSET / SECTOR {
        return Err(format!(
            "md superblock: it says it lies at sector {super_offset}, not at sector 8 as version 1.2 does"
        ));
    }
    if word(8) & FEATURE_RESHAPE_ACTIVE != 0 {
        return Err("md superblock: the array is being reshaped".to_owned());
    }
    let bytes_of = |at: usize, what: &str| {
        sectors(at)
            .checked_mul(SECTOR)
            .ok_or_else(|| format!("md superblock: {what} of {} sectors", sectors(at)))
    };
    let dev_number = word(160) as usize;
    let role = match le16(bytes, HEADER_BYTES + 2 * dev_number).filter(|_| dev_number < max_dev) {
        Some(0xffff) => MemberRole::Spare,
        Some(0xfffe) => MemberRole::Faulty,
        Some(0xfffd) => MemberRole::Journal,
        Some(slot) => MemberRole::Active(slot),
        None => {
            return Err(format!(
                "md superblock: device number {dev_number} is past its role table of {max_dev}"
            ))
        }
    };
    Ok(Some(MdSuperblock {
        uuid: uuid_text(&bytes[16..32]),
        device_uuid: uuid_text(&bytes[168..184]),
        name: nul_terminated(&bytes[32..64]),
        level: word(72) as i32,
        raid_disks: word(92),
        role,
        events: sectors(200),
        data_offset_bytes: bytes_of(128, "data offset")?,
        data_size_bytes: bytes_of(136, "data size")?,
        used_size_bytes: bytes_of(80, "used size")?,
    }))
}

fn truncated(len: usize, needed: usize) -> String {
    format!("md superblock: {len} bytes, truncated (it needs {needed})")
}

/// The kernel's `calc_sb_1_csum`: the little-endian 32-bit words of the superblock and its
/// role table summed with `sb_csum` taken as 0, the carry folded back once.
pub(crate) fn checksum(superblock: &[u8]) -> u32 {
    let mut sum: u64 = superblock
        .chunks(4)
        .enumerate()
        .map(|(i, chunk)| match (i, chunk) {
            (54, _) => 0, // sb_csum itself, at byte 216
            (_, [a, b, c, d]) => u64::from(u32::from_le_bytes([*a, *b, *c, *d])),
            (_, [a, b]) => u64::from(u16::from_le_bytes([*a, *b])),
            _ => 0,
        })
        .sum();
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum as u32
}

/// 16 bytes as 8-4-4-4-12 lowercase hex, bytes in order.
fn uuid_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn nul_terminated(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    //! Superblocks laid out per md_p.h. The checksum of the first is pinned to the one
    //! mdadm 4.2 `--examine` called correct for the same bytes, so the builder cannot
    //! agree with the parser by sharing a mistake.

    use std::io::Cursor;

    use super::*;
    use crate::ondisk::read_md_member;

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// A RAID1 member's superblock (member 1 of 2, data at sector 2048, 100 MiB used): the
    /// one mdadm 4.2 `--examine` read as "Checksum : 4a4da3f5 - correct", before `change`.
    fn md_superblock(change: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut sb = vec![0u8; SUPERBLOCK_READ_BYTES];
        put(&mut sb, 0, &0xa92b_4efc_u32.to_le_bytes());
        put(&mut sb, 4, &1u32.to_le_bytes());
        put(&mut sb, 16, &hex("0123456789abcdef0011223344556677"));
        put(&mut sb, 32, b"node1:root");
        put(&mut sb, 64, &1_700_000_000u64.to_le_bytes());
        put(&mut sb, 72, &1u32.to_le_bytes());
        put(&mut sb, 80, &(100u64 * 2048).to_le_bytes());
        put(&mut sb, 92, &2u32.to_le_bytes());
        put(&mut sb, 128, &2048u64.to_le_bytes());
        put(&mut sb, 136, &(128u64 * 2048 - 2048 - 8).to_le_bytes());
        put(&mut sb, 144, &8u64.to_le_bytes());
        put(&mut sb, 160, &1u32.to_le_bytes());
        put(&mut sb, 168, &hex("fedcba98765432100123456789abcdef"));
        put(&mut sb, 192, &1_700_000_001u64.to_le_bytes());
        put(&mut sb, 200, &17u64.to_le_bytes());
        put(&mut sb, 208, &u64::MAX.to_le_bytes());
        put(&mut sb, 220, &2u32.to_le_bytes());
        put(&mut sb, 256, &[0, 0, 1, 0]);
        put(&mut sb, 216, &0x4a4d_a3f5_u32.to_le_bytes());
        change(&mut sb);
        sb
    }

    /// `md_superblock` changed by `change`, with its checksum made right again.
    fn md_resummed(change: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut sb = md_superblock(change);
        let max_dev = u32::from_le_bytes(sb[220..224].try_into().unwrap()) as usize;
        let sum = checksum(&sb[..256 + 2 * max_dev]);
        put(&mut sb, 216, &sum.to_le_bytes());
        sb
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn md_checksum_is_the_one_mdadm_accepted() {
        let sb = md_superblock(|_| {});
        assert_eq!(checksum(&sb[..260]), 0x4a4d_a3f5);
    }

    #[test]
    fn md_superblock_fields() {
        let parsed = parse_superblock(&md_superblock(|_| {})).unwrap();
        assert_eq!(
            parsed,
            Some(MdSuperblock {
                // blkid showed UUID=01234567-89ab-cdef-0011-223344556677, mdadm
                // 01234567:89abcdef:00112233:44556677, for these bytes.
                uuid: "01234567-89ab-cdef-0011-223344556677".to_owned(),
                device_uuid: "fedcba98-7654-3210-0123-456789abcdef".to_owned(),
                name: "node1:root".to_owned(),
                level: 1,
                raid_disks: 2,
                role: MemberRole::Active(1),
                events: 17,
                data_offset_bytes: 1 << 20,
                data_size_bytes: (128 * 2048 - 2048 - 8) * 512,
                used_size_bytes: 100 << 20,
            })
        );
    }

    #[test]
    fn md_member_roles_and_levels() {
        let role = |code: u16| {
            let sb = md_resummed(|sb| put(sb, 258, &code.to_le_bytes()));
            parse_superblock(&sb).unwrap().unwrap().role
        };
        assert_eq!(role(0xffff), MemberRole::Spare);
        assert_eq!(role(0xfffe), MemberRole::Faulty);
        assert_eq!(role(0xfffd), MemberRole::Journal);
        assert_eq!(role(0), MemberRole::Active(0));
        let linear = md_resummed(|sb| put(sb, 72, &(-1i32).to_le_bytes()));
        assert_eq!(parse_superblock(&linear).unwrap().unwrap().level, -1);
        let full_name = md_resummed(|sb| put(sb, 32, &[b'n'; 32]));
        assert_eq!(
            parse_superblock(&full_name).unwrap().unwrap().name,
            "n".repeat(32)
        );
    }

    #[test]
    fn md_without_magic_is_none() {
        assert_eq!(parse_superblock(&[0; 4096]).unwrap(), None);
        assert_eq!(
            parse_superblock(&md_superblock(|sb| sb[0] = 0xfd)).unwrap(),
            None
        );
        // Only the magic is needed to tell there is none.
        assert_eq!(parse_superblock(b"XFSB").unwrap(), None);
    }

    #[test]
    fn md_faults_are_one_line_errors() {
        let fault = |bytes: &[u8]| parse_superblock(bytes).unwrap_err();
        let whole = md_superblock(|_| {});
        assert_eq!(
            fault(&whole[..3]),
            "md superblock: 3 bytes, truncated (it needs 256)"
        );
        assert_eq!(
            fault(&whole[..200]),
            "md superblock: 200 bytes, truncated (it needs 256)"
        );
        assert_eq!(
            fault(&whole[..258]),
            "md superblock: 258 bytes, truncated (it needs 260)"
        );
        assert_eq!(
            fault(&md_resummed(|sb| put(sb, 4, &0u32.to_le_bytes()))),
            "md superblock: major version 0, only 1 is supported"
        );
        assert_eq!(
            // "o" (0x6f) of the name made "X" (0x58): the sum is 0x17 less.
            fault(&md_superblock(|sb| sb[40] = b'X')),
            "md superblock: checksum 0x4a4da3f5 does not match its contents (0x4a4da3de)"
        );
        assert_eq!(
            fault(&md_resummed(|sb| put(sb, 144, &0u64.to_le_bytes()))),
            "md superblock: it says it lies at sector 0, not at sector 8 as version 1.2 does"
        );
        assert_eq!(
            fault(&md_resummed(|sb| put(sb, 144, &u64::MAX.to_le_bytes()))),
            format!(
                "md superblock: it says it lies at sector {}, not at sector 8 as version 1.2 does",
                u64::MAX
            )
        );
        assert_eq!(
            fault(&md_resummed(|sb| put(sb, 8, &4u32.to_le_bytes()))),
            "md superblock: the array is being reshaped"
        );
        assert_eq!(
            fault(&md_resummed(|sb| put(sb, 160, &2u32.to_le_bytes()))),
            "md superblock: device number 2 is past its role table of 2"
        );
        assert_eq!(
            fault(&md_resummed(|sb| put(sb, 128, &u64::MAX.to_le_bytes()))),
            format!("md superblock: data offset of {} sectors", u64::MAX)
        );
        for error in [fault(&whole[..3]), fault(&md_superblock(|sb| sb[40] = 1))] {
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn md_member_read_from_a_device() {
        let mut device = vec![0u8; 64 << 10];
        put(&mut device, 4096, &md_superblock(|_| {}));
        let sb = read_md_member(&mut Cursor::new(&device)).unwrap().unwrap();
        assert_eq!(sb.data_offset_bytes, 1 << 20);
        assert_eq!(
            read_md_member(&mut Cursor::new(vec![0u8; 1 << 20])).unwrap(),
            None
        );
        // A device too small to hold a superblock holds none.
        assert_eq!(
            read_md_member(&mut Cursor::new(vec![0u8; 100])).unwrap(),
            None
        );
    }
}
