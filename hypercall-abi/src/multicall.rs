//! Multicall: several hypercalls in one entry to the hypervisor.

crate::abi_consts! {
    /// Multicall limits.
    pub mod multicall_consts: u64, c_prefix = "MULTICALL" {
        /// The most entries one `multicall` takes.
        MAX = 64;
    }
}

crate::abi_struct! {
    /// One call of a `multicall`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct MulticallEntry(size = 64) {
        /// The hypercall number.
        @0 op: u64,
        /// Its arguments, as they would be in `rdi rsi rdx r10 r8 r9`.
        @8 args: [u64; 6],
        /// Out: what the call would have returned in `rax`.
        @56 result: u64,
    }
}
