//! Kernel-hardening tests: the hostile image
//! (exokernel/qemu-tests/manifests/hostile.manifest) runs attacking programs beside
//! a well-behaved victim. Each attacker ends as its manifest entry expects
//! (the root task checks), the victim finishes, and the kernel powers off
//! cleanly instead of panicking.

use exo_qemu_tests::{boot, Boot};
use std::sync::OnceLock;
use std::time::Duration;

fn hostile_boot() -> &'static Boot {
    static BOOT: OnceLock<Boot> = OnceLock::new();
    BOOT.get_or_init(|| boot("hostile.img", Duration::from_secs(180), &[]))
}

fn kernel_stayed_up(b: &Boot) {
    assert!(b.find("PANIC").is_none(), "the kernel panicked:\n{}", b.serial);
    assert_eq!(b.status, Some(0), "ExoV6 did not end with every expectation met:\n{}", b.serial);
    b.expect_line("spin V: done");
    b.expect_line("root: victim exited with code 0");
}

#[test]
fn every_rflags_bit_across_system_calls_leaves_the_kernel_up() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    for flag in ["CF", "PF", "AF", "ZF", "SF", "DF", "OF", "IOPL", "NT", "RF", "AC", "ID"] {
        b.expect_line(&format!("hostile flags: {flag} set across 8 system calls: ok"));
    }
    b.expect_line("root: flags exited with code 0");
}

#[test]
fn a_syscall_at_the_top_of_user_space_kills_only_its_process() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_line("hostile top: SYSCALL at 0x7fffffffeffe, returning to 0x7ffffffff000");
    b.expect_line("'top' killed: page fault (#PF) at rip=0x7ffffffff000");
    b.expect_line("root: top killed by CPU exception 14");
}

#[test]
fn a_non_canonical_stack_pointer_kills_only_its_process() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_line("process 'rsp' killed: cannot return to user mode at rip");
    b.expect_line("root: rsp killed by CPU exception 13");
    assert!(b.find("survived with a non-canonical stack pointer").is_none(), "{}", b.serial);
}

#[test]
fn umip_stops_sgdt_in_user_mode() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_line("[kernel] UMIP: on");
    b.expect_line("root: umip killed by CPU exception 13");
    assert!(b.find("SGDT worked in user mode").is_none(), "{}", b.serial);
}

#[test]
fn a_late_reply_never_answers_a_later_call_to_another_server() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_line("ipcconf client: first call: Err(\"timed out\")");
    b.expect_line("ipcconf late 50: reply refused: object is dead");
    b.expect_line("ipcconf late 100: reply taken");
    b.expect_line("ipcconf client: second call answered by its own server: ok");
    b.expect_line("root: conf-client exited with code 0");
}

#[test]
fn every_caller_of_a_server_that_answers_none_is_told_dead() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    // The first call is abandoned when the hoarder takes the second one
    // (it can only answer the last), the second when it dies. Which
    // caller's call came first is up to the scheduler (caller 1's thread
    // is given 20 ms to call before caller 2 does, which a busy machine
    // may not give it), so the hoarder's lines say (word = caller).
    let caller_taken = |call: u32| -> u64 {
        let i = b.expect_line(&format!("ipcconf hoarder: took call {call} (word "));
        let line = b.lines()[i];
        let word = line.split("(word ").nth(1).and_then(|w| w.strip_suffix(')'));
        word.and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no caller in {line:?}"))
    };
    let (first, second) = (caller_taken(1), caller_taken(2));
    assert!(first != second && [first, second].iter().all(|c| (1..=2).contains(c)), "{}", b.serial);
    let abandoned = b.expect_line(&format!("ipcconf caller {first}: told Dead after "));
    let dying = b.expect_line("ipcconf hoarder: dying with both calls unanswered");
    let orphaned = b.expect_line(&format!("ipcconf caller {second}: told Dead after "));
    assert!(abandoned < dying, "caller {first} was told only when the hoarder died:\n{}", b.serial);
    assert!(orphaned > dying, "caller {second} was told before the hoarder died:\n{}", b.serial);
    b.expect_line("ipcconf callers: 2 of 2 told Dead");
    b.expect_line("root: hoarder exited with code 3");
}

#[test]
fn a_program_that_spends_its_budget_harms_no_other() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    // Every kind of object ends in an error for the hog, not a panic.
    b.expect_line("hostile hog: 63 threads, then kernel table full");
    b.expect_line(" processes, then out of memory");
    b.expect_line(" more endpoints, then out of memory");
    b.expect_line(" more pages, then out of memory");
    let full = b.expect_line("hostile hog: full; the victim goes now");
    let got = b.expect_line("hostile victim: got everything it asked for beside the hog");
    assert!(full < got, "{}", b.serial);
    b.expect_line("root: hog exited with code 0");
    b.expect_line("root: victim2 exited with code 0");
}

#[test]
fn one_device_cannot_take_every_interrupt_vector() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_line("hostile irqs: 8 vectors for one device, then kernel table full");
    b.expect_line("root: irqs exited with code 0");
}

#[test]
fn processes_let_go_of_are_ended_and_their_entries_reused() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    // 5000 processes from a budget that holds about ten at a time, and
    // more than the kernel once allowed in its whole life (4096).
    b.expect_line("hostile cycles: 5000 processes made and let go, then timed out");
    b.expect_line("root: cycles exited with code 0");
}

#[test]
fn callers_of_a_server_given_up_on_are_told_gone() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_in_order(&[
        "root: flaky failed 6 times in 60 s; not restarting it",
        "root: flaky is gone for good; closed its endpoint svc",
        "ipcconf patient: call without a timeout: Err(\"service gone for good\")",
        "ipcconf patient: and the next call: Err(\"service gone for good\")",
        "root: patient exited with code 0",
    ]);
}

#[test]
fn an_instance_that_ran_long_enough_resets_the_restart_count() {
    let b = hostile_boot();
    kernel_stayed_up(b);
    b.expect_in_order(&[
        "hostile steady: instance 0 ran 1.2 s",
        "root: steady exited with code 1; restarting it in 10 ms (restart 1 of at most 1 in 60 s)",
        "hostile steady: instance 1 ran 1.2 s",
        "root: steady exited with code 1; restarting it in 10 ms (restart 1 of at most 1 in 60 s)",
        "hostile steady: instance 2 ran 1.2 s",
        "root: steady exited with code 1; restarting it in 10 ms (restart 1 of at most 1 in 60 s)",
        "hostile steady: instance 3 ran 1.2 s",
        "root: steady exited with code 0",
    ]);
}
