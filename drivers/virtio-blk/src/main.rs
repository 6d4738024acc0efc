//! The virtio-blk driver, as an isolated user process.
//!
//! It holds a capability to its PCI function (device slot 0 of its
//! manifest entry), the memory capabilities for the function's registers
//! that the kernel derives from it, and an untyped budget for DMA memory;
//! nothing else. It brings the device up with the virtio-drivers crate
//! (polling, no interrupts yet), reports it, and reads the first sectors.
//!
//! Arguments: `check N` reads sectors 0..N and prints their FNV-1a-64
//! hash and the start of sector 0, for the test suite to compare with the
//! disk image.
#![no_std]
#![no_main]

extern crate alloc;

mod hal;

use alloc::vec;
use exo_drivers::config::{FunctionConfig, Mediated};
use exo_rt::abi::PAGE_SIZE;
use exo_rt::caps::{self, PciFunction};
use exo_rt::println;
use hal::ExoHal;
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;

exo_rt::entry!(main);

/// The function capability, as `exo_drivers::config` wants it.
struct Function {
    f: PciFunction,
    sizes: [Option<u64>; 6],
}

impl FunctionConfig for Function {
    fn function(&self) -> DeviceFunction {
        let b = self.f.bdf();
        DeviceFunction { bus: (b >> 8) as u8, device: (b >> 3) as u8 & 31, function: b as u8 & 7 }
    }
    fn read(&self, offset: u8) -> Option<u32> {
        self.f.read(offset, 4).ok()
    }
    fn write(&mut self, offset: u8, value: u32) -> bool {
        self.f.write(offset, 4, value).is_ok()
    }
    fn bar_size(&self, bar: u8) -> Option<u64> {
        self.sizes.get(bar as usize).copied().flatten()
    }
    fn duplicate(&self) -> Self {
        Function { f: self.f, sizes: self.sizes }
    }
}

fn main(args: &str) -> i32 {
    let f = match PciFunction::from_slot(exo_manifest::DEVICE_SLOT_BASE) {
        Ok(f) => f,
        Err(e) => {
            println!(
                "virtio-blk: no PCI function in device slot 0 ({}): list `devices = virtio-blk` in the manifest",
                e.name()
            );
            return 1;
        }
    };
    // The registers: every memory BAR the kernel gives us, mapped.
    let mut sizes = [None; 6];
    for (bar, size) in sizes.iter_mut().enumerate() {
        let Ok(mem) = f.bar(bar as u8) else { continue };
        let (Ok(info), Ok(phys)) = (caps::info(mem.slot()), mem.phys(0)) else { continue };
        if hal::add_bar(mem, phys, info.pages).is_ok() {
            *size = Some(info.pages * PAGE_SIZE);
        }
    }
    let function = Function { f, sizes };
    let df = function.function();
    let mut root = PciRoot::new(Mediated::new(function));
    let transport = match PciTransport::new::<ExoHal, _>(&mut root, df) {
        Ok(t) => t,
        Err(e) => {
            println!("virtio-blk: {df}: not a usable virtio device: {e}");
            return 1;
        }
    };
    let mut blk = match VirtIOBlk::<ExoHal, _>::new(transport) {
        Ok(b) => b,
        Err(e) => {
            println!("virtio-blk: {df}: initialisation failed: {e}");
            return 1;
        }
    };
    let sectors = blk.capacity();
    println!(
        "virtio-blk: {df}: {sectors} sectors of {SECTOR_SIZE} bytes ({} KiB){}",
        sectors * SECTOR_SIZE as u64 / 1024,
        if blk.readonly() { ", read-only" } else { "" }
    );
    let mut words = args.split_whitespace();
    if words.next() != Some("check") {
        return 0;
    }
    let count: u64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(64).min(sectors);
    // Read in runs of up to 32 sectors (16 KiB), hashing as we go.
    let mut hash = Fnv::new();
    let mut buf = vec![0u8; 32 * SECTOR_SIZE];
    let mut first = [0u8; 48];
    let mut at = 0;
    while at < count {
        let n = (count - at).min(32) as usize;
        let chunk = &mut buf[..n * SECTOR_SIZE];
        if let Err(e) = blk.read_blocks(at as usize, chunk) {
            println!("virtio-blk: read of sectors {at}..{} failed: {e}", at + n as u64);
            return 1;
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
    0
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
