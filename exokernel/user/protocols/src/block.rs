//! The block service: how a client (a file server) reads and writes
//! sectors through a block driver, in a [`session`](crate::session).
//!
//! `ATTACH` answers `[OK, sectors, buffer bytes]`. After that,
//! `call([READ, sector, count])` reads `count` sectors into the start of
//! the buffer and `call([WRITE, sector, count])` writes them from there;
//! `INFO` tells the disk's size.

pub use crate::session::{Status, ATTACH, DETACH};

/// `[READ, sector, count]`: read into the buffer. Answer: `[OK, count, 0]`.
pub const READ: u64 = crate::session::FIRST_OP;
/// `[WRITE, sector, count]`: write from the buffer. Answer: `[OK, count, 0]`.
pub const WRITE: u64 = READ + 1;
/// Answer: `[OK, sectors, 1 if read-only]`.
pub const INFO: u64 = READ + 2;

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

/// A disk a block server serves: sectors of [`SECTOR`] bytes.
pub trait Disk {
    /// Its size in sectors.
    fn sectors(&self) -> u64;
    /// Whether writes are refused.
    fn readonly(&self) -> bool;
    /// Reads `buf.len() / SECTOR` sectors from `sector`
    /// (`Status::DeviceError` when the device fails).
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Status>;
    /// Writes `buf.len() / SECTOR` sectors at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Status>;
}

/// One request of the block protocol to `disk`, for a server's
/// [`serve`](crate::session::server::serve) loop: the answer's words 1
/// and 2 (the loop answers `PING`).
#[cfg(feature = "exo")]
pub fn handle(
    disk: &mut impl Disk,
    sessions: &mut crate::session::server::Sessions,
    msg: &exo_rt::caps::Message,
) -> Result<(u64, u64), Status> {
    let request = Request::decode(msg.words);
    if let (Err(_), Some(cap)) = (&request, msg.cap) {
        let _ = exo_rt::caps::delete(cap); // a malformed ATTACH
    }
    let request = request?;
    let sectors = disk.sectors();
    match request {
        Request::Info => Ok((sectors, disk.readonly() as u64)),
        Request::Attach => sessions.attach(msg).map(|s| (sectors, s.bytes())),
        Request::Detach => sessions.detach(msg.badge).map(|()| (0, 0)),
        Request::Read { sector, count } | Request::Write { sector, count } => {
            let c = sessions.get(msg.badge)?;
            check(sector, count, sectors, c.bytes())?;
            // The client waits in its call while its buffer is used.
            let buf = &mut c.buffer()[..(count * SECTOR) as usize];
            let done = if matches!(request, Request::Read { .. }) {
                disk.read(sector, buf)
            } else if disk.readonly() {
                return Err(Status::ReadOnly);
            } else {
                disk.write(sector, buf)
            };
            done?;
            Ok((count, 0))
        }
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
        for w in [[0, 0, 0], [INFO + 1, 0, 0], [ATTACH, 1, 0], [DETACH, 0, 9], [INFO, 1, 1], [u64::MAX, 2, 3]] {
            assert_eq!(Request::decode(w), Err(Status::BadRequest), "{w:?}");
        }
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
