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
//! - `serve [N]` serves the block protocol (`exo_drivers::block`) on its
//!   first endpoint, until N clients have attached and detached again
//!   (for ever without N).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use exo_drivers::block::{self, Request, Status};
use exo_rt::abi::{map_flags, FOREVER, PAGE_SIZE};
use exo_rt::caps::{self, Endpoint, Memory, Message, Notification, SELF};
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

/// A client with its buffer mapped.
struct Client {
    badge: u64,
    mem: Memory,
    va: u64,
    bytes: u64,
}

/// Serves the block protocol until `clients` clients have come and gone.
fn serve(blk: &mut Blk, clients: Option<u64>, crash_after: Option<u64>) -> i32 {
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    println!("virtio-blk: serving the block protocol");
    let mut attached: Vec<Client> = Vec::new();
    let mut windows = [false; 16];
    let mut gone = 0;
    let mut answer: Option<[u64; 3]> = None;
    loop {
        let msg = match answer.take() {
            None => ep.recv(None, FOREVER),
            Some(words) => ep.reply_recv(words, None, FOREVER),
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                println!("virtio-blk: receive failed: {}", e.name());
                return 1;
            }
        };
        if crash_after.is_some_and(|n| blk.requests + 1 >= n)
            && matches!(Request::decode(msg.words), Ok(Request::Read { .. } | Request::Write { .. }))
        {
            println!("virtio-blk: test hook: dying in the middle of request {}", blk.requests + 1);
            exo_rt::sys::exit(70);
        }
        let words = match handle(blk, &mut attached, &mut windows, &msg) {
            Ok((w, detached)) => {
                gone += detached as u64;
                w
            }
            Err(status) => [status as u64, 0, 0],
        };
        if clients.is_some_and(|n| gone >= n) {
            let _ = caps::reply(words, None);
            println!(
                "virtio-blk: {gone} client(s) served ({} requests, {} waits for an interrupt); stopping",
                blk.requests, blk.waits
            );
            return 0;
        }
        answer = Some(words);
    }
}

/// One request: the answer, and whether a client detached.
fn handle(
    blk: &mut Blk,
    attached: &mut Vec<Client>,
    windows: &mut [bool; 16],
    msg: &Message,
) -> Result<([u64; 3], bool), Status> {
    let request = Request::decode(msg.words)?;
    if request != Request::Attach {
        if let Some(cap) = msg.cap {
            let _ = caps::delete(cap); // not asked for: do not keep it
        }
    }
    let client = attached.iter().position(|c| c.badge == msg.badge);
    let sectors = blk.blk.capacity();
    match request {
        Request::Info => Ok(([Status::Ok as u64, sectors, blk.blk.readonly() as u64], false)),
        Request::Attach => {
            let mem = Memory::from_slot(msg.cap.ok_or(Status::NotAttached)?);
            if let Some(i) = client {
                drop_client(attached.swap_remove(i), windows);
            }
            let bytes = caps::info(mem.slot()).map(|i| i.pages * PAGE_SIZE).unwrap_or(0);
            let Some(w) = windows.iter().position(|used| !used).filter(|_| bytes > 0 && bytes <= CLIENT_WINDOW) else {
                let _ = caps::delete(mem.slot());
                return Err(Status::BadBuffer);
            };
            let va = CLIENT_VA + w as u64 * CLIENT_WINDOW;
            if SELF.map(mem, va, map_flags::READ | map_flags::WRITE).is_err() {
                let _ = caps::delete(mem.slot());
                return Err(Status::BadBuffer);
            }
            windows[w] = true;
            attached.push(Client { badge: msg.badge, mem, va, bytes });
            Ok(([Status::Ok as u64, sectors, bytes], false))
        }
        Request::Detach => {
            drop_client(attached.swap_remove(client.ok_or(Status::NotAttached)?), windows);
            Ok(([Status::Ok as u64, 0, 0], true))
        }
        Request::Read { sector, count } | Request::Write { sector, count } => {
            let c = &attached[client.ok_or(Status::NotAttached)?];
            block::check(sector, count, sectors, c.bytes)?;
            let len = (count * block::SECTOR) as usize;
            // SAFETY: the client's buffer is mapped read-write at `c.va`
            // for `c.bytes` bytes (checked above to hold `len`); the client
            // waits in its call, and we copy through DMA memory anyway.
            let buf = unsafe { core::slice::from_raw_parts_mut(c.va as *mut u8, len) };
            let done = if matches!(request, Request::Read { .. }) {
                blk.read(sector, buf)
            } else if blk.blk.readonly() {
                return Err(Status::ReadOnly);
            } else {
                blk.write(sector, buf)
            };
            done.map_err(|_| Status::DeviceError)?;
            Ok(([Status::Ok as u64, count, 0], false))
        }
    }
}

fn drop_client(c: Client, windows: &mut [bool; 16]) {
    let _ = SELF.unmap(c.va);
    let _ = caps::delete(c.mem.slot());
    windows[((c.va - CLIENT_VA) / CLIENT_WINDOW) as usize] = false;
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
