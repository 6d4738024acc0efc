//! The virtio-net driver, as an isolated user process.
//!
//! Like virtio-blk it holds only its PCI function (device slot 0), the
//! registers the kernel derives from it and DMA memory. It serves Ethernet
//! frames to one network server over IPC (`exo_protocols::frame`): the server
//! attaches a buffer and subscribes a notification; the driver waits on its
//! endpoint with the device's interrupt notification bound, so a received
//! frame wakes it, and it passes the news on to the server's notification.
//! Frames move many a call, through the buffer's slots, and sending does
//! not wait for the device (`exo_virtio::net`). A client that asks
//! `LEND` reads received frames where the device put them, through a
//! read-only capability to the receive memory: no copy.
//!
//! Arguments: `serve [N]`: stop after N clients have attached and
//! detached (for tests); without N, serve for ever.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_protocols::frame::{self, Layout, Request, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{Rights, FOREVER, NOTIFY_BADGE};
use exo_rt::caps::{self, Endpoint, Message, SELF};
use exo_rt::println;
use exo_virtio::device::{self, Device};
use exo_virtio::net::Nic;

exo_rt::entry!(main);

/// Where the client's buffer is mapped.
const CLIENT_VA: u64 = 0x20_0000_0000;
/// How long to sleep between looks at the device when it has no interrupts.
const POLL_NS: u64 = 2_000_000;

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
    let mut nic = match Nic::new(dev.transport) {
        Ok(n) => n,
        Err(e) => {
            println!("virtio-net: {df}: initialisation failed: {e}");
            return 1;
        }
    };
    // Received frames interrupt; sent ones are taken back on later calls.
    let irq = match device::enable_interrupts(dev.function, &[0]) {
        Ok((note, vector)) => {
            println!("virtio-net: {df}: interrupts: MSI-X entry 0, vector {vector:#x}, signalled on a notification");
            Some((note, vector))
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
    let how_irq = Irq { function: dev.function, own: irq.map(|(_, vector)| vector), mac };
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    // One client: the network server.
    let mut sessions = Sessions::new(CLIENT_VA, 1 << 20, 1, frame::MIN_BUFFER);
    let (mut frames_in, mut frames_out) = (0u64, 0u64);
    // Whether the client borrows received frames (`LEND`).
    let mut lending = false;
    let how = Serve {
        name: "virtio-net",
        clients,
        bound: irq.map(|(note, _)| note),
        timeout: if irq.is_some() { FOREVER } else { POLL_NS },
        takes_cap: &[frame::SUBSCRIBE],
    };
    let ended = server::serve(ep, how, |msg| {
        let Some(msg) = msg.filter(|m| m.badge != NOTIFY_BADGE) else {
            // Frames came in (an interrupt), or it is time to look.
            if msg.is_some() {
                // (MSI-X: no interrupt status to read.) No more interrupts
                // until the client has taken the frames.
                if nic.can_recv() {
                    nic.quiet();
                }
            }
            tell_client(&mut nic, &mut sessions);
            return None;
        };
        let request = Request::decode(msg.words);
        if let (Some(n), Ok(Request::Send(frames) | Request::Recv(frames))) = (crash_after, request) {
            if frames > 0 && frames_out + frames as u64 >= n {
                println!("virtio-net: test hook: dying in the middle of sending frame {n}");
                exo_rt::sys::exit(70);
            }
        }
        match request {
            Ok(Request::Lend) => return lend(&nic, &mut sessions, msg.badge).map(|()| lending = true).err(),
            // A client that attaches again or leaves reads no lent frame
            // again.
            Ok(Request::Attach | Request::Detach) => {
                nic.give_back();
                lending = false;
            }
            _ => {}
        }
        let mut counts = (0, 0);
        let r = handle(&mut nic, &mut sessions, msg, &how_irq, lending, &mut counts);
        frames_in += counts.0;
        frames_out += counts.1;
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
fn tell_client(nic: &mut Nic, sessions: &mut Sessions) {
    for c in sessions.iter_mut() {
        if let Some(note) = c.note {
            if nic.can_recv() {
                let _ = note.signal(frame::RX_READY);
            }
        }
    }
}

/// What a subscription needs to route the device's interrupts.
struct Irq {
    function: exo_rt::caps::PciFunction,
    /// The driver's own MSI-X vector, if interrupts work.
    own: Option<u64>,
    mac: [u8; 6],
}

/// `LEND`: answers (here: with a capability) a read-only capability to
/// the receive memory; the answer words of a refusal.
fn lend(nic: &Nic, sessions: &mut Sessions, client: u64) -> Result<(), [u64; 3]> {
    let refuse = |s: Status| [s as u64, 0, 0];
    sessions.get(client).map_err(refuse)?;
    let (memory, bytes) = nic.rx_memory().ok_or(refuse(Status::DeviceError))?;
    let failed = |e: exo_rt::abi::Error| {
        println!("virtio-net: cannot lend received frames: {}", e.name());
        refuse(Status::DeviceError)
    };
    // Read-only; passing it on takes the right to grant it.
    let rights = Rights::READ.union(Rights::GRANT);
    let read_only = SELF.give(memory.slot(), None, rights, None, None).map_err(failed)?;
    let answered = caps::reply([Status::Ok as u64, bytes as u64, 0], Some(read_only));
    let _ = caps::delete(read_only); // the client has its own copy now
    answered.map_err(failed)
}

/// One request: the answer's words 1 and 2; `counts` gets the frames
/// received and sent. `lending`: received frames are lent, not copied.
fn handle(
    nic: &mut Nic,
    sessions: &mut Sessions,
    msg: &Message,
    irq: &Irq,
    lending: bool,
    counts: &mut (u64, u64),
) -> Result<(u64, u64), Status> {
    let request = Request::decode(msg.words);
    if request.is_err() {
        server::drop_passed_cap(msg); // a malformed SUBSCRIBE
    }
    match request? {
        Request::Attach => sessions.attach(msg).map(|_| (frame::mac_to_word(irq.mac), 1500)),
        Request::Subscribe => {
            let cap = msg.cap.ok_or(Status::BadBuffer)?;
            let note = sessions.subscribe(msg.badge, cap)?;
            // The device's interrupts go to the client itself: a received
            // frame wakes the network server, not the driver and then it.
            if let Some(own) = irq.own {
                match device::redirect_interrupts(irq.function, note, frame::RX_READY, own) {
                    Ok(v) => println!("virtio-net: interrupts now signal the client's notification (vector {v:#x})"),
                    Err(why) => println!("virtio-net: {why}: interrupts stay with the driver"),
                }
            }
            tell_client(nic, sessions);
            Ok((0, 0))
        }
        Request::Detach => sessions.detach(msg.badge).map(|()| (0, 0)),
        Request::Lend => Err(Status::BadRequest), // answered by `lend`
        Request::Recv(n) => {
            let buffer = sessions.get(msg.badge)?.buffer();
            let layout = Layout::of(buffer.len());
            if layout.slots == 0 {
                return Err(Status::BadBuffer);
            }
            counts.1 += send(nic, buffer, layout, n)?;
            let mut got = 0;
            let more = if lending {
                nic.recv_lent(|offset, len| {
                    frame::lent::put(&mut buffer[layout.lent(got)..], offset, len);
                    got += 1;
                    got < layout.slots
                })
            } else {
                nic.recv(|f| {
                    frame::put(&mut buffer[layout.rx(got)..], f);
                    got += 1;
                    got < layout.slots
                })
            }
            .map_err(|_| Status::DeviceError)?;
            counts.0 += got as u64;
            if got == 0 {
                return Err(Status::Empty);
            }
            let lent = if lending { frame::LENT } else { 0 };
            Ok((got as u64, lent | if more { frame::MORE } else { 0 }))
        }
        Request::Send(n) => {
            let buffer = sessions.get(msg.badge)?.buffer();
            counts.1 += send(nic, buffer, Layout::of(buffer.len()), n)?;
            Ok((n as u64, 0))
        }
    }
}

/// Sends the frames in the first `n` send slots of `buffer`: how many.
fn send(nic: &mut Nic, buffer: &[u8], layout: Layout, n: usize) -> Result<u64, Status> {
    if n > layout.slots {
        return Err(Status::TooLarge);
    }
    // Every length checked before anything goes out.
    if (0..n).any(|i| frame::get(&buffer[layout.tx(i)..]).is_none()) {
        return Err(Status::BadFrame);
    }
    // (A client that rewrites a length meanwhile loses the rest.)
    let frames = (0..n).map_while(|i| frame::get(&buffer[layout.tx(i)..]));
    nic.send(frames).map_err(|_| Status::DeviceError)?;
    Ok(n as u64)
}
