//! The serial console's input as a driver process: it holds COM1's I/O
//! ports and its interrupt line (manifest `legacy = com1`), nothing else.
//! The UART raises line 4 when a byte arrives; the kernel turns that into
//! a signal on this program's notification and masks the line until the
//! driver acknowledges it; the driver then reads every byte the UART
//! holds. No polling: between keystrokes it sleeps in `wait`.
//!
//! Lines are edited as a terminal would: printable characters echo,
//! backspace (DEL or ^H) rubs out, ^U clears the line, ^C drops it, Enter
//! ends it, ^D on an empty line ends the input. Each finished line is
//! printed as `console: line N: TEXT` (the shell, which is to read them
//! through a console protocol, comes next). The kernel's log keeps
//! writing COM1's transmit register; this driver never touches the line
//! settings.
//!
//! Arguments: `lines N` ends after N lines (for tests).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use exo_rt::abi::{slot, FOREVER};
use exo_rt::caps::{IoPorts, IrqLine, Notification};
use exo_rt::{print, println};

exo_rt::entry!(main);

/// The UART's registers, from its first port.
const RBR: u16 = 0; // receive buffer (read)
const IER: u16 = 1; // interrupt enable
const MCR: u16 = 4; // modem control
const LSR: u16 = 5; // line status
/// LSR: a received byte waits.
const DATA_READY: u8 = 0x01;
/// IER: interrupt when a byte arrives.
const RECEIVED: u8 = 0x01;
/// MCR: DTR, RTS and OUT2 (which gates the UART's interrupt on PCs).
const MCR_ON: u8 = 0x0b;
/// Most bytes one line holds.
const MAX_LINE: usize = 256;
/// The notification bit the interrupt line signals.
const IRQ_BIT: u64 = 1;

/// What to do with the line being typed.
enum Edit {
    Go,
    Line(String),
    End,
}

/// Applies key `c` to `line`, echoing what a terminal shows.
fn edit(line: &mut String, c: u8) -> Edit {
    match c {
        b'\r' | b'\n' => {
            println!();
            Edit::Line(core::mem::take(line))
        }
        0x7f | 0x08 => {
            if line.pop().is_some() {
                print!("\x08 \x08");
            }
            Edit::Go
        }
        0x15 => {
            for _ in 0..line.chars().count() {
                print!("\x08 \x08");
            }
            line.clear();
            Edit::Go
        }
        0x03 => {
            println!("^C");
            line.clear();
            Edit::Go
        }
        0x04 if line.is_empty() => Edit::End,
        0x20..=0x7e if line.len() < MAX_LINE => {
            line.push(c as char);
            print!("{}", c as char);
            Edit::Go
        }
        _ => Edit::Go, // other control bytes, or a full line
    }
}

fn main(args: &str) -> i32 {
    let limit = match args.split_whitespace().collect::<alloc::vec::Vec<_>>()[..] {
        ["lines", n] => n.parse::<u64>().ok(),
        _ => None,
    };
    let ports = IoPorts::from_slot(exo_manifest::LEGACY_SLOT_BASE);
    let irq = IrqLine::from_slot(exo_manifest::LEGACY_SLOT_BASE + 1);
    let note = Notification::from_slot(slot::SUPERVISOR);
    let base = 0x3f8;
    let vector = match irq.bind(note, IRQ_BIT, 0) {
        Ok(v) => v,
        Err(e) => {
            println!("console: cannot bind COM1's interrupt line: {}", e.name());
            return 1;
        }
    };
    let reg = |r: u16| ports.read8(base + r);
    // Bytes typed before now are dropped; then interrupts on.
    while reg(LSR).is_ok_and(|s| s & DATA_READY != 0) {
        let _ = reg(RBR);
    }
    if ports.write8(base + IER, RECEIVED).and_then(|()| ports.write8(base + MCR, MCR_ON)).is_err() {
        println!("console: cannot program COM1");
        return 1;
    }
    println!("console: COM1 input on interrupt line 4 (vector {vector:#x}): type a line");
    let (mut line, mut lines, mut interrupts) = (String::new(), 0u64, 0u64);
    loop {
        match note.wait(FOREVER) {
            Ok(bits) if bits & IRQ_BIT != 0 => interrupts += 1,
            Ok(_) => continue,
            Err(e) => {
                println!("console: wait failed: {}", e.name());
                return 1;
            }
        }
        // Acknowledge first, then drain: a byte that arrives meanwhile
        // raises the line again.
        let _ = irq.ack();
        while let Ok(status) = reg(LSR) {
            if status & DATA_READY == 0 {
                break;
            }
            let Ok(c) = reg(RBR) else { break };
            match edit(&mut line, c) {
                Edit::Go => {}
                Edit::Line(text) => {
                    lines += 1;
                    println!("console: line {lines}: {text}");
                    if limit.is_some_and(|n| lines >= n) {
                        println!("console: {lines} lines in {interrupts} interrupts; stopping");
                        return 0;
                    }
                }
                Edit::End => {
                    println!("console: end of input after {lines} lines");
                    return 0;
                }
            }
        }
    }
}
