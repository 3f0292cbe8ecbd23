use super::Menu;

/// Quote a string as one GRUB word that reads back exactly `s` (single quotes; a `'` inside
/// becomes `'\''`).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `value` as the new value of an assignment whose old value was written `old`: bare, as
/// `old` was, when it is a plain word (Bareon's `set default=0`, which bareon-ironic edits
/// with `sed 's/\(set default=\)[0-9]*/\1N/'`, stays a line that sed still edits); else
/// [`quote`]d.
fn replacement(value: &str, old: &str) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if plain(old) && plain(value) {
        value.to_owned()
    } else {
        quote(value)
    }
}

/// Return `text` with every literal default assignment's value replaced by `value` (quoted
/// unless it and the old value are plain words, see [`replacement`]),
/// or, if `menu` (which must be `parse(text)`) has none, with `set default=<quoted>` inserted
/// before the first line that is neither blank nor a comment. Nothing else changes. A later
/// non-literal assignment (such as `set default="${saved_entry}"`) still wins at boot.
pub fn set_fixed_default(text: &str, menu: &Menu, value: &str) -> String {
    let quoted = quote(value);
    let mut out = String::with_capacity(text.len() + quoted.len() + 16);
    if menu.defaults.iter().any(|d| d.literal) {
        let mut copied = 0;
        for span in menu
            .defaults
            .iter()
            .filter(|d| d.literal)
            .map(|d| &d.value_span)
        {
            // Spans that do not fit `text` (a menu parsed from other text) are skipped.
            if let (Some(before), Some(old)) =
                (text.get(copied..span.start), text.get(span.clone()))
            {
                out.push_str(before);
                out.push_str(&replacement(value, old));
                copied = span.end;
            }
        }
        out.push_str(&text[copied..]);
        return out;
    }
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start_matches([' ', '\t', '\r', '\n']);
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            break;
        }
        at += line.len();
    }
    out.push_str(&text[..at]);
    if at > 0 && !text[..at].ends_with('\n') {
        out.push('\n');
    }
    out.push_str("set default=");
    out.push_str(&quoted);
    out.push('\n');
    out.push_str(&text[at..]);
    out
}
