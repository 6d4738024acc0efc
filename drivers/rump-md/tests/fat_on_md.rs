//! The worked example end to end, hosted: a FAT file system made by the
//! host's tools is written through the C driver (rumpuser hypercalls on
//! rumpglue) and read back by exo-fs-core, the file server's own code,
//! file by file.

use exo_rump_md::MdDisk;
use rumpglue::BlockDevice;
use std::process::Command;
use std::sync::Arc;

fn tool(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} not runnable ({e}): scripts/test installs dosfstools and mtools"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fat_image_served_through_the_driver() {
    let dir = std::env::temp_dir().join(format!("exo-md-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src/sub")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.join("src/sub/big.bin"), &big).unwrap();
    std::fs::write(dir.join("src/hello.txt"), b"hello through md\n").unwrap();
    let img = dir.join("fat.img");
    let img_s = img.to_str().unwrap();
    tool("truncate", &["-s", "8M", img_s]);
    tool("mkfs.vfat", &["-n", "MDTEST", img_s]);
    let s = |p: &str| dir.join(p).to_str().unwrap().to_string();
    tool("mcopy", &["-s", "-i", img_s, &s("src/hello.txt"), &s("src/sub"), "::/"]);
    let bytes = std::fs::read(&img).unwrap();

    let disk = Arc::new(MdDisk::attach(bytes.len() as u64).unwrap());
    for (i, chunk) in bytes.chunks(64 * 1024).enumerate() {
        disk.write_at((i * 64 * 1024) as u64, chunk).unwrap();
    }
    let before = disk.completed();

    let fs =
        exo_fs_core::backend::open(disk.clone(), None, Default::default(), rumpglue::host::host().clock, String::new())
            .unwrap();
    assert!(fs.info().fs.starts_with("fat"), "{:?}", fs.info());
    let mut names: Vec<String> = fs.read_dir("/").unwrap().into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, ["hello.txt", "sub"]);
    assert_eq!(fs.read("/hello.txt", 0, 100).unwrap(), b"hello through md\n");
    let mut got = Vec::new();
    while got.len() < big.len() {
        let part = fs.read("/sub/big.bin", got.len() as u64, 65536).unwrap();
        assert!(!part.is_empty());
        got.extend_from_slice(&part);
    }
    assert_eq!(got, big);
    assert!(disk.completed() > before, "the reads went through the driver's thread");

    // Several readers at once: the driver's queue and lock keep them apart.
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let disk = disk.clone();
            let want = bytes.clone();
            std::thread::spawn(move || {
                for k in 0..50u64 {
                    let off = (t * 977 + k * 4099) % (want.len() as u64 - 3000);
                    let mut b = vec![0u8; 3000];
                    disk.read_at(off, &mut b).unwrap();
                    assert_eq!(b, want[off as usize..off as usize + 3000]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
