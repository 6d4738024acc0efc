//! Threads in the calling process. Each stack is memory of the
//! process's budget mapped at a place of its own, with unmapped pages
//! below it: a thread that overflows its stack faults (and the process
//! ends, saying so) instead of writing over whatever lies below. A
//! process without a budget to map from gets stacks from its heap.

use crate::caps::{self, Untyped, SELF};
use crate::sync::Event;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use exo_abi::{map_flags, slot, Error, PAGE_SIZE};

/// Stack size of threads started by [`spawn`].
pub const STACK_SIZE: usize = 16 * 1024;

/// Where thread stacks are mapped, one after the other, each above
/// [`GUARD_PAGES`] pages left unmapped.
const STACKS_VA: u64 = 0x0000_7e00_0000_0000;
const STACKS_END: u64 = 0x0000_7f00_0000_0000;
const GUARD_PAGES: u64 = 4;
/// Where the next stack's guard starts.
static NEXT_STACK: AtomicU64 = AtomicU64::new(STACKS_VA);

/// A new stack of `bytes` mapped from the budget above its guard (its
/// base and top), if the process has a budget (and address space) for
/// one.
fn guarded_stack(bytes: usize) -> Option<(u64, u64)> {
    let pages = (bytes as u64).div_ceil(PAGE_SIZE);
    let span = pages.checked_add(GUARD_PAGES)?.checked_mul(PAGE_SIZE)?;
    let guard = NEXT_STACK.fetch_add(span, Ordering::Relaxed);
    let top = guard.checked_add(span).filter(|t| *t <= STACKS_END)?;
    let base = top - pages * PAGE_SIZE;
    let mem = Untyped::from_slot(slot::UNTYPED).alloc(pages).ok()?;
    let mapped = SELF.map(mem, base, map_flags::READ | map_flags::WRITE);
    // The mapping keeps the memory; the capability is not needed again.
    let _ = caps::delete(mem.slot());
    mapped.ok().map(|()| (base, top))
}

/// A new thread's stack: mapped with a guard, or from the heap.
enum Stack {
    Guarded { base: u64, top: u64 },
    Heap { base: *mut u8, layout: core::alloc::Layout },
}

impl Stack {
    /// A stack of `bytes` (a multiple of 16): guarded, or else from the
    /// heap. Never freed once a thread runs on it (a thread cannot free
    /// the stack it runs on).
    fn new(bytes: usize) -> Result<Stack, Error> {
        if let Some((base, top)) = guarded_stack(bytes) {
            return Ok(Stack::Guarded { base, top });
        }
        let layout = core::alloc::Layout::from_size_align(bytes, 16).map_err(|_| Error::InvalidArgument)?;
        // SAFETY: a non-zero size.
        let base = unsafe { alloc::alloc::alloc(layout) };
        if base.is_null() {
            return Err(Error::OutOfMemory);
        }
        Ok(Stack::Heap { base, layout })
    }

    fn top(&self) -> u64 {
        match self {
            Stack::Guarded { top, .. } => *top,
            Stack::Heap { base, layout } => *base as u64 + layout.size() as u64,
        }
    }

    /// Gives back the stack of a thread that was not created.
    fn release(self) {
        match self {
            Stack::Guarded { base, .. } => {
                let _ = SELF.unmap(base);
            }
            // SAFETY: allocated by `new` with this layout, and no thread
            // ran on it.
            Stack::Heap { base, layout } => unsafe { alloc::alloc::dealloc(base, layout) },
        }
    }
}

/// Starts `f(arg)` on a new thread with a stack of `bytes`.
fn spawn_on(f: fn(u64), arg: u64, bytes: usize) -> Result<u64, Error> {
    let stack = Stack::new(bytes)?;
    start(f, arg, stack.top()).inspect_err(|_| stack.release())
}

struct Start {
    f: fn(u64),
    arg: u64,
}

extern "C" fn trampoline(start: *mut Start) -> ! {
    // SAFETY: `spawn` leaked this box for exactly this thread.
    let start = unsafe { Box::from_raw(start) };
    if crate::tls::enter_new_thread().is_err() {
        crate::println!("exo-rt: no memory for a new thread's thread-local storage");
        crate::sys::thread_exit()
    }
    (start.f)(start.arg);
    crate::sys::thread_exit()
}

/// Starts `f(arg)` on a new thread of this process, with a stack of
/// [`STACK_SIZE`] bytes.
pub fn spawn(f: fn(u64), arg: u64) -> Result<u64, Error> {
    spawn_on(f, arg, STACK_SIZE)
}

/// [`spawn`] with a stack of `stack_bytes` (rounded up to 16 bytes), for
/// code that needs more than [`STACK_SIZE`] (a rump kernel's threads, say).
pub fn spawn_with_stack(f: fn(u64), arg: u64, stack_bytes: usize) -> Result<u64, Error> {
    spawn_on(f, arg, stack_bytes.max(STACK_SIZE).next_multiple_of(16))
}

fn start(f: fn(u64), arg: u64, top: u64) -> Result<u64, Error> {
    let start = Box::into_raw(Box::new(Start { f, arg }));
    // `trampoline` is a C function: it expects rsp % 16 == 8, as if a
    // return address had been pushed.
    SELF.spawn_thread(trampoline as *const () as u64, top - 8, start as u64).inspect_err(|_| {
        // SAFETY: the thread was not created, so we still own the box.
        drop(unsafe { Box::from_raw(start) });
    })
}

/// A thread started by [`spawn_joinable`].
pub struct JoinHandle {
    /// Set when the thread's function has returned.
    done: Arc<Event>,
    id: u64,
}

impl JoinHandle {
    /// The kernel's number for the thread.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits (blocking) until the thread's function has returned.
    pub fn join(self) {
        self.done.wait();
    }
}

type Job = (Box<dyn FnOnce() + Send>, Arc<Event>);

fn run_joinable(arg: u64) {
    // SAFETY: `spawn_joinable` leaked this box for exactly this thread.
    let (f, done) = *unsafe { Box::from_raw(arg as *mut Job) };
    f();
    done.set();
}

/// Starts the closure `f` on a new thread that can be waited for.
pub fn spawn_joinable(f: Box<dyn FnOnce() + Send>) -> Result<JoinHandle, Error> {
    let done = Arc::new(Event::new());
    let job: *mut Job = Box::into_raw(Box::new((f, done.clone())));
    match spawn(run_joinable, job as u64) {
        Ok(id) => Ok(JoinHandle { done, id }),
        Err(e) => {
            // SAFETY: the thread was not created, so the box is still ours.
            drop(unsafe { Box::from_raw(job) });
            Err(e)
        }
    }
}
