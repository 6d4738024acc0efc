//! `sleep SECONDS`: waits that long (a decimal number: `0.5`, `30`), as
//! POSIX's sleep does; for the shell's background jobs and scripts.
//! Exit status 0, or 2 for a malformed duration.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_rt::eprintln;

exo_posix::entry!(main);

/// `SECONDS[.FRACTION]` in nanoseconds; `None` if malformed or over a
/// year.
fn parse(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(frac) || frac.len() > 9 {
        return None;
    }
    let secs: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    if secs > 366 * 24 * 3600 {
        return None;
    }
    let nanos: u64 = if frac.is_empty() { 0 } else { frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32) };
    Some(secs * 1_000_000_000 + nanos)
}

fn main(args: &str) -> i32 {
    let words = exo_posix::argv::words(args);
    let [d] = words.as_slice() else {
        eprintln!("sleep: sleep SECONDS");
        return 2;
    };
    let Some(ns) = parse(d) else {
        eprintln!("sleep: {d:?} is not a number of seconds (up to a year, nanoseconds at most)");
        return 2;
    };
    let until = exo_rt::sys::clock().saturating_add(ns);
    while exo_rt::sys::clock() < until {
        exo_rt::sys::sleep(until - exo_rt::sys::clock());
    }
    0
}
