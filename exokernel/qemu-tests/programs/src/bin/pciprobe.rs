//! A driver's first step, and the limits of its capability: probes the
//! PCI function in device slot 0 (given by `devices = ...` in the
//! manifest), lists its virtio capabilities, enables memory decoding and
//! bus mastering, maps the BAR with the virtio registers and reads them,
//! allocates DMA memory, and checks that the kernel refuses what a driver
//! must not do: move a BAR, reach another function, derive new
//! capabilities. One line per check; exits 0 if all pass. Needs console
//! and untyped.
#![no_std]
#![no_main]

use exo_rt::abi::{map_flags, slot, Error, Sys, NO_CAP};
use exo_rt::caps::{self, PciFunction, Untyped, SELF};
use exo_rt::{println, sys};

use exo_demos::Checks;

exo_rt::entry!(main);

/// Names of the virtio PCI capability types (virtio 1.x, 4.1.4).
fn virtio_cap_name(cfg_type: u32) -> &'static str {
    match cfg_type {
        1 => "common",
        2 => "notify",
        3 => "isr",
        4 => "device",
        5 => "pci-cfg",
        8 => "shared-memory",
        _ => "other",
    }
}

fn main(_args: &str) -> i32 {
    let mut c = Checks::new("pciprobe");
    let f = match PciFunction::from_slot(exo_manifest::DEVICE_SLOT_BASE) {
        Ok(f) => f,
        Err(e) => {
            println!("pciprobe: no device capability: {}", e.name());
            return 1;
        }
    };
    let b = f.bdf();
    let at = format_args!("{:02x}:{:02x}.{}", b >> 8, (b >> 3) & 31, b & 7);
    let ids = f.read(0, 4);
    let vendor = ids.map(|v| v & 0xffff);
    c.check("identify", vendor == Ok(0x1af4), format_args!("{at} reads {ids:x?}"));

    // The capability list: status bit 4, pointer at 0x34, entries linked
    // by their second byte. Virtio's are vendor-specific (ID 9).
    let mut found = [false; 6];
    let mut common = None; // (BAR, offset) of the common configuration
    let mut ptr = if f.read(0x06, 2).unwrap_or(0) & 0x10 != 0 { f.read(0x34, 1).unwrap_or(0) & 0xfc } else { 0 };
    let mut hops = 0;
    while ptr >= 0x40 && hops < 48 {
        let head = f.read(ptr as u8, 4).unwrap_or(0);
        if head & 0xff == 0x09 {
            let cfg_type = (head >> 24) & 0xff;
            let bar = f.read(ptr as u8 + 4, 1).unwrap_or(0);
            let offset = f.read(ptr as u8 + 8, 4).unwrap_or(0);
            let length = f.read(ptr as u8 + 12, 4).unwrap_or(0);
            println!(
                "pciprobe: virtio {} structure in BAR {bar} at {offset:#x}, {length:#x} bytes",
                virtio_cap_name(cfg_type)
            );
            if let Some(seen) = found.get_mut(cfg_type as usize) {
                *seen = true;
            }
            if cfg_type == 1 {
                common = Some((bar as u8, offset as u64));
            }
        }
        ptr = (head >> 8) & 0xfc;
        hops += 1;
    }
    let all = found[1..=4].iter().all(|x| *x);
    c.check("virtio capabilities", all, format_args!("common, notify, isr and device structures listed"));

    // The command register is the driver's: bus mastering off, then on
    // again with memory space (each write read back).
    let cmd = f.read(0x04, 2).unwrap_or(0);
    let off = f.write(0x04, 2, cmd & !0b100).and_then(|_| f.read(0x04, 2));
    let on = f.write(0x04, 2, cmd | 0b110).and_then(|_| f.read(0x04, 2));
    c.check(
        "command register",
        off.map(|v| v & 0b100) == Ok(0) && on.map(|v| v & 0b110) == Ok(0b110),
        format_args!("{cmd:#x}, bus master off {off:x?}, on {on:x?}"),
    );

    // A BAR is not: the write is refused and the BAR stays where it was.
    let bar4 = f.read(0x20, 4);
    let w = f.write(0x20, 4, 0xffff_ffff);
    let after = f.read(0x20, 4);
    c.check(
        "BAR write refused",
        w == Err(Error::NoRights) && after == bar4,
        format_args!("{w:?}, BAR 4 still {after:x?}"),
    );
    let w = f.write(0x30, 4, 0x1);
    c.check("ROM BAR write refused", w == Err(Error::NoRights), format_args!("{w:?}"));

    // Another function (the host bridge at 00:00.0) through this capability.
    let r = sys::call(Sys::PciConfigRead, [f.slot(), 0, 0, 4, 0, 0]);
    c.check("other function refused", r == Err(Error::NoRights), format_args!("{r:?}"));

    // Malformed accesses.
    let r = [
        f.read(0x41, 4).err(),
        f.read(0x00, 3).err(),
        sys::call(Sys::PciConfigRead, [f.slot(), b as u64, 256, 1, 0, 0]).err(),
    ];
    c.check(
        "malformed accesses refused",
        r == [Some(Error::InvalidArgument); 3],
        format_args!("misaligned, width 3, offset 256: {r:?}"),
    );
    let r = sys::call(Sys::PciConfigWrite, [f.slot(), b as u64, 0x40, 1, 0x100, 0]);
    c.check("value wider than the write refused", r == Err(Error::InvalidArgument), format_args!("{r:?}"));

    mmio_and_dma(&mut c, f, common);
    interrupts(&mut c, f);

    // A function capability opens nothing; no capability reaches nothing.
    let r = sys::call(Sys::PciOpen, [f.slot(), b as u64, NO_CAP, 0, 0, 0]);
    c.check("open through a function refused", r == Err(Error::WrongType), format_args!("{r:?}"));
    let r = sys::call(Sys::PciConfigRead, [exo_manifest::DEVICE_SLOT_BASE + 1, b as u64, 0, 4, 0, 0]);
    c.check("no capability, no access", r == Err(Error::InvalidCap), format_args!("{r:?}"));

    c.finish()
}

/// Where the probe maps the BAR with the virtio registers.
const REGS_VA: u64 = 0x7000_0000;

/// Maps the BAR holding the virtio common configuration and reads it (the
/// device's feature bits, its number of queues); checks the physical
/// address the kernel reports against the BAR; allocates contiguous DMA
/// memory and checks its pages are consecutive; and that an I/O BAR is no
/// memory.
fn mmio_and_dma(c: &mut Checks, f: PciFunction, common: Option<(u8, u64)>) {
    let Some((bar, offset)) = common else {
        c.check("registers mapped", false, format_args!("no common configuration structure"));
        return;
    };
    let regs = f.bar(bar);
    let info = regs.map(|m| caps::info(m.slot()));
    let mapped = regs.and_then(|m| SELF.map(m, REGS_VA, map_flags::READ | map_flags::WRITE));
    let (features, queues) = if mapped.is_ok() {
        let base = (REGS_VA + offset) as *mut u32;
        // SAFETY: the BAR is mapped read-write (uncached) at REGS_VA, and
        // the virtio 1.x common configuration starts `offset` into it:
        // device_feature_select at 0x00, device_feature at 0x04,
        // num_queues (16 bits) at 0x12.
        unsafe {
            base.write_volatile(1); // feature bits 32..63
            let high = base.add(1).read_volatile();
            let queues = (base as *const u16).add(9).read_volatile();
            (high, queues)
        }
    } else {
        (0, 0)
    };
    // VIRTIO_F_VERSION_1 is feature bit 32; a block device has one queue.
    c.check(
        "registers mapped",
        mapped.is_ok() && features & 1 == 1 && queues == 1,
        format_args!("BAR {bar}: {info:?}; features 32-63 {features:#x}, {queues} queue(s)"),
    );
    let lo = f.read(0x10 + 4 * bar, 4).unwrap_or(0);
    let hi = if (lo >> 1) & 3 == 2 { f.read(0x14 + 4 * bar, 4).unwrap_or(0) } else { 0 };
    let configured = (hi as u64) << 32 | (lo & !0xf) as u64;
    let phys = regs.and_then(|m| m.phys(0));
    c.check("BAR address", phys == Ok(configured), format_args!("kernel says {phys:x?}, BAR holds {configured:#x}"));
    let r = f.bar(0);
    c.check("I/O BAR is no memory", r.map(|_| ()) == Err(Error::WrongType), format_args!("BAR 0: {:?}", r.map(|_| ())));

    let untyped = Untyped::from_slot(slot::UNTYPED);
    let dma = untyped.alloc_contiguous(4);
    let pages: [Result<u64, Error>; 4] = core::array::from_fn(|i| dma.and_then(|m| m.phys(i as u64)));
    let consecutive = pages.iter().enumerate().all(|(i, p)| *p == pages[0].map(|b| b + 4096 * i as u64));
    let beyond = dma.and_then(|m| m.phys(4));
    c.check(
        "DMA memory",
        pages[0].is_ok() && consecutive && beyond == Err(Error::InvalidArgument),
        format_args!("4 contiguous pages from {:x?}; page 4: {beyond:?}", pages[0]),
    );
}

/// Interrupt vectors through the function capability: bad arguments are
/// refused precisely, and the device range runs out cleanly.
fn interrupts(c: &mut Checks, f: PciFunction) {
    let Ok(note) = Untyped::from_slot(slot::UNTYPED).create_notification() else {
        c.check("interrupt vectors", false, format_args!("no notification"));
        return;
    };
    let not_a_notification = f.irq_bind(exo_rt::caps::Notification::from_slot(slot::CONSOLE), 1);
    let no_bits = f.irq_bind(note, 0);
    c.check(
        "interrupt binding refusals",
        not_a_notification == Err(Error::WrongType) && no_bits == Err(Error::InvalidArgument),
        format_args!("console as notification {not_a_notification:?}, no bits {no_bits:?}"),
    );
    let first = f.irq_bind(note, 1);
    let mut count = first.is_ok() as u64;
    let mut last = first;
    let end = loop {
        match f.irq_bind(note, 1) {
            Ok(v) => {
                count += 1;
                last = Ok(v);
            }
            Err(e) => break e,
        }
        if count > 256 {
            break Error::InvalidArgument; // more vectors than a CPU has: wrong
        }
    };
    // The first free vectors, up to the per-function limit.
    let most = exo_rt::abi::MAX_VECTORS_PER_FUNCTION as u64;
    let first_vector = exo_rt::abi::DEVICE_VECTOR_FIRST;
    c.check(
        "interrupt vectors",
        first == Ok(first_vector) && last == Ok(first_vector + most - 1) && count == most && end == Error::Exhausted,
        format_args!("{count} vectors from {first:x?} to {last:x?}, then {end:?}"),
    );
}
