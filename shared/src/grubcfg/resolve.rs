use super::{EntryRef, ItemKind, Menu};

impl Menu {
    /// GRUB's own resolution of a `default` value (grub-core/normal/menu.c): at each level a
    /// number (as `grub_strtoul` reads it: leading digits, `0x` hex, leading-`0` octal), else
    /// the first item whose title or id matches up to the next single `>` (`>>` is a literal
    /// `>`); a submenu continues with the rest after that `>`. Returns `None` where GRUB would
    /// fall back to entry 0 (nothing matches, index out of range) and when the value names a
    /// submenu rather than an entry.
    pub fn resolve(&self, value: &str) -> Option<EntryRef<'_>> {
        let mut items = &self.items[..];
        let mut spec = value;
        let mut path = Vec::new();
        loop {
            let index = match grub_strtoul(spec) {
                // GRUB stores the number in an `int`: values past i32 wrap as in C.
                Number::Value(n) => usize::try_from(n as u32 as i32).ok()?,
                Number::Overflow => return None,
                Number::NoDigits => items.iter().position(|item| {
                    menuentry_eq(&item.title, spec)
                        || menuentry_eq(item.id.as_deref().unwrap_or(&item.title), spec)
                })?,
            };
            let item = items.get(index)?;
            path.push(index);
            match &item.kind {
                ItemKind::Entry { .. } => return Some(EntryRef { path, item }),
                ItemKind::Submenu { items: inner } => {
                    spec = rest_after_separator(spec)?;
                    items = inner;
                }
            }
        }
    }
}

/// "N" or "N>M>..." for a path.
pub fn address(path: &[usize]) -> String {
    let parts: Vec<String> = path.iter().map(usize::to_string).collect();
    parts.join(">")
}

/// Result of GRUB's `grub_strtoul` on a `default` value.
enum Number {
    Value(u64),
    Overflow,
    NoDigits,
}

/// `grub_strtoul (val, 0, 0)`: skip blanks, guess the base, read digits while they last.
fn grub_strtoul(s: &str) -> Number {
    let b = s.as_bytes();
    let mut i = 0;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    let mut base = 10u64;
    if b.get(i) == Some(&b'0') {
        if b.get(i + 1) == Some(&b'x') {
            base = 16;
            i += 2;
        } else if matches!(b.get(i + 1), Some(b'0'..=b'7')) {
            base = 8;
        }
    }
    let mut num = 0u64;
    let mut found = false;
    while let Some(&c) = b.get(i) {
        let digit = match c.to_ascii_lowercase() {
            d @ b'0'..=b'9' => d - b'0',
            d @ b'a'..=b'z' => d - b'a' + 10,
            _ => break,
        };
        if u64::from(digit) >= base {
            break;
        }
        found = true;
        match num
            .checked_mul(base)
            .and_then(|n| n.checked_add(u64::from(digit)))
        {
            Some(n) => num = n,
            None => return Number::Overflow,
        }
        i += 1;
    }
    if found {
        Number::Value(num)
    } else {
        Number::NoDigits
    }
}

/// GRUB's `menuentry_eq`: does `name` equal `spec` up to its first single `>`?
fn menuentry_eq(name: &str, spec: &str) -> bool {
    let (n, s) = (name.as_bytes(), spec.as_bytes());
    let at = |bytes: &[u8], i: usize| bytes.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    loop {
        if at(s, j) == b'>' && at(s, j + 1) != b'>' {
            return at(n, i) == 0;
        }
        if at(s, j) == b'>' {
            j += 1;
        }
        if at(n, i) != at(s, j) {
            return false;
        }
        if at(n, i) == 0 {
            return true;
        }
        i += 1;
        j += 1;
    }
}

/// What GRUB sets `default` to inside a submenu: the rest after the first single `>`.
fn rest_after_separator(spec: &str) -> Option<&str> {
    let b = spec.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'>' {
            if b.get(i + 1) == Some(&b'>') {
                i += 2;
                continue;
            }
            return spec.get(i + 1..).filter(|rest| !rest.is_empty());
        }
        i += 1;
    }
    None
}
