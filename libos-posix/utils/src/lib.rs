//! What the small programs of `exo-utils` share: how they take flags and
//! paths, read files and standard input, and say what failed. Each
//! program is its own binary in the boot image; the shell starts it
//! through the process service, in the shell's directory, with the
//! shell's disks (`files` endpoints), environment and standard
//! descriptors (files or pipes, `exo_posix::start`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use exo_posix::{self as posix, Errno, Fd};
use exo_rt::eprintln;

/// A command's flags (single letters, `-lR` or `-l -R`) and operands; a
/// flag not in `allowed` is refused with a usage message (status 2).
/// `--` ends the flags.
pub struct Args {
    flags: Vec<char>,
    /// The operands, in order (quoted ones as the user meant them:
    /// `exo_posix::argv`).
    pub operands: Vec<String>,
}

impl Args {
    /// Splits `args`; `Err(2)` after telling `usage` on the console.
    pub fn parse(name: &str, args: &str, allowed: &str, usage: &str) -> Result<Args, i32> {
        let mut a = Args { flags: Vec::new(), operands: Vec::new() };
        let mut flags_done = false;
        for w in posix::argv::words(args) {
            match w.strip_prefix('-') {
                Some("-") if !flags_done => flags_done = true,
                Some(f) if !flags_done && !f.is_empty() => {
                    for c in f.chars() {
                        if !allowed.contains(c) {
                            eprintln!("{name}: no option -{c}; usage: {usage}");
                            return Err(2);
                        }
                        a.flags.push(c);
                    }
                }
                _ => a.operands.push(w.clone()),
            }
        }
        Ok(a)
    }

    /// Whether flag `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
}

/// `arg` as an absolute path, from the directory the program started in.
pub fn path(arg: &str) -> String {
    posix::join_path(&posix::getcwd(), arg)
}

/// Mounts the disks the program was given; false (told on the console)
/// if there are none.
pub fn disks(name: &str) -> bool {
    if posix::mount_disks().is_empty() {
        if exo_rt::endpoint_names().any(|n| n.starts_with("files")) {
            eprintln!("{name}: no file server answers (it gave up on its disk, or is gone)");
        } else {
            eprintln!("{name}: given no file server (an endpoint named files)");
        }
        return false;
    }
    true
}

/// `FROM TO` or `FROM... DIR` (`cp`, `mv`): each source with where it
/// goes, both absolute; a directory as the last operand takes the
/// sources under their own names. Disks are mounted first; `Err(status)`
/// after saying why on the console.
pub fn destinations(name: &str, operands: &[String]) -> Result<Vec<(String, String)>, i32> {
    let Some((to, from)) = operands.split_last().filter(|(_, f)| !f.is_empty()) else {
        eprintln!("{name}: usage: {name} FROM TO, or {name} FROM... DIR");
        return Err(2);
    };
    if !disks(name) {
        return Err(1);
    }
    let to = path(to);
    let into = posix::stat(&to).is_ok_and(|st| st.is_dir());
    if from.len() > 1 && !into {
        return Err(fail(name, &to, Errno::ENOTDIR));
    }
    Ok(from
        .iter()
        .map(|f| {
            let f = path(f);
            let target = if into { posix::join_path(&to, f.rsplit('/').next().unwrap_or("")) } else { to.clone() };
            (f, target)
        })
        .collect())
}

/// `ls -l`'s mode column: type, then rwx for owner, group, others.
pub fn mode_string(st: &posix::Stat) -> String {
    let kind = match st.mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        _ => '-',
    };
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (st.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Reads `fd` to its end in chunks, giving each to `f` (which may stop
/// the reading with an error of its own).
pub fn each_chunk(fd: Fd, mut f: impl FnMut(&[u8]) -> Result<(), Errno>) -> Result<(), Errno> {
    let mut buf = alloc::vec![0u8; 64 * 1024];
    loop {
        match posix::read(fd, &mut buf)? {
            0 => return Ok(()),
            n => f(&buf[..n])?,
        }
    }
}

/// What an operand names to read from: a file (opened), or standard
/// input for `-`.
pub enum Input {
    /// Descriptor 0.
    Stdin,
    /// An opened file, and its absolute path.
    File(Fd, String),
}

impl Input {
    /// Opens `operand` (`-`: standard input: a file, a pipe or the
    /// console; a program in the background has none).
    pub fn open(operand: &str) -> Result<Input, (String, Errno)> {
        if operand == "-" {
            return match posix::stdin_redirected() {
                true => Ok(Input::Stdin),
                false => Err(("standard input".into(), Errno::EBADF)),
            };
        }
        let p = path(operand);
        match posix::open(&p, posix::flags::O_RDONLY) {
            Ok(fd) => Ok(Input::File(fd, p)),
            Err(e) => Err((p, e)),
        }
    }

    /// Its descriptor.
    pub fn fd(&self) -> Fd {
        match self {
            Input::Stdin => 0,
            Input::File(fd, _) => *fd,
        }
    }

    /// What messages call it.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(_, p) => p.clone(),
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Input::File(fd, _) = self {
            let _ = posix::close(*fd);
        }
    }
}

/// The operands to read: those given, or `-` (standard input) when there
/// are none. Disks are mounted if a file is named; `Err(status)` after a
/// message when there is nothing to read.
pub fn inputs<'a>(name: &str, operands: &'a [String]) -> Result<Vec<&'a str>, i32> {
    if operands.is_empty() {
        if !posix::stdin_redirected() {
            eprintln!("{name}: which file? (it was given no input to read: < FILE, or after a |)");
            return Err(2);
        }
        return Ok(alloc::vec!["-"]);
    }
    if operands.iter().any(|o| o != "-") && !disks(name) {
        return Err(1);
    }
    Ok(operands.iter().map(String::as_str).collect())
}

/// Writes `data` to standard output; a reader that went away ends the
/// program quietly (status 141, as SIGPIPE does on Unix).
pub fn out(data: &[u8]) -> Result<(), Errno> {
    match posix::write_all(1, data) {
        Err(Errno::EPIPE) => posix::broken_pipe(),
        r => r,
    }
}

/// Says `what: e` on the console; status 1.
pub fn fail(name: &str, what: &str, e: Errno) -> i32 {
    eprintln!("{name}: {what}: {e:?}");
    1
}

/// Copies directory `from` to `to` (made if it is not there) with
/// everything in it, going on past what fails (each failure told as
/// `name`'s); whether all was copied.
pub fn copy_tree(name: &str, from: &str, to: &str) -> bool {
    match posix::mkdir(to) {
        Ok(()) => {}
        Err(Errno::EEXIST) if posix::stat(to).is_ok_and(|st| st.is_dir()) => {}
        Err(e) => {
            fail(name, to, e);
            return false;
        }
    }
    let entries = match posix::readdir(from) {
        Ok(e) => e,
        Err(e) => {
            fail(name, from, e);
            return false;
        }
    };
    let mut all = true;
    for e in entries {
        let (f, t) = (posix::join_path(from, &e.name), posix::join_path(to, &e.name));
        if e.stat.is_dir() {
            all &= copy_tree(name, &f, &t);
        } else if let Err((what, err)) = copy(&f, &t) {
            fail(name, &what, err);
            all = false;
        }
    }
    all
}

/// Copies file `from` to `to` (made anew, or cut to nothing); what
/// failed, and how.
pub fn copy(from: &str, to: &str) -> Result<(), (String, Errno)> {
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

/// Removes `p` (and, if `recursive`, what a directory holds first); what
/// failed, and how.
pub fn remove(p: &str, recursive: bool) -> Result<(), (String, Errno)> {
    let st = posix::stat(p).map_err(|e| (p.into(), e))?;
    if st.is_dir() && !recursive {
        return Err((alloc::format!("{p} (a directory: rm -r)"), Errno::EISDIR));
    }
    if st.is_dir() {
        for e in posix::readdir(p).map_err(|e| (p.into(), e))? {
            remove(&posix::join_path(p, &e.name), true)?;
        }
    }
    posix::unlink(p).map_err(|e| (p.into(), e))
}

/// Whether absolute path `p` is `/` or where a disk is mounted: what
/// `rm` and `mv` leave in place.
pub fn mount_point(p: &str) -> bool {
    p.split('/').all(str::is_empty) || posix::mounts().iter().any(|m| m == p)
}

/// Whether `inner` is `dir` or lies inside it (both absolute).
pub fn inside(inner: &str, dir: &str) -> bool {
    inner == dir || inner.starts_with(dir) && inner.as_bytes().get(dir.len()) == Some(&b'/')
}

/// `mount` and `disks` (the same program under two names): which file
/// server serves which disk, as each says; the exit status.
pub fn list_mounts(name: &str, args: &str) -> i32 {
    if !args.trim().is_empty() {
        eprintln!("{name}: it lists the disks and takes no operands (the manifest mounts them)");
        return 2;
    }
    if !disks(name) {
        return 1;
    }
    let mut status = 0;
    for at in posix::mounts() {
        match posix::mount_info(&at) {
            Ok(i) => {
                let label = if i.label.is_empty() { String::new() } else { alloc::format!(" \"{}\"", i.label) };
                exo_rt::println!("{at}: {}{label} on the {}, {} bytes ({})", i.fs, i.partition, i.size, i.sandbox);
            }
            Err(e) => status = fail(name, &at, e),
        }
    }
    status
}
