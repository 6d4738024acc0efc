//! Misuses the legacy-device capabilities for the hardening tests: it
//! holds COM2's ports and interrupt line (manifest `legacy = com2`) and
//! checks that the kernel keeps it to them: other ports, bad widths and
//! values, a second binding, an acknowledgement before any, and the
//! wrong kinds of capability are refused with precise errors; its own
//! ports work, through system calls and, once mapped (`ioports_map`),
//! through `in`/`out` directly. With the argument `unmapped` it then
//! deletes the capability and uses `in` again: that must fault (#GP), the
//! bitmap closed with the capability.
#![no_std]
#![no_main]

use exo_rt::abi::{slot, Error, Sys, IRQ_LEVEL, NO_CAP};
use exo_rt::caps::{IoPorts, IrqLine, Notification};
use exo_rt::{println, sys};

exo_rt::entry!(main);

/// A system call's result, as the kernel returned it.
fn raw(n: Sys, a: [u64; 6]) -> Result<u64, Error> {
    sys::call(n, a)
}

/// What is checked, what the kernel said, what it must say.
type Check = (&'static str, Result<u64, Error>, Result<u64, Error>);

/// `in al, dx` from user mode: allowed only by the I/O permission bitmap.
use exo_rt::port::inb;

fn main(args: &str) -> i32 {
    let ports = IoPorts::from_slot(exo_manifest::LEGACY_SLOT_BASE);
    let line = IrqLine::from_slot(exo_manifest::LEGACY_SLOT_BASE + 1);
    let note = Notification::from_slot(slot::SUPERVISOR);
    let (p, l) = (ports.slot(), line.slot());
    let checks: [Check; 20] = [
        ("COM2's line status register reads", ports.read8(0x2fd).map(|_| 0), Ok(0)),
        // (QEMU has no second UART unless asked: these ports read 0xff.)
        ("a byte written to its scratch register", ports.write8(0x2ff, 0x5a).map(|()| 0), Ok(0)),
        ("PCI configuration port 0xcf8", raw(Sys::PortIn, [p, 0xcf8, 4, 0, 0, 0]), Err(Error::NoRights)),
        ("a word across the range's end", raw(Sys::PortIn, [p, 0x2ff, 2, 0, 0, 0]), Err(Error::NoRights)),
        ("width 3", raw(Sys::PortIn, [p, 0x2f8, 3, 0, 0, 0]), Err(Error::InvalidArgument)),
        ("a value wider than the access", raw(Sys::PortOut, [p, 0x2ff, 1, 0x100, 0, 0]), Err(Error::InvalidArgument)),
        ("ports through the line capability", raw(Sys::PortIn, [l, 0x2f8, 1, 0, 0, 0]), Err(Error::WrongType)),
        (
            "more ports from a port capability",
            raw(Sys::IoPortsOpen, [p, 0x3f8, 8, NO_CAP, 0, 0]),
            Err(Error::WrongType),
        ),
        ("a line from a line capability", raw(Sys::IrqLineOpen, [l, 4, NO_CAP, 0, 0, 0]), Err(Error::WrongType)),
        ("acknowledge before binding", raw(Sys::IrqAck, [l, 0, 0, 0, 0, 0]), Err(Error::InvalidArgument)),
        ("bind with unknown flags", raw(Sys::IrqLineBind, [l, note.slot(), 1, 4, 0, 0]), Err(Error::InvalidArgument)),
        ("bind with no bits", raw(Sys::IrqLineBind, [l, note.slot(), 0, 0, 0, 0]), Err(Error::InvalidArgument)),
        ("bind the line", line.bind(note, 1, IRQ_LEVEL).map(|v| u64::from(v >= 0x40)), Ok(1)),
        ("bind it twice", line.bind(note, 2, 0), Err(Error::SlotInUse)),
        ("map its ports for in/out", ports.map().map(|()| 0), Ok(0)),
        // (Unmapped, this read would fault: see `unmapped`.)
        ("in reads what port_in reads", Ok(u64::from(Ok(inb(0x2fd)) == ports.read8(0x2fd))), Ok(1)),
        ("map them twice", ports.map().map(|()| 0), Err(Error::SlotInUse)),
        ("map the line capability", raw(Sys::IoPortsMap, [l, 0, 0, 0, 0, 0]), Err(Error::WrongType)),
        (
            "a PCI I/O BAR through a port capability",
            raw(Sys::PciIoBar, [p, 0x10, 0, NO_CAP, 0, 0]),
            Err(Error::WrongType),
        ),
        (
            "a PCI line through the line capability",
            raw(Sys::PciIrqLine, [l, 0x10, NO_CAP, 0, 0, 0]),
            Err(Error::WrongType),
        ),
    ];
    let mut passed = 0;
    for (what, got, want) in &checks {
        let ok = got == want;
        passed += usize::from(ok);
        println!("portcheck: {what}: {got:?} {}", if ok { "ok" } else { "FAILED" });
    }
    let acked = line.ack();
    println!("portcheck: acknowledge once bound: {acked:?} {}", if acked.is_ok() { "ok" } else { "FAILED" });
    passed += usize::from(acked.is_ok());
    println!("portcheck: {passed}/{} checks passed", checks.len() + 1);
    if passed != checks.len() + 1 {
        return 1;
    }
    if args.trim() == "unmapped" {
        let deleted = exo_rt::caps::delete(ports.slot());
        println!("portcheck: capability deleted: {deleted:?}; reading again must fault");
        let v = inb(0x2fd);
        println!("portcheck: read {v:#x} with no capability: FAILED");
        return 1;
    }
    0
}
