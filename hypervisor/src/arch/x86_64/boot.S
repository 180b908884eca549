/*
 * PVH entry: QEMU (or Xen's PVH loader) starts us here in 32-bit protected
 * mode, paging off, with %ebx holding the physical address of the
 * hvm_start_info structure. We build nothing dynamically: static tables map
 * the first 4 GiB three times (identity for this code, the direct map in
 * slot 262, the image in slot 271), enough to reach Rust, which then builds
 * the real tables.
 */

    .set MSR_EFER, 0xc0000080
    .set EFER_LME, (1 << 8)
    .set EFER_NXE, (1 << 11)
    .set CR0_PE, (1 << 0)
    .set CR0_WP, (1 << 16)
    .set CR0_PG, (1 << 31)
    .set CR4_PAE, (1 << 5)
    .set PTE_P_W, 0x3
    .set PTE_LARGE, 0x83

    .section .note.Xen, "a"
    .balign 4
    .long 4                 /* name size: "Xen\0" */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_entry

    .section .boot.text, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    cld
    mov     %ebx, %edi              /* hvm_start_info, first argument to Rust */

    mov     $boot_pml4, %eax
    mov     %eax, %cr3
    mov     %cr4, %eax
    or      $CR4_PAE, %eax
    mov     %eax, %cr4
    mov     $MSR_EFER, %ecx
    rdmsr
    or      $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov     %cr0, %eax
    or      $(CR0_PE | CR0_WP | CR0_PG), %eax
    mov     %eax, %cr0

    lgdt    boot_gdt_ptr
    ljmp    $0x08, $long_mode

    .code64
long_mode:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    xor     %eax, %eax
    mov     %eax, %fs
    mov     %eax, %gs
    mov     %edi, %edi              /* upper half is undefined after the switch */
    movabs  $boot_stack_top, %rsp
    xor     %ebp, %ebp
    movabs  $boot_main, %rax
    call    *%rax
    ud2

    .section .boot.data, "aw"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .balign 4096
    .global boot_pml4               /* also the APs' way into long mode (trampoline.S) */
boot_pml4:
    .quad boot_pdpt + PTE_P_W       /* slot 0: identity, for this code */
    .fill 261, 8, 0
    .quad boot_pdpt + PTE_P_W       /* slot 262: direct map (DIRECT_MAP_BASE) */
    .fill 8, 8, 0
    .quad boot_pdpt + PTE_P_W       /* slot 271: the image */
    .fill 240, 8, 0
boot_pdpt:
    .quad boot_pd + 0x0000 + PTE_P_W
    .quad boot_pd + 0x1000 + PTE_P_W
    .quad boot_pd + 0x2000 + PTE_P_W
    .quad boot_pd + 0x3000 + PTE_P_W
    .fill 508, 8, 0
boot_pd:                            /* 2048 large pages: 4 GiB */
    .set i, 0
    .rept 2048
    .quad (i << 21) + PTE_LARGE
    .set i, i + 1
    .endr

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .global boot_stack_bottom, boot_stack_top
boot_stack_bottom:
    .skip 65536
boot_stack_top:
