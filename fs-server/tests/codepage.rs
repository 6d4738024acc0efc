//! FAT short names with bytes from 0x80 up, as DOS, Windows and mtools
//! write them: decoded in code page 437 by default (as Linux's vfat) and
//! in 850 with `--codepage 850`, for listing, stat, reading and changes.
//!
//! The image is made at test time with mkfs.vfat and mcopy (plain 8.3
//! names, so no long-name entries); the names are then patched into the
//! root directory's entries byte by byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{scratch, EXO_IMG};

/// 0x82 is `é` in both pages.
const CAFE: &[u8; 11] = b"CAF\x82    TXT";
/// 0x9B is `¢` in code page 437 and `ø` in 850.
const COST: &[u8; 11] = b"COST\x9B   TXT";
/// Attributes of a long-name (VFAT) entry.
const ATTR_LFN: u8 = 0x0F;

fn tool(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{cmd} not runnable ({e}): scripts/test installs dosfstools and mtools"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn exo(img: &Path, args: &[&str]) -> Output {
    Command::new(EXO_IMG).arg(img).args(args).output().expect("run exo-img")
}

fn exo_ok(img: &Path, args: &[&str]) -> String {
    let o = exo(img, args);
    assert!(o.status.success(), "exo-img {args:?} failed ({:?}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("exo-img prints UTF-8")
}

fn fsck(img: &Path) {
    let o = Command::new("fsck.fat").arg("-n").arg(img).output().expect("fsck.fat (dosfstools)");
    assert!(o.status.success(), "fsck.fat -n: {}", String::from_utf8_lossy(&o.stdout));
}

/// The root directory's 32-byte entries (up to the end marker) of a
/// FAT12/16 image, and where they start.
fn root_entries(img: &[u8]) -> (usize, Vec<[u8; 32]>) {
    let le16 = |at: usize| usize::from(u16::from_le_bytes([img[at], img[at + 1]]));
    let (bytes_per_sector, reserved, fats, root_count, fat_sectors) =
        (le16(11), le16(14), usize::from(img[16]), le16(17), le16(22));
    assert!(fat_sectors > 0 && root_count > 0, "not a FAT12/16 boot sector");
    let start = (reserved + fats * fat_sectors) * bytes_per_sector;
    let entries = img[start..start + 32 * root_count]
        .chunks_exact(32)
        .map(|e| <[u8; 32]>::try_from(e).unwrap())
        .take_while(|e| e[0] != 0)
        .collect();
    (start, entries)
}

/// The short names in the root directory (deleted entries left out),
/// with a check that none has a long name.
fn short_names(img: &Path) -> Vec<[u8; 11]> {
    let bytes = std::fs::read(img).unwrap();
    let (_, entries) = root_entries(&bytes);
    let live: Vec<_> = entries.into_iter().filter(|e| e[0] != 0xE5).collect();
    assert!(live.iter().all(|e| e[11] != ATTR_LFN), "a long-name entry in the root directory");
    live.iter().map(|e| <[u8; 11]>::try_from(&e[..11]).unwrap()).collect()
}

/// A 2 MiB FAT12 image holding `CAF\x82.TXT` ("café\n") and
/// `COST\x9B.TXT` ("cost\n"), with no long names.
fn image(d: &Path) -> PathBuf {
    let img = d.join("fat.img");
    let img_s = img.to_str().unwrap();
    tool("mkfs.vfat", &["-C", img_s, "2048"]);
    for (local, content, name) in [("abc", "café\n", "::ABC.TXT"), ("def", "cost\n", "::DEF.TXT")] {
        let p = d.join(local);
        std::fs::write(&p, content).unwrap();
        tool("mcopy", &["-i", img_s, p.to_str().unwrap(), name]);
    }
    assert_eq!(short_names(&img), [*b"ABC     TXT", *b"DEF     TXT"], "mcopy wrote other entries");
    let mut bytes = std::fs::read(&img).unwrap();
    let (start, entries) = root_entries(&bytes);
    for (i, new) in [CAFE, COST].into_iter().enumerate() {
        let at = start + 32 * i;
        assert_eq!(bytes[at..at + 32], entries[i]);
        bytes[at..at + 11].copy_from_slice(new);
    }
    std::fs::write(&img, bytes).unwrap();
    fsck(&img);
    img
}

#[test]
fn short_names_are_code_page_437_by_default() {
    let d = scratch("437");
    let img = image(&d);
    assert_eq!(exo_ok(&img, &["ls", "/"]), "CAFé.TXT\nCOST¢.TXT\n");
    assert_eq!(exo_ok(&img, &["--codepage", "437", "ls", "/"]), "CAFé.TXT\nCOST¢.TXT\n");
    let stat = exo_ok(&img, &["stat", "/CAFé.TXT"]);
    assert!(stat.starts_with("/CAFé.TXT: file 0644 size 6 "), "{stat}");
    assert_eq!(exo_ok(&img, &["cat", "/CAFé.TXT"]), "café\n");
    assert_eq!(exo_ok(&img, &["cat", "/café.txt"]), "café\n", "ASCII letters match in any case");
    assert_eq!(exo_ok(&img, &["cat", "/COST¢.TXT"]), "cost\n");
    let missing = exo(&img, &["cat", "/COSTø.TXT"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
}

#[test]
fn codepage_850_decodes_the_bytes_that_differ() {
    let d = scratch("850");
    let img = image(&d);
    assert_eq!(exo_ok(&img, &["--codepage", "850", "ls", "/"]), "CAFé.TXT\nCOSTø.TXT\n");
    assert_eq!(exo_ok(&img, &["--codepage", "cp850", "cat", "/COSTø.TXT"]), "cost\n");
    assert_eq!(exo_ok(&img, &["--codepage", "850", "cat", "/CAFé.TXT"]), "café\n");
    let stat = exo_ok(&img, &["--codepage", "850", "stat", "/COSTø.TXT"]);
    assert!(stat.starts_with("/COSTø.TXT: file 0644 size 5 "), "{stat}");
    let missing = exo(&img, &["--codepage", "850", "stat", "/COST¢.TXT"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
}

#[test]
fn an_unknown_codepage_is_a_usage_error() {
    let d = scratch("unknown");
    let img = image(&d);
    for bad in ["852", "utf8"] {
        let o = exo(&img, &["--codepage", bad, "ls", "/"]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("unknown code page") && err.contains("437") && err.contains("850"), "{err}");
    }
}

/// Changes find the entries by their decoded names, so they change those
/// entries (not new look-alikes), and the volume stays sound.
#[test]
fn changes_find_short_names_in_the_chosen_page() {
    let d = scratch("rw");
    let img = image(&d);
    let new = d.join("new");
    std::fs::write(&new, "crème brûlée\n").unwrap();
    exo_ok(&img, &["--rw", "put", new.to_str().unwrap(), "/CAFé.TXT"]);
    exo_ok(&img, &["--rw", "--codepage", "850", "rm", "/COSTø.TXT"]);
    assert_eq!(short_names(&img), [*CAFE], "the same entry, rewritten; the other removed");
    assert_eq!(exo_ok(&img, &["cat", "/CAFé.TXT"]), "crème brûlée\n");
    fsck(&img);
}
