//! `cp [-r] FROM TO` or `cp [-r] FROM... DIR`: copies files (to a file
//! made anew or cut to nothing, or into a directory under the same name);
//! with `-r` (or `-R`), directories too, with everything in them. Exit
//! status 1 if one could not be copied.
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
            if target.starts_with(&f) && target.as_bytes().get(f.len()) == Some(&b'/') {
                eprintln!("cp: cannot copy {f} into itself ({target})");
                status = 1;
                continue;
            }
            if !copy_tree(&f, &target) {
                status = 1;
            }
        } else if let Err((what, e)) = copy(&f, &target) {
            status = fail("cp", &what, e);
        }
    }
    status
}

/// Copies directory `from` to `to` (made if it is not there) with
/// everything in it, going on past what fails (each failure told);
/// whether all was copied.
fn copy_tree(from: &str, to: &str) -> bool {
    match posix::mkdir(to) {
        Ok(()) => {}
        Err(Errno::EEXIST) if posix::stat(to).is_ok_and(|st| st.is_dir()) => {}
        Err(e) => {
            fail("cp", to, e);
            return false;
        }
    }
    let entries = match posix::readdir(from) {
        Ok(e) => e,
        Err(e) => {
            fail("cp", from, e);
            return false;
        }
    };
    let mut all = true;
    for e in entries {
        let (f, t) = (posix::join_path(from, &e.name), posix::join_path(to, &e.name));
        if e.stat.is_dir() {
            all &= copy_tree(&f, &t);
        } else if let Err((what, err)) = copy(&f, &t) {
            fail("cp", &what, err);
            all = false;
        }
    }
    all
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
