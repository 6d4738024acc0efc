//! The rumpuser(3) conformance suite inside ExoV6: the C cases of
//! `rumpglue/conformance/csrc/suite.c` (those that do not need host files,
//! signals, fork or shared objects), calling the hypercalls as a rump
//! kernel does through their fake kernel's upcalls, on rumpglue's
//! exokernel backend. Their `_Thread_local` counters live in ExoV6's
//! thread-local storage. One line per case (`rumpconf: NAME: ok`, or the
//! failed check); exits 0 if all pass. With the argument `pci` it checks
//! NetBSD's PCI hypercalls (`rumpcomp_pci_*`, csrc/pcicheck.c) on the
//! virtio-blk function its manifest entry gives it instead.
#![no_std]
#![no_main]

extern crate alloc;

use core::ffi::{c_char, c_int, CStr};
use exo_rt::println;

exo_rt::entry!(main);

#[path = "../../src/cases.rs"]
mod cases;
use cases::*;

extern "C" {
    /// Set to 42 by a C constructor (csrc/libc.c).
    static rumpconf_constructed: c_int;
    fn pci_check(msg: *mut c_char, len: usize) -> c_int;
}

/// `setenv` for the suite's C library: ExoV6 has no environment, so a
/// parameter goes to rumpglue directly.
///
/// # Safety
/// Both are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn rumpconf_set_param(name: *const c_char, value: *const c_char) {
    // SAFETY: the caller's promise.
    let (name, value) = unsafe { (CStr::from_ptr(name), CStr::from_ptr(value)) };
    if let (Ok(n), Ok(v)) = (name.to_str(), value.to_str()) {
        rumpglue::rumpuser::set_param(n, v);
    }
}

/// `pci`: NetBSD's PCI hypercalls on the device the manifest gave us.
fn pci() -> i32 {
    let mut msg = [0u8; 512];
    // SAFETY: a check with a message buffer of its size.
    if unsafe { pci_check(msg.as_mut_ptr().cast(), msg.len()) } == 0 {
        println!("rumpconf: rumpcomp_pci: ok");
        0
    } else {
        let text = CStr::from_bytes_until_nul(&msg).map_or("?", |c| c.to_str().unwrap_or("?"));
        println!("rumpconf: rumpcomp_pci: FAILED: {text}");
        1
    }
}

fn main(args: &str) -> i32 {
    if args.trim() == "pci" {
        return pci();
    }
    // SAFETY: written once, by the constructor, before main.
    let constructed = unsafe { rumpconf_constructed };
    println!("rumpconf: C constructors ran before main: {}", if constructed == 42 { "ok" } else { "FAILED" });
    // SAFETY: the suite's set-up.
    if unsafe { conf_setup() } != 0 {
        println!("rumpconf: rumpuser_init failed");
        return 1;
    }
    let cases: [(&str, Case); 12] = [
        ("init_checks_the_version", conf_init_version),
        ("mutex_enter_unschedules", conf_mutex_enter_unschedules),
        ("cv_timedwait", conf_cv_timedwait),
        ("getparam", conf_getparam),
        ("clocks", conf_clocks),
        ("sp_unsupported", conf_sp_unsupported),
        ("threads", conf_threads),
        ("nowrap_keeps_the_cpu", conf_nowrap_keeps_the_cpu),
        ("rwlock", conf_rwlock),
        ("cv_broadcast", conf_cv_broadcast),
        ("curlwp", conf_curlwp),
        ("memory", conf_memory),
    ];
    let mut failed = u32::from(constructed != 42);
    for (name, case) in cases {
        let mut msg = [0u8; 512];
        // SAFETY: a case with a message buffer of its size.
        let rv = unsafe { case(msg.as_mut_ptr().cast(), msg.len()) };
        if rv == 0 {
            println!("rumpconf: {name}: ok");
        } else {
            let text = CStr::from_bytes_until_nul(&msg).map_or("?", |c| c.to_str().unwrap_or("?"));
            println!("rumpconf: {name}: FAILED: {text}");
            failed += 1;
        }
    }
    // SAFETY: prints through rumpuser_dprintf and rumpuser_putchar.
    unsafe { conf_dprintf() };
    println!();
    if failed == 0 {
        println!("rumpconf: all {} cases passed", cases.len());
        0
    } else {
        println!("rumpconf: {failed} of {} cases failed", cases.len());
        1
    }
}
