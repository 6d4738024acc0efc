//! The console service: lines typed on the serial console, edited by the
//! console driver, for a shell or any program that reads its input, in a
//! [`session`](crate::session).
//!
//! The buffer (`ATTACH`, at least [`MIN_BUFFER`]) receives each line.
//! The client subscribes a notification (`SUBSCRIBE`, passing it), which
//! the driver signals with [`LINE_READY`] when a line waits and with
//! [`INTERRUPT`] when ^C is typed, so that the client sleeps until then.
//! `READ` hands over the next line (without its end): `[OK, len, flags]`
//! with [`END_OF_INPUT`] in flags for ^D on an empty line, or `[EMPTY, 0,
//! 0]`.

pub use crate::session::{Status, ATTACH, DETACH};

/// Subscribe the passed notification. Answer: `[OK, 0, 0]`.
pub const SUBSCRIBE: u64 = crate::session::FIRST_OP;
/// Take the next line into the buffer's start. Answer: `[OK, len,
/// flags]`, or `[EMPTY, 0, 0]`.
pub const READ: u64 = SUBSCRIBE + 1;

/// The smallest buffer: one page.
pub const MIN_BUFFER: u64 = 4096;
/// The longest line the driver keeps (a longer one is dropped, said so):
/// it fits the smallest buffer.
pub const MAX_LINE: usize = MIN_BUFFER as usize;
/// Notification bit: a line waits.
pub const LINE_READY: u64 = 1;
/// Notification bit: ^C was typed.
pub const INTERRUPT: u64 = 2;
/// `READ` flag: ^D on an empty line: no more input.
pub const END_OF_INPUT: u64 = 1;

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// See [`ATTACH`].
    Attach,
    /// See [`SUBSCRIBE`].
    Subscribe,
    /// See [`READ`].
    Read,
    /// See [`DETACH`].
    Detach,
}

impl Request {
    /// The message words.
    pub fn encode(self) -> [u64; 3] {
        match self {
            Request::Attach => [ATTACH, 0, 0],
            Request::Subscribe => [SUBSCRIBE, 0, 0],
            Request::Read => [READ, 0, 0],
            Request::Detach => [DETACH, 0, 0],
        }
    }

    /// Decodes message words.
    pub fn decode(w: [u64; 3]) -> Result<Request, Status> {
        Ok(match w {
            [ATTACH, 0, 0] => Request::Attach,
            [SUBSCRIBE, 0, 0] => Request::Subscribe,
            [READ, 0, 0] => Request::Read,
            [DETACH, 0, 0] => Request::Detach,
            _ => return Err(Status::BadRequest),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        for r in [Request::Attach, Request::Subscribe, Request::Read, Request::Detach] {
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
        assert_eq!(Request::decode([READ, 1, 0]), Err(Status::BadRequest));
        assert_eq!(Request::decode([u64::MAX, 0, 0]), Err(Status::BadRequest));
    }
}
