//! The virtio-net driver, as an isolated user process.
//!
//! Like virtio-blk it holds only its PCI function (device slot 0), the
//! registers the kernel derives from it and DMA memory. It serves Ethernet
//! frames to one network server over IPC (`exo_protocols::frame`): the server
//! attaches a buffer and subscribes a notification; the driver waits on its
//! endpoint with the device's interrupt notification bound, so a received
//! frame wakes it, and it passes the news on to the server's notification.
//!
//! Arguments: `serve [N]`: stop after N clients have attached and
//! detached (for tests); without N, serve for ever.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_protocols::frame::{self, Request, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{FOREVER, NOTIFY_BADGE};
use exo_rt::caps::{Endpoint, Message};
use exo_rt::println;
use exo_virtio::device::{self, Device};
use exo_virtio::hal::ExoHal;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::pci::PciTransport;

exo_rt::entry!(main);

/// Receive buffers the device holds.
const QUEUE: usize = 16;
/// Size of each (a frame and the virtio header, rounded up).
const RX_BUFFER: usize = 2048;
/// Where the client's buffer is mapped.
const CLIENT_VA: u64 = 0x20_0000_0000;
/// How long to sleep between looks at the device when it has no interrupts.
const POLL_NS: u64 = 2_000_000;

type Net = VirtIONet<ExoHal, PciTransport, QUEUE>;

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace();
    let clients: Option<u64> = match (words.next(), words.next()) {
        (Some("serve"), Some(n)) => n.parse().ok(),
        _ => None,
    };
    // Test hook: `crash-after N` dies at the N-th frame sent, with the
    // client waiting in its call, in the first instance only (restarted
    // ones know they are: `exo_rt::generation`).
    let crash_after = match (words.next(), words.next().and_then(|n| n.parse::<u64>().ok())) {
        (Some("crash-after"), Some(n)) if exo_rt::generation() == 0 => Some(n),
        _ => None,
    };
    let dev = match Device::open("virtio-net") {
        Ok(d) => d,
        Err(e) => {
            println!("virtio-net: {e}");
            return 1;
        }
    };
    let df = dev.df;
    let mut nic: Net = match VirtIONet::new(dev.transport, RX_BUFFER) {
        Ok(n) => n,
        Err(e) => {
            println!("virtio-net: {df}: initialisation failed: {e}");
            return 1;
        }
    };
    // Received frames interrupt; sending waits for the device itself.
    let irq = match device::enable_interrupts(dev.function, &[0]) {
        Ok((note, vector)) => {
            println!("virtio-net: {df}: interrupts: MSI-X entry 0, vector {vector:#x}, signalled on a notification");
            Some(note)
        }
        Err(why) => {
            println!("virtio-net: {df}: no interrupts ({why}); polling");
            None
        }
    };
    let mac = nic.mac_address();
    println!(
        "virtio-net: {df}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    // One client: the network server.
    let mut sessions = Sessions::new(CLIENT_VA, 1 << 20, 1, frame::MIN_BUFFER);
    let (mut frames_in, mut frames_out) = (0u64, 0u64);
    let how = Serve {
        name: "virtio-net",
        clients,
        bound: irq,
        timeout: if irq.is_some() { FOREVER } else { POLL_NS },
        takes_cap: &[frame::SUBSCRIBE],
    };
    let ended = server::serve(ep, how, |msg| {
        let Some(msg) = msg.filter(|m| m.badge != NOTIFY_BADGE) else {
            // Frames came in (an interrupt), or it is time to look.
            if msg.is_some() {
                nic.ack_interrupt();
            }
            tell_client(&mut nic, &mut sessions);
            return None;
        };
        if crash_after.is_some_and(|n| frames_out + 1 >= n)
            && matches!(Request::decode(msg.words), Ok(Request::Send(_)))
        {
            println!("virtio-net: test hook: dying in the middle of sending frame {}", frames_out + 1);
            exo_rt::sys::exit(70);
        }
        let r = handle(&mut nic, &mut sessions, msg, mac);
        match Request::decode(msg.words) {
            Ok(Request::Recv) if r.is_ok() => frames_in += 1,
            Ok(Request::Send(_)) if r.is_ok() => frames_out += 1,
            _ => {}
        }
        Some(session::answer(r))
    });
    match ended {
        Ended::Served(gone) => {
            println!("virtio-net: {gone} client(s) served, {frames_in} frames in, {frames_out} out; stopping");
            0
        }
        Ended::Failed(_) => 1,
    }
}

/// Signals the client's notification if frames are waiting.
fn tell_client(nic: &mut Net, sessions: &mut Sessions) {
    for c in sessions.iter_mut() {
        if let Some(note) = c.note {
            if nic.can_recv() {
                let _ = note.signal(frame::RX_READY);
            }
        }
    }
}

/// One request: the answer's words 1 and 2.
fn handle(nic: &mut Net, sessions: &mut Sessions, msg: &Message, mac: [u8; 6]) -> Result<(u64, u64), Status> {
    let request = Request::decode(msg.words);
    if request.is_err() {
        server::drop_passed_cap(msg); // a malformed SUBSCRIBE
    }
    match request? {
        Request::Attach => sessions.attach(msg).map(|_| (frame::mac_to_word(mac), 1500)),
        Request::Subscribe => {
            let cap = msg.cap.ok_or(Status::BadBuffer)?;
            sessions.subscribe(msg.badge, cap)?;
            tell_client(nic, sessions);
            Ok((0, 0))
        }
        Request::Detach => sessions.detach(msg.badge).map(|()| (0, 0)),
        Request::Recv => {
            let c = sessions.get(msg.badge)?;
            let rx = match nic.receive() {
                Ok(rx) => rx,
                Err(virtio_drivers::Error::NotReady) => return Err(Status::Empty),
                Err(_) => return Err(Status::DeviceError),
            };
            let packet = rx.packet();
            // The buffer holds at least MIN_BUFFER, so TX_OFFSET fits.
            let len = packet.len().min(frame::TX_OFFSET);
            c.buffer()[..len].copy_from_slice(&packet[..len]);
            nic.recycle_rx_buffer(rx).map_err(|_| Status::DeviceError)?;
            Ok((len as u64, nic.can_recv() as u64))
        }
        Request::Send(len) => {
            let c = sessions.get(msg.badge)?;
            let mut tx = nic.new_tx_buffer(len);
            // `TX_OFFSET + len` is inside the buffer (len <= MAX_FRAME,
            // buffer >= MIN_BUFFER).
            tx.packet_mut().copy_from_slice(&c.buffer()[frame::TX_OFFSET..frame::TX_OFFSET + len]);
            nic.send(tx).map_err(|_| Status::DeviceError)?;
            Ok((0, 0))
        }
    }
}
