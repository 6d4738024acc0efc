//! `mv FROM TO` or `mv FROM... DIR`: renames (into a directory under the
//! same name). Across file systems (another disk: `EXDEV`) it copies,
//! a directory with everything in it, and removes the source only once
//! all of it was copied; what could not be copied stays where it was.
//! Exit status 1 if one could not be moved.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix::{self as posix, Errno};
use exo_rt::eprintln;
use exo_utils::{copy, copy_tree, fail, inside, mount_point, remove, Args};

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
        match posix::rename(&f, &target) {
            Ok(()) => {}
            Err(Errno::EXDEV) => {
                if !across(&f, &target) {
                    status = 1;
                }
            }
            Err(e) => status = fail("mv", &f, e),
        }
    }
    status
}

/// Moves `from` to `to` on another file system: a copy, then the source
/// removed; whether it moved.
fn across(from: &str, to: &str) -> bool {
    if mount_point(from) {
        eprintln!("mv: {from}: a mount point stays");
        return false;
    }
    let dir = match posix::stat(from) {
        Ok(st) => st.is_dir(),
        Err(e) => {
            fail("mv", from, e);
            return false;
        }
    };
    let copied = if dir {
        if inside(to, from) {
            eprintln!("mv: cannot move {from} into itself ({to})");
            return false;
        }
        copy_tree("mv", from, to)
    } else {
        copy(from, to).map_err(|(what, e)| fail("mv", &what, e)).is_ok()
    };
    if !copied {
        eprintln!("mv: {from} was not all copied to {to}: it stays where it was");
        return false;
    }
    match remove(from, true) {
        Ok(()) => true,
        Err((what, e)) => {
            fail("mv", &what, e);
            false
        }
    }
}
