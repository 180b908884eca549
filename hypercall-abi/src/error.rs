//! Error codes. A failed hypercall returns the negated code in `rax`.
//!
//! The values are Linux's errno numbers so a Linux or FreeBSD port can pass
//! them through unchanged. Every call's section in `SPEC.md` lists the
//! errors it returns and when; a call never returns an error not listed
//! there, except `BadAddress` for any argument that is a guest pointer.

crate::abi_enum! {
    /// Why a hypercall failed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Error: i64, c_prefix = "E" {
        /// The caller lacks the privilege or the permission the call needs.
        NotPermitted = 1,
        /// The named object (port, grant, domain, vCPU, device, ...) does not exist.
        NotFound = 2,
        /// A buffer or list is larger than the call accepts.
        TooBig = 7,
        /// The image given to the domain builder is not a loadable Veneer
        /// guest: bad ELF, no guest note, an ABI version or required feature
        /// this hypervisor does not offer.
        BadImage = 8,
        /// The call would block or a resource is temporarily exhausted; the
        /// same call may succeed later.
        Again = 11,
        /// The hypervisor is out of memory.
        NoMemory = 12,
        /// A guest pointer is not mapped, not canonical, not accessible, or
        /// points into the hypervisor's reserved range.
        BadAddress = 14,
        /// The object is in use.
        Busy = 16,
        /// The object exists already.
        Exists = 17,
        /// An argument is out of range or malformed, or a reserved field is
        /// not zero.
        Invalid = 22,
        /// A fixed-size table (ports, grant frames, device slots) is full.
        NoSpace = 28,
        /// A number is outside its range.
        Range = 34,
        /// No hypercall has this number, or the feature it belongs to is not
        /// offered.
        NoSuchCall = 38,
    }
}

impl Error {
    /// The errno value (positive).
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The value placed in `rax`: the negated code.
    pub const fn to_return(self) -> u64 {
        (-(self as i64)) as u64
    }

    /// Decodes `rax` after a call: `Ok(value)` or the error it names.
    /// A negative value that names no defined error maps to `None` inside `Err`.
    pub fn from_return(rax: u64) -> Result<u64, Option<Error>> {
        let signed = rax as i64;
        if signed >= 0 {
            return Ok(rax);
        }
        let code = signed.checked_neg().ok_or(None)?;
        Err(Error::from_value(code))
    }
}

/// The result of a hypercall as the hypervisor computes it.
pub type HcResult = Result<u64, Error>;

/// Encodes a result into `rax`.
pub fn encode(result: HcResult) -> u64 {
    match result {
        Ok(v) => v,
        Err(e) => e.to_return(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_error() {
        for e in Error::ALL {
            assert_eq!(Error::from_return(e.to_return()), Err(Some(e)));
            assert_eq!(Error::from_return(encode(Err(e))), Err(Some(e)));
        }
        assert_eq!(Error::from_return(5), Ok(5));
        assert_eq!(encode(Ok(5)), 5);
        assert_eq!(Error::from_return((-1000i64) as u64), Err(None));
        assert_eq!(Error::from_return(i64::MIN as u64), Err(None));
    }

    #[test]
    fn codes_are_unique_positive_and_below_4096() {
        // Results in [-4095, -1] are errors; anything else is a value. This
        // is the convention Linux uses for IS_ERR_VALUE, so a port can reuse it.
        for (i, a) in Error::ALL.iter().enumerate() {
            assert!(a.code() > 0 && a.code() < 4096);
            for b in &Error::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
            }
        }
    }

    #[test]
    fn table_matches_enum() {
        assert_eq!(Error::TABLE.values.len(), Error::ALL.len());
        for (v, e) in Error::TABLE.values.iter().zip(Error::ALL) {
            assert_eq!(v.value as i64, e.code());
        }
    }
}
