//! `sha256sum FILE...`: the SHA-256 of each file, read through the POSIX
//! library from the disks' file servers (at `/d0` ...), printed as
//! coreutils does (`HASH  FILE`); relative paths from the directory it
//! was started in (the shell's). Exit status 1 if any
//! file could not be read.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_posix as posix;
use exo_rt::println;
use sha2::{Digest, Sha256};

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    if args.split_whitespace().next().is_none() {
        println!("sha256sum: which files?");
        return 2;
    }
    if posix::mount_disks().is_empty() {
        println!("sha256sum: given no file server (an endpoint named files)");
        return 1;
    }
    let mut buf = alloc::vec![0u8; 64 * 1024];
    let mut status = 0;
    for path in args.split_whitespace() {
        let hashed = posix::open(path, posix::flags::O_RDONLY).and_then(|fd| {
            let mut h = Sha256::new();
            let r = loop {
                match posix::read(fd, &mut buf) {
                    Ok(0) => break Ok(h.finalize()),
                    Ok(n) => h.update(&buf[..n]),
                    Err(e) => break Err(e),
                }
            };
            let _ = posix::close(fd);
            r
        });
        match hashed {
            Ok(digest) => {
                let mut hex = alloc::string::String::new();
                for b in digest.iter() {
                    hex.push_str(&alloc::format!("{b:02x}"));
                }
                println!("{hex}  {path}");
            }
            Err(e) => {
                println!("sha256sum: {path}: {e:?}");
                status = 1;
            }
        }
    }
    let _ = posix::unmount();
    status
}
