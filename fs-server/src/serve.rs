//! The hosted file server's process: one per image, sandboxed.
//!
//! It is a mode of the client's own executable, so `exo-img` needs no
//! other file: the client runs `/proc/self/exe` with [`ARG`] as its first
//! argument, and that program's `main` hands over to [`main`] before it
//! parses anything else (see [`main_if_asked`]).
//!
//! Started with the image (opened read-only) as standard input, a socket
//! as standard output and a pipe, relayed by the client, as standard
//! error (a message must never be a write to a file: the sandbox allows
//! none). It sandboxes itself before it reads a byte of the image, then
//! answers file-protocol requests on the socket until the client hangs
//! up.
//!
//! Options: `--partition N`, `--codepage N` (the OEM code page of FAT
//! short names: 437, the default, or 850), `--rw` (the image was opened
//! read-write; FAT changes are allowed), `--memory MIB`, `--cpu
//! SECONDS`, `--backend netbsd --rump-sysroot DIR` (NetBSD's file systems
//! in a rump kernel, loaded from DIR before the sandbox closes), and the
//! test hook `--violate open|connect|exec`.
#![forbid(unsafe_code)]

use crate::backend::{self, FileSystem};
use crate::proto::{Entry, ErrorKind, Info, Stat};
use crate::{sandbox, server};
use std::os::fd::AsFd;

/// Stands in for the file system when the image could not be opened, so
/// every request gets the reason.
struct Unusable(String);

impl FileSystem for Unusable {
    fn info(&self) -> Info {
        Info { fs: "none".into(), label: String::new(), partition: String::new(), size: 0, sandbox: String::new() }
    }
    fn stat(&self, _: &str) -> backend::FsResult<Stat> {
        Err((ErrorKind::Corrupt, self.0.clone()))
    }
    fn read_dir(&self, _: &str) -> backend::FsResult<Vec<Entry>> {
        Err((ErrorKind::Corrupt, self.0.clone()))
    }
    fn read_into(&self, _: &str, _: u64, _: &mut [u8]) -> backend::FsResult<usize> {
        Err((ErrorKind::Corrupt, self.0.clone()))
    }
    fn read_link(&self, _: &str) -> backend::FsResult<String> {
        Err((ErrorKind::Corrupt, self.0.clone()))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// The sandbox's description, or the end of the process: a server that
/// cannot confine itself serves nothing.
fn confined(r: Result<String, String>) -> Option<String> {
    match r {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("exo-fs-server: cannot sandbox: {e}");
            std::process::exit(3);
        }
    }
}

/// The first argument that starts a program as the server. Option-shaped,
/// so no image path can be taken for it (`exo-img` reads its first
/// argument as an image only if it does not start with `-`).
pub const ARG: &str = "--internal-fs-server";

/// What the server calls itself: its process name and the prefix of its
/// messages.
pub const NAME: &str = "exo-fs-server";

/// The server's memory limit (address space), in MiB, unless `--memory`
/// says otherwise. Asking for more aborts it with a report
/// ([`crate::oom`]).
pub const MEMORY_MIB: u64 = 1024;

/// Serves, and ends the process, if it was started as the server (its
/// first argument is [`ARG`]); returns otherwise. Call first in `main`.
pub fn main_if_asked() {
    if std::env::args_os().nth(1).is_some_and(|a| a == ARG) {
        let args: Vec<String> = std::env::args().skip(2).collect();
        let code = main(&args);
        std::process::exit(code);
    }
}

/// The server's `main`: `args` are its options (above). Returns the exit
/// status once the client has hung up; exits early on errors.
pub fn main(args: &[String]) -> i32 {
    // A panic is reported with one write: the default report also asks
    // for the working directory, which the sandbox forbids (the crash
    // would then look like a violation).
    std::panic::set_hook(Box::new(|info| eprintln!("exo-fs-server: {info}")));
    crate::oom::set_server();
    sandbox::set_name(NAME);
    let shm_fd = arg(args, "--shm").and_then(|v| v.parse::<i32>().ok());
    sandbox::close_inherited(shm_fd);
    // The buffer shared with the client for file data (see crate::shm).
    let mut shared = shm_fd.and_then(|fd| match crate::shm::SharedBuf::inherit(fd, crate::shm::SIZE) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("exo-fs-server: no shared buffer ({e}); file data goes through the socket");
            None
        }
    });
    let number = |name: &str, default: u64| arg(args, name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let partition = arg(args, "--partition").and_then(|v| v.parse().ok());
    let codepage = match arg(args, "--codepage").map(|v| v.parse::<crate::codepage::CodePage>()) {
        None => Default::default(),
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            eprintln!("exo-fs-server: {e}");
            std::process::exit(2);
        }
    };
    let rw = args.iter().any(|a| a == "--rw");
    let image = std::io::stdin().as_fd().try_clone_to_owned().map(std::fs::File::from);
    let socket = std::io::stdout().as_fd().try_clone_to_owned().map(std::os::unix::net::UnixStream::from);
    let (Ok(image), Ok(mut socket)) = (image, socket) else {
        eprintln!("exo-fs-server: needs the image on standard input and a socket on standard output");
        std::process::exit(2);
    };
    // With --rw the server may write inside the image, never beyond it.
    let max_write = if rw { std::io::Seek::seek(&mut &image, std::io::SeekFrom::End(0)).unwrap_or(0) } else { 0 };
    let limits =
        sandbox::Limits { memory: number("--memory", MEMORY_MIB) << 20, cpu_seconds: number("--cpu", 60), max_write };
    let netbsd = arg(args, "--backend").is_some_and(|b| b == "netbsd");
    let fs: Box<dyn FileSystem> = if netbsd {
        // The rump kernel loads its libraries and starts its threads
        // first; namespaces must come before threads, the rest after.
        let ns = sandbox::enter_namespaces();
        let opened = match (arg(args, "--rump-sysroot"), rumpglue::host::FileDevice::new(image, false)) {
            (None, _) => Err("--backend netbsd needs --rump-sysroot".to_string()),
            (_, Err(e)) => Err(format!("cannot use the image: {e}")),
            (Some(root), Ok(dev)) => {
                crate::netbsd::open(std::path::Path::new(&root), std::sync::Arc::new(dev), partition)
            }
        };
        let description = confined(sandbox::confine(limits, true)).map(|d| format!("{ns}, {d}"));
        match (opened, description) {
            (Ok(mut fs), Some(d)) => {
                fs.set_sandbox(d);
                Box::new(fs)
            }
            (Err(e), _) => Box::new(Unusable(e)),
            (Ok(_), None) => unreachable!("confined() exits on failure"),
        }
    } else {
        let description = confined(sandbox::apply(limits)).unwrap_or_default();
        if let Some(v) = arg(args, "--violate") {
            sandbox::violate(&v);
        }
        let opened = rumpglue::host::FileDevice::new(image, rw)
            .map_err(|e| format!("cannot use the image: {e}"))
            .and_then(|dev| {
                backend::open(std::sync::Arc::new(dev), partition, codepage, rumpglue::host::host().clock, description)
            });
        match opened {
            Ok(fs) => fs,
            Err(e) => Box::new(Unusable(e)),
        }
    };
    if let Err(e) = server::serve(fs.as_ref(), &mut socket, shared.as_mut()) {
        eprintln!("exo-fs-server: {e}");
        return 1;
    }
    0
}
