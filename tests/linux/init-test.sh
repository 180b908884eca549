#!/bin/sh
# /init of the Linux system tests (xtask linux_guest): exercises the Veneer
# port and ends with one verdict line, "linux-test: PASS" or
# "linux-test: FAIL <why>", then powers off. The runner reads the line, and
# holds the two "linux-test: clock <uptime>" lines around a sleep against
# the host's clock. The same script is the native control
# (`xtask linux-native`, with `linux-test.native` on the command line):
# there nothing names Veneer, and a kernel without ACPI cannot power off,
# so it reboots (QEMU's -no-reboot turns that into an exit).
export PATH=/bin
native() { grep -q "linux-test.native" /proc/cmdline; }
end() { if native; then reboot -f; fi; poweroff -f; }
fail() { echo "linux-test: FAIL $*"; end; }
# Minor page faults of this shell's finished children (/proc/PID/stat field 11).
child_faults() { awk '{ print $11 }' /proc/$$/stat; }
uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }

mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sys /sys || fail "mount sysfs"
mount -t devtmpfs dev /dev || fail "mount devtmpfs"
mount -t tmpfs tmp /tmp || fail "mount tmpfs"
echo "linux-test: $(uname -a)"
native || dmesg | grep -q "Booting paravirtualized kernel on Veneer" || fail "dmesg does not name Veneer"

# fork and exec: every command below is a new process running busybox.
n=0
while [ $n -lt 300 ]; do
	[ "$(echo $n | cat)" = "$n" ] || fail "pipe $n"
	n=$((n + 1))
done
echo "linux-test: 300 fork/exec pipelines"

# Memory: touch most of what is free, one page fault per page: a buffer
# of half of it in one process, then a file of a third of it in tmpfs.
before=$(child_faults)
free_mb=$(awk '/^MemFree:/ { print int($2 / 1024) }' /proc/meminfo)
dd if=/dev/zero of=/dev/null bs=$((free_mb / 2))M count=1 2>/tmp/dd.err || fail "dd of $((free_mb / 2)) MiB: $(cat /tmp/dd.err)"
dd if=/dev/zero of=/tmp/fill bs=1M count=$((free_mb / 3)) 2>/tmp/dd.err || fail "tmpfs fill of $((free_mb / 3)) MiB: $(cat /tmp/dd.err)"
rm /tmp/fill
faults=$(( $(child_faults) - before ))
echo "linux-test: touched $((free_mb / 2 + free_mb / 3)) of ${free_mb} MiB free, ${faults} page faults"
[ "$faults" -ge 2000 ] || fail "only $faults page faults"

# A process that segfaults: the kernel survives and reports it.
/bin/segv
status=$?
[ $status -eq 139 ] || fail "segv exited $status, not 139 (SIGSEGV)"
dmesg | grep -q "segv.*segfault at 0" || fail "no segfault report in dmesg"
echo "linux-test: segv killed by SIGSEGV and reported"

# Timers: sleep 3 s and 0.2 s against the clock (the runner holds the 3 s
# against the host's clock; echo is a shell builtin, no process).
t0=$(uptime_cs)
echo "linux-test: clock $t0"
sleep 3
t1=$(uptime_cs)
echo "linux-test: clock $t1"
usleep 200000
t2=$(uptime_cs)
echo "linux-test: sleep 3 took $((t1 - t0)) cs, usleep 200000 took $((t2 - t1)) cs"
[ $((t1 - t0)) -ge 300 ] && [ $((t1 - t0)) -le 350 ] || fail "sleep 3 took $((t1 - t0)) cs"
[ $((t2 - t1)) -ge 20 ] && [ $((t2 - t1)) -le 50 ] || fail "usleep 200000 took $((t2 - t1)) cs"

echo "linux-test: PASS"
end
