//! The ExoV6 system-call ABI, described once.
//!
//! Kernel and user space both depend on this crate and on nothing else for
//! the shape of the boundary between them (Hubris keeps its ABI the same
//! way, in `sys/abi`). It holds no code that runs on either side beyond
//! conversions, and no `unsafe`.
//!
//! # Calling convention
//!
//! `syscall` with the number in `rax` and up to six arguments in `rdi`,
//! `rsi`, `rdx`, `r10`, `r8`, `r9`. The result comes back in `rax`: a value
//! `>= 0` is success, a negative value is `-(Error as i64)`. The call
//! clobbers `rcx`, `r11` and everything else the System V C ABI lets a call
//! clobber (`xmm0`-`xmm15` included); `rbx`, `rbp`, `rsp`, `r12`-`r15` are
//! preserved.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod lattice;

/// System-call numbers.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sys {
    /// `console_write(console_cap, ptr, len) -> bytes written`
    ConsoleWrite = 0,
    /// `exit(code) -> !`: ends every thread of the calling process.
    Exit = 1,
    /// `yield()`: gives up the rest of the time slice.
    Yield = 2,
    /// `clock() -> nanoseconds` since boot (monotonic).
    Clock = 3,
    /// `sleep(nanoseconds)`: blocks at least that long.
    Sleep = 4,
    /// `thread_create(process_cap, entry, stack_pointer, arg) -> thread id`:
    /// starts at `entry` with `rsp = stack_pointer` exactly and `rdi = arg`
    /// (a C function wants `rsp % 16 == 8`, a `_start` wants 0).
    ThreadCreate = 5,
    /// `thread_exit() -> !`: ends the calling thread; the last thread to
    /// leave ends the process with code 0.
    ThreadExit = 6,
    /// `mem_alloc(untyped_cap, pages, MemFlags) -> memory cap slot`: zeroed
    /// pages; with [`mem_flags::CONTIGUOUS`], physically contiguous ones
    /// (for DMA).
    MemAlloc = 7,
    /// `map(process_cap, memory_cap, vaddr, MapFlags)`: maps the whole
    /// memory object at `vaddr` in the process named by `process_cap`.
    Map = 8,
    /// `unmap(process_cap, vaddr)`: removes the mapping that starts at
    /// `vaddr`.
    Unmap = 9,
    /// `process_create(untyped_cap, name_ptr, name_len, label) -> process
    /// cap slot`: an empty address space with a capability table whose
    /// slot 0 names itself, at `label` (dominated by the caller's); its
    /// top-level page table is charged to the untyped.
    ProcessCreate = 10,
    /// `cap_copy(dst_process_cap, src_slot, dst_slot | NO_CAP, rights,
    /// label | NO_CAP, badge | NO_CAP) -> dst_slot`: copies a capability of
    /// the caller into another process (or itself), keeping only `rights`
    /// (rights never grow), with `label` (never above the source's; the
    /// destination process must dominate it) and, for an unbadged
    /// endpoint, a badge. Needs `GRANT` on the source. `NO_CAP` as the
    /// destination slot picks a free one.
    CapCopy = 11,
    /// `process_wait(process_cap) -> ExitStatus`: blocks until it exits.
    ProcessWait = 12,
    /// `cap_info(slot) -> (pages << 40) | (kind << 32) | rights`, where
    /// `pages` is the size of a memory object, or what is left of an
    /// untyped budget (page tables of the processes charged to it count
    /// against it too), the `bdf` of a PCI function, 0 for other kinds.
    CapInfo = 13,
    /// `shutdown(power_cap, code) -> !`: powers the machine off; QEMU exits
    /// with a status derived from `code` (see [`qemu_exit_status`]).
    Shutdown = 14,
    /// `cap_delete(slot)`: drops the capability in `slot`.
    CapDelete = 15,
    /// `cap_revoke(slot) -> count`: deletes every capability derived from
    /// the one in `slot`, in every process, and undoes the mappings they
    /// made. The capability itself stays.
    CapRevoke = 16,
    /// `endpoint_create(untyped_cap) -> endpoint cap slot`
    EndpointCreate = 17,
    /// `call(endpoint_cap, w0, w1, w2, cap_slot | NO_CAP, timeout_ns)`:
    /// sends and waits for the reply. See [`ipc`] for the registers.
    Call = 18,
    /// `recv(endpoint_cap, notification_cap | NO_CAP, timeout_ns)`
    Recv = 19,
    /// `reply(w0, w1, w2, cap_slot | NO_CAP)`: answers the last call
    /// received (one-shot).
    Reply = 20,
    /// `reply_recv(slots, w0, w1, w2, cap_slot | NO_CAP, timeout)`: reply,
    /// then receive; `slots` ([`reply_recv_slots`]) names the endpoint and,
    /// as `recv`'s second argument does, a notification whose signals end
    /// the receive too.
    ReplyRecv = 21,
    /// `send(endpoint_cap, w0, w1, w2, cap_slot | NO_CAP, timeout_ns)`:
    /// one-way; blocks until a receiver takes the message.
    Send = 22,
    /// `notification_create(untyped_cap) -> notification cap slot`
    NotificationCreate = 23,
    /// `signal(notification_cap, bits)`: ORs bits in; wakes one waiter.
    Signal = 24,
    /// `wait(notification_cap, timeout_ns) -> bits` (and clears them).
    Wait = 25,
    /// `cap_seal(slot, out_ptr, key_id, nonce)`: writes a
    /// [`SEALED_TOKEN_LEN`]-byte token for the capability (needs `GRANT`),
    /// MACed with sealing key `key_id` (0 = the kernel's boot key).
    CapSeal = 26,
    /// `cap_unseal(token_ptr, dst_slot | NO_CAP) -> slot`: checks a token
    /// and installs the capability it stands for, if its object still
    /// exists and the caller dominates its label.
    CapUnseal = 27,
    /// `seal_key_establish(public_key_ptr, ciphertext_out_ptr) -> key_id`:
    /// encapsulates fresh randomness to the caller's ML-KEM-768 public key
    /// ([`KEM_PUBLIC_LEN`] bytes), writes the ciphertext
    /// ([`KEM_CIPHERTEXT_LEN`] bytes) and keeps the derived key as a new
    /// sealing key, which the caller can also derive, and so verify tokens
    /// on its own.
    SealKeyEstablish = 28,
    /// `pci_open(pci_bus_cap, bdf, dst_slot | NO_CAP) -> slot`: a
    /// capability to the one PCI function at `bdf` (`bus << 8 | device << 3
    /// | function`), derived from the bus capability (same rights and
    /// label; revoking the bus capability revokes it). `InvalidArgument`
    /// if no function answers there.
    PciOpen = 29,
    /// `pci_config_read(pci_cap, bdf, offset, width) -> value`: reads 1, 2
    /// or 4 bytes (aligned) of the function's first 256 configuration
    /// bytes. A function capability reaches only its own `bdf`. Needs
    /// `READ`.
    PciConfigRead = 30,
    /// `pci_config_write(pci_cap, bdf, offset, width, value)`: writes, as
    /// for `pci_config_read`. Needs `WRITE`. The kernel refuses
    /// (`NoRights`) writes to the IDs, class, header type, BIST, BARs,
    /// expansion ROM and bridge windows (`exo_kcore::pci`): the command
    /// and status registers, the interrupt line and everything from 0x40
    /// (capabilities: MSI, MSI-X, virtio) stay writable.
    PciConfigWrite = 31,
    /// `pci_bar(pci_cap, bdf, bar, dst_slot | NO_CAP) -> slot`: a memory
    /// capability to memory BAR `bar` (0-5) of the function: its device
    /// registers, mapped uncached, `READ` and `WRITE` (and `GRANT` if the
    /// PCI capability has it), derived from the PCI capability (revoking
    /// that unmaps them). `WrongType` for an I/O BAR; `InvalidArgument`
    /// for an unimplemented BAR, one smaller than a page or not page
    /// aligned (a page would expose other registers), or one that lies
    /// over RAM.
    PciBar = 32,
    /// `mem_phys(memory_cap, page) -> physical address` of page `page` of
    /// the memory object (for DMA: a device needs bus addresses). The
    /// pages of a memory object never move while it exists.
    MemPhys = 33,
    /// `irq_bind(pci_cap, bdf, notification_cap, bits) -> vector`: a free
    /// interrupt vector whose interrupts signal `bits` on the
    /// notification, for the function (`WRITE` on both capabilities).
    /// The driver programs its device's MSI or MSI-X entry with address
    /// [`MSI_ADDRESS`] and data = the vector. The binding lasts as long as
    /// the PCI capability used here: deleting or revoking it frees the
    /// vector. `Exhausted` when no vector is free, or the function has
    /// [`MAX_VECTORS_PER_FUNCTION`] already.
    IrqBind = 34,
    /// `sched_set(process_cap, priority, weight)`: the process's priority
    /// level (0 to 3; strict: a runnable thread of a higher level always
    /// runs first) and its weight (1 to 1000: its share among the
    /// runnable processes of its level, dealt by the golden-ratio
    /// sequence). Needs `CONTROL`; `NoRights` for a priority above the
    /// caller's own. New processes start at level 1 (or their creator's,
    /// if lower) with weight 1; the root task runs at 3.
    SchedSet = 35,
    /// `untyped_split(untyped_cap, pages, kernel_bytes) -> untyped cap
    /// slot`: a new budget of `pages` pages and `kernel_bytes` bytes of
    /// kernel memory, taken from the one named (which also pays a little
    /// kernel memory for the new budget's record), as seL4's retype
    /// carves untyped memory. The new capability is derived from the old
    /// one (revoking that revokes it). `OutOfMemory` if the source has
    /// not that much left. Needs `WRITE`.
    UntypedSplit = 36,
    /// `endpoint_close(endpoint_cap)`: closes the endpoint for good: every
    /// thread waiting on it, and every later send, call or receive on it,
    /// gets `Gone`. Needs `CONTROL`, which the root task keeps for itself
    /// (programs get their endpoints without it): it closes the endpoints
    /// of a program it has given up on, so callers get a definite error
    /// instead of waiting forever.
    EndpointClose = 37,
    /// `process_kill(process_cap, code)`: ends the process at once, as if
    /// it had exited with `code` (its waiters see that status). Needs
    /// `CONTROL`; a process ends itself with `exit`. The root task's
    /// supervisor kills a program that stopped answering its heartbeats.
    /// `Dead` if it has already ended.
    ProcessKill = 38,
    /// `thread_set_tls(base)`: sets the calling thread's FS base, which
    /// the kernel keeps per thread (thread-local storage: x86-64's
    /// variant II, `%fs:0` pointing at itself). `base` is 0 or a user
    /// address; `InvalidArgument` otherwise.
    ThreadSetTls = 39,
    /// `random(ptr, len)`: fills `len` bytes (at most [`MAX_RANDOM`]) at
    /// `ptr` from the kernel's random bit generator (HMAC-SHA256 under
    /// the boot key over a counter, the TSC and RDRAND).
    Random = 40,
    /// `wall_clock() -> ns`: nanoseconds since 1970-01-01 UTC, from the
    /// real-time clock read at boot and the monotonic clock since.
    WallClock = 41,
    /// `ioports_open(platform_cap, first, count, dst_slot | NO_CAP) ->
    /// slot`: a capability to the I/O ports `[first, first + count)`,
    /// derived from the platform capability (root task; revoking it
    /// revokes this). Only ports of legacy devices a driver may own are
    /// handed out ([`ioports_allowed`]: the serial ports and the PS/2
    /// controller's data and status ports); `InvalidArgument` otherwise.
    IoPortsOpen = 42,
    /// `port_in(ioports_cap, port, width) -> value`: reads 1, 2 or 4 bytes
    /// from `port`, which the capability must cover whole. Needs `READ`.
    PortIn = 43,
    /// `port_out(ioports_cap, port, width, value)`: writes, as for
    /// `port_in`. Needs `WRITE`.
    PortOut = 44,
    /// `irq_line_open(platform_cap, line, dst_slot | NO_CAP) -> slot`: a
    /// capability to interrupt line `line` of the I/O APIC (0 to
    /// [`IRQ_LINE_LAST`]; ISA lines are numbered as ISA IRQs), derived
    /// from the platform capability. Lines the kernel keeps (0, the PIT;
    /// 2, the cascade; 8, the RTC; 13) are refused: `InvalidArgument`.
    IrqLineOpen = 45,
    /// `irq_line_bind(line_cap, notification_cap, bits, flags)`: routes
    /// the line to a free vector whose interrupts signal `bits` on the
    /// notification (`WRITE` on both). `flags`: [`IRQ_LEVEL`],
    /// [`IRQ_ACTIVE_LOW`] (ISA devices: 0, edge and active high). Each
    /// interrupt masks the line until `irq_ack`. One binding per line
    /// (`SlotInUse` beyond); it lasts as long as the line capability used
    /// here.
    IrqLineBind = 46,
    /// `irq_ack(line_cap)`: unmasks the line after an interrupt was
    /// handled (level lines: after the device stopped asserting it).
    /// Needs `WRITE`; `InvalidArgument` if the line is not bound.
    IrqAck = 47,
    /// `pci_io_bar(pci_cap, bdf, bar, dst_slot | NO_CAP) -> slot`: an
    /// I/O-port capability to the ports behind I/O BAR `bar` (0-5) of the
    /// function (a legacy virtio device's registers, say). Needs `READ`
    /// and `WRITE`; `WrongType` for a memory BAR; `InvalidArgument` for
    /// an unimplemented BAR or one that would reach ports the kernel keeps
    /// (every port below [`PCI_IO_FIRST`]).
    PciIoBar = 48,
    /// `ioports_map(ioports_cap)`: lets the process's threads use `in` and
    /// `out` on the capability's ports directly (the CPU's I/O permission
    /// bitmap, loaded when one of its threads runs), for as long as the
    /// capability lasts: deleting or revoking it ends the access. For
    /// drivers whose code does port I/O itself, as NetBSD's does. Needs
    /// `READ` and `WRITE`; mapping the same capability twice is
    /// `SlotInUse`; at most [`MAX_IO_MAPS`] ranges per process.
    IoPortsMap = 49,
    /// `pci_irq_line(pci_cap, bdf, dst_slot | NO_CAP) -> slot`: an
    /// interrupt-line capability to the I/O APIC line the firmware routed
    /// the function's legacy interrupt (INTx) to: the interrupt line
    /// register, which no configuration write may change. Bind it
    /// level-triggered (PCI interrupts are level). Needs `WRITE`;
    /// `InvalidArgument` if the function has no interrupt pin or no routed
    /// line.
    PciIrqLine = 50,
}

/// The lowest port an I/O BAR may reach through `pci_io_bar`: the
/// kernel's own devices (PIT, PICs, RTC, PCI configuration) and the legacy
/// ones all lie below.
pub const PCI_IO_FIRST: u64 = 0x1000;
/// Most port ranges one process may have mapped (`ioports_map`).
pub const MAX_IO_MAPS: usize = 8;

/// `irq_line_bind` flag: the line is level-triggered (else edge).
pub const IRQ_LEVEL: u64 = 1;
/// `irq_line_bind` flag: the line is active low (else high).
pub const IRQ_ACTIVE_LOW: u64 = 2;
/// The last I/O APIC input line (24 lines: 16 ISA, 8 PCI).
pub const IRQ_LINE_LAST: u64 = 23;

/// The I/O port ranges `ioports_open` hands out: legacy devices a user
/// driver may own. COM1 is shared with the kernel's log, which only ever
/// writes its transmit register.
pub const IOPORT_RANGES: &[(u16, u16)] = &[
    (0x3f8, 8), // COM1
    (0x2f8, 8), // COM2
    (0x3e8, 8), // COM3
    (0x2e8, 8), // COM4
    (0x60, 1),  // PS/2 data
    (0x64, 1),  // PS/2 status and command
];

/// True if ports `[first, first + count)` lie inside one of
/// [`IOPORT_RANGES`] (and `count` is not 0).
pub fn ioports_allowed(first: u64, count: u64) -> bool {
    count > 0
        && IOPORT_RANGES.iter().any(|&(base, len)| {
            let (base, end) = (base as u64, base as u64 + len as u64);
            first >= base && first.checked_add(count).is_some_and(|e| e <= end)
        })
}

/// True if `irq_line_open` hands out line `line`.
pub fn irq_line_allowed(line: u64) -> bool {
    line <= IRQ_LINE_LAST && !matches!(line, 0 | 2 | 8 | 13)
}

/// Most bytes one `random` call fills.
pub const MAX_RANDOM: u64 = 256;

/// The exit code of a process the kernel ended because no other process
/// held a capability to it any more (its creator ended or let it go).
pub const ORPHANED_EXIT: u32 = 0xdead;

/// The exit code the root task's supervisor kills a program with when it
/// stops answering its heartbeats.
pub const UNRESPONSIVE_EXIT: u32 = 0xdeaf;

/// The exit code the root task's supervisor stops a program with to start
/// it again after a program it runs `after` restarted (manifest:
/// `on_dependency_restart = restart`).
pub const DEPENDENCY_RESTART_EXIT: u32 = 0xde9e;

/// Most programs one program may depend on (manifest `after`).
pub const MAX_DEPENDENCIES: usize = 32;

/// The bit the supervisor signals on a program's notification in
/// [`slot::SUPERVISOR`] when the `i`-th program of its manifest `after`
/// list was restarted (bits 32 to 63 are the supervisor's; the rest are
/// the program's to use, for example for a driver's signals).
pub const fn dependency_bit(i: usize) -> u64 {
    1 << (32 + i)
}

/// Every bit [`dependency_bit`] may set.
pub const DEPENDENCY_BITS: u64 = !0 << 32;

/// The MSI message address that reaches the (one) CPU's local APIC; the
/// message data is the vector `irq_bind` returned (fixed delivery, edge).
pub const MSI_ADDRESS: u64 = 0xfee0_0000;

/// First interrupt vector `irq_bind` hands out.
pub const DEVICE_VECTOR_FIRST: u64 = 0x40;
/// Last one.
pub const DEVICE_VECTOR_LAST: u64 = 0xef;
/// Most vectors bound for one PCI function at a time (`irq_bind` answers
/// `Exhausted` beyond), so that one device cannot take them all.
pub const MAX_VECTORS_PER_FUNCTION: usize = 8;

impl Sys {
    /// Every system call, in number order.
    pub const ALL: [Sys; 51] = [
        Sys::ConsoleWrite,
        Sys::Exit,
        Sys::Yield,
        Sys::Clock,
        Sys::Sleep,
        Sys::ThreadCreate,
        Sys::ThreadExit,
        Sys::MemAlloc,
        Sys::Map,
        Sys::Unmap,
        Sys::ProcessCreate,
        Sys::CapCopy,
        Sys::ProcessWait,
        Sys::CapInfo,
        Sys::Shutdown,
        Sys::CapDelete,
        Sys::CapRevoke,
        Sys::EndpointCreate,
        Sys::Call,
        Sys::Recv,
        Sys::Reply,
        Sys::ReplyRecv,
        Sys::Send,
        Sys::NotificationCreate,
        Sys::Signal,
        Sys::Wait,
        Sys::CapSeal,
        Sys::CapUnseal,
        Sys::SealKeyEstablish,
        Sys::PciOpen,
        Sys::PciConfigRead,
        Sys::PciConfigWrite,
        Sys::PciBar,
        Sys::MemPhys,
        Sys::IrqBind,
        Sys::SchedSet,
        Sys::UntypedSplit,
        Sys::EndpointClose,
        Sys::ProcessKill,
        Sys::ThreadSetTls,
        Sys::Random,
        Sys::WallClock,
        Sys::IoPortsOpen,
        Sys::PortIn,
        Sys::PortOut,
        Sys::IrqLineOpen,
        Sys::IrqLineBind,
        Sys::IrqAck,
        Sys::PciIoBar,
        Sys::IoPortsMap,
        Sys::PciIrqLine,
    ];

    /// Decodes a system-call number; `None` for an unknown one.
    pub fn from_number(n: u64) -> Option<Sys> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }
}

/// Every way a system call can fail. Returned as `-(code)` in `rax`.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The system-call number is unknown.
    InvalidSyscall = 1,
    /// The slot is out of range or empty.
    InvalidCap = 2,
    /// The capability names the wrong kind of object for this call.
    WrongType = 3,
    /// The capability lacks a right this call needs.
    NoRights = 4,
    /// A pointer argument is not a mapped, accessible user address.
    BadAddress = 5,
    /// An argument is out of range or malformed.
    InvalidArgument = 6,
    /// The kernel or the untyped capability has no memory left.
    OutOfMemory = 7,
    /// The destination slot is already in use.
    SlotInUse = 8,
    /// Something is already mapped in the requested range.
    AlreadyMapped = 9,
    /// Nothing is mapped at the given address.
    NotMapped = 10,
    /// The process or object is gone.
    Dead = 11,
    /// A fixed-size kernel table (threads, processes, slots) is full.
    Exhausted = 12,
    /// The security lattice forbids it: the receiving process does not
    /// dominate the capability's label, or a derivation would raise it.
    LabelViolation = 13,
    /// A timed wait ran out (or a poll found no partner).
    Timeout = 14,
    /// `reply` with no call to answer.
    NoReply = 15,
    /// A sealed token was refused: forged, altered, or sealed under an
    /// unknown key.
    BadSeal = 16,
    /// The endpoint was closed for good (`endpoint_close`): the service
    /// behind it is gone and will not come back (its supervisor gave up on
    /// it, or it ended for good).
    Gone = 17,
}

impl Error {
    /// Every error, in code order.
    pub const ALL: [Error; 17] = [
        Error::InvalidSyscall,
        Error::InvalidCap,
        Error::WrongType,
        Error::NoRights,
        Error::BadAddress,
        Error::InvalidArgument,
        Error::OutOfMemory,
        Error::SlotInUse,
        Error::AlreadyMapped,
        Error::NotMapped,
        Error::Dead,
        Error::Exhausted,
        Error::LabelViolation,
        Error::Timeout,
        Error::NoReply,
        Error::BadSeal,
        Error::Gone,
    ];

    /// Decodes an error code (the positive number); `None` if unknown.
    pub fn from_code(code: i64) -> Option<Error> {
        Self::ALL.iter().copied().find(|e| *e as i64 == code)
    }

    /// A short, stable name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Error::InvalidSyscall => "invalid syscall",
            Error::InvalidCap => "invalid capability",
            Error::WrongType => "wrong capability type",
            Error::NoRights => "insufficient rights",
            Error::BadAddress => "bad address",
            Error::InvalidArgument => "invalid argument",
            Error::OutOfMemory => "out of memory",
            Error::SlotInUse => "slot in use",
            Error::AlreadyMapped => "already mapped",
            Error::NotMapped => "not mapped",
            Error::Dead => "object is dead",
            Error::Exhausted => "kernel table full",
            Error::LabelViolation => "label violation (delegation upward refused)",
            Error::Timeout => "timed out",
            Error::NoReply => "no call to reply to",
            Error::BadSeal => "sealed token refused",
            Error::Gone => "service gone for good",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Encodes a system-call result for `rax`.
pub fn encode_result(r: Result<u64, Error>) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => (-(e as i64)) as u64,
    }
}

/// Decodes `rax` after a system call. Values that are neither a known
/// error nor non-negative are reported as [`Error::InvalidSyscall`].
pub fn decode_result(rax: u64) -> Result<u64, Error> {
    let v = rax as i64;
    if v >= 0 {
        Ok(rax)
    } else {
        Err(Error::from_code(-v).unwrap_or(Error::InvalidSyscall))
    }
}

/// Capability rights. A derived capability carries a subset of its
/// parent's rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights(pub u32);

impl Rights {
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// Read memory, write to the console, wait on a process.
    pub const READ: Rights = Rights(1 << 0);
    /// Write memory.
    pub const WRITE: Rights = Rights(1 << 1);
    /// Map memory executable.
    pub const EXECUTE: Rights = Rights(1 << 2);
    /// Copy this capability to another process.
    pub const GRANT: Rights = Rights(1 << 3);
    /// Control a process: map into it, create its threads, give it caps.
    pub const CONTROL: Rights = Rights(1 << 4);
    /// Every right.
    pub const ALL: Rights = Rights(0x1f);

    /// True if every right in `other` is also in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    /// Rights in both.
    pub fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }
    /// Rights in either.
    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
    /// Decodes rights from a system-call argument; unknown bits are an error.
    pub fn from_bits(bits: u64) -> Option<Rights> {
        if bits & !(Rights::ALL.0 as u64) != 0 {
            None
        } else {
            Some(Rights(bits as u32))
        }
    }
}

/// The kind of object a capability names, as reported by `cap_info`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    /// A process (address space + capability table + threads).
    Process = 1,
    /// A memory object: a set of physical pages.
    Memory = 2,
    /// Untyped memory: a budget of pages that memory objects are cut from.
    Untyped = 3,
    /// The kernel console.
    Console = 4,
    /// Power control (shutdown).
    Power = 5,
    /// An IPC endpoint.
    Endpoint = 6,
    /// A notification.
    Notification = 7,
    /// The PCI bus: configuration space of every function (root task).
    PciBus = 8,
    /// One PCI function's configuration space.
    PciFunction = 9,
    /// Legacy I/O ports and interrupt lines: what `ioports_open` and
    /// `irq_line_open` derive from (root task).
    Platform = 10,
    /// A range of I/O ports.
    IoPorts = 11,
    /// One interrupt line of the I/O APIC.
    IrqLine = 12,
}

impl CapKind {
    /// Decodes a kind number.
    pub fn from_u32(v: u32) -> Option<CapKind> {
        [
            CapKind::Process,
            CapKind::Memory,
            CapKind::Untyped,
            CapKind::Console,
            CapKind::Power,
            CapKind::Endpoint,
            CapKind::Notification,
            CapKind::PciBus,
            CapKind::PciFunction,
            CapKind::Platform,
            CapKind::IoPorts,
            CapKind::IrqLine,
        ]
        .into_iter()
        .find(|k| *k as u32 == v)
    }
}

/// Flags for [`Sys::MemAlloc`].
pub mod mem_flags {
    /// Physically contiguous pages (for device DMA).
    pub const CONTIGUOUS: u64 = 1 << 0;
    /// Every valid flag.
    pub const ALL: u64 = CONTIGUOUS;
}

/// Flags for [`Sys::Map`]. Each must be backed by the matching right.
pub mod map_flags {
    /// Map readable (always implied).
    pub const READ: u64 = 1 << 0;
    /// Map writable; needs `Rights::WRITE` on the memory capability.
    pub const WRITE: u64 = 1 << 1;
    /// Map executable; needs `Rights::EXECUTE` on the memory capability.
    pub const EXECUTE: u64 = 1 << 2;
    /// Every valid flag.
    pub const ALL: u64 = READ | WRITE | EXECUTE;
}

/// Well-known capability slots. The kernel fills the root task's table
/// this way; the root task gives children the same slot numbers for the
/// capabilities their manifest entry grants.
pub mod slot {
    /// The process itself.
    pub const SELF: u64 = 0;
    /// The console.
    pub const CONSOLE: u64 = 1;
    /// Untyped memory (root task only, unless granted).
    pub const UNTYPED: u64 = 2;
    /// The boot image, read-only memory (root task only).
    pub const BOOT_IMAGE: u64 = 3;
    /// Power control.
    pub const POWER: u64 = 4;
    /// The PCI bus (root task only, unless granted).
    pub const PCI: u64 = 5;
    /// A notification of the program's own (read, signal, grant), on which
    /// the supervisor also signals news: [`super::dependency_bit`].
    pub const SUPERVISOR: u64 = 6;
    /// Legacy I/O ports and interrupt lines (root task only).
    pub const PLATFORM: u64 = 7;
    /// First slot that is free for dynamic use.
    pub const FIRST_FREE: u64 = 8;
    /// The endpoints a program is given by name (its manifest entry's
    /// `endpoints`), in order from here; the start-up text names them
    /// (see [`super::StartInfo`]).
    pub const FIRST_ENDPOINT: u64 = 16;
    /// Number of slots in every capability table.
    pub const COUNT: u64 = 256;
}

/// How a process ended, as returned by [`Sys::ProcessWait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)` (or its last thread left: code 0).
    Exited(u32),
    /// The kernel killed it after a CPU exception with this vector.
    Faulted(u8),
}

impl ExitStatus {
    const FAULT_BIT: u64 = 1 << 32;

    /// Encodes the status as a system-call return value.
    pub fn encode(self) -> u64 {
        match self {
            ExitStatus::Exited(c) => c as u64,
            ExitStatus::Faulted(v) => Self::FAULT_BIT | v as u64,
        }
    }
    /// Decodes a system-call return value.
    pub fn decode(v: u64) -> ExitStatus {
        if v & Self::FAULT_BIT != 0 {
            ExitStatus::Faulted(v as u8)
        } else {
            ExitStatus::Exited(v as u32)
        }
    }
}

/// Words of data in an IPC message (carried in registers).
pub const MSG_WORDS: usize = 3;
/// "No capability" in a capability-slot argument or result.
pub const NO_CAP: u64 = u64::MAX;
/// "Wait forever" as a timeout.
pub const FOREVER: u64 = u64::MAX;
/// Badge reported by `recv` when the bound notification fired instead of
/// a message; word 0 then holds the signalled bits.
pub const NOTIFY_BADGE: u64 = u64::MAX;

/// The first argument of `reply_recv`: the endpoint's slot in the low 32
/// bits and, if a notification is bound to the receive, its slot plus one
/// in the high 32 bits (0: none). Slots at or above `u32::MAX` are named
/// by no argument (every slot number in use is far below).
pub const fn reply_recv_slots(endpoint: u64, bound: Option<u64>) -> u64 {
    let high = match bound {
        Some(n) if n < u32::MAX as u64 => n + 1,
        _ => 0,
    };
    let low = if endpoint < u32::MAX as u64 { endpoint } else { u32::MAX as u64 };
    low | high << 32
}

/// The endpoint slot and the bound notification's slot (or [`NO_CAP`])
/// named by a `reply_recv` first argument ([`reply_recv_slots`]).
pub const fn split_reply_recv_slots(slots: u64) -> (u64, u64) {
    let high = slots >> 32;
    (slots & u32::MAX as u64, if high == 0 { NO_CAP } else { high - 1 })
}

/// Bytes of a sealed capability token.
pub const SEALED_TOKEN_LEN: usize = 80;
/// Bytes of an ML-KEM-768 encapsulation key.
pub const KEM_PUBLIC_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;

/// Registers of the IPC system calls.
///
/// In: `rdi` = endpoint slot, `rsi`, `rdx`, `r10` = message words, `r8` =
/// slot of a capability to pass (or [`NO_CAP`]), `r9` = timeout in ns
/// (0 = do not block, [`FOREVER`]). `recv` takes the endpoint, a
/// notification slot (or [`NO_CAP`]) and the timeout in `rdi`, `rsi`,
/// `rdx`.
///
/// Out: `rax` = 0 or `-error`; `rsi`, `rdx`, `r10` = words received; `rdi` =
/// slot where a passed capability landed (or [`NO_CAP`]); `r9` = the
/// sender's badge (for `recv`).
pub mod ipc {}

/// Page size of every mapping.
pub const PAGE_SIZE: u64 = 4096;
/// Top of the initial stack of the root task (and, by convention, of
/// every program the root task starts).
pub const STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
/// Where the initial heap is mapped.
pub const HEAP_BASE: u64 = 0x0000_0000_4000_0000;

/// First address above user space: the lower canonical half less its last
/// page. That page is never mapped (as on Linux), so a SYSCALL from user
/// code always leaves a canonical return address, and SYSRET to it cannot
/// fault in ring 0.
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;
/// Lowest address user mappings may use (page 0..1 MiB stays unmapped so
/// that null-pointer dereferences fault).
pub const USER_START: u64 = 0x0000_0000_0010_0000;

/// `shutdown` code for success.
pub const SHUTDOWN_SUCCESS: u64 = 0;
/// QEMU's exit status for a `shutdown(code)`: the isa-debug-exit device
/// exits with `2 * v + 1`; the kernel writes `0x10 + code` (capped), so
/// success is 33 and any failure is odd and larger.
pub fn qemu_exit_status(code: u64) -> i32 {
    (2 * (0x10 + code.min(0x6f)) + 1) as i32
}

/// The start-up block a parent places in a new process's memory; its
/// address is the first argument (`rdi`) of the entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// Heap base address (0 if no heap).
    pub heap_base: u64,
    /// Heap size in bytes.
    pub heap_len: u64,
    /// Address of the start-up text (UTF-8): the arguments, then, if the
    /// program is given endpoints, a NUL and their names separated by
    /// commas (the first at [`slot::FIRST_ENDPOINT`]).
    pub args_ptr: u64,
    /// Length of the argument string.
    pub args_len: u64,
    /// How many times the supervisor has started this program before (0
    /// for the first instance): a restarted server knows it is one, as
    /// Hubris's generation numbers tell.
    pub generation: u64,
    /// The thread-local storage template (`PT_TLS`): address, initialised
    /// bytes, bytes per thread, alignment; all 0 if there is none.
    pub tls: [u64; 4],
    /// Bytes the heap may grow to (at least `heap_len`): past `heap_len`
    /// the program maps more itself, from its own budget (the `untyped`
    /// capability at [`slot::UNTYPED`]), as it needs it.
    pub heap_max: u64,
}

impl StartInfo {
    /// Size of the encoded block.
    pub const SIZE: usize = 80;

    /// Encodes as little-endian words.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let [t0, t1, t2, t3] = self.tls;
        let words = [
            self.heap_base,
            self.heap_len,
            self.args_ptr,
            self.args_len,
            self.generation,
            t0,
            t1,
            t2,
            t3,
            self.heap_max,
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Decodes from little-endian words.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> StartInfo {
        let w = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        StartInfo {
            heap_base: w(0),
            heap_len: w(1),
            args_ptr: w(2),
            args_len: w(3),
            generation: w(4),
            tls: [w(5), w(6), w(7), w(8)],
            heap_max: w(9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip() {
        for (i, s) in Sys::ALL.iter().enumerate() {
            assert_eq!(*s as u64, i as u64);
            assert_eq!(Sys::from_number(i as u64), Some(*s));
        }
        assert_eq!(Sys::from_number(Sys::ALL.len() as u64), None);
    }

    #[test]
    fn reply_recv_slots_round_trip() {
        for ep in [0, 1, 16, 4095, u32::MAX as u64 - 1] {
            assert_eq!(split_reply_recv_slots(reply_recv_slots(ep, None)), (ep, NO_CAP));
            for n in [0, 7, u32::MAX as u64 - 1] {
                assert_eq!(split_reply_recv_slots(reply_recv_slots(ep, Some(n))), (ep, n));
            }
        }
        // The plain endpoint slot of earlier callers means the same.
        assert_eq!(split_reply_recv_slots(16), (16, NO_CAP));
        // Slots no argument can name come out as ones no table holds.
        assert_eq!(split_reply_recv_slots(reply_recv_slots(NO_CAP, Some(NO_CAP))), (u32::MAX as u64, NO_CAP));
    }

    #[test]
    fn only_legacy_device_ports_and_free_lines_are_handed_out() {
        assert!(ioports_allowed(0x3f8, 8));
        assert!(ioports_allowed(0x3fd, 1));
        assert!(ioports_allowed(0x60, 1) && ioports_allowed(0x64, 1));
        for (first, count) in
            [(0x3f8, 9), (0x3f7, 2), (0x3f8, 0), (0xcf8, 4), (0x40, 4), (0x70, 2), (0x61, 1), (0x60, 5)]
        {
            assert!(!ioports_allowed(first, count), "{first:#x}+{count}");
        }
        assert!(!ioports_allowed(u64::MAX, 2));
        assert!(irq_line_allowed(4) && irq_line_allowed(11) && irq_line_allowed(23));
        for line in [0, 2, 8, 13, 24, u64::MAX] {
            assert!(!irq_line_allowed(line), "{line}");
        }
        assert_eq!(Sys::from_number(u64::MAX), None);
    }

    #[test]
    fn results_round_trip() {
        for e in Error::ALL {
            assert_eq!(decode_result(encode_result(Err(e))), Err(e));
        }
        assert_eq!(decode_result(encode_result(Ok(42))), Ok(42));
        assert_eq!(decode_result((-999i64) as u64), Err(Error::InvalidSyscall));
    }

    #[test]
    fn rights_reject_unknown_bits() {
        assert_eq!(Rights::from_bits(0x1f), Some(Rights::ALL));
        assert_eq!(Rights::from_bits(0x20), None);
        assert!(Rights::ALL.contains(Rights::READ.union(Rights::GRANT)));
        assert!(!Rights::READ.contains(Rights::WRITE));
    }

    #[test]
    fn exit_status_round_trip() {
        for s in [ExitStatus::Exited(0), ExitStatus::Exited(u32::MAX), ExitStatus::Faulted(14)] {
            assert_eq!(ExitStatus::decode(s.encode()), s);
        }
    }

    #[test]
    fn qemu_status_success_is_33() {
        assert_eq!(qemu_exit_status(SHUTDOWN_SUCCESS), 33);
        assert_ne!(qemu_exit_status(1), 33);
    }

    #[test]
    fn start_info_round_trip() {
        let s = StartInfo {
            heap_base: 1,
            heap_len: 2,
            args_ptr: 3,
            args_len: u64::MAX,
            generation: 7,
            tls: [8, 9, 10, 16],
            heap_max: 1 << 40,
        };
        assert_eq!(StartInfo::from_bytes(&s.to_bytes()), s);
    }
}
