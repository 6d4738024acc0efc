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
use exo_rt::caps::Notification;
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
    note: Notification,
    line: alloc::vec::Vec<u8>,
    at: usize,
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
    let note = exo_rt::caps::Untyped::from_slot(exo_rt::abi::slot::UNTYPED)
        .create_notification()
        .map_err(|_| Errno::ENOMEM)?;
    let answer = ep.call([console::SUBSCRIBE, 0, 0], Some(note.slot()), FOREVER).map_err(|_| Errno::EIO)?;
    if answer.words[0] != Status::Ok as u64 {
        return Err(Errno::EIO);
    }
    Ok(Reader { buffer, attached, note, line: alloc::vec::Vec::new(), at: 0 })
}

/// Reads what was typed into `buf`: the rest of the line read last, else
/// the next line (waiting for it); 0 at the end of the input.
pub(crate) fn read(buf: &mut [u8]) -> Result<usize> {
    let mut reader = READER.lock();
    if reader.is_none() {
        *reader = Some(open()?);
    }
    let r = reader.as_mut().expect("just opened");
    loop {
        if r.at < r.line.len() {
            let n = (r.line.len() - r.at).min(buf.len());
            buf[..n].copy_from_slice(&r.line[r.at..r.at + n]);
            r.at += n;
            return Ok(n);
        }
        let m = r.attached.call([console::READ, 0, 0], 3, |_| true).map_err(|_| Errno::EIO)?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) if m.words[2] & console::END_OF_INPUT != 0 => return Ok(0),
            Some(Status::Ok) => {
                let n = (m.words[1] as usize).min(r.buffer.as_mut_slice().len());
                r.line.clear();
                r.line.extend_from_slice(&r.buffer.as_mut_slice()[..n]);
                r.line.push(b'\n');
                r.at = 0;
            }
            Some(Status::Empty) => {
                r.note.wait(FOREVER).map_err(|_| Errno::EIO)?;
            }
            _ => return Err(Errno::EIO),
        }
    }
}
