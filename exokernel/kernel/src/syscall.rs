//! System calls: decode (check every argument, precise error) then invoke
//! (change state), as seL4 does. Nothing a user passes can panic the kernel.

use crate::arch::trap::TrapFrame;
use crate::kernel::Kernel;
use crate::object::*;
use crate::usercopy::user_bytes;
use alloc::string::String;
use exo_abi::{map_flags, CapKind, Error, ExitStatus, Rights, Sys, USER_END};
use exo_kcore::captable::Cap;

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

/// Runs the system call in `f` for thread `t`.
pub fn dispatch(k: &mut Kernel, t: ThreadId, f: &TrapFrame) -> Outcome {
    let p = k.proc_of(t);
    let a = [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9];
    let Some(sys) = Sys::from_number(f.rax) else {
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
        Sys::Sleep => sleep(k, t, a[0]),
        Sys::ThreadCreate => ret(thread_create(k, p, a[0], a[1], a[2], a[3])),
        Sys::ThreadExit => {
            k.exit_thread(t);
            Outcome::Gone
        }
        Sys::MemAlloc => ret(mem_alloc(k, p, a[0], a[1])),
        Sys::Map => ret(map(k, p, a[0], a[1], a[2], a[3])),
        Sys::Unmap => ret(unmap(k, p, a[0], a[1])),
        Sys::ProcessCreate => ret(process_create(k, p, a[0], a[1], a[2])),
        Sys::CapCopy => ret(cap_copy(k, p, a[0], a[1], a[2], a[3])),
        Sys::ProcessWait => process_wait(k, t, p, a[0]),
        Sys::CapInfo => ret(cap_info(k, p, a[0])),
        Sys::Shutdown => ret(shutdown(k, p, a[0], a[1])),
        Sys::CapDelete => ret(cap_delete(k, p, a[0])),
    }
}

fn ret(r: SysResult) -> Outcome {
    Outcome::Return(exo_abi::encode_result(r))
}

/// The capability in `slot` of process `p`, if it is of `kind` and has
/// every right in `need`.
fn lookup(
    k: &Kernel,
    p: ProcId,
    slot: u64,
    kind: CapKind,
    need: Rights,
) -> Result<Cap<Object>, Error> {
    let cap = k.proc(p).caps.get(slot)?;
    if cap.object.kind() != kind {
        return Err(Error::WrongType);
    }
    if !cap.rights.contains(need) {
        return Err(Error::NoRights);
    }
    Ok(cap)
}

fn process_cap(k: &Kernel, p: ProcId, slot: u64, need: Rights) -> Result<ProcId, Error> {
    match lookup(k, p, slot, CapKind::Process, need)?.object {
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
    k.thread_mut(t).expect("caller").state = ThreadState::Sleeping(until);
    k.sleepers.push(t);
    Outcome::Blocked
}

fn thread_create(
    k: &mut Kernel,
    p: ProcId,
    slot: u64,
    entry: u64,
    stack: u64,
    arg: u64,
) -> SysResult {
    let target = process_cap(k, p, slot, Rights::CONTROL)?;
    if entry >= USER_END || stack >= USER_END {
        return Err(Error::InvalidArgument);
    }
    let t = k.create_thread(target, TrapFrame::new_user(entry, stack, arg))?;
    Ok(t.index as u64)
}

fn mem_alloc(k: &mut Kernel, p: ProcId, slot: u64, pages: u64) -> SysResult {
    let cap = lookup(k, p, slot, CapKind::Untyped, Rights::WRITE)?;
    let Object::Untyped(u) = cap.object else {
        unreachable!("kind checked")
    };
    let rights = cap.rights.intersect(Rights(
        Rights::READ.0 | Rights::WRITE.0 | Rights::EXECUTE.0 | Rights::GRANT.0,
    ));
    let m = k.new_memory(Some(u), pages)?;
    match k.proc_mut(p).caps.insert(Cap {
        object: Object::Memory(m),
        rights,
    }) {
        Ok(s) => Ok(s),
        Err(e) => {
            k.mem_unref(m);
            Err(e)
        }
    }
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
    let Object::Memory(m) = lookup(k, p, mem_slot, CapKind::Memory, need)?.object else {
        unreachable!("kind checked")
    };
    k.map(target, m, va, flags)?;
    Ok(0)
}

fn unmap(k: &mut Kernel, p: ProcId, proc_slot: u64, va: u64) -> SysResult {
    let target = process_cap(k, p, proc_slot, Rights::CONTROL)?;
    k.unmap(target, va)?;
    Ok(0)
}

/// Longest process name.
const NAME_MAX: u64 = 32;

fn process_create(
    k: &mut Kernel,
    p: ProcId,
    untyped: u64,
    name_ptr: u64,
    name_len: u64,
) -> SysResult {
    let Object::Untyped(u) = lookup(k, p, untyped, CapKind::Untyped, Rights::WRITE)?.object else {
        unreachable!("kind checked")
    };
    if name_len == 0 || name_len > NAME_MAX {
        return Err(Error::InvalidArgument);
    }
    let bytes = user_bytes(k.proc(p).pml4, name_ptr, name_len)?;
    let name = core::str::from_utf8(bytes).map_err(|_| Error::InvalidArgument)?;
    let name = String::from(name);
    let child = k.create_process(name, Some(u))?;
    match k.proc_mut(p).caps.insert(Cap {
        object: Object::Process(child),
        rights: Rights::ALL,
    }) {
        Ok(s) => Ok(s),
        Err(e) => {
            k.exit_process(child, ExitStatus::Exited(0));
            Err(e)
        }
    }
}

fn cap_copy(
    k: &mut Kernel,
    p: ProcId,
    dst_proc: u64,
    src_slot: u64,
    dst_slot: u64,
    rights: u64,
) -> SysResult {
    let target = process_cap(k, p, dst_proc, Rights::CONTROL)?;
    let mask = Rights::from_bits(rights).ok_or(Error::InvalidArgument)?;
    let cap = k.proc(p).caps.derive(src_slot, mask)?;
    let slot = if dst_slot == u64::MAX {
        k.proc_mut(target).caps.insert(cap)?
    } else {
        k.proc_mut(target).caps.insert_at(dst_slot, cap)?;
        dst_slot
    };
    k.took_cap(cap.object);
    Ok(slot)
}

fn process_wait(k: &mut Kernel, t: ThreadId, p: ProcId, slot: u64) -> Outcome {
    let target = match lookup(k, p, slot, CapKind::Process, Rights::READ) {
        Ok(Cap {
            object: Object::Process(target),
            ..
        }) => target,
        Ok(_) => unreachable!("kind checked"),
        Err(e) => return ret(Err(e)),
    };
    if target == p {
        return ret(Err(Error::InvalidArgument));
    }
    match k.proc(target).state {
        ProcState::Exited(s) => ret(Ok(s.encode())),
        ProcState::Alive => {
            k.thread_mut(t).expect("caller").state = ThreadState::Waiting(target);
            k.proc_mut(target).waiters.push(t);
            Outcome::Blocked
        }
    }
}

fn cap_info(k: &Kernel, p: ProcId, slot: u64) -> SysResult {
    let cap = k.proc(p).caps.get(slot)?;
    let pages = match cap.object {
        Object::Memory(m) => k.mems[m.0 as usize]
            .as_ref()
            .map_or(0, |o| o.frames.len() as u64),
        _ => 0,
    };
    Ok((pages << 40) | ((cap.object.kind() as u64) << 32) | cap.rights.0 as u64)
}

fn shutdown(k: &mut Kernel, p: ProcId, slot: u64, code: u64) -> SysResult {
    lookup(k, p, slot, CapKind::Power, Rights::WRITE)?;
    crate::kprintln!("shutdown requested by '{}' (code {code})", k.proc(p).name);
    crate::power_off(code)
}

fn cap_delete(k: &mut Kernel, p: ProcId, slot: u64) -> SysResult {
    let cap = k.proc_mut(p).caps.remove(slot)?;
    k.drop_cap(cap);
    Ok(0)
}
