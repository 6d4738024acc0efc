//! Threads in the calling process, with stacks taken from the heap.

use crate::caps::SELF;
use crate::sync::Event;
use alloc::boxed::Box;
use alloc::sync::Arc;
use exo_abi::Error;

/// Stack size of threads started by [`spawn`].
pub const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

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

/// Starts `f(arg)` on a new thread of this process. The stack (16 KiB) is
/// never freed: a thread cannot free the stack it runs on.
pub fn spawn(f: fn(u64), arg: u64) -> Result<u64, Error> {
    let stack = Box::leak(Box::new(Stack([0; STACK_SIZE])));
    start(f, arg, stack.0.as_ptr() as u64 + STACK_SIZE as u64)
}

/// [`spawn`] with a stack of `stack_bytes` (rounded up to 16 bytes), for
/// code that needs more than 16 KiB (a rump kernel's threads, say).
pub fn spawn_with_stack(f: fn(u64), arg: u64, stack_bytes: usize) -> Result<u64, Error> {
    let bytes = stack_bytes.max(STACK_SIZE).next_multiple_of(16);
    let layout = core::alloc::Layout::from_size_align(bytes, 16).map_err(|_| Error::InvalidArgument)?;
    // SAFETY: a non-zero size.
    let base = unsafe { alloc::alloc::alloc(layout) };
    if base.is_null() {
        return Err(Error::OutOfMemory);
    }
    start(f, arg, base as u64 + bytes as u64)
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
