//! Threads in the calling process, with stacks taken from the heap.

use crate::caps::SELF;
use alloc::boxed::Box;
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
    let top = stack.0.as_ptr() as u64 + STACK_SIZE as u64;
    let start = Box::into_raw(Box::new(Start { f, arg }));
    // `trampoline` is a C function: it expects rsp % 16 == 8, as if a
    // return address had been pushed.
    SELF.spawn_thread(trampoline as *const () as u64, top - 8, start as u64).inspect_err(|_| {
        // SAFETY: the thread was not created, so we still own the box.
        drop(unsafe { Box::from_raw(start) });
    })
}
