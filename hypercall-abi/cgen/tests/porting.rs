//! PORTING.md accounts for every v1 call: a call nothing needs is not in v1,
//! so each one must appear, by its snake-case name in backticks, in the
//! "who needs it" table.

use hypercall_abi::Hypercall;
use std::fs;
use veneer_abi_cgen::{abi_dir, snake};

#[test]
fn every_call_has_a_consumer() {
    let text = fs::read_to_string(abi_dir().join("PORTING.md")).expect("hypercall-abi/PORTING.md");
    let (_, index) = text.split_once("## 3. Every v1 call and who needs it").expect("PORTING.md section 3");
    let t = &Hypercall::TABLE;
    let mut missing = Vec::new();
    for v in t.values {
        let name = format!("`{}`", snake(v.name));
        // The name must open a row (first column) of the index table.
        let listed = index.lines().any(|l| {
            l.starts_with('|') && l.split('|').nth(1).is_some_and(|first| first.contains(&name))
        });
        if !listed {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "calls without a consumer in PORTING.md section 3: {missing:?}");
    // And nothing in the index names a call v1 does not have.
    for l in index.lines().filter(|l| l.starts_with("| `")) {
        let first = l.split('|').nth(1).unwrap();
        for name in first.split('`').skip(1).step_by(2) {
            assert!(
                t.values.iter().any(|v| snake(v.name) == name),
                "PORTING.md section 3 names `{name}`, which is not a v1 call"
            );
        }
    }
}
