//! Domain control: what the privileged domain uses to create, build, run,
//! inspect and tear down other domains, and to lend them I/O resources.

crate::abi_consts! {
    /// `DomainCreate::flags`.
    pub mod domain_create_flags: u32, c_prefix = "DOMCREATEF" {
        /// The new domain may hold I/O permissions (a driver domain).
        DRIVER = 1 << 0;
    }
}

crate::abi_struct! {
    /// Argument of `domain_create`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DomainCreate(size = 32) {
        /// vCPUs, 1 .. `VCPU_MAX`.
        @0 max_vcpus: u32,
        /// `domain_create_flags` bits.
        @4 flags: u32,
        /// Frames to give the domain when it is built.
        @8 nr_pages: u64,
        /// The most frames it may ever own (≥ `nr_pages`).
        @16 max_pages: u64,
        /// Must be zero.
        @24 reserved0: u64,
    }
}

crate::abi_struct! {
    /// Argument of `domain_build`: the image and what the guest gets in its
    /// start-info page. All buffers are in the caller's address space and
    /// are copied before the call returns.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DomainBuild(size = 56) {
        /// Address of the ELF image.
        @0 image: u64,
        /// Its length in bytes.
        @8 image_len: u64,
        /// Address of the ramdisk, 0 for none.
        @16 ramdisk: u64,
        /// Its length.
        @24 ramdisk_len: u64,
        /// Address of the command line (no NUL needed).
        @32 cmdline: u64,
        /// Its length, below `CMDLINE_MAX`.
        @40 cmdline_len: u64,
        /// Must be zero.
        @48 reserved0: u64,
    }
}

crate::abi_consts! {
    /// `DomainInfo::flags`.
    pub mod domain_flags: u32, c_prefix = "DOMINFO" {
        /// Built: `domain_build` succeeded.
        BUILT = 1 << 0;
        /// Paused by `domain_pause` (or never unpaused).
        PAUSED = 1 << 1;
        /// Shut down: `shutdown_reason` and `shutdown_code` are valid.
        SHUTDOWN = 1 << 2;
        /// Being destroyed; its resources are still being released.
        DYING = 1 << 3;
        /// The privileged domain.
        PRIVILEGED = 1 << 4;
        /// A driver domain.
        DRIVER = 1 << 5;
    }
}

crate::abi_struct! {
    /// What `domain_query` writes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DomainInfo(size = 56) {
        /// The domain's id.
        @0 domid: u32,
        /// `domain_flags` bits.
        @4 flags: u32,
        /// The `ShutdownReason` (if `SHUTDOWN`).
        @8 shutdown_reason: u32,
        /// The code passed to `sched_shutdown` (if `SHUTDOWN`).
        @12 shutdown_code: u32,
        /// Frames owned now.
        @16 nr_pages: u64,
        /// The most frames it may own.
        @24 max_pages: u64,
        /// vCPUs it has.
        @32 nr_vcpus: u32,
        /// vCPUs online now.
        @36 nr_online_vcpus: u32,
        /// Total ns its vCPUs have run.
        @40 cpu_time: u64,
        /// Must be zero.
        @48 reserved0: u64,
    }
}

crate::abi_enum! {
    /// Second argument of `domain_io_permit`: which resource range.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum IoResource: u64, c_prefix = "IORES" {
        /// I/O ports `first .. first + count`.
        Ports = 0,
        /// Machine frames of device memory (MMIO) `first .. first + count`;
        /// RAM frames are refused.
        MmioFrames = 1,
        /// Interrupt lines (GSIs) `first .. first + count`.
        Irqs = 2,
        /// PCI functions (`sbdf`) `first .. first + count`: their
        /// configuration space and MSI.
        PciFunctions = 3,
    }
}
