//! A hostile client of the process service's pipes, run by the shell (it
//! gets the endpoint `procs`): requests for pipes it does not hold, with
//! lengths beyond its buffer and ends that do not exist, each refused
//! with a status; then a pipe of its own (a started program may make
//! them, as a shell started from the shell does), written, read back and
//! closed; with its standard input a pipe (`X | pipecheck`), writing to
//! that read end is refused too, and reading it still works. The service must answer every request and go on serving
//! (the shell's next commands show it). One line per check; exits 0 if
//! all pass.
#![no_std]
#![no_main]

use exo_demos::Checks;
use exo_protocols::process::{self as proto, Status};
use exo_protocols::session::client::Attached;
use exo_rt::abi::FOREVER;

exo_rt::entry!(main);

const BUF_VA: u64 = 0x0000_4300_0000_0000;

fn main(_: &str) -> i32 {
    let mut c = Checks::new("pipecheck");
    let Some(ep) = exo_rt::endpoint("procs") else {
        exo_rt::println!("pipecheck: given no endpoint named procs");
        return 1;
    };
    // Before attaching: nothing is served.
    let m = ep.call([proto::PIPE_READ, 1, 16], None, FOREVER);
    let status = m.map(|m| Status::from_word(m.words[0]));
    c.check("read before attaching", status == Ok(Some(Status::NotAttached)), format_args!("{status:?}"));
    let Ok((mut buffer, attached, _)) = Attached::new(ep, 1, BUF_VA) else {
        exo_rt::println!("pipecheck: cannot attach to procs");
        return 1;
    };
    let ask = |words: [u64; 3]| attached.call(words, 0, |_| false).map(|m| Status::from_word(m.words[0]));
    let cases: [(&str, [u64; 3], Status); 6] = [
        ("reading a pipe it does not hold", [proto::PIPE_READ, 1, 16], Status::BadRequest),
        ("reading pipe u64::MAX", [proto::PIPE_READ, u64::MAX, u64::MAX], Status::BadRequest),
        ("writing beyond its buffer", [proto::PIPE_WRITE, 1, 1 << 40], Status::TooLarge),
        ("writing a pipe it does not hold", [proto::PIPE_WRITE, 1, 16], Status::BadRequest),
        ("closing end 2", [proto::PIPE_CLOSE, 1, 2], Status::BadRequest),
        ("closing a pipe it does not hold", [proto::PIPE_CLOSE, 12345, proto::WRITE_END], Status::BadRequest),
    ];
    for (name, words, want) in cases {
        let got = ask(words);
        c.check(name, got == Ok(Some(want)), format_args!("{got:?}"));
    }
    // A pipe of its own: both ends its, bytes through it unchanged.
    let answer = |words: [u64; 3]| attached.call(words, 0, |_| false).map(|m| m.words);
    match answer([proto::PIPE, 0, 0]) {
        Ok([s, id, _]) if s == Status::Ok as u64 => {
            c.check("a pipe of its own", true, format_args!("id {id}"));
            buffer.as_mut_slice()[..5].copy_from_slice(b"hello");
            let wrote = answer([proto::PIPE_WRITE, id, 5]);
            c.check("writing 5 bytes to it", wrote == Ok([Status::Ok as u64, 5, 0]), format_args!("{wrote:?}"));
            buffer.as_mut_slice()[..5].fill(0);
            let read = answer([proto::PIPE_READ, id, 16]);
            let same = &buffer.as_slice()[..5] == b"hello";
            c.check("reading them back", read == Ok([Status::Ok as u64, 5, 0]) && same, format_args!("{read:?}"));
            let closed = [proto::READ_END, proto::WRITE_END].map(|end| ask([proto::PIPE_CLOSE, id, end]));
            c.check("closing both ends", closed == [Ok(Some(Status::Ok)); 2], format_args!("{closed:?}"));
        }
        other => c.check("a pipe of its own", false, format_args!("{other:?}")),
    }
    // Its standard input, if a pipe: the read end only.
    if let Some(id) = exo_posix::getenv(proto::STDIN_VAR).as_deref().and_then(proto::pipe_named) {
        let got = ask([proto::PIPE_WRITE, id, 1]);
        c.check("writing to its read end", got == Ok(Some(Status::BadRequest)), format_args!("{got:?}"));
        let got = ask([proto::PIPE_READ, id, 0]);
        c.check("a 0-byte read of its read end", got == Ok(Some(Status::Ok)), format_args!("{got:?}"));
    }
    attached.detach();
    c.finish()
}
