/*
 * The application processors' way in. A STARTUP IPI starts an AP in real
 * mode at TRAMPOLINE_PHYS (its vector is the page number), where the boot
 * CPU has copied these bytes; so everything below is addressed as an
 * offset from trampoline_start plus TRAMPOLINE_PHYS, never by its link
 * address. Real mode -> protected mode -> long mode on boot.S's tables
 * (which map low memory one to one and the image where it is linked) ->
 * the image's high-half ap_entry, which loads the hypervisor's own tables
 * and the CPU's stack, and calls Rust. The boot CPU fills the data at the
 * end (TRAMP_* offsets) before each AP's STARTUP IPI.
 */

    .section .text.trampoline, "ax"
    .balign 16
    .global trampoline_start, trampoline_end
trampoline_start:
    .code16
    cli
    cld
    lgdtl   %cs:(tramp_gdt_ptr - trampoline_start)
    mov     %cr0, %eax
    or      $1, %eax                        /* PE */
    mov     %eax, %cr0
    ljmpl   $0x08, $({TRAMPOLINE_PHYS} + tramp32 - trampoline_start)

    .code32
tramp32:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %cr4, %eax
    or      $(1 << 5), %eax                 /* PAE */
    mov     %eax, %cr4
    mov     $boot_pml4, %eax
    mov     %eax, %cr3
    mov     $0xc0000080, %ecx               /* EFER: LME, NXE */
    rdmsr
    or      $((1 << 8) | (1 << 11)), %eax
    wrmsr
    mov     %cr0, %eax
    or      $((1 << 31) | (1 << 16)), %eax  /* PG, WP */
    mov     %eax, %cr0
    ljmpl   $0x18, $({TRAMPOLINE_PHYS} + tramp64 - trampoline_start)

    .code64
tramp64:
    /* Everything the AP needs from low memory, before leaving it. */
    mov     ({TRAMPOLINE_PHYS} + {TRAMP_CR3}), %rax
    mov     ({TRAMPOLINE_PHYS} + {TRAMP_STACK}), %rsp
    mov     ({TRAMPOLINE_PHYS} + {TRAMP_CPU}), %rdi
    movabs  $ap_entry, %rcx
    jmp     *%rcx

    .balign 8
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff                /* 0x10: data */
    .quad 0x00af9a000000ffff                /* 0x18: 64-bit code */
tramp_gdt_end:
tramp_gdt_ptr:
    .word tramp_gdt_end - tramp_gdt - 1
    .long {TRAMPOLINE_PHYS} + tramp_gdt - trampoline_start
trampoline_end:

/* In the high half, on boot.S's tables: switch to the hypervisor's. */
    .text
    .balign 16
ap_entry:
    mov     %rax, %cr3
    xor     %ebp, %ebp
    call    ap_main
    ud2
