//! The server exports rumpglue's rumpuser(3) hypercalls from its dynamic
//! symbol table, so that a NetBSD rump kernel it loads (`--backend
//! netbsd`) binds its hypercalls to them rather than to any other
//! implementation on the system.
fn main() {
    println!("cargo:rustc-link-arg-bin=exo-fs-server=-Wl,--export-dynamic-symbol=rumpuser_*");
}
