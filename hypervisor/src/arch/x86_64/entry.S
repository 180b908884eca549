/*
 * Ways into and out of the hypervisor while a guest runs.
 *
 * Invariant: Rust code always runs with GS base = this CPU's PerCpu; a
 * guest always runs with its own GS base and PerCpu in KERNEL_GS_BASE.
 * Every path from ring 3 therefore starts with swapgs, every path to ring 3
 * ends with one. Offsets come from the Rust structures (GPRS_*, REGS_*,
 * PERCPU_*, FRAME_*), passed in by global_asm!.
 */

.macro SAVE_GPRS base
    mov     %rax, {GPRS_RAX}(\base)
    mov     %rbx, {GPRS_RBX}(\base)
    mov     %rcx, {GPRS_RCX}(\base)
    mov     %rdx, {GPRS_RDX}(\base)
    mov     %rsi, {GPRS_RSI}(\base)
    mov     %rdi, {GPRS_RDI}(\base)
    mov     %rbp, {GPRS_RBP}(\base)
    mov     %r8,  {GPRS_R8}(\base)
    mov     %r9,  {GPRS_R9}(\base)
    mov     %r10, {GPRS_R10}(\base)
    mov     %r11, {GPRS_R11}(\base)
    mov     %r12, {GPRS_R12}(\base)
    mov     %r13, {GPRS_R13}(\base)
    mov     %r14, {GPRS_R14}(\base)
    mov     %r15, {GPRS_R15}(\base)
.endm

/* Restores every GPR but \base itself, which the caller restores last. */
.macro RESTORE_GPRS_EXCEPT_RDI
    mov     {GPRS_RAX}(%rdi), %rax
    mov     {GPRS_RBX}(%rdi), %rbx
    mov     {GPRS_RCX}(%rdi), %rcx
    mov     {GPRS_RDX}(%rdi), %rdx
    mov     {GPRS_RSI}(%rdi), %rsi
    mov     {GPRS_RBP}(%rdi), %rbp
    mov     {GPRS_R8}(%rdi),  %r8
    mov     {GPRS_R9}(%rdi),  %r9
    mov     {GPRS_R10}(%rdi), %r10
    mov     {GPRS_R11}(%rdi), %r11
    mov     {GPRS_R12}(%rdi), %r12
    mov     {GPRS_R13}(%rdi), %r13
    mov     {GPRS_R14}(%rdi), %r14
    mov     {GPRS_R15}(%rdi), %r15
.endm

    .section .text.entry, "ax"
    .code64

/*
 * syscall from a guest: a hypercall. rcx = guest rip, r11 = guest rflags,
 * rsp still the guest's. A GuestRegisters frame is built at the top of this
 * CPU's stack and handed to Rust; if Rust returns, the frame (with the
 * result in rax) is resumed with sysret.
 */
    .global syscall_entry
    .balign 16
syscall_entry:
    swapgs
    mov     %rsp, %gs:{PERCPU_SCRATCH}
    mov     %gs:{PERCPU_STACK_TOP}, %rsp
    sub     ${REGS_SIZE}, %rsp
    SAVE_GPRS %rsp
    mov     %rcx, {REGS_RIP}(%rsp)
    mov     %r11, {REGS_RFLAGS}(%rsp)
    mov     %gs:{PERCPU_SCRATCH}, %rax
    mov     %rax, {REGS_RSP}(%rsp)
    mov     %rsp, %rdi
    call    hypercall_entry
    /* Rust checked that rip is canonical (sysret #GPs in ring 0 otherwise). */
    mov     %rsp, %rdi
    RESTORE_GPRS_EXCEPT_RDI
    mov     {REGS_RIP}(%rdi), %rcx
    mov     {REGS_RFLAGS}(%rdi), %r11
    mov     {REGS_RSP}(%rdi), %rsp
    mov     {GPRS_RDI}(%rdi), %rdi
    swapgs
    sysretq

/*
 * enter_guest(regs: *const GuestRegisters) -> !: resume a vCPU in ring 3
 * with every register from the frame, through iretq.
 */
    .global enter_guest
    .balign 16
enter_guest:
    pushq   ${USER_SS}
    pushq   {REGS_RSP}(%rdi)
    pushq   {REGS_RFLAGS}(%rdi)
    pushq   ${USER_CS}
    pushq   {REGS_RIP}(%rdi)
    RESTORE_GPRS_EXCEPT_RDI
    mov     {GPRS_RDI}(%rdi), %rdi
    swapgs
    iretq

/*
 * Exceptions. Each stub pushes a zero error code where the CPU pushes none,
 * then its vector, so every ExceptionFrame looks the same.
 */
.macro EXCEPTION_STUB vector, has_error
    .balign 16
exception_stub_\vector:
    .if \has_error == 0
    pushq   $0
    .endif
    pushq   $\vector
    jmp     exception_common
.endm

    .irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    EXCEPTION_STUB \v, 0
    .endr
    .irp v, 8,10,11,12,13,14,17,21,29,30
    EXCEPTION_STUB \v, 1
    .endr

exception_common:
    testb   $3, {FRAME_CS} - {FRAME_VECTOR}(%rsp)
    jz      1f
    swapgs
1:  sub     ${FRAME_VECTOR}, %rsp
    SAVE_GPRS %rsp
    mov     %rsp, %rdi
    call    exception_entry     /* never returns */
    ud2

    .section .rodata.entry, "a"
    .balign 8
    .global exception_stubs
exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\v
    .endr
