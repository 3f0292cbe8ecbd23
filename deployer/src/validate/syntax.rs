//! Checks of single strings: paths, mount points, names, GUIDs, md devices, image URLs.

use crate::config::{ImageSource, Mount};
use crate::text::quote;

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks an absolute path that later joins onto a directory: `/`, or `/a/b` with no
/// empty, `.` or `..` component, no trailing `/` and no control characters.
pub(super) fn check_absolute_path(s: &str) -> Result<(), String> {
    if has_control(s) {
        return Err(format!("{} contains control characters", quote(s)));
    }
    if !s.starts_with('/') {
        return Err(format!("{} is not an absolute path", quote(s)));
    }
    if s == "/" {
        return Ok(());
    }
    if s.ends_with('/') {
        return Err(format!(
            "write {} without the trailing \"/\"",
            quote(s.trim_end_matches('/'))
        ));
    }
    for component in s[1..].split('/') {
        match component {
            "" => return Err(format!("{} has an empty component", quote(s))),
            "." | ".." => {
                return Err(format!(
                    "{} has a \".\" or \"..\" component; write the path without it",
                    quote(s)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn parse_mount(s: &str) -> Result<Mount, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Mount::None);
    }
    if s.eq_ignore_ascii_case("swap") {
        return Ok(Mount::Swap);
    }
    if !s.starts_with('/') && !has_control(s) {
        return Err(format!(
            "mount point {} is not an absolute path (nor \"swap\" or \"none\")",
            quote(s)
        ));
    }
    check_absolute_path(s)?;
    if s.chars().any(char::is_whitespace) {
        return Err(format!(
            "mount point {} contains whitespace, which is not supported",
            quote(s)
        ));
    }
    Ok(Mount::Path(s.to_string()))
}

/// Any non-empty name without control characters: the name appears in progress lines,
/// fstab comments and boot-info.json as written; the GRUB entry id is derived from it
/// (`plan::ids::grub_menu_ids`).
pub(super) fn check_image_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the image name is empty".into());
    }
    if has_control(name) {
        return Err(format!(
            "image name {} contains control characters",
            quote(name)
        ));
    }
    Ok(())
}

/// LVM's rule for volume group and logical volume names.
pub(super) fn check_lvm_name(name: &str, what: &str) -> Result<(), String> {
    let charset = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-'));
    if name.is_empty()
        || name.len() > 127
        || !charset
        || name.starts_with('-')
        || name == "."
        || name == ".."
    {
        return Err(format!(
            "{what} {} must be 1 to 127 of letters, digits, \"+\", \"_\", \".\" and \"-\", \
             not starting with \"-\"",
            quote(name)
        ));
    }
    Ok(())
}

pub(super) fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && is_hex(group))
}

pub(super) fn is_md_name(name: &str) -> bool {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    if let Some(number) = name.strip_prefix("md/") {
        return number
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    }
    name.strip_prefix("md")
        .is_some_and(|number| !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
}

/// Decodes `%XX` escapes of a `file://` URL's path; `None` for an escape that is not `%`
/// and two hex digits, or for bytes that are not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    // percent-encoding passes a malformed escape such as `%zz` through as it is; here it is
    // an error.
    if s.split('%')
        .skip(1)
        .any(|after| !after.get(..2).is_some_and(is_hex))
    {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

pub(super) fn parse_source(url: &str) -> Result<ImageSource, String> {
    const EXPECTED: &str =
        "use a file://, http://, https:// or rsync:// URL, HOST::MODULE/PATH or an absolute path";
    if url.is_empty() {
        return Err(format!("the image URL is empty; {EXPECTED}"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the image URL contains whitespace or control characters".into());
    }
    if url.starts_with('/') {
        return Ok(ImageSource::Path(url.to_string()));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        // An IPv6 host is in brackets, its colons before the "::" that ends it.
        let host_end = url
            .strip_prefix('[')
            .and_then(|rest| rest.find(']'))
            .map_or(0, |end| end + 2);
        if let Some(at) = url[host_end..].find("::") {
            let (host, path) = (&url[..host_end + at], &url[host_end + at + 2..]);
            return parse_rsync_daemon(url, host, path);
        }
        return Err(format!(
            "{} is not a URL or an absolute path; {EXPECTED}",
            quote(url)
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            match percent_decode(path) {
                Some(path) if path.starts_with('/') && !path.contains('\0') => {
                    Ok(ImageSource::Path(path))
                }
                Some(_) if !path.starts_with('/') => Err(format!(
                    "{} names a remote host or a relative path; a file:// URL is \
                     file:///ABSOLUTE/PATH",
                    quote(url)
                )),
                _ => Err(format!("{} has a bad %-escape", quote(url))),
            }
        }
        kind @ ("http" | "https" | "rsync") => {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(format!("{} has no host", quote(url)));
            }
            Ok(match kind {
                "http" => ImageSource::Http(url.to_string()),
                "https" => ImageSource::Https(url.to_string()),
                _ => ImageSource::Rsync(url.to_string()),
            })
        }
        _ => Err(format!(
            "unsupported URL scheme {}; {EXPECTED}",
            quote(scheme)
        )),
    }
}

/// `HOST::MODULE/PATH`, an rsync daemon source as bareon-ironic writes `image_pull_url`
/// (`resources/rsync.py` `build_rsync_url_from_rel`) and Bareon hands to rsync as it is:
/// kept as written, so that a trailing `/` keeps rsync's meaning (the directory's contents).
fn parse_rsync_daemon(url: &str, host: &str, path: &str) -> Result<ImageSource, String> {
    if host.is_empty() || host.contains('/') {
        return Err(format!(
            "{} has no host before \"::\"; an rsync daemon source is HOST::MODULE/PATH",
            quote(url)
        ));
    }
    if path.is_empty() || path.starts_with('/') || path.contains("::") {
        return Err(format!(
            "{} names no module after \"::\"; an rsync daemon source is HOST::MODULE/PATH",
            quote(url)
        ));
    }
    Ok(ImageSource::Rsync(url.to_string()))
}
