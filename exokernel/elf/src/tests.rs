//! Tests with ELF files built byte by byte.

use super::*;

const USER_START: u64 = 0x10_0000;
const USER_END: u64 = 0x0000_8000_0000_0000;

/// (p_type, flags, offset, vaddr, filesz, memsz)
type Ph = (u32, u32, u64, u64, u64, u64);

fn build(entry: u64, phs: &[Ph], file_len: usize) -> Vec<u8> {
    let mut b = vec![0u8; file_len.max(64 + 56 * phs.len())];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little-endian
    b[6] = 1; // version
    b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
    b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    b[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
    for (i, (t, flags, off, va, fsz, msz)) in phs.iter().enumerate() {
        let p = 64 + 56 * i;
        b[p..p + 4].copy_from_slice(&t.to_le_bytes());
        b[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
        b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        b[p + 16..p + 24].copy_from_slice(&va.to_le_bytes());
        b[p + 24..p + 32].copy_from_slice(&va.to_le_bytes());
        b[p + 32..p + 40].copy_from_slice(&fsz.to_le_bytes());
        b[p + 40..p + 48].copy_from_slice(&msz.to_le_bytes());
        b[p + 48..p + 56].copy_from_slice(&PAGE.to_le_bytes());
    }
    b
}

const RX: u32 = 5;
const RW: u32 = 6;

fn good() -> Vec<u8> {
    build(
        0x40_0010,
        &[(PT_LOAD, RX, 0x1000, 0x40_0000, 0x100, 0x100), (PT_LOAD, RW, 0x2000, 0x40_1000, 0x80, 0x3000)],
        0x3000,
    )
}

fn check(b: &[u8]) -> Result<LoadPlan, ElfError> {
    plan(b, USER_START, USER_END)
}

#[test]
fn accepts_a_static_executable() {
    let p = check(&good()).unwrap();
    assert_eq!(p.entry, 0x40_0010);
    assert_eq!(p.segments.len(), 2);
    assert!(p.segments[0].executable && !p.segments[0].writable);
    assert!(p.segments[1].writable && !p.segments[1].executable);
    assert_eq!(p.segments[1].mem_size, 0x3000);
}

#[test]
fn rejects_header_problems() {
    assert_eq!(check(b"MZ\x90\x00"), Err(ElfError::BadMagic));
    assert_eq!(check(b""), Err(ElfError::BadMagic));
    let mut b = good();
    b[4] = 1;
    assert_eq!(check(&b), Err(ElfError::Not64Bit));
    let mut b = good();
    b[5] = 2;
    assert_eq!(check(&b), Err(ElfError::NotLittleEndian));
    let mut b = good();
    b[18] = 40; // ARM
    assert_eq!(check(&b), Err(ElfError::WrongMachine(40)));
    let mut b = good();
    b[16] = 3; // ET_DYN
    assert_eq!(check(&b), Err(ElfError::NotExecutable(3)));
    let mut b = good();
    b[32..40].copy_from_slice(&0xffff_fff0u64.to_le_bytes()); // phoff off the end
    assert_eq!(check(&b), Err(ElfError::Truncated));
}

#[test]
fn rejects_segment_problems() {
    let cases: Vec<(Vec<Ph>, ElfError)> = vec![
        (vec![], ElfError::NoSegments),
        (vec![(PT_LOAD, RX, 0x1000, 0x40_0000, 0, 0)], ElfError::NoSegments),
        (
            vec![(PT_INTERP, 4, 0x1000, 0x40_0000, 0x10, 0x10), (PT_LOAD, RX, 0x1000, 0x40_0000, 0x10, 0x10)],
            ElfError::Dynamic,
        ),
        (vec![(PT_LOAD, RX, 0x1000, 0x40_0000, 0x200, 0x100)], ElfError::FileLargerThanMemory(0)),
        (vec![(PT_LOAD, RX, 0x1000, 0x40_0000, 0x10_0000, 0x10_0000)], ElfError::OutsideFile(0)),
        (vec![(PT_LOAD, RX, u64::MAX - 4, 0x40_0000, 0x10, 0x10)], ElfError::OutsideFile(0)),
        (vec![(PT_LOAD, RX, 0x1000, u64::MAX - 0xfff, 0x10, 0x2000)], ElfError::AddressOverflow(0)),
        (
            vec![(PT_LOAD, RX, 0x1000, 0xffff_ffff_8000_0000, 0x10, 0x10)],
            ElfError::OutsideUserRange(0, 0xffff_ffff_8000_0000),
        ),
        (vec![(PT_LOAD, RX, 0x1000, 0x7fff_ffff_f000, 0x10, 0x2000)], ElfError::OutsideUserRange(0, 0x7fff_ffff_f000)),
        (vec![(PT_LOAD, RX, 0x1000, 0x1000, 0x10, 0x10)], ElfError::OutsideUserRange(0, 0x1000)),
        (vec![(PT_LOAD, RX, 0x1000, 0x40_0800, 0x10, 0x10)], ElfError::NotPageCongruent(0)),
        (vec![(PT_LOAD, 7, 0x1000, 0x40_0000, 0x10, 0x10)], ElfError::WritableAndExecutable(0)),
        (
            vec![(PT_LOAD, RX, 0x1000, 0x40_0000, 0x10, 0x1800), (PT_LOAD, RW, 0x2000, 0x40_1000, 0x10, 0x10)],
            ElfError::Overlap(1, 0),
        ),
        (
            // Same page, disjoint bytes: still refused (permissions are per page).
            vec![(PT_LOAD, RX, 0x1000, 0x40_0000, 0x10, 0x10), (PT_LOAD, RW, 0x1800, 0x40_0800, 0x10, 0x10)],
            ElfError::Overlap(1, 0),
        ),
    ];
    for (phs, want) in cases {
        let b = build(0x40_0000, &phs, 0x3000);
        assert_eq!(check(&b), Err(want.clone()), "{phs:x?}");
        assert!(!want.to_string().is_empty());
    }
}

#[test]
fn rejects_bad_entry_points() {
    let phs = [(PT_LOAD, RX, 0x1000, 0x40_0000, 0x100, 0x100), (PT_LOAD, RW, 0x2000, 0x40_1000, 0x80, 0x80)];
    assert_eq!(check(&build(0x40_1000, &phs, 0x3000)), Err(ElfError::BadEntry(0x40_1000)), "entry in data");
    assert_eq!(check(&build(0x40_0100, &phs, 0x3000)), Err(ElfError::BadEntry(0x40_0100)), "just past text");
    assert_eq!(check(&build(0, &phs, 0x3000)), Err(ElfError::BadEntry(0)));
}

#[test]
fn truncation_never_panics() {
    let b = good();
    for len in 0..b.len() {
        let r = check(&b[..len]);
        // The segments reach 0x2080, so any cut before that must fail;
        // after it the file still holds everything the plan needs.
        if len < 0x2080 {
            assert!(r.is_err(), "accepted a file cut at {len}");
        } else {
            assert_eq!(r, check(&b), "cut at {len}");
        }
    }
}

#[test]
fn header_byte_flips_never_panic() {
    // (The workspace's real user programs are loaded by the QEMU tests.)
    let b = good();
    for i in 0..(64 + 2 * 56) {
        for v in [0u8, 0xff, 0x80, 1] {
            let mut m = b.clone();
            m[i] = v;
            let _ = check(&m);
        }
    }
}
