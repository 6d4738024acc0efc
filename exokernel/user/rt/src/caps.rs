//! Capabilities as typed handles: the thing you hold is a `Console`, a
//! `Memory`, a `Process`, never a bare slot number.

use crate::sys::{call, raw_regs};
use exo_abi::{decode_result, slot, CapKind, Error, ExitStatus, Rights, Sys, MSG_WORDS, NO_CAP};

/// Kind, rights and size of a capability, from `cap_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    /// What it names.
    pub kind: Option<CapKind>,
    /// Its rights.
    pub rights: Rights,
    /// Pages, for memory objects and untyped budgets; the function's
    /// address (`bdf`) for a PCI function.
    pub pages: u64,
}

/// Asks the kernel what slot `s` holds.
pub fn info(s: u64) -> Result<CapInfo, Error> {
    let v = call(Sys::CapInfo, [s, 0, 0, 0, 0, 0])?;
    Ok(CapInfo { kind: CapKind::from_u32((v >> 32) as u32 & 0xff), rights: Rights(v as u32), pages: v >> 40 })
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
handle!(
    /// An IPC endpoint (with the badge it was minted with).
    Endpoint
);
handle!(
    /// A notification.
    Notification
);
handle!(
    /// The PCI bus: configuration space of every function (root task).
    PciBus
);

/// One PCI function's configuration space, and where the function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    slot: u64,
    bdf: u16,
}

/// A sealed capability token.
pub type SealedToken = [u8; exo_abi::SEALED_TOKEN_LEN];

/// Seals the capability in slot `s` (it needs `GRANT`) under sealing key
/// `key_id` (0: the kernel's boot key).
pub fn seal(s: u64, key_id: u64, nonce: u64) -> Result<SealedToken, Error> {
    let mut token = [0u8; exo_abi::SEALED_TOKEN_LEN];
    call(Sys::CapSeal, [s, token.as_mut_ptr() as u64, key_id, nonce, 0, 0])?;
    Ok(token)
}

/// Installs the capability a token stands for (in `dst`, or a free slot).
pub fn unseal(token: &SealedToken, dst: Option<u64>) -> Result<u64, Error> {
    call(Sys::CapUnseal, [token.as_ptr() as u64, dst.unwrap_or(NO_CAP), 0, 0, 0, 0])
}

/// Asks the kernel to establish a sealing key with the holder of the
/// ML-KEM-768 `public_key`; returns the key id and the ciphertext from
/// which the holder derives the same key.
pub fn establish_seal_key(
    public_key: &[u8; exo_abi::KEM_PUBLIC_LEN],
) -> Result<(u64, [u8; exo_abi::KEM_CIPHERTEXT_LEN]), Error> {
    let mut ct = [0u8; exo_abi::KEM_CIPHERTEXT_LEN];
    let id = call(Sys::SealKeyEstablish, [public_key.as_ptr() as u64, ct.as_mut_ptr() as u64, 0, 0, 0, 0])?;
    Ok((id, ct))
}

/// Deletes every capability derived from the one in slot `s`, in every
/// process; returns how many.
pub fn revoke(s: u64) -> Result<u64, Error> {
    call(Sys::CapRevoke, [s, 0, 0, 0, 0, 0])
}

/// A received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// The data words.
    pub words: [u64; MSG_WORDS],
    /// Slot of the capability that came with it, if any.
    pub cap: Option<u64>,
    /// The sender's badge ([`exo_abi::NOTIFY_BADGE`]: a notification fired
    /// and `words[0]` holds its bits).
    pub badge: u64,
}

fn message(regs: [u64; 6]) -> Result<Message, Error> {
    decode_result(regs[0])?;
    let cap = (regs[1] != NO_CAP).then_some(regs[1]);
    Ok(Message { words: [regs[2], regs[3], regs[4]], cap, badge: regs[5] })
}

fn cap_arg(cap: Option<u64>) -> u64 {
    cap.unwrap_or(NO_CAP)
}

impl Endpoint {
    /// Sends `words` (and a capability) and waits for the reply, at most
    /// `timeout` ns ([`exo_abi::FOREVER`] for no limit).
    pub fn call(self, words: [u64; MSG_WORDS], cap: Option<u64>, timeout: u64) -> Result<Message, Error> {
        message(raw_regs(Sys::Call, [self.0, words[0], words[1], words[2], cap_arg(cap), timeout]))
    }
    /// `call` with no time limit that outlives a restart of the server
    /// behind the endpoint, as a MINIX 3 file server outlives its driver's:
    /// a call the dead instance held fails with `Dead`, and the new
    /// instance answers `not_attached` (as word 0) to a client it has not
    /// met. Either way `reattach` sets the session up again (false if it
    /// could not) and the call is made again, at most `retries` times.
    /// `Dead` once the retries are spent or `reattach` fails.
    pub fn call_across_restarts(
        self,
        words: [u64; MSG_WORDS],
        not_attached: u64,
        retries: u32,
        mut reattach: impl FnMut() -> bool,
    ) -> Result<Message, Error> {
        for _ in 0..retries {
            match self.call(words, None, exo_abi::FOREVER) {
                Ok(m) if m.words[0] == not_attached => {}
                Err(Error::Dead) => {}
                other => return other,
            }
            if !reattach() {
                return Err(Error::Dead);
            }
        }
        self.call(words, None, exo_abi::FOREVER)
    }
    /// Sends without waiting for a reply (blocks until received).
    pub fn send(self, words: [u64; MSG_WORDS], cap: Option<u64>, timeout: u64) -> Result<(), Error> {
        message(raw_regs(Sys::Send, [self.0, words[0], words[1], words[2], cap_arg(cap), timeout])).map(|_| ())
    }
    /// Waits for a message (or a signal on `bound`).
    pub fn recv(self, bound: Option<Notification>, timeout: u64) -> Result<Message, Error> {
        message(raw_regs(Sys::Recv, [self.0, bound.map_or(NO_CAP, |n| n.0), timeout, 0, 0, 0]))
    }
    /// Closes the endpoint for good: every waiter and every later use gets
    /// `Gone` (needs `CONTROL`, which only the root task has).
    pub fn close(self) -> Result<(), Error> {
        call(Sys::EndpointClose, [self.0, 0, 0, 0, 0, 0]).map(|_| ())
    }
    /// Replies to the last call, then waits for the next message (or, as
    /// in [`Endpoint::recv`], a signal of `bound`).
    pub fn reply_recv(
        self,
        words: [u64; MSG_WORDS],
        cap: Option<u64>,
        bound: Option<Notification>,
        timeout: u64,
    ) -> Result<Message, Error> {
        let slots = crate::abi::reply_recv_slots(self.0, bound.map(|n| n.0));
        message(raw_regs(Sys::ReplyRecv, [slots, words[0], words[1], words[2], cap_arg(cap), timeout]))
    }
}

/// Replies to the last call received.
pub fn reply(words: [u64; MSG_WORDS], cap: Option<u64>) -> Result<(), Error> {
    call(Sys::Reply, [words[0], words[1], words[2], cap_arg(cap), 0, 0]).map(|_| ())
}

impl Notification {
    /// Sets `bits`, waking a waiter.
    pub fn signal(self, bits: u64) -> Result<(), Error> {
        call(Sys::Signal, [self.0, bits, 0, 0, 0, 0]).map(|_| ())
    }
    /// Waits for bits (at most `timeout` ns); returns and clears them.
    pub fn wait(self, timeout: u64) -> Result<u64, Error> {
        call(Sys::Wait, [self.0, timeout, 0, 0, 0, 0])
    }
}

/// The console at its well-known slot.
pub const CONSOLE: Console = Console(slot::CONSOLE);
/// This process.
pub const SELF: Process = Process(slot::SELF);

impl Console {
    /// Writes bytes; returns how many.
    pub fn write(self, bytes: &[u8]) -> Result<u64, Error> {
        call(Sys::ConsoleWrite, [self.0, bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0])
    }
}

impl Untyped {
    /// A new zeroed memory object of `pages` physically contiguous pages
    /// (for device DMA).
    pub fn alloc_contiguous(self, pages: u64) -> Result<Memory, Error> {
        call(Sys::MemAlloc, [self.0, pages, exo_abi::mem_flags::CONTIGUOUS, 0, 0, 0]).map(Memory)
    }

    /// A new zeroed memory object of `pages` pages.
    pub fn alloc(self, pages: u64) -> Result<Memory, Error> {
        call(Sys::MemAlloc, [self.0, pages, 0, 0, 0, 0]).map(Memory)
    }
    /// A new empty process named `name` at lattice `label` (encoded).
    pub fn create_process(self, name: &str, label: u64) -> Result<Process, Error> {
        call(Sys::ProcessCreate, [self.0, name.as_ptr() as u64, name.len() as u64, label, 0, 0]).map(Process)
    }
    /// A new budget of `pages` pages and `kernel_bytes` bytes of kernel
    /// memory, carved out of this one.
    pub fn split(self, pages: u64, kernel_bytes: u64) -> Result<Untyped, Error> {
        call(Sys::UntypedSplit, [self.0, pages, kernel_bytes, 0, 0, 0]).map(Untyped)
    }
    /// A new endpoint.
    pub fn create_endpoint(self) -> Result<Endpoint, Error> {
        call(Sys::EndpointCreate, [self.0, 0, 0, 0, 0, 0]).map(Endpoint)
    }
    /// A new notification.
    pub fn create_notification(self) -> Result<Notification, Error> {
        call(Sys::NotificationCreate, [self.0, 0, 0, 0, 0, 0]).map(Notification)
    }
}

impl Memory {
    /// Physical (bus) address of page `page`, for DMA.
    pub fn phys(self, page: u64) -> Result<u64, Error> {
        call(Sys::MemPhys, [self.0, page, 0, 0, 0, 0])
    }

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
    /// Sets its priority level (0-3, at most the caller's) and weight
    /// (1-1000) for the scheduler.
    pub fn set_schedule(self, priority: u8, weight: u32) -> Result<(), Error> {
        call(Sys::SchedSet, [self.0, priority as u64, weight as u64, 0, 0, 0]).map(|_| ())
    }
    /// Starts a thread at `entry` with `rsp = stack` and `arg` as its
    /// first argument. Returns the thread id.
    pub fn spawn_thread(self, entry: u64, stack: u64, arg: u64) -> Result<u64, Error> {
        call(Sys::ThreadCreate, [self.0, entry, stack, arg, 0, 0])
    }
    /// Copies our capability in `src` into this process at `dst` (or a
    /// free slot), keeping only `rights`, at `label` (encoded; `None`: the
    /// source's) and with `badge` for an unbadged endpoint.
    pub fn give(
        self,
        src: u64,
        dst: Option<u64>,
        rights: Rights,
        label: Option<u64>,
        badge: Option<u64>,
    ) -> Result<u64, Error> {
        call(
            Sys::CapCopy,
            [self.0, src, dst.unwrap_or(NO_CAP), rights.0 as u64, label.unwrap_or(NO_CAP), badge.unwrap_or(NO_CAP)],
        )
    }
    /// Blocks until the process ends.
    pub fn wait(self) -> Result<ExitStatus, Error> {
        call(Sys::ProcessWait, [self.0, 0, 0, 0, 0, 0]).map(ExitStatus::decode)
    }
    /// Ends the process as if it had exited with `code` (needs `CONTROL`).
    pub fn kill(self, code: u32) -> Result<(), Error> {
        call(Sys::ProcessKill, [self.0, u64::from(code), 0, 0, 0, 0]).map(|_| ())
    }
}

handle!(
    /// Legacy I/O ports and interrupt lines (root task): what I/O-port and
    /// interrupt-line capabilities are derived from.
    Platform
);
handle!(
    /// A range of I/O ports.
    IoPorts
);
handle!(
    /// One I/O APIC interrupt line.
    IrqLine
);

impl Platform {
    /// A capability to ports `[first, first + count)` in slot `dst` (or a
    /// free one); only legacy devices' ports (`exo_abi::IOPORT_RANGES`).
    pub fn ioports(self, first: u16, count: u16, dst: Option<u64>) -> Result<IoPorts, Error> {
        call(Sys::IoPortsOpen, [self.0, first as u64, count as u64, dst.unwrap_or(NO_CAP), 0, 0]).map(IoPorts)
    }
    /// A capability to interrupt line `line` in slot `dst` (or a free one).
    pub fn irq_line(self, line: u8, dst: Option<u64>) -> Result<IrqLine, Error> {
        call(Sys::IrqLineOpen, [self.0, line as u64, dst.unwrap_or(NO_CAP), 0, 0, 0]).map(IrqLine)
    }
}

impl IoPorts {
    /// The first port and how many the capability covers.
    pub fn range(self) -> Result<(u16, u16), Error> {
        let i = info(self.0)?;
        if i.kind != Some(CapKind::IoPorts) {
            return Err(Error::WrongType);
        }
        Ok((i.pages as u16, (i.pages >> 16) as u16))
    }
    /// Lets this process's threads use `in` and `out` on the ports
    /// directly, for as long as the capability lasts.
    pub fn map(self) -> Result<(), Error> {
        call(Sys::IoPortsMap, [self.0, 0, 0, 0, 0, 0]).map(|_| ())
    }
    /// Reads the byte at `port`.
    pub fn read8(self, port: u16) -> Result<u8, Error> {
        call(Sys::PortIn, [self.0, port as u64, 1, 0, 0, 0]).map(|v| v as u8)
    }
    /// Writes the byte at `port`.
    pub fn write8(self, port: u16, value: u8) -> Result<(), Error> {
        call(Sys::PortOut, [self.0, port as u64, 1, value as u64, 0, 0]).map(|_| ())
    }
}

impl IrqLine {
    /// Routes the line to a vector whose interrupts signal `bits` on
    /// `note`; `flags`: `exo_abi::IRQ_LEVEL`, `exo_abi::IRQ_ACTIVE_LOW`.
    /// Each interrupt masks the line until [`IrqLine::ack`].
    pub fn bind(self, note: Notification, bits: u64, flags: u64) -> Result<u64, Error> {
        call(Sys::IrqLineBind, [self.0, note.0, bits, flags, 0, 0])
    }
    /// Unmasks the line after an interrupt was handled.
    pub fn ack(self) -> Result<(), Error> {
        call(Sys::IrqAck, [self.0, 0, 0, 0, 0, 0]).map(|_| ())
    }
}

impl PciBus {
    /// A capability to the function at `bdf` (`bus << 8 | device << 3 |
    /// function`) in slot `dst` (or a free one).
    pub fn open(self, bdf: u16, dst: Option<u64>) -> Result<PciFunction, Error> {
        let slot = call(Sys::PciOpen, [self.0, bdf as u64, dst.unwrap_or(NO_CAP), 0, 0, 0])?;
        Ok(PciFunction { slot, bdf })
    }

    /// Reads `width` (1, 2, 4) bytes at `offset` of function `bdf`'s
    /// configuration space.
    pub fn read(self, bdf: u16, offset: u8, width: u8) -> Result<u32, Error> {
        call(Sys::PciConfigRead, [self.0, bdf as u64, offset as u64, width as u64, 0, 0]).map(|v| v as u32)
    }
}

impl PciFunction {
    /// The function capability in `slot`; asks the kernel which function
    /// it is.
    pub fn from_slot(slot: u64) -> Result<PciFunction, Error> {
        let i = info(slot)?;
        if i.kind != Some(CapKind::PciFunction) {
            return Err(Error::WrongType);
        }
        Ok(PciFunction { slot, bdf: i.pages as u16 })
    }

    /// The slot number.
    pub fn slot(self) -> u64 {
        self.slot
    }

    /// The function's address: `bus << 8 | device << 3 | function`.
    pub fn bdf(self) -> u16 {
        self.bdf
    }

    /// Reads `width` (1, 2, 4) bytes at `offset` (aligned, below 256).
    pub fn read(self, offset: u8, width: u8) -> Result<u32, Error> {
        call(Sys::PciConfigRead, [self.slot, self.bdf as u64, offset as u64, width as u64, 0, 0]).map(|v| v as u32)
    }

    /// A memory capability to memory BAR `bar` (0-5): the function's
    /// registers, to be mapped (uncached) and used through volatile
    /// accesses.
    pub fn bar(self, bar: u8) -> Result<Memory, Error> {
        call(Sys::PciBar, [self.slot, self.bdf as u64, bar as u64, NO_CAP, 0, 0]).map(Memory)
    }

    /// An I/O-port capability to the ports behind I/O BAR `bar` (0-5).
    pub fn io_bar(self, bar: u8) -> Result<IoPorts, Error> {
        call(Sys::PciIoBar, [self.slot, self.bdf as u64, bar as u64, NO_CAP, 0, 0]).map(IoPorts)
    }

    /// An interrupt-line capability to the I/O APIC line the function's
    /// legacy interrupt (INTx) is routed to; bind it level-triggered.
    pub fn irq_line(self) -> Result<IrqLine, Error> {
        call(Sys::PciIrqLine, [self.slot, self.bdf as u64, NO_CAP, 0, 0, 0]).map(IrqLine)
    }

    /// A free interrupt vector whose interrupts signal `bits` on `note`,
    /// for as long as this capability lasts; program the device's MSI or
    /// MSI-X entry with [`exo_abi::MSI_ADDRESS`] and the vector as data.
    pub fn irq_bind(self, note: Notification, bits: u64) -> Result<u64, Error> {
        call(Sys::IrqBind, [self.slot, self.bdf as u64, note.0, bits, 0, 0])
    }

    /// Writes the low `width` bytes of `value` at `offset`; the kernel
    /// refuses writes to the IDs, BARs, ROM and bridge windows.
    pub fn write(self, offset: u8, width: u8, value: u32) -> Result<(), Error> {
        call(Sys::PciConfigWrite, [self.slot, self.bdf as u64, offset as u64, width as u64, value as u64, 0])
            .map(|_| ())
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
