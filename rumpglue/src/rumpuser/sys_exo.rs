//! The ExoV6 platform under the hypercalls: the interface `sys.rs` gives
//! on Linux, on the exokernel backend and the user runtime.
//!
//! - Locks and condition variables: exo-rt's `RawMutex` and `Condvar`,
//!   whose waiters block on notifications of their own; the mutex knows
//!   its holder, so an unlock by another thread is reported as the
//!   error-checking pthread mutex on Linux reports it.
//! - Threads: exo-rt threads with 64 KiB stacks; a joinable one shares a
//!   "done" flag with its joiner, set when its body returns or it calls
//!   `rumpuser_thread_exit`. Names are not kept (ExoV6 threads have none).
//! - The current lwp and errno: words of exo-rt's thread-local storage.
//! - Memory: the process's heap; anonymous mappings are zeroed, aligned
//!   heap blocks (never executable: the heap is not, W^X).
//! - Clocks: the kernel's monotonic and wall clocks. Randomness: the
//!   kernel's `random` system call.
//! - No environment: parameters come from `rumpglue::rumpuser::set_param`.
//! - Exit and signals end the process (a signal `s` as exit code 128 + s).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use core::alloc::Layout;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU64, Ordering};
use exo_rt::abi::FOREVER;
use exo_rt::sync::{Condvar, Event, Mutex, RawMutex as ExoMutex};
use exo_rt::tls;
use netbsd_sys::rumpuser::lwp;

/// Thread-local words (exo-rt's `tls::local`) this platform uses.
const LOCAL_LWP: usize = 0;
const LOCAL_DONE: usize = 1;
const LOCAL_ERRNO: usize = 2;

/// Stack of every thread a rump kernel starts.
const THREAD_STACK: usize = 64 * 1024;

/// Ends the process: a hypercall was used in a way the interface forbids
/// (a rump kernel bug) or the platform failed where it cannot.
pub(crate) fn fatal(what: &str) -> ! {
    super::misc::console_write(alloc::format!("rumpuser: fatal: {what}\n").as_bytes());
    exo_rt::sys::exit(134)
}

/// A blocking mutex that reports misuse (unlocking one not held).
pub(crate) struct RawMutex {
    m: ExoMutex,
    /// The holder's thread number (0: free).
    owner: AtomicU64,
}

impl RawMutex {
    pub(crate) fn new() -> Box<RawMutex> {
        Box::new(RawMutex { m: ExoMutex::new(), owner: AtomicU64::new(0) })
    }

    pub(crate) fn lock(&self) {
        self.m.lock();
        self.owner.store(tls::thread_id(), Ordering::Relaxed);
    }

    pub(crate) fn try_lock(&self) -> bool {
        let got = self.m.try_lock();
        if got {
            self.owner.store(tls::thread_id(), Ordering::Relaxed);
        }
        got
    }

    /// Checks that the calling thread holds it, and marks it free.
    fn release(&self, what: &str) {
        if self.owner.load(Ordering::Relaxed) != tls::thread_id() {
            fatal(&alloc::format!("{what} of a mutex this thread does not hold"));
        }
        self.owner.store(0, Ordering::Relaxed);
    }

    pub(crate) fn unlock(&self) {
        self.release("mutex unlock");
        self.m.unlock();
    }
}

/// A condition variable for [`RawMutex`], timed on the monotonic clock.
pub(crate) struct RawCond(Condvar);

impl RawCond {
    pub(crate) fn new() -> Box<RawCond> {
        Box::new(RawCond(Condvar::new()))
    }

    /// Waits; `m` must be held by the caller.
    pub(crate) fn wait(&self, m: &RawMutex) {
        m.release("cond wait");
        self.0.wait_raw(&m.m, FOREVER);
        m.owner.store(tls::thread_id(), Ordering::Relaxed);
    }

    /// Waits until `deadline` (monotonic nanoseconds); true if it passed.
    pub(crate) fn wait_until(&self, m: &RawMutex, deadline: u64) -> bool {
        let now = monotonic_ns();
        if deadline <= now {
            return true;
        }
        m.release("cond timedwait");
        let woken = self.0.wait_raw(&m.m, deadline - now);
        m.owner.store(tls::thread_id(), Ordering::Relaxed);
        !woken
    }

    pub(crate) fn signal(&self) {
        self.0.notify_one();
    }

    pub(crate) fn broadcast(&self) {
        self.0.notify_all();
    }
}

/// Nanoseconds on the kernel's monotonic clock.
pub(crate) fn monotonic_ns() -> u64 {
    exo_rt::sys::clock()
}

/// The wall clock: seconds and nanoseconds since 1970.
pub(crate) fn wall_clock() -> (i64, i64) {
    let (s, ns) = crate::Clock::wall(&crate::exo::CLOCK);
    (s, i64::from(ns))
}

/// Sleeps `sec` seconds and `nsec` nanoseconds, or until the monotonic
/// clock reads that when `absolute`; 0.
pub(crate) fn sleep(absolute: bool, sec: i64, nsec: i64) -> c_int {
    let t = (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64);
    let ns = if absolute { t.saturating_sub(monotonic_ns()) } else { t };
    if ns > 0 {
        exo_rt::sys::sleep(ns);
    }
    0
}

/// What a new thread is handed.
struct Begin {
    start: Box<super::thread::Start>,
    /// Set when the thread ends, for a joinable one.
    done: Option<Arc<Event>>,
}

fn begin(arg: u64) {
    // SAFETY: `spawn` leaked this box for exactly this thread.
    let b = unsafe { Box::from_raw(arg as *mut Begin) };
    if let Some(done) = b.done {
        tls::set_local(LOCAL_DONE, Arc::into_raw(done) as u64);
    }
    let (fun, arg) = (b.start.fun, b.start.arg);
    // SAFETY: the rump kernel's thread body, with its argument.
    unsafe { fun(arg) };
    finish_thread()
}

/// Tells a joiner (if any) that the calling thread is done, and ends it.
fn finish_thread() -> ! {
    let p = tls::local(LOCAL_DONE);
    if p != 0 {
        tls::set_local(LOCAL_DONE, 0);
        // SAFETY: `begin` stored a pointer from Arc::into_raw here.
        unsafe { Arc::from_raw(p as *const Event) }.set();
    }
    exo_rt::sys::thread_exit()
}

/// Ends the calling thread (a rump kernel thread's `kthread_exit`).
#[no_mangle]
pub extern "C" fn rumpuser_thread_exit() -> ! {
    finish_thread()
}

/// Starts a thread on `start`; for a joinable one, the cookie `join`
/// takes.
pub(crate) fn spawn(start: Box<super::thread::Start>, joinable: bool) -> Result<*mut c_void, c_int> {
    let done = joinable.then(|| Arc::new(Event::new()));
    let cookie = done.as_ref().map_or(core::ptr::null_mut(), |d| Arc::into_raw(d.clone()) as *mut c_void);
    let b = Box::into_raw(Box::new(Begin { start, done }));
    match exo_rt::thread::spawn_with_stack(begin, b as u64, THREAD_STACK) {
        Ok(_) => Ok(cookie),
        Err(_) => {
            // SAFETY: no thread took them.
            drop(unsafe { Box::from_raw(b) });
            if !cookie.is_null() {
                // SAFETY: made by Arc::into_raw above.
                drop(unsafe { Arc::from_raw(cookie as *const Event) });
            }
            Err(crate::errno::EAGAIN)
        }
    }
}

/// Waits for the thread `cookie` (from `spawn`) names; 0.
///
/// # Safety
/// `cookie` came from `spawn` of a joinable thread and is joined once.
pub(crate) unsafe fn join(cookie: *mut c_void) -> c_int {
    // SAFETY: the caller's promise: made by Arc::into_raw in `spawn`.
    unsafe { Arc::from_raw(cookie as *const Event) }.wait();
    0
}

/// The calling thread's lwp.
pub(crate) fn curlwp() -> *mut lwp {
    tls::local(LOCAL_LWP) as *mut lwp
}

/// Sets the calling thread's lwp.
pub(crate) fn set_curlwp(l: *mut lwp) {
    tls::set_local(LOCAL_LWP, l as u64);
}

/// Bytes before every block `alloc` returns: its layout, for `free`.
const HEADER: usize = 16;

/// `len` bytes aligned to `align` (a power of two), or NULL.
/// Memory a device can reach: one physically contiguous DMA region, with
/// its own allocator, once [`device_memory`] set it up.
struct Arena {
    start: usize,
    end: usize,
    heap: linked_list_allocator::Heap,
}

// SAFETY: the arena's memory is this process's, used only under the lock.
unsafe impl Send for Arena {}

static ARENA: Locked<Option<Arena>> = Locked::new(None);

/// From now on the rump kernel's memory (`rumpuser_malloc`,
/// `rumpuser_anonmmap`) comes from `bytes` of physically contiguous DMA
/// memory, so that its device drivers may hand any kernel buffer to a
/// device: NetBSD's bus_dma takes the bus address of kernel memory
/// (`rumpcomp_pci_virt_to_mach`), which only DMA memory has on ExoV6. When
/// the region is full, allocations fall back to the heap (a device given
/// such memory ends the process with the reason). Call before `rump_init`.
pub fn device_memory(bytes: usize) -> crate::Result<()> {
    use crate::Memory as _;
    let region = crate::exo::DMA.alloc_dma(bytes.div_ceil(4096))?;
    let mut heap = linked_list_allocator::Heap::empty();
    // SAFETY: the region is mapped read-write for this process, owned by
    // nothing else, and kept (never freed) from here on.
    unsafe { heap.init(region.virt, region.len) };
    let start = region.virt as usize;
    ARENA.with(|a| *a = Some(Arena { start, end: start + region.len, heap }));
    Ok(())
}

/// Allocates `layout` from the device arena if there is one and it has
/// room, else from the heap.
fn raw_alloc(layout: Layout) -> *mut u8 {
    let from_arena = ARENA.with(|a| a.as_mut().and_then(|a| a.heap.allocate_first_fit(layout).ok()));
    match from_arena {
        Some(p) => p.as_ptr(),
        // SAFETY: a non-zero size (callers add a header or round up).
        None => unsafe { alloc::alloc::alloc(layout) },
    }
}

/// Frees what `raw_alloc` returned.
///
/// # Safety
/// `p` came from `raw_alloc(layout)` and is not used again.
unsafe fn raw_dealloc(p: *mut u8, layout: Layout) {
    let in_arena = ARENA.with(|a| match a.as_mut() {
        Some(a) if (a.start..a.end).contains(&(p as usize)) => {
            // SAFETY: allocated from this arena with `layout`.
            unsafe { a.heap.deallocate(core::ptr::NonNull::new_unchecked(p), layout) };
            true
        }
        _ => false,
    });
    if !in_arena {
        // SAFETY: the caller's promise: from the heap, with `layout`.
        unsafe { alloc::alloc::dealloc(p, layout) };
    }
}

pub(crate) fn alloc(len: usize, align: usize) -> *mut c_void {
    let a = align.max(HEADER);
    let Some(layout) = len.checked_add(a).and_then(|total| Layout::from_size_align(total, a).ok()) else {
        return core::ptr::null_mut();
    };
    let base = raw_alloc(layout);
    if base.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `a >= HEADER` bytes precede the block, inside the
    // allocation; `a` keeps the header words aligned.
    unsafe {
        let p = base.add(a);
        p.cast::<usize>().sub(2).write(layout.size());
        p.cast::<usize>().sub(1).write(a);
        p.cast()
    }
}

/// Frees what `alloc` returned.
///
/// # Safety
/// `p` came from `alloc` and is not used again.
pub(crate) unsafe fn free(p: *mut c_void) {
    // SAFETY: `alloc` wrote the layout just before the block.
    unsafe {
        let size = p.cast::<usize>().sub(2).read();
        let a = p.cast::<usize>().sub(1).read();
        raw_dealloc(p.cast::<u8>().sub(a), Layout::from_size_align_unchecked(size, a));
    }
}

/// Anonymous mappings made, by address: their layouts.
static MAPPED: Locked<BTreeMap<usize, Layout>> = Locked::new(BTreeMap::new());

/// `size` bytes of zeroed memory aligned to `align` (at least a page);
/// never executable (the heap is not).
pub(crate) fn anon_map(_hint: *mut c_void, size: usize, align: usize, exec: bool) -> Result<*mut c_void, c_int> {
    if exec {
        return Err(crate::errno::EOPNOTSUPP);
    }
    let len = size.div_ceil(4096) * 4096;
    let layout = Layout::from_size_align(len, align).map_err(|_| crate::errno::EINVAL)?;
    let p = raw_alloc(layout);
    if p.is_null() {
        return Err(crate::errno::ENOMEM);
    }
    // SAFETY: `len` bytes just allocated.
    unsafe { p.write_bytes(0, len) };
    MAPPED.with(|m| m.insert(p as usize, layout));
    Ok(p.cast())
}

/// Unmaps what `anon_map` returned (whole); false if that was not a
/// mapping of that length.
///
/// # Safety
/// The range is not used again.
pub(crate) unsafe fn unmap(addr: *mut c_void, len: usize) -> bool {
    let layout = MAPPED.with(|m| match m.get(&(addr as usize)) {
        Some(l) if l.size() == len.div_ceil(4096) * 4096 => m.remove(&(addr as usize)),
        _ => None,
    });
    match layout {
        Some(l) => {
            // SAFETY: allocated by `anon_map` with this layout.
            unsafe { raw_dealloc(addr.cast(), l) };
            true
        }
        None => false,
    }
}

/// ExoV6 has no environment.
pub(crate) fn env(_name: &str) -> Option<String> {
    None
}

/// Processors: one.
pub(crate) fn host_cpus() -> usize {
    1
}

/// A number for this process (in the rump kernel's host name): how many
/// times the supervisor started it before.
pub(crate) fn process_id() -> u64 {
    exo_rt::generation()
}

/// Keeps errno for the calling thread (ExoV6 programs have no C errno;
/// the value is there for whoever reads it).
pub(crate) fn set_errno(e: c_int) {
    tls::set_local(LOCAL_ERRNO, e as u32 as u64);
}

/// The calling thread's errno, as `rumpuser_seterrno` left it.
pub(crate) fn errno() -> c_int {
    tls::local(LOCAL_ERRNO) as u32 as c_int
}

/// Ends the process for NetBSD signal `sig` (exit code 128 + sig).
pub(crate) fn raise(sig: c_int) -> c_int {
    super::misc::console_write(alloc::format!("rumpuser: signal {sig}: ending the process\n").as_bytes());
    exo_rt::sys::exit(128 + sig as u32)
}

/// Ends the process with `code`.
pub(crate) fn exit(code: c_int) -> ! {
    exo_rt::sys::exit(code as u32)
}

/// Ends the process at once (a rump kernel panic).
pub(crate) fn abort() -> ! {
    exo_rt::sys::exit(134)
}

/// Fills `buf` from the kernel's random bit generator.
pub(crate) fn random(buf: &mut [u8], _nowait: bool) -> Result<usize, c_int> {
    exo_rt::sys::random(buf).map(|_| buf.len()).map_err(|_| crate::errno::EIO)
}

/// The console before a program sets one: the kernel console.
pub(crate) static DEFAULT_CONSOLE: &dyn crate::Console = &crate::exo::Console;

/// A value behind a lock, for the module's own tables.
pub(crate) struct Locked<T>(Mutex<T>);

impl<T> Locked<T> {
    pub(crate) const fn new(v: T) -> Self {
        Locked(Mutex::new(v))
    }

    /// Runs `f` with the value locked.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.lock())
    }
}

/// Starts a hypercall worker thread (block I/O) running `f` (unnamed:
/// ExoV6 threads have no names).
pub(crate) fn spawn_worker(_name: &str, f: fn()) -> Result<(), String> {
    fn run(arg: u64) {
        // SAFETY: `spawn_worker` leaked this box for exactly this thread.
        let f = unsafe { Box::from_raw(arg as *mut fn()) };
        f();
    }
    let arg = Box::into_raw(Box::new(f));
    exo_rt::thread::spawn_with_stack(run, arg as u64, THREAD_STACK).map(|_| ()).map_err(|e| {
        // SAFETY: no thread took it.
        drop(unsafe { Box::from_raw(arg) });
        alloc::string::ToString::to_string(e.name())
    })
}
