//! fs-bridge: the file protocol between the host and a file server in
//! ExoV6, over the second serial port (COM2). It is what makes ExoV6 the
//! appliance behind `exo-img --isolation vm`: the host's client writes the
//! same length-prefixed messages it writes to its sandboxed server's
//! socket (`fs-server/src/wire.rs`) into QEMU's COM2, and this program
//! hands each request to the file server (the endpoint named `files`, a
//! session buffer) and writes the server's response back the same way.
//! It understands nothing of the messages but their length: the file
//! server decodes and checks them, as it does for every client.
//!
//! COM2's ports (manifest `legacy = com2`) are mapped for `in`/`out`
//! (`ioports_map`): a byte costs an instruction, not a system call. A
//! byte arriving raises COM2's interrupt line, bound to a notification
//! this program sleeps on. Once set up it sends `exo-bridge-ready\n`,
//! and the host starts sending only then. A frame of length 0 is the
//! host's goodbye: the bridge detaches (a writable file server then
//! leaves its image clean), ends, and ExoV6 powers off. A frame over the
//! buffer ends the program with a message: the host then sees the
//! appliance stop answering and reports it, as for a dead server.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_protocols::file;
use exo_protocols::session::client::Attached;
use exo_protocols::session::Status;
use exo_rt::abi::{slot, PAGE_SIZE};
use exo_rt::caps::{IoPorts, IrqLine, Notification};
use exo_rt::println;

exo_rt::entry!(main);

/// Where the buffer shared with the file server is mapped.
const BUF_VA: u64 = 0x50_0000_0000;
/// Its size: the largest message and its length prefix, rounded up.
const BUF_BYTES: u64 = file::MAX_MESSAGE as u64 + PAGE_SIZE;

/// COM2's registers and bits.
use exo_rt::port::uart::{DATA_READY, FCR, IER, LCR, LSR, MCR, MCR_ON, RBR, RECEIVED, THR_EMPTY};
/// The notification bit COM2's interrupt signals.
const IRQ_BIT: u64 = 1;
/// What the bridge says on COM2 once it listens (the host's
/// `fs_server::vm::READY`).
const READY: &[u8] = b"exo-bridge-ready\n";
/// Bytes the transmit FIFO takes at once.
const TX_FIFO: usize = 16;

/// COM2, reached with `in`/`out` once its ports are mapped.
struct Uart {
    base: u16,
    line: IrqLine,
    note: Notification,
}

impl Uart {
    fn reg(&self, r: u16) -> u8 {
        exo_rt::port::inb(self.base + r)
    }

    fn set(&self, r: u16, v: u8) {
        exo_rt::port::outb(self.base + r, v)
    }

    /// Fills `buf` with the next bytes from the host, sleeping on the
    /// interrupt while none come.
    fn read_exact(&mut self, buf: &mut [u8]) {
        let mut at = 0;
        while at < buf.len() {
            if self.reg(LSR) & DATA_READY != 0 {
                buf[at] = self.reg(RBR);
                at += 1;
                continue;
            }
            // Nothing waiting: unmask the line, look once more (a byte
            // that came meanwhile raised no edge we would see), then sleep.
            let _ = self.line.ack();
            if self.reg(LSR) & DATA_READY == 0 {
                let _ = self.note.wait(exo_rt::abi::FOREVER);
            }
        }
    }

    /// Writes `bytes` to the host, a FIFO's worth at a time.
    fn write_all(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(TX_FIFO) {
            while self.reg(LSR) & THR_EMPTY == 0 {
                core::hint::spin_loop();
            }
            for b in chunk {
                self.set(RBR, *b);
            }
        }
    }
}

fn main(_: &str) -> i32 {
    let ports = IoPorts::from_slot(exo_manifest::LEGACY_SLOT_BASE);
    let line = IrqLine::from_slot(exo_manifest::LEGACY_SLOT_BASE + 1);
    let Ok((base, 8)) = ports.range() else {
        println!("fs-bridge: given no serial port (manifest: legacy = com2)");
        return 1;
    };
    if let Err(e) = ports.map() {
        println!("fs-bridge: cannot map COM2's ports: {}", e.name());
        return 1;
    }
    let note = Notification::from_slot(slot::SUPERVISOR);
    if let Err(e) = line.bind(note, IRQ_BIT, 0) {
        println!("fs-bridge: cannot bind COM2's interrupt line: {}", e.name());
        return 1;
    }
    let mut uart = Uart { base, line, note };
    uart.set(IER, 0);
    uart.set(LCR, 0x80); // divisor latch: 115200 baud (QEMU sends at its own pace)
    uart.set(RBR, 1);
    uart.set(IER, 0);
    uart.set(LCR, 0x03); // 8 bits, no parity, 1 stop bit
    uart.set(FCR, 0xc7); // FIFOs on and cleared, interrupt at 14 bytes
    uart.set(MCR, MCR_ON);
    uart.set(IER, RECEIVED);
    let Some(ep) = exo_rt::endpoint("files") else {
        println!("fs-bridge: given no file server (an endpoint named files)");
        return 1;
    };
    let (mut buffer, files, _) = match Attached::new(ep, BUF_BYTES / PAGE_SIZE, BUF_VA) {
        Ok(a) => a,
        Err(e) => {
            println!("fs-bridge: cannot reach the file server: {e}");
            return 1;
        }
    };
    println!("fs-bridge: relaying the file protocol between COM2 ({base:#x}) and the file server");
    // The host sends nothing before this: bytes that came while the UART
    // was being set up would have been lost with its FIFOs.
    uart.write_all(READY);
    let mut requests = 0u64;
    loop {
        let mut len = [0u8; 4];
        uart.read_exact(&mut len);
        let n = u32::from_le_bytes(len) as usize;
        if n == 0 {
            // The host is done: detach (a writable file server then leaves
            // its image clean) and end; the machine powers off.
            println!("fs-bridge: the host is done after {requests} requests");
            files.detach();
            return 0;
        }
        if n > file::MAX_MESSAGE {
            println!("fs-bridge: a frame of {n} bytes from the host; stopping after {requests} requests");
            files.detach();
            return 1;
        }
        let buf = buffer.as_mut_slice();
        uart.read_exact(&mut buf[..n]);
        requests += 1;
        let answer = files.call([file::REQUEST, n as u64, 0], 3, |_| true);
        let rlen = match answer {
            Ok(m) if m.words[0] == Status::Ok as u64 && m.words[1] as usize <= buf.len() => m.words[1] as usize,
            other => {
                // The server could not answer in the buffer: say so as a
                // response of its own kind.
                let why = alloc::format!("the file server in the appliance answered {other:?}");
                let r = file::Response::Error(file::ErrorKind::Io, why).encode();
                buf[..r.len()].copy_from_slice(&r);
                r.len()
            }
        };
        uart.write_all(&(rlen as u32).to_le_bytes());
        let buf = buffer.as_mut_slice();
        uart.write_all(&buf[..rlen]);
    }
}
