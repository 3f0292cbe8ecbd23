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

/// Reads the default from grubenv's saved_entry.
pub fn saved_entry_cfg() -> String {
    fixed_cfg().replace(r#"set default="0""#, r#"set default="${saved_entry}""#)
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
