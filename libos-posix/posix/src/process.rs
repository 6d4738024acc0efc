//! Processes: programs of the boot image started, waited for and stopped
//! through the root task's process service (`exo_protocols::process`),
//! the library OS's `posix_spawn`, `waitpid` and `kill`.
//!
//! `attach` connects to the service (the endpoint a manifest entry lists
//! as `procs`) and subscribes a notification of the caller's, which the
//! service signals when one of its programs ends. The same notification
//! may carry other news (the console's "line ready" and "^C"): `wait`
//! hands such bits back to the caller instead of swallowing them, as a
//! signal interrupts `waitpid` with `EINTR`.
//!
//! Pipes are the service's too (the root task keeps their bytes): the
//! shell makes one with [`pipe`] and names its ends in the environment of
//! the programs it starts (`EXO_STDOUT=pipe:ID`, `EXO_STDIN=pipe:ID`),
//! which the library's entry point opens as descriptors 1 and 0
//! ([`crate::start`]). [`pipe_try_read`] and [`pipe_try_write`] never
//! wait; [`pipe_read`] and [`pipe_write`] wait on the notification for
//! [`proto::PIPE_READY`].

use super::{Errno, Result};
use exo_protocols::process::{self as proto, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::{ExitStatus, FOREVER};
use exo_rt::caps::{Endpoint, Notification};
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;

/// A started program's number (the service's).
pub type Pid = u64;

/// Where the buffer shared with the process service is mapped.
const BUF_VA: u64 = 0x0000_4100_0000_0000;
/// Its pages: the most bytes one pipe read or write moves.
const BUF_PAGES: u64 = 4;

struct Service {
    buffer: Mapping,
    attached: Attached,
    note: Notification,
}

static SERVICE: SpinLock<Option<Service>> = SpinLock::new(None);

/// What [`wait`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The program ended so.
    Ended(ExitStatus),
    /// Other bits arrived on the notification first (the program still
    /// runs); they are the caller's.
    Interrupted(u64),
}

/// Whether the program is connected to the process service.
pub fn is_attached() -> bool {
    SERVICE.with(|s| s.is_some())
}

/// Connects to the process service on `endpoint_slot`; `note` is told
/// when programs end ([`proto::ENDED`]). Connected already (by
/// [`crate::start`], for a pipe), it stays so, with the first
/// notification.
pub fn attach(endpoint_slot: u64, note: Notification) -> Result<()> {
    if is_attached() {
        return Ok(());
    }
    let ep = Endpoint::from_slot(endpoint_slot);
    let (buffer, attached, _) = Attached::new(ep, BUF_PAGES, BUF_VA).map_err(|_| Errno::ENODEV)?;
    let m = ep.call([proto::SUBSCRIBE, 0, 0], Some(note.slot()), FOREVER).map_err(|_| Errno::ENODEV)?;
    if m.words[0] != Status::Ok as u64 {
        return Err(Errno::ENODEV);
    }
    SERVICE.with(|s| *s = Some(Service { buffer, attached, note }));
    Ok(())
}

fn call(words: [u64; 3]) -> Result<(Status, u64)> {
    SERVICE.with(|s| {
        let s = s.as_ref().ok_or(Errno::ENOSYS)?;
        let m = s.attached.call(words, 0, |_| false).map_err(|_| Errno::EIO)?;
        Ok((Status::from_word(m.words[0]).unwrap_or(Status::BadRequest), m.words[1]))
    })
}

/// Starts `command` (`PROGRAM ARGS...`, a program of the boot image):
/// its pid. `ENOENT` if there is no such program, `EAGAIN`-like `ENOMEM`
/// when no more may run.
pub fn spawn(command: &str) -> Result<Pid> {
    let n = command.len();
    if n == 0 || n > proto::MAX_COMMAND {
        return Err(Errno::EINVAL);
    }
    // It starts in our working directory, with our environment.
    let dir = crate::getcwd();
    let d = dir.len();
    if d > proto::MAX_DIR {
        return Err(Errno::ENAMETOOLONG);
    }
    let env = crate::environ_text();
    let e = env.len();
    if e > proto::MAX_ENV {
        return Err(Errno::E2BIG);
    }
    SERVICE.with(|s| {
        let s = s.as_mut().ok_or(Errno::ENOSYS)?;
        if n + d + e > s.buffer.len() {
            return Err(Errno::EINVAL);
        }
        let b = s.buffer.as_mut_slice();
        b[..n].copy_from_slice(command.as_bytes());
        b[n..n + d].copy_from_slice(dir.as_bytes());
        b[n + d..n + d + e].copy_from_slice(env.as_bytes());
        Ok(())
    })?;
    match call([proto::SPAWN, n as u64, d as u64 | (e as u64) << 32])? {
        (Status::Ok, pid) => Ok(pid),
        (Status::NoSuchProgram, _) => Err(Errno::ENOENT),
        (Status::TooLarge, _) => Err(Errno::ENOMEM),
        _ => Err(Errno::EINVAL),
    }
}

/// `posix_spawn`: starts program `program` of the boot image with
/// arguments `args` (words without spaces), in this program's directory
/// and with its environment; its pid. As [`spawn`].
pub fn posix_spawn(program: &str, args: &[&str]) -> Result<Pid> {
    if program.is_empty()
        || program.contains(char::is_whitespace)
        || args.iter().any(|a| a.contains(char::is_whitespace))
    {
        return Err(Errno::EINVAL);
    }
    let mut line = alloc::string::String::from(program);
    for a in args.iter().filter(|a| !a.is_empty()) {
        line.push(' ');
        line.push_str(a);
    }
    spawn(&line)
}

/// `waitpid`: how program `pid` ended, waiting for it unless `nohang`
/// (`WNOHANG`: `None` while it runs). Bits other than the service's that
/// arrive on the notification meanwhile give `EINTR` (they are signalled
/// again for whoever waits for them).
pub fn waitpid(pid: Pid, nohang: bool) -> Result<Option<ExitStatus>> {
    if nohang {
        return try_wait(pid);
    }
    match wait(pid)? {
        Waited::Ended(status) => Ok(Some(status)),
        Waited::Interrupted(bits) => {
            if let Some(note) = SERVICE.with(|s| s.as_ref().map(|s| s.note)) {
                let _ = note.signal(bits);
            }
            Err(Errno::EINTR)
        }
    }
}

/// `getpid`: this program's pid, as the process service knows it (the
/// one `ps` shows and `kill` takes); 0 for a program the boot manifest
/// started, which has none.
pub fn getpid() -> Pid {
    crate::getenv(proto::PID_VAR).and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// How `pid` ended, if it has (`waitpid` with `WNOHANG`); the pid is
/// then forgotten.
pub fn try_wait(pid: Pid) -> Result<Option<ExitStatus>> {
    match call([proto::WAIT, pid, 0])? {
        (Status::Ok, status) => Ok(Some(ExitStatus::decode(status))),
        (Status::Empty, _) => Ok(None),
        _ => Err(Errno::ECHILD),
    }
}

/// Waits until `pid` ends, or until other bits arrive on the
/// notification (handed back: [`Waited::Interrupted`]).
pub fn wait(pid: Pid) -> Result<Waited> {
    let note = SERVICE.with(|s| s.as_ref().map(|s| s.note)).ok_or(Errno::ENOSYS)?;
    loop {
        if let Some(status) = try_wait(pid)? {
            return Ok(Waited::Ended(status));
        }
        let bits = note.wait(FOREVER).map_err(|_| Errno::EIO)?;
        if bits & !proto::ENDED != 0 {
            return Ok(Waited::Interrupted(bits & !proto::ENDED));
        }
    }
}

/// One program the root task runs, as [`list`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// The pid, for the caller's own programs (`None`: the system's).
    pub pid: Option<Pid>,
    /// `running`, `restarting`, `waiting`, `exited:N` or `faulted:N`.
    pub state: alloc::string::String,
    /// Instances started.
    pub starts: u64,
    /// The program and its arguments.
    pub command: alloc::string::String,
}

/// The programs the root task runs (`ps`): the system's, then the
/// caller's own.
pub fn list() -> Result<alloc::vec::Vec<ProcInfo>> {
    let (bytes, _) = match call([proto::LIST, 0, 0])? {
        (Status::Ok, bytes) => (bytes as usize, ()),
        _ => return Err(Errno::EIO),
    };
    let text = SERVICE.with(|s| {
        let s = s.as_ref().ok_or(Errno::ENOSYS)?;
        let b = s.buffer.as_slice();
        Ok(alloc::string::String::from_utf8_lossy(&b[..bytes.min(b.len())]).into_owned())
    })?;
    Ok(text.lines().filter_map(parse_line).collect())
}

/// One line of the service's `LIST` text; `None` if malformed.
fn parse_line(line: &str) -> Option<ProcInfo> {
    let mut f = line.splitn(4, ' ');
    let pid = match f.next()? {
        "-" => None,
        p => Some(p.parse().ok()?),
    };
    let state = f.next()?.into();
    let starts = f.next()?.parse().ok()?;
    let command = f.next()?.into();
    Some(ProcInfo { pid, state, starts, command })
}

/// Stops `pid` (it ends with exit code [`proto::KILLED_EXIT`]).
pub fn kill(pid: Pid) -> Result<()> {
    match call([proto::KILL, pid, 0])? {
        (Status::Ok, _) => Ok(()),
        _ => Err(Errno::ESRCH),
    }
}

/// Makes a pipe, both ends held by the caller: its id.
pub fn pipe() -> Result<u64> {
    match call([proto::PIPE, 0, 0])? {
        (Status::Ok, id) => Ok(id),
        (Status::TooMany, _) => Err(Errno::EMFILE),
        _ => Err(Errno::EIO),
    }
}

/// Reads what pipe `id` holds, up to `buf.len()` bytes, without waiting:
/// `Some(0)` at its end (no writer left), `None` if nothing is there yet.
pub fn pipe_try_read(id: u64, buf: &mut [u8]) -> Result<Option<usize>> {
    if buf.is_empty() {
        return Ok(Some(0));
    }
    SERVICE.with(|s| {
        let s = s.as_mut().ok_or(Errno::ENOSYS)?;
        let want = buf.len().min(s.buffer.len()) as u64;
        let m = s.attached.call([proto::PIPE_READ, id, want], 0, |_| false).map_err(|_| Errno::EIO)?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) => {
                let n = (m.words[1] as usize).min(want as usize);
                buf[..n].copy_from_slice(&s.buffer.as_slice()[..n]);
                Ok(Some(n))
            }
            Some(Status::Empty) => Ok(None),
            _ => Err(Errno::EBADF),
        }
    })
}

/// Writes what pipe `id` has room for of `data` without waiting: how many
/// bytes (`None`: no room yet); `EPIPE` if no reader is left.
pub fn pipe_try_write(id: u64, data: &[u8]) -> Result<Option<usize>> {
    SERVICE.with(|s| {
        let s = s.as_mut().ok_or(Errno::ENOSYS)?;
        let n = data.len().min(s.buffer.len());
        s.buffer.as_mut_slice()[..n].copy_from_slice(&data[..n]);
        let m = s.attached.call([proto::PIPE_WRITE, id, n as u64], 0, |_| false).map_err(|_| Errno::EIO)?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) => Ok(Some((m.words[1] as usize).min(n))),
            Some(Status::Empty) => Ok(None),
            Some(Status::NotConnected) => Err(Errno::EPIPE),
            _ => Err(Errno::EBADF),
        }
    })
}

/// Runs `attempt` until it gives an answer, waiting for
/// [`proto::PIPE_READY`] between tries; other bits that arrive meanwhile
/// are signalled again afterwards, for whoever waits for them.
fn waiting<T>(mut attempt: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let note = SERVICE.with(|s| s.as_ref().map(|s| s.note)).ok_or(Errno::ENOSYS)?;
    let mut others = 0;
    let r = loop {
        match attempt() {
            Ok(Some(v)) => break Ok(v),
            Ok(None) => match note.wait(FOREVER) {
                Ok(bits) => others |= bits & !proto::PIPE_READY,
                Err(_) => break Err(Errno::EIO),
            },
            Err(e) => break Err(e),
        }
    };
    if others != 0 {
        let _ = note.signal(others);
    }
    r
}

/// Reads from pipe `id`, waiting until it holds something or has ended:
/// how many bytes (0 at its end).
pub fn pipe_read(id: u64, buf: &mut [u8]) -> Result<usize> {
    waiting(|| pipe_try_read(id, buf))
}

/// Writes to pipe `id`, waiting until it has room: how many bytes were
/// taken (at least 1 for a non-empty `data`); `EPIPE` if no reader is
/// left.
pub fn pipe_write(id: u64, data: &[u8]) -> Result<usize> {
    if data.is_empty() {
        return Ok(0);
    }
    waiting(|| pipe_try_write(id, data))
}

/// Lets go of the caller's hold of pipe `id`'s read end (`write` false)
/// or write end.
pub fn pipe_close(id: u64, write: bool) -> Result<()> {
    let end = if write { proto::WRITE_END } else { proto::READ_END };
    match call([proto::PIPE_CLOSE, id, end])? {
        (Status::Ok, _) => Ok(()),
        _ => Err(Errno::EBADF),
    }
}
