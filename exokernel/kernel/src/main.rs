//! ExoV6: an exokernel for x86_64.
//!
//! Design principles, in order of priority:
//!
//! 1. **Multiplex the hardware securely; decide nothing else.** The kernel
//!    hands out memory, CPU time and devices through capabilities and
//!    checks them. Which program runs, with what, and what happens when it
//!    dies is policy, and policy lives in user space (the root task reads
//!    the boot manifest; the kernel never parses one).
//! 2. **Authority is a capability you hold.** Every system call names the
//!    objects it acts on by capability slot and needs the matching rights.
//! 3. **Untrusted input is decoded, then acted on.** Every argument is
//!    checked before any state changes; bad input gets a precise error, a
//!    faulting program gets killed with a report, and the kernel goes on.
//! 4. **Simple and clear over fast and clever.** One CPU, one kernel stack,
//!    no preemption inside the kernel (as seL4): interrupts are taken only
//!    from user mode or the idle loop.
//! 5. **Unsafe code is rare and explained.** It lives in `arch`, `mm` and
//!    `usercopy`; every block carries a `SAFETY` comment. The logic that
//!    can be tested on a host lives in `exo-kcore`, `exo-elf` and
//!    `exo-bootimg`.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod bootstrap;
mod cap;
mod console;
mod fault;
mod ipc;
mod kernel;
mod mm;
mod object;
mod pci;
mod platform;
mod pvh;
mod sched;
mod seal;
mod syscall;
mod usercopy;

use alloc::vec::Vec;
use arch::trap::TrapFrame;
use arch::{apic, cpu, serial, trap};
use core::cell::UnsafeCell;
use kernel::{Clock, Kernel};
use object::Untyped;

#[allow(unused_imports)] // linked for memcpy & co., referenced by no Rust path
use exo_freestanding as _;

/// The one kernel instance. Reached only through [`kernel`].
struct KernelCell(UnsafeCell<Option<Kernel>>);
// SAFETY: one CPU, and kernel code runs with interrupts disabled, so no
// two accesses ever overlap in time.
unsafe impl Sync for KernelCell {}
static KERNEL: KernelCell = KernelCell(UnsafeCell::new(None));

/// The kernel state, for an entry point (trap or system call).
///
/// Each entry calls this once and passes the reference down; entries never
/// nest (interrupts are off in the kernel), so there is never a second
/// live `&mut`.
fn kernel() -> &'static mut Kernel {
    // SAFETY: see above; `kmain` initialises the cell before the first
    // entry from user mode or the idle loop can happen.
    unsafe { (*KERNEL.0.get()).as_mut().expect("kernel initialised") }
}

/// [`kernel`] without the check, for the IPC fast path.
///
/// # Safety
/// Only for an entry from user mode: there is no user mode before `kmain`
/// has initialised the cell.
#[inline(always)]
unsafe fn kernel_unchecked() -> &'static mut Kernel {
    // SAFETY: the caller's promise, and as for `kernel`.
    unsafe { (*KERNEL.0.get()).as_mut().unwrap_unchecked() }
}

/// Rust entry from `boot.rs`: 64-bit mode, higher half, interrupts off.
#[no_mangle]
extern "C" fn kmain(start_info: u64) -> ! {
    let tsc_at_entry = cpu::rdtsc();
    serial::init();
    kprintln!("ExoV6 exokernel booting (TSC {tsc_at_entry})");
    let info = match pvh::parse(start_info) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    };
    let (mut frames, ignored) = mm::init_frames(&info);
    let total_mib = (frames.managed_count() as u64 * 4096) >> 20;
    kprintln!("memory: {total_mib} MiB usable in {} regions, {} frames free", info.region_count, frames.free_count());
    if ignored > 0 {
        kprintln!("memory: {} MiB above 4 GiB ignored (direct map covers 4 GiB)", ignored >> 20);
    }
    // Heap: 1/16 of memory, between 4 and 64 MiB.
    let heap_pages = (frames.free_count() / 16).clamp(1024, 16384);
    let heap = mm::init_heap(&mut frames, heap_pages).expect("no memory for the kernel heap");
    kprintln!("heap: {} KiB", heap >> 10);

    cpu::init(trap::syscall_entry_address());
    if cpu::enable_umip() {
        kprintln!("UMIP: on (SGDT, SIDT, SLDT, SMSW and STR fault in user mode)");
    } else {
        kprintln!(
            "UMIP: not on this CPU (SGDT, SIDT, SLDT, SMSW and STR show descriptor-table addresses to user mode)"
        );
    }
    trap::init_idt();
    // The timers are measured against the PIT while the rest starts.
    let calibrating = apic::start_calibration();
    match arch::ioapic::init() {
        0 => kprintln!("I/O APIC: none answers at 0xfec00000 (no interrupt lines for drivers)"),
        n => kprintln!("I/O APIC: {n} interrupt lines, all masked until a driver binds one"),
    }

    // Leave the boot page tables (identity map, the whole image writable
    // and executable) for the kernel's own: W^X by section, direct map not
    // executable, no low mappings.
    let kernel_pml4 = mm::protect_kernel(&mut frames, cpu::read_cr3());

    // Keep frames back for page tables and kernel objects; the rest is the
    // root task's untyped budget.
    let reserve = (frames.free_count() / 16).max(512);
    let budget = frames.free_count().saturating_sub(reserve) as u64;
    // Three quarters of the heap is the root task's to spend on kernel
    // objects (and to pass on in budgets); the rest stays the kernel's
    // (the root task's own records, allocator slack).
    let kernel_budget = heap / 4 * 3;
    let (seal_key, from_rdrand) = seal::boot_key();
    if from_rdrand {
        kprintln!("sealing key: 256 bits from RDRAND");
    } else {
        kprintln!("sealing key: no RDRAND on this CPU; derived from TSC jitter (weak: predictable to whoever can replay this boot)");
    }
    let tsc0 = cpu::rdtsc();
    let wall0 = match crate::arch::rtc::now() {
        Some(t) => {
            kprintln!(
                "wall clock: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC from the CMOS real-time clock",
                t.year,
                t.month,
                t.day,
                t.hour,
                t.minute,
                t.second
            );
            t.unix_seconds() * 1_000_000_000
        }
        None => {
            kprintln!("wall clock: no real-time clock answers; counting from 2000-01-01");
            946_684_800 * 1_000_000_000
        }
    };
    let cal = apic::finish_calibration(calibrating, sched::TICK_NS);
    kprintln!(
        "timer: TSC {} MHz, APIC timer {} kHz, tick {} ms",
        cal.tsc_hz / 1_000_000,
        cal.apic_hz / 1000,
        sched::TICK_NS / 1_000_000
    );
    let clock = Clock::new(tsc0, cal.tsc_hz, wall0);
    // SAFETY: single initialisation before any entry point can run.
    unsafe {
        *KERNEL.0.get() = Some(Kernel {
            frames,
            procs: Vec::new(),
            free_procs: Vec::new(),
            orphans: Vec::new(),
            threads: Vec::new(),
            thread_gens: Vec::new(),
            mems: Vec::new(),
            untyped: alloc::vec![Untyped::new(budget, kernel_budget, None)],
            sched: exo_kcore::sched::Scheduler::new(),
            timed: Vec::new(),
            endpoints: Vec::new(),
            notifications: Vec::new(),
            cdt: exo_kcore::cdt::Cdt::new(),
            next_generation: 0,
            seal_keys: alloc::vec![Some(kernel::SealKeySlot { key: seal_key, owner: None })],
            drbg_counter: 0,
            current: None,
            need_resched: false,
            io_loaded: Vec::new(),
            ticks: 0,
            pci_bars: Vec::new(),
            on_cpu: None,
            on_cpu_since: 0,
            ended_cpu: Vec::with_capacity(kernel::ENDED_NAMES + 1),
            calls: 0,
            clock,
            kernel_pml4,
            irqs: alloc::vec![None; 256],
            memory_map: info.regions[..info.region_count]
                .iter()
                .map(|r| (r.start, r.start.saturating_add(r.len), r.kind))
                .collect(),
        })
    };
    let k = kernel();
    let Some((image_start, image_size)) = info.module else {
        panic!("no boot image: start QEMU with -initrd <boot image> (scripts/run-qemu does)")
    };
    match bootstrap::start_root(k, 0, image_start, image_size, info.cmdline()) {
        Ok(_) => kprintln!(
            "root task started from boot image ({} KiB), untyped budget {} MiB and {} KiB of kernel memory",
            image_size >> 10,
            (budget * 4096) >> 20,
            kernel_budget >> 10
        ),
        Err(e) => panic!("cannot start the root task: {e}"),
    }
    sched::schedule(k)
}

/// Entry from the SYSCALL instruction (see `trap.rs`) for every call the
/// IPC fast path ([`ipc::fastpath`]) left alone.
///
/// # Safety
/// `frame` is the current thread's own frame, just saved by the SYSCALL
/// entry; only the arguments are read from it here, before anything else
/// touches the thread.
#[inline(never)]
pub unsafe extern "C" fn syscall_from_user(frame: *const TrapFrame) -> ! {
    // SAFETY: the caller's promise; the frame lives (boxed) as long as the
    // thread, and nothing else accesses it until the copy below is done.
    let f = unsafe { &*frame };
    let k = kernel();
    let t = k.current.expect("a system call comes from a running thread");
    let args = syscall::Args::from_frame(f);
    match syscall::dispatch(k, t, &args) {
        syscall::Outcome::Return(v) => {
            k.thread_mut(t).expect("caller still exists").ctx.frame.rax = v;
        }
        syscall::Outcome::Blocked | syscall::Outcome::Gone => {}
    }
    sched::schedule(k)
}

/// Entry from an interrupt or exception taken in user mode; `frame` is the
/// current thread's own frame.
#[no_mangle]
extern "C" fn trap_from_user(frame: *const TrapFrame) -> ! {
    // SAFETY: as for `syscall_from_user`; copied before the kernel runs.
    let frame = unsafe { *frame };
    let k = kernel();
    handle_interrupt(k, &frame);
    sched::schedule(k)
}

/// Entry from an interrupt taken in ring 0: legitimately only from the idle
/// loop; an exception here is a kernel bug.
#[no_mangle]
extern "C" fn trap_from_kernel(frame: &TrapFrame) -> ! {
    if frame.vector < 32 {
        fault::kernel_exception(frame);
    }
    sched::idle_ended();
    let k = kernel();
    handle_interrupt(k, frame);
    sched::schedule(k)
}

fn handle_interrupt(k: &mut Kernel, frame: &TrapFrame) {
    match frame.vector {
        v if v < 32 => fault::user_exception(k, frame),
        v if v == apic::TIMER_VECTOR as u64 => {
            apic::eoi();
            sched::tick(k);
        }
        v if v == apic::SPURIOUS_VECTOR as u64 => {}
        v if (exo_abi::DEVICE_VECTOR_FIRST..=exo_abi::DEVICE_VECTOR_LAST).contains(&v) => {
            apic::eoi();
            sched::DEVICE_INTERRUPTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            k.device_interrupt(v as usize);
        }
        0x20..=0x2f => {} // a stray legacy PIC interrupt: all lines are masked
        v => {
            kprintln!("unexpected interrupt vector {v}");
            apic::eoi();
        }
    }
}

/// Exits QEMU through the isa-debug-exit device (status `2 * (0x10 +
/// code) + 1`); without that device, asks ACPI (q35 PM1a) to power off;
/// failing both, halts.
fn power_off(code: u64) -> ! {
    cpu::outl(0xf4, (0x10 + code.min(0x6f)) as u32);
    cpu::outw(0x604, 0x2000);
    kprintln!("power off failed; halting");
    cpu::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::print(format_args!("[kernel] PANIC: {info}\n"));
    // Status 3 from QEMU: distinct from any shutdown code.
    cpu::outl(0xf4, 1);
    cpu::halt_forever()
}
