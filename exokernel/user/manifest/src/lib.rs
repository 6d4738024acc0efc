//! The boot manifest: the shape of a running system, as data.
//!
//! A line-oriented INI-like text (Hubris describes an image in `app.toml`
//! the same way): a `[system]` section and one `[program NAME]` section
//! per program, `key = value` lines, `#` comments. `parse` checks
//! everything and returns the programs in a valid start order, or an error
//! naming the line.
//!
//! ```text
//! [system]
//! on_idle = shutdown        # shutdown | halt
//!
//! [program spin-a]
//! binary = spin             # file in the boot image (required)
//! args = A 40               # handed to the program
//! caps = console            # console, power, untyped
//! after = hello             # started after these programs
//! heap = 64K                # bytes, K/M suffix, page multiple, <= 64M
//! restart = never           # never | on-failure | always (the root task's supervisor)
//! on_dependency_restart = reattach  # when one of `after` restarts: reattach (it is told) | restart
//! max_restarts = 5          # restarts allowed within restart_window (0-100)
//! restart_window = 60s      # seconds (1-3600)
//! stable_after = 10s        # an instance that ran this long resets the count (0: never)
//! memory = 16M              # with `untyped`: its own budget of pages (K/M/G)
//! kernel = 256K             # with `untyped`: kernel memory its objects may take
//! priority = 1              # scheduling level 0-2 (3 is the root task's)
//! weight = 1                # CPU share among its level's programs, 1-1000
//! expect = exit 0           # exit N | fault | fault N
//! label = user              # place in the security lattice (default user)
//! endpoints = echo, log      # IPC endpoints, shared by name between programs
//! serves = echo             # those it receives on (closed when it ends for good)
//! heartbeat = 500ms         # ping what it serves this often; 2 missed: kill, restart per policy
//! max_backoff = 1s          # longest wait before a restart (10ms-60s; doubling from 10 ms)
//! test_kills = 0            # tests: the root task kills it this many times at random moments
//! test_kill_gap = 20ms       # tests: the mean time between those kills (each wait random, 0.1x-1.9x)
//! test_kills_after = 0ms     # tests: when the first of those waits starts, after the program starts
//! devices = virtio-blk      # PCI functions it drives: virtio-blk, virtio-net, virtio-console
//! legacy = com1             # legacy devices it drives: com1, com2 (ports and interrupt line)
//! ```
//!
//! Endpoints are how the root task wires programs together: every program
//! that lists a name gets a capability to the same endpoint, at slot
//! [`ENDPOINT_SLOT_BASE`] + its position in the list, minted with a badge
//! that identifies the program (its position in the start order, plus 1).
//!
//! Devices are how a driver gets its hardware: the root task gives each
//! program a capability to one PCI function of every kind it lists (the
//! next one not yet given to another program), at slot
//! [`DEVICE_SLOT_BASE`] + its position in the list. A legacy device's I/O
//! ports and interrupt line come at [`LEGACY_SLOT_BASE`] + twice its
//! position in the list, and the slot after; one program at a time has
//! each.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
pub use exo_abi::lattice::Label;

/// Slot of the first endpoint a program lists.
pub const ENDPOINT_SLOT_BASE: u64 = exo_abi::slot::FIRST_ENDPOINT;
/// Most endpoints one program may list.
pub const MAX_ENDPOINTS: usize = 16;

/// Slot of the first device a program lists.
pub const DEVICE_SLOT_BASE: u64 = 32;
/// Most devices one program may list.
pub const MAX_DEVICES: usize = 8;
/// Slot of the I/O ports of the first legacy device a program lists (its
/// interrupt line: the next slot).
pub const LEGACY_SLOT_BASE: u64 = 40;

/// A legacy (ISA) device a driver can be given: its I/O ports and its
/// interrupt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// The first serial port (16550 UART): ports 0x3f8-0x3ff, line 4. The
    /// kernel's log writes its transmit register too.
    Com1,
    /// The second serial port: ports 0x2f8-0x2ff, line 3.
    Com2,
}

impl Legacy {
    /// Every kind, with its manifest name.
    pub const ALL: [(&'static str, Legacy); 2] = [("com1", Legacy::Com1), ("com2", Legacy::Com2)];

    /// Its manifest name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, d)| *d == self).map(|(n, _)| *n).expect("listed")
    }

    /// Its I/O ports (first, count) and interrupt line.
    pub fn resources(self) -> (u16, u16, u8) {
        match self {
            Legacy::Com1 => (0x3f8, 8, 4),
            Legacy::Com2 => (0x2f8, 8, 3),
        }
    }
}
/// Most programs one program may run `after` (one supervisor notification
/// bit each).
pub const MAX_AFTER: usize = exo_abi::MAX_DEPENDENCIES;

/// Restarts allowed in the window, unless the entry says otherwise (the
/// original design's default, as MINIX 3's reincarnation server).
pub const DEFAULT_MAX_RESTARTS: u32 = 5;
/// The window, in seconds.
pub const DEFAULT_RESTART_WINDOW_S: u32 = 60;
/// Run time that counts as recovered, in seconds.
pub const DEFAULT_STABLE_AFTER_S: u32 = 10;

/// Budget of a program given `untyped` that names no `memory`.
pub const DEFAULT_MEMORY: u64 = 16 * 1024 * 1024;
/// Kernel memory of a program given `untyped` that names no `kernel`.
pub const DEFAULT_KERNEL: u64 = 256 * 1024;
/// Largest `memory`.
pub const MAX_MEMORY: u64 = 4 * 1024 * 1024 * 1024;
/// Largest `kernel`.
pub const MAX_KERNEL: u64 = 64 * 1024 * 1024;

/// Highest scheduling level a program may have: the root task runs above
/// it, so that it sees every ending at once.
pub const MAX_PRIORITY: u8 = 2;
/// Scheduling level of a program that names none.
pub const DEFAULT_PRIORITY: u8 = 1;
/// Largest weight.
pub const MAX_WEIGHT: u32 = 1000;
/// Weight of a program that names none.
pub const DEFAULT_WEIGHT: u32 = 1;

/// Default heap of a program.
pub const DEFAULT_HEAP: u64 = 64 * 1024;
/// Largest heap a manifest may ask for.
pub const MAX_HEAP: u64 = 64 * 1024 * 1024;
const PAGE: u64 = 4096;

/// A checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// System-wide settings.
    pub system: System,
    /// Programs in start order (dependencies first, file order otherwise).
    pub programs: Vec<Program>,
}

/// The `[system]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// What the root task does once every program has ended.
    pub on_idle: OnIdle,
}

/// See [`System::on_idle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnIdle {
    /// Power off, reporting whether every expectation held.
    Shutdown,
    /// Stay up doing nothing.
    Halt,
}

/// A capability the root task hands a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapGrant {
    /// Write to the console.
    Console,
    /// Power the machine off.
    Power,
    /// Allocate memory and create processes.
    Untyped,
}

/// A kind of PCI function a driver can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A virtio block device (vendor 0x1af4, device 0x1001 or 0x1042).
    VirtioBlk,
    /// A virtio network device (vendor 0x1af4, device 0x1000 or 0x1041).
    VirtioNet,
    /// A virtio console (vendor 0x1af4, device 0x1003 or 0x1043).
    VirtioConsole,
}

impl Device {
    /// Every kind, with its manifest name.
    pub const ALL: [(&'static str, Device); 3] = [
        ("virtio-blk", Device::VirtioBlk),
        ("virtio-net", Device::VirtioNet),
        ("virtio-console", Device::VirtioConsole),
    ];

    /// Its manifest name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, d)| *d == self).map(|(n, _)| *n).expect("listed")
    }

    /// Whether a function with these IDs is one: the transitional and the
    /// modern (virtio 1.0) device ID.
    pub fn matches(self, vendor: u16, device: u16) -> bool {
        vendor == 0x1af4
            && match self {
                Device::VirtioBlk => matches!(device, 0x1001 | 0x1042),
                Device::VirtioNet => matches!(device, 0x1000 | 0x1041),
                Device::VirtioConsole => matches!(device, 0x1003 | 0x1043),
            }
    }
}

impl Program {
    /// A program named `name` with every default: no binary, arguments,
    /// capabilities or endpoints, the default heap, budget and schedule,
    /// never restarted. (The root task's process service starts programs
    /// from the boot image this way, then fills in what it gives them.)
    pub fn new(name: &str) -> Program {
        Program {
            name: name.to_string(),
            binary: String::new(),
            args: String::new(),
            cwd: String::new(),
            env: String::new(),
            caps: Vec::new(),
            after: Vec::new(),
            on_dependency_restart: OnDependencyRestart::Reattach,
            heap: DEFAULT_HEAP,
            restart: Restart::Never,
            max_restarts: DEFAULT_MAX_RESTARTS,
            restart_window_s: DEFAULT_RESTART_WINDOW_S,
            stable_after_s: DEFAULT_STABLE_AFTER_S,
            memory: DEFAULT_MEMORY,
            kernel: DEFAULT_KERNEL,
            priority: DEFAULT_PRIORITY,
            weight: DEFAULT_WEIGHT,
            expect: None,
            label: Label::USER,
            endpoints: Vec::new(),
            serves: Vec::new(),
            heartbeat_ms: 0,
            max_backoff_ms: 1000,
            test_kills: 0,
            test_kill_gap_ms: 20,
            test_kills_after_ms: 0,
            devices: Vec::new(),
            legacy: Vec::new(),
        }
    }
}

/// What the supervisor does when the program ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Leave it.
    Never,
    /// Restart it if it faulted or exited non-zero.
    OnFailure,
    /// Restart it whenever it ends.
    Always,
}

/// What the supervisor does with a program when one it runs `after`
/// restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDependencyRestart {
    /// Tell it (a bit on its supervisor notification,
    /// [`exo_abi::dependency_bit`]) and let it attach again.
    Reattach,
    /// Stop it and start it again once what it runs after runs again
    /// (in dependency order, with the programs that run after it).
    Restart,
}

/// How a program is expected to end (used by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `exit(N)`.
    Exit(u32),
    /// Killed by a CPU exception (any, or this vector).
    Fault(Option<u8>),
}

/// One `[program NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Unique name: 1-32 of `a-z 0-9 - _`.
    pub name: String,
    /// File in the boot image.
    pub binary: String,
    /// Argument text.
    pub args: String,
    /// The directory it starts in (empty: `/`); not from manifests: the
    /// process service sets it for the programs it starts.
    pub cwd: String,
    /// Its environment (`NAME=VALUE` lines; empty: none); not from
    /// manifests: the process service passes its client's on.
    pub env: String,
    /// Granted capabilities.
    pub caps: Vec<CapGrant>,
    /// Programs to start first.
    pub after: Vec<String>,
    /// What happens to it when one of `after` restarts.
    pub on_dependency_restart: OnDependencyRestart,
    /// Heap bytes.
    pub heap: u64,
    /// Restart policy.
    pub restart: Restart,
    /// Restarts allowed within [`Program::restart_window_s`].
    pub max_restarts: u32,
    /// The window of the restart limit, in seconds.
    pub restart_window_s: u32,
    /// Seconds an instance must run to count as recovered (the restart
    /// count and back-off start again); 0: never.
    pub stable_after_s: u32,
    /// With the `untyped` capability: bytes of memory in its own budget
    /// (a multiple of 4K).
    pub memory: u64,
    /// With the `untyped` capability: bytes of kernel memory its budget
    /// may spend on kernel objects (processes, threads, endpoints ...).
    pub kernel: u64,
    /// Scheduling level, 0 to [`MAX_PRIORITY`].
    pub priority: u8,
    /// Share of the processor among the runnable programs of its level.
    pub weight: u32,
    /// Expected ending, if any.
    pub expect: Option<Expect>,
    /// Its label in the security lattice (it may hold only capabilities
    /// it dominates).
    pub label: Label,
    /// Names of the endpoints it is connected to, in slot order.
    pub endpoints: Vec<String>,
    /// The ones among them it serves (receives on): closed for good when
    /// it ends for good, so their callers get `Gone`.
    pub serves: Vec<String>,
    /// Milliseconds between heartbeats (the root task pings the first
    /// endpoint it serves; two unanswered in a row and it is killed and
    /// restarted per its policy); 0: none.
    pub heartbeat_ms: u32,
    /// Longest wait before a restart, in milliseconds (the back-off
    /// doubles from 10 ms up to this).
    pub max_backoff_ms: u32,
    /// Tests of recovery: how many times the root task kills this program
    /// at random moments (each time once the instance runs again).
    pub test_kills: u32,
    /// Tests of recovery: the mean milliseconds between those kills (each
    /// wait is random between a tenth of it and 1.9 times it).
    pub test_kill_gap_ms: u32,
    /// Tests of recovery: milliseconds after the first start before the
    /// first of those waits begins.
    pub test_kills_after_ms: u32,
    /// The devices it drives, in slot order.
    pub devices: Vec<Device>,
    /// The legacy devices it drives, in slot order.
    pub legacy: Vec<Legacy>,
}

/// A manifest error with the line it was found on (0: whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// 1-based line number, 0 for errors about the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "manifest: {}", self.message)
        } else {
            write!(f, "manifest line {}: {}", self.line, self.message)
        }
    }
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ManifestError> {
    Err(ManifestError { line, message: message.into() })
}

enum Section {
    None,
    System,
    Program(usize),
}

fn valid_name(n: &str) -> bool {
    (1..=32).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_size(v: &str) -> Option<u64> {
    let (num, mul) = match v.as_bytes().last()? {
        b'K' | b'k' => (&v[..v.len() - 1], 1024),
        b'M' | b'm' => (&v[..v.len() - 1], 1024 * 1024),
        b'G' | b'g' => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_expect(v: &str) -> Option<Expect> {
    let mut w = v.split_whitespace();
    let e = match (w.next()?, w.next()) {
        ("exit", Some(n)) => Expect::Exit(n.parse().ok()?),
        ("fault", None) => Expect::Fault(None),
        ("fault", Some(n)) => Expect::Fault(Some(n.parse().ok().filter(|v: &u8| *v < 32)?)),
        _ => return None,
    };
    w.next().is_none().then_some(e)
}

/// Strips a trailing ` # comment` (a `#` preceded by white space).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Parses and checks a manifest.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let mut system = System { on_idle: OnIdle::Halt };
    let mut programs: Vec<(usize, Program, Vec<&str>)> = Vec::new();
    let mut section = Section::None;
    let mut seen_system = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return err(n, "section header must end with `]`");
            };
            let mut words = inner.split_whitespace();
            section = match (words.next(), words.next(), words.next()) {
                (Some("system"), None, _) => {
                    if seen_system {
                        return err(n, "second [system] section");
                    }
                    seen_system = true;
                    Section::System
                }
                (Some("program"), Some(name), None) => {
                    if !valid_name(name) {
                        return err(n, format!("invalid program name `{name}` (1-32 of a-z, 0-9, -, _)"));
                    }
                    if programs.iter().any(|p| p.1.name == name) {
                        return err(n, format!("program `{name}` is defined twice"));
                    }
                    programs.push((n, Program::new(name), Vec::new()));
                    Section::Program(programs.len() - 1)
                }
                (Some("program"), None, _) => return err(n, "[program] needs a name: [program NAME]"),
                _ => return err(n, format!("unknown section `[{inner}]` (expected [system] or [program NAME])")),
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return err(n, format!("expected `key = value`, found `{line}`"));
        };
        let (key, value) = (key.trim(), value.trim());
        match section {
            Section::None => return err(n, format!("`{key}` outside any section")),
            Section::System => match key {
                "on_idle" => {
                    system.on_idle = match value {
                        "shutdown" => OnIdle::Shutdown,
                        "halt" => OnIdle::Halt,
                        _ => return err(n, format!("on_idle must be shutdown or halt, not `{value}`")),
                    }
                }
                _ => return err(n, format!("unknown key `{key}` in [system]")),
            },
            Section::Program(p) => {
                let (_, prog, keys) = &mut programs[p];
                if keys.contains(&key) {
                    return err(n, format!("`{key}` given twice in [program {}]", prog.name));
                }
                set_key(n, prog, key, value)?;
                keys.push(key);
            }
        }
    }
    if programs.is_empty() {
        return err(0, "no [program] sections");
    }
    for (line, p, _) in &programs {
        if p.binary.is_empty() {
            return err(*line, format!("[program {}] has no `binary`", p.name));
        }
        if let Some(s) = p.serves.iter().find(|s| !p.endpoints.contains(s)) {
            return err(*line, format!("[program {}] serves `{s}`, which is not among its endpoints", p.name));
        }
        if p.heartbeat_ms > 0 && p.serves.is_empty() {
            return err(*line, format!("[program {}] has a heartbeat but serves no endpoint to ping", p.name));
        }
        for d in &p.legacy {
            if let Some((_, other, _)) = programs.iter().find(|(_, q, _)| q.name != p.name && q.legacy.contains(d)) {
                return err(
                    *line,
                    format!("[program {}] and [program {}] both list `{}`", p.name, other.name, d.name()),
                );
            }
        }
        for a in &p.after {
            if a == &p.name {
                return err(*line, format!("[program {}] cannot start after itself", p.name));
            }
            if !programs.iter().any(|q| &q.1.name == a) {
                return err(*line, format!("[program {}] starts after unknown program `{a}`", p.name));
            }
        }
    }
    let programs = start_order(programs.into_iter().map(|(_, p, _)| p).collect())?;
    Ok(Manifest { system, programs })
}

/// A duration in milliseconds: `250ms` or `2s` (or `2`: seconds).
fn parse_ms(value: &str) -> Option<u32> {
    match value.strip_suffix("ms") {
        Some(v) => v.trim().parse::<u32>().ok(),
        None => value.strip_suffix('s').unwrap_or(value).trim().parse::<u32>().ok()?.checked_mul(1000),
    }
}

fn set_key(n: usize, prog: &mut Program, key: &str, value: &str) -> Result<(), ManifestError> {
    match key {
        "binary" => {
            if value.is_empty() || value.contains('/') {
                return err(n, format!("invalid binary name `{value}`"));
            }
            prog.binary = value.to_string();
        }
        "args" => prog.args = value.to_string(),
        "caps" => {
            for c in list(value) {
                let grant = match c {
                    "console" => CapGrant::Console,
                    "power" => CapGrant::Power,
                    "untyped" => CapGrant::Untyped,
                    _ => return err(n, format!("unknown capability `{c}` (console, power, untyped)")),
                };
                if prog.caps.contains(&grant) {
                    return err(n, format!("capability `{c}` listed twice"));
                }
                prog.caps.push(grant);
            }
        }
        "after" => {
            for a in list(value) {
                if prog.after.iter().any(|x| x == a) {
                    return err(n, format!("`{a}` listed twice in after"));
                }
                if prog.after.len() == MAX_AFTER {
                    return err(n, format!("more than {MAX_AFTER} programs in after"));
                }
                prog.after.push(a.to_string());
            }
        }
        "heap" => {
            let size = parse_size(value)
                .ok_or_else(|| ManifestError { line: n, message: format!("invalid heap size `{value}`") })?;
            if size == 0 || size % PAGE != 0 || size > MAX_HEAP {
                return err(n, format!("heap must be a non-zero multiple of 4K up to 64M, not `{value}`"));
            }
            prog.heap = size;
        }
        "memory" | "kernel" => {
            let max = if key == "memory" { MAX_MEMORY } else { MAX_KERNEL };
            let size = parse_size(value)
                .filter(|s| *s > 0 && *s <= max && (key == "kernel" || s % PAGE == 0))
                .ok_or_else(|| ManifestError {
                    line: n,
                    message: format!("{key} must be a size (K/M/G suffix) from 1 to {}M, not `{value}`", max >> 20),
                })?;
            if key == "memory" {
                prog.memory = size;
            } else {
                prog.kernel = size;
            }
        }
        "priority" => {
            prog.priority = match value.parse::<u8>() {
                Ok(p) if p <= MAX_PRIORITY => p,
                _ => return err(n, format!("priority must be 0 to {MAX_PRIORITY}, not `{value}`")),
            }
        }
        "weight" => {
            prog.weight = match value.parse::<u32>() {
                Ok(w) if (1..=MAX_WEIGHT).contains(&w) => w,
                _ => return err(n, format!("weight must be 1 to {MAX_WEIGHT}, not `{value}`")),
            }
        }
        "max_restarts" => {
            prog.max_restarts = match value.parse::<u32>() {
                Ok(n) if n <= 100 => n,
                _ => return err(n, format!("max_restarts must be 0 to 100, not `{value}`")),
            }
        }
        "max_backoff" => {
            prog.max_backoff_ms = match parse_ms(value) {
                Some(ms) if (10..=60_000).contains(&ms) => ms,
                _ => return err(n, format!("max_backoff must be 10ms to 60s, not `{value}`")),
            };
        }
        "test_kills" => {
            prog.test_kills = match value.parse::<u32>() {
                Ok(k) if k <= 10_000 => k,
                _ => return err(n, format!("test_kills must be 0 to 10000, not `{value}`")),
            };
        }
        "test_kill_gap" => {
            prog.test_kill_gap_ms = match parse_ms(value) {
                Some(ms) if (10..=600_000).contains(&ms) => ms,
                _ => return err(n, format!("test_kill_gap must be 10ms to 600s, not `{value}`")),
            };
        }
        "test_kills_after" => {
            prog.test_kills_after_ms = match parse_ms(value) {
                Some(ms) if ms <= 600_000 => ms,
                _ => return err(n, format!("test_kills_after must be 0 to 600s, not `{value}`")),
            };
        }
        "heartbeat" => {
            let Some(ms) = parse_ms(value).filter(|m| *m == 0 || (10..=600_000).contains(m)) else {
                return err(n, format!("heartbeat must be 10ms to 600s (e.g. `500ms`, `2s`), or 0, not `{value}`"));
            };
            prog.heartbeat_ms = ms;
        }
        "restart_window" | "stable_after" => {
            let secs = value.strip_suffix('s').unwrap_or(value).trim().parse::<u32>().ok();
            let (min, what) = if key == "restart_window" { (1, "restart_window") } else { (0, "stable_after") };
            let Some(secs) = secs.filter(|s| (min..=3600).contains(s)) else {
                return err(n, format!("{what} must be {min} to 3600 seconds (e.g. `60s`), not `{value}`"));
            };
            if key == "restart_window" {
                prog.restart_window_s = secs;
            } else {
                prog.stable_after_s = secs;
            }
        }
        "on_dependency_restart" => {
            prog.on_dependency_restart = match value {
                "reattach" => OnDependencyRestart::Reattach,
                "restart" => OnDependencyRestart::Restart,
                _ => return err(n, format!("on_dependency_restart must be reattach or restart, not `{value}`")),
            };
        }
        "restart" => {
            prog.restart = match value {
                "never" => Restart::Never,
                "on-failure" => Restart::OnFailure,
                "always" => Restart::Always,
                _ => return err(n, format!("restart must be never, on-failure or always, not `{value}`")),
            }
        }
        "expect" => {
            prog.expect = Some(parse_expect(value).ok_or_else(|| ManifestError {
                line: n,
                message: format!("expect must be `exit N`, `fault` or `fault N` (N < 32), not `{value}`"),
            })?)
        }
        "endpoints" => {
            for e in list(value) {
                if !valid_name(e) {
                    return err(n, format!("invalid endpoint name `{e}` (1-32 of a-z, 0-9, -, _)"));
                }
                if prog.endpoints.iter().any(|x| x == e) {
                    return err(n, format!("endpoint `{e}` listed twice"));
                }
                prog.endpoints.push(e.to_string());
            }
            if prog.endpoints.len() > MAX_ENDPOINTS {
                return err(n, format!("more than {MAX_ENDPOINTS} endpoints"));
            }
        }
        "serves" => {
            for e in list(value) {
                if prog.serves.iter().any(|x| x == e) {
                    return err(n, format!("endpoint `{e}` listed twice in serves"));
                }
                prog.serves.push(e.to_string());
            }
        }
        "devices" => {
            for d in list(value) {
                let Some((_, device)) = Device::ALL.iter().find(|(n, _)| *n == d) else {
                    let names: Vec<&str> = Device::ALL.iter().map(|(n, _)| *n).collect();
                    return err(n, format!("unknown device `{d}` (one of {})", names.join(", ")));
                };
                prog.devices.push(*device);
            }
            if prog.devices.len() > MAX_DEVICES {
                return err(n, format!("more than {MAX_DEVICES} devices"));
            }
        }
        "legacy" => {
            for d in list(value) {
                let Some((_, device)) = Legacy::ALL.iter().find(|(n, _)| *n == d) else {
                    let names: Vec<&str> = Legacy::ALL.iter().map(|(n, _)| *n).collect();
                    return err(n, format!("unknown legacy device `{d}` (one of {})", names.join(", ")));
                };
                if prog.legacy.contains(device) {
                    return err(n, format!("legacy device `{d}` listed twice"));
                }
                prog.legacy.push(*device);
            }
        }
        "label" => {
            prog.label = Label::from_name(value).ok_or_else(|| {
                let names: Vec<&str> = Label::NAMED.iter().map(|(n, _)| *n).collect();
                ManifestError { line: n, message: format!("unknown label `{value}` (one of {})", names.join(", ")) }
            })?
        }
        _ => return err(n, format!("unknown key `{key}` in [program {}]", prog.name)),
    }
    Ok(())
}

/// Orders programs so each comes after everything in its `after` list,
/// keeping file order where free; reports a cycle by name.
fn start_order(mut pending: Vec<Program>) -> Result<Vec<Program>, ManifestError> {
    let mut done: Vec<Program> = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|p| p.after.iter().all(|a| done.iter().any(|d| &d.name == a)));
        match ready {
            Some(i) => done.push(pending.remove(i)),
            None => {
                let names: Vec<&str> = pending.iter().map(|p| p.name.as_str()).collect();
                return err(0, format!("dependency cycle among: {}", names.join(", ")));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
