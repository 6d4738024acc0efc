//! Build-script helper shared by the ExoV6 programs that link a rump
//! kernel (`fs-rump`, `rump-ld`): when `RUMP_SYSROOT` names a rump kernel
//! installation (a `lib/` of static archives, as NetBSD's buildrump.sh
//! installs them), links the named archives whole (`+whole-archive`:
//! components register themselves through constructors and link sets
//! nothing else refers to) and keeps the link sets from --gc-sections;
//! then sets `cfg(rump_kernel)`. Without `RUMP_SYSROOT` it does nothing
//! and the program is built without a kernel (it says so when it runs).

/// Links `archives` (buildrump.sh names, without `lib` and `.a`); `how`
/// tells the user how to get missing ones. Missing archives fail the
/// build if `required`, else the program is built without a kernel (with a
/// warning). Returns whether it linked.
pub fn link(archives: &[&str], how: &str, required: bool) -> bool {
    println!("cargo:rerun-if-env-changed=RUMP_SYSROOT");
    println!("cargo::rustc-check-cfg=cfg(rump_kernel)");
    let Some(root) = std::env::var_os("RUMP_SYSROOT") else { return false };
    let lib = std::path::PathBuf::from(root).join("lib");
    let missing: Vec<_> = archives.iter().map(|a| lib.join(format!("lib{a}.a"))).filter(|p| !p.exists()).collect();
    if !missing.is_empty() {
        let names = missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        let what =
            format!("RUMP_SYSROOT is set, but these static archives of the rump kernel are missing: {names} ({how})");
        if required {
            panic!("{what}");
        }
        println!("cargo:warning={what}; building without a kernel");
        return false;
    }
    println!("cargo:rustc-link-search=native={}", lib.display());
    for a in archives {
        println!("cargo:rerun-if-changed={}", lib.join(format!("lib{a}.a")).display());
        println!("cargo:rustc-link-lib=static:+whole-archive={a}");
    }
    // The kernel finds its components, modules, sysctl nodes and event
    // counters in link sets: sections walked from __start_link_set_X to
    // __stop_link_set_X. Nothing else refers to them, so keep them from
    // --gc-sections.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,nostart-stop-gc");
    println!("cargo:rustc-cfg=rump_kernel");
    true
}
