//! Confines the hosted file server before it reads the image: fresh
//! namespaces where the kernel allows them, resource limits, no new
//! privileges, and a seccomp-bpf allow-list under which the process can
//! read its image and talk on its socket and nothing else: opening a file,
//! creating a socket or executing a program kills it with SIGSYS.
//!
//! This is the only module of the server with `unsafe` code: the raw
//! `unshare`, `setrlimit`, `prctl`, `setsockopt` and `close_range` calls.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;

/// Limits for one server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Address-space bytes.
    pub memory: u64,
    /// CPU seconds.
    pub cpu_seconds: u64,
    /// Largest file offset it may write (0: no writes at all).
    pub max_write: u64,
}

/// System calls the server needs once it runs: I/O on the descriptors it
/// was given, memory management, threads' futexes, clocks, exit.
const ALLOWED: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    // std's UnixStream reads and writes with these; creating or connecting
    // sockets stays forbidden.
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_brk,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_getrandom,
    libc::SYS_clock_gettime,
    libc::SYS_sched_yield,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // abort() after a panic raises SIGABRT: let it, so the client can tell
    // a crash from a sandbox violation.
    libc::SYS_getpid,
    libc::SYS_gettid,
];

/// What a process that runs threads needs on top of [`ALLOWED`] (a rump
/// kernel's threads: their stacks, sleeps and bookkeeping).
const THREADS: &[i64] = &[
    libc::SYS_mprotect,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_sched_getaffinity,
];

fn arg_is(arg: u8, value: u64, mask: Option<u64>) -> Result<seccompiler::SeccompRule, String> {
    let op = match mask {
        Some(m) => seccompiler::SeccompCmpOp::MaskedEq(m),
        None => seccompiler::SeccompCmpOp::Eq,
    };
    let len = if mask.is_some() { seccompiler::SeccompCmpArgLen::Qword } else { seccompiler::SeccompCmpArgLen::Dword };
    let c = seccompiler::SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp rule: {e}"))?;
    seccompiler::SeccompRule::new(vec![c]).map_err(|e| format!("seccomp rule: {e}"))
}

fn filter(threads: bool) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = ALLOWED.iter().map(|s| (*s, Vec::new())).collect();
    // Signals only to itself (abort() raises SIGABRT): tgkill with this
    // process as the thread group, so no other process can be signalled.
    rules.insert(libc::SYS_tgkill, vec![arg_is(0, std::process::id() as u64, None)?]);
    if threads {
        rules.extend(THREADS.iter().map(|s| (*s, Vec::new())));
        // Only threads: clone with CLONE_THREAD (clone3 already fails).
        let t = libc::CLONE_THREAD as u64;
        rules.insert(libc::SYS_clone, vec![arg_is(0, t, Some(t))?]);
        rules.insert(libc::SYS_clone3, Vec::new());
        // Naming a thread.
        rules.insert(libc::SYS_prctl, vec![arg_is(0, libc::PR_SET_NAME as u64, None)?]);
    }
    // fcntl only to ask whether a descriptor is open (std's debug checks
    // when a descriptor is closed).
    let getfd = seccompiler::SeccompCondition::new(
        1,
        seccompiler::SeccompCmpArgLen::Dword,
        seccompiler::SeccompCmpOp::Eq,
        libc::F_GETFD as u64,
    )
    .map_err(|e| format!("seccomp rule: {e}"))?;
    rules.insert(
        libc::SYS_fcntl,
        vec![seccompiler::SeccompRule::new(vec![getfd]).map_err(|e| format!("seccomp rule: {e}"))?],
    );
    let f = SeccompFilter::new(rules, SeccompAction::KillProcess, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    f.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp filter: {e}"))
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> bool {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(resource, &lim) == 0 }
}

/// Names the process (its `comm`, as `ps` and the kernel's logs show it;
/// cut to 15 bytes): started from `/proc/self/exe`, it would be `exe`.
/// Best effort.
pub fn set_name(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else { return };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string, at most 16 bytes
    // of it, from a pointer that stays valid for the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// Closes every descriptor above standard error that the server was
/// handed by accident (a parent's open files, a FUSE device): it keeps
/// only its image (0), its socket (1), its diagnostics (2) and `keep` (the
/// shared data buffer). Call first.
pub fn close_inherited(keep: Option<i32>) {
    let keep = keep.filter(|k| *k > 2).map(|k| k as u32);
    // SAFETY: close_range only closes descriptors; nothing in this process
    // uses any above 2 yet, except `keep`, which is spared.
    unsafe {
        match keep {
            Some(k) => {
                if k > 3 {
                    libc::close_range(3, k - 1, 0);
                }
                libc::close_range(k + 1, u32::MAX, 0);
            }
            None => {
                libc::close_range(3, u32::MAX, 0);
            }
        }
    }
}

/// Enters fresh user, PID, network, mount, IPC and UTS namespaces where
/// the kernel allows it (unprivileged user namespaces); says what
/// happened. Must run while the process has one thread.
///
/// A PID namespace takes effect for children only, and its first process
/// is its init, which the kernel shields from its own fatal signals (a
/// crash would not show as one). So the process forks twice: the first
/// child is the namespace's init and only waits for the second, which
/// carries on as the server; each parent ends the way its child did (the
/// same exit status, or the same signal), so the client sees the server's
/// end. Every parent closes its copies of the image, the socket and the
/// shared buffer, and dies with its parent (and a namespace dies with its
/// init), so killing the first process ends them all.
pub fn enter_namespaces() -> String {
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // SAFETY: unshare takes flags only; failure leaves us as we were.
    if unsafe { libc::unshare(flags | libc::CLONE_NEWPID) } == 0 {
        fork_and_relay(); // this process waits; the child is init
        fork_and_relay(); // init waits; the child is the server
        return "namespaces user+pid+net+mount+ipc+uts".to_string();
    }
    let pid_error = std::io::Error::last_os_error();
    // SAFETY: as above.
    if unsafe { libc::unshare(flags) } == 0 {
        format!("namespaces user+net+mount+ipc+uts (no pid namespace: {pid_error})")
    } else {
        format!("no namespaces ({})", std::io::Error::last_os_error())
    }
}

/// Forks. Returns in the child, which dies with this process. This
/// process keeps only standard error, waits for the child and ends as it
/// did: exit status `c` passes on as `c`, death by signal `s` as the same
/// signal (or, where a signal cannot be raised, as status 128 + `s`,
/// which the next parent turns back into `s`).
fn fork_and_relay() {
    // SAFETY: the process has one thread (see `enter_namespaces`); the
    // parent below calls only async-signal-safe functions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: as above.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return; // no fork: carry on as the server, unrelayed
    }
    if child == 0 {
        // SAFETY: prctl and getppid take integers only.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // The parent already gone? (Seen from inside a new PID
            // namespace, a parent outside it has number 0.)
            let pp = libc::getppid();
            if pp != parent && pp != 0 {
                libc::_exit(1);
            }
        }
        return;
    }
    // SAFETY: closing our own descriptors, then waiting for our own child
    // and ending; nothing here returns.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close_range(3, u32::MAX, 0);
        let mut status = 0;
        while libc::waitpid(child, &mut status, 0) < 0 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(1);
            }
        }
        let sig = if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) > 128 {
            libc::WEXITSTATUS(status) - 128
        } else {
            libc::_exit(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 1 })
        };
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
        // Still here: a namespace's init cannot raise a fatal signal on
        // itself; say it with the status instead.
        libc::_exit(128 + sig)
    }
}

/// Applies the sandbox to the calling process; returns a one-line
/// description of what took effect. Namespaces are best effort (they need
/// unprivileged user namespaces); limits, no_new_privs and seccomp are
/// required.
pub fn apply(limits: Limits) -> Result<String, String> {
    let ns = enter_namespaces();
    confine(limits, false).map(|d| format!("{ns}, {d}"))
}

/// Limits, no_new_privs and the seccomp allow-list, for every thread of
/// the process. With `threads`, the process may still start threads (a
/// rump kernel does) but no processes.
pub fn confine(limits: Limits, threads: bool) -> Result<String, String> {
    let mut parts = Vec::new();
    let ok = set_limit(libc::RLIMIT_AS, limits.memory)
        && set_limit(libc::RLIMIT_CPU, limits.cpu_seconds)
        && set_limit(libc::RLIMIT_FSIZE, limits.max_write)
        && (threads || set_limit(libc::RLIMIT_NPROC, 0))
        && set_limit(libc::RLIMIT_CORE, 0);
    if !ok {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    let writes =
        if limits.max_write == 0 { "no file writes".to_string() } else { "writes within the image only".to_string() };
    parts.push(format!("limits {} MiB, {} s CPU, {writes}", limits.memory >> 20, limits.cpu_seconds));
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    if threads {
        // clone3 passes its flags in memory, out of seccomp's sight: make
        // it fail with ENOSYS, and the C library falls back to clone,
        // whose flags the allow-list checks.
        let no_clone3 = SeccompFilter::new(
            [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            TargetArch::x86_64,
        )
        .map_err(|e| format!("seccomp filter: {e}"))?;
        let no_clone3: BpfProgram = no_clone3.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
        seccompiler::apply_filter_all_threads(&no_clone3).map_err(|e| format!("seccomp: {e}"))?;
    }
    let prog = filter(threads)?;
    seccompiler::apply_filter_all_threads(&prog).map_err(|e| format!("seccomp: {e}"))?;
    let n = ALLOWED.len() + if threads { THREADS.len() + 4 } else { 2 };
    parts.push(format!(
        "seccomp allow-list of {n} system calls{}",
        if threads { " (threads, no processes)" } else { "" }
    ));
    Ok(parts.join(", "))
}

/// Test hook: breaks the sandbox's rules on purpose (after [`apply`]), so
/// tests can check that the process is killed. Grants nothing.
pub fn violate(what: &str) {
    match what {
        "open" => {
            let _ = std::fs::File::open("/etc/hostname");
        }
        "connect" => {
            let _ = std::net::TcpStream::connect("127.0.0.1:9");
        }
        "exec" => {
            let _ = std::process::Command::new("/bin/true").status();
        }
        "kill" => {
            // Another process (init): any process but itself is off limits.
            // SAFETY: tgkill takes integers only (and signal 0 only probes).
            unsafe { libc::syscall(libc::SYS_tgkill, 1, 1, 0) };
        }
        "panic" => panic!("test hook: a crash in the server"),
        "hang" => loop {
            std::hint::spin_loop();
        },
        _ => {}
    }
}

/// Asks for 4 MiB socket buffers, so a whole `Read` answer moves with few
/// context switches. Best effort: the kernel may cap it.
pub fn enlarge_socket_buffers(s: &std::os::unix::net::UnixStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live
        // c_int; the descriptor belongs to `s`.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}
