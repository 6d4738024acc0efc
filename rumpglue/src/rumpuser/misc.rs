//! Start-up, clocks, parameters, errno, signals and exit, console,
//! randomness.

use super::{sched, sys};
use crate::errno::{EINVAL, ENOENT, EPROGMISMATCH, ERANGE, ESRCH};
use crate::Console;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use core::ffi::{c_char, c_int, c_long, c_void, CStr};
use netbsd_sys::rumpuser as h;

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

/// Whether `clock` is the monotonic clock (false: the wall clock);
/// `None` for an unknown clock.
fn is_monotonic(clock: c_int) -> Option<bool> {
    match clock as u32 {
        h::rumpclock_RUMPUSER_CLOCK_RELWALL => Some(false),
        h::rumpclock_RUMPUSER_CLOCK_ABSMONO => Some(true),
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
    let Some(mono) = is_monotonic(clock) else { return EINVAL };
    let (s, ns) = if mono {
        let t = sys::monotonic_ns();
        ((t / 1_000_000_000) as i64, (t % 1_000_000_000) as i64)
    } else {
        sys::wall_clock()
    };
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
    let Some(mono) = is_monotonic(clock) else { return EINVAL };
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return EINVAL;
    }
    sched::blocking(|| sys::sleep(mono, sec, nsec))
}

/// Parameters set by the program, ahead of the platform's (the
/// environment on Linux).
static PARAMS: sys::Locked<BTreeMap<String, String>> = sys::Locked::new(BTreeMap::new());

/// Sets a parameter for `rumpuser_getparam`, ahead of the environment
/// (RUMP_NCPU, RUMP_MEMLIMIT, RUMP_VERBOSE, ...). A sandboxed server
/// passes its rump kernel's settings this way.
pub fn set_param(name: &str, value: &str) {
    PARAMS.with(|p| p.insert(name.into(), value.into()));
}

fn lookup(name: &str) -> Option<String> {
    PARAMS.with(|p| p.get(name).cloned()).or_else(|| sys::env(name))
}

fn param(name: &str) -> Result<String, c_int> {
    if name == "_RUMPUSER_NCPU" {
        // One virtual CPU unless RUMP_NCPU says otherwise ("host": one per
        // host CPU).
        return Ok(match lookup("RUMP_NCPU").as_deref() {
            None => "1".into(),
            Some("host") => sys::host_cpus().to_string(),
            Some(n) => n.into(),
        });
    }
    if name == "_RUMPUSER_HOSTNAME" {
        return Ok(format!("rump-{:05}.exov6", sys::process_id()));
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
    sys::set_errno(error);
}

/// The calling thread's errno: the NetBSD error number the rump kernel
/// set (through `rumpuser_seterrno`) when its last `rump_sys_*` call
/// failed.
pub fn errno() -> c_int {
    sys::errno()
}

/// The process itself, for `rumpuser_kill` (a cast in the header, which
/// bindgen does not carry over).
const RUMPUSER_PID_SELF: i64 = -1;

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
    sys::raise(sig)
}

/// Ends the process: with `value` as its status, or by abort() for
/// RUMPUSER_PANIC.
#[no_mangle]
pub extern "C" fn rumpuser_exit(value: c_int) {
    if value == h::RUMPUSER_PANIC {
        console_write(b"rump kernel panic: halted\n");
        sys::abort();
    }
    console_write(b"rump kernel halted\n");
    sys::exit(value)
}

static CONSOLE: sys::Locked<Option<&'static dyn Console>> = sys::Locked::new(None);

/// Where the rump kernel's console output goes (default: standard error).
pub fn set_console(console: &'static dyn Console) {
    CONSOLE.with(|c| *c = Some(console));
}

pub(crate) fn console_write(bytes: &[u8]) {
    CONSOLE.with(|c| *c).unwrap_or(sys::DEFAULT_CONSOLE).write(bytes);
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
    // SAFETY: the caller's promise: `buf` has `buflen` bytes.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), buflen) };
    let r = if nowait { sys::random(buf, nowait) } else { sched::blocking(|| sys::random(buf, nowait)) };
    match r {
        Ok(n) => {
            // SAFETY: the caller's promise.
            unsafe { *retp = n };
            0
        }
        Err(e) => e,
    }
}
