//! Per-CPU state (one CPU for now): stacks, GDT, TSS, system-call MSRs,
//! FPU save areas and the small privileged instructions the kernel uses.

use core::arch::asm;
use core::cell::UnsafeCell;
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// Size of the one kernel stack every kernel entry runs on.
pub const KERNEL_STACK_SIZE: usize = 64 * 1024;
const IST_STACK_SIZE: usize = 16 * 1024;

/// A 16-byte aligned stack.
#[repr(C, align(16))]
pub struct Stack<const N: usize>(UnsafeCell<[u8; N]>);
// SAFETY: the stacks are only used by the CPU as stack memory, never
// through Rust references.
unsafe impl<const N: usize> Sync for Stack<N> {}

impl<const N: usize> Stack<N> {
    /// Address one past the end (the initial stack pointer).
    pub fn top(&self) -> u64 {
        self.0.get() as u64 + N as u64
    }
}

/// The kernel stack (TSS.RSP0): every trap and system call starts at its top.
#[no_mangle]
pub static KERNEL_STACK: Stack<KERNEL_STACK_SIZE> = Stack(UnsafeCell::new([0; KERNEL_STACK_SIZE]));
static DOUBLE_FAULT_STACK: Stack<IST_STACK_SIZE> = Stack(UnsafeCell::new([0; IST_STACK_SIZE]));

/// Selectors of the GDT built by [`init`]. The order is fixed by SYSRET:
/// user data must sit 8 bytes below user code.
pub mod selector {
    /// Kernel code, ring 0.
    pub const KERNEL_CODE: u16 = 0x08;
    /// Kernel data, ring 0.
    pub const KERNEL_DATA: u16 = 0x10;
    /// User data, ring 3 (RPL 3 included).
    pub const USER_DATA: u16 = 0x18 | 3;
    /// User code, ring 3 (RPL 3 included).
    pub const USER_CODE: u16 = 0x20 | 3;
    /// The TSS.
    pub const TSS: u16 = 0x28;
}

/// Interior-mutable holder for CPU tables that must be `'static`.
#[repr(transparent)]
pub struct BootCell<T>(UnsafeCell<T>);
// SAFETY: written by `init` on the boot CPU before interrupts are enabled,
// later only TSS.RSP0 by `set_rsp0` with interrupts off (one CPU); the
// CPU and the SYSCALL entry read them.
unsafe impl<T> Sync for BootCell<T> {}

/// The TSS. Its RSP0 is the end of the running thread's frame, where the
/// CPU starts pushing on an interrupt from user mode and the SYSCALL
/// entry starts saving.
pub static TSS: BootCell<TssWithIoMap> =
    BootCell(UnsafeCell::new(TssWithIoMap { tss: TaskStateSegment::new(), iomap: [0xff; IOMAP_BYTES + 1] }));

/// Bytes of the I/O permission bitmap: one bit per port, 65536 ports.
const IOMAP_BYTES: usize = 8192;

/// The TSS and, right behind it, the I/O permission bitmap: a clear bit
/// lets user mode use that port with `in`/`out`, a set one faults (#GP).
/// All set but for the ports of the running process's mapped I/O-port
/// capabilities (`ioports_allow`). The byte after the bitmap must stay
/// 0xff.
#[repr(C)]
pub struct TssWithIoMap {
    tss: TaskStateSegment,
    iomap: [u8; IOMAP_BYTES + 1],
}

/// Opens (`allow`) or closes ports `[first, first + count)` to user mode.
pub fn ioports_allow(first: u16, count: u16, allow: bool) {
    // SAFETY: one CPU with interrupts off in the kernel; the CPU reads the
    // bitmap only on a user-mode `in`/`out`, after this store.
    let map = unsafe { &mut (*TSS.0.get()).iomap };
    for port in first as usize..(first as usize + count as usize).min(IOMAP_BYTES * 8) {
        let (byte, bit) = (port / 8, port % 8);
        if allow {
            map[byte] &= !(1 << bit);
        } else {
            map[byte] |= 1 << bit;
        }
    }
}
static GDT: BootCell<GlobalDescriptorTable> = BootCell(UnsafeCell::new(GlobalDescriptorTable::new()));

/// Offset of RSP0 in the TSS.
pub const TSS_RSP0: usize = core::mem::offset_of!(TaskStateSegment, privilege_stack_table);

/// Sets the stack pointer the CPU loads on an interrupt from user mode:
/// the end of the frame of the thread about to run, a kernel address.
#[inline(always)]
pub fn set_rsp0(v: u64) {
    debug_assert!(v >> 47 == 0x1ffff, "RSP0 {v:#x} is not a kernel address");
    // SAFETY: one CPU with interrupts off; the CPU reads RSP0 only when an
    // interrupt arrives in user mode, after this store. A kernel address
    // is canonical as it is.
    unsafe { (*TSS.0.get()).tss.privilege_stack_table[0] = VirtAddr::new_unsafe(v) };
}

/// IST index (1-based in the IDT gate, 0-based in the TSS) for double faults.
pub const DOUBLE_FAULT_IST: u16 = 1;

/// Loads the GDT and TSS and sets up SYSCALL/SYSRET. Call once at boot.
pub fn init(syscall_entry: u64) {
    // SAFETY: single-threaded boot; nothing else references TSS/GDT yet.
    let (both, gdt) = unsafe { (&mut *TSS.0.get(), &mut *GDT.0.get()) };
    let tss = &mut both.tss;
    tss.iomap_base = core::mem::offset_of!(TssWithIoMap, iomap) as u16;
    tss.privilege_stack_table[0] = VirtAddr::new(KERNEL_STACK.top());
    tss.interrupt_stack_table[(DOUBLE_FAULT_IST - 1) as usize] = VirtAddr::new(DOUBLE_FAULT_STACK.top());

    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let udata = gdt.append(Descriptor::user_data_segment());
    let ucode = gdt.append(Descriptor::user_code_segment());
    // SAFETY: TSS is a static that lives forever and is not moved.
    let both = unsafe { &*TSS.0.get() };
    let tss_sel = gdt.append(Descriptor::tss_segment_with_iomap(&both.tss, &both.iomap).expect("I/O bitmap"));
    assert_eq!(code.0, selector::KERNEL_CODE);
    assert_eq!(data.0, selector::KERNEL_DATA);
    assert_eq!(udata.0, selector::USER_DATA);
    assert_eq!(ucode.0, selector::USER_CODE);
    assert_eq!(tss_sel.0, selector::TSS);

    // SAFETY: the GDT is static; the selectors loaded below are valid
    // entries of it, so segment state stays consistent.
    unsafe {
        (*GDT.0.get()).load_unsafe();
        use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        x86_64::instructions::tables::load_tss(tss_sel);
    }

    // SAFETY: the selectors match the GDT above (checked by the asserts)
    // and `syscall_entry` is the kernel's system-call entry point.
    unsafe {
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS | EferFlags::NO_EXECUTE_ENABLE));
        Star::write(ucode, udata, code, data).expect("STAR selectors");
        LStar::write(VirtAddr::new(syscall_entry));
        // Entering the kernel by SYSCALL clears every flag user code can
        // set that matters to ring 0: IF (no interrupts in the kernel), DF,
        // TF, AC, and NT (with NT set, the kernel's next IRETQ would fault).
        // IOPL cannot be changed from ring 3 (POPF ignores it), RF and VM
        // never reach the saved flags; interrupt gates clear NT, TF, RF and
        // VM on their own.
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK
                | RFlags::IOPL_LOW
                | RFlags::IOPL_HIGH,
        );
    }
}

/// Turns on user-mode instruction prevention where the CPU has it
/// (CPUID.(7,0):ECX bit 2): SGDT, SIDT, SLDT, SMSW and STR then fault in
/// user mode (#GP) instead of revealing where the kernel keeps its
/// descriptor tables. Returns whether it is on. Without it those
/// instructions still work from user mode and show the GDT, IDT and TSS
/// addresses (kernel data addresses; the kernel has no address-space
/// randomization for them to defeat, but they are no business of user
/// code).
pub fn enable_umip() -> bool {
    // Leaf 7 exists when leaf 0 reports it.
    let has = core::arch::x86_64::__cpuid(0).eax >= 7 && core::arch::x86_64::__cpuid_count(7, 0).ecx & (1 << 2) != 0;
    if has {
        use x86_64::registers::control::{Cr4, Cr4Flags};
        // SAFETY: setting UMIP changes only what user mode may execute.
        unsafe { Cr4::update(|f| f.insert(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION)) };
    }
    has
}

/// An FXSAVE image: x87, MMX and SSE state of a thread.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state a new thread starts with: FCW 0x37f, MXCSR 0x1f80.
    pub fn initial() -> FpuState {
        let mut s = FpuState([0; 512]);
        s.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        s.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        s
    }
}

/// Loads the FS base (IA32_FS_BASE) for user code.
pub fn write_fs_base(base: u64) {
    // SAFETY: the FS base only changes what user code's `%fs:` operands
    // reach; the kernel uses no FS-relative addressing. `base` is 0 or a
    // canonical user address (checked by the caller).
    unsafe { x86_64::registers::model_specific::Msr::new(0xc000_0100).write(base) };
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// CR3 as it is. Once the kernel has loaded its own tables it writes only
/// table addresses there (no PCID, no cache bits), so this is the active
/// table's address without the masking of [`read_cr3`].
#[inline(always)]
pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Physical address of the active top-level page table.
pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & !0xfff
}

/// Switches to the address space rooted at `pml4`.
///
/// # Safety
/// `pml4` must be a valid top-level table that maps the kernel half
/// exactly like the current one.
pub unsafe fn write_cr3(pml4: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { asm!("mov cr3, {}", in(reg) pml4, options(nostack, preserves_flags)) };
}

/// Flushes the TLB entry of one page in the current address space.
pub fn invlpg(va: u64) {
    // SAFETY: INVLPG only drops a cached translation.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Faulting address of the last page fault.
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Stops the CPU for good (interrupts off).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts disabled HLT just stops the CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Writes `value` to I/O port `port`.
pub fn outb(port: u16, value: u8) {
    // SAFETY: the kernel owns every I/O port it writes (serial, PIC, PIT,
    // debug-exit, PCI configuration); callers name well-known ports only.
    unsafe { x86_64::instructions::port::Port::new(port).write(value) };
}

/// Writes a 16-bit `value` to I/O port `port`.
pub fn outw(port: u16, value: u16) {
    // SAFETY: as for `outb`.
    unsafe { x86_64::instructions::port::Port::new(port).write(value) };
}

/// Writes a 32-bit `value` to I/O port `port`.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe { x86_64::instructions::port::Port::new(port).write(value) };
}

/// Reads I/O port `port`.
pub fn inb(port: u16) -> u8 {
    // SAFETY: as for `outb`; reads of these ports have no harmful effect.
    unsafe { x86_64::instructions::port::Port::new(port).read() }
}

/// Reads a 16-bit value from I/O port `port`.
pub fn inw(port: u16) -> u16 {
    // SAFETY: as for `inb`.
    unsafe { x86_64::instructions::port::Port::new(port).read() }
}

/// Reads a 32-bit value from I/O port `port`.
pub fn inl(port: u16) -> u32 {
    // SAFETY: as for `inb`.
    unsafe { x86_64::instructions::port::Port::new(port).read() }
}

/// 64 random bits from RDRAND, if the CPU has it and it delivers.
pub fn rdrand() -> Option<u64> {
    let ecx = core::arch::x86_64::__cpuid(1).ecx;
    if ecx & (1 << 30) == 0 {
        return None;
    }
    for _ in 0..10 {
        let v: u64;
        let ok: u8;
        // SAFETY: RDRAND is present (CPUID.1:ECX.30, checked above); it
        // writes a register and CF only.
        unsafe { asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack)) };
        if ok == 1 {
            return Some(v);
        }
    }
    None
}
