//! The image's os-release, for its boot entry's title and ID, read without leaving the
//! image.

use std::path::Path;

use super::rootpath::resolve_in;

/// The keys of os-release the deployer uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: Option<String>,
    /// The distributions this one derives from, separated by spaces (`rhel centos fedora`).
    pub id_like: Option<String>,
    pub pretty_name: Option<String>,
}

/// The most of an os-release file the deployer reads: real ones are under 1 KiB.
const MAX_OS_RELEASE_BYTES: u64 = 64 << 10;

/// `/etc/os-release` of the image whose `/` is `root`, else `/usr/lib/os-release`, each
/// looked up as [`resolve_in`] does, so a symlink in the image never makes the deployer
/// read a file of the host; empty when neither is a readable regular file of at most
/// [`MAX_OS_RELEASE_BYTES`] of UTF-8.
pub(super) fn read_os_release(root: &Path) -> OsRelease {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| read_image_text(root, Path::new(rel), MAX_OS_RELEASE_BYTES))
        .map(|text| parse_os_release(&text))
        .unwrap_or_default()
}

/// The text of the regular file `rel` of the image whose `/` is `root`, found with
/// [`resolve_in`]; `None` when it is missing, not a regular file (a FIFO is not waited
/// for), not UTF-8, or longer than `limit` bytes.
fn read_image_text(root: &Path, rel: &Path, limit: u64) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let resolved = resolve_in(root, rel, true)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(root.join(resolved))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= limit).then_some(text)
}

/// `ID`, `ID_LIKE` and `PRETTY_NAME` of an os-release text (shell-style quotes and escapes undone).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut out = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => out.id = Some(value),
            "ID_LIKE" => out.id_like = Some(value),
            "PRETTY_NAME" => out.pretty_name = Some(value),
            _ => {}
        }
    }
    out
}

fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') {
        return value[1..value.len() - 1].to_owned();
    }
    let inner = if quoted('"') {
        &value[1..value.len() - 1]
    } else {
        value
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// An os-release value, unless it holds control characters: a NUL ends GRUB's reading of
/// a grub.cfg line, an escape sequence would act on the consoles that show the menu and
/// bootctl's tables. Such a value is not used, and a line on stderr says so.
pub(super) fn printable(image: &str, key: &str, value: Option<String>) -> Option<String> {
    match value {
        Some(value) if value.chars().any(char::is_control) => {
            crate::warn!(
                "deployer: image {image}: os-release {key} {value:?} holds control characters; \
                 not used"
            );
            None
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn os_release_keys_are_unquoted() {
        let text = "NAME=\"Fixture Linux\"\nID=fixture\n# comment\n\
            PRETTY_NAME=\"Fixture \\\"A\\\" 1.0\"\nVERSION_ID='1.0'\nID_LIKE=\"rhel fedora\"\n";
        assert_eq!(
            parse_os_release(text),
            OsRelease {
                id: Some("fixture".to_owned()),
                id_like: Some("rhel fedora".to_owned()),
                pretty_name: Some("Fixture \"A\" 1.0".to_owned()),
            }
        );
        assert_eq!(
            parse_os_release("ID='deb ian'\n").id.as_deref(),
            Some("deb ian")
        );
        assert_eq!(parse_os_release(""), OsRelease::default());
    }

    /// An image tree at `DIR/root` whose `/usr/lib/os-release` says "Image" and a host
    /// file at `DIR/etc/os-release` saying "HOST", where a link resolved on the host
    /// (not inside the image) would lead.
    fn image_and_host(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "PRETTY_NAME=\"Image\"\n").unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/os-release"),
            "PRETTY_NAME=\"HOST\"\nID=host\n",
        )
        .unwrap();
        root
    }

    fn title(root: &Path) -> Option<String> {
        read_os_release(root).pretty_name
    }

    #[test]
    fn os_release_symlinks_never_lead_out_of_the_image() {
        use std::os::unix::fs::symlink;
        let host = read_os_release(Path::new("/")).pretty_name;
        let links: [(&str, &str); 8] = [
            ("etc/os-release", "../../etc/os-release"),
            ("etc/os-release", "../etc/../../etc/os-release"),
            ("etc/os-release", "/../../etc/os-release"),
            ("etc", "../etc"),
            ("etc", "/etc"),
            ("etc", "/../.."),
            ("etc/os-release", "/proc/self/environ"),
            ("etc/os-release", "/dev/zero"),
        ];
        for (at, target) in links {
            let dir = tempfile::tempdir().unwrap();
            let root = image_and_host(dir.path());
            let link = root.join(at);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(target, &link).unwrap();
            let got = title(&root);
            assert_eq!(got.as_deref(), Some("Image"), "{at} -> {target}");
            assert_ne!(got, host, "{at} -> {target} read the host's os-release");
        }
    }

    #[test]
    fn os_release_symlinks_inside_the_image_are_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = image_and_host(dir.path());
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // Debian's link, relative.
        symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"));
        // Absolute, through a directory link, with `..` at the image's root.
        std::fs::remove_file(root.join("etc/os-release")).unwrap();
        symlink("/lib/../../../os-release", root.join("etc/os-release")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::write(root.join("os-release"), "PRETTY_NAME=Top\n").unwrap();
        assert_eq!(title(&root).as_deref(), Some("Top"));
        assert_eq!(
            resolve_in(&root, Path::new("etc/os-release"), true),
            Some(PathBuf::from("os-release"))
        );
        assert_eq!(
            resolve_in(&root, Path::new("etc/os-release"), false),
            Some(PathBuf::from("etc/os-release"))
        );
        assert_eq!(
            resolve_in(&root, Path::new("lib/os-release"), true),
            Some(PathBuf::from("usr/lib/os-release"))
        );
    }

    #[test]
    fn os_release_that_is_not_a_small_text_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = image_and_host(dir.path());
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let etc = root.join("etc/os-release");
        nix::unistd::mkfifo(&etc, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(
            title(&root).as_deref(),
            Some("Image"),
            "a FIFO is not waited for"
        );
        std::fs::remove_file(&etc).unwrap();
        std::fs::create_dir(&etc).unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"), "a directory");
        std::fs::remove_dir(&etc).unwrap();
        let huge = format!("PRETTY_NAME=Huge\n{}", "#\n".repeat(40 << 10));
        std::fs::write(&etc, huge).unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"), "over 64 KiB");
        std::fs::write(&etc, b"PRETTY_NAME=Caf\xe9\n").unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"), "not UTF-8");
    }

    #[test]
    fn os_release_values_with_control_characters_are_not_used() {
        let value = |v: &str| printable("img", "PRETTY_NAME", Some(v.to_owned()));
        assert_eq!(
            value("Debian \"12\" $x;{}\\").as_deref(),
            Some("Debian \"12\" $x;{}\\")
        );
        assert_eq!(value("a\0b"), None);
        assert_eq!(value("\x1b[2Jclear"), None);
        assert_eq!(value("tab\there"), None);
        assert_eq!(printable("img", "ID", None), None);
    }
}
