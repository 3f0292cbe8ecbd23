#!/usr/bin/env python3
"""Compares `deployer plan --layout bareon` with Bareon's own allocator
(scripts/bareon-oracle.py) on random disks and volume sizes: both must place every
partition on the same sectors, or both refuse.

Usage: scripts/bareon-compare.py [SEED [CASES]]
Needs what scripts/bareon-oracle.py needs and a built deployer (target/debug/deployer,
or $DEPLOYER). Each case is the first disk of a two-image deployment.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, 'bareon-oracle.py')
DEPLOYER = os.environ.get(
    'DEPLOYER', os.path.join(HERE, '..', 'target', 'debug', 'deployer'))


def random_size():
    k = random.random()
    if k < 0.35:
        return '%d%%' % random.randint(1, 60)
    if k < 0.75:
        return '%d MiB' % random.randint(1, 800)
    if k < 0.9:
        return '%d MB' % random.randint(1, 800)
    return '%d B' % random.randint(1, 500000000)


def main():
    random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    cases = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    counts = {'both placed': 0, 'both refused': 0, 'ext4 minimum': 0, 'differ': 0}
    work = tempfile.mkdtemp(prefix='bareon-compare-')
    config_path, disk_path = os.path.join(work, 'c.json'), os.path.join(work, 'd.img')
    for _ in range(cases):
        sectors = random.choice([random.randint(300, 4000) * 2048,
                                 random.randint(600000, 8000000)])
        sizes = [random_size() for _ in range(random.randint(2, 6))]
        if random.random() < 0.5:
            sizes[random.randrange(len(sizes))] = 'remaining'
        out = subprocess.run(['python3', ORACLE, str(sectors), '1'] + sizes,
                             capture_output=True, text=True)
        oracle = json.loads(out.stdout) if out.returncode == 0 else None
        volumes = [{"type": "partition", "mount": '/' if i < 2 else '/v%d' % i,
                    "size": size, "images": ['beta' if i == 1 else 'alpha'],
                    "file_system": "ext4"} for i, size in enumerate(sizes)]
        config = {"images": [{"name": "alpha", "image_pull_url": "/a", "target": "/"},
                             {"name": "beta", "image_pull_url": "/b", "target": "/"}],
                  "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
                                  "volumes": volumes}],
                  "partitions_policy": "clean"}
        with open(config_path, 'w') as f:
            json.dump(config, f)
        with open(disk_path, 'wb') as f:
            f.truncate(sectors * 512)
        run = subprocess.run([DEPLOYER, 'plan', config_path, '--disk', 'vda=' + disk_path,
                              '--layout', 'bareon', '--json'], capture_output=True, text=True)
        ours = None
        if run.returncode == 0:
            partitions = json.loads(run.stdout)['disks'][0]['partitions']
            ours = [[p['start_mib'] * 2048, p['size_sectors'] or p['size_mib'] * 2048]
                    for p in partitions]
        if oracle == ours:
            counts['both placed' if ours else 'both refused'] += 1
        elif oracle is not None and 'too small for ext4' in run.stdout:
            # Bareon places what mkfs.ext4 would then refuse; the deployer refuses it first.
            counts['ext4 minimum'] += 1
        else:
            counts['differ'] += 1
            print('DIFFERENT', sectors, sizes, '\n  bareon  ', oracle, '\n  deployer',
                  ours, run.stdout[-300:])
    print(counts)
    sys.exit(1 if counts['differ'] else 0)


if __name__ == '__main__':
    main()
