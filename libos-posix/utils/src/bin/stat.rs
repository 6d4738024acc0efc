//! `stat PATH...`: each path's type and permissions, size, mode and
//! modification time (seconds since 1970). Exit status 1 if one is
//! missing.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix as posix;
use exo_rt::{eprintln, println};
use exo_utils::{fail, mode_string, path, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("stat", args, "", "stat PATH...") {
        Ok(a) => a,
        Err(s) => return s,
    };
    if a.operands.is_empty() {
        eprintln!("stat: which path? usage: stat PATH...");
        return 2;
    }
    if !exo_utils::disks("stat") {
        return 1;
    }
    let mut status = 0;
    for o in &a.operands {
        let p = path(o);
        match posix::stat(&p) {
            Ok(st) => println!("{p}: {} size {} mode {:o} mtime {}", mode_string(&st), st.size, st.mode, st.mtime),
            Err(e) => status = fail("stat", &p, e),
        }
    }
    status
}
