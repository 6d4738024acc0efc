//! With `RUMP_SYSROOT` naming a rump kernel installation (static
//! archives, `lib/librump.a` ...), scripts/build links the kernel into
//! `fs-rump` and the tests of NetBSD's file systems in ExoV6 run (cfg
//! `rump_kernel`); without it they are reported as ignored, with the
//! reason, and a test checks that `fs-rump` says how to get one. With the
//! PCI components installed there too (scripts/build-rump-pci), the test of
//! NetBSD's virtio block driver runs (cfg `rump_pci`).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(rump_kernel)");
    println!("cargo::rustc-check-cfg=cfg(rump_pci)");
    println!("cargo:rerun-if-env-changed=RUMP_SYSROOT");
    if let Some(root) = std::env::var_os("RUMP_SYSROOT") {
        let lib = std::path::Path::new(&root).join("lib/librump.a");
        if lib.exists() {
            println!("cargo:rustc-cfg=rump_kernel");
            // NetBSD's virtio block driver too (scripts/build-rump-pci).
            let pci = ["librumpdev_pci.a", "librumpdev_pci_virtio.a", "librumpdev_virtio_ld.a"];
            if pci.iter().all(|a| std::path::Path::new(&root).join("lib").join(a).exists()) {
                println!("cargo:rustc-cfg=rump_pci");
            }
        } else {
            println!("cargo:warning=RUMP_SYSROOT is set but {} does not exist", lib.display());
        }
    }
}
