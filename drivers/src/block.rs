//! The block service: how a client (a file server) reads and writes
//! sectors through a block driver, over IPC with one shared buffer.
//!
//! The client attaches first: `call([ATTACH, 0, 0])` passing a memory
//! capability, which the driver maps as the client's buffer (it gets a
//! derived copy, so the client can revoke it). After that,
//! `call([READ, sector, count])` reads `count` sectors into the start of
//! the buffer and `call([WRITE, sector, count])` writes them from there;
//! `INFO` tells the disk's size; `DETACH` gives the buffer back. The driver
//! tells clients apart by the badge of their endpoint capability. Every
//! answer's word 0 is a [`Status`]; words 1 and 2 depend on the request.

use core::fmt;

/// Map the passed memory capability as this client's buffer. Answer:
/// `[OK, sectors, buffer bytes]`.
pub const ATTACH: u64 = 1;
/// `[READ, sector, count]`: read into the buffer. Answer: `[OK, count, 0]`.
pub const READ: u64 = 2;
/// `[WRITE, sector, count]`: write from the buffer. Answer: `[OK, count, 0]`.
pub const WRITE: u64 = 3;
/// Unmap the buffer. Answer: `[OK, 0, 0]`.
pub const DETACH: u64 = 4;
/// Answer: `[OK, sectors, 1 if read-only]`.
pub const INFO: u64 = 5;

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Most sectors one request may move (128 KiB).
pub const MAX_SECTORS: u64 = 256;

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// See [`ATTACH`].
    Attach,
    /// See [`READ`].
    Read {
        /// First sector.
        sector: u64,
        /// How many.
        count: u64,
    },
    /// See [`WRITE`].
    Write {
        /// First sector.
        sector: u64,
        /// How many.
        count: u64,
    },
    /// See [`DETACH`].
    Detach,
    /// See [`INFO`].
    Info,
}

/// The first word of every answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// Unknown operation, or arguments it does not take.
    BadRequest = 1,
    /// No buffer attached (or an attach without a memory capability).
    NotAttached = 2,
    /// Sectors beyond the end of the disk.
    OutOfRange = 3,
    /// More than [`MAX_SECTORS`], or more than the buffer holds.
    TooLarge = 4,
    /// The device reported an error.
    DeviceError = 5,
    /// A write to a read-only disk.
    ReadOnly = 6,
    /// The driver could not map the buffer.
    BadBuffer = 7,
}

impl Status {
    /// Decodes an answer's first word.
    pub fn from_word(w: u64) -> Option<Status> {
        use Status::*;
        [Ok, BadRequest, NotAttached, OutOfRange, TooLarge, DeviceError, ReadOnly, BadBuffer]
            .into_iter()
            .find(|s| *s as u64 == w)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::BadRequest => "bad request",
            Status::NotAttached => "no buffer attached",
            Status::OutOfRange => "beyond the end of the disk",
            Status::TooLarge => "too many sectors for one request or for the buffer",
            Status::DeviceError => "device error",
            Status::ReadOnly => "disk is read-only",
            Status::BadBuffer => "buffer could not be mapped",
        })
    }
}

impl Request {
    /// The message words.
    pub fn encode(self) -> [u64; 3] {
        match self {
            Request::Attach => [ATTACH, 0, 0],
            Request::Read { sector, count } => [READ, sector, count],
            Request::Write { sector, count } => [WRITE, sector, count],
            Request::Detach => [DETACH, 0, 0],
            Request::Info => [INFO, 0, 0],
        }
    }

    /// Decodes message words; anything malformed is `BadRequest`.
    pub fn decode(w: [u64; 3]) -> Result<Request, Status> {
        Ok(match w {
            [ATTACH, 0, 0] => Request::Attach,
            [READ, sector, count] => Request::Read { sector, count },
            [WRITE, sector, count] => Request::Write { sector, count },
            [DETACH, 0, 0] => Request::Detach,
            [INFO, 0, 0] => Request::Info,
            _ => return Err(Status::BadRequest),
        })
    }
}

/// Checks a read or write of `count` sectors from `sector` against a
/// disk of `sectors` and a buffer of `buffer` bytes.
pub fn check(sector: u64, count: u64, sectors: u64, buffer: u64) -> Result<(), Status> {
    if count == 0 {
        return Err(Status::BadRequest);
    }
    if count > MAX_SECTORS || count * SECTOR > buffer {
        return Err(Status::TooLarge);
    }
    match sector.checked_add(count) {
        Some(end) if end <= sectors => Ok(()),
        _ => Err(Status::OutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        for r in [
            Request::Attach,
            Request::Read { sector: 7, count: 3 },
            Request::Write { sector: u64::MAX, count: 1 },
            Request::Detach,
            Request::Info,
        ] {
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
        for w in [[0, 0, 0], [6, 0, 0], [ATTACH, 1, 0], [DETACH, 0, 9], [INFO, 1, 1], [u64::MAX, 2, 3]] {
            assert_eq!(Request::decode(w), Err(Status::BadRequest), "{w:?}");
        }
        for s in 0..8 {
            assert_eq!(Status::from_word(s).map(|s| s as u64), Some(s));
        }
        assert_eq!(Status::from_word(8), None);
    }

    #[test]
    fn ranges_are_checked_against_disk_and_buffer() {
        let (disk, buf) = (1000, 16 * 4096);
        assert_eq!(check(0, 128, disk, buf), Ok(()));
        assert_eq!(check(872, 128, disk, buf), Ok(()));
        assert_eq!(check(873, 128, disk, buf), Err(Status::OutOfRange));
        assert_eq!(check(u64::MAX, 1, disk, buf), Err(Status::OutOfRange));
        assert_eq!(check(0, 129, disk, buf), Err(Status::TooLarge), "more than the buffer");
        assert_eq!(check(0, 257, disk, 1 << 20), Err(Status::TooLarge), "more than one request may move");
        assert_eq!(check(0, 0, disk, buf), Err(Status::BadRequest));
    }
}
