//! `exo-img --isolation vm` against the default sandbox mode: on ext4, FAT
//! and GPT images made here, every listing, stat, byte, tree and
//! extraction in vm mode (ExoV6 in QEMU parses the image) equals sandbox
//! mode's; writes on FAT pass `fsck.fat -n`; seeded mutated images end in
//! time with a documented status.
//!
//! They need QEMU and the appliance (`scripts/build
//! exokernel/user/exo-img-vm.manifest` and `exo-img-vm-rw.manifest`), so a
//! plain `cargo test`, which runs before anything is built, skips them as
//! ignored; `scripts/test` builds the appliance and runs them with
//! `--ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{scratch, tool, xorshift, EXO_IMG};

const NEEDS: &str = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored";

fn exo(mode: &str, img: &Path, args: &[&str]) -> Output {
    Command::new(EXO_IMG).args(["--isolation", mode]).arg(img).args(args).output().expect("run exo-img")
}

/// Runs `args` in both modes: the same status, output and (but for the
/// server's own lines) errors.
fn same(img: &Path, args: &[&str]) -> Vec<u8> {
    let (vm, sandbox) = (exo("vm", img, args), exo("sandbox", img, args));
    let ctx = format!("exo-img {} {args:?}", img.display());
    assert_eq!(vm.status.code(), sandbox.status.code(), "{ctx}: {}", String::from_utf8_lossy(&vm.stderr));
    assert!(vm.stdout == sandbox.stdout, "{ctx}: vm mode printed\n{}", String::from_utf8_lossy(&vm.stdout));
    assert!(vm.status.success(), "{ctx}: {}", String::from_utf8_lossy(&vm.stderr));
    vm.stdout
}

/// The test's tree: nested directories, a Unicode name, an empty file and
/// a 1 MiB one of seeded bytes.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::write(root.join("a/b/c/deep.txt"), b"at the bottom\n").unwrap();
    std::fs::write(root.join("hello.txt"), b"hello from the test\n").unwrap();
    std::fs::write(root.join("ünïcödé.txt"), "unicode ✓\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let big: Vec<u8> = (0..1 << 20).map(|_| next() as u8).collect();
    std::fs::write(root.join("a/big.bin"), big).unwrap();
}

fn ext4_image(dir: &Path, src: &Path) -> PathBuf {
    let img = dir.join("ext4.img");
    tool("truncate", &["-s", "8M", img.to_str().unwrap()]);
    tool("mkfs.ext4", &["-q", "-L", "EXOVM", "-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    img
}

/// FAT32 (FAT12 with `small`) holding `src`.
fn fat_image(dir: &Path, name: &str, src: &Path, size: &str, fat32: bool) -> PathBuf {
    let img = dir.join(name);
    tool("truncate", &["-s", size, img.to_str().unwrap()]);
    let mut mkfs = vec!["-n", "EXOVM", img.to_str().unwrap()];
    if fat32 {
        mkfs.splice(0..0, ["-F", "32"]);
    }
    tool("mkfs.vfat", &mkfs);
    fill_fat(&img, 0, src);
    img
}

fn fill_fat(img: &Path, offset: u64, src: &Path) {
    let target = format!("{}@@{offset}", img.display());
    let items: Vec<String> =
        std::fs::read_dir(src).unwrap().map(|e| e.unwrap().path().to_str().unwrap().to_string()).collect();
    let mut args = vec!["-s", "-i", &target];
    args.extend(items.iter().map(String::as_str));
    args.push("::/");
    tool("mcopy", &args);
}

/// A GPT disk whose one partition holds a FAT file system with `src`.
fn gpt_image(dir: &Path, src: &Path) -> PathBuf {
    gpt_disk(dir, "gpt.img", &[(src, 69632, true)])
}

/// A GPT disk with a FAT partition for each `(tree, sectors, FAT32)`, one
/// after the other from sector 2048.
fn gpt_disk(dir: &Path, name: &str, parts: &[(&Path, u64, bool)]) -> PathBuf {
    let img = dir.join(name);
    let total: u64 = 2048 + parts.iter().map(|p| p.1).sum::<u64>() + 2048;
    tool("truncate", &["-s", &(total * 512).to_string(), img.to_str().unwrap()]);
    let mut script = String::new();
    let mut start = 2048;
    for (_, sectors, _) in parts {
        script.push_str(&format!("start={start}, size={sectors}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n"));
        start += sectors;
    }
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", "--label", "gpt", img.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk (scripts/test installs fdisk)");
    use std::io::Write;
    sfdisk.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    let mut start = 2048;
    for (i, (src, sectors, fat32)) in parts.iter().enumerate() {
        let part = dir.join(format!("part{i}.img"));
        tool("truncate", &["-s", &(sectors * 512).to_string(), part.to_str().unwrap()]);
        let mut mkfs = vec!["-n", "EXOVM", part.to_str().unwrap()];
        if *fat32 {
            mkfs.splice(0..0, ["-F", "32"]);
        }
        tool("mkfs.vfat", &mkfs);
        fill_fat(&part, 0, src);
        std::os::unix::fs::FileExt::write_all_at(&f, &std::fs::read(&part).unwrap(), start * 512).unwrap();
        start += sectors;
    }
    img
}

/// Everything a reader sees, in both modes: the recursive listing, the
/// tree, each entry's stat and each file's bytes, `info` but for the
/// confinement it reports, and an extraction.
fn compare_modes(dir: &Path, img: &Path) {
    let listing = String::from_utf8(same(img, &["--json", "ls", "-R", "/"])).unwrap();
    same(img, &["ls", "-l", "-R", "/"]);
    same(img, &["tree", "/"]);
    let paths: Vec<String> = listing
        .lines()
        .map(|l| l.split("\"path\":\"").nth(1).unwrap().split('"').next().unwrap().to_string())
        .collect();
    assert!(paths.len() >= 8, "{listing}");
    for p in &paths {
        let stat = String::from_utf8(same(img, &["--json", "stat", p])).unwrap();
        if stat.contains("\"kind\":\"file\"") {
            same(img, &["cat", p]);
        }
    }
    let info = |mode: &str| {
        let o = exo(mode, img, &["info"]);
        assert!(o.status.success(), "info: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let (vm, sandbox) = (info("vm"), info("sandbox"));
    let without = |s: &str| s.lines().filter(|l| !l.starts_with("sandbox:")).collect::<Vec<_>>().join("\n");
    assert_eq!(without(&vm), without(&sandbox), "info differs");
    assert!(["TCG", "KVM"].iter().any(|a| vm.contains(&format!("sandbox:     QEMU VM ({a}, no network"))), "{vm}");
    let (a, b) = (dir.join("out-vm"), dir.join("out-sandbox"));
    for (mode, out) in [("vm", &a), ("sandbox", &b)] {
        let o = exo(mode, img, &["extract", "/", out.to_str().unwrap()]);
        assert!(o.status.success(), "extract in {mode} mode: {}", String::from_utf8_lossy(&o.stderr));
    }
    let diff = Command::new("diff").arg("-r").arg(&a).arg(&b).output().expect("diff");
    assert!(diff.status.success(), "the extractions differ: {}", String::from_utf8_lossy(&diff.stdout));
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

#[test]
#[ignore = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored"]
fn vm_mode_reads_ext4_fat_and_gpt_images_as_sandbox_mode_does() {
    let _ = NEEDS;
    let d = scratch("vm-read");
    let src = d.join("src");
    make_tree(&src);
    compare_modes(&d, &ext4_image(&d, &src));
    compare_modes(&d, &fat_image(&d, "fat.img", &src, "40M", true));
    compare_modes(&d, &gpt_image(&d, &src));
    // The first answer comes within a second or so even under TCG.
    let img = d.join("ext4.img");
    let start = Instant::now();
    let o = exo("vm", &img, &["cat", "/hello.txt"]);
    assert_eq!(o.stdout, b"hello from the test\n");
    eprintln!("vm mode: first answer in {:?}", start.elapsed());
}

#[test]
#[ignore = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored"]
fn vm_mode_changes_a_fat_image_that_fsck_accepts() {
    let d = scratch("vm-rw");
    let src = d.join("src");
    make_tree(&src);
    let img = fat_image(&d, "fat.img", &src, "8M", false);
    let local = d.join("local.txt");
    std::fs::write(&local, b"written through the appliance\n").unwrap();
    let rw = |args: &[&str]| {
        let o =
            Command::new(EXO_IMG).args(["--isolation", "vm", "--rw"]).arg(&img).args(args).output().expect("exo-img");
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    rw(&["put", local.to_str().unwrap(), "/new.txt"]);
    rw(&["mkdir", "/made"]);
    rw(&["mv", "/hello.txt", "/made/hello.txt"]);
    rw(&["rm", "/empty"]);
    // Read back in sandbox mode, and by the host's own tools.
    assert_eq!(exo("sandbox", &img, &["cat", "/new.txt"]).stdout, b"written through the appliance\n");
    assert_eq!(exo("sandbox", &img, &["cat", "/made/hello.txt"]).stdout, b"hello from the test\n");
    assert!(!exo("sandbox", &img, &["stat", "/empty"]).status.success(), "/empty is still there");
    let mtype = Command::new("mtype").args(["-i", img.to_str().unwrap(), "::/new.txt"]).output().expect("mtype");
    assert_eq!(mtype.stdout, b"written through the appliance\n");
    let fsck = Command::new("fsck.fat").arg("-n").arg(&img).output().expect("fsck.fat");
    assert!(
        fsck.status.success(),
        "fsck.fat: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    // Without --rw the appliance's disk is read-only.
    let o = exo("vm", &img, &["mkdir", "/no"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Seeded mutations of ext4 and FAT images: in vm mode each run ends
/// within its timeout and a margin (booting and stopping QEMU), with a
/// documented status (0, 1, 3 or 4; a dead or hung appliance is 4), and
/// leaves the image as it was.
#[test]
#[ignore = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored"]
fn vm_mode_survives_mutated_images() {
    let d = scratch("vm-mutate");
    let src = d.join("src");
    make_tree(&src);
    let pristine = [ext4_image(&d, &src), fat_image(&d, "fat.img", &src, "8M", false)];
    let mut next = xorshift(0x2545_f491_4f6c_dd1du64 ^ 2026);
    let mut codes = [0usize; 5];
    for round in 0..100 {
        let from = &pristine[round % 2];
        let img = d.join(format!("mutant-{round}.img"));
        let mut bytes = std::fs::read(from).unwrap();
        let hot = bytes.len().min(256 << 10);
        for _ in 0..1 + next() % 16 {
            let at = (next() as usize) % hot;
            bytes[at] = next() as u8;
        }
        std::fs::write(&img, &bytes).unwrap();
        let args: &[&str] = if round % 4 < 2 { &["ls", "-R", "/"] } else { &["cat", "/a/b/c/deep.txt"] };
        let start = Instant::now();
        let o = Command::new(EXO_IMG)
            .args(["--isolation", "vm", "--timeout", "5"])
            .arg(&img)
            .args(args)
            .stdout(std::process::Stdio::null())
            .output()
            .expect("exo-img");
        let took = start.elapsed();
        let ctx = format!("round {round}: {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(took < Duration::from_secs(5 + 15), "{ctx}: took {took:?}");
        let code = o.status.code().unwrap_or_else(|| panic!("{ctx}: killed by a signal"));
        assert!(matches!(code, 0 | 1 | 3 | 4), "{ctx}: exit {code}");
        codes[code as usize] += 1;
        assert_eq!(std::fs::read(&img).unwrap(), bytes, "{ctx}: the image changed");
        std::fs::remove_file(&img).unwrap();
    }
    eprintln!("vm mode on 100 mutated images: exit 0: {}, 1: {}, 3: {}, 4: {}", codes[0], codes[1], codes[3], codes[4]);
}

/// `mount` through FUSE works in vm mode as in sandbox mode: the host
/// reads the same tree through the mount point, writes are refused, and
/// unmounting ends the appliance and the command with status 0.
#[test]
#[ignore = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored"]
fn vm_mode_mounts_an_image_through_fuse() {
    assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: FUSE mounts cannot be tested here");
    let dir = scratch("vm-fuse");
    let src = dir.join("src");
    make_tree(&src);
    let img = ext4_image(&dir, &src);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut child = Command::new(EXO_IMG)
        .args(["--isolation", "vm", img.to_str().unwrap(), "mount", mnt.to_str().unwrap()])
        .spawn()
        .expect("run exo-img");
    let start = Instant::now();
    while !mnt.join("hello.txt").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the mount did not appear in 60 s");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exo-img --isolation vm mount ended early: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = common::host_view(&mnt);
    let write = std::fs::write(mnt.join("new"), b"x");
    let unmounted = Command::new("fusermount3").args(["-u", mnt.to_str().unwrap()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(unmounted.success(), "fusermount3 -u failed");
    assert!(status.success(), "exo-img --isolation vm mount ended with {status:?}");
    let mut want = common::host_view(&src);
    want.insert("/lost+found".into(), None);
    assert_eq!(seen, want, "the mounted tree differs from the source");
    assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS), "a write was not refused as EROFS");
}

/// `--partition` and `--codepage` reach the appliance's file server (on
/// the kernel command line) and choose as in sandbox mode: the second
/// partition of a GPT disk, its FAT short name with byte 0x9B read as
/// `¢` in code page 437 and as `ø` in 850; a partition that is not there
/// fails alike in both modes.
#[test]
#[ignore = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored"]
fn vm_mode_takes_the_partition_and_code_page_asked_for() {
    let dir = scratch("vm-volume");
    let (first, second) = (dir.join("first"), dir.join("second"));
    make_tree(&first);
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("second.txt"), b"on the second partition\n").unwrap();
    std::fs::write(second.join("COSTX.TXT"), b"a short name only\n").unwrap();
    let img = gpt_disk(&dir, "two.img", &[(&first, 69632, true), (&second, 32768, false)]);
    // The short name's fifth byte becomes 0x9B, in the image itself.
    let mut bytes = std::fs::read(&img).unwrap();
    let at = bytes.windows(11).position(|w| w == b"COSTX   TXT").expect("the short name in the image");
    bytes[at + 4] = 0x9b;
    std::fs::write(&img, bytes).unwrap();
    let second_ls = String::from_utf8(same(&img, &["--partition", "2", "ls", "-l", "-R", "/"])).unwrap();
    assert!(second_ls.contains("second.txt") && second_ls.contains("COST¢.TXT"), "{second_ls}");
    same(&img, &["--partition", "2", "cat", "/second.txt"]);
    let first_ls = String::from_utf8(same(&img, &["--partition", "1", "ls", "-R", "/"])).unwrap();
    assert!(first_ls.contains("big.bin") && !first_ls.contains("second.txt"), "{first_ls}");
    let cp850 = String::from_utf8(same(&img, &["--partition", "2", "--codepage", "850", "ls", "/"])).unwrap();
    assert!(cp850.contains("COSTø.TXT"), "{cp850}");
    same(&img, &["--partition", "2", "--codepage", "850", "cat", "/COSTø.TXT"]);
    let (vm, sandbox) =
        (exo("vm", &img, &["--partition", "3", "ls", "/"]), exo("sandbox", &img, &["--partition", "3", "ls", "/"]));
    assert!(!sandbox.status.success(), "partition 3 of 2 listed in sandbox mode");
    assert_eq!(vm.status.code(), sandbox.status.code(), "vm mode: {}", String::from_utf8_lossy(&vm.stderr));
}

/// `--backend netbsd` in vm mode: NetBSD's ext2fs, in a rump kernel
/// process inside the appliance (`exo-img-vm-netbsd.manifest`, which
/// scripts/test builds when RUMP_SYSROOT names a rump kernel), reads every
/// file of the host's tree; NetBSD's msdosfs reads the partition asked
/// for.
#[cfg(rump_appliance)]
#[test]
#[ignore = "needs QEMU and the ExoV6 appliance: scripts/test builds it and runs these with --ignored"]
fn vm_mode_serves_images_with_netbsd_file_systems() {
    let dir = scratch("vm-netbsd");
    let src = dir.join("src");
    make_tree(&src);
    let img = dir.join("ext2.img");
    tool("truncate", &["-s", "16M", img.to_str().unwrap()]);
    tool("mkfs.ext2", &["-q", "-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    let netbsd = |img: &Path, args: &[&str]| {
        let o = exo("vm", img, &[&["--backend", "netbsd"], args].concat());
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let info = String::from_utf8(netbsd(&img, &["info"])).unwrap();
    assert!(info.contains("NetBSD rump kernel") && info.contains("QEMU VM"), "{info}");
    let listing = String::from_utf8(netbsd(&img, &["ls", "-R", "/"])).unwrap();
    for (path, content) in common::host_view(&src) {
        let name = path.rsplit('/').next().unwrap();
        assert!(listing.contains(name), "{name} not listed:\n{listing}");
        if let Some(bytes) = content {
            assert!(netbsd(&img, &["cat", &path]) == bytes, "{path}: other bytes");
        }
    }
    let second = dir.join("second");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("second.txt"), b"on the second partition\n").unwrap();
    let gpt = gpt_disk(&dir, "two.img", &[(&src, 69632, true), (&second, 32768, false)]);
    // (NetBSD's msdosfs shows the 8.3 names mtools wrote for these.)
    let root = String::from_utf8(netbsd(&gpt, &["--partition", "2", "ls", "/"])).unwrap().to_lowercase();
    assert!(root.contains("second.txt") && !root.contains("hello.txt"), "{root}");
}
