//! Generates the C headers guests compile against (`include/veneer/*.h`)
//! and the tables of `SPEC.md` from [`hypercall_abi::catalog::MODULES`].
//!
//! Everything here is a pure function of the catalog, so the checked-in
//! outputs can be compared byte for byte with a fresh generation.
//!
//! Names derive mechanically: a structure `StartInfo` is
//! `struct veneer_start_info`; a value `ConsoleWrite` of an enumeration
//! with C prefix `HC` is `VENEER_HC_CONSOLE_WRITE`; a constant
//! `SUPERPAGE_2M` of a group with prefix `FEATURE` is
//! `VENEER_FEATURE_SUPERPAGE_2M`.

use hypercall_abi::hypercall::Privilege;
use hypercall_abi::layout::{Item, Module, StructLayout, ValueTable};
use hypercall_abi::{catalog, Hypercall};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The command that regenerates everything.
pub const REGENERATE: &str = "cargo run -p veneer-abi-cgen";

/// The `hypercall-abi` directory (where `SPEC.md` and `include/` live).
pub fn abi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `StartInfo` → `start_info`; `PtUpdatePreserveAd` → `pt_update_preserve_ad`.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The C tag of a structure: `struct veneer_<snake>`.
pub fn c_struct(rust_name: &str) -> String {
    format!("struct veneer_{}", snake(rust_name))
}

/// The C name of a value of a table.
pub fn c_value(table: &ValueTable, value_name: &str) -> String {
    let name = if table.is_enum { snake(value_name).to_ascii_uppercase() } else { value_name.to_string() };
    format!("VENEER_{}_{}", table.c_prefix, name)
}

/// The C spelling of a field's element type.
fn c_elem(elem: &str) -> String {
    match elem.strip_prefix("struct ") {
        Some(rust) => c_struct(rust),
        None => elem.to_string(),
    }
}

/// A value as a C integer constant of the table's type.
pub fn c_literal(table: &ValueTable, value: u64) -> String {
    let signed = table.rust_type.starts_with('i');
    if signed {
        let v = value as i64;
        return if v < 0 { format!("(-{})", v.unsigned_abs()) } else { format!("{v}") };
    }
    let suffix = if table.rust_type == "u64" { "ULL" } else { "U" };
    if value < 0x100 {
        format!("{value}{suffix}")
    } else {
        format!("0x{value:x}{suffix}")
    }
}

/// The doc text of an item as lines without the leading space rustdoc keeps.
fn doc_lines(doc: &str) -> Vec<&str> {
    doc.lines().map(|l| l.strip_prefix(' ').unwrap_or(l)).collect()
}

/// The doc text as one Markdown table cell.
fn doc_cell(doc: &str) -> String {
    doc_lines(doc).join(" ").trim().replace('|', "\\|")
}

fn c_comment(out: &mut String, indent: &str, doc: &str) {
    let lines = doc_lines(doc);
    for l in &lines {
        assert!(!l.contains("*/") && !l.contains("/*"), "doc text would break a C comment: {l}");
    }
    match lines.as_slice() {
        [] => {}
        [one] => writeln!(out, "{indent}/* {one} */").unwrap(),
        many => {
            writeln!(out, "{indent}/*").unwrap();
            for l in many {
                if l.is_empty() {
                    writeln!(out, "{indent} *").unwrap();
                } else {
                    writeln!(out, "{indent} * {l}").unwrap();
                }
            }
            writeln!(out, "{indent} */").unwrap();
        }
    }
}

fn header_preamble(out: &mut String, file: &str, what: &str) {
    let v = hypercall_abi::version::AbiVersion::CURRENT;
    writeln!(out, "/* SPDX-License-Identifier: MIT OR Apache-2.0 */").unwrap();
    writeln!(out, "/*").unwrap();
    writeln!(out, " * veneer/{file}: Veneer hypercall ABI {v}, {what}.").unwrap();
    writeln!(out, " *").unwrap();
    writeln!(out, " * GENERATED from the hypercall-abi crate; do not edit. Regenerate with").unwrap();
    writeln!(out, " *     {REGENERATE}").unwrap();
    writeln!(out, " * The semantics are specified in hypercall-abi/SPEC.md.").unwrap();
    writeln!(out, " */").unwrap();
}

fn guard(name: &str) -> String {
    format!("VENEER_{}_H", name.to_ascii_uppercase())
}

/// `veneer/types.h`: integer types, `offsetof` and the static assertion
/// every other header uses, for Linux and FreeBSD kernels and hosted C/C++.
fn types_header() -> String {
    let mut o = String::new();
    header_preamble(&mut o, "types.h", "integer types and compile-time checks");
    o.push_str(
        r#"#ifndef VENEER_TYPES_H
#define VENEER_TYPES_H

#if defined(__linux__) && defined(__KERNEL__)
#include <linux/types.h>
#include <linux/stddef.h>
#elif defined(__FreeBSD__) && defined(_KERNEL)
#include <sys/types.h>
#include <sys/stddef.h>
#else
#include <stdint.h>
#include <stddef.h>
#endif

/* VENEER_STATIC_ASSERT(cond, msg): a compile-time check at file scope. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define VENEER_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define VENEER_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else
/* Before C11: a typedef of a negative-size array fails to compile. */
#define VENEER_SA_CAT_(a, b) a##b
#define VENEER_SA_CAT(a, b) VENEER_SA_CAT_(a, b)
#ifdef __COUNTER__
#define VENEER_SA_ID __COUNTER__
#else
#define VENEER_SA_ID __LINE__
#endif
#define VENEER_STATIC_ASSERT(cond, msg) \
    typedef char VENEER_SA_CAT(veneer_static_assert_, VENEER_SA_ID)[(cond) ? 1 : -1]
#endif

#endif /* VENEER_TYPES_H */
"#,
    );
    o
}

fn module_of_struct(rust_name: &str) -> Option<&'static str> {
    catalog::MODULES.iter().find_map(|m| {
        m.items
            .iter()
            .any(|i| matches!(i, Item::Struct(s) if s.name == rust_name))
            .then_some(m.name)
    })
}

fn emit_struct(o: &mut String, s: &StructLayout) {
    let tag = c_struct(s.name);
    c_comment(o, "", s.doc);
    writeln!(o, "{tag} {{").unwrap();
    for f in s.fields {
        c_comment(o, "    ", &format!(" [{:#x}] {}", f.offset, f.doc.trim_start()));
        let ty = c_elem(f.c_elem);
        if f.c_len > 0 {
            writeln!(o, "    {ty} {}[{}];", f.name, f.c_len).unwrap();
        } else {
            writeln!(o, "    {ty} {};", f.name).unwrap();
        }
    }
    writeln!(o, "}};").unwrap();
    writeln!(o, "VENEER_STATIC_ASSERT(sizeof({tag}) == {}, \"size of {tag}\");", s.size).unwrap();
    for f in s.fields {
        writeln!(
            o,
            "VENEER_STATIC_ASSERT(offsetof({tag}, {}) == {}, \"offset of {tag}.{}\");",
            f.name, f.offset, f.name
        )
        .unwrap();
    }
    o.push('\n');
}

fn emit_values(o: &mut String, t: &ValueTable) {
    let kind = if t.is_enum { "values" } else { "constants" };
    c_comment(o, "", &format!(" `{}` ({kind}): {}\n", t.name, doc_lines(t.doc).join("\n").trim_end()));
    let width = t.values.iter().map(|v| c_value(t, v.name).len()).max().unwrap_or(0);
    for v in t.values {
        c_comment(o, "", v.doc);
        writeln!(o, "#define {:width$} {}", c_value(t, v.name), c_literal(t, v.value)).unwrap();
    }
    o.push('\n');
}

/// The header of one module.
fn module_header(m: &Module) -> String {
    let file = format!("{}.h", m.name);
    let mut o = String::new();
    header_preamble(&mut o, &file, m.doc);
    let g = guard(m.name);
    writeln!(o, "#ifndef {g}\n#define {g}\n").unwrap();
    writeln!(o, "#include \"veneer/types.h\"").unwrap();
    let mut deps: Vec<&str> = Vec::new();
    for item in m.items {
        if let Item::Struct(s) = item {
            for f in s.fields {
                if let Some(rust) = f.c_elem.strip_prefix("struct ") {
                    let dep = module_of_struct(rust).unwrap_or_else(|| panic!("{rust} is not in the catalog"));
                    if dep != m.name && !deps.contains(&dep) {
                        deps.push(dep);
                    }
                }
            }
        }
    }
    for d in deps {
        writeln!(o, "#include \"veneer/{d}.h\"").unwrap();
    }
    o.push('\n');
    for item in m.items {
        match item {
            Item::Struct(s) => emit_struct(&mut o, s),
            Item::Values(t) => emit_values(&mut o, t),
            Item::Code(c) => {
                c_comment(&mut o, "", &format!(" {}: {}", c.name, c.doc));
                o.push_str(c.text);
                o.push('\n');
            }
        }
    }
    writeln!(o, "#endif /* {g} */").unwrap();
    o
}

/// `veneer/veneer.h`: includes every header.
fn umbrella_header() -> String {
    let mut o = String::new();
    header_preamble(&mut o, "veneer.h", "every header");
    o.push_str("#ifndef VENEER_VENEER_H\n#define VENEER_VENEER_H\n\n");
    for m in catalog::MODULES {
        writeln!(o, "#include \"veneer/{}.h\"", m.name).unwrap();
    }
    o.push_str("\n#endif /* VENEER_VENEER_H */\n");
    o
}

/// Every generated header: (file name under `include/veneer/`, contents).
pub fn headers() -> Vec<(String, String)> {
    let mut v = vec![("types.h".to_string(), types_header())];
    for m in catalog::MODULES {
        v.push((format!("{}.h", m.name), module_header(m)));
    }
    v.push(("veneer.h".to_string(), umbrella_header()));
    v
}

/// A C translation unit that includes every header and checks, against
/// the values the Rust crate has, every structure size, every field offset
/// and size, and every constant. It is written independently of the header
/// text, so a header that says something else fails to compile.
pub fn c_layout_check() -> String {
    let mut o = String::new();
    o.push_str("/* Generated by veneer-abi-cgen's tests: the Rust layout, checked in C. */\n");
    o.push_str("#include \"veneer/veneer.h\"\n\n");
    for m in catalog::MODULES {
        for item in m.items {
            match item {
                Item::Struct(s) => {
                    let tag = c_struct(s.name);
                    writeln!(o, "VENEER_STATIC_ASSERT(sizeof({tag}) == {}, \"rust size\");", s.size).unwrap();
                    for f in s.fields {
                        writeln!(o, "VENEER_STATIC_ASSERT(offsetof({tag}, {}) == {}, \"rust offset\");", f.name, f.offset).unwrap();
                        writeln!(
                            o,
                            "VENEER_STATIC_ASSERT(sizeof((({tag} *)0)->{}) == {}, \"rust field size\");",
                            f.name, f.size
                        )
                        .unwrap();
                    }
                }
                // Code is checked by compiling and running it (tests/ring_c.rs).
                Item::Code(_) => {}
                Item::Values(t) => {
                    for v in t.values {
                        let lit = if t.rust_type.starts_with('i') {
                            format!("(long long)({})", v.value as i64)
                        } else {
                            format!("{}ULL", v.value)
                        };
                        writeln!(
                            o,
                            "VENEER_STATIC_ASSERT((unsigned long long)({}) == (unsigned long long){lit}, \"rust value\");",
                            c_value(t, v.name)
                        )
                        .unwrap();
                    }
                }
            }
        }
    }
    o
}

fn privilege_cell(h: Hypercall) -> &'static str {
    match h.privilege() {
        Privilege::Any => "any",
        Privilege::ConsoleOwner => "console owner",
        Privilege::Privileged => "privileged",
        Privilege::IoPermission => "I/O permission",
    }
}

fn feature_cell(h: Hypercall) -> String {
    let f = h.feature();
    if f == 0 {
        return "core".into();
    }
    let t = &hypercall_abi::features::TABLE;
    t.values
        .iter()
        .find(|v| v.value == f)
        .map(|v| format!("`{}`", v.name))
        .unwrap_or_else(|| panic!("feature bit {f:#x} of {h:?} is not in the features table"))
}

/// The table of every hypercall, for `SPEC.md`.
fn hypercall_table() -> String {
    let mut o = String::new();
    o.push_str("| number | C name | args | who | feature | in multicall | summary |\n");
    o.push_str("|---|---|---|---|---|---|---|\n");
    let t = &Hypercall::TABLE;
    for h in Hypercall::ALL {
        let v = t.values.iter().find(|v| v.value == h.number()).expect("every call is in its table");
        writeln!(
            o,
            "| `{:#04x}` | `{}` | {} | {} | {} | {} | {} |",
            h.number(),
            c_value(t, v.name),
            h.arg_count(),
            privilege_cell(h),
            feature_cell(h),
            if h.allowed_in_multicall() { "yes" } else { "no" },
            doc_cell(v.doc)
        )
        .unwrap();
    }
    o
}

fn struct_table(s: &StructLayout) -> String {
    let mut o = String::new();
    writeln!(o, "`{}`: {} bytes, alignment {}.\n", c_struct(s.name), s.size, s.align).unwrap();
    o.push_str("| offset | size | C type | field | meaning |\n|---|---|---|---|---|\n");
    for f in s.fields {
        let ty = if f.c_len > 0 { format!("{}[{}]", c_elem(f.c_elem), f.c_len) } else { c_elem(f.c_elem) };
        writeln!(o, "| `{:#x}` | {} | `{ty}` | `{}` | {} |", f.offset, f.size, f.name, doc_cell(f.doc)).unwrap();
    }
    o
}

fn values_table(t: &ValueTable) -> String {
    let mut o = String::new();
    o.push_str("| C name | value | meaning |\n|---|---|---|\n");
    for v in t.values {
        writeln!(o, "| `{}` | `{}` | {} |", c_value(t, v.name), c_literal(t, v.value), doc_cell(v.doc)).unwrap();
    }
    o
}

fn find_table(name: &str) -> Option<Item> {
    catalog::MODULES.iter().flat_map(|m| m.items.iter().copied()).find(|i| match i {
        Item::Struct(s) => s.name == name,
        Item::Values(t) => t.name == name,
        Item::Code(_) => false,
    })
}

/// What a `<!-- generated: KEY -->` marker of `SPEC.md` expands to.
fn generated_block(key: &str) -> Result<String, String> {
    let mut words = key.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("hypercalls"), None, None) => Ok(hypercall_table()),
        (Some("struct"), Some(name), None) => match find_table(name) {
            Some(Item::Struct(s)) => Ok(struct_table(s)),
            _ => Err(format!("SPEC.md names struct {name}, which is not in the catalog")),
        },
        (Some("values"), Some(name), None) => match find_table(name) {
            Some(Item::Values(t)) => Ok(values_table(t)),
            _ => Err(format!("SPEC.md names values {name}, which are not in the catalog")),
        },
        _ => Err(format!("unknown generated block `{key}`")),
    }
}

const BEGIN: &str = "<!-- generated: ";
const END: &str = "<!-- end generated -->";

/// `SPEC.md` with every generated block refilled from the catalog, and the
/// keys of the blocks it has.
pub fn update_spec(spec: &str) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(spec.len());
    let mut keys = Vec::new();
    let mut rest = spec;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start..];
        let close = after_begin.find("-->").ok_or("unterminated generated marker")?;
        let key = after_begin[BEGIN.len()..close].trim().to_string();
        let marker_end = start + close + 3;
        out.push_str(&rest[..marker_end]);
        out.push('\n');
        out.push_str(&generated_block(&key)?);
        let tail = &rest[marker_end..];
        let end = tail.find(END).ok_or_else(|| format!("generated block `{key}` has no end marker"))?;
        if tail[..end].contains(BEGIN) {
            return Err(format!("generated block `{key}` is not closed before the next one"));
        }
        out.push_str(END);
        rest = &tail[end + END.len()..];
        keys.push(key);
    }
    out.push_str(rest);
    Ok((out, keys))
}

/// Every key a complete `SPEC.md` must have: the call table, and a table
/// for every structure and value table of the catalog.
pub fn required_spec_keys() -> Vec<String> {
    let mut keys = vec!["hypercalls".to_string()];
    for m in catalog::MODULES {
        for item in m.items {
            keys.push(match item {
                Item::Struct(s) => format!("struct {}", s.name),
                Item::Values(t) => format!("values {}", t.name),
                // Code has no table in SPEC.md: its semantics are the prose
                // of the section it implements.
                Item::Code(_) => continue,
            });
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_mechanically() {
        assert_eq!(snake("StartInfo"), "start_info");
        assert_eq!(snake("AbiInfo"), "abi_info");
        assert_eq!(snake("PtUpdatePreserveAd"), "pt_update_preserve_ad");
        assert_eq!(snake("Ok"), "ok");
        assert_eq!(snake("ABCDef"), "abc_def");
        assert_eq!(c_struct("StartInfo"), "struct veneer_start_info");
        assert_eq!(c_value(&Hypercall::TABLE, "ConsoleWrite"), "VENEER_HC_CONSOLE_WRITE");
        assert_eq!(c_value(&hypercall_abi::features::TABLE, "SUPERPAGE_2M"), "VENEER_FEATURE_SUPERPAGE_2M");
    }

    #[test]
    fn literals_keep_sign_and_width() {
        assert_eq!(c_literal(&hypercall_abi::blk::BlkStatus::TABLE, (-1i64) as u64), "(-1)");
        assert_eq!(c_literal(&hypercall_abi::Error::TABLE, 22), "22");
        assert_eq!(c_literal(&hypercall_abi::memory::memory_consts::TABLE, u64::MAX), "0xffffffffffffffffULL");
        assert_eq!(c_literal(&hypercall_abi::cpu::msr::TABLE, 0xc000_0080), "0xc0000080U");
    }

    #[test]
    fn spec_blocks_are_refilled_and_unknown_ones_refused() {
        let spec = "a\n<!-- generated: values Error -->\nstale\n<!-- end generated -->\nb\n";
        let (out, keys) = update_spec(spec).unwrap();
        assert_eq!(keys, ["values Error"]);
        assert!(out.contains("| `VENEER_E_NOT_PERMITTED` | `1` |"));
        assert!(!out.contains("stale"));
        assert!(out.ends_with("<!-- end generated -->\nb\n"));
        assert_eq!(update_spec(&out).unwrap().0, out, "idempotent");
        assert!(update_spec("<!-- generated: struct Nope -->\n<!-- end generated -->").is_err());
        assert!(update_spec("<!-- generated: hypercalls -->\n").is_err());
    }
}
