//! Partition tables: MBR and GPT, parsed with every field checked.

use crate::bytes::{le32, le64};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Reads `buf.len()` bytes at a byte offset of the disk.
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> rumpglue::Result<()> + 'a;

/// A partition (or the whole disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Byte offset of its first sector.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Human-readable name: `MBR 1`, `GPT 2`.
    pub name: String,
}

/// What is wrong with a partition table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartError {
    /// A GPT header or entry array is cut short or inconsistent.
    BadGpt(&'static str),
    /// A partition reaches past the end of the disk.
    OutOfBounds(String),
}

impl core::fmt::Display for PartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PartError::BadGpt(why) => write!(f, "bad GPT: {why}"),
            PartError::OutOfBounds(p) => write!(f, "partition {p} reaches past the end of the disk"),
        }
    }
}

const SECTOR: u64 = 512;

/// Finds the partitions of a disk of `disk_len` bytes. `read(offset, buf)`
/// reads from the disk. Returns an empty list when the first sector holds
/// no partition table.
pub fn partitions(disk_len: u64, read: &mut ReadAt) -> Result<Vec<Partition>, PartError> {
    let mut mbr = [0u8; 512];
    if disk_len < SECTOR || read(0, &mut mbr).is_err() || mbr[510..512] != [0x55, 0xaa] {
        return Ok(Vec::new());
    }
    let entries: Vec<(u8, u64, u64)> = (0..4)
        .map(|i| {
            let e = &mbr[446 + 16 * i..446 + 16 * (i + 1)];
            (e[4], le32(e, 8) as u64, le32(e, 12) as u64)
        })
        .collect();
    // A boot sector whose "entries" are garbage is not an MBR: every
    // entry's status byte must be 0 or 0x80.
    if (0..4).any(|i| mbr[446 + 16 * i] & 0x7f != 0) {
        return Ok(Vec::new());
    }
    if entries.iter().any(|e| e.0 == 0xee) {
        return gpt(disk_len, read);
    }
    let mut out = Vec::new();
    for (i, (kind, first, count)) in entries.into_iter().enumerate() {
        if kind == 0 || count == 0 {
            continue;
        }
        let name = format!("MBR {}", i + 1);
        let (start, len) = (first * SECTOR, count * SECTOR);
        if start.checked_add(len).is_none_or(|end| end > disk_len) {
            return Err(PartError::OutOfBounds(name));
        }
        out.push(Partition { start, len, name });
    }
    Ok(out)
}

fn gpt(disk_len: u64, read: &mut ReadAt) -> Result<Vec<Partition>, PartError> {
    let mut h = [0u8; 92];
    read(SECTOR, &mut h).map_err(|_| PartError::BadGpt("header unreadable"))?;
    if &h[0..8] != b"EFI PART" {
        return Err(PartError::BadGpt("no EFI PART signature"));
    }
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80) as u64;
    let size = le32(&h, 84) as u64;
    if !(128..=4096).contains(&size) || count > 1024 {
        return Err(PartError::BadGpt("implausible entry array"));
    }
    let array_start = entries_lba.checked_mul(SECTOR).ok_or(PartError::BadGpt("entry array out of range"))?;
    if array_start.checked_add(count * size).is_none_or(|end| end > disk_len) {
        return Err(PartError::BadGpt("entry array out of range"));
    }
    let mut out = Vec::new();
    let mut e = vec![0u8; size as usize];
    for i in 0..count {
        read(array_start + i * size, &mut e).map_err(|_| PartError::BadGpt("entry unreadable"))?;
        if e[0..16].iter().all(|b| *b == 0) {
            continue;
        }
        let (first, last) = (le64(&e, 32), le64(&e, 40));
        let name = format!("GPT {}", i + 1);
        if last < first {
            return Err(PartError::BadGpt("partition ends before it starts"));
        }
        let start = first.checked_mul(SECTOR).ok_or_else(|| PartError::OutOfBounds(name.clone()))?;
        let len = (last - first + 1).checked_mul(SECTOR).ok_or_else(|| PartError::OutOfBounds(name.clone()))?;
        if start.checked_add(len).is_none_or(|end| end > disk_len) {
            return Err(PartError::OutOfBounds(name));
        }
        out.push(Partition { start, len, name });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(disk: &[u8]) -> impl FnMut(u64, &mut [u8]) -> rumpglue::Result<()> + '_ {
        move |off, buf| {
            let off = off as usize;
            if off + buf.len() > disk.len() {
                return Err(rumpglue::Error::OutOfRange);
            }
            buf.copy_from_slice(&disk[off..off + buf.len()]);
            Ok(())
        }
    }

    fn mbr(entries: &[(u8, u32, u32)]) -> Vec<u8> {
        let mut d = vec![0u8; 4 << 20];
        for (i, (t, first, count)) in entries.iter().enumerate() {
            let e = 446 + 16 * i;
            d[e + 4] = *t;
            d[e + 8..e + 12].copy_from_slice(&first.to_le_bytes());
            d[e + 12..e + 16].copy_from_slice(&count.to_le_bytes());
        }
        d[510] = 0x55;
        d[511] = 0xaa;
        d
    }

    #[test]
    fn mbr_partitions() {
        let d = mbr(&[(0x83, 2048, 100), (0, 0, 0), (0x0c, 4096, 10)]);
        let p = partitions(d.len() as u64, &mut reader(&d)).unwrap();
        assert_eq!(
            p,
            vec![
                Partition { start: 2048 * 512, len: 100 * 512, name: "MBR 1".into() },
                Partition { start: 4096 * 512, len: 10 * 512, name: "MBR 3".into() },
            ]
        );
        let d = mbr(&[(0x83, 2048, 100_000)]);
        assert_eq!(partitions(d.len() as u64, &mut reader(&d)), Err(PartError::OutOfBounds("MBR 1".into())));
        let d = mbr(&[(0x83, u32::MAX, u32::MAX)]);
        assert!(partitions(d.len() as u64, &mut reader(&d)).is_err());
    }

    #[test]
    fn no_table() {
        let d = vec![0u8; 4096];
        assert_eq!(partitions(4096, &mut reader(&d)), Ok(vec![]));
        assert_eq!(partitions(100, &mut reader(&d[..100])), Ok(vec![]));
    }

    #[test]
    fn gpt_partitions_and_errors() {
        let mut d = mbr(&[(0xee, 1, 2047)]);
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        d[512 + 80..512 + 84].copy_from_slice(&4u32.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        let e = 1024 + 128; // second entry
        d[e] = 1; // type GUID non-zero
        d[e + 32..e + 40].copy_from_slice(&64u64.to_le_bytes());
        d[e + 40..e + 48].copy_from_slice(&127u64.to_le_bytes());
        let p = partitions(d.len() as u64, &mut reader(&d)).unwrap();
        assert_eq!(p, vec![Partition { start: 64 * 512, len: 64 * 512, name: "GPT 2".into() }]);

        let mut bad = d.clone();
        bad[e + 40..e + 48].copy_from_slice(&10u64.to_le_bytes());
        assert_eq!(
            partitions(bad.len() as u64, &mut reader(&bad)),
            Err(PartError::BadGpt("partition ends before it starts"))
        );
        let mut bad = d.clone();
        bad[512 + 84..512 + 88].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(partitions(bad.len() as u64, &mut reader(&bad)), Err(PartError::BadGpt("implausible entry array")));
        let mut bad = d.clone();
        bad[512] = b'X';
        assert_eq!(partitions(bad.len() as u64, &mut reader(&bad)), Err(PartError::BadGpt("no EFI PART signature")));
        let mut bad = d.clone();
        bad[512 + 72..512 + 80].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(partitions(bad.len() as u64, &mut reader(&bad)).is_err());
    }
}
