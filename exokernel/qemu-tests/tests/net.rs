//! Network tests: the virtio-net driver, the network server (smoltcp)
//! and `echod` (a POSIX program on the network server's sockets) as three
//! ExoV6 processes, reached from the host through QEMU's user network and
//! its port forwarding (`run-qemu --forward`).

use exo_qemu_tests::{boot_watching, echo_over_tcp, Boot};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that is free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Talks to the echo service once `up` says it listens: a UDP datagram
/// (only echod's log is checked for it), then
/// a TCP connection carrying 64 KiB, which must all come back. Returns the
/// bytes that came back over TCP.
fn talk(port: u16, up: std::sync::mpsc::Receiver<()>) -> Vec<u8> {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    // Until echod listens, QEMU holds connections and datagrams are lost.
    let _ = up.recv_timeout(Duration::from_secs(60));
    // The service is up once DHCP is done; until then QEMU resets us.
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            // Connected: the server has its address, so a datagram now
            // reaches it (before the TCP data, whose end stops the server).
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..5 {
                let _ = udp.send_to(b"a datagram for ExoV6", ("127.0.0.1", port));
                std::thread::sleep(Duration::from_millis(200));
            }
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let writer = {
                let mut w = s.try_clone().unwrap();
                let data = payload.clone();
                std::thread::spawn(move || {
                    let _ = w.write_all(&data);
                    let _ = w.shutdown(Shutdown::Write);
                })
            };
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back);
            let _ = writer.join();
            if !back.is_empty() || Instant::now() > deadline {
                return back;
            }
        }
        assert!(Instant::now() < deadline, "the echo service never answered");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Boots `image` with port 7 forwarded, talks to it from the host, and
/// checks that all 64 KiB came back over TCP.
fn echo_through(image: &str) -> Boot {
    let port = free_port();
    let fwd_tcp = format!("tcp:{port}:7");
    let fwd_udp = format!("udp:{port}:7");
    let (up_tx, up) = std::sync::mpsc::channel();
    let talker = std::thread::spawn(move || talk(port, up));
    let watch = move |line: &str| {
        if line.starts_with("echod: echo on TCP and UDP port 7") {
            let _ = up_tx.send(());
        }
    };
    let b = boot_watching(image, Duration::from_secs(120), &["--forward", &fwd_tcp, "--forward", &fwd_udp], watch);
    let back = talker.join().expect("the talking thread");
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    assert!(back == payload, "{} bytes came back, not the 65536 sent\n{}", back.len(), b.serial);
    b
}

#[test]
fn echo_over_tcp_from_the_host_through_driver_and_smoltcp() {
    let b = echo_through("net.img");
    b.expect_in_order(&[
        "virtio-net: 00:03.0: interrupts: MSI-X entry 0, vector 0x40, signalled on a notification",
        "virtio-net: 00:03.0: MAC 52:54:00:12:34:56",
        // Received frames are read in the driver's memory, not copied.
        "net-server: the driver lends received frames",
        "net-server: up on MAC 52:54:00:12:34:56; asking for an address by DHCP",
        "net-server: DHCP: address 10.0.2.15/24",
        "net-server: serving sockets (TCP and UDP)",
        "echod: echo on TCP and UDP port 7",
        "echod: TCP 7: connection from 10.0.2.2:",
        "echod: TCP 7: connection ended, 65536 bytes echoed",
        "echod: 1 connection(s) served",
        "root: every client of sockets has ended for good",
        "net-server: every client has ended for good",
    ]);
    b.expect_line("echod: UDP 7: 20 bytes from 10.0.2.2:");
    b.expect_line("virtio-net: 1 client(s) served");
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

/// The driver dies while sending a frame in the middle of the transfer
/// (test hook) and the supervisor restarts it: the network server attaches
/// to the new instance, and the host's 64 KiB echo still comes back whole
/// (TCP sends again what was lost in between).
#[test]
fn the_network_survives_a_driver_restart_mid_transfer() {
    let b = echo_through("net-restart.img");
    b.expect_in_order(&[
        "virtio-net: test hook: dying in the middle of sending frame 20",
        "root: virtio-net exited with code 70; restarting it in 10 ms",
        "root: restarted virtio-net",
        "net-server: the driver was restarted: buffer and notification attached again",
        // The new instance lends its received frames too.
        "net-server: the driver lends received frames",
        "echod: TCP 7: connection ended, 65536 bytes echoed",
    ]);
    assert_eq!(b.lines().iter().filter(|l| l.contains("test hook: dying")).count(), 1, "{}", b.serial);
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

/// Echoes `payload` through a connection to `port` made while holding
/// `gate` (until the first bytes came back), sent once every client
/// waiting at `all` is connected.
fn echo_at_once(
    port: u16,
    payload: &[u8],
    gate: &std::sync::Mutex<()>,
    all: &std::sync::Barrier,
) -> std::io::Result<Vec<u8>> {
    let mut back = vec![0u8; 1024];
    let mut s = {
        let _turn = gate.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            s.write_all(&payload[..1024])?;
            if s.read_exact(&mut back).is_ok() {
                break s;
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other("no connection echoed its first bytes"));
            }
        }
    };
    all.wait();
    let writer = {
        let mut w = s.try_clone()?;
        let data = payload[1024..].to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
            let _ = w.shutdown(Shutdown::Write);
        })
    };
    let r = s.read_to_end(&mut back);
    let _ = writer.join();
    r.map(|_| back)
}

/// echod's StreamSum, written again from its definition: over the
/// little-endian 64-bit words of `data` (the last padded with zeros), `a`
/// adds the words and `b` the values of `a`, modulo 2^64; the sum is `b`.
fn stream_sum(data: &[u8]) -> u64 {
    let (mut a, mut b) = (0u64, 0u64);
    for chunk in data.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        a = a.wrapping_add(u64::from_le_bytes(w));
        b = b.wrapping_add(a);
    }
    b
}

/// Sends `data` to the discard service on `port` and waits for the guest
/// to close the connection.
fn discard_through(port: u16, data: &[u8]) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(data)?;
    s.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    Ok(())
}

/// The POSIX library's sockets under load, from the host: 20 TCP clients
/// at once each echo 1 MiB through `echod`; 100 UDP datagrams of 1 KiB
/// and 100 of 4000 bytes (fragmented on the wire, reassembled by the
/// network server) each come back, none lost; 4 MiB (and 3 bytes) sent
/// to the discard service, which reads them in place, arrive with the
/// sum the host computes; 200 clients that connect and vanish leave
/// echod serving, which a last client checks.
#[test]
fn sockets_serve_concurrent_clients_datagrams_and_vanishing_peers() {
    let port = free_port();
    let sink_port = free_port();
    let fwd_tcp = format!("tcp:{port}:7");
    let fwd_udp = format!("udp:{port}:7");
    let fwd_sink = format!("tcp:{sink_port}:9");
    let discarded = exo_qemu_tests::seeded_bytes(0xd15c, (4 << 20) + 3);
    let want_sum = format!("{} bytes discarded, sum {:016x} ", discarded.len(), stream_sum(&discarded));
    let (up_tx, up) = std::sync::mpsc::channel();
    let watch = move |line: &str| {
        if line.starts_with("echod: echo on TCP and UDP port 7") || line.starts_with("echod: discard on TCP") {
            let _ = up_tx.send(());
        }
    };
    let host = std::thread::spawn(move || -> Result<String, String> {
        for _ in 0..2 {
            up.recv_timeout(Duration::from_secs(120)).map_err(|_| "echod never came up".to_string())?;
        }
        // QEMU forwards a connection before the guest has accepted it;
        // wait until one really echoes.
        let probe = b"are you there?".to_vec();
        let deadline = Instant::now() + Duration::from_secs(30);
        while echo_over_tcp(port, &probe).ok().as_deref() != Some(&probe[..]) {
            if Instant::now() > deadline {
                return Err("the first echo never came back".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let t0 = Instant::now();
        // QEMU's forwarding accepts one connection at a time (a listen
        // backlog of 1): twenty connects at once overflow the host's
        // queue, and the host kernel resets some. So the clients connect
        // one after the other (each until its first byte came back), then
        // all send their 1 MiB at once.
        let gate = std::sync::Arc::new(std::sync::Mutex::new(()));
        let all = std::sync::Arc::new(std::sync::Barrier::new(20));
        let clients: Vec<_> = (0..20u64)
            .map(|i| {
                let (gate, all) = (gate.clone(), all.clone());
                std::thread::spawn(move || {
                    let payload = exo_qemu_tests::seeded_bytes(0x5eed_0000 + i, 1 << 20);
                    match echo_at_once(port, &payload, &gate, &all) {
                        Ok(back) if back == payload => Ok(()),
                        Ok(back) => Err(format!("client {i}: {} bytes came back, not the same 1 MiB", back.len())),
                        Err(e) => Err(format!("client {i}: {e}")),
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().map_err(|_| "a client thread panicked".to_string())??;
        }
        let t_tcp = t0.elapsed();
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        udp.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let mut back = vec![0u8; 65536];
        for size in [1024usize, 4000] {
            for i in 0..100u64 {
                let d = exo_qemu_tests::seeded_bytes(size as u64 * 1000 + i, size);
                udp.send_to(&d, ("127.0.0.1", port)).map_err(|e| e.to_string())?;
                let n = udp.recv(&mut back).map_err(|e| format!("datagram {i} of {size} bytes lost: {e}"))?;
                if back[..n] != d[..] {
                    return Err(format!("datagram {i} of {size} bytes came back as {n} other bytes"));
                }
            }
        }
        let t_udp = t0.elapsed() - t_tcp;
        discard_through(sink_port, &discarded).map_err(|e| format!("the discard service: {e}"))?;
        for _ in 0..200 {
            drop(TcpStream::connect(("127.0.0.1", port)));
        }
        let t_vanish = t0.elapsed() - t_tcp - t_udp;
        eprintln!("sockets: TCP {t_tcp:?}, UDP {t_udp:?}, vanishing {t_vanish:?}");
        // The vanishing clients may have overflowed QEMU's queue as
        // above: a few tries, but echod must answer.
        let last = exo_qemu_tests::seeded_bytes(42, 65536);
        let mut outcome = Err("no try".to_string());
        for _ in 0..5 {
            outcome = match echo_over_tcp(port, &last) {
                Ok(b) if b == last => return Ok("ok".into()),
                Ok(b) => Err(format!("after the vanishing clients, {} bytes came back of 65536", b.len())),
                Err(e) => Err(format!("after the vanishing clients: {e}")),
            };
            std::thread::sleep(Duration::from_secs(1));
        }
        outcome
    });
    let forwards = ["--forward", &fwd_tcp, "--forward", &fwd_udp, "--forward", &fwd_sink];
    let b = boot_watching("sockets.img", Duration::from_secs(300), &forwards, watch);
    let verdict = host.join().expect("the host side");
    assert_eq!(verdict, Ok("ok".to_string()), "{}", b.serial);
    let served =
        b.lines().iter().filter(|l| l.contains("echod: TCP 7: connection ended, 1048576 bytes echoed")).count();
    assert_eq!(served, 20, "{}", b.serial);
    b.expect_line("echod: 22 connection(s) served");
    // The sink read the bytes where the network server put them, each
    // once and in order.
    b.expect_line(&format!("echod: TCP 9: connection ended, {want_sum}"));
    // The hostile client's requests were each refused, and the server went
    // on serving (all of the above).
    b.expect_line("sockcheck: 21/21 checks passed");
    b.expect_line("root: all 5 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
    eprintln!("sockets: 20 x 1 MiB TCP, 200 UDP datagrams, 200 vanishing clients in {:.1} s", b.elapsed.as_secs_f64());
}

/// A client that opens sockets until the network server's heap cannot
/// hold another's buffers is refused (`TooMany`) before its own limit of
/// 64, the server does not crash, and once the sockets are closed one
/// opens again.
#[test]
fn a_full_heap_refuses_sockets_and_the_server_goes_on() {
    let b = exo_qemu_tests::boot("sockets-heap.img", Duration::from_secs(120), &[]);
    let i = b.expect_line("sockcheck: sockets until the heap is full: ");
    assert!(b.lines()[i].ends_with(", then Ok(Some(TooMany)) ok"), "{}", b.serial);
    b.expect_line("sockcheck: a socket after closing them: closed: true, then Ok(Some(Ok)) ok");
    b.expect_line("sockcheck: 2/2 checks passed");
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
}
