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

/// The candidate `word` is most likely a typo of: at most two edits away (ignoring case),
/// and fewer edits than the candidate has characters.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::levenshtein(&word, &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|&(distance, candidate)| distance <= 2 && distance < candidate.chars().count())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean "SUGGESTION"?)`, or nothing without a suggestion.
pub fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean {}?)", quote(s)))
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
    fn closest_is_at_most_two_edits_away_ignoring_case() {
        assert_eq!(closest("sise", ["size", "type"]), Some("size"));
        assert_eq!(closest("Mount", ["mount"]), Some("mount"));
        assert_eq!(closest("tipe", ["type", "tape"]), Some("type"));
        assert_eq!(closest("xy", ["id"]), None);
        assert_eq!(closest("foobar", ["size"]), None);
    }

    #[test]
    fn quotes_percentages_and_plurals() {
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(format_percent(5000), "50%");
        assert_eq!(format_percent(1250), "12.5%");
        assert_eq!(format_percent(1), "0.01%");
        assert_eq!(format_percent(13_000), "130%");
        assert_eq!(format_percent(10_050), "100.5%");
        assert_eq!(format_percent(10_001), "100.01%");
        assert_eq!(plural(1, "disk"), "1 disk");
        assert_eq!(plural(0, "image"), "0 images");
        assert_eq!(plural(3, "volume"), "3 volumes");
    }
}
