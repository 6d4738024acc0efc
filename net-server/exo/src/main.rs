//! The network server as an ExoV6 process: smoltcp over the frames of a
//! network driver (`exo_protocols::frame`, its first endpoint).
//!
//! It takes its address by DHCP, answers pings (smoltcp's automatic echo
//! replies), and runs an echo service on TCP and UDP port 7. Between its
//! own timers it sleeps on a notification the driver signals when frames
//! arrive. The socket interface for applications (the library OS's
//! sockets) comes later; for now the echo service is what the tests
//! reach from the host through QEMU's port forwarding.
//!
//! Arguments: `serve N` stops after N TCP echo connections have ended
//! (for tests); `dhcp` stops once it has an address (the demo); without
//! either, it runs for ever.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};
use exo_protocols::frame::{self as net, Request, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::{slot, DEPENDENCY_BITS, FOREVER};
use exo_rt::caps::{Endpoint, Notification};
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;
use exo_rt::{println, sys};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, IpListenEndpoint};

exo_rt::entry!(main);

/// The buffer shared with the driver: received frames at the start, frames
/// to send at `net::TX_OFFSET`.
const BUF_VA: u64 = 0x50_0000_0000;
const BUF_PAGES: u64 = 2;
/// The echo service's port.
const ECHO_PORT: u16 = 7;
/// Longest sleep between looks at the timers.
const MAX_SLEEP_NS: u64 = 100_000_000;

/// Frames exchanged with the driver (for the report).
static FRAMES_IN: AtomicU64 = AtomicU64::new(0);
static FRAMES_OUT: AtomicU64 = AtomicU64::new(0);

/// The driver, as a smoltcp device (through the session in `ATTACHED`).
struct Link;

/// The buffer shared with the driver, mapped by `attach`; the driver
/// writes it only while we wait in a call, and the tokens below use it one
/// at a time.
static BUFFER: SpinLock<Option<Mapping>> = SpinLock::new(None);

fn with_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    f(BUFFER.lock().as_mut().expect("attached before any frame moves").as_mut_slice())
}

/// The session with the driver and the notification it signals, to
/// attach them again to a restarted driver.
static ATTACHED: SpinLock<Option<(Attached, Notification)>> = SpinLock::new(None);
/// How many times one request is retried on a restarted driver.
const MAX_REATTACH: u32 = 64;

/// One request to the driver, made again on a driver the supervisor
/// restarted: a call the dead instance held fails with `Dead`, the new
/// instance answers `NotAttached`; either way the buffer and the
/// notification are attached again first. (A frame lost in between is
/// what a network loses anyway: TCP sends it again.)
fn driver_call(request: Request) -> Option<exo_rt::caps::Message> {
    let (session, note) = (*ATTACHED.lock())?;
    let resubscribe = |a: &Attached| {
        let ok = subscribe(a.endpoint(), note).is_ok();
        if ok {
            println!("net-server: the driver was restarted: buffer and notification attached again");
        }
        ok
    };
    session.call(request.encode(), MAX_REATTACH, resubscribe).ok()
}

struct Rx(usize);
struct Tx;

impl RxToken for Rx {
    /// smoltcp may answer a frame from inside `f` (an ARP reply, an ICMP
    /// echo reply, the ACK of a segment out of order), sending through a
    /// `Tx` that takes the buffer too: so `f` gets a copy, with the buffer
    /// free (holding it across `f` deadlocked the server on such answers).
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let mut frame = [0u8; net::MAX_FRAME];
        let len = self.0.min(net::MAX_FRAME);
        with_buffer(|b| frame[..len].copy_from_slice(&b[..len]));
        f(&frame[..len])
    }
}

impl TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(net::MAX_FRAME);
        let r = with_buffer(|b| f(&mut b[net::TX_OFFSET..net::TX_OFFSET + len]));
        match driver_call(Request::Send(len)) {
            Some(m) if m.words[0] == Status::Ok as u64 => {
                FRAMES_OUT.fetch_add(1, Ordering::Relaxed);
            }
            _ => println!("net-server: the driver did not send a {len}-byte frame"),
        }
        r
    }
}

impl Device for Link {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx)> {
        let m = driver_call(Request::Recv)?;
        if m.words[0] != Status::Ok as u64 {
            return None;
        }
        FRAMES_IN.fetch_add(1, Ordering::Relaxed);
        Some((Rx(m.words[1] as usize), Tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx> {
        Some(Tx)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = net::MAX_FRAME;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// Attaches the buffer and the notification to a driver the supervisor
/// said it restarted, before any request finds out.
fn attach_again() {
    let Some((session, note)) = *ATTACHED.lock() else { return };
    if session.attach_again().is_ok() && subscribe(session.endpoint(), note).is_ok() {
        println!("net-server: told the driver was restarted: buffer and notification attached again");
    }
}

/// Attaches the buffer and subscribes `note`; the MAC address.
fn attach(ep: Endpoint, note: Notification) -> Result<[u8; 6], &'static str> {
    let (buffer, session, [mac, _]) = Attached::new(ep, BUF_PAGES, BUF_VA)?;
    *BUFFER.lock() = Some(buffer);
    *ATTACHED.lock() = Some((session, note));
    subscribe(ep, note)?;
    Ok(net::mac_from_word(mac))
}

/// Subscribes `note` to "frames waiting".
fn subscribe(ep: Endpoint, note: Notification) -> Result<(), &'static str> {
    let s =
        ep.call(Request::Subscribe.encode(), Some(note.slot()), FOREVER).map_err(|_| "the driver does not answer")?;
    if s.words[0] != Status::Ok as u64 {
        return Err("the driver refused the notification");
    }
    Ok(())
}

fn now() -> Instant {
    Instant::from_micros((sys::clock() / 1000) as i64)
}

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace();
    let (stop_after, dhcp_only): (Option<u64>, bool) = match (words.next(), words.next()) {
        (Some("serve"), Some(n)) => (n.parse().ok(), false),
        (Some("dhcp"), None) => (None, true),
        _ => (None, false),
    };
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    // The driver signals frames on the notification the supervisor gave
    // us, where the supervisor also says when the driver was restarted.
    let note = Notification::from_slot(slot::SUPERVISOR);
    let mac = match attach(ep, note) {
        Ok(m) => m,
        Err(e) => {
            println!("net-server: {e}");
            return 1;
        }
    };
    let mut link = Link;
    let mut config = Config::new(EthernetAddress(mac).into());
    config.random_seed = sys::rdtsc(); // a seed, not a secret
    let mut iface = Interface::new(config, &mut link, now());

    let mut sockets = SocketSet::new(vec![]);
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let tcp_socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 8192]), tcp::SocketBuffer::new(vec![0; 8192]));
    let tcp = sockets.add(tcp_socket);
    let udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]),
    );
    let udp = sockets.add(udp_socket);
    if sockets.get_mut::<udp::Socket>(udp).bind(IpListenEndpoint { addr: None, port: ECHO_PORT }).is_err() {
        println!("net-server: cannot bind UDP port {ECHO_PORT}");
        return 1;
    }
    println!(
        "net-server: up on MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}; asking for an address by DHCP",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );

    let (mut served, mut echoed, mut was_active, mut have_address) = (0u64, 0u64, false, false);
    loop {
        let t = now();
        iface.poll(t, &mut link, &mut sockets);

        match sockets.get_mut::<dhcpv4::Socket>(dhcp).poll() {
            Some(dhcpv4::Event::Configured(c)) => {
                iface.update_ip_addrs(|a| {
                    a.clear();
                    let _ = a.push(IpCidr::Ipv4(c.address));
                });
                match c.router {
                    Some(r) => {
                        let _ = iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                let router = c.router.map(|r| alloc::format!("{r}")).unwrap_or_else(|| "none".into());
                let service = if dhcp_only { "" } else { "; echo on TCP and UDP port 7" };
                println!("net-server: DHCP: address {}, router {router}{service}", c.address);
                have_address = true;
                if dhcp_only {
                    break;
                }
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if core::mem::take(&mut have_address) {
                    println!("net-server: DHCP: address lost");
                }
                iface.update_ip_addrs(|a| a.clear());
                let _ = iface.routes_mut().remove_default_ipv4_route();
            }
            None => {}
        }

        // TCP echo: one connection at a time.
        let s = sockets.get_mut::<tcp::Socket>(tcp);
        if !s.is_open() && s.listen(ECHO_PORT).is_err() {
            println!("net-server: cannot listen on TCP port {ECHO_PORT}");
            return 1;
        }
        if s.is_active() && !was_active {
            if let Some(peer) = s.remote_endpoint() {
                println!("net-server: TCP {ECHO_PORT}: connection from {peer}");
            }
        }
        if s.can_recv() && s.can_send() {
            let mut chunk = [0u8; 2048];
            let n = s.recv_slice(&mut chunk).unwrap_or(0);
            let sent = s.send_slice(&chunk[..n]).unwrap_or(0);
            echoed += sent as u64;
        }
        if s.state() == tcp::State::CloseWait && s.send_queue() == 0 {
            s.close(); // the peer is done and everything went back
        }
        if was_active && !s.is_active() {
            served += 1;
            println!("net-server: TCP {ECHO_PORT}: connection ended, {echoed} bytes echoed");
            echoed = 0;
            if stop_after.is_some_and(|n| served >= n) {
                break;
            }
        }
        was_active = s.is_active();

        // UDP echo.
        let u = sockets.get_mut::<udp::Socket>(udp);
        let mut dgram = [0u8; 1500];
        while let Ok((n, meta)) = u.recv_slice(&mut dgram) {
            let _ = u.send_slice(&dgram[..n], meta.endpoint);
            println!("net-server: UDP {ECHO_PORT}: {n} bytes from {} echoed", meta.endpoint);
        }

        // Sleep until the next timer or a frame.
        let delay =
            iface.poll_delay(now(), &sockets).map_or(MAX_SLEEP_NS, |d| (d.total_micros() * 1000).min(MAX_SLEEP_NS));
        if delay > 0 && note.wait(delay).is_ok_and(|bits| bits & DEPENDENCY_BITS != 0) {
            attach_again();
        }
    }
    // Let the last segments go out, then give the driver its buffer back.
    for _ in 0..20 {
        iface.poll(now(), &mut link, &mut sockets);
        sys::sleep(1_000_000);
    }
    let _ = ep.call(Request::Detach.encode(), None, FOREVER);
    println!(
        "net-server: {served} connection(s) served, {} frames in, {} out; stopping",
        FRAMES_IN.load(Ordering::Relaxed),
        FRAMES_OUT.load(Ordering::Relaxed)
    );
    0
}
