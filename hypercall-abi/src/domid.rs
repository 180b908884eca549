//! Domain ids. Real domains are numbered from 0 (the privileged domain) to
//! `DOMID_MAX`; the values above name something else.

crate::abi_consts! {
    /// Reserved domain ids.
    pub mod domid: u32, c_prefix = "DOMID" {
        /// The highest id a real domain has.
        MAX = 0x7fef;
        /// The caller's own domain.
        SELF = 0x7ff0;
        /// The hypervisor, as the backend of a device slot or the grantee
        /// of a grant it uses to serve one.
        HYPERVISOR = 0x7ff1;
        /// No domain.
        INVALID = 0x7fff;
    }
}
