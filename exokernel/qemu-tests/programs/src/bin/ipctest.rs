//! Exercises IPC, capability transfer, shared memory, revocation, the
//! security lattice and notifications against the `echo` servers, one
//! check per line. Endpoints (slots from 16): echo, guest (a server
//! labelled guest), doomed (a server that dies mid-call), nobody (no
//! server). Needs console and untyped.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use exo_rt::abi::lattice::Label;
use exo_rt::abi::{map_flags, slot, Error, Rights, FOREVER, NOTIFY_BADGE};
use exo_rt::caps::{self, Endpoint, Notification, Untyped, SELF};
use exo_rt::{sys, thread};

use exo_demos::Checks;

exo_rt::entry!(main);

const MS: u64 = 1_000_000;
const SHM_VA: u64 = 0x6000_0000;
const TEXT: &[u8] = b"hello through shared memory";

static NOTIFY_SLOT: AtomicU64 = AtomicU64::new(0);

fn signaller(bits: u64) {
    sys::sleep(10 * MS);
    let n = Notification::from_slot(NOTIFY_SLOT.load(Ordering::SeqCst));
    let _ = n.signal(bits);
}

/// The 16 SSE registers (two words each) and rbx, rbp, r12-r15.
type Registers = [u64; 38];

/// Loads distinct values into every SSE register and the callee-saved
/// registers, calls `ep` asking the server to overwrite its own with
/// `scribble` (operation 6 of `echo`), and returns what was loaded and
/// what the registers held after the reply.
fn registers_across_call(ep: u64, scribble: u64) -> (Registers, Registers) {
    let mut sent: Registers = [0; 38];
    for (i, w) in sent.iter_mut().enumerate() {
        *w = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1) ^ 0x8000_0000_0000_0000;
    }
    let mut kept: Registers = [0; 38];
    // SAFETY: saves and restores every callee-saved register it changes on
    // the stack; reads `sent` (through rcx, before SYSCALL clobbers it) and
    // writes `kept` (its address kept on the stack), both 38 words; the
    // registers of the system-call ABI are declared.
    unsafe {
        core::arch::asm!(
            "push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
            "push r11",                      /* where to store */
            "movdqu xmm0, [rcx]", "movdqu xmm1, [rcx + 16]", "movdqu xmm2, [rcx + 32]",
            "movdqu xmm3, [rcx + 48]", "movdqu xmm4, [rcx + 64]", "movdqu xmm5, [rcx + 80]",
            "movdqu xmm6, [rcx + 96]", "movdqu xmm7, [rcx + 112]", "movdqu xmm8, [rcx + 128]",
            "movdqu xmm9, [rcx + 144]", "movdqu xmm10, [rcx + 160]", "movdqu xmm11, [rcx + 176]",
            "movdqu xmm12, [rcx + 192]", "movdqu xmm13, [rcx + 208]", "movdqu xmm14, [rcx + 224]",
            "movdqu xmm15, [rcx + 240]",
            "mov rbx, [rcx + 256]", "mov rbp, [rcx + 264]", "mov r12, [rcx + 272]",
            "mov r13, [rcx + 280]", "mov r14, [rcx + 288]", "mov r15, [rcx + 296]",
            "syscall",
            "pop rcx",
            "movdqu [rcx], xmm0", "movdqu [rcx + 16], xmm1", "movdqu [rcx + 32], xmm2",
            "movdqu [rcx + 48], xmm3", "movdqu [rcx + 64], xmm4", "movdqu [rcx + 80], xmm5",
            "movdqu [rcx + 96], xmm6", "movdqu [rcx + 112], xmm7", "movdqu [rcx + 128], xmm8",
            "movdqu [rcx + 144], xmm9", "movdqu [rcx + 160], xmm10", "movdqu [rcx + 176], xmm11",
            "movdqu [rcx + 192], xmm12", "movdqu [rcx + 208], xmm13", "movdqu [rcx + 224], xmm14",
            "movdqu [rcx + 240], xmm15",
            "mov [rcx + 256], rbx", "mov [rcx + 264], rbp", "mov [rcx + 272], r12",
            "mov [rcx + 280], r13", "mov [rcx + 288], r14", "mov [rcx + 296], r15",
            "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
            inout("rax") exo_rt::abi::Sys::Call as u64 => _,
            inout("rdi") ep => _,
            inout("rsi") 6u64 => _,
            inout("rdx") scribble => _,
            inout("r10") 0u64 => _,
            in("r8") exo_rt::abi::NO_CAP,
            inout("r9") FOREVER => _,
            inout("rcx") sent.as_ptr() => _,
            inout("r11") kept.as_mut_ptr() => _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
        );
    }
    (sent, kept)
}

fn main(_args: &str) -> i32 {
    let ep = |i: u64| Endpoint::from_slot(exo_manifest::ENDPOINT_SLOT_BASE + i);
    let (echo, guest, doomed, nobody) = (ep(0), ep(1), ep(2), ep(3));
    let untyped = Untyped::from_slot(slot::UNTYPED);
    let mut c = Checks::new("ipc");

    // 1. Round trips, with the badge the root task minted for us.
    let mut badge = 0;
    let ok = (0..100).all(|i| match echo.call([1, i, 0], None, FOREVER) {
        Ok(m) => {
            badge = m.words[1];
            m.words[0] == i + 1
        }
        Err(_) => false,
    });
    c.check("ping-pong", ok && badge != 0, format_args!("100 calls answered, badge {badge}"));

    // 2. Timeouts: nobody listens.
    let start = sys::clock();
    let r = nobody.call([1, 0, 0], None, 20 * MS);
    let waited = (sys::clock() - start) / MS;
    c.check("call timeout", r == Err(Error::Timeout) && waited >= 20, format_args!("{r:?} after {waited} ms"));
    let r = nobody.send([1, 0, 0], None, 0);
    c.check("send poll", r == Err(Error::Timeout), format_args!("{r:?}"));

    // 3. Shared memory granted by passing a capability.
    let mem = untyped.alloc(1).expect("memory");
    SELF.map(mem, SHM_VA, map_flags::READ | map_flags::WRITE).expect("map own memory");
    // SAFETY: one page mapped read-write at SHM_VA just above.
    unsafe { core::ptr::copy_nonoverlapping(TEXT.as_ptr(), SHM_VA as *mut u8, TEXT.len()) };
    let sum: u64 = TEXT.iter().map(|b| *b as u64).sum();
    let r = echo.call([2, TEXT.len() as u64, 0], Some(mem.slot()), FOREVER);
    c.check(
        "shared memory grant",
        r.map(|m| m.words[0]) == Ok(sum),
        format_args!("server summed {:?}, expected {sum}", r.map(|m| m.words[0])),
    );

    // 4. Revoke while the server holds and has mapped it.
    let n = caps::revoke(mem.slot());
    let r = echo.call([3, 0, 0], None, FOREVER);
    // SAFETY: our own mapping of the page survives the revoke.
    let still = unsafe { core::ptr::read_volatile(SHM_VA as *const u8) };
    c.check(
        "revoke",
        n == Ok(1) && r.map(|m| m.words[0]) == Ok(1) && still == TEXT[0],
        format_args!(
            "revoked {n:?}; server lost capability and mapping: {:?}; ours intact",
            r.map(|m| m.words[0] == 1)
        ),
    );

    // 5. The lattice: a user-labelled capability cannot go to a guest, by
    //    IPC or by copying, and nothing can be relabelled upward.
    let r = guest.call([2, 1, 0], Some(mem.slot()), 50 * MS);
    c.check("pass capability down to a guest", r == Err(Error::LabelViolation), format_args!("{r:?}"));
    let r = SELF.give(mem.slot(), None, Rights::ALL, Some(Label::ROOT.encode()), None);
    c.check("relabel upward", r == Err(Error::LabelViolation), format_args!("{r:?}"));
    let r = SELF.give(mem.slot(), None, Rights::READ, Some(Label::GUEST.encode()), None);
    c.check("relabel downward", r.is_ok(), format_args!("{r:?}"));

    // 6. Notifications: wait, timeout, and bound to a receive.
    // Page tables are charged to the budget too: mapping one page in 8
    // fresh GiB regions of a fresh 512 GiB region takes a page directory
    // pointer table, 8 page directories and 8 page tables: 17 pages.
    let left = || caps::info(untyped.slot()).map(|i| i.pages).unwrap_or(0);
    let page = untyped.alloc(1).expect("memory");
    let before = left();
    const FAR: u64 = 0x100_0000_0000; // 1 TiB: nothing is mapped near
    let mut ok = true;
    for i in 0..8u64 {
        ok &= SELF.map(page, FAR + (i << 30), map_flags::READ).is_ok() && SELF.unmap(FAR + (i << 30)).is_ok();
    }
    let charged = before - left();
    c.check("page tables charged", ok && charged == 17, format_args!("{charged} pages for 8 mappings"));

    let note = untyped.create_notification().expect("notification");
    NOTIFY_SLOT.store(note.slot(), Ordering::SeqCst);
    thread::spawn(signaller, 0b101).expect("thread");
    let r = note.wait(FOREVER);
    c.check("signal wakes wait", r == Ok(0b101), format_args!("{r:?}"));
    let r = note.wait(5 * MS);
    c.check("wait timeout", r == Err(Error::Timeout), format_args!("{r:?}"));
    let own = untyped.create_endpoint().expect("endpoint");
    thread::spawn(signaller, 0b10).expect("thread");
    let r = own.recv(Some(note), FOREVER);
    c.check(
        "bound notification ends recv",
        r.map(|m| (m.badge, m.words[0])) == Ok((NOTIFY_BADGE, 0b10)),
        format_args!("{:?}", r.map(|m| m.words[0])),
    );

    // A server whose receives also wait for a notification (as a driver's
    // wait for its interrupts): calls and signals in turn each reach it,
    // calls through the fast path both ways.
    let bound_note = untyped.create_notification().expect("notification");
    let r = echo.call([7, 0, 0], Some(bound_note.slot()), FOREVER);
    let mut answered = 0;
    let mut sent_bits = 0u64;
    for i in 0..200u64 {
        answered += u64::from(echo.call([1, i, 0], None, FOREVER).is_ok_and(|m| m.words[0] == i + 1));
        if i % 20 == 19 {
            let bit = 1 << (i / 20);
            let _ = bound_note.signal(bit);
            sent_bits |= bit;
        }
    }
    let seen = echo.call([8, 0, 0], None, FOREVER).map(|m| (m.words[0], m.words[1]));
    c.check(
        "calls and signals to a bound receiver",
        r.is_ok_and(|m| m.words[0] == 1) && answered == 200 && seen == Ok((10, sent_bits)),
        format_args!("{answered}/200 calls answered; signals seen and their bits: {seen:x?} of (a, {sent_bits:x})"),
    );

    // 7. A round trip (the kernel's fast path both ways) leaves the caller's
    //    registers as they were, though the server overwrote its own.
    let (sent, kept) = registers_across_call(echo.slot(), 0x5a5a_5a5a_5a5a_5a5a);
    let changed = (0..sent.len()).filter(|i| sent[*i] != kept[*i]).count();
    let first = (0..sent.len()).find(|i| sent[*i] != kept[*i]).map(|i| (i, kept[i]));
    c.check(
        "registers kept across a call",
        changed == 0,
        format_args!("16 SSE and 6 callee-saved registers: {changed} words changed (first: {first:x?})"),
    );

    // 8. One-shot replies, and a server that dies in the middle of a call.
    let r = caps::reply([0, 0, 0], None);
    c.check("reply without a call", r == Err(Error::NoReply), format_args!("{r:?}"));
    let start = sys::clock();
    let r = doomed.call([4, 0, 0], None, 5000 * MS);
    let waited = (sys::clock() - start) / MS;
    c.check("server dies mid-call", r == Err(Error::Dead), format_args!("{r:?} after {waited} ms"));
    // The root task restarts it on the same endpoint: the next call waits
    // for the new instance and is answered.
    let r = doomed.call([1, 41, 0], None, 5000 * MS);
    c.check("restarted server answers", r.map(|m| m.words[0]) == Ok(42), format_args!("{:?}", r.map(|m| m.words[0])));

    for server in [echo, guest, doomed] {
        let _ = server.call([5, 0, 0], None, 1000 * MS);
    }
    c.finish()
}
