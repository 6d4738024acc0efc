//! Reads one file through the POSIX library to the end and prints its
//! length and FNV-1a-64 hash, for the resurrection tests: the servers
//! under it are killed and restarted while it reads, and the test
//! compares the hash with the file on the host. Arguments: the path, and
//! how many times to read it (default once; a line for each time). Exits
//! 0 if the whole file was read each time.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix::flags::O_RDONLY;
use exo_posix::{self as posix};
use exo_rt::{println, sys};

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace();
    let path = words.next().unwrap_or("");
    let Some(passes) = words.next().map_or(Some(1), |n| n.parse::<u32>().ok()) else {
        println!("readcheck: usage: readcheck PATH [TIMES]");
        return 2;
    };
    if let Err(e) = posix::mount(exo_manifest::ENDPOINT_SLOT_BASE) {
        println!("readcheck: mount: {e:?}");
        return 1;
    }
    let mut buf = alloc::vec![0u8; 64 << 10];
    for _ in 0..passes {
        if read_once(path, &mut buf).is_err() {
            return 1;
        }
    }
    let _ = posix::unmount();
    0
}

/// Reads `path` to the end, printing its length, hash and the time taken.
fn read_once(path: &str, buf: &mut [u8]) -> Result<(), ()> {
    let start = sys::clock();
    let fd = posix::open(path, O_RDONLY).map_err(|e| println!("readcheck: open {path}: {e:?}"))?;
    let (mut hash, mut bytes) = (0xcbf2_9ce4_8422_2325u64, 0u64);
    loop {
        match posix::read(fd, buf) {
            Ok(0) => break,
            Ok(n) => {
                for b in &buf[..n] {
                    hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
                }
                bytes += n as u64;
            }
            Err(e) => {
                println!("readcheck: read {path} at {bytes}: {e:?}");
                return Err(());
            }
        }
    }
    let ms = (sys::clock() - start) / 1_000_000;
    println!("readcheck: {path}: {bytes} bytes, fnv1a64 {hash:016x}, {ms} ms");
    let _ = posix::close(fd);
    Ok(())
}

extern crate alloc;
