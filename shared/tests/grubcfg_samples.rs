//! The grub.cfg parser on real grub-mkconfig output (see tests/data/grub/README.md), and
//! `set_fixed_default` output checked by the real `grub-script-check`.

use std::path::Path;
use std::process::Command;

use e2e::grubcfg::script_check;
use e2e::tools::require_tools;
use shared::grubcfg::{address, parse, quote, set_fixed_default, ItemKind, Menu, MenuItem};

const PLAIN: &str = include_str!("data/grub/debian-plain.cfg");
const SAVED: &str = include_str!("data/grub/debian-saved.cfg");
const OS_PROBER: &str = include_str!("data/grub/debian-os-prober.cfg");

const KERNEL: &str = "/vmlinuz-6.1.0-56-amd64";
const PROBED_KERNEL: &str = "/boot/vmlinuz-6.1.0-56-amd64";
const ONE_UUID: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
const TWO_UUID: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";

fn summary(item: &MenuItem) -> (&str, Option<&str>, usize) {
    (item.title.as_str(), item.id.as_deref(), item.line)
}

fn kernel(item: &MenuItem) -> (Option<&str>, Option<&str>) {
    (item.kernel(), item.root_uuid())
}

fn submenu(item: &MenuItem) -> &[MenuItem] {
    match &item.kind {
        ItemKind::Submenu { items } => items,
        ItemKind::Entry { .. } => panic!("{} is not a submenu", item.title),
    }
}

fn addresses(menu: &Menu) -> Vec<(String, &str)> {
    menu.entries()
        .iter()
        .map(|e| (address(&e.path), e.item.title.as_str()))
        .collect()
}

fn assert_debian_entries(menu: &Menu) {
    let debian = &menu.items[0];
    assert_eq!(
        summary(debian),
        ("Debian GNU/Linux", Some("gnulinux-simple-/dev/vda"), 92)
    );
    assert_eq!(debian.classes, ["debian", "gnu-linux", "gnu", "os"]);
    // grub-probe cannot read this machine's root filesystem UUID, so 10_linux wrote root=/dev/vda.
    assert_eq!(kernel(debian), (Some(KERNEL), None));
    let ItemKind::Entry { body, .. } = &debian.kind else {
        unreachable!()
    };
    assert!(body.contains("\tlinux\t/vmlinuz-6.1.0-56-amd64 root=/dev/vda ro  quiet\n"));

    let advanced = &menu.items[1];
    assert_eq!(
        summary(advanced),
        (
            "Advanced options for Debian GNU/Linux",
            Some("gnulinux-advanced-/dev/vda"),
            102
        )
    );
    let inner = submenu(advanced);
    assert_eq!(inner.len(), 2);
    assert_eq!(
        summary(&inner[0]),
        (
            "Debian GNU/Linux, with Linux 6.1.0-56-amd64",
            Some("gnulinux-6.1.0-56-amd64-advanced-/dev/vda"),
            103
        )
    );
    assert_eq!(
        summary(&inner[1]),
        (
            "Debian GNU/Linux, with Linux 6.1.0-56-amd64 (recovery mode)",
            Some("gnulinux-6.1.0-56-amd64-recovery-/dev/vda"),
            113
        )
    );
    assert_eq!(kernel(&inner[1]), (Some(KERNEL), None));
}

#[test]
fn debian_plain_menu() {
    let menu = parse(PLAIN).unwrap();
    assert_eq!(
        menu.items.len(),
        2,
        "functions savedefault/load_video/gfxmode are not items"
    );
    assert_debian_entries(&menu);
    assert_eq!(
        addresses(&menu),
        [
            ("0".to_owned(), "Debian GNU/Linux"),
            (
                "1>0".to_owned(),
                "Debian GNU/Linux, with Linux 6.1.0-56-amd64"
            ),
            (
                "1>1".to_owned(),
                "Debian GNU/Linux, with Linux 6.1.0-56-amd64 (recovery mode)"
            ),
        ]
    );
    assert!(menu.loads_env);
    assert!(menu.reads_next_entry);
    assert!(!menu.reads_saved_entry);
}

#[test]
fn debian_plain_default_is_a_literal_zero_with_its_span() {
    let menu = parse(PLAIN).unwrap();
    assert_eq!(menu.defaults.len(), 2);
    let next = &menu.defaults[0];
    assert_eq!(
        (next.value.as_str(), next.literal, next.line),
        ("${next_entry}", false, 14)
    );
    assert_eq!(&PLAIN[next.value_span.clone()], "\"${next_entry}\"");
    let zero = &menu.defaults[1];
    assert_eq!(
        (zero.value.as_str(), zero.literal, zero.line),
        ("0", true, 19)
    );
    assert_eq!(&PLAIN[zero.value_span.clone()], "\"0\"");
    let line_19 = PLAIN.lines().nth(18).unwrap();
    assert_eq!(line_19, "   set default=\"0\"");
    assert_eq!(
        &PLAIN[zero.value_span.start - 15..zero.value_span.end],
        line_19
    );
    assert_eq!(
        menu.resolve(&zero.value).unwrap().item.title,
        "Debian GNU/Linux"
    );
}

#[test]
fn debian_saved_reads_saved_entry() {
    let menu = parse(SAVED).unwrap();
    assert_debian_entries(&menu);
    assert!(menu.reads_saved_entry && menu.reads_next_entry && menu.loads_env);
    let defaults: Vec<(&str, bool, usize)> = menu
        .defaults
        .iter()
        .map(|d| (d.value.as_str(), d.literal, d.line))
        .collect();
    assert_eq!(
        defaults,
        [("${next_entry}", false, 14), ("${saved_entry}", false, 19)]
    );
}

#[test]
fn os_prober_menu_titles_ids_and_addresses() {
    let menu = parse(OS_PROBER).unwrap();
    assert_debian_entries(&menu);
    let top: Vec<(&str, Option<&str>, usize)> = menu.items.iter().map(summary).collect();
    let one_simple = format!("osprober-gnulinux-simple-{ONE_UUID}");
    let one_advanced = format!("osprober-gnulinux-advanced-{ONE_UUID}");
    let two_simple = format!("osprober-gnulinux-simple-{TWO_UUID}");
    let two_advanced = format!("osprober-gnulinux-advanced-{TWO_UUID}");
    assert_eq!(
        top[2..],
        [
            (
                "Image One Linux 1.0 (on /dev/loop1p1)",
                Some(one_simple.as_str()),
                132
            ),
            (
                "Advanced options for Image One Linux 1.0 (on /dev/loop1p1)",
                Some(one_advanced.as_str()),
                139
            ),
            (
                "Image Two Linux 2.0 (on /dev/loop1p2)",
                Some(two_simple.as_str()),
                149
            ),
            (
                "Advanced options for Image Two Linux 2.0 (on /dev/loop1p2)",
                Some(two_advanced.as_str()),
                156
            ),
        ]
    );
    assert_eq!(menu.items[2].classes, ["image", "gnu-linux", "gnu", "os"]);
    let one_inner = submenu(&menu.items[3]);
    assert_eq!(
        summary(&one_inner[0]),
        (
            "Image One Linux (on /dev/loop1p1)",
            Some(format!("osprober-gnulinux-/boot/vmlinuz-6.1.0-56-amd64--{ONE_UUID}").as_str()),
            140
        )
    );
    let addresses: Vec<String> = menu.entries().iter().map(|e| address(&e.path)).collect();
    assert_eq!(addresses, ["0", "1>0", "1>1", "2", "3>0", "4", "5>0"]);
    // The second probed OS is top-level entry 4: each Advanced submenu counts as one entry.
    let second = menu.resolve(&two_simple).unwrap();
    assert_eq!(
        (address(&second.path), second.item.title.as_str()),
        ("4".to_owned(), "Image Two Linux 2.0 (on /dev/loop1p2)")
    );
    assert_eq!(menu.resolve("4").unwrap().item, second.item);
    let first = menu.resolve(&one_simple).unwrap();
    assert_eq!(address(&first.path), "2");
    let nested = menu.resolve(&format!("{one_advanced}>0")).unwrap();
    assert_eq!(address(&nested.path), "3>0");
    assert_eq!(
        menu.resolve(&one_advanced),
        None,
        "a submenu is not a bootable entry"
    );
    assert_eq!(menu.defaults.iter().filter(|d| d.literal).count(), 1);
    assert!(menu.reads_next_entry && menu.loads_env && !menu.reads_saved_entry);
}

#[test]
fn os_prober_kernels_and_root_uuids() {
    let menu = parse(OS_PROBER).unwrap();
    // Image One has its own grub.cfg, whose root=UUID= linux-boot-prober copied.
    assert_eq!(
        kernel(&menu.items[2]),
        (Some(PROBED_KERNEL), Some(ONE_UUID))
    );
    assert_eq!(
        kernel(&submenu(&menu.items[3])[0]),
        (Some(PROBED_KERNEL), Some(ONE_UUID))
    );
    // Image Two has none: linux-boot-prober fell back to root=<partition device>.
    assert_eq!(kernel(&menu.items[4]), (Some(PROBED_KERNEL), None));
    let ItemKind::Entry { body, .. } = &menu.items[4].kind else {
        unreachable!()
    };
    assert!(body.contains(&format!(
        "search --no-floppy --fs-uuid --set=root {TWO_UUID}\n"
    )));
    assert!(body.contains("root=/dev/loop1p2\n"));
}

/// `items` as they read after `by` lines were inserted above them.
/// `items` with their lines moved down `by` lines, and without the byte offsets of their
/// boot files (which an edit moves too).
fn shifted(items: &[MenuItem], by: usize) -> Vec<MenuItem> {
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            item.line += by;
            match &mut item.kind {
                ItemKind::Submenu { items } => *items = shifted(items, by),
                ItemKind::Entry { files, .. } => *files = Default::default(),
            }
            item
        })
        .collect()
}

/// For every entry of `text`, by address and by id path: the rewritten config parses to the
/// same menu, resolves to that entry, differs from `text` only in the default's value, and
/// passes grub-script-check.
fn check_fixed_defaults(text: &str, name: &str) {
    let menu = parse(text).unwrap();
    let literal: Vec<_> = menu.defaults.iter().filter(|d| d.literal).collect();
    for entry in menu.entries() {
        let mut items = &menu.items[..];
        let mut ids = Vec::new();
        for &index in &entry.path {
            let item = &items[index];
            ids.push(item.id.clone().unwrap());
            if let ItemKind::Submenu { items: inner } = &item.kind {
                items = inner;
            }
        }
        for value in [address(&entry.path), ids.join(">")] {
            let out = set_fixed_default(text, &menu, &value);
            let (expected, inserted_lines) = match literal.as_slice() {
                [only] => (
                    format!(
                        "{}{}{}",
                        &text[..only.value_span.start],
                        quote(&value),
                        &text[only.value_span.end..]
                    ),
                    0,
                ),
                [] => {
                    let at = text.find("### BEGIN /etc/grub.d/00_header ###\n").unwrap() + 36;
                    let inserted = format!("set default={}\n", quote(&value));
                    (format!("{}{inserted}{}", &text[..at], &text[at..]), 1)
                }
                more => panic!("{name}: unexpected literal defaults {more:?}"),
            };
            assert_eq!(out, expected, "{name} {value}");
            let again = parse(&out).unwrap();
            assert_eq!(
                shifted(&again.items, 0),
                shifted(&menu.items, inserted_lines)
            );
            let fixed: Vec<_> = again.defaults.iter().filter(|d| d.literal).collect();
            assert_eq!(fixed.len(), 1);
            assert_eq!(fixed[0].value, value);
            assert_eq!(
                again.resolve(&value).unwrap().path,
                entry.path,
                "{name} {value}"
            );
            script_check(&out);
        }
    }
}

#[test]
fn set_fixed_default_on_plain_and_os_prober_samples() {
    check_fixed_defaults(PLAIN, "debian-plain.cfg");
    check_fixed_defaults(OS_PROBER, "debian-os-prober.cfg");
}

#[test]
fn set_fixed_default_inserts_into_saved_sample() {
    check_fixed_defaults(SAVED, "debian-saved.cfg");
}

#[test]
fn samples_and_tricky_values_pass_grub_script_check() {
    for text in [PLAIN, SAVED, OS_PROBER] {
        script_check(text);
    }
    let menu = parse(OS_PROBER).unwrap();
    for value in [
        "it's",
        "a\"b",
        "$x ${y}",
        "x>>y>z",
        "{ } ; # \\",
        "two\nlines",
        "",
    ] {
        let out = set_fixed_default(OS_PROBER, &menu, value);
        script_check(&out);
        assert_eq!(parse(&out).unwrap().defaults[1].value, value);
    }
}

#[test]
fn sample_directory_documents_every_sample() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grub");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".cfg") {
            assert!(readme.contains(&name), "README.md does not describe {name}");
        }
    }
}

/// A menu's shape with what depends on the machine normalised: the kernel version and the
/// loop device numbers that grub-mkconfig and os-prober print.
fn shape(menu: &Menu, kernel_version: &str) -> Vec<String> {
    let normalise = |text: &str| {
        let text = text.replace(kernel_version, "KVER");
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("/dev/loop") {
            out.push_str(&rest[..at + "/dev/loop".len()]);
            rest = rest[at + "/dev/loop".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
            out.push('N');
        }
        out + rest
    };
    let mut shape: Vec<String> = menu
        .entries()
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} {:?}",
                address(&e.path),
                normalise(&e.item.title),
                e.item.id.as_deref().map(normalise),
                kernel(e.item)
            )
        })
        .collect();
    shape.push(format!(
        "saved={} next={} load_env={} defaults={:?}",
        menu.reads_saved_entry,
        menu.reads_next_entry,
        menu.loads_env,
        menu.defaults
            .iter()
            .map(|d| (d.value.as_str(), d.literal))
            .collect::<Vec<_>>()
    ));
    shape.into_iter().map(|line| normalise(&line)).collect()
}

/// The real grub-mkconfig, run now on this machine (see generate.sh), gives menus of the same
/// shape as the committed samples, and the parser reads them.
#[test]
fn fresh_grub_mkconfig_output_parses_like_the_samples() {
    require_tools(&["grub-script-check"]);
    let out = std::env::temp_dir().join(format!("grubcfg-fresh-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/grub/generate.sh");
    let output = Command::new("bash").arg(&script).arg(&out).output();
    let read = |name: &str| std::fs::read_to_string(out.join(name));
    let fresh = [
        "debian-plain.cfg",
        "debian-saved.cfg",
        "debian-os-prober.cfg",
    ]
    .map(read);
    std::fs::remove_dir_all(&out).unwrap();
    let output = output.expect("running generate.sh");
    assert!(
        output.status.success(),
        "generate.sh failed (run scripts/setup, see README): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for ((fresh, sample), name) in
        fresh
            .into_iter()
            .zip([PLAIN, SAVED, OS_PROBER])
            .zip(["plain", "saved", "os-prober"])
    {
        let fresh = fresh.unwrap();
        let fresh_menu = parse(&fresh).unwrap_or_else(|e| panic!("fresh {name} config: {e}"));
        let fresh_kernel = kernel(&fresh_menu.items[0])
            .0
            .expect("Debian's entry has a kernel");
        let version = fresh_kernel.trim_start_matches("/vmlinuz-");
        assert_eq!(
            shape(&fresh_menu, version),
            shape(&parse(sample).unwrap(), "6.1.0-56-amd64"),
            "{name}"
        );
        script_check(&fresh);
    }
}
