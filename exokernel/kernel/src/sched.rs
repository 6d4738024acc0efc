//! Round-robin scheduling: who runs next, the timer tick, and the way out
//! of the kernel.

use crate::arch::cpu;
use crate::arch::trap;
use crate::kernel::Kernel;
use crate::object::{ThreadId, ThreadState};

/// Preemption tick (time slice): 10 ms.
pub const TICK_NS: u64 = 10_000_000;

/// After an interrupt entry: the thread's FPU state, saved by the entry
/// stub in the scratch area, becomes its saved copy.
pub fn save_interrupted_fpu(k: &mut Kernel) {
    k.fpu_live = false;
    let Some(t) = k.current else { return };
    let th = k.thread_mut(t).expect("current thread exists");
    th.fpu.0.copy_from_slice(&trap::EXO_FPU_SCRATCH.get().0);
    th.fpu_saved = true;
}

/// Timer interrupt: ends timed waits whose deadline has passed and the
/// current time slice.
pub fn tick(k: &mut Kernel) {
    k.ticks += 1;
    k.need_resched = true;
    let now = k.clock.now();
    let expired: alloc::vec::Vec<ThreadId> = k
        .timed
        .iter()
        .copied()
        .filter(|t| k.thread(*t).is_none_or(|th| th.deadline.is_some_and(|d| d <= now)))
        .collect();
    for t in expired {
        k.timed.retain(|x| *x != t);
        k.expire(t);
    }
}

/// Leaves the kernel: resumes the current thread if it may go on, else the
/// next runnable one, else idles until an interrupt.
pub fn schedule(k: &mut Kernel) -> ! {
    let cur = k.current.filter(|t| k.thread(*t).is_some_and(|th| th.state == ThreadState::Runnable));
    let next = match cur {
        Some(c) if !k.need_resched || k.run_queue.is_empty() => Some(c),
        Some(c) => {
            k.run_queue.push_back(c);
            k.run_queue.pop_front()
        }
        None => k.run_queue.pop_front(),
    };
    k.need_resched = false;
    match next {
        Some(t) => resume(k, t),
        None => {
            save_live_fpu(k);
            k.current = None;
            trap::enter_idle()
        }
    }
}

/// Leaves the kernel straight into `next` (the IPC fast path's hand-off),
/// bypassing the run queue: `next` is runnable and on no queue, lives at
/// `th`, and the fast path has already saved the caller's FPU state.
#[inline(always)]
pub fn switch_to(k: &mut Kernel, next: ThreadId, th: *const crate::object::Thread) -> ! {
    debug_assert!(!k.fpu_live);
    k.current = Some(next);
    // SAFETY: the fast path found `next` live at `th` just now.
    let th = unsafe { &*th };
    enter_address_space(th.pml4);
    trap::return_to_syscaller(&th.frame, th.fpu_saved.then_some(&th.fpu))
}

/// The thread that entered by SYSCALL still has its FPU state only in the
/// CPU; keep a copy before another thread's state replaces it.
fn save_live_fpu(k: &mut Kernel) {
    if !core::mem::take(&mut k.fpu_live) {
        return;
    }
    if let Some(th) = k.current.and_then(|c| k.thread_mut(c)) {
        th.fpu.save();
        th.fpu_saved = true;
    }
}

/// Loads the address space `pml4` unless it is the current one.
#[inline(always)]
fn enter_address_space(pml4: u64) {
    if cpu::read_cr3() != pml4 {
        // SAFETY: every process table maps the kernel half like the
        // kernel's own (copied at creation, never changed).
        unsafe { cpu::write_cr3(pml4) };
    }
}

fn resume(k: &mut Kernel, t: ThreadId) -> ! {
    // Resuming the thread whose state is live in the CPU: nothing to load.
    let keep_live = k.current == Some(t) && k.fpu_live;
    if !keep_live {
        save_live_fpu(k);
    }
    k.fpu_live = false;
    k.current = Some(t);
    let th = k.thread(t).expect("runnable thread exists");
    enter_address_space(th.pml4);
    let fpu = (th.fpu_saved && !keep_live).then_some(&th.fpu);
    trap::return_to_user(&th.frame, fpu)
}
