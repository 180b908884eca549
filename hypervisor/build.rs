fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/src/arch/x86_64/link.ld");
    // The image is linked at a fixed high address and entered with paging
    // set up by boot.S; it is not relocatable.
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rerun-if-changed=src/arch/x86_64/link.ld");
}
