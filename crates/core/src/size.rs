//! Process sizes (like Heroku's dyno sizes) and byte quantities.
//!
//! A [`Size`] is a named bundle of limits for one process: memory, CPU time and the number of
//! processes and threads it may have. Every process of a type runs at that type's size; a type
//! nobody sized runs at [`DEFAULT_SIZE`]. The figures are dozen's own, close to Heroku's
//! published ones where Heroku has the size:
//!
//! | size | memory | CPU | processes and threads |
//! |---|---|---|---|
//! | `tiny` | 128 MiB | 0.25 | 64 |
//! | `1x` (`standard-1x`, `eco`, `basic`) | 512 MiB | 1 | 256 |
//! | `2x` (`standard-2x`) | 1 GiB | 2 | 512 |
//! | `performance-m` | 2.5 GiB | 4 | 16384 |
//! | `performance-l` | 14 GiB | 8 | 32768 |
//!
//! ```
//! use dozen_core::size::{Size, format_bytes, parse_bytes};
//! let s = Size::parse("2X")?;
//! assert_eq!(s.name, "2x");
//! assert_eq!(format_bytes(s.memory), "1 GiB");
//! assert!(Size::parse("huge").unwrap_err().to_string().contains("1x"));
//! assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
//! # Ok::<(), dozen_core::size::SizeError>(())
//! ```

use std::fmt;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// What one process of a type may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// The name users write (`1x`).
    pub name: &'static str,
    /// Other names accepted for it (Heroku's `standard-1x`).
    pub aliases: &'static [&'static str],
    /// Memory in bytes; over it the process is killed.
    pub memory: u64,
    /// CPU time in thousandths of one CPU (`1000` = one full CPU).
    pub cpu_millis: u32,
    /// Processes and threads.
    pub pids: u32,
}

/// The size of a process type nobody sized.
pub const DEFAULT_SIZE: &str = "1x";

/// Every size, smallest first.
pub const SIZES: &[Size] = &[
    Size {
        name: "tiny",
        aliases: &[],
        memory: 128 * MIB,
        cpu_millis: 250,
        pids: 64,
    },
    Size {
        name: "1x",
        aliases: &["standard-1x", "eco", "basic", "free", "hobby"],
        memory: 512 * MIB,
        cpu_millis: 1000,
        pids: 256,
    },
    Size {
        name: "2x",
        aliases: &["standard-2x"],
        memory: GIB,
        cpu_millis: 2000,
        pids: 512,
    },
    Size {
        name: "performance-m",
        aliases: &[],
        memory: 5 * GIB / 2,
        cpu_millis: 4000,
        pids: 16384,
    },
    Size {
        name: "performance-l",
        aliases: &[],
        memory: 14 * GIB,
        cpu_millis: 8000,
        pids: 32768,
    },
];

/// A size name dozen does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown size `{given}`; the sizes are: {}", SizeList)]
pub struct SizeError {
    /// The name as given.
    pub given: String,
}

/// The sizes with their figures, for messages: `tiny (128 MiB, 0.25 CPU), 1x (...)`.
struct SizeList;

impl fmt::Display for SizeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in SIZES.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", s.name, s.describe())?;
        }
        Ok(())
    }
}

impl Size {
    /// The size called `name` (or one of its aliases), in any case.
    pub fn parse(name: &str) -> Result<&'static Size, SizeError> {
        let wanted = name.trim().to_ascii_lowercase();
        SIZES
            .iter()
            .find(|s| s.name == wanted || s.aliases.contains(&wanted.as_str()))
            .ok_or_else(|| SizeError {
                given: name.trim().to_string(),
            })
    }

    /// [`DEFAULT_SIZE`].
    pub fn default_size() -> &'static Size {
        &SIZES[1]
    }

    /// `512 MiB, 1 CPU, 256 processes`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} CPU, {} processes",
            format_bytes(self.memory),
            format_cpu(self.cpu_millis),
            self.pids
        )
    }
}

/// `0.25`, `1`, `2.5`: thousandths of a CPU as a number of CPUs.
pub fn format_cpu(millis: u32) -> String {
    let whole = millis / 1000;
    let frac = millis % 1000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Bytes for people: `512 MiB`, `2.5 GiB`, `12 KiB`, `900 B`, to one decimal.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", GIB), ("MiB", MIB), ("KiB", 1024)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = (u128::from(bytes) * 10 + u128::from(size) / 2) / u128::from(size);
            return if tenths % 10 == 0 {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} B")
}

/// Why a byte quantity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{given}` is not an amount of bytes; write it like 512MiB, 4GiB or 8G (K, M, G, T: powers of 1024)"
)]
pub struct BytesError {
    /// The text as given.
    pub given: String,
}

/// Read `4GiB`, `4G`, `4gb`, `512M`, `512MiB`, `1.5G` or a plain number of bytes. Every unit is
/// a power of 1024 (as memory limits are).
pub fn parse_bytes(text: &str) -> Result<u64, BytesError> {
    let err = || BytesError {
        given: text.trim().to_string(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(err()),
    };
    if number.is_empty() || number.matches('.').count() > 1 {
        return Err(err());
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| err())?
    };
    let mut bytes = whole.checked_mul(factor).ok_or_else(err)?;
    if !frac.is_empty() {
        let digits = u32::try_from(frac.len()).map_err(|_| err())?;
        let scale = 10u64.checked_pow(digits).ok_or_else(err)?;
        let f: u64 = frac.parse().map_err(|_| err())?;
        let part = u128::from(f) * u128::from(factor) / u128::from(scale);
        bytes = bytes
            .checked_add(u64::try_from(part).map_err(|_| err())?)
            .ok_or_else(err)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_in_any_case() {
        assert_eq!(Size::parse("1x").unwrap().name, "1x");
        assert_eq!(Size::parse("Standard-2X").unwrap().name, "2x");
        assert_eq!(Size::parse(" tiny ").unwrap().memory, 128 << 20);
        assert_eq!(Size::default_size().name, DEFAULT_SIZE);
    }

    #[test]
    fn an_unknown_size_lists_every_size() {
        let e = Size::parse("xl").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown size `xl`; the sizes are: tiny (128 MiB"),
            "{e}"
        );
        for s in SIZES {
            assert!(e.contains(s.name), "{e}");
        }
        assert!(e.contains("performance-m (2.5 GiB, 4 CPU"), "{e}");
    }

    #[test]
    fn bytes_read_and_written() {
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("8g"), Ok(8 << 30));
        assert_eq!(parse_bytes("512 MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        for bad in ["", "G", "4 parsecs", "1.2.3G", "-1G", "99999999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(512 << 20), "512 MiB");
        assert_eq!(format_bytes(5 << 29), "2.5 GiB");
        assert_eq!(format_bytes(900), "900 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_cpu(250), "0.25");
        assert_eq!(format_cpu(2000), "2");
    }
}
