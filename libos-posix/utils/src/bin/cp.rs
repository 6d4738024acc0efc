//! `cp [-r] FROM TO` or `cp [-r] FROM... DIR`: copies files (to a file
//! made anew or cut to nothing, or into a directory under the same name);
//! with `-r` (or `-R`), directories too, with everything in them. Exit
//! status 1 if one could not be copied.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_posix as posix;
use exo_rt::eprintln;
use exo_utils::{copy, copy_tree, fail, inside, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("cp", args, "rR", "cp [-r] FROM TO, or cp [-r] FROM... DIR") {
        Ok(a) => a,
        Err(s) => return s,
    };
    let moves = match exo_utils::destinations("cp", &a.operands) {
        Ok(m) => m,
        Err(s) => return s,
    };
    let mut status = 0;
    for (f, target) in moves {
        if target == f {
            eprintln!("cp: {f} and {target} are the same file");
            status = 1;
            continue;
        }
        let recursive = a.has('r') || a.has('R');
        if recursive && posix::stat(&f).is_ok_and(|st| st.is_dir()) {
            if inside(&target, &f) {
                eprintln!("cp: cannot copy {f} into itself ({target})");
                status = 1;
                continue;
            }
            if !copy_tree("cp", &f, &target) {
                status = 1;
            }
        } else if let Err((what, e)) = copy(&f, &target) {
            status = fail("cp", &what, e);
        }
    }
    status
}
