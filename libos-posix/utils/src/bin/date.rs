//! `date [+%s]`: the wall-clock time the kernel keeps (from the CMOS
//! clock at boot), in UTC as `YYYY-MM-DD HH:MM:SS UTC`; `+%s` gives the
//! seconds since 1970 instead.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_rt::{eprintln, println, sys};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let secs = sys::wall_clock() / 1_000_000_000;
    match args.trim() {
        "" => {
            let (y, mo, d) = civil(secs / 86_400);
            let t = secs % 86_400;
            println!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC", t / 3600, t / 60 % 60, t % 60);
            0
        }
        "+%s" => {
            println!("{secs}");
            0
        }
        other => {
            eprintln!("date: {other}: only date or date +%s");
            2
        }
    }
}

/// Year, month, day of `days` since 1970-01-01 (the proleptic Gregorian
/// calendar, by eras of 400 years).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}
