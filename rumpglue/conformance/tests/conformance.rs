//! Runs the C conformance cases (csrc/suite.c) against rumpglue's
//! rumpuser(3) implementation. Cases share the fake kernel's CPU, so they
//! run one at a time; each gets 30 s, and a hang fails instead of
//! stalling CI.

use rumpglue_conformance as _;
use std::sync::Mutex;
use std::time::Duration;

#[path = "../src/cases.rs"]
mod cases;
use cases::*;

static LOCK: Mutex<()> = Mutex::new(());

fn run(case: Case) {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the suite's set-up, idempotent.
    assert_eq!(unsafe { conf_setup() }, 0, "rumpuser_init failed");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut msg = [0u8; 512];
        // SAFETY: a case with a message buffer of 512 bytes.
        let rv = unsafe { case(msg.as_mut_ptr().cast(), msg.len()) };
        let text = String::from_utf8_lossy(&msg[..msg.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
        let _ = tx.send((rv, text));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok((0, _)) => {}
        Ok((_, text)) => panic!("case failed: {text}"),
        Err(_) => panic!("deadlock or hang: the case did not finish in 30 s"),
    }
}

#[test]
fn init_checks_the_version() {
    run(conf_init_version);
}

#[test]
fn contended_mutex_gives_the_cpu_back() {
    run(conf_mutex_enter_unschedules);
}

#[test]
fn cv_timedwait_times_out_with_the_mutex_held() {
    run(conf_cv_timedwait);
}

#[test]
fn bio_completes_asynchronously_on_a_cpu() {
    run(conf_bio_async);
}

#[test]
fn getparam_values_and_errors() {
    run(conf_getparam);
}

#[test]
fn clocks_are_monotonic_and_sleep_unschedules() {
    run(conf_clocks);
}

#[test]
fn syscall_proxy_is_not_supported() {
    run(conf_sp_unsupported);
}

#[test]
fn threads_join_exit_and_detach() {
    run(conf_threads);
}

#[test]
fn spin_and_nowrap_never_give_the_cpu_back() {
    run(conf_nowrap_keeps_the_cpu);
}

#[test]
fn rwlock_sharing_upgrade_downgrade_and_writer_preference() {
    run(conf_rwlock);
}

#[test]
fn cv_broadcast_wakes_every_waiter_with_the_mutex() {
    run(conf_cv_broadcast);
}

#[test]
fn curlwp_bookkeeping() {
    run(conf_curlwp);
}

#[test]
fn malloc_and_anonmmap_alignment() {
    run(conf_memory);
}

#[test]
fn scatter_gather_and_file_positions() {
    run(conf_iov);
}

#[test]
fn random_errno_and_signals() {
    run(conf_random_errno_kill);
}

#[test]
fn daemonize_reports_to_the_waiting_parent() {
    run(conf_daemonize);
}

#[test]
fn dl_bootstrap_finds_the_programs_link_sets() {
    run(conf_dl_bootstrap);
}

struct Capture(Mutex<Vec<u8>>);

impl rumpglue::Console for Capture {
    fn write(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn dprintf_and_putchar_reach_the_console() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    rumpglue::rumpuser::set_console(&CAPTURE);
    // SAFETY: prints through the hypercalls.
    unsafe { conf_dprintf() };
    rumpglue::rumpuser::set_console(&rumpglue::host::HostConsole);
    let out = String::from_utf8(CAPTURE.0.lock().unwrap().clone()).unwrap();
    assert_eq!(out, "x=42 s=ok\nZ");
}
