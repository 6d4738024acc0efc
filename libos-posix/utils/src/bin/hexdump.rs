//! `hexdump [-C] [-n BYTES] [FILE]`: a file's bytes (or standard input's) as
//! `hexdump -C` shows them: offset, 16 bytes in hexadecimal, the same as
//! text (`.` for what does not print), a `*` for lines repeating the one
//! before, and the length at the end. `-n` stops after that many bytes.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use exo_posix as posix;
use exo_rt::{eprintln, println};
use exo_utils::{fail, inputs, Input};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    // `-n BYTES` anywhere; `-C`, the only format, taken and ignored.
    let mut limit = u64::MAX;
    let mut operands: Vec<String> = Vec::new();
    let words = posix::argv::words(args);
    let mut words = words.iter().map(String::as_str);
    while let Some(w) = words.next() {
        match w {
            "-C" => {}
            "-n" => match words.next().and_then(|n| n.parse().ok()) {
                Some(n) => limit = n,
                None => {
                    eprintln!("hexdump: -n wants a number of bytes; usage: hexdump [-C] [-n BYTES] [FILE]");
                    return 2;
                }
            },
            o if o.starts_with('-') && o != "-" => {
                eprintln!("hexdump: no option {o}; usage: hexdump [-C] [-n BYTES] [FILE]");
                return 2;
            }
            o => operands.push(o.into()),
        }
    }
    if operands.len() > 1 {
        eprintln!("hexdump: one file at a time; usage: hexdump [-C] [-n BYTES] [FILE]");
        return 2;
    }
    let operands = match inputs("hexdump", &operands) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let input = match Input::open(operands[0]) {
        Ok(i) => i,
        Err((what, e)) => return fail("hexdump", &what, e),
    };
    let mut dump = Dump::default();
    let mut buf = alloc::vec![0u8; 64 * 1024];
    let mut status = 0;
    // Reads until the end, or the limit (standard input may never end).
    while dump.at + (dump.row.len() as u64) < limit {
        let room = (limit - dump.at - dump.row.len() as u64).min(buf.len() as u64) as usize;
        match exo_posix::read(input.fd(), &mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => dump.feed(&buf[..n]),
            Err(e) => {
                status = fail("hexdump", &input.name(), e);
                break;
            }
        }
    }
    dump.end();
    status
}

/// The dump so far: the offset of the row being filled, its bytes, the
/// last row printed, and whether repeats of it are being skipped.
#[derive(Default)]
struct Dump {
    at: u64,
    row: Vec<u8>,
    last: Option<Vec<u8>>,
    skipping: bool,
}

impl Dump {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (16 - self.row.len()).min(bytes.len());
            self.row.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.row.len() == 16 {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        let row = core::mem::take(&mut self.row);
        if row.len() == 16 && self.last.as_ref() == Some(&row) {
            if !self.skipping {
                println!("*");
                self.skipping = true;
            }
        } else {
            let mut hex = String::new();
            for (i, b) in row.iter().enumerate() {
                let _ = write!(
                    hex,
                    "{}{b:02x}",
                    if i == 8 {
                        "  "
                    } else if i > 0 {
                        " "
                    } else {
                        ""
                    }
                );
            }
            let text: String = row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
            println!("{:08x}  {hex:<48}  |{text}|", self.at);
            self.skipping = false;
        }
        self.at += row.len() as u64;
        self.last = Some(row);
    }

    fn end(&mut self) {
        if !self.row.is_empty() {
            self.flush();
        }
        if self.at > 0 {
            println!("{:08x}", self.at);
        }
    }
}
