//! The network server as an ExoV6 process: smoltcp over the frames of a
//! network driver (`exo_protocols::frame`, its first endpoint), and TCP
//! and UDP sockets for applications (`exo_protocols::socket`, on its
//! second endpoint; the POSIX library's sockets).
//!
//! It takes its address by DHCP, answers pings (smoltcp's automatic echo
//! replies), reassembles and fragments IP datagrams, and serves its
//! clients' sockets ([`sockets`]). It is one event loop: it waits on its
//! socket endpoint with the notification the driver signals when frames
//! arrive bound to the wait, until smoltcp's next timer; every request,
//! frame or timer polls the interface, and clients whose sockets became
//! ready are signalled. No request waits: one that cannot go on answers
//! `Empty` and the client sleeps on its notification.
//!
//! Arguments: `dhcp` stops once it has an address (the demo); otherwise
//! it serves until every client has ended for good (the supervisor then
//! closes the socket endpoint).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod sockets;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use exo_protocols::frame::{self as net, Request, Status};
use exo_protocols::session::client::Attached;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_protocols::session::{self, Status as Answer};
use exo_protocols::socket::{self as proto, push, status, Request as SocketRequest};
use exo_rt::abi::{map_flags, slot, DEPENDENCY_BITS, FOREVER, NOTIFY_BADGE};
use exo_rt::caps::{self as caps, Endpoint, Memory, Message, Notification};
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;
use exo_rt::{println, sys};
use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketSet};
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr};

exo_rt::entry!(main);

/// The buffer shared with the driver: receive slots in its first half,
/// send slots in its second (`net::Layout`).
const BUF_VA: u64 = 0x50_0000_0000;
const BUF_PAGES: u64 = 64;
/// Where clients' buffers are mapped: one window each.
const CLIENT_VA: u64 = 0x60_0000_0000;
/// Where the driver's receive memory is mapped (read-only).
const LENT_VA: u64 = 0x58_0000_0000;
const CLIENT_WINDOW: u64 = 256 * 1024;
const MAX_CLIENTS: usize = 64;
/// Longest sleep between looks at the timers.
const MAX_SLEEP_NS: u64 = 1_000_000_000;
/// How long to wait for a DHCP address before serving without one.
const DHCP_WAIT_NS: u64 = 10_000_000_000;
/// Rounds of polling the interface in one go while frames keep coming.
const PUMP_ROUNDS: usize = 4;
/// How long a datagram's fragments may take to come in whole. smoltcp
/// keeps 16 datagrams being reassembled (a build feature) and takes no
/// fragment of a new one while they are full: for 60 seconds by its
/// default, so that a few fragments that never end would stop every
/// datagram in fragments for a minute. A datagram's fragments come one
/// after the other; seconds are plenty.
const REASSEMBLY_SECONDS: u64 = 5;
/// How often clients are looked at to find those that ended.
const SWEEP_NS: u64 = 1_000_000_000;

/// Frames exchanged with the driver (for the report).
static FRAMES_IN: AtomicU64 = AtomicU64::new(0);
static FRAMES_OUT: AtomicU64 = AtomicU64::new(0);
/// Calls that moved them, and client requests (for the report).
static CALLS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Calls that brought no frame in (most only sent an acknowledgement).
static EMPTY_CALLS: AtomicU64 = AtomicU64::new(0);
/// TCP segments dropped for a wrong checksum (for the report).
static BAD_CHECKSUMS: AtomicU64 = AtomicU64::new(0);

/// The driver, as a smoltcp device (through the session in `ATTACHED`).
struct Link;

/// The two halves of the buffer shared with the driver (mapped by
/// `attach` for the life of the process): receive slots, send slots. The
/// driver writes the receive half only in a `RECV`, which is never made
/// while a frame of it is being handed to smoltcp (`Slots::consuming`),
/// and reads the send half only while we wait in a call.
static RX_AREA: SpinLock<Option<&'static mut [u8]>> = SpinLock::new(None);
static TX_AREA: SpinLock<Option<&'static mut [u8]>> = SpinLock::new(None);

/// Frames in the slots: those received and not yet handed to smoltcp,
/// those smoltcp sent and not yet passed to the driver.
struct Slots {
    layout: net::Layout,
    /// Receive slots filled by the last `RECV`, and the next to hand out.
    received: usize,
    next: usize,
    /// Whether the driver may have frames: its notification came, or the
    /// last `RECV` said more were waiting, or a timer woke us.
    more: bool,
    /// Send slots filled.
    queued: usize,
    /// A received frame is being handed to smoltcp (which may send, and
    /// so flush, meanwhile): its slot must not be filled again yet.
    consuming: bool,
    /// smoltcp is polling the interface: frames may go out, none come in.
    polling: bool,
    /// The last `RECV` lent its frames (they lie in [`LENT`]).
    lent: bool,
}

static SLOTS: SpinLock<Slots> = SpinLock::new(Slots {
    layout: net::Layout { slots: 0 },
    received: 0,
    next: 0,
    more: true,
    queued: 0,
    consuming: false,
    polling: false,
    lent: false,
});

/// The driver's receive memory, mapped read-only, where lent frames lie
/// (`exo_protocols::frame::lent`).
static LENT: SpinLock<Option<Mapping>> = SpinLock::new(None);
/// The driver was restarted: ask it to lend frames again (at the next
/// exchange, when no frame of the old one is being read).
static LEND_AGAIN: AtomicBool = AtomicBool::new(false);

/// Asks the driver to lend received frames, and maps its receive memory
/// in place of the last one's; copied frames otherwise. Never while a
/// lent frame is being read.
fn lend(ep: Endpoint) {
    let mut lent = LENT.lock();
    *lent = None; // unmapped: the memory of a driver that was restarted
    let answer = ep.call(Request::Lend.encode(), None, FOREVER);
    let Ok(m) = answer else { return };
    let Some(cap) = m.cap else { return };
    let memory = Memory::from_slot(cap);
    if m.words[0] != Status::Ok as u64 {
        let _ = caps::delete(cap);
        return;
    }
    match Mapping::adopt(memory, LENT_VA, map_flags::READ) {
        Ok(mapping) => {
            *lent = Some(mapping);
            println!("net-server: the driver lends received frames: read where the device put them, not copied");
        }
        Err(_) => {
            // The driver lends, but its frames cannot be read here:
            // attaching again makes it copy them.
            println!("net-server: the driver's receive memory cannot be mapped; its frames are copied");
            let attached = *ATTACHED.lock();
            if let Some((session, note)) = attached {
                if session.attach_again().is_ok() {
                    let _ = subscribe(ep, note);
                }
            }
        }
    }
}

/// The received frame `i` (in `area`, the receive half): in its slot, or
/// where its entry says it lies in the driver's memory when it was lent.
fn received_frame<'a>(area: &'a [u8], lent: Option<&'a Mapping>, layout: net::Layout, i: usize) -> Option<&'a [u8]> {
    if SLOTS.with(|s| s.lent) {
        net::lent::get(area.get(layout.lent(i)..)?, lent?.as_slice())
    } else {
        net::get(area.get(layout.rx(i)..)?)
    }
}

/// Says the driver may have frames (its notification, or a timer).
fn frames_may_wait() {
    SLOTS.lock().more = true;
}

/// Passes the queued frames to the driver in one call, which also takes
/// the frames waiting when every received one has been handed to smoltcp
/// (not inside a poll of the interface: received frames are looked at
/// before smoltcp sees them, `Net::pump`).
fn flush() {
    let (queued, consumed, more, polling) =
        SLOTS.with(|s| (s.queued, s.next == s.received && !s.consuming, s.more, s.polling));
    if consumed && !polling && (queued > 0 || more) {
        exchange();
    } else if queued > 0 {
        SLOTS.lock().queued = 0;
        match driver_call(Request::Send(queued)) {
            Some(m) if m.words[0] == Status::Ok as u64 => {
                count(&FRAMES_OUT, queued);
                CALLS.fetch_add(1, Ordering::Relaxed);
            }
            _ => println!("net-server: the driver did not send {queued} frame(s)"),
        }
    }
}

/// The connections the frames received since the last call open (SYNs)
/// and the slots they lie in, for `Net::pump`.
static SYNS: SpinLock<Vec<(usize, net::Syn)>> = SpinLock::new(Vec::new());
/// Received slots whose SYN `Rx::consume` drops (`Net::pump`): it belongs
/// to a connection under way, or its listener has no room for it. How
/// many of each (for the report).
static DROPPED_SYN_SLOTS: SpinLock<Vec<usize>> = SpinLock::new(Vec::new());
static STRAY_SYNS: AtomicU64 = AtomicU64::new(0);
static SYNS_PAST_BACKLOG: AtomicU64 = AtomicU64::new(0);

/// `RECV n`: the queued frames go out and the waiting ones come in (into
/// receive slots smoltcp is done with); whether any came.
fn exchange() -> bool {
    if LEND_AGAIN.swap(false, Ordering::Relaxed) {
        let session = ATTACHED.lock().map(|(session, _)| session);
        if let Some(session) = session {
            lend(session.endpoint());
        }
    }
    let queued = core::mem::take(&mut SLOTS.lock().queued);
    let m = driver_call(Request::Recv(queued));
    let mut s = SLOTS.lock();
    let (received, more) = match m {
        Some(m) if m.words[0] == Status::Ok as u64 => {
            s.lent = m.words[2] & net::LENT != 0;
            if s.lent && LENT.lock().is_none() {
                // Lent frames this server cannot read: ask (and map) again.
                LEND_AGAIN.store(true, Ordering::Relaxed);
            }
            (usize::try_from(m.words[1]).unwrap_or(0).min(s.layout.slots), m.words[2] & net::MORE != 0)
        }
        Some(m) if m.words[0] == Status::Empty as u64 => (0, false),
        _ => {
            if queued > 0 {
                println!("net-server: the driver did not send {queued} frame(s)");
            }
            return false;
        }
    };
    count(&FRAMES_OUT, queued);
    count(&FRAMES_IN, received);
    CALLS.fetch_add(1, Ordering::Relaxed);
    if received == 0 {
        EMPTY_CALLS.fetch_add(1, Ordering::Relaxed);
    }
    (s.received, s.next, s.more) = (received, 0, more);
    let layout = s.layout;
    drop(s);
    if let Some(area) = RX_AREA.lock().as_deref() {
        let lent = LENT.lock();
        let mut syns = SYNS.lock();
        DROPPED_SYN_SLOTS.lock().clear();
        for i in 0..received {
            if let Some(syn) = received_frame(area, lent.as_ref(), layout, i).and_then(net::syn) {
                syns.push((i, syn));
            }
        }
    }
    received > 0
}

fn count(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// Whether received frames wait for smoltcp, here or in the driver.
fn frames_waiting() -> bool {
    SLOTS.with(|s| s.next < s.received || s.more)
}

/// The session with the driver and the notification it signals, to
/// attach them again to a restarted driver.
static ATTACHED: SpinLock<Option<(Attached, Notification)>> = SpinLock::new(None);
/// How many times one request is retried on a restarted driver.
const MAX_REATTACH: u32 = 64;
/// How many times the first subscription is made again on a driver
/// restarted meanwhile (about a second in all).
const SUBSCRIBE_TRIES: u32 = 16;

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
            LEND_AGAIN.store(true, Ordering::Relaxed);
        }
        ok
    };
    session.call(request.encode(), MAX_REATTACH, resubscribe).ok()
}

/// Received frames for smoltcp: the first's receive slot, and how many
/// (more than one: TCP segments of one connection that follow each other,
/// handed to smoltcp joined into one segment, each one's checksum checked
/// as its payload is copied).
struct Rx {
    first: usize,
    count: usize,
}
struct Tx;

/// Where joined segments are made (`Rx::consume`).
static JOINED: SpinLock<net::coalesce::Joined> = SpinLock::new(net::coalesce::Joined::new());
/// Frames handed to smoltcp joined, and the segments they made (for the
/// report).
static JOINED_FRAMES: AtomicU64 = AtomicU64::new(0);
static JOINS: AtomicU64 = AtomicU64::new(0);
/// TCP segments that came in IP fragments, dropped.
static TCP_FRAGMENTS: AtomicU64 = AtomicU64::new(0);

impl RxToken for Rx {
    /// `f` reads the frame where the driver put it (or the segment joined
    /// from the frames). smoltcp may answer it from inside `f` (an ARP
    /// reply, an ICMP echo reply, the ACK of a segment out of order)
    /// through a `Tx`, which takes the other half and may flush: only
    /// sending then, the receive slots stay as they are until `f` is done.
    ///
    /// TCP checksums are checked here (smoltcp is told not to:
    /// `capabilities`); a segment whose checksum is wrong is dropped, as
    /// smoltcp would drop it, and a join ends before it: the frames after
    /// it are handed on at the next `receive`. A TCP segment in IP
    /// fragments is dropped: its checksum could only be checked after
    /// smoltcp reassembled it.
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let area = RX_AREA.lock();
        let lent = LENT.lock();
        let layout = SLOTS.with(|s| {
            s.consuming = true;
            s.layout
        });
        let frame_at =
            |i: usize| area.as_deref().and_then(|a| received_frame(a, lent.as_ref(), layout, i)).unwrap_or(&[]);
        let mut joined = JOINED.lock();
        joined.clear();
        // Frames of the run taken by this token (joined or dropped), and
        // those joined.
        let (mut taken, mut frames) = (0, 0);
        if self.count > 1 {
            taken = self.count;
            for k in 0..self.count {
                match joined.add(frame_at(self.first + k)) {
                    net::coalesce::Added::Joined => {
                        frames += 1;
                        continue;
                    }
                    net::coalesce::Added::BadChecksum => {
                        BAD_CHECKSUMS.fetch_add(1, Ordering::Relaxed);
                        taken = k + 1; // it is dropped
                    }
                    // (Not after `joinable_run`, the frames being the
                    // same: handed on at the next `receive` all the same.)
                    net::coalesce::Added::No => taken = k,
                }
                break;
            }
        }
        let r = if taken > 0 {
            SLOTS.with(|s| s.next = self.first + taken);
            joined.finish();
            if frames > 0 {
                count(&JOINED_FRAMES, frames);
                JOINS.fetch_add(1, Ordering::Relaxed);
            }
            f(joined.bytes())
        } else {
            SLOTS.with(|s| s.next = self.first + 1);
            let mut frame = frame_at(self.first);
            if DROPPED_SYN_SLOTS.lock().contains(&self.first) {
                frame = &[];
            }
            match net::checksum::tcp_ok(frame) {
                Some(false) => {
                    BAD_CHECKSUMS.fetch_add(1, Ordering::Relaxed);
                    frame = &[];
                }
                // Not a whole TCP segment; a fragment of one cannot be
                // checked here, and smoltcp is told not to (see
                // `capabilities`): dropped, and counted.
                None if net::tcp_fragment(frame) => {
                    TCP_FRAGMENTS.fetch_add(1, Ordering::Relaxed);
                    frame = &[];
                }
                _ => {}
            }
            f(frame)
        };
        SLOTS.lock().consuming = false;
        r
    }
}

/// How many received frames from slot `first` on (of the `received`) go
/// to smoltcp as one: the first, and those that follow it in its TCP
/// connection ([`net::coalesce::Segment::followed_by`]), as long as
/// they fit in one segment.
fn joinable_run(first: usize, received: usize) -> usize {
    let area = RX_AREA.lock();
    let lent = LENT.lock();
    let layout = SLOTS.with(|s| s.layout);
    let Some(area) = area.as_deref() else { return 1 };
    let frame_at = |i: usize| received_frame(area, lent.as_ref(), layout, i).unwrap_or(&[]);
    let first_frame = frame_at(first);
    let Some(mut prev) = net::coalesce::segment(first_frame) else { return 1 };
    let mut bytes = first_frame.len();
    let mut n = 1;
    while first + n < received {
        let frame = frame_at(first + n);
        bytes += frame.len().saturating_sub(net::coalesce::HEADERS);
        match net::coalesce::segment(frame) {
            Some(next) if bytes <= net::coalesce::MAX && prev.followed_by(&next) => prev = next,
            _ => break,
        }
        n += 1;
    }
    n
}

/// Frames smoltcp has sent (`Net::finish_fragments` looks whether any
/// went since it last looked).
static SENT: AtomicU64 = AtomicU64::new(0);

/// Whether smoltcp holds the rest of a datagram it began to send in
/// fragments. It has one buffer for them and sends one more fragment a
/// poll; a second socket's datagram that needs fragments, sent in the
/// same poll, would take that buffer and the first datagram would go out
/// cut short. So while this is set, only [`Net::finish_fragments`] may
/// send (`Link::transmit` says the device is full to the others, and
/// smoltcp keeps their datagrams for the next poll).
static FRAGMENTING: AtomicBool = AtomicBool::new(false);

/// Whether [`Net::finish_fragments`] is polling.
static FINISHING: AtomicBool = AtomicBool::new(false);

impl TxToken for Tx {
    /// Puts the frame in the next send slot; `flush` passes them on after
    /// each poll of the interface, or here when the slots are full.
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(net::MAX_FRAME);
        let full = SLOTS.with(|s| s.queued == s.layout.slots);
        if full {
            flush();
        }
        SENT.fetch_add(1, Ordering::Relaxed);
        let at = {
            let mut s = SLOTS.lock();
            s.queued += 1;
            s.layout.tx(s.queued - 1) - s.layout.tx(0)
        };
        let mut area = TX_AREA.lock();
        let frame = net::frame_of(&mut area.as_deref_mut().expect("attached before any frame moves")[at..], len);
        let r = f(&mut *frame);
        if let Some(more) = net::ipv4_fragment(frame) {
            FRAGMENTING.store(more, Ordering::Relaxed);
        }
        r
    }
}

impl Device for Link {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    /// The frames received before this poll, one by one, or those that
    /// join into one TCP segment together (`joinable_run`); `Net::pump`
    /// takes more from the driver between polls.
    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx)> {
        // (The token hands its frame to smoltcp before anything can call
        // the driver and refill the slot.)
        let (first, received) = SLOTS.with(|s| (s.next, s.received));
        if first >= received {
            return None;
        }
        let count = joinable_run(first, received);
        SLOTS.with(|s| s.next = first + count);
        Some((Rx { first, count }, Tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx> {
        (!FRAGMENTING.load(Ordering::Relaxed) || FINISHING.load(Ordering::Relaxed)).then_some(Tx)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = net::MAX_FRAME;
        // The driver keeps 64 receive buffers with the device, and QEMU
        // holds frames back while they are full: the whole TCP window may
        // come in one burst.
        caps.max_burst_size = None;
        // Received TCP segments are checked by `Rx::consume`, eight bytes a
        // step (smoltcp takes two), and those that come in IP fragments,
        // which it cannot check, are dropped there: TCP senders that mind
        // their path's MTU (QEMU's user network among them) never
        // fragment a segment, and a segment smoltcp took unchecked could
        // put wrong bytes in a stream.
        caps.checksum.tcp = Checksum::Tx;
        caps
    }
}

/// Attaches the buffer and the notification to a driver the supervisor
/// said it restarted, before any request finds out.
fn attach_again() {
    let Some((session, note)) = *ATTACHED.lock() else { return };
    if session.attach_again().is_ok() && subscribe(session.endpoint(), note).is_ok() {
        println!("net-server: told the driver was restarted: buffer and notification attached again");
        LEND_AGAIN.store(true, Ordering::Relaxed);
        // A driver attached anew no longer lends the frames it lent (they
        // may be the device's again): those not yet handed to smoltcp
        // are dropped, as a network would.
        SLOTS.with(|s| (s.next, s.more) = (s.received, true));
        SYNS.lock().clear();
        DROPPED_SYN_SLOTS.lock().clear();
    }
}

/// Attaches the buffer and subscribes `note`; the MAC address.
fn attach(ep: Endpoint, note: Notification) -> Result<[u8; 6], &'static str> {
    let (buffer, session, [mac, _]) = Attached::new(ep, BUF_PAGES, BUF_VA)?;
    let layout = net::Layout::of(buffer.len());
    SLOTS.lock().layout = layout;
    // Mapped for good: the halves are borrowed for the life of the process.
    let (rx, tx) = Box::leak(Box::new(buffer)).as_mut_slice().split_at_mut(layout.tx(0));
    *RX_AREA.lock() = Some(rx);
    *TX_AREA.lock() = Some(tx);
    *ATTACHED.lock() = Some((session, note));
    // A driver restarted between the attach and the subscription has
    // forgotten the buffer: attached again, it is asked again.
    let mut subscribed = subscribe(ep, note);
    for n in 1..=SUBSCRIBE_TRIES {
        if subscribed.is_ok() {
            break;
        }
        sys::sleep(1_000_000 << n.min(6));
        if session.attach_again().is_ok() {
            subscribed = subscribe(ep, note);
        }
    }
    subscribed?;
    lend(ep);
    if LENT.lock().is_none() {
        println!("net-server: the driver does not lend received frames; they are copied");
    }
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

/// Everything the event loop works on.
struct Net {
    link: Link,
    iface: Box<Interface>,
    sockets: SocketSet<'static>,
    dhcp: smoltcp::iface::SocketHandle,
    have_address: bool,
    table: sockets::Table,
    clients: Sessions,
    /// Clients that asked for pushed data (`PUSH`): by badge, the pages of
    /// their push area and the connection they last received from.
    pushes: BTreeMap<u64, Push>,
    /// Clients a lot was pushed to since they were last signalled.
    pushed: Vec<u64>,
    last_sweep: u64,
    /// The time of this poll (one clock reading serves all its rounds).
    now: Instant,
    /// No sockets: polls that only send what smoltcp holds of a datagram
    /// in fragments ([`Net::finish_fragments`]).
    none: SocketSet<'static>,
    /// [`SENT`] when [`Net::finish_fragments`] last looked.
    sent_before: u64,
}

/// A client's push area (`exo_protocols::socket::push`).
struct Push {
    pages: usize,
    /// The connection whose data go there.
    target: Option<u32>,
    /// A lot was pushed that the client has not been given a turn to
    /// take yet ([`Net::lot_waiting`]).
    turn_owed: bool,
}

/// A client's buffer: its data area, its push area (if it has `pages`
/// of one) and its status page (if it is two pages or more).
fn areas(buffer: &mut [u8], push: Option<usize>) -> (&mut [u8], Option<&mut [u8]>, Option<&mut [u8]>) {
    match push {
        Some(pages) if push::fits(buffer.len(), pages) => {
            let (data, area, status) = push::split(buffer, pages).expect("it fits");
            (data, Some(area), Some(status))
        }
        _ => {
            let (data, status) = status::split(buffer);
            (data, None, status)
        }
    }
}

impl Net {
    /// Polls the interface, follows DHCP, and signals the clients whose
    /// sockets became ready.
    fn poll(&mut self, verbose_dhcp: bool) {
        self.now = now();
        self.pump();
        match self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll() {
            Some(dhcpv4::Event::Configured(c)) => {
                self.iface.update_ip_addrs(|a| {
                    a.clear();
                    let _ = a.push(IpCidr::Ipv4(c.address));
                });
                match c.router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                let router = c.router.map(|r| alloc::format!("{r}")).unwrap_or_else(|| "none".into());
                if verbose_dhcp || !self.have_address {
                    println!("net-server: DHCP: address {}, router {router}", c.address);
                }
                self.have_address = true;
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if core::mem::take(&mut self.have_address) {
                    println!("net-server: DHCP: address lost");
                }
                self.iface.update_ip_addrs(|a| a.clear());
                let _ = self.iface.routes_mut().remove_default_ipv4_route();
            }
            None => {}
        }
        let ns = self.now.total_micros() as u64 * 1000;
        self.table.update(&mut self.sockets, ns);
        self.push();
        self.publish();
        // Segments the update queued (a listener's new sockets, a reset)
        // go out now, not at the next event.
        self.pump();
        if ns.saturating_sub(self.last_sweep) >= SWEEP_NS {
            self.last_sweep = ns;
            self.sweep();
        }
    }

    /// Whether a pushing client has yet to take the last lot pushed to
    /// it, and has not been given a turn for it already (once a lot: a
    /// client that reads slowly does not hold up everyone else's data).
    fn lot_waiting(&mut self) -> bool {
        let clients = &mut self.clients;
        let mut waiting = false;
        for (&owner, p) in self.pushes.iter_mut() {
            if !core::mem::take(&mut p.turn_owed) {
                continue;
            }
            let Ok(s) = clients.get(owner) else { continue };
            let taken = matches!(areas(s.buffer(), Some(p.pages)), (_, Some(area), _) if push::taken(area));
            waiting |= !taken;
        }
        waiting
    }

    /// Moves what each pushing client's connection received into its push
    /// area, once it took the last lot.
    fn push(&mut self) {
        for (&owner, p) in self.pushes.iter_mut() {
            let Some(handle) = p.target else { continue };
            let Ok(s) = self.clients.get(owner) else { continue };
            let (_, Some(area), _) = areas(s.buffer(), Some(p.pages)) else { continue };
            if !push::taken(area) {
                continue;
            }
            let n = self.table.push_into(&mut self.sockets, owner, handle, push::room(area));
            if n > 0 {
                push::pushed(area, handle, n);
                p.turn_owed = true;
                self.pushed.push(owner);
            }
        }
    }

    /// Writes the flags told since the last time into their owners' status
    /// pages, then signals the owners whose sockets gained a flag or who
    /// were pushed a lot.
    fn publish(&mut self) {
        let (told, mut signal) = self.table.take_told();
        for (owner, handle, flags) in told {
            let pages = self.pushes.get(&owner).map(|p| p.pages);
            if let Ok(s) = self.clients.get(owner) {
                if let (_, _, Some(page)) = areas(s.buffer(), pages) {
                    status::publish(page, handle, flags);
                }
            }
        }
        for owner in self.pushed.drain(..) {
            if !signal.contains(&owner) {
                signal.push(owner);
            }
        }
        for owner in signal {
            if let Some(n) = self.clients.get(owner).ok().and_then(|s| s.note) {
                let _ = n.signal(proto::READY);
            }
        }
    }

    /// Polls the interface, passing what it sent to the driver, while
    /// frames keep coming, for a few rounds (then clients get a turn).
    ///
    /// Frames come in between polls (with the frames smoltcp sent going
    /// out in the same call), and their SYNs are given listening sockets
    /// before smoltcp sees them.
    fn pump(&mut self) {
        for _ in 0..PUMP_ROUNDS {
            if SLOTS.with(|s| s.next == s.received && s.more) {
                exchange();
            }
            let syns = core::mem::take(&mut *SYNS.lock());
            if !syns.is_empty() {
                let mut dropped = DROPPED_SYN_SLOTS.lock();
                let mut opening = Vec::with_capacity(syns.len());
                for (k, (slot, syn)) in syns.iter().enumerate() {
                    if sockets::under_way(&self.sockets, syn) || syns[..k].iter().any(|(_, s)| s == syn) {
                        dropped.push(*slot);
                    } else {
                        opening.push((*slot, syn.to.1));
                    }
                }
                count(&STRAY_SYNS, dropped.len());
                let before = dropped.len();
                self.table.expect_connections(&mut self.sockets, &opening, &mut dropped);
                count(&SYNS_PAST_BACKLOG, dropped.len() - before);
            }
            SLOTS.lock().polling = true;
            self.iface.poll_maintenance(self.now);
            while self.iface.poll_ingress_single(self.now, &mut self.link, &mut self.sockets)
                != PollIngressSingleResult::None
            {
                self.finish_fragments(); // (an answer to a large ping)
            }
            // What came in goes to the clients that take pushes before
            // smoltcp answers: its acknowledgement then opens the window
            // again, instead of closing it and a window update following.
            self.push();
            loop {
                let sent = self.iface.poll_egress(self.now, &mut self.link, &mut self.sockets);
                self.finish_fragments();
                if sent == PollResult::None {
                    break;
                }
            }
            SLOTS.lock().polling = false;
            flush();
            if !frames_waiting() {
                break;
            }
        }
    }

    /// Lets go of clients that ended: their buffer or notification
    /// capability no longer names anything (their budget was taken back).
    fn sweep(&mut self) {
        let gone: Vec<u64> = self.clients.iter_mut().filter(|s| !s.alive()).map(|s| s.badge).collect();
        for badge in gone {
            let n = self.table.close_all(&mut self.sockets, badge);
            let _ = self.clients.detach(badge);
            self.pushes.remove(&badge);
            println!("net-server: client {badge:#x} ended; {n} socket(s) closed");
        }
    }

    /// Sends the rest of the datagram smoltcp is sending in fragments.
    /// smoltcp sends one more fragment each time it is polled, and a
    /// socket's next datagram that needs fragments takes the one buffer
    /// for fragments: the rest of the one before was lost. So after every
    /// datagram, its fragments all go out before another socket is
    /// polled (a burst of 4000-byte echoes, held while the peer's address
    /// was resolved, had lost every last fragment), and within one poll
    /// [`FRAGMENTING`] holds back the sockets after the one that began a
    /// datagram in fragments (two echo services answering at once had
    /// sent one datagram in 80 as its first fragment only). Polled with
    /// no sockets, smoltcp only sends fragments, and says it has more to
    /// send while it holds some.
    fn finish_fragments(&mut self) {
        // Only after something was sent (most polls of a received segment
        // send nothing), or while fragments wait.
        let sent = SENT.load(Ordering::Relaxed);
        if core::mem::replace(&mut self.sent_before, sent) == sent && !FRAGMENTING.load(Ordering::Relaxed) {
            return;
        }
        FINISHING.store(true, Ordering::Relaxed);
        // (At most a few: the fragment buffer holds one 8 KiB datagram.)
        for _ in 0..16 {
            if self.iface.poll_at(self.now, &self.none).is_none() {
                // Whatever the last frame said: smoltcp holds no fragments.
                FRAGMENTING.store(false, Ordering::Relaxed);
                break;
            }
            self.iface.poll_egress(self.now, &mut self.link, &mut self.none);
        }
        FINISHING.store(false, Ordering::Relaxed);
    }

    /// How long to sleep: not at all while frames wait, else until
    /// smoltcp's next timer, at most a second.
    fn delay(&mut self) -> u64 {
        if frames_waiting() {
            return 0;
        }
        self.iface
            .poll_delay(self.now, &self.sockets)
            .map_or(MAX_SLEEP_NS, |d| (d.total_micros() * 1000).min(MAX_SLEEP_NS))
    }

    /// One client request: the answer words.
    fn request(&mut self, msg: &Message) -> [u64; 3] {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        let request = match SocketRequest::decode(msg.words) {
            Ok(r) => r,
            Err(s) => {
                server::drop_passed_cap(msg);
                return [s as u64, 0, 0];
            }
        };
        let owner = msg.badge;
        let t = &mut self.table;
        let sockets = &mut self.sockets;
        let push = self.pushes.get(&owner).map(|p| p.pages);
        let answer = match request {
            SocketRequest::Attach => {
                // A client attaching again starts afresh, and so do its
                // status page and pushes.
                t.close_all(sockets, owner);
                self.pushes.remove(&owner);
                return session::answer(self.clients.attach(msg).map(|s| {
                    if let (_, _, Some(page)) = areas(s.buffer(), None) {
                        page.fill(0);
                    }
                    (s.bytes(), 0)
                }));
            }
            SocketRequest::Detach => {
                t.close_all(sockets, owner);
                self.pushes.remove(&owner);
                return session::answer(self.clients.detach(owner).map(|()| (0, 0)));
            }
            SocketRequest::Subscribe => {
                let Some(cap) = msg.cap else { return [Answer::BadRequest as u64, 0, 0] };
                return session::answer(self.clients.subscribe(owner, cap).map(|_| (0, 0)));
            }
            // Every other request needs the client attached.
            _ if self.clients.get(owner).is_err() => return [Answer::NotAttached as u64, 0, 0],
            SocketRequest::Open { udp } => t.open(sockets, owner, udp).map(|h| (u64::from(h), 0)),
            SocketRequest::Bind(h, to) => t.bind(sockets, owner, h, to).map(|a| (a, 0)),
            SocketRequest::Listen(h, backlog) => t.listen(sockets, owner, h, backlog).map(|()| (0, 0)),
            SocketRequest::Accept(h) => t.accept(sockets, owner, h),
            SocketRequest::Connect(h, to) => t.connect(self.iface.context(), sockets, owner, h, to).map(|()| (0, 0)),
            SocketRequest::Send(h, len, to) => {
                let buf = areas(self.clients.get(owner).expect("attached").buffer(), push).0;
                match buf.get(..len as usize) {
                    Some(data) => t.send(sockets, owner, h, data, to).map(|n| (n, 0)),
                    None => Err(Answer::TooLarge),
                }
            }
            SocketRequest::Recv(h, len) => {
                let (buf, area, _) = areas(self.clients.get(owner).expect("attached").buffer(), push);
                // What comes next on this connection goes to the push
                // area; a lot of it still waiting there comes first.
                if let Some(p) = self.pushes.get_mut(&owner).filter(|_| t.is_stream(owner, h)) {
                    p.target = Some(h);
                }
                if area.is_some_and(|a| push::waiting(a).is_some_and(|(_, waiting, _)| waiting == h)) {
                    Err(Answer::Empty)
                } else {
                    let n = buf.len().min(len as usize);
                    t.recv(sockets, owner, h, &mut buf[..n])
                }
            }
            SocketRequest::Poll(count) => {
                let buf = areas(self.clients.get(owner).expect("attached").buffer(), push).0;
                match buf.get_mut(..count as usize * 4) {
                    Some(list) => {
                        let mut ready = 0;
                        for word in list.chunks_exact_mut(4) {
                            let h = u32::from_le_bytes(word.try_into().expect("4 bytes"));
                            let f = t.poll(sockets, owner, h);
                            ready += u64::from(f & !proto::CONNECTED != 0);
                            word.copy_from_slice(&f.to_le_bytes());
                        }
                        Ok((ready, 0))
                    }
                    None => Err(Answer::TooLarge),
                }
            }
            SocketRequest::Push(pages) => {
                let buffer = self.clients.get(owner).expect("attached").buffer();
                match push::split(buffer, pages as usize) {
                    Some((_, area, _)) => {
                        push::clear(area);
                        self.pushes.insert(owner, Push { pages: pages as usize, target: None, turn_owed: false });
                        Ok((0, 0))
                    }
                    None => Err(Answer::TooLarge),
                }
            }
            SocketRequest::Shutdown(h) => t.shutdown(sockets, owner, h).map(|()| (0, 0)),
            SocketRequest::Close(h) => {
                // Its lot, if one waits, is dropped; no more go its way.
                if let Some(p) = self.pushes.get_mut(&owner) {
                    if p.target == Some(h) {
                        p.target = None;
                    }
                    let buffer = self.clients.get(owner).expect("attached").buffer();
                    if let (_, Some(area), _) = areas(buffer, Some(p.pages)) {
                        push::drop_lot(area, h);
                    }
                }
                t.close(sockets, owner, h, false).map(|()| (0, 0))
            }
            SocketRequest::Names(h) => t.names(sockets, owner, h),
        };
        session::answer(answer)
    }
}

fn main(args: &str) -> i32 {
    let dhcp_only = args.split_whitespace().next() == Some("dhcp");
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
    let mut iface = Box::new(Interface::new(config, &mut link, now()));
    iface.set_reassembly_timeout(smoltcp::time::Duration::from_secs(REASSEMBLY_SECONDS));
    let mut sockets = SocketSet::new(vec![]);
    let dhcp = sockets.add(dhcpv4::Socket::new());
    println!(
        "net-server: up on MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}; asking for an address by DHCP",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    let mut net = Net {
        link,
        iface,
        sockets,
        dhcp,
        have_address: false,
        table: sockets::Table::new(sys::rdtsc()),
        clients: Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, proto::MIN_BUFFER),
        pushes: BTreeMap::new(),
        pushed: Vec::new(),
        last_sweep: sys::clock(),
        now: now(),
        none: SocketSet::new(Vec::new()),
        sent_before: 0,
    };

    // The address first (clients calling meanwhile wait for it), for a
    // while: without one the sockets are served anyway.
    let start = sys::clock();
    while !net.have_address && sys::clock() - start < DHCP_WAIT_NS {
        net.poll(true);
        let delay = net.delay().max(1);
        frames_may_wait(); // a notification or the timer: look
        if note.wait(delay).is_ok_and(|bits| bits & DEPENDENCY_BITS != 0) {
            attach_again();
        }
    }
    if !net.have_address {
        println!(
            "net-server: no DHCP answer in {} s; serving sockets without an address",
            DHCP_WAIT_NS / 1_000_000_000
        );
    }
    let ended = if dhcp_only {
        None
    } else {
        println!("net-server: serving sockets (TCP and UDP)");
        let sockets_ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE + 1);
        let timeout = Cell::new(net.delay());
        let how = Serve {
            name: "net-server",
            clients: None,
            bound: Some(note),
            timeout: FOREVER,
            takes_cap: &[proto::SUBSCRIBE],
        };
        Some(server::serve_timed(sockets_ep, how, &timeout, |msg| {
            let answer = match msg {
                Some(m) if m.badge == NOTIFY_BADGE => {
                    if m.words[0] & DEPENDENCY_BITS != 0 {
                        attach_again();
                    }
                    frames_may_wait();
                    // A client that has yet to take the lot pushed to it
                    // (signalled, and so ready to run) takes it first:
                    // what comes in now could not go to it, and smoltcp's
                    // acknowledgement would close the window.
                    if net.lot_waiting() {
                        sys::yield_now();
                    }
                    None
                }
                Some(m) => Some(net.request(m)),
                None => {
                    frames_may_wait(); // a timer: look at the driver too
                    None
                }
            };
            net.poll(false);
            timeout.set(net.delay());
            answer
        }))
    };
    // Let the last segments go out, then give the driver its buffer back.
    for _ in 0..20 {
        net.poll(false);
        sys::sleep(1_000_000);
    }
    let _ = ep.call(Request::Detach.encode(), None, FOREVER);
    let (open, connections) = net.table.counts();
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "net-server: {} frames in, {} out, in {} calls to the driver ({} brought none in); {} received frames joined into {} TCP segments; {} client requests; {} TCP segment(s) with a wrong checksum dropped, {} in IP fragments; {} SYN(s) of connections under way dropped; {} SYN(s) past a listener's backlog dropped; {open} socket(s) open ({connections} connection(s)) at the end; stopping",
        n(&FRAMES_IN),
        n(&FRAMES_OUT),
        n(&CALLS),
        n(&EMPTY_CALLS),
        n(&JOINED_FRAMES),
        n(&JOINS),
        n(&REQUESTS),
        n(&BAD_CHECKSUMS),
        n(&TCP_FRAGMENTS),
        n(&STRAY_SYNS),
        n(&SYNS_PAST_BACKLOG)
    );
    match ended {
        Some(Ended::Failed(_)) => 1,
        _ => 0,
    }
}
