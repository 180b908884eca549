/*
 * Ways into and out of the hypervisor while a guest runs.
 *
 * Invariant: Rust code always runs with GS base = this CPU's PerCpu; a
 * guest always runs with its own GS base and PerCpu in KERNEL_GS_BASE.
 * Every path from ring 3 therefore starts with swapgs, every path to ring 3
 * ends with one. Offsets come from the Rust structures (GPRS_*, REGS_*,
 * PERCPU_*, ES_*, VI_*), passed in by global_asm!.
 *
 * Every entry from a guest leaves a GuestRegisters frame (the GPRs, then a
 * hardware interrupt frame) at the top of this CPU's stack, where the TSS
 * makes the CPU push exceptions from ring 3. Rust changes the frame, and
 * exit_iret resumes whatever it says.
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

/* Restores every GPR but rdi, the frame's base, which the caller restores last. */
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

/*
 * After swapgs, with rsp at this CPU's stack top and the guest's rsp in
 * PERCPU_SCRATCH, rcx/r11 as syscall left them: builds the frame of a
 * syscall from code segment \cs and leaves rsp (and rdi) at it.
 */
.macro SYSCALL_FRAME cs
    sub     ${REGS_SIZE}, %rsp
    SAVE_GPRS %rsp
    movq    ${ENTRY_SYSCALL}, {REGS_VECTOR}(%rsp)
    movq    $0, {REGS_ERROR}(%rsp)
    mov     %rcx, {REGS_RIP}(%rsp)
    movq    $\cs, {REGS_CS}(%rsp)
    mov     %r11, {REGS_RFLAGS}(%rsp)
    mov     %gs:{PERCPU_SCRATCH}, %rax
    mov     %rax, {REGS_RSP}(%rsp)
    movq    ${USER_DS}, {REGS_SS}(%rsp)
    mov     %rsp, %rdi
.endm

    .section .text.entry, "ax"
    .code64

/*
 * syscall from 64-bit guest code. From guest kernel mode it is a
 * hypercall; from guest user mode it is bounced to the guest kernel's
 * syscall callback by the fast path below, without leaving assembly.
 */
    .global syscall_entry
    .balign 16
syscall_entry:
    swapgs
    mov     %rsp, %gs:{PERCPU_SCRATCH}
    mov     %gs:{PERCPU_STACK_TOP}, %rsp
    push    %rbx
    mov     %gs:{PERCPU_VCPU}, %rbx
    cmpq    $0, {ES_USER_MODE}(%rbx)
    jne     syscall_from_user
    pop     %rbx

    /* A hypercall. */
    SYSCALL_FRAME {USER_CS64}
    call    hypercall_entry
    test    %rax, %rax
    jnz     exit_iret
    /*
     * Rust checked that rip is canonical (sysret #GPs in ring 0 otherwise)
     * and left the frame a 64-bit kernel-mode one.
     */
    mov     %rsp, %rdi
    RESTORE_GPRS_EXCEPT_RDI
    mov     {REGS_RIP}(%rdi), %rcx
    mov     {REGS_RFLAGS}(%rdi), %r11
    mov     {REGS_RSP}(%rdi), %rsp
    mov     {GPRS_RDI}(%rdi), %rdi
    swapgs
    sysretq

/*
 * The syscall bounce: guest user mode to the guest kernel's syscall
 * callback. rbx (saved below the stack top) holds this vCPU's EntryState;
 * rcx = user rip, r11 = user rflags, user rsp in PERCPU_SCRATCH. Every
 * other register reaches the callback as user mode left it.
 */
syscall_from_user:
    cmpq    $0, {ES_SYSCALL_ENTRY}(%rbx)
    je      user_syscall_slow
    mov     {ES_VCPU_INFO}(%rbx), %rbx
    cmpb    $0, {VI_UPCALL_PENDING}(%rbx)
    mov     %gs:{PERCPU_VCPU}, %rbx
    jne     user_syscall_slow           /* an event may be due: Rust decides */
    push    %rax
    push    %rdx
    push    %rcx
    /* Kernel address space; PCIDs keep the user one's TLB entries. */
    mov     {ES_KERNEL_L4}(%rbx), %rax
    or      %gs:{PERCPU_CR3_KERNEL_BITS}, %rax
    mov     %rax, %cr3
    /* GS bases: the user one (parked in KERNEL_GS_BASE) out, the kernel one in. */
    mov     $0xc0000102, %ecx
    rdmsr
    shl     $32, %rdx
    or      %rdx, %rax
    mov     {ES_INACTIVE_GS_BASE}(%rbx), %rdx
    mov     %rax, {ES_INACTIVE_GS_BASE}(%rbx)
    mov     %edx, %eax
    shr     $32, %rdx
    wrmsr
    movq    $0, {ES_USER_MODE}(%rbx)
    /* The TrapFrame, 64 bytes below the kernel stack (checked by stack_switch). */
    mov     {ES_KERNEL_SP}(%rbx), %rax
    sub     ${TRAP_FRAME_SIZE}, %rax
    mov     %r11, %rcx
    and     $~{RFLAGS_IF_IOPL}, %rcx
    mov     {ES_VCPU_INFO}(%rbx), %rdx
    cmpb    $0, {VI_UPCALL_MASK}(%rdx)
    jne     1f
    or      $0x200, %rcx                /* IF mirrors !upcall_mask */
1:  mov     (%rsp), %rdx                /* user rip */
    testb   $1, %gs:{PERCPU_SMAP}
    jz      2f
    stac
2:
    .global bounce_frame_write
bounce_frame_write:
    mov     %rdx, {TF_RCX}(%rax)
    mov     %r11, {TF_R11}(%rax)
    movq    $0, {TF_ERROR}(%rax)
    mov     %rdx, {TF_RIP}(%rax)
    movq    ${USER_CS64}, {TF_CS}(%rax)
    mov     %rcx, {TF_RFLAGS}(%rax)
    mov     %gs:{PERCPU_SCRATCH}, %rdx
    mov     %rdx, {TF_RSP}(%rax)
    movq    ${USER_DS}, {TF_SS}(%rax)
    .global bounce_frame_written
bounce_frame_written:
    testb   $1, %gs:{PERCPU_SMAP}
    jz      3f
    clac
3:  cmpq    $0, {ES_SYSCALL_MASKS_EVENTS}(%rbx)
    je      4f
    mov     {ES_VCPU_INFO}(%rbx), %rdx
    movb    $1, {VI_UPCALL_MASK}(%rdx)
4:  mov     %rax, %gs:{PERCPU_SCRATCH}  /* the callback's rsp */
    mov     {ES_SYSCALL_ENTRY}(%rbx), %rcx
    mov     $0x202, %r11d
    add     $8, %rsp
    pop     %rdx
    pop     %rax
    pop     %rbx
    mov     %gs:{PERCPU_SCRATCH}, %rsp
    swapgs
    sysretq

/* A user syscall the fast path does not take: Rust bounces it. */
user_syscall_slow:
    pop     %rbx
    SYSCALL_FRAME {USER_CS64}
    call    user_syscall_entry
    jmp     exit_iret

/*
 * syscall from 32-bit compatibility-mode code (CSTAR): not a hypercall and
 * not bounced; Rust raises #UD in the guest.
 */
    .global syscall_compat_entry
    .balign 16
syscall_compat_entry:
    swapgs
    mov     %rsp, %gs:{PERCPU_SCRATCH}
    mov     %gs:{PERCPU_STACK_TOP}, %rsp
    SYSCALL_FRAME {USER_CS32}
    call    compat_syscall_entry
    jmp     exit_iret

/*
 * exit_iret: resumes the GuestRegisters frame at rsp, every register
 * restored, through iretq.
 */
    .global exit_iret
exit_iret:
    mov     %rsp, %rdi
    RESTORE_GPRS_EXCEPT_RDI
    mov     {GPRS_RDI}(%rdi), %rdi
    add     ${REGS_RIP}, %rsp
    swapgs
    iretq

/*
 * enter_guest(regs: *const GuestRegisters) -> !: copies the frame to the
 * top of this CPU's stack, abandoning whatever ran on it, and resumes it.
 */
    .global enter_guest
    .balign 16
enter_guest:
    mov     %gs:{PERCPU_STACK_TOP}, %rsp
    sub     ${REGS_SIZE}, %rsp
    mov     %rdi, %rsi
    mov     %rsp, %rdi
    mov     ${REGS_QWORDS}, %ecx
    cld
    rep movsq
    jmp     exit_iret

/*
 * Exceptions. Each stub pushes a zero error code where the CPU pushes none,
 * then its vector, so every frame looks the same. From ring 3 the frame is
 * a GuestRegisters at the stack top; exception_entry returns only for
 * those, after changing it, and exit_iret resumes it.
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
    testb   $3, {REGS_CS} - {REGS_VECTOR}(%rsp)
    jz      1f
    swapgs
1:  sub     ${REGS_VECTOR}, %rsp
    SAVE_GPRS %rsp
    mov     %rsp, %rdi
    call    exception_entry
    jmp     exit_iret

/*
 * Interrupts (the APIC's: the timer and IPIs from other CPUs). From a
 * guest they build the same frame as exceptions, and interrupt_entry may
 * replace it (another vCPU's) before exit_iret resumes it. In the
 * hypervisor they arrive only while it idles with interrupts on: the
 * caller-saved registers are kept and the idle loop resumes.
 */
.macro INTERRUPT_STUB vector
    .balign 16
    .global interrupt_stub_\vector
interrupt_stub_\vector:
    pushq   $0
    pushq   $\vector
    jmp     interrupt_common
.endm

    INTERRUPT_STUB {TIMER_VECTOR}
    INTERRUPT_STUB {RESCHED_VECTOR}
    INTERRUPT_STUB {WORK_VECTOR}
    INTERRUPT_STUB {SPURIOUS_VECTOR}

interrupt_common:
    testb   $3, {REGS_CS} - {REGS_VECTOR}(%rsp)
    jz      interrupt_in_hypervisor
    swapgs
    sub     ${REGS_VECTOR}, %rsp
    SAVE_GPRS %rsp
    mov     %rsp, %rdi
    call    interrupt_entry
    jmp     exit_iret

interrupt_in_hypervisor:
    /* rsp is 16-byte aligned + 8 here (CPU frame 40, stub 16); nine pushes realign it. */
    push    %rax
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    mov     72(%rsp), %rdi          /* the vector */
    call    idle_interrupt_entry
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %rcx
    pop     %rax
    add     $16, %rsp
    iretq

    .section .rodata.entry, "a"
    .balign 8
    .global exception_stubs
exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\v
    .endr
