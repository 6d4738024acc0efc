//! IPC and capability tests: the ipc image (exokernel/qemu-tests/manifests/ipc.manifest)
//! runs `ipctest` against three `echo` servers; each test checks one
//! property of that boot.

use exo_qemu_tests::{boot, Boot};
use std::sync::OnceLock;
use std::time::Duration;

fn ipc_boot() -> &'static Boot {
    static BOOT: OnceLock<Boot> = OnceLock::new();
    BOOT.get_or_init(|| boot("ipc.img", Duration::from_secs(120), &[]))
}

/// The line `PROGRAM: NAME: ... ok` of a check, which must have passed.
fn check_line(b: &Boot, program: &str, name: &str) -> String {
    let i = b.expect_line(&format!("{program}: {name}: "));
    let line = b.lines()[i].to_string();
    assert!(line.ends_with(" ok"), "{line}\n{}", b.serial);
    line
}

fn check_ok(b: &Boot, name: &str) -> String {
    check_line(b, "ipc", name)
}

#[test]
fn ping_pong_with_badges() {
    let line = check_ok(ipc_boot(), "ping-pong");
    assert!(line.contains("100 calls answered, badge 4"), "{line}");
}

#[test]
fn capability_transfer_grants_shared_memory() {
    let b = ipc_boot();
    b.expect_in_order(&["echo: shared memory says \"hello through shared memory\"", "ipc: shared memory grant: "]);
    check_ok(b, "shared memory grant");
}

#[test]
fn revoke_while_in_use_gives_the_holder_errors() {
    let b = ipc_boot();
    b.expect_line("echo: after revoke: capability Some(Err(InvalidCap)), mapping Err(BadAddress)");
    check_ok(b, "revoke");
}

#[test]
fn delegation_upward_is_refused() {
    let b = ipc_boot();
    assert!(check_ok(b, "pass capability down to a guest").contains("Err(LabelViolation)"));
    assert!(check_ok(b, "relabel upward").contains("Err(LabelViolation)"));
    check_ok(b, "relabel downward");
    assert!(b.find("guest: shared memory says").is_none(), "the guest got the capability:\n{}", b.serial);
}

#[test]
fn timeouts_and_notifications() {
    let b = ipc_boot();
    for name in [
        "call timeout",
        "send poll",
        "signal wakes wait",
        "wait timeout",
        "bound notification ends recv",
        "reply without a call",
    ] {
        check_ok(b, name);
    }
}

/// A server whose receive (and reply-and-receive) also waits for a
/// notification, as a driver's waits for its interrupts: 200 calls, each
/// answered, and 10 signals between them, each ending a receive with its
/// bit.
#[test]
fn calls_and_signals_reach_a_server_with_a_bound_notification() {
    let line = check_ok(ipc_boot(), "calls and signals to a bound receiver");
    assert!(line.contains("200/200 calls answered; signals seen and their bits: Ok((a, 3ff))"), "{line}");
}

/// The call and its reply both take the kernel's fast path, which swaps
/// FPU state and registers itself: the caller gets back its own SSE and
/// callee-saved registers though the server filled its own with another
/// value.
#[test]
fn registers_survive_a_fast_path_round_trip() {
    let line = check_ok(ipc_boot(), "registers kept across a call");
    assert!(line.contains("16 SSE and 6 callee-saved registers: 0 words changed"), "{line}");
}

#[test]
fn server_killed_mid_call_gives_caller_an_error() {
    let b = ipc_boot();
    b.expect_in_order(&[
        "doomed: dying in the middle of a call",
        "[kernel] process 3 'doomed' killed",
        "ipc: server dies mid-call: Err(Dead)",
    ]);
    check_ok(b, "server dies mid-call");
}

/// The supervisor (root task) restarts the dead server on the same
/// endpoint; the caller's next call reaches the new instance.
#[test]
fn killed_server_is_restarted_and_answers_on_the_same_endpoint() {
    let b = ipc_boot();
    b.expect_in_order(&[
        "[kernel] process 3 'doomed' killed",
        "root: doomed killed by CPU exception 14; restarting it in 10 ms (restart 1 of at most 5 in 60 s)",
        "root: restarted doomed",
        "ipc: restarted server answers: Ok(42) ok",
        "root: doomed exited with code 0",
    ]);
}

/// Page tables count against the budget of the process they serve: 8
/// one-page mappings in fresh GiB regions cost exactly 17 table pages.
#[test]
fn page_tables_are_charged_to_the_budget() {
    let line = check_ok(ipc_boot(), "page tables charged");
    assert!(line.contains("17 pages for 8 mappings"), "{line}");
}

#[test]
fn all_checks_pass_and_system_powers_off() {
    let b = ipc_boot();
    assert!(b.find("FAILED").is_none(), "{}", b.serial);
    b.expect_in_order(&["ipc: 17/17 checks passed", "root: all 5 programs ended as expected"]);
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

fn seal_ok(b: &Boot, name: &str) -> String {
    check_line(b, "seal", name)
}

#[test]
fn sealing_key_comes_from_rdrand() {
    ipc_boot().expect_line("[kernel] sealing key: 256 bits from RDRAND");
}

#[test]
fn genuine_sealed_token_is_restored_and_forgeries_refused() {
    let b = ipc_boot();
    assert!(seal_ok(b, "genuine token restored").contains("maps the same page: Ok(5ea1ed00cafe)"));
    assert!(seal_ok(b, "forged tokens refused").contains("92 altered tokens"));
    assert!(seal_ok(b, "seal without grant").contains("Err(NoRights)"));
    assert!(seal_ok(b, "token of a freed object").contains("Err(Dead)"));
    // Unsealing does not undo revocation (the restored copy hangs under
    // the sealed one in the derivation tree).
    assert!(seal_ok(b, "revoke reaches a restored copy").contains("revoke Ok(2), restored slot afterwards Err("));
    assert!(seal_ok(b, "token of a revoked capability").contains("Err(Dead)"));
}

#[test]
fn ml_kem_establishes_a_key_the_server_verifies_with() {
    let b = ipc_boot();
    seal_ok(b, "ML-KEM key verifies kernel tokens locally");
    assert!(seal_ok(b, "other key pairs cannot").contains("Err(BadMac)"));
    seal_ok(b, "kernel accepts it too");
    b.expect_in_order(&["seal: 9/9 checks passed", "root: sealtest exited with code 0"]);
}
