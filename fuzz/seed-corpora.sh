#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/TARGET/) with the repository's real inputs and the
# formats' samples from the unit tests. Run once before the first fuzzing run; the kept
# corpora already hold what the seeds contribute (after `cargo fuzz cmin`), so running it
# again only adds files that cmin removes. The grubenv seeds use the real grub-editenv
# (package grub-common, installed by scripts/setup).
set -euo pipefail
cd "$(dirname "$0")"
corpus=corpus
mkdir -p "$corpus"/{grubcfg,grubenv,bootinfo,provision}

# grub.cfg: real grub-mkconfig output, the deployer's layout and the addressing sample of
# the unit tests; `\xff` separates a value for quote()/set_fixed_default().
cp ../shared/tests/data/grub/*.cfg "$corpus/grubcfg/"
cat >"$corpus/grubcfg/deployer-layout.cfg" <<'EOF'
# grub.cfg of the multiboot partition, written by the deployer.
# Boots grubenv's next_entry once, else its saved_entry, else the default below.
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${next_entry}" ]; then
  set default="${next_entry}"
  set next_entry=
  save_env next_entry
elif [ "${saved_entry}" ]; then
  set default="${saved_entry}"
else
  set default='multiboot-alpha'
fi
set timeout=5
serial --unit=0 --speed=115200

menuentry --id='multiboot-alpha' --class os -- 'Image alpha' {
	insmod part_gpt
	search --no-floppy --fs-uuid --set=root '2abf123d-d52f-4f62-a351-7358221bc51f'
	linux '/boot/vmlinuz-6.1.0-56-amd64' 'root=UUID=2abf123d-d52f-4f62-a351-7358221bc51f' ro 'quiet'
	initrd '/boot/initrd.img-6.1.0-56-amd64'
}

menuentry --id='multiboot-it'\''s' --class os -- 'Image it'\''s' {
	linux '/vmlinuz' 'root=UUID=688c5f1e-dc46-4aca-a90e-be21ba8aa3e2' ro
}
EOF
{
  printf '%s\n' "set default=0" "if [ \"\${next_entry}\" ]; then set default=\"\${next_entry}\"; else default=\"2\"; fi" \
    "menuentry 'A' --id a { linux /a }" \
    "submenu 'Advanced' --id adv {" \
    "    menuentry 'A1' --id a1 { linux /a1 root=UUID=x-1 }" \
    "    menuentry 'A2' \$menuentry_id_option a2 { linux16 /a2 }" \
    "}" \
    "function f { set default=\"\${saved_entry}\"; }" \
    "for k in a b; do menuentry \"K \$k\" { true; }; done" \
    "menuentry --source 'linux /src root=UUID=s-1' 'T8'"
  printf '\xffAdvanced>A2'
} >"$corpus/grubcfg/addressing-with-value.cfg"
printf "menuentry 'x>>y' { true; }\n\xffit's a \$var\\\\ {}\n" >"$corpus/grubcfg/quote-value.cfg"

# grubenv: blocks written by grub-editenv, and one followed by operations (tag, length,
# name[, length, value]).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grub-editenv "$tmp/empty" create
cp "$tmp/empty" "$corpus/grubenv/editenv-create"
cp "$tmp/empty" "$tmp/set"
grub-editenv "$tmp/set" set saved_entry=multiboot-alpha next_entry= 'nl=line1
line2' 'back=C:\path' 'u=ünïcødé'
cp "$tmp/set" "$corpus/grubenv/editenv-set"
{
  printf '# GRUB Environment Block\na=1\n# note\\\n still the note\nb=2\nx=\\z\\=\\#\n'
} >"$tmp/comments"
head -c 1024 <(cat "$tmp/comments" <(yes '#' | tr -d '\n')) >"$corpus/grubenv/comments"
{
  cat "$tmp/set"
  printf '\x00\x0bsaved_entry\x0fmultiboot-beta'
  printf '\x01\x0anext_entry'
  printf '\x02\x01k\x03a\nb'
  printf '\x04\x02#x\x01v'
} >"$corpus/grubenv/editenv-set-then-ops"

# boot-info.json: the specification's example and bootctl's fixture with an extra key.
cat >"$corpus/bootinfo/spec-example.json" <<'EOF'
{
  "elements": [
    {
      "grub_id": 0,
      "image_name": "centos-7.1.1503",
      "os_id": "centos",
      "image_uuid": "2a86b00d-cfa4-49d9-a008-13c7940ed02d",
      "boot_name": "CentOSLinuxrelease7.1.1503(Core)(on/dev/vda3)",
      "root_uuid": "2abf123d-d52f-4f62-a351-7358221bc51f"
    },
    {
      "grub_id": 2,
      "image_name": "ubuntu",
      "os_id": "ubuntu",
      "image_uuid": "157636d8-62ad-499d-aecc-2ea4917ee396",
      "boot_name": "Ubuntu14.04.3LTS(14.04)(on/dev/vda4)",
      "root_uuid": "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2"
    }
  ],
  "current_element": 0,
  "multiboot_partition": "3b360901-7896-48d4-a14d-fc35e1582c74"
}
EOF
cat >"$corpus/bootinfo/bootctl-fixture.json" <<'EOF'
{
  "elements": [
    {"grub_id": 0, "image_name": "centos-7.1.1503", "os_id": "centos", "image_uuid": "2a86b00d-cfa4-49d9-a008-13c7940ed02d",
      "boot_name": "CentOS Linux", "root_uuid": "2abf123d-d52f-4f62-a351-7358221bc51f", "name": "centos"},
    {"grub_id": 2, "image_name": "ubuntu", "os_id": "ubuntu", "image_uuid": "157636d8-62ad-499d-aecc-2ea4917ee396",
      "boot_name": "Ubuntu 14.04", "root_uuid": "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2"}
  ],
  "current_element": 1,
  "multiboot_partition": "3b360901-7896-48d4-a14d-fc35e1582c74",
  "zz_extra": {"nested": [1, 2.5, null, true]}
}
EOF

# provision.json: the examples, the bad-input corpus and Bareon's own configs.
cp ../deployer/examples/*.json "$corpus/provision/"
for f in ../deployer/tests/bad/*.json; do
  cp "$f" "$corpus/provision/bad-$(basename "$f")"
done
for f in ../deployer/tests/bareon/*.json; do
  cp "$f" "$corpus/provision/bareon-$(basename "$f")"
done
