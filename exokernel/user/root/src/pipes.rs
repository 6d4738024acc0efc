//! Pipes of the process service (`exo_protocols::process`): byte queues
//! the root task keeps for its clients and the programs they start. Each
//! end is held by badges (a client, a program): one hold per badge and
//! end, let go by `PIPE_CLOSE` or when the program ends. Nothing here
//! waits: a read of an empty pipe or a write to a full one answers
//! `EMPTY`, and the holders of the other end are signalled
//! ([`process::PIPE_READY`]) whenever something changes for them.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use exo_protocols::process::{self, Status, READ_END, WRITE_END};
use exo_rt::sync::SpinLock;

struct Pipe {
    id: u64,
    data: VecDeque<u8>,
    /// Badges holding the read end, the write end.
    ends: [Vec<u64>; 2],
}

impl Pipe {
    fn holds(&self, badge: u64, end: u64) -> bool {
        self.ends[end as usize].contains(&badge)
    }
}

static PIPES: SpinLock<Vec<Pipe>> = SpinLock::new(Vec::new());
static LAST_ID: SpinLock<u64> = SpinLock::new(0);
/// Most pipes at once, for all clients: at most 1 MiB of the root task's
/// 4 MiB heap.
const MAX_PIPES: usize = 32;

/// Signals `badges` (their subscribed notifications) that a pipe changed.
fn tell(badges: &[u64]) {
    for b in badges {
        crate::procs::tell(*b, process::PIPE_READY);
    }
}

/// How many ends `badge` holds.
fn ends_held(pipes: &[Pipe], badge: u64) -> usize {
    pipes.iter().map(|p| p.ends.iter().filter(|e| e.contains(&badge)).count()).sum()
}

/// `PIPE`: a new pipe, both ends held by `badge`.
pub fn create(badge: u64) -> [u64; 3] {
    PIPES.with(|pipes| {
        if pipes.len() >= MAX_PIPES || ends_held(pipes, badge) + 2 > process::MAX_PIPE_ENDS {
            return [Status::TooMany as u64, 0, 0];
        }
        let id = LAST_ID.with(|l| {
            *l += 1;
            *l
        });
        pipes.push(Pipe { id, data: VecDeque::new(), ends: [alloc::vec![badge], alloc::vec![badge]] });
        [Status::Ok as u64, id, 0]
    })
}

/// `PIPE_READ`: up to `max` bytes into `buf`.
pub fn read(badge: u64, id: u64, max: u64, buf: &mut [u8]) -> [u64; 3] {
    let (answer, wake) = PIPES.with(|pipes| {
        let Some(p) = pipes.iter_mut().find(|p| p.id == id && p.holds(badge, READ_END)) else {
            return ([Status::BadRequest as u64, 0, 0], Vec::new());
        };
        if max == 0 {
            return ([Status::Ok as u64, 0, 0], Vec::new());
        }
        if p.data.is_empty() {
            let done = p.ends[WRITE_END as usize].is_empty();
            return ([if done { Status::Ok } else { Status::Empty } as u64, 0, 0], Vec::new());
        }
        let n = p.data.len().min(buf.len()).min(usize::try_from(max).unwrap_or(usize::MAX));
        for (to, from) in buf[..n].iter_mut().zip(p.data.drain(..n)) {
            *to = from;
        }
        ([Status::Ok as u64, n as u64, 0], p.ends[WRITE_END as usize].clone())
    });
    tell(&wake);
    answer
}

/// `PIPE_WRITE`: as much of `data` as there is room for.
pub fn write(badge: u64, id: u64, data: &[u8]) -> [u64; 3] {
    let (answer, wake) = PIPES.with(|pipes| {
        let Some(p) = pipes.iter_mut().find(|p| p.id == id && p.holds(badge, WRITE_END)) else {
            return ([Status::BadRequest as u64, 0, 0], Vec::new());
        };
        if p.ends[READ_END as usize].is_empty() {
            return ([Status::NotConnected as u64, 0, 0], Vec::new());
        }
        let n = (process::PIPE_BYTES - p.data.len()).min(data.len());
        if n == 0 {
            return ([Status::Empty as u64, 0, 0], Vec::new());
        }
        p.data.extend(&data[..n]);
        ([Status::Ok as u64, n as u64, 0], p.ends[READ_END as usize].clone())
    });
    tell(&wake);
    answer
}

/// Lets go of `badge`'s hold of pipe `id`'s `end`; the pipe goes when no
/// end is held.
pub fn close(badge: u64, id: u64, end: u64) -> [u64; 3] {
    let wake = PIPES.with(|pipes| {
        let i = pipes.iter().position(|p| p.id == id && p.holds(badge, end))?;
        Some(let_go(pipes, i, badge, end))
    });
    match wake {
        Some(w) => {
            tell(&w);
            [Status::Ok as u64, 0, 0]
        }
        None => [Status::BadRequest as u64, 0, 0],
    }
}

/// Drops one hold; who should hear of it.
fn let_go(pipes: &mut Vec<Pipe>, i: usize, badge: u64, end: u64) -> Vec<u64> {
    let p = &mut pipes[i];
    p.ends[end as usize].retain(|b| *b != badge);
    let other = p.ends[1 - end as usize].clone();
    if p.ends.iter().all(Vec::is_empty) {
        pipes.swap_remove(i);
    }
    other
}

/// Lets go of every end `badge` holds (a program that ended, a client
/// that detached).
pub fn drop_all(badge: u64) {
    let wake = PIPES.with(|pipes| {
        let mut wake = Vec::new();
        let mut i = pipes.len();
        while i > 0 {
            i -= 1;
            for end in [READ_END, WRITE_END] {
                if i < pipes.len() && pipes[i].holds(badge, end) {
                    wake.extend(let_go(pipes, i, badge, end));
                }
            }
        }
        wake
    });
    tell(&wake);
}

/// The pipe ends a program about to start with environment `env` gets
/// from `from` (its standard variables naming pipes `from` holds the
/// right end of) are given to `to`. `BadRequest` if a variable names a
/// pipe end `from` does not hold; nothing is given then.
pub fn give(from: u64, to: u64, env: &str) -> Result<(), Status> {
    let mut wanted = Vec::new();
    for line in env.lines() {
        let Some((name, value)) = line.split_once('=') else { continue };
        let end = match name {
            process::STDIN_VAR => READ_END,
            process::STDOUT_VAR => WRITE_END,
            _ => continue,
        };
        if let Some(id) = process::pipe_named(value) {
            wanted.push((id, end));
        } else if value.starts_with(process::PIPE_PREFIX) {
            return Err(Status::BadRequest);
        }
    }
    PIPES.with(|pipes| {
        if !wanted.iter().all(|(id, end)| pipes.iter().any(|p| p.id == *id && p.holds(from, *end))) {
            return Err(Status::BadRequest);
        }
        for (id, end) in wanted {
            let p = pipes.iter_mut().find(|p| p.id == id).expect("checked");
            if !p.holds(to, end) {
                p.ends[end as usize].push(to);
            }
        }
        Ok(())
    })
}
