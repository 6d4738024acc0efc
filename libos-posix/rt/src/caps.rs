//! Capabilities as typed handles: the thing you hold is a `Console`, a
//! `Memory`, a `Process`, never a bare slot number.

use crate::sys::call;
use exo_abi::{slot, CapKind, Error, ExitStatus, Rights, Sys};

/// Kind, rights and size of a capability, from `cap_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    /// What it names.
    pub kind: Option<CapKind>,
    /// Its rights.
    pub rights: Rights,
    /// Pages, for memory objects.
    pub pages: u64,
}

/// Asks the kernel what slot `s` holds.
pub fn info(s: u64) -> Result<CapInfo, Error> {
    let v = call(Sys::CapInfo, [s, 0, 0, 0, 0, 0])?;
    Ok(CapInfo {
        kind: CapKind::from_u32((v >> 32) as u32 & 0xff),
        rights: Rights(v as u32),
        pages: v >> 40,
    })
}

/// Drops the capability in slot `s`.
pub fn delete(s: u64) -> Result<(), Error> {
    call(Sys::CapDelete, [s, 0, 0, 0, 0, 0]).map(|_| ())
}

macro_rules! handle {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(u64);
        impl $name {
            /// Wraps a slot the caller knows holds this kind of capability
            /// (the kernel still checks on every use).
            pub const fn from_slot(slot: u64) -> Self {
                Self(slot)
            }
            /// The slot number.
            pub const fn slot(self) -> u64 {
                self.0
            }
        }
    };
}

handle!(
    /// The console.
    Console
);
handle!(
    /// A process.
    Process
);
handle!(
    /// A memory object.
    Memory
);
handle!(
    /// An untyped memory budget.
    Untyped
);
handle!(
    /// Power control.
    Power
);

/// The console at its well-known slot.
pub const CONSOLE: Console = Console(slot::CONSOLE);
/// This process.
pub const SELF: Process = Process(slot::SELF);

impl Console {
    /// Writes bytes; returns how many.
    pub fn write(self, bytes: &[u8]) -> Result<u64, Error> {
        call(
            Sys::ConsoleWrite,
            [self.0, bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0],
        )
    }
}

impl Untyped {
    /// A new zeroed memory object of `pages` pages.
    pub fn alloc(self, pages: u64) -> Result<Memory, Error> {
        call(Sys::MemAlloc, [self.0, pages, 0, 0, 0, 0]).map(Memory)
    }
    /// A new empty process named `name`.
    pub fn create_process(self, name: &str) -> Result<Process, Error> {
        call(
            Sys::ProcessCreate,
            [self.0, name.as_ptr() as u64, name.len() as u64, 0, 0, 0],
        )
        .map(Process)
    }
}

impl Memory {
    /// Size in pages.
    pub fn pages(self) -> Result<u64, Error> {
        info(self.0).map(|i| i.pages)
    }
}

impl Process {
    /// Maps `mem` at `va` with `exo_abi::map_flags`.
    pub fn map(self, mem: Memory, va: u64, flags: u64) -> Result<(), Error> {
        call(Sys::Map, [self.0, mem.0, va, flags, 0, 0]).map(|_| ())
    }
    /// Removes the mapping starting at `va`.
    pub fn unmap(self, va: u64) -> Result<(), Error> {
        call(Sys::Unmap, [self.0, va, 0, 0, 0, 0]).map(|_| ())
    }
    /// Starts a thread at `entry` with `rsp = stack` and `arg` as its
    /// first argument. Returns the thread id.
    pub fn spawn_thread(self, entry: u64, stack: u64, arg: u64) -> Result<u64, Error> {
        call(Sys::ThreadCreate, [self.0, entry, stack, arg, 0, 0])
    }
    /// Copies our capability in `src` into this process at `dst`, keeping
    /// only `rights`.
    pub fn give(self, src: u64, dst: u64, rights: Rights) -> Result<u64, Error> {
        call(Sys::CapCopy, [self.0, src, dst, rights.0 as u64, 0, 0])
    }
    /// Blocks until the process ends.
    pub fn wait(self) -> Result<ExitStatus, Error> {
        call(Sys::ProcessWait, [self.0, 0, 0, 0, 0, 0]).map(ExitStatus::decode)
    }
}

impl Power {
    /// Powers the machine off with `code` (0 = success).
    pub fn shutdown(self, code: u64) -> Error {
        match call(Sys::Shutdown, [self.0, code, 0, 0, 0, 0]) {
            Ok(_) => Error::InvalidSyscall,
            Err(e) => e,
        }
    }
}
