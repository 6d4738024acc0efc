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

/// Connects to the process service on `endpoint_slot`; `note` is told
/// when programs end ([`proto::ENDED`]).
pub fn attach(endpoint_slot: u64, note: Notification) -> Result<()> {
    let ep = Endpoint::from_slot(endpoint_slot);
    let (buffer, attached, _) = Attached::new(ep, 1, BUF_VA).map_err(|_| Errno::ENODEV)?;
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
