//! `ls [-l] [-R] [-a] [PATH...]`: the entries of each directory (the
//! current one without operands), sorted by name, directories marked
//! with `/`, names starting with `.` left out unless `-a`; `-l` adds the
//! mode and size (and `-> TARGET` after a symlink), `-R` goes into
//! subdirectories (not through symlinks), each listed after a `PATH:`
//! line (as typed, or below it). A file operand is listed by its name as
//! typed (`-l`: `MODE SIZE NAME`); a symlink to a directory as the
//! directory, unless `-l` without a final `/`. Exit status 1 if a path
//! could not be listed.
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
    let a = match Args::parse("ls", args, "lRa", "ls [-l] [-R] [-a] [PATH...]") {
        Ok(a) => a,
        Err(s) => return s,
    };
    if !exo_utils::disks("ls") {
        return 1;
    }
    let how = How { long: a.has('l'), recursive: a.has('R'), all: a.has('a') };
    // Each operand as typed (for what is printed) and as a path.
    let targets: Vec<(String, String)> = if a.operands.is_empty() {
        alloc::vec![(".".into(), posix::getcwd())]
    } else {
        a.operands.iter().map(|o| (o.clone(), path(o))).collect()
    };
    let headers = how.recursive || targets.len() > 1;
    let mut status = 0;
    let mut first = true;
    for (shown, p) in &targets {
        // A symlink to a directory is listed as the directory, unless
        // `-l` asks for the link itself (and the name does not end in `/`).
        // (A name ending in `/` must lead to a directory: say why not.)
        let st = match shown.ends_with('/') {
            false if how.long => posix::stat(p),
            false => posix::stat_follow(p),
            true => posix::stat_follow(&alloc::format!("{}/", p.trim_end_matches('/'))),
        };
        match st {
            Ok(st) if st.is_dir() => status |= list(shown, p, &how, headers, &mut first),
            Ok(st) if how.long => {
                println!("{} {:>10} {shown}{}", mode_string(&st), st.size, link_target(p, &st));
                first = false;
            }
            Ok(_) => {
                println!("{shown}");
                first = false;
            }
            Err(e) => status = fail("ls", p, e),
        }
    }
    status
}

/// ` -> TARGET` for a symlink (`-l`), else nothing.
fn link_target(path: &str, st: &posix::Stat) -> String {
    if !st.is_symlink() {
        return String::new();
    }
    match posix::readlink(path) {
        Ok(t) => alloc::format!(" -> {t}"),
        Err(e) => alloc::format!(" -> ({e:?})"),
    }
}

/// What was asked for.
struct How {
    long: bool,
    recursive: bool,
    all: bool,
}

/// Lists directory `dir` (printed as `shown`), and below it if asked; 1
/// if something could not be listed.
fn list(shown: &str, dir: &str, how: &How, header: bool, first: &mut bool) -> i32 {
    if header {
        if !*first {
            println!();
        }
        println!("{shown}:");
    }
    *first = false;
    let mut entries = match posix::readdir(dir) {
        Ok(e) => e,
        Err(e) => return fail("ls", dir, e),
    };
    entries.retain(|e| how.all || !e.name.starts_with('.'));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in &entries {
        if how.long {
            let target = link_target(&posix::join_path(dir, &e.name), &e.stat);
            println!("{} {:>10} {}{target}", mode_string(&e.stat), e.stat.size, e.name);
        } else {
            println!("{}{}", e.name, if e.stat.is_dir() { "/" } else { "" });
        }
    }
    let mut status = 0;
    if how.recursive {
        for e in entries.iter().filter(|e| e.stat.is_dir()) {
            let below = alloc::format!("{}/{}", shown.trim_end_matches('/'), e.name);
            status |= list(&below, &posix::join_path(dir, &e.name), how, true, first);
        }
    }
    status
}
