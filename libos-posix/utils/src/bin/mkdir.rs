//! `mkdir [-p] DIR...`: makes each directory; `-p` makes missing parents
//! too and accepts directories that exist. Exit status 1 if one could
//! not be made.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use exo_posix::{self as posix, Errno};
use exo_rt::eprintln;
use exo_utils::{fail, path, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("mkdir", args, "p", "mkdir [-p] DIR...") {
        Ok(a) => a,
        Err(s) => return s,
    };
    if a.operands.is_empty() {
        eprintln!("mkdir: which directory? usage: mkdir [-p] DIR...");
        return 2;
    }
    if !exo_utils::disks("mkdir") {
        return 1;
    }
    let mut status = 0;
    for o in &a.operands {
        let p = path(o);
        let r = if a.has('p') { make_parents(&p) } else { posix::mkdir(&p) };
        if let Err(e) = r {
            status = fail("mkdir", &p, e);
        }
    }
    status
}

/// Makes `p` and what is missing above it; a directory already there is
/// fine, anything else in the way is not.
fn make_parents(p: &str) -> Result<(), Errno> {
    let mut at = alloc::string::String::new();
    for part in p.split('/').filter(|s| !s.is_empty()) {
        at.push('/');
        at.push_str(part);
        match posix::stat(&at) {
            Ok(st) if st.is_dir() => continue,
            Ok(_) => return Err(Errno::ENOTDIR),
            Err(Errno::ENOENT) => posix::mkdir(&at)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
