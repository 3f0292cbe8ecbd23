//! Boot files shared by the unit tests of the pure modules.

use shared::bootinfo::BootInfo;
use shared::grubcfg::{self, Menu};
use shared::grubenv::GrubEnv;

use crate::view::{self, BootFiles, View};

pub const ROOT_A: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
pub const ROOT_B: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";

/// A grub-mkconfig-like config: a literal default inside Debian's next_entry block, an
/// "Advanced options" submenu after the first image (so the second image is entry 2).
pub fn fixed_cfg() -> String {
    format!(
        r#"if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${{next_entry}}" ] ; then
   set default="${{next_entry}}"
   set next_entry=
   save_env next_entry
else
   set default="0"
fi
set timeout=1
menuentry 'CentOS Linux' --class centos $menuentry_id_option 'img-centos' {{
	linux /boot/vmlinuz root=UUID={ROOT_A} ro
}}
submenu 'Advanced options for CentOS Linux' $menuentry_id_option 'img-centos-advanced' {{
	menuentry 'CentOS Linux (recovery mode)' $menuentry_id_option 'img-centos-recovery' {{
		linux /boot/vmlinuz root=UUID={ROOT_A} ro single
	}}
}}
menuentry 'Ubuntu 14.04' --class ubuntu {{
	linux /boot/vmlinuz root=UUID={ROOT_B} ro
}}
"#
    )
}

/// grub.cfg as Bareon's `_generate_boot_info` writes it on the multiboot partition's
/// `boot/grub2`: no grubenv, no ids, a literal `set default=0` last, with no newline.
pub fn bareon_cfg() -> String {
    let entry = |name: &str, uuid: &str| {
        format!(
            "\n    menuentry '{name}'{{\n    search --no-floppy --fs-uuid --set=root {uuid}\n    \
             linux /boot/vmlinuz root=UUID={uuid} ro \n    initrd /boot/initrd.img\n    }}\n    "
        )
    };
    format!(
        "\n    set timeout=1\n    insmod part_gpt\n    insmod ext2\n        {}{}set default=0",
        entry("CentOS Linux 7 (Core) (on /dev/sda3)", ROOT_A),
        entry("Ubuntu 14.04 (on /dev/sda4)", ROOT_B)
    )
}

/// Reads the default from grubenv's saved_entry.
pub fn saved_entry_cfg() -> String {
    fixed_cfg().replace(r#"set default="0""#, r#"set default="${saved_entry}""#)
}

/// The deployer's kind of grub.cfg: grubenv decides, a trial counts down, and every entry
/// records its boot (the countdown is cut short: bootctl only needs to see `${mb_try}`).
pub fn trial_cfg() -> String {
    format!(
        r#"if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${{saved_entry}}" ]; then
  set default="${{saved_entry}}"
else
  set default='multiboot-centos'
fi
if [ "${{next_entry}}" ]; then
  set default="${{next_entry}}"
  set next_entry=
  save_env next_entry
elif [ "${{mb_try}}" ]; then
  if [ "${{mb_try_left}}" = 1 ]; then
    set mb_try_left=0
  else
    set mb_try_failed="${{mb_try}}"
    set mb_try=
    set mb_try_left=
  fi
  if [ "${{mb_try}}" ]; then
    set default="${{mb_try}}"
  fi
  save_env mb_try mb_try_left mb_try_failed
fi
menuentry --id='multiboot-centos' -- 'CentOS Linux' {{
	set mb_booted='multiboot-centos'
	save_env mb_booted
	linux '/boot/vmlinuz-3.10' 'root=UUID={ROOT_A}' ro
}}
menuentry --id='multiboot-ubuntu' -- 'Ubuntu 14.04' {{
	set mb_booted='multiboot-ubuntu'
	save_env mb_booted
	linux '/boot/vmlinuz-4.4' 'root=UUID={ROOT_B}' ro
}}
"#
    )
}

/// [`boot_info`] for [`trial_cfg`]: ubuntu is entry 1 there.
pub fn trial_boot_info() -> BootInfo {
    let mut info = boot_info();
    info.elements[1].grub_id = 1;
    info
}

/// A grubenv holding `pairs`.
pub fn env(pairs: &[(&str, &str)]) -> GrubEnv {
    let mut env = GrubEnv::new();
    for (key, value) in pairs {
        env.set(key, value).expect("fixture grubenv value fits");
    }
    env
}

pub fn boot_info() -> BootInfo {
    BootInfo::from_json(&format!(
        r#"{{
  "elements": [
    {{"grub_id": 0, "image_name": "centos-7.1.1503", "os_id": "centos", "image_uuid": "2a86b00d-cfa4-49d9-a008-13c7940ed02d",
      "boot_name": "CentOS Linux", "root_uuid": "{ROOT_A}", "name": "centos"}},
    {{"grub_id": 2, "image_name": "ubuntu", "os_id": "ubuntu", "image_uuid": "157636d8-62ad-499d-aecc-2ea4917ee396",
      "boot_name": "Ubuntu 14.04", "root_uuid": "{ROOT_B}"}}
  ],
  "current_element": 0,
  "multiboot_partition": "3b360901-7896-48d4-a14d-fc35e1582c74"
}}"#
    ))
    .expect("fixture boot-info.json parses")
}

pub fn files(cfg: String, env: Option<GrubEnv>) -> BootFiles {
    BootFiles {
        grub_cfg: cfg,
        grubenv: env,
        boot_info: Some(boot_info()),
    }
}

pub fn load(files: &BootFiles, running: Option<&str>) -> (Menu, View) {
    let menu = grubcfg::parse(&files.grub_cfg).expect("fixture grub.cfg parses");
    let view = view::build(files, &menu, running);
    (menu, view)
}
