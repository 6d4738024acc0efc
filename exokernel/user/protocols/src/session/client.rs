//! The client side of a session on ExoV6, the same for every service: a
//! buffer attached by capability, calls that survive a restarted server,
//! and detaching.

use super::{Status, ATTACH, DETACH};
use exo_rt::abi::{slot, Error, FOREVER};
use exo_rt::caps::{Endpoint, Memory, Message, Untyped};
use exo_rt::mem::Mapping;

/// How many instances of a service a first attach asks before it gives
/// up (each one died while attaching, or none was there), pausing
/// between tries ([`pause`]): about six seconds in all.
pub const FIRST_ATTACH_TRIES: u32 = 64;

/// The pause before try `n` (from 1) to reach a service that did not
/// answer: 1 ms, doubling up to 100 ms. A supervisor restarting it backs
/// off too, and a loaded machine stretches that: trying again at once
/// would use every try before the next instance is up.
fn pause(n: u32) {
    exo_rt::sys::sleep((1_000_000u64 << n.saturating_sub(1).min(7)).min(100_000_000));
}

/// Why an attach did not succeed.
enum Refused {
    /// No answer: the instance died while attaching, or none is there yet.
    NoAnswer,
    /// The endpoint was closed for good: no instance will come again.
    Gone,
    /// The service answered with this status.
    Status(Status),
}

/// A buffer attached to a service: what it takes to call it and to
/// attach the same buffer again to a restarted instance.
#[derive(Clone, Copy)]
pub struct Attached {
    ep: Endpoint,
    memory: Memory,
}

impl Attached {
    /// Allocates `pages` pages from the untyped budget, maps them at `va`
    /// and attaches them to the service on `ep`: the buffer, the handle
    /// and the answer's words 1 and 2. An instance that dies while it
    /// attaches (the supervisor restarting it) is no failure: the next one
    /// is asked, up to [`FIRST_ATTACH_TRIES`] times.
    pub fn new(ep: Endpoint, pages: u64, va: u64) -> Result<(Mapping, Attached, [u64; 2]), &'static str> {
        let buffer =
            Mapping::alloc(Untyped::from_slot(slot::UNTYPED), pages, va).map_err(|_| "no memory for the buffer")?;
        let a = Attached { ep, memory: buffer.memory() };
        let mut answer = a.attach();
        for n in 1..FIRST_ATTACH_TRIES {
            if !matches!(answer, Err(Refused::NoAnswer)) {
                break;
            }
            pause(n);
            answer = a.attach();
        }
        let words = answer.map_err(|e| match e {
            Refused::NoAnswer => "the service does not answer",
            Refused::Gone => "the service is gone for good",
            Refused::Status(_) => "the service refused the buffer",
        })?;
        Ok((buffer, a, words))
    }

    /// The service's endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.ep
    }

    /// Attaches the buffer (again): the answer's words 1 and 2; `None`
    /// if the service does not answer, else its status.
    pub fn attach_again(&self) -> Result<[u64; 2], Option<Status>> {
        self.attach().map_err(|e| match e {
            Refused::Status(s) => Some(s),
            Refused::NoAnswer | Refused::Gone => None,
        })
    }

    /// One attach; an endpoint closed for good (`Gone`) is told apart
    /// from one whose instance died, so that nobody waits for a service
    /// its supervisor gave up on.
    fn attach(&self) -> Result<[u64; 2], Refused> {
        let m = self.ep.call([ATTACH, 0, 0], Some(self.memory.slot()), FOREVER).map_err(|e| match e {
            Error::Gone => Refused::Gone,
            _ => Refused::NoAnswer,
        })?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) => Ok([m.words[1], m.words[2]]),
            s => Err(Refused::Status(s.unwrap_or(Status::BadRequest))),
        }
    }

    /// One call, made again on a service the supervisor restarted (as
    /// MINIX 3's servers retry): a call the dead instance held fails
    /// with `Dead`, the new instance answers `NotAttached`; either way
    /// the buffer (still ours, its contents intact) is attached again,
    /// `then` runs (subscribing again, saying so) and the call is made
    /// again, at most `tries` times. Only for requests that may be made
    /// twice.
    pub fn call(&self, words: [u64; 3], tries: u32, mut then: impl FnMut(&Attached) -> bool) -> Result<Message, Error> {
        // Attaching may meet a dying instance too (`None`: no answer):
        // then the next one is tried, as many times.
        let reattach = || {
            for n in 0..=tries {
                if n > 0 {
                    pause(n);
                }
                match self.attach() {
                    Ok(_) => return then(self),
                    Err(Refused::NoAnswer) => continue,
                    Err(Refused::Gone | Refused::Status(_)) => return false,
                }
            }
            false
        };
        self.ep.call_across_restarts(words, Status::NotAttached as u64, tries, reattach)
    }

    /// Gives the buffer back.
    pub fn detach(&self) {
        let _ = self.ep.call([DETACH, 0, 0], None, FOREVER);
    }
}
