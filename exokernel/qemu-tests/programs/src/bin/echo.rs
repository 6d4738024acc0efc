//! A small IPC server for the tests: answers calls on the endpoint in slot
//! 16 (`endpoints = NAME` in the manifest). Argument: its name for output.
//!
//! Operations (word 0): 1 echo (reply word1 + 1 and the caller's badge),
//! 2 map the passed memory capability read-only and reply the byte sum of
//! its first `word1` bytes, 3 report whether that capability and mapping
//! still work, 4 die without replying, 5 reply and exit, 6 overwrite every
//! SSE register and r12-r15 with `word1`, then reply `word1` (so the
//! caller can check that none of it reached its own registers), 7 bind
//! the passed notification capability to every later receive (as a
//! driver binds its interrupts), 8 reply how many signals of it ended a
//! receive and the bits they brought.
#![no_std]
#![no_main]

use exo_rt::abi::{map_flags, Error, FOREVER, NOTIFY_BADGE};
use exo_rt::caps::{self, Endpoint, Memory, Notification, SELF};
use exo_rt::println;

exo_rt::entry!(main);

/// Where granted memory is mapped.
const SHARED_VA: u64 = 0x5000_0000;

fn main(args: &str) -> i32 {
    let name = args.trim();
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    let mut granted: Option<Memory> = None;
    let mut reply = None;
    let mut bound: Option<Notification> = None;
    let (mut signals, mut bits) = (0u64, 0u64);
    loop {
        let msg = match reply.take() {
            None => ep.recv(bound, FOREVER),
            Some(words) => ep.reply_recv(words, None, bound, FOREVER),
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                println!("{name}: recv failed: {e}");
                return 1;
            }
        };
        if msg.badge == NOTIFY_BADGE {
            signals += 1;
            bits |= msg.words[0];
            continue;
        }
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
                unsafe { core::ptr::read_volatile(core::ptr::without_provenance::<u64>(8)) };
                unreachable!("survived a null dereference")
            }
            5 => {
                let _ = caps::reply([0, 0, 0], None);
                println!("{name}: stopping");
                return 0;
            }
            6 => {
                scribble(msg.words[1]);
                [msg.words[1], 0, 0]
            }
            7 => {
                bound = msg.cap.map(Notification::from_slot);
                [bound.is_some() as u64, 0, 0]
            }
            8 => [signals, bits, 0],
            op => [u64::MAX, op, 0],
        });
    }
}

/// Fills xmm0-xmm15 and r12-r15 with `v`.
#[inline(never)]
fn scribble(v: u64) {
    // SAFETY: writes only registers declared clobbered.
    unsafe {
        core::arch::asm!(
            "movq xmm0, {v}",
            "punpcklqdq xmm0, xmm0",
            "movdqa xmm1, xmm0", "movdqa xmm2, xmm0", "movdqa xmm3, xmm0",
            "movdqa xmm4, xmm0", "movdqa xmm5, xmm0", "movdqa xmm6, xmm0",
            "movdqa xmm7, xmm0", "movdqa xmm8, xmm0", "movdqa xmm9, xmm0",
            "movdqa xmm10, xmm0", "movdqa xmm11, xmm0", "movdqa xmm12, xmm0",
            "movdqa xmm13, xmm0", "movdqa xmm14, xmm0", "movdqa xmm15, xmm0",
            "mov r12, {v}", "mov r13, {v}", "mov r14, {v}", "mov r15, {v}",
            v = in(reg) v,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            options(nomem, nostack),
        );
    }
}
