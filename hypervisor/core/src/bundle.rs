//! The boot bundle: a cpio archive (`newc` format, as Linux's initramfs)
//! holding `domains.conf` and the files it names.

use alloc::vec::Vec;
use core::fmt;

/// Name of the configuration member.
pub const CONFIG_NAME: &str = "domains.conf";

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

#[derive(Debug, PartialEq, Eq)]
pub enum BundleError {
    /// A header is cut short or its magic is wrong (at this byte offset).
    BadHeader(usize),
    /// A header field is not hexadecimal.
    BadField(usize),
    /// A name or body runs past the end of the archive.
    Truncated(usize),
    /// A name is not UTF-8 or not NUL-terminated.
    BadName(usize),
    /// The archive has no trailer.
    NoTrailer,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::BadHeader(o) => write!(f, "bad cpio header at byte {o}"),
            BundleError::BadField(o) => write!(f, "bad cpio header field at byte {o}"),
            BundleError::Truncated(o) => write!(f, "cpio member at byte {o} runs past the end"),
            BundleError::BadName(o) => write!(f, "bad cpio member name at byte {o}"),
            BundleError::NoTrailer => write!(f, "cpio archive has no trailer"),
        }
    }
}

/// One member of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// A parsed archive: its members, in order.
pub struct Bundle<'a> {
    members: Vec<Member<'a>>,
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

fn hex_field(bytes: &[u8], at: usize) -> Result<usize, BundleError> {
    let s = core::str::from_utf8(&bytes[at..at + 8]).map_err(|_| BundleError::BadField(at))?;
    usize::from_str_radix(s, 16).map_err(|_| BundleError::BadField(at))
}

impl<'a> Bundle<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        let mut members = Vec::new();
        let mut off: usize = 0;
        loop {
            if bytes.len() < off.saturating_add(HEADER_LEN) || &bytes[off..off + 6] != MAGIC {
                return Err(if off >= bytes.len() { BundleError::NoTrailer } else { BundleError::BadHeader(off) });
            }
            let file_size = hex_field(bytes, off + 6 + 6 * 8)?;
            let name_size = hex_field(bytes, off + 6 + 11 * 8)?;
            let name_start = off + HEADER_LEN;
            let name_end = name_start.checked_add(name_size).ok_or(BundleError::Truncated(off))?;
            let data_start = align4(name_end);
            let data_end = data_start.checked_add(file_size).ok_or(BundleError::Truncated(off))?;
            if name_size == 0 || data_end > bytes.len() || name_end > bytes.len() {
                return Err(BundleError::Truncated(off));
            }
            let raw_name = &bytes[name_start..name_end];
            let name = raw_name
                .split_last()
                .filter(|(nul, _)| **nul == 0)
                .and_then(|(_, n)| core::str::from_utf8(n).ok())
                .ok_or(BundleError::BadName(off))?;
            if name == TRAILER {
                return Ok(Bundle { members });
            }
            members.push(Member { name: name.trim_start_matches("./"), data: &bytes[data_start..data_end] });
            off = align4(data_end);
        }
    }

    pub fn members(&self) -> &[Member<'a>] {
        &self.members
    }

    /// The member called `name`.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.members.iter().find(|m| m.name == name).map(|m| m.data)
    }
}

/// Writes an archive of `members` (regular files, mode 0644).
pub fn write_newc(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut emit = |ino: usize, name: &str, data: &[u8], mode: usize| {
        let fields = [ino, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0];
        out.extend_from_slice(MAGIC);
        for f in fields {
            out.extend_from_slice(alloc::format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(data);
        out.resize(align4(out.len()), 0);
    };
    for (i, m) in members.iter().enumerate() {
        emit(i + 1, m.name, m.data, 0o100644);
    }
    emit(0, TRAILER, &[], 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_it_writes() {
        let members = [
            Member { name: "domains.conf", data: b"[domain]\n" },
            Member { name: "a.elf", data: &[1, 2, 3] },
            Member { name: "empty", data: &[] },
        ];
        let bytes = write_newc(&members);
        let b = Bundle::parse(&bytes).unwrap();
        assert_eq!(b.members(), &members);
        assert_eq!(b.get("a.elf"), Some(&[1u8, 2, 3][..]));
        assert_eq!(b.get("missing"), None);
    }

    #[test]
    fn refuses_broken_archives() {
        let bytes = write_newc(&[Member { name: "x", data: b"hello" }]);
        assert_eq!(Bundle::parse(&bytes[..115]).err(), Some(BundleError::Truncated(0)));
        assert!(Bundle::parse(b"garbage").is_err());
        assert_eq!(Bundle::parse(&[]).err(), Some(BundleError::NoTrailer));
        let mut bad = bytes.clone();
        bad[6 + 6 * 8] = b'z';
        assert_eq!(Bundle::parse(&bad).err(), Some(BundleError::BadField(54)));
    }

    proptest! {
        #[test]
        fn never_panics_on_corruption(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let mut bytes = write_newc(&[
                Member { name: "domains.conf", data: b"[domain]\nname = a\n" },
                Member { name: "k", data: &[7; 300] },
            ]);
            for (at, v) in flips {
                let i = at % bytes.len();
                bytes[i] = v;
            }
            let cut = cut % (bytes.len() + 1);
            let _ = Bundle::parse(&bytes[..cut]);
        }
    }
}
