#!/usr/bin/env bash
# Regenerates the sample grub.cfg files with the real grub-mkconfig, into this directory or
# into the directory given as $1 (the tests generate fresh ones that way), for the newest
# kernel in /boot. Run as root on Debian 12 with the packages of scripts/setup installed
# (see README.md here).
#
# The host's /etc/default, /etc/grub.d, /boot and /var/lib/os-prober are never modified:
# every grub-mkconfig run happens in a private mount namespace (unshare -m) in which
#   - /sys/block and /proc/partitions show only this script's loop devices, and
#     /var/lib/os-prober and /run are private tmpfs mounts, and
#   - /etc/default is a bind mount of a private copy whose `grub` file is Debian's stock
#     /usr/share/grub/default/grub plus the lines given to run_mkconfig, and
#   - /boot is a small ext4 loop filesystem holding copies of the host's kernel files and an
#     empty grub/ directory (05_debian_theme needs /boot/grub; grub-probe cannot resolve a
#     tmpfs or overlay /boot, and a bind mount would put its source path into the kernel path).
set -euo pipefail

out="$(cd "${1:-$(dirname "$0")}" && pwd)"
kver="$(ls /boot/vmlinuz-* | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n 1)"
[ -n "$kver" ] || { echo "no kernel in /boot: run scripts/setup (see README)" >&2; exit 1; }
boot_uuid=3b360901-7896-48d4-a14d-fc35e1582c74
one_uuid=2abf123d-d52f-4f62-a351-7358221bc51f
two_uuid=688c5f1e-dc46-4aca-a90e-be21ba8aa3e2
work="$(mktemp -d)"
loops=()

cleanup() {
  umount "$work/mnt" 2>/dev/null || true
  for dev in "${loops[@]}"; do losetup -d "$dev" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# wait_node PATH: partition nodes appear asynchronously (there is no udev here).
wait_node() {
  for _ in $(seq 50); do [ -b "$1" ] && return 0; sleep 0.1; done
  echo "device node $1 never appeared" >&2
  return 1
}

# The private /boot filesystem.
truncate -s 128M "$work/boot.img"
mkfs.ext4 -q -F -U "$boot_uuid" -L boot "$work/boot.img"
bootdev="$(losetup -f --show "$work/boot.img")"
loops+=("$bootdev")
mkdir -p "$work/mnt"
mount "$bootdev" "$work/mnt"
cp /boot/vmlinuz-$kver /boot/initrd.img-$kver /boot/config-$kver /boot/System.map-$kver "$work/mnt/"
mkdir "$work/mnt/grub"
umount "$work/mnt"

# run_mkconfig OUTPUT [LINE-TO-APPEND-TO-/etc/default/grub...]
run_mkconfig() {
  local output="$1"
  shift
  rm -rf "$work/etc-default"
  mkdir -p "$work/etc-default"
  cp -a /etc/default/. "$work/etc-default/"
  cp /usr/share/grub/default/grub "$work/etc-default/grub"
  printf '%s\n' "$@" >>"$work/etc-default/grub"
  # What os-prober, blkid and LVM may see: only this script's loop devices. os-prober
  # lists partitions from /sys/block, other tools from /proc/partitions; the tests of
  # this repository run in parallel, and their loop disks must not appear (or be mounted).
  rm -rf "$work/sys-block"
  mkdir "$work/sys-block"
  head -n 2 /proc/partitions >"$work/partitions"
  for dev in "${loops[@]}"; do
    name="${dev#/dev/}"
    ln -s "$(readlink -f "/sys/block/$name")" "$work/sys-block/$name"
    grep -E " ${name}(p[0-9]+)?\$" /proc/partitions >>"$work/partitions"
  done
  unshare -m bash -euo pipefail -c '
    mount --make-rprivate /
    mount "$1" /boot
    mount --bind "$2" /etc/default
    mount --bind "$4/sys-block" /sys/block
    mount --bind "$4/partitions" /proc/partitions
    mount -t tmpfs -o mode=0755 tmpfs /var/lib/os-prober
    mount -t tmpfs -o mode=0755 tmpfs /run
    grub-mkconfig -o "$3"
  ' bash "$bootdev" "$work/etc-default" "$output" "$work"
  chmod 644 "$output"
}

# (1) stock Debian settings; (3) the same with GRUB_DEFAULT=saved.
run_mkconfig "$out/debian-plain.cfg"
run_mkconfig "$out/debian-saved.cfg" 'GRUB_DEFAULT=saved'

# (2) two more Linux trees on a GPT loop disk, found by 30_os-prober. Image One has its own
# /boot/grub/grub.cfg (so linux-boot-prober copies its root=UUID=... parameters); Image Two
# has none (so linux-boot-prober falls back to root=<partition device>).
truncate -s 300M "$work/disk.img"
sfdisk --quiet "$work/disk.img" <<'PARTS'
label: gpt
size=150MiB, type=linux, name=image-one
type=linux, name=image-two
PARTS
disk="$(losetup -fP --show "$work/disk.img")"
loops+=("$disk")
[ -b "${disk}p2" ] || partx -a "$disk" 2>/dev/null || true
wait_node "${disk}p1"
wait_node "${disk}p2"

make_tree() { # DEVICE FS-UUID NAME VERSION
  local id
  id="$(echo "$3" | tr 'A-Z ' 'a-z-')"
  mkfs.ext4 -q -F -U "$2" -L "$id" "$1"
  mount "$1" "$work/mnt"
  mkdir -p "$work/mnt/boot" "$work/mnt/etc" "$work/mnt/lib64"
  cp /boot/vmlinuz-$kver /boot/initrd.img-$kver "$work/mnt/boot/"
  cp /lib64/ld-linux-x86-64.so.2 "$work/mnt/lib64/"
  printf 'NAME="%s"\nVERSION="%s"\nID=%s\nPRETTY_NAME="%s %s"\n' "$3" "$4" "$id" "$3" "$4" \
    >"$work/mnt/etc/os-release"
  printf 'UUID=%s / ext4 defaults 0 1\n' "$2" >"$work/mnt/etc/fstab"
}
make_tree "${disk}p1" "$one_uuid" "Image One Linux" 1.0
mkdir -p "$work/mnt/boot/grub"
cat >"$work/mnt/boot/grub/grub.cfg" <<CFG
menuentry 'Image One Linux' {
	linux /boot/vmlinuz-$kver root=UUID=$one_uuid ro quiet
	initrd /boot/initrd.img-$kver
}
CFG
umount "$work/mnt"
make_tree "${disk}p2" "$two_uuid" "Image Two Linux" 2.0
umount "$work/mnt"

run_mkconfig "$out/debian-os-prober.cfg" 'GRUB_DISABLE_OS_PROBER=false'
echo "loop devices used: ${loops[*]}"
