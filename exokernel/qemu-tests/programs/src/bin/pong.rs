//! The IPC benchmark's server: answers every call on endpoint slot 16 at
//! once with word 1 + 1, doing nothing else, so that `scripts/bench`
//! measures the kernel's round trip rather than a server's work. Word 0 =
//! 5 makes it reply and exit.
#![no_std]
#![no_main]

use exo_rt::abi::{Sys, FOREVER, NO_CAP};
use exo_rt::sys::raw_regs;

exo_rt::entry!(main);

fn main(_args: &str) -> i32 {
    let ep = exo_manifest::ENDPOINT_SLOT_BASE;
    // raw_regs: [rax, rdi, rsi, rdx, r10, r9]; the message is rsi, rdx, r10.
    let mut r = raw_regs(Sys::Recv, [ep, NO_CAP, FOREVER, 0, 0, 0]);
    loop {
        if r[0] != 0 {
            return 1;
        }
        if r[2] == 5 {
            let _ = raw_regs(Sys::Reply, [0, 0, 0, NO_CAP, 0, 0]);
            return 0;
        }
        r = raw_regs(Sys::ReplyRecv, [ep, r[3] + 1, 0, 0, NO_CAP, FOREVER]);
    }
}
