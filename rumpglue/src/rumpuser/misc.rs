//! Start-up, clocks, parameters, errno, signals and exit, console,
//! randomness.

use super::{sched, sys};
use crate::errno::{self, EAGAIN, EINVAL, ENOENT, EPROGMISMATCH, ERANGE, ESRCH};
use crate::Console;
use core::ffi::{c_char, c_int, c_long, c_void, CStr};
use netbsd_sys::rumpuser as h;
use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

/// Starts the hypercall layer for a rump kernel speaking `version`,
/// keeping its upcalls.
///
/// # Safety
/// `hyp` is NULL or points to the kernel's upcall table.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_init(version: c_int, hyp: *const h::rumpuser_hyperup) -> c_int {
    if version != h::RUMPUSER_VERSION as c_int {
        console_write(
            format!(
                "rumpuser: the rump kernel speaks hypercall version {version}, rumpglue implements {}\n",
                h::RUMPUSER_VERSION
            )
            .as_bytes(),
        );
        return EPROGMISMATCH;
    }
    // SAFETY: the caller's promise.
    match unsafe { hyp.as_ref() } {
        Some(hyp) => {
            sched::set(hyp);
            0
        }
        None => EINVAL,
    }
}

fn host_clock(clock: c_int) -> Option<libc::clockid_t> {
    match clock as u32 {
        h::rumpclock_RUMPUSER_CLOCK_RELWALL => Some(libc::CLOCK_REALTIME),
        h::rumpclock_RUMPUSER_CLOCK_ABSMONO => Some(libc::CLOCK_MONOTONIC),
        _ => None,
    }
}

/// Reads a clock: RUMPUSER_CLOCK_RELWALL is the wall clock (seconds since
/// 1970), RUMPUSER_CLOCK_ABSMONO a monotonic one.
///
/// # Safety
/// `sec` and `nsec` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_clock_gettime(clock: c_int, sec: *mut i64, nsec: *mut c_long) -> c_int {
    let Some(id) = host_clock(clock) else { return EINVAL };
    let (s, ns) = sys::clock(id);
    // SAFETY: the caller's promise.
    unsafe {
        *sec = s;
        *nsec = ns as c_long;
    }
    0
}

/// Sleeps for (RELWALL) or until (ABSMONO) the given time, without the CPU.
#[no_mangle]
pub extern "C" fn rumpuser_clock_sleep(clock: c_int, sec: i64, nsec: c_long) -> c_int {
    let Some(id) = host_clock(clock) else { return EINVAL };
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return EINVAL;
    }
    let flags = if id == libc::CLOCK_MONOTONIC { libc::TIMER_ABSTIME } else { 0 };
    sched::blocking(|| {
        let mut req = libc::timespec { tv_sec: sec as _, tv_nsec: nsec as _ };
        loop {
            let mut rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: valid timespecs.
            match unsafe { libc::clock_nanosleep(id, flags, &req, &mut rem) } {
                0 => return 0,
                libc::EINTR if flags == 0 => req = rem,
                libc::EINTR => {}
                e => return errno::from_linux(e),
            }
        }
    })
}

fn params() -> std::sync::MutexGuard<'static, BTreeMap<String, String>> {
    static PARAMS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    PARAMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets a parameter for `rumpuser_getparam`, ahead of the environment
/// (RUMP_NCPU, RUMP_MEMLIMIT, RUMP_VERBOSE, ...). A sandboxed server
/// passes its rump kernel's settings this way.
pub fn set_param(name: &str, value: &str) {
    params().insert(name.into(), value.into());
}

fn lookup(name: &str) -> Option<String> {
    params().get(name).cloned().or_else(|| std::env::var(name).ok())
}

fn param(name: &str) -> Result<String, c_int> {
    if name == "_RUMPUSER_NCPU" {
        // One virtual CPU unless RUMP_NCPU says otherwise ("host": one per
        // host CPU).
        return Ok(match lookup("RUMP_NCPU").as_deref() {
            None => "1".into(),
            Some("host") => std::thread::available_parallelism().map_or(1, |n| n.get()).to_string(),
            Some(n) => n.into(),
        });
    }
    if name == "_RUMPUSER_HOSTNAME" {
        return Ok(format!("rump-{:05}.exov6", std::process::id()));
    }
    if name.starts_with('_') {
        // Reserved for the interface; unknown to this version.
        return Err(EINVAL);
    }
    lookup(name).ok_or(ENOENT)
}

/// Copies parameter `name` into `buf` (NUL-terminated): ENOENT when unset,
/// ERANGE when it does not fit, EINVAL for an unknown `_RUMPUSER_` name.
///
/// # Safety
/// `name` is a string, `buf` valid for `buflen` bytes.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_getparam(name: *const c_char, buf: *mut c_void, buflen: usize) -> c_int {
    if name.is_null() || buf.is_null() {
        return EINVAL;
    }
    // SAFETY: the caller's promise.
    let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else { return ENOENT };
    let value = match param(name) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if value.len() + 1 > buflen {
        return ERANGE;
    }
    // SAFETY: `buf` holds `buflen` >= len + 1 bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), value.len());
        *buf.cast::<u8>().add(value.len()) = 0;
    }
    0
}

/// Sets the calling thread's errno (what a rump client reads after a
/// failed `rump_sys_*` call).
#[no_mangle]
pub extern "C" fn rumpuser_seterrno(error: c_int) {
    // SAFETY: the thread's own errno location.
    unsafe { *libc::__errno_location() = error };
}

/// The process itself, for `rumpuser_kill` (a cast in the header, which
/// bindgen does not carry over).
const RUMPUSER_PID_SELF: i64 = -1;

/// The host's number for a NetBSD signal.
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

/// Raises NetBSD signal `sig` in this process (the only one a rump kernel
/// may signal: RUMPUSER_PID_SELF).
#[no_mangle]
pub extern "C" fn rumpuser_kill(pid: i64, sig: c_int) -> c_int {
    if pid != RUMPUSER_PID_SELF {
        return ESRCH;
    }
    if sig == 0 {
        return 0;
    }
    let Some(s) = host_signal(sig) else { return EINVAL };
    // SAFETY: raising a signal in our own process.
    if unsafe { libc::raise(s) } != 0 {
        return errno::last();
    }
    0
}

/// Ends the process: with `value` as its status, or by abort() for
/// RUMPUSER_PANIC.
#[no_mangle]
pub extern "C" fn rumpuser_exit(value: c_int) {
    if value == h::RUMPUSER_PANIC {
        console_write(b"rump kernel panic: halted\n");
        std::process::abort();
    }
    console_write(b"rump kernel halted\n");
    std::process::exit(value)
}

static CONSOLE: RwLock<&'static dyn Console> = RwLock::new(&crate::host::HostConsole);

/// Where the rump kernel's console output goes (default: standard error).
pub fn set_console(console: &'static dyn Console) {
    *CONSOLE.write().unwrap_or_else(|e| e.into_inner()) = console;
}

pub(crate) fn console_write(bytes: &[u8]) {
    CONSOLE.read().unwrap_or_else(|e| e.into_inner()).write(bytes);
}

/// For the C shim's `rumpuser_dprintf`.
///
/// # Safety
/// `buf` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rumpglue_console_write(buf: *const c_char, len: usize) {
    // SAFETY: the caller's promise.
    console_write(unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) });
}

/// Writes one character to the console.
#[no_mangle]
pub extern "C" fn rumpuser_putchar(ch: c_int) {
    console_write(&[ch as u8]);
}

/// Fills `buf` with random bytes (RUMPUSER_RANDOM_HARD: cryptographic
/// quality, which the host always gives; RUMPUSER_RANDOM_NOWAIT: never
/// block, possibly filling less); `*retp` says how many.
///
/// # Safety
/// `buf` is valid for `buflen` bytes, `retp` for a write.
#[no_mangle]
pub unsafe extern "C" fn rumpuser_getrandom(buf: *mut c_void, buflen: usize, flags: c_int, retp: *mut usize) -> c_int {
    let known = h::RUMPUSER_RANDOM_HARD | h::RUMPUSER_RANDOM_NOWAIT;
    if flags as u32 & !known != 0 {
        return EINVAL;
    }
    let nowait = flags as u32 & h::RUMPUSER_RANDOM_NOWAIT != 0;
    let fill = || {
        let mut done = 0;
        while done < buflen {
            let gflags = if nowait { libc::GRND_NONBLOCK } else { 0 };
            // SAFETY: `buf` has `buflen` bytes, we write past `done` only.
            let n = unsafe { libc::getrandom(buf.cast::<u8>().add(done).cast(), buflen - done, gflags) };
            if n < 0 {
                match errno::last() {
                    errno::EINTR => continue,
                    EAGAIN if done > 0 => break,
                    e => return Err(e),
                }
            }
            done += n as usize;
        }
        Ok(done)
    };
    let r = if nowait { fill() } else { sched::blocking(fill) };
    match r {
        Ok(n) => {
            // SAFETY: the caller's promise.
            unsafe { *retp = n };
            0
        }
        Err(e) => e,
    }
}
