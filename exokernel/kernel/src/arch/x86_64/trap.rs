//! Kernel entry and exit: interrupt stubs, the SYSCALL entry, the IDT and
//! the two ways back to user mode (SYSRET and IRETQ).
//!
//! Every entry from user mode saves the registers straight into the
//! running thread's own [`TrapFrame`] (TSS.RSP0 and the SYSCALL entry's
//! stack pointer point at its end, as seL4 saves into the TCB), then
//! switches to the one kernel stack and calls into Rust, which never
//! returns: it ends in [`return_to_user`], which pops the chosen thread's
//! frame in place, or in [`enter_idle`]. So the kernel never resumes
//! interrupted kernel code, copies no frames, and one kernel stack serves
//! every thread.

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
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();

/// FXSAVE area written by the interrupt entry before any Rust code runs.
#[repr(C, align(16))]
pub struct ScratchFpu(UnsafeCell<FpuState>);
// SAFETY: one CPU; written by the entry stub, read by the kernel while
// interrupts are off.
unsafe impl Sync for ScratchFpu {}

/// The interrupted thread's FPU state, saved by the interrupt entry.
#[no_mangle]
pub static EXO_FPU_SCRATCH: ScratchFpu = ScratchFpu(UnsafeCell::new(FpuState([0; 512])));

/// Copy of the user stack pointer taken by the SYSCALL entry.
#[no_mangle]
static mut EXO_USER_RSP: u64 = 0;

/// End of the running thread's frame: where the SYSCALL entry starts
/// pushing (TSS.RSP0 holds the same for interrupts).
#[no_mangle]
static mut EXO_FRAME_END: u64 = 0;

impl ScratchFpu {
    /// The state saved by the last interrupt entry from user mode.
    pub fn get(&self) -> &FpuState {
        // SAFETY: nothing writes the scratch area while the kernel runs
        // (interrupts are off), so a shared borrow is sound.
        unsafe { &*self.0.get() }
    }
}

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
    fxsave64 [rip + EXO_FPU_SCRATCH]
    lea rsp, [rip + {stack}]           /* leave the thread's frame */
    add rsp, {stack_size}
    call {from_user}
    ud2
2:  call {from_kernel}
    ud2

    .global exo_syscall_entry
exo_syscall_entry:
    mov [rip + EXO_USER_RSP], rsp
    mov rsp, [rip + EXO_FRAME_END]     /* save into the thread's frame */
    push {user_ss}
    push qword ptr [rip + EXO_USER_RSP]
    push r11                            /* user RFLAGS */
    push {user_cs}
    push rcx                            /* user RIP */
    push 0
    push {syscall_vector}
    exo_push_gprs
    mov rdi, rsp
    lea rsp, [rip + {stack}]
    add rsp, {stack_size}
    call {syscall}
    ud2

    /* exo_return_iret(frame, fpu_or_null) */
    .global exo_return_iret
exo_return_iret:
    mov rsp, rdi
    test rsi, rsi
    jz 3f
    fxrstor64 [rsi]
3:  exo_pop_gprs
    add rsp, 16
    iretq

    /* exo_return_sysret(frame, fpu_or_null): RIP, RFLAGS, RSP from the frame. */
    .global exo_return_sysret
exo_return_sysret:
    mov rsp, rdi
    test rsi, rsi
    jz 4f
    fxrstor64 [rsi]
4:  exo_pop_gprs
    mov rcx, [rsp + 16]                 /* RIP */
    mov r11, [rsp + 32]                 /* RFLAGS */
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
    syscall = sym crate::syscall_from_user,
    stack = sym KERNEL_STACK,
    stack_size = const KERNEL_STACK_SIZE,
    user_ss = const selector::USER_DATA,
    user_cs = const selector::USER_CODE,
    syscall_vector = const SYSCALL_VECTOR,
);

global_asm!(include_str!(concat!(env!("OUT_DIR"), "/vectors.s")));

extern "C" {
    fn exo_return_iret(frame: *const TrapFrame, fpu: *const FpuState) -> !;
    fn exo_return_sysret(frame: *const TrapFrame, fpu: *const FpuState) -> !;
    fn exo_enter_idle(stack: u64) -> !;
    fn exo_syscall_entry();
    static EXO_VECTOR_STUBS: [u64; 256];
}

/// Address of the SYSCALL entry point (for the LSTAR MSR).
pub fn syscall_entry_address() -> u64 {
    exo_syscall_entry as *const () as u64
}

/// Resumes a user thread from its saved `frame`, restoring `fpu` first
/// when given. Uses SYSRET when the thread entered by SYSCALL (it expects
/// RCX and R11 clobbered) and IRETQ otherwise. The next entry from user
/// mode saves into the same `frame`, which must therefore stay where it is
/// (threads live in boxes) until another thread is resumed.
pub fn return_to_user(frame: &TrapFrame, fpu: Option<&FpuState>) -> ! {
    assert!(frame.came_from_user() && frame.rip < exo_abi::USER_END, "bad user frame {frame:x?}");
    // SAFETY: a user frame with a user RIP (asserted).
    unsafe { leave(frame, fpu) }
}

/// `return_to_user` for a thread that entered by SYSCALL (the IPC fast
/// path's partner): SYSRET straight away. Anything else takes the checked
/// general way.
#[inline(always)]
pub fn return_to_syscaller(frame: &TrapFrame, fpu: Option<&FpuState>) -> ! {
    // SYSRET to a non-canonical RIP would fault in ring 0: user addresses
    // only.
    if frame.vector != SYSCALL_VECTOR || frame.rip >= exo_abi::USER_END {
        return_to_user(frame, fpu)
    }
    // SAFETY: saved by the SYSCALL entry (user selectors), user RIP
    // (checked).
    unsafe { leave(frame, fpu) }
}

/// Returns to user mode with `frame` (and `fpu`, if given): SYSRET for a
/// frame saved by the SYSCALL entry, IRETQ for any other.
///
/// # Safety
/// `frame` holds user selectors and a user RIP, so the return cannot land
/// in ring 0.
#[inline(always)]
unsafe fn leave(frame: &TrapFrame, fpu: Option<&FpuState>) -> ! {
    let ptr = frame as *const TrapFrame;
    let end = ptr as u64 + FRAME_SIZE as u64;
    let fpu = fpu.map_or(core::ptr::null(), |f| f as *const FpuState);
    super::cpu::set_rsp0(end);
    // SAFETY: one CPU, interrupts off: nothing else reads this now; the
    // SYSCALL entry reads it only after we are back in user mode.
    unsafe { EXO_FRAME_END = end };
    // SAFETY: the caller's promise; the asm pops the frame in place and
    // never comes back.
    unsafe {
        if frame.vector == SYSCALL_VECTOR {
            exo_return_sysret(ptr, fpu)
        } else {
            exo_return_iret(ptr, fpu)
        }
    }
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
