//! Error codes. A failed hypercall returns the negated code in `rax`.
//!
//! The values are Linux's errno numbers so a Linux or FreeBSD port can pass
//! them through unchanged.

/// Why a hypercall failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Error {
    /// The caller lacks the privilege the call needs.
    NotPermitted = 1,
    /// The named object (port, grant, domain, ...) does not exist.
    NotFound = 2,
    /// A buffer or list is larger than the call accepts.
    TooBig = 7,
    /// The call would block or a resource is temporarily exhausted.
    Again = 11,
    /// The hypervisor is out of memory.
    NoMemory = 12,
    /// A guest pointer is not mapped, not canonical, or not accessible.
    BadAddress = 14,
    /// The object is in use.
    Busy = 16,
    /// The object exists already.
    Exists = 17,
    /// An argument is out of range or malformed.
    Invalid = 22,
    /// A number is outside its range.
    Range = 34,
    /// No hypercall has this number.
    NoSuchCall = 38,
}

impl Error {
    /// Every defined error, for tables and exhaustive tests.
    pub const ALL: [Error; 11] = [
        Error::NotPermitted,
        Error::NotFound,
        Error::TooBig,
        Error::Again,
        Error::NoMemory,
        Error::BadAddress,
        Error::Busy,
        Error::Exists,
        Error::Invalid,
        Error::Range,
        Error::NoSuchCall,
    ];

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
        Err(Error::ALL.iter().copied().find(|e| e.code() == code))
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
        }
        assert_eq!(Error::from_return(5), Ok(5));
        assert_eq!(Error::from_return((-1000i64) as u64), Err(None));
        assert_eq!(Error::from_return(i64::MIN as u64), Err(None));
    }
}
