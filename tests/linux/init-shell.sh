#!/bin/sh
# /init of `make run` with Linux: busybox init (etc/inittab) runs a shell
# on hvc0; its poweroff ends the domain, and with it QEMU.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
exec /bin/init
