//! Build script shared by every bare-metal user program crate: links the
//! package's binaries as static ELF executables with `user.ld`.
use std::path::PathBuf;

pub fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // The crate may sit anywhere in the workspace (exokernel/qemu-tests/programs,
    // drivers/virtio-blk ...): find the linker script above it.
    let ld = dir
        .ancestors()
        .map(|a| a.join("exokernel/user/user.ld"))
        .find(|p| p.exists())
        .expect("exokernel/user/user.ld above the crate");
    println!("cargo:rerun-if-changed={}", ld.display());
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-z,max-page-size=4096"]
    {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-T{}", ld.display());
}
