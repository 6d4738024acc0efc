//! Links the program as every ExoV6 user program (the shared user build
//! script) and, when `RUMP_SYSROOT` names a rump kernel installation,
//! links the kernel in (rumpglue's `rump-link.rs`): librump, librumpvfs
//! (device nodes), librumpdev, librumpdev_disk, and the PCI components
//! that buildrump.sh does not build by itself: NetBSD's PCI bus glue, its
//! virtio bus and the `ld` disk driver at virtio
//! (`scripts/build-rump-pci` builds them into the same installation).
#[path = "../../rumpglue/rump-link.rs"]
mod rump;
#[path = "../../exokernel/user/user-build.rs"]
mod user;

/// The archives, as buildrump.sh names them (without `lib` and `.a`).
const ARCHIVES: &[&str] =
    &["rump", "rumpvfs", "rumpdev", "rumpdev_disk", "rumpdev_pci", "rumpdev_pci_virtio", "rumpdev_virtio_ld"];

fn main() {
    user::main();
    rump::link(
        ARCHIVES,
        "build the kernel with buildrump.sh and its PCI components with scripts/build-rump-pci: docs/porting.md",
        false,
    );
}
