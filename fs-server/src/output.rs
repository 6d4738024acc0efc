//! The bound on what `exo-img extract` writes (`--max-output`): a hostile
//! image can claim a terabyte-sized file, or reach the same directories
//! again and again; extraction charges every file's contents and every
//! entry before writing it, and stops before the bound.

use std::path::Path;

/// What each extracted entry counts against `--max-output` besides its
/// contents: about what a name and an inode take on the destination.
pub const ENTRY_COST: u64 = 512;
/// The default `--max-output`: this many times the image's size ...
pub const OUTPUT_FACTOR: u64 = 4;
/// ... and this much more (sparse files read as more than they take).
pub const OUTPUT_SLACK: u64 = 64 << 20;

/// The output's bound (`--max-output`): contents and `ENTRY_COST` per
/// entry are charged before they are written.
pub struct Budget {
    /// Bytes charged so far.
    pub used: u64,
    /// The most that may be charged.
    pub limit: u64,
}

impl Budget {
    /// Charges `n` bytes for `what`, or says why they do not fit.
    pub fn charge(&mut self, n: u64, what: &str) -> Result<(), String> {
        match self.used.checked_add(n) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(())
            }
            _ => Err(format!(
                "{what}: its {n} bytes would take the output past {} bytes, the most --max-output allows (by \
                 default 4 times the image's size and 64 MiB)",
                self.limit
            )),
        }
    }

    /// Gives back `n` bytes charged but not written.
    pub fn refund(&mut self, n: u64) {
        self.used = self.used.saturating_sub(n);
    }

    /// Charges what a file's `written` bytes and `len` more take beyond
    /// its listed `size` (charged before it was opened).
    pub fn grow(&mut self, size: u64, written: u64, len: usize, what: &str) -> std::io::Result<()> {
        let before = written.saturating_sub(size);
        let after = (written + len as u64).saturating_sub(size);
        self.charge(after - before, what).map_err(std::io::Error::other)
    }
}

/// Parses a byte count with an optional K, M, G or T (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?}: the suffix must be K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a number of bytes"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

/// The default output bound for `image`: `OUTPUT_FACTOR` times its size
/// and `OUTPUT_SLACK` (just the slack if its size cannot be read).
pub fn default_max_output(image: &Path) -> u64 {
    let size = std::fs::File::open(image).and_then(|mut f| std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)));
    size.unwrap_or(0).saturating_mul(OUTPUT_FACTOR).saturating_add(OUTPUT_SLACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        for bad in ["", "K", "1.5G", "-1", "3X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_budget_stops_before_the_bound() {
        let mut b = Budget { used: 0, limit: 1000 };
        assert!(b.charge(600, "a").is_ok());
        assert!(b.charge(401, "b").unwrap_err().contains("--max-output"));
        b.refund(100);
        assert!(b.charge(500, "c").is_ok());
        // A file longer than listed is charged for what is beyond.
        let mut b = Budget { used: 100, limit: 200 };
        assert!(b.grow(100, 0, 100, "f").is_ok());
        assert!(b.grow(100, 100, 100, "f").is_ok());
        assert!(b.grow(100, 200, 1, "f").is_err());
    }
}
