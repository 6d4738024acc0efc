//! The process service: the root task starts programs of the boot image
//! for a client (the shell), reports how they ended and stops them, in a
//! [`session`](crate::session). A program lists the endpoint `procs` in
//! its manifest entry to reach it.
//!
//! `SPAWN` takes the command line (`BINARY ARGS...`) from the buffer, and
//! after it the working directory the program starts in (empty: `/`): the
//! program runs with the console, a budget of its own, and the caller's
//! endpoints (it may delegate what it holds, nothing more). The answer is
//! `[OK, pid, 0]`, or `[NO_SUCH_PROGRAM, 0, 0]`. The client subscribes a
//! notification (`SUBSCRIBE`), signalled with [`ENDED`] when one of its
//! programs ends; `WAIT pid` then answers `[OK, status, 0]` (an
//! `ExitStatus` encoded, and the pid is forgotten) or `[EMPTY, 0, 0]`
//! while it runs; `KILL pid` ends it (exit code [`KILLED_EXIT`]). A
//! program started so may be a client too (a shell started from the
//! shell): its programs get what the manifest program at the root of its
//! line was given, and are stopped when it ends. `SPAWN` answers
//! `[TOO_LARGE, 0, 0]` when the caller runs [`MAX_CHILDREN`] already,
//! or the service as many as it keeps, or the memory for one more is
//! not there.
//!
//! `LIST` writes into the buffer one line of text per program the root
//! task runs: the manifest's, then the caller's own. Each line is
//! `PID STATE STARTS COMMAND`: PID is `-` for the manifest's programs (no
//! client may stop those) and the pid for the caller's; STATE is
//! `running`, `restarting` (between two instances), `waiting` (not started
//! yet), `exited:N` or `faulted:N` (CPU exception N); STARTS is how many
//! instances were started; COMMAND the program and its arguments. The
//! answer is `[OK, bytes, lines]`; lines that do not fit are left out.
//!
//! Pipes: `PIPE` makes one, a byte queue of [`PIPE_BYTES`] the root task
//! keeps, and the caller holds both its ends. A program started with
//! [`STDIN_VAR`] or [`STDOUT_VAR`] set to `pipe:ID` holds that end as
//! well (the caller must hold it), until it closes it (`PIPE_CLOSE`) or
//! ends: the service lets go of an ended program's ends itself, as a
//! kernel closes a dead process's descriptors. Reading an empty pipe
//! whose write ends are all gone is the end of file; writing to one
//! whose read ends are all gone is refused (`EPIPE`). Reads and writes
//! never block the service: `[EMPTY, 0, 0]` means "not now", and
//! [`PIPE_READY`] is signalled on every holder's subscribed notification
//! when the other side has read, written or let go.

pub use crate::session::{Status, ATTACH, DETACH};

/// Subscribe the passed notification. Answer: `[OK, 0, 0]`.
pub const SUBSCRIBE: u64 = crate::session::FIRST_OP;
/// `[SPAWN, len, dir_len | env_len << 32]`: start the `len`-byte command
/// line at the buffer's start, in the `dir_len`-byte directory right after
/// it, with the `env_len`-byte environment after that (`NAME=VALUE`
/// lines, each ended by a newline).
pub const SPAWN: u64 = SUBSCRIBE + 1;
/// `[WAIT, pid, 0]`: how program `pid` ended, if it has.
pub const WAIT: u64 = SUBSCRIBE + 2;
/// `[KILL, pid, 0]`: end program `pid`.
pub const KILL: u64 = SUBSCRIBE + 3;
/// `[LIST, 0, 0]`: the programs, as lines of text in the buffer.
pub const LIST: u64 = SUBSCRIBE + 4;

/// `[PIPE, 0, 0]`: make a pipe; `[OK, id, 0]`, or `[TOO_MANY, 0, 0]`.
pub const PIPE: u64 = SUBSCRIBE + 5;
/// `[PIPE_READ, id, max]`: up to `max` bytes (and the buffer's size) into
/// the buffer: `[OK, n, 0]`, n = 0 at the end (empty, no writer left);
/// `[EMPTY, 0, 0]`: nothing yet.
pub const PIPE_READ: u64 = SUBSCRIBE + 6;
/// `[PIPE_WRITE, id, n]`: the buffer's first n bytes: `[OK, taken, 0]`
/// (taken at least 1); `[EMPTY, 0, 0]`: no room yet;
/// `[NOT_CONNECTED, 0, 0]`: no reader left.
pub const PIPE_WRITE: u64 = SUBSCRIBE + 7;
/// `[PIPE_CLOSE, id, end]`: let go of the caller's hold of the read end
/// ([`READ_END`]) or the write end ([`WRITE_END`]).
pub const PIPE_CLOSE: u64 = SUBSCRIBE + 8;
/// A pipe's read end.
pub const READ_END: u64 = 0;
/// A pipe's write end.
pub const WRITE_END: u64 = 1;

/// Notification bit: a program the client started has ended.
pub const ENDED: u64 = 4;
/// Notification bit: a pipe the client holds an end of was read, written
/// or let go of.
pub const PIPE_READY: u64 = 8;
/// Bytes a pipe holds.
pub const PIPE_BYTES: usize = 32 << 10;
/// Most pipe ends one client or program may hold.
pub const MAX_PIPE_ENDS: usize = 32;
/// The environment variables that give a program its standard input and
/// output: an absolute file name, or `pipe:ID` (see [`PIPE_PREFIX`]).
pub const STDIN_VAR: &str = "EXO_STDIN";
/// See [`STDIN_VAR`].
pub const STDOUT_VAR: &str = "EXO_STDOUT";
/// The environment variable in which a started program finds its pid
/// (the service sets it).
pub const PID_VAR: &str = "EXO_PID";
/// A standard variable's value that names a pipe: `pipe:ID`.
pub const PIPE_PREFIX: &str = "pipe:";

/// The pipe a standard variable's value names, if it names one.
pub fn pipe_named(value: &str) -> Option<u64> {
    value.strip_prefix(PIPE_PREFIX)?.parse().ok()
}
/// The exit code of a program ended by `KILL`.
pub const KILLED_EXIT: u32 = 130;
/// The longest command line.
pub const MAX_COMMAND: usize = 1024;
/// The longest working directory.
pub const MAX_DIR: usize = 1024;
/// The longest environment.
pub const MAX_ENV: usize = 4096;
/// Most programs one client may have running or unwaited at once.
pub const MAX_CHILDREN: usize = 16;

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// See [`ATTACH`].
    Attach,
    /// See [`SUBSCRIBE`].
    Subscribe,
    /// See [`SPAWN`]: the command line's length, the directory's, the
    /// environment's.
    Spawn(usize, usize, usize),
    /// See [`WAIT`].
    Wait(u64),
    /// See [`KILL`].
    Kill(u64),
    /// See [`LIST`].
    List,
    /// See [`PIPE`].
    Pipe,
    /// See [`PIPE_READ`]: the pipe, the most bytes.
    PipeRead(u64, u64),
    /// See [`PIPE_WRITE`]: the pipe, the bytes.
    PipeWrite(u64, u64),
    /// See [`PIPE_CLOSE`]: the pipe, the end.
    PipeClose(u64, u64),
    /// See [`DETACH`].
    Detach,
}

impl Request {
    /// The message words.
    pub fn encode(self) -> [u64; 3] {
        match self {
            Request::Attach => [ATTACH, 0, 0],
            Request::Subscribe => [SUBSCRIBE, 0, 0],
            Request::Spawn(len, dir, env) => [SPAWN, len as u64, dir as u64 | (env as u64) << 32],
            Request::Wait(pid) => [WAIT, pid, 0],
            Request::Kill(pid) => [KILL, pid, 0],
            Request::List => [LIST, 0, 0],
            Request::Pipe => [PIPE, 0, 0],
            Request::PipeRead(id, max) => [PIPE_READ, id, max],
            Request::PipeWrite(id, n) => [PIPE_WRITE, id, n],
            Request::PipeClose(id, end) => [PIPE_CLOSE, id, end],
            Request::Detach => [DETACH, 0, 0],
        }
    }

    /// Decodes message words, checking a command line's length.
    pub fn decode(w: [u64; 3]) -> Result<Request, Status> {
        Ok(match w {
            [ATTACH, 0, 0] => Request::Attach,
            [SUBSCRIBE, 0, 0] => Request::Subscribe,
            [SPAWN, len, w]
                if (1..=MAX_COMMAND as u64).contains(&len)
                    && w & 0xffff_ffff <= MAX_DIR as u64
                    && w >> 32 <= MAX_ENV as u64 =>
            {
                Request::Spawn(len as usize, (w & 0xffff_ffff) as usize, (w >> 32) as usize)
            }
            [SPAWN, _, _] => return Err(Status::TooLarge),
            [WAIT, pid, 0] => Request::Wait(pid),
            [KILL, pid, 0] => Request::Kill(pid),
            [LIST, 0, 0] => Request::List,
            [PIPE, 0, 0] => Request::Pipe,
            [PIPE_READ, id, max] => Request::PipeRead(id, max),
            [PIPE_WRITE, id, n] => Request::PipeWrite(id, n),
            [PIPE_CLOSE, id, end @ (READ_END | WRITE_END)] => Request::PipeClose(id, end),
            [DETACH, 0, 0] => Request::Detach,
            _ => return Err(Status::BadRequest),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_lengths_are_refused() {
        for r in [
            Request::Attach,
            Request::Subscribe,
            Request::Spawn(5, 0, 0),
            Request::Spawn(5, 9, 0),
            Request::Spawn(5, 9, 12),
            Request::Wait(3),
            Request::Kill(1),
            Request::List,
            Request::Pipe,
            Request::PipeRead(1, 4096),
            Request::PipeWrite(2, 10),
            Request::PipeClose(3, READ_END),
            Request::PipeClose(3, WRITE_END),
            Request::Detach,
        ] {
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
        assert_eq!(Request::decode([SPAWN, 0, 0]), Err(Status::TooLarge));
        assert_eq!(Request::decode([SPAWN, MAX_COMMAND as u64 + 1, 0]), Err(Status::TooLarge));
        assert_eq!(Request::decode([SPAWN, 5, MAX_DIR as u64 + 1]), Err(Status::TooLarge));
        assert_eq!(Request::decode([SPAWN, 5, (MAX_ENV as u64 + 1) << 32]), Err(Status::TooLarge));
        assert_eq!(Request::decode([WAIT, 1, 1]), Err(Status::BadRequest));
        assert_eq!(Request::decode([LIST, 1, 0]), Err(Status::BadRequest));
        assert_eq!(Request::decode([PIPE_CLOSE, 1, 2]), Err(Status::BadRequest));
        assert_eq!(Request::decode([PIPE, 1, 0]), Err(Status::BadRequest));
    }

    #[test]
    fn standard_variables_name_pipes_by_number() {
        assert_eq!(pipe_named("pipe:7"), Some(7));
        assert_eq!(pipe_named("/d0/out.txt"), None);
        assert_eq!(pipe_named("pipe:"), None);
        assert_eq!(pipe_named("pipe:x"), None);
    }
}
