//! PVH entry: from 32-bit protected mode to 64-bit higher-half Rust.
//!
//! QEMU reads the `XEN_ELFNOTE_PHYS32_ENTRY` note and enters `pvh_start`
//! with paging off and `ebx` = physical address of `hvm_start_info`. The
//! boot page tables map the first 4 GiB of physical memory three times with
//! 2 MiB pages: identity (only until the jump), at [`HHDM_BASE`] (the
//! kernel's window on all physical memory) and the first 2 GiB at
//! `0xffffffff80000000` (the kernel image). The 3-4 GiB gigabyte, where the
//! local APIC and PCI holes live, is mapped uncached.

use core::arch::global_asm;

/// Virtual base of the direct map of physical memory.
pub const HHDM_BASE: u64 = 0xffff_8000_0000_0000;
/// How much physical memory the boot tables direct-map.
pub const HHDM_SIZE: u64 = 4 << 30;

global_asm!(
    r#"
    .pushsection .note.pvh, "a"
    .balign 4
    .long 4                  /* namesz: "Xen\0" */
    .long 8                  /* descsz */
    .long 18                 /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start
    .popsection

    .pushsection .boot.data, "aw"
    .balign 4096
    .global exo_boot_pml4
exo_boot_pml4:      .fill 512, 8, 0
exo_boot_pdpt_low:  .fill 512, 8, 0
exo_boot_pdpt_high: .fill 512, 8, 0
exo_boot_pd:        .fill 2048, 8, 0
exo_boot_gdt:
    .quad 0
    .quad 0x00209a0000000000   /* 0x08: 64-bit code */
    .quad 0x0000920000000000   /* 0x10: data */
exo_boot_gdt_end:
exo_boot_gdtr:
    .word exo_boot_gdt_end - exo_boot_gdt - 1
    .long exo_boot_gdt
    .popsection

    .pushsection .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov edi, ebx                        /* hvm_start_info, kept for kmain */

    /* PD entries: 2048 x 2 MiB pages covering 0..4 GiB, present|writable|huge;
       the last 512 (3..4 GiB) also cache-disabled + write-through. */
    xor ecx, ecx
.Lpd_loop:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    cmp ecx, 1536
    jb .Lpd_cached
    or eax, 0x18
.Lpd_cached:
    mov [exo_boot_pd + ecx*8], eax
    mov dword ptr [exo_boot_pd + ecx*8 + 4], 0
    inc ecx
    cmp ecx, 2048
    jb .Lpd_loop

    /* Low PDPT: four PDs = 4 GiB. High PDPT: entries 510/511 = first 2 GiB. */
    lea eax, [exo_boot_pd + 0x0003]
    mov [exo_boot_pdpt_low + 0], eax
    lea eax, [exo_boot_pd + 0x1003]
    mov [exo_boot_pdpt_low + 8], eax
    mov [exo_boot_pdpt_high + 511*8], eax
    lea eax, [exo_boot_pd + 0x2003]
    mov [exo_boot_pdpt_low + 16], eax
    lea eax, [exo_boot_pd + 0x3003]
    mov [exo_boot_pdpt_low + 24], eax
    lea eax, [exo_boot_pd + 0x0003]
    mov [exo_boot_pdpt_high + 510*8], eax

    /* PML4: 0 = identity, 256 = direct map, 511 = kernel image. */
    lea eax, [exo_boot_pdpt_low + 3]
    mov [exo_boot_pml4 + 0], eax
    mov [exo_boot_pml4 + 256*8], eax
    lea eax, [exo_boot_pdpt_high + 3]
    mov [exo_boot_pml4 + 511*8], eax

    /* CR4: PAE | OSFXSR | OSXMMEXCPT */
    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10)
    mov cr4, eax
    lea eax, [exo_boot_pml4]
    mov cr3, eax
    /* EFER: LME | NXE | SCE */
    mov ecx, 0xc0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11) | (1 << 0)
    wrmsr
    /* CR0: PG | WP | MP, clear EM */
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | (1 << 1)
    and eax, ~(1 << 2)
    mov cr0, eax

    lgdt [exo_boot_gdtr]
    push 0x08
    lea eax, [exo_boot_long]
    push eax
    retf
    .code64
exo_boot_long:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    movabs rax, offset exo_boot_high
    jmp rax
    .popsection

    .section .text.boot_high, "ax"
exo_boot_high:
    lea rsp, [rip + {stack}]
    add rsp, {stack_size}
    xor ebp, ebp
    /* edi still holds the start-info physical address (zero-extended). */
    mov edi, edi
    call kmain
    ud2
    "#,
    stack = sym super::cpu::KERNEL_STACK,
    stack_size = const super::cpu::KERNEL_STACK_SIZE,
);
