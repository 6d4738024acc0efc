//! `mv FROM TO` or `mv FROM... DIR`: renames (into a directory under the
//! same name), within one file system. Exit status 1 if one could not be
//! moved.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix as posix;
use exo_utils::{fail, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("mv", args, "", "mv FROM TO, or mv FROM... DIR") {
        Ok(a) => a,
        Err(s) => return s,
    };
    let moves = match exo_utils::destinations("mv", &a.operands) {
        Ok(m) => m,
        Err(s) => return s,
    };
    let mut status = 0;
    for (f, target) in moves {
        if let Err(e) = posix::rename(&f, &target) {
            status = fail("mv", &f, e);
        }
    }
    status
}
