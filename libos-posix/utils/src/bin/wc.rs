//! `wc [-l] [-w] [-c] [FILE...]`: lines, words and bytes of each file
//! (`LINES WORDS BYTES PATH`, and a `total` line for several), or only
//! the counts asked for; without operands (or `-`), of standard input, a
//! file or a pipe. Exit status 1 if a file could not be read.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use exo_rt::println;
use exo_utils::{each_chunk, fail, inputs, Args, Input};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("wc", args, "lwc", "wc [-l] [-w] [-c] [FILE...]") {
        Ok(a) => a,
        Err(s) => return s,
    };
    let operands = match inputs("wc", &a.operands) {
        Ok(o) => o,
        Err(s) => return s,
    };
    // The columns asked for (all three when none is).
    let asked = ['l', 'w', 'c'].map(|f| a.has(f));
    let shown = if asked.contains(&true) { asked } else { [true; 3] };
    let columns = |counts: [u64; 3]| {
        let widths = [8, 8, 10];
        let cols: Vec<String> =
            (0..3).filter(|i| shown[*i]).map(|i| format!("{:>w$}", counts[i], w = widths[i])).collect();
        cols.join(" ")
    };
    let mut status = 0;
    let mut total = [0u64; 3];
    for o in &operands {
        let (mut lines, mut words, mut bytes, mut in_word) = (0u64, 0u64, 0u64, false);
        let r = Input::open(o).and_then(|i| {
            each_chunk(i.fd(), |b| {
                bytes += b.len() as u64;
                for &c in b {
                    lines += u64::from(c == b'\n');
                    let space = c.is_ascii_whitespace();
                    words += u64::from(!space && !in_word);
                    in_word = !space;
                }
                Ok(())
            })
            .map(|()| i.name())
            .map_err(|e| (i.name(), e))
        });
        match r {
            Ok(name) if name == "-" && operands.len() == 1 => println!("{}", columns([lines, words, bytes])),
            Ok(name) => println!("{} {name}", columns([lines, words, bytes])),
            Err((what, e)) => status = fail("wc", &what, e),
        }
        for (t, n) in total.iter_mut().zip([lines, words, bytes]) {
            *t += n;
        }
    }
    if operands.len() > 1 {
        println!("{} total", columns(total));
    }
    status
}
