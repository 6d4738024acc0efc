//! The server exports rumpglue's rumpuser(3) hypercalls from its dynamic
//! symbol table, so that a NetBSD rump kernel it loads (`--backend
//! netbsd`) binds its hypercalls to them rather than to any other
//! implementation on the system. The server is `exo-img` itself, started
//! again in server mode.
//!
//! With `RUMP_SYSROOT` naming a rump kernel installation, the tests that
//! need one are compiled in (cfg `rump_sysroot` for its shared libraries,
//! `rump_appliance` for its static archives, which the vm-mode appliance
//! links); otherwise they are reported as ignored, with the reason.
fn main() {
    println!("cargo:rustc-link-arg-bin=exo-img=-Wl,--export-dynamic-symbol=rumpuser_*");
    println!("cargo::rustc-check-cfg=cfg(rump_sysroot)");
    println!("cargo::rustc-check-cfg=cfg(rump_appliance)");
    println!("cargo:rerun-if-env-changed=RUMP_SYSROOT");
    if let Some(root) = std::env::var_os("RUMP_SYSROOT") {
        // Static archives: scripts/build links them into the appliance's
        // fs-rump (exo-img --isolation vm --backend netbsd).
        if std::path::Path::new(&root).join("lib/librump.a").exists() {
            println!("cargo:rustc-cfg=rump_appliance");
        }
        let lib = std::path::Path::new(&root).join("lib/librump.so");
        if lib.exists() {
            println!("cargo:rustc-cfg=rump_sysroot");
        } else {
            println!("cargo:warning=RUMP_SYSROOT is set but {} does not exist", lib.display());
        }
    }
}
