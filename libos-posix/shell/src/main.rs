//! exo-sh, the ExoV6 shell: reads lines from the console driver (console
//! protocol, its endpoint named `console`), works on files through the
//! POSIX library OS: the file server of each disk (endpoints `files` or
//! `files0`, `files1` ...) mounted at `/d0`, `/d1` ..., starting in `/d0`.
//!
//! Built-in commands, those that work on the shell itself: `help`,
//! `echo`, `pwd`, `cd`, `ps` (the system's programs and the shell's, from
//! the process service), `jobs`, `kill PID...`, `wait [PID...]`, `export
//! NAME=VALUE`, `unset NAME`, `env`, `exit [N]`, `poweroff [N]`, `true`
//! and `false`. `$NAME`
//! is an environment variable's value; programs the shell starts get the
//! environment (`exo_posix::getenv`). `$?` is the last command's status
//! (0 ok, 1 failed, 2 misused, 127 not found). ^C drops the line being
//! typed; ^D on an empty line leaves.
//!
//! Any other command runs the program of that name from the boot image
//! (`ls`, `cat`, `cp` ... are programs of `exo-utils`) through the
//! library OS's process calls (`exo_posix::process`, the root task's
//! process service `procs` underneath), with the shell's endpoints, in
//! its directory; the shell waits for it (^C stops it) and `$?` tells how
//! it ended (128 + the exception vector for a program the CPU killed).
//! `COMMAND &` starts a program without waiting: the shell prints
//! `[PID] COMMAND`, and before a later prompt `[PID] done, HOW: COMMAND`
//! once it has ended; `wait` waits for such programs (^C stops waiting,
//! not them).
//!
//! `A; B` runs one command after the other, `A && B` runs B if A
//! succeeded, `A || B` if it failed.
//!
//! `> FILE` and `>> FILE` send a command's output to a file (made anew,
//! or added to), `< FILE` gives a program a file as its input: a built-in
//! command's output is collected by the shell; a program gets the files
//! through its environment (`EXO_STDOUT`, `EXO_STDIN`), which the POSIX
//! library's entry point opens as its descriptors 1 and 0 (its messages
//! still go to the console). `A | B | C` runs the programs at once, each
//! one's output the next one's input through pipes of the process
//! service, named in the same variables (`pipe:ID`); a built-in command
//! that only prints may start a pipe, the shell writing what it printed.
//!
//! Endpoints, by name: `files` (or `files0` ...), `console`, `procs`; a
//! program the shell starts gets them all, under the same names.
//!
//! Arguments: none for the shell on the console; `-c COMMANDS` runs the
//! commands and ends with the last one's status; `FILE` runs the lines
//! of a file so. A shell started from the shell reads the console while
//! its parent waits (^C is its own to handle then: it drops the line
//! being typed, or stops its own program), and `exit` or ^D goes back.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use exo_posix::argv;
use exo_posix::process::Waited;
use exo_posix::{self as posix, Errno};
use exo_protocols::console::{self, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::ExitStatus;
use exo_rt::abi::{slot, FOREVER};
use exo_rt::caps::{Endpoint, Notification, Power};
use exo_rt::mem::Mapping;
use exo_rt::{eprintln, print, println};

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
    /// ^C typed at the prompt: the console dropped the line.
    Interrupted,
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

    /// A ^C typed while the shell itself was reading (or running a
    /// built-in command) was the shell's, as SIGINT then goes to the shell
    /// on Unix: it must not stop the next program. Pending news other than
    /// ^C is kept.
    fn forget_stale_interrupt(&self) {
        if let Ok(bits) = self.note.wait(0) {
            let keep = bits & !console::INTERRUPT;
            if keep != 0 {
                let _ = self.note.signal(keep);
            }
        }
    }

    /// The next line; sleeps on the notification until one is typed.
    fn read_line(&mut self) -> Result<Input, String> {
        loop {
            let m = self.attached.call([console::READ, 0, 0], 3, |_| true).map_err(|e| e.name().to_string())?;
            match Status::from_word(m.words[0]) {
                Some(Status::Ok) if m.words[2] & console::END_OF_INPUT != 0 => return Ok(Input::End),
                Some(Status::Ok) => {
                    self.forget_stale_interrupt();
                    let n = (m.words[1] as usize).min(self.buffer.len());
                    return Ok(Input::Line(String::from_utf8_lossy(&self.buffer.as_mut_slice()[..n]).into_owned()));
                }
                Some(Status::Empty) => {
                    let bits = self.note.wait(FOREVER).map_err(|e| e.name().to_string())?;
                    if bits & console::INTERRUPT != 0 {
                        return Ok(Input::Interrupted);
                    }
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
    // A shell started from the shell takes ^C itself, as a Unix shell
    // handles the SIGINT its terminal sends it: the wait goes on.
    let name = line.split(' ').next().unwrap_or("");
    let status = loop {
        if let Some(status) = wait_program(pid, name != "sh")? {
            break status;
        }
    };
    Ok(Some(exit_code(name, status)))
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

/// Waits for a pipeline's programs to end (those that started), writing
/// `feed`'s bytes into its pipe meanwhile as the first program reads
/// them; ^C on the console stops them all. How each ended.
fn wait_pipeline(
    programs: &[(Option<posix::process::Pid>, &str)],
    mut feed: Option<(u64, Vec<u8>)>,
) -> Vec<Option<ExitStatus>> {
    let note = Notification::from_slot(slot::SUPERVISOR);
    let mut ended: Vec<Option<ExitStatus>> = alloc::vec![None; programs.len()];
    let mut fed = 0;
    let mut lines_waiting = false;
    loop {
        // Write what the pipe takes now; let go of it when all is in, or
        // when nobody reads it any more.
        if let Some((id, bytes)) = &feed {
            let done = loop {
                if fed == bytes.len() {
                    break true;
                }
                match posix::process::pipe_try_write(*id, &bytes[fed..]) {
                    Ok(Some(n)) => fed += n,
                    Ok(None) => break false,
                    Err(_) => break true,
                }
            };
            if done {
                let _ = posix::process::pipe_close(*id, true);
                feed = None;
            }
        }
        for (i, (pid, _)) in programs.iter().enumerate() {
            if let (Some(pid), None) = (pid, ended[i]) {
                match posix::process::try_wait(*pid) {
                    Ok(Some(status)) => ended[i] = Some(status),
                    Ok(None) => {}
                    Err(_) => ended[i] = Some(ExitStatus::Exited(u32::MAX)),
                }
            }
        }
        let running = programs.iter().zip(&ended).any(|((pid, _), e)| pid.is_some() && e.is_none());
        if !running {
            break;
        }
        let Ok(bits) = note.wait(FOREVER) else { break };
        lines_waiting |= bits & console::LINE_READY != 0;
        if bits & console::INTERRUPT != 0 {
            for ((pid, _), e) in programs.iter().zip(&ended) {
                if let (Some(pid), None) = (pid, e) {
                    let _ = posix::process::kill(*pid);
                }
            }
        }
    }
    if let Some((id, _)) = feed {
        let _ = posix::process::pipe_close(id, true);
    }
    if lines_waiting {
        let _ = note.signal(console::LINE_READY);
    }
    ended
}

/// `$?` for a program that ended so (a message if the CPU killed it).
fn exit_code(name: &str, status: ExitStatus) -> i32 {
    match status {
        ExitStatus::Exited(c) => c.min(255) as i32,
        ExitStatus::Faulted(v) => {
            eprintln!("exo-sh: {name}: killed by CPU exception {v}");
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

/// The built-in commands: those that work on the shell itself, and
/// `echo` (`&` runs programs only).
const BUILTINS: &[&str] = &[
    "help", "echo", "pwd", "cd", "ps", "jobs", "kill", "wait", "export", "unset", "env", "exit", "poweroff", "true",
    "false",
];

/// Built-in commands that only print, and so may start a pipe: the shell
/// writes what they print into it.
const PRINTING_BUILTINS: &[&str] = &["help", "echo", "pwd", "ps", "jobs", "env"];

/// The shell's state.
struct Shell {
    cwd: String,
    status: i32,
    files: bool,
    procs: bool,
    /// Programs started with `&`, not yet seen to end: pid, command.
    jobs: Vec<(posix::process::Pid, String)>,
    /// Those seen to end (`[N] done`) and not yet waited for: pid, the
    /// status `wait N` gives (as POSIX shells keep it; the last few).
    ended: Vec<(posix::process::Pid, i32)>,
}

/// Ended background programs whose status the shell keeps for `wait`.
const KEPT_ENDED: usize = 32;

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
        // `2> FILE`, `2>&1`: a descriptor's number right before (as a word
        // of its own) would otherwise pass as an argument.
        let before = rest[..at].trim_end_matches(|c: char| c.is_ascii_digit());
        if before.len() < at && before.chars().next_back().is_none_or(char::is_whitespace) {
            return Err(
                "only standard output (> FILE, >> FILE) and input (< FILE) can be redirected; errors go to the console",
            );
        }
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

/// What joins a command to the next on a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Joint {
    /// `;`, or `&` (the command keeps its `&`).
    Then,
    /// `&&`.
    And,
    /// `||`.
    Or,
    /// The end of the line.
    End,
}

impl Joint {
    fn text(self) -> &'static str {
        match self {
            Joint::Then => ";",
            Joint::And => "&&",
            Joint::Or => "||",
            Joint::End => "the end",
        }
    }
}

/// The line with its quotes taken out: what `'...'` holds is taken as it
/// is, what `"..."` holds too except that `$NAME` is replaced (and `\"`,
/// `\\`, `\$` are the character), and `\` outside quotes makes the next
/// character plain. Spaces and the shell's characters so quoted travel
/// escaped (`exo_posix::argv`), so that nothing splits or acts on them,
/// and are turned back in the words built-in commands and programs get.
/// A quoted empty word (`""`) keeps its place (`argv::EMPTY`), and so
/// does a word with a `"$NAME"` that turns out empty.
fn quoted(line: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut chars = line.chars();
    let mut quote: Option<char> = None;
    let mut expands = false;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') | (None, '"') => quote = Some(c),
            (Some(q), c) if c == q => {
                quote = None;
                if core::mem::take(&mut expands) || out.chars().next_back().is_none_or(char::is_whitespace) {
                    out.push(argv::EMPTY);
                }
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(argv::escape(n));
                }
            }
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('"' | '\\' | '$')) => out.push(argv::escape(n)),
                Some(n) => {
                    out.push(argv::escape('\\'));
                    out.push(argv::escape(n));
                }
                None => return Err("a quote is not closed"),
            },
            (Some('"'), '$') => {
                out.push('$');
                expands = true;
            }
            (Some(_), c) => out.push(argv::escape(c)),
            (None, c) => out.push(c),
        }
    }
    match quote {
        Some(_) => Err("a quote is not closed"),
        None => Ok(out),
    }
}

/// The paths `pattern` matches (relative ones from `cwd`), as written
/// (relative stays relative), sorted: an unquoted `*` in a name matches
/// any run of characters, `?` any one (quoted ones, escaped by
/// [`quoted`], are plain); a name starting with `.` is matched only by a
/// pattern starting with one, as in sh. None if nothing matches (the
/// word then stays as it was written).
fn glob(cwd: &str, pattern: &str) -> Vec<String> {
    // Candidates as (written form, absolute path).
    let absolute = pattern.starts_with('/');
    let mut found: Vec<(String, String)> = alloc::vec![(
        if absolute { "/".into() } else { String::new() },
        if absolute { "/".into() } else { cwd.into() }
    )];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for (written, path) in &found {
            let join = |name: &str| {
                let w = if written.is_empty() || written.ends_with('/') {
                    alloc::format!("{written}{name}")
                } else {
                    alloc::format!("{written}/{name}")
                };
                (w, posix::join_path(path, name))
            };
            if !part.contains(['*', '?']) {
                next.push(join(&argv::unescape(part)));
                continue;
            }
            let Ok(entries) = posix::readdir(path) else { continue };
            let dots = argv::unescape(part).starts_with('.');
            let mut names: Vec<String> = entries
                .into_iter()
                .map(|e| e.name)
                .filter(|n| n != "." && n != ".." && (!n.starts_with('.') || dots))
                .filter(|n| argv::matches(part, n))
                .collect();
            names.sort();
            next.extend(names.iter().map(|n| join(n)));
        }
        found = next;
    }
    // Plain parts were taken on trust: keep what is there.
    found.into_iter().filter(|(_, path)| posix::stat(path).is_ok()).map(|(w, _)| w).collect()
}

/// A word as a program gets it ([`argv::words`]): its whitespace escaped,
/// and the empty word kept in its place.
fn program_word(w: &str) -> String {
    if w.is_empty() {
        argv::EMPTY.to_string()
    } else {
        argv::word(w)
    }
}

/// Splits a line at `;`, `&&`, `||` and a lone `&` (which stays with its
/// command: it runs in the background); a lone `|` is a pipe and stays.
fn split_list(line: &str) -> Vec<(String, Joint)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let joint = match (c, chars.peek()) {
            (';', _) => Joint::Then,
            ('&', Some('&')) => {
                chars.next();
                Joint::And
            }
            ('|', Some('|')) => {
                chars.next();
                Joint::Or
            }
            ('&', _) => {
                current.push('&');
                Joint::Then
            }
            _ => {
                current.push(c);
                continue;
            }
        };
        out.push((core::mem::take(&mut current), joint));
    }
    out.push((current, Joint::End));
    out
}

/// A program's standard input ([`posix::STDIN_VAR`]): the file it was
/// given (`< FILE`), else the shell's own if that is a file, else the
/// console for a program the shell waits for; a program in the background
/// has none (as a Unix shell keeps the terminal from background jobs).
fn stdin_of(input: Option<String>, shells: Option<String>, background: bool) -> Option<String> {
    let console = !background && !TYPED_SCRIPT.load(core::sync::atomic::Ordering::Relaxed);
    input.or(shells.filter(|s| s != posix::CONSOLE_STDIN)).or_else(|| console.then(|| posix::CONSOLE_STDIN.into()))
}

/// Started with `--typed` (`scripts/run-qemu -c`): the lines typed at the
/// console are a script, all typed at once, and its programs read no
/// console input (else a program such as `nc HOST PORT` would take the
/// script's next lines as its own input).
static TYPED_SCRIPT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Sets environment variable `name` to `value`, or unsets it.
fn set_var(name: &str, value: Option<&str>) {
    match value {
        Some(v) => {
            let _ = posix::setenv(name, v);
        }
        None => posix::unsetenv(name),
    }
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
    /// A shell in directory `cwd`, status 0, no jobs.
    fn new(cwd: String, files: bool, procs: bool) -> Shell {
        Shell { cwd, status: 0, files, procs, jobs: Vec::new(), ended: Vec::new() }
    }

    fn fail(&self, what: &str, e: Errno) -> i32 {
        eprintln!("{what}: {e:?}");
        1
    }

    /// Runs a line of commands joined by `;` (one after the other), `&&`
    /// (the next if this one succeeded), `||` (the next if it failed) or
    /// `&` (this one in the background, then the next); `$?` is the last
    /// one run's. `None`: leave.
    fn run_list(&mut self, line: &str) -> Option<()> {
        let line = match quoted(line) {
            Ok(l) => l,
            Err(why) => {
                eprintln!("exo-sh: {why}");
                self.status = 2;
                return Some(());
            }
        };
        let list = split_list(&line);
        // A joint without its commands is refused before anything runs,
        // as a Unix shell refuses the whole line.
        for (k, (command, joint)) in list.iter().enumerate() {
            if !command.trim().is_empty() {
                continue;
            }
            let why = match (joint, k.checked_sub(1).map(|j| list[j].1)) {
                (Joint::End, Some(before @ (Joint::And | Joint::Or))) => {
                    format!("a command is missing after {}", before.text())
                }
                (Joint::End, _) => continue,
                (joint, _) => format!("a command is missing before {}", joint.text()),
            };
            eprintln!("exo-sh: {why}");
            self.status = 2;
            return Some(());
        }
        let mut run_next = true;
        for (command, joint) in list {
            if run_next && !command.trim().is_empty() {
                self.status = self.run(&command)?;
            }
            run_next = match joint {
                Joint::And => self.status == 0,
                Joint::Or => self.status != 0,
                Joint::Then | Joint::End => true,
            };
        }
        Some(())
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
            return Some(self.pipeline(line, background));
        }
        let (line, redirects) = match redirections(line) {
            Ok(r) => r,
            Err(why) => {
                eprintln!("exo-sh: {why}");
                return Some(2);
            }
        };
        let out = redirects.out.map(|(target, append)| (self.target(&target), append));
        let input = redirects.input.map(|target| self.target(&target));
        let builtin = line.split_whitespace().next().is_some_and(|cmd| BUILTINS.contains(&cmd));
        if builtin && background {
            eprintln!("exo-sh: & runs programs only, and {} is a built-in command", line.trim());
            return Some(2);
        }
        if builtin {
            if input.is_some() {
                eprintln!("exo-sh: < FILE is for programs (built-in commands take files as arguments)");
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
        if let Err(status) = self.prepare_files(&out, &input) {
            return Some(status);
        }
        let saved = [posix::getenv(posix::STDOUT_VAR), posix::getenv(posix::STDIN_VAR)];
        // Not redirected: the shell's own, if it was given any.
        set_var(posix::STDOUT_VAR, out.as_ref().map(|(t, _)| t.as_str()).or(saved[0].as_deref()));
        set_var(posix::STDIN_VAR, stdin_of(input, saved[1].clone(), background).as_deref());
        let status = if background { Some(self.start_job(&line)) } else { self.command(&line, &mut Out(None)) };
        set_var(posix::STDOUT_VAR, saved[0].as_deref());
        set_var(posix::STDIN_VAR, saved[1].as_deref());
        status
    }

    /// A redirection's file as written (`> FILE`): expanded, and absolute
    /// from the shell's directory.
    fn target(&self, written: &str) -> String {
        posix::join_path(&self.cwd, &argv::unescape(&self.expand(written)))
    }

    /// For programs: makes (or cuts) the output file and checks the input
    /// file, so that those errors are the shell's (the program opens them
    /// through its environment, exo_posix::start). The status if one
    /// fails.
    fn prepare_files(&self, out: &Option<(String, bool)>, input: &Option<String>) -> Result<(), i32> {
        if let Some((target, append)) = out {
            write_file(target, b"", *append).map_err(|e| self.fail(&format!("exo-sh: {target}"), e))?;
        }
        if let Some(target) = input {
            posix::stat(target)
                .and_then(|st| if st.is_dir() { Err(Errno::EISDIR) } else { Ok(()) })
                .map_err(|e| self.fail(&format!("exo-sh: {target}"), e))?;
        }
        Ok(())
    }

    /// The words `word` stands for: expanded ([`Shell::expand`]) and
    /// unescaped; none if it came to nothing unquoted (`$UNSET`), as in
    /// POSIX shells, while a quoted empty word (`""`, `"$UNSET"`) is the
    /// empty word; with an unquoted `*` or `?`, the paths it matches, in
    /// order (itself if none: [`glob`]).
    fn expand_words(&self, word: &str) -> Vec<String> {
        let expanded = self.expand(word);
        // (The `?` of `$?` is no wildcard.)
        if word.replace("$?", "").contains(['*', '?']) {
            let found = glob(&self.cwd, &expanded);
            if !found.is_empty() {
                return found;
            }
        }
        let w = argv::unescape(&expanded);
        if w.is_empty() && !expanded.contains(argv::EMPTY) {
            return Vec::new();
        }
        alloc::vec![w]
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
        let words: Vec<String> =
            line.split_whitespace().flat_map(|w| self.expand_words(w)).map(|w| program_word(&w)).collect();
        let Some(cmd) = words.first() else {
            eprintln!("exo-sh: & wants a program before it");
            return 2;
        };
        if !self.procs {
            eprintln!("exo-sh: {cmd}: no process service to start programs with");
            return 127;
        }
        let line = words.join(" ");
        match posix::process::spawn(&line) {
            Ok(pid) => {
                let shown = argv::unescape(&line);
                println!("[{pid}] {shown}");
                self.jobs.push((pid, shown));
                0
            }
            Err(Errno::ENOENT) => {
                eprintln!("exo-sh: {cmd}: command not found (help lists the commands)");
                127
            }
            Err(e) => self.fail(&format!("exo-sh: {cmd}"), e),
        }
    }

    /// `A | B | C`: the programs run at once, each one's output the next
    /// one's input through a pipe of the process service; `< FILE` may go
    /// with the first, `> FILE` with the last. A built-in command that
    /// only prints may come first: the shell writes what it printed into
    /// the pipe. The status is the last program's; ^C stops them all.
    fn pipeline(&mut self, line: &str, background: bool) -> i32 {
        let stages: Vec<&str> = line.split('|').collect();
        let last = stages.len() - 1;
        // As typed (a built-in expands its own words), and expanded.
        let (mut typed, mut commands) = (Vec::new(), Vec::new());
        let (mut input, mut out) = (None, None);
        for (i, stage) in stages.iter().enumerate() {
            let (command, r) = match redirections(stage) {
                Ok(r) => r,
                Err(why) => {
                    eprintln!("exo-sh: {why}");
                    return 2;
                }
            };
            let words: Vec<String> =
                command.split_whitespace().flat_map(|w| self.expand_words(w)).map(|w| program_word(&w)).collect();
            if words.is_empty() {
                eprintln!("exo-sh: a | wants a command on each side");
                return 2;
            }
            if r.input.is_some() && i > 0 {
                eprintln!("exo-sh: < FILE goes with the first command of a pipe");
                return 2;
            }
            if r.out.is_some() && i < last {
                eprintln!("exo-sh: > FILE goes with the last command of a pipe");
                return 2;
            }
            input = input.or(r.input.map(|t| self.target(&t)));
            out = out.or(r.out.map(|(t, append)| (self.target(&t), append)));
            let name = words[0].as_str();
            if BUILTINS.contains(&name) {
                let why = if i > 0 {
                    "does not read its input, and cannot follow a |"
                } else if !PRINTING_BUILTINS.contains(&name) {
                    "works on the shell itself, and cannot be in a pipe"
                } else if background {
                    "cannot start a pipe run with & (the shell feeds it)"
                } else if input.is_some() {
                    "takes no < FILE"
                } else {
                    ""
                };
                if !why.is_empty() {
                    eprintln!("exo-sh: {name} is built into the shell and {why}");
                    return 2;
                }
            }
            typed.push(command);
            commands.push(words.join(" "));
        }
        if !self.procs {
            eprintln!("exo-sh: no process service to start programs with");
            return 127;
        }
        if let Err(status) = self.prepare_files(&out, &input) {
            return status;
        }
        // What a printing built-in at the start prints, for the shell to
        // write into the first pipe.
        let first = commands[0].split(' ').next().unwrap_or("");
        let fed = BUILTINS.contains(&first).then(|| {
            let mut text = Out(Some(String::new()));
            let _ = self.command(&typed[0], &mut text);
            text.0.unwrap_or_default()
        });
        let mut pipes = Vec::new();
        for _ in 0..last {
            match posix::process::pipe() {
                Ok(id) => pipes.push(id),
                Err(e) => {
                    for id in pipes {
                        let _ = posix::process::pipe_close(id, false);
                        let _ = posix::process::pipe_close(id, true);
                    }
                    return self.fail("exo-sh: a pipe", e);
                }
            }
        }
        // Each program, its input and output named in its environment.
        let saved = [posix::getenv(posix::STDOUT_VAR), posix::getenv(posix::STDIN_VAR)];
        let pipe = |i: usize| Some(format!("{}{}", exo_protocols::process::PIPE_PREFIX, pipes[i]));
        let mut started: Vec<(Option<posix::process::Pid>, &str)> = Vec::new();
        for (i, command) in commands.iter().enumerate() {
            if i == 0 && fed.is_some() {
                continue;
            }
            let stdin = if i == 0 { stdin_of(input.clone(), saved[1].clone(), background) } else { pipe(i - 1) };
            let stdout = if i == last { out.as_ref().map(|(t, _)| t.clone()).or(saved[0].clone()) } else { pipe(i) };
            set_var(posix::STDIN_VAR, stdin.as_deref());
            set_var(posix::STDOUT_VAR, stdout.as_deref());
            let name = command.split(' ').next().unwrap_or("");
            let pid = match posix::process::spawn(command) {
                Ok(pid) => Some(pid),
                Err(Errno::ENOENT) => {
                    eprintln!("exo-sh: {name}: command not found (help lists the commands)");
                    None
                }
                Err(e) => {
                    self.fail(&format!("exo-sh: {name}"), e);
                    None
                }
            };
            started.push((pid, command));
        }
        set_var(posix::STDOUT_VAR, saved[0].as_deref());
        set_var(posix::STDIN_VAR, saved[1].as_deref());
        // The programs hold their ends now; the shell lets go of its own
        // (but for the one it feeds), so that each sees the end of its
        // input when the one before it ends.
        for (i, id) in pipes.iter().enumerate() {
            let _ = posix::process::pipe_close(*id, false);
            if !(i == 0 && fed.is_some()) {
                let _ = posix::process::pipe_close(*id, true);
            }
        }
        if background {
            for (pid, command) in started {
                if let Some(pid) = pid {
                    println!("[{pid}] {command}");
                    self.jobs.push((pid, command.to_string()));
                }
            }
            return 0;
        }
        let feed = fed.map(|text| (pipes[0], text.into_bytes()));
        let statuses = wait_pipeline(&started, feed);
        // The last program's status, as POSIX shells give.
        match (started.last(), statuses.last()) {
            (Some((Some(_), command)), Some(Some(status))) => {
                exit_code(command.split(' ').next().unwrap_or(""), *status)
            }
            _ => 127,
        }
    }

    /// Says which background programs have ended, and forgets them.
    fn reap(&mut self) {
        let ended = &mut self.ended;
        self.jobs.retain(|(pid, line)| match posix::process::try_wait(*pid) {
            Ok(Some(status)) => {
                println!("[{pid}] done, {}: {line}", ended_how(status));
                if ended.len() == KEPT_ENDED {
                    ended.remove(0);
                }
                ended.push((*pid, exit_code(line.split(' ').next().unwrap_or(""), status)));
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// Runs one command (its output to `out`); its status.
    fn command(&mut self, line: &str, out: &mut Out) -> Option<i32> {
        let words: Vec<String> = line.split_whitespace().flat_map(|w| self.expand_words(w)).collect();
        let Some(cmd) = words.first() else { return Some(self.status) };
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let path = |p: &str| posix::join_path(&self.cwd, p);
        Some(match cmd.as_str() {
            "help" => {
                say!(out, "built into the shell: help echo pwd cd ps jobs kill wait export unset env exit [N] poweroff true false");
                say!(out, "sh -c COMMANDS or sh FILE runs commands in a shell of its own; sh alone reads the console until exit");
                say!(
                    out,
                    "programs: ls [-l] [-R] cat wc hexdump stat mkdir [-p] rm [-r] [-f] cp mv mount (disks) uptime date sha256sum sleep printenv nc echod"
                );
                say!(
                    out,
                    "any other command runs that program; COMMAND & runs it without waiting ([pid] shown, ps lists it)"
                );
                say!(out, "A; B runs one after the other, A && B runs B if A succeeded, A || B if it failed;");
                say!(out, "A | B | C runs programs with each one's output the next one's input (a printing built-in may start it);");
                say!(out, "$? is the last status; > FILE or >> FILE sends a command's output there, < FILE gives a program its input;");
                say!(
                    out,
                    "'...' takes anything as it is, \"...\" too but replaces $NAME, \\ makes the next character plain;"
                );
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
                // (Followed as a directory: a symlink loop says ELOOP.)
                match posix::stat_follow(&alloc::format!("{}/", to.trim_end_matches('/'))) {
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
                    self.ended.clear();
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
                        // Ended already: its status, once.
                        if let Some(k) = self.ended.iter().position(|(p, _)| *p == pid) {
                            status = self.ended.remove(k).1;
                            continue;
                        }
                        eprintln!("wait: {pid}: not a background program of this shell");
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
            "exit" => {
                // `exit N` leaves with status N, `exit` with the last one.
                match args.first().map(|a| a.parse::<u8>()) {
                    None => {}
                    Some(Ok(code)) => self.status = i32::from(code),
                    Some(Err(_)) => {
                        println!("exit: the status is a number from 0 to 255");
                        return Some(2);
                    }
                }
                return None;
            }
            "true" => 0,
            "false" => 1,
            "poweroff" => {
                // `poweroff N`: ExoV6's exit code (scripts/run-qemu -c
                // passes the last command's status on this way).
                let Some(code) = args.first().map_or(Some(0), |a| a.parse::<u8>().ok()) else {
                    println!("poweroff: the code is a number from 0 to 255");
                    return Some(2);
                };
                if exo_rt::caps::info(slot::POWER).is_err() {
                    println!("poweroff: this shell holds no power capability (a shell started from the shell?); exit leaves it");
                    return Some(1);
                }
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
                let line: Vec<String> = words.iter().map(|w| program_word(w)).collect();
                let line = line.join(" ");
                match self.procs.then(|| run_program(&line)) {
                    Some(Ok(Some(status))) => status,
                    Some(Err(e)) => {
                        eprintln!("exo-sh: {other}: {e:?}");
                        126
                    }
                    Some(Ok(None)) | None => {
                        eprintln!("exo-sh: {other}: command not found (help lists the commands)");
                        127
                    }
                }
            }
        })
    }
}

/// What the shell was asked to do (its arguments).
enum Mode {
    /// Read the console.
    Interactive,
    /// Run these commands (`-c`), or the lines of this file, then end.
    Commands(String),
    Script(String),
}

fn mode(args: &str) -> Result<Mode, String> {
    let words = argv::words(args);
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Ok(Mode::Interactive),
        ["--typed"] => {
            TYPED_SCRIPT.store(true, core::sync::atomic::Ordering::Relaxed);
            Ok(Mode::Interactive)
        }
        ["-c", commands] => Ok(Mode::Commands((*commands).into())),
        [file] if !file.starts_with('-') => Ok(Mode::Script((*file).into())),
        _ => Err("usage: sh [-c COMMANDS | FILE | --typed]".into()),
    }
}

/// The text of file `path`.
fn read_file(path: &str) -> Result<String, Errno> {
    let fd = posix::open(path, posix::flags::O_RDONLY)?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let result = loop {
        match posix::read(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let _ = posix::close(fd);
    result?;
    String::from_utf8(text).map_err(|_| Errno::EINVAL)
}

fn main(args: &str) -> i32 {
    let mode = match mode(args) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("exo-sh: {why}");
            return 2;
        }
    };
    let Some(console_ep) = exo_rt::endpoint("console") else {
        eprintln!("exo-sh: given no endpoint named console");
        return 1;
    };
    let mut console = match Console::open(console_ep) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("exo-sh: no console input: {e}");
            return 1;
        }
    };
    let disks = posix::mount_disks();
    let files = !disks.is_empty();
    let procs = exo_rt::endpoint("procs").is_some_and(|ep| posix::process::attach(ep.slot(), console.note).is_ok());
    // Started with its input or output a file or a pipe (`X | sh -c
    // ...`): what it prints goes there, and its programs get them too.
    if let Err((what, e)) = posix::start() {
        eprintln!("exo-sh: {what}: {e:?}");
        return 1;
    }
    // Started by another shell: its directory and variables came along.
    let nested = posix::getenv(exo_protocols::process::PID_VAR).is_some();
    if !matches!(mode, Mode::Interactive) {
        let mut sh = Shell::new(posix::getcwd(), files, procs);
        let lines = match mode {
            Mode::Commands(c) => c,
            Mode::Script(f) => match read_file(&posix::join_path(&sh.cwd, &f)) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("exo-sh: {f}: {e:?}");
                    return 127;
                }
            },
            Mode::Interactive => unreachable!("matched above"),
        };
        for line in lines.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if sh.run_list(line).is_none() {
                break;
            }
        }
        if files {
            let _ = posix::unmount();
        }
        return sh.status;
    }
    if nested {
        println!("exo-sh: a shell started by another: `exit` or ^D goes back to it");
        return interact(&mut console, Shell::new(posix::getcwd(), files, procs));
    }
    let at = match disks.len() {
        0 => "no file system".to_string(),
        1 => "the disk's files at /d0".to_string(),
        n => format!("{n} disks' files at {}", disks.join(", ")),
    };
    println!("exo-sh: the ExoV6 shell ({at}); `help` lists the commands, `exit` or ^D leaves, `poweroff` ends ExoV6");
    let cwd = disks.first().cloned().unwrap_or_else(|| "/".into());
    let _ = posix::chdir(&cwd);
    interact(&mut console, Shell::new(cwd, files, procs))
}

/// Reads and runs the console's lines until `exit` or ^D: the last
/// status.
fn interact(console: &mut Console, mut sh: Shell) -> i32 {
    loop {
        sh.reap();
        // A ^C typed between commands had nothing to stop (the console
        // dropped the keys and showed it).
        console.forget_stale_interrupt();
        print!("exo:{}$ ", sh.cwd);
        match console.read_line() {
            Ok(Input::Line(line)) => {
                if sh.run_list(&line).is_none() {
                    break;
                }
            }
            Ok(Input::End) => break,
            // A fresh prompt, as a Unix shell gives.
            Ok(Input::Interrupted) => {}
            Err(e) => {
                eprintln!("exo-sh: reading the console failed: {e}");
                return 1;
            }
        }
    }
    println!("exo-sh: bye");
    if sh.files {
        let _ = posix::unmount();
    }
    sh.status
}
