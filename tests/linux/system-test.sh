#!/bin/sh
# /init of the Linux system test: exercises the kernel the way a user does
# (processes, memory, faults, timers) and ends with one verdict line that
# the runner (xtask/src/linux_system.rs) reads:
#   linux-system-test: PASS
#   linux-system-test: FAIL <what>
# It also prints `linux-system-test: clock <uptime>` before and after a
# sleep, so the runner can hold the guest's clock against the host's.

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null

failures=0
fail() {
    echo "linux-system-test: FAIL $*"
    failures=$((failures + 1))
}
step() {
    echo "linux-system-test: $*"
}

step "kernel $(uname -sr) on $(uname -m)"
grep -q proc /proc/mounts || fail "proc is not mounted"
[ -d /sys/kernel ] || fail "sysfs is not mounted"

# Fork and exec: a few thousand short-lived processes and pipelines.
runs=0
i=0
while [ $i -lt 400 ]; do
    /bin/true || fail "true failed"
    n=$(echo "a b c $i" | /bin/tr ' ' '\n' | /bin/wc -l)
    [ "$n" -eq 4 ] || fail "pipeline $i gave $n lines"
    runs=$((runs + 4))
    i=$((i + 1))
done
step "fork/exec: $runs processes"
[ "$(sh -c 'exit 7'; echo $?)" -eq 7 ] || fail "exit status lost"

# Memory: a process that grows to half the free memory, page by page; it
# reports how many page faults it took (minflt, field 10 of its stat).
free_kb=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
want_kb=$((free_kb / 2))
set -- $(awk -v kb="$want_kb" 'BEGIN {
    s = sprintf("%1024s", ""); n = 0
    while (n < kb) { a[n] = s; n++ }
    getline stat < "/proc/self/stat"; split(stat, f, " ")
    print n, f[10] }')
got=$1
faults=$2
step "memory: $got KiB of $free_kb KiB available touched, $faults page faults"
[ "$got" = "$want_kb" ] || fail "memory: filled $got of $want_kb KiB"
[ "$faults" -ge 2000 ] || fail "memory: only $faults page faults"

# A process that faults: the kernel kills it with SIGSEGV and goes on.
/bin/segfault
status=$?
[ $status -eq 139 ] || fail "segfault: exit status $status, not 139 (SIGSEGV)"
dmesg | grep -q "segfault\[[0-9]*\]: segfault at" || fail "segfault: the kernel did not report it"
step "segfault: killed with status $status, reported by the kernel"

# Timers: sleeps end on time by the guest's clock; the runner compares
# that clock with the host's across the long one.
t0=$(cut -d' ' -f1 /proc/uptime)
sleep 0.2
t1=$(cut -d' ' -f1 /proc/uptime)
step "clock $t1"
sleep 3
t2=$(cut -d' ' -f1 /proc/uptime)
step "clock $t2"
short=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print int((b - a) * 1000) }')
long=$(awk -v a="$t1" -v b="$t2" 'BEGIN { print int((b - a) * 1000) }')
step "sleep 0.2 took $short ms, sleep 3 took $long ms"
[ "$short" -ge 190 ] && [ "$short" -le 600 ] || fail "sleep 0.2 took $short ms"
[ "$long" -ge 2990 ] && [ "$long" -le 3500 ] || fail "sleep 3 took $long ms"

if [ $failures -eq 0 ]; then
    echo "linux-system-test: PASS"
else
    echo "linux-system-test: FAIL $failures checks"
fi
# Veneer's guests power off through the hypervisor; a native kernel without
# ACPI cannot, and its runner asks for a reboot (QEMU's -no-reboot ends).
if grep -q "linux-system-test.end=reboot" /proc/cmdline; then
    reboot -f
fi
poweroff -f
