//! vCPU operations: bringing vCPUs of an SMP guest up and down, and the
//! runstate record.

crate::abi_consts! {
    /// `VcpuContext::flags`.
    pub mod vcpu_flags: u64, c_prefix = "VCPUF" {
        /// Start with events unmasked (`upcall_mask` 0); otherwise masked.
        EVENTS_ENABLED = 1 << 0;
    }
}

crate::abi_struct! {
    /// The state an offline vCPU starts in (`vcpu_initialise`). Everything
    /// not named here is copied from the calling vCPU at the time of the
    /// call: the trap table, the callbacks, the GDT and LDT, the I/O
    /// privilege; other general registers start at zero.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuContext(size = 128) {
        /// Entry point (guest kernel mode).
        @0 rip: u64,
        /// Initial stack pointer.
        @8 rsp: u64,
        /// Initial `rdi` (e.g. the vCPU's per-CPU area).
        @16 rdi: u64,
        /// Initial `rsi`.
        @24 rsi: u64,
        /// Machine frame of the kernel-mode L4 table (typed L4).
        @32 kernel_l4_mfn: u64,
        /// Machine frame of the user-mode L4 table, 0 for none.
        @40 user_l4_mfn: u64,
        /// Kernel stack for entries from user mode (as `stack_switch`).
        @48 kernel_sp: u64,
        /// FS base.
        @56 fs_base: u64,
        /// GS base in kernel mode.
        @64 gs_base_kernel: u64,
        /// GS base in user mode.
        @72 gs_base_user: u64,
        /// `vcpu_flags` bits.
        @80 flags: u64,
        /// Must be zero.
        @88 reserved0: [u64; 5],
    }
}

crate::abi_enum! {
    /// `RunstateInfo::state` and the index into `RunstateInfo::time`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RunstateState: u32, c_prefix = "RUNSTATE" {
        /// Running on a physical CPU.
        Running = 0,
        /// Ready to run but waiting for a physical CPU (steal time).
        Runnable = 1,
        /// Blocked (`sched_block`, `sched_poll`) or paused.
        Blocked = 2,
        /// Offline (never brought up, or `vcpu_down`).
        Offline = 3,
    }
}

crate::abi_struct! {
    /// A vCPU's run-state accounting, kept current by the hypervisor in the
    /// area `vcpu_register_runstate` names.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct RunstateInfo(size = 48) {
        /// The current `RunstateState`.
        @0 state: u32,
        /// Odd while the hypervisor updates the record.
        @4 version: u32,
        /// System time (ns) at which `state` was entered.
        @8 state_entry_time: u64,
        /// Total ns spent in each state, indexed by `RunstateState`.
        @16 time: [u64; 4],
    }
}
