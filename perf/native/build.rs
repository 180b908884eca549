// The native kernel boots exactly as Veneer does: the hypervisor's PVH entry
// and link layout, so both sides of a ratio start from the same state.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/../../hypervisor/src/arch/x86_64/link.ld");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rerun-if-changed=../../hypervisor/src/arch/x86_64/link.ld");
}
