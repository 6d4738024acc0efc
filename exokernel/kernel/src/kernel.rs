//! The kernel's state and the operations on objects that several system
//! calls share: allocation with budgets, mapping, teardown.

use crate::arch::cpu;
use crate::arch::trap::{TrapFrame, UserContext};
use crate::mm::{self, DirectMap};
use crate::object::*;
use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::size_of;
use core::num::NonZeroU32;
use exo_abi::{slot, Error, ExitStatus, Rights, PAGE_SIZE, USER_END, USER_START};
use exo_kcore::captable::{Cap, CapTable};
use exo_kcore::cdt::{CapId, Cdt};
use exo_kcore::frame::FrameAllocator;
use exo_kcore::lattice::Label;
use exo_kcore::paging::{self, pte, MapError};
use exo_kcore::sched::{Params, Scheduler};

/// Most threads in one process.
pub const MAX_THREADS_PER_PROCESS: usize = 64;
/// Largest memory object, in pages (256 MiB).
pub const MAX_OBJECT_PAGES: u64 = 65536;

/// Kernel memory (bytes of the kernel heap) each kind of object costs its
/// budget: the object's own record plus what the kernel keeps for it
/// elsewhere (queue entries, derivation-tree nodes, table slots), rounded
/// up.
pub mod cost {
    use super::*;
    /// The record of an ended process, kept while capabilities name it.
    pub const PROCESS_RECORD: u64 = size_of::<Process>() as u64 + 64;
    /// A derivation-tree node with room for a child link.
    pub const CDT_NODE: u64 = 64;
    /// A process: its record, a full capability table and a
    /// derivation-tree node for every slot.
    pub const PROCESS: u64 =
        size_of::<Process>() as u64 + 256 + slot::COUNT * (size_of::<Option<Cap<KCap>>>() as u64 + CDT_NODE);
    /// A thread: its record (registers and FPU state) and its place in
    /// the process's list and the scheduler's queues.
    pub const THREAD: u64 = size_of::<Thread>() as u64 + 64;
    /// An endpoint (its wait queues grow only with blocked threads, which
    /// are paid for as threads).
    pub const ENDPOINT: u64 = size_of::<Option<Endpoint>>() as u64 + 64;
    /// A notification.
    pub const NOTIFICATION: u64 = size_of::<Option<Notification>>() as u64 + 64;
    /// A memory object's record, plus one word per page (its frame list).
    pub const fn memory(pages: u64) -> u64 {
        size_of::<Option<MemObject>>() as u64 + 64 + pages * 8
    }
    /// One mapping in a process's list.
    pub const MAPPING: u64 = size_of::<Mapping>() as u64 + 16;
    /// A sealing key.
    pub const SEAL_KEY: u64 = 64;
    /// A budget made by `untyped_split`.
    pub const UNTYPED: u64 = size_of::<Untyped>() as u64 + 32;
}

/// Puts `value` in the first empty slot of `table` (or a new one at the
/// end) and returns its index.
pub fn insert_in_free_slot<T>(table: &mut Vec<Option<T>>, value: T) -> u32 {
    match table.iter().position(Option::is_none) {
        Some(i) => {
            table[i] = Some(value);
            i as u32
        }
        None => {
            table.push(Some(value));
            table.len() as u32 - 1
        }
    }
}

/// The monotonic clock, from the TSC.
pub struct Clock {
    /// TSC at boot.
    pub tsc0: u64,
    /// Nanoseconds per tick in 32.32 fixed point: a reading is one
    /// multiplication, not a 128-bit division (a library routine, slow
    /// under QEMU's TCG, and the clock is read at every network poll).
    ns_per_tick: u64,
    /// Nanoseconds since 1970-01-01 UTC at `tsc0` (from the real-time
    /// clock at boot).
    pub wall0: u64,
}

impl Clock {
    /// The clock of a TSC that read `tsc0` at boot and counts `tsc_hz`.
    pub fn new(tsc0: u64, tsc_hz: u64, wall0: u64) -> Clock {
        let ns_per_tick = ((1_000_000_000u128 << 32) / tsc_hz.max(1) as u128).min(u64::MAX as u128) as u64;
        Clock { tsc0, ns_per_tick, wall0 }
    }

    /// Nanoseconds since boot.
    pub fn now(&self) -> u64 {
        let ticks = cpu::rdtsc().wrapping_sub(self.tsc0) as u128;
        ((ticks * self.ns_per_tick as u128) >> 32) as u64
    }

    /// `ticks` TSC ticks in nanoseconds.
    pub fn ticks_ns(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.ns_per_tick as u128) >> 32) as u64
    }

    /// Nanoseconds since 1970-01-01 UTC.
    pub fn wall(&self) -> u64 {
        self.wall0 + self.now()
    }
}

/// A sealing key and the process that established it (`None`: the boot
/// key).
pub struct SealKeySlot {
    /// The key.
    pub key: exo_seal::SealKey,
    /// Who established it, and whose budget paid for it.
    pub owner: Option<(ProcId, Option<u32>)>,
}

/// How many names of ended processes `Kernel::ended_cpu` counts apart
/// (one more entry holds the rest).
pub const ENDED_NAMES: usize = 16;

/// Everything the kernel knows.
pub struct Kernel {
    /// Physical frames.
    pub frames: FrameAllocator<'static>,
    /// Processes, alive or ended (an ended one's entry is reused once no
    /// capability names it: see `free_procs`).
    pub procs: Vec<Process>,
    /// Entries of `procs` free for reuse.
    pub free_procs: Vec<u32>,
    /// Live processes no other process names any more (see
    /// `reap_orphans`).
    pub orphans: Vec<ProcId>,
    /// Thread slots.
    pub threads: Vec<Option<Box<Thread>>>,
    /// Generation counter per thread slot.
    pub thread_gens: Vec<u32>,
    /// Memory objects.
    pub mems: Vec<Option<MemObject>>,
    /// Untyped budgets.
    pub untyped: Vec<Untyped>,
    /// Runnable threads other than `current`, by priority and process.
    pub sched: Scheduler<ThreadId>,
    /// Threads in a wait with a deadline (sleep, or IPC with a timeout).
    pub timed: Vec<ThreadId>,
    /// Endpoints.
    pub endpoints: Vec<Option<Endpoint>>,
    /// Notifications.
    pub notifications: Vec<Option<Notification>>,
    /// The capability derivation tree.
    pub cdt: Cdt<CapLocation>,
    /// Next object generation (see `MemObject::generation`).
    pub next_generation: u32,
    /// Sealing keys: 0 is the boot key, the rest were established with
    /// ML-KEM by `seal_key_establish` and are dropped (their tokens die)
    /// when the process that established them ends. `None`: a free slot.
    pub seal_keys: Vec<Option<SealKeySlot>>,
    /// Counter for the kernel's HMAC-based random bit generator.
    pub drbg_counter: u64,
    /// The thread that was running when the kernel was entered.
    pub current: Option<ThreadId>,
    /// Set by the timer (`current` has used up its time slice), by a
    /// yield, and by a wake-up of a thread above `current`'s priority.
    pub need_resched: bool,
    /// The port ranges open to user mode in the CPU's I/O permission
    /// bitmap: those of the process that ran last, if it mapped any.
    pub io_loaded: Vec<IoMap>,
    /// Calls made so far (numbers the replies must match).
    pub calls: u64,
    /// Timer ticks since boot.
    pub ticks: u64,
    /// The thread whose time is being counted (the one that has the CPU;
    /// `None` while it is idle), and since when, in TSC ticks
    /// (`sched::charge`).
    pub on_cpu: Option<ThreadId>,
    pub on_cpu_since: u64,
    /// The BAR registers of the PCI functions probed so far, and their
    /// masks (`pci::bar_registers`).
    pub pci_bars: Vec<(exo_kcore::pci::Bdf, [(u32, u32); 6])>,
    /// CPU time of processes whose entries were freed, by name (at most
    /// [`ENDED_NAMES`] of them and "others").
    pub ended_cpu: Vec<(Cow<'static, str>, u64)>,
    /// The monotonic clock.
    pub clock: Clock,
    /// The kernel's own top-level page table (kernel half only).
    pub kernel_pml4: u64,
    /// Device interrupt vectors bound to notifications (`irq_bind`),
    /// indexed by vector.
    pub irqs: Vec<Option<IrqBinding>>,
    /// The firmware's memory map: start, end and E820 type of each region
    /// (device memory handed out must not lie over any of it but
    /// reserved regions).
    pub memory_map: Vec<(u64, u64, u32)>,
}

impl Kernel {
    /// The thread `t`, if it still exists.
    pub fn thread(&self, t: ThreadId) -> Option<&Thread> {
        self.threads.get(t.index as usize)?.as_deref().filter(|th| th.generation == t.generation)
    }

    /// The thread `t`, mutably, if it still exists.
    pub fn thread_mut(&mut self, t: ThreadId) -> Option<&mut Thread> {
        self.threads.get_mut(t.index as usize)?.as_deref_mut().filter(|th| th.generation == t.generation)
    }

    /// The process of `t`. Panics if `t` is gone (callers hold live ids).
    pub fn proc_of(&self, t: ThreadId) -> ProcId {
        self.thread(t).expect("live thread").process
    }

    /// Process `p`.
    pub fn proc(&self, p: ProcId) -> &Process {
        &self.procs[p.0 as usize]
    }

    /// Process `p`, mutably.
    pub fn proc_mut(&mut self, p: ProcId) -> &mut Process {
        &mut self.procs[p.0 as usize]
    }

    /// Takes `pages` from untyped budget `u`.
    pub fn charge(&mut self, u: u32, pages: u64) -> Result<(), Error> {
        let b = self.untyped.get_mut(u as usize).ok_or(Error::InvalidCap)?;
        if b.remaining < pages {
            return Err(Error::OutOfMemory);
        }
        b.remaining -= pages;
        Ok(())
    }

    /// The budget credits to `u` go to: `u`, or the budget it went back
    /// to (see [`Untyped`]).
    fn live_budget(&self, mut u: u32) -> u32 {
        while let Some(b) = self.untyped.get(u as usize) {
            match b.parent {
                Some(parent) if b.merged() => u = parent,
                _ => break,
            }
        }
        u
    }

    fn credit(&mut self, u: u32, pages: u64) {
        let u = self.live_budget(u);
        if let Some(b) = self.untyped.get_mut(u as usize) {
            b.remaining += pages;
        }
    }

    /// Takes `bytes` of kernel memory from budget `u` (`None`: the
    /// kernel's own, for what the root task's own process causes).
    pub fn charge_kernel(&mut self, u: Option<u32>, bytes: u64) -> Result<(), Error> {
        let Some(u) = u else { return Ok(()) };
        let b = self.untyped.get_mut(u as usize).ok_or(Error::InvalidCap)?;
        if b.kernel < bytes {
            return Err(Error::OutOfMemory);
        }
        b.kernel -= bytes;
        Ok(())
    }

    /// Gives `bytes` of kernel memory back to budget `u`.
    pub fn credit_kernel(&mut self, u: Option<u32>, bytes: u64) {
        let u = u.map(|u| self.live_budget(u));
        if let Some(b) = u.and_then(|u| self.untyped.get_mut(u as usize)) {
            b.kernel += bytes;
        }
    }

    /// A new zeroed memory object of `pages` pages charged to untyped `u`
    /// (or to nothing, for kernel-made objects, with `u == None`), with
    /// one reference; physically contiguous pages if `contiguous`.
    pub fn new_memory(&mut self, u: Option<u32>, pages: u64, contiguous: bool) -> Result<MemId, Error> {
        if pages == 0 || pages > MAX_OBJECT_PAGES {
            return Err(Error::InvalidArgument);
        }
        if let Some(u) = u {
            self.charge_kernel(Some(u), cost::memory(pages))?;
            if let Err(e) = self.charge(u, pages) {
                self.credit_kernel(Some(u), cost::memory(pages));
                return Err(e);
            }
        }
        let mut frames = Vec::new();
        if frames.try_reserve_exact(pages as usize).is_err() {
            if let Some(u) = u {
                self.credit(u, pages);
                self.credit_kernel(Some(u), cost::memory(pages));
            }
            return Err(Error::OutOfMemory);
        }
        if contiguous {
            if let Some(base) = self.frames.alloc_contiguous(pages as usize) {
                frames.extend((0..pages).map(|i| base + i * PAGE_SIZE));
            }
        } else {
            while frames.len() < pages as usize {
                match self.frames.alloc() {
                    Some(f) => frames.push(f),
                    None => break,
                }
            }
        }
        if frames.len() < pages as usize {
            for f in frames {
                let _ = self.frames.free(f);
            }
            if let Some(u) = u {
                self.credit(u, pages);
                self.credit_kernel(Some(u), cost::memory(pages));
            }
            return Err(Error::OutOfMemory);
        }
        for f in &frames {
            mm::zero_frame(*f);
        }
        let generation = self.fresh_generation();
        Ok(self.insert_memory(MemObject { frames, refs: 1, untyped: u, generation, device: false }))
    }

    /// A generation number no earlier object had.
    pub fn fresh_generation(&mut self) -> u32 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }

    /// Stores a memory object, reusing a free slot.
    pub fn insert_memory(&mut self, obj: MemObject) -> MemId {
        MemId(insert_in_free_slot(&mut self.mems, obj))
    }

    /// Adds a reference to a memory object.
    pub fn mem_ref(&mut self, m: MemId) {
        if let Some(Some(o)) = self.mems.get_mut(m.0 as usize) {
            o.refs += 1;
        }
    }

    /// Drops a reference; frees the frames and credits the budget at zero.
    pub fn mem_unref(&mut self, m: MemId) {
        let Some(Some(o)) = self.mems.get_mut(m.0 as usize) else {
            return;
        };
        o.refs -= 1;
        if o.refs > 0 {
            return;
        }
        let obj = self.mems[m.0 as usize].take().expect("present");
        if let Some(u) = obj.untyped {
            for f in &obj.frames {
                let _ = self.frames.free(*f);
            }
            self.credit(u, obj.frames.len() as u64);
            self.credit_kernel(Some(u), cost::memory(obj.frames.len() as u64));
        }
    }

    /// Drops the reference a capability held on its object; endpoints and
    /// notifications die with their last capability, waking their waiters
    /// with `Dead`.
    pub fn drop_cap(&mut self, obj: Object) {
        match obj {
            Object::Untyped(u) => {
                let b = &mut self.untyped[u as usize];
                b.refs -= 1;
                if b.merged() {
                    // Its last capability went: what it has left goes back
                    // to the budget it came from (with what the split
                    // cost), and later credits follow (`live_budget`).
                    let (pages, bytes) = (core::mem::take(&mut b.remaining), core::mem::take(&mut b.kernel));
                    let parent = b.parent.expect("merged");
                    self.credit(parent, pages);
                    self.credit_kernel(Some(parent), bytes + cost::UNTYPED);
                }
            }
            Object::Process(p) => {
                self.proc_mut(p).refs -= 1;
                if self.proc(p).state == ProcState::Alive && self.orphaned(p) && !self.orphans.contains(&p) {
                    // Ended by `reap_orphans` on the way out of the kernel
                    // (not here: a chain of orphans would recurse).
                    self.orphans.push(p);
                }
                self.release_process(p);
            }
            Object::Memory(m) => self.mem_unref(m),
            Object::Endpoint(e, _) => {
                let ep = self.endpoints[e.0 as usize].as_mut().expect("live endpoint");
                ep.refs -= 1;
                if ep.refs == 0 {
                    let ep = self.endpoints[e.0 as usize].take().expect("live");
                    self.credit_kernel(ep.charged, cost::ENDPOINT);
                    for t in ep.senders.iter().chain(ep.receivers.iter()) {
                        self.wake(t, Err(Error::Dead));
                    }
                }
            }
            Object::Notification(n) => {
                let nt = self.notifications[n.0 as usize].as_mut().expect("live notification");
                nt.refs -= 1;
                if nt.refs == 0 {
                    let nt = self.notifications[n.0 as usize].take().expect("live");
                    self.credit_kernel(nt.charged, cost::NOTIFICATION);
                    for t in nt.waiters.iter() {
                        self.wake(t, Err(Error::Dead));
                    }
                }
            }
            _ => {}
        }
    }

    /// Records that a capability to `obj` was created.
    pub fn took_cap(&mut self, obj: Object) {
        match obj {
            Object::Process(p) => self.proc_mut(p).refs += 1,
            Object::Memory(m) => self.mem_ref(m),
            Object::Endpoint(e, _) => self.endpoints[e.0 as usize].as_mut().expect("live").refs += 1,
            Object::Notification(n) => self.notifications[n.0 as usize].as_mut().expect("live").refs += 1,
            Object::Untyped(u) => self.untyped[u as usize].refs += 1,
            _ => {}
        }
    }

    /// Ends a blocked thread's wait with `result` in `rax`: takes it off
    /// every queue and makes it runnable. Does nothing to threads that are
    /// gone or not waiting.
    pub fn wake(&mut self, t: ThreadId, result: Result<u64, Error>) {
        let Some(th) = self.thread_mut(t) else { return };
        let state = th.state;
        if state == ThreadState::Runnable {
            return;
        }
        th.state = ThreadState::Runnable;
        th.deadline = None;
        th.ctx.frame.rax = exo_abi::encode_result(result);
        self.dequeue(t, state);
        self.timed.retain(|x| *x != t);
        self.make_runnable(t);
    }

    /// Ends a call that will never be answered (its server thread died, or
    /// took another call first): the caller, if it still waits for this
    /// very call, wakes with `Dead`.
    pub fn abandon(&mut self, owed: Owed) {
        if self.thread(owed.caller).is_some_and(|c| c.state == ThreadState::AwaitingReply(owed.call)) {
            self.wake(owed.caller, Err(Error::Dead));
        }
    }

    /// A call number never handed out before.
    pub fn next_call(&mut self) -> u64 {
        self.calls += 1;
        self.calls
    }

    /// Puts `t` (runnable, not current) on the run queue; asks for a
    /// reschedule when it outranks the current thread.
    pub fn make_runnable(&mut self, t: ThreadId) {
        let p = self.proc_of(t);
        let Some(priority) = self.sched.push(p.0, t) else { return };
        let current = self.current.filter(|c| *c != t).and_then(|c| self.thread(c)).map(|th| th.process);
        if current.and_then(|c| self.sched.params(c.0)).is_none_or(|cp| priority > cp.priority) {
            self.need_resched = true;
        }
    }

    /// Takes `t` off the queue its wait `state` put it on.
    fn dequeue(&mut self, t: ThreadId, state: ThreadState) {
        match state {
            ThreadState::Sending(e) => {
                if let Some(ep) = self.endpoints[e.0 as usize].as_mut() {
                    ep.senders.retain(|x| *x != t);
                }
            }
            ThreadState::Receiving(e, n) => {
                if let Some(ep) = self.endpoints[e.0 as usize].as_mut() {
                    ep.receivers.retain(|x| *x != t);
                }
                if let Some(nt) = n.and_then(|n| self.notifications[n.0 as usize].as_mut()) {
                    nt.waiters.retain(|x| *x != t);
                }
            }
            ThreadState::WaitingSignal(n) => {
                if let Some(nt) = self.notifications[n.0 as usize].as_mut() {
                    nt.waiters.retain(|x| *x != t);
                }
            }
            ThreadState::Waiting(p) => self.proc_mut(p).waiters.retain(|x| *x != t),
            ThreadState::Runnable | ThreadState::Sleeping(_) | ThreadState::AwaitingReply(_) => {}
        }
    }

    /// Blocks `t` in `state`, with a deadline unless `timeout` is
    /// [`exo_abi::FOREVER`].
    pub fn block(&mut self, t: ThreadId, state: ThreadState, timeout: u64) {
        let deadline = (timeout != exo_abi::FOREVER).then(|| self.clock.now().saturating_add(timeout));
        let th = self.thread_mut(t).expect("blocking a live thread");
        th.state = state;
        th.deadline = deadline;
        if deadline.is_some() {
            self.timed.push(t);
        }
    }

    /// Maps memory object `m` at `va` in process `p` with `MapFlags`-style
    /// `flags`. Rights are the caller's business; this checks addresses,
    /// overlap and memory.
    pub fn map(&mut self, p: ProcId, m: MemId, va: u64, flags: u64, via: Option<CapId>) -> Result<(), Error> {
        let (frames, device) = match self.mems.get(m.0 as usize) {
            Some(Some(o)) => (o.frames.clone(), o.device),
            _ => return Err(Error::Dead),
        };
        let pages = frames.len() as u64;
        let end = pages.checked_mul(PAGE_SIZE).and_then(|len| va.checked_add(len)).ok_or(Error::InvalidArgument)?;
        if !va.is_multiple_of(PAGE_SIZE) || va < USER_START || end > USER_END {
            return Err(Error::InvalidArgument);
        }
        let proc = &self.procs[p.0 as usize];
        if proc.state != ProcState::Alive {
            return Err(Error::Dead);
        }
        if proc.mappings.iter().any(|mp| va < mp.va + mp.pages * PAGE_SIZE && mp.va < end) {
            return Err(Error::AlreadyMapped);
        }
        let root = proc.pml4;
        // Page tables the mapping needs are charged to the process's budget
        // like its other memory, so mapping and unmapping at ever new
        // addresses cannot exhaust the kernel's frames. Checked against
        // the worst case first (a table per 2 MiB, GiB and 512 GiB region
        // touched), charged what was really taken after.
        let budget = proc.charged_to;
        if let Some(u) = budget {
            let worst = pages / 512 + pages / (512 * 512) + 6;
            if self.untyped.get(u as usize).is_none_or(|b| b.remaining < worst) {
                return Err(Error::OutOfMemory);
            }
        }
        // The mapping's record is charged now (and credited back below if
        // the mapping fails).
        self.charge_kernel(budget, cost::MAPPING)?;
        let free_before = self.frames.free_count();
        let mut leaf = pte::USER;
        if flags & exo_abi::map_flags::WRITE != 0 {
            leaf |= pte::WRITABLE;
        }
        if flags & exo_abi::map_flags::EXECUTE == 0 {
            leaf |= pte::NO_EXECUTE;
        }
        if device {
            leaf |= pte::NO_CACHE | pte::WRITE_THROUGH; // uncached: registers
        }
        let mut failed = None;
        for (i, f) in frames.iter().enumerate() {
            let page = va + i as u64 * PAGE_SIZE;
            if let Err(e) = paging::map_page(&mut DirectMap, &mut self.frames, root, page, *f, leaf) {
                for j in 0..i as u64 {
                    let _ = paging::unmap_page(&mut DirectMap, root, va + j * PAGE_SIZE);
                }
                failed = Some(match e {
                    MapError::OutOfMemory => Error::OutOfMemory,
                    _ => Error::AlreadyMapped,
                });
                break;
            }
        }
        // Tables made stay with the address space (until it ends), so they
        // are charged even when the mapping failed.
        let tables = (free_before - self.frames.free_count()) as u64;
        if let Some(u) = budget {
            self.charge(u, tables).expect("within the worst case checked above");
            self.procs[p.0 as usize].table_pages += tables;
        }
        if let Some(e) = failed {
            self.credit_kernel(budget, cost::MAPPING);
            return Err(e);
        }
        self.procs[p.0 as usize].mappings.push(Mapping { va, pages, mem: m, via });
        self.mem_ref(m);
        Ok(())
    }

    /// Removes the mapping that starts at `va` in process `p`.
    pub fn unmap(&mut self, p: ProcId, va: u64) -> Result<(), Error> {
        let proc = &mut self.procs[p.0 as usize];
        let i = proc.mappings.iter().position(|mp| mp.va == va).ok_or(Error::NotMapped)?;
        let mp = proc.mappings.swap_remove(i);
        let (root, budget) = (proc.pml4, proc.charged_to);
        self.credit_kernel(budget, cost::MAPPING);
        let active = cpu::read_cr3() == root;
        for k in 0..mp.pages {
            let page = mp.va + k * PAGE_SIZE;
            let _ = paging::unmap_page(&mut DirectMap, root, page);
            if active {
                cpu::invlpg(page);
            }
        }
        self.mem_unref(mp.mem);
        Ok(())
    }

    /// Creates an empty process at `label`, scheduled with `params`, whose
    /// capability table holds itself in slot 0. Charged one page (its
    /// top-level table) to `charge`.
    pub fn create_process(
        &mut self,
        name: String,
        charge: Option<u32>,
        label: Label,
        params: Params,
    ) -> Result<ProcId, Error> {
        self.charge_kernel(charge, cost::PROCESS)?;
        if let Some(u) = charge {
            if let Err(e) = self.charge(u, 1) {
                self.credit_kernel(charge, cost::PROCESS);
                return Err(e);
            }
        }
        let Some(pml4) = self.frames.alloc() else {
            if let Some(u) = charge {
                self.credit(u, 1);
            }
            self.credit_kernel(charge, cost::PROCESS);
            return Err(Error::OutOfMemory);
        };
        mm::zero_frame(pml4);
        for i in 256..512 {
            let e = exo_kcore::paging::PhysMemory::read_entry(&DirectMap, self.kernel_pml4, i);
            exo_kcore::paging::PhysMemory::write_entry(&mut DirectMap, pml4, i, e);
        }
        let generation = self.fresh_generation();
        let process = Process {
            name,
            pml4,
            caps: CapTable::new(slot::COUNT as usize),
            label,
            threads: Vec::new(),
            mappings: Vec::new(),
            state: ProcState::Alive,
            waiters: Vec::new(),
            charged_to: charge,
            table_pages: 0,
            refs: 0,
            cpu_ticks: 0,
            generation,
            io_maps: Vec::new(),
        };
        let id = match self.free_procs.pop() {
            Some(i) => {
                self.procs[i as usize] = process;
                ProcId(i)
            }
            None => {
                self.procs.push(process);
                ProcId(self.procs.len() as u32 - 1)
            }
        };
        self.sched.add_process(id.0, params);
        self.install_cap(id, Some(slot::SELF), Object::Process(id), Rights::ALL, label, None)
            .expect("empty table, own label");
        Ok(id)
    }

    /// Starts a thread in process `p` and puts it on the run queue.
    pub fn create_thread(&mut self, p: ProcId, frame: TrapFrame) -> Result<ThreadId, Error> {
        let proc = &self.procs[p.0 as usize];
        if proc.state != ProcState::Alive {
            return Err(Error::Dead);
        }
        if proc.threads.len() >= MAX_THREADS_PER_PROCESS {
            return Err(Error::Exhausted);
        }
        let budget = proc.charged_to;
        let index = match self.threads.iter().position(|t| t.is_none()) {
            Some(i) => i,
            None => {
                self.threads.push(None);
                self.thread_gens.push(0);
                self.threads.len() - 1
            }
        };
        self.charge_kernel(budget, cost::THREAD)?;
        let generation = NonZeroU32::new(self.thread_gens[index].wrapping_add(1)).unwrap_or(NonZeroU32::MIN);
        self.thread_gens[index] = generation.get();
        let (pml4, caps) = (self.proc(p).pml4, self.proc(p).caps.slots_ptr());
        self.threads[index] = Some(Box::new(Thread {
            process: p,
            pml4,
            caps,
            generation,
            ctx: UserContext::new(frame),
            state: ThreadState::Runnable,
            deadline: None,
            outgoing: Message::default(),
            reply_to: None,
            charged: budget,
            fs_base: 0,
            cpu_ticks: 0,
        }));
        let id = ThreadId { index: index as u32, generation };
        self.procs[p.0 as usize].threads.push(id);
        self.make_runnable(id);
        Ok(id)
    }

    /// Removes one thread everywhere. Does not end its process. A caller
    /// waiting for this thread's reply gets `Dead`.
    fn destroy_thread(&mut self, t: ThreadId) {
        let Some(th) = self.thread(t) else { return };
        let (state, owed, budget) = (th.state, th.reply_to, th.charged);
        self.credit_kernel(budget, cost::THREAD);
        self.dequeue(t, state);
        if let Some(owed) = owed {
            self.abandon(owed);
        }
        let p = self.proc_of(t);
        if self.on_cpu == Some(t) {
            crate::sched::charge(self, None);
        }
        let ticks = self.thread(t).map_or(0, |th| th.cpu_ticks);
        self.proc_mut(p).cpu_ticks += ticks;
        self.sched.remove(p.0, t);
        self.timed.retain(|x| *x != t);
        if self.current == Some(t) {
            self.current = None;
        }
        self.threads[t.index as usize] = None;
    }

    /// Ends thread `t`; the last thread to go ends the process with code 0.
    pub fn exit_thread(&mut self, t: ThreadId) {
        let p = self.proc_of(t);
        self.destroy_thread(t);
        let proc = self.proc_mut(p);
        proc.threads.retain(|x| *x != t);
        if proc.threads.is_empty() {
            self.exit_process(p, ExitStatus::Exited(0));
        }
    }

    /// Ends process `p`: its threads, mappings, page tables and
    /// capabilities go; waiters wake with `status`.
    pub fn exit_process(&mut self, p: ProcId, status: ExitStatus) {
        if self.proc(p).state != ProcState::Alive {
            return;
        }
        for t in core::mem::take(&mut self.proc_mut(p).threads) {
            self.destroy_thread(t);
        }
        self.sched.remove_process(p.0);
        let root = self.proc(p).pml4;
        if cpu::read_cr3() == root {
            // SAFETY: the kernel table maps the kernel half like every
            // process table does.
            unsafe { cpu::write_cr3(self.kernel_pml4) };
        }
        let budget = self.proc(p).charged_to;
        for mp in core::mem::take(&mut self.proc_mut(p).mappings) {
            for k in 0..mp.pages {
                let _ = paging::unmap_page(&mut DirectMap, root, mp.va + k * PAGE_SIZE);
            }
            self.mem_unref(mp.mem);
            self.credit_kernel(budget, cost::MAPPING);
        }
        paging::free_user_tables(&mut DirectMap, &mut self.frames, root);
        let _ = self.frames.free(root);
        if let Some(u) = self.proc(p).charged_to {
            let tables = core::mem::take(&mut self.proc_mut(p).table_pages);
            self.credit(u, 1 + tables);
        }
        // What stays, the record with the exit status for `process_wait`,
        // stays charged until no capability names the process.
        self.credit_kernel(budget, cost::PROCESS - cost::PROCESS_RECORD);
        self.free_seal_keys_of(p);
        self.proc_mut(p).io_maps.clear();
        self.proc_mut(p).state = ProcState::Exited(status);
        self.delete_all_caps(p);
        let proc = self.proc_mut(p);
        debug_assert!(proc.threads.is_empty(), "threads point at the capability table");
        proc.caps = CapTable::new(0);
        proc.pml4 = 0;
        for w in core::mem::take(&mut self.proc_mut(p).waiters) {
            if self.thread(w).is_some_and(|th| th.state == ThreadState::Waiting(p)) {
                self.wake(w, Ok(status.encode()));
            }
        }
        self.release_process(p);
    }

    /// Whether live process `p` is named by no capability outside itself:
    /// nobody can control, wait for or talk about it any more.
    fn orphaned(&self, p: ProcId) -> bool {
        if p == crate::bootstrap::ROOT {
            return false; // the kernel's own child: nobody else names it
        }
        let proc = self.proc(p);
        let own = proc.caps.iter().filter(|(_, c)| c.object.object == Object::Process(p)).count() as u32;
        proc.refs == own
    }

    /// Ends every process that lost its last capability held by another
    /// (its creator ended, or dropped it): a process's children die with
    /// it unless it handed them on, as its endpoints, notifications and
    /// memory do. Their own children follow, one at a time.
    pub fn reap_orphans(&mut self) {
        while let Some(p) = self.orphans.pop() {
            if self.proc(p).state == ProcState::Alive && self.orphaned(p) {
                self.exit_process(p, ExitStatus::Exited(exo_abi::ORPHANED_EXIT));
            }
        }
    }

    /// Adds an ended process's CPU time to its name's in `ended_cpu`, or
    /// to "others" once [`ENDED_NAMES`] are counted. Allocates nothing:
    /// the name moves out of the process record, and room for every entry
    /// was reserved at boot.
    fn ended_cpu(&mut self, name: String, ticks: u64) {
        if let Some(e) = self.ended_cpu.iter_mut().find(|e| e.0 == name.as_str()) {
            e.1 += ticks;
        } else if self.ended_cpu.len() < ENDED_NAMES {
            self.ended_cpu.push((Cow::Owned(name), ticks));
        } else if let Some(e) = self.ended_cpu.iter_mut().find(|e| e.0 == "others") {
            e.1 += ticks;
        } else {
            self.ended_cpu.push((Cow::Borrowed("others"), ticks));
        }
    }

    /// The TSC ticks process `p`'s threads had the CPU, ended and live.
    pub fn cpu_ticks_of(&self, p: &Process) -> u64 {
        let live = p.threads.iter().filter_map(|t| self.thread(*t)).map(|th| th.cpu_ticks);
        live.fold(p.cpu_ticks, u64::wrapping_add)
    }

    /// Frees the entry of ended process `p` once no capability names it.
    pub fn release_process(&mut self, p: ProcId) {
        let proc = self.proc(p);
        if proc.refs == 0 && matches!(proc.state, ProcState::Exited(_)) && !self.free_procs.contains(&p.0) {
            let budget = proc.charged_to;
            let name = core::mem::take(&mut self.proc_mut(p).name);
            let ticks = core::mem::take(&mut self.proc_mut(p).cpu_ticks);
            self.ended_cpu(name, ticks);
            self.credit_kernel(budget, cost::PROCESS_RECORD);
            self.free_procs.push(p.0);
        }
    }
}
