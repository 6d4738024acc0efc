//! `mv FROM TO` or `mv FROM... DIR`: renames (into a directory under the
//! same name), within one file system. Exit status 1 if one could not be
//! moved.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_posix::{self as posix, Errno};
use exo_rt::eprintln;
use exo_utils::{fail, path, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("mv", args, "", "mv FROM TO, or mv FROM... DIR") {
        Ok(a) => a,
        Err(s) => return s,
    };
    let Some((to, from)) = a.operands.split_last().filter(|(_, f)| !f.is_empty()) else {
        eprintln!("mv: usage: mv FROM TO, or mv FROM... DIR");
        return 2;
    };
    if !exo_utils::disks("mv") {
        return 1;
    }
    let to = path(to);
    let into = posix::stat(&to).is_ok_and(|st| st.is_dir());
    if from.len() > 1 && !into {
        return fail("mv", &to, Errno::ENOTDIR);
    }
    let mut status = 0;
    for f in from {
        let f = path(f);
        let target = if into { posix::join_path(&to, f.rsplit('/').next().unwrap_or("")) } else { to.clone() };
        if let Err(e) = posix::rename(&f, &target) {
            status = fail("mv", &f, e);
        }
    }
    status
}
