//! CPU state a ring-3 guest kernel cannot set itself: the virtual trap
//! table, entry points, the kernel stack, segment bases, descriptor tables,
//! I/O privilege, debug registers, and its view of CPUID and MSRs.

crate::abi_consts! {
    /// Segment selectors the hypervisor provides (entries of its own part of
    /// the GDT, above the guest's `GDT_GUEST_ENTRIES`). In a bounce frame the
    /// code selector's RPL is the guest's virtual privilege level: 0 when
    /// the guest kernel was interrupted, 3 for guest user mode.
    pub mod selectors: u64, c_prefix = "SEL" {
        /// Entries of the GDT the guest owns (one frame); selectors with an
        /// index at or above this are the hypervisor's.
        GDT_GUEST_ENTRIES = 512;
        /// Flat 32-bit code, DPL 3 (compatibility-mode user processes).
        FLAT_USER_CS32 = 0x101b;
        /// Flat data and stack, DPL 3.
        FLAT_USER_DS = 0x1023;
        /// Flat 64-bit code, DPL 3.
        FLAT_USER_CS64 = 0x102b;
        /// How the guest kernel's code selector appears in bounce frames
        /// (`FLAT_USER_CS64` with RPL 0); `iret` to it returns to kernel mode.
        FLAT_KERNEL_CS64 = 0x1028;
        /// How the guest kernel's stack selector appears in bounce frames.
        FLAT_KERNEL_SS = 0x1020;
    }
}

crate::abi_consts! {
    /// Limits of the CPU calls.
    pub mod cpu_limits: u64, c_prefix = "CPU" {
        /// Entries of a trap table: one per vector.
        TRAP_VECTORS = 256;
        /// The most LDT entries `set_ldt` accepts (the x86 limit).
        LDT_ENTRIES_MAX = 8192;
        /// Ports an I/O bitmap covers.
        IO_PORTS = 65536;
        /// First CPUID leaf of the hypervisor range; `cpuid_query` answers
        /// it with the signature "VeneerVeneer" and the highest leaf 0x40000001.
        CPUID_HV_BASE = 0x4000_0000;
    }
}

crate::abi_consts! {
    /// `TrapInfo::flags`.
    pub mod trap_flags: u8, c_prefix = "TRAP" {
        /// Bits 0–1: the lowest virtual privilege level that may raise the
        /// vector with `int n` (3: user mode may, as for `int3` and `int 0x80`;
        /// 0: only the hypervisor delivers it).
        DPL_MASK = 3;
        /// Mask events on entry (as an interrupt gate clears IF); otherwise
        /// `upcall_mask` is left alone (a trap gate).
        MASK_EVENTS = 1 << 2;
    }
}

crate::abi_struct! {
    /// One entry of `set_trap_table`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct TrapInfo(size = 16) {
        /// The vector, 0–255.
        @0 vector: u8,
        /// `trap_flags` bits.
        @1 flags: u8,
        /// Must be zero.
        @2 reserved0: [u8; 6],
        /// Entry point in the guest kernel; 0 removes the vector's handler.
        @8 address: u64,
    }
}

crate::abi_struct! {
    /// What the hypervisor pushes on the guest kernel stack when it bounces
    /// an exception, event or user `syscall` to the guest (lowest address
    /// first; `rsp` points at `rcx` on entry). The stack is the one set by
    /// `stack_switch` when the guest was in user mode, else the interrupted
    /// kernel stack, 16-byte aligned below the interrupted `rsp`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct TrapFrame(size = 64) {
        /// The interrupted `rcx` (`syscall` sets it to the user return address).
        @0 rcx: u64,
        /// The interrupted `r11` (`syscall` sets it to the user rflags).
        @8 r11: u64,
        /// The exception's error code; 0 for vectors without one, events and
        /// syscalls.
        @16 error_code: u64,
        /// Interrupted instruction pointer.
        @24 rip: u64,
        /// Interrupted code selector; RPL 0 means guest kernel mode.
        @32 cs: u64,
        /// Interrupted rflags; IF mirrors `!upcall_mask`, IOPL reads 0.
        @40 rflags: u64,
        /// Interrupted stack pointer.
        @48 rsp: u64,
        /// Interrupted stack selector.
        @56 ss: u64,
    }
}

crate::abi_consts! {
    /// `IretFrame::flags`.
    pub mod iret_flags: u64, c_prefix = "IRET" {
        /// The frame returns from a syscall to user mode: `rcx` and `r11`
        /// need not be restored, so the hypervisor may use `sysret`.
        IN_SYSCALL = 1 << 0;
    }
}

crate::abi_struct! {
    /// What `iret` pops from the guest stack (lowest address first, at `rsp`
    /// when the guest issues the call). `rax` is restored from the frame, so
    /// the call number does not clobber the guest's `rax`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct IretFrame(size = 72) {
        /// `rax` to restore.
        @0 rax: u64,
        /// `r11` to restore (unless `IN_SYSCALL`).
        @8 r11: u64,
        /// `rcx` to restore (unless `IN_SYSCALL`).
        @16 rcx: u64,
        /// `iret_flags` bits.
        @24 flags: u64,
        /// Return instruction pointer.
        @32 rip: u64,
        /// Return code selector; RPL 3 returns to user mode.
        @40 cs: u64,
        /// Return rflags; IF sets `upcall_mask` to its inverse; IOPL, VM,
        /// NT and RF are ignored.
        @48 rflags: u64,
        /// Return stack pointer.
        @56 rsp: u64,
        /// Return stack selector.
        @64 ss: u64,
    }
}

crate::abi_enum! {
    /// First argument of `set_callback`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CallbackKind: u64, c_prefix = "CALLBACK" {
        /// Event upcall: entered when an event is pending and unmasked.
        Event = 0,
        /// Failsafe: entered when returning to the guest would fault on its
        /// segment state (a selector `iret` cannot load); the frame holds the
        /// selectors DS, ES, FS, GS below a `TrapFrame`.
        Failsafe = 1,
        /// `syscall` from guest user mode.
        Syscall = 2,
    }
}

crate::abi_consts! {
    /// Third argument of `set_callback`.
    pub mod callback_flags: u64, c_prefix = "CALLBACKF" {
        /// Mask events on entry to this callback.
        MASK_EVENTS = 1 << 0;
    }
}

crate::abi_enum! {
    /// First argument of `set_segment_base`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SegmentBase: u64, c_prefix = "SEGBASE" {
        /// FS base (both modes).
        Fs = 0,
        /// GS base while in guest kernel mode.
        GsKernel = 1,
        /// GS base while in guest user mode (the hypervisor swaps the two on
        /// every kernel/user transition, so the guest never uses `swapgs`).
        GsUser = 2,
        /// Load the user-mode GS selector `value` (its base comes from the
        /// descriptor; a null selector leaves base 0).
        GsUserSelector = 3,
    }
}

crate::abi_consts! {
    /// `set_io_privilege` modes.
    pub mod io_privilege: u64, c_prefix = "IOPRIV" {
        /// Guest kernel mode may not use I/O ports.
        NONE = 0;
        /// Guest kernel mode may use the ports the domain is permitted.
        KERNEL = 1;
    }
}

crate::abi_struct! {
    /// What `cpuid_query` writes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct CpuidResult(size = 16) {
        /// EAX.
        @0 eax: u32,
        /// EBX.
        @4 ebx: u32,
        /// ECX.
        @8 ecx: u32,
        /// EDX.
        @12 edx: u32,
    }
}

crate::abi_consts! {
    /// MSRs `msr_read` and `msr_write` accept; any other answers `NotFound`.
    pub mod msr: u32, c_prefix = "MSR" {
        /// IA32_APIC_BASE: reads as 0 (no local APIC is visible); not writable.
        APIC_BASE = 0x1b;
        /// IA32_MISC_ENABLE: reads the host value masked to the
        /// fast-strings and enhanced-SpeedStep bits; writes ignored.
        MISC_ENABLE = 0x1a0;
        /// IA32_PAT: reads the fixed PAT the hypervisor programs; writes of
        /// that value succeed, others answer `Invalid`.
        PAT = 0x277;
        /// IA32_EFER: reads the hypervisor's value (LME, LMA, SCE, NXE); writes ignored.
        EFER = 0xc000_0080;
        /// FS base: as `set_segment_base(Fs)`.
        FS_BASE = 0xc000_0100;
        /// GS base: as `set_segment_base(GsKernel)`.
        GS_BASE = 0xc000_0101;
        /// Kernel GS base (the inactive one): as `set_segment_base(GsUser)`.
        KERNEL_GS_BASE = 0xc000_0102;
        /// IA32_TSC_AUX (what `rdtscp` and `rdpid` return): per vCPU,
        /// readable and writable (low 32 bits).
        TSC_AUX = 0xc000_0103;
    }
}

crate::abi_consts! {
    /// Descriptor validation (`update_descriptor`, `set_gdt`, `set_ldt`).
    pub mod descriptor: u64, c_prefix = "DESC" {
        /// Bytes per descriptor.
        SIZE = 8;
        /// The DPL field (bits 45–46); must be 3 in a present descriptor.
        DPL_MASK = 3 << 45;
        /// The S bit (bit 44): must be 1 (code or data) in a present
        /// descriptor; system descriptors and gates are refused.
        S_BIT = 1 << 44;
        /// The present bit (bit 47); a non-present descriptor is accepted as is.
        PRESENT = 1 << 47;
        /// Type bits 42 (conforming, for code): a conforming code segment is refused.
        CONFORMING = 1 << 42;
        /// Bit 43: code (1) or data (0).
        CODE = 1 << 43;
    }
}

/// Whether `desc` may be installed in a guest GDT or LDT: not present, or
/// a present DPL-3 non-conforming code or data segment.
pub const fn descriptor_is_safe(desc: u64) -> bool {
    if desc & descriptor::PRESENT == 0 {
        return true;
    }
    let code = desc & descriptor::CODE != 0;
    desc & descriptor::S_BIT != 0
        && desc & descriptor::DPL_MASK == descriptor::DPL_MASK
        && !(code && desc & descriptor::CONFORMING != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_in_the_hypervisor_area_and_match_their_rpl() {
        for s in [selectors::FLAT_USER_CS32, selectors::FLAT_USER_DS, selectors::FLAT_USER_CS64] {
            assert!(s >> 3 >= selectors::GDT_GUEST_ENTRIES);
            assert_eq!(s & 3, 3);
        }
        assert_eq!(selectors::FLAT_KERNEL_CS64, selectors::FLAT_USER_CS64 & !3);
        assert_eq!(selectors::FLAT_KERNEL_SS, selectors::FLAT_USER_DS & !3);
        // sysret order: CS32, then SS (= CS32 + 8), then CS64 (= CS32 + 16).
        assert_eq!(selectors::FLAT_USER_DS, selectors::FLAT_USER_CS32 + 8);
        assert_eq!(selectors::FLAT_USER_CS64, selectors::FLAT_USER_CS32 + 16);
    }

    #[test]
    fn descriptor_policy() {
        // Linux's __USER_CS (64-bit code, DPL 3) and __USER_DS.
        assert!(descriptor_is_safe(0x00af_fb00_0000_ffff));
        assert!(descriptor_is_safe(0x00cf_f300_0000_ffff));
        // Its __KERNEL_CS (DPL 0) is refused.
        assert!(!descriptor_is_safe(0x00af_9b00_0000_ffff));
        // A 64-bit TSS (system descriptor, DPL 3) is refused.
        assert!(!descriptor_is_safe(0x0000_e900_0000_0067));
        // A conforming DPL-3 code segment is refused.
        assert!(!descriptor_is_safe(0x00af_ff00_0000_ffff));
        // Not present: anything goes (it cannot be loaded).
        assert!(descriptor_is_safe(0x0000_0c00_0000_0000));
    }
}
