//! A block device over the block protocol: what a file server (or a rump
//! kernel's disk) reads and writes, served by a block driver process.

use crate::{errno, Error, Result};
use exo_protocols::block::{self, Request, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::PAGE_SIZE;
use exo_rt::caps::Endpoint;
use exo_rt::mem::Mapping;
use exo_rt::println;
use exo_rt::sync::SpinLock;

/// Pages of the buffer shared with the driver: 128 KiB, the most one
/// block request moves.
const BUF_PAGES: u64 = 32;
/// How many times one request is retried on a restarted driver.
const MAX_REATTACH: u32 = 64;

/// A disk served by a block driver on `ep`.
pub struct BlockClient {
    /// Who is asking, for messages.
    name: &'static str,
    /// The session with the driver.
    session: Attached,
    sectors: u64,
    writable: bool,
    /// The buffer shared with the driver: one request at a time (the
    /// driver writes it only while we wait in a call).
    buffer: SpinLock<Mapping>,
}

impl BlockClient {
    /// Attaches a buffer (mapped at `va`, from the untyped budget) to the
    /// block driver on `ep`; writes are allowed if `writable` and the
    /// disk allows them. `name` prefixes what it reports.
    pub fn attach(
        name: &'static str,
        ep: Endpoint,
        writable: bool,
        va: u64,
    ) -> core::result::Result<Self, &'static str> {
        let (buffer, session, [sectors, _]) = Attached::new(ep, BUF_PAGES, va)?;
        // Retried on a restarted driver, as every request is (`transfer`):
        // a driver killed between the attach and this call is no failure.
        let info = session
            .call(Request::Info.encode(), MAX_REATTACH, |_| true)
            .map_err(|_| "the block driver does not answer")?;
        let read_only = info.words[2] != 0;
        Ok(BlockClient { name, session, sectors, writable: writable && !read_only, buffer: SpinLock::new(buffer) })
    }

    /// Sectors on the disk.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Gives the driver its buffer back.
    pub fn detach(&self) {
        self.session.detach();
    }

    /// One request, retried on a driver the supervisor restarted (as
    /// MINIX 3's file servers retry block requests): a call the dead
    /// instance held fails with `Dead`, the new instance answers
    /// `NotAttached`; either way the buffer (still ours, its contents
    /// intact) is attached again and the request made again. Reads and
    /// whole-sector writes are idempotent, so a retry is safe.
    fn transfer(&self, r: Request) -> Result<()> {
        let m = self
            .session
            .call(r.encode(), MAX_REATTACH, |_| {
                println!("{}: the block driver was restarted: buffer attached again, request retried", self.name);
                true
            })
            .map_err(|_| Error::Io(errno::EIO))?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) => Ok(()),
            Some(Status::OutOfRange) => Err(Error::OutOfRange),
            Some(Status::ReadOnly) => Err(Error::ReadOnly),
            _ => Err(Error::Io(errno::EIO)),
        }
    }

    /// The sectors one request may move through the buffer.
    fn most(&self) -> u64 {
        BUF_PAGES * PAGE_SIZE / block::SECTOR
    }
}

impl crate::BlockDevice for BlockClient {
    fn size(&self) -> u64 {
        self.sectors * block::SECTOR
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(out.len() as u64).filter(|e| *e <= self.size()).ok_or(Error::OutOfRange)?;
        self.buffer.with(|buffer| {
            let mut pos = offset;
            while pos < end {
                let first = pos / block::SECTOR;
                let count = ((end - 1) / block::SECTOR - first + 1).min(self.most());
                self.transfer(Request::Read { sector: first, count })?;
                let skip = (pos - first * block::SECTOR) as usize;
                let n = ((count * block::SECTOR) as usize - skip).min((end - pos) as usize);
                let at = (pos - offset) as usize;
                out[at..at + n].copy_from_slice(&buffer.as_slice()[skip..skip + n]);
                pos += n as u64;
            }
            Ok(())
        })
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        let end = offset.checked_add(data.len() as u64).filter(|e| *e <= self.size()).ok_or(Error::OutOfRange)?;
        self.buffer.with(|buffer| {
            let mut pos = offset;
            while pos < end {
                let first = pos / block::SECTOR;
                let count = ((end - 1) / block::SECTOR - first + 1).min(self.most());
                let skip = (pos - first * block::SECTOR) as usize;
                let n = ((count * block::SECTOR) as usize - skip).min((end - pos) as usize);
                // Partial sectors at either end: read them first, so what
                // is not being written stays as it was.
                if skip != 0 || !n.is_multiple_of(block::SECTOR as usize) {
                    self.transfer(Request::Read { sector: first, count })?;
                }
                let at = (pos - offset) as usize;
                buffer.as_mut_slice()[skip..skip + n].copy_from_slice(&data[at..at + n]);
                self.transfer(Request::Write { sector: first, count })?;
                pos += n as u64;
            }
            Ok(())
        })
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn flush(&self) -> Result<()> {
        Ok(()) // the driver writes through; nothing is held here
    }
}
