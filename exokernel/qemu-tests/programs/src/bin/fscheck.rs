//! A client of a file server process (`exo_protocols::file`), as programs
//! will be through the library OS: attaches a buffer, asks what file
//! system it serves, lists `/`, reads `/hello.txt` and the whole of
//! `/data/blob.bin` (printing its FNV-1a-64 hash, which the test compares
//! with the file it put in the image), and checks the answers to requests
//! that must fail. With `rw` it also creates, writes and reads back a file.
//! One line per check; exits 0 if all pass. Needs console, untyped and the
//! file server's endpoint.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use exo_demos::Checks;
use exo_protocols::file::{self as ipc, ErrorKind, Kind, Request, Response, Status};
use exo_rt::abi::{map_flags, slot, FOREVER};
use exo_rt::caps::{Endpoint, Untyped, SELF};
use exo_rt::println;

exo_rt::entry!(main);

const BUF_VA: u64 = 0x6000_0000;
const BUF_PAGES: u64 = 16;
const BUF_BYTES: usize = (BUF_PAGES * 4096) as usize;

/// The file server, through the attached buffer.
struct Server {
    ep: Endpoint,
}

impl Server {
    fn buf(&self) -> &'static mut [u8] {
        // SAFETY: BUF_PAGES pages mapped read-write at BUF_VA by `main`;
        // one borrow at a time (each `ask` is done with it when it returns).
        unsafe { core::slice::from_raw_parts_mut(BUF_VA as *mut u8, BUF_BYTES) }
    }

    /// One request and its response (or the status that came instead).
    fn ask(&self, r: &Request) -> Result<Response, u64> {
        let bytes = r.encode();
        self.buf()[..bytes.len()].copy_from_slice(&bytes);
        self.raw(bytes.len() as u64)
    }

    /// A request of `len` bytes already in the buffer.
    fn raw(&self, len: u64) -> Result<Response, u64> {
        let m = self.ep.call([ipc::REQUEST, len, 0], None, FOREVER).map_err(|_| u64::MAX)?;
        if m.words[0] != Status::Ok as u64 {
            return Err(m.words[0]);
        }
        Response::decode(&self.buf()[..m.words[1] as usize]).map_err(|_| u64::MAX - 1)
    }
}

fn main(args: &str) -> i32 {
    let rw = args.split_whitespace().any(|w| w == "rw");
    let mut c = Checks::new("fscheck");
    let s = Server { ep: Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE) };

    let early = s.ep.call([ipc::REQUEST, 1, 0], None, FOREVER).map(|m| m.words[0]);
    c.check("request before attach", early == Ok(Status::NotAttached as u64), format_args!("status {early:?}"));
    let Ok(mem) = Untyped::from_slot(slot::UNTYPED).alloc(BUF_PAGES) else {
        println!("fscheck: no memory for the buffer");
        return 1;
    };
    if SELF.map(mem, BUF_VA, map_flags::READ | map_flags::WRITE).is_err() {
        println!("fscheck: cannot map the buffer");
        return 1;
    }
    let a = s.ep.call([ipc::ATTACH, 0, 0], Some(mem.slot()), FOREVER).map(|m| (m.words[0], m.words[1]));
    c.check("attach", a == Ok((Status::Ok as u64, BUF_BYTES as u64)), format_args!("{a:?}"));

    match s.ask(&Request::Info) {
        Ok(Response::Info(i)) => {
            c.check("info", true, format_args!("{} \"{}\" on the {}: {}", i.fs, i.label, i.partition, i.sandbox))
        }
        other => c.check("info", false, format_args!("{other:?}")),
    }
    match s.ask(&Request::ReadDir("/".into())) {
        Ok(Response::Dir(mut entries)) => {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let names: Vec<String> = entries
                .iter()
                .map(|e| if e.stat.kind == Kind::Dir { e.name.clone() + "/" } else { e.name.clone() })
                .collect();
            c.check("list /", !names.is_empty(), format_args!("{}", names.join(" ")));
        }
        other => c.check("list /", false, format_args!("{other:?}")),
    }
    let hello = s.ask(&Request::Read { path: "/hello.txt".into(), offset: 0, len: 200 });
    let text = match &hello {
        Ok(Response::Data(d)) => String::from_utf8_lossy(d).trim_end().into(),
        other => alloc::format!("{other:?}"),
    };
    c.check("read /hello.txt", matches!(hello, Ok(Response::Data(_))), format_args!("\"{text}\""));

    // The whole of a larger file, 32 KiB a request.
    let size = match s.ask(&Request::Stat("/data/blob.bin".into())) {
        Ok(Response::Stat(st)) => st.size,
        _ => 0,
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let (mut at, mut ok) = (0u64, size > 0);
    while ok && at < size {
        match s.ask(&Request::Read { path: "/data/blob.bin".into(), offset: at, len: 32 * 1024 }) {
            Ok(Response::Data(d)) if !d.is_empty() => {
                for b in &d {
                    hash = (hash ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
                }
                at += d.len() as u64;
            }
            _ => ok = false,
        }
    }
    c.check("read /data/blob.bin", ok, format_args!("{size} bytes, fnv1a64 {hash:016x}"));

    let missing = s.ask(&Request::Stat("/no/such/file".into()));
    let not_found = matches!(missing, Ok(Response::Error(ErrorKind::NotFound, _)));
    c.check("missing file", not_found, format_args!("{missing:?}"));
    s.buf()[..4].copy_from_slice(&[0xff, 1, 2, 3]);
    let garbage = s.raw(4);
    c.check(
        "malformed request",
        matches!(garbage, Ok(Response::Error(ErrorKind::Invalid, _))),
        format_args!("{garbage:?}"),
    );
    let too_long = s.raw(BUF_BYTES as u64 + 1);
    c.check("request longer than the buffer", too_long == Err(Status::BadRequest as u64), format_args!("{too_long:?}"));
    let write = s.ask(&Request::Create("/new.txt".into()));
    if rw {
        let data = b"written inside ExoV6\n".to_vec();
        let w = s.ask(&Request::Write { path: "/new.txt".into(), offset: 0, data: data.clone() });
        let r = s.ask(&Request::Read { path: "/new.txt".into(), offset: 0, len: 100 });
        c.check(
            "create, write, read back",
            write == Ok(Response::Done) && w == Ok(Response::Done) && r == Ok(Response::Data(data)),
            format_args!("{write:?}, {w:?}"),
        );
    } else {
        c.check("read-only", matches!(write, Ok(Response::Error(ErrorKind::ReadOnly, _))), format_args!("{write:?}"));
    }

    let d = s.ep.call([ipc::DETACH, 0, 0], None, FOREVER).map(|m| m.words[0]);
    c.check("detach", d == Ok(Status::Ok as u64), format_args!("{d:?}"));
    c.finish()
}
