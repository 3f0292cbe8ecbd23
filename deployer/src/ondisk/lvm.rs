//! LVM2 physical volumes as their device holds them: the label in one of the first four
//! sectors, the metadata areas it points to, and the volume group's metadata text there.
//!
//! The structures (LVM2's lib/label/label.h, lib/format_text/layout.h and format-text.h),
//! integers little-endian:
//! - `label_header`, 32 bytes at the start of one of sectors 0 to 3: `LABELONE`, the number
//!   of that sector (u64), the CRC of bytes 20 to 512 of the sector (u32), the offset of the
//!   `pv_header` from the label's start (u32), `LVM2 001`.
//! - `pv_header`: the PV's id (32 characters), the device's size (u64), then two lists of
//!   `disk_locn {offset u64, size u64}`, each ended by an offset of 0: the data areas (the
//!   first one's offset is pe_start; a size of 0 reaches the device's end) and the
//!   metadata areas.
//! - `mda_header`, 512 bytes at the start of a metadata area: the CRC of its bytes 4 to 512
//!   (u32), the magic ` LVM2 x[5A%r0N*>`, version 1 (u32), its own device offset and the
//!   area's size (u64 each), then `raw_locn {offset u64, size u64, checksum u32, flags u32}`
//!   slots: the committed metadata, then the precommitted one. Their offsets count from the
//!   area's start; the text area after the header is a circular buffer, so the text may go
//!   on at its byte 512.
//!
//! LVM's CRC is the reflected CRC-32 (polynomial 0xedb88320) started from 0xf597a6cf, with
//! no final inversion.

use super::{u32_at, u64_at};

/// The label lies in one of the first four 512-byte sectors.
pub const LABEL_SCAN_BYTES: u64 = 2048;
/// The size of a metadata area's header, to read at its offset.
pub const MDA_HEADER_BYTES: u64 = 512;

const SECTOR: usize = 512;
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const INITIAL_CRC: u32 = 0xf597_a6cf;
const RAW_LOCN_IGNORED: u32 = 1;
/// Deeper nesting than LVM ever writes: refused rather than recursed into.
const MAX_DEPTH: usize = 32;

/// A physical volume's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvLabel {
    /// With dashes, 6-4-4-4-4-4-6, as the metadata text and `pvs -o pv_uuid` write it.
    pub pv_id: String,
    pub device_size_bytes: u64,
    /// Where the first data area, extent 0, starts.
    pub pe_start_bytes: u64,
    /// (offset, size) in bytes: one area usually, a second at the device's end with
    /// `--pvmetadatacopies 2`, none with `--pvmetadatacopies 0`.
    pub metadata_areas: Vec<(u64, u64)>,
}

/// Parses the label out of the first [`LABEL_SCAN_BYTES`] of a device. `Ok(None)` when no
/// sector starts with `LABELONE`; an error when the input is shorter, or when the only
/// labels found are not sound (wrong sector, checksum, type, header).
pub fn parse_label(first_sectors: &[u8]) -> Result<Option<PvLabel>, String> {
    let scan = first_sectors
        .get(..LABEL_SCAN_BYTES as usize)
        .ok_or_else(|| {
            format!(
                "LVM label: {} bytes, truncated (a label may lie anywhere in the first {LABEL_SCAN_BYTES})",
                first_sectors.len()
            )
        })?;
    let mut problem = None;
    for (n, sector) in scan.chunks(SECTOR).enumerate() {
        if sector.starts_with(b"LABELONE") {
            match label_in(sector, n as u64) {
                Ok(label) => return Ok(Some(label)),
                Err(e) => {
                    problem.get_or_insert(e);
                }
            }
        }
    }
    problem.map_or(Ok(None), Err)
}

fn label_in(sector: &[u8], n: u64) -> Result<PvLabel, String> {
    let fault = |what: String| format!("LVM label in sector {n}: {what}");
    let recorded = u64_at(sector, 8);
    if recorded != n {
        return Err(fault(format!("it says it lies in sector {recorded}")));
    }
    let stored = u32_at(sector, 16);
    let computed = crc(INITIAL_CRC, &sector[20..]);
    if stored != computed {
        return Err(fault(format!(
            "checksum {stored:#010x} does not match its contents ({computed:#010x})"
        )));
    }
    if &sector[24..32] != b"LVM2 001" {
        return Err(fault(format!(
            "type {:?}, only \"LVM2 001\" is supported",
            String::from_utf8_lossy(&sector[24..32])
        )));
    }
    let offset = u32_at(sector, 20) as usize;
    let header = sector
        .get(offset..)
        .filter(|h| offset >= 32 && h.len() >= 40)
        .ok_or_else(|| {
            fault(format!(
                "its PV header at offset {offset} is outside the sector"
            ))
        })?;
    let id = &header[..32];
    if !id.iter().all(u8::is_ascii_graphic) {
        return Err(fault("the PV id is not 32 printable characters".to_owned()));
    }
    let mut locations = header[40..]
        .chunks_exact(16)
        .map(|l| (u64_at(l, 0), u64_at(l, 8)));
    let (Some(data), Some(metadata)) = (area_list(&mut locations), area_list(&mut locations))
    else {
        return Err(fault("its area lists run past the sector".to_owned()));
    };
    let &(pe_start_bytes, _) = data
        .first()
        .ok_or_else(|| fault("it lists no data area".to_owned()))?;
    Ok(PvLabel {
        pv_id: dashed_id(id),
        device_size_bytes: u64_at(header, 32),
        pe_start_bytes,
        metadata_areas: metadata,
    })
}

/// One `disk_locn` list, up to its terminating zero offset; None when it does not end.
fn area_list(locations: &mut impl Iterator<Item = (u64, u64)>) -> Option<Vec<(u64, u64)>> {
    let mut list = Vec::new();
    loop {
        match locations.next()? {
            (0, _) => return Some(list),
            area => list.push(area),
        }
    }
}

/// 32 id characters as LVM prints them: groups of 6, 4, 4, 4, 4, 4, 6.
fn dashed_id(id: &[u8]) -> String {
    let id = String::from_utf8_lossy(id);
    let mut out = String::with_capacity(38);
    for (i, c) in id.chars().enumerate() {
        if matches!(i, 6 | 10 | 14 | 18 | 22 | 26) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// The committed `raw_locn` slot of a sound metadata area header.
struct Committed {
    offset: u64,
    size: u64,
    checksum: u32,
    flags: u32,
}

fn committed(mda_header: &[u8], mda_offset: u64, mda_size: u64) -> Result<Committed, String> {
    let fault = |what: String| format!("LVM metadata area at byte {mda_offset}: {what}");
    let header = mda_header
        .get(..MDA_HEADER_BYTES as usize)
        .ok_or_else(|| fault(format!("header truncated to {} bytes", mda_header.len())))?;
    if &header[4..20] != MDA_MAGIC {
        return Err(fault(
            "no metadata area header (its magic is missing)".to_owned(),
        ));
    }
    let stored = u32_at(header, 0);
    let computed = crc(INITIAL_CRC, &header[4..]);
    if stored != computed {
        return Err(fault(format!(
            "header checksum {stored:#010x} does not match its contents ({computed:#010x})"
        )));
    }
    match (u32_at(header, 20), u64_at(header, 24), u64_at(header, 32)) {
        (1, start, size) if start == mda_offset && size == mda_size => {}
        (1, start, size) => {
            return Err(fault(format!(
            "its header places it at byte {start} with {size} bytes, the PV label with {mda_size}"
        )))
        }
        (version, ..) => {
            return Err(fault(format!(
                "header version {version}, only 1 is supported"
            )))
        }
    }
    if mda_size <= MDA_HEADER_BYTES || mda_offset.checked_add(mda_size).is_none() {
        return Err(fault(format!("an area of {mda_size} bytes")));
    }
    Ok(Committed {
        offset: u64_at(header, 40),
        size: u64_at(header, 48),
        checksum: u32_at(header, 56),
        flags: u32_at(header, 60),
    })
}

/// From a metadata area's 512-byte header, read at `mda_offset` (the label gives the
/// area's offset and size), the device byte ranges (offset, length) of the committed
/// metadata text: one, or two when it wraps around the end of the circular buffer; none
/// when the area holds no metadata (a PV in no volume group) or is marked ignored
/// (`--metadataignore y`: the other PVs' areas hold the metadata). The text ends with a
/// NUL byte, which [`parse_metadata`] takes as its end.
pub fn metadata_text_ranges(
    mda_header: &[u8],
    mda_offset: u64,
    mda_size: u64,
) -> Result<Vec<(u64, u64)>, String> {
    let slot = committed(mda_header, mda_offset, mda_size)?;
    if slot.offset == 0 || slot.flags & RAW_LOCN_IGNORED != 0 {
        return Ok(Vec::new());
    }
    if slot.offset < MDA_HEADER_BYTES
        || slot.offset >= mda_size
        || slot.size == 0
        || slot.size > mda_size - MDA_HEADER_BYTES
    {
        return Err(format!(
            "LVM metadata area at byte {mda_offset}: its metadata ({} bytes at {}) does not fit in its {mda_size} bytes",
            slot.size, slot.offset
        ));
    }
    let start = mda_offset + slot.offset;
    // offset < mda_size, so the room before the end is never 0.
    Ok(match slot.size.checked_sub(mda_size - slot.offset) {
        Some(wrapped) if wrapped > 0 => vec![
            (start, slot.size - wrapped),
            (mda_offset + MDA_HEADER_BYTES, wrapped),
        ],
        _ => vec![(start, slot.size)],
    })
}

/// Checks the metadata text read from the ranges of [`metadata_text_ranges`], joined,
/// against the checksum its area's header records: a text torn or overwritten since the
/// header was read fails.
pub fn check_metadata_text(mda_header: &[u8], text: &[u8]) -> Result<(), String> {
    let offset = u64_at(mda_header, 24);
    let slot = committed(mda_header, offset, u64_at(mda_header, 32))?;
    let computed = crc(INITIAL_CRC, text);
    if computed == slot.checksum {
        Ok(())
    } else {
        Err(format!(
            "LVM metadata area at byte {offset}: the metadata text's checksum is {computed:#010x}, its header records {:#010x}",
            slot.checksum
        ))
    }
}

/// LVM's CRC-32 of `data`, continuing from `crc`.
pub(crate) fn crc(mut crc: u32, data: &[u8]) -> u32 {
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// A volume group as its metadata text describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgMetadata {
    pub name: String,
    pub id: String,
    /// Bumped at every change: of two copies, the higher is the newer.
    pub seqno: u64,
    pub extent_bytes: u64,
    pub pvs: Vec<PvMeta>,
    pub lvs: Vec<LvMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvMeta {
    /// The name segments refer to it by, `pv0`, `pv1`...
    pub key: String,
    /// The id of its label ([`PvLabel::pv_id`]).
    pub id: String,
    pub pe_start_bytes: u64,
    pub pe_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvMeta {
    pub name: String,
    /// The sum of its segments' extent counts.
    pub extents: u64,
    /// The segment at extent 0 when it is `striped` (LVM's type of linear volumes too):
    /// its first stripe's PV key and starting extent on that PV. None for other types
    /// (raid1, thin, cache...), whose data lies in hidden sub-volumes.
    pub first_extent: Option<(String, u64)>,
    /// The type of the segment at extent 0: `striped`, `raid1`, `thin`... (`lvs` reports
    /// a striped segment of one stripe as `linear`; the metadata says `striped`.)
    pub segment_type: String,
    /// That segment's stripe count: 1 for a linear volume, 0 when it is not striped.
    pub stripe_count: u64,
    /// False for the hidden sub-volumes of raid, mirror, thin or cache volumes.
    pub visible: bool,
}

impl VgMetadata {
    /// The PV holding `lv`'s first extent and where that extent starts on it, in bytes.
    pub fn lv_start(&self, lv: &LvMeta) -> Option<(&PvMeta, u64)> {
        let (key, extent) = lv.first_extent.as_ref()?;
        let pv = self.pvs.iter().find(|pv| &pv.key == key)?;
        let offset = extent.checked_mul(self.extent_bytes)?;
        Some((pv, pv.pe_start_bytes.checked_add(offset)?))
    }
}

/// Parses the metadata text of a volume group as LVM writes it (libdm's config syntax):
/// `name { ... }` sections, `key = value` with integers, `"strings"` (with `\"` and `\\`
/// escapes), `'strings'` and `[lists]`, `#` comments; then the VG section and the
/// `contents` and `version` keys around it. A NUL byte ends the text.
pub fn parse_metadata(text: &str) -> Result<VgMetadata, String> {
    let root = Parser::new(text).file()?;
    let fault = |what: &str| format!("LVM metadata: {what}");
    match (get(&root, "contents"), get(&root, "version")) {
        (Some(Value::Str(c)), Some(Value::Int(1))) if c == "Text Format Volume Group" => {}
        _ => {
            return Err(fault(
                "not `contents = \"Text Format Volume Group\"`, `version = 1`",
            ))
        }
    }
    let vgs: Vec<(&String, &Vec<(String, Value)>)> = root
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Section(s) => Some((k, s)),
            _ => None,
        })
        .collect();
    let [(name, vg)] = vgs[..] else {
        return Err(fault(&format!(
            "{} volume group sections, not one",
            vgs.len()
        )));
    };
    let at = |what: &str| format!("volume group {name}{what}");
    let extent_bytes = sectors(vg, "extent_size", &at(""))?;
    let mut pvs = Vec::new();
    for (key, pv) in sections(vg, "physical_volumes") {
        let at = at(&format!(", physical volume {key}"));
        pvs.push(PvMeta {
            key: key.clone(),
            id: string(pv, "id", &at)?.to_owned(),
            pe_start_bytes: sectors(pv, "pe_start", &at)?,
            pe_count: number(pv, "pe_count", &at)?,
        });
    }
    let mut lvs = Vec::new();
    for (lv_name, lv) in sections(vg, "logical_volumes") {
        lvs.push(logical_volume(
            lv_name,
            lv,
            &pvs,
            &at(&format!(", logical volume {lv_name}")),
        )?);
    }
    Ok(VgMetadata {
        name: name.clone(),
        id: string(vg, "id", &at(""))?.to_owned(),
        seqno: number(vg, "seqno", &at(""))?,
        extent_bytes,
        pvs,
        lvs,
    })
}

fn logical_volume(
    name: &str,
    lv: &[(String, Value)],
    pvs: &[PvMeta],
    at: &str,
) -> Result<LvMeta, String> {
    let segments: Vec<_> = lv
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Section(s) if k.starts_with("segment") => Some((k, s)),
            _ => None,
        })
        .collect();
    let count = number(lv, "segment_count", at)?;
    if segments.len() as u64 != count {
        return Err(format!(
            "LVM metadata: {at}: segment_count {count}, but {} segments",
            segments.len()
        ));
    }
    let mut extents = 0u64;
    let mut first = None;
    for (key, segment) in &segments {
        let at = format!("{at}, {key}");
        extents = extents
            .checked_add(number(segment, "extent_count", &at)?)
            .ok_or_else(|| format!("LVM metadata: {at}: too many extents"))?;
        if number(segment, "start_extent", &at)? == 0 {
            first = Some((segment, at));
        }
    }
    let Some((segment, at)) = first else {
        return Err(format!("LVM metadata: {at}: no segment starts at extent 0"));
    };
    let segment_type = string(segment, "type", &at)?.to_owned();
    let (first_extent, stripe_count) = if segment_type == "striped" {
        let stripe_count = number(segment, "stripe_count", &at)?;
        match get(segment, "stripes") {
            Some(Value::List(l)) => match &l[..] {
                [Value::Str(pv), Value::Int(pe), ..] if *pe >= 0 => {
                    if !pvs.iter().any(|p| &p.key == pv) {
                        return Err(format!("LVM metadata: {at}: stripe on unknown {pv}"));
                    }
                    (Some((pv.clone(), *pe as u64)), stripe_count)
                }
                _ => {
                    return Err(format!(
                        "LVM metadata: {at}: stripes are not [\"pvN\", extent, ...]"
                    ))
                }
            },
            _ => return Err(format!("LVM metadata: {at}: no stripes list")),
        }
    } else {
        (None, 0)
    };
    let visible = match get(lv, "status") {
        Some(Value::List(flags)) => flags
            .iter()
            .any(|f| matches!(f, Value::Str(s) if s == "VISIBLE")),
        _ => false,
    };
    Ok(LvMeta {
        name: name.to_owned(),
        extents,
        first_extent,
        segment_type,
        stripe_count,
        visible,
    })
}

/// A parsed value of the config syntax.
#[derive(Debug)]
enum Value {
    Int(i64),
    Float,
    Str(String),
    List(Vec<Value>),
    Section(Vec<(String, Value)>),
}

fn get<'v>(section: &'v [(String, Value)], key: &str) -> Option<&'v Value> {
    section.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The subsections of `section`'s subsection `key`; none when it is missing.
fn sections<'v>(
    section: &'v [(String, Value)],
    key: &str,
) -> impl Iterator<Item = (&'v String, &'v [(String, Value)])> {
    let children = match get(section, key) {
        Some(Value::Section(children)) => &children[..],
        _ => &[],
    };
    children.iter().filter_map(|(k, v)| match v {
        Value::Section(s) => Some((k, &s[..])),
        _ => None,
    })
}

fn number(section: &[(String, Value)], key: &str, at: &str) -> Result<u64, String> {
    match get(section, key) {
        Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
        _ => Err(format!("LVM metadata: {at}: no {key} = <number>")),
    }
}

fn sectors(section: &[(String, Value)], key: &str, at: &str) -> Result<u64, String> {
    number(section, key, at)?
        .checked_mul(SECTOR as u64)
        .ok_or_else(|| format!("LVM metadata: {at}: {key} is too large"))
}

fn string<'v>(section: &'v [(String, Value)], key: &str, at: &str) -> Result<&'v str, String> {
    match get(section, key) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(format!("LVM metadata: {at}: no {key} = \"<string>\"")),
    }
}

enum Token {
    Open,
    Close,
    ListOpen,
    ListClose,
    Comma,
    Equals,
    Scalar(Value),
    Word(String),
    End,
}

/// libdm's config syntax, tokenised as libdm does: numbers only where a value may
/// stand (after `=`, `[` or `,`), a word elsewhere runs up to a space, `#`, `=`, `{`, `}`.
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    fn fault(&self, what: &str) -> String {
        format!("LVM metadata, line {}: {what}", self.line)
    }

    fn file(mut self) -> Result<Vec<(String, Value)>, String> {
        self.entries(None, 0)
    }

    /// The entries of a section up to its `}`, or of the file (`section` None) up to its
    /// end.
    fn entries(
        &mut self,
        section: Option<&str>,
        depth: usize,
    ) -> Result<Vec<(String, Value)>, String> {
        let mut entries = Vec::new();
        loop {
            match (self.token(false)?, section) {
                (Token::Close, Some(_)) | (Token::End, None) => return Ok(entries),
                (Token::Word(key) | Token::Scalar(Value::Str(key)), _) => {
                    let value = self.entry(&key, depth)?;
                    entries.push((key, value));
                }
                (Token::End, Some(name)) => {
                    return Err(self.fault(&format!("section {name} is not closed")))
                }
                _ => return Err(self.fault("expected a key or a section name")),
            }
        }
    }

    /// What follows a key: `= value` or `{ entries }`.
    fn entry(&mut self, key: &str, depth: usize) -> Result<Value, String> {
        match self.token(false)? {
            Token::Equals => self.value(),
            Token::Open if depth < MAX_DEPTH => {
                Ok(Value::Section(self.entries(Some(key), depth + 1)?))
            }
            Token::Open => Err(self.fault("sections nested too deep")),
            _ => Err(self.fault(&format!("expected `=` or `{{` after {key}"))),
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.token(true)? {
            Token::Scalar(v) => Ok(v),
            Token::Word(w) => Ok(Value::Str(w)),
            Token::ListOpen => {
                let mut items = Vec::new();
                loop {
                    match self.token(true)? {
                        Token::ListClose => return Ok(Value::List(items)),
                        Token::Comma => {}
                        Token::Scalar(v) => items.push(v),
                        Token::Word(w) => items.push(Value::Str(w)),
                        _ => return Err(self.fault("expected a value or `]` in a list")),
                    }
                }
            }
            _ => Err(self.fault("expected a value")),
        }
    }

    fn token(&mut self, value: bool) -> Result<Token, String> {
        self.skip_space();
        let Some(&c) = self.text.get(self.pos).filter(|&&c| c != 0) else {
            return Ok(Token::End);
        };
        let start = self.pos;
        self.pos += 1;
        Ok(match c {
            b'{' => Token::Open,
            b'}' => Token::Close,
            b'[' => Token::ListOpen,
            b']' => Token::ListClose,
            b',' => Token::Comma,
            b'=' => Token::Equals,
            b'"' | b'\'' => Token::Scalar(Value::Str(self.string(c)?)),
            b'0'..=b'9' | b'+' | b'-' | b'.' if value => {
                let mut dot = c == b'.';
                while let Some(&d) = self.text.get(self.pos) {
                    match d {
                        b'0'..=b'9' => {}
                        b'.' if !dot => dot = true,
                        _ => break,
                    }
                    self.pos += 1;
                }
                let number = String::from_utf8_lossy(&self.text[start..self.pos]);
                if dot {
                    Token::Scalar(Value::Float)
                } else {
                    let n = number
                        .parse()
                        .map_err(|_| self.fault(&format!("bad number {number}")))?;
                    Token::Scalar(Value::Int(n))
                }
            }
            _ => {
                while let Some(&d) = self.text.get(self.pos) {
                    let stops = d.is_ascii_whitespace()
                        || matches!(d, 0 | b'#' | b'=' | b'{' | b'}')
                        || (value && matches!(d, b',' | b'[' | b']'));
                    if stops {
                        break;
                    }
                    self.pos += 1;
                }
                Token::Word(String::from_utf8_lossy(&self.text[start..self.pos]).into_owned())
            }
        })
    }

    /// The rest of a string opened by `quote`: in `"`, `\"` and `\\` stand for `"` and
    /// `\`, another backslash stays; `'` has no escapes.
    fn string(&mut self, quote: u8) -> Result<String, String> {
        let line = self.line;
        let mut out = Vec::new();
        loop {
            match self.text.get(self.pos) {
                None | Some(0) => {
                    self.line = line;
                    return Err(self.fault("unterminated string"));
                }
                Some(&c) if c == quote => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') if quote == b'"' => match self.text.get(self.pos + 1) {
                    Some(&e @ (b'"' | b'\\')) => {
                        out.push(e);
                        self.pos += 2;
                    }
                    _ => {
                        out.push(b'\\');
                        self.pos += 1;
                    }
                },
                Some(&c) => {
                    self.line += usize::from(c == b'\n');
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn skip_space(&mut self) {
        while let Some(&c) = self.text.get(self.pos) {
            match c {
                b'\n' => self.line += 1,
                b'#' => {
                    while self
                        .text
                        .get(self.pos)
                        .is_some_and(|&c| c != b'\n' && c != 0)
                    {
                        self.pos += 1;
                    }
                    continue;
                }
                c if c.is_ascii_whitespace() => {}
                _ => return,
            }
            self.pos += 1;
        }
    }
}
