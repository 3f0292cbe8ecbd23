use e2e::grubcfg::script_check;
use shared::bootinfo::BootInfo;
use shared::grubcfg;

use super::*;
use crate::exit::code_of;

const ROOT_A: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
const ROOT_B: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";
const BOOT_A: &str = "9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4";

fn image(root: &str, names: &[&str]) -> ImageKernels {
    ImageKernels {
        root_uuid: root.to_owned(),
        boot_dir: "/boot".to_owned(),
        boot_names: names.iter().map(|name| (*name).to_owned()).collect(),
    }
}

fn run(text: &str, info: Option<&BootInfo>, image: &ImageKernels) -> anyhow::Result<Refresh> {
    let menu = grubcfg::parse(text).unwrap_or_else(|err| panic!("{err}\n{text}"));
    plan(text, &menu, info, image)
}

/// The edited text, checked by the real grub-script-check.
fn edited(refresh: &Refresh) -> &str {
    let text = refresh.grub_cfg.as_deref().expect("grub.cfg changes");
    script_check(text);
    text
}

fn paths(kernel: &str, initrd: Option<&str>) -> BootPaths {
    BootPaths {
        kernel: kernel.to_owned(),
        initrd: initrd.map(str::to_owned),
    }
}

/// What each entry of the image becomes: (index, old, new).
fn outcome(refresh: &Refresh) -> Vec<(String, BootPaths, BootPaths)> {
    refresh
        .entries
        .iter()
        .map(|entry| {
            (
                grubcfg::address(&entry.path),
                entry.old.clone(),
                entry.new.clone(),
            )
        })
        .collect()
}

/// An entry as the deployer's grub.cfg writes it (deployer/src/grubcfg_gen.rs): every word
/// that comes from the image quoted.
fn deployer_entry(
    name: &str,
    search: &str,
    root: &str,
    kernel: &str,
    initrd: Option<&str>,
) -> String {
    let initrd = initrd.map_or(String::new(), |path| format!("\tinitrd '{path}'\n"));
    format!(
        "menuentry --id='multiboot-{name}' --class os -- 'Image {name}' {{\n\
         \tset mb_booted='multiboot-{name}'\n\
         \tsave_env mb_booted\n\
         \tinsmod part_gpt\n\tinsmod ext2\n\tinsmod xfs\n\
         \tsearch --no-floppy --fs-uuid --set=root '{search}'\n\
         \tlinux '{kernel}' 'root=UUID={root}' ro 'console=ttyS0,115200' 'quiet'\n\
         {initrd}}}\n"
    )
}

fn deployer_cfg(entries: &[String]) -> String {
    format!(
        "if [ -s $prefix/grubenv ]; then\n  load_env\nfi\n\
         if [ \"${{saved_entry}}\" ]; then\n  set default=\"${{saved_entry}}\"\n\
         else\n  set default='multiboot-alpha'\nfi\nset timeout=5\n\n{}",
        entries.join("\n")
    )
}

fn boot_info(elements: &[(u32, &str, &str)]) -> BootInfo {
    let elements: Vec<String> = elements
        .iter()
        .map(|(grub_id, name, root)| {
            format!(
                r#"{{"grub_id": {grub_id}, "image_name": "{name}", "os_id": "debian",
                "image_uuid": "157636d8-62ad-499d-aecc-2ea4917ee396", "boot_name": "{name}",
                "root_uuid": "{root}"}}"#
            )
        })
        .collect();
    BootInfo::from_json(&format!(
        r#"{{"elements": [{}], "current_element": 0,
            "multiboot_partition": "3b360901-7896-48d4-a14d-fc35e1582c74"}}"#,
        elements.join(",")
    ))
    .expect("boot-info.json parses")
}

#[test]
fn a_deployer_config_gets_the_new_kernel_in_the_running_images_entry_only() {
    let beta = deployer_entry(
        "beta",
        ROOT_B,
        ROOT_B,
        "/boot/vmlinuz-6.1.0-9-amd64",
        Some("/boot/initrd.img-6.1.0-9-amd64"),
    );
    let text = deployer_cfg(&[
        deployer_entry(
            "alpha",
            ROOT_A,
            ROOT_A,
            "/boot/vmlinuz-6.1.0-9-amd64",
            Some("/boot/initrd.img-6.1.0-9-amd64"),
        ),
        beta.clone(),
    ]);
    let info = boot_info(&[(0, "alpha", ROOT_A), (1, "beta", ROOT_B)]);
    let names = [
        "vmlinuz-6.1.0-10-amd64",
        "initrd.img-6.1.0-10-amd64",
        "config-6.1.0-10-amd64",
        "System.map-6.1.0-10-amd64",
    ];
    let refresh = run(&text, Some(&info), &image(ROOT_A, &names)).unwrap();
    assert_eq!(refresh.image_name.as_deref(), Some("alpha"));
    assert_eq!(refresh.kernel.version, "6.1.0-10-amd64");
    let new = edited(&refresh);
    assert_eq!(
        new,
        text.replace(
            "'/boot/vmlinuz-6.1.0-9-amd64' 'root=UUID=2abf",
            "'/boot/vmlinuz-6.1.0-10-amd64' 'root=UUID=2abf"
        )
        .replacen(
            "initrd '/boot/initrd.img-6.1.0-9-amd64'",
            "initrd '/boot/initrd.img-6.1.0-10-amd64'",
            1
        )
    );
    assert!(new.ends_with(&beta), "beta's entry is untouched:\n{new}");
    assert_eq!(
        outcome(&refresh),
        [(
            "0".to_owned(),
            paths(
                "/boot/vmlinuz-6.1.0-9-amd64",
                Some("/boot/initrd.img-6.1.0-9-amd64")
            ),
            paths(
                "/boot/vmlinuz-6.1.0-10-amd64",
                Some("/boot/initrd.img-6.1.0-10-amd64")
            ),
        )]
    );

    let again = run(new, Some(&info), &image(ROOT_A, &names)).unwrap();
    assert_eq!(again.grub_cfg, None, "up to date");
    assert!(!again.entries[0].changed());
}

/// grub-mkconfig with os-prober: the image's newest kernel on top, then a submenu listing
/// each kernel with its recovery entry; another image after it.
fn osprober_cfg() -> String {
    let entry = |title: &str, id: &str, version: &str, extra: &str, indent: &str| {
        format!(
            "{indent}menuentry '{title}' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{\n\
             {indent}\tinsmod part_gpt\n\
             {indent}\tinsmod ext2\n\
             {indent}\tsearch --no-floppy --fs-uuid --set=root {ROOT_A}\n\
             {indent}\techo 'Loading Linux {version} ...'\n\
             {indent}\tlinux /boot/vmlinuz-{version} root=UUID={ROOT_A} ro {extra}console=ttyS0\n\
             {indent}\techo 'Loading initial ramdisk ...'\n\
             {indent}\tinitrd /boot/initrd.img-{version}\n\
             {indent}}}\n"
        )
    };
    let mut cfg = String::from(
        "set default=\"0\"\nif [ x\"${feature_menuentry_id}\" = xy ]; then\n  menuentry_id_option=\"--id\"\n\
         else\n  menuentry_id_option=\"\"\nfi\nexport menuentry_id_option\n",
    );
    cfg += &entry(
        "Debian GNU/Linux",
        "gnulinux-simple-a",
        "6.1.0-9-amd64",
        "",
        "",
    );
    cfg += "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-a' {\n";
    for version in ["6.1.0-9-amd64", "6.1.0-7-amd64"] {
        cfg += &entry(
            &format!("Debian GNU/Linux, with Linux {version}"),
            &format!("gnulinux-{version}-advanced-a"),
            version,
            "",
            "\t",
        );
        cfg += &entry(
            &format!("Debian GNU/Linux, with Linux {version} (recovery mode)"),
            &format!("gnulinux-{version}-recovery-a"),
            version,
            "single ",
            "\t",
        );
    }
    cfg += "}\n";
    cfg += &format!(
        "menuentry 'Other (on /dev/vda4)' --class gnu-linux --class gnu --class os $menuentry_id_option 'osprober-b' {{\n\
         \tlinux /boot/vmlinuz-6.1.0-7-amd64 root=UUID={ROOT_B} ro\n\
         \tinitrd /boot/initrd.img-6.1.0-7-amd64\n}}\n"
    );
    cfg
}

#[test]
fn an_osprober_config_keeps_the_kernels_still_there_and_moves_the_others() {
    let text = osprober_cfg();
    script_check(&text);
    // 6.1.0-7 was removed, 6.1.0-10 installed, 6.1.0-9 stays.
    let names = [
        "vmlinuz-6.1.0-9-amd64",
        "initrd.img-6.1.0-9-amd64",
        "vmlinuz-6.1.0-10-amd64",
        "initrd.img-6.1.0-10-amd64",
    ];
    let refresh = run(&text, None, &image(ROOT_A, &names)).unwrap();
    let old = |v: &str| {
        paths(
            &format!("/boot/vmlinuz-{v}"),
            Some(&format!("/boot/initrd.img-{v}")),
        )
    };
    let kept = |index: &str, v: &str| (index.to_owned(), old(v), old(v));
    let moved = |index: &str, v: &str| (index.to_owned(), old(v), old("6.1.0-10-amd64"));
    assert_eq!(
        outcome(&refresh),
        [
            moved("0", "6.1.0-9-amd64"),
            kept("1>0", "6.1.0-9-amd64"),
            kept("1>1", "6.1.0-9-amd64"),
            moved("1>2", "6.1.0-7-amd64"),
            moved("1>3", "6.1.0-7-amd64"),
        ]
    );
    assert!(
        refresh.entries[0].primary && refresh.entries.iter().filter(|e| e.primary).count() == 1
    );
    let new = edited(&refresh);
    let menu = grubcfg::parse(new).unwrap();
    let kernels: Vec<&str> = menu
        .entries()
        .iter()
        .map(|e| e.item.kernel().unwrap())
        .collect();
    assert_eq!(
        kernels,
        [
            "/boot/vmlinuz-6.1.0-10-amd64",
            "/boot/vmlinuz-6.1.0-9-amd64",
            "/boot/vmlinuz-6.1.0-9-amd64",
            "/boot/vmlinuz-6.1.0-10-amd64",
            "/boot/vmlinuz-6.1.0-10-amd64",
            "/boot/vmlinuz-6.1.0-7-amd64",
        ],
        "the other image keeps its 6.1.0-7"
    );
    assert!(
        new.contains("\t\tlinux '/boot/vmlinuz-6.1.0-10-amd64' root=UUID=2abf123d-d52f-4f62-a351-7358221bc51f ro single console=ttyS0\n"),
        "{new}"
    );
    assert_eq!(new.lines().count(), text.lines().count());
}

#[test]
fn boot_info_names_the_primary_entry_by_grub_id() {
    let text = osprober_cfg().replace("set default=\"0\"", "set default=\"1>0\"");
    // The image's own entry is the advanced 6.1.0-9 one (index 1>0 is not top level: the
    // element's grub_id 2 is the other image's entry, so the first entry of the root wins).
    let names = ["vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64"];
    let stale = boot_info(&[(2, "alpha", ROOT_A)]);
    let refresh = run(&text, Some(&stale), &image(ROOT_A, &names)).unwrap();
    assert!(refresh.entries[0].primary, "grub_id 2 boots another root");
    // A config whose entry 2 is the image's: that one is primary and gets the newest.
    let swapped = format!(
        "{}menuentry 'Alpha again' {{\n\tlinux /boot/vmlinuz-6.1.0-7-amd64 root=UUID={ROOT_A} ro\n\tinitrd /boot/initrd.img-6.1.0-7-amd64\n}}\n",
        osprober_cfg().replace(&format!("root=UUID={ROOT_B}"), "root=UUID=other")
    );
    let info = boot_info(&[(3, "alpha", ROOT_A)]);
    let names = [
        "vmlinuz-6.1.0-7-amd64",
        "initrd.img-6.1.0-7-amd64",
        "vmlinuz-6.1.0-9-amd64",
        "initrd.img-6.1.0-9-amd64",
        "vmlinuz-6.1.0-10-amd64",
        "initrd.img-6.1.0-10-amd64",
    ];
    let refresh = run(&swapped, Some(&info), &image(ROOT_A, &names)).unwrap();
    let primary: Vec<String> = refresh
        .entries
        .iter()
        .filter(|entry| entry.primary)
        .map(|entry| grubcfg::address(&entry.path))
        .collect();
    assert_eq!(primary, ["3"]);
    let changed: Vec<String> = refresh
        .entries
        .iter()
        .filter(|entry| entry.changed())
        .map(|entry| grubcfg::address(&entry.path))
        .collect();
    assert_eq!(changed, ["3"], "every other kernel is still there");
    assert!(edited(&refresh).contains("\tlinux '/boot/vmlinuz-6.1.0-10-amd64' root=UUID="));
}

#[test]
fn a_separate_boot_keeps_its_slash_prefix_and_red_hat_names() {
    let text = deployer_cfg(&[deployer_entry(
        "alpha",
        BOOT_A,
        ROOT_A,
        "/vmlinuz-5.14.0-362.el9.x86_64",
        Some("/initramfs-5.14.0-362.el9.x86_64.img"),
    )]);
    let names = [
        "vmlinuz-5.14.0-427.el9.x86_64",
        "initramfs-5.14.0-427.el9.x86_64.img",
        "initramfs-5.14.0-427.el9.x86_64kdump.img",
        "vmlinuz-0-rescue-0123456789abcdef",
        "initramfs-0-rescue-0123456789abcdef.img",
        "loader",
    ];
    let refresh = run(&text, None, &image(ROOT_A, &names)).unwrap();
    assert_eq!(
        outcome(&refresh)[0].2,
        paths(
            "/vmlinuz-5.14.0-427.el9.x86_64",
            Some("/initramfs-5.14.0-427.el9.x86_64.img")
        )
    );
    let new = edited(&refresh);
    assert!(
        new.contains("\tlinux '/vmlinuz-5.14.0-427.el9.x86_64' 'root=UUID=")
            && new.contains("\tinitrd '/initramfs-5.14.0-427.el9.x86_64.img'\n")
            && new.contains(&format!("--set=root '{BOOT_A}'")),
        "{new}"
    );
}

#[test]
fn microcode_stays_first_and_the_last_initrd_word_changes() {
    let text = format!(
        "menuentry 'Arch' {{\n\tlinux /boot/vmlinuz-6.6.1 root=UUID={ROOT_A} rw\n\
         \tinitrd /boot/intel-ucode.img /boot/amd-ucode.img /boot/initrd.img-6.6.1\n}}\n"
    );
    let names = [
        "vmlinuz-6.6.2",
        "initrd.img-6.6.2",
        "intel-ucode.img",
        "amd-ucode.img",
    ];
    let refresh = run(&text, None, &image(ROOT_A, &names)).unwrap();
    assert_eq!(
        edited(&refresh),
        format!(
            "menuentry 'Arch' {{\n\tlinux '/boot/vmlinuz-6.6.2' root=UUID={ROOT_A} rw\n\
             \tinitrd /boot/intel-ucode.img /boot/amd-ucode.img '/boot/initrd.img-6.6.2'\n}}\n"
        )
    );
}

#[test]
fn an_initrd_line_is_added_where_the_entry_had_none() {
    let text = format!(
        "submenu 'More' {{\n\tmenuentry 'Plain' {{\n\t\tlinux /boot/vmlinuz-1.0 root=UUID={ROOT_A} ro quiet\n\t}}\n}}\n\
         menuentry 'Inline' {{ linux /vmlinuz-1.0 root=UUID={ROOT_A}; echo booting; }}\n"
    );
    let names = ["vmlinuz-2.0", "initrd.img-2.0"];
    let refresh = run(&text, None, &image(ROOT_A, &names)).unwrap();
    assert_eq!(
        edited(&refresh),
        format!(
            "submenu 'More' {{\n\tmenuentry 'Plain' {{\n\t\tlinux '/boot/vmlinuz-2.0' root=UUID={ROOT_A} ro quiet\n\
             \t\tinitrd '/boot/initrd.img-2.0'\n\t}}\n}}\n\
             menuentry 'Inline' {{ linux '/vmlinuz-2.0' root=UUID={ROOT_A}\n\tinitrd '/initrd.img-2.0'; echo booting; }}\n"
        )
    );
}

#[test]
fn without_an_initrd_on_either_side_only_the_kernel_changes() {
    let text = format!("menuentry 'Tiny' {{\n\tlinux /boot/vmlinuz-1.0 root=UUID={ROOT_A}\n}}\n");
    let refresh = run(&text, None, &image(ROOT_A, &["vmlinuz-1.1"])).unwrap();
    assert_eq!(
        edited(&refresh),
        text.replace("/boot/vmlinuz-1.0", "'/boot/vmlinuz-1.1'")
    );
    assert_eq!(refresh.kernel.initrd, None);
}

#[test]
fn an_entry_with_an_initrd_is_refused_a_kernel_without_one() {
    let text = format!(
        "menuentry 'A' {{\n\tlinux /boot/vmlinuz-1.0 root=UUID={ROOT_A}\n\tinitrd /boot/initrd.img-1.0\n}}\n"
    );
    let err = run(&text, None, &image(ROOT_A, &["vmlinuz-1.1"])).unwrap_err();
    assert_eq!(code_of(&err), Code::Config);
    assert_eq!(
        err.to_string(),
        "entry 0 \"A\": it loads the initrd /boot/initrd.img-1.0 but vmlinuz-1.1 has none; \
         grub.cfg left unchanged"
    );
}

#[test]
fn an_entry_from_source_is_refused_unless_it_is_up_to_date() {
    let text = format!(
        "menuentry 'S' --source 'linux /boot/vmlinuz-1.0 root=UUID={ROOT_A}\ninitrd /boot/initrd.img-1.0'\n"
    );
    let names = ["vmlinuz-1.1", "initrd.img-1.1"];
    let err = run(&text, None, &image(ROOT_A, &names)).unwrap_err();
    assert_eq!(code_of(&err), Code::Config);
    assert!(
        err.to_string()
            .starts_with("entry 0 \"S\": it is defined by --source"),
        "{err}"
    );
    let names = ["vmlinuz-1.0", "initrd.img-1.0"];
    let refresh = run(&text, None, &image(ROOT_A, &names)).unwrap();
    assert_eq!(refresh.grub_cfg, None, "nothing to edit");
}

#[test]
fn a_kernel_path_with_a_variable_is_refused() {
    let text = format!("menuentry 'V' {{\n\tlinux $bootdir/vmlinuz-1.0 root=UUID={ROOT_A}\n}}\n");
    let err = run(&text, None, &image(ROOT_A, &["vmlinuz-1.1"])).unwrap_err();
    assert_eq!(code_of(&err), Code::Config);
    assert!(err.to_string().contains("expands a variable"), "{err}");
}

#[test]
fn an_image_off_the_menu_or_without_a_kernel_is_refused() {
    let text = osprober_cfg();
    let names = ["vmlinuz-6.1.0-10-amd64"];
    let err = run(
        &text,
        None,
        &image("0f3a4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b", &names),
    )
    .unwrap_err();
    assert_eq!(code_of(&err), Code::Target);
    assert_eq!(
        err.to_string(),
        "no entry of grub.cfg boots root=UUID=0f3a4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b: this image \
         is not on the menu"
    );
    for names in [
        &[][..],
        &["config-6.1.0-10-amd64", "grub", "vmlinuz-0-rescue-abc"],
    ] {
        let err = run(&text, None, &image(ROOT_A, names)).unwrap_err();
        assert_eq!(code_of(&err), Code::Config);
        assert_eq!(
            err.to_string(),
            "no kernel (vmlinuz-*) in /boot; grub.cfg left unchanged"
        );
    }
}

#[test]
fn root_uuids_match_whatever_their_case() {
    let text = osprober_cfg();
    let names = ["vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64"];
    let refresh = run(&text, None, &image(&ROOT_A.to_uppercase(), &names)).unwrap();
    assert_eq!(refresh.entries.len(), 5);
}

#[test]
fn an_edit_that_changes_more_than_the_boot_files_is_not_written() {
    let text = osprober_cfg();
    let names = ["vmlinuz-6.1.0-10-amd64", "initrd.img-6.1.0-10-amd64"];
    let refresh = run(&text, None, &image(ROOT_A, &names)).unwrap();
    let good = refresh.grub_cfg.clone().unwrap();
    let before = grubcfg::parse(&text).unwrap();
    check_edit(&before, &good, &refresh.entries, ROOT_A).unwrap();
    for bad in [
        good.replace("set default=\"0\"", "set default=\"2\""),
        good.replace("'Other (on /dev/vda4)'", "'Another'"),
        good.replacen(
            "initrd '/boot/initrd.img-6.1.0-10-amd64'",
            "initrd /boot/x",
            1,
        ),
        good.replacen("}\n", "}\nmenuentry 'Extra' { true; }\n", 1),
        good.clone() + "}",
    ] {
        let err = check_edit(&before, &bad, &refresh.entries, ROOT_A).unwrap_err();
        assert_eq!(code_of(&err), Code::Config);
        assert!(
            err.to_string().starts_with(
                "editing the entries of root=UUID=2abf123d-d52f-4f62-a351-7358221bc51f "
            ),
            "{err}"
        );
    }
}
