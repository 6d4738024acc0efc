//! A small IPC server for the tests: answers calls on the endpoint in slot
//! 16 (`endpoints = NAME` in the manifest). Argument: its name for output.
//!
//! Operations (word 0): 1 echo (reply word1 + 1 and the caller's badge),
//! 2 map the passed memory capability read-only and reply the byte sum of
//! its first `word1` bytes, 3 report whether that capability and mapping
//! still work, 4 die without replying, 5 reply and exit.
#![no_std]
#![no_main]

use exo_rt::abi::{map_flags, Error, FOREVER};
use exo_rt::caps::{self, Endpoint, Memory, SELF};
use exo_rt::println;

exo_rt::entry!(main);

/// Where granted memory is mapped.
const SHARED_VA: u64 = 0x5000_0000;

fn main(args: &str) -> i32 {
    let name = args.trim();
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    let mut granted: Option<Memory> = None;
    let mut reply = None;
    loop {
        let msg = match reply.take() {
            None => ep.recv(None, FOREVER),
            Some(words) => ep.reply_recv(words, None, FOREVER),
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                println!("{name}: recv failed: {e}");
                return 1;
            }
        };
        reply = Some(match msg.words[0] {
            1 => [msg.words[1] + 1, msg.badge, 0],
            2 => match msg.cap.map(Memory::from_slot) {
                Some(mem) => match SELF.map(mem, SHARED_VA, map_flags::READ) {
                    Ok(()) => {
                        // SAFETY: just mapped one or more pages read-only here.
                        let bytes = unsafe {
                            core::slice::from_raw_parts(SHARED_VA as *const u8, (msg.words[1] as usize).min(4096))
                        };
                        println!(
                            "{name}: shared memory says {:?}",
                            core::str::from_utf8(bytes).unwrap_or("<not UTF-8>")
                        );
                        granted = Some(mem);
                        [bytes.iter().map(|b| *b as u64).sum(), 0, 0]
                    }
                    Err(e) => [u64::MAX, e as u64, 0],
                },
                None => [u64::MAX, 0, 0],
            },
            3 => {
                let cap = granted.map(|m| caps::info(m.slot()));
                let console = exo_rt::caps::CONSOLE;
                // SAFETY: only the address is passed; the kernel checks it.
                let read = console.write(unsafe { core::slice::from_raw_parts(SHARED_VA as *const u8, 1) });
                println!(
                    "{name}: after revoke: capability {:?}, mapping {:?}",
                    cap.map(|c| c.map(|_| ())),
                    read.map(|_| ())
                );
                let gone = cap == Some(Err(Error::InvalidCap)) && read == Err(Error::BadAddress);
                [gone as u64, 0, 0]
            }
            4 => {
                println!("{name}: dying in the middle of a call");
                // SAFETY: deliberately faults; the kernel kills this process.
                unsafe { core::ptr::read_volatile(8 as *const u64) };
                unreachable!("survived a null dereference")
            }
            5 => {
                let _ = caps::reply([0, 0, 0], None);
                println!("{name}: stopping");
                return 0;
            }
            op => [u64::MAX, op, 0],
        });
    }
}
