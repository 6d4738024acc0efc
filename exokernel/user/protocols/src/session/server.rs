//! The server side of a session on ExoV6, the same for every service:
//! the table of attached clients, each buffer mapped in a window of its
//! own, and the serve loop.

use super::{Status, ATTACH, DETACH, PING};
use alloc::vec::Vec;
use core::cell::Cell;
use exo_rt::abi::{map_flags, Error, PAGE_SIZE};
use exo_rt::caps::{self, Endpoint, Memory, Message, Notification};
use exo_rt::mem::Mapping;
use exo_rt::println;

/// An attached client.
pub struct Session {
    /// The badge its calls carry.
    pub badge: u64,
    /// Its buffer, mapped (and its capability ours: deleted with it).
    buffer: Mapping,
    /// Which window the buffer is mapped in.
    window: usize,
    /// A notification it subscribed, if the service has any.
    pub note: Option<Notification>,
}

impl Session {
    /// Its buffer.
    pub fn buffer(&mut self) -> &mut [u8] {
        self.buffer.as_mut_slice()
    }

    /// Bytes in its buffer.
    pub fn bytes(&self) -> u64 {
        self.buffer.len() as u64
    }

    /// Whether the client may still be there: false once its buffer's or
    /// its notification's capability names nothing (revoked with the
    /// budget they came from, when the client ended).
    pub fn alive(&self) -> bool {
        caps::info(self.buffer.memory().slot()).is_ok() && self.note.is_none_or(|n| caps::info(n.slot()).is_ok())
    }

    /// Keeps `note` as the notification to signal, deleting the one
    /// before.
    pub fn subscribe(&mut self, note: Notification) {
        if let Some(old) = self.note.replace(note) {
            let _ = caps::delete(old.slot());
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(n) = self.note.take() {
            let _ = caps::delete(n.slot());
        }
    }
}

/// The attached clients of a service.
pub struct Sessions {
    clients: Vec<Session>,
    /// Where windows start, and bytes per window.
    base: u64,
    window: u64,
    /// Most clients at once, and the smallest buffer taken.
    max: usize,
    min: u64,
}

impl Sessions {
    /// Clients' buffers mapped from `base`, one window of `window` bytes
    /// each, at most `max` clients at once, buffers of at least `min`
    /// bytes (and at most a window).
    pub fn new(base: u64, window: u64, max: usize, min: u64) -> Sessions {
        Sessions { clients: Vec::new(), base, window, max, min: min.max(1) }
    }

    fn position(&self, badge: u64) -> Option<usize> {
        self.clients.iter().position(|c| c.badge == badge)
    }

    /// `ATTACH`: maps the memory `msg` passes as its sender's buffer (a
    /// client attaching again gives its old buffer back first). The
    /// capability is deleted if it cannot be used.
    pub fn attach(&mut self, msg: &Message) -> Result<&mut Session, Status> {
        let cap = msg.cap.ok_or(Status::NotAttached)?;
        if let Some(i) = self.position(msg.badge) {
            drop(self.clients.swap_remove(i));
        }
        let bytes = caps::info(cap).map(|i| i.pages * PAGE_SIZE).unwrap_or(0);
        if self.clients.len() >= self.max {
            // Room made by clients that ended without detaching.
            self.prune_dead();
        }
        let free = (0..self.max).find(|w| self.clients.iter().all(|c| c.window != *w));
        let Some(window) = free.filter(|_| (self.min..=self.window).contains(&bytes)) else {
            let _ = caps::delete(cap);
            return Err(Status::BadBuffer);
        };
        let va = self.base + window as u64 * self.window;
        let buffer = Mapping::adopt(Memory::from_slot(cap), va, map_flags::READ | map_flags::WRITE)
            .map_err(|_| Status::BadBuffer)?;
        self.clients.push(Session { badge: msg.badge, buffer, window, note: None });
        Ok(self.clients.last_mut().expect("just pushed"))
    }

    /// `DETACH`: unmaps `badge`'s buffer.
    pub fn detach(&mut self, badge: u64) -> Result<(), Status> {
        let i = self.position(badge).ok_or(Status::NotAttached)?;
        drop(self.clients.swap_remove(i));
        Ok(())
    }

    /// `SUBSCRIBE`: `badge`'s session keeps notification `cap` (passed
    /// with the request) in place of any before; if `badge` is not
    /// attached, the capability is deleted and the status returned.
    pub fn subscribe(&mut self, badge: u64, cap: u64) -> Result<Notification, Status> {
        match self.get(badge) {
            Ok(s) => {
                let note = Notification::from_slot(cap);
                s.subscribe(note);
                Ok(note)
            }
            Err(e) => {
                let _ = caps::delete(cap);
                Err(e)
            }
        }
    }

    /// The session of `badge`.
    pub fn get(&mut self, badge: u64) -> Result<&mut Session, Status> {
        let i = self.position(badge).ok_or(Status::NotAttached)?;
        Ok(&mut self.clients[i])
    }

    /// Forgets the clients that are gone ([`Session::alive`] false: a
    /// program that ended without detaching); how many.
    pub fn prune_dead(&mut self) -> usize {
        let before = self.clients.len();
        self.clients.retain(Session::alive);
        before - self.clients.len()
    }

    /// Every attached client.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.clients.iter_mut()
    }
}

/// Deletes the capability that came with `msg`, if any: for a request a
/// service refuses (malformed), which keeps nothing it was passed.
pub fn drop_passed_cap(msg: &Message) {
    if let Some(cap) = msg.cap {
        let _ = caps::delete(cap);
    }
}

/// How a service is served.
pub struct Serve<'a> {
    /// Its name, for messages.
    pub name: &'a str,
    /// Stop once this many clients have detached (tests); `None`: never.
    pub clients: Option<u64>,
    /// A notification to wait on besides the endpoint (a device's
    /// interrupts).
    pub bound: Option<Notification>,
    /// How long to wait before the handler is called with no message
    /// (`FOREVER`: never).
    pub timeout: u64,
    /// Operations that take a capability besides [`ATTACH`].
    pub takes_cap: &'a [u64],
}

/// Why [`serve`] returned.
pub enum Ended {
    /// The clients asked for have come and gone.
    Served(u64),
    /// Receiving failed.
    Failed(Error),
}

/// The serve loop: each message (or `None` when the wait timed out) goes
/// to `handle`, whose answer is the reply (`None`: no reply, for
/// notifications). Capabilities passed with operations that take none
/// are deleted unread. Successful `DETACH`es are counted; `PING` is
/// answered here. When the supervisor closes the endpoint (no client is
/// left), it returns [`Ended::Served`] with the count so far.
pub fn serve(ep: Endpoint, how: Serve<'_>, handle: impl FnMut(Option<&Message>) -> Option<[u64; 3]>) -> Ended {
    let timeout = Cell::new(how.timeout);
    serve_timed(ep, how, &timeout, handle)
}

/// [`serve`], waiting each time as long as `timeout` says then (the
/// handler may change it: a network stack's next timer). `how.timeout`
/// is not used.
pub fn serve_timed(
    ep: Endpoint,
    how: Serve<'_>,
    timeout: &Cell<u64>,
    mut handle: impl FnMut(Option<&Message>) -> Option<[u64; 3]>,
) -> Ended {
    let mut pending: Option<[u64; 3]> = None;
    let mut gone = 0;
    loop {
        let wait = timeout.get();
        let received = match pending.take() {
            Some(words) => ep.reply_recv(words, None, how.bound, wait),
            None => ep.recv(how.bound, wait),
        };
        let msg = match received {
            Ok(m) => m,
            Err(Error::Timeout) => {
                handle(None);
                continue;
            }
            // The supervisor closed the endpoint: every client this
            // service could have has ended for good.
            Err(Error::Gone) => {
                println!("{}: every client has ended for good (endpoint closed); stopping", how.name);
                return Ended::Served(gone);
            }
            Err(e) => {
                println!("{}: receive failed: {}", how.name, e.name());
                return Ended::Failed(e);
            }
        };
        if let Some(cap) = msg.cap {
            if msg.words[0] != ATTACH && !how.takes_cap.contains(&msg.words[0]) {
                let _ = caps::delete(cap); // not asked for: do not keep it
            }
        }
        // The heartbeat: answered here, for every service.
        if msg.words == [PING, 0, 0] && msg.cap.is_none() {
            pending = Some([Status::Ok as u64, 0, 0]);
            continue;
        }
        let Some(words) = handle(Some(&msg)) else { continue };
        if msg.words == [DETACH, 0, 0] && words[0] == Status::Ok as u64 {
            gone += 1;
        }
        if how.clients.is_some_and(|n| gone >= n) {
            let _ = caps::reply(words, None);
            return Ended::Served(gone);
        }
        pending = Some(words);
    }
}
