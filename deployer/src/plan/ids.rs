use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Hands out the UUIDs the plan assigns, so that fstab, `root=UUID=` and boot-info.json
/// can be written from the plan.
pub trait IdSource {
    /// A filesystem UUID (for vfat, its last four bytes become the volume id).
    fn filesystem_uuid(&mut self) -> Uuid;
    /// A GPT unique partition GUID.
    fn partition_uuid(&mut self) -> Uuid;
    /// An md array's UUID (`mdadm --create --uuid`; dracut starts a root array by it).
    fn array_uuid(&mut self) -> Uuid;
}

/// Random version-4 UUIDs, for real deployments.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }

    fn partition_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }

    fn array_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }
}

/// Predictable UUIDs for tests and reproducible plans: the n-th filesystem UUID is
/// `00000000-0000-4000-a000-00000000000n`, the n-th partition GUID
/// `00000000-0000-4000-b000-00000000000n` and the n-th array UUID
/// `00000000-0000-4000-c000-00000000000n` (n in hexadecimal, counting from 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct SequentialIds {
    filesystems: u64,
    partitions: u64,
    arrays: u64,
}

impl SequentialIds {
    fn uuid(variant: u128, counter: &mut u64) -> Uuid {
        *counter += 1;
        Uuid::from_u128((0x4000 << 64) | (variant << 48) | u128::from(*counter))
    }
}

impl IdSource for SequentialIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xa000, &mut self.filesystems)
    }

    fn partition_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xb000, &mut self.partitions)
    }

    fn array_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xc000, &mut self.arrays)
    }
}

/// The GRUB menu entry id of each image, from its name: `multiboot-NAME` when NAME is 1 to
/// 64 of ASCII letters, digits, `.`, `_` and `-` starting with a letter or digit;
/// otherwise `multiboot-SLUG-HASH`, SLUG being the name's ASCII letters, digits, `.`, `_`
/// and `-` with every run of other characters made one `-` (at most 40 bytes, `image` when
/// nothing is left) and HASH the first 8 hex digits of the name's SHA-256. The id depends
/// on the name alone, so it stays the same from deploy to deploy; should two ids still
/// be equal, HASH is lengthened for both until they differ. grub.cfg quotes ids, so this
/// is not for GRUB's sake but for people and scripts that read `grub_menu_id`,
/// `saved_entry` or grubenv: a plain word.
pub fn grub_menu_ids<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut hex_digits = vec![8; names.len()];
    loop {
        let ids: Vec<String> = names
            .iter()
            .zip(&hex_digits)
            .map(|(name, &digits)| menu_id(name, digits))
            .collect();
        let mut clash = false;
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                if ids[i] == ids[j] {
                    clash = true;
                    hex_digits[i] += 8;
                    hex_digits[j] += 8;
                }
            }
        }
        // Distinct names have distinct SHA-256 digests: at 64 digits nothing can clash.
        if !clash || hex_digits.iter().any(|&digits| digits > 64) {
            return ids;
        }
    }
}

fn menu_id(name: &str, hex_digits: usize) -> String {
    let plain = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(is_word_char);
    if plain && hex_digits == 8 {
        return format!("multiboot-{name}");
    }
    let mut slug = String::new();
    for c in name.chars() {
        if is_word_char(c) {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-').to_string();
    slug.truncate(40);
    if slug.is_empty() {
        slug.push_str("image");
    }
    let digest = hex(&Sha256::digest(name.as_bytes()));
    format!("multiboot-{slug}-{}", &digest[..hex_digits.min(64)])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::{grub_menu_ids, hex};

    #[test]
    fn plain_names_keep_their_id() {
        assert_eq!(
            grub_menu_ids(["centos", "ubuntu-14.04", "a_b"]),
            [
                "multiboot-centos",
                "multiboot-ubuntu-14.04",
                "multiboot-a_b"
            ]
        );
    }

    #[test]
    fn other_names_get_a_slug_and_a_hash() {
        let ids = grub_menu_ids([
            "centos 7.1",
            "http://10.0.0.1/images/ubuntu.img",
            "it's \"$x\"",
            "café",
            "-rf",
            "日本",
        ]);
        assert_eq!(
            ids[0],
            format!("multiboot-centos-7.1-{}", &sha("centos 7.1")[..8])
        );
        assert!(ids[1].starts_with("multiboot-http-10.0.0.1-images-ubuntu.img-"));
        assert!(ids[2].starts_with("multiboot-it-s-x-"));
        assert!(ids[3].starts_with("multiboot-caf-"));
        assert!(ids[4].starts_with("multiboot-rf-"));
        assert!(ids[5].starts_with("multiboot-image-"));
        for id in &ids {
            assert!(id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
        }
        assert_eq!(grub_menu_ids(["centos 7.1"]), ids[..1], "stable");
    }

    #[test]
    fn long_names_are_cut_and_ids_never_clash() {
        let long = "a".repeat(100);
        let id = &grub_menu_ids([long.as_str()])[0];
        assert_eq!(id.len(), "multiboot-".len() + 40 + 1 + 8);
        // A plain name that reads like another name's derived id.
        let derived = grub_menu_ids(["centos 7.1"]).remove(0);
        let plain = derived.strip_prefix("multiboot-").unwrap().to_string();
        let ids = grub_menu_ids(["centos 7.1", plain.as_str()]);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(ids[0].len(), derived.len() + 8);
    }

    fn sha(text: &str) -> String {
        use sha2::{Digest, Sha256};
        hex(&Sha256::digest(text.as_bytes()))
    }
}
