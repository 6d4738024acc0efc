//! Kernel objects: processes, threads, memory objects, untyped budgets.

use crate::arch::trap::UserContext;
use alloc::string::String;
use alloc::vec::Vec;
use core::num::NonZeroU32;
use exo_abi::{CapKind, ExitStatus, MSG_WORDS};
use exo_kcore::captable::{Cap, CapTable};
use exo_kcore::cdt::CapId;
use exo_kcore::fifo::Fifo;
use exo_kcore::lattice::Label;
use exo_kcore::pci::Bdf;

/// Index of a process. An entry is reused only once the process has ended
/// and no capability names it any more, so an id held anywhere never
/// names a different process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId(pub u32);

/// Index of a memory object; reused only after every reference is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemId(pub u32);

/// A thread: slot index plus generation, so a stale id never matches a
/// newer thread in the same slot. Generations start at 1, which makes an
/// `Option<ThreadId>` one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId {
    /// Slot in the thread table.
    pub index: u32,
    /// Generation of the slot when the thread was created.
    pub generation: NonZeroU32,
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
    /// An IPC endpoint, with the badge this capability stamps on messages.
    Endpoint(EpId, u64),
    /// A notification (asynchronous bit-set signal).
    Notification(NtfnId),
    /// Configuration space of every PCI function.
    PciBus,
    /// Configuration space of one PCI function.
    PciFunction(Bdf),
    /// Legacy I/O ports and interrupt lines (root task).
    Platform,
    /// I/O ports `[first, first + count)`.
    IoPorts(u16, u16),
    /// One I/O APIC interrupt line.
    IrqLine(u8),
}

/// What raises a bound interrupt vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqSource {
    /// A PCI function's MSI or MSI-X message.
    Msi(Bdf),
    /// An I/O APIC input line, masked from each interrupt until `irq_ack`.
    Line(u8),
}

/// Index of an endpoint; reused only after every capability is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpId(pub u32);

/// Index of a notification; reused only after every capability is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtfnId(pub u32);

/// What a capability-table slot holds besides rights: the object, its
/// place in the security lattice and its node in the derivation tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KCap {
    /// What it names.
    pub object: Object,
    /// Its label.
    pub label: Label,
    /// Its derivation-tree node.
    pub node: CapId,
}

/// Where a capability lives: process and slot.
pub type CapLocation = (ProcId, u64);

impl Object {
    /// True for the kinds hardware is bound through (interrupts by
    /// `irq_bind` and `irq_line_bind`, ports by `ioports_map`): only
    /// deleting one of those can end a binding.
    pub fn may_bind_hardware(&self) -> bool {
        matches!(self, Object::PciFunction(_) | Object::PciBus | Object::IrqLine(_) | Object::IoPorts(..))
    }

    /// The kind reported to user space.
    pub fn kind(&self) -> CapKind {
        match self {
            Object::Process(_) => CapKind::Process,
            Object::Memory(_) => CapKind::Memory,
            Object::Untyped(_) => CapKind::Untyped,
            Object::Console => CapKind::Console,
            Object::Power => CapKind::Power,
            Object::Endpoint(..) => CapKind::Endpoint,
            Object::Notification(_) => CapKind::Notification,
            Object::PciBus => CapKind::PciBus,
            Object::PciFunction(_) => CapKind::PciFunction,
            Object::Platform => CapKind::Platform,
            Object::IoPorts(..) => CapKind::IoPorts,
            Object::IrqLine(_) => CapKind::IrqLine,
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
    /// Distinguishes this object from later ones in the same slot (for
    /// sealed tokens).
    pub generation: u32,
    /// Device registers (a PCI BAR), not RAM: mapped uncached.
    pub device: bool,
}

/// A budget: the pages that memory objects, processes and page tables are
/// charged to, and the bytes of kernel memory (the kernel's heap) that
/// the objects made with it may take: processes with their capability
/// tables, threads, endpoints, notifications, memory-object records,
/// mappings, sealing keys, other budgets. Every kernel object a program
/// causes is paid from a budget it was given, so no program can exhaust
/// the kernel, only its own budget (seL4 gets the same from retyping
/// untyped memory into kernel objects).
///
/// A budget split from another (`parent`) goes back to it when its last
/// capability goes: what it has left at once, what its objects still
/// hold as they are freed. So a supervisor that starts and reaps programs
/// (the shell's) gets its memory back each time.
pub struct Untyped {
    /// Pages still available.
    pub remaining: u64,
    /// Kernel-memory bytes still available.
    pub kernel: u64,
    /// Capabilities that name it.
    pub refs: u32,
    /// The budget it was split from.
    pub parent: Option<u32>,
}

impl Untyped {
    /// A budget of `pages` and `kernel` bytes, split from `parent`.
    pub fn new(remaining: u64, kernel: u64, parent: Option<u32>) -> Untyped {
        Untyped { remaining, kernel, refs: 0, parent }
    }

    /// Gone back to its parent: credits go there.
    pub fn merged(&self) -> bool {
        self.refs == 0 && self.parent.is_some()
    }
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
    /// The capability that authorised the mapping: revoking it (or an
    /// ancestor) unmaps. `None` once no capability stands behind it.
    pub via: Option<CapId>,
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
    pub caps: CapTable<KCap>,
    /// The process's place in the security lattice: it may hold only
    /// capabilities whose label it dominates.
    pub label: Label,
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
    /// Page-table pages (below the top level) charged to `charged_to`
    /// for this address space, credited back when it ends.
    pub table_pages: u64,
    /// Capabilities naming this process (its own included): the entry is
    /// reused only after it has ended and this is 0.
    pub refs: u32,
    /// TSC ticks of its threads that ended (`Kernel::cpu_ticks_of` adds
    /// the live ones'; reported at shutdown).
    pub cpu_ticks: u64,
    /// Distinguishes it from earlier and later processes in the same entry
    /// (for sealed tokens).
    pub generation: u32,
    /// Port ranges its threads may use directly (`ioports_map`).
    pub io_maps: Vec<IoMap>,
}

/// Ports `[first, first + count)` a process may use with `in`/`out`, for
/// as long as the capability `via` lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoMap {
    pub first: u16,
    pub count: u16,
    pub via: exo_kcore::cdt::CapId,
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
    /// Waiting to hand a message to a receiver on this endpoint.
    Sending(EpId),
    /// Waiting for a message on this endpoint (or a signal on the
    /// notification, if bound).
    Receiving(EpId, Option<NtfnId>),
    /// Waiting for the reply to call number `.0` (numbers are never
    /// reused, so a late reply to an earlier call cannot answer this one).
    AwaitingReply(u64),
    /// Waiting for a signal.
    WaitingSignal(NtfnId),
}

/// A message in flight.
#[derive(Clone, Copy, Debug, Default)]
pub struct Message {
    /// The data words.
    pub words: [u64; MSG_WORDS],
    /// Slot of a capability the sender passes along.
    pub cap: Option<u64>,
    /// True for `call` (the sender waits for a reply).
    pub is_call: bool,
    /// The badge of the sender's endpoint capability.
    pub badge: u64,
}

/// An IPC endpoint: threads queue here to send or to receive.
pub struct Endpoint {
    /// Threads blocked in send/call.
    pub senders: Fifo<ThreadId>,
    /// Threads blocked in recv.
    pub receivers: Fifo<ThreadId>,
    /// Capabilities naming it.
    pub refs: u32,
    /// See [`MemObject::generation`].
    pub generation: u32,
    /// The budget its kernel memory was charged to.
    pub charged: Option<u32>,
    /// Closed for good (`endpoint_close`): every operation gets `Gone`.
    pub closed: bool,
}

/// A notification: a word of pending bits and the threads waiting for any.
pub struct Notification {
    /// Signalled bits not yet collected.
    pub bits: u64,
    /// Threads blocked in wait (or in recv with this notification bound).
    pub waiters: Fifo<ThreadId>,
    /// Capabilities naming it.
    pub refs: u32,
    /// See [`MemObject::generation`].
    pub generation: u32,
    /// The budget its kernel memory was charged to.
    pub charged: Option<u32>,
}

/// A thread of execution in a process.
pub struct Thread {
    /// Owning process.
    pub process: ProcId,
    /// The process's top-level page table (constant while it lives),
    /// kept here so a switch needs no process lookup.
    pub pml4: u64,
    /// The slots of the process's capability table, kept here for the IPC
    /// fast path. Valid while the thread lives: a table's slots never move
    /// ([`CapTable`]), and the process replaces its table only once it has
    /// no threads left (`Kernel::exit_process`).
    pub caps: *const [Option<Cap<KCap>>],
    /// Generation (see [`ThreadId`]).
    pub generation: NonZeroU32,
    /// Saved user registers and FPU/SSE state.
    pub ctx: UserContext,
    /// Scheduling state.
    pub state: ThreadState,
    /// When a timed wait ends (clock ns), if the thread waits with a
    /// timeout.
    pub deadline: Option<u64>,
    /// The message this thread is trying to send.
    pub outgoing: Message,
    /// The call this thread owes a reply (one-shot: cleared by reply).
    pub reply_to: Option<Owed>,
    /// The budget its kernel memory was charged to (its process's).
    pub charged: Option<u32>,
    /// Its FS base (thread-local storage), loaded when it runs.
    pub fs_base: u64,
    /// TSC ticks it had the CPU, the kernel's work for it included
    /// (`sched::charge`); its process's when it ends.
    pub cpu_ticks: u64,
}

/// A call a server thread has taken and not yet answered: who made it,
/// and its number. The reply reaches the caller only while it still waits
/// for exactly this call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owed {
    /// The calling thread.
    pub caller: ThreadId,
    /// The call's number.
    pub call: u64,
}

/// A device interrupt vector bound to a notification (`irq_bind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqBinding {
    /// What raises it.
    pub source: IrqSource,
    /// Signalled when the vector fires (the binding holds a reference).
    pub notification: NtfnId,
    /// The bits it signals.
    pub bits: u64,
    /// The PCI capability it was bound through: the binding ends with it.
    pub via: CapId,
    /// Interrupts delivered so far.
    pub count: u64,
}
