//! Synchronous IPC (call, recv, reply, send) and notifications.
//!
//! A rendezvous copies up to three words in registers and may pass one
//! capability, which the receiver gets as a derived copy (so the sender
//! can revoke it). `call` leaves the receiver a one-shot reply right: the
//! next `reply` answers exactly that caller. Every wait can time out, and
//! a caller whose server dies gets `Dead` instead of hanging.

use crate::arch::trap::{self, TrapFrame, SYSCALL_VECTOR};
use crate::kernel::Kernel;
use crate::object::*;
use core::mem::offset_of;
use core::ptr::null;
use exo_abi::{Error, Rights, MSG_WORDS, NOTIFY_BADGE, NO_CAP};

/// What the calling thread should do next.
pub enum Next {
    /// Return to it now with this result in `rax`.
    Return(Result<u64, Error>),
    /// It blocked.
    Blocked,
}

/// The common case of `call` and `reply_recv`, done in the fewest
/// instructions (seL4 has the same split): no capability passed, no
/// timeout, the partner already waiting without a deadline. A server whose
/// receive also waits for a notification (a driver's interrupts, say)
/// stays on it: a call takes it off that notification's waiters, a
/// `reply_recv` puts it on, unless bits are pending there. The SYSCALL
/// entry calls this before anything else. It reads the arguments straight
/// from the caller's saved registers, moves the words, blocks the caller,
/// makes the partner current in its address space, and leaves into it
/// through SYSRET (the exit stub loads its FPU state, as every return to
/// user mode does). Every other case goes, with nothing changed, to the
/// general path ([`crate::syscall_from_user`]). `scripts/trace-ipc`
/// counts its instructions.
///
/// # Safety
/// Only the SYSCALL entry calls this, with the frame it just saved: the
/// current thread's own (interrupts off, nothing else running).
pub unsafe extern "C" fn fastpath(frame: *mut TrapFrame) -> ! {
    const CALL: u64 = exo_abi::Sys::Call as u64;
    const REPLY_RECV: u64 = exo_abi::Sys::ReplyRecv as u64;
    // SAFETY: the caller's promise: a live, saved frame.
    let f = unsafe { &*frame };
    // One copy of the path for each call, so neither tests which it is.
    // SAFETY: the caller's promise, passed on.
    let to = unsafe {
        match f.rax {
            _ if f.r8 != NO_CAP || f.r9 != exo_abi::FOREVER => null(),
            CALL => fast::<true>(frame),
            REPLY_RECV => fast::<false>(frame),
            _ => null(),
        }
    };
    if to.is_null() {
        // SAFETY: the caller's promise, passed on; nothing has changed.
        unsafe { crate::syscall_from_user(frame) }
    }
    // SAFETY: `fast` returns the thread it made current, which entered by
    // SYSCALL (see there).
    unsafe { trap::sysret_to::<{ offset_of!(Thread, ctx) }>(to.cast()) }
}

/// [`fastpath`] for `call` (`IS_CALL`) or `reply_recv`.
///
/// # Safety
/// As for [`fastpath`].
#[inline(always)]
unsafe fn fast<const IS_CALL: bool>(frame: *mut TrapFrame) -> *const Thread {
    // SAFETY: the caller's promise: a live, saved frame.
    let (slots, words) = unsafe {
        let f = &*frame;
        (f.rdi, [f.rsi, f.rdx, f.r10])
    };
    // A reply_recv names a bound notification too.
    let (slot, bound_slot) = if IS_CALL { (slots, NO_CAP) } else { exo_abi::split_reply_recv_slots(slots) };
    // SAFETY: an entry from user mode.
    let k = unsafe { crate::kernel_unchecked() };
    // SAFETY: a system call comes from the current thread.
    let me_id = unsafe { k.current.unwrap_unchecked() };
    // The entry saved into the current thread's frame, so the thread is
    // found from the frame (as seL4 finds its TCB from the saved context).
    // SAFETY: `frame` starts the current thread's `ctx` (a `UserContext`,
    // frame first), and the thread lives in its box for as long as it
    // exists.
    let me = unsafe { frame.byte_sub(offset_of!(Thread, ctx)).cast::<Thread>() };
    // SAFETY: as above; only plain fields are read. The thread's pointer
    // to its process's capability slots is valid while it lives (see
    // `Thread::caps`), and nothing changes them during this lookup.
    let (caps, reply_to) = unsafe { (&*(*me).caps, (*me).reply_to) };
    let Some(Some(cap)) = caps.get(slot as usize) else { return null() };
    let Object::Endpoint(e, badge) = cap.object.object else { return null() };
    if !cap.rights.contains(if IS_CALL { Rights::WRITE } else { Rights::READ }) {
        return null();
    }
    // The notification a reply_recv binds: read by the replier, and with
    // no bits pending (else the receive ends at once: the general path).
    let bound = if bound_slot == NO_CAP {
        None
    } else {
        let Some(Some(cap)) = caps.get(bound_slot as usize) else { return null() };
        let Object::Notification(n) = cap.object.object else { return null() };
        if !cap.rights.contains(Rights::READ) {
            return null();
        }
        match k.notifications.get(n.0 as usize) {
            Some(Some(nt)) if nt.bits == 0 && nt.waiters.has_room() => Some(n),
            _ => return null(),
        }
    };
    let Some(Some(ep)) = k.endpoints.get_mut(e.0 as usize) else { return null() };
    // A call goes to the first receiver; a reply goes to the caller owed
    // one, unless senders are queued (then the receive half has work the
    // general path does) or queueing the replier as a receiver would need
    // memory.
    let partner = if IS_CALL {
        ep.receivers.front()
    } else if ep.senders.is_empty() && ep.receivers.has_room() && !ep.closed {
        reply_to.map(|o| o.caller)
    } else {
        None
    };
    let Some(partner) = partner else { return null() };
    let Some(Some(other)) = k.threads.get_mut(partner.index as usize) else { return null() };
    let other: &mut Thread = other;
    // A receiver that still owes a call goes the general way (which
    // abandons that call); a reply must find its caller waiting for
    // exactly the call it answers.
    let waiting = if IS_CALL {
        matches!(other.state, ThreadState::Receiving(x, _) if x == e) && other.reply_to.is_none()
    } else {
        matches!((other.state, reply_to), (ThreadState::AwaitingReply(c), Some(o)) if c == o.call)
    };
    // The partner must wait in exactly that state, and with no deadline
    // (else it sits on the timed list).
    // Its stack pointer is whatever user code left in RSP: a non-canonical
    // one goes the general way, where `resume` ends the process.
    if other.generation != partner.generation || !waiting || other.deadline.is_some() || other.ctx.frame.rsp >> 47 != 0
    {
        return null();
    }
    // A thread blocks only in a system call, and nothing else writes its
    // frame, so SYSRET can take it back: RIP follows a SYSCALL instruction
    // in user space, so it is canonical (at most `USER_END`).
    debug_assert!(other.ctx.frame.vector == SYSCALL_VECTOR && other.ctx.frame.returnable());
    // Port ranges open in the I/O bitmap must be the partner's own: a
    // driver that maps ports goes the general way, which loads them.
    if k.procs.get(other.process.0 as usize).is_none_or(|q| q.io_maps != k.io_loaded) {
        return null();
    }
    // A receiver called while it also waits for a notification leaves that
    // notification's waiters: found at their front here (anything else
    // goes the general way, which looks through them).
    let unbind = match other.state {
        ThreadState::Receiving(_, Some(n)) if IS_CALL => match k.notifications.get_mut(n.0 as usize) {
            Some(Some(nt)) if nt.waiters.front() == Some(partner) => Some(nt),
            _ => return null(),
        },
        _ => None,
    };
    // The current thread is Runnable, the partner is not: distinct.
    debug_assert!(!core::ptr::eq(me, other));
    // Committed: nothing below can fail.
    // SAFETY: the current thread, distinct from `other` (see above); the
    // copy of its frame's fields above was the last use of `frame`.
    let me = unsafe { &mut *me };
    if IS_CALL {
        ep.receivers.drop_front(); // the partner, seen at the front above
        if let Some(nt) = unbind {
            nt.waiters.drop_front(); // the partner too
        }
        other.ctx.frame.r9 = badge;
        k.calls += 1;
        other.reply_to = Some(Owed { caller: me_id, call: k.calls });
        me.state = ThreadState::AwaitingReply(k.calls);
    } else {
        let _ = ep.receivers.push_back_in_place(me_id); // room checked above
        if let Some(Some(nt)) = bound.and_then(|n| k.notifications.get_mut(n.0 as usize)) {
            let _ = nt.waiters.push_back_in_place(me_id); // room checked above
        }
        other.ctx.frame.r9 = 0;
        me.reply_to = None;
        me.state = ThreadState::Receiving(e, bound);
    }
    let o = &mut other.ctx.frame;
    o.rax = 0;
    o.rdi = NO_CAP;
    [o.rsi, o.rdx, o.r10] = words;
    other.state = ThreadState::Runnable;
    k.current = Some(partner);
    // The caller had the CPU since the last change (it was resumed or
    // handed over to); from now on the partner has it.
    let now = crate::arch::cpu::rdtsc();
    me.cpu_ticks = me.cpu_ticks.wrapping_add(now.wrapping_sub(k.on_cpu_since));
    k.on_cpu_since = now;
    k.on_cpu = Some(partner);
    crate::sched::enter_address_space(other.pml4);
    crate::sched::enter_tls(other.fs_base);
    trap::enter_context(&other.ctx);
    other
}

impl Kernel {
    /// Writes a delivered message into `t`'s registers.
    fn write_message(&mut self, t: ThreadId, words: [u64; MSG_WORDS], cap_slot: u64, badge: u64) {
        let f = &mut self.thread_mut(t).expect("receiver").ctx.frame;
        f.rsi = words[0];
        f.rdx = words[1];
        f.r10 = words[2];
        f.rdi = cap_slot;
        f.r9 = badge;
    }

    /// Moves `msg` from `sender` to `receiver`: the words, and a derived
    /// copy of the passed capability (checked against the receiver's
    /// label). On error nothing is delivered.
    fn transfer(&mut self, sender: ThreadId, receiver: ThreadId, msg: Message) -> Result<(), Error> {
        let from = self.proc_of(sender);
        let to = self.proc_of(receiver);
        let slot = match msg.cap {
            Some(s) => self.copy_cap(from, s, to, None, Rights::ALL, None, None)?,
            None => NO_CAP,
        };
        self.write_message(receiver, msg.words, slot, msg.badge);
        Ok(())
    }

    fn endpoint(&mut self, e: EpId) -> &mut Endpoint {
        self.endpoints[e.0 as usize].as_mut().expect("endpoint named by a live capability")
    }

    /// `send` or `call` from `t` on endpoint `e`.
    pub fn ipc_send(&mut self, t: ThreadId, e: EpId, msg: Message, timeout: u64) -> Next {
        if self.endpoint(e).closed {
            return Next::Return(Err(Error::Gone));
        }
        while let Some(r) = self.endpoint(e).receivers.pop_front() {
            if !matches!(self.thread(r).map(|th| th.state), Some(ThreadState::Receiving(x, _)) if x == e) {
                continue; // stale entry
            }
            if let Err(err) = self.transfer(t, r, msg) {
                self.endpoint(e).receivers.push_front(r);
                return Next::Return(Err(err));
            }
            self.wake(r, Ok(0));
            return if msg.is_call {
                let call = self.take_call(r, t);
                // The call's timeout covers the wait for the reply too.
                self.block(t, ThreadState::AwaitingReply(call), timeout);
                Next::Blocked
            } else {
                Next::Return(Ok(0))
            };
        }
        if timeout == 0 {
            return Next::Return(Err(Error::Timeout));
        }
        self.thread_mut(t).expect("sender").outgoing = msg;
        self.endpoint(e).senders.push_back(t);
        self.block(t, ThreadState::Sending(e), timeout);
        Next::Blocked
    }

    /// `recv` by `t` on endpoint `e`, optionally also woken by signals on
    /// notification `n`.
    pub fn ipc_recv(&mut self, t: ThreadId, e: EpId, n: Option<NtfnId>, timeout: u64) -> Next {
        if self.endpoint(e).closed {
            return Next::Return(Err(Error::Gone));
        }
        if let Some(n) = n {
            let nt = self.notifications[n.0 as usize].as_mut().expect("live notification");
            if nt.bits != 0 {
                let bits = core::mem::take(&mut nt.bits);
                self.write_message(t, [bits, 0, 0], NO_CAP, NOTIFY_BADGE);
                return Next::Return(Ok(0));
            }
        }
        while let Some(s) = self.endpoint(e).senders.pop_front() {
            if self.thread(s).map(|th| th.state) != Some(ThreadState::Sending(e)) {
                continue;
            }
            let msg = self.thread(s).expect("sender").outgoing;
            if let Err(err) = self.transfer(s, t, msg) {
                // The sender's capability could not be passed: fail it and
                // look at the next sender.
                self.wake(s, Err(err));
                continue;
            }
            if msg.is_call {
                // Its deadline (if any) carries over to the reply wait.
                let call = self.take_call(t, s);
                self.thread_mut(s).expect("sender").state = ThreadState::AwaitingReply(call);
            } else {
                self.wake(s, Ok(0));
            }
            return Next::Return(Ok(0));
        }
        if timeout == 0 {
            return Next::Return(Err(Error::Timeout));
        }
        self.endpoint(e).receivers.push_back(t);
        if let Some(n) = n {
            self.notifications[n.0 as usize].as_mut().expect("live").waiters.push_back(t);
        }
        self.block(t, ThreadState::Receiving(e, n), timeout);
        Next::Blocked
    }

    /// Server thread `server` takes a call from `caller`: it owes that
    /// call a reply now (a call it owed before is abandoned: it can answer
    /// only the last). Returns the call's number.
    fn take_call(&mut self, server: ThreadId, caller: ThreadId) -> u64 {
        let call = self.next_call();
        let owed = self.thread_mut(server).expect("server").reply_to.replace(Owed { caller, call });
        if let Some(owed) = owed {
            self.abandon(owed);
        }
        call
    }

    /// `reply` by `t` to the call it owes; `Dead` if the caller no longer
    /// waits for that call (it timed out, perhaps called elsewhere since,
    /// or is gone).
    pub fn ipc_reply(&mut self, t: ThreadId, words: [u64; MSG_WORDS], cap: Option<u64>) -> Result<u64, Error> {
        let Owed { caller, call } = self.thread_mut(t).expect("replier").reply_to.take().ok_or(Error::NoReply)?;
        if !self.thread(caller).is_some_and(|c| c.state == ThreadState::AwaitingReply(call)) {
            return Err(Error::Dead);
        }
        self.transfer(t, caller, Message { words, cap, is_call: false, badge: 0 })?;
        self.wake(caller, Ok(0));
        Ok(0)
    }

    /// `signal`: ORs `bits` into notification `n` and hands them to the
    /// first waiter, if any.
    pub fn signal(&mut self, n: NtfnId, bits: u64) {
        let nt = self.notifications[n.0 as usize].as_mut().expect("live notification");
        nt.bits |= bits;
        while let Some(w) = self.notifications[n.0 as usize].as_mut().expect("live").waiters.pop_front() {
            let state = self.thread(w).map(|th| th.state);
            let receiving = matches!(state, Some(ThreadState::Receiving(_, Some(x))) if x == n);
            if state != Some(ThreadState::WaitingSignal(n)) && !receiving {
                continue;
            }
            let bits = core::mem::take(&mut self.notifications[n.0 as usize].as_mut().expect("live").bits);
            if receiving {
                self.write_message(w, [bits, 0, 0], NO_CAP, NOTIFY_BADGE);
                self.wake(w, Ok(0));
            } else {
                self.wake(w, Ok(bits));
            }
            return;
        }
    }

    /// `wait` by `t` on notification `n`.
    pub fn wait(&mut self, t: ThreadId, n: NtfnId, timeout: u64) -> Next {
        let nt = self.notifications[n.0 as usize].as_mut().expect("live notification");
        if nt.bits != 0 {
            return Next::Return(Ok(core::mem::take(&mut nt.bits)));
        }
        if timeout == 0 {
            return Next::Return(Err(Error::Timeout));
        }
        nt.waiters.push_back(t);
        self.block(t, ThreadState::WaitingSignal(n), timeout);
        Next::Blocked
    }

    /// A thread's deadline passed: a sleeper wakes with 0, any other wait
    /// ends with `Timeout`.
    pub fn expire(&mut self, t: ThreadId) {
        match self.thread(t).map(|th| th.state) {
            Some(ThreadState::Sleeping(_)) => self.wake(t, Ok(0)),
            Some(ThreadState::Runnable) | None => {}
            Some(_) => self.wake(t, Err(Error::Timeout)),
        }
    }

    /// `endpoint_close`: closes endpoint `e` for good; every thread
    /// waiting on it wakes with `Gone`.
    pub fn endpoint_close(&mut self, e: EpId) {
        let ep = self.endpoint(e);
        ep.closed = true;
        let waiting: alloc::vec::Vec<ThreadId> = ep.senders.iter().chain(ep.receivers.iter()).collect();
        for t in waiting {
            self.wake(t, Err(Error::Gone));
        }
    }

    /// A new endpoint with no references yet.
    pub fn new_endpoint(&mut self, charged: Option<u32>) -> EpId {
        let generation = self.fresh_generation();
        let ep = Endpoint {
            senders: Default::default(),
            receivers: Default::default(),
            refs: 0,
            generation,
            charged,
            closed: false,
        };
        EpId(crate::kernel::insert_in_free_slot(&mut self.endpoints, ep))
    }

    /// A new notification with no references yet.
    pub fn new_notification(&mut self, charged: Option<u32>) -> NtfnId {
        let generation = self.fresh_generation();
        let nt = Notification { bits: 0, waiters: Default::default(), refs: 0, generation, charged };
        NtfnId(crate::kernel::insert_in_free_slot(&mut self.notifications, nt))
    }
}
