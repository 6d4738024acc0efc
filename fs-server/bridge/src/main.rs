//! fs-bridge: the file protocol between the host and a file server in
//! ExoV6, over a virtio console. It is what makes ExoV6 the appliance
//! behind `exo-img --isolation vm`: the host's client writes the same
//! length-prefixed messages it writes to its sandboxed server's socket
//! (`fs-server/src/wire.rs`) into QEMU's virtio console, and this program
//! hands each request to the file server (the endpoint named `files`, a
//! session buffer) and writes the server's response back the same way.
//! It understands nothing of the messages but their length: the file
//! server decodes and checks them, as it does for every client.
//!
//! The console is a virtio device (manifest `devices = virtio-console`),
//! driven with the virtio-drivers crate like the block and network
//! drivers: its queues' interrupts come as a notification this program
//! sleeps on, and data crosses in buffers, not bytes. Once set up it sends
//! `exo-bridge-ready\n`, and the host starts sending only then. A frame of
//! length 0 is the host's goodbye: the bridge detaches (a writable file
//! server then leaves its image clean), ends, and ExoV6 powers off. A
//! frame over the buffer ends the program with a message: the host then
//! sees the appliance stop answering and reports it, as for a dead server.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_protocols::file;
use exo_protocols::session::client::Attached;
use exo_protocols::session::Status;
use exo_rt::abi::{FOREVER, PAGE_SIZE};
use exo_rt::caps::Notification;
use exo_rt::println;
use exo_virtio::device::{self, Device};
use exo_virtio::hal::ExoHal;
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::transport::pci::PciTransport;

exo_rt::entry!(main);

/// Where the buffer shared with the file server is mapped.
const BUF_VA: u64 = 0x50_0000_0000;
/// Its size: the largest message and its length prefix, rounded up.
const BUF_BYTES: u64 = file::MAX_MESSAGE as u64 + PAGE_SIZE;
/// What the bridge says once it listens (the host's
/// `fs_server::vm::READY`).
const READY: &[u8] = b"exo-bridge-ready\n";
/// Bytes sent to the device at once.
const TX_CHUNK: usize = 64 << 10;
/// How long to sleep between looks when the device has no interrupts.
const POLL_NS: u64 = 1_000_000;

/// The virtio console, as a byte stream.
struct Link {
    con: VirtIOConsole<ExoHal, PciTransport>,
    note: Option<Notification>,
}

impl Link {
    /// Fills `buf` with the next bytes from the host, sleeping on the
    /// interrupt while none come.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), virtio_drivers::Error> {
        for b in buf.iter_mut() {
            *b = loop {
                if let Some(c) = self.con.recv(true)? {
                    break c;
                }
                match self.note {
                    Some(n) => {
                        let _ = n.wait(FOREVER);
                    }
                    None => exo_rt::sys::sleep(POLL_NS),
                }
            };
        }
        Ok(())
    }

    /// Writes `bytes` to the host.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), virtio_drivers::Error> {
        bytes.chunks(TX_CHUNK).try_for_each(|c| self.con.send_bytes(c))
    }
}

fn main(_: &str) -> i32 {
    let dev = match Device::open("virtio-console") {
        Ok(d) => d,
        Err(e) => {
            println!("fs-bridge: {e}");
            return 1;
        }
    };
    let df = dev.df;
    let con = match VirtIOConsole::<ExoHal, _>::new(dev.transport) {
        Ok(c) => c,
        Err(e) => {
            println!("fs-bridge: {df}: the console did not start: {e}");
            return 1;
        }
    };
    let note = match device::enable_interrupts(dev.function, &[0, 1]) {
        Ok((note, _)) => Some(note),
        Err(why) => {
            println!("fs-bridge: {df}: no interrupts ({why}); polling");
            None
        }
    };
    let mut link = Link { con, note };
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
    println!("fs-bridge: relaying the file protocol between the virtio console at {df} and the file server");
    // The host sends nothing before this.
    if link.write_all(READY).is_err() {
        println!("fs-bridge: the console does not take data");
        return 1;
    }
    let mut requests = 0u64;
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = link.read_exact(&mut len) {
            println!("fs-bridge: reading the console: {e}");
            return 1;
        }
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
        if let Err(e) = link.read_exact(&mut buf[..n]) {
            println!("fs-bridge: reading the console: {e}");
            return 1;
        }
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
        let buf = buffer.as_mut_slice();
        if link.write_all(&(rlen as u32).to_le_bytes()).and_then(|()| link.write_all(&buf[..rlen])).is_err() {
            println!("fs-bridge: writing the console failed after {requests} requests");
            return 1;
        }
    }
}
