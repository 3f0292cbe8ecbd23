//! grub-mkconfig's output tied back to the plan, by pure functions: os-prober knows the
//! images only as partitions of the deploy host, so its entries are matched to images by
//! filesystem UUID, and their roots, titles and the default made right for the node.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use shared::grubcfg::{self, ItemKind, MenuItem};

use crate::grubcfg_gen::kernel_words;

use super::{OsProberEntry, OsProberMenu};

/// What the rewrite needs to know of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProbedImage {
    pub(super) name: String,
    pub(super) root_uuid: String,
    /// The filesystem GRUB loads the kernel from: a separate `/boot`, else `/`.
    pub(super) boot_uuid: String,
    pub(super) kernel_params: String,
    /// The deploy host's node of its `/`, for messages.
    pub(super) root_device: String,
}

/// At least one image, names unique, the default among them.
pub(super) fn check_images(images: &[ProbedImage], default_image: &str) -> anyhow::Result<()> {
    if images.is_empty() {
        bail!("os-prober mode: no image to boot");
    }
    let mut names = BTreeSet::new();
    for image in images {
        if !names.insert(image.name.as_str()) {
            bail!("os-prober mode: image {} is given twice", image.name);
        }
    }
    if !names.contains(default_image) {
        bail!("os-prober mode: the default image {default_image} is not among the images");
    }
    Ok(())
}

/// The top-level items of grub-mkconfig's output (a `menuentry`, or os-prober's "Advanced
/// options" `submenu`) tied to `images` by [`image_of`], an image without an item being an
/// error, with `root=`, kernel parameters and titles rewritten by [`rewrite_line`].
/// `host_only` lists the partition nodes whose `(on DEVICE)` is dropped from titles.
///
/// The default image's item becomes the literal `set default` of 00_header (by its menu
/// id), so grubenv's one-shot `next_entry` still wins once and bootctl switches the config
/// by editing that default; grubenv's `saved_entry` is not read.
pub(super) fn rewrite(
    raw: &str,
    images: &[ProbedImage],
    host_only: &[String],
    default_image: &str,
) -> anyhow::Result<OsProberMenu> {
    let menu =
        grubcfg::parse(raw).map_err(|err| anyhow::anyhow!("grub-mkconfig's output: {err}"))?;
    let lines: Vec<&str> = raw.split_inclusive('\n').collect();
    // Line ranges (0-based, end exclusive) and images of the top-level items: an item ends
    // where the next one starts; the last one at the end of 30_os-prober's section.
    let mut items = Vec::new();
    for (index, item) in menu.items.iter().enumerate() {
        let start = item.line - 1;
        let end = match menu.items.get(index + 1) {
            Some(next) => next.line - 1,
            None => lines[start..]
                .iter()
                .position(|line| line.trim_end() == "### END /etc/grub.d/30_os-prober ###")
                .map_or(lines.len(), |at| start + at),
        };
        items.push((start..end, image_of(item, images)));
    }

    let mut out = String::with_capacity(raw.len());
    let mut dropped = Vec::new();
    let mut next_line = 0;
    for (item, (range, image)) in menu.items.iter().zip(&items) {
        for line in &lines[next_line..range.start] {
            out.push_str(line);
        }
        next_line = range.end;
        match image {
            Some(image) => {
                for line in &lines[range.clone()] {
                    out.push_str(&rewrite_line(line, image, host_only));
                }
            }
            None => dropped.push(item.title.clone()),
        }
    }
    for line in &lines[next_line..] {
        out.push_str(line);
    }

    let kept = grubcfg::parse(&out)
        .map_err(|err| anyhow::anyhow!("grub-mkconfig's output, rewritten: {err}"))?;
    let mut entries = Vec::new();
    for image in images {
        let Some(index) = kept
            .items
            .iter()
            .position(|item| image_of(item, images) == Some(image))
        else {
            bail!(
                "image {}: os-prober did not find it on {} (UUID {}): it needs /boot with a \
                 kernel and a dynamic loader (/lib*/ld*.so*)",
                image.name,
                image.root_device,
                image.root_uuid
            );
        };
        let item = &kept.items[index];
        entries.push(OsProberEntry {
            image: image.name.clone(),
            grub_id: u32::try_from(index).context("too many menu items")?,
            title: item.title.clone(),
            menu_id: item.id.clone(),
        });
    }
    for item in &kept.items {
        if let Some(image) = image_of(item, images) {
            check_roots(item, image)?;
        }
    }

    let default = entries
        .iter()
        .find(|entry| entry.image == default_image)
        .with_context(|| format!("the default image {default_image} has no menu entry"))?;
    let value = default
        .menu_id
        .clone()
        .unwrap_or_else(|| default.grub_id.to_string());
    let grub_cfg = grubcfg::set_fixed_default(&out, &kept, &value);
    let check = grubcfg::parse(&grub_cfg)
        .map_err(|err| anyhow::anyhow!("grub-mkconfig's output with its default: {err}"))?;
    let chosen = check
        .defaults
        .iter()
        .rev()
        .find(|assignment| assignment.literal)
        .and_then(|assignment| check.resolve(&assignment.value))
        .map(|entry| entry.path);
    if chosen != Some(vec![default.grub_id as usize]) {
        bail!(
            "grub-mkconfig's output: setting its default to {value:?} does not select entry {}",
            default.grub_id
        );
    }
    Ok(OsProberMenu {
        grub_cfg,
        entries,
        dropped,
    })
}

/// The image whose boot filesystem every entry of `item` loads its kernel from (their
/// `search --fs-uuid --set=root` UUID, which grub-probe read from the partition itself), if
/// there is one such image. An item of none is dropped and reported: os-prober may find a
/// Linux tree on a utility image's partition, which gets no boot entry in the generated
/// mode either.
fn image_of<'a>(item: &MenuItem, images: &'a [ProbedImage]) -> Option<&'a ProbedImage> {
    let mut uuids = BTreeSet::new();
    search_uuids(item, &mut uuids);
    let mut found = uuids.iter().map(|uuid| {
        images.iter().find(|image| {
            image.boot_uuid.eq_ignore_ascii_case(uuid) || image.root_uuid.eq_ignore_ascii_case(uuid)
        })
    });
    let first = found.next()??;
    found.all(|other| other == Some(first)).then_some(first)
}

/// The lower-cased UUIDs of the `search --fs-uuid --set=root UUID` commands of every
/// entry of `item` (commands end at a newline or `;`; no UUID holds either).
fn search_uuids(item: &MenuItem, out: &mut BTreeSet<String>) {
    match &item.kind {
        ItemKind::Entry { body, .. } => {
            for command in body.lines().flat_map(|line| line.split(';')) {
                let words: Vec<&str> = command.split_whitespace().map(unquote).collect();
                if words.first() == Some(&"search")
                    && words.iter().any(|w| *w == "--fs-uuid" || *w == "-u")
                    && words.contains(&"--set=root")
                {
                    if let Some(uuid) = words.last() {
                        out.insert(uuid.to_ascii_lowercase());
                    }
                }
            }
        }
        ItemKind::Submenu { items } => {
            for inner in items {
                search_uuids(inner, out);
            }
        }
    }
}

/// A word without the quotes around it, if it is quoted as a whole.
fn unquote(word: &str) -> &str {
    for quote in ['\'', '"'] {
        if word.len() >= 2 && word.starts_with(quote) && word.ends_with(quote) {
            return &word[1..word.len() - 1];
        }
    }
    word
}

/// One line of a kept item: titles lose `(on HOST-ONLY-DEVICE)`, as a loop device exists
/// only on the deploy host (a real disk's name, as in the specification's `(on /dev/vda3)`,
/// stays); `linux` lines get the image's root and kernel parameters; other lines stay as
/// they are.
fn rewrite_line(line: &str, image: &ProbedImage, host_only: &[String]) -> String {
    match line.split_whitespace().next() {
        Some("menuentry" | "submenu") => host_only.iter().fold(line.to_owned(), |line, device| {
            line.replace(&format!(" (on {device})"), "")
        }),
        Some("linux" | "linux16" | "linuxefi") => rewrite_linux(line, image),
        _ => line.to_owned(),
    }
}

/// A `linux KERNEL ARGS...` line (words as 30_os-prober writes them, unquoted) with every
/// `root=` replaced by one `root=UUID=<root>` after the kernel, and the image's kernel
/// parameters (`deploy_data.kernel_params`) that it lacks appended. linux-boot-prober
/// writes the deploy host's device (`root=/dev/loop0p3`) or copies the image's own
/// grub.cfg, a UUID from wherever the image was built; the kernel and initrd are the
/// image's, so its `/` is the only root they can boot here.
fn rewrite_linux(line: &str, image: &ProbedImage) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let words: Vec<&str> = line.split_whitespace().collect();
    let [command, kernel, args @ ..] = &words[..] else {
        return line.to_owned();
    };
    let mut out: Vec<String> = vec![
        (*command).to_owned(),
        (*kernel).to_owned(),
        format!("root=UUID={}", image.root_uuid),
    ];
    out.extend(
        args.iter()
            .filter(|word| !unquote(word).starts_with("root="))
            .map(|word| (*word).to_owned()),
    );
    for param in kernel_words(&image.kernel_params) {
        if !param.starts_with("root=") && !args.iter().any(|word| unquote(word) == param) {
            out.push(grub_word(param));
        }
    }
    let newline = if line.ends_with('\n') { "\n" } else { "" };
    format!("{indent}{}{newline}", out.join(" "))
}

/// `word` as one GRUB word: as it is when nothing in it is special, else single-quoted.
fn grub_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if word.chars().all(plain) {
        word.to_owned()
    } else {
        grubcfg::quote(word)
    }
}

/// Every entry of `item` boots a kernel with `root=UUID=<the image's root>`.
fn check_roots(item: &MenuItem, image: &ProbedImage) -> anyhow::Result<()> {
    match &item.kind {
        ItemKind::Entry { .. } => {
            let root = item.root_uuid();
            if item.kernel().is_none()
                || !root.is_some_and(|root| root.eq_ignore_ascii_case(&image.root_uuid))
            {
                bail!(
                    "os-prober entry {:?} of image {}: its linux line does not boot root=UUID={}",
                    item.title,
                    image.name,
                    image.root_uuid
                );
            }
            Ok(())
        }
        ItemKind::Submenu { items } => items.iter().try_for_each(|inner| check_roots(inner, image)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real grub-mkconfig output of this module's run (see tests/data/os-prober/README.md).
    const TWO_FIXTURES: &str = include_str!("../../../tests/data/os-prober/two-fixtures.cfg");
    /// Real grub-mkconfig output with the host's own Debian entries (10_linux) besides two
    /// os-prober finds, one with `root=UUID=` copied from the image's own grub.cfg.
    const DEBIAN: &str = include_str!("../../../../shared/tests/data/grub/debian-os-prober.cfg");

    const ALPHA: &str = "11111111-1111-4111-8111-111111111111";
    const BETA: &str = "22222222-2222-4222-8222-222222222222";
    const ONE: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
    const TWO: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";
    const PARAMS: &str = "console=ttyS0 quiet panic=-1";

    fn image(name: &str, uuid: &str, device: &str, params: &str) -> ProbedImage {
        ProbedImage {
            name: name.to_owned(),
            root_uuid: uuid.to_owned(),
            boot_uuid: uuid.to_owned(),
            kernel_params: params.to_owned(),
            root_device: device.to_owned(),
        }
    }

    fn fixtures() -> Vec<ProbedImage> {
        vec![
            image("alpha", ALPHA, "/dev/loop1p2", PARAMS),
            image("beta", BETA, "/dev/loop1p3", PARAMS),
        ]
    }

    fn loop1() -> Vec<String> {
        (1..=3).map(|n| format!("/dev/loop1p{n}")).collect()
    }

    /// Every `linux` line of the text, trimmed.
    fn linux_lines(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|line| line.starts_with("linux "))
            .collect()
    }

    #[test]
    fn the_fixture_sample_is_what_os_prober_writes() {
        let menu = grubcfg::parse(TWO_FIXTURES).unwrap();
        let titles: Vec<&str> = menu.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Fixture ALPHA (on /dev/loop1p2)",
                "Advanced options for Fixture ALPHA (on /dev/loop1p2)",
                "Fixture BETA (on /dev/loop1p3)",
                "Advanced options for Fixture BETA (on /dev/loop1p3)",
            ]
        );
        let lines = linux_lines(TWO_FIXTURES);
        assert_eq!(lines.len(), 8, "alpha's kernel five times in its submenu");
        assert!(lines.iter().all(
            |line| line.ends_with(" root=/dev/loop1p2") || line.ends_with(" root=/dev/loop1p3")
        ));
    }

    #[test]
    fn fixtures_map_by_uuid_with_submenus_counted_once() {
        let menu = rewrite(TWO_FIXTURES, &fixtures(), &loop1(), "beta").unwrap();
        assert_eq!(
            menu.entries,
            [
                OsProberEntry {
                    image: "alpha".to_owned(),
                    grub_id: 0,
                    title: "Fixture ALPHA".to_owned(),
                    menu_id: Some(format!("osprober-gnulinux-simple-{ALPHA}")),
                },
                OsProberEntry {
                    image: "beta".to_owned(),
                    grub_id: 2,
                    title: "Fixture BETA".to_owned(),
                    menu_id: Some(format!("osprober-gnulinux-simple-{BETA}")),
                },
            ]
        );
        assert!(menu.dropped.is_empty());
        assert!(!menu.grub_cfg.contains("/dev/loop"), "{}", menu.grub_cfg);
        let parsed = grubcfg::parse(&menu.grub_cfg).unwrap();
        let entries = parsed.entries();
        assert_eq!(entries.len(), 8);
        for entry in &entries {
            let want = if entry.path[0] < 2 { ALPHA } else { BETA };
            assert_eq!(entry.item.root_uuid(), Some(want), "{:?}", entry.item.title);
        }
        assert_eq!(
            entries[1].item.title, "Fixture ALPHA",
            "the submenu's entries lose the device too"
        );
    }

    #[test]
    fn root_and_kernel_params_are_rewritten_on_every_linux_line() {
        let menu = rewrite(TWO_FIXTURES, &fixtures(), &loop1(), "alpha").unwrap();
        let kernel = "/boot/vmlinuz-6.1.0-56-amd64";
        let line = |kernel: &str, uuid: &str| {
            format!("linux {kernel} root=UUID={uuid} console=ttyS0 quiet panic=-1")
        };
        let mut want = vec![line("/vmlinuz", ALPHA); 6];
        want[3] = line(kernel, ALPHA);
        want.extend([line(kernel, BETA), line(kernel, BETA)]);
        assert_eq!(linux_lines(&menu.grub_cfg), want);
        // Nothing but the linux lines, titles and the default changes.
        let changed = |line: &&str| {
            let word = line.split_whitespace().next();
            !matches!(word, Some("linux" | "menuentry" | "submenu"))
                && !line.contains("set default=")
        };
        let before: Vec<&str> = TWO_FIXTURES.lines().filter(changed).collect();
        let after: Vec<&str> = menu.grub_cfg.lines().filter(changed).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn linux_lines_keep_their_params_and_drop_any_other_root() {
        let one = image(
            "one",
            ONE,
            "/dev/sda3",
            "console=ttyS0,115200 quiet it's $x",
        );
        let cases = [
            (
                "\tlinux /boot/vmlinuz root=/dev/loop0p3\n",
                format!("\tlinux /boot/vmlinuz root=UUID={ONE} console=ttyS0,115200 quiet 'it'\\''s' '$x'\n"),
            ),
            (
                "\t\tlinux /vmlinuz root=UUID=0000 ro quiet\n",
                format!("\t\tlinux /vmlinuz root=UUID={ONE} ro quiet console=ttyS0,115200 'it'\\''s' '$x'\n"),
            ),
            (
                "linux /vmlinuz ro 'root=LABEL=x' root=PARTUUID=y console=ttyS0,115200",
                format!("linux /vmlinuz root=UUID={ONE} ro console=ttyS0,115200 quiet 'it'\\''s' '$x'"),
            ),
            (
                "  linux16 /vmlinuz",
                format!("  linux16 /vmlinuz root=UUID={ONE} console=ttyS0,115200 quiet 'it'\\''s' '$x'"),
            ),
            ("linux\n", "linux\n".to_owned()),
        ];
        for (line, want) in cases {
            assert_eq!(rewrite_line(line, &one, &[]), want, "{line:?}");
        }
        let plain = image("plain", ONE, "/dev/sda3", "");
        assert_eq!(
            rewrite_line("linux /k root=/dev/sda3 ro\n", &plain, &[]),
            format!("linux /k root=UUID={ONE} ro\n")
        );
        let with_root = image("r", ONE, "/dev/sda3", "root=/dev/sda9 ro");
        assert_eq!(
            rewrite_line("linux /k\n", &with_root, &[]),
            format!("linux /k root=UUID={ONE} ro\n"),
            "a root= among the image's kernel params never replaces the planned one"
        );
    }

    #[test]
    fn only_host_only_devices_leave_titles() {
        let one = image("one", ONE, "/dev/sda3", "");
        let host_only = ["/dev/loop1p2".to_owned()];
        let line = "menuentry 'Image (on /dev/loop1p2)' $menuentry_id_option 'osprober-x' {\n";
        assert_eq!(
            rewrite_line(line, &one, &host_only),
            "menuentry 'Image' $menuentry_id_option 'osprober-x' {\n"
        );
        let real = "\tsubmenu 'Advanced options for Image (on /dev/vda3)' {\n";
        assert_eq!(rewrite_line(real, &one, &host_only), real);
        let similar = "menuentry 'Image (on /dev/loop1p21)' {\n";
        assert_eq!(rewrite_line(similar, &one, &host_only), similar);
        let other = "\techo 'Loading (on /dev/loop1p2) ...'\n";
        assert_eq!(rewrite_line(other, &one, &host_only), other);
    }

    #[test]
    fn the_hosts_own_entries_are_dropped_and_indices_follow() {
        let images = vec![
            image("one", ONE, "/dev/loop1p1", PARAMS),
            image("two", TWO, "/dev/loop1p2", PARAMS),
        ];
        let host_only = ["/dev/loop1p1".to_owned(), "/dev/loop1p2".to_owned()];
        let menu = rewrite(DEBIAN, &images, &host_only, "two").unwrap();
        assert_eq!(
            menu.dropped,
            ["Debian GNU/Linux", "Advanced options for Debian GNU/Linux"]
        );
        let got: Vec<(&str, u32, &str)> = menu
            .entries
            .iter()
            .map(|e| (e.image.as_str(), e.grub_id, e.title.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("one", 0, "Image One Linux 1.0"),
                ("two", 2, "Image Two Linux 2.0")
            ]
        );
        assert!(!menu.grub_cfg.contains("/dev/vda"), "{}", menu.grub_cfg);
        assert!(!menu.grub_cfg.contains("/dev/loop"), "{}", menu.grub_cfg);
        assert!(menu
            .grub_cfg
            .contains("### BEGIN /etc/grub.d/10_linux ###\nfunction gfxmode"));
        let parsed = grubcfg::parse(&menu.grub_cfg).unwrap();
        assert_eq!(parsed.items.len(), 4);
        assert_eq!(
            linux_lines(&menu.grub_cfg)[0],
            format!(
                "linux /boot/vmlinuz-6.1.0-56-amd64 root=UUID={ONE} ro quiet console=ttyS0 panic=-1"
            ),
            "params already there are not repeated"
        );
        let literal = parsed.defaults.iter().rfind(|d| d.literal).unwrap();
        assert_eq!(literal.value, format!("osprober-gnulinux-simple-{TWO}"));
        assert_eq!(
            parsed.resolve(&literal.value).map(|e| e.path),
            Some(vec![2])
        );
    }

    #[test]
    fn the_default_is_the_literal_default_of_00_header_by_id() {
        let menu = rewrite(TWO_FIXTURES, &fixtures(), &loop1(), "beta").unwrap();
        let id = format!("osprober-gnulinux-simple-{BETA}");
        let parsed = grubcfg::parse(&menu.grub_cfg).unwrap();
        let literal: Vec<&str> = parsed
            .defaults
            .iter()
            .filter(|d| d.literal)
            .map(|d| d.value.as_str())
            .collect();
        assert_eq!(literal, [id.as_str()]);
        assert_eq!(parsed.resolve(&id).map(|e| e.path), Some(vec![2]));
        assert!(parsed.loads_env && parsed.reads_next_entry && !parsed.reads_saved_entry);
        assert!(menu
            .grub_cfg
            .contains(&format!("else\n   set default='{id}'\nfi\n")));
    }

    #[test]
    fn an_image_os_prober_did_not_find_is_an_error() {
        let mut images = fixtures();
        images.push(image(
            "gamma",
            "33333333-3333-4333-8333-333333333333",
            "/dev/loop1p4",
            "",
        ));
        let err = rewrite(TWO_FIXTURES, &images, &loop1(), "alpha").unwrap_err();
        assert_eq!(
            err.to_string(),
            "image gamma: os-prober did not find it on /dev/loop1p4 (UUID \
             33333333-3333-4333-8333-333333333333): it needs /boot with a kernel and a \
             dynamic loader (/lib*/ld*.so*)"
        );
        let only_beta = vec![image("beta", BETA, "/dev/loop1p3", "")];
        let menu = rewrite(TWO_FIXTURES, &only_beta, &loop1(), "beta").unwrap();
        assert_eq!(menu.entries[0].grub_id, 0, "alpha's two items were dropped");
        assert_eq!(menu.dropped.len(), 2);
        assert!(rewrite("menuentry 'x' {\n", &fixtures(), &[], "alpha").is_err());
    }

    #[test]
    fn a_separate_boot_maps_by_its_boot_filesystem() {
        let boot = "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4";
        let text = format!(
            "set default=\"0\"\nmenuentry 'C (on /dev/sdb2)' {{\n\tsearch --no-floppy --fs-uuid --set=root {boot}\n\tlinux /vmlinuz root=/dev/sdb2\n}}\n"
        );
        let mut centos = image("centos", ONE, "/dev/sdb2", "");
        centos.boot_uuid = boot.to_owned();
        let menu = rewrite(&text, &[centos], &[], "centos").unwrap();
        assert_eq!(menu.entries[0].title, "C (on /dev/sdb2)");
        assert!(menu
            .grub_cfg
            .contains(&format!("linux /vmlinuz root=UUID={ONE}\n")));
        assert!(
            menu.grub_cfg.starts_with("set default='0'\n"),
            "no id: the index"
        );
    }

    #[test]
    fn search_uuids_with_hints_and_mixed_items() {
        let text = format!(
            "menuentry 'h' {{\n if [ x$feature_platform_search_hint = xy ]; then\n  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt3 {ALPHA}\n else\n  search --no-floppy --fs-uuid --set=root {ALPHA}\n fi\n linux /k\n}}\n\
             submenu 'mixed' {{\n menuentry 'a' {{ search --fs-uuid --set=root {ALPHA}; linux /k; }}\n menuentry 'b' {{ search --fs-uuid --set=root {BETA}; linux /k; }}\n}}\n\
             menuentry 'chain' {{ search --fs-uuid --set=root 'ABCD-1234'; chainloader +1; }}\n"
        );
        let menu = grubcfg::parse(&text).unwrap();
        let images = fixtures();
        assert_eq!(
            image_of(&menu.items[0], &images).map(|i| i.name.as_str()),
            Some("alpha")
        );
        assert_eq!(image_of(&menu.items[1], &images), None);
        assert_eq!(image_of(&menu.items[2], &images), None);
        let mut uuids = BTreeSet::new();
        search_uuids(&menu.items[2], &mut uuids);
        assert_eq!(uuids.into_iter().collect::<Vec<_>>(), ["abcd-1234"]);
    }

    #[test]
    fn inputs_are_checked_before_anything_runs() {
        assert_eq!(
            check_images(&[], "a").unwrap_err().to_string(),
            "os-prober mode: no image to boot"
        );
        let twice = [fixtures()[0].clone(), fixtures()[0].clone()];
        assert_eq!(
            check_images(&twice, "alpha").unwrap_err().to_string(),
            "os-prober mode: image alpha is given twice"
        );
        assert_eq!(
            check_images(&fixtures(), "gamma").unwrap_err().to_string(),
            "os-prober mode: the default image gamma is not among the images"
        );
        assert!(check_images(&fixtures(), "beta").is_ok());
    }
}
