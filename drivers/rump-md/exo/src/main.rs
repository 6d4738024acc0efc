//! The porting guide's worked example on ExoV6 (docs/porting.md): `md`,
//! a NetBSD-style memory-disk driver written in C against rumpuser(3)
//! only, runs unchanged in this isolated process on rumpglue's exokernel
//! backend (its thread, its kernel mutex and condition variable, its
//! memory: all hypercalls) and serves the block protocol, so the native
//! file server reads a file system from it as from any disk.
//!
//! At start it fills the memory disk from the disk on its first endpoint
//! (a virtio-blk driver), through the driver's strategy routine, and lets
//! that disk go; then it serves the block protocol on its second
//! endpoint. Arguments: `serve N` stops after N clients have come and
//! gone (for tests); without it, it serves for ever.
#![no_std]
#![no_main]

extern crate alloc;

use exo_protocols::block::{self, Disk, Status, SECTOR};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{FOREVER, PAGE_SIZE};
use exo_rt::caps::Endpoint;
use exo_rt::println;
use exo_rump_md::MdDisk;
use rumpglue::exo::BlockClient;
use rumpglue::BlockDevice;

exo_rt::entry!(main);

/// Where the source disk's buffer is mapped.
const SOURCE_VA: u64 = 0x50_0000_0000;
/// Where clients' buffers are mapped, one window each.
const CLIENT_VA: u64 = 0x60_0000_0000;
const CLIENT_WINDOW: u64 = 64 << 20;
const MAX_CLIENTS: usize = 8;
/// Bytes copied per request while filling the disk.
const CHUNK: usize = 64 << 10;

/// The md driver as the block protocol's disk.
struct Md(MdDisk);

impl Disk for Md {
    fn sectors(&self) -> u64 {
        self.0.size() / SECTOR
    }
    fn readonly(&self) -> bool {
        false
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Status> {
        self.0.read_blocks(sector, buf).map_err(|_| Status::DeviceError)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Status> {
        self.0.write_blocks(sector, buf).map_err(|_| Status::DeviceError)
    }
}

fn main(args: &str) -> i32 {
    let clients = match args.split_whitespace().collect::<alloc::vec::Vec<_>>()[..] {
        ["serve", n] => n.parse().ok(),
        _ => None,
    };
    let base = exo_manifest::ENDPOINT_SLOT_BASE;
    let source = match BlockClient::attach("rump-md", Endpoint::from_slot(base), false, SOURCE_VA) {
        Ok(s) => s,
        Err(e) => {
            println!("rump-md: the source disk: {e}");
            return 1;
        }
    };
    let size = source.size();
    let md = match MdDisk::attach(size) {
        Ok(m) => m,
        Err(e) => {
            println!("rump-md: md_attach of {size} bytes: {e}");
            return 1;
        }
    };
    let mut chunk = alloc::vec![0u8; CHUNK];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(CHUNK as u64) as usize;
        let copied = source.read_at(at, &mut chunk[..n]).and_then(|()| md.write_blocks(at / SECTOR, &chunk[..n]));
        if let Err(e) = copied {
            println!("rump-md: filling md0 at byte {at}: {e}");
            return 1;
        }
        at += n as u64;
    }
    source.detach();
    println!(
        "rump-md: md0: {size} bytes from the disk, through the C driver's strategy routine ({} transfers)",
        md.completed()
    );

    let ep = Endpoint::from_slot(base + 1);
    println!("rump-md: serving the block protocol");
    let mut disk = Md(md);
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how = Serve { name: "rump-md", clients, bound: None, timeout: FOREVER, takes_cap: &[] };
    let ended = server::serve(ep, how, |msg| Some(session::answer(block::handle(&mut disk, &mut sessions, msg?))));
    let transfers = disk.0.completed();
    drop(disk); // md_detach: the driver's thread is joined
    match ended {
        Ended::Served(n) => {
            println!("rump-md: {n} client(s) served, {transfers} transfers through the driver; md0 detached");
            0
        }
        Ended::Failed(_) => 1,
    }
}
