//! `cat [FILE...]`: each file's bytes, in order, to standard output; `-`
//! or no operand reads standard input (a file or a pipe). Exit status 1
//! if a file could not be read.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use exo_utils::{each_chunk, fail, inputs, out, Args, Input};

exo_posix::entry!(main);

fn main(args: &str) -> i32 {
    let a = match Args::parse("cat", args, "", "cat [FILE...]") {
        Ok(a) => a,
        Err(s) => return s,
    };
    let operands = match inputs("cat", &a.operands) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mut status = 0;
    for o in operands {
        // A failed write is the output's (a full disk), not the file's.
        let mut written = Ok(());
        let r = Input::open(o)
            .and_then(|i| each_chunk(i.fd(), |d| out(d).inspect_err(|e| written = Err(*e))).map_err(|e| (i.name(), e)));
        if let Err(e) = written {
            return fail("cat", "writing its output", e);
        }
        if let Err((what, e)) = r {
            status = fail("cat", &what, e);
        }
    }
    status
}
