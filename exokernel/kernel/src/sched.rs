//! Scheduling mechanism: the timer tick, the way out of the kernel, and the
//! hand-over to the policy in `exo_kcore::sched` (priorities, then
//! golden-ratio weighted shares between processes, then round robin
//! between a process's threads).

use crate::arch::cpu;
use crate::arch::trap;
use crate::kernel::Kernel;
use crate::object::{ThreadId, ThreadState};

/// Preemption tick (time slice): 10 ms.
pub const TICK_NS: u64 = 10_000_000;

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
    if !k.orphans.is_empty() {
        k.reap_orphans();
    }
    let cur = k.current.filter(|t| k.thread(*t).is_some_and(|th| th.state == ThreadState::Runnable));
    if let Some(c) = cur {
        if !k.need_resched || k.sched.is_empty() {
            k.need_resched = false;
            resume(k, c)
        }
        // Its turn is over: back behind its process's other threads.
        let p = k.proc_of(c);
        k.sched.push(p.0, c);
    }
    k.need_resched = false;
    match k.sched.pick() {
        Some((_, t)) => resume(k, t),
        None => {
            k.current = None;
            charge(k, None);
            IDLE_SINCE.store(cpu::rdtsc(), core::sync::atomic::Ordering::Relaxed);
            trap::enter_idle()
        }
    }
}

/// Address-space switches since boot (CR3 loads; each one empties TLBs,
/// and QEMU's TCG its translation caches too: reported at shutdown).
pub static SWITCHES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Device interrupts taken since boot (reported at shutdown).
pub static DEVICE_INTERRUPTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// TSC ticks spent idle since boot, and when the CPU last went idle
/// (reported at shutdown, with [`SWITCHES`]).
pub static IDLE_TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static IDLE_SINCE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Counts the time since the idle loop was entered (an interrupt ended it).
pub fn idle_ended() {
    use core::sync::atomic::Ordering::Relaxed;
    let since = IDLE_SINCE.swap(0, Relaxed);
    if since != 0 {
        IDLE_TICKS.fetch_add(cpu::rdtsc().saturating_sub(since), Relaxed);
    }
}

/// Charges the time since the last change to the thread that had the
/// CPU, and starts counting for `next` (`None`: the CPU goes idle). The
/// IPC fast path does the same inline, without the lookups; a thread
/// resumed again costs one comparison.
#[inline(always)]
pub fn charge(k: &mut Kernel, next: Option<ThreadId>) {
    if k.on_cpu != next {
        charge_change(k, next);
    }
}

#[inline(never)]
fn charge_change(k: &mut Kernel, next: Option<ThreadId>) {
    let now = cpu::rdtsc();
    let since = core::mem::replace(&mut k.on_cpu_since, now);
    if let Some(th) = k.on_cpu.and_then(|t| k.thread_mut(t)) {
        th.cpu_ticks = th.cpu_ticks.wrapping_add(now.saturating_sub(since));
    }
    k.on_cpu = next;
}

/// Loads the address space `pml4` unless it is the current one.
#[inline(always)]
pub fn enter_address_space(pml4: u64) {
    if cpu::cr3() != pml4 {
        SWITCHES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        // SAFETY: every process table maps the kernel half like the
        // kernel's own (copied at creation, never changed).
        unsafe { cpu::write_cr3(pml4) };
    }
}

/// The FS base loaded in the CPU (one CPU).
static LOADED_FS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Loads a thread's FS base unless it is the one loaded (threads without
/// thread-local storage, 0, cost nothing among themselves).
#[inline(always)]
pub fn enter_tls(fs_base: u64) {
    use core::sync::atomic::Ordering::Relaxed;
    if LOADED_FS.load(Relaxed) != fs_base {
        LOADED_FS.store(fs_base, Relaxed);
        cpu::write_fs_base(fs_base);
    }
}

/// Loads process `p`'s port ranges into the I/O permission bitmap in
/// place of the ones loaded (processes that mapped none cost nothing among
/// themselves).
#[cold]
fn enter_io_maps(k: &mut Kernel, p: crate::object::ProcId) {
    for m in &k.io_loaded {
        cpu::ioports_allow(m.first, m.count, false);
    }
    k.io_loaded.clone_from(&k.procs[p.0 as usize].io_maps);
    for m in &k.io_loaded {
        cpu::ioports_allow(m.first, m.count, true);
    }
}

fn resume(k: &mut Kernel, t: ThreadId) -> ! {
    k.current = Some(t);
    let th = k.thread(t).expect("runnable thread exists");
    if !th.ctx.frame.returnable() {
        // A frame the CPU cannot return to (a non-canonical stack pointer
        // left for SYSRET, say) ends its process, never the kernel.
        let (p, rip, rsp) = (th.process, th.ctx.frame.rip, th.ctx.frame.rsp);
        crate::kprintln!(
            "process '{}' killed: cannot return to user mode at rip {rip:#x}, rsp {rsp:#x}",
            k.proc(p).name
        );
        k.exit_process(p, exo_abi::ExitStatus::Faulted(13));
        schedule(k)
    }
    enter_address_space(th.pml4);
    enter_tls(th.fs_base);
    let p = th.process;
    charge(k, Some(t));
    if k.io_loaded != k.proc(p).io_maps {
        enter_io_maps(k, p);
    }
    let th = k.thread(t).expect("runnable thread exists");
    trap::return_to_user(&th.ctx)
}
