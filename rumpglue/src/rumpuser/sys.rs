//! The host platform under the hypercalls, on Linux: a mutex, a
//! condition variable on the monotonic clock, clocks and sleeps, threads
//! and the current lwp, memory, parameters, signals and exit, randomness,
//! and a fatal-error exit. `sys_exo.rs` is the same interface on ExoV6;
//! everything else in this module is shared.

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use netbsd_sys::rumpuser::lwp;

/// Ends the process: a hypercall was used in a way the interface forbids
/// (a rump kernel bug) or the host failed where it cannot.
pub(crate) fn fatal(what: &str) -> ! {
    super::misc::console_write(format!("rumpuser: fatal: {what}\n").as_bytes());
    std::process::abort()
}

fn check(rv: i32, what: &str) {
    if rv != 0 {
        fatal(&format!("{what}: {}", std::io::Error::from_raw_os_error(rv)));
    }
}

/// A pthread mutex that reports misuse (unlocking one not held).
pub(crate) struct RawMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads; it is
// only touched through pthread calls and never moved after init (it lives
// in a Box).
unsafe impl Send for RawMutex {}
// SAFETY: as above.
unsafe impl Sync for RawMutex {}

impl RawMutex {
    pub(crate) fn new() -> Box<RawMutex> {
        let m = Box::new(RawMutex(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)));
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: the attribute object is initialised before use and
        // destroyed after; the mutex is in its final place (the Box).
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()), "pthread_mutexattr_init");
            check(
                libc::pthread_mutexattr_settype(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ERRORCHECK),
                "pthread_mutexattr_settype",
            );
            check(libc::pthread_mutex_init(m.0.get(), attr.as_ptr()), "pthread_mutex_init");
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
        }
        m
    }

    pub(crate) fn lock(&self) {
        // SAFETY: an initialised mutex.
        check(unsafe { libc::pthread_mutex_lock(self.0.get()) }, "mutex lock");
    }

    pub(crate) fn try_lock(&self) -> bool {
        // SAFETY: an initialised mutex.
        unsafe { libc::pthread_mutex_trylock(self.0.get()) == 0 }
    }

    pub(crate) fn unlock(&self) {
        // SAFETY: an initialised mutex; the error-checking type reports an
        // unlock by a thread that does not hold it.
        check(unsafe { libc::pthread_mutex_unlock(self.0.get()) }, "mutex unlock");
    }
}

impl Drop for RawMutex {
    fn drop(&mut self) {
        // SAFETY: an initialised mutex nobody can reach any more.
        check(unsafe { libc::pthread_mutex_destroy(self.0.get()) }, "mutex destroy (still held?)");
    }
}

/// A pthread condition variable whose timed waits use CLOCK_MONOTONIC.
pub(crate) struct RawCond(UnsafeCell<libc::pthread_cond_t>);

// SAFETY: as for RawMutex.
unsafe impl Send for RawCond {}
// SAFETY: as for RawMutex.
unsafe impl Sync for RawCond {}

impl RawCond {
    pub(crate) fn new() -> Box<RawCond> {
        let c = Box::new(RawCond(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER)));
        let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
        // SAFETY: as in RawMutex::new.
        unsafe {
            check(libc::pthread_condattr_init(attr.as_mut_ptr()), "pthread_condattr_init");
            check(
                libc::pthread_condattr_setclock(attr.as_mut_ptr(), libc::CLOCK_MONOTONIC),
                "pthread_condattr_setclock",
            );
            check(libc::pthread_cond_init(c.0.get(), attr.as_ptr()), "pthread_cond_init");
            libc::pthread_condattr_destroy(attr.as_mut_ptr());
        }
        c
    }

    /// Waits; `m` must be held by the caller.
    pub(crate) fn wait(&self, m: &RawMutex) {
        // SAFETY: both initialised; the caller holds `m`.
        check(unsafe { libc::pthread_cond_wait(self.0.get(), m.0.get()) }, "cond wait");
    }

    /// Waits until `deadline` (monotonic nanoseconds); true if it passed.
    pub(crate) fn wait_until(&self, m: &RawMutex, deadline: u64) -> bool {
        let ts = libc::timespec { tv_sec: (deadline / 1_000_000_000) as _, tv_nsec: (deadline % 1_000_000_000) as _ };
        // SAFETY: both initialised; the caller holds `m`.
        match unsafe { libc::pthread_cond_timedwait(self.0.get(), m.0.get(), &ts) } {
            0 => false,
            libc::ETIMEDOUT => true,
            e => {
                check(e, "cond timedwait");
                false
            }
        }
    }

    pub(crate) fn signal(&self) {
        // SAFETY: initialised.
        check(unsafe { libc::pthread_cond_signal(self.0.get()) }, "cond signal");
    }

    pub(crate) fn broadcast(&self) {
        // SAFETY: initialised.
        check(unsafe { libc::pthread_cond_broadcast(self.0.get()) }, "cond broadcast");
    }
}

impl Drop for RawCond {
    fn drop(&mut self) {
        // SAFETY: initialised and unreachable.
        unsafe { libc::pthread_cond_destroy(self.0.get()) };
    }
}

/// Nanoseconds on CLOCK_MONOTONIC (the clock RawCond deadlines use).
pub(crate) fn monotonic_ns() -> u64 {
    let (s, ns) = clock(libc::CLOCK_MONOTONIC);
    s as u64 * 1_000_000_000 + ns as u64
}

/// Reads a host clock.
pub(crate) fn clock(id: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

/// The wall clock: seconds and nanoseconds since 1970.
pub(crate) fn wall_clock() -> (i64, i64) {
    clock(libc::CLOCK_REALTIME)
}

/// Sleeps `sec` seconds and `nsec` nanoseconds, or until the monotonic
/// clock reads that when `absolute`; 0 or a NetBSD errno.
pub(crate) fn sleep(absolute: bool, sec: i64, nsec: i64) -> c_int {
    let (id, flags) = if absolute { (libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME) } else { (libc::CLOCK_REALTIME, 0) };
    let mut req = libc::timespec { tv_sec: sec as _, tv_nsec: nsec as _ };
    loop {
        let mut rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid timespecs.
        match unsafe { libc::clock_nanosleep(id, flags, &req, &mut rem) } {
            0 => return 0,
            libc::EINTR if flags == 0 => req = rem,
            libc::EINTR => {}
            e => return crate::errno::from_linux(e),
        }
    }
}

// SAFETY: the shim's thread entry, with this signature; it is only ever
// handed to pthread_create, never called from Rust.
unsafe extern "C" {
    safe fn rumpglue_thread_start(start: *mut c_void) -> *mut c_void;
}

/// Starts a host thread on `start` (which it owns from then on); for a
/// joinable one, the cookie `join` takes.
pub(crate) fn spawn(start: Box<super::thread::Start>, joinable: bool) -> Result<*mut c_void, c_int> {
    let start = Box::into_raw(start);
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut tid: libc::pthread_t = 0;
    // SAFETY: the attribute object is initialised, used and destroyed
    // here; the thread starts in the shim's C function, which takes
    // ownership of `start`.
    let rv = unsafe {
        libc::pthread_attr_init(attr.as_mut_ptr());
        let detach = if joinable { libc::PTHREAD_CREATE_JOINABLE } else { libc::PTHREAD_CREATE_DETACHED };
        libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), detach);
        let mut rv = libc::EAGAIN;
        // A host short of threads for a moment: try a few times.
        for _ in 0..10 {
            rv = libc::pthread_create(&mut tid, attr.as_ptr(), rumpglue_thread_start, start.cast());
            if rv != libc::EAGAIN {
                break;
            }
            libc::usleep(10_000);
        }
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        rv
    };
    if rv != 0 {
        // SAFETY: no thread took it.
        drop(unsafe { Box::from_raw(start) });
        return Err(crate::errno::from_linux(rv));
    }
    Ok(if joinable { Box::into_raw(Box::new(tid)).cast() } else { core::ptr::null_mut() })
}

/// Waits for the thread `cookie` (from `spawn`) names; 0 or an errno.
///
/// # Safety
/// `cookie` came from `spawn` of a joinable thread and is joined once.
pub(crate) unsafe fn join(cookie: *mut c_void) -> c_int {
    // SAFETY: the caller's promise: a Box<pthread_t> we made.
    let tid = unsafe { Box::from_raw(cookie.cast::<libc::pthread_t>()) };
    // SAFETY: a joinable thread not joined before.
    match unsafe { libc::pthread_join(*tid, core::ptr::null_mut()) } {
        0 => 0,
        e => crate::errno::from_linux(e),
    }
}

thread_local! {
    static CURLWP: core::cell::Cell<*mut lwp> = const { core::cell::Cell::new(core::ptr::null_mut()) };
}

/// The calling thread's lwp (thread-local).
pub(crate) fn curlwp() -> *mut lwp {
    CURLWP.with(core::cell::Cell::get)
}

/// Sets the calling thread's lwp.
pub(crate) fn set_curlwp(l: *mut lwp) {
    CURLWP.with(|c| c.set(l));
}

/// `len` bytes aligned to `align` (a power of two), or NULL.
pub(crate) fn alloc(len: usize, align: usize) -> *mut c_void {
    let mut p = core::ptr::null_mut();
    // SAFETY: `p` is valid for the write; the alignment is a power of two
    // and a multiple of the pointer size (the caller's promise).
    if unsafe { libc::posix_memalign(&mut p, align, len.max(1)) } != 0 {
        return core::ptr::null_mut();
    }
    p
}

/// Frees what `alloc` returned.
///
/// # Safety
/// `p` came from `alloc` and is not used again.
pub(crate) unsafe fn free(p: *mut c_void) {
    // SAFETY: the caller's promise.
    unsafe { libc::free(p) };
}

/// `size` bytes of fresh zeroed pages aligned to `align` (at least a
/// page), executable if asked, near `hint` if the host can.
pub(crate) fn anon_map(hint: *mut c_void, size: usize, align: usize, exec: bool) -> Result<*mut c_void, c_int> {
    let page = 4096usize;
    let prot = libc::PROT_READ | libc::PROT_WRITE | if exec { libc::PROT_EXEC } else { 0 };
    let total = size.checked_add(align - page).ok_or(crate::errno::ENOMEM)?;
    // SAFETY: an anonymous private mapping; the hint is only a hint.
    let p = unsafe { libc::mmap(hint, total, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(crate::errno::last());
    }
    // Over-allocated by align - page: trim both ends to the aligned range.
    let start = p as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let len = size.div_ceil(page) * page;
    // SAFETY: both trimmed ranges are parts of the mapping just made.
    unsafe {
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        let end = aligned + len;
        if start + total > end {
            libc::munmap(end as *mut c_void, start + total - end);
        }
    }
    Ok(aligned as *mut c_void)
}

/// Unmaps what `anon_map` returned; false if that was not a mapping.
///
/// # Safety
/// The range is not used again.
pub(crate) unsafe fn unmap(addr: *mut c_void, len: usize) -> bool {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(addr, len) == 0 }
}

/// A parameter from the environment.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Processors the host has.
pub(crate) fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A number for this process (in the rump kernel's host name).
pub(crate) fn process_id() -> u64 {
    u64::from(std::process::id())
}

/// Sets the host's errno for the calling thread.
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: the calling thread's errno location.
    unsafe { *libc::__errno_location() = e };
}

/// The calling thread's errno: the NetBSD error of its last failed
/// `rump_sys_*` call.
pub(crate) fn errno() -> c_int {
    // SAFETY: the calling thread's errno location.
    unsafe { *libc::__errno_location() }
}

/// Sends NetBSD signal `sig` to this process; 0 or an errno.
pub(crate) fn raise(sig: c_int) -> c_int {
    let Some(s) = host_signal(sig) else { return crate::errno::EINVAL };
    // SAFETY: raising a signal is always allowed.
    if unsafe { libc::raise(s) } != 0 {
        return crate::errno::last();
    }
    0
}

/// The Linux number of NetBSD signal `sig`.
fn host_signal(sig: c_int) -> Option<c_int> {
    Some(match sig {
        1 => libc::SIGHUP,
        2 => libc::SIGINT,
        3 => libc::SIGQUIT,
        4 => libc::SIGILL,
        5 => libc::SIGTRAP,
        6 => libc::SIGABRT,
        8 => libc::SIGFPE,
        9 => libc::SIGKILL,
        10 => libc::SIGBUS,
        11 => libc::SIGSEGV,
        12 => libc::SIGSYS,
        13 => libc::SIGPIPE,
        14 => libc::SIGALRM,
        15 => libc::SIGTERM,
        16 => libc::SIGURG,
        17 => libc::SIGSTOP,
        18 => libc::SIGTSTP,
        19 => libc::SIGCONT,
        20 => libc::SIGCHLD,
        21 => libc::SIGTTIN,
        22 => libc::SIGTTOU,
        23 => libc::SIGIO,
        24 => libc::SIGXCPU,
        25 => libc::SIGXFSZ,
        26 => libc::SIGVTALRM,
        27 => libc::SIGPROF,
        28 => libc::SIGWINCH,
        30 => libc::SIGUSR1,
        31 => libc::SIGUSR2,
        32 => libc::SIGPWR,
        _ => return None,
    })
}

/// Ends the process with `code`.
pub(crate) fn exit(code: c_int) -> ! {
    std::process::exit(code)
}

/// Ends the process at once (a rump kernel panic).
pub(crate) fn abort() -> ! {
    std::process::abort()
}

/// Fills `buf` from the host's random source; how many bytes (fewer only
/// when `nowait` and the source would block), or an errno.
pub(crate) fn random(buf: &mut [u8], nowait: bool) -> Result<usize, c_int> {
    let mut done = 0;
    while done < buf.len() {
        let gflags = if nowait { libc::GRND_NONBLOCK } else { 0 };
        // SAFETY: writes only the unfilled rest of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, gflags) };
        if n < 0 {
            match crate::errno::last() {
                crate::errno::EINTR => continue,
                crate::errno::EAGAIN if done > 0 => break,
                e => return Err(e),
            }
        }
        done += n as usize;
    }
    Ok(done)
}

/// The console before a program sets one: standard error.
pub(crate) static DEFAULT_CONSOLE: &dyn crate::Console = &crate::host::HostConsole;

/// A value behind a lock, for the module's own tables.
pub(crate) struct Locked<T>(std::sync::Mutex<T>);

impl<T> Locked<T> {
    pub(crate) const fn new(v: T) -> Self {
        Locked(std::sync::Mutex::new(v))
    }

    /// Runs `f` with the value locked.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Starts a hypercall worker thread (block I/O) running `f`.
pub(crate) fn spawn_worker(name: &str, f: fn()) -> Result<(), String> {
    std::thread::Builder::new().name(name.into()).spawn(f).map(|_| ()).map_err(|e| e.to_string())
}
