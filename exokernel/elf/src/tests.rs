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

/// Little-endian fields of the raw bytes, read here independently of the
/// `elf` crate; `None` past the end.
fn raw(b: &[u8], at: usize, len: usize) -> Option<u64> {
    let bytes = b.get(at..at + len)?;
    Some(bytes.iter().rev().fold(0, |v, x| (v << 8) | u64::from(*x)))
}

/// Program header `i` of `b` as (p_type, flags, offset, vaddr, filesz,
/// memsz), read straight from the bytes.
fn raw_ph(b: &[u8], i: usize) -> Option<Ph> {
    let p = usize::try_from(raw(b, 32, 8)?).ok()?.checked_add(56 * i)?;
    Some((
        raw(b, p, 4)? as u32,
        raw(b, p + 4, 4)? as u32,
        raw(b, p + 8, 8)?,
        raw(b, p + 16, 8)?,
        raw(b, p + 32, 8)?,
        raw(b, p + 40, 8)?,
    ))
}

/// What every answer of `check(b)` must satisfy, whatever `b` holds: a
/// plan is safe to load and made of the file's own PT_LOAD headers; an
/// error names a segment that exists and values the file really holds.
fn assert_sound(b: &[u8], r: &Result<LoadPlan, ElfError>) {
    let phnum = raw(b, 56, 2).unwrap_or(0) as usize;
    match r {
        Ok(p) => {
            assert!(!p.segments.is_empty());
            for s in &p.segments {
                assert!(s.mem_size > 0 && s.file_size <= s.mem_size, "{s:x?}");
                let file_end = s.file_offset.checked_add(s.file_size);
                assert!(file_end.is_some_and(|e| e <= b.len() as u64), "{s:x?} outside a {}-byte file", b.len());
                assert!(s.vaddr >= USER_START && s.vaddr.checked_add(s.mem_size).is_some_and(|e| e <= USER_END));
                assert_eq!(s.vaddr % PAGE, s.file_offset % PAGE, "{s:x?}");
                assert!(!(s.writable && s.executable), "{s:x?}");
                let flags = if s.writable { PF_W } else { 0 } | if s.executable { PF_X } else { 0 };
                let from_file = (0..phnum).filter_map(|i| raw_ph(b, i)).any(|(t, f, off, va, fsz, msz)| {
                    t == PT_LOAD
                        && f & (PF_W | PF_X) == flags
                        && (off, va, fsz, msz) == (s.file_offset, s.vaddr, s.file_size, s.mem_size)
                });
                assert!(from_file, "{s:x?} is not one of the file's PT_LOAD headers");
            }
            for w in p.segments.windows(2) {
                let (a, c) = (w[0], w[1]);
                assert!((a.vaddr + a.mem_size - 1) / PAGE < c.vaddr / PAGE, "{a:x?} and {c:x?} share a page");
            }
            let in_text = |s: &Segment| s.executable && (s.vaddr..s.vaddr + s.mem_size).contains(&p.entry);
            assert!(p.segments.iter().any(in_text), "entry {:#x} outside the text", p.entry);
            assert_eq!(Some(p.entry), raw(b, 24, 8));
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            match *e {
                ElfError::WrongMachine(m) => assert_eq!(Some(u64::from(m)), raw(b, 18, 2)),
                ElfError::NotExecutable(t) => assert_eq!(Some(u64::from(t)), raw(b, 16, 2)),
                ElfError::BadEntry(entry) => assert_eq!(Some(entry), raw(b, 24, 8)),
                ElfError::OutsideUserRange(i, va) => {
                    assert!(i < phnum, "{e:?} of {phnum}");
                    assert_eq!(raw_ph(b, i).map(|ph| ph.3), Some(va), "{e:?}");
                }
                ElfError::FileLargerThanMemory(i)
                | ElfError::OutsideFile(i)
                | ElfError::AddressOverflow(i)
                | ElfError::NotPageCongruent(i)
                | ElfError::WritableAndExecutable(i) => assert!(i < phnum, "{e:?} of {phnum}"),
                ElfError::Overlap(i, j) => assert!(j < i && i < phnum, "{e:?} of {phnum}"),
                _ => {}
            }
        }
    }
}

#[test]
fn header_byte_flips_give_sound_answers() {
    // (The workspace's real user programs are loaded by the QEMU tests.)
    let b = good();
    let plan = check(&b).unwrap();
    for i in 0..(64 + 2 * 56) {
        for v in [0u8, 0xff, 0x80, 1] {
            let mut m = b.clone();
            m[i] = v;
            let r = check(&m);
            assert_sound(&m, &r);
            if v == b[i] {
                assert_eq!(r, Ok(plan.clone()), "byte {i} unchanged");
                continue;
            }
            // Fields whose effect is certain.
            let ph = i.checked_sub(64).map(|p| p % 56);
            let want = match i {
                0..=3 => Some(Err(ElfError::BadMagic)),
                4 => Some(Err(ElfError::Not64Bit)),
                5 => Some(Err(ElfError::NotLittleEndian)),
                6 => Some(Err(ElfError::Truncated)), // EI_VERSION
                7..=15 => Some(Ok(plan.clone())),    // OS ABI and padding: ignored
                16..=17 => Some(Err(ElfError::NotExecutable(raw(&m, 16, 2).unwrap() as u16))),
                18..=19 => Some(Err(ElfError::WrongMachine(raw(&m, 18, 2).unwrap() as u16))),
                24..=31 => {
                    let entry = raw(&m, 24, 8).unwrap();
                    Some(if (0x40_0000..0x40_0100).contains(&entry) {
                        Ok(LoadPlan { entry, ..plan.clone() })
                    } else {
                        Err(ElfError::BadEntry(entry))
                    })
                }
                // p_paddr and p_align are not used.
                _ if matches!(ph, Some(24..=31 | 48..=55)) => Some(Ok(plan.clone())),
                _ => None,
            };
            if let Some(want) = want {
                assert_eq!(r, want, "byte {i} set to {v:#x}");
            }
        }
    }
}

#[test]
fn takes_a_thread_local_template_inside_a_loaded_segment() {
    let rx = (PT_LOAD, RX, 0x1000, 0x40_0000, 0x100, 0x100);
    let rw = (PT_LOAD, RW, 0x2000, 0x40_1000, 0x80, 0x3000);
    let with = |tls: &[Ph]| {
        let mut phs = vec![rx, rw];
        phs.extend_from_slice(tls);
        check(&build(0x40_0010, &phs, 0x3000))
    };
    let p = with(&[(PT_TLS, 4, 0x2010, 0x40_1010, 0x20, 0x48)]).unwrap();
    assert_eq!(p.tls, Some(Tls { vaddr: 0x40_1010, file_size: 0x20, mem_size: 0x48, align: PAGE }));
    assert_eq!(check(&good()).unwrap().tls, None);
    // Only .tbss: nothing to copy, nothing to check against the segments.
    assert!(with(&[(PT_TLS, 4, 0, 0, 0, 0x100)]).unwrap().tls.is_some());
    for bad in [
        (PT_TLS, 4, 0x2010, 0x40_1010, 0x80, 0x40), // more bytes in the file than in memory
        (PT_TLS, 4, 0x2010, 0x40_1070, 0x20, 0x20), // runs past the segment's file bytes
        (PT_TLS, 4, 0x2010, 0x50_0000, 0x20, 0x20), // in no segment
        (PT_TLS, 4, 0x2010, 0x40_1010, 0x20, MAX_TLS + 1), // too large
        (PT_TLS, 4, 0x2010, u64::MAX - 8, 0x20, 0x20), // wraps
    ] {
        assert_eq!(with(&[bad]), Err(ElfError::BadTls), "{bad:?}");
    }
    let twice = (PT_TLS, 4, 0x2010, 0x40_1010, 0x20, 0x48);
    assert_eq!(with(&[twice, twice]), Err(ElfError::BadTls));
}
