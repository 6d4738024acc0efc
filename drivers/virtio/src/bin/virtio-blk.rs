//! The virtio-blk driver, as an isolated user process.
//!
//! It holds a capability to its PCI function (device slot 0 of its
//! manifest entry), the memory capabilities for the function's registers
//! that the kernel derives from it, and an untyped budget for DMA memory;
//! nothing else. It brings the device up with the virtio-drivers crate,
//! takes its completions as MSI-X interrupts, and reports it.
//!
//! Arguments, in this order, each optional:
//! - `check N` reads sectors 0..N and prints their FNV-1a-64 hash and the
//!   start of sector 0, for the test suite to compare with the disk image;
//! - `serve [N]` serves the block protocol (`exo_protocols::block`) on its
//!   first endpoint, until N clients have attached and detached again
//!   (for ever without N).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use exo_protocols::block::{self, Request, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{FOREVER, PAGE_SIZE};
use exo_rt::caps::{Endpoint, Notification};
use exo_rt::println;
use exo_virtio::device::{self, Device};
use exo_virtio::hal::{self, ExoHal};
use virtio_drivers::device::blk::{BlkReq, BlkResp};
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::PciTransport;

exo_rt::entry!(main);

fn main(args: &str) -> i32 {
    let dev = match Device::open("virtio-blk") {
        Ok(d) => d,
        Err(e) => {
            println!("virtio-blk: {e}");
            return 1;
        }
    };
    let df = dev.df;
    let blk = match VirtIOBlk::<ExoHal, _>::new(dev.transport) {
        Ok(b) => b,
        Err(e) => {
            println!("virtio-blk: {df}: initialisation failed: {e}");
            return 1;
        }
    };
    let irq = match device::enable_interrupts(dev.function, &[0]) {
        Ok((note, vector)) => {
            println!("virtio-blk: {df}: interrupts: MSI-X entry 0, vector {vector:#x}, signalled on a notification");
            Some(note)
        }
        Err(why) => {
            println!("virtio-blk: {df}: no interrupts ({why}); polling");
            None
        }
    };
    let mut blk = Disk { blk, irq, requests: 0, waits: 0 };
    let sectors = blk.blk.capacity();
    println!(
        "virtio-blk: {df}: {sectors} sectors of {SECTOR_SIZE} bytes ({} KiB){}",
        sectors * SECTOR_SIZE as u64 / 1024,
        if blk.blk.readonly() { ", read-only" } else { "" }
    );
    let mut words = args.split_whitespace().peekable();
    if words.peek() == Some(&"check") {
        words.next();
        let count = words.next().and_then(|n| n.parse().ok()).unwrap_or(64);
        if let Err(code) = check(&mut blk, count.min(sectors)) {
            return code;
        }
    }
    if words.next() == Some("serve") {
        let clients = words.next().and_then(|n| n.parse().ok());
        // Test hook: `crash-after N` dies at the N-th read or write, with
        // the client waiting in its call (for the supervisor's restart
        // and the file server's retry), in the first instance only.
        let crash_after = match (words.next(), words.next().and_then(|n| n.parse::<u64>().ok())) {
            (Some("crash-after"), Some(n)) if exo_rt::generation() == 0 => Some(n),
            _ => None,
        };
        return serve(&mut blk, clients, crash_after);
    }
    0
}

/// The device, and the notification its interrupts signal (if any).
struct Disk {
    blk: VirtIOBlk<ExoHal, PciTransport>,
    irq: Option<Notification>,
    /// Requests made, and waits for an interrupt.
    requests: u64,
    waits: u64,
}

impl Disk {
    /// Reads `buf.len() / 512` sectors from `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), virtio_drivers::Error> {
        self.requests += 1;
        let Some(note) = self.irq else { return self.blk.read_blocks(sector as usize, buf) };
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        // SAFETY: `req`, `buf` and `resp` live until the request completes
        // below, and are not touched before.
        let token = unsafe { self.blk.read_blocks_nb(sector as usize, &mut req, buf, &mut resp)? };
        self.wait_for(note, token);
        // SAFETY: the same buffers, for the completed request.
        unsafe { self.blk.complete_read_blocks(token, &req, buf, &mut resp) }
    }

    /// Writes `buf.len() / 512` sectors at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), virtio_drivers::Error> {
        self.requests += 1;
        let Some(note) = self.irq else { return self.blk.write_blocks(sector as usize, buf) };
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        // SAFETY: as in `read`.
        let token = unsafe { self.blk.write_blocks_nb(sector as usize, &mut req, buf, &mut resp)? };
        self.wait_for(note, token);
        // SAFETY: as in `read`.
        unsafe { self.blk.complete_write_blocks(token, &req, buf, &mut resp) }
    }

    /// Sleeps on the notification until request `token` is done. A
    /// completion that came before the wait left its bit set, so no
    /// wake-up is lost.
    fn wait_for(&mut self, note: Notification, token: u16) {
        while self.blk.peek_used() != Some(token) {
            let _ = note.wait(FOREVER);
            self.waits += 1;
        }
    }
}

type Blk = Disk;

/// Reads sectors `0..count`, reporting their hash and how sector 0 begins.
fn check(blk: &mut Blk, count: u64) -> Result<(), i32> {
    // Read in runs of up to 32 sectors (16 KiB), hashing as we go.
    let mut hash = Fnv::new();
    let mut buf = vec![0u8; 32 * SECTOR_SIZE];
    let mut first = [0u8; 48];
    let mut at = 0;
    while at < count {
        let n = (count - at).min(32) as usize;
        let chunk = &mut buf[..n * SECTOR_SIZE];
        if let Err(e) = blk.read(at, chunk) {
            println!("virtio-blk: read of sectors {at}..{} failed: {e}", at + n as u64);
            return Err(1);
        }
        if at == 0 {
            first.copy_from_slice(&chunk[..48]);
        }
        hash.add(chunk);
        at += n as u64;
    }
    let text: alloc::string::String = first
        .iter()
        .take_while(|b| **b != 0 && **b != b'\n')
        .map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '.' })
        .collect();
    println!("virtio-blk: sector 0 begins \"{text}\"");
    println!("virtio-blk: fnv1a64 of sectors 0..{count}: {:016x}", hash.0);
    let (used, spare) = hal::dma_pages();
    println!("virtio-blk: DMA memory: {used} pages in use, {spare} kept for reuse");
    println!("virtio-blk: {} requests, {} waits for an interrupt", blk.requests, blk.waits);
    // A request QEMU completed before the driver looked (a busy host makes
    // that likely) needed no wait, but its interrupt still came: it left
    // its bit on the notification.
    if let Some(note) = blk.irq {
        let pending = note.wait(0).is_ok_and(|bits| bits != 0);
        println!("virtio-blk: interrupts delivered: {}", blk.waits > 0 || pending);
    }
    Ok(())
}

/// Where client buffers are mapped: one 64 MiB window each, from 128 GiB.
const CLIENT_VA: u64 = 0x20_0000_0000;
const CLIENT_WINDOW: u64 = 64 << 20;
/// Most clients at once.
const MAX_CLIENTS: usize = 16;

/// Serves the block protocol until `clients` clients have come and gone.
fn serve(blk: &mut Blk, clients: Option<u64>, crash_after: Option<u64>) -> i32 {
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    println!("virtio-blk: serving the block protocol");
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how = Serve { name: "virtio-blk", clients, bound: None, timeout: FOREVER, takes_cap: &[] };
    let ended = server::serve(ep, how, |msg| {
        let msg = msg?;
        if crash_after.is_some_and(|n| blk.requests + 1 >= n)
            && matches!(Request::decode(msg.words), Ok(Request::Read { .. } | Request::Write { .. }))
        {
            println!("virtio-blk: test hook: dying in the middle of request {}", blk.requests + 1);
            exo_rt::sys::exit(70);
        }
        Some(session::answer(block::handle(blk, &mut sessions, msg)))
    });
    match ended {
        Ended::Served(gone) => {
            println!(
                "virtio-blk: {gone} client(s) served ({} requests, {} waits for an interrupt); stopping",
                blk.requests, blk.waits
            );
            0
        }
        Ended::Failed(_) => 1,
    }
}

impl block::Disk for Disk {
    fn sectors(&self) -> u64 {
        self.blk.capacity()
    }
    fn readonly(&self) -> bool {
        self.blk.readonly()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Status> {
        Disk::read(self, sector, buf).map_err(|_| Status::DeviceError)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Status> {
        Disk::write(self, sector, buf).map_err(|_| Status::DeviceError)
    }
}

/// FNV-1a, 64 bits: a check sum the test computes on the host as well.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
