//! `printenv [NAME...]`: the environment this program was started with
//! (`NAME=VALUE` lines), or the values of the variables named; exit
//! status 1 if one of them is not set. The shell passes its environment
//! (`export`) to the programs it starts.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix as posix;
use exo_rt::println;

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let names = posix::argv::words(args);
    if names.is_empty() {
        for (n, v) in posix::environ() {
            println!("{n}={v}");
        }
        return 0;
    }
    let mut status = 0;
    for n in names {
        match posix::getenv(&n) {
            Some(v) => println!("{v}"),
            None => status = 1,
        }
    }
    status
}

extern crate alloc;
