//! Sizes as Bareon writes them in provision.json.
//!
//! The grammar follows Bareon's `SizeUnit.new_by_string(raw, default_unit='MiB')` and
//! `StorageParser._size` (`bareon/utils/block_device.py`, `bareon/drivers/data/ironic.py`):
//!
//! ```text
//! size   = "remaining" | number [unit]      surrounding whitespace is ignored,
//!                                           and so is whitespace between number and unit
//! number = ["+"] (digits ["." [digits]] | "." digits) [("e" | "E") ["+" | "-"] digits]
//! unit   = "%" | "B" | "s" (512-byte sectors)
//!        | "KiB" | "MiB" | "GiB" | "TiB" | "PiB" | "EiB" | "ZiB" | "YiB"   powers of 1024
//!        | "kB" | "KB" | "MB" | "GB" | "TB" | "PB" | "EB" | "ZB" | "YB"    powers of 1000
//! ```
//!
//! A number without a unit is MiB (`"4000"` is 4000 MiB). Units are case-sensitive as in
//! Bareon, which spells kilo `KB`; the SI spelling `kB` is accepted as well. Fractions are
//! exact and rounded down to whole bytes (Bareon truncates too); percentages keep two
//! decimals (`"12.345%"` is 12.34 %). Digits after the 19th significant one are ignored.
//! Zero, negative numbers, `nan`/`inf`, percentages over 100 and amounts over `u64::MAX`
//! bytes are errors. Bareon's parser also takes Python-only spellings such as `"1_000"`;
//! those are rejected here.

use serde::Serialize;

use crate::text::did_you_mean;

/// One mebibyte, the unit of a bare number.
pub const MIB: u64 = 1 << 20;

/// A parsed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// An exact amount, in bytes (never zero).
    Bytes(u64),
    /// A share of the disk's (or volume group's) usable space, in hundredths of a percent:
    /// `5000` is 50 %. Between 1 and 10000.
    Percent(u32),
    /// Whatever space the other volumes leave.
    Remaining,
}

/// Why a size string was rejected. The messages read after `invalid size "...": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("it is empty")]
    Empty,
    #[error(
        "expected \"remaining\" or a number with an optional unit, \
         such as \"4000\" (MiB), \"10 GiB\" or \"50%\""
    )]
    Malformed,
    #[error("unknown unit \"{unit}\"{}; units: {UNIT_LIST}", did_you_mean(*.suggestion))]
    UnknownUnit {
        unit: String,
        suggestion: Option<&'static str>,
    },
    #[error("it must be a finite number")]
    NotFinite,
    #[error("it must be positive")]
    Negative,
    #[error("it must be greater than zero")]
    Zero,
    #[error("a percentage cannot exceed 100%")]
    OverHundredPercent,
    #[error("it is too large (the limit is 16 EiB)")]
    TooLarge,
}

const UNIT_LIST: &str = "B, s, KiB, MiB, GiB, TiB, PiB, EiB, ZiB, YiB, kB, KB, MB, GB, TB, PB, \
                         EB, ZB, YB, %";

/// What a unit multiplies by, as powers of two and five (every multiplier is 2^a * 5^b),
/// so that fractions stay exact. Percent counts hundredths: 100 = 2^2 * 5^2.
#[derive(Clone, Copy)]
struct Factor {
    twos: u32,
    fives: u32,
}

const PERCENT: Factor = Factor { twos: 2, fives: 2 };

fn unit_factor(unit: &str) -> Option<Factor> {
    let binary = |n: u32| Factor {
        twos: 10 * n,
        fives: 0,
    };
    let decimal = |n: u32| Factor {
        twos: 3 * n,
        fives: 3 * n,
    };
    Some(match unit {
        "" | "MiB" => binary(2),
        "B" => Factor { twos: 0, fives: 0 },
        "s" => Factor { twos: 9, fives: 0 },
        "KiB" => binary(1),
        "GiB" => binary(3),
        "TiB" => binary(4),
        "PiB" => binary(5),
        "EiB" => binary(6),
        "ZiB" => binary(7),
        "YiB" => binary(8),
        "kB" | "KB" => decimal(1),
        "MB" => decimal(2),
        "GB" => decimal(3),
        "TB" => decimal(4),
        "PB" => decimal(5),
        "EB" => decimal(6),
        "ZB" => decimal(7),
        "YB" => decimal(8),
        _ => return None,
    })
}

/// The accepted spelling of a unit written in the wrong case ("gib" -> "GiB").
fn unit_in_other_case(unit: &str) -> Option<&'static str> {
    const UNITS: [&str; 19] = [
        "kB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB", "MB", "GB", "TB", "PB", "EB",
        "ZB", "YB", "B", "s", "%",
    ];
    UNITS.into_iter().find(|u| u.eq_ignore_ascii_case(unit))
}

/// A decimal number: `mantissa * 10^exponent`, mantissa holding at most 19 digits.
struct Decimal {
    mantissa: u64,
    exponent: i64,
}

const MAX_DIGITS: u32 = 19;

/// Reads a number at the start of `s`; returns it and the rest, or `None` when `s` does not
/// start with one.
fn read_number(s: &str) -> Option<(Decimal, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut mantissa: u64 = 0;
    let mut digits = 0u32;
    let mut exponent: i64 = 0;
    let mut seen_digit = false;

    let mut take = |digit: u8, fraction: bool, exponent: &mut i64| {
        if digits < MAX_DIGITS {
            if mantissa != 0 || digit != 0 {
                mantissa = mantissa * 10 + u64::from(digit);
                digits += 1;
            }
            if fraction {
                *exponent -= 1;
            }
        } else if !fraction {
            *exponent += 1;
        }
    };

    while i < bytes.len() && bytes[i].is_ascii_digit() {
        take(bytes[i] - b'0', false, &mut exponent);
        seen_digit = true;
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            take(bytes[i] - b'0', true, &mut exponent);
            seen_digit = true;
            i += 1;
        }
    }
    if !seen_digit {
        return None;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        let negative = match bytes.get(j) {
            Some(b'-') => {
                j += 1;
                true
            }
            Some(b'+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let start = j;
        let mut value: i64 = 0;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            value = (value * 10 + i64::from(bytes[j] - b'0')).min(100_000);
            j += 1;
        }
        if j > start {
            exponent += if negative { -value } else { value };
            i = j;
        }
    }
    Some((Decimal { mantissa, exponent }, &s[i..]))
}

/// `floor(number * 2^twos * 5^fives)`, exactly; `None` when it exceeds `u64::MAX`.
fn scale(number: &Decimal, factor: Factor) -> Option<u64> {
    // number * factor = mantissa * 2^(twos + exponent) * 5^(fives + exponent)
    let twos = i64::from(factor.twos) + number.exponent;
    let fives = i64::from(factor.fives) + number.exponent;
    let mut numerator = u128::from(number.mantissa);
    let mut denominator: Option<u128> = Some(1);
    for (base, power) in [(2u128, twos), (5u128, fives)] {
        let magnitude = u32::try_from(power.unsigned_abs()).unwrap_or(u32::MAX);
        if power >= 0 {
            if numerator == 0 {
                continue;
            }
            numerator = numerator.checked_mul(base.checked_pow(magnitude)?)?;
        } else {
            denominator = denominator.and_then(|d| d.checked_mul(base.checked_pow(magnitude)?));
        }
    }
    // A denominator past u128 exceeds any numerator that fit: the quotient is zero.
    let quotient = denominator.map_or(0, |d| numerator / d);
    u64::try_from(quotient).ok()
}

impl Size {
    /// Parses a size string (see the module documentation for the grammar).
    pub fn parse(raw: &str) -> Result<Size, SizeError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(SizeError::Empty);
        }
        if s == "remaining" {
            return Ok(Size::Remaining);
        }
        let (negative, unsigned) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let Some((number, rest)) = read_number(unsigned) else {
            let word = unsigned.to_ascii_lowercase();
            if ["nan", "inf", "infinity"].contains(&word.as_str()) {
                return Err(SizeError::NotFinite);
            }
            return Err(SizeError::Malformed);
        };
        let unit = rest.trim_start();
        let percent = unit == "%";
        let factor = if percent {
            PERCENT
        } else {
            unit_factor(unit).ok_or_else(|| {
                if unit.chars().all(|c| c.is_ascii_alphabetic()) {
                    SizeError::UnknownUnit {
                        unit: unit.to_string(),
                        suggestion: unit_in_other_case(unit),
                    }
                } else {
                    SizeError::Malformed
                }
            })?
        };
        if negative && number.mantissa != 0 {
            return Err(SizeError::Negative);
        }
        let value = scale(&number, factor);
        if percent {
            match value {
                Some(0) => Err(SizeError::Zero),
                Some(v) if v <= 10_000 => Ok(Size::Percent(v as u32)),
                _ => Err(SizeError::OverHundredPercent),
            }
        } else {
            match value {
                Some(0) => Err(SizeError::Zero),
                Some(v) => Ok(Size::Bytes(v)),
                None => Err(SizeError::TooLarge),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> u64 {
        match Size::parse(s) {
            Ok(Size::Bytes(b)) => b,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn bare_numbers_are_mebibytes() {
        assert_eq!(bytes("4000"), 4000 * MIB);
        assert_eq!(bytes(" 1 "), MIB);
        assert_eq!(bytes("0.5"), MIB / 2);
        assert_eq!(bytes("+2"), 2 * MIB);
    }

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(bytes("1 KiB"), 1024);
        assert_eq!(bytes("10GiB"), 10 << 30);
        assert_eq!(bytes("2 TiB"), 2 << 40);
        assert_eq!(bytes("1 PiB"), 1 << 50);
        assert_eq!(bytes("15 EiB"), 15 << 60);
        assert_eq!(bytes("15000 MB"), 15_000_000_000);
        assert_eq!(bytes("1 kB"), 1000);
        assert_eq!(bytes("1 KB"), 1000);
        assert_eq!(bytes("3 GB"), 3_000_000_000);
        assert_eq!(bytes("1 TB"), 1_000_000_000_000);
        assert_eq!(bytes("1 PB"), 10u64.pow(15));
        assert_eq!(bytes("18 EB"), 18 * 10u64.pow(18));
        assert_eq!(bytes("512 B"), 512);
        assert_eq!(bytes("8 s"), 4096);
    }

    #[test]
    fn fractions_are_exact_and_round_down() {
        assert_eq!(bytes("1.5 GiB"), 3 << 29);
        assert_eq!(bytes("0.1 KiB"), 102);
        assert_eq!(bytes("2.5 B"), 2);
        assert_eq!(bytes(".5 KiB"), 512);
        assert_eq!(bytes("1. KiB"), 1024);
        assert_eq!(bytes("1e3 B"), 1000);
        assert_eq!(bytes("1E-3 MB"), 1000);
        assert_eq!(bytes("0.000001 YiB"), 1_208_925_819_614_629_174);
        assert_eq!(bytes("0.001 ZB"), 10u64.pow(18));
        // Digits after the 19th significant one are ignored, not rounded.
        assert_eq!(bytes("1.00000000000000000009 KiB"), 1024);
        assert_eq!(
            bytes("1.23456789012345678901 EiB"),
            1_423_359_869_420_436_337
        );
        assert_eq!(
            Size::parse("12345678901234567890123 B"),
            Err(SizeError::TooLarge)
        );
    }

    #[test]
    fn percentages_keep_two_decimals() {
        assert_eq!(Size::parse("50%"), Ok(Size::Percent(5000)));
        assert_eq!(Size::parse("50 %"), Ok(Size::Percent(5000)));
        assert_eq!(Size::parse("100%"), Ok(Size::Percent(10_000)));
        assert_eq!(Size::parse("12.345%"), Ok(Size::Percent(1234)));
        assert_eq!(Size::parse("0.01%"), Ok(Size::Percent(1)));
        assert_eq!(Size::parse("0.001%"), Err(SizeError::Zero));
        assert_eq!(Size::parse("100.01%"), Err(SizeError::OverHundredPercent));
        assert_eq!(Size::parse("1e9%"), Err(SizeError::OverHundredPercent));
    }

    #[test]
    fn remaining_is_a_keyword() {
        assert_eq!(Size::parse("remaining"), Ok(Size::Remaining));
        assert_eq!(Size::parse("  remaining "), Ok(Size::Remaining));
        assert_eq!(Size::parse("Remaining"), Err(SizeError::Malformed));
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(Size::parse(""), Err(SizeError::Empty));
        assert_eq!(Size::parse("   "), Err(SizeError::Empty));
        assert_eq!(Size::parse("0"), Err(SizeError::Zero));
        assert_eq!(Size::parse("0.0 GiB"), Err(SizeError::Zero));
        assert_eq!(Size::parse("0.1 B"), Err(SizeError::Zero));
        assert_eq!(Size::parse("-5"), Err(SizeError::Negative));
        assert_eq!(Size::parse("-1 GiB"), Err(SizeError::Negative));
        assert_eq!(Size::parse("-50%"), Err(SizeError::Negative));
        assert_eq!(Size::parse("NaN"), Err(SizeError::NotFinite));
        assert_eq!(Size::parse("inf"), Err(SizeError::NotFinite));
        assert_eq!(Size::parse("-infinity"), Err(SizeError::NotFinite));
        assert_eq!(Size::parse("GiB"), Err(SizeError::Malformed));
        assert_eq!(Size::parse("abc"), Err(SizeError::Malformed));
        assert_eq!(Size::parse("1_000"), Err(SizeError::Malformed));
        assert_eq!(Size::parse("10 GiB!"), Err(SizeError::Malformed));
        assert_eq!(Size::parse("1.2.3"), Err(SizeError::Malformed));
        assert_eq!(Size::parse("16 EiB"), Err(SizeError::TooLarge));
        assert_eq!(Size::parse("1 ZB"), Err(SizeError::TooLarge));
        assert_eq!(Size::parse("1e30"), Err(SizeError::TooLarge));
        assert_eq!(Size::parse("1e99999999999"), Err(SizeError::TooLarge));
        assert_eq!(Size::parse("1e-99999999999"), Err(SizeError::Zero));
    }

    #[test]
    fn unknown_units_suggest_the_right_case() {
        assert_eq!(
            Size::parse("10 gb"),
            Err(SizeError::UnknownUnit {
                unit: "gb".into(),
                suggestion: Some("GB")
            })
        );
        assert_eq!(
            Size::parse("1 kib"),
            Err(SizeError::UnknownUnit {
                unit: "kib".into(),
                suggestion: Some("KiB")
            })
        );
        let err = Size::parse("4 G").unwrap_err();
        assert_eq!(
            err,
            SizeError::UnknownUnit {
                unit: "G".into(),
                suggestion: None
            }
        );
        assert!(err
            .to_string()
            .starts_with("unknown unit \"G\"; units: B, s, KiB"));
        assert_eq!(
            Size::parse("1 Mib").unwrap_err().to_string(),
            format!("unknown unit \"Mib\" (did you mean \"MiB\"?); units: {UNIT_LIST}")
        );
    }

    #[test]
    fn serialises_tagged() {
        let json =
            serde_json::to_string(&[Size::Bytes(1), Size::Percent(5000), Size::Remaining]).unwrap();
        assert_eq!(json, r#"[{"bytes":1},{"percent":5000},"remaining"]"#);
    }
}
