//! The ABI as data: layout descriptions of every `repr(C)` structure, every
//! numbered enumeration and every group of constants.
//!
//! Three declarative macros define the ABI items and, next to each, a
//! description the C-header generator (`hypercall-abi/cgen`) and the
//! specification tables are produced from:
//!
//! * [`abi_struct!`](crate::abi_struct) defines a `repr(C)` structure whose
//!   size and every field offset are written in the source, asserted at
//!   compile time, and recorded. The field sizes must add up to the size, so
//!   a structure cannot contain implicit padding: every hole is a named
//!   `reserved*` field that callers set to zero and the hypervisor checks.
//! * [`abi_enum!`](crate::abi_enum) defines an enumeration with explicit
//!   values, its `ALL` array and its table.
//! * [`abi_consts!`](crate::abi_consts) defines a module of related
//!   constants (flag bits, limits) and its table.
//!
//! C names derive mechanically from the Rust ones: `StartInfo` becomes
//! `struct veneer_start_info`, `Hypercall::ConsoleWrite` becomes
//! `VENEER_HC_CONSOLE_WRITE`, `features::SUPERPAGE_2M` becomes
//! `VENEER_FEATURE_SUPERPAGE_2M`.

/// `v` as a `usize`, for ABI constants recorded as `u64`; refuses (at
/// compile time, where it is used in constants) a value that does not fit.
#[allow(clippy::cast_possible_truncation)] // checked by the assert
pub const fn usize_of(v: u64) -> usize {
    assert!(v <= usize::MAX as u64);
    v as usize
}

/// `v` as a `u32`, for ABI constants recorded as `u64`; refuses a value
/// that does not fit.
#[allow(clippy::cast_possible_truncation)] // checked by the assert
pub const fn u32_of(v: u64) -> u32 {
    assert!(v <= u32::MAX as u64);
    v as u32
}

/// How a Rust field type is spelled in C: an element type and, for arrays,
/// a length (`0` for a scalar). Nested arrays are not part of the ABI.
pub trait CRepr {
    /// The C element type, e.g. `uint32_t` or `struct veneer_ring_header`.
    const C_ELEM: &'static str;
    /// The array length, or `0` for a scalar.
    const C_LEN: usize;
}

macro_rules! prim {
    ($($t:ty => $c:literal),* $(,)?) => {
        $(impl CRepr for $t {
            const C_ELEM: &'static str = $c;
            const C_LEN: usize = 0;
        })*
    };
}
prim! {
    u8 => "uint8_t", u16 => "uint16_t", u32 => "uint32_t", u64 => "uint64_t",
    i8 => "int8_t", i16 => "int16_t", i32 => "int32_t", i64 => "int64_t",
}

impl<T: CRepr, const N: usize> CRepr for [T; N] {
    const C_ELEM: &'static str = T::C_ELEM;
    const C_LEN: usize = {
        assert!(T::C_LEN == 0, "nested arrays are not part of the ABI");
        assert!(N > 0, "zero-length arrays are not part of the ABI");
        N
    };
}

/// The little-endian byte form of an ABI type, as it lies in memory shared
/// with another domain: how a ring slot is copied in and out without
/// `unsafe` and without trusting anything about the bytes.
///
/// Every [`abi_struct!`](crate::abi_struct) structure implements it, field
/// by field at the recorded offsets, so `decode(encode(x)) == x` and a
/// decoded value is just data: a hostile writer can put any bit pattern in
/// a field, never an invalid value of a Rust type (enumerations travel as
/// their integer types and are checked with `from_value`).
pub trait Wire: Sized {
    /// Bytes of the encoding: the `size_of` the type.
    const WIRE_SIZE: usize;
    /// Writes the encoding to `out[..WIRE_SIZE]`; panics if `out` is shorter.
    fn encode(&self, out: &mut [u8]);
    /// Reads a value from `bytes[..WIRE_SIZE]`; panics if `bytes` is shorter.
    fn decode(bytes: &[u8]) -> Self;
}

macro_rules! wire_prim {
    ($($t:ty),* $(,)?) => {
        $(impl Wire for $t {
            const WIRE_SIZE: usize = ::core::mem::size_of::<$t>();
            fn encode(&self, out: &mut [u8]) {
                out[..Self::WIRE_SIZE].copy_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Self {
                let mut b = [0u8; ::core::mem::size_of::<$t>()];
                b.copy_from_slice(&bytes[..Self::WIRE_SIZE]);
                <$t>::from_le_bytes(b)
            }
        })*
    };
}
wire_prim!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: Wire, const N: usize> Wire for [T; N] {
    const WIRE_SIZE: usize = T::WIRE_SIZE * N;
    fn encode(&self, out: &mut [u8]) {
        for (i, v) in self.iter().enumerate() {
            v.encode(&mut out[i * T::WIRE_SIZE..]);
        }
    }
    fn decode(bytes: &[u8]) -> Self {
        core::array::from_fn(|i| T::decode(&bytes[i * T::WIRE_SIZE..]))
    }
}

/// One field of an ABI structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The Rust (and C) field name.
    pub name: &'static str,
    /// Byte offset from the start of the structure.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// C element type.
    pub c_elem: &'static str,
    /// Array length, `0` for a scalar.
    pub c_len: usize,
    /// The field's documentation, one line per doc line.
    pub doc: &'static str,
}

impl Field {
    /// Whether the field is reserved: named `reserved…`, must be zero.
    pub fn is_reserved(&self) -> bool {
        self.name.starts_with("reserved")
    }
}

/// The recorded layout of an ABI structure.
#[derive(Clone, Copy, Debug)]
pub struct StructLayout {
    /// The Rust type name (`StartInfo`).
    pub name: &'static str,
    /// `size_of` the structure.
    pub size: usize,
    /// `align_of` the structure.
    pub align: usize,
    /// The structure's documentation.
    pub doc: &'static str,
    /// Every field in offset order.
    pub fields: &'static [Field],
}

/// Implemented by every structure defined with [`abi_struct!`](crate::abi_struct).
pub trait AbiStruct: Sized + Copy {
    /// The structure's recorded layout.
    const LAYOUT: StructLayout;
}

/// One value of an ABI enumeration or one constant of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// The Rust name (`ConsoleWrite`, `SUPERPAGE_2M`).
    pub name: &'static str,
    /// The value, as the two's-complement bit pattern of its type.
    pub value: u64,
    /// The documentation.
    pub doc: &'static str,
}

/// The recorded values of an enumeration or constant group.
#[derive(Clone, Copy, Debug)]
pub struct ValueTable {
    /// The Rust name of the enum or module (`Hypercall`, `features`).
    pub name: &'static str,
    /// The C prefix after `VENEER_` (`HC`, `FEATURE`).
    pub c_prefix: &'static str,
    /// The Rust type of the values (`u64`, `i64`, `u32`, ...).
    pub rust_type: &'static str,
    /// Whether this is an enumeration (else a group of constants).
    pub is_enum: bool,
    /// The documentation.
    pub doc: &'static str,
    /// Every value.
    pub values: &'static [Value],
}

/// C code a header carries beside its generated items: the C form of a
/// library the crate implements in Rust (the ring library), kept next to
/// the Rust in the same source file.
#[derive(Clone, Copy, Debug)]
pub struct CCode {
    /// What it is, for the header's comment.
    pub name: &'static str,
    /// Its documentation.
    pub doc: &'static str,
    /// The C text.
    pub text: &'static str,
}

/// An item of the ABI catalog.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    /// A `repr(C)` structure.
    Struct(&'static StructLayout),
    /// An enumeration or a constant group.
    Values(&'static ValueTable),
    /// C code (functions over the items above).
    Code(&'static CCode),
}

/// A part of the ABI; each becomes one C header `veneer/<name>.h`.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    /// The Rust module name and header base name.
    pub name: &'static str,
    /// What the module covers, one line.
    pub doc: &'static str,
    /// Its items, in an order where every structure follows the structures
    /// its fields use.
    pub items: &'static [Item],
}

/// Defines an ABI `repr(C)` structure with its size and field offsets, all
/// checked at compile time, and records its layout.
///
/// ```
/// hypercall_abi::abi_struct! {
///     /// A pair.
///     #[derive(Clone, Copy, Debug)]
///     pub struct Pair(size = 16) {
///         /// The first.
///         @0 first: u32,
///         /// Must be zero.
///         @4 reserved0: u32,
///         /// The second.
///         @8 second: u64,
///     }
/// }
/// assert_eq!(<Pair as hypercall_abi::layout::AbiStruct>::LAYOUT.fields[2].offset, 8);
/// ```
#[macro_export]
macro_rules! abi_struct {
    (
        $(#[doc = $doc:expr])*
        #[derive($($derive:path),* $(,)?)]
        pub struct $name:ident(size = $size:expr) {
            $(
                $(#[doc = $fdoc:expr])*
                @$off:literal $field:ident : $fty:ty
            ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive($($derive),*)]
        #[repr(C)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                pub $field: $fty,
            )+
        }

        const _: () = {
            assert!(::core::mem::size_of::<$name>() == $size, "size mismatch");
            $(assert!(
                ::core::mem::offset_of!($name, $field) == $off,
                concat!("offset mismatch: ", stringify!($name), "::", stringify!($field))
            );)+
            // No implicit padding: the fields fill the structure exactly.
            assert!(
                0 $(+ ::core::mem::size_of::<$fty>())+ == $size,
                concat!("implicit padding in ", stringify!($name))
            );
        };

        impl $crate::layout::CRepr for $name {
            const C_ELEM: &'static str = concat!("struct ", stringify!($name));
            const C_LEN: usize = 0;
        }

        impl $crate::layout::Wire for $name {
            const WIRE_SIZE: usize = $size;
            fn encode(&self, out: &mut [u8]) {
                let out = &mut out[..$size];
                $(<$fty as $crate::layout::Wire>::encode(&self.$field, &mut out[$off..]);)+
            }
            fn decode(bytes: &[u8]) -> Self {
                let bytes = &bytes[..$size];
                $name { $($field: <$fty as $crate::layout::Wire>::decode(&bytes[$off..]),)+ }
            }
        }

        impl $crate::layout::AbiStruct for $name {
            const LAYOUT: $crate::layout::StructLayout = $crate::layout::StructLayout {
                name: stringify!($name),
                size: $size,
                align: ::core::mem::align_of::<$name>(),
                doc: concat!($($doc, "\n",)*),
                fields: &[$(
                    $crate::layout::Field {
                        name: stringify!($field),
                        offset: $off,
                        size: ::core::mem::size_of::<$fty>(),
                        c_elem: <$fty as $crate::layout::CRepr>::C_ELEM,
                        c_len: <$fty as $crate::layout::CRepr>::C_LEN,
                        doc: concat!($($fdoc, "\n",)*),
                    },
                )+],
            };
        }
    };
}

/// Defines an ABI enumeration with explicit values, its `ALL` array, its
/// `TABLE` and a `from_value` decoder.
#[macro_export]
macro_rules! abi_enum {
    (
        $(#[doc = $doc:expr])*
        #[derive($($derive:path),* $(,)?)]
        pub enum $name:ident: $repr:ident, c_prefix = $prefix:literal {
            $(
                $(#[doc = $vdoc:expr])*
                $variant:ident = $value:expr
            ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive($($derive),*)]
        #[repr($repr)]
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                $variant = $value,
            )+
        }

        impl $name {
            /// Every value, in definition order, for tables and exhaustive tests.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            /// The recorded table the C header and the spec are generated from.
            pub const TABLE: $crate::layout::ValueTable = $crate::layout::ValueTable {
                name: stringify!($name),
                c_prefix: $prefix,
                rust_type: stringify!($repr),
                is_enum: true,
                doc: concat!($($doc, "\n",)*),
                values: &[$(
                    $crate::layout::Value {
                        name: stringify!($variant),
                        value: $value as $repr as u64,
                        doc: concat!($($vdoc, "\n",)*),
                    },
                )+],
            };

            /// The variant with this value, if there is one.
            pub const fn from_value(value: $repr) -> Option<$name> {
                $(if value == $value { return Some($name::$variant); })+
                None
            }
        }
    };
}

/// Defines a module of related ABI constants and records their table.
#[macro_export]
macro_rules! abi_consts {
    (
        $(#[doc = $doc:expr])*
        pub mod $name:ident: $ty:ident, c_prefix = $prefix:literal {
            $(
                $(#[doc = $vdoc:expr])*
                $cname:ident = $value:expr;
            )+
        }
    ) => {
        $(#[doc = $doc])*
        pub mod $name {
            $(
                $(#[doc = $vdoc])*
                pub const $cname: $ty = $value;
            )+

            /// The recorded table the C header and the spec are generated from.
            pub const TABLE: $crate::layout::ValueTable = $crate::layout::ValueTable {
                name: stringify!($name),
                c_prefix: $prefix,
                rust_type: stringify!($ty),
                is_enum: false,
                doc: concat!($($doc, "\n",)*),
                values: &[$(
                    $crate::layout::Value {
                        name: stringify!($cname),
                        value: $cname as u64,
                        doc: concat!($($vdoc, "\n",)*),
                    },
                )+],
            };
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    crate::abi_struct! {
        /// A test structure with an array and a nested structure.
        #[derive(Clone, Copy)]
        pub struct Outer(size = 32) {
            /// Tag.
            @0 tag: u16,
            /// Must be zero.
            @2 reserved0: [u8; 6],
            /// Nested.
            @8 inner: crate::hypercall::AbiInfo,
            /// Last.
            @24 last: i64,
        }
    }

    #[test]
    fn wire_encoding_is_the_memory_layout() {
        let o = Outer {
            tag: 0x1234,
            reserved0: [1, 2, 3, 4, 5, 6],
            inner: crate::hypercall::AbiInfo { major: 7, minor: 8, reserved0: 9, features: 0x0102_0304_0506_0708 },
            last: -2,
        };
        let mut b = [0u8; 32];
        o.encode(&mut b);
        assert_eq!(&b[..8], &[0x34, 0x12, 1, 2, 3, 4, 5, 6]);
        assert_eq!(&b[8..16], &[7, 0, 8, 0, 9, 0, 0, 0]);
        assert_eq!(&b[16..24], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[24..], &(-2i64).to_le_bytes());
        let back = Outer::decode(&b);
        assert_eq!((back.tag, back.reserved0, back.inner, back.last), (o.tag, o.reserved0, o.inner, o.last));
        // Every structure of the catalog round-trips, and its encoding is
        // its size.
        let mut big = [0u8; 4096];
        for (i, x) in big.iter_mut().enumerate() {
            *x = (i * 7 + 3).to_le_bytes()[0];
        }
        macro_rules! round_trip {
            ($($t:ty),*) => {$({
                assert_eq!(<$t as Wire>::WIRE_SIZE, core::mem::size_of::<$t>());
                let v = <$t>::decode(&big);
                let mut out = [0u8; 4096];
                v.encode(&mut out);
                assert_eq!(&out[..core::mem::size_of::<$t>()], &big[..core::mem::size_of::<$t>()], stringify!($t));
            })*};
        }
        round_trip!(
            crate::blk::BlkRequest, crate::blk::BlkResponse, crate::net::NetTxRequest, crate::net::NetRxResponse,
            crate::console::ConsoleSlot, crate::grant::GrantEntry, crate::grant::GrantCopyOp,
            crate::device::DeviceInfo, crate::shared_info::SharedInfo, crate::start_info::StartInfo
        );
    }

    #[test]
    fn field_table_records_c_types_and_offsets() {
        let l = Outer::LAYOUT;
        assert_eq!(l.name, "Outer");
        assert_eq!(l.size, 32);
        assert_eq!(l.align, 8);
        let f: Vec<_> = l.fields.iter().map(|f| (f.name, f.offset, f.size, f.c_elem, f.c_len)).collect();
        assert_eq!(
            f,
            [
                ("tag", 0, 2, "uint16_t", 0),
                ("reserved0", 2, 6, "uint8_t", 6),
                ("inner", 8, 16, "struct AbiInfo", 0),
                ("last", 24, 8, "int64_t", 0),
            ]
        );
        assert!(l.fields[1].is_reserved());
        assert!(!l.fields[0].is_reserved());
        assert_eq!(l.fields[0].doc, " Tag.\n");
    }
}
