//! `exo-img`: list, read and extract files from a disk image that may be
//! corrupt or hostile. The image is parsed only by a sandboxed
//! `exo-fs-server` process (this same executable in server mode, see
//! `fs_server::serve`); this program never reads it.
//!
//! Exit status: 0 success, 1 a file-level error (not found, not a
//! directory ...), 2 bad usage, 3 the image cannot be used, 4 the server
//! died or timed out.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use fs_server::client::{Client, ClientError, InProcess, PipelineError, ServerOptions};
use fs_server::dest::Dest;
use fs_server::links::Link;
use fs_server::output::{default_max_output, parse_size, Budget, ENTRY_COST};
use fs_server::proto::{
    escape_path, unescape_name, unescape_path, Entry, ErrorKind, FileResult, Kind, Request, Response, Stat,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Native,
    Netbsd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Isolation {
    /// A server process in namespaces, seccomp and resource limits.
    Sandbox,
    /// ExoV6 in QEMU: its driver and file server parse the image.
    Vm,
}

#[derive(Parser)]
#[command(
    name = "exo-img",
    version,
    about = "Inspect untrusted disk images through a sandboxed file server",
    after_help = "Paths in the image are written as `ls` here lists them: a name that is not UTF-8, or holds a \
                  control character, shows those bytes as \\xHH and a backslash as \\\\ (as `ls -b` does); \
                  write them the same way, e.g. exo-img disk.img cat '/caf\\xe9'. `extract` and `mount` give \
                  such names their exact bytes."
)]
struct Cli {
    /// The disk image (ext2/3/4 or FAT; whole disk, MBR or GPT).
    image: PathBuf,
    /// Partition to use when the image has several (1-based).
    #[arg(long, global = true)]
    partition: Option<usize>,
    /// The OEM code page of FAT short (8.3) names, for their bytes from
    /// 0x80 up: 437 (the default, as Linux's vfat) or 850.
    #[arg(long, global = true, value_name = "N")]
    codepage: Option<fs_server::codepage::CodePage>,
    /// Seconds a single request may take before the server is killed.
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// Open the image read-write (needed by put, mkdir, rm, mv; FAT only).
    #[arg(long, global = true)]
    rw: bool,
    /// Which file-system code serves the image: `native` (the built-in
    /// ext2/3/4 and FAT) or `netbsd` (NetBSD's ffs, ext2fs and msdos in a
    /// rump kernel you installed; see --rump-sysroot).
    #[arg(long, global = true, value_enum, default_value_t = Backend::Native)]
    backend: Backend,
    /// What confines the code that parses the image: `sandbox` (a server
    /// process in namespaces and seccomp; the default) or `vm` (ExoV6 in
    /// QEMU, its virtio driver and file server each a process; needs
    /// qemu-system-x86_64 and the appliance built by scripts/build, see
    /// EXO_IMG_VM_DIR).
    #[arg(long, global = true, value_enum, default_value_t = Isolation::Sandbox)]
    isolation: Isolation,
    /// Where the NetBSD rump kernel is installed (its lib/ holds
    /// librump.so, librumpvfs.so, librumpfs_ffs.so, ...).
    #[arg(long, global = true, env = "RUMP_SYSROOT")]
    rump_sysroot: Option<PathBuf>,
    /// Test hook: make the server break its sandbox (open, connect, exec).
    #[arg(long, hide = true, global = true)]
    test_violate: Option<String>,
    /// Most bytes `extract` may write, with K, M, G or T for powers of
    /// 1024 (default: four times the image's size, and 64 MiB more for
    /// sparse files). Each file, directory and link counts 512 bytes
    /// besides its contents. Extraction stops with an error before it
    /// would write more.
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    max_output: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// File-system type, label, partition and the server's sandbox.
    Info,
    /// List a directory.
    Ls {
        /// Directory (default /).
        #[arg(default_value = "/")]
        path: String,
        /// Long format: kind, mode, size, time.
        #[arg(short = 'l')]
        long: bool,
        /// Recurse into subdirectories.
        #[arg(short = 'R')]
        recursive: bool,
    },
    /// Write a file to standard output.
    Cat {
        /// The file.
        path: String,
    },
    /// Show a file's metadata.
    Stat {
        /// The file.
        path: String,
    },
    /// Show a directory tree.
    Tree {
        /// Top directory (default /).
        #[arg(default_value = "/")]
        path: String,
    },
    /// Mount the image with FUSE at MOUNTPOINT (read-only; read-write on
    /// FAT with --rw) until unmounted (`fusermount3 -u MOUNTPOINT`).
    Mount {
        /// An empty directory.
        mountpoint: PathBuf,
    },
    /// Copy a local file into the image (FAT, with --rw).
    Put {
        /// The local file.
        local: PathBuf,
        /// Where it goes in the image.
        path: String,
    },
    /// Create a directory, or keep it if it exists (FAT, with --rw).
    Mkdir {
        /// The new directory.
        path: String,
    },
    /// Remove a file or empty directory (FAT, with --rw).
    Rm {
        /// What to remove.
        path: String,
    },
    /// Move or rename (FAT, with --rw).
    Mv {
        /// Current path.
        from: String,
        /// New path.
        to: String,
    },
    /// Copy a file or directory tree out of the image into DEST.
    Extract {
        /// What to extract (`/` for everything).
        path: String,
        /// Destination directory (created if missing).
        dest: PathBuf,
    },
}

/// Prints a line to standard output; a closed pipe (`exo-img ... | head`)
/// ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// An error with its exit status.
struct Failure(u8, String);

fn failure(e: ClientError, what: &str) -> Failure {
    match e {
        ClientError::Fs(ErrorKind::Corrupt | ErrorKind::Unsupported | ErrorKind::Io, m) => {
            Failure(3, format!("{what}: {m}"))
        }
        ClientError::Fs(ErrorKind::ReadOnly, m) => Failure(1, format!("{what}: {m}")),
        ClientError::Fs(_, m) => Failure(1, format!("{what}: {m}")),
        e @ (ClientError::ServerDied(_) | ClientError::OutOfMemory(_)) => {
            Failure(4, format!("{e} (while reading {what})"))
        }
        e @ ClientError::Start(_) => Failure(3, e.to_string()),
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Other => "other",
    }
}

fn stat_json(s: &Stat) -> String {
    format!(
        "{{\"kind\":\"{}\",\"size\":{},\"mode\":{},\"uid\":{},\"gid\":{},\"mtime\":{}}}",
        kind_name(s.kind),
        s.size,
        s.mode,
        s.uid,
        s.gid,
        s.mtime
    )
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Where requests go: the sandboxed server, or (benchmark baseline only)
/// this process.
enum Conn {
    Server(Client),
    InProcess(InProcess),
}

struct App {
    conn: Conn,
    json: bool,
}

impl App {
    fn ask(&mut self, req: Request, what: &str) -> Result<Response, Failure> {
        let r = match &mut self.conn {
            Conn::Server(c) => c.request(&req),
            Conn::InProcess(l) => l.request(&req),
        };
        r.map_err(|e| failure(e, what))
    }

    /// The starts of many small files in one round trip; `None` if that
    /// failed as a whole (the caller then asks one by one, which reports
    /// the failure).
    fn read_many(&mut self, files: Vec<(String, u32)>) -> Option<Vec<FileResult>> {
        let n = files.len();
        match self.ask(Request::ReadMany(files), "several files") {
            Ok(Response::Many(items)) if items.len() == n => Some(items),
            _ => None,
        }
    }

    /// Sends a request that changes the image.
    fn change(&mut self, req: Request, what: &str) -> Result<(), Failure> {
        match self.ask(req, what)? {
            Response::Done => Ok(()),
            _ => Err(Failure(4, "the server answered out of turn".into())),
        }
    }

    fn stat(&mut self, path: &str) -> Result<Stat, Failure> {
        match self.ask(Request::Stat(path.into()), path)? {
            Response::Stat(s) => Ok(s),
            _ => Err(Failure(4, "the server answered out of turn".into())),
        }
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<Entry>, Failure> {
        match self.ask(Request::ReadDir(path.into()), path)? {
            Response::Dir(mut d) => {
                d.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(d)
            }
            _ => Err(Failure(4, "the server answered out of turn".into())),
        }
    }

    /// Reads a whole file in chunks, handing each to `sink`. With the
    /// size known from a listing, it stops there instead of asking once
    /// more to see the end (the file may still have changed: a short read
    /// ends early, a longer file is read on).
    fn read_file(
        &mut self,
        path: &str,
        size: Option<u64>,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, Failure> {
        // Chunks of half the shared buffer: what the server moves per
        // request, and small enough to stay in the processor's caches
        // between the read and the write (measured: 1 MiB beats 4 MiB).
        const CHUNK: u32 = (fs_server::shm::SIZE / 2) as u32;
        let mut offset = 0u64;
        if let (Conn::Server(c), Some(s)) = (&mut self.conn, size) {
            // The size is known: the server reads ahead while we write.
            return c.read_pipelined(path, s, &mut sink).map_err(|e| match e {
                PipelineError::Client(e) => failure(e, path),
                PipelineError::Sink(e) => Failure(1, format!("writing {path}: {e}")),
            });
        }
        loop {
            // From a server, the bytes arrive in the memory shared with it.
            let n = match &mut self.conn {
                Conn::Server(c) => {
                    let data = c.read(path, offset, CHUNK).map_err(|e| failure(e, path))?;
                    sink(&data).map_err(|e| Failure(1, format!("writing {path}: {e}")))?;
                    data.len()
                }
                Conn::InProcess(l) => {
                    let data = l.read(path, offset, CHUNK).map_err(|e| failure(e, path))?;
                    sink(data).map_err(|e| Failure(1, format!("writing {path}: {e}")))?;
                    data.len()
                }
            };
            if n == 0 {
                return Ok(offset);
            }
            offset += n as u64;
            if size.is_some_and(|s| offset == s && n < CHUNK as usize) {
                return Ok(offset);
            }
        }
    }

    fn info(&mut self) -> Result<(), Failure> {
        let Response::Info(i) = self.ask(Request::Info, "the image")? else {
            return Err(Failure(4, "the server answered out of turn".into()));
        };
        if i.fs == "none" {
            // The server could not open the image; Stat tells why.
            self.stat("/")?;
        }
        if self.json {
            out!(
                "{{\"fs\":{},\"label\":{},\"partition\":{},\"size\":{},\"sandbox\":{}}}",
                json_str(&i.fs),
                json_str(&i.label),
                json_str(&i.partition),
                i.size,
                json_str(&i.sandbox)
            );
        } else {
            out!(
                "file system: {}\nlabel:       {}\npartition:   {}\nsize:        {} bytes\nsandbox:     {}",
                i.fs,
                i.label,
                i.partition,
                i.size,
                i.sandbox
            );
        }
        Ok(())
    }

    fn ls(&mut self, path: &str, long: bool, recursive: bool, seen: &mut Seen) -> Result<(), Failure> {
        let entries = self.read_dir(path)?;
        seen.note_bad(path, &entries);
        if self.json {
            for e in &entries {
                // Bad entries are told on standard error only: each line
                // here is a path and its stat.
                if e.problem.is_none() {
                    out!("{{\"path\":{},\"stat\":{}}}", json_str(&join(path, &e.name)), stat_json(&e.stat));
                }
            }
        } else {
            if recursive {
                if seen.listed > 0 {
                    out!();
                }
                out!("{path}:");
            }
            for e in &entries {
                if long && e.problem.is_some() {
                    out!("{:<7} {:>4} {:>5} {:>5} {:>12} {:>11} {}", "bad", "?", "?", "?", "?", "?", e.name);
                } else if long {
                    out!(
                        "{:<7} {:04o} {:>5} {:>5} {:>12} {:>11} {}",
                        kind_name(e.stat.kind),
                        e.stat.mode,
                        e.stat.uid,
                        e.stat.gid,
                        e.stat.size,
                        e.stat.mtime,
                        e.name
                    );
                } else {
                    out!("{}", e.name);
                }
            }
        }
        seen.listed += 1;
        if recursive {
            for e in entries.iter().filter(|e| e.stat.kind == Kind::Dir) {
                let child = join(path, &e.name);
                if seen.first_visit(&child, &e.stat) {
                    self.ls(&child, long, true, seen)?;
                }
            }
        }
        Ok(())
    }

    fn tree(&mut self, path: &str, prefix: &str, seen: &mut Seen) -> Result<(), Failure> {
        let entries = self.read_dir(path)?;
        seen.note_bad(path, &entries);
        for (i, e) in entries.iter().enumerate() {
            let last = i + 1 == entries.len();
            out!(
                "{prefix}{}{}{}",
                if last { "└── " } else { "├── " },
                e.name,
                if e.stat.kind == Kind::Dir { "/" } else { "" }
            );
            let child = join(path, &e.name);
            if e.stat.kind == Kind::Dir && seen.first_visit(&child, &e.stat) {
                self.tree(&child, &format!("{prefix}{}", if last { "    " } else { "│   " }), seen)?;
            }
        }
        Ok(())
    }

    /// A walk of `ls -R` or `tree` from `path`: its directory's identity
    /// noted first, so a way back to it is seen at once.
    fn walk_from(&mut self, path: &str) -> Seen {
        let mut seen = Seen::default();
        // Without it the walk still ends, one level later.
        if let Ok(s) = self.stat(path) {
            seen.first_visit(path, &s);
        }
        seen
    }
}

/// The directories a walk (`ls -R`, `tree`, `extract`) has entered, by
/// `Stat::id`: the image's directories may form cycles (a directory
/// hard-linked into itself, a FAT entry pointing at its parent) or meet
/// again (hard links), and each is entered once.
#[derive(Default)]
struct Seen {
    first: HashMap<u64, String>,
    /// Directories skipped as met before (the first of them named).
    skipped: Vec<String>,
    /// Directories listed so far.
    listed: u64,
    /// Entries listed that the server cannot serve (`Entry::problem`).
    bad: u64,
    /// The directory of the first of them.
    first_bad: Option<String>,
}

impl Seen {
    /// True the first time the directory `stat` (at `path`) is met; else
    /// says so on standard error and notes it. Directories the server
    /// cannot identify (id 0) are always entered.
    fn first_visit(&mut self, path: &str, stat: &Stat) -> bool {
        if stat.id == 0 {
            return true;
        }
        if let Some(first) = self.first.get(&stat.id) {
            eprintln!("exo-img: {path}: not entered: the same directory as {first} (a directory cycle or hard link in the image)");
            self.skipped.push(path.to_string());
            return false;
        }
        self.first.insert(stat.id, path.to_string());
        true
    }

    /// Says on standard error why each bad entry of directory `path` is
    /// bad, and counts them.
    fn note_bad(&mut self, path: &str, entries: &[Entry]) {
        for e in entries {
            if let Some(why) = &e.problem {
                eprintln!("exo-img: {}: bad entry: {why}", join(path, &e.name));
                self.bad += 1;
                self.first_bad.get_or_insert_with(|| path.to_string());
            }
        }
    }

    /// The walk's outcome: an error naming the first directory skipped,
    /// or counting the bad entries met.
    fn outcome(&self) -> Result<(), Failure> {
        match self.skipped.first() {
            None if self.bad > 0 => Err(Failure(
                1,
                format!(
                    "{}: {} bad entr{} listed (not readable; see above)",
                    self.first_bad.as_deref().unwrap_or("/"),
                    self.bad,
                    if self.bad == 1 { "y" } else { "ies" }
                ),
            )),
            None => Ok(()),
            Some(p) => Err(Failure(
                1,
                format!(
                    "{p}: {} director{} met again, not entered twice",
                    self.skipped.len(),
                    if self.skipped.len() == 1 { "y" } else { "ies" }
                ),
            )),
        }
    }
}

/// Extraction: refuses names that could escape the destination, never
/// follows or overwrites anything already there (files are created with
/// O_EXCL and O_NOFOLLOW, directories with mkdir, which follows no final
/// link), enters each directory once, creates symlinks last and only
/// where they resolve inside the destination (`fs_server::links`), and
/// writes at most `--max-output` bytes.
/// Files up to this size are read many per round trip when extracting.
const SMALL_FILE: u64 = 64 << 10;
/// How many per round trip (at most SMALL_FILE each: 4 MiB in all).
const BATCH: usize = 64;
struct Extractor {
    dest: PathBuf,
    /// Where everything is written (relative to directory handles).
    out: Dest,
    files: u64,
    bytes: u64,
    errors: u32,
    last_progress: Instant,
    progress: bool,
    /// Directories entered.
    seen: Seen,
    /// Symlinks to create once everything else is written.
    links: Vec<Link>,
    /// What the output may hold, and what it was charged so far.
    budget: Budget,
}

/// A safe relative path under `rel` for the entry the server calls
/// `name` (escaped, see `exo_fs_core::proto`): its exact bytes, or `None`
/// if it could escape (`..`, `.`, empty, separators, NUL) or is not a
/// name the server writes.
fn safe_child(rel: &Path, name: &str) -> Option<PathBuf> {
    let raw = unescape_name(name)?;
    let n = OsStr::from_bytes(&raw);
    let mut comps = Path::new(n).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(c)), None) if c == n => Some(rel.join(c)),
        _ => None,
    }
}

impl Extractor {
    fn report(&mut self, force: bool) {
        if self.progress && (force || self.last_progress.elapsed() > Duration::from_millis(300)) {
            eprint!("\rextracting: {} files, {} MiB", self.files, self.bytes >> 20);
            if force {
                eprintln!();
            }
            self.last_progress = Instant::now();
        }
    }

    fn warn(&mut self, msg: String) {
        self.errors += 1;
        eprintln!("exo-img: {msg}");
    }

    /// Extracts the regular files above `SMALL_FILE` among `entries` (of
    /// directory `src`) with the server reading ahead across them; adds
    /// what it handled (extracted, or failed and reported) to `done`. If
    /// the server dies, the rest is left to the one-by-one path. Only as
    /// many as the output bound allows are read; the first that does not
    /// fit stops the extraction.
    fn extract_large(
        &mut self,
        app: &mut App,
        src: &str,
        rel: &Path,
        entries: &[Entry],
        done: &mut std::collections::BTreeSet<String>,
    ) -> Result<(), Failure> {
        if !matches!(&app.conn, Conn::Server(c) if c.has_shared_buffer()) {
            return Ok(());
        }
        let candidates = entries
            .iter()
            .filter(|e| e.stat.kind == Kind::File && e.stat.size > SMALL_FILE && safe_child(rel, &e.name).is_some());
        // Charged up front, in order, as far as the bound allows.
        let mut large: Vec<&Entry> = Vec::new();
        let mut over = None;
        for e in candidates {
            let path = join(src, &e.name);
            match self.budget.charge(ENTRY_COST + e.stat.size, &path) {
                Ok(()) => large.push(e),
                Err(m) => match self.too_large(app, &path, m) {
                    Ok(()) => {
                        done.insert(e.name.clone());
                    }
                    Err(f) => {
                        over = Some(f);
                        break;
                    }
                },
            }
        }
        let Conn::Server(client) = &mut app.conn else { return over.map_or(Ok(()), Err) };
        let files: Vec<(String, u64)> = large.iter().map(|e| (join(src, &e.name), e.stat.size)).collect();
        let outs: Vec<PathBuf> = large.iter().map(|e| safe_child(rel, &e.name).expect("filtered above")).collect();
        let mut current: Option<(usize, std::fs::File)> = None;
        let mut opened = vec![false; large.len()];
        let mut written = vec![0u64; large.len()];
        let budget = &mut self.budget;
        let dest = &mut self.out;
        let r = if files.is_empty() {
            Ok(Vec::new())
        } else {
            client.read_files_pipelined(&files, |i, data| {
                budget.grow(files[i].1, written[i], data.len(), &files[i].0)?;
                if current.as_ref().is_none_or(|(c, _)| *c != i) {
                    let f = dest.create_file(&outs[i])?;
                    opened[i] = true;
                    current = Some((i, f));
                }
                written[i] += data.len() as u64;
                current.as_mut().expect("just set").1.write_all(data)
            })
        };
        drop(current);
        self.bytes += written.iter().sum::<u64>();
        // What was charged but not written (short files) is given back.
        for (i, (_, size)) in files.iter().enumerate() {
            self.budget.refund(size.saturating_sub(written[i]));
        }
        match r {
            Ok(results) => {
                for (i, (e, err)) in large.iter().zip(results).enumerate() {
                    match err {
                        None if opened[i] => self.files += 1,
                        None => {
                            // Listed with a size, but empty now: still a file.
                            self.out
                                .create_file(&outs[i])
                                .map_err(|er| Failure(1, format!("{}: {er}", self.out.display(&outs[i]).display())))?;
                            self.files += 1;
                        }
                        Some(err) => {
                            self.warn(failure(err, &files[i].0).1);
                            if opened[i] {
                                let _ = self.out.remove_file(&outs[i]);
                            }
                        }
                    }
                    done.insert(e.name.clone());
                }
                self.report(false);
                over.map_or(Ok(()), Err)
            }
            Err(PipelineError::Sink(e)) => {
                // The file being written is left out whole.
                if let Some(i) = (0..large.len()).rev().find(|&i| opened[i]) {
                    let _ = self.out.remove_file(&outs[i]);
                }
                Err(Failure(1, format!("writing {}: {e}", self.dest.display())))
            }
            Err(PipelineError::Client(_)) => {
                // The server died: files written whole stay; anything else
                // is removed and read again one by one, which reports why.
                for (i, e) in large.iter().enumerate() {
                    if opened[i] && written[i] == files[i].1 {
                        self.files += 1;
                        done.insert(e.name.clone());
                    } else {
                        if opened[i] {
                            let _ = self.out.remove_file(&outs[i]);
                            self.bytes -= written[i];
                        }
                        // Charged again when read one by one.
                        self.budget.refund(ENTRY_COST + written[i]);
                    }
                }
                over.map_or(Ok(()), Err)
            }
        }
    }

    fn extract(&mut self, app: &mut App, src: &str, rel: &Path, stat: &Stat) -> Result<(), Failure> {
        let out = self.out.display(rel);
        match stat.kind {
            Kind::Dir => {
                if !self.seen.first_visit(src, stat) {
                    self.errors += 1;
                    return Ok(());
                }
                if !rel.as_os_str().is_empty() {
                    self.budget.charge(ENTRY_COST, src).map_err(|m| Failure(1, m))?;
                    // mkdir follows no link and fails on anything there
                    // (then this directory is one error, the rest goes on).
                    if let Err(e) = self.out.create_dir(rel) {
                        self.budget.refund(ENTRY_COST);
                        self.warn(format!("{}: {e}", out.display()));
                        return Ok(());
                    }
                }
                let entries = match app.read_dir(src) {
                    Ok(e) => e,
                    // A subdirectory that cannot be read (corrupt, or its
                    // server died) is one error: the rest goes on.
                    Err(f) if f.0 == 4 || f.0 == 3 && !rel.as_os_str().is_empty() => {
                        self.warn(f.1);
                        return Ok(());
                    }
                    Err(f) => return Err(f),
                };
                // Bad entries (the server cannot serve them) and a name met
                // again in this directory are each one error; the rest is
                // extracted.
                let mut names = std::collections::BTreeSet::new();
                let mut good = Vec::with_capacity(entries.len());
                for e in entries {
                    if let Some(why) = &e.problem {
                        self.warn(format!("{}: bad entry: {why}", join(src, &e.name)));
                    } else if !names.insert(e.name.clone()) {
                        self.warn(format!(
                            "{}: the name is in the directory twice; the first is extracted",
                            join(src, &e.name)
                        ));
                    } else {
                        good.push(e);
                    }
                }
                let entries = good;
                // Small files are fetched many per round trip.
                let mut done = std::collections::BTreeSet::new();
                let small: Vec<&Entry> = entries
                    .iter()
                    .filter(|e| e.stat.kind == Kind::File && e.stat.size <= SMALL_FILE)
                    .filter(|e| safe_child(rel, &e.name).is_some())
                    .collect();
                for batch in small.chunks(BATCH) {
                    let files = batch.iter().map(|e| (join(src, &e.name), e.stat.size as u32)).collect();
                    let Some(answers) = app.read_many(files) else { break };
                    for (e, answer) in batch.iter().zip(answers) {
                        let child = safe_child(rel, &e.name).expect("filtered above");
                        // Anything but the whole file: it is read the
                        // ordinary way below, which reports what went wrong.
                        let Ok(d) = answer else { continue };
                        if d.len() as u64 != e.stat.size {
                            continue;
                        }
                        let path = join(src, &e.name);
                        self.budget.charge(ENTRY_COST + e.stat.size, &path).map_err(|m| Failure(1, m))?;
                        let out = self.out.display(&child);
                        let mut f = match self.out.create_file(&child) {
                            Ok(f) => f,
                            Err(er) => {
                                self.budget.refund(ENTRY_COST + e.stat.size);
                                self.warn(format!("{}: {er}", out.display()));
                                done.insert(e.name.clone());
                                continue;
                            }
                        };
                        if let Err(er) = f.write_all(&d) {
                            drop(f);
                            let _ = self.out.remove_file(&child);
                            return Err(Failure(1, format!("writing {}: {er}", out.display())));
                        }
                        self.bytes += d.len() as u64;
                        self.files += 1;
                        done.insert(e.name.clone());
                        self.report(false);
                    }
                }
                // Larger files of this directory: one pipeline across them.
                self.extract_large(app, src, rel, &entries, &mut done)?;
                for e in entries {
                    if done.contains(&e.name) {
                        continue;
                    }
                    let Some(child) = safe_child(rel, &e.name) else {
                        self.warn(format!("refusing unsafe name {:?} in {src}", e.name));
                        continue;
                    };
                    self.extract(app, &join(src, &e.name), &child, &e.stat)?;
                }
            }
            Kind::File => {
                if let Err(m) = self.budget.charge(ENTRY_COST + stat.size, src) {
                    return self.too_large(app, src, m);
                }
                let mut f = match self.out.create_file(rel) {
                    Ok(f) => f,
                    Err(e) => {
                        self.budget.refund(ENTRY_COST + stat.size);
                        self.warn(format!("{}: {e}", out.display()));
                        return Ok(());
                    }
                };
                let mut written = 0;
                let budget = &mut self.budget;
                let r = app.read_file(src, Some(stat.size), |d| {
                    budget.grow(stat.size, written, d.len(), src)?;
                    written += d.len() as u64;
                    f.write_all(d)
                });
                self.bytes += written;
                self.budget.refund(stat.size.saturating_sub(written));
                match r {
                    Ok(_) => self.files += 1,
                    Err(fail) if fail.0 == 4 || fail.0 == 3 => {
                        self.warn(fail.1);
                        drop(f);
                        let _ = self.out.remove_file(rel);
                    }
                    Err(fail) => {
                        // Stopped (the output bound, a full disk): what is
                        // extracted is whole.
                        drop(f);
                        let _ = self.out.remove_file(rel);
                        return Err(fail);
                    }
                }
                self.report(false);
            }
            Kind::Symlink => {
                // A link that cannot be read is one error; the rest goes on.
                let target = match app.ask(Request::ReadLink(src.into()), src) {
                    Ok(Response::Link(t)) => t,
                    Ok(_) => return Err(Failure(4, "the server answered out of turn".into())),
                    Err(f) => {
                        self.warn(f.1);
                        return Ok(());
                    }
                };
                self.budget.charge(ENTRY_COST, src).map_err(|m| Failure(1, m))?;
                // Created last, where it stays inside (fs_server::links).
                let Some(target) = unescape_path(&target) else {
                    self.warn(format!("{src}: the server sent a malformed link target {target:?}"));
                    return Ok(());
                };
                self.links.push(Link { rel: rel.to_path_buf(), target, src: src.to_string() });
            }
            Kind::Other => self.warn(format!("skipping {src}: not a file, directory or symlink")),
        }
        Ok(())
    }

    /// A file that does not fit in what is left of the output bound
    /// (`why` says so) is its own error, and extraction goes on without
    /// it (the bound still holds: nothing of it is written). If the
    /// server cannot read it anyway (its chain loops, it is corrupt),
    /// that is the error reported.
    fn too_large(&mut self, app: &mut App, src: &str, why: String) -> Result<(), Failure> {
        match app.ask(Request::Read { path: src.into(), offset: 0, len: 1 }, src) {
            Err(f) => {
                self.warn(f.1);
                Ok(())
            }
            // Readable, but too large: left out, as its own error; the
            // smaller files after it still fit.
            Ok(_) => {
                self.warn(format!("{why}: left out"));
                Ok(())
            }
        }
    }

    /// Creates the symlinks gathered, now that everything else is written
    /// (see `fs_server::links`), and reports those refused.
    fn finish_links(&mut self) {
        for r in fs_server::links::create_links(&self.dest, std::mem::take(&mut self.links)) {
            self.budget.refund(ENTRY_COST);
            self.warn(format!("refusing symlink {} -> {}: {}", r.link.src, escape_path(&r.link.target), r.why));
        }
    }
}

fn need_rw(rw: bool) -> Result<(), Failure> {
    if rw {
        Ok(())
    } else {
        Err(Failure(2, "this command changes the image: add --rw".into()))
    }
}

/// Where the image is parsed: in a sandboxed server (what `exo-img` does),
/// or in this process, unisolated (the benchmark baseline
/// `exo-img-bench`; never on untrusted images).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    Sandboxed,
    InProcess,
}

fn run(cli: Cli, parse: Parse) -> Result<(), Failure> {
    let vm = cli.isolation == Isolation::Vm;
    let rump_sysroot = match (cli.backend, &cli.rump_sysroot) {
        (Backend::Native, _) => None,
        (Backend::Netbsd, _) if cli.rw => {
            return Err(Failure(2, "--backend netbsd serves images read-only; drop --rw".into()))
        }
        (Backend::Netbsd, _) if cli.codepage.is_some() => {
            return Err(Failure(2, "--codepage is for the native backend; drop it with --backend netbsd".into()))
        }
        // In vm mode the rump kernel is in the appliance, linked when it
        // was built.
        (Backend::Netbsd, _) if vm => None,
        (Backend::Netbsd, None) => {
            return Err(Failure(
                2,
                "--backend netbsd needs a NetBSD rump kernel: set RUMP_SYSROOT (or --rump-sysroot) to the \
                 directory whose lib/ holds librump.so"
                    .into(),
            ))
        }
        (Backend::Netbsd, Some(root)) if !root.join("lib/librump.so").exists() => {
            return Err(Failure(2, format!("{}: no lib/librump.so here", root.display())))
        }
        (Backend::Netbsd, Some(root)) => Some(root.clone()),
    };
    if vm && parse == Parse::InProcess {
        return Err(Failure(2, "--isolation vm has no in-process baseline".into()));
    }
    let options = ServerOptions {
        vm,
        netbsd: vm && cli.backend == Backend::Netbsd,
        partition: cli.partition,
        codepage: cli.codepage.unwrap_or_default(),
        timeout: Duration::from_secs(cli.timeout.max(1)),
        violate: cli.test_violate.clone(),
        rw: cli.rw,
        rump_sysroot,
    };
    if let Command::Mount { mountpoint } = &cli.command {
        let client = Client::new(cli.image.clone(), options);
        return fs_server::mount::mount(client, mountpoint, cli.rw)
            .map_err(|e| Failure(3, format!("cannot mount on {}: {e}", mountpoint.display())));
    }
    let conn = if parse == Parse::InProcess {
        Conn::InProcess(
            InProcess::open(&cli.image, cli.partition, options.codepage).map_err(|e| failure(e, "the image"))?,
        )
    } else {
        Conn::Server(Client::new(cli.image.clone(), options))
    };
    let mut app = App { conn, json: cli.json };
    match cli.command {
        Command::Info => app.info(),
        Command::Ls { path, long, recursive } => {
            let mut seen = if recursive { app.walk_from(&path) } else { Seen::default() };
            app.ls(&path, long, recursive, &mut seen)?;
            seen.outcome()
        }
        Command::Tree { path } => {
            out!("{path}");
            let mut seen = app.walk_from(&path);
            app.tree(&path, "", &mut seen)?;
            seen.outcome()
        }
        Command::Stat { path } => {
            let s = app.stat(&path)?;
            if app.json {
                out!("{{\"path\":{},\"stat\":{}}}", json_str(&path), stat_json(&s));
            } else {
                out!(
                    "{path}: {} {:04o} size {} uid {} gid {} mtime {}",
                    kind_name(s.kind),
                    s.mode,
                    s.size,
                    s.uid,
                    s.gid,
                    s.mtime
                );
            }
            Ok(())
        }
        Command::Cat { path } => {
            let mut stdout = std::io::stdout().lock();
            let r = app
                .read_file(&path, None, |d| stdout.write_all(d))
                .and_then(|_| stdout.flush().map_err(|e| Failure(1, e.to_string())));
            match r {
                Err(Failure(_, m)) if m.contains("Broken pipe") => Ok(()),
                r => r.map(|_| ()),
            }
        }
        Command::Mount { .. } => unreachable!("handled above"),
        Command::Put { local, path } => {
            need_rw(cli.rw)?;
            let mut f = std::fs::File::open(&local).map_err(|e| Failure(1, format!("{}: {e}", local.display())))?;
            app.change(Request::Create(path.clone()), &path)?;
            let mut offset = 0u64;
            let mut buf = vec![0u8; fs_server::proto::MAX_READ as usize];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)
                    .map_err(|e| Failure(1, format!("{}: {e}", local.display())))?;
                if n == 0 {
                    break;
                }
                app.change(Request::Write { path: path.clone(), offset, data: buf[..n].to_vec() }, &path)?;
                offset += n as u64;
            }
            Ok(())
        }
        Command::Mkdir { path } => {
            need_rw(cli.rw)?;
            app.change(Request::Mkdir(path.clone()), &path)
        }
        Command::Rm { path } => {
            need_rw(cli.rw)?;
            app.change(Request::Remove(path.clone()), &path)
        }
        Command::Mv { from, to } => {
            need_rw(cli.rw)?;
            app.change(Request::Rename { from: from.clone(), to }, &from)
        }
        Command::Extract { path, dest } => {
            let stat = app.stat(&path)?;
            std::fs::create_dir_all(&dest).map_err(|e| Failure(1, format!("{}: {e}", dest.display())))?;
            let rel = match stat.kind {
                Kind::Dir => PathBuf::new(),
                _ => {
                    let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("file");
                    safe_child(Path::new(""), name).ok_or_else(|| Failure(1, format!("unsafe name {name:?}")))?
                }
            };
            let limit = cli.max_output.unwrap_or_else(|| default_max_output(&cli.image));
            let out = Dest::open(&dest).map_err(|e| Failure(1, format!("{}: {e}", dest.display())))?;
            let mut x = Extractor {
                dest,
                out,
                files: 0,
                bytes: 0,
                errors: 0,
                last_progress: Instant::now(),
                progress: std::io::stderr().is_terminal(),
                seen: Seen::default(),
                links: Vec::new(),
                budget: Budget { used: 0, limit },
            };
            x.extract(&mut app, &path, &rel, &stat)?;
            x.finish_links();
            x.report(true);
            if app.json {
                out!("{{\"files\":{},\"bytes\":{},\"errors\":{}}}", x.files, x.bytes, x.errors);
            }
            if x.errors > 0 {
                Err(Failure(
                    1,
                    format!("extracted {} files; {} errors ({} entries not extracted)", x.files, x.errors, x.errors),
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// `exo-img`'s entry, parsing images as `parse` says.
pub fn entry(parse: Parse) -> ExitCode {
    // Started by a client of its own as the sandboxed server: nothing
    // below (clap included) runs then.
    fs_server::serve::main_if_asked();
    let cli = Cli::parse();
    match run(cli, parse) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, msg)) => {
            eprintln!("exo-img: {msg}");
            ExitCode::from(code)
        }
    }
}

#[allow(dead_code)] // not the entry when included by exo-img-bench
fn main() -> ExitCode {
    entry(Parse::Sandboxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        let r = Path::new("a");
        assert_eq!(safe_child(r, "b"), Some(PathBuf::from("a/b")));
        for bad in ["..", ".", "", "/etc", "x/y", "a\0b", "\\x2e\\x2e", "a\\x2fb", "a\\x00", "a\\q"] {
            assert_eq!(safe_child(r, bad), None, "{bad:?}");
        }
        // Names that are not UTF-8 come out with their exact bytes.
        assert_eq!(safe_child(r, "caf\\xe9").unwrap().as_os_str().as_bytes(), b"a/caf\xe9");
        assert_eq!(safe_child(r, "back\\\\slash"), Some(PathBuf::from("a/back\\slash")));
    }
}
