//! What every service shares: attaching a buffer, detaching it, and the
//! status of every answer.
//!
//! A client calls `[ATTACH, 0, 0]` passing a memory capability: the
//! server maps it (a derived copy, so the client can revoke it) as this
//! client's buffer, told apart from others' by the badge of the client's
//! endpoint capability. Requests of the service follow, each `[op, a,
//! b]` with `op` from [`FIRST_OP`] on. `[DETACH, 0, 0]` unmaps the
//! buffer; `[PING, 0, 0]` is answered by every service as long as it is
//! serving (the supervisor's heartbeat). A capability passed with anything that does not take one is
//! deleted unread. Every answer is `[status, a, b]`.

/// Map the passed memory capability as this client's buffer.
pub const ATTACH: u64 = 1;
/// Unmap the buffer. Answer: `[OK, 0, 0]`.
pub const DETACH: u64 = 2;
/// Are you there? Answer: `[OK, 0, 0]`, from the serve loop itself, with
/// or without a buffer: the root task's heartbeat.
pub const PING: u64 = 3;
/// The first operation word a service defines.
pub const FIRST_OP: u64 = 4;

/// The first word of every answer, for every service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// Unknown operation, or arguments it does not take.
    BadRequest = 1,
    /// No buffer attached (or an attach without a memory capability).
    NotAttached = 2,
    /// The buffer is too small or large, or could not be mapped.
    BadBuffer = 3,
    /// More than one request may move, or than the buffer holds.
    TooLarge = 4,
    /// Beyond the end of the device.
    OutOfRange = 5,
    /// The device reported an error.
    DeviceError = 6,
    /// A write to something read-only.
    ReadOnly = 7,
    /// Nothing waiting (a frame to receive).
    Empty = 8,
    /// A frame that is empty or longer than the largest.
    BadFrame = 9,
    /// No such program (in the boot image, or among the client's).
    NoSuchProgram = 10,
    /// No such socket (never opened, closed, or another client's).
    NoSuchSocket = 11,
    /// The address (port) is taken.
    AddressInUse = 12,
    /// Not connected (or not listening, or of the wrong kind for this).
    NotConnected = 13,
    /// The connection was refused, reset or timed out.
    ConnectionFailed = 14,
    /// Too many (sockets, clients).
    TooMany = 15,
}

impl Status {
    /// Every status, in word order.
    pub const ALL: [Status; 16] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotAttached,
        Status::BadBuffer,
        Status::TooLarge,
        Status::OutOfRange,
        Status::DeviceError,
        Status::ReadOnly,
        Status::Empty,
        Status::BadFrame,
        Status::NoSuchProgram,
        Status::NoSuchSocket,
        Status::AddressInUse,
        Status::NotConnected,
        Status::ConnectionFailed,
        Status::TooMany,
    ];

    /// Decodes an answer's first word.
    pub fn from_word(w: u64) -> Option<Status> {
        Status::ALL.get(usize::try_from(w).ok()?).copied()
    }

    /// What it means, for messages.
    pub fn text(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BadRequest => "bad request",
            Status::NotAttached => "no buffer attached",
            Status::BadBuffer => "buffer could not be mapped",
            Status::TooLarge => "too large for one request or for the buffer",
            Status::OutOfRange => "beyond the end of the device",
            Status::DeviceError => "device error",
            Status::ReadOnly => "read-only",
            Status::Empty => "nothing waiting",
            Status::BadFrame => "frame empty or too long",
            Status::NoSuchProgram => "no such program",
            Status::NoSuchSocket => "no such socket",
            Status::AddressInUse => "address in use",
            Status::NotConnected => "not connected",
            Status::ConnectionFailed => "connection refused, reset or timed out",
            Status::TooMany => "too many",
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.text())
    }
}

/// An answer: the status and two words.
pub fn answer(r: Result<(u64, u64), Status>) -> [u64; 3] {
    match r {
        Ok((a, b)) => [Status::Ok as u64, a, b],
        Err(s) => [s as u64, 0, 0],
    }
}

#[cfg(feature = "exo")]
pub mod client;
#[cfg(feature = "exo")]
pub mod server;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_word() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(*s as u64, i as u64);
            assert_eq!(Status::from_word(i as u64), Some(*s));
        }
        assert_eq!(Status::from_word(Status::ALL.len() as u64), None);
        assert_eq!(Status::from_word(u64::MAX), None);
        assert_eq!(answer(Ok((7, 8))), [0, 7, 8]);
        assert_eq!(answer(Err(Status::Empty)), [8, 0, 0]);
    }
}
