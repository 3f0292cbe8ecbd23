//! The grub.cfg the deployer writes on the multiboot partition: one menu entry per image.
//! Pure: no I/O.
//!
//! What boots is chosen as Debian's `00_header` does with `GRUB_DEFAULT=saved`: grubenv's
//! one-shot `next_entry` (cleared as it is used), else its `saved_entry`, else the default
//! image's id written into the config. bootctl sees a config that reads `${saved_entry}` and
//! `${next_entry}` after `load_env`, so it switches it through grubenv and never edits it.
//!
//! Every string that comes from the config or the images (titles, ids, UUIDs, paths, kernel
//! parameters) is written as one single-quoted word ([`quote`]), so no character in it is
//! ever GRUB script. Titles come after `--` and ids as `--id=...`, so neither can be taken
//! for an option of `menuentry`, even when it starts with `-`.

use std::fmt::Write;

use shared::grubcfg::{quote, BOOT_STAMP, MAX_TRIES, TRY_FAILED, TRY_LEFT, TRY_VARIABLE};

/// One image's menu entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntrySpec {
    /// The entry's `--id`, what grubenv and `default` name it by.
    pub id: String,
    /// The title shown in the menu.
    pub title: String,
    /// Filesystem UUID of the filesystem holding the kernel (the image's boot filesystem).
    pub search_uuid: String,
    /// GRUB modules that filesystem needs besides `part_gpt`, `ext2` and `xfs` (`lvm`,
    /// `mdraid1x`).
    pub modules: Vec<&'static str>,
    /// The GRUB device the search tries first (`search --hint`), which makes GRUB scan
    /// for an LV or array.
    pub search_hint: Option<String>,
    /// The kernel's path on that filesystem: `/boot/vmlinuz-X`, or `/vmlinuz-X` when
    /// `/boot` is a partition of its own.
    pub kernel_path: String,
    /// The initrd's path on that filesystem, if the image has one.
    pub initrd_path: Option<String>,
    /// Filesystem UUID of the image's `/`, for `root=UUID=`.
    pub root_uuid: String,
    /// Further kernel parameters, separated by whitespace.
    pub kernel_params: String,
}

/// The grub.cfg for `entries`, in order, booting the entry whose id is `default_id` unless
/// grubenv says otherwise, after showing the menu for `timeout` seconds.
pub fn generate(entries: &[MenuEntrySpec], default_id: &str, timeout: u32) -> String {
    let mut out = String::new();
    out.push_str(
        "# grub.cfg of the multiboot partition, written by the deployer.\n\
         # Boots grubenv's next_entry once; else a trial entry while it has tries left\n\
         # (bootctl switch --try); else saved_entry; else the default below.\n\
         if [ -s $prefix/grubenv ]; then\n\
         \x20 load_env\n\
         fi\n\
         if [ \"${saved_entry}\" ]; then\n\
         \x20 set default=\"${saved_entry}\"\n\
         else\n",
    );
    let _ = writeln!(out, "  set default={}", quote(default_id));
    out.push_str(
        "fi\n\
         if [ \"${next_entry}\" ]; then\n\
         \x20 set default=\"${next_entry}\"\n\
         \x20 set next_entry=\n\
         \x20 save_env next_entry\n",
    );
    try_countdown(&mut out);
    let _ = writeln!(out, "fi\nset timeout={timeout}");
    out.push_str(
        "set timeout_style=menu\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n",
    );
    for entry in entries {
        out.push('\n');
        menu_entry(&mut out, entry);
    }
    out
}

/// The `elif` branch of a trial boot: while `mb_try_left` counts down from at most
/// [`MAX_TRIES`] to 0 the trial entry boots; after that the trial is over, its entry is
/// noted in `mb_try_failed` and the default boots. GRUB has no arithmetic: one comparison
/// per count.
fn try_countdown(out: &mut String) {
    let _ = write!(
        out,
        "elif [ \"${{{TRY_VARIABLE}}}\" ]; then\n  if [ \"${{{TRY_LEFT}}}\" = {MAX_TRIES} ]; then\n"
    );
    for left in (1..MAX_TRIES).rev() {
        let _ = write!(
            out,
            "    set {TRY_LEFT}={left}\n  elif [ \"${{{TRY_LEFT}}}\" = {left} ]; then\n"
        );
    }
    let _ = write!(
        out,
        "    set {TRY_LEFT}=0\n  else\n\
         \x20   set {TRY_FAILED}=\"${{{TRY_VARIABLE}}}\"\n\
         \x20   set {TRY_VARIABLE}=\n\
         \x20   set {TRY_LEFT}=\n\
         \x20 fi\n\
         \x20 if [ \"${{{TRY_VARIABLE}}}\" ]; then\n\
         \x20   set default=\"${{{TRY_VARIABLE}}}\"\n\
         \x20 fi\n\
         \x20 save_env {TRY_VARIABLE} {TRY_LEFT} {TRY_FAILED}\n"
    );
}

fn menu_entry(out: &mut String, entry: &MenuEntrySpec) {
    let _ = writeln!(
        out,
        "menuentry --id={} --class os -- {} {{",
        quote(&entry.id),
        quote(&entry.title)
    );
    // GRUB records what it booted, so that the booted image can tell whether GRUB could
    // write grubenv (a one-shot or a trial depends on it).
    let _ = writeln!(out, "\tset {BOOT_STAMP}={}", quote(&entry.id));
    let _ = writeln!(out, "\tsave_env {BOOT_STAMP}");
    out.push_str("\tinsmod part_gpt\n\tinsmod ext2\n\tinsmod xfs\n");
    for module in &entry.modules {
        let _ = writeln!(out, "\tinsmod {module}");
    }
    out.push_str("\tsearch --no-floppy --fs-uuid --set=root");
    if let Some(hint) = &entry.search_hint {
        let _ = write!(out, " --hint={}", quote(hint));
    }
    let _ = writeln!(out, " {}", quote(&entry.search_uuid));
    let _ = write!(
        out,
        "\tlinux {} {} ro",
        quote(&entry.kernel_path),
        quote(&format!("root=UUID={}", entry.root_uuid))
    );
    for word in kernel_words(&entry.kernel_params) {
        out.push(' ');
        out.push_str(&quote(word));
    }
    out.push('\n');
    if let Some(initrd) = &entry.initrd_path {
        let _ = writeln!(out, "\tinitrd {}", quote(initrd));
    }
    out.push_str("}\n");
}

/// The kernel parameters as the words GRUB passes on: split where the kernel's own command
/// line parser splits (`isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`).
pub(crate) fn kernel_words(params: &str) -> impl Iterator<Item = &str> {
    params
        .split([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .filter(|word| !word.is_empty())
}

#[cfg(test)]
mod tests {
    use e2e::grubcfg::script_check;
    use shared::grubcfg::{parse, quote, ItemKind, Menu, MenuItem};

    use super::*;

    const ROOT_A: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
    const ROOT_B: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";
    const ROOT_C: &str = "0f3a4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b";
    const BOOT_C: &str = "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4";

    fn entry(name: &str, root: &str, params: &str) -> MenuEntrySpec {
        MenuEntrySpec {
            id: format!("multiboot-{name}"),
            title: format!("Image {name}"),
            search_uuid: root.to_owned(),
            modules: Vec::new(),
            search_hint: None,
            kernel_path: "/boot/vmlinuz-6.1.0-56-amd64".to_owned(),
            initrd_path: Some("/boot/initrd.img-6.1.0-56-amd64".to_owned()),
            root_uuid: root.to_owned(),
            kernel_params: params.to_owned(),
        }
    }

    fn separate_boot(name: &str) -> MenuEntrySpec {
        MenuEntrySpec {
            search_uuid: BOOT_C.to_owned(),
            kernel_path: "/vmlinuz-5.14.0-362.el9.x86_64".to_owned(),
            initrd_path: Some("/initramfs-5.14.0-362.el9.x86_64.img".to_owned()),
            ..entry(name, ROOT_C, "console=ttyS0,115200")
        }
    }

    fn two() -> Vec<MenuEntrySpec> {
        vec![
            entry("alpha", ROOT_A, "console=ttyS0,115200 quiet"),
            entry("beta", ROOT_B, ""),
        ]
    }

    fn three() -> Vec<MenuEntrySpec> {
        let mut entries = two();
        entries.push(separate_boot("gamma"));
        entries
    }

    fn kernel(item: &MenuItem) -> (Option<&str>, Option<&str>) {
        (item.kernel(), item.root_uuid())
    }

    fn body(item: &MenuItem) -> &str {
        match &item.kind {
            ItemKind::Entry { body, .. } => body,
            ItemKind::Submenu { .. } => panic!("{} is a submenu", item.title),
        }
    }

    /// The menu parses back to exactly the specs, and its default is `default_id`'s entry.
    fn assert_round_trip(entries: &[MenuEntrySpec], default_id: &str) -> Menu {
        let text = generate(entries, default_id, 5);
        let menu = parse(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        assert_eq!(menu.items.len(), entries.len(), "{text}");
        for (item, spec) in menu.items.iter().zip(entries) {
            assert_eq!(item.title, spec.title);
            assert_eq!(item.id.as_deref(), Some(spec.id.as_str()));
            assert_eq!(item.classes, ["os"]);
            assert_eq!(
                kernel(item),
                (
                    Some(spec.kernel_path.as_str()),
                    Some(spec.root_uuid.as_str())
                )
            );
            let hint = spec
                .search_hint
                .as_ref()
                .map(|hint| format!("--hint={} ", quote(hint)))
                .unwrap_or_default();
            let search = format!(
                "\tsearch --no-floppy --fs-uuid --set=root {hint}{}\n",
                quote(&spec.search_uuid)
            );
            assert!(body(item).contains(&search), "{}", body(item));
            let mut linux = format!(
                "\tlinux {} {} ro",
                quote(&spec.kernel_path),
                quote(&format!("root=UUID={}", spec.root_uuid))
            );
            for word in kernel_words(&spec.kernel_params) {
                linux += &format!(" {}", quote(word));
            }
            assert!(body(item).contains(&(linux + "\n")), "{}", body(item));
            let initrd = spec
                .initrd_path
                .as_ref()
                .map(|path| format!("\tinitrd {}\n", quote(path)));
            assert_eq!(
                initrd
                    .as_ref()
                    .map(|line| body(item).contains(line.as_str())),
                initrd.as_ref().map(|_| true)
            );
            assert_eq!(body(item).contains("\tinitrd "), initrd.is_some());
        }
        assert!(menu.loads_env && menu.reads_saved_entry && menu.reads_next_entry);
        let literal: Vec<&str> = menu
            .defaults
            .iter()
            .filter(|d| d.literal)
            .map(|d| d.value.as_str())
            .collect();
        assert_eq!(literal, [default_id], "the fallback is the default id");
        let want = entries.iter().position(|e| e.id == default_id).unwrap();
        assert_eq!(
            menu.resolve(default_id).map(|found| found.path),
            Some(vec![want])
        );
        menu
    }

    #[test]
    fn two_entries_parse_back() {
        assert_round_trip(&two(), "multiboot-alpha");
        assert_round_trip(&two(), "multiboot-beta");
    }

    #[test]
    fn three_entries_parse_back() {
        for default in ["multiboot-alpha", "multiboot-beta", "multiboot-gamma"] {
            assert_round_trip(&three(), default);
        }
    }

    #[test]
    fn grub_script_check_accepts_the_output() {
        script_check(&generate(&two(), "multiboot-alpha", 5));
        script_check(&generate(&three(), "multiboot-gamma", 5));
        script_check(&generate(&[], "multiboot-alpha", 5));
    }

    #[test]
    fn bareon_image_names_give_ids_and_titles_that_parse_back() {
        let names = [
            "centos 7.1",
            "ubuntu 14.04",
            "http://10.0.0.1:8080/images/ubuntu.img?x=1&y=$2",
            "it's \"quoted\" $HOME ${x} `id`",
            "Ünïcödé 日本",
            "centos",
        ];
        let ids = crate::plan::grub_menu_ids(names);
        let entries: Vec<MenuEntrySpec> = names
            .iter()
            .zip(&ids)
            .map(|(name, id)| MenuEntrySpec {
                id: id.clone(),
                title: (*name).to_owned(),
                ..entry("x", ROOT_A, "")
            })
            .collect();
        let text = generate(&entries, &ids[3], 5);
        script_check(&text);
        let menu = assert_round_trip(&entries, &ids[3]);
        let titles: Vec<&str> = menu.items.iter().map(|item| item.title.as_str()).collect();
        assert_eq!(titles, names);
        assert_eq!(ids[5], "multiboot-centos");
    }

    #[test]
    fn hostile_strings_stay_data() {
        let nasty = "a'b\"c$d\\e;f{g}h";
        let entries = vec![
            MenuEntrySpec {
                id: nasty.to_owned(),
                title: format!("{nasty}\n}}\nmenuentry x {{ reboot; }}"),
                kernel_path: format!("/boot/vmlinuz-{nasty}"),
                initrd_path: Some(format!("/boot/initrd.img-{nasty} $(reboot)")),
                root_uuid: format!("{nasty}\nreboot"),
                search_uuid: "${root}'".to_owned(),
                modules: Vec::new(),
                search_hint: None,
                kernel_params: format!("{nasty} $(reboot)\nreboot; ' \" }} {{ \\"),
            },
            MenuEntrySpec {
                id: "--class".to_owned(),
                title: "--id".to_owned(),
                ..entry("x", ROOT_B, "-- --id -x")
            },
            MenuEntrySpec {
                id: "-x".to_owned(),
                title: "--".to_owned(),
                ..entry("y", ROOT_A, "")
            },
        ];
        let text = generate(&entries, nasty, 5);
        script_check(&text);
        let menu = assert_round_trip(&entries, nasty);
        assert_eq!(
            menu.items[0].title,
            "a'b\"c$d\\e;f{g}h\n}\nmenuentry x { reboot; }"
        );
        assert_eq!(menu.items[0].id.as_deref(), Some(nasty));
        assert_eq!(
            kernel(&menu.items[0]).1,
            Some("a'b\"c$d\\e;f{g}h\nreboot"),
            "root=UUID= keeps its newline"
        );
        let words: Vec<&str> = kernel_words(&entries[0].kernel_params).collect();
        assert_eq!(
            words,
            [nasty, "$(reboot)", "reboot;", "'", "\"", "}", "{", "\\"]
        );
        // Each word reads back exactly as one GRUB word.
        for word in words {
            let menu = parse(&format!("set default={}\n", quote(word))).unwrap();
            assert_eq!(menu.defaults[0].value, word);
        }
        assert_eq!(
            (menu.items[1].title.as_str(), menu.items[1].id.as_deref()),
            ("--id", Some("--class"))
        );
        assert_eq!(
            (menu.items[2].title.as_str(), menu.items[2].id.as_deref()),
            ("--", Some("-x"))
        );
        assert_eq!(menu.resolve("-x").map(|e| e.path), Some(vec![2]));
    }

    #[test]
    fn the_menu_shows_for_the_timeout_given() {
        for timeout in [0, 5, 3600] {
            let text = generate(&two(), "multiboot-alpha", timeout);
            assert!(
                text.contains(&format!(
                    "\nset timeout={timeout}\nset timeout_style=menu\n"
                )),
                "{text}"
            );
            script_check(&text);
        }
    }

    #[test]
    fn kernel_params_are_split_into_quoted_words() {
        let spec = entry("a", ROOT_A, "  console=ttyS0,115200\tquiet\n\x0bsplash \r");
        let text = generate(&[spec], "multiboot-a", 5);
        assert!(
            text.contains(&format!(
                "\tlinux '/boot/vmlinuz-6.1.0-56-amd64' 'root=UUID={ROOT_A}' ro 'console=ttyS0,115200' 'quiet' 'splash'\n"
            )),
            "{text}"
        );
        let bare = generate(&[entry("b", ROOT_B, " \n ")], "multiboot-b", 5);
        assert!(bare.contains(&format!(
            "\tlinux '/boot/vmlinuz-6.1.0-56-amd64' 'root=UUID={ROOT_B}' ro\n"
        )));
    }

    #[test]
    fn separate_boot_partition_entry() {
        let entries = three();
        let menu = assert_round_trip(&entries, "multiboot-alpha");
        let gamma = &menu.items[2];
        assert_eq!(
            kernel(gamma),
            (Some("/vmlinuz-5.14.0-362.el9.x86_64"), Some(ROOT_C))
        );
        let body = body(gamma);
        assert!(body.contains(&format!("--set=root '{BOOT_C}'\n")), "{body}");
        assert!(body.contains("\tinitrd '/initramfs-5.14.0-362.el9.x86_64.img'\n"));
        assert!(!body.contains(&format!("--set=root '{ROOT_C}'")));
    }

    #[test]
    fn entry_without_initrd_has_no_initrd_line() {
        let spec = MenuEntrySpec {
            initrd_path: None,
            ..entry("a", ROOT_A, "")
        };
        let text = generate(std::slice::from_ref(&spec), "multiboot-a", 5);
        assert!(!text.contains("initrd"), "{text}");
        assert_round_trip(&[spec], "multiboot-a");
        script_check(&text);
    }

    /// What bootctl keys on (bootctl/src/view.rs): a `default` that reads `${saved_entry}`
    /// makes grubenv's saved_entry the persistent switch; `load_env` and `${next_entry}`
    /// make one-shot boots possible.
    #[test]
    fn bootctl_switches_it_through_grubenv() {
        let menu = parse(&generate(&three(), "multiboot-beta", 5)).unwrap();
        assert!(
            menu.reads_saved_entry,
            "persistent switch through saved_entry"
        );
        assert!(
            menu.loads_env && menu.reads_next_entry,
            "--once through next_entry"
        );
        let values: Vec<(&str, bool)> = menu
            .defaults
            .iter()
            .map(|d| (d.value.as_str(), d.literal))
            .collect();
        assert_eq!(
            values,
            [
                ("${saved_entry}", false),
                ("multiboot-beta", true),
                ("${next_entry}", false),
                ("${mb_try}", false),
            ]
        );
        assert!(menu.reads_try, "--try through mb_try");
        assert!(
            menu.entries().iter().all(|entry| entry.item.stamps_boot()),
            "every entry records that GRUB booted it"
        );
    }

    #[test]
    fn exact_text_of_a_small_case() {
        let entries = [
            MenuEntrySpec {
                id: "multiboot-alpha".to_owned(),
                title: "Debian GNU/Linux 12 (bookworm)".to_owned(),
                search_uuid: ROOT_A.to_owned(),
                modules: Vec::new(),
                search_hint: None,
                kernel_path: "/boot/vmlinuz-6.1.0-56-amd64".to_owned(),
                initrd_path: Some("/boot/initrd.img-6.1.0-56-amd64".to_owned()),
                root_uuid: ROOT_A.to_owned(),
                kernel_params: "console=ttyS0,115200 quiet".to_owned(),
            },
            MenuEntrySpec {
                id: "multiboot-beta".to_owned(),
                title: "Rocky Linux 9.3 (Blue Onyx)".to_owned(),
                search_uuid: BOOT_C.to_owned(),
                modules: vec!["lvm"],
                search_hint: Some("lvm/rl-root".to_owned()),
                kernel_path: "/vmlinuz-5.14.0-362.8.1.el9_3.x86_64".to_owned(),
                initrd_path: None,
                root_uuid: ROOT_B.to_owned(),
                kernel_params: "rd.lvm.lv=rl/root".to_owned(),
            },
        ];
        let want = r#"# grub.cfg of the multiboot partition, written by the deployer.
# Boots grubenv's next_entry once; else a trial entry while it has tries left
# (bootctl switch --try); else saved_entry; else the default below.
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${saved_entry}" ]; then
  set default="${saved_entry}"
else
  set default='multiboot-beta'
fi
if [ "${next_entry}" ]; then
  set default="${next_entry}"
  set next_entry=
  save_env next_entry
elif [ "${mb_try}" ]; then
  if [ "${mb_try_left}" = 9 ]; then
    set mb_try_left=8
  elif [ "${mb_try_left}" = 8 ]; then
    set mb_try_left=7
  elif [ "${mb_try_left}" = 7 ]; then
    set mb_try_left=6
  elif [ "${mb_try_left}" = 6 ]; then
    set mb_try_left=5
  elif [ "${mb_try_left}" = 5 ]; then
    set mb_try_left=4
  elif [ "${mb_try_left}" = 4 ]; then
    set mb_try_left=3
  elif [ "${mb_try_left}" = 3 ]; then
    set mb_try_left=2
  elif [ "${mb_try_left}" = 2 ]; then
    set mb_try_left=1
  elif [ "${mb_try_left}" = 1 ]; then
    set mb_try_left=0
  else
    set mb_try_failed="${mb_try}"
    set mb_try=
    set mb_try_left=
  fi
  if [ "${mb_try}" ]; then
    set default="${mb_try}"
  fi
  save_env mb_try mb_try_left mb_try_failed
fi
set timeout=5
set timeout_style=menu
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial

menuentry --id='multiboot-alpha' --class os -- 'Debian GNU/Linux 12 (bookworm)' {
	set mb_booted='multiboot-alpha'
	save_env mb_booted
	insmod part_gpt
	insmod ext2
	insmod xfs
	search --no-floppy --fs-uuid --set=root '2abf123d-d52f-4f62-a351-7358221bc51f'
	linux '/boot/vmlinuz-6.1.0-56-amd64' 'root=UUID=2abf123d-d52f-4f62-a351-7358221bc51f' ro 'console=ttyS0,115200' 'quiet'
	initrd '/boot/initrd.img-6.1.0-56-amd64'
}

menuentry --id='multiboot-beta' --class os -- 'Rocky Linux 9.3 (Blue Onyx)' {
	set mb_booted='multiboot-beta'
	save_env mb_booted
	insmod part_gpt
	insmod ext2
	insmod xfs
	insmod lvm
	search --no-floppy --fs-uuid --set=root --hint='lvm/rl-root' '9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4'
	linux '/vmlinuz-5.14.0-362.8.1.el9_3.x86_64' 'root=UUID=688c5f1e-dc46-4aca-a90e-be21ba8aa3e2' ro 'rd.lvm.lv=rl/root'
}
"#;
        assert_eq!(generate(&entries, "multiboot-beta", 5), want);
        assert_round_trip(&entries, "multiboot-beta");
        script_check(want);
    }
}
