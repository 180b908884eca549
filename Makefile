# Veneer's front door: install what is missing, then hand over to xtask,
# where the build, bundle, QEMU and test logic lives.

# Debian's Rust (the one toolchain here with library sources for
# -Zbuild-std) with its linker, QEMU, and a C compiler for the ABI header
# checks.
APT_PACKAGES := rustc-web cargo-web rust-web-src rust-web-clippy rust-web-llvm lld-22 \
                qemu-system-x86 gcc g++
# The Linux table runs Debian's stress-ng, sysbench and tcc inside the guest.
BENCH_PACKAGES := python3-matplotlib stress-ng sysbench tcc
LINUX_PACKAGES := linux-source-6.12 bc flex bison libelf-dev libssl-dev busybox-static cpio rsync patch
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
XTASK := cargo run -q -p xtask --

# $(call install_missing,PACKAGES): apt-get install those not installed yet.
define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

.PHONY: all deps deps-bench deps-linux build run test conformance bench bench-quick bench-linux linux linux-native qemu-command clean

all: build

deps:
	$(call install_missing,$(APT_PACKAGES))

build: deps
	@$(XTASK) build

# Boots Linux on Veneer with its shell on the serial console here; its
# poweroff ends QEMU.
run: deps-linux
	@$(XTASK) run linux

# Host unit tests, every conformance guest, then the Linux system tests;
# ends with "N passed, N failed".
test: deps-linux
	@$(XTASK) test

conformance: deps
	@$(XTASK) conformance

# Plots need Debian's matplotlib, for the system python3; the Linux table
# needs the native Linux kernel's packages too.
deps-bench: deps-linux
	$(call install_missing,$(BENCH_PACKAGES))

# Fails when a Linux macro workload costs 5% or more on Veneer.
bench: deps-bench
	@$(XTASK) bench

bench-quick: deps-bench
	@$(XTASK) bench-quick

# The Linux table alone (`make bench-linux QUICK=1` for the short one).
bench-linux: deps-bench
	@$(XTASK) bench-linux $(if $(QUICK),quick)

# Linux guests: Debian's kernel source, its build tools, busybox-static.
deps-linux: deps
	$(call install_missing,$(LINUX_PACKAGES))

linux: deps-linux
	@$(XTASK) linux

linux-native: deps-linux
	@$(XTASK) linux-native

qemu-command: deps
	@$(XTASK) qemu-command

clean:
	cargo clean
