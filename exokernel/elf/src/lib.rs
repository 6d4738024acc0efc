//! Load plans for static x86_64 ELF programs, checked before anything is
//! mapped.
//!
//! The `elf` crate parses; this crate decides whether the result is safe
//! to load: little-endian x86_64 executables, no interpreter, segments
//! inside the file and inside the user range, page-congruent, not sharing
//! pages, never writable and executable at once, and an entry point in an
//! executable segment. Every rejection has its own error.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_TLS};
use elf::endian::AnyEndian;
use elf::file::Class;
use elf::ElfBytes;

const PAGE: u64 = 4096;

/// One loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Bytes in memory (the part past `file_size` is zero).
    pub mem_size: u64,
    /// Offset of the file bytes.
    pub file_offset: u64,
    /// Bytes taken from the file.
    pub file_size: u64,
    /// Mapped writable.
    pub writable: bool,
    /// Mapped executable.
    pub executable: bool,
}

/// What to map and where to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Entry point.
    pub entry: u64,
    /// Segments sorted by address.
    pub segments: Vec<Segment>,
    /// The thread-local storage template, if the program has one.
    pub tls: Option<Tls>,
}

/// The thread-local storage template (`PT_TLS`): each thread's block
/// starts as a copy of its `file_size` bytes at `vaddr`, zeros up to
/// `mem_size`, aligned to `align`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tls {
    /// Where the initialised part lies in the loaded image.
    pub vaddr: u64,
    /// Initialised bytes.
    pub file_size: u64,
    /// Bytes of each thread's block.
    pub mem_size: u64,
    /// Alignment of the block (a power of two, at most a page).
    pub align: u64,
}

/// Largest thread-local block a program may ask for.
pub const MAX_TLS: u64 = 1 << 20;

/// Why a file cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The header or program-header table is cut short or malformed.
    Truncated,
    /// Not an ELF file.
    BadMagic,
    /// A 32-bit ELF file.
    Not64Bit,
    /// A big-endian ELF file.
    NotLittleEndian,
    /// Built for another machine (the `e_machine` value).
    WrongMachine(u16),
    /// Not an executable (`ET_EXEC`); the `e_type` value.
    NotExecutable(u16),
    /// Has no loadable segment.
    NoSegments,
    /// Asks for a dynamic loader.
    Dynamic,
    /// Segment `i` has more file bytes than memory bytes.
    FileLargerThanMemory(usize),
    /// Segment `i`'s file bytes lie outside the file.
    OutsideFile(usize),
    /// Segment `i` wraps around the address space.
    AddressOverflow(usize),
    /// Segment `i` lies outside the user range (e.g. in kernel space).
    OutsideUserRange(usize, u64),
    /// Segment `i`'s address and file offset differ modulo the page size.
    NotPageCongruent(usize),
    /// Segment `i` shares a page with segment `j`.
    Overlap(usize, usize),
    /// Segment `i` is both writable and executable.
    WritableAndExecutable(usize),
    /// The entry point is not in an executable segment.
    BadEntry(u64),
    /// The thread-local storage template is malformed: more than one,
    /// larger than [`MAX_TLS`], badly aligned, or not inside a loaded
    /// segment's file bytes.
    BadTls,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Truncated => write!(f, "truncated or malformed ELF file"),
            ElfError::BadMagic => write!(f, "not an ELF file"),
            ElfError::Not64Bit => write!(f, "not a 64-bit ELF file"),
            ElfError::NotLittleEndian => write!(f, "not a little-endian ELF file"),
            ElfError::WrongMachine(m) => write!(f, "built for machine {m}, not x86_64"),
            ElfError::NotExecutable(t) => write!(f, "ELF type {t} is not a static executable"),
            ElfError::NoSegments => write!(f, "no loadable segment"),
            ElfError::Dynamic => write!(f, "dynamically linked (has an interpreter)"),
            ElfError::FileLargerThanMemory(i) => {
                write!(f, "segment {i} has more file bytes than memory")
            }
            ElfError::OutsideFile(i) => write!(f, "segment {i} reaches past the end of the file"),
            ElfError::AddressOverflow(i) => write!(f, "segment {i} wraps around the address space"),
            ElfError::OutsideUserRange(i, a) => {
                write!(f, "segment {i} at {a:#x} is outside user space")
            }
            ElfError::NotPageCongruent(i) => {
                write!(f, "segment {i} address and offset differ modulo 4 KiB")
            }
            ElfError::Overlap(i, j) => write!(f, "segment {i} overlaps segment {j}"),
            ElfError::WritableAndExecutable(i) => {
                write!(f, "segment {i} is writable and executable")
            }
            ElfError::BadEntry(e) => {
                write!(f, "entry point {e:#x} is not in an executable segment")
            }
            ElfError::BadTls => write!(f, "malformed thread-local storage segment"),
        }
    }
}

/// Checks `image` and returns what to map, with every segment inside
/// `[user_start, user_end)`.
pub fn plan(image: &[u8], user_start: u64, user_end: u64) -> Result<LoadPlan, ElfError> {
    if image.len() < 4 || image[..4] != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    if image.len() >= 5 && image[4] != 2 {
        return Err(ElfError::Not64Bit);
    }
    if image.len() >= 6 && image[5] != 1 {
        return Err(ElfError::NotLittleEndian);
    }
    let file = ElfBytes::<AnyEndian>::minimal_parse(image).map_err(|_| ElfError::Truncated)?;
    let h = &file.ehdr;
    if h.class != Class::ELF64 {
        return Err(ElfError::Not64Bit);
    }
    if h.endianness != AnyEndian::Little {
        return Err(ElfError::NotLittleEndian);
    }
    if h.e_machine != EM_X86_64 {
        return Err(ElfError::WrongMachine(h.e_machine));
    }
    if h.e_type != ET_EXEC {
        return Err(ElfError::NotExecutable(h.e_type));
    }
    let table = file.segments().ok_or(ElfError::NoSegments)?;
    let mut segments = Vec::new();
    let mut tls = None;
    for (i, ph) in table.iter().enumerate() {
        if ph.p_type == PT_INTERP {
            return Err(ElfError::Dynamic);
        }
        if ph.p_type == PT_TLS {
            let align = ph.p_align.max(1);
            let ok = tls.is_none() && ph.p_filesz <= ph.p_memsz && ph.p_memsz <= MAX_TLS && align.is_power_of_two();
            if !ok || align > PAGE {
                return Err(ElfError::BadTls);
            }
            tls = Some(Tls { vaddr: ph.p_vaddr, file_size: ph.p_filesz, mem_size: ph.p_memsz, align });
            continue;
        }
        if ph.p_type != PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(ElfError::FileLargerThanMemory(i));
        }
        let file_end = ph.p_offset.checked_add(ph.p_filesz).ok_or(ElfError::OutsideFile(i))?;
        if file_end > image.len() as u64 {
            return Err(ElfError::OutsideFile(i));
        }
        let end = ph.p_vaddr.checked_add(ph.p_memsz).ok_or(ElfError::AddressOverflow(i))?;
        if ph.p_vaddr < user_start || end > user_end {
            return Err(ElfError::OutsideUserRange(i, ph.p_vaddr));
        }
        if ph.p_vaddr % PAGE != ph.p_offset % PAGE {
            return Err(ElfError::NotPageCongruent(i));
        }
        let (writable, executable) = (ph.p_flags & PF_W != 0, ph.p_flags & PF_X != 0);
        if writable && executable {
            return Err(ElfError::WritableAndExecutable(i));
        }
        segments.push((
            i,
            Segment {
                vaddr: ph.p_vaddr,
                mem_size: ph.p_memsz,
                file_offset: ph.p_offset,
                file_size: ph.p_filesz,
                writable,
                executable,
            },
        ));
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    segments.sort_by_key(|(_, s)| s.vaddr);
    for w in segments.windows(2) {
        let (i, a) = w[0];
        let (j, b) = w[1];
        // Compare whole pages: two segments may not share one.
        let a_last_page = (a.vaddr + a.mem_size - 1) / PAGE;
        if b.vaddr / PAGE <= a_last_page {
            return Err(ElfError::Overlap(j.max(i), j.min(i)));
        }
    }
    let entry = h.e_entry;
    if !segments.iter().any(|(_, s)| s.executable && entry >= s.vaddr && entry < s.vaddr + s.mem_size) {
        return Err(ElfError::BadEntry(entry));
    }
    // The template must lie in the file bytes of a loaded segment (the
    // runtime copies it from its own memory).
    if let Some(t) = tls.filter(|t| t.file_size > 0) {
        let end = t.vaddr.checked_add(t.file_size).ok_or(ElfError::BadTls)?;
        if !segments.iter().any(|(_, s)| t.vaddr >= s.vaddr && end <= s.vaddr + s.file_size) {
            return Err(ElfError::BadTls);
        }
    }
    Ok(LoadPlan { entry, segments: segments.into_iter().map(|(_, s)| s).collect(), tls })
}

#[cfg(test)]
mod tests;
