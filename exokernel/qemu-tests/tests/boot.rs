//! Boot tests: the test image (exokernel/qemu-tests/manifests/test.manifest) runs
//! every demo program once; each test checks one property of that boot.
//! Separate boots check the failure paths (a failed expectation, a missing
//! boot image).

use exo_qemu_tests::{boot, Boot};
use std::sync::OnceLock;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn test_boot() -> &'static Boot {
    static BOOT: OnceLock<Boot> = OnceLock::new();
    BOOT.get_or_init(|| boot("test.img", TIMEOUT, &[]))
}

#[test]
fn boot_banner_reports_memory_found() {
    let b = test_boot();
    b.expect_line("[kernel] ExoV6 exokernel booting");
    let i = b.expect_line("[kernel] memory: ");
    let line = b.lines()[i];
    let mib: u64 = line
        .split("memory: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("MiB figure");
    // QEMU runs with -m 256M: the usable part is a little less.
    assert!((200..=256).contains(&mib), "memory size {mib} MiB out of range in {line:?}");
}

/// The kernel image is mapped W^X by section and the direct map of
/// physical memory cannot be executed; the kernel checks this by reading
/// its page tables back at boot (and panics if it is not so).
#[test]
fn kernel_image_is_mapped_w_xor_x() {
    let b = test_boot();
    let i = b.expect_line("[kernel] paging: kernel W^X (text ");
    let line = b.lines()[i];
    assert!(line.contains("r-x") && line.contains("rw-") && line.contains("direct map no-exec"), "{line}");
}

#[test]
fn root_task_starts_from_boot_image() {
    let b = test_boot();
    b.expect_in_order(&[
        "[kernel] root task started from boot image",
        "root: manifest lists 19 programs",
        "root: started hello (hello)",
    ]);
    b.expect_line("hello: hello from user space (args: \"first boot\")");
}

#[test]
fn preemption_interleaves_busy_loops() {
    let b = test_boot();
    let lines = b.lines();
    let pos = |p: &str| -> Vec<usize> {
        lines.iter().enumerate().filter(|(_, l)| l.starts_with(p)).map(|(i, _)| i).collect()
    };
    let a = pos("spin A: round");
    let bb = pos("spin B: round");
    assert_eq!(a.len(), 6, "spin A rounds in:\n{}", b.serial);
    assert_eq!(bb.len(), 6, "spin B rounds in:\n{}", b.serial);
    // Neither loop yields, so B can print between A's first and last
    // round (and vice versa) only if the timer preempts.
    assert!(bb.iter().any(|&i| i > a[0] && i < a[5]), "B never ran while A was busy:\n{}", b.serial);
    assert!(a.iter().any(|&i| i > bb[0] && i < bb[5]), "A never ran while B was busy:\n{}", b.serial);
}

#[test]
fn faulting_processes_are_killed_and_reported() {
    let b = test_boot();
    for (what, name) in [
        ("page fault (#PF) at rip=", "fault-pf"),
        ("invalid opcode (#UD) at rip=", "fault-ud"),
        ("divide error (#DE) at rip=", "fault-de"),
    ] {
        let i = b.expect_line(&format!("'{name}' killed: {what}"));
        assert!(b.lines()[i].starts_with("[kernel] process "), "{}", b.lines()[i]);
    }
    b.expect_line("'fault-pf' killed: page fault (#PF) at rip=0x4");
    b.expect_line("read of 0xdead0000, not mapped");
    b.expect_line("'fault-wx' killed: page fault (#PF)");
    b.expect_line("write of 0x4");
    // A thread's stack overflow ends on the unmapped pages below its
    // stack (exo-rt maps thread stacks from 0x7e00_0000_0000 up).
    let i = b.expect_line("'fault-stack' killed: page fault (#PF)");
    assert!(b.lines()[i].contains("write of 0x7e0") && b.lines()[i].contains("not mapped"), "{}", b.lines()[i]);
    b.expect_line("root: fault-stack killed by CPU exception");
    for name in ["fault-pf", "fault-ud", "fault-de", "fault-wx"] {
        b.expect_line(&format!("root: {name} killed by CPU exception"));
        assert!(b.find("fault: survived").is_none(), "a fault was survived:\n{}", b.serial);
    }
}

#[test]
fn others_run_on_after_faults() {
    let b = test_boot();
    // The spinners were running when the faults happened and still finish.
    let last_fault = b.expect_line("'fault-wx' killed");
    let a_done = b.expect_line("spin A: done");
    let b_done = b.expect_line("spin B: done");
    assert!(a_done > last_fault && b_done > last_fault, "spinners did not outlive the faults:\n{}", b.serial);
}

#[test]
fn bad_syscall_arguments_get_error_codes() {
    let b = test_boot();
    b.expect_line("badsys: kernel direct-map pointer: bad address ok");
    b.expect_line("badsys: kernel text pointer: bad address ok");
    b.expect_line("badsys: unmapped pointer: bad address ok");
    b.expect_line("badsys: range running off the stack: bad address ok");
    b.expect_line("badsys: unknown syscall 999: invalid syscall ok");
    let i = b.expect_line("badsys: ");
    assert!(b.find("FAILED").is_none(), "a check failed:\n{}", b.serial);
    let lines = b.lines();
    let summary = lines
        .iter()
        .position(|l| l.starts_with("badsys: ") && l.ends_with(" checks passed"))
        .unwrap_or_else(|| panic!("no badsys summary:\n{}", b.serial));
    let line = lines[summary];
    let (got, total) = line.trim_start_matches("badsys: ").split(' ').next().unwrap().split_once('/').unwrap();
    assert_eq!(got, total, "{line}");
    assert!(summary > i);
    b.expect_line("root: badsys exited with code 0");
}

#[test]
fn threads_share_memory_and_all_run() {
    let b = test_boot();
    for i in 1..=4 {
        b.expect_line(&format!("threads: worker {i} running"));
    }
    b.expect_line("threads: all 4 workers finished, sum 10");
    b.expect_line("threads: thread-local storage: 0 of 5 threads wrong, 5 distinct thread numbers");
    b.expect_line(
        "threads: locks: counter 1200 of 1200, 0 overlaps; 400 of 400 items handed over (sum 80200) to 4 consumers; \
         lonely wait woken false after 20+ ms; blocking true",
    );
    b.expect_line("root: threads exited with code 0");
}

#[test]
fn sleep_blocks_for_the_time_asked() {
    let b = test_boot();
    let start = b.expect_line("sleepcheck: sleeping 120 ms");
    let i = b.expect_line("sleepcheck: asked for 120 ms, clock advanced ");
    assert!(b.lines()[i].ends_with(": ok"), "{}", b.lines()[i]);
    b.expect_line("root: sleepcheck exited with code 0");
    // While it slept, the others ran: some other program printed between
    // its two lines. Which one is up to the scheduler (the spinners may be
    // done by then on a slow machine, or not yet through a round), so any
    // will do; but not the root task, which runs above every program
    // whether the sleeper blocks or not, nor the kernel.
    let ran = b.lines()[start + 1..i]
        .iter()
        .any(|l| !l.starts_with("sleepcheck:") && !l.starts_with("root:") && !l.starts_with("[kernel]"));
    assert!(ran, "no other program ran during the sleep:\n{}", b.serial);
}

#[test]
fn random_system_calls_never_break_the_kernel() {
    let b = test_boot();
    let i = b.expect_line("chaos: seed 20240601: 20000 calls, ");
    assert!(b.lines()[i].ends_with(" 0 malformed answers"), "{}", b.lines()[i]);
    b.expect_line("chaos: every answer was a success or a known error");
    b.expect_line("root: chaos exited with code 0");
}

/// The root task finds the PCI functions through its bus capability, gives
/// the virtio-blk one to `pciprobe`, which reads its configuration space
/// (virtio capability list included), may write its command register,
/// maps its registers (BAR 4) and reads the virtio common configuration
/// there, and gets contiguous DMA memory with its physical addresses; the
/// kernel refuses BAR writes, other functions, an I/O BAR as memory and
/// malformed accesses.
#[test]
fn pci_functions_are_found_and_a_driver_reaches_only_its_own() {
    let b = test_boot();
    b.expect_line("root: pci 00:00.0 8086:29c0 class 060000"); // q35 host bridge
    let blk = b.expect_line("root: pci 00:02.0 1af4:");
    assert!(b.lines()[blk].ends_with(" virtio-blk"), "{}", b.lines()[blk]);
    let net = b.expect_line("root: pci 00:03.0 1af4:");
    assert!(b.lines()[net].ends_with(" virtio-net"), "{}", b.lines()[net]);
    b.expect_in_order(&["root: pciprobe drives virtio-blk at 00:02.0", "root: started pciprobe"]);
    for check in [
        "identify: 00:02.0 reads Ok(",
        "virtio capabilities: ",
        "command register: ",
        "BAR write refused: Err(NoRights), BAR 4 still ",
        "ROM BAR write refused: Err(NoRights)",
        "other function refused: Err(NoRights)",
        "malformed accesses refused: ",
        "value wider than the write refused: Err(InvalidArgument)",
        "registers mapped: BAR 4: ",
        "BAR address: kernel says Ok(",
        "I/O BAR is no memory: BAR 0: Err(WrongType)",
        "DMA memory: 4 contiguous pages from Ok(",
        "interrupt binding refusals: console as notification Err(WrongType), no bits Err(InvalidArgument)",
        "interrupt vectors: 8 vectors from Ok(40) to Ok(47), then Exhausted",
        "open through a function refused: Err(WrongType)",
        "no capability, no access: Err(InvalidCap)",
    ] {
        let i = b.expect_line(&format!("pciprobe: {check}"));
        assert!(b.lines()[i].ends_with(" ok"), "{}\n{}", b.lines()[i], b.serial);
    }
    b.expect_line("pciprobe: virtio common structure in BAR 4");
    b.expect_in_order(&["pciprobe: 16/16 checks passed", "root: pciprobe exited with code 0"]);
}

/// `restart = on-failure`: the root task starts a crashing program again
/// after 10, 20 and 40 ms, then gives up (its manifest's rate limit: 3
/// restarts in 10 s)
/// and reports its last ending, which the manifest expected.
#[test]
fn crashing_program_is_restarted_with_backoff_until_the_rate_limit() {
    let b = test_boot();
    b.expect_in_order(&[
        "root: crashy killed by CPU exception 14; restarting it in 10 ms (restart 1 of at most 3 in 10 s)",
        "root: restarted crashy",
        "root: crashy killed by CPU exception 14; restarting it in 20 ms (restart 2 of at most 3 in 10 s)",
        "root: restarted crashy",
        "root: crashy killed by CPU exception 14; restarting it in 40 ms (restart 3 of at most 3 in 10 s)",
        "root: restarted crashy",
        "root: crashy failed 4 times in 10 s; not restarting it",
        "root: crashy killed by CPU exception 14",
    ]);
    // Four instances ran and were killed, each reported by the kernel.
    assert_eq!(b.lines().iter().filter(|l| l.contains("'crashy' killed")).count(), 4, "{}", b.serial);
    // The supervisor's summary says so too.
    let table = b.expect_line("root: program          starts  last ending");
    let row = b.lines()[table..].iter().copied().find(|l| l.split_whitespace().take(2).eq(["root:", "crashy"]));
    assert_eq!(
        row.map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["root:", "crashy", "4", "CPU", "exception", "14"]),
        "{}",
        b.serial
    );
}

#[test]
fn restart_always_restarts_clean_endings_and_says_they_ended() {
    let b = test_boot();
    b.expect_in_order(&[
        "root: again exited with code 0; restarting it in 10 ms (restart 1 of at most 5 in 60 s)",
        "root: restarted again",
        "root: again ended 6 times in 60 s; not restarting it",
        "root: again exited with code 0",
    ]);
    assert!(b.find("again failed").is_none(), "{}", b.serial);
}

#[test]
fn rumpglue_exokernel_backend_threads_random_and_clock() {
    let b = test_boot();
    b.expect_line("hypercheck: 8 threads started and joined, their sum 36: ok");
    b.expect_line("hypercheck: joining an unknown thread is an error: ok");
    b.expect_line("hypercheck: random: two 600-byte fills differ, 100+ distinct byte values: ok");
    b.expect_line("hypercheck: clock: a 5 ms sleep takes 5 ms or more: ok");
    b.expect_line("hypercheck: all checks passed");
    b.expect_line("root: hypercheck exited with code 0");
}

/// rumpuser(3) on ExoV6: every check of rumpcheck (see its source) passes.
#[test]
fn netbsd_rumpuser_hypercalls_work_on_the_exokernel_platform() {
    let b = test_boot();
    let checks: Vec<&str> = b
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("rumpcheck: ") && !l.starts_with("rumpcheck: dprintf: "))
        .collect();
    let failed: Vec<&&str> =
        checks.iter().filter(|l| !l.ends_with(": ok") && !l.ends_with("all checks passed")).collect();
    assert!(checks.len() >= 20 && failed.is_empty(), "{failed:?}\n{}", b.serial);
    b.expect_line("rumpcheck: 4 threads add 100 each under a contended mutex: 400: ok");
    b.expect_line("rumpcheck: a waiter signalled wakes, and is joined after rumpuser_thread_exit: ok");
    b.expect_line("rumpcheck: dprintf: -42 42 beef DEADBEEFCAFE -0007|ab  |  z (null) -9223372036854775808 %");
    b.expect_line("rumpcheck: all checks passed");
    b.expect_line("root: rumpcheck exited with code 0");
}

/// The rumpuser(3) C conformance suite, the same file as on Linux, runs
/// inside ExoV6 on rumpglue's exokernel backend (rumpglue/conformance/exo).
#[test]
fn the_rumpuser_conformance_suite_passes_inside_exov6() {
    let b = test_boot();
    for case in [
        "init_checks_the_version",
        "mutex_enter_unschedules",
        "cv_timedwait",
        "getparam",
        "clocks",
        "sp_unsupported",
        "threads",
        "nowrap_keeps_the_cpu",
        "rwlock",
        "cv_broadcast",
        "curlwp",
        "memory",
    ] {
        b.expect_line(&format!("rumpconf: {case}: ok"));
    }
    b.expect_line("x=42 s=ok");
    b.expect_line("rumpconf: C constructors ran before main: ok");
    b.expect_line("rumpconf: all 12 cases passed");
    b.expect_line("root: rumpconf exited with code 0");
}

/// The kernel reads the CMOS real-time clock at boot (QEMU's shows the
/// host's UTC time): the wall clock it reports is the host's, give or take
/// the time the test took.
#[test]
fn the_wall_clock_comes_from_the_real_time_clock() {
    let b = test_boot();
    let i = b.expect_line("[kernel] wall clock: ");
    let line = b.lines()[i];
    let stamp = line.split("wall clock: ").nth(1).and_then(|r| r.split(" UTC").next()).expect("a date");
    let out = std::process::Command::new("date").args(["-u", "-d", stamp, "+%s"]).output().expect("date");
    let guest: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("{line}"));
    let host = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((host - guest).abs() < 600, "guest {stamp} ({guest}) vs host {host}\n{}", b.serial);
}

/// What the README's `scripts/run-qemu` boots (the demo manifest) ends
/// with every program as expected and powers off with success.
#[test]
fn the_readme_demo_boot_ends_well() {
    let b = boot("demo.img", TIMEOUT, &[]);
    b.expect_line("root: manifest lists 8 programs");
    b.expect_line("root: all 8 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

#[test]
fn system_shuts_down_with_success() {
    let b = test_boot();
    b.expect_in_order(&["root: all 19 programs ended as expected", "[kernel] shutdown requested by 'root' (code 0)"]);
    assert_eq!(b.status, Some(0), "run-qemu status (0 = success), console:\n{}", b.serial);
    assert!(b.find("PANIC").is_none(), "{}", b.serial);
}

#[test]
fn failed_expectation_gives_failure_status() {
    let b = boot("failing.img", TIMEOUT, &[]);
    b.expect_line("root: hello exited with code 0, expected Some(Exit(7)): UNEXPECTED");
    b.expect_line("root: 1 program(s) failed or ended unexpectedly");
    assert_eq!(b.status, Some(exo_abi::qemu_exit_status(1)), "console:\n{}", b.serial);
}

/// A program that cannot start (no room for its budget) counts as ended
/// for good: the network server it alone was a client of is told (its
/// endpoint closed) and stops, then its driver, and ExoV6 ends with a
/// failure instead of waiting for ever.
#[test]
fn a_program_that_cannot_start_leaves_no_server_waiting_for_it() {
    let b = boot("nostart.img", TIMEOUT, &[]);
    b.expect_in_order(&[
        "root: cannot start sink: no room for its budget",
        "root: every client of sockets has ended for good; closed it, so that net-server stops waiting",
        "root: net-server exited with code 0",
        "root: virtio-net exited with code 0",
        "root: sink                  0  never started",
        "root: 1 program(s) failed or ended unexpectedly",
    ]);
    assert_eq!(b.status, Some(exo_abi::qemu_exit_status(1)), "console:\n{}", b.serial);
}

#[test]
fn kernel_with_garbage_boot_image_panics_clearly() {
    // Random bytes are not a boot image: the kernel must say so and fail.
    let b = boot("garbage.img", TIMEOUT, &[]);
    b.expect_line("[kernel] PANIC");
    b.expect_line("cannot start the root task: boot image:");
    assert_eq!(b.status, Some(3), "console:\n{}", b.serial);
}

#[test]
fn root_task_reports_each_ending_when_it_happens() {
    let b = test_boot();
    // spin-a comes before fault-pf in the manifest but ends much later:
    // the root task watches every program at once, not in manifest order.
    let fault = b.expect_line("root: fault-pf killed by CPU exception 14");
    let spin = b.expect_line("root: spin-a exited with code 0");
    assert!(fault < spin, "reports follow manifest order, not endings:\n{}", b.serial);
}
