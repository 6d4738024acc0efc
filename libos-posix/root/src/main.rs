//! The root task: the first and only process the kernel starts.
//!
//! It holds every initial capability, reads the boot manifest from the
//! boot image, starts each program in dependency order with exactly the
//! capabilities its entry grants, then waits for them and reports how each
//! one ended. When every program has ended it does what `[system] on_idle`
//! says (power off, with success only if every `expect` held, or halt).
#![no_std]
#![no_main]

extern crate alloc;

mod loader;
mod pci;

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use exo_abi::{slot, ExitStatus, PAGE_SIZE};
use exo_manifest::{Expect, Manifest, OnIdle, Program};
use exo_rt::caps::{self, Memory, PciBus, Power, Process, Untyped, SELF};
use exo_rt::{println, sys};

exo_rt::entry!(main);

/// Where the root task maps the boot image in its own address space.
const IMAGE_VA: u64 = 0x0000_2000_0000_0000;

fn main(_args: &str) -> i32 {
    // SAFETY: RDTSC is allowed in user mode. Under `-icount shift=0` this
    // counts guest instructions since reset (scripts/bench reads it).
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    println!("root: up at TSC {tsc}");
    let image_mem = Memory::from_slot(slot::BOOT_IMAGE);
    let image = match map_boot_image(image_mem) {
        Ok(bytes) => bytes,
        Err(e) => return fatal(&alloc::format!("cannot map the boot image: {e}")),
    };
    let image = match exo_bootimg::BootImage::parse(image) {
        Ok(i) => i,
        Err(e) => return fatal(&alloc::format!("boot image: {e}")),
    };
    let Some(text) = image.find("manifest") else {
        return fatal("boot image has no `manifest`");
    };
    let Ok(text) = core::str::from_utf8(text.data) else {
        return fatal("manifest is not UTF-8");
    };
    let manifest = match exo_manifest::parse(text) {
        Ok(m) => m,
        Err(e) => return fatal(&alloc::format!("{e}")),
    };
    println!("root: manifest lists {} programs", manifest.programs.len());
    run(&image, &manifest)
}

fn map_boot_image(mem: Memory) -> Result<&'static [u8], exo_abi::Error> {
    let pages = mem.pages()?;
    SELF.map(mem, IMAGE_VA, exo_abi::map_flags::READ)?;
    // SAFETY: the kernel just mapped `pages` pages read-only at IMAGE_VA,
    // and the root task never unmaps them.
    Ok(unsafe { core::slice::from_raw_parts(IMAGE_VA as *const u8, (pages * PAGE_SIZE) as usize) })
}

fn run(image: &exo_bootimg::BootImage, manifest: &Manifest) -> i32 {
    let untyped = Untyped::from_slot(slot::UNTYPED);
    let endpoints = match loader::create_endpoints(manifest, untyped) {
        Ok(e) => e,
        Err(e) => return fatal(&alloc::format!("{e}")),
    };
    let bus = PciBus::from_slot(slot::PCI);
    let mut devices = match pci::enumerate(bus) {
        Ok(f) => f,
        Err(e) => {
            println!("root: cannot enumerate PCI: {}; no devices for drivers", e.name());
            alloc::vec::Vec::new()
        }
    };
    let mut started: alloc::vec::Vec<(&Program, Process)> = alloc::vec::Vec::new();
    let mut failures = 0;
    for (index, program) in manifest.programs.iter().enumerate() {
        let badge = index as u64 + 1;
        let hardware = loader::Hardware { bus, functions: &mut devices };
        match loader::start(image, program, untyped, &endpoints, badge, hardware) {
            Ok(p) => {
                println!("root: started {} ({})", program.name, program.binary);
                started.push((program, p));
            }
            Err(e) => {
                println!("root: cannot start {}: {e}", program.name);
                failures += 1;
            }
        }
    }
    // One watcher thread per program, so each ending is reported when it
    // happens, and a program that never ends holds up no other report.
    let watched: &'static [Watched] = alloc::vec::Vec::leak(
        started.iter().map(|(p, proc)| Watched { name: p.name.clone(), expect: p.expect, process: *proc }).collect(),
    );
    WATCHED.store(watched as *const [Watched] as *mut Watched, Ordering::SeqCst);
    WATCHED_LEN.store(watched.len(), Ordering::SeqCst);
    for (i, w) in watched.iter().enumerate() {
        if let Err(e) = exo_rt::thread::spawn(watch, i as u64) {
            println!("root: cannot watch {}: {}", w.name, e.name());
            FAILURES.fetch_add(1, Ordering::SeqCst);
            DONE.fetch_add(1, Ordering::SeqCst);
        }
    }
    while DONE.load(Ordering::SeqCst) < watched.len() {
        sys::sleep(10_000_000);
    }
    let failures = failures + FAILURES.load(Ordering::SeqCst);
    if failures == 0 {
        println!("root: all {} programs ended as expected", started.len());
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

/// A started program the root task watches.
struct Watched {
    name: alloc::string::String,
    expect: Option<Expect>,
    process: Process,
}

static WATCHED: AtomicPtr<Watched> = AtomicPtr::new(core::ptr::null_mut());
static WATCHED_LEN: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);
static FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Watcher thread: waits for program `i` to end and reports how.
fn watch(i: u64) {
    let (ptr, len) = (WATCHED.load(Ordering::SeqCst), WATCHED_LEN.load(Ordering::SeqCst));
    // SAFETY: `run` leaked the table (it lives forever) and stored its
    // address and length before starting any watcher.
    let w = &unsafe { core::slice::from_raw_parts(ptr, len) }[i as usize];
    match w.process.wait() {
        Ok(status) => {
            let outcome = match status {
                ExitStatus::Exited(c) => alloc::format!("exited with code {c}"),
                ExitStatus::Faulted(v) => alloc::format!("killed by CPU exception {v}"),
            };
            if check(w.expect.as_ref(), status) {
                println!("root: {} {outcome}", w.name);
            } else {
                println!("root: {} {outcome}, expected {:?}: UNEXPECTED", w.name, w.expect);
                FAILURES.fetch_add(1, Ordering::SeqCst);
            }
        }
        Err(e) => {
            println!("root: lost track of {}: {}", w.name, e.name());
            FAILURES.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _ = caps::delete(w.process.slot());
    DONE.fetch_add(1, Ordering::SeqCst);
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
