//! NetBSD's rumpuser(3) hypercalls on ExoV6 (rumpglue, feature
//! `rumpuser-exo`), called through their C declarations as a rump kernel
//! calls them, with a small fake kernel's scheduling upcalls (as the C
//! conformance suite on Linux does): start-up, mutexes (contended, with the
//! virtual CPU given back while blocking), kernel-mutex owners, rwlocks,
//! condition variables (signalled and timed out), threads created and
//! joined, the current lwp, memory and anonymous mappings, clocks,
//! parameters, randomness, and block I/O on a registered device (16
//! `rumpuser_bio` requests in flight at once, each completed through its
//! `biodone` from a worker thread). One line per check; exit 0 if all
//! pass.
#![no_std]
#![no_main]

extern crate alloc;

use core::ffi::{c_int, c_long, c_void};
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use exo_rt::{println, sys};
use netbsd_sys::rumpuser::{self as h, lwp, rumpuser_cv, rumpuser_mtx, rumpuser_rw};
use rumpglue::errno::{EBUSY, ENOENT, EPROGMISMATCH, ETIMEDOUT}; // and the hypercalls' definitions

exo_rt::entry!(main);

/// Times the fake kernel was asked to give a CPU back and to take one.
static UNSCHEDULED: AtomicU64 = AtomicU64::new(0);
static SCHEDULED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn backend_unschedule(_n: c_int, nlocks: *mut c_int, _interlock: *mut c_void) {
    UNSCHEDULED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: rumpglue passes a valid pointer.
    unsafe { *nlocks = 1 };
}

unsafe extern "C" fn backend_schedule(_nlocks: c_int, _interlock: *mut c_void) {
    SCHEDULED.fetch_add(1, Ordering::SeqCst);
}

static MTX: AtomicU64 = AtomicU64::new(0);
static COUNTER: AtomicU64 = AtomicU64::new(0);
static CV_MTX: AtomicU64 = AtomicU64::new(0);
static CV: AtomicU64 = AtomicU64::new(0);
static FLAG: AtomicI32 = AtomicI32::new(0);

/// A disk in memory, registered for the rump kernel to open.
struct Ram(exo_rt::sync::SpinLock<alloc::vec::Vec<u8>>);

impl rumpglue::BlockDevice for Ram {
    fn size(&self) -> u64 {
        self.0.lock().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> rumpglue::Result<()> {
        let d = self.0.lock();
        let src = d.get(offset as usize..offset as usize + buf.len()).ok_or(rumpglue::Error::OutOfRange)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> rumpglue::Result<()> {
        let mut d = self.0.lock();
        let dst = d.get_mut(offset as usize..offset as usize + buf.len()).ok_or(rumpglue::Error::OutOfRange)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn writable(&self) -> bool {
        true
    }
    fn flush(&self) -> rumpglue::Result<()> {
        Ok(())
    }
}

/// Block requests in flight at once.
const BIOS: usize = 16;
/// Completions seen, and each request's (bytes, error) (+1, so 0 is
/// "not yet").
static BIO_DONE: AtomicU64 = AtomicU64::new(0);
static BIO_RESULT: [AtomicU64; BIOS + 1] = [const { AtomicU64::new(0) }; BIOS + 1];

unsafe extern "C" fn biodone(arg: *mut c_void, bytes: usize, error: c_int) {
    BIO_RESULT[arg as usize].store(((bytes as u64) << 16 | error as u64) + 1, Ordering::SeqCst);
    BIO_DONE.fetch_add(1, Ordering::SeqCst);
}

/// Waits (at most 5 s) until `n` completions have been seen.
fn wait_bios(n: u64) -> bool {
    for _ in 0..5000 {
        if BIO_DONE.load(Ordering::SeqCst) >= n {
            return true;
        }
        sys::sleep(1_000_000);
    }
    false
}

/// Submits `BIOS` transfers of 4 KiB at 4 KiB apart from `bufs` and waits
/// for them; true if every one moved 4096 bytes without error.
///
/// # Safety
/// `fd` is open for the transfer; the buffers live until the wait ends.
unsafe fn bio_round(fd: c_int, op: u32, bufs: &mut [[u8; 4096]]) -> bool {
    BIO_DONE.store(0, Ordering::SeqCst);
    for (i, b) in bufs.iter_mut().enumerate() {
        BIO_RESULT[i].store(0, Ordering::SeqCst);
        // SAFETY: the caller's promise.
        unsafe {
            h::rumpuser_bio(
                fd,
                op as c_int,
                b.as_mut_ptr().cast(),
                4096,
                (i * 4096) as i64,
                Some(biodone),
                i as *mut c_void,
            )
        };
    }
    wait_bios(BIOS as u64) && (0..BIOS).all(|i| BIO_RESULT[i].load(Ordering::SeqCst) == (4096 << 16) + 1)
}

fn mtx(a: &AtomicU64) -> *mut rumpuser_mtx {
    a.load(Ordering::SeqCst) as *mut rumpuser_mtx
}

/// A thread body: adds to COUNTER 100 times under MTX, yielding inside.
unsafe extern "C" fn adder(_arg: *mut c_void) -> *mut c_void {
    for _ in 0..100 {
        // SAFETY: MTX was made by rumpuser_mutex_init before the threads.
        unsafe { h::rumpuser_mutex_enter(mtx(&MTX)) };
        let v = COUNTER.load(Ordering::SeqCst);
        sys::yield_now();
        COUNTER.store(v + 1, Ordering::SeqCst);
        // SAFETY: held by this thread.
        unsafe { h::rumpuser_mutex_exit(mtx(&MTX)) };
    }
    ptr::null_mut()
}

/// A thread body: waits on CV until FLAG is set, then ends itself with
/// rumpuser_thread_exit.
unsafe extern "C" fn waiter(_arg: *mut c_void) -> *mut c_void {
    let (m, cv) = (mtx(&CV_MTX), CV.load(Ordering::SeqCst) as *mut rumpuser_cv);
    // SAFETY: both made before the thread.
    unsafe {
        h::rumpuser_mutex_enter(m);
        while FLAG.load(Ordering::SeqCst) == 0 {
            h::rumpuser_cv_wait(cv, m);
        }
        FLAG.store(2, Ordering::SeqCst);
        h::rumpuser_mutex_exit(m);
        h::rumpuser_thread_exit();
    }
    ptr::null_mut() // not reached: rumpuser_thread_exit ends the thread
}

fn main(_args: &str) -> i32 {
    let mut failed = 0;
    let mut check = |what: &str, ok: bool| {
        println!("rumpcheck: {what}: {}", if ok { "ok" } else { "FAILED" });
        failed += u32::from(!ok);
    };
    let hyp = h::rumpuser_hyperup {
        hyp_backend_unschedule: Some(backend_unschedule),
        hyp_backend_schedule: Some(backend_schedule),
        ..Default::default()
    };
    // SAFETY: every hypercall below is called as the rumpuser(3) contract
    // asks, with objects made by the matching init calls, and pointers to
    // live locals.
    unsafe {
        check("init refuses hypercall version 16", h::rumpuser_init(16, &hyp) == EPROGMISMATCH);
        check("init takes version 17", h::rumpuser_init(h::RUMPUSER_VERSION as c_int, &hyp) == 0);

        // Mutexes: four threads contend, each waiter gives its CPU back.
        let mut m: *mut rumpuser_mtx = ptr::null_mut();
        h::rumpuser_mutex_init(&mut m, 0);
        MTX.store(m as u64, Ordering::SeqCst);
        let mut cookies = [ptr::null_mut::<c_void>(); 4];
        let mut created = 0;
        for c in cookies.iter_mut() {
            if h::rumpuser_thread_create(Some(adder), ptr::null_mut(), c"adder".as_ptr(), 1, 0, -1, c) == 0 {
                created += 1;
            }
        }
        let joined = cookies.iter().filter(|c| !c.is_null() && h::rumpuser_thread_join(**c) == 0).count();
        check(
            "4 threads add 100 each under a contended mutex: 400",
            created == 4 && joined == 4 && COUNTER.load(Ordering::SeqCst) == 400,
        );
        check(
            "blocked acquirers gave the virtual CPU back and took it again",
            UNSCHEDULED.load(Ordering::SeqCst) > 0
                && UNSCHEDULED.load(Ordering::SeqCst) == SCHEDULED.load(Ordering::SeqCst),
        );
        h::rumpuser_mutex_enter(m);
        check("tryenter of a held mutex: EBUSY", h::rumpuser_mutex_tryenter(m) == EBUSY);
        h::rumpuser_mutex_exit(m);
        check("tryenter of a free mutex: 0", h::rumpuser_mutex_tryenter(m) == 0);
        h::rumpuser_mutex_exit(m);
        h::rumpuser_mutex_destroy(m);

        // The current lwp, and a kernel mutex's owner.
        let mut fake_lwp = [0u64; 4];
        let l = fake_lwp.as_mut_ptr().cast::<lwp>();
        h::rumpuser_curlwpop(h::rumplwpop_RUMPUSER_LWP_CREATE as c_int, l);
        h::rumpuser_curlwpop(h::rumplwpop_RUMPUSER_LWP_SET as c_int, l);
        check("curlwp is the lwp set", h::rumpuser_curlwp() == l);
        let mut km: *mut rumpuser_mtx = ptr::null_mut();
        h::rumpuser_mutex_init(&mut km, h::RUMPUSER_MTX_KMUTEX as c_int);
        h::rumpuser_mutex_enter(km);
        let mut owner: *mut lwp = ptr::null_mut();
        h::rumpuser_mutex_owner(km, &mut owner);
        check("a kernel mutex's owner is the holder's lwp", owner == l);
        h::rumpuser_mutex_exit(km);
        h::rumpuser_mutex_destroy(km);
        h::rumpuser_curlwpop(h::rumplwpop_RUMPUSER_LWP_CLEAR as c_int, l);
        h::rumpuser_curlwpop(h::rumplwpop_RUMPUSER_LWP_DESTROY as c_int, l);
        check("curlwp is NULL once cleared", h::rumpuser_curlwp().is_null());

        // Reader/writer locks.
        let mut rw: *mut rumpuser_rw = ptr::null_mut();
        h::rumpuser_rw_init(&mut rw);
        let (reader, writer) = (h::rumprwlock_RUMPUSER_RW_READER as c_int, h::rumprwlock_RUMPUSER_RW_WRITER as c_int);
        h::rumpuser_rw_enter(reader, rw);
        let second_reader = h::rumpuser_rw_tryenter(reader, rw) == 0;
        let writer_refused = h::rumpuser_rw_tryenter(writer, rw) == EBUSY;
        let mut held = 0;
        h::rumpuser_rw_held(reader, rw, &mut held);
        check("two readers at once, a writer refused while they read", second_reader && writer_refused && held != 0);
        h::rumpuser_rw_exit(rw);
        h::rumpuser_rw_exit(rw);
        check("a writer once they are gone", h::rumpuser_rw_tryenter(writer, rw) == 0);
        h::rumpuser_rw_exit(rw);
        h::rumpuser_rw_destroy(rw);

        // Condition variables: a signalled waiter, then a timed-out wait.
        let mut cm: *mut rumpuser_mtx = ptr::null_mut();
        h::rumpuser_mutex_init(&mut cm, 0);
        let mut cv: *mut rumpuser_cv = ptr::null_mut();
        h::rumpuser_cv_init(&mut cv);
        CV_MTX.store(cm as u64, Ordering::SeqCst);
        CV.store(cv as u64, Ordering::SeqCst);
        let mut cookie = ptr::null_mut();
        let made = h::rumpuser_thread_create(Some(waiter), ptr::null_mut(), ptr::null(), 1, 0, -1, &mut cookie) == 0;
        let mut waiting = 0;
        for _ in 0..1000 {
            h::rumpuser_cv_has_waiters(cv, &mut waiting);
            if waiting != 0 {
                break;
            }
            sys::sleep(1_000_000);
        }
        h::rumpuser_mutex_enter(cm);
        FLAG.store(1, Ordering::SeqCst);
        h::rumpuser_cv_signal(cv);
        h::rumpuser_mutex_exit(cm);
        let joined = made && h::rumpuser_thread_join(cookie) == 0;
        check(
            "a waiter signalled wakes, and is joined after rumpuser_thread_exit",
            waiting != 0 && joined && FLAG.load(Ordering::SeqCst) == 2,
        );
        h::rumpuser_mutex_enter(cm);
        let t0 = sys::clock();
        let r = h::rumpuser_cv_timedwait(cv, cm, 0, 20_000_000);
        let waited = sys::clock() - t0;
        h::rumpuser_mutex_exit(cm);
        check("a timed wait nobody signals: ETIMEDOUT after 20 ms", r == ETIMEDOUT && waited >= 20_000_000);
        h::rumpuser_cv_destroy(cv);
        h::rumpuser_mutex_destroy(cm);

        // Memory.
        let mut ok = true;
        for align in [0, 16, 64, 4096] {
            let mut p: *mut c_void = ptr::null_mut();
            ok &= h::rumpuser_malloc(1000, align, &mut p) == 0 && !p.is_null();
            ok &= align == 0 || (p as usize).is_multiple_of(align as usize);
            if !p.is_null() {
                ptr::write_bytes(p.cast::<u8>(), 0xa5, 1000);
                h::rumpuser_free(p, 1000);
            }
        }
        check("malloc at alignments 8 to 4096, written and freed", ok);
        let mut a: *mut c_void = ptr::null_mut();
        let mapped = h::rumpuser_anonmmap(ptr::null_mut(), 65536, 16, 0, &mut a) == 0;
        let zeroed = mapped && core::slice::from_raw_parts(a.cast::<u8>(), 65536).iter().all(|b| *b == 0);
        check("anonmmap: 64 KiB, 64 KiB aligned, zeroed", zeroed && (a as usize).is_multiple_of(65536));
        if mapped {
            h::rumpuser_unmap(a, 65536);
        }
        let mut x: *mut c_void = ptr::null_mut();
        check("anonmmap refuses executable memory", h::rumpuser_anonmmap(ptr::null_mut(), 4096, 12, 1, &mut x) != 0);

        // Clocks.
        let (mut s0, mut n0, mut s1, mut n1): (i64, c_long, i64, c_long) = (0, 0, 0, 0);
        let mono = h::rumpclock_RUMPUSER_CLOCK_ABSMONO as c_int;
        h::rumpuser_clock_gettime(mono, &mut s0, &mut n0);
        h::rumpuser_clock_sleep(h::rumpclock_RUMPUSER_CLOCK_RELWALL as c_int, 0, 10_000_000);
        h::rumpuser_clock_gettime(mono, &mut s1, &mut n1);
        let slept = (s1 - s0) * 1_000_000_000 + (n1 - n0);
        check("a 10 ms relative sleep, seen on the monotonic clock", slept >= 10_000_000);
        let (mut ws, mut wn): (i64, c_long) = (0, 0);
        h::rumpuser_clock_gettime(h::rumpclock_RUMPUSER_CLOCK_RELWALL as c_int, &mut ws, &mut wn);
        check("the wall clock is past 2000-01-01", ws >= 946_684_800);

        // Parameters and randomness.
        let mut buf = [0u8; 32];
        let ncpu = h::rumpuser_getparam(c"_RUMPUSER_NCPU".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) == 0
            && buf.starts_with(b"1\0");
        let unset = h::rumpuser_getparam(c"RUMP_NOT_SET".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) == ENOENT;
        rumpglue::rumpuser::set_param("RUMP_VERBOSE", "1");
        let set = h::rumpuser_getparam(c"RUMP_VERBOSE".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) == 0
            && buf.starts_with(b"1\0");
        check("parameters: one CPU, unset ENOENT, set_param seen", ncpu && unset && set);
        let (mut r1, mut r2) = ([0u8; 64], [0u8; 64]);
        let (mut n1, mut n2) = (0usize, 0usize);
        let got = h::rumpuser_getrandom(r1.as_mut_ptr().cast(), 64, h::RUMPUSER_RANDOM_HARD as c_int, &mut n1) == 0
            && h::rumpuser_getrandom(r2.as_mut_ptr().cast(), 64, 0, &mut n2) == 0;
        check("getrandom: 64 bytes twice, different", got && n1 == 64 && n2 == 64 && r1 != r2);

        // Block I/O on a registered device.
        let ram = Ram(exo_rt::sync::SpinLock::new(alloc::vec![0u8; 1 << 20]));
        rumpglue::rumpuser::register_device("ram0", alloc::sync::Arc::new(ram));
        let (mut size, mut ftype) = (0u64, 0);
        let info = h::rumpuser_getfileinfo(c"ram0".as_ptr(), &mut size, &mut ftype) == 0;
        check("getfileinfo: a 1 MiB block device", info && size == 1 << 20 && ftype == h::RUMPUSER_FT_BLK as c_int);
        let mut fd = -1;
        let mode = (h::RUMPUSER_OPEN_RDWR | h::RUMPUSER_OPEN_BIO) as c_int;
        let opened = h::rumpuser_open(c"ram0".as_ptr(), mode, &mut fd) == 0;
        let mut none = -1;
        let missing = h::rumpuser_open(c"/etc/passwd".as_ptr(), mode, &mut none) == ENOENT;
        check("open: the device opens, a host file does not exist", opened && missing);
        let mut bufs = alloc::vec![[0u8; 4096]; BIOS]; // on the heap: 64 KiB
        for (i, b) in bufs.iter_mut().enumerate() {
            b.fill(i as u8 ^ 0x5a);
        }
        let wrote = bio_round(fd, h::RUMPUSER_BIO_WRITE, &mut bufs);
        let mut back = alloc::vec![[0u8; 4096]; BIOS];
        let read = bio_round(fd, h::RUMPUSER_BIO_READ, &mut back);
        check("16 bios in flight: written, read back equal, each completed by biodone", wrote && read && back == bufs);
        BIO_DONE.store(0, Ordering::SeqCst);
        h::rumpuser_bio(
            99,
            h::RUMPUSER_BIO_READ as c_int,
            back[0].as_mut_ptr().cast(),
            512,
            0,
            Some(biodone),
            BIOS as *mut c_void,
        );
        let bad = wait_bios(1) && BIO_RESULT[BIOS].load(Ordering::SeqCst) == rumpglue::errno::EBADF as u64 + 1;
        check("a bio on a descriptor never opened completes with EBADF", bad);
        check("close", h::rumpuser_close(fd) == 0 && h::rumpuser_close(fd) == rumpglue::errno::EBADF);

        // The variadic console hypercall (the test reads the line).
        h::rumpuser_dprintf(
            c"rumpcheck: dprintf: %d %u %x %lX %05d|%-4s|%3c %s %lld %%\n".as_ptr(),
            -42 as c_int,
            42u32,
            0xbeefu32,
            0xdead_beef_cafe_u64,
            -7 as c_int,
            c"ab".as_ptr(),
            b'z' as c_int,
            ptr::null::<u8>(),
            i64::MIN,
        );
        let mut dl_calls = 0;
        h::rumpuser_dl_bootstrap(None, None, None);
        dl_calls += h::rumpuser_daemonize_begin() + h::rumpuser_daemonize_done(0);
        let sp = h::rumpuser_sp_init(ptr::null(), ptr::null(), ptr::null(), ptr::null());
        check(
            "static link: dl_bootstrap and daemonize do nothing, the syscall proxy is EOPNOTSUPP",
            dl_calls == 0 && sp == rumpglue::errno::EOPNOTSUPP,
        );
    }
    if failed == 0 {
        println!("rumpcheck: all checks passed");
        0
    } else {
        1
    }
}
