//! Tries to confuse IPC the way a hostile or faulty server would, for the
//! kernel-hardening tests. Roles (first argument):
//! - `late MS`: answers a first call on endpoint slot 16 at once (and is
//!   then waiting for the next, atomically), takes a second one and
//!   answers it after MS milliseconds with word 0 = MS, and reports
//!   whether the kernel took that reply.
//! - `client`: makes the first call to both servers (so both wait for the
//!   second), then calls the server at slot 16 (answers after 50 ms) with
//!   a 10 ms timeout, then at once the one at slot 17 (answers after
//!   100 ms): the answer must be the second server's, never the first
//!   one's late reply.
//! - `hoarder`: takes two calls on slot 16 without answering either, then
//!   dies (exit 3).
//! - `callers`: two threads call slot 16 with a 5 s timeout; each must be
//!   told `Dead` (its call abandoned, or its server gone), not time out.
//! - `crash`: a server that dies before it answers anything (killed by a
//!   page fault), for the supervisor to give up on.
//! - `patient`: calls slot 16 with no timeout; must be told `Gone` once
//!   the supervisor gives up on the server, never wait forever.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicUsize, Ordering};
use exo_rt::abi::{Error, FOREVER};
use exo_rt::caps::{self, Endpoint};
use exo_rt::{println, sys};

exo_rt::entry!(main);

const MS: u64 = 1_000_000;

fn endpoint(i: u64) -> Endpoint {
    Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE + i)
}

fn late(ms: u64) -> i32 {
    let ep = endpoint(0);
    if let Err(e) = ep.recv(None, FOREVER).and_then(|_| ep.reply_recv([0, 0, 0], None, None, FOREVER)) {
        println!("ipcconf late {ms}: recv failed: {}", e.name());
        return 1;
    }
    sys::sleep(ms * MS);
    match caps::reply([ms, 0, 0], None) {
        Ok(()) => println!("ipcconf late {ms}: reply taken"),
        Err(e) => println!("ipcconf late {ms}: reply refused: {}", e.name()),
    }
    0
}

fn client() -> i32 {
    for i in 0..2 {
        if let Err(e) = endpoint(i).call([0, 0, 0], None, FOREVER) {
            println!("ipcconf client: server {i} did not answer: {}", e.name());
            return 1;
        }
    }
    let first = endpoint(0).call([1, 0, 0], None, 10 * MS);
    println!("ipcconf client: first call: {:?}", first.map(|m| m.words[0]).map_err(Error::name));
    let second = endpoint(1).call([2, 0, 0], None, 2000 * MS);
    match second {
        Ok(m) if m.words[0] == 100 => {
            println!("ipcconf client: second call answered by its own server: ok");
            0
        }
        Ok(m) => {
            println!("ipcconf client: second call answered with {}: WRONG SERVER", m.words[0]);
            1
        }
        Err(e) => {
            println!("ipcconf client: second call failed: {}", e.name());
            1
        }
    }
}

fn hoarder() -> i32 {
    for i in 1..=2 {
        match endpoint(0).recv(None, FOREVER) {
            Ok(m) => println!("ipcconf hoarder: took call {i} (word {})", m.words[0]),
            Err(e) => println!("ipcconf hoarder: recv failed: {}", e.name()),
        }
    }
    // Let the callers see what happened to the first call before dying.
    sys::sleep(200 * MS);
    println!("ipcconf hoarder: dying with both calls unanswered");
    3
}

static DEAD: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);

fn caller(n: u64) {
    let start = sys::clock();
    let r = endpoint(0).call([n, 0, 0], None, 5000 * MS);
    let ms = (sys::clock() - start) / MS;
    match r {
        Err(Error::Dead) => {
            println!("ipcconf caller {n}: told Dead after {ms} ms");
            DEAD.fetch_add(1, Ordering::SeqCst);
        }
        other => println!("ipcconf caller {n}: {:?} after {ms} ms", other.map(|m| m.words[0]).map_err(Error::name)),
    }
    DONE.fetch_add(1, Ordering::SeqCst);
}

fn callers() -> i32 {
    if let Err(e) = exo_rt::thread::spawn(caller, 1) {
        println!("ipcconf callers: no thread: {}", e.name());
        return 1;
    }
    sys::sleep(20 * MS); // the first call reaches the hoarder first
    caller(2);
    while DONE.load(Ordering::SeqCst) < 2 {
        sys::sleep(MS);
    }
    let dead = DEAD.load(Ordering::SeqCst);
    println!("ipcconf callers: {dead} of 2 told Dead");
    if dead == 2 {
        0
    } else {
        1
    }
}

fn crash() -> i32 {
    // SAFETY: deliberately reads an unmapped address; the kernel kills us.
    unsafe { core::arch::asm!("mov rax, [{}]", in(reg) 0xdead_0000u64, out("rax") _) };
    0
}

fn patient() -> i32 {
    let start = sys::clock();
    let r = endpoint(0).call([1, 0, 0], None, FOREVER);
    let ms = (sys::clock() - start) / MS;
    println!("ipcconf patient: call without a timeout: {:?} after {ms} ms", r.map(|m| m.words[0]).map_err(Error::name));
    let again = endpoint(0).call([2, 0, 0], None, FOREVER);
    println!("ipcconf patient: and the next call: {:?}", again.map(|m| m.words[0]).map_err(Error::name));
    if r == Err(Error::Gone) && again.is_err_and(|e| e == Error::Gone) {
        0
    } else {
        1
    }
}

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace();
    match (words.next(), words.next().and_then(|w| w.parse::<u64>().ok())) {
        (Some("late"), Some(ms)) => late(ms),
        (Some("client"), _) => client(),
        (Some("hoarder"), _) => hoarder(),
        (Some("callers"), _) => callers(),
        (Some("crash"), _) => crash(),
        (Some("patient"), _) => patient(),
        _ => {
            println!("ipcconf: unknown role `{args}`");
            2
        }
    }
}
