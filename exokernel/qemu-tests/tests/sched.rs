//! Scheduler tests: the sched image (exokernel/qemu-tests/manifests/sched.manifest)
//! runs `share` programs that count the work they get in windows of the
//! boot clock. It runs under `-icount` (one virtual nanosecond per
//! instruction), so the shares do not depend on how busy the host is.

use exo_qemu_tests::{boot, Boot};
use std::sync::OnceLock;
use std::time::Duration;

fn sched_boot() -> &'static Boot {
    static BOOT: OnceLock<Boot> = OnceLock::new();
    BOOT.get_or_init(|| {
        let b = boot("sched.img", Duration::from_secs(300), &["--icount"]);
        assert_eq!(b.status, Some(0), "the sched image did not end as expected:\n{}", b.serial);
        b
    })
}

/// The count `share NAME` reported for window `w` (1-based).
fn count(b: &Boot, name: &str, w: usize) -> f64 {
    let prefix = format!("share {name}: window {w}: ");
    let i = b.expect_line(&prefix);
    b.lines()[i][prefix.len()..].trim().parse().unwrap_or_else(|_| panic!("bad count: {}", b.lines()[i]))
}

/// `part`'s share of `part + other`.
fn share(part: f64, other: f64) -> f64 {
    part / (part + other)
}

#[test]
fn equal_weights_share_equally_whatever_the_thread_counts() {
    let b = sched_boot();
    let s = share(count(b, "even-1", 1), count(b, "even-4", 1));
    assert!((s - 0.5).abs() <= 0.5 * 0.05, "1 thread against 4 at equal weights got {:.1}%", s * 100.0);
}

#[test]
fn weights_one_to_three_give_a_quarter_and_three_quarters() {
    let b = sched_boot();
    let s = share(count(b, "light", 1), count(b, "heavy", 1));
    assert!((s - 0.25).abs() <= 0.25 * 0.05, "weight 1 (3 threads) against 3 (1 thread) got {:.1}%", s * 100.0);
}

#[test]
fn a_program_yielding_in_a_loop_costs_another_almost_nothing() {
    let b = sched_boot();
    let (alone, beside) = (count(b, "alone", 1), count(b, "alone", 2));
    assert!(beside >= 0.95 * alone, "alone {alone}, beside a yielder {beside}");
    assert!(count(b, "yielder", 1) > 0.0, "the yielder never ran");
}

#[test]
fn a_lower_priority_runs_only_when_the_higher_is_idle() {
    let b = sched_boot();
    assert_eq!(count(b, "background", 1), 0.0, "level 0 ran while level 1 had work");
    assert!(count(b, "background", 2) > 0.0, "level 0 never ran while level 1 was idle");
}

/// The CPU time the kernel reports for `name` at shutdown, in ms.
fn cpu_ms(b: &Boot, name: &str) -> f64 {
    const PREFIX: &str = "[kernel] CPU time by process: ";
    let i = b.expect_line(PREFIX);
    let line = &b.lines()[i][PREFIX.len()..];
    line.split(", ")
        .find_map(|entry| {
            let (who, ms) = entry.strip_suffix(" ms")?.rsplit_once(' ')?;
            (who == name).then(|| ms.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no CPU time for {name} in: {line}"))
}

/// The kernel's own accounting agrees with what the programs counted: the
/// processes that shared a window by weight were charged in those
/// proportions, and a pair that spun through one second between them was
/// charged about that second.
#[test]
fn the_kernel_charges_each_process_the_time_it_ran() {
    let b = sched_boot();
    let (light, heavy) = (cpu_ms(b, "light"), cpu_ms(b, "heavy"));
    let s = share(light, heavy);
    assert!((s - 0.25).abs() <= 0.25 * 0.1, "light {light} ms, heavy {heavy} ms: {:.1}%", s * 100.0);
    let (one, four) = (cpu_ms(b, "even-1"), cpu_ms(b, "even-4"));
    let s = share(one, four);
    assert!((s - 0.5).abs() <= 0.5 * 0.1, "even-1 {one} ms, even-4 {four} ms: {:.1}%", s * 100.0);
    assert!((900.0..=1100.0).contains(&(one + four)), "a 1000 ms window charged {} ms", one + four);
}
