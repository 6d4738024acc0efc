//! Links the program as every ExoV6 user program (the shared user build
//! script) and, when `RUMP_SYSROOT` names a rump kernel installation (a
//! `lib/` of static archives, as NetBSD's buildrump.sh installs them),
//! links the kernel in: librump, librumpvfs, librumpdev,
//! librumpdev_disk and the ffs, ext2fs and msdos file systems, each
//! whole (`+whole-archive`: the file systems register themselves through
//! constructors and link sets nothing else refers to; the link sets are kept
//! from --gc-sections). Without it the
//! program is built without a kernel and says so when it runs.
#[path = "../../exokernel/user/user-build.rs"]
mod user;

/// The archives, as buildrump.sh names them (without `lib` and `.a`).
const ARCHIVES: &[&str] =
    &["rump", "rumpvfs", "rumpdev", "rumpdev_disk", "rumpfs_ffs", "rumpfs_ext2fs", "rumpfs_msdos"];

fn main() {
    user::main();
    println!("cargo:rerun-if-env-changed=RUMP_SYSROOT");
    println!("cargo::rustc-check-cfg=cfg(rump_kernel)");
    let Some(root) = std::env::var_os("RUMP_SYSROOT") else { return };
    let lib = std::path::PathBuf::from(root).join("lib");
    let missing: Vec<_> = ARCHIVES.iter().map(|a| lib.join(format!("lib{a}.a"))).filter(|p| !p.exists()).collect();
    if !missing.is_empty() {
        panic!(
            "RUMP_SYSROOT is set, but these static archives of the rump kernel are missing: {}\n\
             (build the kernel with buildrump.sh, static libraries: docs/porting.md)",
            missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    println!("cargo:rustc-link-search=native={}", lib.display());
    for a in ARCHIVES {
        println!("cargo:rerun-if-changed={}", lib.join(format!("lib{a}.a")).display());
        println!("cargo:rustc-link-lib=static:+whole-archive={a}");
    }
    // The kernel finds its components, modules, sysctl nodes and event
    // counters in link sets: sections walked from __start_link_set_X to
    // __stop_link_set_X. Nothing else refers to them, so keep them from
    // --gc-sections.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,nostart-stop-gc");
    println!("cargo:rustc-cfg=rump_kernel");
}
