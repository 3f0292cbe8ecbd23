use super::Menu;

/// Quote a string as one GRUB word that reads back exactly `s` (single quotes; a `'` inside
/// becomes `'\''`).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Return `text` with every literal default assignment's value replaced by `quote(value)`,
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
            if let (Some(before), Some(_)) = (text.get(copied..span.start), text.get(span.clone()))
            {
                out.push_str(before);
                out.push_str(&quoted);
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
