//! Synchronous IPC (call, recv, reply, send) and notifications.
//!
//! A rendezvous copies up to three words in registers and may pass one
//! capability, which the receiver gets as a derived copy (so the sender
//! can revoke it). `call` leaves the receiver a one-shot reply right: the
//! next `reply` answers exactly that caller. Every wait can time out, and
//! a caller whose server dies gets `Dead` instead of hanging.

use crate::kernel::Kernel;
use crate::object::*;
use exo_abi::{Error, Rights, MSG_WORDS, NOTIFY_BADGE, NO_CAP};

/// What the calling thread should do next.
pub enum Next {
    /// Return to it now with this result in `rax`.
    Return(Result<u64, Error>),
    /// It blocked.
    Blocked,
}

/// The common case of `call` and `reply_recv`, done with the fewest steps
/// (seL4 has the same split): no capability passed, no timeout, the
/// partner already waiting without a deadline. Reads the arguments
/// straight from the caller's saved registers `f`, moves the words, makes
/// the partner runnable and the caller blocked, and returns the partner
/// (and where it lives) to switch to directly. `None`: take the general
/// path (nothing changed).
#[inline(always)]
pub fn fastpath(k: &mut Kernel, t: ThreadId, f: &crate::arch::trap::TrapFrame) -> Option<(ThreadId, *const Thread)> {
    const CALL: u64 = exo_abi::Sys::Call as u64;
    const REPLY_RECV: u64 = exo_abi::Sys::ReplyRecv as u64;
    let number = f.rax;
    let is_call = number == CALL;
    if (!is_call && number != REPLY_RECV) || f.r8 != NO_CAP || f.r9 != exo_abi::FOREVER {
        return None;
    }
    let ti = t.index as usize;
    // Both threads are looked up once; the boxes they live in are neither
    // freed nor moved while the kernel runs this path.
    let me: *mut Thread = &mut **k.threads.get_mut(ti)?.as_mut()?;
    // SAFETY: `me` is the current thread, live (see above).
    let (process, reply_to) = unsafe { ((*me).process, (*me).reply_to) };
    let cap = k.procs[process.0 as usize].caps.get_ref(f.rdi)?;
    let Object::Endpoint(e, badge) = cap.object.object else { return None };
    if !cap.rights.contains(if is_call { Rights::WRITE } else { Rights::READ }) {
        return None;
    }
    let ep = k.endpoints.get_mut(e.0 as usize)?.as_mut()?;
    let partner = if is_call { ep.receivers.pop_front()? } else { reply_to? };
    let pi = partner.index as usize;
    let other: Option<*mut Thread> = match k.threads.get_mut(pi) {
        Some(Some(b)) if pi != ti => Some(&mut **b),
        _ => None,
    };
    // SAFETY: a live thread other than `me` (checked just above).
    let ok = other.is_some_and(|o| unsafe {
        let th = &*o;
        let waiting = if is_call {
            matches!(th.state, ThreadState::Receiving(x, None) if x == e)
        } else {
            th.state == ThreadState::AwaitingReply && ep.senders.is_empty()
        };
        th.generation == partner.generation && waiting && th.deadline.is_none()
    });
    let Some(other) = other.filter(|_| ok) else {
        if is_call {
            ep.receivers.push_front(partner); // as it was
        }
        return None;
    };
    // Committed: nothing below can fail.
    if !is_call {
        ep.receivers.push_back(t);
    }
    // SAFETY: `me` and `other` are distinct live threads; `f` (our own
    // frame) is read before `me` changes.
    unsafe {
        let (rsi, rdx, r10) = (f.rsi, f.rdx, f.r10);
        let o = &mut (*other).frame;
        o.rax = 0;
        o.rsi = rsi;
        o.rdx = rdx;
        o.r10 = r10;
        o.rdi = NO_CAP;
        (*other).state = ThreadState::Runnable;
        let me = &mut *me;
        if is_call {
            o.r9 = badge;
            (*other).reply_to = Some(t);
            me.state = ThreadState::AwaitingReply;
        } else {
            me.reply_to = None;
            me.state = ThreadState::Receiving(e, None);
        }
        // Our FPU state is live in the CPU (we entered by SYSCALL): keep it.
        me.fpu.save();
        me.fpu_saved = true;
    }
    k.fpu_live = false;
    Some((partner, other))
}

impl Kernel {
    /// Writes a delivered message into `t`'s registers.
    fn write_message(&mut self, t: ThreadId, words: [u64; MSG_WORDS], cap_slot: u64, badge: u64) {
        let f = &mut self.thread_mut(t).expect("receiver").frame;
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
                self.thread_mut(r).expect("receiver").reply_to = Some(t);
                // The call's timeout covers the wait for the reply too.
                self.block(t, ThreadState::AwaitingReply, timeout);
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
                self.thread_mut(s).expect("sender").state = ThreadState::AwaitingReply;
                self.thread_mut(t).expect("receiver").reply_to = Some(s);
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

    /// `reply` by `t` to the caller it owes.
    pub fn ipc_reply(&mut self, t: ThreadId, words: [u64; MSG_WORDS], cap: Option<u64>) -> Result<u64, Error> {
        let caller = self.thread_mut(t).expect("replier").reply_to.take().ok_or(Error::NoReply)?;
        if !self.thread(caller).is_some_and(|c| c.state == ThreadState::AwaitingReply) {
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

    /// A new endpoint with no references yet.
    pub fn new_endpoint(&mut self) -> EpId {
        let generation = self.fresh_generation();
        let ep = Endpoint { senders: Default::default(), receivers: Default::default(), refs: 0, generation };
        EpId(crate::kernel::insert_in_free_slot(&mut self.endpoints, ep))
    }

    /// A new notification with no references yet.
    pub fn new_notification(&mut self) -> NtfnId {
        let generation = self.fresh_generation();
        let nt = Notification { bits: 0, waiters: Default::default(), refs: 0, generation };
        NtfnId(crate::kernel::insert_in_free_slot(&mut self.notifications, nt))
    }
}
