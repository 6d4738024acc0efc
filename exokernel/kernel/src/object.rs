//! Kernel objects: processes, threads, memory objects, untyped budgets.

use crate::arch::cpu::FpuState;
use crate::arch::trap::TrapFrame;
use alloc::string::String;
use alloc::vec::Vec;
use exo_abi::{CapKind, ExitStatus};
use exo_kcore::captable::CapTable;

/// Index of a process. Process entries are never reused, so an id never
/// names a different process later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId(pub u32);

/// Index of a memory object; reused only after every reference is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemId(pub u32);

/// A thread: slot index plus generation, so a stale id never matches a
/// newer thread in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId {
    /// Slot in the thread table.
    pub index: u32,
    /// Generation of the slot when the thread was created.
    pub generation: u32,
}

/// What a capability names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A process.
    Process(ProcId),
    /// A memory object.
    Memory(MemId),
    /// An untyped budget (index into the untyped table).
    Untyped(u32),
    /// The console.
    Console,
    /// Power control.
    Power,
}

impl Object {
    /// The kind reported to user space.
    pub fn kind(&self) -> CapKind {
        match self {
            Object::Process(_) => CapKind::Process,
            Object::Memory(_) => CapKind::Memory,
            Object::Untyped(_) => CapKind::Untyped,
            Object::Console => CapKind::Console,
            Object::Power => CapKind::Power,
        }
    }
}

/// A set of physical frames, mapped and named by reference-counted users
/// (capabilities and mappings). Freed when the count drops to zero.
pub struct MemObject {
    /// The frames, in address order of the mapping.
    pub frames: Vec<u64>,
    /// Capabilities + mappings that refer to this object.
    pub refs: u32,
    /// The untyped budget to credit on free; `None` for memory the kernel
    /// does not own (the boot image).
    pub untyped: Option<u32>,
}

/// A page budget that memory objects and processes are charged to.
pub struct Untyped {
    /// Pages still available.
    pub remaining: u64,
}

/// A mapped memory object in a process.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    /// First virtual address.
    pub va: u64,
    /// Number of pages.
    pub pages: u64,
    /// The object mapped.
    pub mem: MemId,
}

/// Whether a process still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// It has threads (or may get some).
    Alive,
    /// It ended; its resources are freed, only the status stays.
    Exited(ExitStatus),
}

/// A protection domain: address space, capabilities, threads.
pub struct Process {
    /// Name for reports.
    pub name: String,
    /// Top-level page table (0 once torn down).
    pub pml4: u64,
    /// Capability table.
    pub caps: CapTable<Object>,
    /// Live threads.
    pub threads: Vec<ThreadId>,
    /// Mapped memory objects.
    pub mappings: Vec<Mapping>,
    /// Alive or exited.
    pub state: ProcState,
    /// Threads blocked in `process_wait` on this process.
    pub waiters: Vec<ThreadId>,
    /// Untyped budget charged for the process itself, if any.
    pub charged_to: Option<u32>,
}

/// Why a thread is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// On the run queue or running.
    Runnable,
    /// Sleeping until this clock value (ns).
    Sleeping(u64),
    /// Waiting for a process to exit.
    Waiting(ProcId),
}

/// A thread of execution in a process.
pub struct Thread {
    /// Owning process.
    pub process: ProcId,
    /// Generation (see [`ThreadId`]).
    pub generation: u32,
    /// Saved user registers.
    pub frame: TrapFrame,
    /// Saved FPU/SSE state, valid when `fpu_saved`.
    pub fpu: FpuState,
    /// False while the thread's FPU state lives only in the CPU (it
    /// entered through SYSCALL and has not been switched away from).
    pub fpu_saved: bool,
    /// Scheduling state.
    pub state: ThreadState,
}
