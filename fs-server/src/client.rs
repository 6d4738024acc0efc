//! The client side: starts a sandboxed server for an image and talks to
//! it, with a timeout, restarting it after a crash.

use crate::proto::{ErrorKind, Request, Response};
use crate::wire::{recv_response, send};
use std::fs::File;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why a request got no answer.
#[derive(Debug)]
pub enum ClientError {
    /// The server reported an error.
    Fs(ErrorKind, String),
    /// The server died (crash, limit, sandbox violation) or hung.
    ServerDied(String),
    /// Starting the server failed.
    Start(String),
    /// The server ran out of memory (its limit, in MiB): the image asked
    /// for more than it may have.
    OutOfMemory(u64),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Fs(_, m) => f.write_str(m),
            ClientError::ServerDied(m) => write!(f, "file-system server died on this image: {m}"),
            ClientError::Start(m) => write!(f, "cannot start the file-system server: {m}"),
            ClientError::OutOfMemory(mib) => {
                write!(f, "file-system server ran out of memory on this image (limit {mib} MiB)")
            }
        }
    }
}

/// Options for the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Partition to open.
    pub partition: Option<usize>,
    /// The OEM code page of FAT short names (`--codepage`; 437 by default).
    pub codepage: crate::codepage::CodePage,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Test hook passed to the server.
    pub violate: Option<String>,
    /// Open the image read-write (FAT changes).
    pub rw: bool,
    /// Serve the image with NetBSD's file systems from the rump kernel
    /// installed here (`--backend netbsd`), instead of the built-in ones.
    pub rump_sysroot: Option<PathBuf>,
    /// Serve it from ExoV6 in QEMU (`--isolation vm`, [`crate::vm`])
    /// instead of a sandboxed process.
    pub vm: bool,
    /// In vm mode, NetBSD's file systems (the appliance with `fs-rump`,
    /// whose rump kernel was linked in when it was built).
    pub netbsd: bool,
}

struct Running {
    child: Child,
    stream: UnixStream,
    /// Passes the server's standard error on to ours.
    relay: Relay,
    /// In vm mode: the appliance's socket and console log.
    vm: Option<crate::vm::Scratch>,
}

impl Running {
    /// A started server (a process, or the appliance's QEMU) talking on
    /// `stream`: its standard error relayed, `timeout` set on its answers.
    /// On failure the child is killed and reaped.
    fn new(
        mut child: Child,
        stream: UnixStream,
        vm: Option<crate::vm::Scratch>,
        timeout: Duration,
    ) -> Result<Running, ClientError> {
        let relay = child.stderr.take().ok_or_else(|| std::io::Error::other("no pipe")).and_then(Relay::start);
        match relay.and_then(|r| stream.set_read_timeout(Some(timeout)).map(|()| r)) {
            Ok(relay) => Ok(Running { child, stream, relay, vm }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(ClientError::Start(e.to_string()))
            }
        }
    }
}

/// At most this much of one server's standard error reaches ours; the
/// rest is counted and dropped (a hostile image could make its server
/// print without end).
const RELAY_LIMIT: usize = 64 << 10;
/// A line longer than this is passed on in pieces.
const RELAY_LINE: usize = 4 << 10;
/// How long a dead server's last messages may take to come through.
const RELAY_DRAIN: Duration = Duration::from_millis(500);

/// A thread passing a server's standard error, a pipe, on to the
/// client's. The server cannot share the client's standard error: with no
/// file writes allowed (RLIMIT_FSIZE 0), a message written to a regular
/// file (`exo-img ... 2>log`) would kill it with SIGXFSZ. The thread is
/// never joined without a bound, so it keeps no one waiting.
struct Relay {
    /// Disconnected when the thread has passed everything on (the pipe
    /// reached its end: every process of the server has gone).
    done: std::sync::mpsc::Receiver<()>,
    /// Set when the server's last words said it ran out of memory.
    oom: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(from: std::process::ChildStderr) -> std::io::Result<Relay> {
        let (finished, done) = std::sync::mpsc::channel::<()>();
        let oom = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = oom.clone();
        std::thread::Builder::new().name("server stderr".into()).spawn(move || {
            if relay(from, &mut std::io::stderr(), RELAY_LIMIT) {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            drop(finished);
        })?;
        Ok(Relay { done, oom })
    }

    /// Waits, at most `bound`, for the server's last messages to be
    /// passed on; call when its processes have ended or been killed.
    /// Returns whether they said it ran out of memory.
    fn drain(self, bound: Duration) -> bool {
        let _ = self.done.recv_timeout(bound);
        self.oom.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Copies `from` to `to` until `from` ends: whole lines, so they do not
/// interleave with the client's own messages, and at most `limit` bytes;
/// what comes after is counted, dropped, and reported once at the end. A
/// last line without its newline gets one. Write errors are ignored (the
/// server must never block on a full pipe). Returns whether the last
/// bytes (dropped or not) hold the server's out-of-memory line
/// ([`crate::oom`]).
fn relay(mut from: impl std::io::Read, to: &mut impl std::io::Write, limit: usize) -> bool {
    // The last bytes that came, passed on or not: a dying server's last
    // words are there.
    const TAIL: usize = 256;
    let mut tail: Vec<u8> = Vec::with_capacity(2 * TAIL + 4096);
    let mut pending = Vec::new();
    let (mut passed, mut dropped) = (0usize, 0u64);
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * TAIL {
            tail.drain(..tail.len() - TAIL);
        }
        if dropped > 0 {
            dropped += n as u64;
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let whole = match pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if pending.len() >= RELAY_LINE => pending.len(),
            None => continue,
        };
        // Over the limit: the whole lines that still fit, then nothing.
        let fits = if passed + whole <= limit {
            whole
        } else {
            pending[..limit - passed].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        let _ = to.write_all(&pending[..fits]);
        passed += fits;
        if fits < whole {
            dropped = (pending.len() - fits) as u64;
            pending.clear();
        } else {
            pending.drain(..fits);
        }
    }
    if dropped == 0 && !pending.is_empty() {
        if passed + pending.len() < limit {
            pending.push(b'\n');
            let _ = to.write_all(&pending);
        } else {
            dropped = pending.len() as u64;
        }
    }
    if dropped > 0 {
        let note = format!(
            "exo-img: dropped the last {dropped} bytes of the file-system server's messages (it may write {} KiB)\n",
            limit >> 10
        );
        let _ = to.write_all(note.as_bytes());
    }
    crate::oom::reported_in(&tail)
}

/// A connection to a server for one image; a fresh server is started
/// after one dies.
pub struct Client {
    image: PathBuf,
    options: ServerOptions,
    server: Option<Running>,
    /// Memory shared with every server of this client for file data;
    /// `None` if it could not be made (then data comes by the socket).
    shared: Option<crate::shm::SharedBuf>,
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    match status.signal() {
        Some(libc::SIGSYS) => "killed by SIGSYS (sandbox violation)".into(),
        Some(libc::SIGXCPU) => "killed by SIGXCPU (CPU time limit)".into(),
        Some(libc::SIGKILL) => "killed (timeout or memory limit)".into(),
        Some(libc::SIGABRT) => "aborted (SIGABRT: the server panicked or ran out of memory)".into(),
        Some(libc::SIGSEGV) => "crashed (SIGSEGV)".into(),
        Some(s) => format!("killed by signal {s}"),
        None => format!("exited with status {}", status.code().unwrap_or(-1)),
    }
}

impl Client {
    /// A client for `image`; the server starts with the first request.
    /// The server is this program started again in server mode, so its
    /// `main` must begin with [`crate::serve::main_if_asked`].
    pub fn new(image: PathBuf, options: ServerOptions) -> Client {
        // Two halves: the server fills one while the client empties the other.
        let shared = if options.vm { None } else { crate::shm::SharedBuf::create(crate::shm::SIZE).ok() };
        Client { image, options, server: None, shared }
    }

    /// The server is this very program in its server mode
    /// ([`crate::serve`]), so `exo-img` works installed alone:
    /// `/proc/self/exe` even if the file was replaced or removed since it
    /// started, else the path it was started from.
    fn server_binary() -> PathBuf {
        let this = std::path::Path::new("/proc/self/exe");
        if this.exists() {
            this.to_path_buf()
        } else {
            std::env::current_exe().unwrap_or_default()
        }
    }

    fn start(&mut self) -> Result<&mut Running, ClientError> {
        if self.server.is_none() && self.options.vm {
            let crate::vm::Appliance { child, stream, scratch } = crate::vm::start(
                &self.image,
                self.options.rw,
                crate::vm::Volume {
                    partition: self.options.partition,
                    codepage: self.options.codepage,
                    netbsd: self.options.netbsd,
                },
            )
            .map_err(ClientError::Start)?;
            self.server = Some(Running::new(child, stream, Some(scratch), self.options.timeout)?);
        }
        if self.server.is_none() {
            let image = std::fs::OpenOptions::new()
                .read(true)
                .write(self.options.rw)
                .open(&self.image)
                .map_err(|e| ClientError::Start(format!("{}: {e}", self.image.display())))?;
            let (ours, theirs) = UnixStream::pair().map_err(|e| ClientError::Start(e.to_string()))?;
            crate::sandbox::enlarge_socket_buffers(&ours);
            crate::sandbox::enlarge_socket_buffers(&theirs);
            let mut cmd = Command::new(Self::server_binary());
            // Named as what it is in `ps`, whichever file it runs from.
            std::os::unix::process::CommandExt::arg0(&mut cmd, crate::serve::NAME);
            cmd.arg(crate::serve::ARG);
            if let Some(p) = self.options.partition {
                cmd.args(["--partition", &p.to_string()]);
            }
            cmd.args(["--codepage", &self.options.codepage.to_string()]);
            cmd.args(["--cpu", &self.options.timeout.as_secs().max(1).to_string()]);
            cmd.args(["--memory", &crate::serve::MEMORY_MIB.to_string()]);
            if self.options.rw {
                cmd.arg("--rw");
            }
            if let Some(v) = &self.options.violate {
                cmd.args(["--violate", v]);
            }
            if let Some(root) = &self.options.rump_sysroot {
                cmd.args(["--backend", "netbsd", "--rump-sysroot"]).arg(root);
            }
            if let Some(buf) = &self.shared {
                let fd = buf.raw_fd();
                cmd.args(["--shm", &fd.to_string()]);
                use std::os::unix::process::CommandExt;
                // SAFETY: runs in the child between fork and exec, and only
                // clears close-on-exec on the buffer's descriptor
                // (fcntl is async-signal-safe).
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            cmd.stdin(Stdio::from(image))
                .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
                .stderr(Stdio::piped());
            let child =
                cmd.spawn().map_err(|e| ClientError::Start(format!("{}: {e}", Self::server_binary().display())))?;
            self.server = Some(Running::new(child, ours, None, self.options.timeout)?);
        }
        Ok(self.server.as_mut().expect("just started"))
    }

    /// Ends the current server (killing it if needed) and says why it went:
    /// `ServerDied`, or `OutOfMemory` if it aborted saying so.
    fn bury(&mut self, hung: bool) -> ClientError {
        let Some(mut s) = self.server.take() else { return ClientError::ServerDied("no server".into()) };
        if hung {
            let _ = s.child.kill();
        }
        // A dead server has exited or will in a moment; a live one was killed.
        let mut why = None;
        let mut aborted = false;
        for _ in 0..50 {
            if let Ok(Some(status)) = s.child.try_wait() {
                aborted = !hung && status.signal() == Some(libc::SIGABRT);
                why = Some(if hung {
                    format!("no answer within {:?}", self.options.timeout)
                } else {
                    describe_exit(status)
                });
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let why = why.unwrap_or_else(|| {
            let _ = s.child.kill();
            let _ = s.child.wait();
            "stopped answering".into()
        });
        // Its last words (a panic message, a kernel's console line) come
        // before the client's report of its end: in vm mode, ExoV6's.
        if let Some(scratch) = &s.vm {
            eprintln!("exo-img: the appliance's last console lines:\n{}", scratch.console_tail(12));
        }
        if s.relay.drain(RELAY_DRAIN) && aborted {
            return ClientError::OutOfMemory(crate::serve::MEMORY_MIB);
        }
        ClientError::ServerDied(why)
    }

    /// Sends `req` and returns the answer; a server error becomes
    /// `ClientError::Fs`, a dead or hung server `ServerDied` (and the next
    /// request starts a fresh one).
    pub fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        let timeout = self.options.timeout;
        let s = self.start()?;
        let result = send(&mut s.stream, &req.encode()).and_then(|_| recv_response(&mut s.stream));
        let msg = match result {
            Ok(Some(m)) => m,
            Ok(None) => return Err(self.bury(false)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                let _ = timeout;
                return Err(self.bury(true));
            }
            Err(_) => return Err(self.bury(false)),
        };
        match msg {
            Ok(Response::Error(k, m)) => Err(ClientError::Fs(k, m)),
            Ok(Response::Info(mut i)) if self.options.vm => {
                if let Some(scratch) = self.server.as_ref().and_then(|s| s.vm.as_ref()) {
                    i.sandbox = scratch.describe(&i.sandbox);
                }
                Ok(Response::Info(i))
            }
            Ok(r) => Ok(r),
            Err(e) => {
                let _ = self.bury(true);
                Err(ClientError::ServerDied(format!("it sent a {e}")))
            }
        }
    }
}

impl Client {
    /// Reads up to `len` bytes of `path` from `offset` through the shared
    /// buffer when there is one (else through the socket); the bytes stay
    /// valid until the next request.
    pub fn read(&mut self, path: &str, offset: u64, len: u32) -> Result<std::borrow::Cow<'_, [u8]>, ClientError> {
        let room = self.half();
        if room == 0 {
            return match self.request(&Request::Read { path: path.into(), offset, len })? {
                Response::Data(d) => Ok(std::borrow::Cow::Owned(d)),
                _ => Err(ClientError::ServerDied("it answered out of turn".into())),
            };
        }
        let len = len.min(room as u32);
        match self.request(&Request::ReadShared { path: path.into(), offset, len, at: 0 })? {
            Response::Shared(n) if n <= len => {
                let buf = self.shared.as_ref().expect("checked above");
                Ok(std::borrow::Cow::Borrowed(&buf.as_slice()[..n as usize]))
            }
            _ => {
                let _ = self.bury(true);
                Err(ClientError::ServerDied("it answered out of turn".into()))
            }
        }
    }

    /// Reads the first `size` bytes of `path` into `sink`, with two
    /// requests in flight: the server fills one half of the shared buffer
    /// while `sink` empties the other. Returns how many bytes came (fewer
    /// if the file is shorter). Without a shared buffer it reads one
    /// chunk at a time.
    pub fn read_pipelined(
        &mut self,
        path: &str,
        size: u64,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, PipelineError> {
        if self.half() == 0 {
            let mut done = 0;
            while done < size {
                let d = self.read(path, done, (size - done).min(crate::proto::MAX_READ as u64) as u32)?;
                if d.is_empty() {
                    break;
                }
                sink(&d).map_err(PipelineError::Sink)?;
                done += d.len() as u64;
            }
            return Ok(done);
        }
        let mut done = 0u64;
        let mut results = self.read_files_pipelined(&[(path.to_string(), size)], |_, d| {
            done += d.len() as u64;
            sink(d)
        })?;
        match results.pop().flatten() {
            Some(e) => Err(e.into()),
            None => Ok(done),
        }
    }

    /// Half the shared buffer (at most one read): what one request moves;
    /// 0 without a shared buffer.
    fn half(&self) -> u64 {
        self.shared.as_ref().map_or(0, |b| b.len() / 2).min(crate::proto::MAX_READ as usize) as u64
    }

    /// Reads several files of known size (`(path, size)`) through the
    /// shared buffer with two requests in flight across file boundaries,
    /// so the server already reads the next file while the client writes
    /// the end of this one. `sink(i, bytes)` gets each file's bytes in
    /// order, files in order. Returns, per file, `None` if it was read (to
    /// its end, which may come before the listed size) or the server's
    /// error for it; the whole call fails only if the server dies or the
    /// sink fails. Needs the shared buffer.
    pub fn read_files_pipelined(
        &mut self,
        files: &[(String, u64)],
        mut sink: impl FnMut(usize, &[u8]) -> std::io::Result<()>,
    ) -> Result<Vec<Option<ClientError>>, PipelineError> {
        let half = self.half();
        if half == 0 {
            return Err(PipelineError::Client(ClientError::Start("no shared buffer".into())));
        }
        // Every chunk of every file, in order: (file, offset, length).
        let chunks: Vec<(usize, u64, u32)> = files
            .iter()
            .enumerate()
            .flat_map(|(i, (_, size))| {
                (0..size.div_ceil(half)).map(move |k| (i, k * half, (size - k * half).min(half) as u32))
            })
            .collect();
        let mut result: Vec<Option<ClientError>> = files.iter().map(|_| None).collect();
        let mut ended = vec![false; files.len()]; // short read or error: skip the rest
        let mut next = 0;
        let mut inflight = std::collections::VecDeque::new(); // (slot, chunk)
        for slot in [0u32, half as u32] {
            if let Some(&(i, off, len)) = chunks.get(next) {
                self.send_shared(&files[i].0, off, len, slot)?;
                inflight.push_back((slot, next));
                next += 1;
            }
        }
        let mut sink_error = None;
        while let Some((slot, c)) = inflight.pop_front() {
            let (i, _, asked) = chunks[c];
            match self.recv_shared(asked) {
                Ok(n) => {
                    if !ended[i] && sink_error.is_none() {
                        let buf = self.shared.as_ref().expect("half > 0");
                        if let Err(e) = sink(i, &buf.as_slice()[slot as usize..slot as usize + n as usize]) {
                            sink_error = Some(e);
                        }
                    }
                    ended[i] |= n < asked;
                }
                Err(e @ ClientError::Fs(..)) => {
                    if !ended[i] {
                        result[i] = Some(e);
                    }
                    ended[i] = true;
                }
                Err(e) => return Err(e.into()),
            }
            if sink_error.is_some() {
                continue; // collect what is in flight, send nothing more
            }
            while let Some(&(j, _, _)) = chunks.get(next) {
                if !ended[j] {
                    break;
                }
                next += 1;
            }
            if let Some(&(j, off, len)) = chunks.get(next) {
                self.send_shared(&files[j].0, off, len, slot)?;
                inflight.push_back((slot, next));
                next += 1;
            }
        }
        match sink_error {
            Some(e) => Err(PipelineError::Sink(e)),
            None => Ok(result),
        }
    }

    /// Whether file data can come through shared memory.
    pub fn has_shared_buffer(&self) -> bool {
        self.shared.is_some()
    }

    fn send_shared(&mut self, path: &str, offset: u64, len: u32, at: u32) -> Result<(), ClientError> {
        let s = self.start()?;
        let req = Request::ReadShared { path: path.into(), offset, len, at };
        if send(&mut s.stream, &req.encode()).is_err() {
            return Err(self.bury(false));
        }
        Ok(())
    }

    /// The answer to one `ReadShared`: how many bytes arrived (at most
    /// `asked`).
    fn recv_shared(&mut self, asked: u32) -> Result<u32, ClientError> {
        let s = self.server.as_mut().ok_or_else(|| ClientError::ServerDied("no server".into()))?;
        match recv_response(&mut s.stream) {
            Ok(Some(Ok(Response::Shared(n)))) if n <= asked => Ok(n),
            Ok(Some(Ok(Response::Error(k, m)))) => Err(ClientError::Fs(k, m)),
            Ok(None) => Err(self.bury(false)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(self.bury(true))
            }
            Err(_) => Err(self.bury(false)),
            Ok(Some(_)) => {
                let _ = self.bury(true);
                Err(ClientError::ServerDied("it answered out of turn".into()))
            }
        }
    }
}

/// Why a pipelined read stopped.
#[derive(Debug)]
pub enum PipelineError {
    /// The server or the file.
    Client(ClientError),
    /// Writing the data out.
    Sink(std::io::Error),
}

impl From<ClientError> for PipelineError {
    fn from(e: ClientError) -> Self {
        PipelineError::Client(e)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            if s.vm.is_some() {
                crate::vm::stop(&mut s.child, &mut s.stream, Duration::from_secs(10));
            }
            drop(s.stream);
            let _ = s.child.wait();
            let _ = s.relay.drain(RELAY_DRAIN);
        }
    }
}

/// Benchmark baseline only: the file system parsed in this very process,
/// with no isolation at all, answering the same requests. For measuring
/// what isolation costs (`scripts/bench`); never on an untrusted image.
pub struct InProcess(Box<dyn crate::backend::FileSystem>, Vec<u8>);

impl InProcess {
    /// Opens `image` here (FAT short names in `codepage`).
    pub fn open(
        image: &std::path::Path,
        partition: Option<usize>,
        codepage: crate::codepage::CodePage,
    ) -> Result<InProcess, ClientError> {
        let f = File::open(image).map_err(|e| ClientError::Start(format!("{}: {e}", image.display())))?;
        let dev = rumpglue::host::FileDevice::new(f, false).map_err(|e| ClientError::Start(e.to_string()))?;
        let fs = crate::backend::open(
            std::sync::Arc::new(dev),
            partition,
            codepage,
            rumpglue::host::host().clock,
            "none (in-process benchmark baseline)".into(),
        )
        .map_err(|e| ClientError::Fs(ErrorKind::Corrupt, e))?;
        Ok(InProcess(fs, Vec::new()))
    }

    /// Reads into a buffer kept from call to call (as the server's shared
    /// buffer is), so the baseline does no more work than the server.
    pub fn read(&mut self, path: &str, offset: u64, len: u32) -> Result<&[u8], ClientError> {
        self.1.resize(len as usize, 0);
        let n = self.0.read_into(path, offset, &mut self.1).map_err(|(k, m)| ClientError::Fs(k, m))?;
        Ok(&self.1[..n])
    }

    /// Answers `req`.
    pub fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        match crate::server::handle(self.0.as_ref(), req.clone(), None) {
            Response::Error(k, m) => Err(ClientError::Fs(k, m)),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::relay;

    /// Hands out its bytes a few at a time, as a pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn relayed(input: &[u8], limit: usize) -> String {
        let mut out = Vec::new();
        relay(Trickle(input), &mut out, limit);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn relay_passes_whole_lines_and_ends_the_last() {
        assert_eq!(relayed(b"one\ntwo\nlast words", 1000), "one\ntwo\nlast words\n");
        assert_eq!(relayed(b"", 1000), "");
    }

    #[test]
    fn relay_sees_the_out_of_memory_line_even_past_its_limit() {
        let mut out = Vec::new();
        let mut input = b"noise\n".repeat(100);
        assert!(!relay(Trickle(&input), &mut out, 64));
        input.extend_from_slice(b"exo-fs-server: out of memory (4294967295 bytes)\n");
        assert!(relay(Trickle(&input), &mut Vec::new(), 64));
    }

    #[test]
    fn relay_drops_what_is_over_its_limit_and_says_so_once() {
        let out = relayed(b"12345\n6789\nabcdef\nmore\n", 10);
        assert!(out.starts_with("12345\nexo-img: dropped the last 17 bytes"), "{out}");
        assert_eq!(out.lines().count(), 2, "{out}");
    }
}
