/*
 * A process that dies of a page fault: it writes to address 0. Linked
 * without libc (-nostdlib -static), so the fault is its first user-mode
 * memory access after exec. The Linux system test checks that the kernel
 * survives, kills it with SIGSEGV and reports the fault.
 */
void _start(void)
{
	*(volatile int *)0 = 1;
	for (;;)
		;
}
