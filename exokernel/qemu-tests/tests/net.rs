//! Network tests: the virtio-net driver, the network server (smoltcp)
//! and `echod` (a POSIX program on the network server's sockets) as three
//! ExoV6 processes, reached from the host through QEMU's user network and
//! its port forwarding (`run-qemu --forward`), or, for the hostile
//! network, through QEMU's UDP socket network, the test making and
//! reading every frame (`run-qemu --net-udp`, `exo_qemu_tests::wire`).

use exo_qemu_tests::{boot_watching, echo_over_tcp, free_port, wire, Boot};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

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
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(&payload[..1024])?;
        s.read_exact(&mut back)?;
        s
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
/// at once each echo 1 MiB through `echod`, then 100 at once 64 KiB
/// each; 100 UDP datagrams of 1 KiB
/// and 100 of 4000 bytes (fragmented on the wire, reassembled by the
/// network server) each come back, none lost, and of 100 of 1 KiB sent
/// at once at least 90; 4 MiB (and 3 bytes) sent
/// to the discard service, which reads them in place, arrive with the
/// sum the host computes; 200 clients that connect and vanish leave
/// echod serving, which two last clients check.
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
    let echod_said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let said = echod_said.clone();
    let watch = move |line: &str| {
        if line.starts_with("echod: echo on TCP and UDP port 7") || line.starts_with("echod: discard on TCP") {
            let _ = up_tx.send(());
        }
        if line.starts_with("echod: TCP 7: connection ended") {
            said.lock().unwrap().push(line.to_string());
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
        // QEMU's forwarding listens with a backlog of 1: of twenty
        // connects at once, the host's kernel holds some back and QEMU
        // does not pass them all on (a capture of the guest's frames showed
        // 16 of 20 reaching it; the host ended one with nothing echoed). So
        // the clients connect one after the other (each until its first
        // bytes came back), then all send their 1 MiB at once.
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
        // Then 100 connections open at once (made one after the other, as
        // above), each echoing 64 KiB: more than echod's heap holds large
        // buffers for, and more than 64 descriptors, each served all the
        // same.
        let all = std::sync::Arc::new(std::sync::Barrier::new(100));
        let burst: Vec<_> = (0..100u64)
            .map(|i| {
                let (gate, all) = (gate.clone(), all.clone());
                std::thread::spawn(move || {
                    let payload = exo_qemu_tests::seeded_bytes(0xb1ff_0000 + i, 65536);
                    match echo_at_once(port, &payload, &gate, &all) {
                        Ok(back) if back == payload => Ok(()),
                        Ok(back) => {
                            Err(format!("client {} of 100: {} bytes came back, not the same 64 KiB", i, back.len()))
                        }
                        Err(e) => Err(format!("client {i} of 100: {e}")),
                    }
                })
            })
            .collect();
        for c in burst {
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
        // And 100 of 1 KiB sent at once, before any answer: the network
        // server holds them for echod (UDP has no flow control; with 32
        // datagrams a socket, 33 came back). QEMU's user network itself
        // may drop a few on a loaded host (7 in one fresh-clone run with
        // two busy loops), so 90 must come back, each one whole.
        let burst: Vec<Vec<u8>> = (0..100u64).map(|i| exo_qemu_tests::seeded_bytes(0xb0b0 + i, 1024)).collect();
        for d in &burst {
            udp.send_to(d, ("127.0.0.1", port)).map_err(|e| e.to_string())?;
        }
        udp.set_read_timeout(Some(Duration::from_secs(3))).map_err(|e| e.to_string())?;
        let mut back_burst = std::collections::HashSet::new();
        while let Ok(n) = udp.recv(&mut back) {
            match burst.iter().position(|d| back[..n] == d[..]) {
                Some(i) => back_burst.insert(i),
                None => return Err(format!("a datagram of a burst came back as {n} other bytes")),
            };
            if back_burst.len() == burst.len() {
                break;
            }
        }
        if back_burst.len() < 90 {
            return Err(format!("{} of 100 datagrams sent at once came back", back_burst.len()));
        }
        let t_udp = t0.elapsed() - t_tcp;
        discard_through(sink_port, &discarded).map_err(|e| format!("the discard service: {e}"))?;
        let t_discard = t0.elapsed() - t_tcp - t_udp;
        // (Paced: QEMU's forwarding listens with a backlog of 1, and a
        // connect that finds it full waits a second for the host's kernel
        // to send its SYN again.)
        for _ in 0..200 {
            drop(TcpStream::connect(("127.0.0.1", port)));
            std::thread::sleep(Duration::from_millis(5));
        }
        let t_vanish = t0.elapsed() - t_tcp - t_udp - t_discard;
        eprintln!("sockets: TCP {t_tcp:?}, UDP {t_udp:?}, discard {t_discard:?}, vanishing {t_vanish:?}");
        // echod still serves: two clients, one after the other (no
        // retries: a retry would hide a client it no longer serves).
        let last = exo_qemu_tests::seeded_bytes(42, 65536);
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("after the vanishing clients: {e}"))?;
        let me = format!("(10.0.2.2:{})", s.local_addr().map_err(|e| e.to_string())?.port());
        let why = match exo_qemu_tests::echo_on(s, &last) {
            Ok(b) if b == last => None,
            Ok(b) => Some(format!("{} bytes came back of 65536", b.len())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            // What echod says of that connection (QEMU passes the host's
            // port on): whether the bytes were lost in ExoV6 or on the
            // host's side of QEMU's user network.
            let deadline = Instant::now() + Duration::from_secs(10);
            let theirs = loop {
                let said = echod_said.lock().unwrap().iter().filter(|l| l.contains(&me)).cloned().collect::<Vec<_>>();
                if !said.is_empty() || Instant::now() > deadline {
                    break said;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !theirs.iter().any(|l| l.contains("connection ended, 65536 bytes echoed")) {
                return Err(format!(
                    "after the vanishing clients, {why}; echod said of that connection {me}: {theirs:?}"
                ));
            }
            // echod received all 65536 bytes, the network server took them
            // all back, and the connection ended after them: the host's
            // side lost some (seen once in a CI run). Said; the next
            // client must come back whole all the same.
            eprintln!("sockets: after the vanishing clients, echod echoed all 65536 bytes but {why}");
        }
        match echo_over_tcp(port, &last) {
            Ok(b) if b == last => Ok("ok".into()),
            Ok(b) => Err(format!("the very last client: {} bytes came back of 65536", b.len())),
            Err(e) => Err(format!("the very last client: {e}")),
        }
    });
    let forwards = ["--forward", &fwd_tcp, "--forward", &fwd_udp, "--forward", &fwd_sink];
    let b = boot_watching("sockets.img", Duration::from_secs(300), &forwards, watch);
    let verdict = host.join().expect("the host side");
    // (What went wrong last, after the serial output, which is long.)
    assert_eq!(verdict, Ok("ok".to_string()), "{}\n{verdict:?}", b.serial);
    let served =
        b.lines().iter().filter(|l| l.contains("echod: TCP 7: connection ended, 1048576 bytes echoed")).count();
    assert_eq!(served, 20, "{}", b.serial);
    b.expect_line("echod: 123 connection(s) served");
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

/// The test as a guest's whole network (`run-qemu --net-udp`): frames
/// come and go as UDP datagrams; ARP and DHCP are answered as they come.
struct Wire {
    tun: UdpSocket,
    qemu: std::net::SocketAddr,
    /// The guest's MAC, from its DHCP messages.
    guest: Option<[u8; 6]>,
}

impl Wire {
    fn send(&self, frame: &[u8]) {
        let _ = self.tun.send_to(frame, self.qemu);
    }

    /// An IPv4 packet from the test to the guest, in a frame.
    fn ip(&self, protocol: u8, id: u16, fragment: u16, payload: &[u8]) -> Vec<u8> {
        let p = wire::ipv4(wire::HOST_IP, wire::GUEST_IP, protocol, id, fragment, payload);
        wire::ethernet(self.guest.unwrap_or([0xff; 6]), wire::HOST_MAC, wire::IPV4, &p)
    }

    fn tcp(&self, s: &wire::Segment) -> Vec<u8> {
        self.ip(wire::TCP, 0, 0, &wire::tcp(wire::HOST_IP, wire::GUEST_IP, s))
    }

    /// The next frame for the test, waiting at most `wait`; ARP requests
    /// for the test's address and DHCP are answered here.
    fn next(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let end = Instant::now() + wait;
        let mut buf = vec![0u8; 70_000];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.tun.set_read_timeout(Some(left)).unwrap();
            let Ok((n, _)) = self.tun.recv_from(&mut buf) else { continue };
            let f = &buf[..n];
            if let Some(answer) = wire::dhcp_answer(f) {
                self.guest = f[6..12].try_into().ok();
                self.send(&answer);
            } else if let Some(answer) = wire::arp_answer(f, wire::HOST_IP, wire::HOST_MAC) {
                self.send(&answer);
            } else {
                return Some(f.to_vec());
            }
        }
    }

    /// Frames for `wait`, each handed to `f` until it returns true:
    /// whether one did.
    fn until(&mut self, wait: Duration, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let end = Instant::now() + wait;
        while let Some(frame) = self.next(end.saturating_duration_since(Instant::now())) {
            if f(&frame) {
                return true;
            }
        }
        false
    }
}

/// A TCP segment from the guest's port 7 to the test's `port`.
fn from_echo(frame: &[u8], port: u16) -> Option<wire::Segment> {
    let p = wire::packet(frame).filter(|p| p.src == wire::GUEST_IP && p.dst == wire::HOST_IP)?;
    wire::segment(&p).filter(|s| s.sport == 7 && s.dport == port)
}

/// Frames no stack should take, each of its own kind: runts, ARP and IPv4
/// headers whose lengths lie, fragments that overlap, never end or end
/// past 64 KiB, UDP and TCP headers that lie, TCP options that lie, a
/// flood of 300 SYNs never finished and a run of joinable segments for no
/// connection. None is a datagram of 12 or 77 bytes to port 7 that should
/// come out whole.
fn hostile_frames(w: &Wire) -> Vec<Vec<u8>> {
    use wire::{ipv4, udp, Segment, ACK, GUEST_IP, HOST_IP, ICMP, IPV4, SYN, TCP, UDP};
    let eth = |kind: u16, p: &[u8]| wire::ethernet(w.guest.unwrap_or([0xff; 6]), wire::HOST_MAC, kind, p);
    let mut v =
        vec![vec![0u8; 1], vec![0xff; 13], eth(IPV4, &[]), eth(IPV4, &[0x45; 19]), eth(wire::ARP, &[0, 1, 8, 0])];
    let mut arp = vec![0, 1, 8, 0, 200, 200, 0, 1];
    arp.extend_from_slice(&[0xaa; 20]);
    v.push(eth(wire::ARP, &arp));
    // IPv4 headers that lie (their checksums right), and one whose
    // checksum is wrong.
    let good = ipv4(HOST_IP, GUEST_IP, UDP, 1, 0, &udp(HOST_IP, GUEST_IP, 4000, 7, b"never echoed"));
    let lies: [(usize, &[u8]); 7] =
        [(0, &[0x65]), (0, &[0x44]), (0, &[0x4f]), (2, &[0xff, 0xff]), (2, &[0, 10]), (2, &[0, 21]), (9, &[0xfe])];
    for (at, bytes) in lies {
        let mut p = good.clone();
        p[at..at + bytes.len()].copy_from_slice(bytes);
        p[10..12].fill(0);
        let sum = wire::checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        v.push(eth(IPV4, &p));
    }
    let mut p = good.clone();
    p[10] ^= 0x40;
    v.push(eth(IPV4, &p));
    // The same datagram, right, but for another card, and for another
    // address.
    v.push(wire::ethernet([0x02, 0, 0, 0, 0, 0x99], wire::HOST_MAC, IPV4, &good));
    let elsewhere = [10, 0, 2, 99];
    v.push(eth(IPV4, &ipv4(HOST_IP, elsewhere, UDP, 1, 0, &udp(HOST_IP, elsewhere, 4000, 7, b"never echoed"))));
    // Fragments: one that ends past 65 535 bytes (of a ping), 64 that
    // never end, overlapping ones, an empty one.
    let mf = 0x2000;
    v.push(w.ip(ICMP, 100, mf, &wire::icmp_echo(true, 1, 1, &[0; 8])[..8]));
    v.push(w.ip(ICMP, 100, 8184, &[0x55; 100]));
    for id in 200..264 {
        v.push(w.ip(UDP, id, mf, &[0x11; 16]));
    }
    let whole = udp(HOST_IP, GUEST_IP, 4001, 9, &[0x22; 32]);
    v.push(w.ip(UDP, 300, mf, &whole[..24]));
    v.push(w.ip(UDP, 300, mf | 1, &whole[8..32]));
    v.push(w.ip(UDP, 300, 4, &whole[32..]));
    v.push(w.ip(UDP, 400, mf, &[]));
    // UDP headers that lie; a datagram to port 7 with a wrong checksum.
    let mut d = udp(HOST_IP, GUEST_IP, 4002, 7, &[0x33; 12]);
    d[4..6].copy_from_slice(&7u16.to_be_bytes());
    v.push(w.ip(UDP, 2, 0, &d));
    d[4..6].copy_from_slice(&1000u16.to_be_bytes());
    v.push(w.ip(UDP, 3, 0, &d));
    let mut d = udp(HOST_IP, GUEST_IP, 4003, 7, &[0x44; 77]);
    d[6] ^= 0x01;
    v.push(w.ip(UDP, 4, 0, &d));
    // TCP: data offsets that lie, options whose lengths lie (to the echo
    // port and a closed one), a flood of SYNs never finished, and a run
    // of joinable segments of no connection.
    for (offset, port) in [(0xf0u8, 7u16), (0x20, 7), (0x50, 7)] {
        let mut t = wire::tcp(
            HOST_IP,
            GUEST_IP,
            &Segment { sport: 4004, dport: port, seq: 1, flags: ACK, ..Default::default() },
        );
        t[12] = offset;
        v.push(w.ip(TCP, 5, 0, &t[..20]));
    }
    // (Each from a port of its own: a SYN of a connection under way is
    // dropped, and counted, and those the test sends are counted.)
    let lying = [vec![2, 0], vec![3, 1], vec![8, 255, 0, 0], vec![2, 4, 0, 0], vec![3, 3, 255], vec![2, 4, 0x05]];
    for (k, options) in lying.into_iter().enumerate() {
        for port in [7, 9] {
            let s = Segment {
                sport: 4100 + k as u16,
                dport: port,
                seq: 7,
                flags: SYN,
                window: 1000,
                options: options.clone(),
                ..Default::default()
            };
            v.push(w.tcp(&s));
        }
    }
    for i in 0..300u16 {
        v.push(w.tcp(&Segment {
            sport: 5000 + i,
            dport: 7,
            seq: u32::from(i) << 20,
            flags: SYN,
            window: 512,
            ..Default::default()
        }));
    }
    for i in 0..20u32 {
        let s = Segment {
            sport: 4006,
            dport: 7,
            seq: 1_000 + i * 1000,
            ack: 1,
            flags: ACK,
            window: 9000,
            data: vec![0x66; 1000],
            ..Default::default()
        };
        v.push(w.tcp(&s));
    }
    // An ICMP echo request with a wrong checksum, a cut destination
    // unreachable, and a frame longer than the card takes.
    let mut echo = wire::icmp_echo(true, 2, 2, &[0x77; 20]);
    echo[2] ^= 0x10;
    v.push(w.ip(ICMP, 6, 0, &echo));
    v.push(w.ip(ICMP, 7, 0, &[3, 3, 0, 0]));
    v.push(eth(IPV4, &[0x45; 9000]));
    // Other kinds: IPv6 with nonsense, a VLAN tag.
    v.push(eth(0x86dd, &[0x60; 60]));
    v.push(eth(0x8100, &good));
    v
}

/// A TCP connection the test makes by hand to the guest's port 7: what
/// it sends and where each side stands.
struct Conn {
    port: u16,
    data: Vec<u8>,
    /// The sequence number of `data[0]`.
    base: u32,
    /// What the guest acknowledged.
    una: u32,
    /// The next byte of the echo expected.
    rcv: u32,
    echoed: Vec<u8>,
    /// The window the test advertises: 0 holds the echo back.
    window: u16,
    /// When what is missing was last sent again.
    resent: Instant,
}

impl Conn {
    /// Opens a connection from the test's `port` (its SYN sent again each
    /// second until answered), to send `data`.
    fn open(w: &mut Wire, port: u16, data: Vec<u8>) -> Result<Conn, String> {
        use wire::{ACK, SYN};
        let iss: u32 = u32::from(port) << 16;
        let syn = wire::Segment {
            sport: port,
            dport: 7,
            seq: iss,
            flags: SYN,
            window: 65_535,
            options: vec![2, 4, 0x05, 0xb4],
            ..Default::default()
        };
        let mut rcv = None;
        for _ in 0..20 {
            w.send(&w.tcp(&syn));
            w.until(Duration::from_secs(1), |f| {
                rcv = from_echo(f, port)
                    .filter(|s| s.flags & (SYN | ACK) == SYN | ACK && s.ack == iss + 1)
                    .map(|s| s.seq + 1);
                rcv.is_some()
            });
            if rcv.is_some() {
                break;
            }
        }
        let rcv = rcv.ok_or(format!("no answer to the SYN from port {port}"))?;
        let c = Conn {
            port,
            data,
            base: iss + 1,
            una: iss + 1,
            rcv,
            echoed: Vec::new(),
            window: 65_535,
            resent: Instant::now(),
        };
        c.ack(w);
        Ok(c)
    }

    fn end(&self) -> u32 {
        self.base + self.data.len() as u32
    }

    /// The segment of `data[from..to]`, acknowledging what came back.
    fn segment(&self, from: usize, to: usize) -> wire::Segment {
        wire::Segment {
            sport: self.port,
            dport: 7,
            seq: self.base + from as u32,
            ack: self.rcv,
            flags: wire::ACK | if to % 7000 < 1000 { wire::PSH } else { 0 },
            window: self.window,
            data: self.data[from..to.min(self.data.len())].to_vec(),
            ..Default::default()
        }
    }

    /// A segment without data at `seq` with `flags`, acknowledging what
    /// came back.
    fn bare(&self, seq: u32, flags: u8) -> wire::Segment {
        wire::Segment {
            sport: self.port,
            dport: 7,
            seq,
            ack: self.rcv,
            flags,
            window: self.window,
            ..Default::default()
        }
    }

    fn ack(&self, w: &Wire) {
        w.send(&w.tcp(&self.bare(self.una, wire::ACK)));
    }

    /// Takes one of the guest's segments of this connection: its
    /// acknowledgement, and its data if they come next (acknowledged).
    fn take(&mut self, w: &Wire, s: &wire::Segment) -> Result<(), String> {
        if s.flags & wire::RST != 0 {
            return Err(format!("port {}: reset after {} bytes acknowledged", self.port, self.una - self.base));
        }
        let ahead = s.ack.wrapping_sub(self.una) as i32;
        if s.flags & wire::ACK != 0 && ahead > 0 && s.ack.wrapping_sub(self.base) as usize <= self.data.len() {
            self.una = s.ack;
        }
        if !s.data.is_empty() {
            if s.seq == self.rcv && self.window > 0 {
                self.echoed.extend_from_slice(&s.data);
                self.rcv = self.rcv.wrapping_add(s.data.len() as u32);
            }
            self.ack(w);
        }
        Ok(())
    }

    /// Sends again what is not acknowledged (go-back-N, 32 segments at
    /// most), every 200 ms.
    fn resend(&mut self, w: &Wire) {
        if self.una == self.end() || self.resent.elapsed() < Duration::from_millis(200) {
            return;
        }
        let from = (self.una - self.base) as usize;
        for at in (from..self.data.len().min(from + 32 * 1000)).step_by(1000) {
            w.send(&w.tcp(&self.segment(at, at + 1000)));
        }
        self.resent = Instant::now();
    }

    fn echoed_all(&self) -> bool {
        self.una == self.end() && self.echoed.len() == self.data.len()
    }
}

/// Runs `conns` (takes the guest's segments, sends again what is missing)
/// until `done` says so, for at most `limit`.
fn run(
    w: &mut Wire,
    conns: &mut [&mut Conn],
    limit: Duration,
    done: impl Fn(&[&mut Conn]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done(conns) {
        if Instant::now() > deadline {
            let state: Vec<String> = conns
                .iter()
                .map(|c| {
                    format!(
                        "port {}: {} acknowledged, {} echoed of {}",
                        c.port,
                        c.una - c.base,
                        c.echoed.len(),
                        c.data.len()
                    )
                })
                .collect();
            return Err(format!("time ran out: {}", state.join("; ")));
        }
        if let Some(f) = w.next(Duration::from_millis(50)) {
            for c in conns.iter_mut() {
                if let Some(s) = from_echo(&f, c.port) {
                    c.take(w, &s)?;
                }
            }
            continue;
        }
        for c in conns.iter_mut() {
            c.resend(w);
        }
    }
    Ok(())
}

/// Both ends of `c` close: its FIN is acknowledged and the guest's comes.
fn close(w: &mut Wire, c: &mut Conn) -> Result<(), String> {
    use wire::{ACK, FIN};
    let end = c.end();
    let (mut acked, mut finished) = (false, false);
    for _ in 0..20 {
        if !acked {
            w.send(&w.tcp(&c.bare(end, FIN | ACK)));
        }
        w.until(Duration::from_millis(300), |f| {
            if let Some(s) = from_echo(f, c.port) {
                acked |= s.flags & ACK != 0 && s.ack == end + 1;
                if s.flags & FIN != 0 && s.seq == c.rcv {
                    c.rcv = c.rcv.wrapping_add(1);
                    finished = true;
                }
            }
            acked && finished
        });
        if finished {
            w.send(&w.tcp(&c.bare(end + 1, ACK)));
        }
        if acked && finished {
            return Ok(());
        }
    }
    Err(format!(
        "port {}: the connection did not end (our FIN acknowledged: {acked}, the guest's FIN: {finished})",
        c.port
    ))
}

/// What the hostile network saw: whether the guest answered a ping and
/// a datagram after the hostile frames, and what came back of the bytes
/// sent over TCP.
struct Seen {
    /// How many hostile frames were sent.
    hostile: usize,
    /// How long after it was first sent a datagram in fragments came back.
    reassembled: Option<Duration>,
    pinged: bool,
    datagram: bool,
    /// Of the echoes of five datagrams in fragments, held while the guest
    /// asked who had their sender's address: the fragments, and the last
    /// fragments, that came.
    held: (usize, usize),
    echoed: Vec<u8>,
}

/// The network of [`hostile_frames_leave_the_network_server_serving`],
/// once echod listens: the hostile frames, then a ping,
/// a datagram to the echo port, one in three fragments (sent again each
/// second until its echo comes) and a TCP connection to it whose first
/// pass sends a segment with a wrong checksum, one twice, two out of
/// order, one overlapping two others, its first SYN again, a SYN inside
/// the window (a blind attacker's), one acknowledging data never sent and
/// one in two IP fragments with a byte changed after its checksum was
/// made; what is missing is sent again (go-back-N) until all came back.
fn hostile_network(w: &mut Wire, sent: &[u8]) -> Result<Seen, String> {
    let frames = hostile_frames(w);
    for f in &frames {
        w.send(f);
        std::thread::sleep(Duration::from_millis(2));
    }
    w.until(Duration::from_millis(500), |_| false);

    // A ping, then a datagram: each answered.
    let ping = wire::icmp_echo(true, 0x4242, 1, b"still there?");
    let pong = wire::icmp_echo(false, 0x4242, 1, b"still there?");
    let mut pinged = false;
    for _ in 0..5 {
        w.send(&w.ip(wire::ICMP, 9, 0, &ping));
        pinged = w.until(Duration::from_secs(1), |f| {
            wire::packet(f).is_some_and(|p| p.protocol == wire::ICMP && p.payload == pong)
        });
        if pinged {
            break;
        }
    }
    let text = b"after the storm, UDP!";
    let mut datagram = false;
    for _ in 0..5 {
        w.send(&w.ip(wire::UDP, 10, 0, &wire::udp(wire::HOST_IP, wire::GUEST_IP, 4321, 7, text)));
        datagram = w.until(Duration::from_secs(1), |f| {
            wire::packet(f).and_then(|p| wire::datagram(&p).map(|(s, d, data)| (s, d, data.to_vec())))
                == Some((7, 4321, text.to_vec()))
        });
        if datagram {
            break;
        }
    }

    // A datagram in three fragments: the fragments above that never end
    // hold the reassembly buffers only for a while. Its echo comes in
    // fragments too; the first, with the ports, is enough.
    let big = exo_qemu_tests::seeded_bytes(0xf7a6, 3000);
    let whole = wire::udp(wire::HOST_IP, wire::GUEST_IP, 4322, 7, &big);
    let sent_at = Instant::now();
    let mut reassembled = None;
    for id in 500..530 {
        for (i, part) in whole.chunks(1480).enumerate() {
            let more = if (i + 1) * 1480 < whole.len() { 0x2000 } else { 0 };
            w.send(&w.ip(wire::UDP, id, more | (i * 1480 / 8) as u16, part));
        }
        let echoed = |f: &[u8]| {
            let ip = f.get(14..38).unwrap_or_default();
            f.len() > 42
                && f[12..14] == wire::IPV4.to_be_bytes()
                && ip.len() == 24
                && ip[9] == wire::UDP
                && ip[12..16] == wire::GUEST_IP
                && ip[6..8] == [0x20, 0]
                && ip[20..24] == [0, 7, 0x10, 0xe2]
        };
        if w.until(Duration::from_secs(1), echoed) {
            reassembled = Some(sent_at.elapsed());
            break;
        }
    }

    // Five datagrams in fragments from a neighbour the guest does not
    // know yet: their echoes wait for its ARP answer, which comes only
    // once all five are echoed, and then they all go out at once, each
    // in its three fragments.
    const OTHER_IP: [u8; 4] = [10, 0, 2, 3];
    const OTHER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x03];
    let asked = |f: &[u8]| f[12..14] == wire::ARP.to_be_bytes() && f.get(38..42) == Some(&OTHER_IP[..]);
    for k in 0..5u16 {
        let whole = wire::udp(OTHER_IP, wire::GUEST_IP, 4400 + k, 7, &big);
        for (i, part) in whole.chunks(1480).enumerate() {
            let more = if (i + 1) * 1480 < whole.len() { 0x2000 } else { 0 };
            let p = wire::ipv4(OTHER_IP, wire::GUEST_IP, wire::UDP, 600 + k, more | (i * 1480 / 8) as u16, part);
            w.send(&wire::ethernet(w.guest.unwrap_or([0xff; 6]), OTHER_MAC, wire::IPV4, &p));
        }
    }
    let mut request = None;
    w.until(Duration::from_secs(5), |f| {
        if asked(f) {
            request = Some(f.to_vec());
        }
        request.is_some()
    });
    // (echod's five echoes queue up in the network server meanwhile.)
    w.until(Duration::from_millis(1500), |_| false);
    let mut held = (0, 0);
    if let Some(answer) = request.as_deref().and_then(|r| wire::arp_answer(r, OTHER_IP, OTHER_MAC)) {
        w.send(&answer);
        w.until(Duration::from_secs(3), |f| {
            let ip = f.get(14..34).unwrap_or_default();
            if f[12..14] == wire::IPV4.to_be_bytes() && ip.len() == 20 && ip[9] == wire::UDP && ip[16..20] == OTHER_IP {
                held.0 += 1;
                held.1 += usize::from(ip[6] & 0x20 == 0);
            }
            held == (15, 5)
        });
    }

    // The connection, its first pass hostile.
    let mut c = Conn::open(w, 40_000, sent.to_vec())?;
    for i in 0..sent.len().div_ceil(1000) {
        let (from, to) = (i * 1000, ((i + 1) * 1000).min(sent.len()));
        match i {
            0 => {
                w.send(&w.tcp(&c.segment(from, to)));
                // The handshake's SYN again, late: a second handshake
                // with the same ports would reset this one.
                w.send(&w.tcp(&c.bare(c.base.wrapping_sub(1), wire::SYN)));
            }
            5 => {
                let mut f = w.tcp(&c.segment(from, to));
                let last = f.len() - 1;
                f[last] ^= 0x80; // the checksum no longer holds
                w.send(&f);
            }
            10 => {
                w.send(&w.tcp(&c.segment(from, to)));
                w.send(&w.tcp(&c.segment(from, to)));
            }
            19 => {}
            20 => {
                w.send(&w.tcp(&c.segment(from, to)));
                w.send(&w.tcp(&c.segment(19_000, 20_000)));
            }
            26 => {
                w.send(&w.tcp(&c.segment(from, to)));
                w.send(&w.tcp(&c.segment(25_500, 26_700)));
            }
            30 => {
                w.send(&w.tcp(&c.segment(from, to)));
                // A SYN inside the window, as a blind attacker would send:
                // dropped, the connection goes on. (Not a reset inside the
                // window: smoltcp ends the connection on any, not only on
                // one at the window's start, as RFC 5961 3.2 asks.)
                w.send(&w.tcp(&c.bare(c.base.wrapping_add(30_500), wire::SYN)));
            }
            35 => {
                let mut bogus = c.segment(from, to);
                bogus.ack = bogus.ack.wrapping_add(1_000_000);
                w.send(&w.tcp(&bogus));
            }
            40 => {
                // In two fragments, a byte of its data changed after its
                // checksum was made.
                let mut t = wire::tcp(wire::HOST_IP, wire::GUEST_IP, &c.segment(from, to));
                t[600] ^= 0x01;
                w.send(&w.ip(wire::TCP, 40, 0x2000, &t[..512]));
                w.send(&w.ip(wire::TCP, 40, 512 / 8, &t[512..]));
            }
            _ => w.send(&w.tcp(&c.segment(from, to))),
        }
    }
    run(w, &mut [&mut c], Duration::from_secs(90), |c| c[0].echoed_all())?;
    close(w, &mut c)?;
    let echoed = c.echoed;
    Ok(Seen { hostile: frames.len(), reassembled, pinged, datagram, held, echoed })
}

/// The test is the guest's whole network (`run-qemu --net-udp`): it hands
/// out the address by DHCP, then sends frames no stack should take (see
/// [`hostile_frames`]). The driver, the network server and echod go on:
/// a ping and a datagram are answered; a datagram in fragments is too,
/// within seconds, though the fragments that never end had taken every
/// reassembly buffer; a TCP connection whose first pass holds a segment
/// with a wrong checksum, a duplicate, two out of order, an overlap, two
/// SYNs with its addresses and ports (dropped: a listening socket would
/// take them for a new connection), a bogus acknowledgement and a segment
/// in IP fragments with a wrong byte (dropped: its checksum cannot be
/// checked before smoltcp) echoes every byte in order; and every program
/// ends as expected. Neither datagram
/// made to be dropped reached echod.
#[test]
fn hostile_frames_leave_the_network_server_serving() {
    let sent = exo_qemu_tests::seeded_bytes(0x5eed, 48 * 1024);
    let (seen, b) = {
        let sent = sent.clone();
        boot_as_network("net.img", Duration::from_secs(120), move |w| hostile_network(w, &sent))
    };
    assert!(seen.pinged, "no answer to a ping after the hostile frames\n{}", b.serial);
    assert!(seen.datagram, "no echo of a datagram after the hostile frames\n{}", b.serial);
    // The reassembly buffers that the fragments never ending held were
    // given up after the network server's 5 seconds.
    let reassembled = seen.reassembled.unwrap_or_else(|| panic!("no datagram in fragments came back\n{}", b.serial));
    assert!(reassembled < Duration::from_secs(20), "a datagram in fragments came back after {reassembled:?}");
    // The segment in fragments with a changed byte was dropped (its two
    // fragments), not taken unchecked.
    b.expect_line("TCP segment(s) with a wrong checksum dropped, 2 in IP fragments;");
    // Every fragment of the five echoes held for the neighbour's address
    // went out (the network server had lost the last of each).
    assert_eq!(seen.held, (15, 5), "fragments and last fragments of five held echoes\n{}", b.serial);
    // The two SYNs of the connection under way were dropped (and any the
    // test sent again while the guest was slow to answer the first).
    let lines = b.lines();
    let report = lines[b.expect_line("SYN(s) of connections under way dropped")];
    let stray: usize = report
        .split("; ")
        .find_map(|part| part.strip_suffix(" SYN(s) of connections under way dropped")?.parse().ok())
        .unwrap_or_else(|| panic!("no count of SYNs dropped in {report:?}"));
    assert!(stray >= 2, "{stray} SYN(s) of connections under way dropped, of the two sent\n{}", b.serial);
    assert!(
        seen.echoed == sent,
        "the {} bytes echoed are not the {} sent, in order\n{}",
        seen.echoed.len(),
        sent.len(),
        b.serial
    );
    b.expect_in_order(&[
        "net-server: DHCP: address 10.0.2.15/24, router 10.0.2.2",
        "echod: UDP 7: 21 bytes from 10.0.2.2:4321",
        "echod: TCP 7: connection from 10.0.2.2:40000",
        "echod: TCP 7: connection ended, 49152 bytes echoed",
        "root: all 3 programs ended as expected",
    ]);
    assert!(!b.serial.contains("UDP 7: 12 bytes") && !b.serial.contains("UDP 7: 77 bytes"), "{}", b.serial);
    // The hostile frames did reach the network server (all but the two
    // runts and the frame too long for the card, which QEMU may drop).
    let i = b.expect_line("net-server: ");
    let frames_in = b.lines()[i..]
        .iter()
        .find_map(|l| l.strip_prefix("net-server: ")?.split_once(" frames in")?.0.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no count of frames in\n{}", b.serial));
    assert!(
        frames_in >= seen.hostile - 3,
        "{frames_in} frames in, of {} hostile ones sent\n{}",
        seen.hostile,
        b.serial
    );
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

/// Boots `image` with the test as its whole network (`run-qemu
/// --net-udp`): a thread answers DHCP and ARP until echod listens, then
/// runs `network` on the wire. What it returned, and the boot; a failure
/// of it fails the test with the console output.
fn boot_as_network<T: Send + 'static>(
    image: &str,
    timeout: Duration,
    network: impl FnOnce(&mut Wire) -> Result<T, String> + Send + 'static,
) -> (T, Boot) {
    let tun = UdpSocket::bind("127.0.0.1:0").unwrap();
    let host_port = tun.local_addr().unwrap().port();
    let qemu_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (up_tx, up) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut w = Wire { tun, qemu: ([127, 0, 0, 1], qemu_port).into(), guest: None };
        until_echod_listens(&mut w, &up)?;
        network(&mut w)
    });
    let watch = move |line: &str| {
        if line.starts_with("echod: echo on TCP and UDP port 7") {
            let _ = up_tx.send(());
        }
    };
    let net = format!("{host_port}:{qemu_port}");
    let b = boot_watching(image, timeout, &["--net-udp", &net], watch);
    let result = thread.join().expect("the network thread").unwrap_or_else(|e| panic!("{e}\n{}", b.serial));
    (result, b)
}

/// Answers DHCP and ARP until `up` says echod listens.
fn until_echod_listens(w: &mut Wire, up: &std::sync::mpsc::Receiver<()>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(100);
    while up.try_recv().is_err() {
        if Instant::now() > deadline {
            return Err("echod never listened".into());
        }
        w.next(Duration::from_millis(100));
    }
    if w.guest.is_none() {
        return Err("the guest never asked for an address".into());
    }
    Ok(())
}

/// The network of [`a_peer_that_stops_reading_holds_up_only_itself`]:
/// the stalled connection's echo, the other's, and how much of its bytes
/// the stalled one had sent when the other was done.
fn stalling_network(w: &mut Wire, big: Vec<u8>, small: Vec<u8>) -> Result<(Vec<u8>, Vec<u8>, usize), String> {
    // It sends and sends, but takes no echo (window 0): echod's echo has
    // nowhere to go, echod stops reading it, the guest's window closes.
    let mut stalled = Conn::open(w, 41_000, big)?;
    stalled.window = 0;
    stalled.ack(w);
    let until = Instant::now() + Duration::from_secs(3);
    run(w, &mut [&mut stalled], Duration::from_secs(10), |_| Instant::now() > until)?;
    // Meanwhile another connection is served in full.
    let mut other = Conn::open(w, 41_001, small)?;
    run(w, &mut [&mut stalled, &mut other], Duration::from_secs(30), |c| c[1].echoed_all())?;
    close(w, &mut other)?;
    let held = (stalled.una - stalled.base) as usize;
    // The window opens: the rest goes through.
    stalled.window = 65_535;
    stalled.ack(w);
    run(w, &mut [&mut stalled], Duration::from_secs(60), |c| c[0].echoed_all())?;
    close(w, &mut stalled)?;
    Ok((stalled.echoed, other.echoed, held))
}

/// A peer that sends 256 KiB to the echo service but takes none of the
/// echo (it advertises a window of 0) holds up only its own connection:
/// echod's echo of it waits, echod stops reading it, and the guest's
/// window to it closes, while a second connection echoes its 16 KiB and
/// ends. Once the first peer opens its window, all its bytes come back
/// in order (the test is the network, as in the hostile test).
#[test]
fn a_peer_that_stops_reading_holds_up_only_itself() {
    let big = exo_qemu_tests::seeded_bytes(0x57a1, 256 * 1024);
    let small = exo_qemu_tests::seeded_bytes(0x5a11, 16 * 1024);
    let ((stalled, other, held), b) = {
        let (big, small) = (big.clone(), small.clone());
        boot_as_network("net-two.img", Duration::from_secs(150), move |w| stalling_network(w, big, small))
    };
    assert!(other == small, "the second connection's echo is not what it sent\n{}", b.serial);
    assert!(held < big.len(), "the stalled peer was never held up: all {held} bytes taken\n{}", b.serial);
    assert!(
        stalled == big,
        "the stalled connection's {} bytes echoed are not the {} sent\n{}",
        stalled.len(),
        big.len(),
        b.serial
    );
    b.expect_in_order(&[
        "echod: TCP 7: connection from 10.0.2.2:41000",
        "echod: TCP 7: connection from 10.0.2.2:41001",
        "echod: TCP 7: connection ended, 16384 bytes echoed (10.0.2.2:41001)",
        "echod: TCP 7: connection ended, 262144 bytes echoed (10.0.2.2:41000)",
        "echod: 2 connection(s) served",
        "root: all 3 programs ended as expected",
    ]);
    assert_eq!(b.status, Some(0), "{}", b.serial);
    eprintln!("a stalled peer: {held} of {} bytes taken while it held back the echo", big.len());
}
