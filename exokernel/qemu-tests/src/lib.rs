//! Runs ExoV6 in QEMU for tests: boots an image through `scripts/run-qemu`,
//! collects the serial console, enforces a timeout, and offers assertions
//! on the output (Theseus `qemu_test` and Tock's runner work the same way).
//!
//! The images are built by `scripts/test` (`scripts/build MANIFEST`) before
//! `cargo test -p exo-qemu-tests` runs; a missing image fails the test with
//! a message saying so.
#![forbid(unsafe_code)]

pub mod wire;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The ports this process has handed out ([`free_port`], [`refused_port`]).
static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port of 127.0.0.1 that is free now and that no other call in this
/// process has returned. The kernel may give a port that was just let go
/// again: without the record, a test's "nothing listens here" port could
/// be its own (or a test beside it) forwarded port, which QEMU accepts.
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A port of 127.0.0.1 where a TCP connection is refused now, and below
/// the kernel's ephemeral range: no port [`free_port`] gives (nor any
/// other program's `bind` to port 0) can be it, and no connection's own
/// port can be it (a connection to a free ephemeral port may be given
/// that very port as its source, and connect to itself).
pub fn refused_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (first, span) = (low / 2, low - low / 2);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = u64::from(std::process::id()) ^ now.as_nanos() as u64;
    for i in 0..u64::from(span) {
        let port = first + ((seed.wrapping_mul(2654435761) + i) % u64::from(span)) as u16;
        let refused = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused && !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no port of 127.0.0.1 below {low} refuses connections");
}

/// FNV-1a, 64 bits: the hash the test programs print (readcheck,
/// fscheck, posixcheck, virtio-blk's check), computed here to compare.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// `len` bytes from xorshift64 seeded with `seed`, the low byte of each
/// step: test data that is the same in every run.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What one boot produced.
#[derive(Debug)]
pub struct Boot {
    /// Everything written to the serial console (`\r` removed).
    pub serial: String,
    /// `scripts/run-qemu`'s exit status (0 = ExoV6 reported success);
    /// `None` if it was killed at the timeout.
    pub status: Option<i32>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Sends `payload` through one TCP connection to 127.0.0.1:`port`
/// (writing while reading, then ending its side) and returns all that
/// came back until the peer ended (waiting at most 60 s for each read).
pub fn echo_over_tcp(port: u16, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    echo_on(std::net::TcpStream::connect(("127.0.0.1", port))?, payload)
}

/// [`echo_over_tcp`] on a connection already made.
pub fn echo_on(mut s: std::net::TcpStream, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let writer = {
        let mut w = s.try_clone()?;
        let data = payload.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
            let _ = w.shutdown(std::net::Shutdown::Write);
        })
    };
    let mut back = Vec::new();
    let r = s.read_to_end(&mut back);
    let _ = writer.join();
    r.map(|_| back)
}

/// Runs a host tool that makes or checks an image (mkfs, mtools ...);
/// it must succeed.
pub fn run_tool(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs the tools)"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Boots `build/<image>` and waits at most `timeout`. Extra arguments go
/// to `scripts/run-qemu` (e.g. `--icount`).
pub fn boot(image: &str, timeout: Duration, extra: &[&str]) -> Boot {
    boot_watching(image, timeout, extra, |_| {})
}

/// [`boot`], calling `watch` with each console line (`\r` removed) as it
/// arrives, for tests that act on what the system says while it runs.
pub fn boot_watching(image: &str, timeout: Duration, extra: &[&str], watch: impl FnMut(&str) + Send + 'static) -> Boot {
    boot_inner(image, timeout, extra, None, watch)
}

/// [`boot`] with a keyboard: each step waits for a console line that
/// contains its text, then types its bytes on QEMU's standard input (the
/// serial port's receive side), in order.
pub fn boot_typing(image: &str, timeout: Duration, extra: &[&str], steps: &[(&str, &[u8])]) -> Boot {
    let steps = steps.iter().map(|(after, keys)| (after.to_string(), keys.to_vec())).collect();
    boot_inner(image, timeout, extra, Some(steps), |_| {})
}

fn boot_inner(
    image: &str,
    timeout: Duration,
    extra: &[&str],
    typing: Option<Vec<(String, Vec<u8>)>>,
    watch: impl FnMut(&str) + Send + 'static,
) -> Boot {
    let mut watch: Box<dyn FnMut(&str) + Send> = Box::new(watch);
    let root = repo_root();
    let image_path = root.join("build").join(image);
    assert!(image_path.exists(), "{} is missing: run scripts/test (or scripts/build) first", image_path.display());
    let mut cmd = Command::new(root.join("scripts/run-qemu"));
    cmd.args(["--no-build", "--headless", "--image"]).arg(&image_path).args(extra);
    let stdin = if typing.is_some() { Stdio::piped() } else { Stdio::null() };
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(stdin);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start scripts/run-qemu");
    if let (Some(steps), Some(mut keyboard)) = (typing, child.stdin.take()) {
        let mut steps = std::collections::VecDeque::from(steps);
        let mut outer = watch;
        watch = Box::new(move |line: &str| {
            outer(line);
            if steps.front().is_some_and(|(after, _)| line.contains(after.as_str())) {
                let (_, keys) = steps.pop_front().expect("checked");
                let _ =
                    std::io::Write::write_all(&mut keyboard, &keys).and_then(|()| std::io::Write::flush(&mut keyboard));
            }
        });
    }
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut buf, mut seen, mut chunk) = (Vec::new(), 0, [0u8; 4096]);
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf[seen..].iter().position(|b| *b == b'\n') {
                watch(String::from_utf8_lossy(&buf[seen..seen + end]).trim_end_matches('\r'));
                seen += end + 1;
            }
        }
        let _ = tx.send(buf);
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for QEMU") {
            break s.code();
        }
        if start.elapsed() > timeout {
            // Kill the whole process group: the script and QEMU.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let raw = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    Boot { serial: String::from_utf8_lossy(&raw).replace('\r', ""), status, elapsed: start.elapsed() }
}

impl Boot {
    /// The console lines.
    pub fn lines(&self) -> Vec<&str> {
        self.serial.lines().collect()
    }

    /// Index of the first line containing `needle`, if any.
    pub fn find(&self, needle: &str) -> Option<usize> {
        self.lines().iter().position(|l| l.contains(needle))
    }

    /// Panics with the whole console unless some line contains `needle`.
    pub fn expect_line(&self, needle: &str) -> usize {
        match self.find(needle) {
            Some(i) => i,
            None => panic!("no line containing {needle:?} in the console output:\n{}", self.serial),
        }
    }

    /// Panics unless lines containing each needle appear in this order.
    pub fn expect_in_order(&self, needles: &[&str]) {
        let lines = self.lines();
        let mut from = 0;
        for n in needles {
            match lines[from..].iter().position(|l| l.contains(n)) {
                Some(i) => from += i + 1,
                None => panic!("expected {n:?} after line {from} (order {needles:?}) in:\n{}", self.serial),
            }
        }
    }
}
