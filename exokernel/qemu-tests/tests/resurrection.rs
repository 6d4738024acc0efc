//! Resurrection: servers die under running I/O and clients notice
//! nothing. `readcheck` reads a 64 MiB file (made here from a seeded
//! generator) through the POSIX library, the file server and the
//! virtio-blk driver while the root task kills the driver 100 times, or
//! the file server 20 times, at random moments (`test_kills`, the seed in
//! the log); the supervisor restarts what dies, the clients attach again
//! and retry, and the file's hash must come out right. An undisturbed
//! read in the same run is the baseline of the slowdown reported.
//!
//! Dependents: programs that run after a restarted one are restarted with
//! it in dependency order, or told, as their manifest entries ask.
//!
//! The network: the host sends 16 MiB through the TCP echo while the
//! virtio-net driver is killed 5 times; the network server attaches to
//! each new instance and TCP sends again what was lost, so every byte
//! comes back. A killed network server itself loses its sockets: its
//! clients get `ECONNRESET`, not a hang, and new sockets work.

use exo_qemu_tests::{boot, boot_watching, echo_over_tcp, fnv1a64, seeded_bytes, Boot};
use std::process::Command;
use std::time::Duration;

const SIZE: usize = 64 << 20;

/// How many times readcheck reads the file in the runs compared: three
/// reads outlast the 100 kills of the driver (each kill leaves the reader
/// a few milliseconds), however fast the machine reads.
const PASSES: usize = 3;

/// The milliseconds readcheck reports for its [`PASSES`] reads, after
/// checking each one's line.
fn read_ok(b: &Boot, hash: u64) -> u64 {
    let want = format!("readcheck: /big.bin: {SIZE} bytes, fnv1a64 {hash:016x}, ");
    let lines: Vec<&str> = b.lines().into_iter().filter(|l| l.starts_with(&want)).collect();
    assert_eq!(lines.len(), PASSES, "{}", b.serial);
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
    lines.iter().map(|l| l[want.len()..].trim_end_matches(" ms").parse::<u64>().unwrap_or_else(|_| panic!("{l}"))).sum()
}

#[test]
fn reads_come_out_right_while_the_driver_or_the_file_server_is_killed_again_and_again() {
    let dir = std::env::temp_dir().join(format!("exo-resurrection-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..SIZE / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(dir.join("tree/big.bin"), &data).unwrap();
    let hash = fnv1a64(&data);
    let img = dir.join("big.img");
    let out = Command::new("mkfs.ext4").args(["-q", "-d"]).arg(dir.join("tree")).arg(&img).arg("80M").output().unwrap();
    assert!(out.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&out.stderr));
    let disk = ["--disk", img.to_str().unwrap()];

    let calm = boot("resurrect-none.img", Duration::from_secs(300), &disk);
    let base = read_ok(&calm, hash);

    let b = boot("resurrect-blk.img", Duration::from_secs(300), &disk);
    b.expect_line("root: test: killed virtio-blk 100 times");
    let restarts = b.lines().iter().filter(|l| l.starts_with("root: restarted virtio-blk")).count();
    assert_eq!(restarts, 100, "{}", b.serial);
    let blk = read_ok(&b, hash);

    let f = boot("resurrect-fs.img", Duration::from_secs(300), &disk);
    f.expect_line("root: test: killed fs-server 20 times");
    let fs = read_ok(&f, hash);

    eprintln!(
        "resurrection: 64 MiB read {PASSES} times in {base} ms undisturbed; {blk} ms with the driver killed 100 times ({:.2}x); \
         {fs} ms with the file server killed 20 times ({:.2}x)",
        blk as f64 / base.max(1) as f64,
        fs as f64 / base.max(1) as f64
    );

    // Dependents: the file server and reader-a restart with the driver,
    // in dependency order; reader-b is told and attaches again.
    let d = boot("resurrect-deps.img", Duration::from_secs(300), &disk);
    d.expect_line("root: test: killed virtio-blk 2 times");
    for _ in 0..2 {
        d.expect_in_order(&[
            "root: restarted virtio-blk",
            "root: stopping reader-a to start it again after virtio-blk",
            "root: stopping fs-server to start it again after virtio-blk",
            "root: restarted fs-server after virtio-blk",
            "root: restarted reader-a after fs-server",
        ]);
    }
    let count = |needle: &str| d.lines().iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("root: restarted fs-server after virtio-blk"), 2, "{}", d.serial);
    assert_eq!(count("root: restarted reader-a after fs-server"), 2, "{}", d.serial);
    // The driver's restart is told to no one (its dependent restarts);
    // the file server's new instances are told to reader-b.
    assert_eq!(count("root: told reader-b that fs-server restarted"), 2, "{}", d.serial);
    assert_eq!(count("root: told fs-server"), 0, "{}", d.serial);
    // Each restart in order: the file server only once the driver runs,
    // reader-a only once the file server runs.
    let lines = d.lines();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("root: restarted fs-server after") {
            let driver = lines[..i].iter().rposition(|l| l.starts_with("root: restarted virtio-blk"));
            let stopped = lines[..i].iter().rposition(|l| l.starts_with("root: stopping fs-server"));
            assert!(driver < stopped, "the file server restarted before the driver:\n{}", d.serial);
        }
    }
    let want = format!("readcheck: /big.bin: {SIZE} bytes, fnv1a64 {hash:016x}, ");
    // reader-a's last instance reads it once, reader-b three times.
    assert_eq!(count(&want), 4, "both readers read the whole file right:\n{}", d.serial);
    d.expect_line("root: all 4 programs ended as expected");
    assert_eq!(d.status, Some(0), "{}", d.serial);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `size` seeded bytes through the TCP echo on `port` once `up`
/// says the service has its address (retrying the connection until it
/// answers) and returns what was sent and what came back. The sending is
/// spread over at least `pace`, so the connection stays open through the
/// kills however fast the machine moves the bytes.
fn echo_from_the_host(port: u16, size: usize, pace: Duration, up: std::sync::mpsc::Receiver<()>) -> (Vec<u8>, Vec<u8>) {
    use std::io::{Read, Write};
    let payload = seeded_bytes(0x9e37_79b9_7f4a_7c15, size);
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let _ = up.recv_timeout(Duration::from_secs(60));
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let writer = {
                let mut w = s.try_clone().unwrap();
                let data = payload.clone();
                std::thread::spawn(move || {
                    const CHUNK: usize = 64 << 10;
                    let start = std::time::Instant::now();
                    let chunks = data.len().div_ceil(CHUNK).max(1) as u32;
                    for (i, chunk) in data.chunks(CHUNK).enumerate() {
                        if w.write_all(chunk).is_err() {
                            return;
                        }
                        let due = pace * (i as u32 + 1) / chunks;
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let _ = w.shutdown(std::net::Shutdown::Write);
                })
            };
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back);
            let _ = writer.join();
            if !back.is_empty() || std::time::Instant::now() > deadline {
                return (payload, back);
            }
        }
        assert!(std::time::Instant::now() < deadline, "the echo service never answered");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_tcp_transfer_comes_out_right_while_the_network_driver_is_killed() {
    const SIZE: usize = 16 << 20;
    let port = exo_qemu_tests::free_port();
    let fwd = format!("tcp:{port}:7");
    // Connect as soon as the server has its address (before then QEMU
    // holds the connection for seconds): the kills start 3 s after boot.
    let (up_tx, up) = std::sync::mpsc::channel();
    let talker = std::thread::spawn(move || echo_from_the_host(port, SIZE, Duration::from_secs(9), up));
    let watch = move |line: &str| {
        if line.starts_with("echod: echo on TCP and UDP port 7") {
            let _ = up_tx.send(());
        }
    };
    let b = boot_watching("resurrect-net.img", Duration::from_secs(300), &["--forward", &fwd], watch);
    let (sent, back) = talker.join().expect("the talking thread");
    let first_bad = sent.iter().zip(&back).position(|(a, b)| a != b);
    assert!(
        back.len() == SIZE && first_bad.is_none(),
        "{} bytes came back of {SIZE}, first difference at {first_bad:?}\n{}",
        back.len(),
        b.serial
    );
    b.expect_line("root: test: killed virtio-net 5 times");
    // All five while the connection was open.
    let from = b.expect_line("echod: TCP 7: connection from 10.0.2.2:");
    let to = b.expect_line(&format!("echod: TCP 7: connection ended, {SIZE} bytes echoed"));
    let during = b.lines()[from..to].iter().filter(|l| l.starts_with("root: restarted virtio-net")).count();
    assert_eq!(during, 5, "{}", b.serial);
    // Each new instance got the first one's capabilities back from the
    // supervisor's sealed tokens (console, budget, supervisor notification,
    // endpoint, device), and the network server was told of each restart.
    let count = |needle: &str| b.lines().iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("root: virtio-net: 5 capabilities restored from sealed tokens"), 5, "{}", b.serial);
    assert_eq!(count("root: told net-server that virtio-net restarted"), 5, "{}", b.serial);
    assert!(
        count("net-server: told the driver was restarted: buffer and notification attached again") >= 1,
        "{}",
        b.serial
    );
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
    eprintln!(
        "resurrection: 16 MiB echoed through TCP in {:.1} s with the network driver killed 5 times",
        b.elapsed.as_secs_f64()
    );
}

/// A restarted network server keeps no state: the host's connection
/// through echod fails (reset, or cut short), echod's own sockets fail
/// with `ECONNRESET` instead of hanging, it listens again on the new
/// instance, and the host's next connection is echoed whole.
#[test]
fn a_restarted_network_server_fails_its_sockets_clearly_and_serves_new_ones() {
    let port = exo_qemu_tests::free_port();
    let fwd = format!("tcp:{port}:7");
    let (up_tx, up) = std::sync::mpsc::channel();
    // The first transfer, paced over 12 s, spans the kill (5 s after boot).
    let first = std::thread::spawn(move || echo_from_the_host(port, 4 << 20, Duration::from_secs(12), up));
    let (relisten_tx, relisten) = std::sync::mpsc::channel();
    let mut up_tx = Some(up_tx);
    // echod serves three connections, then ends (and so does the boot):
    // the one across the restart, the one checked after it, and one more
    // unless an attempt the guest took failed on the host's side first.
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = connections.clone();
    let watch = move |line: &str| {
        if line.starts_with("echod: TCP 7: connection from ") {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if line.starts_with("echod: echo on TCP and UDP port 7") {
            if let Some(tx) = up_tx.take() {
                let _ = tx.send(());
            }
        }
        if line.starts_with("echod: the network server lost its sockets; listening again") {
            let _ = relisten_tx.send(());
        }
    };
    let second = std::thread::spawn(move || -> Result<(), String> {
        relisten.recv_timeout(Duration::from_secs(120)).map_err(|_| "echod never listened again".to_string())?;
        let payload = seeded_bytes(7, 64 << 10);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut outcomes: Vec<String> = Vec::new();
        let last = |port: u16| -> Result<(), String> {
            if connections.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                let small = seeded_bytes(8, 100);
                let back = echo_over_tcp(port, &small).map_err(|e| format!("the last connection: {e}"))?;
                if back != small {
                    return Err(format!("the last connection: {} bytes came back of 100", back.len()));
                }
            }
            Ok(())
        };
        loop {
            let outcome = match echo_over_tcp(port, &payload) {
                Ok(back) if back == payload => return last(port),
                Ok(back) => format!("{} bytes came back of {}", back.len(), payload.len()),
                Err(e) => e.to_string(),
            };
            // QEMU answers for the guest until it listens: try again.
            if outcomes.last() != Some(&outcome) {
                outcomes.push(outcome);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("after the restart: {}", outcomes.join("; then ")));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let b = boot_watching("resurrect-netserver.img", Duration::from_secs(300), &["--forward", &fwd], watch);
    let (sent, back) = first.join().expect("the first transfer");
    assert!(back.len() < sent.len(), "the first transfer came back whole across the restart:\n{}", b.serial);
    assert!(sent.starts_with(&back), "what came back of the first transfer is not what was sent:\n{}", b.serial);
    assert_eq!(second.join().expect("the second transfer"), Ok(()), "{}", b.serial);
    b.expect_in_order(&[
        "echod: TCP 7: connection from 10.0.2.2:",
        "root: net-server exited with code",
        "root: restarted net-server",
        "echod: the network server lost its sockets; listening again on port 7",
        "echod: TCP 7: connection ended, 65536 bytes echoed",
        "echod: 3 connection(s) served",
    ]);
    // The connection open across the restart failed with a clear error.
    let reset = b.expect_line(": ECONNRESET");
    assert!(b.lines()[reset].starts_with("echod: connection from 10.0.2.2:"), "{}", b.serial);
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
}
