/* A program that writes through a null pointer: the system test checks
 * that the kernel kills it with SIGSEGV, reports it, and goes on. It has
 * no libc, so it runs in any initramfs. */
void _start(void)
{
	*(volatile int *)0 = 1;
	for (;;)
		;
}
