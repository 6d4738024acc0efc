//! `sha256sum FILE...`: the SHA-256 of each file, read through the POSIX
//! library from the disks' file servers (at `/d0` ...), printed as
//! coreutils does (`HASH  FILE`); relative paths from the directory it
//! was started in (the shell's). Without files, the SHA-256 of what its
//! standard input reads when that is a file (`sha256sum < FILE`, printed
//! as `HASH  -`). Exit status 1 if any file could not be read.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_posix as posix;
use exo_rt::{eprintln, println};
use sha2::{Digest, Sha256};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    if args.split_whitespace().next().is_none() {
        if !posix::stdin_redirected() {
            eprintln!("sha256sum: which files? (or sha256sum < FILE)");
            return 2;
        }
        return match hash(0) {
            Ok(digest) => {
                println!("{}  -", hex(&digest));
                0
            }
            Err(e) => {
                eprintln!("sha256sum: standard input: {e:?}");
                1
            }
        };
    }
    if !exo_utils::disks("sha256sum") {
        return 1;
    }
    let mut status = 0;
    for path in posix::argv::words(args) {
        let path = path.as_str();
        let hashed = posix::open(path, posix::flags::O_RDONLY).and_then(|fd| {
            let r = hash(fd);
            let _ = posix::close(fd);
            r
        });
        match hashed {
            Ok(digest) => println!("{}  {path}", hex(&digest)),
            Err(e) => {
                eprintln!("sha256sum: {path}: {e:?}");
                status = 1;
            }
        }
    }
    status
}

/// The SHA-256 of what `fd` reads, to its end.
fn hash(fd: posix::Fd) -> Result<[u8; 32], posix::Errno> {
    let mut buf = alloc::vec![0u8; 64 * 1024];
    let mut h = Sha256::new();
    loop {
        match posix::read(fd, &mut buf)? {
            0 => return Ok(h.finalize().into()),
            n => h.update(&buf[..n]),
        }
    }
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> alloc::string::String {
    bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
}
