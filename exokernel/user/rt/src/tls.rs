//! Thread-local storage, x86-64's variant II as static C programs expect
//! it: each thread has a block holding a copy of the program's `PT_TLS`
//! template (initialised bytes, then zeros) and, right after it, a thread
//! control block whose first word points at itself; the thread's FS base
//! (kept per thread by the kernel, `thread_set_tls`) is that control
//! block. Code compiled with the local-exec model (`%fs:x@tpoff`, what C
//! `__thread` variables in a static program become) then finds its own
//! copy, and the runtime finds the thread's number.
//!
//! Blocks come from the heap and, like thread stacks, are never freed.

use alloc::alloc::{alloc_zeroed, Layout};
use core::sync::atomic::{AtomicU64, Ordering};
use exo_abi::{Error, Sys};

/// The template, from the start-up block: address, initialised bytes,
/// bytes per thread, alignment.
static TEMPLATE: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
/// The next thread number (the first thread is 1).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The thread control block, at the FS base.
#[repr(C)]
struct Tcb {
    /// Its own address (`%fs:0`, as the ABI asks).
    self_ptr: u64,
    /// The thread's number in this process.
    id: u64,
    /// The notification the thread parks on (its slot + 1; 0: not made
    /// yet; `u64::MAX`: none can be made, so parking yields).
    parker: u64,
    /// Words the program keeps per thread ([`local`], [`set_local`]).
    words: [u64; LOCAL_WORDS],
}

/// How many words [`local`] offers.
pub const LOCAL_WORDS: usize = 4;

/// The calling thread's control block.
fn tcb() -> *mut Tcb {
    thread_pointer() as *mut Tcb
}

/// Word `i` of the calling thread's own words (0 until set); what a
/// Rust `thread_local!` would be, for the few the runtime's users need
/// (rumpglue's current lwp, say).
pub fn local(i: usize) -> u64 {
    // SAFETY: the calling thread's own control block, which only it uses.
    unsafe { (*tcb()).words[i] }
}

/// Sets word `i` of the calling thread's own words.
pub fn set_local(i: usize, v: u64) {
    // SAFETY: as in `local`.
    unsafe { (*tcb()).words[i] = v };
}

/// The notification the calling thread parks on, made from the
/// process's budget the first time (`None` if it has none to give).
pub(crate) fn parker() -> Option<crate::caps::Notification> {
    // SAFETY: as in `local`.
    let t = unsafe { &mut *tcb() };
    if t.parker == 0 {
        let made = crate::caps::Untyped::from_slot(exo_abi::slot::UNTYPED).create_notification();
        t.parker = made.map_or(u64::MAX, |n| n.slot() + 1);
    }
    (t.parker != u64::MAX).then(|| crate::caps::Notification::from_slot(t.parker - 1))
}

/// Records the template and gives the first thread its block.
pub(crate) fn init(template: [u64; 4]) -> Result<(), Error> {
    for (slot, v) in TEMPLATE.iter().zip(template) {
        slot.store(v, Ordering::Relaxed);
    }
    enter_new_thread()
}

/// Gives the calling (new) thread its block and number.
pub(crate) fn enter_new_thread() -> Result<(), Error> {
    let [vaddr, file_size, mem_size, align] = TEMPLATE.each_ref().map(|a| a.load(Ordering::Relaxed));
    let align = align.max(1);
    // The linker placed each variable at `offset - round_up(mem_size,
    // align)` from the thread pointer; the pointer itself is aligned for
    // the control block too.
    let data = mem_size.next_multiple_of(align);
    let tp_align = align.max(core::mem::align_of::<Tcb>() as u64);
    let before_tp = data.next_multiple_of(tp_align);
    let size = before_tp + core::mem::size_of::<Tcb>() as u64;
    let layout = Layout::from_size_align(size as usize, tp_align as usize).map_err(|_| Error::InvalidArgument)?;
    // SAFETY: the layout has a non-zero size (the control block).
    let base = unsafe { alloc_zeroed(layout) };
    if base.is_null() {
        return Err(Error::OutOfMemory);
    }
    let tp = base as u64 + before_tp;
    let block = (tp - data) as *mut u8;
    // SAFETY: the template's initialised bytes lie in our loaded image
    // (the loader checked that); the block has `data >= file_size` bytes
    // from `block`, and the control block fits after `tp`, both inside
    // the allocation, which nothing else uses.
    unsafe {
        core::ptr::copy_nonoverlapping(vaddr as *const u8, block, file_size as usize);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        (tp as *mut Tcb).write(Tcb { self_ptr: tp, id, parker: 0, words: [0; LOCAL_WORDS] });
    }
    crate::sys::call(Sys::ThreadSetTls, [tp, 0, 0, 0, 0, 0]).map(|_| ())
}

/// The calling thread's number in this process (the first thread is 1,
/// then in the order threads were started).
pub fn thread_id() -> u64 {
    let id: u64;
    // SAFETY: every thread of an exo-rt program gets its control block
    // before any of its code runs; word 1 of it is the number.
    unsafe { core::arch::asm!("mov {}, qword ptr fs:[8]", out(reg) id, options(nostack, readonly, preserves_flags)) };
    id
}

/// The calling thread's pointer (its FS base), as `%fs:0` reads it.
pub fn thread_pointer() -> u64 {
    let tp: u64;
    // SAFETY: as in `thread_id`: word 0 of the control block.
    unsafe { core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags)) };
    tp
}
