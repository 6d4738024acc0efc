//! File names are bytes: names that are not UTF-8, or hold a backslash,
//! a newline or another control character, are listed escaped (as
//! `ls -b` shows them), can be named on the command line in that form,
//! and are extracted with their exact bytes, symlink targets too.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The names, as bytes, with the contents their files get.
fn odd_names() -> Vec<(&'static [u8], &'static [u8])> {
    vec![
        (b"caf\xe9", b"latin-1 name\n"),
        (b"back\\slash", b"a backslash\n"),
        (b"new\nline", b"a newline\n"),
        (b"esc\x1b[31m", b"an escape sequence\n"),
        (b"\xff\xfe", b"two bytes that are never UTF-8\n"),
        ("ünïcödé".as_bytes(), b"plain UTF-8\n"),
    ]
}

/// Every entry under `root`: relative path bytes -> file contents, or
/// `dir`, or `link -> target bytes`.
fn tree_of(root: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                [&b"link -> "[..], std::fs::read_link(&p).unwrap().as_os_str().as_bytes()].concat()
            } else if m.is_dir() {
                todo.push(p);
                b"dir".to_vec()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.insert(rel, what);
        }
    }
    out
}

#[test]
fn names_that_are_not_utf8_are_listed_escaped_named_and_extracted_exactly() {
    let d = scratch("odd");
    let src = d.join("src");
    let sub = src.join(OsStr::from_bytes(b"dir\xe9"));
    std::fs::create_dir_all(&sub).unwrap();
    for (name, data) in odd_names() {
        std::fs::write(src.join(OsStr::from_bytes(name)), data).unwrap();
        std::fs::write(sub.join(OsStr::from_bytes(name)), data).unwrap();
    }
    std::os::unix::fs::symlink(OsStr::from_bytes(b"caf\xe9"), src.join("to-cafe")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"../back\\slash"), sub.join("up")).unwrap();
    // Through both ext readers: ext4-view, and ExoV6's own (old ext2).
    for (k, options) in [&[][..], &["-t", "ext2", "-O", "^filetype"][..]].into_iter().enumerate() {
        let img = d.join(format!("odd{k}.img"));
        let mut args = vec!["-q", "-F"];
        args.extend(options);
        args.extend(["-d", src.to_str().unwrap(), img.to_str().unwrap(), "8M"]);
        tool("mkfs.ext4", &args);
        check_odd_names(&img, &src, &d.join(format!("out{k}")));
    }
}

fn check_odd_names(img: &Path, src: &Path, out: &Path) {
    let i = img.to_str().unwrap();

    // Listed as `ls -b` shows them, every one a good entry.
    let o = exo(&[i, "ls", "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = String::from_utf8(o.stdout).unwrap();
    for shown in ["caf\\xe9", "back\\\\slash", "new\\x0aline", "esc\\x1b[31m", "\\xff\\xfe", "ünïcödé", "dir\\xe9"]
    {
        assert!(listing.lines().any(|l| l == shown), "{shown:?} not listed in {listing:?}");
    }

    // Named on the command line the way they are listed.
    for (arg, want) in [("/caf\\xe9", &b"latin-1 name\n"[..]), ("/dir\\xe9/back\\\\slash", b"a backslash\n")] {
        let o = exo(&[i, "cat", arg]);
        assert!(o.status.success(), "cat {arg}: {}", stderr(&o));
        assert_eq!(o.stdout, want, "cat {arg}");
    }
    let o = exo(&[i, "cat", "/to-cafe"]);
    assert_eq!(o.stdout, b"latin-1 name\n", "through a symlink to a non-UTF-8 name: {}", stderr(&o));
    // An escape that names no file is an error, not another file.
    let o = exo(&[i, "cat", "/caf\\xe"]);
    assert!(!o.status.success(), "a malformed escape was read");

    // Extracted byte for byte: names, contents, symlink targets.
    let o = exo(&[i, "extract", "/", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut got = tree_of(out);
    got.remove(&b"lost+found"[..]);
    assert_eq!(got, tree_of(src), "{i}");
}

#[test]
fn fat_names_keep_working_and_an_escaped_path_names_them() {
    // FAT names are text: escaping changes nothing for them, and a path
    // that unescapes to bytes no FAT name has finds nothing.
    let d = scratch("fat");
    let img = d.join("fat.img");
    tool("mkfs.fat", &["-C", img.to_str().unwrap(), "2048"]);
    let f = d.join("file");
    std::fs::write(&f, b"fat file\n").unwrap();
    tool("mcopy", &["-i", img.to_str().unwrap(), f.to_str().unwrap(), "::/Süß.txt"]);
    let i = img.to_str().unwrap();
    let o = exo(&[i, "cat", "/Süß.txt"]);
    assert_eq!(o.stdout, b"fat file\n", "{}", stderr(&o));
    let o = exo(&[i, "cat", "/S\\xfc\\xdf.txt"]);
    assert!(!o.status.success(), "Latin-1 bytes matched a UTF-8 FAT name");
}
