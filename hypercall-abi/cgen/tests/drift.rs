//! The checked-in outputs are exactly what the crate generates: the C
//! headers byte for byte, and every table of `SPEC.md`. And the catalog the
//! generator walks holds every ABI item the crate defines, while `SPEC.md`
//! has a table for each.

use std::fs;
use veneer_abi_cgen::{abi_dir, headers, required_spec_keys, update_spec, REGENERATE};

fn hint() -> String {
    format!("the generated files are stale: run `{REGENERATE}` and commit the result")
}

#[test]
fn headers_match_the_crate() {
    let include = abi_dir().join("include").join("veneer");
    let wanted = headers();
    for (name, text) in &wanted {
        let path = include.join(name);
        let on_disk = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; {}", path.display(), hint()));
        assert!(on_disk == *text, "include/veneer/{name} differs from the crate; {}", hint());
    }
    let mut extra = Vec::new();
    for e in fs::read_dir(&include).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !wanted.iter().any(|(n, _)| *n == name) {
            extra.push(name);
        }
    }
    assert!(extra.is_empty(), "include/veneer has files the crate does not generate: {extra:?}; {}", hint());
}

#[test]
fn spec_tables_match_the_crate_and_cover_it() {
    let spec = fs::read_to_string(abi_dir().join("SPEC.md")).expect("hypercall-abi/SPEC.md");
    let (fresh, keys) = update_spec(&spec).unwrap_or_else(|e| panic!("SPEC.md: {e}"));
    assert!(fresh == spec, "a generated table of SPEC.md differs from the crate; {}", hint());
    for key in required_spec_keys() {
        let n = keys.iter().filter(|k| **k == key).count();
        assert_eq!(n, 1, "SPEC.md must have exactly one `<!-- generated: {key} -->` table, has {n}");
    }
}

/// Names of items a source file defines with the ABI macros.
fn defined_items(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (mac, intro, stop) in [
        ("crate::abi_struct! {", "pub struct ", '('),
        ("crate::abi_enum! {", "pub enum ", ':'),
        ("crate::abi_consts! {", "pub mod ", ':'),
    ] {
        let mut rest = src;
        while let Some(at) = rest.find(mac) {
            rest = &rest[at + mac.len()..];
            let i = rest.find(intro).expect("macro invocation without its item");
            let name: String = rest[i + intro.len()..].chars().take_while(|c| *c != stop).collect();
            names.push(name.trim().to_string());
        }
    }
    names
}

#[test]
fn catalog_holds_every_item_the_crate_defines() {
    let keys = required_spec_keys();
    let src = abi_dir().join("src");
    let mut checked = 0;
    for e in fs::read_dir(&src).unwrap().flatten() {
        let path = e.path();
        // layout.rs defines the macros (and a test-only structure).
        if path.extension().is_none_or(|x| x != "rs") || path.ends_with("layout.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        // Items inside `mod tests` are test fixtures, not ABI.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for name in defined_items(text) {
            let present = keys.iter().any(|k| k == &format!("struct {name}") || k == &format!("values {name}"));
            assert!(present, "{} defines {name}, which is missing from hypercall_abi::catalog::MODULES", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 80, "found only {checked} ABI items: the scan is broken");
}
