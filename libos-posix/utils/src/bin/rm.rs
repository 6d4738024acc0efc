//! `rm [-r] [-f] PATH...`: removes each file; `-r` removes directories
//! with everything in them (without it a directory is refused), `-f`
//! says nothing of paths that are not there. Exit status 1 if one could
//! not be removed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_posix::Errno;
use exo_rt::eprintln;
use exo_utils::{fail, mount_point, path, remove, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("rm", args, "rf", "rm [-r] [-f] PATH...") {
        Ok(a) => a,
        Err(s) => return s,
    };
    if a.operands.is_empty() {
        if a.has('f') {
            return 0;
        }
        eprintln!("rm: which path? usage: rm [-r] [-f] PATH...");
        return 2;
    }
    if !exo_utils::disks("rm") {
        return 1;
    }
    let mut status = 0;
    for o in &a.operands {
        let p = path(o);
        // As POSIX says: `.` and `..` are not removed (`rm -r d/.` would
        // take `d`).
        if matches!(o.trim_end_matches('/').rsplit('/').next(), Some("." | "..")) {
            eprintln!("rm: {o}: refusing to remove '.' or '..'");
            status = 1;
            continue;
        }
        if mount_point(&p) {
            eprintln!("rm: {p}: a mount point stays");
            status = 1;
            continue;
        }
        match remove(&p, a.has('r')) {
            Ok(()) => {}
            Err((_, Errno::ENOENT)) if a.has('f') => {}
            Err((what, e)) => status = fail("rm", &what, e),
        }
    }
    status
}
