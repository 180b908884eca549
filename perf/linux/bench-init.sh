#!/bin/sh
# /init of the Linux benchmarks: the same script runs on the native kernel
# and on Veneer. xtask (xtask/src/linux_bench.rs) puts the workloads of the
# run in place of the line that holds only the word WORKLOADS between @
# signs, one `workload NAME COMMAND...` each, and reads the serial log: every workload's output sits between
#   linux-bench: begin NAME
#   linux-bench: end NAME status=N
# and the run ends with `linux-bench: done`.

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
cd /tmp

echo "linux-bench: kernel $(uname -sr), $(grep -c ^processor /proc/cpuinfo) CPU, $(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) KiB"
# The clock every figure is read by, before and after the workloads (a
# kernel may change it while they run).
clocksource() {
    echo "linux-bench: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
}
clocksource

workload() {
    name=$1
    shift
    echo "linux-bench: begin $name"
    "$@" 2>&1
    echo "linux-bench: end $name status=$?"
}

@WORKLOADS@

clocksource
echo "linux-bench: done"
# Veneer's guests power off through the hypervisor; a native kernel without
# ACPI cannot, and its runner asks for a reboot (QEMU's -no-reboot ends).
if grep -q "linux-bench.end=reboot" /proc/cmdline; then
    reboot -f
fi
poweroff -f
