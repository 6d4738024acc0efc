//! The root task: the first and only process the kernel starts.
//!
//! It holds every initial capability, reads the boot manifest from the
//! boot image, starts each program in dependency order with exactly the
//! capabilities its entry grants, then waits for them and reports how each
//! one ended. A program whose entry says `restart = on-failure` (or
//! `always`) is started again when it fails (or ends), as MINIX 3's
//! reincarnation server does: with the same endpoints (its clients find
//! the new instance where they found the old one; a call the old one held
//! fails with `Dead`), the same devices and the same capabilities, after
//! a back-off that doubles each time (10 ms up to 1 s), and at most
//! `max_restarts` times in `restart_window` (manifest; 5 in 60 s by
//! default), after which it gives up and reports the last ending; an
//! instance that ran `stable_after` (10 s) counts as recovered: the count
//! and the back-off start again. A program with a `heartbeat` is pinged
//! on the first endpoint it serves (`exo_protocols::session::PING`, which
//! every service's serve loop answers); two pings unanswered in a row and
//! it is killed (`process_kill`) and treated like a program that failed,
//! as MINIX 3's reincarnation server treats a driver that stops answering. When every program has ended for good
//! it does what `[system] on_idle` says (power off, with success only if
//! every `expect` held, or halt).
//!
//! Its argument string is the kernel command line (QEMU's `-append`):
//! items `PROGRAM+=WORDS`, separated by `;`, add WORDS to that program's
//! arguments from the manifest ([`boot_line`]; `exo-img --isolation vm`
//! picks the appliance's partition and code page so).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod loader;
mod pci;
mod pipes;
mod procs;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use exo_abi::{dependency_bit, slot, ExitStatus, DEPENDENCY_RESTART_EXIT, PAGE_SIZE, UNRESPONSIVE_EXIT};
use exo_manifest::{Expect, Manifest, OnDependencyRestart, OnIdle, Program, Restart};
use exo_protocols::session::PING;
use exo_rt::caps::{self, Memory, PciBus, Power, Process, Untyped};
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;
use exo_rt::{println, sys};

exo_rt::entry!(main);

/// Where the root task maps the boot image in its own address space.
const IMAGE_VA: u64 = 0x0000_2000_0000_0000;

/// Applies the kernel command line (our argument string, QEMU's
/// `-append`): items separated by `;`, each `PROGRAM+=WORDS`, adding
/// WORDS to the arguments the manifest gives PROGRAM (how `exo-img
/// --isolation vm` picks a partition in the appliance). Items that name no
/// program, or are not of that form, are said and left out.
fn boot_line(line: &str, manifest: &mut Manifest) {
    for item in line.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((name, words)) = item.split_once("+=") else {
            println!("root: boot line: `{item}` is not PROGRAM+=WORDS; left out");
            continue;
        };
        let (name, words) = (name.trim(), words.trim());
        match manifest.programs.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                if !p.args.is_empty() {
                    p.args.push(' ');
                }
                p.args.push_str(words);
                println!("root: boot line: {name} runs with `{}`", p.args);
            }
            None => println!("root: boot line: the manifest has no program `{name}`; `{item}` left out"),
        }
    }
}

fn main(args: &str) -> i32 {
    // Under `-icount shift=0` the TSC counts guest instructions since
    // reset (scripts/bench reads it).
    let tsc = sys::rdtsc();
    println!("root: up at TSC {tsc}");
    let image_mem = Memory::from_slot(slot::BOOT_IMAGE);
    let image = match map_boot_image(image_mem) {
        Ok(bytes) => bytes,
        Err(e) => return fatal(&alloc::format!("cannot map the boot image: {e}")),
    };
    let image: &'static exo_bootimg::BootImage = match exo_bootimg::BootImage::parse(image) {
        Ok(i) => Box::leak(Box::new(i)),
        Err(e) => return fatal(&alloc::format!("boot image: {e}")),
    };
    let Some(text) = image.find("manifest") else {
        return fatal("boot image has no `manifest`");
    };
    let Ok(text) = core::str::from_utf8(text.data) else {
        return fatal("manifest is not UTF-8");
    };
    let mut manifest = match exo_manifest::parse(text) {
        Ok(m) => m,
        Err(e) => return fatal(&alloc::format!("{e}")),
    };
    boot_line(args, &mut manifest);
    let manifest: &'static Manifest = Box::leak(Box::new(manifest));
    println!("root: manifest lists {} programs", manifest.programs.len());
    run(image, manifest)
}

/// Maps the boot image read-only for the rest of the root task's life.
fn map_boot_image(mem: Memory) -> Result<&'static [u8], exo_abi::Error> {
    Ok(Mapping::new(mem, IMAGE_VA, exo_abi::map_flags::READ)?.leak_read_only())
}

/// Stack of each of the root task's threads: starting a program (ELF
/// plan, start-up text, grants) takes more than exo-rt's 16 KiB default,
/// and the process service and the watchers start programs.
pub(crate) const THREAD_STACK: usize = 128 * 1024;

/// First back-off before a restart (doubled each time, up to 1 s).
const FIRST_BACKOFF_NS: u64 = 10_000_000;

/// What starting (and restarting) programs needs, shared by the watcher
/// threads behind a lock (one start at a time: the loader has one scratch
/// mapping).
struct Supervisor {
    image: &'static exo_bootimg::BootImage<'static>,
    manifest: &'static Manifest,
    endpoints: loader::Endpoints,
    bus: PciBus,
    devices: Vec<pci::Function>,
    /// Per program (manifest order): the PCI functions it was given.
    assigned: Vec<Vec<u16>>,
    /// Per program: its own budget, from which it is built and which pays
    /// for everything it makes the kernel keep (handed to it too if its
    /// entry grants `untyped`); made at its first start and used again for
    /// each restart (what the dead instance held comes back to it as the
    /// kernel frees its objects).
    budgets: Vec<Option<Untyped>>,
    /// Per program: how many times it was started.
    starts: Vec<u64>,
    /// Per program: the capabilities it was given at its first start, as
    /// sealed tokens, for every restart.
    grants: Vec<Option<loader::Grants>>,
}

impl Supervisor {
    /// Starts program `index` (again); its endpoints carry badge
    /// `index + 1` every time.
    fn start(&mut self, index: usize) -> Result<Process, loader::StartError> {
        let program = &self.manifest.programs[index];
        let budget = match self.budgets[index] {
            Some(b) => b,
            None => {
                // Its memory, and the kernel's record of it (a word a page).
                let mut pages = loader::pages_needed(self.image, program)?;
                let mut kernel = loader::BASE_KERNEL + pages * 8;
                if program.caps.contains(&exo_manifest::CapGrant::Untyped) {
                    pages += program.memory / PAGE_SIZE;
                    kernel += program.kernel;
                }
                let left = caps::info(slot::UNTYPED).map_or(0, |i| i.pages);
                if left < pages + loader::RESERVE_PAGES {
                    return Err(loader::StartError::NoBudget);
                }
                let root = Untyped::from_slot(slot::UNTYPED);
                let b = root.split(pages, kernel).map_err(|_| loader::StartError::NoBudget)?;
                self.budgets[index] = Some(b);
                b
            }
        };
        let hardware =
            loader::Hardware { bus: self.bus, functions: &mut self.devices, assigned: &mut self.assigned[index] };
        let generation = self.starts[index];
        self.starts[index] += 1;
        let grants = &mut self.grants[index];
        loader::start(self.image, program, budget, &self.endpoints, index as u64 + 1, hardware, generation, grants)
    }
}

/// The supervisor, shared by the main thread and the watchers.
static SUPERVISOR: SpinLock<Option<Supervisor>> = SpinLock::new(None);

fn with_supervisor<R>(f: impl FnOnce(&mut Supervisor) -> R) -> R {
    SUPERVISOR.with(|s| f(s.as_mut().expect("set up by run")))
}

fn run(image: &'static exo_bootimg::BootImage<'static>, manifest: &'static Manifest) -> i32 {
    let untyped = Untyped::from_slot(slot::UNTYPED);
    let endpoints = match loader::create_endpoints(manifest, untyped) {
        Ok(e) => e,
        Err(e) => return fatal(&alloc::format!("{e}")),
    };
    let bus = PciBus::from_slot(slot::PCI);
    let devices = match pci::enumerate(bus) {
        Ok(f) => f,
        Err(e) => {
            println!("root: cannot enumerate PCI: {}; no devices for drivers", e.name());
            Vec::new()
        }
    };
    let assigned = alloc::vec![Vec::new(); manifest.programs.len()];
    let budgets = alloc::vec![None; manifest.programs.len()];
    let starts = alloc::vec![0; manifest.programs.len()];
    let grants = (0..manifest.programs.len()).map(|_| None).collect();
    let supervisor = Supervisor { image, manifest, endpoints, bus, devices, assigned, budgets, starts, grants };
    *SUPERVISOR.lock() = Some(supervisor);
    *INSTANCES.lock() = alloc::vec![Instance::default(); manifest.programs.len()];
    // One watcher thread per program, started with it, so each ending is
    // reported when it happens, and a program that never ends holds up no
    // other report. The root task runs above every program it starts
    // (kernel priority 3, programs 0-2), so a watcher runs the moment its
    // program ends, however busy the programs keep the processor.
    // The process service, if a program may call it.
    if let Some(ep) = with_supervisor(|s| s.endpoints.iter().find(|(n, _)| n == "procs").map(|(_, ep)| ep.slot())) {
        if let Err(e) = exo_rt::thread::spawn_with_stack(procs::serve, ep, THREAD_STACK) {
            println!("root: cannot serve the process service: {}", e.name());
        }
    }
    let mut failures = 0;
    let mut started = 0;
    for (index, program) in manifest.programs.iter().enumerate() {
        let process = match with_supervisor(|s| s.start(index)) {
            Ok(p) => {
                set_instance(index, |i| i.process = Some(p));
                p
            }
            Err(e) => {
                println!("root: cannot start {}: {e}", program.name);
                failures += 1;
                // Ended for good before it began: servers it alone was a
                // client of stop (below), rather than wait for it for ever.
                set_instance(index, |i| i.ended = true);
                continue;
            }
        };
        println!("root: started {} ({})", program.name, program.binary);
        started += 1;
        let slot = WATCHED.with(|w| {
            w.push(Watched { index, program, process });
            w.len() - 1
        });
        if let Err(e) = exo_rt::thread::spawn_with_stack(watch, slot as u64, THREAD_STACK) {
            println!("root: cannot watch {}: {}", program.name, e.name());
            FAILURES.fetch_add(1, Ordering::SeqCst);
            DONE.fetch_add(1, Ordering::SeqCst);
        }
        if program.test_kills > 0 {
            if let Err(e) = exo_rt::thread::spawn_with_stack(killer, slot as u64, THREAD_STACK) {
                println!("root: cannot start the test kills of {}: {}", program.name, e.name());
            }
        }
        if program.heartbeat_ms > 0 {
            if let Err(e) = exo_rt::thread::spawn_with_stack(heartbeat, slot as u64, THREAD_STACK) {
                println!("root: cannot send {} heartbeats: {}", program.name, e.name());
            }
        }
    }
    if failures > 0 {
        close_orphaned_endpoints();
    }
    while DONE.load(Ordering::SeqCst) < started {
        sys::sleep(10_000_000);
    }
    let failures = failures + FAILURES.load(Ordering::SeqCst);
    report_supervision(manifest);
    if failures == 0 {
        println!("root: all {started} programs ended as expected");
    } else {
        println!("root: {failures} program(s) failed or ended unexpectedly");
    }
    match manifest.system.on_idle {
        OnIdle::Shutdown => {
            let e = Power::from_slot(slot::POWER).shutdown(if failures == 0 { 0 } else { 1 });
            println!("root: shutdown refused: {}", e.name());
            1
        }
        OnIdle::Halt => loop {
            sys::sleep(u64::MAX);
        },
    }
}

/// Prints what the supervisor did with each program: how many instances
/// it started, how the last one ended.
fn report_supervision(manifest: &Manifest) {
    println!("root: {:<16} {:>6}  last ending", "program", "starts");
    let starts = with_supervisor(|s| s.starts.clone());
    for (i, p) in manifest.programs.iter().enumerate() {
        let last = match INSTANCES.with(|v| v[i].last) {
            Some(ExitStatus::Exited(c)) => alloc::format!("exit {c}"),
            Some(ExitStatus::Faulted(v)) => alloc::format!("CPU exception {v}"),
            None => "never started".into(),
        };
        println!("root: {:<16} {:>6}  {last}", p.name, starts[i]);
    }
}

/// A started program the root task watches.
#[derive(Clone, Copy)]
struct Watched {
    /// Its place in the manifest.
    index: usize,
    program: &'static Program,
    /// Its first instance (restarts are the watcher's business).
    process: Process,
}

/// What the heartbeat needs to know of a program's instance now.
#[derive(Clone, Copy, Default)]
struct Instance {
    /// The process, while it runs (`None` between instances).
    process: Option<Process>,
    /// Which start this is.
    generation: u64,
    /// It has ended for good.
    ended: bool,
    /// It was stopped to be started again after a program it runs
    /// `after` restarted, and is not running again yet.
    pending: bool,
    /// How its last instance ended.
    last: Option<ExitStatus>,
}

/// Per program (manifest order): its instance now.
static INSTANCES: SpinLock<Vec<Instance>> = SpinLock::new(Vec::new());

/// The manifest's programs for the process service's `LIST`: each one's
/// command line, state word and number of starts.
fn program_table() -> Vec<(alloc::string::String, alloc::string::String, u64)> {
    let (manifest, starts) = with_supervisor(|s| (s.manifest, s.starts.clone()));
    let instances = INSTANCES.with(|v| v.clone());
    manifest
        .programs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let inst = instances.get(i).copied().unwrap_or_default();
            let state = match (inst.process, inst.ended, inst.last) {
                (Some(_), _, _) if !inst.pending => "running".into(),
                (_, true, Some(ExitStatus::Exited(c))) => alloc::format!("exited:{c}"),
                (_, true, Some(ExitStatus::Faulted(v))) => alloc::format!("faulted:{v}"),
                (_, _, Some(_)) => "restarting".into(),
                _ if inst.pending => "restarting".into(),
                _ => "waiting".into(),
            };
            let command = if p.args.is_empty() { p.name.clone() } else { alloc::format!("{} {}", p.name, p.args) };
            (command, state, starts.get(i).copied().unwrap_or(0))
        })
        .collect()
}

fn set_instance(index: usize, f: impl FnOnce(&mut Instance)) {
    INSTANCES.with(|v| f(&mut v[index]));
}

/// Heartbeat thread: pings what program `slot` serves every period; two
/// pings unanswered in a row (a hung server: it neither answers nor
/// ends) and the instance is killed, for its watcher to restart per its
/// policy.
fn heartbeat(slot: u64) {
    let w = &WATCHED.with(|w| w[slot as usize]);
    let name = &w.program.name;
    let period = u64::from(w.program.heartbeat_ms) * 1_000_000;
    let served = &w.program.serves[0];
    let Some(ep) = with_supervisor(|s| s.endpoints.iter().find(|(n, _)| n == served).map(|(_, ep)| *ep)) else {
        return;
    };
    let (mut misses, mut watching) = (0u32, u64::MAX);
    loop {
        sys::sleep(period);
        let now = INSTANCES.with(|v| v[w.index]);
        if now.ended {
            return;
        }
        if now.process.is_none() {
            continue; // between instances
        }
        if now.generation != watching {
            (watching, misses) = (now.generation, 0);
        }
        match ep.call([PING, 0, 0], None, period) {
            Ok(_) => misses = 0,
            Err(exo_abi::Error::Timeout) => misses += 1,
            Err(_) => {} // ending or gone: its watcher's business
        }
        if misses < 2 {
            continue;
        }
        misses = 0;
        // Only the instance that missed them, if it still runs.
        let killed = INSTANCES.with(|v| match v[w.index] {
            Instance { process: Some(p), generation, .. } if generation == watching => Some(p.kill(UNRESPONSIVE_EXIT)),
            _ => None,
        });
        if let Some(r) = killed {
            let ms = w.program.heartbeat_ms;
            match r {
                Ok(()) => println!("root: {name} stopped answering (2 heartbeats of {ms} ms missed); killed it"),
                Err(e) => println!("root: {name} stopped answering; cannot kill it: {}", e.name()),
            }
        }
    }
}

/// Restarts under way (from the decision to restart a program until its
/// dependents are stopped or told): tests of recovery kill only when
/// there are none.
static RECOVERING: AtomicUsize = AtomicUsize::new(0);

/// One restart under way, for [`RECOVERING`], while it lives.
struct Round;

impl Round {
    fn begin() -> Round {
        RECOVERING.fetch_add(1, Ordering::SeqCst);
        Round
    }
}

impl Drop for Round {
    fn drop(&mut self) {
        RECOVERING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The exit code of an instance killed by a test of recovery.
const TEST_KILL_EXIT: u32 = 0x7e57_dead;

/// Tests of recovery (`test_kills`): kills program `slot`'s instance at a
/// random moment (after `test_kills_after`, then a wait of 0.1 to 1.9
/// times `test_kill_gap`, once every program runs or has ended), as
/// many times as its entry says, each new instance once, until it ends
/// for good. The seed is printed, so a run can be repeated.
fn killer(slot: u64) {
    let w = &WATCHED.with(|w| w[slot as usize]);
    let name = &w.program.name;
    let seed = sys::rdtsc() | 1;
    println!("root: test: killing {name} {} times at random moments (seed {seed})", w.program.test_kills);
    let mut rng = seed;
    let (mut killed, mut last) = (0u32, u64::MAX);
    sys::sleep(u64::from(w.program.test_kills_after_ms) * 1_000_000);
    while killed < w.program.test_kills {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let gap = u64::from(w.program.test_kill_gap_ms) * 1_000_000;
        sys::sleep(gap / 10 + rng % (gap * 18 / 10));
        let now = INSTANCES.with(|v| match v[w.index] {
            Instance { ended: true, .. } => Err(()),
            // Not while a restart is still under way (a dependent stopped
            // and not started again, a program not yet started): each kill
            // then meets a settled system, so every kill is one whole
            // round of recovery, however fast the machine.
            _ if RECOVERING.load(Ordering::SeqCst) > 0
                || !v.iter().all(|i| i.ended || (i.process.is_some() && !i.pending)) =>
            {
                Ok(false)
            }
            Instance { process: Some(p), generation, .. } if generation != last => {
                last = generation;
                Ok(p.kill(TEST_KILL_EXIT).is_ok())
            }
            _ => Ok(false),
        });
        match now {
            Err(()) => break,
            Ok(true) => killed += 1,
            Ok(false) => {}
        }
    }
    println!("root: test: killed {name} {killed} times");
}

/// Every program watched, by the slot its watcher thread is given.
static WATCHED: SpinLock<Vec<Watched>> = SpinLock::new(Vec::new());
static DONE: AtomicUsize = AtomicUsize::new(0);
static FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Whether the restart policy asks for another instance after `status`.
fn wants_restart(policy: Restart, status: ExitStatus) -> bool {
    match policy {
        Restart::Never => false,
        Restart::Always => true,
        Restart::OnFailure => status != ExitStatus::Exited(0),
    }
}

/// Watcher thread: waits for program `i` to end, reports how, restarts it
/// when its policy says so (within the rate limit), and counts it done
/// once it has ended for good.
fn watch(slot: u64) {
    let w = &WATCHED.with(|w| w[slot as usize]);
    let name = &w.program.name;
    let mut process = w.process;
    let mut restarts: Vec<u64> = Vec::new(); // when, for the rate limit
    let mut backoff = FIRST_BACKOFF_NS;
    let policy = &w.program;
    let (max_restarts, window_s) = (policy.max_restarts as usize, policy.restart_window_s as u64);
    let window_ns = window_s * 1_000_000_000;
    let mut started = sys::clock();
    loop {
        let status = match process.wait() {
            Ok(s) => s,
            Err(e) => {
                println!("root: lost track of {name}: {}", e.name());
                FAILURES.fetch_add(1, Ordering::SeqCst);
                break;
            }
        };
        // The heartbeat no longer names it (its slot may be reused).
        set_instance(w.index, |i| {
            i.process = None;
            i.last = Some(status);
        });
        // What it held of the process service goes with it: its pipe
        // ends, and the programs it started (which no later instance knows).
        procs::client_ended(w.index as u64 + 1);
        let _ = caps::delete(process.slot());
        let pending = INSTANCES.with(|v| core::mem::take(&mut v[w.index].pending));
        if pending && status == ExitStatus::Exited(DEPENDENCY_RESTART_EXIT) {
            if let Some(p) = restart_after_dependencies(w) {
                (process, started) = (p, sys::clock());
                continue;
            }
        }
        let outcome = match status {
            ExitStatus::Exited(c) => alloc::format!("exited with code {c}"),
            ExitStatus::Faulted(v) => alloc::format!("killed by CPU exception {v}"),
        };
        if wants_restart(w.program.restart, status) {
            let now = sys::clock();
            if policy.stable_after_s > 0 && now - started >= policy.stable_after_s as u64 * 1_000_000_000 {
                // It ran long enough to count as recovered.
                restarts.clear();
                backoff = FIRST_BACKOFF_NS;
            }
            restarts.retain(|t| now - *t < window_ns);
            if restarts.len() < max_restarts {
                restarts.push(now);
                println!(
                    "root: {name} {outcome}; restarting it in {} ms (restart {} of at most {max_restarts} in {window_s} s)",
                    backoff / 1_000_000,
                    restarts.len(),
                );
                let _round = Round::begin();
                sys::sleep(backoff);
                backoff = (backoff * 2).min(u64::from(w.program.max_backoff_ms) * 1_000_000);
                match with_supervisor(|s| s.start(w.index)) {
                    Ok(p) => {
                        println!("root: restarted {name}");
                        set_instance(w.index, |i| {
                            i.process = Some(p);
                            i.generation += 1;
                        });
                        process = p;
                        started = sys::clock();
                        restart_dependents(w.index);
                        tell_dependents(w.index);
                        continue;
                    }
                    Err(e) => println!("root: cannot restart {name}: {e}"),
                }
            } else {
                // `restart = always` restarts clean endings too: those did
                // not fail.
                let ended = if status == ExitStatus::Exited(0) { "ended" } else { "failed" };
                println!("root: {name} {ended} {} times in {window_s} s; not restarting it", max_restarts + 1);
            }
        }
        // It ended for good: whoever calls the endpoints it served gets a
        // definite `Gone`, now and later, instead of waiting forever.
        for served in &w.program.serves {
            let closed = with_supervisor(|s| s.endpoints.iter().find(|(n, _)| n == served).map(|(_, ep)| ep.close()));
            match closed {
                Some(Ok(())) => println!("root: {name} is gone for good; closed its endpoint {served}"),
                Some(Err(e)) => println!("root: cannot close endpoint {served}: {}", e.name()),
                None => {}
            }
        }
        if check(w.program.expect.as_ref(), status) {
            println!("root: {name} {outcome}");
        } else {
            println!("root: {name} {outcome}, expected {:?}: UNEXPECTED", w.program.expect);
            FAILURES.fetch_add(1, Ordering::SeqCst);
        }
        break;
    }
    set_instance(w.index, |i| i.ended = true);
    close_orphaned_endpoints();
    DONE.fetch_add(1, Ordering::SeqCst);
}

/// Endpoints closed because their clients had all ended for good.
static ORPHANED: SpinLock<Vec<&'static str>> = SpinLock::new(Vec::new());

/// Closes each endpoint whose clients (the programs that hold it without
/// serving it) have all ended for good while its server still runs: the
/// server's wait then ends with `Gone` and it stops, instead of waiting
/// for ever for a client that cannot come (a driver whose file server
/// was given up on, say). An endpoint no program is a client of (served
/// to the outside world) is left alone.
fn close_orphaned_endpoints() {
    let programs = &with_supervisor(|s| s.manifest).programs;
    let ended: Vec<bool> = INSTANCES.with(|v| v.iter().map(|i| i.ended).collect());
    for (si, server) in programs.iter().enumerate().filter(|(si, _)| !ended[*si]) {
        for served in &server.serves {
            let mut clients = programs
                .iter()
                .enumerate()
                .filter(|(j, p)| *j != si && p.endpoints.contains(served) && !p.serves.contains(served))
                .peekable();
            if clients.peek().is_none() || !clients.all(|(j, _)| ended[j]) {
                continue;
            }
            let first = ORPHANED.with(|o| {
                let new = !o.contains(&served.as_str());
                if new {
                    o.push(served.as_str());
                }
                new
            });
            if !first {
                continue;
            }
            let closed = with_supervisor(|s| s.endpoints.iter().find(|(n, _)| n == served).map(|(_, ep)| ep.close()));
            match closed {
                Some(Ok(())) => println!(
                    "root: every client of {served} has ended for good; closed it, so that {} stops waiting",
                    server.name
                ),
                Some(Err(e)) => println!("root: cannot close endpoint {served}: {}", e.name()),
                None => {}
            }
        }
    }
}

/// After program `index` restarted: stops every program that runs after
/// it (directly, or after one of those) and asks to be restarted with it
/// (`on_dependency_restart = restart`), all at once, last first; each is
/// started again by its watcher once what it runs after runs again
/// ([`restart_after_dependencies`]), so they come back in dependency
/// order. Restarts for a dependency count against no restart limit.
fn restart_dependents(index: usize) {
    let programs = &with_supervisor(|s| s.manifest).programs;
    let mut chosen = alloc::vec![false; programs.len()];
    chosen[index] = true;
    for (j, p) in programs.iter().enumerate() {
        let after_chosen =
            p.after.iter().any(|a| programs.iter().position(|q| q.name == *a).is_some_and(|d| chosen[d]));
        if j != index && p.on_dependency_restart == OnDependencyRestart::Restart && after_chosen {
            chosen[j] = true;
        }
    }
    chosen[index] = false;
    // The manifest lists programs in dependency order: stop the last first.
    INSTANCES.with(|v| {
        for j in (0..programs.len()).rev().filter(|j| chosen[*j]) {
            if let Some(p) = v[j].process {
                if p.kill(DEPENDENCY_RESTART_EXIT).is_ok() {
                    v[j].pending = true;
                    println!("root: stopping {} to start it again after {}", programs[j].name, programs[index].name);
                }
            }
        }
    });
}

/// Tells the programs that run after program `index` and attach again by
/// themselves (`on_dependency_restart = reattach`) that it restarted: the
/// bit for its place in their `after` on their supervisor notification.
fn tell_dependents(index: usize) {
    let manifest = with_supervisor(|s| s.manifest);
    let name = &manifest.programs[index].name;
    for (j, p) in manifest.programs.iter().enumerate() {
        let Some(pos) = p.after.iter().position(|a| a == name) else { continue };
        if p.on_dependency_restart != OnDependencyRestart::Reattach || INSTANCES.with(|v| v[j].process.is_none()) {
            continue;
        }
        let told = with_supervisor(|s| s.grants[j].as_ref().map(|g| loader::signal_supervisor(g, dependency_bit(pos))));
        match told {
            Some(Ok(())) => println!("root: told {} that {name} restarted", p.name),
            Some(Err(e)) => println!("root: cannot tell {} that {name} restarted: {}", p.name, e.name()),
            None => {}
        }
    }
}

/// For a program stopped by [`restart_dependents`]: waits until every
/// program it runs after runs again (or has ended for good), then starts
/// it again; the new instance, or `None` if it could not be started.
fn restart_after_dependencies(w: &Watched) -> Option<Process> {
    let programs = &with_supervisor(|s| s.manifest).programs;
    let deps: Vec<usize> = w.program.after.iter().filter_map(|a| programs.iter().position(|p| p.name == *a)).collect();
    while !INSTANCES.with(|v| deps.iter().all(|d| v[*d].ended || (v[*d].process.is_some() && !v[*d].pending))) {
        sys::sleep(1_000_000);
    }
    match with_supervisor(|s| s.start(w.index)) {
        Ok(p) => {
            println!("root: restarted {} after {}", w.program.name, w.program.after.join(", "));
            set_instance(w.index, |i| {
                i.process = Some(p);
                i.generation += 1;
            });
            tell_dependents(w.index);
            Some(p)
        }
        Err(e) => {
            println!("root: cannot restart {}: {e}", w.program.name);
            None
        }
    }
}

/// Whether `status` is what the manifest expected (no expectation: a clean
/// exit with code 0).
fn check(expect: Option<&Expect>, status: ExitStatus) -> bool {
    match (expect, status) {
        (None, ExitStatus::Exited(0)) => true,
        (Some(Expect::Exit(want)), ExitStatus::Exited(got)) => *want == got,
        (Some(Expect::Fault(None)), ExitStatus::Faulted(_)) => true,
        (Some(Expect::Fault(Some(want))), ExitStatus::Faulted(got)) => *want == got,
        _ => false,
    }
}

fn fatal(msg: &str) -> i32 {
    println!("root: fatal: {msg}");
    let _ = Power::from_slot(slot::POWER).shutdown(2);
    2
}
