//! Kernel entry and exit: interrupt stubs, the SYSCALL entry, the IDT and
//! the two ways back to user mode (SYSRET and IRETQ).
//!
//! Every entry from user mode saves the registers straight into the
//! running thread's own [`TrapFrame`] (TSS.RSP0 points at its end, for the
//! CPU and the SYSCALL entry alike, as seL4 saves into the TCB) and its
//! FPU/SSE state just after it (the two make a [`UserContext`]); every
//! return to user mode loads both. So kernel code may use any register,
//! SSE included, and nothing it leaves there reaches user mode. An entry
//! then switches to the one kernel stack and calls into Rust, which never
//! returns: it ends in [`return_to_user`], which pops the chosen thread's
//! frame in place, in [`sysret_to`] (the IPC fast path) or in
//! [`enter_idle`]. So the kernel never resumes interrupted kernel code,
//! copies no frames, and one kernel stack serves every thread.
//!
//! The SYSCALL entry first tries the IPC fast path
//! ([`crate::ipc::fastpath`]), which goes on to the general system-call
//! path ([`crate::syscall_from_user`]) when it cannot finish the call.

use super::cpu::{selector, FpuState, KERNEL_STACK, KERNEL_STACK_SIZE};
use core::arch::global_asm;
use core::cell::UnsafeCell;

/// Vector number recorded in frames built by the SYSCALL entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// User register state as saved on kernel entry. Field order is the
/// push order of the entry code, reversed.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs)] // register names
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Interrupt vector, or [`SYSCALL_VECTOR`].
    pub vector: u64,
    /// CPU error code (0 where the CPU pushes none).
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// A frame that starts a new user thread at `entry` with stack `rsp`
    /// and `arg` in `rdi`, interrupts enabled.
    pub fn new_user(entry: u64, rsp: u64, arg: u64) -> TrapFrame {
        TrapFrame {
            rip: entry,
            rsp,
            rdi: arg,
            cs: selector::USER_CODE as u64,
            ss: selector::USER_DATA as u64,
            rflags: 0x202,
            ..TrapFrame::default()
        }
    }

    /// True if the frame was saved while the CPU ran in ring 3.
    pub fn came_from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// Whether the kernel can return to this frame without faulting in
    /// ring 0: user selectors, and a return address and stack pointer in
    /// the canonical lower half (SYSRET to a non-canonical RIP faults in
    /// ring 0 on Intel CPUs; IRETQ checks it too). RIP may be `USER_END`
    /// itself, left by a SYSCALL in the last bytes of user space: that
    /// address is canonical and unmapped, so the thread faults in user
    /// mode.
    pub fn returnable(&self) -> bool {
        const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;
        self.came_from_user() && self.rip < LOWER_HALF_END && self.rsp < LOWER_HALF_END
    }
}

/// The RFLAGS bits a user thread keeps across the kernel: the arithmetic
/// flags, TF (it may single-step itself), DF, AC and ID. IOPL, NT, RF, VM,
/// VIF and VIP are cleared on every way back to user mode, and IF and the
/// fixed bit 1 are set: no value a thread leaves in its saved frame can
/// raise its I/O privilege or make an IRETQ or SYSRET fault in ring 0.
pub const USER_RFLAGS: u64 = 0x0000_0000_0024_0dd5;
/// Set on every return: IF and the reserved bit 1.
const RFLAGS_SET: u64 = 0x202;

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();

/// A user thread's saved state: its registers, and right after them (where
/// the entry code finds it, at the frame's end) its FPU/SSE state.
#[repr(C)]
pub struct UserContext {
    /// The registers.
    pub frame: TrapFrame,
    /// The FXSAVE image.
    pub fpu: FpuState,
}

const _: () = assert!(core::mem::offset_of!(UserContext, fpu) == FRAME_SIZE);

impl UserContext {
    /// A thread that starts with `frame` and the initial FPU state.
    pub fn new(frame: TrapFrame) -> UserContext {
        UserContext { frame, fpu: FpuState::initial() }
    }
}

/// Copy of the user stack pointer taken by the SYSCALL entry.
static mut EXO_USER_RSP: u64 = 0;

global_asm!(
    r#"
    /* The general registers, in TrapFrame order (r15 ends up lowest). */
    .macro exo_push_gprs
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    .endm
    .macro exo_pop_gprs
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    .endm

    .section .text.entry, "ax"
    .global exo_interrupt_common
exo_interrupt_common:
    exo_push_gprs
    cld
    mov rdi, rsp
    test qword ptr [rsp + 18*8], 3     /* saved CS: from user mode? */
    jz 2f
    fxsave64 [rsp + {frame_size}]       /* the thread's FPU state */
    lea rsp, [rip + {stack} + {stack_size}] /* leave the thread's frame */
    call {from_user}
    ud2
2:  call {from_kernel}
    ud2

    .global exo_syscall_entry
exo_syscall_entry:
    mov [rip + {user_rsp}], rsp
    mov rsp, [rip + {tss} + {tss_rsp0}] /* save into the thread's frame */
    push {user_ss}
    push qword ptr [rip + {user_rsp}]
    push r11                            /* user RFLAGS */
    push {user_cs}
    push rcx                            /* user RIP */
    push 0
    push {syscall_vector}
    exo_push_gprs
    fxsave64 [rsp + {frame_size}]       /* the thread's FPU state */
    mov rdi, rsp
    lea rsp, [rip + {stack} + {stack_size}]
    call {fastpath}                     /* never returns */
    ud2

    /* exo_return_iret(frame): FPU state, registers, IRETQ. */
    .global exo_return_iret
exo_return_iret:
    mov rsp, rdi
    fxrstor64 [rsp + {frame_size}]
    exo_pop_gprs
    add rsp, 16
    and qword ptr [rsp + 16], {user_rflags} /* RFLAGS: see USER_RFLAGS */
    or qword ptr [rsp + 16], {rflags_set}
    iretq

    /* exo_return_sysret(frame): FPU state, registers, SYSRET with RIP,
       RFLAGS and RSP from the frame. exo_sysret_rsp: the same with RSP
       already at the frame. */
    .global exo_return_sysret
exo_return_sysret:
    mov rsp, rdi
    .global exo_sysret_rsp
exo_sysret_rsp:
    fxrstor64 [rsp + {frame_size}]
    exo_pop_gprs
    mov rcx, [rsp + 16]                 /* RIP */
    mov r11, [rsp + 32]                 /* RFLAGS */
    and r11, {user_rflags}
    or r11, {rflags_set}
    mov rsp, [rsp + 40]                 /* user RSP */
    sysretq

    /* exo_enter_idle(stack): wait for an interrupt with nothing to resume. */
    .global exo_enter_idle
exo_enter_idle:
    mov rsp, rdi
5:  sti
    hlt
    cli
    jmp 5b
    "#,
    from_user = sym crate::trap_from_user,
    from_kernel = sym crate::trap_from_kernel,
    fastpath = sym crate::ipc::fastpath,
    frame_size = const FRAME_SIZE,
    user_rsp = sym EXO_USER_RSP,
    tss = sym super::cpu::TSS,
    tss_rsp0 = const super::cpu::TSS_RSP0,
    stack = sym KERNEL_STACK,
    stack_size = const KERNEL_STACK_SIZE,
    user_ss = const selector::USER_DATA,
    user_cs = const selector::USER_CODE,
    syscall_vector = const SYSCALL_VECTOR,
    user_rflags = const USER_RFLAGS,
    rflags_set = const RFLAGS_SET,
);

global_asm!(include_str!(concat!(env!("OUT_DIR"), "/vectors.s")));

extern "C" {
    fn exo_return_iret(frame: *const TrapFrame) -> !;
    fn exo_return_sysret(frame: *const TrapFrame) -> !;
    fn exo_enter_idle(stack: u64) -> !;
    fn exo_syscall_entry();
    fn exo_sysret_rsp();
    static EXO_VECTOR_STUBS: [u64; 256];
}

/// Address of the SYSCALL entry point (for the LSTAR MSR).
pub fn syscall_entry_address() -> u64 {
    exo_syscall_entry as *const () as u64
}

/// Resumes a user thread from its saved context. Uses SYSRET when the
/// thread entered by SYSCALL (it expects RCX and R11 clobbered) and IRETQ
/// otherwise. The next entry from user mode saves into the same context,
/// which must therefore stay where it is (threads live in boxes) until
/// another thread is resumed.
pub fn return_to_user(ctx: &UserContext) -> ! {
    let frame = &ctx.frame;
    debug_assert!(frame.returnable(), "resume checks frames: {frame:x?}");
    enter_context(ctx);
    // SAFETY: a returnable user frame (`sched::resume` checks), followed by its FPU
    // state; the asm loads both in place and never comes back.
    unsafe {
        if frame.vector == SYSCALL_VECTOR {
            exo_return_sysret(frame)
        } else {
            exo_return_iret(frame)
        }
    }
}

/// Loads the context at `base + OFFSET` and returns to user mode with
/// SYSRET (RIP, RFLAGS and RSP from the frame): the IPC fast path's way
/// out. (Base and offset, not the context's address, so that the CPU
/// adds them: one instruction fewer.)
///
/// # Safety
/// The context's frame was saved by the SYSCALL entry (user selectors)
/// with a user RIP, and [`enter_context`] was called for it.
#[inline(always)]
pub unsafe fn sysret_to<const OFFSET: usize>(base: *const u8) -> ! {
    // SAFETY: the caller's promise; the kernel stack is abandoned, as on
    // every exit.
    unsafe {
        core::arch::asm!(
            "lea rsp, [{0} + {1}]",
            "jmp {2}",
            in(reg) base, const OFFSET, sym exo_sysret_rsp,
            options(noreturn)
        )
    }
}

/// Makes `ctx` the one the next entry from user mode saves into: the end
/// of its frame goes to TSS.RSP0, where the CPU (on an interrupt) and the
/// SYSCALL entry start pushing. Called when the thread owning `ctx` is
/// about to run.
#[inline(always)]
pub fn enter_context(ctx: &UserContext) {
    super::cpu::set_rsp0(&ctx.fpu as *const FpuState as u64);
}

/// Waits with interrupts enabled until one arrives; the interrupt enters
/// the kernel afresh through [`crate::trap_from_kernel`].
pub fn enter_idle() -> ! {
    // SAFETY: the idle loop runs at the top of the kernel stack and calls
    // nothing; whatever it interrupted is abandoned by design.
    unsafe { exo_enter_idle(KERNEL_STACK.top()) }
}

/// A raw 16-byte IDT gate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; 256]>);
// SAFETY: written once by `init_idt` at boot, then only read by the CPU.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new(
    [Gate { offset_low: 0, selector: 0, ist: 0, attributes: 0, offset_mid: 0, offset_high: 0, reserved: 0 }; 256],
));

/// Installs a gate for every vector: interrupt gates (IF cleared on entry),
/// DPL 0 so user code cannot raise them with `int`, except that the
/// double fault runs on its own IST stack.
pub fn init_idt() {
    // SAFETY: boot-time single-threaded initialisation of a static; the
    // stub table comes from the generated assembly.
    let (idt, stubs) = unsafe { (&mut *IDT.0.get(), &EXO_VECTOR_STUBS) };
    for (v, gate) in idt.iter_mut().enumerate() {
        let addr = stubs[v];
        *gate = Gate {
            offset_low: addr as u16,
            selector: selector::KERNEL_CODE,
            ist: if v == 8 { super::cpu::DOUBLE_FAULT_IST as u8 } else { 0 },
            attributes: 0x8e,
            offset_mid: (addr >> 16) as u16,
            offset_high: (addr >> 32) as u32,
            reserved: 0,
        };
    }
    let ptr = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: x86_64::VirtAddr::new(IDT.0.get() as u64),
    };
    // SAFETY: the IDT is static and fully initialised above.
    unsafe { x86_64::instructions::tables::lidt(&ptr) };
}
