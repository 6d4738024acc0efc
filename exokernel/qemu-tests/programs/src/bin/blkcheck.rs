//! A client of the block service (`exo_protocols::block`), as a file
//! server will be: attaches a buffer to the driver on its first endpoint,
//! reads the first 256 sectors through it and prints their FNV-1a-64
//! hash (the drivers test compares it with the disk image and with what
//! the driver read itself), writes a sector and reads it back, and checks
//! the driver's answers to bad requests. One line per check; exits 0 if
//! all pass. Needs console, untyped and the endpoint.
#![no_std]
#![no_main]

use exo_protocols::block::{Request, Status, SECTOR};
use exo_rt::abi::{map_flags, slot, FOREVER};
use exo_rt::caps::{Endpoint, Untyped, SELF};
use exo_rt::println;

use exo_demos::Checks;

exo_rt::entry!(main);

/// Where the shared buffer is mapped here.
const BUF_VA: u64 = 0x6000_0000;
/// Its size: 16 pages, 128 sectors.
const BUF_PAGES: u64 = 16;

/// One request; the status and the two answer words.
fn ask(ep: Endpoint, r: Request, cap: Option<u64>) -> (Option<Status>, u64, u64) {
    match ep.call(r.encode(), cap, FOREVER) {
        Ok(m) => (Status::from_word(m.words[0]), m.words[1], m.words[2]),
        Err(e) => {
            println!("blkcheck: call failed: {}", e.name());
            (None, 0, 0)
        }
    }
}

fn main(_args: &str) -> i32 {
    let ep = Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE);
    let mut c = Checks::new("blkcheck");

    let r = ask(ep, Request::Read { sector: 0, count: 1 }, None);
    c.check("read before attach", r.0 == Some(Status::NotAttached), format_args!("{:?}", r.0));

    let Ok(mem) = Untyped::from_slot(slot::UNTYPED).alloc(BUF_PAGES) else {
        println!("blkcheck: no memory for the buffer");
        return 1;
    };
    if SELF.map(mem, BUF_VA, map_flags::READ | map_flags::WRITE).is_err() {
        println!("blkcheck: cannot map the buffer");
        return 1;
    }
    // SAFETY: BUF_PAGES pages mapped read-write at BUF_VA just above; the
    // driver writes them only while we wait in a call.
    let buf = unsafe { core::slice::from_raw_parts_mut(BUF_VA as *mut u8, (BUF_PAGES * 4096) as usize) };
    let (status, sectors, bytes) = ask(ep, Request::Attach, Some(mem.slot()));
    c.check(
        "attach",
        status == Some(Status::Ok) && bytes == BUF_PAGES * 4096,
        format_args!("{status:?}: disk of {sectors} sectors, buffer of {bytes} bytes"),
    );

    // 256 sectors in runs of 128 (the buffer), hashed.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut ok = true;
    for first in [0, 128] {
        let (s, n, _) = ask(ep, Request::Read { sector: first, count: 128 }, None);
        ok &= s == Some(Status::Ok) && n == 128;
        for b in &buf[..(128 * SECTOR) as usize] {
            hash = (hash ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    c.check("read", ok, format_args!("fnv1a64 of sectors 0..256 through the driver: {hash:016x}"));

    // Write a sector, clear the buffer, read it back.
    let pattern = |i: usize| (i * 31 + 7) as u8;
    for (i, b) in buf[..512].iter_mut().enumerate() {
        *b = pattern(i);
    }
    let w = ask(ep, Request::Write { sector: 100, count: 1 }, None);
    buf[..512].fill(0);
    let r = ask(ep, Request::Read { sector: 100, count: 1 }, None);
    let same = buf[..512].iter().enumerate().all(|(i, b)| *b == pattern(i));
    c.check(
        "write and read back",
        w.0 == Some(Status::Ok) && r.0 == Some(Status::Ok) && same,
        format_args!("sector 100: {:?}, {:?}", w.0, r.0),
    );

    let beyond = ask(ep, Request::Read { sector: sectors, count: 1 }, None);
    let big = ask(ep, Request::Read { sector: 0, count: 129 }, None);
    let zero = ask(ep, Request::Read { sector: 0, count: 0 }, None);
    let junk = ep.call([99, 1, 2], None, FOREVER).map(|m| Status::from_word(m.words[0]));
    c.check(
        "bad requests",
        beyond.0 == Some(Status::OutOfRange)
            && big.0 == Some(Status::TooLarge)
            && zero.0 == Some(Status::BadRequest)
            && junk == Ok(Some(Status::BadRequest)),
        format_args!(
            "past the end {:?}, over the buffer {:?}, no sectors {:?}, unknown {junk:?}",
            beyond.0, big.0, zero.0
        ),
    );

    let d = ask(ep, Request::Detach, None);
    c.check("detach", d.0 == Some(Status::Ok), format_args!("{:?}", d.0));
    c.finish()
}
