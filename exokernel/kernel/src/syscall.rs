//! System calls: decode (check every argument, precise error) then invoke
//! (change state), as seL4 does. Nothing a user passes can panic the kernel.

use crate::arch::trap::TrapFrame;
use crate::cap::KernelCap;
use crate::ipc::Next;
use crate::kernel::{cost, Kernel};
use crate::object::*;
use crate::usercopy::user_bytes;
use alloc::string::String;
use exo_abi::{map_flags, mem_flags, CapKind, Error, ExitStatus, Rights, Sys, MSG_WORDS, NO_CAP, USER_END};
use exo_kcore::lattice::Label;
use exo_kcore::sched::{Params, DEFAULT_PRIORITY, DEFAULT_WEIGHT};

/// What the kernel does after a system call.
pub enum Outcome {
    /// Resume the caller with this `rax`.
    Return(u64),
    /// The caller blocked; its `rax` is set when it wakes.
    Blocked,
    /// The caller is gone (exited).
    Gone,
}

type SysResult = Result<u64, Error>;

/// A system call's number and arguments, copied out of the caller's frame.
pub struct Args {
    /// The system-call number (`rax`).
    pub number: u64,
    /// The arguments.
    pub a: [u64; 6],
}

impl Args {
    /// Reads `rax` and the six argument registers.
    pub fn from_frame(f: &TrapFrame) -> Args {
        Args { number: f.rax, a: [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9] }
    }
}

/// Runs the system call `args` for thread `t`.
pub fn dispatch(k: &mut Kernel, t: ThreadId, args: &Args) -> Outcome {
    let p = k.proc_of(t);
    let a = args.a;
    let Some(sys) = Sys::from_number(args.number) else {
        return ret(Err(Error::InvalidSyscall));
    };
    match sys {
        Sys::ConsoleWrite => ret(console_write(k, p, a[0], a[1], a[2])),
        Sys::Exit => {
            k.exit_process(p, ExitStatus::Exited(a[0] as u32));
            Outcome::Gone
        }
        Sys::Yield => {
            k.need_resched = true;
            ret(Ok(0))
        }
        Sys::Clock => ret(Ok(k.clock.now())),
        Sys::WallClock => ret(Ok(k.clock.wall())),
        Sys::Sleep => sleep(k, t, a[0]),
        Sys::ThreadCreate => ret(thread_create(k, p, a[0], a[1], a[2], a[3])),
        Sys::ThreadExit => {
            k.exit_thread(t);
            Outcome::Gone
        }
        Sys::MemAlloc => ret(mem_alloc(k, p, a[0], a[1], a[2])),
        Sys::Map => ret(map(k, p, a[0], a[1], a[2], a[3])),
        Sys::Unmap => ret(unmap(k, p, a[0], a[1])),
        Sys::ProcessCreate => ret(process_create(k, p, a[0], a[1], a[2], a[3])),
        Sys::CapCopy => ret(cap_copy(k, p, a)),
        Sys::ProcessWait => process_wait(k, t, p, a[0]),
        Sys::CapInfo => ret(cap_info(k, p, a[0])),
        Sys::Shutdown => ret(shutdown(k, p, a[0], a[1])),
        Sys::CapDelete => ret(k.delete_cap(p, a[0]).map(|_| 0)),
        Sys::CapRevoke => ret(k.revoke_cap(p, a[0])),
        Sys::EndpointCreate => ret(endpoint_create(k, p, a[0])),
        Sys::NotificationCreate => ret(notification_create(k, p, a[0])),
        Sys::Call | Sys::Send => send(k, t, p, a, sys == Sys::Call),
        Sys::Recv => recv(k, t, p, a[0], a[1], a[2]),
        Sys::Reply => ret(reply(k, t, [a[0], a[1], a[2]], a[3])),
        Sys::ReplyRecv => {
            // As in seL4, a failed reply (the caller gave up) does not stop
            // the receive.
            let _ = reply(k, t, [a[1], a[2], a[3]], a[4]);
            let (ep, bound) = exo_abi::split_reply_recv_slots(a[0]);
            recv(k, t, p, ep, bound, a[5])
        }
        Sys::Signal => ret(signal(k, p, a[0], a[1])),
        Sys::Wait => wait(k, t, p, a[0], a[1]),
        Sys::CapSeal => ret(k.cap_seal(p, a[0], a[1], a[2], a[3])),
        Sys::CapUnseal => ret(k.cap_unseal(p, a[0], a[1])),
        Sys::SealKeyEstablish => ret(k.seal_key_establish(p, a[0], a[1])),
        Sys::PciOpen => ret(crate::pci::open(k, p, a[0], a[1], a[2])),
        Sys::PciConfigRead => ret(crate::pci::config_read(k, p, a[0], a[1], a[2], a[3])),
        Sys::PciConfigWrite => ret(crate::pci::config_write(k, p, a[0], a[1], a[2], a[3], a[4])),
        Sys::PciBar => ret(crate::pci::bar(k, p, a[0], a[1], a[2], a[3])),
        Sys::MemPhys => ret(mem_phys(k, p, a[0], a[1])),
        Sys::IrqBind => ret(crate::pci::irq_bind(k, p, a[0], a[1], a[2], a[3])),
        Sys::IoPortsOpen => ret(crate::platform::ioports_open(k, p, a[0], a[1], a[2], a[3])),
        Sys::PortIn => ret(crate::platform::port_in(k, p, a[0], a[1], a[2])),
        Sys::PortOut => ret(crate::platform::port_out(k, p, a[0], a[1], a[2], a[3])),
        Sys::IrqLineOpen => ret(crate::platform::irq_line_open(k, p, a[0], a[1], a[2])),
        Sys::IrqLineBind => ret(crate::platform::irq_line_bind(k, p, a[0], a[1], a[2], a[3])),
        Sys::IrqAck => ret(crate::platform::irq_ack(k, p, a[0])),
        Sys::PciIoBar => ret(crate::pci::io_bar(k, p, a[0], a[1], a[2], a[3])),
        Sys::IoPortsMap => ret(crate::platform::ioports_map(k, p, a[0])),
        Sys::PciIrqLine => ret(crate::pci::irq_line(k, p, a[0], a[1], a[2])),
        Sys::SchedSet => ret(sched_set(k, p, a[0], a[1], a[2])),
        Sys::UntypedSplit => ret(untyped_split(k, p, a[0], a[1], a[2])),
        Sys::EndpointClose => ret(endpoint_of(k, p, a[0], Rights::CONTROL).map(|(e, _)| {
            k.endpoint_close(e);
            0
        })),
        Sys::ProcessKill => ret(process_kill(k, p, a[0], a[1])),
        Sys::ThreadSetTls => ret(thread_set_tls(k, t, a[0])),
        Sys::Random => ret(random(k, p, a[0], a[1])),
    }
}

fn next(n: Next) -> Outcome {
    match n {
        Next::Return(r) => ret(r),
        Next::Blocked => Outcome::Blocked,
    }
}

fn endpoint_of(k: &Kernel, p: ProcId, slot: u64, need: Rights) -> Result<(EpId, u64), Error> {
    match lookup(k, p, slot, CapKind::Endpoint, need)?.object.object {
        Object::Endpoint(e, badge) => Ok((e, badge)),
        _ => unreachable!("kind checked"),
    }
}

fn notification_of(k: &Kernel, p: ProcId, slot: u64, need: Rights) -> Result<NtfnId, Error> {
    match lookup(k, p, slot, CapKind::Notification, need)?.object.object {
        Object::Notification(n) => Ok(n),
        _ => unreachable!("kind checked"),
    }
}

/// Decodes the optional capability-slot argument of an IPC call and
/// checks that it can be passed on (it exists and carries `GRANT`).
fn passed_cap(k: &Kernel, p: ProcId, slot: u64) -> Result<Option<u64>, Error> {
    if slot == NO_CAP {
        return Ok(None);
    }
    let cap = k.proc(p).caps.get(slot)?;
    if !cap.rights.contains(Rights::GRANT) {
        return Err(Error::NoRights);
    }
    Ok(Some(slot))
}

fn send(k: &mut Kernel, t: ThreadId, p: ProcId, a: [u64; 6], is_call: bool) -> Outcome {
    let decoded = endpoint_of(k, p, a[0], Rights::WRITE).and_then(|ep| Ok((ep, passed_cap(k, p, a[4])?)));
    let ((e, badge), cap) = match decoded {
        Ok(d) => d,
        Err(err) => return ret(Err(err)),
    };
    let msg = Message { words: [a[1], a[2], a[3]], cap, is_call, badge };
    next(k.ipc_send(t, e, msg, a[5]))
}

fn recv(k: &mut Kernel, t: ThreadId, p: ProcId, ep: u64, ntfn: u64, timeout: u64) -> Outcome {
    let decoded = endpoint_of(k, p, ep, Rights::READ).and_then(|(e, _)| {
        let n = if ntfn == NO_CAP { None } else { Some(notification_of(k, p, ntfn, Rights::READ)?) };
        Ok((e, n))
    });
    match decoded {
        Ok((e, n)) => next(k.ipc_recv(t, e, n, timeout)),
        Err(err) => ret(Err(err)),
    }
}

fn reply(k: &mut Kernel, t: ThreadId, words: [u64; MSG_WORDS], cap: u64) -> SysResult {
    let p = k.proc_of(t);
    let cap = passed_cap(k, p, cap)?;
    k.ipc_reply(t, words, cap)
}

fn signal(k: &mut Kernel, p: ProcId, slot: u64, bits: u64) -> SysResult {
    let n = notification_of(k, p, slot, Rights::WRITE)?;
    k.signal(n, bits);
    Ok(0)
}

fn wait(k: &mut Kernel, t: ThreadId, p: ProcId, slot: u64, timeout: u64) -> Outcome {
    match notification_of(k, p, slot, Rights::READ) {
        Ok(n) => next(k.wait(t, n, timeout)),
        Err(e) => ret(Err(e)),
    }
}

fn untyped_of(k: &Kernel, p: ProcId, slot: u64) -> Result<u32, Error> {
    match lookup(k, p, slot, CapKind::Untyped, Rights::WRITE)?.object.object {
        Object::Untyped(u) => Ok(u),
        _ => unreachable!("kind checked"),
    }
}

fn endpoint_create(k: &mut Kernel, p: ProcId, untyped: u64) -> SysResult {
    let u = untyped_of(k, p, untyped)?;
    k.charge_kernel(Some(u), cost::ENDPOINT)?;
    let e = k.new_endpoint(Some(u));
    install_new(k, p, Object::Endpoint(e, 0)).inspect_err(|_| {
        k.endpoints[e.0 as usize] = None;
        k.credit_kernel(Some(u), cost::ENDPOINT);
    })
}

fn notification_create(k: &mut Kernel, p: ProcId, untyped: u64) -> SysResult {
    let u = untyped_of(k, p, untyped)?;
    k.charge_kernel(Some(u), cost::NOTIFICATION)?;
    let n = k.new_notification(Some(u));
    install_new(k, p, Object::Notification(n)).inspect_err(|_| {
        k.notifications[n.0 as usize] = None;
        k.credit_kernel(Some(u), cost::NOTIFICATION);
    })
}

/// Gives the creator of a new object the original capability to it, at
/// the creator's label.
fn install_new(k: &mut Kernel, p: ProcId, object: Object) -> SysResult {
    let label = k.proc(p).label;
    k.install_cap(p, None, object, Rights::ALL, label, None)
}

fn ret(r: SysResult) -> Outcome {
    Outcome::Return(exo_abi::encode_result(r))
}

/// The capability in `slot` of process `p`, if it is of `kind` and has
/// every right in `need`.
fn lookup(k: &Kernel, p: ProcId, slot: u64, kind: CapKind, need: Rights) -> Result<KernelCap, Error> {
    let cap = k.proc(p).caps.get(slot)?;
    if cap.object.object.kind() != kind {
        return Err(Error::WrongType);
    }
    if !cap.rights.contains(need) {
        return Err(Error::NoRights);
    }
    Ok(cap)
}

fn process_cap(k: &Kernel, p: ProcId, slot: u64, need: Rights) -> Result<ProcId, Error> {
    match lookup(k, p, slot, CapKind::Process, need)?.object.object {
        Object::Process(target) if k.proc(target).state == ProcState::Alive => Ok(target),
        Object::Process(_) => Err(Error::Dead),
        _ => unreachable!("kind checked"),
    }
}

fn console_write(k: &mut Kernel, p: ProcId, slot: u64, ptr: u64, len: u64) -> SysResult {
    lookup(k, p, slot, CapKind::Console, Rights::WRITE)?;
    let bytes = user_bytes(k.proc(p).pml4, ptr, len)?;
    crate::arch::serial::write_bytes(bytes);
    Ok(len)
}

fn sleep(k: &mut Kernel, t: ThreadId, ns: u64) -> Outcome {
    if ns == 0 {
        k.need_resched = true;
        return ret(Ok(0));
    }
    let until = k.clock.now().saturating_add(ns);
    k.block(t, ThreadState::Sleeping(until), ns);
    Outcome::Blocked
}

fn thread_create(k: &mut Kernel, p: ProcId, slot: u64, entry: u64, stack: u64, arg: u64) -> SysResult {
    let target = process_cap(k, p, slot, Rights::CONTROL)?;
    if entry >= USER_END || stack >= USER_END {
        return Err(Error::InvalidArgument);
    }
    let t = k.create_thread(target, TrapFrame::new_user(entry, stack, arg))?;
    Ok(t.index as u64)
}

fn mem_alloc(k: &mut Kernel, p: ProcId, slot: u64, pages: u64, flags: u64) -> SysResult {
    let cap = lookup(k, p, slot, CapKind::Untyped, Rights::WRITE)?;
    let Object::Untyped(u) = cap.object.object else { unreachable!("kind checked") };
    if flags & !mem_flags::ALL != 0 {
        return Err(Error::InvalidArgument);
    }
    let rights = cap.rights.intersect(Rights(Rights::READ.0 | Rights::WRITE.0 | Rights::EXECUTE.0 | Rights::GRANT.0));
    let m = k.new_memory(Some(u), pages, flags & mem_flags::CONTIGUOUS != 0)?;
    let label = k.proc(p).label;
    let r = k.install_cap(p, None, Object::Memory(m), rights, label, None);
    k.mem_unref(m); // the creation reference: the capability holds it now
    r
}

fn mem_phys(k: &Kernel, p: ProcId, slot: u64, page: u64) -> SysResult {
    let cap = lookup(k, p, slot, CapKind::Memory, Rights::READ)?;
    let Object::Memory(m) = cap.object.object else { unreachable!("kind checked") };
    let frames = &k.mems[m.0 as usize].as_ref().ok_or(Error::Dead)?.frames;
    usize::try_from(page).ok().and_then(|i| frames.get(i)).copied().ok_or(Error::InvalidArgument)
}

fn map(k: &mut Kernel, p: ProcId, proc_slot: u64, mem_slot: u64, va: u64, flags: u64) -> SysResult {
    let target = process_cap(k, p, proc_slot, Rights::CONTROL)?;
    if flags & !map_flags::ALL != 0 {
        return Err(Error::InvalidArgument);
    }
    let mut need = Rights::READ;
    if flags & map_flags::WRITE != 0 {
        need = need.union(Rights::WRITE);
    }
    if flags & map_flags::EXECUTE != 0 {
        need = need.union(Rights::EXECUTE);
    }
    let cap = lookup(k, p, mem_slot, CapKind::Memory, need)?;
    let Object::Memory(m) = cap.object.object else { unreachable!("kind checked") };
    k.map(target, m, va, flags, Some(cap.object.node))?;
    Ok(0)
}

fn unmap(k: &mut Kernel, p: ProcId, proc_slot: u64, va: u64) -> SysResult {
    let target = process_cap(k, p, proc_slot, Rights::CONTROL)?;
    k.unmap(target, va)?;
    Ok(0)
}

/// Longest process name.
const NAME_MAX: u64 = 32;

fn decode_label(v: u64) -> Result<Label, Error> {
    Label::decode(v).ok_or(Error::InvalidArgument)
}

fn process_create(k: &mut Kernel, p: ProcId, untyped: u64, name_ptr: u64, name_len: u64, label: u64) -> SysResult {
    let u = untyped_of(k, p, untyped)?;
    if name_len == 0 || name_len > NAME_MAX {
        return Err(Error::InvalidArgument);
    }
    let label = decode_label(label)?;
    if !k.proc(p).label.dominates(label) {
        return Err(Error::LabelViolation);
    }
    let bytes = user_bytes(k.proc(p).pml4, name_ptr, name_len)?;
    let name = core::str::from_utf8(bytes).map_err(|_| Error::InvalidArgument)?;
    // A new process starts at the default level, never above its creator.
    let creator = k.sched.params(p.0).unwrap_or_default();
    let params = Params { priority: creator.priority.min(DEFAULT_PRIORITY), weight: DEFAULT_WEIGHT };
    let child = k.create_process(String::from(name), Some(u), label, params)?;
    let r = k.install_cap(p, None, Object::Process(child), Rights::ALL, label, None);
    if r.is_err() {
        k.exit_process(child, ExitStatus::Exited(0));
    }
    r
}

/// Carves a new budget out of the one in `slot` (see `Sys::UntypedSplit`).
fn untyped_split(k: &mut Kernel, p: ProcId, slot: u64, pages: u64, kernel_bytes: u64) -> SysResult {
    let cap = lookup(k, p, slot, CapKind::Untyped, Rights::WRITE)?;
    let Object::Untyped(u) = cap.object.object else { unreachable!("kind checked") };
    let (rights, label, node) = (cap.rights, cap.object.label, cap.object.node);
    let source = &k.untyped[u as usize];
    let cost = cost::UNTYPED;
    if source.remaining < pages || source.kernel < kernel_bytes.saturating_add(cost) {
        return Err(Error::OutOfMemory);
    }
    k.untyped[u as usize].remaining -= pages;
    k.untyped[u as usize].kernel -= kernel_bytes + cost;
    let new = k.untyped.len() as u32;
    k.untyped.push(Untyped::new(pages, kernel_bytes, Some(u)));
    k.install_cap(p, None, Object::Untyped(new), rights, label, Some(node)).inspect_err(|_| {
        k.untyped.pop();
        k.untyped[u as usize].remaining += pages;
        k.untyped[u as usize].kernel += kernel_bytes + cost;
    })
}

/// Sets a process's priority and weight: at most the caller's own
/// priority (so no process can lift anyone, itself included, above
/// itself); the change applies at its next turn.
fn sched_set(k: &mut Kernel, p: ProcId, proc_slot: u64, priority: u64, weight: u64) -> SysResult {
    let target = process_cap(k, p, proc_slot, Rights::CONTROL)?;
    let params = Params::new(priority, weight).ok_or(Error::InvalidArgument)?;
    let mine = k.sched.params(p.0).unwrap_or_default();
    if params.priority > mine.priority {
        return Err(Error::NoRights);
    }
    if !k.sched.set_params(target.0, params) {
        return Err(Error::Dead);
    }
    Ok(0)
}

fn cap_copy(k: &mut Kernel, p: ProcId, a: [u64; 6]) -> SysResult {
    let [dst_proc, src_slot, dst_slot, rights, label, badge] = a;
    let target = process_cap(k, p, dst_proc, Rights::CONTROL)?;
    let mask = Rights::from_bits(rights).ok_or(Error::InvalidArgument)?;
    let label = if label == NO_CAP { None } else { Some(decode_label(label)?) };
    let badge = (badge != NO_CAP).then_some(badge);
    let dst = (dst_slot != NO_CAP).then_some(dst_slot);
    k.copy_cap(p, src_slot, target, dst, mask, label, badge)
}

fn process_wait(k: &mut Kernel, t: ThreadId, p: ProcId, slot: u64) -> Outcome {
    let target = match lookup(k, p, slot, CapKind::Process, Rights::READ).map(|c| c.object.object) {
        Ok(Object::Process(target)) => target,
        Ok(_) => unreachable!("kind checked"),
        Err(e) => return ret(Err(e)),
    };
    if target == p {
        return ret(Err(Error::InvalidArgument));
    }
    match k.proc(target).state {
        ProcState::Exited(s) => ret(Ok(s.encode())),
        ProcState::Alive => {
            k.block(t, ThreadState::Waiting(target), exo_abi::FOREVER);
            k.proc_mut(target).waiters.push(t);
            Outcome::Blocked
        }
    }
}

/// See `Sys::Random`.
fn random(k: &mut Kernel, p: ProcId, ptr: u64, len: u64) -> SysResult {
    if len > exo_abi::MAX_RANDOM {
        return Err(Error::InvalidArgument);
    }
    let pml4 = k.proc(p).pml4;
    crate::usercopy::user_bytes_mut(pml4, ptr, len)?; // checked before any work
    let mut filled = 0;
    while filled < len {
        let block = k.random_32();
        let n = (len - filled).min(32);
        crate::usercopy::user_bytes_mut(pml4, ptr + filled, n)?.copy_from_slice(&block[..n as usize]);
        filled += n;
    }
    Ok(len)
}

/// See `Sys::ThreadSetTls`.
fn thread_set_tls(k: &mut Kernel, t: ThreadId, base: u64) -> SysResult {
    if base != 0 && !(exo_abi::USER_START..exo_abi::USER_END).contains(&base) {
        return Err(Error::InvalidArgument);
    }
    k.thread_mut(t).expect("the caller").fs_base = base;
    crate::sched::enter_tls(base);
    Ok(0)
}

/// See `Sys::ProcessKill`.
fn process_kill(k: &mut Kernel, p: ProcId, slot: u64, code: u64) -> SysResult {
    let target = match lookup(k, p, slot, CapKind::Process, Rights::CONTROL)?.object.object {
        Object::Process(target) => target,
        _ => unreachable!("kind checked"),
    };
    let code = u32::try_from(code).map_err(|_| Error::InvalidArgument)?;
    if target == p {
        return Err(Error::InvalidArgument); // `exit` ends oneself
    }
    if k.proc(target).state != ProcState::Alive {
        return Err(Error::Dead);
    }
    k.exit_process(target, ExitStatus::Exited(code));
    Ok(0)
}

fn cap_info(k: &Kernel, p: ProcId, slot: u64) -> SysResult {
    let cap = k.proc(p).caps.get(slot)?;
    let pages = match cap.object.object {
        Object::Memory(m) => k.mems[m.0 as usize].as_ref().map_or(0, |o| o.frames.len() as u64),
        // What is left of the budget (capped to the field's 24 bits).
        Object::Untyped(u) => k.untyped.get(u as usize).map_or(0, |b| b.remaining.min((1 << 24) - 1)),
        // Which function (`bdf`), so a driver need not be told.
        Object::PciFunction(f) => f.raw() as u64,
        // Which ports (first | count << 16), which line.
        Object::IoPorts(first, count) => u64::from(first) | u64::from(count) << 16,
        Object::IrqLine(line) => u64::from(line),
        _ => 0,
    };
    Ok((pages << 40) | ((cap.object.object.kind() as u64) << 32) | cap.rights.0 as u64)
}

fn shutdown(k: &mut Kernel, p: ProcId, slot: u64, code: u64) -> SysResult {
    lookup(k, p, slot, CapKind::Power, Rights::WRITE)?;
    crate::kprintln!(
        "shutdown requested by '{}' (code {code}); since boot: {} address-space switches, {} device interrupts, {} timer ticks, idle {} ms",
        k.proc(p).name,
        crate::sched::SWITCHES.load(core::sync::atomic::Ordering::Relaxed),
        crate::sched::DEVICE_INTERRUPTS.load(core::sync::atomic::Ordering::Relaxed),
        k.ticks,
        k.clock.ticks_ns(crate::sched::IDLE_TICKS.load(core::sync::atomic::Ordering::Relaxed)) / 1_000_000
    );
    // Where the time went: the processes that ran longest (the kernel's
    // work for a process counts as its own), by name, without allocating.
    const SHOWN: usize = 16;
    let mut ran: [(u64, &str); SHOWN] = [(0, ""); SHOWN];
    let live = k.procs.iter().filter(|p| !p.name.is_empty()).map(|p| (k.cpu_ticks_of(p), p.name.as_str()));
    for (ticks, name) in live.chain(k.ended_cpu.iter().map(|(n, t)| (*t, n.as_ref()))) {
        let ms = k.clock.ticks_ns(ticks) / 1_000_000;
        if let Some(r) = ran.iter_mut().find(|r| r.1 == name) {
            r.0 += ms;
        } else if let Some(r) = ran.iter_mut().min_by_key(|r| r.0).filter(|r| r.0 < ms) {
            *r = (ms, name); // the least of those kept makes room
        }
    }
    ran.sort_unstable_by_key(|r| core::cmp::Reverse(r.0));
    crate::console::print(format_args!("[kernel] CPU time by process:"));
    let mut first = true;
    for (ms, name) in ran.iter().filter(|r| r.0 > 0) {
        let comma = if core::mem::take(&mut first) { "" } else { "," };
        crate::console::print(format_args!("{comma} {name} {ms} ms"));
    }
    crate::console::print(format_args!("\n"));
    crate::power_off(code)
}
