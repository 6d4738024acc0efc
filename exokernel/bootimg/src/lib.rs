//! The boot image: a page-aligned archive of named files that QEMU hands
//! the kernel as its `-initrd` module.
//!
//! Layout (little-endian): a 64-byte header (`MAGIC`, version, file count,
//! total length), then one 64-byte entry per file (name, NUL-padded, then
//! offset and size), then the file data, each file starting on a 4 KiB
//! boundary so a program can be mapped straight from the image. `parse`
//! checks everything before handing out a single byte.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// First eight bytes of every image.
pub const MAGIC: [u8; 8] = *b"EXOV6IMG";
/// Format version.
pub const VERSION: u32 = 1;
/// Most files in one image.
pub const MAX_FILES: usize = 1024;
/// Alignment of file data.
pub const ALIGN: u64 = 4096;
/// Longest file name in bytes.
pub const NAME_MAX: usize = 47;
const HEADER: usize = 64;
const ENTRY: usize = 64;
const NAME_FIELD: usize = 48;

/// What is wrong with an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than its header or entry table.
    Truncated,
    /// Does not start with `MAGIC`.
    BadMagic,
    /// Unknown format version.
    BadVersion(u32),
    /// More than `MAX_FILES` files.
    TooManyFiles(u64),
    /// The recorded total length disagrees with the data given.
    BadLength {
        /// Length in the header.
        recorded: u64,
        /// Bytes actually present.
        actual: u64,
    },
    /// Entry `index` has an empty, over-long, non-UTF-8 or otherwise
    /// invalid name.
    BadName(usize),
    /// Two entries share a name.
    DuplicateName(usize),
    /// Entry `index` starts off a 4 KiB boundary.
    Misaligned(usize),
    /// Entry `index` reaches past the end of the image.
    OutOfBounds(usize),
    /// Entry `index` overlaps the table or the previous file.
    Overlap(usize),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Truncated => write!(f, "truncated boot image"),
            ImageError::BadMagic => write!(f, "not an ExoV6 boot image (bad magic)"),
            ImageError::BadVersion(v) => write!(f, "unsupported boot image version {v}"),
            ImageError::TooManyFiles(n) => write!(f, "{n} files, more than {MAX_FILES}"),
            ImageError::BadLength { recorded, actual } => {
                write!(f, "header says {recorded} bytes but the image has {actual}")
            }
            ImageError::BadName(i) => write!(f, "file {i} has an invalid name"),
            ImageError::DuplicateName(i) => write!(f, "file {i} repeats an earlier name"),
            ImageError::Misaligned(i) => write!(f, "file {i} is not 4 KiB aligned"),
            ImageError::OutOfBounds(i) => write!(f, "file {i} reaches past the end of the image"),
            ImageError::Overlap(i) => write!(f, "file {i} overlaps other data"),
        }
    }
}

/// One file of an image.
#[derive(Clone, Copy, Debug)]
pub struct File<'a> {
    /// Its name.
    pub name: &'a str,
    /// Offset of its data in the image.
    pub offset: u64,
    /// Its bytes.
    pub data: &'a [u8],
}

/// A checked boot image.
#[derive(Debug)]
pub struct BootImage<'a> {
    bytes: &'a [u8],
    count: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && !name.contains(['/', '\0'])
}

/// Decodes entry `i`'s name field (unchecked beyond UTF-8).
fn entry_name(entry: &[u8], i: usize) -> Result<&str, ImageError> {
    let field = &entry[..NAME_FIELD];
    let len = field.iter().position(|b| *b == 0).ok_or(ImageError::BadName(i))?;
    if field[len..].iter().any(|b| *b != 0) {
        return Err(ImageError::BadName(i));
    }
    let name = core::str::from_utf8(&field[..len]).map_err(|_| ImageError::BadName(i))?;
    if !valid_name(name) {
        return Err(ImageError::BadName(i));
    }
    Ok(name)
}

impl<'a> BootImage<'a> {
    /// Checks `bytes` completely: header, table, names (unique), data
    /// alignment, bounds and overlap. `bytes` may extend past the recorded
    /// length (a module padded to a page) but not fall short of it.
    pub fn parse(bytes: &'a [u8]) -> Result<BootImage<'a>, ImageError> {
        if bytes.len() < HEADER {
            return Err(ImageError::Truncated);
        }
        if bytes[..8] != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(ImageError::BadVersion(version));
        }
        let count = u32_at(bytes, 12) as u64;
        if count > MAX_FILES as u64 {
            return Err(ImageError::TooManyFiles(count));
        }
        let total = u64_at(bytes, 16);
        if total > bytes.len() as u64 || total < HEADER as u64 {
            return Err(ImageError::BadLength { recorded: total, actual: bytes.len() as u64 });
        }
        let bytes = &bytes[..total as usize];
        let count = count as usize;
        let table_end = HEADER + count * ENTRY;
        if table_end > bytes.len() {
            return Err(ImageError::Truncated);
        }
        let image = BootImage { bytes, count };
        let mut end_of_previous = table_end as u64;
        for i in 0..count {
            let (name, offset, size) = image.entry(i)?;
            if image.raw_names().take(i).any(|n| n == Ok(name)) {
                return Err(ImageError::DuplicateName(i));
            }
            if offset % ALIGN != 0 {
                return Err(ImageError::Misaligned(i));
            }
            let end = offset.checked_add(size).ok_or(ImageError::OutOfBounds(i))?;
            if end > total {
                return Err(ImageError::OutOfBounds(i));
            }
            if offset < end_of_previous {
                return Err(ImageError::Overlap(i));
            }
            end_of_previous = end;
        }
        Ok(image)
    }

    fn entry(&self, i: usize) -> Result<(&'a str, u64, u64), ImageError> {
        let at = HEADER + i * ENTRY;
        let e = &self.bytes[at..at + ENTRY];
        Ok((entry_name(e, i)?, u64_at(e, NAME_FIELD), u64_at(e, NAME_FIELD + 8)))
    }

    fn raw_names(&self) -> impl Iterator<Item = Result<&'a str, ImageError>> + '_ {
        (0..self.count).map(|i| self.entry(i).map(|e| e.0))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if the image holds no files.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The files, in table order.
    pub fn files(&self) -> impl Iterator<Item = File<'a>> + '_ {
        (0..self.count).map(|i| {
            let (name, offset, size) = self.entry(i).expect("checked by parse");
            File { name, offset, data: &self.bytes[offset as usize..(offset + size) as usize] }
        })
    }

    /// The file called `name`.
    pub fn find(&self, name: &str) -> Option<File<'a>> {
        self.files().find(|f| f.name == name)
    }
}

fn align_up(v: u64) -> u64 {
    v.div_ceil(ALIGN) * ALIGN
}

/// Builds an image from `(name, data)` pairs, in that order.
pub fn build(files: &[(&str, &[u8])]) -> Result<Vec<u8>, ImageError> {
    if files.len() > MAX_FILES {
        return Err(ImageError::TooManyFiles(files.len() as u64));
    }
    for (i, (name, _)) in files.iter().enumerate() {
        if !valid_name(name) {
            return Err(ImageError::BadName(i));
        }
        if files[..i].iter().any(|(n, _)| n == name) {
            return Err(ImageError::DuplicateName(i));
        }
    }
    let mut offset = align_up((HEADER + files.len() * ENTRY) as u64);
    let mut table = Vec::new();
    for (name, data) in files {
        let mut entry = [0u8; ENTRY];
        entry[..name.len()].copy_from_slice(name.as_bytes());
        entry[NAME_FIELD..NAME_FIELD + 8].copy_from_slice(&offset.to_le_bytes());
        entry[NAME_FIELD + 8..].copy_from_slice(&(data.len() as u64).to_le_bytes());
        table.extend_from_slice(&entry);
        offset = align_up(offset + data.len() as u64);
    }
    let total =
        files.last().map_or((HEADER + table.len()) as u64, |(_, d)| offset - align_up(d.len() as u64) + d.len() as u64);
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.resize(HEADER, 0);
    out.extend_from_slice(&table);
    for (_, data) in files {
        out.resize(align_up(out.len() as u64) as usize, 0);
        out.extend_from_slice(data);
    }
    debug_assert_eq!(out.len() as u64, total);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        build(&[("root", b"\x7fELF root"), ("manifest", b"[program x]\n"), ("empty", b""), ("big", &[7u8; 5000])])
            .unwrap()
    }

    fn set_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let img = sample();
        let p = BootImage::parse(&img).unwrap();
        assert_eq!(p.len(), 4);
        let names: Vec<_> = p.files().map(|f| f.name).collect();
        assert_eq!(names, ["root", "manifest", "empty", "big"]);
        assert_eq!(p.find("root").unwrap().data, b"\x7fELF root");
        assert_eq!(p.find("big").unwrap().data, &[7u8; 5000][..]);
        assert!(p.find("empty").unwrap().data.is_empty());
        assert!(p.find("nope").is_none());
        assert!(p.files().all(|f| f.offset % ALIGN == 0));
        // Padding after the recorded length (a page-rounded module) is fine.
        let mut padded = img.clone();
        padded.resize(img.len() + 100, 0xff);
        assert_eq!(BootImage::parse(&padded).unwrap().len(), 4);
        assert!(BootImage::parse(&build(&[]).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn header_errors() {
        let img = sample();
        assert_eq!(BootImage::parse(&img[..10]).unwrap_err(), ImageError::Truncated);
        let mut b = img.clone();
        b[0] = b'X';
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::BadMagic);
        let mut b = img.clone();
        b[8] = 2;
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::BadVersion(2));
        let mut b = img.clone();
        b[12..16].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::TooManyFiles(5000));
        assert!(matches!(BootImage::parse(&img[..img.len() - 1]).unwrap_err(), ImageError::BadLength { .. }));
        let mut b = img.clone();
        b[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::Truncated);
    }

    #[test]
    fn entry_errors() {
        let img = sample();
        let entry = |i: usize| HEADER + i * ENTRY;
        let mut b = img.clone();
        set_u64(&mut b, entry(1) + NAME_FIELD, 4097);
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::Misaligned(1));
        let mut b = img.clone();
        set_u64(&mut b, entry(3) + NAME_FIELD + 8, 1 << 40);
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::OutOfBounds(3));
        let mut b = img.clone();
        set_u64(&mut b, entry(3) + NAME_FIELD + 8, u64::MAX);
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::OutOfBounds(3));
        let mut b = img.clone();
        set_u64(&mut b, entry(1) + NAME_FIELD, 0);
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::Overlap(1));
        let mut b = img.clone();
        b[entry(1)..entry(1) + 4].copy_from_slice(b"root");
        b[entry(1) + 4..entry(1) + 8].fill(0);
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::DuplicateName(1));
        for bad in [&b""[..], b"a/b", b"\xff\xfe"] {
            let mut b = img.clone();
            b[entry(0)..entry(0) + NAME_FIELD].fill(0);
            b[entry(0)..entry(0) + bad.len()].copy_from_slice(bad);
            assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::BadName(0), "{bad:?}");
        }
        let mut b = img.clone();
        b[entry(0) + 6] = b'x'; // text after the terminating NUL
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::BadName(0));
        let mut b = img.clone();
        b[entry(0)..entry(0) + NAME_FIELD].fill(b'a'); // no NUL at all
        assert_eq!(BootImage::parse(&b).unwrap_err(), ImageError::BadName(0));
    }

    #[test]
    fn build_rejects_bad_names() {
        let long = "x".repeat(NAME_MAX + 1);
        assert_eq!(build(&[(&long, b"")]).unwrap_err(), ImageError::BadName(0));
        assert_eq!(build(&[("a", b""), ("", b"")]).unwrap_err(), ImageError::BadName(1));
        assert_eq!(build(&[("a", b""), ("a", b"")]).unwrap_err(), ImageError::DuplicateName(1));
        assert!(build(&[(&"y".repeat(NAME_MAX), b"")]).is_ok());
    }

    proptest! {
        /// Whatever the bytes, `parse` accepts only what `parse` promises
        /// (valid unique names, aligned files in order after the table,
        /// inside the recorded length), and an error reports what the
        /// header really says and an entry that exists.
        #[test]
        fn mutations_give_sound_answers(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8), cut in 0usize..20000) {
            let mut b = sample();
            for (at, v) in flips {
                let n = b.len();
                b[at % n] = v;
            }
            b.truncate(cut.max(1));
            // A little-endian header field, read here independently.
            let header = |at: usize, len: usize| {
                b.get(at..at + len).map(|f| f.iter().rev().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
            };
            match BootImage::parse(&b) {
                Ok(p) => {
                    let total = header(16, 8).unwrap();
                    prop_assert!(p.len() <= MAX_FILES && total <= b.len() as u64);
                    let mut end_of_previous = (HEADER + p.len() * ENTRY) as u64;
                    for (i, f) in p.files().enumerate() {
                        prop_assert!(valid_name(f.name), "{:?}", f.name);
                        prop_assert!(p.files().take(i).all(|g| g.name != f.name), "{} twice", f.name);
                        prop_assert_eq!(f.offset % ALIGN, 0);
                        prop_assert!(f.offset >= end_of_previous, "{} overlaps", f.name);
                        end_of_previous = f.offset + f.data.len() as u64;
                        prop_assert!(end_of_previous <= total);
                        prop_assert_eq!(f.data, &b[f.offset as usize..end_of_previous as usize]);
                        prop_assert_eq!(p.find(f.name).map(|g| g.offset), Some(f.offset));
                    }
                }
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    let count = header(12, 4).unwrap_or(0) as usize;
                    match e {
                        ImageError::BadVersion(v) => {
                            prop_assert!(Some(u64::from(v)) == header(8, 4) && v != VERSION);
                        }
                        ImageError::TooManyFiles(n) => {
                            prop_assert!(Some(n) == header(12, 4) && n > MAX_FILES as u64);
                        }
                        ImageError::BadLength { recorded, actual } => {
                            prop_assert_eq!(Some(recorded), header(16, 8));
                            prop_assert_eq!(actual, b.len() as u64);
                        }
                        ImageError::BadName(i)
                        | ImageError::DuplicateName(i)
                        | ImageError::Misaligned(i)
                        | ImageError::OutOfBounds(i)
                        | ImageError::Overlap(i) => prop_assert!(i < count, "{e:?} of {count} files"),
                        ImageError::Truncated | ImageError::BadMagic => {}
                    }
                }
            }
        }
    }
}
