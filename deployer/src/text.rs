//! Small pieces of the deployer's messages, written once.

/// A string as JSON writes it: quoted, with control characters escaped.
pub fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A percentage given in hundredths, as the config would write it: `12.5%`, `50%`.
pub fn format_percent(hundredths: u32) -> String {
    let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// `1 disk`, `3 disks`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_percentages_and_plurals() {
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(format_percent(5000), "50%");
        assert_eq!(format_percent(1250), "12.5%");
        assert_eq!(format_percent(1), "0.01%");
        assert_eq!(plural(1, "disk"), "1 disk");
        assert_eq!(plural(0, "image"), "0 images");
        assert_eq!(plural(3, "volume"), "3 volumes");
    }
}
