//! Grant tables: how one domain lets another map or copy one of its frames.
//!
//! A domain registers frames it owns as its grant table
//! (`grant_set_table`); the table is an array of [`GrantEntry`] the domain
//! writes directly, 256 per frame. A grant reference is an index into it.

crate::abi_consts! {
    /// Grant-table limits.
    pub mod grant_consts: u64, c_prefix = "GRANT" {
        /// Entries per grant-table frame.
        ENTRIES_PER_FRAME = 256;
        /// The most frames a grant table has.
        TABLE_FRAMES_MAX = 32;
        /// The most operations one `grant_map`, `grant_unmap` or `grant_copy` takes.
        OPS_MAX = 128;
        /// Reference 0 is never valid; frontends start at 1.
        REF_INVALID = 0;
    }
}

crate::abi_consts! {
    /// `GrantEntry::flags`. Bits 0–7 are written by the granting domain,
    /// bits 8–15 by the hypervisor.
    pub mod grant_flags: u16, c_prefix = "GTF" {
        /// The grant is active: `grantee` may use `frame`.
        PERMIT = 1 << 0;
        /// The grantee may only read.
        READONLY = 1 << 1;
        /// Set by the hypervisor while the grantee has the frame mapped or is
        /// copying from it.
        IN_USE_READ = 1 << 8;
        /// Set by the hypervisor while the grantee has the frame mapped
        /// writable or is copying to it.
        IN_USE_WRITE = 1 << 9;
        /// The bits the granting domain writes.
        GUEST_MASK = 0x00ff;
        /// The bits the hypervisor writes.
        HYPERVISOR_MASK = 0xff00;
    }
}

crate::abi_struct! {
    /// One grant-table entry. The granting domain fills `grantee` and
    /// `frame`, then sets `PERMIT` with a release store; it revokes by
    /// compare-and-swap of `flags` from a value without `IN_USE_*` bits to 0,
    /// and retries later if the swap fails.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantEntry(size = 16) {
        /// `grant_flags` bits.
        @0 flags: u16,
        /// Must be zero.
        @2 reserved0: u16,
        /// The domain allowed to use the grant.
        @4 grantee: u32,
        /// The granted machine frame, owned by the granting domain.
        @8 frame: u64,
    }
}

crate::abi_consts! {
    /// `GrantMapOp::flags` and `GrantCopyOp::flags`.
    pub mod grant_op_flags: u32, c_prefix = "GNT" {
        /// Map read-only (`grant_map`).
        MAP_READONLY = 1 << 0;
        /// The copy source is a grant reference, else a frame of the caller.
        COPY_SRC_GREF = 1 << 1;
        /// The copy destination is a grant reference, else a frame of the caller.
        COPY_DST_GREF = 1 << 2;
    }
}

crate::abi_struct! {
    /// One operation of `grant_map`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantMapOp(size = 40) {
        /// Page-aligned virtual address in the caller's kernel address space
        /// whose (existing, non-present) L1 entry receives the mapping.
        @0 host_addr: u64,
        /// `grant_op_flags` bits (`MAP_READONLY`).
        @8 flags: u32,
        /// The grant reference in the granting domain's table.
        @12 gref: u32,
        /// The granting domain.
        @16 domid: u32,
        /// Out: 0 or a negated `Error`.
        @20 status: i32,
        /// Out: the handle `grant_unmap` takes.
        @24 handle: u32,
        /// Must be zero.
        @28 reserved0: u32,
        /// Out: the machine frame mapped (for DMA by a driver domain).
        @32 frame: u64,
    }
}

crate::abi_struct! {
    /// One operation of `grant_unmap`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantUnmapOp(size = 16) {
        /// The `host_addr` the mapping was made at.
        @0 host_addr: u64,
        /// The handle `grant_map` returned.
        @8 handle: u32,
        /// Out: 0 or a negated `Error`.
        @12 status: i32,
    }
}

crate::abi_struct! {
    /// One side of a `grant_copy`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantCopySeg(size = 16) {
        /// A grant reference of `domid`'s table, or a machine frame the
        /// caller owns, per the op's flags.
        @0 gref_or_frame: u64,
        /// The granting domain (grant side), `DOMID_SELF` otherwise.
        @8 domid: u32,
        /// Byte offset in the frame.
        @12 offset: u16,
        /// Must be zero.
        @14 reserved0: u16,
    }
}

crate::abi_struct! {
    /// One operation of `grant_copy`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantCopyOp(size = 40) {
        /// Source.
        @0 src: GrantCopySeg,
        /// Destination.
        @16 dst: GrantCopySeg,
        /// Bytes to copy; neither side may cross its frame's end.
        @32 len: u16,
        /// `grant_op_flags` bits (`COPY_SRC_GREF`, `COPY_DST_GREF`).
        @34 flags: u16,
        /// Out: 0 or a negated `Error`.
        @36 status: i32,
    }
}

crate::abi_struct! {
    /// What `grant_query` writes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantTableInfo(size = 16) {
        /// Frames in the caller's registered table (0: none).
        @0 nr_frames: u32,
        /// The most frames a table may have (`TABLE_FRAMES_MAX`).
        @4 max_frames: u32,
        /// Grant mappings other domains hold on the caller's grants now.
        @8 nr_active: u32,
        /// Must be zero.
        @12 reserved0: u32,
    }
}

/// The table frame and the entry in it that hold grant reference `gref`.
pub const fn gref_location(gref: u32) -> (u32, u32) {
    let per = crate::layout::u32_of(grant_consts::ENTRIES_PER_FRAME);
    (gref / per, gref % per)
}

/// Whether the grantor may revoke an entry whose flags read `flags`: no
/// mapping or copy is in progress.
pub const fn revocable(flags: u16) -> bool {
    flags & (grant_flags::IN_USE_READ | grant_flags::IN_USE_WRITE) == 0
}

/// Whether an entry with `flags` lets `caller` (the grantee in `grantee`)
/// map or copy, writing if `write`.
pub const fn permits(flags: u16, grantee: u32, caller: u32, write: bool) -> bool {
    flags & grant_flags::PERMIT != 0
        && grantee == caller
        && !(write && flags & grant_flags::READONLY != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fill_a_frame() {
        assert_eq!(core::mem::size_of::<GrantEntry>() as u64 * grant_consts::ENTRIES_PER_FRAME, 4096);
        assert_eq!(gref_location(0), (0, 0));
        assert_eq!(gref_location(255), (0, 255));
        assert_eq!(gref_location(256), (1, 0));
    }

    #[test]
    fn permission_rules() {
        let p = grant_flags::PERMIT;
        let ro = grant_flags::PERMIT | grant_flags::READONLY;
        assert!(permits(p, 3, 3, true));
        assert!(permits(ro, 3, 3, false));
        assert!(!permits(ro, 3, 3, true), "read-only grants refuse writers");
        assert!(!permits(p, 3, 4, false), "only the named grantee");
        assert!(!permits(0, 3, 3, false), "revoked grants permit nothing");
        assert!(revocable(p));
        assert!(!revocable(p | grant_flags::IN_USE_READ));
        assert_eq!(grant_flags::GUEST_MASK & grant_flags::HYPERVISOR_MASK, 0);
        assert_eq!((p | grant_flags::READONLY) & grant_flags::HYPERVISOR_MASK, 0);
        assert_eq!((grant_flags::IN_USE_READ | grant_flags::IN_USE_WRITE) & grant_flags::GUEST_MASK, 0);
    }
}
