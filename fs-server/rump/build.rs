//! Links the program as every ExoV6 user program (the shared user build
//! script) and, when `RUMP_SYSROOT` names a rump kernel installation,
//! links the kernel in (rumpglue's `rump-link.rs`): librump, librumpvfs,
//! librumpdev, librumpdev_disk and the ffs, ext2fs and msdos file
//! systems. Without it the program is built without a kernel and says so
//! when it runs.
#[path = "../../rumpglue/rump-link.rs"]
mod rump;
#[path = "../../exokernel/user/user-build.rs"]
mod user;

/// The archives, as buildrump.sh names them (without `lib` and `.a`).
const ARCHIVES: &[&str] =
    &["rump", "rumpvfs", "rumpdev", "rumpdev_disk", "rumpfs_ffs", "rumpfs_ext2fs", "rumpfs_msdos"];

fn main() {
    user::main();
    rump::link(ARCHIVES, "build the kernel with buildrump.sh, static libraries: docs/porting.md", true);
}
