//! `exo-img` as one self-sufficient program: it serves its images from
//! its own executable (no `exo-fs-server` beside it), and what its
//! sandboxed server says reaches `exo-img`'s standard error even when that
//! is a regular file, where the server itself may write nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{scratch, EXO_IMG};

fn tool(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{cmd} not runnable ({e}): scripts/test installs dosfstools and mtools"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A small FAT image holding `hello.txt` and `docs/notes.txt`.
fn fat_image(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("docs/notes.txt"), b"notes\n").unwrap();
    let img = dir.join("fat.img");
    let img_s = img.to_str().unwrap();
    tool("truncate", &["-s", "8M", img_s]);
    tool("mkfs.vfat", &["-n", "EXOONE", img_s]);
    let items = [src.join("hello.txt"), src.join("docs")];
    let mut args = vec!["-s", "-i", img_s];
    args.extend(items.iter().map(|p| p.to_str().unwrap()));
    args.push("::/");
    tool("mcopy", &args);
    img
}

#[test]
fn exo_img_alone_serves_its_images() {
    let d = scratch("alone");
    let img = fat_image(&d);
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let alone = bin.join("exo-img");
    std::fs::copy(EXO_IMG, &alone).unwrap();
    assert_eq!(std::fs::read_dir(&bin).unwrap().count(), 1, "exo-img is not alone");
    let run = |args: &[&str]| {
        // The copy was written with a file descriptor open for writing,
        // which a process the other test forks meanwhile inherits until
        // its own exec: executing the copy then fails with ETXTBSY for
        // that moment (Linux), so it is tried again.
        let mut tries = 0;
        let o = loop {
            match Command::new(&alone).args(args).output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        assert!(o.status.success(), "exo-img {args:?}: {o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let img = img.to_str().unwrap();
    let listing = run(&[img, "ls", "/"]);
    assert_eq!(listing.lines().collect::<Vec<_>>(), ["docs", "hello.txt"], "{listing}");
    assert_eq!(run(&[img, "cat", "/docs/notes.txt"]), "notes\n");
    // The same sandbox as ever.
    let info = run(&[img, "info"]);
    assert!(info.contains("seccomp allow-list") && info.contains("no file writes"), "{info}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn server_messages_reach_a_stderr_that_is_a_file() {
    let d = scratch("stderr");
    let img = fat_image(&d);
    let args = ["--test-violate", "panic", img.to_str().unwrap(), "info"];
    // Standard error a pipe: the reference.
    let piped = Command::new(EXO_IMG).args(args).output().unwrap();
    let piped_err = String::from_utf8_lossy(&piped.stderr);
    assert!(piped_err.contains("test hook: a crash in the server"), "{piped_err}");
    // Standard error a regular file, which the server may not write to.
    let log = d.join("stderr.log");
    let status = Command::new(EXO_IMG)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), piped.status.code(), "{logged}");
    assert_eq!(status.code(), Some(4), "{logged}");
    let said = logged.find("test hook: a crash in the server").unwrap_or_else(|| panic!("lost: {logged}"));
    let died = logged
        .find("file-system server died on this image: aborted (SIGABRT")
        .unwrap_or_else(|| panic!("not reported as a crash: {logged}"));
    assert!(said < died, "the server's last words come before its death: {logged}");
    // A server with nothing to say, and a client that ends at once.
    let o = Command::new(EXO_IMG)
        .args([img.to_str().unwrap(), "ls", "/"])
        .stderr(std::fs::File::create(&log).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    let _ = std::fs::remove_dir_all(&d);
}
