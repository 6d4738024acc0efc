//! NetBSD's rumpuser(3) hypercall interface, version 17, as the C ABI a
//! rump kernel links against.
//!
//! A rump kernel (NetBSD's own file systems, drivers and network stack
//! built to run anywhere) asks its host for memory, files and block I/O,
//! clocks, parameters, a console, randomness, threads and locks, and for
//! nothing else. These `extern "C"` functions answer, in Rust, on top of
//! rumpglue: block I/O goes to [`crate::BlockDevice`]s registered under a
//! name (the image a file server was handed), the console to a
//! [`crate::Console`], and threads, locks and clocks to the host backend
//! (`sys`), which is the one part an exokernel backend replaces.
//!
//! The scheduling contract is kept exactly: a hypercall that may block
//! gives the rump kernel's virtual CPU back first (`hyp_backend_unschedule`)
//! and takes it again afterwards (`hyp_backend_schedule`), so that other
//! rump threads run meanwhile; the `_nowrap` variants and spin mutexes
//! never do. Block I/O completes asynchronously on worker threads, which
//! hold the CPU only while they call the kernel's `biodone`.
//!
//! Errors are NetBSD errno values ([`crate::errno`]); host errors are translated.
//! The system-call proxy (`rumpuser_sp_*`) serves remote clients, which
//! ExoV6 does not offer: those calls answer `EOPNOTSUPP`.

#[cfg(feature = "host")]
mod dl;
#[cfg(not(feature = "host"))]
#[path = "dl_exo.rs"]
mod dl;
mod file;
mod mem;
mod misc;
#[cfg(not(feature = "host"))]
mod pci_exo;
mod sched;
mod sp;
mod sync;
#[cfg(feature = "host")]
mod sys;
#[cfg(not(feature = "host"))]
#[path = "sys_exo.rs"]
mod sys;
mod thread;

pub use file::{register_device, set_host_files, unregister_device};
pub use misc::{errno, set_console, set_param};
#[cfg(not(feature = "host"))]
pub use sys::device_memory;

#[cfg(feature = "host")]
use core::ffi::c_void;

/// Every hypercall of version 17, so that a program that only reaches
/// them through a dynamically loaded rump kernel still links them in
/// (hold a reference to this table, e.g. with `std::hint::black_box`).
/// `rumpuser_dprintf` and `rumpuser_thread_exit` are in the C shim and
/// linked with the crate.
#[cfg(feature = "host")]
pub static HYPERCALLS: Hypercalls = Hypercalls([
    misc::rumpuser_init as *const c_void,
    mem::rumpuser_malloc as *const c_void,
    mem::rumpuser_free as *const c_void,
    mem::rumpuser_anonmmap as *const c_void,
    mem::rumpuser_unmap as *const c_void,
    file::rumpuser_open as *const c_void,
    file::rumpuser_close as *const c_void,
    file::rumpuser_getfileinfo as *const c_void,
    file::rumpuser_bio as *const c_void,
    file::rumpuser_iovread as *const c_void,
    file::rumpuser_iovwrite as *const c_void,
    file::rumpuser_syncfd as *const c_void,
    misc::rumpuser_clock_gettime as *const c_void,
    misc::rumpuser_clock_sleep as *const c_void,
    misc::rumpuser_getparam as *const c_void,
    misc::rumpuser_seterrno as *const c_void,
    misc::rumpuser_kill as *const c_void,
    misc::rumpuser_exit as *const c_void,
    misc::rumpuser_putchar as *const c_void,
    misc::rumpuser_getrandom as *const c_void,
    thread::rumpuser_thread_create as *const c_void,
    thread::rumpuser_thread_join as *const c_void,
    thread::rumpuser_curlwpop as *const c_void,
    thread::rumpuser_curlwp as *const c_void,
    sync::rumpuser_mutex_init as *const c_void,
    sync::rumpuser_mutex_enter as *const c_void,
    sync::rumpuser_mutex_enter_nowrap as *const c_void,
    sync::rumpuser_mutex_tryenter as *const c_void,
    sync::rumpuser_mutex_exit as *const c_void,
    sync::rumpuser_mutex_destroy as *const c_void,
    sync::rumpuser_mutex_owner as *const c_void,
    sync::rumpuser_rw_init as *const c_void,
    sync::rumpuser_rw_enter as *const c_void,
    sync::rumpuser_rw_tryenter as *const c_void,
    sync::rumpuser_rw_tryupgrade as *const c_void,
    sync::rumpuser_rw_downgrade as *const c_void,
    sync::rumpuser_rw_exit as *const c_void,
    sync::rumpuser_rw_destroy as *const c_void,
    sync::rumpuser_rw_held as *const c_void,
    sync::rumpuser_cv_init as *const c_void,
    sync::rumpuser_cv_destroy as *const c_void,
    sync::rumpuser_cv_wait as *const c_void,
    sync::rumpuser_cv_wait_nowrap as *const c_void,
    sync::rumpuser_cv_timedwait as *const c_void,
    sync::rumpuser_cv_signal as *const c_void,
    sync::rumpuser_cv_broadcast as *const c_void,
    sync::rumpuser_cv_has_waiters as *const c_void,
    dl::rumpuser_dl_bootstrap as *const c_void,
    dl::rumpuser_daemonize_begin as *const c_void,
    dl::rumpuser_daemonize_done as *const c_void,
    sp::rumpuser_sp_init as *const c_void,
    sp::rumpuser_sp_copyin as *const c_void,
    sp::rumpuser_sp_copyinstr as *const c_void,
    sp::rumpuser_sp_copyout as *const c_void,
    sp::rumpuser_sp_copyoutstr as *const c_void,
    sp::rumpuser_sp_anonmmap as *const c_void,
    sp::rumpuser_sp_raise as *const c_void,
    sp::rumpuser_sp_fini as *const c_void,
]);

/// The addresses of the hypercalls (see [`HYPERCALLS`]).
#[cfg(feature = "host")]
pub struct Hypercalls(pub [*const c_void; 58]);

// SAFETY: the table is immutable and holds function addresses, which are
// never called through it.
#[cfg(feature = "host")]
unsafe impl Sync for Hypercalls {}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use netbsd_sys::rumpuser as h;

    /// Makes both functions the same fn-pointer type: compiles only when
    /// the Rust definition has exactly the header's signature.
    fn same<T>(_: T, _: T) {}

    macro_rules! same_sig {
        ($m:ident :: $f:ident ( $($a:tt),* )) => {
            same(h::$f as unsafe extern "C" fn($($a),*) -> _, $m::$f as unsafe extern "C" fn($($a),*) -> _)
        };
    }

    /// Every Rust definition has the signature bindgen generated from the
    /// header (so the C side and this side agree on the ABI).
    #[test]
    fn definitions_match_the_header() {
        same_sig!(misc::rumpuser_init(_, _));
        same_sig!(mem::rumpuser_malloc(_, _, _));
        same_sig!(mem::rumpuser_free(_, _));
        same_sig!(mem::rumpuser_anonmmap(_, _, _, _, _));
        same_sig!(mem::rumpuser_unmap(_, _));
        same_sig!(file::rumpuser_open(_, _, _));
        same_sig!(file::rumpuser_close(_));
        same_sig!(file::rumpuser_getfileinfo(_, _, _));
        same_sig!(file::rumpuser_bio(_, _, _, _, _, _, _));
        same_sig!(file::rumpuser_iovread(_, _, _, _, _));
        same_sig!(file::rumpuser_iovwrite(_, _, _, _, _));
        same_sig!(file::rumpuser_syncfd(_, _, _, _));
        same_sig!(misc::rumpuser_clock_gettime(_, _, _));
        same_sig!(misc::rumpuser_clock_sleep(_, _, _));
        same_sig!(misc::rumpuser_getparam(_, _, _));
        same_sig!(misc::rumpuser_seterrno(_));
        same_sig!(misc::rumpuser_kill(_, _));
        same_sig!(misc::rumpuser_putchar(_));
        same_sig!(misc::rumpuser_getrandom(_, _, _, _));
        same_sig!(thread::rumpuser_thread_create(_, _, _, _, _, _, _));
        same_sig!(thread::rumpuser_thread_join(_));
        same_sig!(thread::rumpuser_curlwpop(_, _));
        same_sig!(thread::rumpuser_curlwp());
        same_sig!(sync::rumpuser_mutex_init(_, _));
        same_sig!(sync::rumpuser_mutex_enter(_));
        same_sig!(sync::rumpuser_mutex_enter_nowrap(_));
        same_sig!(sync::rumpuser_mutex_tryenter(_));
        same_sig!(sync::rumpuser_mutex_exit(_));
        same_sig!(sync::rumpuser_mutex_destroy(_));
        same_sig!(sync::rumpuser_mutex_owner(_, _));
        same_sig!(sync::rumpuser_rw_init(_));
        same_sig!(sync::rumpuser_rw_enter(_, _));
        same_sig!(sync::rumpuser_rw_tryenter(_, _));
        same_sig!(sync::rumpuser_rw_tryupgrade(_));
        same_sig!(sync::rumpuser_rw_downgrade(_));
        same_sig!(sync::rumpuser_rw_exit(_));
        same_sig!(sync::rumpuser_rw_destroy(_));
        same_sig!(sync::rumpuser_rw_held(_, _, _));
        same_sig!(sync::rumpuser_cv_init(_));
        same_sig!(sync::rumpuser_cv_destroy(_));
        same_sig!(sync::rumpuser_cv_wait(_, _));
        same_sig!(sync::rumpuser_cv_wait_nowrap(_, _));
        same_sig!(sync::rumpuser_cv_timedwait(_, _, _, _));
        same_sig!(sync::rumpuser_cv_signal(_));
        same_sig!(sync::rumpuser_cv_broadcast(_));
        same_sig!(sync::rumpuser_cv_has_waiters(_, _));
        same_sig!(dl::rumpuser_dl_bootstrap(_, _, _));
        same_sig!(dl::rumpuser_daemonize_begin());
        same_sig!(dl::rumpuser_daemonize_done(_));
        same_sig!(sp::rumpuser_sp_init(_, _, _, _));
        same_sig!(sp::rumpuser_sp_copyin(_, _, _, _));
        same_sig!(sp::rumpuser_sp_copyinstr(_, _, _, _));
        same_sig!(sp::rumpuser_sp_copyout(_, _, _, _));
        same_sig!(sp::rumpuser_sp_copyoutstr(_, _, _, _));
        same_sig!(sp::rumpuser_sp_anonmmap(_, _, _));
        same_sig!(sp::rumpuser_sp_raise(_, _));
        same_sig!(sp::rumpuser_sp_fini(_));
        same_sig!(misc::rumpuser_exit(_));
    }

    /// rumpglue's errno table is netbsd-sys's (which a test compares with
    /// a real rump installation's when there is one).
    #[test]
    fn errno_values_are_netbsd_sys_values() {
        use crate::errno::*;
        use netbsd_sys::rump as nb;
        let pairs = [
            (EPERM, nb::NETBSD_EPERM),
            (ENOENT, nb::NETBSD_ENOENT),
            (EIO, nb::NETBSD_EIO),
            (EBADF, nb::NETBSD_EBADF),
            (EDEADLK, nb::NETBSD_EDEADLK),
            (ENOMEM, nb::NETBSD_ENOMEM),
            (EBUSY, nb::NETBSD_EBUSY),
            (EEXIST, nb::NETBSD_EEXIST),
            (EINVAL, nb::NETBSD_EINVAL),
            (ENOSPC, nb::NETBSD_ENOSPC),
            (EROFS, nb::NETBSD_EROFS),
            (ERANGE, nb::NETBSD_ERANGE),
            (EAGAIN, nb::NETBSD_EAGAIN),
            (EOPNOTSUPP, nb::NETBSD_EOPNOTSUPP),
            (ETIMEDOUT, nb::NETBSD_ETIMEDOUT),
            (ENAMETOOLONG, nb::NETBSD_ENAMETOOLONG),
            (ENOTEMPTY, nb::NETBSD_ENOTEMPTY),
            (EPROGMISMATCH, nb::NETBSD_EPROGMISMATCH),
            (ENOSYS, nb::NETBSD_ENOSYS),
            (ENOATTR, nb::NETBSD_ENOATTR),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours as u32, theirs);
        }
    }

    #[test]
    fn table_lists_distinct_functions() {
        let mut v: Vec<usize> = HYPERCALLS.0.iter().map(|p| *p as usize).collect();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), HYPERCALLS.0.len());
    }
}
