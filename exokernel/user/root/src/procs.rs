//! The process service (`exo_protocols::process`), on the endpoint named
//! `procs` when a manifest lists it: the root task starts programs of the
//! boot image for its clients (the shell), tells them when those end, and
//! stops them on request. Mechanism as the supervisor's: the same loader,
//! a budget of the program's own split from the root task's, the console
//! and the caller's endpoints (what it may delegate), a badge of its own
//! so that servers tell it from its caller. Policy stays with the client.
//!
//! A started program may start programs too (a shell started from the
//! shell): they get what the manifest program at the root of its line
//! was given, no more. When a program ends, the ones it started are
//! stopped and forgotten (nobody is left to wait for them), and so are
//! a manifest client's. [`MAX_STARTED`] bounds them all, so that a
//! program that starts itself over and over runs out of places, not the
//! system out of memory.

use crate::{with_supervisor, Supervisor};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use exo_abi::{slot, ExitStatus, PAGE_SIZE};
use exo_manifest::{CapGrant, Program};
use exo_protocols::process::{self, Request, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Serve, Sessions};
use exo_rt::abi::FOREVER;
use exo_rt::caps::{self, Endpoint, Message, Notification, Process, Untyped};
use exo_rt::println;
use exo_rt::sync::{Condvar, Mutex, SpinLock};

/// Where clients' buffers are mapped in the root task.
const CLIENT_VA: u64 = 0x70_0000_0000;
const CLIENT_WINDOW: u64 = 64 << 10;
/// The shell and the programs it starts that use pipes.
const MAX_CLIENTS: usize = 24;
/// Badges of started programs: this plus their pid (manifest programs
/// have 1 to their count).
const BADGE_BASE: u64 = 0x1_0000;
/// Programs started and not yet waited for, all clients together.
const MAX_STARTED: usize = 48;
/// The owner of a program whose client ended: nobody waits for it.
const ORPHAN: u64 = 0;
/// What a started program gets besides its binary's needs.
const HEAP: u64 = 2 << 20;
const MEMORY: u64 = 2 << 20;
const KERNEL: u64 = 256 << 10;

/// A program started for a client.
struct Child {
    /// What the client knows it by: 1, 2, 3 ..., never used again.
    pid: u64,
    /// The client that started it, or [`ORPHAN`].
    owner: u64,
    /// The manifest program at the root of its line (its badge): what
    /// that one was given is what this one gets, and its own programs.
    root: u64,
    name: String,
    /// The command line it was started with (for `LIST`).
    command: String,
    process: Process,
    budget: Untyped,
    /// The root task's sealed copies of what it was given.
    grants: crate::loader::Grants,
    /// It ended and the service is letting go of what it held: a program
    /// started for it meanwhile is stopped at once (`spawn`).
    ending: bool,
    status: Option<ExitStatus>,
}

static CHILDREN: SpinLock<Vec<Option<Child>>> = SpinLock::new(Vec::new());
/// Each client's subscribed notification, by badge.
static NOTES: SpinLock<Vec<(u64, Notification)>> = SpinLock::new(Vec::new());
/// Badges of started programs that have ended, whose sessions the
/// service has still to end.
static GONE: SpinLock<Vec<u64>> = SpinLock::new(Vec::new());

/// Signals `bits` on the notification the client (or program) with
/// `badge` subscribed, if any (under the table's lock: the capability
/// cannot be deleted, and its slot reused, meanwhile).
pub fn tell(badge: u64, bits: u64) {
    NOTES.with(|n| {
        if let Some((_, note)) = n.iter().find(|(b, _)| *b == badge) {
            let _ = note.signal(bits);
        }
    });
}

/// Deletes the notification `badge` subscribed, if any, from `notes`.
fn forget_note(notes: &mut Vec<(u64, Notification)>, badge: u64) {
    if let Some(i) = notes.iter().position(|(b, _)| *b == badge) {
        let _ = caps::delete(notes.remove(i).1.slot());
    }
}

/// A manifest program that used the service has ended (`badge`): its
/// pipe ends are let go of, and the programs it started are stopped.
pub fn client_ended(badge: u64) {
    crate::pipes::drop_all(badge);
    orphan_children_of(badge);
}

/// The programs client `badge` started: stopped if they run, and nobody's
/// from now on (freed once ended: [`reap_orphans`]).
fn orphan_children_of(badge: u64) {
    CHILDREN.with(|c| {
        for ch in c.iter_mut().flatten().filter(|ch| ch.owner == badge) {
            if ch.status.is_none() {
                let _ = ch.process.kill(process::KILLED_EXIT);
            }
            ch.owner = ORPHAN;
        }
    });
}

/// Frees the places of ended programs nobody waits for (the service's
/// thread only: their sessions were ended first, see `handle`).
fn reap_orphans() {
    let ended: Vec<Child> = CHILDREN.with(|c| {
        c.iter_mut()
            .filter(|ch| ch.as_ref().is_some_and(|ch| ch.owner == ORPHAN && ch.status.is_some()))
            .filter_map(Option::take)
            .collect()
    });
    for child in ended {
        free(child);
    }
}

/// Lets go of an ended program: its process, its grants, its budget
/// (every capability to the budget gone, the kernel gives its memory
/// back to the root task's).
fn free(child: Child) {
    let _ = caps::delete(child.process.slot());
    crate::loader::release(child.grants);
    let _ = caps::delete(child.budget.slot());
}

/// Serves the process service on `ep` for ever (a thread of its own).
pub fn serve(ep: u64) {
    let ep = Endpoint::from_slot(ep);
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how =
        Serve { name: "root (procs)", clients: None, bound: None, timeout: FOREVER, takes_cap: &[process::SUBSCRIBE] };
    let _ = server::serve(ep, how, |msg| Some(handle(&mut sessions, msg?)));
}

fn handle(sessions: &mut Sessions, msg: &Message) -> [u64; 3] {
    // Programs that ended: their buffers unmapped before their budgets go
    // (`WAIT`), and their badges free for the next program in their place.
    for badge in GONE.with(core::mem::take) {
        let _ = sessions.detach(badge);
    }
    reap_orphans();
    let request = match Request::decode(msg.words) {
        Ok(r) => r,
        Err(s) => {
            server::drop_passed_cap(msg);
            return [s as u64, 0, 0];
        }
    };
    let badge = msg.badge;
    match request {
        Request::Attach => session::answer(sessions.attach(msg).map(|s| (s.bytes(), 0))),
        Request::Detach => {
            crate::pipes::drop_all(badge);
            session::answer(sessions.detach(badge).map(|()| (0, 0)))
        }
        Request::Subscribe => {
            let Some(cap) = msg.cap else { return [Status::BadRequest as u64, 0, 0] };
            if sessions.get(badge).is_err() {
                let _ = caps::delete(cap);
                return [Status::NotAttached as u64, 0, 0];
            }
            NOTES.with(|n| {
                forget_note(n, badge);
                n.push((badge, Notification::from_slot(cap)));
            });
            [Status::Ok as u64, 0, 0]
        }
        Request::Spawn(len, dir, env) => {
            let (line, cwd, env) = match sessions.get(badge) {
                Ok(s) if (len + dir + env) as u64 <= s.bytes() => {
                    let b = s.buffer();
                    let text = |r: core::ops::Range<usize>| String::from_utf8_lossy(&b[r]).into_owned();
                    (text(0..len), text(len..len + dir), text(len + dir..len + dir + env))
                }
                Ok(_) => return [Status::TooLarge as u64, 0, 0],
                Err(e) => return [e as u64, 0, 0],
            };
            // A directory is absolute, without NULs (they end the start-up
            // text's parts).
            // and the environment is lines of NAME=VALUE.
            if !(cwd.is_empty() || cwd.starts_with('/'))
                || [&line, &cwd, &env].iter().any(|t| t.contains('\0'))
                || !env.lines().all(|l| l.split_once('=').is_some_and(|(n, _)| !n.is_empty()))
            {
                return [Status::BadRequest as u64, 0, 0];
            }
            spawn(badge, &line, &cwd, &env)
        }
        Request::Wait(pid) => CHILDREN.with(|c| match index(c, pid).and_then(|i| c.get_mut(i)) {
            Some(slot @ Some(Child { status: Some(_), .. })) if slot.as_ref().is_some_and(|ch| ch.owner == badge) => {
                let child = slot.take().expect("checked");
                let status = child.status.expect("checked");
                free(child);
                [Status::Ok as u64, status.encode(), 0]
            }
            Some(Some(child)) if child.owner == badge => [Status::Empty as u64, 0, 0],
            _ => [Status::NoSuchProgram as u64, 0, 0],
        }),
        Request::List => match sessions.get(badge) {
            Ok(s) => {
                let (bytes, lines) = list(badge, s.buffer());
                [Status::Ok as u64, bytes as u64, lines as u64]
            }
            Err(e) => [e as u64, 0, 0],
        },
        Request::Pipe => match sessions.get(badge) {
            Ok(_) => crate::pipes::create(badge),
            Err(e) => [e as u64, 0, 0],
        },
        Request::PipeRead(id, max) => match sessions.get(badge) {
            Ok(s) => crate::pipes::read(badge, id, max, s.buffer()),
            Err(e) => [e as u64, 0, 0],
        },
        Request::PipeWrite(id, n) => match sessions.get(badge) {
            Ok(s) if n <= s.bytes() => crate::pipes::write(badge, id, &s.buffer()[..n as usize]),
            Ok(_) => [Status::TooLarge as u64, 0, 0],
            Err(e) => [e as u64, 0, 0],
        },
        Request::PipeClose(id, end) => crate::pipes::close(badge, id, end),
        Request::Kill(pid) => CHILDREN.with(|c| match index(c, pid).and_then(|i| c.get(i)) {
            Some(Some(child)) if child.owner == badge => {
                let _ = child.process.kill(process::KILLED_EXIT); // `Dead` if it just ended
                [Status::Ok as u64, 0, 0]
            }
            _ => [Status::NoSuchProgram as u64, 0, 0],
        }),
    }
}

/// The started program with `badge`, if the caller is one (and its
/// place still holds it).
fn started_program(children: &[Option<Child>], badge: u64) -> Option<&Child> {
    children.get(usize::try_from(badge.checked_sub(BADGE_BASE)?).ok()?)?.as_ref()
}

/// The last pid handed out.
static LAST_PID: SpinLock<u64> = SpinLock::new(0);

/// The place in `children` of the program a client knows as `pid`.
fn index(children: &[Option<Child>], pid: u64) -> Option<usize> {
    children.iter().position(|c| c.as_ref().is_some_and(|c| c.pid == pid))
}

/// Writes `LIST`'s lines for the client with `badge` into `buf`: how many
/// bytes and lines fit.
fn list(badge: u64, buf: &mut [u8]) -> (usize, usize) {
    let mut lines: Vec<String> = crate::program_table()
        .into_iter()
        .map(|(command, state, starts)| alloc::format!("- {state} {starts} {command}\n"))
        .collect();
    CHILDREN.with(|c| {
        for ch in c.iter() {
            let Some(ch) = ch.as_ref().filter(|ch| ch.owner == badge) else { continue };
            let state = match ch.status {
                None => "running".into(),
                Some(ExitStatus::Exited(code)) => alloc::format!("exited:{code}"),
                Some(ExitStatus::Faulted(v)) => alloc::format!("faulted:{v}"),
            };
            lines.push(alloc::format!("{} {state} 1 {}\n", ch.pid, ch.command));
        }
    });
    let (mut at, mut count) = (0, 0);
    for l in lines {
        if at + l.len() > buf.len() {
            break;
        }
        buf[at..at + l.len()].copy_from_slice(l.as_bytes());
        at += l.len();
        count += 1;
    }
    (at, count)
}

/// Starts command `line` in directory `cwd` with environment `env` for the client with `badge`:
/// `[OK, pid, 0]`.
fn spawn(badge: u64, line: &str, cwd: &str, env: &str) -> [u64; 3] {
    let mut words = line.split_whitespace();
    let Some(binary) = words.next() else { return [Status::BadRequest as u64, 0, 0] };
    let args: Vec<&str> = words.collect();
    // The manifest program at the root of the caller's line: the caller
    // itself, or the one a started caller descends from.
    let root = if badge < BADGE_BASE {
        badge
    } else {
        match CHILDREN.with(|c| started_program(c, badge).filter(|ch| ch.status.is_none()).map(|ch| ch.root)) {
            Some(root) => root,
            None => return [Status::BadRequest as u64, 0, 0],
        }
    };
    let (mine, all) = CHILDREN.with(|c| {
        let all = c.iter().flatten();
        (all.clone().filter(|ch| ch.owner == badge).count(), all.count())
    });
    if mine >= process::MAX_CHILDREN || all >= MAX_STARTED {
        return [Status::TooLarge as u64, 0, 0];
    }
    // Its place in the table (its badge's too), free once it is waited for.
    let slot = CHILDREN.with(|c| match c.iter().position(Option::is_none) {
        Some(i) => i,
        None => {
            c.push(None);
            c.len() - 1
        }
    });
    // A watcher for it before it runs: a program nobody watches would
    // never be seen to end.
    if let Err(e) = reserve_watcher() {
        println!("root: no thread to watch {binary} with: {}", e.name());
        return [Status::TooLarge as u64, 0, 0];
    }
    // The pipe ends its standard variables name are its from the start.
    let child = BADGE_BASE + slot as u64;
    if let Err(e) = crate::pipes::give(badge, child, env) {
        return [e as u64, 0, 0];
    }
    // Its pid, in its environment too (`getpid`).
    let pid = LAST_PID.with(|p| {
        *p += 1;
        *p
    });
    let mut env: String = env
        .lines()
        .filter(|l| l.split_once('=').is_none_or(|(n, _)| n != process::PID_VAR))
        .flat_map(|l| [l, "\n"])
        .collect();
    env.push_str(&alloc::format!("{}={pid}\n", process::PID_VAR));
    let started = with_supervisor(|s| start(s, root, slot as u64, binary, &args.join(" "), cwd, &env));
    if started.is_err() {
        crate::pipes::drop_all(child);
    }
    match started {
        Ok((process, budget, grants)) => {
            let command = line.split_whitespace().collect::<Vec<_>>().join(" ");
            CHILDREN.with(|c| {
                // A started caller that ended while this one was being
                // started has had its programs stopped already: this one
                // is stopped too, and nobody's.
                let caller_ended = badge >= BADGE_BASE && started_program(c, badge).is_none_or(|ch| ch.ending);
                if caller_ended {
                    let _ = process.kill(process::KILLED_EXIT);
                }
                c[slot] = Some(Child {
                    pid,
                    owner: if caller_ended { ORPHAN } else { badge },
                    root,
                    name: binary.into(),
                    command,
                    process,
                    budget,
                    grants,
                    ending: false,
                    status: None,
                })
            });
            watch_soon(slot as u64);
            [Status::Ok as u64, pid, 0]
        }
        Err(status) => [status as u64, 0, 0],
    }
}

/// Loads `binary` with `args` with what the manifest program `root` (its
/// badge) was given.
fn start(
    s: &mut Supervisor,
    root: u64,
    pid: u64,
    binary: &str,
    args: &str,
    cwd: &str,
    env: &str,
) -> Result<(Process, Untyped, crate::loader::Grants), Status> {
    if s.image.find(binary).is_none() {
        return Err(Status::NoSuchProgram);
    }
    // A manifest program (badge = its index + 1).
    let caller = root.checked_sub(1).and_then(|i| s.manifest.programs.get(i as usize)).ok_or(Status::BadRequest)?;
    let mut program = Program::new(binary);
    program.binary = binary.into();
    program.args = args.into();
    program.cwd = cwd.into();
    program.env = env.into();
    program.caps = alloc::vec![CapGrant::Console, CapGrant::Untyped];
    program.endpoints = caller.endpoints.clone();
    program.label = caller.label;
    program.priority = caller.priority;
    (program.heap, program.memory, program.kernel) = (HEAP, MEMORY, KERNEL);
    let pages = crate::loader::pages_needed(s.image, &program).map_err(|_| Status::BadRequest)? + MEMORY / PAGE_SIZE;
    let kernel = crate::loader::BASE_KERNEL + pages * 8 + KERNEL;
    let left = caps::info(slot::UNTYPED).map_or(0, |i| i.pages);
    if left < pages + crate::loader::RESERVE_PAGES {
        return Err(Status::TooLarge);
    }
    let budget = Untyped::from_slot(slot::UNTYPED).split(pages, kernel).map_err(|_| Status::TooLarge)?;
    let mut none = Vec::new();
    let hardware = crate::loader::Hardware { bus: s.bus, functions: &mut s.devices, assigned: &mut none };
    let mut grants = None;
    match crate::loader::start(s.image, &program, budget, &s.endpoints, BADGE_BASE + pid, hardware, 0, &mut grants) {
        Ok(p) => Ok((p, budget, grants.unwrap_or_default())),
        Err(e) => {
            println!("root: cannot start {binary} for a client: {e}");
            crate::loader::release(grants.unwrap_or_default());
            let _ = caps::delete(budget.slot());
            Err(Status::BadRequest)
        }
    }
}

/// Watching: programs waiting for a watcher thread (first come, first
/// watched), watchers waiting for work, and watchers started that have
/// not come to wait yet.
struct Watchers {
    queue: VecDeque<u64>,
    idle: usize,
    starting: usize,
}

static WATCH: Mutex<Watchers> = Mutex::new(Watchers { queue: VecDeque::new(), idle: 0, starting: 0 });
static WATCH_WAKE: Condvar = Condvar::new();

/// Makes sure a watcher will be free for one more program: one idle (or
/// on its way) beyond those the queue already claims, or a new thread.
/// Watchers are kept, not ended: a thread cannot give back its own
/// stack, and a shell starts programs without end. Only the service's
/// thread starts programs, so what this finds stays true until
/// [`watch_soon`].
fn reserve_watcher() -> Result<(), exo_rt::abi::Error> {
    let mut w = WATCH.lock();
    if w.idle + w.starting > w.queue.len() {
        return Ok(());
    }
    exo_rt::thread::spawn_with_stack(watcher, 0, crate::THREAD_STACK)?;
    w.starting += 1;
    Ok(())
}

/// Has the started program in `slot` watched ([`watch`]) by the watcher
/// [`reserve_watcher`] made sure of.
fn watch_soon(slot: u64) {
    WATCH.lock().queue.push_back(slot);
    WATCH_WAKE.notify_one();
}

/// A watcher thread: watches one program after another.
fn watcher(_: u64) {
    WATCH.lock().starting -= 1;
    loop {
        let slot = {
            let mut w = WATCH.lock();
            loop {
                if let Some(slot) = w.queue.pop_front() {
                    break slot;
                }
                w.idle += 1;
                w = WATCH_WAKE.wait(w);
                w.idle -= 1;
            }
        };
        watch(slot);
    }
}

/// Waits for the started program in `slot` to end, records how, and
/// tells its client.
fn watch(slot: u64) {
    let Some(process) = CHILDREN.with(|c| c[slot as usize].as_ref().map(|ch| ch.process)) else {
        return;
    };
    let status = process.wait().unwrap_or(ExitStatus::Exited(u32::MAX));
    // From here on a program it asked for is stopped when it is made.
    CHILDREN.with(|c| {
        if let Some(ch) = c[slot as usize].as_mut() {
            ch.ending = true;
        }
    });
    // What it held goes first, as a kernel closes a dead process's
    // descriptors: its pipes' other ends hear of it, its notification and
    // session go. Only then is its status there for `WAIT`, which frees
    // its place (and badge) for the next program.
    let badge = BADGE_BASE + slot;
    crate::pipes::drop_all(badge);
    NOTES.with(|n| forget_note(n, badge));
    orphan_children_of(badge);
    GONE.with(|g| g.push(badge));
    // Its client as it is now (nobody, if that one ended meanwhile).
    let owner = CHILDREN.with(|c| {
        let ch = c[slot as usize].as_mut()?;
        ch.status = Some(status);
        if let ExitStatus::Faulted(v) = status {
            println!("root: {} (started for a client) was killed by CPU exception {v}", ch.name);
        }
        Some(ch.owner).filter(|o| *o != ORPHAN)
    });
    if let Some(owner) = owner {
        tell(owner, process::ENDED);
    }
}
