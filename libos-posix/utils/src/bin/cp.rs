//! `cp FROM TO` or `cp FROM... DIR`: copies files (to a file made anew or
//! cut to nothing, or into a directory under the same name). Exit status
//! 1 if one could not be copied.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use exo_posix::{self as posix, Errno};
use exo_rt::eprintln;
use exo_utils::{each_chunk, fail, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("cp", args, "", "cp FROM TO, or cp FROM... DIR") {
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
        if let Err((what, e)) = copy(&f, &target) {
            status = fail("cp", &what, e);
        }
    }
    status
}

/// Copies file `from` to `to`; what failed, and how.
fn copy(from: &str, to: &str) -> Result<(), (String, Errno)> {
    use posix::flags::{O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY};
    let input = posix::open(from, O_RDONLY).map_err(|e| (from.to_string(), e))?;
    if posix::fstat(input).is_ok_and(|st| st.is_dir()) {
        let _ = posix::close(input);
        return Err((from.to_string(), Errno::EISDIR));
    }
    let output = match posix::open(to, O_WRONLY | O_CREAT | O_TRUNC) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = posix::close(input);
            return Err((to.to_string(), e));
        }
    };
    let mut wrote = Ok(());
    let read = each_chunk(input, |b| {
        wrote = posix::write_all(output, b);
        wrote.map_err(|_| Errno::EIO)
    });
    let _ = posix::close(input);
    let closed = posix::close(output);
    wrote.map_err(|e| (to.to_string(), e))?;
    read.map_err(|e| (from.to_string(), e))?;
    closed.map_err(|e| (to.to_string(), e))
}
