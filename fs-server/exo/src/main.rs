//! The file server as an ExoV6 process: one per disk, so that a hostile
//! image can only crash its own server.
//!
//! It reaches its disk through a block driver (the block protocol on its
//! first endpoint, through rumpglue's block client, `rumpglue::exo`), finds the file system
//! there with the same code as the hosted server (`exo-fs-core`: ext2/3/4
//! read-only, FAT read-write with `rw`), and serves the file protocol
//! (`exo_protocols::file`) on its second endpoint, in the session every
//! service shares (`exo_protocols::session::server`).
//!
//! Arguments: `[rw] [serve N]`: `rw` allows changes (FAT only); `serve N`
//! stops after N clients have attached and detached (for tests; without
//! it, it serves for ever). Anywhere among them: `partition N` (the N-th
//! partition of an MBR or GPT disk, from 1; else the first usable volume)
//! and `codepage N` (the OEM code page of FAT short names, 437 unless
//! given), as `exo-img --partition` and `--codepage` give them.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use exo_fs_core::codepage::CodePage;
use exo_rt::caps::Endpoint;
use exo_rt::println;
use rumpglue::exo::{self, BlockClient};

exo_rt::entry!(main);

/// The block driver's endpoint, and this server's.
const BLOCK_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE;
const FILES_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE + 1;

/// Where the buffer shared with the block driver is mapped.
const BLOCK_BUF_VA: u64 = 0x50_0000_0000;

fn main(args: &str) -> i32 {
    // `partition N` and `codepage N` may come anywhere (the root task adds
    // them from the boot line for exo-img's appliance); the rest is read in
    // order.
    let mut all: Vec<&str> = args.split_whitespace().collect();
    let partition = exo_fs_native::take_option(&mut all, "partition");
    let codepage = exo_fs_native::take_option(&mut all, "codepage");
    let partition = match partition {
        None => None,
        Some(Some(p)) => Some(p as usize),
        Some(None) => return usage("partition wants a number"),
    };
    let codepage = match codepage {
        None => Default::default(),
        Some(Some(c)) => match CodePage::new(c) {
            Some(c) => c,
            None => return usage("that code page is not known"),
        },
        Some(None) => return usage("codepage wants a number"),
    };
    let mut words = all.into_iter().peekable();
    let rw = words.next_if_eq(&"rw").is_some();
    let clients = match (words.next(), words.next()) {
        (Some("serve"), Some(n)) => n.parse().ok(),
        _ => None,
    };
    // Test hooks: `crash-after N` or `hang-after N`.
    let crash_after = exo_fs_native::hook(words);
    let disk = match BlockClient::attach("fs-server", Endpoint::from_slot(BLOCK_EP), rw, BLOCK_BUF_VA) {
        Ok(d) => d,
        Err(e) => {
            println!("fs-server: cannot reach the disk: {e}");
            return 1;
        }
    };
    let sectors = disk.sectors();
    let sandbox = format!(
        "ExoV6 process: disk through a block driver ({sectors} sectors), {}",
        if rw { "read-write" } else { "read-only" }
    );
    let disk = Arc::new(disk);
    let fs = match exo_fs_core::backend::open(disk.clone(), partition, codepage, &exo::CLOCK, sandbox) {
        Ok(fs) => fs,
        Err(e) => {
            println!("fs-server: {e}");
            return 1;
        }
    };
    let info = fs.info();
    println!("fs-server: {} file system \"{}\" on the {}, {} bytes", info.fs, info.label, info.partition, info.size);
    let code = exo_fs_native::serve("fs-server", &*fs, Endpoint::from_slot(FILES_EP), clients, crash_after);
    drop(fs); // flushes what FAT still holds
              // Done with the disk: give the driver its buffer back.
    disk.detach();
    code
}

/// Says what is wrong with the arguments; exit status 2.
fn usage(why: &str) -> i32 {
    println!("fs-server: {why} (arguments: [rw] [serve N] [partition N] [codepage N])");
    2
}
