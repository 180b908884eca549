/*
 * The measurements of lmbench's latency tables that Debian has no tool for,
 * as one static program with a subcommand each, run inside a Linux guest
 * natively and on Veneer. Each prints one line the harness parses
 * (xtask/src/linux_bench.rs):
 *
 *   latency <name> cycles=<median> min=<n> max=<n> batches=<n> ops=<n>
 *
 * the per-operation time in TSC cycles of the median batch, the fastest and
 * the slowest. A measurement first finds a batch size that takes at least
 * BATCH_CYCLES, then runs batches until it has spent the time asked for (at
 * least MIN_BATCHES): fixed time rather than fixed work, so one build runs
 * the same under KVM and under TCG's emulation.
 *
 *   latency time <name> <command> [args...]
 *
 * runs a command and prints
 * `latency-time <name> ns=<elapsed> cycles=<elapsed> status=<n>`: the
 * macro workloads' clock.
 *
 * Times are TSC cycles, read in user mode: under QEMU the guest's TSC is
 * the host's on both sides, where each kernel's nanoseconds depend on how
 * it calibrated its TSC (Veneer's calibration and the native kernel's may
 * differ by a fraction of a percent, as much as a gate's margin).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

/* About 2 ms at the GHz of current hosts. */
#define BATCH_CYCLES 5000000ULL
#define MIN_BATCHES 5
#define MAX_BATCHES 1001
#define PAGE 4096
#define MAP_BYTES (1 << 20)

static const char *self;
static const char *scratch = "/tmp/latency.file";

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t cycles(void)
{
	return __rdtsc();
}

/* An operation: does `n` of it and returns the cycles they took (an op
 * times itself, so that what it must set up and tear down is left out). */
typedef uint64_t (*op_fn)(unsigned long n);

/* Runs `op` in batches for about `budget_ns`; prints the per-operation
 * times, where one call of `op(n)` is `n * per` operations. */
static void measure(const char *name, op_fn op, unsigned long per, uint64_t budget_ns)
{
	static uint64_t per_op[MAX_BATCHES];
	unsigned long n = 1;

	while (op(n) < BATCH_CYCLES && n < (1UL << 30))
		n *= 2;
	int batches = 0;
	uint64_t start = now_ns();
	while (batches < MAX_BATCHES && (batches < MIN_BATCHES || now_ns() - start < budget_ns))
		per_op[batches++] = op(n) / (n * per);
	qsort(per_op, batches, sizeof per_op[0], cmp_u64);
	printf("latency %s cycles=%llu min=%llu max=%llu batches=%d ops=%lu\n", name,
	       (unsigned long long)per_op[batches / 2], (unsigned long long)per_op[0],
	       (unsigned long long)per_op[batches - 1], batches, n * per);
	fflush(stdout);
}

/* The system call with the least work: lmbench's "null call". */
static uint64_t op_null(unsigned long n)
{
	uint64_t t = cycles();
	while (n--)
		syscall(SYS_getppid);
	return cycles() - t;
}

static uint64_t op_stat(unsigned long n)
{
	uint64_t t = cycles();
	struct stat st;
	while (n--)
		if (stat(scratch, &st))
			die("stat");
	return cycles() - t;
}

static uint64_t op_open_close(unsigned long n)
{
	uint64_t t = cycles();
	while (n--) {
		int fd = open(scratch, O_RDONLY);
		if (fd < 0)
			die("open");
		close(fd);
	}
	return cycles() - t;
}

static void on_signal(int sig)
{
	(void)sig;
}

static uint64_t op_sig_install(unsigned long n)
{
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t t = cycles();
	while (n--)
		if (sigaction(SIGUSR1, &sa, NULL))
			die("sigaction");
	return cycles() - t;
}

/* A signal sent to itself and caught: the kernel's delivery to a user
 * handler and the sigreturn back. */
static uint64_t op_sig_deliver(unsigned long n)
{
	pid_t me = getpid();
	uint64_t t = cycles();
	while (n--)
		kill(me, SIGUSR1);
	return cycles() - t;
}

static void wait_child(pid_t pid)
{
	int status;
	if (pid < 0)
		die("fork");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("child");
}

static uint64_t op_fork(unsigned long n)
{
	uint64_t t = cycles();
	while (n--) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		wait_child(pid);
	}
	return cycles() - t;
}

static void spawn(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	wait_child(pid);
}

/* fork, then exec this (static) program, which exits at once. */
static uint64_t op_exec(unsigned long n)
{
	char *argv[] = { (char *)self, "exit", NULL };
	uint64_t t = cycles();
	while (n--)
		spawn(argv);
	return cycles() - t;
}

/* The shell starting a program: lmbench's "sh proc". */
static uint64_t op_sh(unsigned long n)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "%s exit", self);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	uint64_t t = cycles();
	while (n--)
		spawn(argv);
	return cycles() - t;
}

/* Context switches among `ring` processes passing one byte around a ring
 * of pipes; the figure is per switch and includes a pipe read and write
 * (lmbench subtracts that, measured apart; here both sides pay it). */
static int ring;
static int pipes[16][2];

static void token_loop(int me, unsigned long rounds)
{
	char c = 0;
	int in = pipes[me][0], out = pipes[(me + 1) % ring][1];
	for (unsigned long i = 0; i < rounds; i++) {
		if (me == 0 && write(out, &c, 1) != 1)
			die("write");
		if (read(in, &c, 1) != 1)
			die("read");
		if (me != 0 && write(out, &c, 1) != 1)
			die("write");
	}
}

/* `n` rounds of the token around the ring, timed after one round that
 * lets every process start. */
static uint64_t op_ctx(unsigned long n)
{
	pid_t pids[16];
	for (int i = 0; i < ring; i++)
		if (pipe(pipes[i]))
			die("pipe");
	for (int i = 1; i < ring; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			token_loop(i, n + 1);
			_exit(0);
		}
	}
	token_loop(0, 1);
	uint64_t t = cycles();
	token_loop(0, n);
	t = cycles() - t;
	for (int i = 1; i < ring; i++)
		wait_child(pids[i]);
	for (int i = 0; i < ring; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	return t;
}

/* One write to each of `n` pages of fresh anonymous memory: a fault that
 * allocates, zeroes and maps a page. The mmap and munmap are not timed. */
static uint64_t op_page_fault(unsigned long n)
{
	size_t bytes = n * PAGE;
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	uint64_t t = cycles();
	for (size_t off = 0; off < bytes; off += PAGE)
		p[off] = 1;
	t = cycles() - t;
	munmap(p, bytes);
	return t;
}

/* lmbench's mmap latency: map 1 MiB of a file, touch each page, unmap. */
static int map_fd;

static uint64_t op_mmap(unsigned long n)
{
	uint64_t t = cycles();
	while (n--) {
		volatile char *p = mmap(NULL, MAP_BYTES, PROT_READ, MAP_SHARED, map_fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		for (size_t off = 0; off < MAP_BYTES; off += PAGE)
			(void)p[off];
		munmap((void *)p, MAP_BYTES);
	}
	return cycles() - t;
}

static void make_scratch(size_t bytes)
{
	int fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, bytes))
		die(scratch);
	/* Written, so the mapping finds the pages in the page cache. */
	char page[PAGE];
	memset(page, 1, sizeof page);
	for (size_t off = 0; off < bytes; off += PAGE)
		if (pwrite(fd, page, PAGE, off) != PAGE)
			die("pwrite");
	map_fd = fd;
}

static int run_timed(const char *name, char *const argv[])
{
	uint64_t c = cycles(), t = now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		die("time");
	t = now_ns() - t;
	c = cycles() - c;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("latency-time %s ns=%llu cycles=%llu status=%d\n", name, (unsigned long long)t, (unsigned long long)c, code);
	return code;
}

/* `ring` is the processes of a context-switch ring: one round is that many
 * switches. */
static const struct {
	const char *name;
	op_fn op;
	int ring;
} ops[] = {
	{ "null-syscall", op_null, 1 },
	{ "stat", op_stat, 1 },
	{ "open-close", op_open_close, 1 },
	{ "signal-install", op_sig_install, 1 },
	{ "signal-deliver", op_sig_deliver, 1 },
	{ "fork", op_fork, 1 },
	{ "exec", op_exec, 1 },
	{ "sh", op_sh, 1 },
	{ "ctx-2", op_ctx, 2 },
	{ "ctx-8", op_ctx, 8 },
	{ "ctx-16", op_ctx, 16 },
	{ "page-fault", op_page_fault, 1 },
	{ "mmap", op_mmap, 1 },
};

static int usage(void)
{
	fprintf(stderr, "usage: latency exit | time NAME CMD [ARG...] | BUDGET_MS NAME...\n");
	return 2;
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc == 2 && !strcmp(argv[1], "exit"))
		return 0;
	if (argc >= 4 && !strcmp(argv[1], "time"))
		return run_timed(argv[2], argv + 3);
	if (argc < 3)
		return usage();
	uint64_t budget = strtoull(argv[1], NULL, 10) * 1000000ULL;
	if (budget == 0)
		return usage();
	make_scratch(MAP_BYTES);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	for (int a = 2; a < argc; a++) {
		size_t i;
		for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
			if (!strcmp(argv[a], ops[i].name))
				break;
		if (i == sizeof ops / sizeof ops[0])
			return usage();
		ring = ops[i].ring;
		measure(ops[i].name, ops[i].op, ring, budget);
	}
	return 0;
}
