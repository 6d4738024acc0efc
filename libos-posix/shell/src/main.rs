//! exo-sh, the ExoV6 shell: reads lines from the console driver (console
//! protocol, its endpoint named `console`), works on files through the
//! POSIX library OS: the file server of each disk (endpoints `files` or
//! `files0`, `files1` ...) mounted at `/d0`, `/d1` ..., starting in `/d0`.
//!
//! Built-in commands: `help`, `echo`, `pwd`, `cd`, `ls [-l] [PATH...]`,
//! `cat PATH...`, `stat PATH...`, `wc PATH...`, `hexdump PATH` (its first
//! 256 bytes), `mkdir`, `rm`, `cp`, `mv` (on a writable file system),
//! `mount` (or `disks`: which file server serves which disk), `uptime`,
//! `date`, `ps` (the system's programs and the shell's, from the process
//! service), `jobs`, `kill PID...`, `wait [PID...]`, `export
//! NAME=VALUE`, `unset NAME`, `env`, `exit` and `poweroff [N]`. `$NAME`
//! is an environment variable's value; programs the shell starts get the
//! environment (`exo_posix::getenv`). `$?` is the last command's status
//! (0 ok, 1 failed, 2 misused, 127 not found). ^C drops the line being
//! typed; ^D on an empty line leaves. Running programs from the boot
//! Any other command runs the program of that name from the boot image
//! through the library OS's process calls (`exo_posix::process`, the
//! root task's process service `procs` underneath), with the shell's
//! endpoints; the shell waits for it (^C stops it) and `$?` tells how it
//! ended (128 + the exception vector for a program the CPU killed).
//! `COMMAND &` starts a program without waiting: the shell prints
//! `[PID] COMMAND`, and before a later prompt `[PID] done, HOW: COMMAND`
//! once it has ended; `wait` waits for such programs (^C stops waiting,
//! not them).
//! `> FILE` and `>> FILE` send a command's output to a file (made anew,
//! or added to), `< FILE` gives a program a file as its input: a built-in
//! command's output is collected by the shell; a program gets the files
//! through its environment (`EXO_STDOUT`, `EXO_STDIN`), which the POSIX
//! library's entry point opens as its descriptors 1 and 0 (its messages
//! still go to the console). There are no pipes: the library has no pipe
//! object yet to give two programs, and the shell says so.
//!
//! Endpoints, by name: `files` (or `files0` ...), `console`, `procs`; a
//! program the shell starts gets them all, under the same names.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use exo_posix::process::Waited;
use exo_posix::{self as posix, Errno};
use exo_protocols::console::{self, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::ExitStatus;
use exo_rt::abi::{slot, FOREVER};
use exo_rt::caps::{Endpoint, Notification, Power};
use exo_rt::mem::Mapping;
use exo_rt::{print, println, sys};

exo_rt::entry!(main);

/// Where the buffer shared with the console driver is mapped.
const CONSOLE_VA: u64 = 0x30_0000_0000;

/// The console, as a client sees it.
struct Console {
    buffer: Mapping,
    attached: Attached,
    note: Notification,
}

/// What reading a line gave.
enum Input {
    Line(String),
    End,
}

impl Console {
    fn open(ep: Endpoint) -> Result<Console, String> {
        let (buffer, attached, _) = Attached::new(ep, 1, CONSOLE_VA).map_err(|e| format!("console: {e}"))?;
        let note = Notification::from_slot(slot::SUPERVISOR);
        let answer =
            ep.call([console::SUBSCRIBE, 0, 0], Some(note.slot()), FOREVER).map_err(|e| e.name().to_string())?;
        if answer.words[0] != Status::Ok as u64 {
            return Err("the console refused the subscription".into());
        }
        Ok(Console { buffer, attached, note })
    }

    /// The next line; sleeps on the notification until one is typed.
    fn read_line(&mut self) -> Result<Input, String> {
        loop {
            let m = self.attached.call([console::READ, 0, 0], 3, |_| true).map_err(|e| e.name().to_string())?;
            match Status::from_word(m.words[0]) {
                Some(Status::Ok) if m.words[2] & console::END_OF_INPUT != 0 => return Ok(Input::End),
                Some(Status::Ok) => {
                    let n = (m.words[1] as usize).min(self.buffer.len());
                    return Ok(Input::Line(String::from_utf8_lossy(&self.buffer.as_mut_slice()[..n]).into_owned()));
                }
                Some(Status::Empty) => {
                    self.note.wait(FOREVER).map_err(|e| e.name().to_string())?;
                }
                other => return Err(format!("the console answered {other:?}")),
            }
        }
    }
}

/// Runs command `line` through the library's process calls and waits
/// for it (^C on the console stops it); its status, or None if there is
/// no such program.
fn run_program(line: &str) -> Result<Option<i32>, Errno> {
    let pid = match posix::process::spawn(line) {
        Ok(pid) => pid,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let status = wait_program(pid, true)?.expect("^C kills, and the wait goes on");
    Ok(Some(exit_code(line.split(' ').next().unwrap_or(""), status)))
}

/// Waits for program `pid` to end. ^C on the console kills it if `kill`,
/// else stops the wait (`None`). Lines typed meanwhile are left for the
/// next read.
fn wait_program(pid: posix::process::Pid, kill: bool) -> Result<Option<ExitStatus>, Errno> {
    let mut lines_waiting = false;
    let status = loop {
        match posix::process::wait(pid)? {
            Waited::Ended(status) => break Some(status),
            Waited::Interrupted(bits) => {
                lines_waiting |= bits & console::LINE_READY != 0;
                if bits & console::INTERRUPT != 0 {
                    if !kill {
                        break None;
                    }
                    posix::process::kill(pid)?;
                }
            }
        }
    };
    // Lines typed meanwhile wait with the console driver: the next read
    // is to know.
    if lines_waiting {
        let _ = Notification::from_slot(slot::SUPERVISOR).signal(console::LINE_READY);
    }
    Ok(status)
}

/// `$?` for a program that ended so (a message if the CPU killed it).
fn exit_code(name: &str, status: ExitStatus) -> i32 {
    match status {
        ExitStatus::Exited(c) => c.min(255) as i32,
        ExitStatus::Faulted(v) => {
            println!("exo-sh: {name}: killed by CPU exception {v}");
            128 + i32::from(v)
        }
    }
}

/// How a background program ended, in words.
fn ended_how(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(c) if c == exo_protocols::process::KILLED_EXIT => format!("killed (exit {c})"),
        ExitStatus::Exited(c) => format!("exit {c}"),
        ExitStatus::Faulted(v) => format!("killed by CPU exception {v}"),
    }
}

/// The built-in commands (`&` runs programs only).
const BUILTINS: &[&str] = &[
    "help", "echo", "pwd", "cd", "ls", "cat", "stat", "wc", "hexdump", "mkdir", "rm", "cp", "mv", "mount", "disks",
    "uptime", "date", "ps", "jobs", "kill", "wait", "export", "unset", "env", "exit", "poweroff",
];

/// The shell's state.
struct Shell {
    cwd: String,
    status: i32,
    files: bool,
    procs: bool,
    /// Programs started with `&`, not yet seen to end: pid, command.
    jobs: Vec<(posix::process::Pid, String)>,
}

fn mode_string(st: &posix::Stat) -> String {
    let kind = match st.mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
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

/// Reads all of file `path`, in chunks, giving each to `f`.
fn each_chunk(path: &str, mut f: impl FnMut(&[u8])) -> Result<(), Errno> {
    let fd = posix::open(path, posix::flags::O_RDONLY)?;
    let mut buf = alloc::vec![0u8; 64 * 1024];
    let r = loop {
        match posix::read(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => f(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let _ = posix::close(fd);
    r
}

/// Copies file `from` to `to` (created or cut to nothing first); what
/// failed, and how.
fn copy(from: &str, to: &str) -> Result<(), (String, Errno)> {
    use posix::flags::{O_CREAT, O_TRUNC, O_WRONLY};
    let out = posix::open(to, O_WRONLY | O_CREAT | O_TRUNC).map_err(|e| (to.to_string(), e))?;
    let mut failed = None;
    let r = each_chunk(from, |b| {
        if failed.is_none() {
            failed = posix::write_all(out, b).err();
        }
    });
    let closed = posix::close(out);
    r.map_err(|e| (from.to_string(), e))?;
    if let Some(e) = failed {
        return Err((to.to_string(), e));
    }
    closed.map_err(|e| (to.to_string(), e))
}

/// Where a built-in command's output goes: the console, or a text
/// collected for a file (`> FILE`).
struct Out(Option<String>);

impl Out {
    fn put(&mut self, text: &str) {
        match &mut self.0 {
            Some(t) => t.push_str(text),
            None => print!("{text}"),
        }
    }
}

/// `println!` to an [`Out`].
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let mut line = alloc::format!($($arg)*);
        line.push('\n');
        $out.put(&line);
    }};
}

/// A command line's redirections, as written.
#[derive(Default)]
struct Redirects {
    /// `> FILE` (false) or `>> FILE` (true).
    out: Option<(String, bool)>,
    /// `< FILE`.
    input: Option<String>,
}

/// Splits `> FILE`, `>> FILE` and `< FILE` (at most one output and one
/// input, anywhere after the command) off a command line.
fn redirections(line: &str) -> Result<(String, Redirects), &'static str> {
    let mut command = String::new();
    let mut r = Redirects::default();
    let mut rest = line;
    while let Some(at) = rest.find(['>', '<']) {
        command.push_str(&rest[..at]);
        command.push(' ');
        let op = &rest[at..];
        let (output, append, after) = match (op.strip_prefix(">>"), op.strip_prefix('>')) {
            (Some(a), _) => (true, true, a),
            (None, Some(a)) => (true, false, a),
            (None, None) => (false, false, &op[1..]),
        };
        let after = after.trim_start();
        let end = after.find(|c: char| c.is_whitespace() || c == '>' || c == '<').unwrap_or(after.len());
        let target = &after[..end];
        if target.is_empty() {
            return Err(if output { "> wants a file name after it" } else { "< wants a file name after it" });
        }
        match output {
            true if r.out.is_none() => r.out = Some((target.into(), append)),
            false if r.input.is_none() => r.input = Some(target.into()),
            _ => return Err("one > FILE and one < FILE at most"),
        }
        rest = &after[end..];
    }
    command.push_str(rest);
    Ok((command, r))
}

/// Writes `data` to file `path`, made anew (or added to its end).
fn write_file(path: &str, data: &[u8], append: bool) -> Result<(), Errno> {
    use posix::flags::{O_APPEND, O_CREAT, O_TRUNC, O_WRONLY};
    let fd = posix::open(path, O_WRONLY | O_CREAT | if append { O_APPEND } else { O_TRUNC })?;
    let r = posix::write_all(fd, data);
    let closed = posix::close(fd);
    r.and(closed)
}

impl Shell {
    fn fail(&self, what: &str, e: Errno) -> i32 {
        println!("{what}: {e:?}");
        1
    }

    fn need_files(&self, cmd: &str) -> bool {
        if !self.files {
            println!("{cmd}: no file system is mounted");
        }
        self.files
    }

    /// Runs one command line; its status (`None`: leave). `> FILE` or
    /// `>> FILE` sends the command's output to FILE (made anew, or added
    /// to), `< FILE` gives a program FILE as its input; messages about
    /// failures still go to the console. `COMMAND &` starts a program
    /// without waiting.
    fn run(&mut self, line: &str) -> Option<i32> {
        let (line, background) = match line.trim_end().strip_suffix('&') {
            Some(l) => (l, true),
            None => (line, false),
        };
        if line.contains('|') {
            println!(
                "exo-sh: no pipes yet: the POSIX library has no pipe object to give two programs (send the first's \
                 output to a file with > FILE, and give it to the second with < FILE)"
            );
            return Some(2);
        }
        let (line, redirects) = match redirections(line) {
            Ok(r) => r,
            Err(why) => {
                println!("exo-sh: {why}");
                return Some(2);
            }
        };
        let out = redirects.out.map(|(target, append)| (posix::join_path(&self.cwd, &self.expand(&target)), append));
        let input = redirects.input.map(|target| posix::join_path(&self.cwd, &self.expand(&target)));
        let builtin = line.split_whitespace().next().is_some_and(|cmd| BUILTINS.contains(&cmd));
        if builtin && background {
            println!("exo-sh: & runs programs only, and {} is a built-in command", line.trim());
            return Some(2);
        }
        if builtin {
            if input.is_some() {
                println!("exo-sh: < FILE is for programs (built-in commands take files as arguments)");
                return Some(2);
            }
            let mut to = Out(out.as_ref().map(|_| String::new()));
            let status = self.command(&line, &mut to)?;
            let Some((target, append)) = out else { return Some(status) };
            let text = to.0.unwrap_or_default();
            return match write_file(&target, text.as_bytes(), append) {
                Ok(()) => Some(status),
                Err(e) => Some(self.fail(&format!("exo-sh: {target}"), e)),
            };
        }
        // A program: the shell makes (or cuts) its output file and checks
        // its input file, so that those errors are the shell's; the
        // program opens them through its environment (exo_posix::start).
        if let Some((target, append)) = &out {
            if let Err(e) = write_file(target, b"", *append) {
                return Some(self.fail(&format!("exo-sh: {target}"), e));
            }
        }
        if let Some(target) = &input {
            match posix::stat(target) {
                Ok(st) if st.is_dir() => return Some(self.fail(&format!("exo-sh: {target}"), Errno::EISDIR)),
                Ok(_) => {}
                Err(e) => return Some(self.fail(&format!("exo-sh: {target}"), e)),
            }
        }
        let saved = [posix::getenv(posix::STDOUT_VAR), posix::getenv(posix::STDIN_VAR)];
        let set = |name: &str, value: Option<&str>| match value {
            Some(v) => {
                let _ = posix::setenv(name, v);
            }
            None => {
                posix::unsetenv(name);
            }
        };
        set(posix::STDOUT_VAR, out.as_ref().map(|(t, _)| t.as_str()));
        set(posix::STDIN_VAR, input.as_deref());
        let status = if background { Some(self.start_job(&line)) } else { self.command(&line, &mut Out(None)) };
        set(posix::STDOUT_VAR, saved[0].as_deref());
        set(posix::STDIN_VAR, saved[1].as_deref());
        status
    }

    /// `word` with `$?` and `$NAME` (environment variables; unset ones are
    /// empty) replaced.
    fn expand(&self, word: &str) -> String {
        let mut out = String::new();
        let mut rest = word;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(r) = after.strip_prefix('?') {
                out.push_str(&self.status.to_string());
                rest = r;
                continue;
            }
            let len = after
                .char_indices()
                .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
                .map_or(after.len(), |(i, _)| i);
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&posix::getenv(&after[..len]).unwrap_or_default());
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        out
    }

    /// `COMMAND &`: starts a program without waiting for it.
    fn start_job(&mut self, line: &str) -> i32 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(cmd) = words.first() else {
            println!("exo-sh: & wants a program before it");
            return 2;
        };
        if !self.procs {
            println!("exo-sh: {cmd}: no process service to start programs with");
            return 127;
        }
        let line = words.join(" ");
        match posix::process::spawn(&line) {
            Ok(pid) => {
                println!("[{pid}] {line}");
                self.jobs.push((pid, line));
                0
            }
            Err(Errno::ENOENT) => {
                println!("exo-sh: {cmd}: command not found (help lists the commands)");
                127
            }
            Err(e) => self.fail(&format!("exo-sh: {cmd}"), e),
        }
    }

    /// Says which background programs have ended, and forgets them.
    fn reap(&mut self) {
        self.jobs.retain(|(pid, line)| match posix::process::try_wait(*pid) {
            Ok(Some(status)) => {
                println!("[{pid}] done, {}: {line}", ended_how(status));
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// Runs one command (its output to `out`); its status.
    fn command(&mut self, line: &str, out: &mut Out) -> Option<i32> {
        let words: Vec<String> = line.split_whitespace().map(|w| self.expand(w)).collect();
        let Some(cmd) = words.first() else { return Some(self.status) };
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let path = |p: &str| posix::join_path(&self.cwd, p);
        Some(match cmd.as_str() {
            "help" => {
                say!(
                    out,
                    "commands: help echo pwd cd ls [-l] cat stat wc hexdump mkdir rm cp mv mount uptime date ps jobs kill wait export unset env exit poweroff"
                );
                say!(
                    out,
                    "any other command runs that program; COMMAND & runs it without waiting ([pid] shown, ps lists it)"
                );
                say!(out, "$? is the last status; > FILE or >> FILE sends a command's output there, < FILE gives a program its input;");
                say!(out, "^C drops the line; ^D or exit leaves; poweroff ends ExoV6");
                0
            }
            "echo" => {
                say!(out, "{}", args.join(" "));
                0
            }
            "pwd" => {
                say!(out, "{}", self.cwd);
                0
            }
            "cd" => {
                let to = path(args.first().copied().unwrap_or("/"));
                match posix::stat(&to) {
                    Ok(st) if st.is_dir() => {
                        // The library's too: programs started from here
                        // start here.
                        let _ = posix::chdir(&to);
                        self.cwd = to;
                        0
                    }
                    Ok(_) => self.fail(&format!("cd: {to}"), Errno::ENOTDIR),
                    Err(e) => self.fail(&format!("cd: {to}"), e),
                }
            }
            "ls" => {
                if !self.need_files("ls") {
                    return Some(1);
                }
                let long = args.first() == Some(&"-l");
                let targets: Vec<&str> = args.iter().copied().filter(|a| *a != "-l").collect();
                let targets = if targets.is_empty() { alloc::vec![self.cwd.as_str()] } else { targets };
                let mut status = 0;
                for t in targets {
                    let p = path(t);
                    match posix::stat(&p) {
                        Ok(st) if st.is_dir() => match posix::readdir(&p) {
                            Ok(entries) => {
                                for e in entries {
                                    if long {
                                        say!(out, "{} {:>10} {}", mode_string(&e.stat), e.stat.size, e.name);
                                    } else {
                                        say!(out, "{}{}", e.name, if e.stat.is_dir() { "/" } else { "" });
                                    }
                                }
                            }
                            Err(e) => status = self.fail(&format!("ls: {p}"), e),
                        },
                        Ok(st) => say!(out, "{} {:>10} {p}", mode_string(&st), st.size),
                        Err(e) => status = self.fail(&format!("ls: {p}"), e),
                    }
                }
                status
            }
            "cat" | "wc" | "hexdump" | "stat" if args.is_empty() => {
                println!("{cmd}: which file?");
                2
            }
            "cat" => {
                let mut status = 0;
                for a in &args {
                    let p = path(a);
                    let mut text = String::new();
                    let r = each_chunk(&p, |b| text.push_str(&String::from_utf8_lossy(b)));
                    out.put(&text);
                    if let Err(e) = r {
                        status = self.fail(&format!("cat: {p}"), e);
                    }
                }
                status
            }
            "wc" => {
                let mut status = 0;
                for a in &args {
                    let p = path(a);
                    let (mut lines, mut words, mut bytes, mut in_word) = (0u64, 0u64, 0u64, false);
                    let r = each_chunk(&p, |b| {
                        bytes += b.len() as u64;
                        for &c in b {
                            lines += u64::from(c == b'\n');
                            let space = c.is_ascii_whitespace();
                            words += u64::from(!space && !in_word);
                            in_word = !space;
                        }
                    });
                    match r {
                        Ok(()) => say!(out, "{lines:>8} {words:>8} {bytes:>10} {p}"),
                        Err(e) => status = self.fail(&format!("wc: {p}"), e),
                    }
                }
                status
            }
            "hexdump" => {
                let p = path(args[0]);
                let mut first = Vec::new();
                let r = each_chunk(&p, |b| {
                    let room = 256usize.saturating_sub(first.len());
                    first.extend_from_slice(&b[..b.len().min(room)]);
                });
                for (i, row) in first.chunks(16).enumerate() {
                    let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
                    let text: String =
                        row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
                    say!(out, "{:08x}  {:<47}  |{text}|", i * 16, hex.join(" "));
                }
                match r {
                    Ok(()) => 0,
                    Err(e) => self.fail(&format!("hexdump: {p}"), e),
                }
            }
            "stat" => {
                let mut status = 0;
                for a in &args {
                    let p = path(a);
                    match posix::stat(&p) {
                        Ok(st) => {
                            say!(
                                out,
                                "{p}: {} size {} mode {:o} mtime {}",
                                mode_string(&st),
                                st.size,
                                st.mode,
                                st.mtime
                            )
                        }
                        Err(e) => status = self.fail(&format!("stat: {p}"), e),
                    }
                }
                status
            }
            "mkdir" | "rm" if args.is_empty() => {
                println!("{cmd}: which path?");
                2
            }
            "mkdir" => {
                let p = path(args[0]);
                posix::mkdir(&p).map_or_else(|e| self.fail(&format!("mkdir: {p}"), e), |()| 0)
            }
            "rm" => {
                let p = path(args[0]);
                posix::unlink(&p).map_or_else(|e| self.fail(&format!("rm: {p}"), e), |()| 0)
            }
            "cp" if args.len() != 2 => {
                println!("cp: cp FROM TO");
                2
            }
            "cp" => {
                let (from, mut to) = (path(args[0]), path(args[1]));
                if posix::stat(&to).is_ok_and(|st| st.is_dir()) {
                    to = posix::join_path(&to, from.rsplit('/').next().unwrap_or(""));
                }
                match copy(&from, &to) {
                    Ok(()) => 0,
                    Err((what, e)) => self.fail(&format!("cp: {what}"), e),
                }
            }
            "mv" if args.len() != 2 => {
                println!("mv: mv FROM TO");
                2
            }
            "mv" => {
                let (from, to) = (path(args[0]), path(args[1]));
                posix::rename(&from, &to).map_or_else(|e| self.fail(&format!("mv: {from}"), e), |()| 0)
            }
            "mount" | "disks" => {
                // Which server serves which disk, as each says.
                let mut status = 0;
                for at in posix::mounts() {
                    match posix::mount_info(&at) {
                        Ok(i) => {
                            let label = if i.label.is_empty() { String::new() } else { format!(" \"{}\"", i.label) };
                            say!(out, "{at}: {}{label} on the {}, {} bytes ({})", i.fs, i.partition, i.size, i.sandbox);
                        }
                        Err(e) => status = self.fail(&format!("{cmd}: {at}"), e),
                    }
                }
                status
            }
            "uptime" => {
                let ms = sys::clock() / 1_000_000;
                say!(out, "up {}.{:03} s", ms / 1000, ms % 1000);
                0
            }
            "date" => {
                let s = sys::wall_clock() / 1_000_000_000;
                say!(out, "{s} seconds since 1970-01-01 UTC");
                0
            }
            "ps" => {
                let programs = match posix::process::list() {
                    Ok(p) => p,
                    Err(e) => return Some(self.fail("ps", e)),
                };
                say!(out, "{:>5}  {:<12} {:>6}  COMMAND", "PID", "STATE", "STARTS");
                for p in programs {
                    let pid = p.pid.map_or("-".to_string(), |p| p.to_string());
                    say!(out, "{pid:>5}  {:<12} {:>6}  {}", p.state, p.starts, p.command);
                }
                0
            }
            "export" => {
                // `export NAME=VALUE...`: set for this shell and the
                // programs it starts.
                let mut status = 0;
                for a in &args {
                    let Some((name, value)) = a.split_once('=') else {
                        if posix::getenv(a).is_none() {
                            println!("export: {a}: not set (export NAME=VALUE)");
                            status = 1;
                        }
                        continue;
                    };
                    let valid = name
                        .chars()
                        .enumerate()
                        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
                    if !valid || posix::setenv(name, value).is_err() {
                        println!("export: {name:?} is not a variable name");
                        status = 2;
                    }
                }
                status
            }
            "unset" => {
                for a in &args {
                    posix::unsetenv(a);
                }
                0
            }
            "env" => {
                for (n, v) in posix::environ() {
                    say!(out, "{n}={v}");
                }
                0
            }
            "jobs" => {
                for (pid, line) in &self.jobs {
                    say!(out, "[{pid}] {line}");
                }
                0
            }
            "kill" => {
                if args.is_empty() {
                    println!("kill: kill PID... (ps or jobs lists them)");
                    return Some(2);
                }
                let mut status = 0;
                for a in &args {
                    match a.parse::<u64>().map_err(|_| Errno::EINVAL).and_then(|p| posix::process::kill(p).map(|()| p))
                    {
                        // One of the background programs: seen to its end
                        // at once, so that its pid is free when this says
                        // so.
                        Ok(pid) => {
                            if let Some(i) = self.jobs.iter().position(|(p, _)| *p == pid) {
                                if let Ok(Some(s)) = wait_program(pid, false) {
                                    let (_, line) = self.jobs.remove(i);
                                    println!("[{pid}] done, {}: {line}", ended_how(s));
                                }
                            }
                        }
                        Err(Errno::EINVAL) => {
                            println!("kill: {a}: not a pid");
                            status = 2;
                        }
                        Err(_) => {
                            println!("kill: {a}: no program of this shell has that pid");
                            status = 1;
                        }
                    }
                }
                status
            }
            "wait" => {
                // `wait [PID...]`: for those background programs (all
                // without), until they end or ^C stops the wait; `$?` is
                // the last one's.
                let pids: Vec<u64> = if args.is_empty() {
                    self.jobs.iter().map(|(p, _)| *p).collect()
                } else {
                    match args.iter().map(|a| a.parse::<u64>()).collect::<Result<Vec<_>, _>>() {
                        Ok(p) => p,
                        Err(_) => {
                            println!("wait: wait [PID...]");
                            return Some(2);
                        }
                    }
                };
                let mut status = 0;
                for pid in pids {
                    let Some(i) = self.jobs.iter().position(|(p, _)| *p == pid) else {
                        println!("wait: {pid}: not a background program of this shell");
                        status = 127;
                        continue;
                    };
                    match wait_program(pid, false) {
                        Ok(Some(s)) => {
                            let (_, line) = self.jobs.remove(i);
                            println!("[{pid}] done, {}: {line}", ended_how(s));
                            status = exit_code(line.split(' ').next().unwrap_or(""), s);
                        }
                        Ok(None) => {
                            println!("wait: interrupted");
                            return Some(130);
                        }
                        Err(e) => status = self.fail("wait", e),
                    }
                }
                status
            }
            "exit" => return None,
            "poweroff" => {
                // `poweroff N`: ExoV6's exit code (scripts/run-qemu -c
                // passes the last command's status on this way).
                let Some(code) = args.first().map_or(Some(0), |a| a.parse::<u8>().ok()) else {
                    println!("poweroff: the code is a number from 0 to 255");
                    return Some(2);
                };
                println!("exo-sh: powering off");
                // Detached first: each file server, idle, leaves its image
                // as unmounting would.
                if self.files {
                    let _ = posix::unmount();
                    self.files = false;
                }
                let e = Power::from_slot(slot::POWER).shutdown(u64::from(code));
                println!("poweroff: {}", e.name());
                1
            }
            other => {
                let line = words.join(" ");
                match self.procs.then(|| run_program(&line)) {
                    Some(Ok(Some(status))) => status,
                    Some(Err(e)) => {
                        println!("exo-sh: {other}: {e:?}");
                        126
                    }
                    Some(Ok(None)) | None => {
                        println!("exo-sh: {other}: command not found (help lists the commands)");
                        127
                    }
                }
            }
        })
    }
}

fn main(_: &str) -> i32 {
    let Some(console_ep) = exo_rt::endpoint("console") else {
        println!("exo-sh: given no endpoint named console");
        return 1;
    };
    let mut console = match Console::open(console_ep) {
        Ok(c) => c,
        Err(e) => {
            println!("exo-sh: no console input: {e}");
            return 1;
        }
    };
    let disks = posix::mount_disks();
    let files = !disks.is_empty();
    let procs = exo_rt::endpoint("procs").is_some_and(|ep| posix::process::attach(ep.slot(), console.note).is_ok());
    let at = match disks.len() {
        0 => "no file system".to_string(),
        1 => "the disk's files at /d0".to_string(),
        n => format!("{n} disks' files at {}", disks.join(", ")),
    };
    println!("exo-sh: the ExoV6 shell ({at}); `help` lists the commands, `exit` or ^D leaves, `poweroff` ends ExoV6");
    let cwd = disks.first().cloned().unwrap_or_else(|| "/".into());
    let _ = posix::chdir(&cwd);
    let mut sh = Shell { cwd, status: 0, files, procs, jobs: Vec::new() };
    loop {
        sh.reap();
        print!("exo:{}$ ", sh.cwd);
        match console.read_line() {
            Ok(Input::Line(line)) => match sh.run(&line) {
                Some(status) => sh.status = status,
                None => break,
            },
            Ok(Input::End) => break,
            Err(e) => {
                println!("exo-sh: reading the console failed: {e}");
                return 1;
            }
        }
    }
    println!("exo-sh: bye");
    if files {
        let _ = posix::unmount();
    }
    sh.status
}
