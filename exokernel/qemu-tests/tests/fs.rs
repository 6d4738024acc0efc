//! File-server tests: the whole stack in ExoV6, each part its own process
//! holding only what it needs. The virtio-blk driver serves a disk image
//! made here to the file server (`fs-server/exo`), which finds the file
//! system on it with the hosted server's code and serves it to `fscheck`
//! (the protocol itself) and `posixcheck` (an application on the POSIX
//! library OS).

use exo_qemu_tests::{boot, fnv1a64, run_tool as run, seeded_bytes, Boot};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A directory of its own, and the test files: `hello.txt` and a 300 KB
/// `data/blob.bin` from a seeded generator. Returns the blob.
fn tree(name: &str) -> (PathBuf, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("exo-fs-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/data")).unwrap();
    std::fs::write(dir.join("tree/hello.txt"), "Hello from the test's image\n").unwrap();
    let blob = seeded_bytes(0x9e37_79b9_7f4a_7c15, 300_000);
    std::fs::write(dir.join("tree/data/blob.bin"), &blob).unwrap();
    (dir, blob)
}

fn fat_image(dir: &Path) -> PathBuf {
    let img = dir.join("fat.img");
    let i = img.to_str().unwrap();
    run(Command::new("mkfs.vfat").args(["-C", "-n", "EXOTEST", i, "8192"]));
    run(Command::new("mcopy").args(["-i", i]).arg(dir.join("tree/hello.txt")).arg("::/hello.txt"));
    run(Command::new("mmd").args(["-i", i, "::/data"]));
    run(Command::new("mcopy").args(["-i", i]).arg(dir.join("tree/data/blob.bin")).arg("::/data/blob.bin"));
    img
}

/// The lines every run shows, whatever the file system.
fn common_checks(b: &Boot, blob: &[u8]) {
    common_checks_of(b, blob, 4);
}

/// [`common_checks`] for a manifest of `programs` programs.
fn common_checks_of(b: &Boot, blob: &[u8], programs: usize) {
    common_checks_by(b, blob, programs, ["fs-server", "virtio-blk"]);
}

/// [`common_checks_of`] for a file server and the block driver under it.
fn common_checks_by(b: &Boot, blob: &[u8], programs: usize, [server, driver]: [&str; 2]) {
    for check in [
        "request before attach: status Ok(2)".to_string(),
        "attach: Ok((0, 65536))".to_string(),
        "read /hello.txt: \"Hello from the test's image\"".to_string(),
        format!("read /data/blob.bin: 300000 bytes, fnv1a64 {:016x}", fnv1a64(blob)),
        "missing file: Ok(Error(NotFound, ".to_string(),
        "malformed request: Ok(Error(Invalid, \"malformed request: ".to_string(),
        "request longer than the buffer: Err(1)".to_string(),
        "detach: Ok(0)".to_string(),
    ] {
        let i = b.expect_line(&format!("fscheck: {check}"));
        assert!(b.lines()[i].ends_with(" ok"), "{}\n{}", b.lines()[i], b.serial);
    }
    posix_checks(b, blob);
    // The processes print in whatever order they run.
    for line in [
        &format!("{server}: 2 client(s) served; stopping"),
        &format!("{driver}: 1 client(s) served"),
        "fscheck: 11/11 checks passed",
        &format!("root: all {programs} programs ended as expected"),
    ] {
        b.expect_line(line);
    }
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

/// What posixcheck, an application on the POSIX library, must report.
fn posix_checks(b: &Boot, blob: &[u8]) {
    let hash = format!("{:016x}", fnv1a64(blob));
    for check in [
        "mount /: Ok(())".to_string(),
        "open, read to the end, close: Ok(\"Hello from the test's image\") (Ok(Stat { size: 28, ".to_string(),
        format!("read a large file: 300000 bytes, fnv1a64 {hash}"),
        "lseek and fstat: set Ok(123456), read Ok(10), end Ok(300000)".to_string(),
        "readdir /data: Ok([\"blob.bin\"])".to_string(),
        "errors: missing Err(ENOENT), read a directory Err(EISDIR), write read-only Err(EBADF), close twice Err(EBADF)"
            .to_string(),
        "unmount: Ok(())".to_string(),
    ] {
        let i = b.expect_line(&format!("posixcheck: {check}"));
        assert!(b.lines()[i].ends_with(" ok"), "{}\n{}", b.lines()[i], b.serial);
    }
    b.expect_line("posixcheck: this line went through descriptor 1");
    b.expect_line("posixcheck: 8/8 checks passed");
}

#[test]
fn ext4_image_is_served_read_only_through_driver_and_server() {
    let (dir, blob) = tree("ext4");
    let img = dir.join("ext.img");
    run(Command::new("mkfs.ext4").args(["-q", "-L", "EXOEXT", "-d"]).arg(dir.join("tree")).arg(&img).arg("8M"));
    let b = boot("fs.img", Duration::from_secs(120), &["--disk", img.to_str().unwrap()]);
    b.expect_line("fs-server: ext4 (ext4-view) file system \"EXOEXT\" on the whole disk, 8388608 bytes");
    b.expect_line("fscheck: list /: data/ hello.txt lost+found/ ok");
    b.expect_line("fscheck: read-only: Ok(Error(ReadOnly, ");
    b.expect_line("posixcheck: read-only file system: Err(EROFS) ok");
    common_checks(&b, &blob);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The driver dies in the middle of a request (test hook) and the
/// supervisor restarts it: the file server attaches its buffer to the new
/// instance and retries, and its clients see every check pass.
#[test]
fn a_driver_restarted_under_running_io_goes_unnoticed_by_clients() {
    let (dir, blob) = tree("restart");
    let img = dir.join("ext.img");
    run(Command::new("mkfs.ext4").args(["-q", "-L", "EXOEXT", "-d"]).arg(dir.join("tree")).arg(&img).arg("8M"));
    let b = boot("fs-restart.img", Duration::from_secs(120), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "virtio-blk: test hook: dying in the middle of request 60",
        "root: virtio-blk exited with code 70; restarting it in 10 ms",
        "root: restarted virtio-blk",
        "fs-server: the block driver was restarted: buffer attached again, request retried",
    ]);
    assert_eq!(b.lines().iter().filter(|l| l.contains("test hook: dying")).count(), 1, "{}", b.serial);
    common_checks(&b, &blob);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_server_restarted_under_a_read_goes_unnoticed_by_posix_applications() {
    // The file server dies in the middle of posixcheck's reads (test
    // hook); the supervisor restarts it and the POSIX library attaches
    // its buffer to the new instance and reads again.
    let (dir, blob) = tree("srvrestart");
    let img = dir.join("ext.img");
    run(Command::new("mkfs.ext4").args(["-q", "-L", "EXOEXT", "-d"]).arg(dir.join("tree")).arg(&img).arg("8M"));
    let b = boot("fs-server-restart.img", Duration::from_secs(120), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "fs-server: test hook: dying in the middle of request 6",
        "root: fs-server exited with code 70; restarting it in 10 ms",
        "root: restarted fs-server",
        "fs-server: serving the file protocol",
        "posixcheck: read a large file: ",
        "fs-server: 1 client(s) served; stopping",
    ]);
    assert_eq!(b.lines().iter().filter(|l| l.contains("test hook: dying")).count(), 1, "{}", b.serial);
    posix_checks(&b, &blob);
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_server_that_stops_answering_is_found_by_its_heartbeat_and_restarted() {
    // The file server hangs in the middle of posixcheck's reads (test
    // hook: it neither answers nor ends); two heartbeats go unanswered,
    // the supervisor kills it and restarts it, and posixcheck, whose call
    // the dead instance held, reads again from the new one.
    let (dir, blob) = tree("hang");
    let img = dir.join("ext.img");
    run(Command::new("mkfs.ext4").args(["-q", "-L", "EXOEXT", "-d"]).arg(dir.join("tree")).arg(&img).arg("8M"));
    let b = boot("fs-server-hang.img", Duration::from_secs(120), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "fs-server: test hook: hanging in the middle of request 6",
        "root: fs-server stopped answering (2 heartbeats of 500 ms missed); killed it",
        "root: fs-server exited with code 57007; restarting it in 10 ms",
        "root: restarted fs-server",
        "fs-server: serving the file protocol",
        "posixcheck: read a large file: ",
        "fs-server: 1 client(s) served; stopping",
    ]);
    posix_checks(&b, &blob);
    b.expect_line("root: all 3 programs ended as expected");
    assert_eq!(b.status, Some(0), "{}", b.serial);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fat_image_is_served_read_only_through_driver_and_server() {
    let (dir, blob) = tree("fat");
    let img = fat_image(&dir);
    let before = std::fs::read(&img).unwrap();
    let b = boot("fs.img", Duration::from_secs(120), &["--disk-rw", img.to_str().unwrap()]);
    b.expect_line("fs-server: fat12 file system \"EXOTEST\" on the whole disk, 8388608 bytes");
    b.expect_line("fscheck: list /: data/ hello.txt ok");
    b.expect_line("fscheck: read-only: Ok(Error(ReadOnly, ");
    b.expect_line("posixcheck: read-only file system: Err(EROFS) ok");
    common_checks(&b, &blob);
    // Served read-only from a writable disk: not a byte changed.
    assert!(std::fs::read(&img).unwrap() == before, "the image changed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The porting guide's worked example on ExoV6: the C md driver (rumpuser
/// calls only) runs in its own process on rumpglue's exokernel backend,
/// fills its memory disk from virtio-blk and serves the block protocol;
/// the native file server on top serves every file right.
#[test]
fn fat_image_is_served_through_the_c_md_driver_in_its_own_process() {
    let (dir, blob) = tree("rump-md");
    let img = fat_image(&dir);
    let b = boot("rump-md.img", Duration::from_secs(120), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "rump-md: md0: 8388608 bytes from the disk, through the C driver's strategy routine (128 transfers)",
        "rump-md: serving the block protocol",
        "fs-server: fat12 file system \"EXOTEST\" on the whole disk, 8388608 bytes",
    ]);
    b.expect_line("fscheck: list /: data/ hello.txt ok");
    let i = b.expect_line("rump-md: 1 client(s) served, ");
    assert!(b.lines()[i].ends_with("transfers through the driver; md0 detached"), "{}", b.serial);
    common_checks_of(&b, &blob, 5);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `rw`, fscheck creates and writes a file; after power-off the host
/// reads it back from the image with mtools, and fsck.fat finds the file
/// system clean.
#[test]
fn fat_image_is_changed_read_write_and_stays_consistent() {
    let (dir, blob) = tree("fat-rw");
    let img = fat_image(&dir);
    let today = || String::from_utf8(Command::new("date").args(["-u", "+%F"]).output().unwrap().stdout).unwrap();
    let before = today();
    let b = boot("fs-rw.img", Duration::from_secs(120), &["--disk-rw", img.to_str().unwrap()]);
    let after = today();
    fat_rw_checks(&b, &img, &blob, [before, after], "virtio-blk");
    let _ = std::fs::remove_dir_all(&dir);
}

/// NetBSD's own virtio block driver, unmodified, as an ExoV6 driver
/// process: `rump-ld` links a rump kernel with NetBSD's PCI bus, virtio
/// bus and `ld` driver, which find the one function the manifest granted,
/// drive it through its I/O BAR (mapped for `in`/`out`), its INTx line
/// (a notification and a thread) and DMA memory, and serve the block
/// protocol; the native file server reads and writes the FAT file system
/// through it, with the same checks as with the Rust driver.
#[test]
#[cfg_attr(
    not(rump_pci),
    ignore = "needs RUMP_SYSROOT naming a rump kernel built with buildrump.sh (static archives) and its PCI components (scripts/build-rump-pci) when scripts/test runs: docs/porting.md"
)]
fn netbsd_ld_driver_at_virtio_serves_the_block_protocol_in_its_own_process() {
    let (dir, blob) = tree("rump-ld");
    let img = fat_image(&dir);
    let today = || String::from_utf8(Command::new("date").args(["-u", "+%F"]).output().unwrap().stdout).unwrap();
    let before = today();
    let b = boot("rump-ld.img", Duration::from_secs(180), &["--disk-rw", img.to_str().unwrap()]);
    let after = today();
    b.expect_in_order(&[
        "rump-ld: NetBSD's ld0 at virtio: 8388608 bytes, attached in ",
        "fs-server: fat12 file system \"EXOTEST\" on the whole disk, 8388608 bytes",
    ]);
    fat_rw_checks(&b, &img, &blob, [before, after], "rump-ld");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Built without the PCI components, `rump-ld` says how to get them and
/// ends; the file server above it is told the disk is gone.
#[test]
#[cfg_attr(rump_pci, ignore = "rump-ld was built with a rump kernel and its PCI components (RUMP_SYSROOT)")]
fn rump_ld_without_a_rump_kernel_says_how_to_build_one() {
    let (dir, _) = tree("nold");
    let img = fat_image(&dir);
    let b = boot("rump-ld.img", Duration::from_secs(30), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "rump-ld: built without a rump kernel: build NetBSD's rump kernel (buildrump.sh, static archives) and its PCI components (scripts/build-rump-pci), then run RUMP_SYSROOT=<its installation> scripts/build <manifest> (docs/porting.md)",
        "root: rump-ld exited with code 3",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a read-write run of fs-rw.manifest's clients on `fat_image` leaves:
/// their lines, and the image as the host's mtools and fsck.fat see it
/// (the new file dated `dates`, the day before or after the run), under
/// the block driver `driver`.
fn fat_rw_checks(b: &Boot, img: &Path, blob: &[u8], dates: [String; 2], driver: &str) {
    let [before, after] = dates;
    b.expect_line("fscheck: info: fat12 \"EXOTEST\" on the whole disk: ExoV6 process: disk through a block driver (16384 sectors), read-write ok");
    b.expect_line("fscheck: create, write, read back: Ok(Done), Ok(Done) ok");
    b.expect_line("posixcheck: create, write, rename, mkdir, unlink: wrote Ok(32), renamed Ok(32), mkdir Ok(true), after unlink Err(ENOENT) ok");
    common_checks_by(b, blob, 4, ["fs-server", driver]);
    let out = Command::new("mtype").args(["-i", img.to_str().unwrap(), "::/new.txt"]).output().expect("mtype");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "written inside ExoV6\n");
    // Its timestamp is today's (UTC): ExoV6's wall clock comes from the
    // real-time clock, which QEMU sets from the host.
    let listing = Command::new("mdir").args(["-i", img.to_str().unwrap(), "::/new.txt"]).output().expect("mdir");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = listing.lines().find(|l| l.ends_with("new.txt")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains(before.trim()) || line.contains(after.trim()), "{line} is not dated {before} or {after}");
    // posixcheck's directory is there; its renamed and removed file is not.
    let dir_listing = Command::new("mdir").args(["-b", "-i", img.to_str().unwrap(), "::/"]).output().expect("mdir");
    let listing = String::from_utf8_lossy(&dir_listing.stdout);
    assert!(listing.contains("NEWDIR") || listing.contains("newdir"), "{listing}");
    assert!(!listing.to_lowercase().contains("renamed"), "{listing}");
    let fsck = Command::new("fsck.fat").args(["-n"]).arg(img).output().expect("fsck.fat");
    assert!(
        fsck.status.success(),
        "fsck.fat: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// NetBSD's own file systems in an ExoV6 process: `fs-rump` links a rump
/// kernel (ffs, ext2fs, msdosfs), reads the disk through the virtio-blk
/// driver and serves the same file protocol as the native server, so
/// fscheck and posixcheck read every file right from ext2, FFS (v1 and
/// v2, from NetBSD's makefs) and FAT images made here.
#[test]
#[cfg_attr(
    not(rump_kernel),
    ignore = "needs RUMP_SYSROOT naming a rump kernel built with buildrump.sh (static archives) when scripts/test runs: docs/porting.md"
)]
fn netbsd_file_systems_in_a_rump_kernel_process_serve_every_file() {
    let (dir, blob) = tree("rump");
    let tree_dir = dir.join("tree");
    let ext2 = dir.join("ext2.img");
    run(Command::new("mkfs.ext2").args(["-q", "-L", "EXOEXT", "-d"]).arg(&tree_dir).arg(&ext2).arg("8M"));
    let ffs1 = dir.join("ffs1.img");
    run(Command::new("makefs").args(["-t", "ffs", "-s", "8m", "-o", "version=1"]).arg(&ffs1).arg(&tree_dir));
    let ffs2 = dir.join("ffs2.img");
    run(Command::new("makefs").args(["-t", "ffs", "-s", "8m", "-o", "version=2"]).arg(&ffs2).arg(&tree_dir));
    for (img, fs) in [(&ext2, "ext2fs"), (&ffs1, "ffs"), (&ffs2, "ffs")] {
        let b = boot("rump-fs.img", Duration::from_secs(180), &["--disk", img.to_str().unwrap()]);
        b.expect_line(&format!("fs-rump: {fs} (NetBSD rump kernel) on the whole disk, 8388608 bytes, mounted in "));
        let listing = if fs == "ext2fs" { "data/ hello.txt lost+found/" } else { "data/ hello.txt" };
        b.expect_line(&format!("fscheck: list /: {listing} ok"));
        b.expect_line("fscheck: read-only: Ok(Error(ReadOnly, ");
        b.expect_line("posixcheck: read-only file system: Err(EROFS) ok");
        common_checks_by(&b, &blob, 4, ["fs-rump", "virtio-blk"]);
    }
    // msdosfs shows 8.3 names as NetBSD does, in capitals (it ignores the
    // lower-case flags mtools sets), and finds them in any case: the one
    // check of posixcheck's that lists names sees BLOB.BIN.
    let fat = fat_image(&dir);
    let b = boot("rump-fs.img", Duration::from_secs(180), &["--disk", fat.to_str().unwrap()]);
    b.expect_line("fs-rump: msdos (NetBSD rump kernel) on the whole disk, 8388608 bytes, mounted in ");
    b.expect_line("fscheck: list /: DATA/ HELLO.TXT ok");
    let hash = format!("{:016x}", fnv1a64(&blob));
    for line in [
        "fscheck: read /hello.txt: \"Hello from the test's image\" ok".to_string(),
        format!("fscheck: read /data/blob.bin: 300000 bytes, fnv1a64 {hash} ok"),
        format!("posixcheck: read a large file: 300000 bytes, fnv1a64 {hash} ok"),
        "posixcheck: readdir /data: Ok([\"BLOB.BIN\"]) FAILED".to_string(),
        "posixcheck: 7/8 checks passed".to_string(),
        "fscheck: 11/11 checks passed".to_string(),
        "fs-rump: 2 client(s) served; stopping".to_string(),
        "root: fs-rump exited with code 0".to_string(),
    ] {
        b.expect_line(&line);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// NetBSD's own `panic()` inside the rump file server (a test hook in its
/// third file request) ends that process only: the root task reports it
/// and restarts it, the driver under it and the reader above it run on,
/// and the reader's reads, retried against the new instance, come out
/// right. The kernel is untouched.
#[test]
#[cfg_attr(
    not(rump_kernel),
    ignore = "needs RUMP_SYSROOT naming a rump kernel built with buildrump.sh (static archives) when scripts/test runs: docs/porting.md"
)]
fn a_netbsd_panic_ends_only_the_rump_file_server_which_is_restarted() {
    let (dir, blob) = tree("rump-panic");
    let img = fat_image(&dir);
    let b = boot("rump-panic.img", Duration::from_secs(180), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "fs-rump: test hook: a NetBSD panic in the middle of request 3",
        "panic: fs-rump test hook: a NetBSD panic",
        "rump kernel panic: halted",
        "root: fs-rump exited with code 134; restarting it",
        "root: restarted fs-rump",
        "fs-rump: msdos (NetBSD rump kernel) on the whole disk, 8388608 bytes, mounted in ",
    ]);
    let read = format!("readcheck: /data/blob.bin: 300000 bytes, fnv1a64 {:016x}, ", fnv1a64(&blob));
    assert_eq!(b.lines().iter().filter(|l| l.starts_with(&read)).count(), 3, "{}", b.serial);
    b.expect_in_order(&["root: virtio-blk exited with code 0", "root: all 3 programs ended as expected"]);
    assert!(!b.serial.contains("[kernel] panic"), "{}", b.serial);
    assert_eq!(b.status, Some(0), "{}", b.serial);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Built without a rump kernel, `fs-rump` says how to get one and ends;
/// its clients get a definite error, not a hang. (The driver under it
/// then waits for ever for the one client its test arguments name, so
/// the boot is cut short.)
#[test]
#[cfg_attr(rump_kernel, ignore = "fs-rump was built with a rump kernel (RUMP_SYSROOT)")]
fn fs_rump_without_a_rump_kernel_says_how_to_build_one() {
    let (dir, _) = tree("norump");
    let img = fat_image(&dir);
    let b = boot("rump-fs.img", Duration::from_secs(30), &["--disk", img.to_str().unwrap()]);
    b.expect_in_order(&[
        "fs-rump: built without a rump kernel: build NetBSD's rump kernel (buildrump.sh, static archives) and run RUMP_SYSROOT=<its installation> scripts/build <manifest> (docs/porting.md)",
        "root: fs-rump exited with code 3",
    ]);
    b.expect_line("fscheck: detach: Err(Gone) FAILED");
    b.expect_line("posixcheck: mount /: Err(ENODEV) FAILED");
    b.expect_line("root: fscheck exited with code 1");
    b.expect_line("root: posixcheck exited with code 1");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hostile FFS images against the NetBSD file server: whatever NetBSD's
/// code does with them (an error, an endless loop, a CPU exception), only
/// `fs-rump` suffers. Its clients get definite errors, the driver under
/// it stops once no client is left, the kernel is untouched and the
/// machine powers off. Damage: a directory entry of length 0 (NetBSD
/// hands it on unchanged; the server reports it rather than asking
/// again for ever), an absurd number of cylinder groups, a root directory
/// of 2^60 bytes.
#[test]
#[cfg_attr(
    not(rump_kernel),
    ignore = "needs RUMP_SYSROOT naming a rump kernel built with buildrump.sh (static archives) when scripts/test runs: docs/porting.md"
)]
fn hostile_ffs_images_harm_only_the_netbsd_file_server() {
    let (dir, _) = tree("rump-hostile");
    let good = dir.join("ffs2.img");
    run(Command::new("makefs").args(["-t", "ffs", "-s", "8m", "-o", "version=2"]).arg(&good).arg(dir.join("tree")));
    let image = std::fs::read(&good).unwrap();
    let le32 = |b: &[u8], at: usize| i32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    // The UFS2 superblock: at 8 KiB or 64 KiB, its magic 1372 bytes in.
    let sb = [8192usize, 65536].into_iter().find(|sb| le32(&image, sb + 1372) == 0x1954_0119).expect("a UFS2 image");
    let (iblkno, fsize) = (le32(&image, sb + 16) as usize, le32(&image, sb + 52) as usize);
    let root_inode = iblkno * fsize + 2 * 256; // UFS2 inodes are 256 bytes
    let root_block = i64::from_le_bytes(image[root_inode + 112..root_inode + 120].try_into().unwrap()) as usize * fsize;
    let damaged = |name: &str, damage: &dyn Fn(&mut Vec<u8>)| {
        let mut b = image.clone();
        damage(&mut b);
        let p = dir.join(name);
        std::fs::write(&p, &b).unwrap();
        p
    };
    let reclen0 = damaged("reclen0.img", &|b| b[root_block + 4..root_block + 6].copy_from_slice(&[0, 0]));
    let ncg = damaged("ncg.img", &|b| b[sb + 44..sb + 48].copy_from_slice(&i32::MAX.to_le_bytes()));
    let huge =
        damaged("huge.img", &|b| b[root_inode + 16..root_inode + 24].copy_from_slice(&(1u64 << 60).to_le_bytes()));
    for img in [&reclen0, &ncg, &huge] {
        let b = boot("rump-fs.img", Duration::from_secs(240), &["--disk", img.to_str().unwrap()]);
        let context = format!("{}:\n{}", img.display(), b.serial);
        assert!(b.status.is_some(), "the machine did not power off: {context}");
        assert!(!b.serial.contains("[kernel] panic"), "{context}");
        for line in [
            "root: virtio-blk exited with code 0",
            "root: fscheck exited with code ",
            "root: posixcheck exited with code ",
        ] {
            assert!(b.serial.contains(line), "no {line:?}: {context}");
        }
        if img == &reclen0 {
            b.expect_line("fscheck: list /: Ok(Error(Corrupt, \"/: the directory holds a damaged entry\")) FAILED");
            b.expect_line("root: fs-rump exited with code 0");
        } else {
            // Killed for not answering, killed by the CPU, or a refused
            // mount: each ends the server, never the system.
            assert!(b.serial.contains("root: fs-rump "), "{context}");
            assert!(!b.serial.contains("fscheck: 11/11 checks passed"), "{context}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file twice the rump kernel's memory limit (half of fs-rump's 64 MiB
/// heap) reads right through NetBSD's ext2fs: its page daemon frees the
/// page cache as it goes. (Without the limit the cache took the whole
/// heap and the kernel then waited for memory for ever.)
#[test]
#[cfg_attr(
    not(rump_kernel),
    ignore = "needs RUMP_SYSROOT naming a rump kernel built with buildrump.sh (static archives) when scripts/test runs: docs/porting.md"
)]
fn a_file_larger_than_the_rump_kernels_memory_reads_right() {
    const SIZE: usize = 64 << 20;
    let (dir, _) = tree("rump-big");
    let data = seeded_bytes(0x2545_f491_4f6c_dd1d, SIZE);
    std::fs::write(dir.join("tree/big.bin"), &data).unwrap();
    let img = dir.join("ext2.img");
    run(Command::new("mkfs.ext2").args(["-q", "-d"]).arg(dir.join("tree")).arg(&img).arg("96M"));
    let b = boot("rump-read.img", Duration::from_secs(300), &["--disk", img.to_str().unwrap()]);
    b.expect_line(&format!("readcheck: /big.bin: {SIZE} bytes, fnv1a64 {:016x}, ", fnv1a64(&data)));
    b.expect_line("root: fs-rump exited with code 0");
    assert_eq!(b.status, Some(0), "{}", b.serial);
    let _ = std::fs::remove_dir_all(&dir);
}
