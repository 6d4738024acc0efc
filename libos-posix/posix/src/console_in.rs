//! Standard input from the console: a program the shell started and
//! waits for (`EXO_STDIN=console`, [`crate::CONSOLE_STDIN`]) reads the
//! lines typed at the console as descriptor 0, each with its newline, and
//! the end of its input at ^D on an empty line, as a Unix program reads
//! its terminal. The console driver is attached at the first read (its
//! endpoint named `console`, which the shell's programs are given), with
//! a notification of the program's own for "a line is ready".

use crate::{Errno, Result};
use core::sync::atomic::{AtomicBool, Ordering};
use exo_protocols::console::{self, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::FOREVER;
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;

/// Where the buffer shared with the console driver is mapped.
const CONSOLE_VA: u64 = 0x0000_4600_0000_0000;

/// Whether descriptor 0 is the console.
static ON: AtomicBool = AtomicBool::new(false);

/// The attachment, once made, and the rest of the last line read.
static READER: SpinLock<Option<Reader>> = SpinLock::new(None);

struct Reader {
    buffer: Mapping,
    attached: Attached,
    line: alloc::vec::Vec<u8>,
    at: usize,
    /// ^D was typed and no read has returned its 0 yet.
    ended: bool,
}

/// Descriptor 0 reads the console from now on.
pub(crate) fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether descriptor 0 reads the console.
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

fn open() -> Result<Reader> {
    let ep = exo_rt::endpoint("console").ok_or(Errno::ENODEV)?;
    let (buffer, attached, _) = Attached::new(ep, 1, CONSOLE_VA).map_err(|_| Errno::EIO)?;
    // The process's one notification, which the network server signals
    // too: a `poll` over sockets and the console waits on both.
    let note = crate::wake_note()?;
    let answer = ep.call([console::SUBSCRIBE, 0, 0], Some(note.slot()), FOREVER).map_err(|_| Errno::EIO)?;
    if answer.words[0] != Status::Ok as u64 {
        return Err(Errno::EIO);
    }
    Ok(Reader { buffer, attached, line: alloc::vec::Vec::new(), at: 0, ended: false })
}

/// The reader, attached at the first use.
fn reader(guard: &mut Option<Reader>) -> Result<&mut Reader> {
    if guard.is_none() {
        *guard = Some(open()?);
    }
    Ok(guard.as_mut().expect("just opened"))
}

impl Reader {
    /// Whether a read would not wait: part of a line is left, or the end
    /// of the input was seen, or the console has a line now (taken).
    fn fetch(&mut self) -> Result<bool> {
        if self.at < self.line.len() || self.ended {
            return Ok(true);
        }
        let m = self.attached.call([console::READ, 0, 0], 3, |_| true).map_err(|_| Errno::EIO)?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) if m.words[2] & console::END_OF_INPUT != 0 => self.ended = true,
            Some(Status::Ok) => {
                let n = (m.words[1] as usize).min(self.buffer.as_mut_slice().len());
                self.line.clear();
                self.line.extend_from_slice(&self.buffer.as_mut_slice()[..n]);
                self.line.push(b'\n');
                self.at = 0;
            }
            Some(Status::Empty) => return Ok(false),
            _ => return Err(Errno::EIO),
        }
        Ok(true)
    }
}

/// Whether a line (or the end of the input) was typed and a read would
/// not wait ([`crate::net::poll`]).
pub(crate) fn ready() -> Result<bool> {
    reader(&mut READER.lock())?.fetch()
}

/// Reads what was typed into `buf`: the rest of the line read last, else
/// the next line (waiting for it); 0 at the end of the input (^D), after
/// which reading waits for lines again, as a terminal does.
pub(crate) fn read(buf: &mut [u8]) -> Result<usize> {
    let mut guard = READER.lock();
    let r = reader(&mut guard)?;
    while !r.fetch()? {
        // (The network server's signals wake this too: look again.)
        crate::wake_note()?.wait(FOREVER).map_err(|_| Errno::EIO)?;
    }
    if core::mem::take(&mut r.ended) {
        return Ok(0);
    }
    let n = (r.line.len() - r.at).min(buf.len());
    buf[..n].copy_from_slice(&r.line[r.at..r.at + n]);
    r.at += n;
    Ok(n)
}
