//! Large valid trees through `exo-img` and its sandboxed server: a
//! directory of thousands of files is listed and extracted whole and
//! byte-exact. (How fast is measured by `scripts/bench-hosted`, not
//! here: a test only proves that nothing is lost or changed.)

use std::path::Path;
use std::process::Command;

mod common;
use common::{scratch, tool, xorshift, EXO_IMG};

fn exo_ok(args: &[&str]) -> Vec<u8> {
    let o = Command::new(EXO_IMG).args(args).output().expect("run exo-img");
    assert!(o.status.success(), "exo-img {args:?} failed ({:?}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// `n` files of different small sizes and contents in `dir`, named
/// `f00000.dat` on; returns their names and contents.
fn many_files(dir: &Path, n: usize) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let len = (i * 37) % 3000 + usize::from(i % 7 == 0); // some empty
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let name = format!("f{i:05}.dat");
            std::fs::write(dir.join(&name), &data).unwrap();
            (name, data)
        })
        .collect()
}

/// Extracts all of `img` into `out` and checks that `dir` there holds
/// exactly `files`.
fn extract_and_check(img: &Path, out: &Path, dir: &str, files: &[(String, Vec<u8>)]) {
    exo_ok(&[img.to_str().unwrap(), "extract", "/", out.to_str().unwrap()]);
    let got = out.join(dir);
    let names: std::collections::BTreeSet<String> =
        std::fs::read_dir(&got).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), files.len(), "files extracted from {dir}");
    for (name, data) in files {
        assert!(names.contains(name), "{name} not extracted");
        assert!(std::fs::read(got.join(name)).unwrap() == *data, "{name} differs");
    }
}

#[test]
fn ext4_directory_of_thousands_of_files_extracts_whole() {
    let d = scratch("ext4-many");
    let src = d.join("src");
    let files = many_files(&src.join("many"), 4000);
    let img = d.join("many.img");
    tool("truncate", &["-s", "64M", img.to_str().unwrap()]);
    tool("mkfs.ext4", &["-q", "-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    let listed = exo_ok(&[img.to_str().unwrap(), "ls", "/many"]);
    assert_eq!(String::from_utf8(listed).unwrap().lines().count(), files.len());
    extract_and_check(&img, &d.join("out"), "many", &files);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fat_directory_of_a_thousand_files_extracts_whole() {
    let d = scratch("fat-many");
    let src = d.join("src");
    // mcopy itself slows down quickly with the size of a directory.
    let files = many_files(&src.join("many"), 1000);
    let img = d.join("many.img");
    tool("truncate", &["-s", "64M", img.to_str().unwrap()]);
    tool("mkfs.vfat", &["-F", "32", img.to_str().unwrap()]);
    tool("mcopy", &["-s", "-i", img.to_str().unwrap(), src.join("many").to_str().unwrap(), "::/"]);
    extract_and_check(&img, &d.join("out"), "many", &files);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_tree_deeper_than_path_max_is_listed_and_extracted_whole() {
    // 1,200 levels of `dir`: 4,800 bytes of path (beyond the host's
    // PATH_MAX and ext4-view's limits) with a file every 300 levels and
    // one at the bottom. mke2fs -d cannot copy such a tree (e2fsprogs
    // 1.47 aborts), so debugfs builds it one level at a time.
    const DEPTH: usize = 1200;
    let d = scratch("deep");
    let img = d.join("deep.img");
    tool("mkfs.ext4", &["-q", "-F", img.to_str().unwrap(), "32M"]);
    let mut script = String::new();
    for i in 0..DEPTH {
        script.push_str("mkdir dir\ncd dir\n");
        if i % 300 == 299 || i == DEPTH - 1 {
            let f = d.join(format!("level{}", i + 1));
            std::fs::write(&f, format!("level {}\n", i + 1)).unwrap();
            script.push_str(&format!("write {} level{}\n", f.display(), i + 1));
        }
    }
    std::fs::write(d.join("script"), script).unwrap();
    tool("debugfs", &["-w", "-f", d.join("script").to_str().unwrap(), img.to_str().unwrap()]);
    let i = img.to_str().unwrap();

    // Named on the command line, and listed to the bottom.
    let bottom = format!("{}/level{DEPTH}", "/dir".repeat(DEPTH));
    assert_eq!(exo_ok(&[i, "cat", &bottom]), format!("level {DEPTH}\n").as_bytes());
    let listing = String::from_utf8(exo_ok(&[i, "ls", "-R", "/"])).unwrap();
    assert!(listing.contains(&format!("level{DEPTH}")), "the listing stops before the bottom");

    // Extracted whole: find walks the result without PATH_MAX limits.
    let out = d.join("out");
    exo_ok(&[i, "extract", "/", out.to_str().unwrap()]);
    let found = Command::new("find")
        .arg(&out)
        .args(["-type", "f", "-execdir", "sh", "-c", "printf '%s:' \"$1\"; cat \"$1\"", "sh", "{}", ";"])
        .output()
        .unwrap();
    let mut got: Vec<String> = String::from_utf8(found.stdout).unwrap().lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = [300, 600, 900, 1200].iter().map(|n| format!("./level{n}:level {n}")).collect();
    want.sort();
    assert_eq!(got, want);
    let dirs = Command::new("find").arg(&out).args(["-type", "d"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&dirs.stdout).lines().count(), DEPTH + 2, "out, lost+found, every level");
    let _ = Command::new("rm").arg("-rf").arg(&*d).status();
}
