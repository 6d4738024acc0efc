//! Network tests: the virtio-net driver, the network server (smoltcp)
//! and `echod` (a POSIX program on the network server's sockets) as three
//! ExoV6 processes, reached from the host through QEMU's user network and
//! its port forwarding (`run-qemu --forward`).

use exo_qemu_tests::{boot, Boot};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that is free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Talks to the echo service until the boot in `handle` ends: a UDP
/// datagram (QEMU's restricted user network takes it in, but lets no
/// answer out to the host, so only the server's log shows the echo), then
/// a TCP connection carrying 64 KiB, which must all come back. Returns the
/// bytes that came back over TCP.
fn talk(port: u16) -> Vec<u8> {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
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
    let talker = std::thread::spawn(move || talk(port));
    let b = boot(image, Duration::from_secs(120), &["--forward", &fwd_tcp, "--forward", &fwd_udp]);
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
        "echod: TCP 7: connection ended, 65536 bytes echoed",
    ]);
    assert_eq!(b.lines().iter().filter(|l| l.contains("test hook: dying")).count(), 1, "{}", b.serial);
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
}
