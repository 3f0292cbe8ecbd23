//! The LVM parsers on crafted bytes: labels, metadata area headers and metadata text laid
//! out per LVM2's layout.h, and devices holding them. The checksums are pinned to the ones
//! pvcreate, vgcreate and lvcreate wrote for the same fields and text on this host, so the
//! builders here cannot agree with the parsers by sharing a mistake. (The md tests are in
//! md.rs.)

use std::io::Cursor;

use super::lvm::{self, LvMeta, PvLabel};
use super::read_lvm_pv;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

const PV_ID: &str = "1i3w9EZOcSieT2VI4Cx97loW0Fl42pPk";

/// A label sector as pvcreate writes it: header, PV header, data and metadata area lists,
/// the header extension (version 2, flags 1); `n` is its sector.
fn label_sector(n: u64, data: &[(u64, u64)], mdas: &[(u64, u64)]) -> Vec<u8> {
    let mut s = vec![0u8; 512];
    put(&mut s, 0, b"LABELONE");
    put(&mut s, 8, &n.to_le_bytes());
    put(&mut s, 20, &32u32.to_le_bytes());
    put(&mut s, 24, b"LVM2 001");
    put(&mut s, 32, PV_ID.as_bytes());
    put(&mut s, 64, &209_715_200u64.to_le_bytes());
    let mut at = 72;
    for list in [data, mdas] {
        for &(offset, size) in list.iter().chain([&(0, 0)]) {
            put(&mut s, at, &offset.to_le_bytes());
            put(&mut s, at + 8, &size.to_le_bytes());
            at += 16;
        }
    }
    put(&mut s, at, &2u32.to_le_bytes());
    put(&mut s, at + 4, &1u32.to_le_bytes());
    let crc = lvm::crc(0xf597_a6cf, &s[20..]);
    put(&mut s, 16, &crc.to_le_bytes());
    s
}

/// The first 2048 bytes of a device with `sector` as its sector `n`.
fn scan_with(n: usize, sector: &[u8]) -> Vec<u8> {
    let mut scan = vec![0u8; 2048];
    put(&mut scan, n * 512, sector);
    scan
}

const REAL_MDA: (u64, u64) = (4096, 1_044_480);

/// A metadata area header for the area (start, size) whose committed slot is
/// (offset, size, checksum, flags).
fn mda_header(area: (u64, u64), slot: (u64, u64, u32, u32)) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    put(&mut h, 4, b" LVM2 x[5A%r0N*>");
    put(&mut h, 20, &1u32.to_le_bytes());
    put(&mut h, 24, &area.0.to_le_bytes());
    put(&mut h, 32, &area.1.to_le_bytes());
    put(&mut h, 40, &slot.0.to_le_bytes());
    put(&mut h, 48, &slot.1.to_le_bytes());
    put(&mut h, 56, &slot.2.to_le_bytes());
    put(&mut h, 60, &slot.3.to_le_bytes());
    let crc = lvm::crc(0xf597_a6cf, &h[4..]);
    put(&mut h, 0, &crc.to_le_bytes());
    h
}

#[test]
fn lvm_checksums_are_the_ones_lvm_wrote() {
    // pvcreate wrote crc 0x212cd287 on this label, vgcreate and lvcreate 0x99291845 on this
    // header and 0xb18a91ce for REAL_TEXT (`pvck --dump headers`).
    let label = label_sector(1, &[(1 << 20, 0)], &[REAL_MDA]);
    assert_eq!(&label[16..20], &0x212c_d287_u32.to_le_bytes());
    let header = mda_header(REAL_MDA, (3072, 1597, 0xb18a_91ce, 0));
    assert_eq!(&header[..4], &0x9929_1845_u32.to_le_bytes());
    assert_eq!(lvm::crc(0xf597_a6cf, REAL_TEXT.as_bytes()), 0xb18a_91ce);
}

#[test]
fn lvm_label_in_any_of_the_first_four_sectors() {
    let expected = PvLabel {
        pv_id: "1i3w9E-ZOcS-ieT2-VI4C-x97l-oW0F-l42pPk".to_owned(),
        device_size_bytes: 209_715_200,
        pe_start_bytes: 1 << 20,
        metadata_areas: vec![REAL_MDA],
    };
    for n in 0..4 {
        let scan = scan_with(n, &label_sector(n as u64, &[(1 << 20, 0)], &[REAL_MDA]));
        assert_eq!(
            lvm::parse_label(&scan).unwrap().as_ref(),
            Some(&expected),
            "sector {n}"
        );
    }
    let two_mdas = [(4096, 1_044_480), (200 << 20, 1 << 20)];
    let scan = scan_with(1, &label_sector(1, &[(1 << 20, 0)], &two_mdas));
    assert_eq!(
        lvm::parse_label(&scan).unwrap().unwrap().metadata_areas,
        two_mdas
    );
    let scan = scan_with(1, &label_sector(1, &[(1 << 20, 0)], &[]));
    assert_eq!(lvm::parse_label(&scan).unwrap().unwrap().metadata_areas, []);
}

#[test]
fn lvm_without_label_is_none() {
    assert_eq!(lvm::parse_label(&[0; 2048]).unwrap(), None);
    // Past the fourth sector a label does not count.
    let mut far = vec![0u8; 4096];
    put(
        &mut far,
        2048,
        &label_sector(4, &[(1 << 20, 0)], &[REAL_MDA]),
    );
    assert_eq!(lvm::parse_label(&far).unwrap(), None);
    // A wiped label (wipefs clears LABELONE) is no label.
    let mut wiped = label_sector(1, &[(1 << 20, 0)], &[REAL_MDA]);
    wiped[..8].fill(0);
    assert_eq!(lvm::parse_label(&scan_with(1, &wiped)).unwrap(), None);
}

#[test]
fn lvm_label_faults_are_one_line_errors() {
    let fault = |scan: &[u8]| lvm::parse_label(scan).unwrap_err();
    let good = label_sector(1, &[(1 << 20, 0)], &[REAL_MDA]);
    assert_eq!(
        fault(&scan_with(1, &good)[..1024]),
        "LVM label: 1024 bytes, truncated (a label may lie anywhere in the first 2048)"
    );
    assert_eq!(
        fault(&scan_with(2, &good)),
        "LVM label in sector 2: it says it lies in sector 1"
    );
    let mut torn = good.clone();
    torn[100] ^= 1;
    assert!(fault(&scan_with(1, &torn))
        .starts_with("LVM label in sector 1: checksum 0x212cd287 does not match its contents ("));
    let resum = |mut s: Vec<u8>| {
        let crc = lvm::crc(0xf597_a6cf, &s[20..]);
        put(&mut s, 16, &crc.to_le_bytes());
        s
    };
    let mut other = good.clone();
    put(&mut other, 24, b"LVM1 001");
    assert_eq!(
        fault(&scan_with(1, &resum(other))),
        "LVM label in sector 1: type \"LVM1 001\", only \"LVM2 001\" is supported"
    );
    let mut far = good.clone();
    put(&mut far, 20, &500u32.to_le_bytes());
    assert_eq!(
        fault(&scan_with(1, &resum(far))),
        "LVM label in sector 1: its PV header at offset 500 is outside the sector"
    );
    let mut no_data = good.clone();
    no_data[72..88].fill(0);
    assert_eq!(
        fault(&scan_with(1, &resum(no_data))),
        "LVM label in sector 1: it lists no data area"
    );
    let mut endless = good.clone();
    for at in (72..512).step_by(16) {
        put(&mut endless, at, &7u64.to_le_bytes());
    }
    assert_eq!(
        fault(&scan_with(1, &resum(endless))),
        "LVM label in sector 1: its area lists run past the sector"
    );
    // A sound label wins over a damaged one, as LVM takes the first sound one.
    let mut scan = scan_with(2, &label_sector(2, &[(1 << 20, 0)], &[REAL_MDA]));
    put(&mut scan, 0, &torn);
    assert!(lvm::parse_label(&scan).unwrap().is_some());
}

#[test]
fn lvm_metadata_text_ranges() {
    let (start, size) = (4096, 61_440);
    let ranges = |slot| lvm::metadata_text_ranges(&mda_header((start, size), slot), start, size);
    assert_eq!(
        lvm::metadata_text_ranges(&mda_header(REAL_MDA, (3072, 1597, 0, 0)), 4096, 1_044_480),
        Ok(vec![(7168, 1597)])
    );
    // Up to the end of the area exactly: no wrap.
    assert_eq!(
        ranges((61_440 - 1000, 1000, 0, 0)),
        Ok(vec![(4096 + 60_440, 1000)])
    );
    // Past it: the rest follows the header, at the area's byte 512.
    assert_eq!(
        ranges((56_320, 7999, 0, 0)),
        Ok(vec![(4096 + 56_320, 5120), (4096 + 512, 2879)])
    );
    // A PV in no volume group, or whose area is ignored.
    assert_eq!(ranges((0, 0, 0, 0)), Ok(vec![]));
    assert_eq!(ranges((1024, 1597, 0, 1)), Ok(vec![]));
}

#[test]
fn lvm_metadata_area_faults_are_one_line_errors() {
    let area = (4096, 61_440);
    let fault = |header: &[u8]| lvm::metadata_text_ranges(header, area.0, area.1).unwrap_err();
    let good = mda_header(area, (1024, 1597, 0, 0));
    assert_eq!(
        fault(&good[..100]),
        "LVM metadata area at byte 4096: header truncated to 100 bytes"
    );
    assert_eq!(
        fault(&[0; 512]),
        "LVM metadata area at byte 4096: no metadata area header (its magic is missing)"
    );
    let mut torn = good.clone();
    torn[300] = 1;
    assert!(fault(&torn).starts_with("LVM metadata area at byte 4096: header checksum 0x"));
    assert_eq!(
        fault(&mda_header((8192, 61_440), (1024, 1597, 0, 0))),
        "LVM metadata area at byte 4096: its header places it at byte 8192 with 61440 bytes, the PV label with 61440"
    );
    let mut version = mda_header(area, (1024, 1597, 0, 0));
    put(&mut version, 20, &2u32.to_le_bytes());
    let crc = lvm::crc(0xf597_a6cf, &version[4..]);
    put(&mut version, 0, &crc.to_le_bytes());
    assert_eq!(
        fault(&version),
        "LVM metadata area at byte 4096: header version 2, only 1 is supported"
    );
    let huge = (4096, u64::MAX - 100);
    assert_eq!(
        lvm::metadata_text_ranges(&mda_header(huge, (1024, 10, 0, 0)), huge.0, huge.1),
        Err(format!(
            "LVM metadata area at byte 4096: an area of {} bytes",
            huge.1
        ))
    );
    for slot in [
        (100, 10, 0, 0),
        (61_440, 10, 0, 0),
        (1024, 61_000, 0, 0),
        (1024, 0, 0, 0),
    ] {
        let error = fault(&mda_header(area, slot));
        assert!(error.contains("does not fit in its 61440 bytes"), "{error}");
    }
}

#[test]
fn lvm_metadata_text_checked_against_its_checksum() {
    let header = mda_header(REAL_MDA, (3072, 1597, 0xb18a_91ce, 0));
    assert_eq!(
        lvm::check_metadata_text(&header, REAL_TEXT.as_bytes()),
        Ok(())
    );
    let stale = REAL_TEXT.replace("seqno = 3", "seqno = 2");
    assert!(lvm::check_metadata_text(&header, stale.as_bytes())
        .unwrap_err()
        .ends_with("its header records 0xb18a91ce"));
}

#[test]
fn lvm_metadata_as_lvcreate_wrote_it() {
    let vg = lvm::parse_metadata(REAL_TEXT).unwrap();
    assert_eq!(
        (vg.name.as_str(), vg.id.as_str(), vg.seqno, vg.extent_bytes),
        ("tvg", "84YJZ1-iVT7-h6bW-Mx8C-GggE-zij6-s0IcXg", 3, 4 << 20)
    );
    let pvs: Vec<_> = vg
        .pvs
        .iter()
        .map(|pv| {
            (
                pv.key.as_str(),
                pv.id.as_str(),
                pv.pe_start_bytes,
                pv.pe_count,
            )
        })
        .collect();
    assert_eq!(
        pvs,
        [
            ("pv0", "1i3w9E-ZOcS-ieT2-VI4C-x97l-oW0F-l42pPk", 1 << 20, 49),
            (
                "pv1",
                "cliN4E-4I4K-o91T-rBf8-sQ1Q-5Wku-rDsaEj",
                65 << 20,
                58
            ),
        ]
    );
    let linear = |name: &str, extents, pv: &str, pe| LvMeta {
        name: name.to_owned(),
        extents,
        first_extent: Some((pv.to_owned(), pe)),
        segment_type: "striped".to_owned(),
        stripe_count: 1,
        visible: true,
    };
    // `lvs`: small is /dev/loop0:0-24; big /dev/loop1:0-57 then /dev/loop0:25-41.
    assert_eq!(
        vg.lvs,
        [linear("small", 25, "pv0", 0), linear("big", 75, "pv1", 0)]
    );
    let (pv, offset) = vg.lv_start(&vg.lvs[1]).unwrap();
    assert_eq!(
        (pv.id.as_str(), offset),
        ("cliN4E-4I4K-o91T-rBf8-sQ1Q-5Wku-rDsaEj", 65 << 20)
    );
}

/// A VG section around `body`, with the keys LVM writes after it.
fn vg_text(body: &str) -> String {
    format!(
        "vg0 {{\nid = \"abc\"\nseqno = 7\nextent_size = 8192\n\
         physical_volumes {{\npv0 {{\nid = \"p0\"\npe_start = 2048\npe_count = 10\n}}\n\
         pv1 {{\nid = \"p1\"\npe_start = 2048\npe_count = 10\n}}\n}}\n{body}\n}}\n\
         contents = \"Text Format Volume Group\"\nversion = 1\n"
    )
}

#[test]
fn lvm_metadata_syntax_libdm_accepts() {
    let text = vg_text(
        "# a comment { with = [ brackets\n\
         description = \"quote \\\" backslash \\\\ other \\n end\" # trailing\n\
         single = 'no \\ escape'\n\
         ratio = 0.5\n\
         negative = -3\n\
         bare = word\n\
         nested { deeper { deepest { x = [1, 2, 3] } } }\n\
         \"quoted key\" = [\"a\" \"b\", 'c',]\n\
         logical_volumes {\n\
         \"lv-1\" { status = [\"VISIBLE\"] segment_count = 1 segment1 { start_extent = 0 \
         extent_count = 4 type = \"striped\" stripe_count = 2 stripes = [\"pv1\", 3, \"pv0\", 3] } }\n\
         }",
    );
    let vg = lvm::parse_metadata(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((vg.name.as_str(), vg.seqno, vg.pvs.len()), ("vg0", 7, 2));
    assert_eq!(
        vg.lvs,
        [LvMeta {
            name: "lv-1".to_owned(),
            extents: 4,
            first_extent: Some(("pv1".to_owned(), 3)),
            segment_type: "striped".to_owned(),
            stripe_count: 2,
            visible: true,
        }]
    );
    assert_eq!(
        vg.lv_start(&vg.lvs[0]).unwrap().1,
        (1 << 20) + 3 * (4 << 20)
    );
    // A NUL ends the text, as it ends the text LVM stores.
    let cut = format!("{}\0garbage {{", vg_text(""));
    assert!(lvm::parse_metadata(&cut).unwrap().lvs.is_empty());
}

#[test]
fn lvm_metadata_of_a_raid1_volume() {
    // As LVM writes a raid1 volume: the visible one of type raid1 over hidden sub-volumes.
    let sub = |name: &str, pv: &str, pe| {
        format!(
            "{name} {{ status = [\"READ\", \"WRITE\"] segment_count = 1 segment1 {{ \
             start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1 \
             stripes = [\"{pv}\", {pe}] }} }}\n"
        )
    };
    let text = vg_text(&format!(
        "logical_volumes {{\n\
         mir {{ status = [\"READ\", \"WRITE\", \"VISIBLE\"] segment_count = 1 segment1 {{ \
         start_extent = 0 extent_count = 2 type = \"raid1\" device_count = 2 region_size = 4096 \
         raids = [\"mir_rmeta_0\", \"mir_rimage_0\", \"mir_rmeta_1\", \"mir_rimage_1\"] }} }}\n\
         {}{}{}{}}}",
        sub("mir_rmeta_0", "pv0", 0),
        sub("mir_rimage_0", "pv0", 1),
        sub("mir_rmeta_1", "pv1", 0),
        sub("mir_rimage_1", "pv1", 1),
    ));
    let vg = lvm::parse_metadata(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mir = &vg.lvs[0];
    assert_eq!(
        (
            mir.segment_type.as_str(),
            &mir.first_extent,
            mir.stripe_count,
            mir.visible
        ),
        ("raid1", &None, 0, true)
    );
    assert_eq!(vg.lv_start(mir), None);
    let image = &vg.lvs[2];
    assert_eq!(image.name, "mir_rimage_0");
    assert!(!image.visible);
    assert_eq!(vg.lv_start(image).unwrap().1, (1 << 20) + (4 << 20));
}

#[test]
fn lvm_metadata_faults_are_one_line_errors() {
    let fault = |text: &str| lvm::parse_metadata(text).unwrap_err();
    assert_eq!(
        fault("vg0 { }"),
        "LVM metadata: not `contents = \"Text Format Volume Group\"`, `version = 1`"
    );
    let keys = "contents = \"Text Format Volume Group\"\nversion = 1\n";
    assert_eq!(
        fault(keys),
        "LVM metadata: 0 volume group sections, not one"
    );
    assert_eq!(
        fault(&format!("a {{ }}\nb {{ }}\n{keys}")),
        "LVM metadata: 2 volume group sections, not one"
    );
    assert_eq!(
        fault("vg0 {\nid = \"abc\n}\n"),
        "LVM metadata, line 2: unterminated string"
    );
    assert_eq!(
        fault("vg0 {\nphysical_volumes {\n"),
        "LVM metadata, line 3: section physical_volumes is not closed"
    );
    assert_eq!(fault("vg0 = = 1"), "LVM metadata, line 1: expected a value");
    assert_eq!(
        fault("vg0 ]"),
        "LVM metadata, line 1: expected `=` or `{` after vg0"
    );
    assert_eq!(
        fault("x = 99999999999999999999"),
        "LVM metadata, line 1: bad number 99999999999999999999"
    );
    assert_eq!(
        fault(&format!("{}{}", "a {\n".repeat(40), "}\n".repeat(40))),
        "LVM metadata, line 33: sections nested too deep"
    );
    assert_eq!(
        fault(&vg_text("").replace("seqno = 7", "seqno = \"7\"")),
        "LVM metadata: volume group vg0: no seqno = <number>"
    );
    assert_eq!(
        fault(&vg_text("").replace("id = \"p1\"", "")),
        "LVM metadata: volume group vg0, physical volume pv1: no id = \"<string>\""
    );
    let lv = |segments: &str| {
        vg_text(&format!(
            "logical_volumes {{ lv {{ status = [\"VISIBLE\"] segment_count = 1 {segments} }} }}"
        ))
    };
    assert_eq!(
        fault(&lv("")),
        "LVM metadata: volume group vg0, logical volume lv: segment_count 1, but 0 segments"
    );
    assert_eq!(
        fault(&lv(
            "segment1 { start_extent = 2 extent_count = 1 type = \"striped\" }"
        )),
        "LVM metadata: volume group vg0, logical volume lv: no segment starts at extent 0"
    );
    assert_eq!(
        fault(&lv(
            "segment1 { start_extent = 0 extent_count = 1 type = \"striped\" \
                   stripe_count = 1 stripes = [\"pv9\", 0] }"
        )),
        "LVM metadata: volume group vg0, logical volume lv, segment1: stripe on unknown pv9"
    );
    assert_eq!(
        fault(&lv("segment1 { start_extent = 0 extent_count = 1 type = \"striped\" \
                   stripe_count = 1 stripes = [0, \"pv0\"] }")),
        "LVM metadata: volume group vg0, logical volume lv, segment1: stripes are not [\"pvN\", extent, ...]"
    );
}

/// A 1 MiB device holding the PV of REAL_TEXT's pv0: its label in sector 1, a 60 KiB
/// metadata area at 4 KiB whose text `text` wraps around the area's end, and a second
/// area at the end holding `second_text`, when given.
fn pv_device(text: &str, second_text: Option<&str>) -> Vec<u8> {
    let mut device = vec![0u8; 1 << 20];
    let first = (4096, 61_440);
    let second = ((1 << 20) - 8192, 8192);
    let mdas: &[(u64, u64)] = if second_text.is_some() {
        &[first, second]
    } else {
        &[first]
    };
    put(&mut device, 512, &label_sector(1, &[(1 << 20, 0)], mdas));
    let text = text.as_bytes();
    let (offset, head) = (61_440 - 700, 700);
    let checksum = lvm::crc(0xf597_a6cf, text);
    put(
        &mut device,
        4096,
        &mda_header(first, (offset, text.len() as u64, checksum, 0)),
    );
    put(&mut device, 4096 + offset as usize, &text[..head]);
    put(&mut device, 4096 + 512, &text[head..]);
    if let Some(text) = second_text {
        let checksum = lvm::crc(0xf597_a6cf, text.as_bytes());
        let at = second.0 as usize;
        put(
            &mut device,
            at,
            &mda_header(second, (512, text.len() as u64, checksum, 0)),
        );
        put(&mut device, at + 512, text.as_bytes());
    }
    device
}

#[test]
fn lvm_pv_read_from_a_device_with_wrapped_metadata() {
    let pv = read_lvm_pv(&mut Cursor::new(pv_device(REAL_TEXT, None)))
        .unwrap()
        .unwrap();
    assert_eq!(pv.label.pv_id, "1i3w9E-ZOcS-ieT2-VI4C-x97l-oW0F-l42pPk");
    assert_eq!(pv.metadata, Some(lvm::parse_metadata(REAL_TEXT).unwrap()));
    assert_eq!(
        read_lvm_pv(&mut Cursor::new(vec![0u8; 1 << 20])).unwrap(),
        None
    );
    assert_eq!(read_lvm_pv(&mut Cursor::new(vec![0u8; 100])).unwrap(), None);
}

#[test]
fn lvm_pv_read_takes_the_newest_of_its_areas() {
    let newer = REAL_TEXT.replace("seqno = 3", "seqno = 4");
    for (first, second) in [(REAL_TEXT, newer.as_str()), (newer.as_str(), REAL_TEXT)] {
        let device = pv_device(first, Some(second));
        let vg = read_lvm_pv(&mut Cursor::new(device))
            .unwrap()
            .unwrap()
            .metadata
            .unwrap();
        assert_eq!(vg.seqno, 4);
    }
}

#[test]
fn lvm_pv_read_faults() {
    let mut torn = pv_device(REAL_TEXT, None);
    torn[4096 + 600] ^= 1;
    let error = read_lvm_pv(&mut Cursor::new(torn)).unwrap_err();
    assert!(
        error.starts_with("LVM metadata area at byte 4096: the metadata text's checksum is"),
        "{error}"
    );
    let other_pv = REAL_TEXT.replace("1i3w9E-ZOcS", "xxxxxx-xxxx");
    assert_eq!(
        read_lvm_pv(&mut Cursor::new(pv_device(&other_pv, None))).unwrap_err(),
        "LVM metadata area at byte 4096: volume group tvg does not list this PV, \
         1i3w9E-ZOcS-ieT2-VI4C-x97l-oW0F-l42pPk"
    );
    // The label promises an area the device does not reach.
    let short = pv_device(REAL_TEXT, None)[..8192].to_vec();
    assert!(read_lvm_pv(&mut Cursor::new(short))
        .unwrap_err()
        .starts_with("reading "));
}

/// Damaged copies of sound input: every byte changed in turn, then random bytes changed
/// (a fixed xorshift sequence), and every length cut; `parse` must answer, not panic.
fn damaged(sound: &[u8], mut parse: impl FnMut(&[u8])) {
    for at in 0..sound.len() {
        let mut copy = sound.to_vec();
        copy[at] = copy[at].wrapping_add(0x41);
        parse(&copy);
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        let mut copy = sound.to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % copy.len() as u64) as usize;
            copy[at] = (state >> 32) as u8;
        }
        parse(&copy);
    }
    for len in 0..sound.len() {
        parse(&sound[..len]);
    }
}

#[test]
fn damaged_input_gives_an_answer() {
    let label = scan_with(1, &label_sector(1, &[(1 << 20, 0)], &[REAL_MDA]));
    damaged(&label, |b| drop(lvm::parse_label(b)));
    let header = mda_header((4096, 61_440), (56_320, 7999, 0, 0));
    damaged(&header, |b| {
        drop(lvm::metadata_text_ranges(b, 4096, 61_440))
    });
    damaged(REAL_TEXT.as_bytes(), |b| {
        drop(lvm::parse_metadata(&String::from_utf8_lossy(b)))
    });
    damaged(&pv_device(REAL_TEXT, None)[..8192], |b| {
        drop(read_lvm_pv(&mut Cursor::new(b)))
    });
    let mut md_sb = vec![0u8; 4096];
    md_sb[..4].copy_from_slice(&0xa92b_4efc_u32.to_le_bytes());
    md_sb[4] = 1;
    damaged(&md_sb[..512], |b| drop(super::md::parse_superblock(b)));
}

/// The metadata text vgcreate and two lvcreate wrote on this host (LVM 2.03.16), with its
/// terminating NUL: vg tvg over pv0 (200 MiB, default metadata area) and pv1 (300 MiB,
/// `--metadatasize 64m`), lv small (25 extents) and big (75, over both).
const REAL_TEXT: &str = "\
tvg {\n\
id = \"84YJZ1-iVT7-h6bW-Mx8C-GggE-zij6-s0IcXg\"\n\
seqno = 3\n\
format = \"lvm2\"\n\
status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n\
flags = []\n\
extent_size = 8192\n\
max_lv = 0\n\
max_pv = 0\n\
metadata_copies = 0\n\
\n\
physical_volumes {\n\
\n\
pv0 {\n\
id = \"1i3w9E-ZOcS-ieT2-VI4C-x97l-oW0F-l42pPk\"\n\
device = \"/dev/loop0\"\n\
\n\
status = [\"ALLOCATABLE\"]\n\
flags = []\n\
dev_size = 409600\n\
pe_start = 2048\n\
pe_count = 49\n\
}\n\
\n\
pv1 {\n\
id = \"cliN4E-4I4K-o91T-rBf8-sQ1Q-5Wku-rDsaEj\"\n\
device = \"/dev/loop1\"\n\
\n\
status = [\"ALLOCATABLE\"]\n\
flags = []\n\
dev_size = 614400\n\
pe_start = 133120\n\
pe_count = 58\n\
}\n\
}\n\
\n\
logical_volumes {\n\
\n\
small {\n\
id = \"BjdUfI-Ro1l-hMJL-v3Ih-a9WE-tapo-WZ3hrc\"\n\
status = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
flags = []\n\
creation_time = 1796627461\n\
creation_host = \"vm\"\n\
segment_count = 1\n\
\n\
segment1 {\n\
start_extent = 0\n\
extent_count = 25\n\
\n\
type = \"striped\"\n\
stripe_count = 1\n\
\n\
stripes = [\n\
\"pv0\", 0\n\
]\n\
}\n\
}\n\
\n\
big {\n\
id = \"CHhpOJ-7FBQ-xwts-45YB-VPcG-RH4o-i9ddi8\"\n\
status = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
flags = []\n\
creation_time = 1796627461\n\
creation_host = \"vm\"\n\
segment_count = 2\n\
\n\
segment1 {\n\
start_extent = 0\n\
extent_count = 58\n\
\n\
type = \"striped\"\n\
stripe_count = 1\n\
\n\
stripes = [\n\
\"pv1\", 0\n\
]\n\
}\n\
segment2 {\n\
start_extent = 58\n\
extent_count = 17\n\
\n\
type = \"striped\"\n\
stripe_count = 1\n\
\n\
stripes = [\n\
\"pv0\", 25\n\
]\n\
}\n\
}\n\
}\n\
\n\
}\n\
# Generated by LVM2 version 2.03.16(2) (2022-05-18): Mon Dec  7 07:11:01 2026\n\
\n\
contents = \"Text Format Volume Group\"\n\
version = 1\n\
\n\
description = \"Write from lvcreate -q --driverloaded n --activate n --zero n -L 300m -n big tvg.\"\n\
\n\
creation_host = \"vm\"\t# Linux vm 6.18.44-fc-v1300 #1 SMP PREEMPT_DYNAMIC @0 x86_64\n\
creation_time = 1796627461\t# Mon Dec  7 07:11:01 2026\n\
\n\
\0";
