#!/usr/bin/env python3
"""Bareon's own partition allocator, run as it is, for the numbers the deployer's tests of
`--layout bareon` expect.

Usage: scripts/bareon-oracle.py SECTORS MULTIBOOT SIZE...
  SECTORS    the disk's size in 512-byte sectors
  MULTIBOOT  1: the first disk of a multi-image deployment (the 100 MiB multiboot
             partition follows the 24 MiB bios_grub one), 0: any other disk
  SIZE       each volume's "size" as provision.json gives it ("50%", "4000 MiB",
             "remaining", a bare number of MiB)
Prints [[first sector, sectors], ...] of every partition, or Bareon's error.

Needs a checkout of openstack-archive/bareon at $BAREON (default /tmp/bareon) and python3
with six. It imports bareon/utils/block_device.py (Disk, SpaceClaim, SizeUnit) with its
other imports stubbed, and applies the claims in the order of
bareon/drivers/deploy/generic.py AbstractPartitionPolicy._disk_partition: the implicit
partitions (bareon/drivers/data/ironic.py Ironic._handle_loader, _handle_multiboot) first,
the volumes before "remaining" from the head, those after it from the tail, last first,
then "remaining". The disk is a blank GPT as sgdisk sees it: 128 entries, 2048-sector
alignment, 1 MiB allocation accuracy (AbstractPartitionPolicy.space_allocation_accuracy).
"""
import json
import os
import sys
import types

sys.path.insert(0, os.environ.get('BAREON', '/tmp/bareon'))
import bareon  # noqa: E402,F401

utils = types.ModuleType('bareon.utils.utils')


class EqualComparisonMixin(object):
    def __eq__(self, other):
        if not isinstance(other, type(self)):
            return NotImplemented
        return vars(self) == vars(other)


utils.EqualComparisonMixin = EqualComparisonMixin
# _BlockDevice runs `file` on the device; a blank disk has no boot sector.
utils.execute = lambda *args, **kwargs: ('data', '')
for name in ('hardware', 'lvm'):
    sys.modules['bareon.utils.' + name] = types.ModuleType(name)
sys.modules['bareon.utils.utils'] = utils
import bareon.utils  # noqa: E402

bareon.utils.utils = utils
from bareon.utils import block_device as bd  # noqa: E402


def blank_disk(sectors, sector_size=512):
    entries = 16384 // sector_size
    block = bd._BlockDevice('/dev/x', sectors, sector_size)
    disk = bd.Disk(block, 'gpt', sector_min=2 + entries,
                   sector_max=sectors - 2 - entries,
                   alignment=1024 * 1024 // sector_size)
    disk.allocate_accuracy = bd.SizeUnit(1, 'MiB')
    return disk


def claim(size):
    if size == 'remaining':
        return bd.SpaceClaim.new_biggest()
    unit = bd.SizeUnit.new_by_string(size, default_unit='MiB')
    return bd.SpaceClaim.new_by_sizeunit(unit)


def main():
    sectors, multiboot, sizes = int(sys.argv[1]), sys.argv[2] == '1', sys.argv[3:]
    disk = blank_disk(sectors)
    service = ['24 MiB'] + (['100 MiB'] if multiboot else [])
    items = [(s, True) for s in service] + [(s, False) for s in sizes]

    def apply(size, is_service, from_tail=False):
        segment = claim(size)(disk, from_tail=from_tail)
        if is_service:
            segment.set_is_service()

    remaining, tail = None, []
    for index, (size, is_service) in enumerate(items):
        if size == 'remaining':
            remaining, tail = size, items[index + 1:]
            break
        apply(size, is_service)
    for size, is_service in reversed(tail):
        apply(size, is_service, from_tail=True)
    if remaining is not None:
        apply(remaining, False)
    print(json.dumps([[s.begin, s.size] for s in disk.segments
                      if s.kind == s.KIND_BUSY]))


if __name__ == '__main__':
    main()
