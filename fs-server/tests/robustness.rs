//! Robustness of `exo-img` against images built to hurt it, at test time
//! (mkfs.ext4 -d and debugfs -w for ext4; mkfs.vfat, mcopy and byte
//! patches for FAT): a server that runs out of memory is reported as
//! such (not as a sandbox violation); a bad entry (a name no path can
//! hold, an unreadable symlink, a name met twice) is its own error while
//! the rest of its directory lists and extracts byte-exact.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{exo, scratch, stderr, tool};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An ext4 image of a small tree: `a.txt`, `d/f`, a fast symlink `link`
/// (to `a.txt`) and `z.bin`; then the debugfs commands `cmds`.
fn ext4(dir: &Path, cmds: &[&str]) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(src.join("d/f"), b"in d\n").unwrap();
    std::fs::write(src.join("z.bin"), (0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let img = dir.join("ext4.img");
    tool("truncate", &["-s", "8M", img.to_str().unwrap()]);
    tool("mkfs.ext4", &["-q", "-b", "4096", "-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    for c in cmds {
        tool("debugfs", &["-w", "-R", c, img.to_str().unwrap()]);
    }
    img
}

/// A symlink claiming a 4 GiB target: following it makes the server
/// allocate that much, over its limit. It must say it ran out of memory
/// (exit 4), not that it broke its sandbox; reading the link itself is
/// refused before any allocation, and extraction goes on past it.
#[test]
fn out_of_memory_is_reported_as_such() {
    let dir = scratch("oom");
    let img = ext4(&dir, &["sif /link size 0xffffffff"]);
    let img = img.to_str().unwrap();
    let o = exo(&[img, "stat", "/link/x"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("ran out of memory on this image (limit 1024 MiB)"), "{err}");
    assert!(err.contains("exo-fs-server: out of memory (4294967295 bytes)"), "{err}");
    assert!(!err.contains("SIGSYS") && !err.contains("sandbox violation"), "{err}");
    // The server that follows answers normally.
    let o = exo(&[img, "cat", "/a.txt"]);
    assert_eq!(o.stdout, b"alpha\n");
    // Extraction: the link is one error, everything else byte-exact.
    let out = dir.join("out");
    let o = exo(&[img, "extract", "/", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/link") && err.contains("4294967295-byte target"), "{err}");
    assert!(err.contains("extracted 3 files; 1 errors"), "{err}");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(std::fs::read(out.join("d/f")).unwrap(), b"in d\n");
    assert_eq!(std::fs::read(out.join("z.bin")).unwrap(), std::fs::read(dir.join("src/z.bin")).unwrap());
    assert!(std::fs::symlink_metadata(out.join("link")).is_err());
}

/// A FAT image of `files` (name, contents) in its root, by mcopy.
fn fat(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let img = dir.join("fat.img");
    tool("mkfs.vfat", &["-C", img.to_str().unwrap(), "4096"]);
    for (name, data) in files {
        let local = dir.join("local");
        std::fs::write(&local, data).unwrap();
        tool("mcopy", &["-i", img.to_str().unwrap(), local.to_str().unwrap(), &format!("::{name}")]);
    }
    img
}

/// Replaces every UTF-16 occurrence of `from` by `to` (as long) in the
/// image: a piece of a long name (an entry holds 5, 6 and 2 of its
/// characters in three fields). The checksum of long names covers only
/// the short name, so the entries stay valid.
fn patch_long_name(img: &Path, from: &str, to: &str) {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let (from, to) = (utf16(from), utf16(to));
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(img).unwrap();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if bytes[i..i + from.len()] == from[..] {
            bytes[i..i + from.len()].copy_from_slice(&to);
            found += 1;
        }
        i += 1;
    }
    assert!(found > 0, "long name not found");
    std::fs::write(img, bytes).unwrap();
}

/// A FAT long name holding '/' is listed escaped, as a bad entry of its
/// own (exit 1); the rest of the directory lists and extracts byte-exact.
#[test]
fn a_fat_name_with_a_slash_is_one_bad_entry() {
    let dir = scratch("slash");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let img = fat(&dir, &[("goodfile.txt", b"good\n"), ("slashQname.txt", b"hidden\n"), ("large.bin", &big)]);
    patch_long_name(&img, "Qname.", "/name."); // "slash" | "Qname." | "txt"
    let img = img.to_str().unwrap();
    let o = exo(&[img, "ls", "/"]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(out.contains("slash\\x2fname.txt"), "{out}");
    assert!(out.contains("goodfile.txt") && out.contains("large.bin"), "{out}");
    assert!(err.contains("/slash\\x2fname.txt: bad entry"), "{err}");
    assert!(!err.contains("malformed"), "{err}");
    let o = exo(&[img, "ls", "-l", "-R", "/"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let dest = dir.join("out");
    let o = exo(&[img, "extract", "/", dest.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("extracted 2 files; 1 errors"), "{err}");
    assert_eq!(std::fs::read(dest.join("goodfile.txt")).unwrap(), b"good\n");
    assert_eq!(std::fs::read(dest.join("large.bin")).unwrap(), big);
    let mut names: Vec<_> = std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["goodfile.txt", "large.bin"]);
}

/// Two entries of one name (long names patched alike): the first is
/// extracted, the second is one error, and extraction goes on.
#[test]
fn a_duplicate_name_is_one_error_and_extraction_goes_on() {
    let dir = scratch("dup");
    let img = fat(&dir, &[("duplicate1.txt", b"first\n"), ("duplicate2.txt", b"second\n"), ("zlast.txt", b"last\n")]);
    patch_long_name(&img, "cate2.", "cate1."); // "dupli" | "cate2." | "txt"
    let img = img.to_str().unwrap();
    let dest = dir.join("out");
    let o = exo(&[img, "extract", "/", dest.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("duplicate1.txt: the name is in the directory twice"), "{err}");
    assert!(err.contains("extracted 2 files; 1 errors"), "{err}");
    assert_eq!(std::fs::read(dest.join("duplicate1.txt")).unwrap(), b"first\n");
    assert_eq!(std::fs::read(dest.join("zlast.txt")).unwrap(), b"last\n");
}
