//! Reads one file through the POSIX library to the end and prints its
//! length and FNV-1a-64 hash, for the resurrection tests: the servers
//! under it are killed and restarted while it reads, and the test
//! compares the hash with the file on the host. Arguments: the path.
//! Exits 0 if the whole file was read.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix::flags::O_RDONLY;
use exo_posix::{self as posix};
use exo_rt::{println, sys};

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    let path = args.trim();
    if let Err(e) = posix::mount(exo_manifest::ENDPOINT_SLOT_BASE) {
        println!("readcheck: mount: {e:?}");
        return 1;
    }
    let start = sys::clock();
    let fd = match posix::open(path, O_RDONLY) {
        Ok(fd) => fd,
        Err(e) => {
            println!("readcheck: open {path}: {e:?}");
            return 1;
        }
    };
    let (mut hash, mut bytes) = (0xcbf2_9ce4_8422_2325u64, 0u64);
    let mut buf = alloc::vec![0u8; 64 << 10];
    loop {
        match posix::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for b in &buf[..n] {
                    hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
                }
                bytes += n as u64;
            }
            Err(e) => {
                println!("readcheck: read {path} at {bytes}: {e:?}");
                return 1;
            }
        }
    }
    let ms = (sys::clock() - start) / 1_000_000;
    println!("readcheck: {path}: {bytes} bytes, fnv1a64 {hash:016x}, {ms} ms");
    let _ = posix::close(fd);
    let _ = posix::unmount();
    0
}

extern crate alloc;
