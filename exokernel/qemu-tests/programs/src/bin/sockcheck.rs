//! A hostile client of the network server's sockets (it gets the endpoint
//! `sockets`), run beside `echod` in the socket test: requests before
//! attaching, push areas that do not fit its buffer, receives on sockets
//! it does not have or that are not connected, and a push area and status
//! page it scribbles over, each answered with a status; then it checks
//! that the status page holds its socket's flags and that a detached
//! client is served nothing. The server must answer every request and go
//! on serving (the test's 20 clients show it). One line per check; exits
//! 0 if all pass.
//!
//! `sockcheck exhaust` instead opens UDP sockets until the server refuses
//! one (run against a server with a small heap: the buffers of a socket
//! more would not fit), closes them, and opens one again.
#![no_std]
#![no_main]

extern crate alloc;

use exo_demos::Checks;
use exo_protocols::session::client::Attached;
use exo_protocols::socket::{self as proto, push, status, Request, Status};
use exo_rt::abi::FOREVER;

exo_rt::entry!(main);

const BUF_VA: u64 = 0x0000_4400_0000_0000;
const SMALL_VA: u64 = 0x0000_4500_0000_0000;
const PAGE: usize = status::BYTES;

fn main(args: &str) -> i32 {
    let mut c = Checks::new("sockcheck");
    let Some(ep) = exo_rt::endpoint("sockets") else {
        exo_rt::println!("sockcheck: given no endpoint named sockets");
        return 1;
    };
    if args.trim() == "exhaust" {
        return exhaust(ep, c);
    }
    let status_of = |m: Result<exo_rt::caps::Message, exo_rt::abi::Error>| m.map(|m| Status::from_word(m.words[0]));
    let got = status_of(ep.call(Request::Open { udp: false }.encode(), None, FOREVER));
    c.check("a socket before attaching", got == Ok(Some(Status::NotAttached)), format_args!("{got:?}"));

    // One page: no room for a push area (nor a status page).
    let Ok((_small, attached, _)) = Attached::new(ep, 1, SMALL_VA) else {
        exo_rt::println!("sockcheck: cannot attach to sockets");
        return 1;
    };
    let ask = |a: &Attached, r: Request| {
        a.call(r.encode(), 0, |_| false).map(|m| (Status::from_word(m.words[0]), m.words[1]))
    };
    let got = ask(&attached, Request::Push(2)).map(|(s, _)| s);
    c.check("a push area in a one-page buffer", got == Ok(Some(Status::TooLarge)), format_args!("{got:?}"));
    attached.detach();

    // Four pages: a data page, two of push area, the status page.
    let Ok((mut buffer, attached, _)) = Attached::new(ep, 4, BUF_VA) else {
        exo_rt::println!("sockcheck: cannot attach to sockets again");
        return 1;
    };
    for pages in [0, 1, 3, u32::MAX] {
        let got = ask(&attached, Request::Push(pages)).map(|(s, _)| s);
        c.check(
            "a push area that does not fit",
            got == Ok(Some(Status::TooLarge)),
            format_args!("{pages} pages: {got:?}"),
        );
    }
    let got = ask(&attached, Request::Push(2)).map(|(s, _)| s);
    c.check("a push area of two pages", got == Ok(Some(Status::Ok)), format_args!("{got:?}"));
    let (tcp, udp) = match (ask(&attached, Request::Open { udp: false }), ask(&attached, Request::Open { udp: true })) {
        (Ok((Some(Status::Ok), t)), Ok((Some(Status::Ok), u))) => (t as u32, u as u32),
        other => {
            c.check("two sockets", false, format_args!("{other:?}"));
            return c.finish();
        }
    };
    // The server told the new sockets' flags in the status page.
    let page = status::page(buffer.as_slice()).map(|p| (status::read(p, tcp), status::read(p, udp)));
    let fresh = page == Some((Some(0), Some(proto::WRITABLE))) || page == Some((Some(0), Some(0)));
    c.check("the status page holds the new sockets", fresh, format_args!("{page:?}"));
    let got = ask(&attached, Request::Bind(udp, ([0; 4], 0))).map(|(s, _)| s);
    c.check(
        "binding the UDP socket to a port of the server's choice",
        got == Ok(Some(Status::Ok)),
        format_args!("{got:?}"),
    );
    let cases: [(&str, Request, Status); 5] = [
        ("receiving on a socket never opened", Request::Recv(0x7777_0042, 100), Status::NoSuchSocket),
        ("receiving on an unconnected TCP socket", Request::Recv(tcp, 100), Status::NotConnected),
        ("receiving more than the buffer on an empty UDP socket", Request::Recv(udp, u32::MAX), Status::Empty),
        (
            "sending more than the data area",
            Request::Send(udp, (2 * PAGE) as u32, Some(([10, 0, 2, 2], 9))),
            Status::TooLarge,
        ),
        ("polling more handles than the data area holds", Request::Poll(PAGE as u32), Status::TooLarge),
    ];
    for (name, r, want) in cases {
        let got = ask(&attached, r).map(|(s, _)| s);
        c.check(name, got == Ok(Some(want)), format_args!("{got:?}"));
    }
    // Scribbles over its own push area (a lot that cannot be, and one
    // "waiting" for its TCP socket) and status page: its own loss only.
    {
        let Some((_, area, page)) = push::split(buffer.as_mut_slice(), 2) else {
            c.check("its buffer splits", false, format_args!(""));
            return c.finish();
        };
        area[..push::HEADER].fill(0xa5);
        page.fill(0x5a);
    }
    let got = ask(&attached, Request::Recv(tcp, 100)).map(|(s, _)| s);
    c.check("receiving past a scribbled push area", got == Ok(Some(Status::NotConnected)), format_args!("{got:?}"));
    {
        let Some((_, area, _)) = push::split(buffer.as_mut_slice(), 2) else { return c.finish() };
        push::clear(area);
        push::room(area)[..4].copy_from_slice(b"fake");
        push::pushed(area, tcp, 4);
    }
    let got = ask(&attached, Request::Recv(tcp, 100)).map(|(s, _)| s);
    c.check("receiving while a lot of its own making waits", got == Ok(Some(Status::Empty)), format_args!("{got:?}"));
    let got = ask(&attached, Request::Close(tcp)).map(|(s, _)| s);
    c.check("closing that socket", got == Ok(Some(Status::Ok)), format_args!("{got:?}"));
    let dropped = push::split(buffer.as_mut_slice(), 2).is_some_and(|(_, area, _)| push::waiting(area).is_none());
    c.check("its lot is dropped with it", dropped, format_args!(""));
    let got = ask(&attached, Request::Close(tcp)).map(|(s, _)| s);
    c.check("closing it again", got == Ok(Some(Status::NoSuchSocket)), format_args!("{got:?}"));
    // Polling its UDP socket still answers, with flags of a live socket.
    buffer.as_mut_slice()[..4].copy_from_slice(&udp.to_le_bytes());
    let got = ask(&attached, Request::Poll(1)).map(|(s, _)| s);
    let flags = u32::from_le_bytes(buffer.as_slice()[..4].try_into().expect("4 bytes"));
    let live = got == Ok(Some(Status::Ok)) && flags & proto::INVALID == 0;
    c.check("polling its UDP socket", live, format_args!("{got:?}, flags {flags:#x}"));
    attached.detach();
    let got = status_of(ep.call(Request::Recv(udp, 10).encode(), None, FOREVER));
    c.check("receiving after detaching", got == Ok(Some(Status::NotAttached)), format_args!("{got:?}"));
    c.finish()
}

/// Opens UDP sockets (each with its buffers in the server's heap) until
/// the server refuses one: it must refuse with `TooMany` before this
/// client's limit of 64 (the heap is what runs out) and go on serving:
/// once they are closed, a socket opens again.
fn exhaust(ep: exo_rt::caps::Endpoint, mut c: Checks) -> i32 {
    let Ok((_buffer, attached, _)) = Attached::new(ep, 4, BUF_VA) else {
        exo_rt::println!("sockcheck: cannot attach to sockets");
        return 1;
    };
    let ask = |r: Request| attached.call(r.encode(), 0, |_| false).map(|m| (Status::from_word(m.words[0]), m.words[1]));
    let mut open = alloc::vec::Vec::new();
    let refused = loop {
        match ask(Request::Open { udp: true }) {
            Ok((Some(Status::Ok), h)) if open.len() < 64 => open.push(h as u32),
            other => break other.map(|(s, _)| s),
        }
    };
    c.check(
        "sockets until the heap is full",
        refused == Ok(Some(Status::TooMany)) && !open.is_empty() && open.len() < 64,
        format_args!("{} opened, then {refused:?}", open.len()),
    );
    let closed = open.iter().all(|h| ask(Request::Close(*h)).is_ok_and(|(s, _)| s == Some(Status::Ok)));
    let again = ask(Request::Open { udp: true }).map(|(s, _)| s);
    c.check(
        "a socket after closing them",
        closed && again == Ok(Some(Status::Ok)),
        format_args!("closed: {closed}, then {again:?}"),
    );
    attached.detach();
    c.finish()
}
