//! Driver tests: the drivers image (exokernel/qemu-tests/manifests/drivers.manifest)
//! runs the virtio-blk driver as a user process against a disk image made
//! here, with content the test knows, and a client of its block service.

use exo_qemu_tests::{boot, fnv1a64};
use std::time::Duration;

/// FNV-1a, 64 bits, as the driver computes it.
/// A 3 MiB disk: a text line, then bytes from a simple generator (seeded,
/// so a failure is reproducible), different in every sector.
fn make_disk(path: &std::path::Path) -> Vec<u8> {
    let mut data = b"ExoV6 virtio-blk test disk\n".to_vec();
    let mut x: u32 = 0x2545_f491;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    std::fs::write(path, &data).expect("write the disk image");
    data
}

/// The driver, holding only its PCI function, its registers and DMA
/// memory, brings the device up with virtio-drivers, routes its MSI-X
/// interrupt to a notification (a vector from the kernel), and reads 256
/// sectors through bounce buffers, sleeping until each completion's
/// interrupt (a lost interrupt would hang it, and the test would time
/// out): the capacity, the first line and the hash of
/// what it read all match the image. Then it serves the block protocol:
/// `blkcheck` attaches a buffer, reads the same sectors through it (same
/// hash), writes a sector and reads it back, gets precise answers to bad
/// requests, and detaches; the driver stops after its one client.
#[test]
fn virtio_blk_driver_reads_the_disk_and_serves_it_over_ipc() {
    let dir = std::env::temp_dir().join(format!("exo-drivers-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.raw");
    let data = make_disk(&disk);
    let b = boot("drivers.img", Duration::from_secs(120), &["--disk", disk.to_str().unwrap()]);
    let hash = format!("{:016x}", fnv1a64(&data[..256 * 512]));
    b.expect_in_order(&[
        "root: virtio-blk drives virtio-blk at 00:02.0",
        "virtio-blk: 00:02.0: interrupts: MSI-X entry 0, vector 0x40, signalled on a notification",
        "virtio-blk: 00:02.0: 6144 sectors of 512 bytes (3072 KiB)",
        "virtio-blk: sector 0 begins \"ExoV6 virtio-blk test disk\"",
        &format!("virtio-blk: fnv1a64 of sectors 0..256: {hash}"),
        "virtio-blk: 8 requests, ",
        "virtio-blk: serving the block protocol",
    ]);
    // The device's interrupts reached the driver: it slept on the
    // notification, or (when QEMU completed a request before the driver
    // looked, as on a busy host) found the bits they left.
    b.expect_line("virtio-blk: interrupts delivered: true");
    for check in [
        "read before attach: Some(NotAttached)".to_string(),
        "attach: Some(Ok): disk of 6144 sectors, buffer of 65536 bytes".to_string(),
        format!("read: fnv1a64 of sectors 0..256 through the driver: {hash}"),
        "write and read back: sector 100: Some(Ok), Some(Ok)".to_string(),
        "bad requests: past the end Some(OutOfRange), over the buffer Some(TooLarge), no sectors Some(BadRequest), unknown Ok(Some(BadRequest))".to_string(),
        "detach: Some(Ok)".to_string(),
    ] {
        let i = b.expect_line(&format!("blkcheck: {check}"));
        assert!(b.lines()[i].ends_with(" ok"), "{}\n{}", b.lines()[i], b.serial);
    }
    b.expect_in_order(&["virtio-blk: 1 client(s) served (12 requests, ", "root: all 2 programs ended as expected"]);
    // The disk was opened with snapshot=on: the write stayed in QEMU.
    assert_eq!(std::fs::read(&disk).ok().as_deref(), Some(&data[..]), "the image changed");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(b.status, Some(0), "{}", b.serial);
}

/// NetBSD's PCI hypercalls (`rumpcomp_pci_*`) on ExoV6: a bus scan finds
/// exactly the one function the manifest gave the process, its memory BARs
/// map, DMA memory's physical addresses are found again, its I/O BAR opens
/// to `in`/`out` (the I/O permission bitmap), interrupts map to the
/// process's own function only, and an established one runs its handler
/// when the device, given one read request through a legacy virtio queue,
/// raises its INTx line.
#[test]
fn netbsd_pci_hypercalls_see_only_the_granted_function() {
    let b = boot("rumpcomp-pci.img", Duration::from_secs(60), &[]);
    b.expect_in_order(&[
        "root: rumpconf drives virtio-blk at 00:02.0",
        "rumpuser: rumpcomp_pci_irq_establish (cookie 8): never mapped",
        "rumpconf: rumpcomp_pci: ok",
        "root: all 1 programs ended as expected",
    ]);
    assert_eq!(b.status, Some(0), "{}", b.serial);
}
