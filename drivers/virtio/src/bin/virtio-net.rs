//! The virtio-net driver, as an isolated user process.
//!
//! Like virtio-blk it holds only its PCI function (device slot 0), the
//! registers the kernel derives from it and DMA memory. It serves Ethernet
//! frames to one network server over IPC (`exo_drivers::net`): the server
//! attaches a buffer and subscribes a notification; the driver waits on its
//! endpoint with the device's interrupt notification bound, so a received
//! frame wakes it, and it passes the news on to the server's notification.
//!
//! Arguments: `serve [N]`: stop after N clients have attached and
//! detached (for tests); without N, serve for ever.
#![no_std]
#![no_main]

extern crate alloc;

use exo_drivers::net::{self, Request, Status};
use exo_rt::abi::{map_flags, FOREVER, NOTIFY_BADGE, PAGE_SIZE};
use exo_rt::caps::{self, Endpoint, Memory, Message, Notification, SELF};
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

/// The one client.
struct Client {
    badge: u64,
    mem: Memory,
    bytes: u64,
    note: Option<Notification>,
}

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
    let mut client: Option<Client> = None;
    let (mut gone, mut frames_in, mut frames_out) = (0u64, 0u64, 0u64);
    loop {
        let msg = ep.recv(irq, if irq.is_some() { FOREVER } else { POLL_NS });
        let msg = match msg {
            Ok(m) => m,
            Err(exo_rt::abi::Error::Timeout) => {
                tell_client(&mut nic, &client); // polling: look now
                continue;
            }
            Err(e) => {
                println!("virtio-net: receive failed: {}", e.name());
                return 1;
            }
        };
        if msg.badge == NOTIFY_BADGE {
            nic.ack_interrupt();
            tell_client(&mut nic, &client);
            continue;
        }
        if crash_after.is_some_and(|n| frames_out + 1 >= n)
            && matches!(Request::decode(msg.words), Ok(Request::Send(_)))
        {
            println!("virtio-net: test hook: dying in the middle of sending frame {}", frames_out + 1);
            exo_rt::sys::exit(70);
        }
        let (status, w1, w2) = match handle(&mut nic, &mut client, &msg, mac) {
            Ok((w1, w2)) => (Status::Ok, w1, w2),
            Err(s) => (s, 0, 0),
        };
        match Request::decode(msg.words) {
            Ok(Request::Detach) if status == Status::Ok => gone += 1,
            Ok(Request::Recv) if status == Status::Ok => frames_in += 1,
            Ok(Request::Send(_)) if status == Status::Ok => frames_out += 1,
            _ => {}
        }
        let _ = caps::reply([status as u64, w1, w2], None);
        if clients.is_some_and(|n| gone >= n) {
            println!("virtio-net: {gone} client(s) served, {frames_in} frames in, {frames_out} out; stopping");
            return 0;
        }
    }
}

/// Signals the client's notification if frames are waiting.
fn tell_client(nic: &mut Net, client: &Option<Client>) {
    if let Some(note) = client.as_ref().and_then(|c| c.note) {
        if nic.can_recv() {
            let _ = note.signal(net::RX_READY);
        }
    }
}

/// One request: the answer's words 1 and 2.
fn handle(nic: &mut Net, client: &mut Option<Client>, msg: &Message, mac: [u8; 6]) -> Result<(u64, u64), Status> {
    let request = Request::decode(msg.words);
    let expects_cap = matches!(request, Ok(Request::Attach | Request::Subscribe));
    if !expects_cap {
        if let Some(cap) = msg.cap {
            let _ = caps::delete(cap); // not asked for: do not keep it
        }
    }
    let request = request?;
    let ours = client.as_ref().is_some_and(|c| c.badge == msg.badge);
    match request {
        Request::Attach => {
            let mem = Memory::from_slot(msg.cap.ok_or(Status::BadBuffer)?);
            if client.as_ref().is_some_and(|c| c.badge != msg.badge) {
                let _ = caps::delete(mem.slot());
                return Err(Status::BadBuffer); // one client per driver
            }
            if let Some(old) = client.take() {
                drop_client(old);
            }
            let bytes = caps::info(mem.slot()).map(|i| i.pages * PAGE_SIZE).unwrap_or(0);
            if !(net::MIN_BUFFER..=1 << 20).contains(&bytes)
                || SELF.map(mem, CLIENT_VA, map_flags::READ | map_flags::WRITE).is_err()
            {
                let _ = caps::delete(mem.slot());
                return Err(Status::BadBuffer);
            }
            *client = Some(Client { badge: msg.badge, mem, bytes, note: None });
            Ok((net::mac_to_word(mac), 1500))
        }
        Request::Subscribe => {
            let cap = msg.cap.ok_or(Status::BadBuffer)?;
            let Some(c) = client.as_mut().filter(|_| ours) else {
                let _ = caps::delete(cap);
                return Err(Status::NotAttached);
            };
            if let Some(old) = c.note.replace(Notification::from_slot(cap)) {
                let _ = caps::delete(old.slot());
            }
            tell_client(nic, client);
            Ok((0, 0))
        }
        Request::Detach => {
            let c = client.take().filter(|_| ours).ok_or(Status::NotAttached)?;
            drop_client(c);
            Ok((0, 0))
        }
        Request::Recv => {
            let c = client.as_ref().filter(|_| ours).ok_or(Status::NotAttached)?;
            let rx = match nic.receive() {
                Ok(rx) => rx,
                Err(virtio_drivers::Error::NotReady) => return Err(Status::Empty),
                Err(_) => return Err(Status::DeviceError),
            };
            let frame = rx.packet();
            let len = frame.len().min(net::TX_OFFSET);
            // SAFETY: the client's buffer is mapped read-write at CLIENT_VA
            // for `c.bytes` bytes (at least MIN_BUFFER, so TX_OFFSET fits);
            // the client waits in its call.
            unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), CLIENT_VA as *mut u8, len.min(c.bytes as usize)) };
            nic.recycle_rx_buffer(rx).map_err(|_| Status::DeviceError)?;
            Ok((len as u64, nic.can_recv() as u64))
        }
        Request::Send(len) => {
            client.as_ref().filter(|_| ours).ok_or(Status::NotAttached)?;
            let mut tx = nic.new_tx_buffer(len);
            // SAFETY: as for `Recv`: `TX_OFFSET + len` is inside the buffer
            // (len <= MAX_FRAME, buffer >= MIN_BUFFER).
            let frame = unsafe { core::slice::from_raw_parts((CLIENT_VA as usize + net::TX_OFFSET) as *const u8, len) };
            tx.packet_mut().copy_from_slice(frame);
            nic.send(tx).map_err(|_| Status::DeviceError)?;
            Ok((0, 0))
        }
    }
}

fn drop_client(c: Client) {
    let _ = SELF.unmap(CLIENT_VA);
    let _ = caps::delete(c.mem.slot());
    if let Some(n) = c.note {
        let _ = caps::delete(n.slot());
    }
}
