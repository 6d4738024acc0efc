//! `ls [-l] [-R] [PATH...]`: the entries of each directory (the current
//! one without operands), sorted by name, directories marked with `/`;
//! `-l` adds the mode and size, `-R` goes into subdirectories, each
//! listed after a `PATH:` line. A file operand is listed as
//! `MODE SIZE PATH`. Exit status 1 if a path could not be listed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use exo_posix as posix;
use exo_rt::println;
use exo_utils::{fail, mode_string, path, Args};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("ls", args, "lR", "ls [-l] [-R] [PATH...]") {
        Ok(a) => a,
        Err(s) => return s,
    };
    if !exo_utils::disks("ls") {
        return 1;
    }
    let (long, recursive) = (a.has('l'), a.has('R'));
    let targets: Vec<String> =
        if a.operands.is_empty() { alloc::vec![posix::getcwd()] } else { a.operands.iter().map(|o| path(o)).collect() };
    let headers = recursive || targets.len() > 1;
    let mut status = 0;
    let mut first = true;
    for p in &targets {
        match posix::stat(p) {
            Ok(st) if st.is_dir() => status |= list(p, long, recursive, headers, &mut first),
            Ok(st) => {
                println!("{} {:>10} {p}", mode_string(&st), st.size);
                first = false;
            }
            Err(e) => status = fail("ls", p, e),
        }
    }
    status
}

/// Lists directory `dir` (and below it, if `recursive`); 1 if something
/// could not be listed.
fn list(dir: &str, long: bool, recursive: bool, header: bool, first: &mut bool) -> i32 {
    if header {
        if !*first {
            println!();
        }
        println!("{dir}:");
    }
    *first = false;
    let mut entries = match posix::readdir(dir) {
        Ok(e) => e,
        Err(e) => return fail("ls", dir, e),
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in &entries {
        if long {
            println!("{} {:>10} {}", mode_string(&e.stat), e.stat.size, e.name);
        } else {
            println!("{}{}", e.name, if e.stat.is_dir() { "/" } else { "" });
        }
    }
    let mut status = 0;
    if recursive {
        for e in entries.iter().filter(|e| e.stat.is_dir()) {
            status |= list(&posix::join_path(dir, &e.name), long, true, true, first);
        }
    }
    status
}
