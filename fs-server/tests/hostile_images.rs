//! Hostile images, built at test time (mkfs.ext4 -d and debugfs -w for
//! ext4; mkfs.vfat, mcopy and byte patches for FAT), through `exo-img`:
//! extraction never creates or writes anything outside its destination
//! (symlink chains, links already there), unwritten extents read as
//! zeros (never a deleted file's bytes), output is bounded (directory
//! cycles are entered once, `--max-output`), and FAT chains that loop or
//! are shared fail for their own files while the rest is extracted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{debugfs_script, exo, scratch, stderr, tool};

/// An ext4 image (4 KiB blocks) of the tree `fill` makes, then changed by
/// the debugfs commands `cmds` (see [`debugfs`]).
fn ext4(dir: &Path, size: &str, fill: impl FnOnce(&Path), cmds: &[&str]) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    fill(&src);
    let img = dir.join("ext4.img");
    tool("truncate", &["-s", size, img.to_str().unwrap()]);
    tool("mkfs.ext4", &["-q", "-b", "4096", "-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    debugfs(&img, cmds);
    img
}

/// Runs `debugfs -w` commands on `img` (symlinks with any target, hard
/// links to directories, fallocate, inode fields, journal transactions).
fn debugfs(img: &Path, cmds: &[&str]) {
    debugfs_script(img, true, cmds);
}

/// A destination inside a box that also holds a sentinel file: the box
/// must end holding the destination and the untouched sentinel only.
struct Boxed {
    root: PathBuf,
    dest: PathBuf,
}

const SENTINEL: &[u8] = b"nothing may touch this\n";

impl Boxed {
    fn new(dir: &Path) -> Boxed {
        let root = dir.join("box");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("sentinel"), SENTINEL).unwrap();
        Boxed { dest: root.join("out"), root }
    }

    fn dest(&self) -> &str {
        self.dest.to_str().unwrap()
    }

    /// Everything under the destination resolves inside it, and nothing
    /// beside it was created or changed.
    fn assert_contained(&self) {
        let mut beside: Vec<String> =
            std::fs::read_dir(&self.root).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        beside.sort();
        assert!(beside == ["out", "sentinel"] || beside == ["sentinel"], "created beside the destination: {beside:?}");
        assert_eq!(std::fs::read(self.root.join("sentinel")).unwrap(), SENTINEL, "the sentinel changed");
        if !self.dest.exists() {
            return;
        }
        let top = std::fs::canonicalize(&self.dest).unwrap();
        fn walk(top: &Path, dir: &Path) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                // Where the name itself lives, and where it leads.
                let parent = std::fs::canonicalize(p.parent().unwrap()).unwrap();
                assert!(parent.starts_with(top), "{} lives outside", p.display());
                if let Ok(to) = std::fs::canonicalize(&p) {
                    assert!(to.starts_with(top), "{} -> {} leads outside", p.display(), to.display());
                }
                if m.is_dir() {
                    walk(top, &p);
                }
            }
        }
        walk(&top, &self.dest);
    }
}

/// Every path under `root` (relative) -> symlink target, `/` for a
/// directory, or the file's size.
fn tree_of(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                out.insert(rel, "/".into());
                walk(root, &p, out);
            } else {
                out.insert(rel, m.len().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn symlink_chains_never_lead_out_of_the_destination() {
    let d = scratch("links");
    let img = ext4(
        &d,
        "16M",
        |src| {
            std::fs::create_dir_all(src.join("dir/sub")).unwrap();
            std::fs::write(src.join("dir/sub/f"), b"inside\n").unwrap();
        },
        &[
            // The tester's chains, and variants decided in either order.
            "symlink dot .",
            "symlink esc dot/..",
            "symlink dir/up ..",
            "symlink esc2 dir/up/..",
            "symlink a1 z9/..",
            "symlink z9 .",
            "symlink dir/sub/deep ../..",
            "symlink esc3 dir/sub/deep/..",
            "symlink esc4 dir/sub/deep/dir/sub/deep/../x",
            // Through a chain of links, to the root and beyond.
            "symlink c1 c2",
            "symlink c2 c3",
            "symlink c3 ./dir/..",
            "symlink c4 c1/..",
            // Plain escapes.
            "symlink abs /etc/passwd",
            "symlink up ..",
            "symlink dir/up2 ../..",
            // Loops.
            "symlink l1 l2/x",
            "symlink l2 l1/x",
            "symlink me me",
            // Harmless: inside, through other links, or dangling inside.
            "symlink good dir/sub/f",
            "symlink dir/good2 ../good",
            "symlink dir/sub/good3 ../../dir/./sub/f",
            "symlink dangling no/such/place",
        ],
    );
    let b = Boxed::new(&d);
    let o = exo(&[img.to_str().unwrap(), "extract", "/", b.dest()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    b.assert_contained();
    for refused in ["/esc ", "/esc2 ", "/a1 ", "/esc3 ", "/esc4 ", "/c4 ", "/abs ", "/up ", "/dir/up2 "] {
        assert!(err.contains(&format!("refusing symlink {refused}")), "{refused} not refused: {err}");
    }
    let t = tree_of(&b.dest);
    for (link, target) in [
        ("dot", "."),
        ("dir/up", ".."),
        ("z9", "."),
        ("dir/sub/deep", "../.."),
        ("c3", "./dir/.."),
        ("good", "dir/sub/f"),
        ("dir/good2", "../good"),
        ("dir/sub/good3", "../../dir/./sub/f"),
        ("dangling", "no/such/place"),
    ] {
        assert_eq!(t.get(link).map(String::as_str), Some(format!("-> {target}").as_str()), "{link}: {t:?}");
    }
    for gone in ["esc", "esc2", "a1", "esc3", "esc4", "c4", "abs", "up", "dir/up2"] {
        assert!(!t.contains_key(gone), "{gone} was created: {t:?}");
    }
    assert_eq!(std::fs::read(b.dest.join("dir/good2")).unwrap(), b"inside\n");
    // Of the loops, at most one link of each stays, pointing at nothing.
    assert!(!(t.contains_key("l1") && t.contains_key("l2")), "{t:?}");
    assert!(!t.contains_key("me"), "{t:?}");

    // A destination that already holds links: never written through,
    // whether they lead to a directory or nowhere yet.
    let victim = d.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let pre = d.join("pre");
    std::fs::create_dir_all(&pre).unwrap();
    std::os::unix::fs::symlink(&victim, pre.join("dir")).unwrap();
    std::os::unix::fs::symlink(victim.join("f"), pre.join("f")).unwrap();
    let o = exo(&[img.to_str().unwrap(), "extract", "/", pre.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("File exists"), "{}", stderr(&o));
    let o = exo(&[img.to_str().unwrap(), "extract", "/dir/sub/f", pre.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "written through a link: {}", stderr(&o));
}

/// `n` bytes of `byte`.
fn fill(byte: u8, n: usize) -> Vec<u8> {
    vec![byte; n]
}

#[test]
fn unwritten_extents_read_as_zeros_never_old_data() {
    const B: usize = 4096;
    let d = scratch("unwritten");
    let secret: Vec<u8> = b"TOP-SECRET ".iter().copied().cycle().take(24 * B).collect();
    let img = ext4(
        &d,
        "16M",
        |src| {
            std::fs::write(src.join("secret"), &secret).unwrap();
            std::fs::write(src.join("mid"), fill(b'B', 6 * B)).unwrap();
            std::fs::write(src.join("frag"), fill(b'C', 40 * B)).unwrap();
            std::fs::write(src.join("plain"), b"plain\n").unwrap();
        },
        &[
            // A file fallocated over the deleted secret's blocks.
            "rm /secret",
            "write /dev/null /fallocated",
            "fallocate /fallocated 0 23",
            &format!("sif /fallocated size {}", 24 * B - 100),
            // Unwritten blocks in the middle, over their old bytes.
            "punch /mid 2 3",
            "fallocate /mid 2 3",
            // Every other block unwritten: an extent tree one level deep
            // (its blocks checksummed).
            &(1..40).step_by(2).map(|i| format!("punch /frag {i} {i}")).collect::<Vec<_>>().join("\n"),
            &(1..40).step_by(2).map(|i| format!("fallocate /frag {i} {i}")).collect::<Vec<_>>().join("\n"),
        ],
    );
    // The crafted layout is what the test means (ext4 agrees: clean).
    let ex = Command::new("debugfs").args(["-R", "ex /fallocated", img.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&ex.stdout).contains("Uninit"), "{}", String::from_utf8_lossy(&ex.stdout));
    tool("e2fsck", &["-fn", img.to_str().unwrap()]);
    let mut mid = fill(b'B', 6 * B);
    mid[2 * B..4 * B].fill(0);
    let frag: Vec<u8> = (0..40).flat_map(|i| fill(if i % 2 == 0 { b'C' } else { 0 }, B)).collect();
    let want = [("fallocated", fill(0, 24 * B - 100)), ("mid", mid), ("frag", frag), ("plain", b"plain\n".to_vec())];
    let i = img.to_str().unwrap();
    for (name, bytes) in &want {
        let o = exo(&[i, "cat", &format!("/{name}")]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(o.stdout == *bytes, "cat /{name}: not the bytes written (old data shows through)");
        let o = exo(&[i, "--json", "stat", &format!("/{name}")]);
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("\"size\":{}", bytes.len())));
    }
    let b = Boxed::new(&d);
    let o = exo(&[i, "extract", "/", b.dest()]);
    assert!(o.status.success(), "{}", stderr(&o));
    b.assert_contained();
    for (name, bytes) in &want {
        let got = std::fs::read(b.dest.join(name)).unwrap();
        assert!(got == *bytes, "extracted {name}: not the bytes written");
        assert!(!got.windows(10).any(|w| w == b"TOP-SECRET"), "{name} holds the deleted secret");
    }
}

#[test]
fn directory_cycles_are_entered_once_everywhere() {
    let d = scratch("cycles");
    let img = ext4(
        &d,
        "16M",
        |src| {
            std::fs::create_dir_all(src.join("dir/sub")).unwrap();
            std::fs::write(src.join("dir/sub/f"), b"f\n").unwrap();
            std::fs::write(src.join("top"), b"top\n").unwrap();
        },
        &["link /dir /dir/sub/loop", "link / /dir/root", "link /dir/sub /again", "link /dir/sub /dir/sub/self"],
    );
    let i = img.to_str().unwrap();
    for args in [&["ls", "-R", "/"][..], &["--json", "ls", "-R", "/"], &["tree", "/"], &["ls", "-R", "/dir"]] {
        let o = exo(&[&[i][..], args].concat());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("directory cycle or hard link"), "{args:?}: {err}");
        assert!(o.stdout.len() < 4096, "{args:?}: {} bytes of listing", o.stdout.len());
    }
    let b = Boxed::new(&d);
    let o = exo(&[i, "extract", "/", b.dest()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    b.assert_contained();
    let t = tree_of(&b.dest);
    // Each directory once: where it was met first.
    let dirs: Vec<&String> = t.iter().filter(|(_, v)| *v == "/").map(|(k, _)| k).collect();
    assert!(dirs.len() <= 4, "{t:?}");
    assert_eq!(t.values().filter(|v| *v == "2").count(), 1, "dir/sub/f extracted more than once: {t:?}");
    assert_eq!(std::fs::read(b.dest.join("top")).unwrap(), b"top\n");
}

/// FAT geometry, read from the boot sector the way `mkfs.vfat` wrote it.
struct FatGeo {
    fat: usize,
    fat_len: usize,
    fats: usize,
    root: usize,
    data: usize,
    cluster: usize,
}

fn le16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn geo(img: &[u8]) -> FatGeo {
    let bps = le16(img, 11);
    let (reserved, fats, entries, fat_sectors) = (le16(img, 14), img[16] as usize, le16(img, 17), le16(img, 22));
    assert!(fat_sectors > 0, "a FAT16 image");
    let root = (reserved + fats * fat_sectors) * bps;
    FatGeo {
        fat: reserved * bps,
        fat_len: fat_sectors * bps,
        fats,
        root,
        data: root + entries * 32,
        cluster: bps * img[13] as usize,
    }
}

impl FatGeo {
    fn offset(&self, c: usize) -> usize {
        self.data + (c - 2) * self.cluster
    }
    fn next(&self, img: &[u8], c: usize) -> usize {
        le16(img, self.fat + 2 * c)
    }
    fn set_next(&self, img: &mut [u8], c: usize, v: usize) {
        for k in 0..self.fats {
            let at = self.fat + k * self.fat_len + 2 * c;
            img[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
        }
    }
    /// The offset of the entry named `name` (11 bytes, padded) in the
    /// directory at `dir` (root: `None`).
    fn entry(&self, img: &[u8], dir: Option<usize>, name: &[u8; 11]) -> usize {
        let (start, len) = match dir {
            None => (self.root, self.data - self.root),
            Some(c) => (self.offset(c), self.cluster),
        };
        (start..start + len).step_by(32).find(|&at| &img[at..at + 11] == name).expect("entry")
    }
    /// The first free entry slot in the directory at cluster `dir`.
    fn free_slot(&self, img: &[u8], dir: usize) -> usize {
        (self.offset(dir)..self.offset(dir) + self.cluster).step_by(32).find(|&at| img[at] == 0).expect("room")
    }
}

fn cluster_of(img: &[u8], entry: usize) -> usize {
    le16(img, entry + 26)
}

fn set_cluster(img: &mut [u8], entry: usize, c: usize) {
    img[entry + 26..entry + 28].copy_from_slice(&(c as u16).to_le_bytes());
}

fn set_size(img: &mut [u8], entry: usize, size: u32) {
    img[entry + 28..entry + 32].copy_from_slice(&size.to_le_bytes());
}

/// Adds a subdirectory entry `name` pointing at cluster `to` to the
/// directory at cluster `dir`.
fn add_dir_entry(g: &FatGeo, img: &mut [u8], dir: usize, name: &[u8; 11], to: usize) {
    let at = g.free_slot(img, dir);
    img[at..at + 32].fill(0);
    img[at..at + 11].copy_from_slice(name);
    img[at + 11] = 0x10;
    set_cluster(img, at, to);
}

/// A FAT16 image of `files` (name, bytes; `/` makes directories), made
/// by mkfs.vfat and mcopy.
fn fat16(dir: &Path, files: &[(&str, Vec<u8>)]) -> (PathBuf, Vec<u8>) {
    let src = dir.join("fatsrc");
    for (name, bytes) in files {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let img = dir.join("fat.img");
    tool("truncate", &["-s", "16M", img.to_str().unwrap()]);
    tool("mkfs.vfat", &["-F", "16", "-s", "4", "-n", "HOSTILE", img.to_str().unwrap()]);
    let items: Vec<String> =
        std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path().to_str().unwrap().to_string()).collect();
    let mut args = vec!["-s", "-i", img.to_str().unwrap()];
    args.extend(items.iter().map(String::as_str));
    args.push("::/");
    tool("mcopy", &args);
    let bytes = std::fs::read(&img).unwrap();
    (img, bytes)
}

#[test]
fn fat_loops_and_cross_links_fail_their_files_only() {
    let d = scratch("fatchains");
    let c = 2048; // bytes per cluster (-s 4)
    let pattern = |k: u8, n: usize| -> Vec<u8> { (0..n).map(|i| k.wrapping_add((i / 7) as u8)).collect() };
    let (img, mut b) = fat16(
        &d,
        &[
            ("GOOD.TXT", pattern(1, 5000)),
            ("LOOP.BIN", pattern(2, 2 * c)),
            ("A.BIN", pattern(3, 2 * c)),
            ("B.BIN", pattern(4, 2 * c)),
            ("C.BIN", pattern(5, 2 * c)),
            ("D.BIN", pattern(6, 2 * c)),
            ("BIGLOOP.BIN", pattern(7, 40 * c)),
            ("SUB/INNER.TXT", pattern(8, 3000)),
            ("BADDIR/X.TXT", pattern(9, 100)),
            ("HUGELOOP.BIN", pattern(10, 2 * c)),
            ("SMALOOP.TXT", pattern(11, 2 * c)),
        ],
    );
    let g = geo(&b);
    // BADDIR: a directory whose one cluster leads to itself (fatfs would
    // list it forever): what comes before the loop is listed.
    let bad = cluster_of(&b, g.entry(&b, None, b"BADDIR     "));
    g.set_next(&mut b, bad, bad);
    // LOOP.BIN: its second cluster leads back to its first; it claims 5.
    let e = g.entry(&b, None, b"LOOP    BIN");
    let l1 = cluster_of(&b, e);
    let l2 = g.next(&b, l1);
    g.set_next(&mut b, l2, l1);
    set_size(&mut b, e, 5 * c as u32);
    // HUGELOOP.BIN and SMALOOP.TXT: loops that claim 3 GiB (far past the
    // output bound) and 40 KiB (a file read many per round trip).
    for (name, size) in [(b"HUGELOOPBIN", 3u32 << 30), (b"SMALOOP TXT", 20 * c as u32)] {
        let e = g.entry(&b, None, name);
        let first = cluster_of(&b, e);
        let second = g.next(&b, first);
        g.set_next(&mut b, second, first);
        set_size(&mut b, e, size);
    }
    // BIGLOOP.BIN: a large file (read ahead in a pipeline) whose last
    // cluster leads back into its middle.
    let e = g.entry(&b, None, b"BIGLOOP BIN");
    let mut chain = vec![cluster_of(&b, e)];
    while chain.len() < 40 {
        chain.push(g.next(&b, *chain.last().unwrap()));
    }
    g.set_next(&mut b, chain[39], chain[20]);
    set_size(&mut b, e, 60 * c as u32);
    // B.BIN starts where A.BIN does: two files, one chain.
    let a = g.entry(&b, None, b"A       BIN");
    let a1 = cluster_of(&b, a);
    let e = g.entry(&b, None, b"B       BIN");
    set_cluster(&mut b, e, a1);
    // C.BIN's chain runs on into D.BIN's.
    let e = g.entry(&b, None, b"C       BIN");
    let c2 = g.next(&b, cluster_of(&b, e));
    let d1 = cluster_of(&b, g.entry(&b, None, b"D       BIN"));
    g.set_next(&mut b, c2, d1);
    set_size(&mut b, e, 4 * c as u32);
    std::fs::write(&img, &b).unwrap();

    let i = img.to_str().unwrap();
    for (name, why) in [
        ("/LOOP.BIN", "loops"),
        ("/BIGLOOP.BIN", "loops"),
        ("/HUGELOOP.BIN", "loops"),
        ("/SMALOOP.TXT", "loops"),
        ("/A.BIN", "cross-linked"),
        ("/B.BIN", "cross-linked"),
        ("/C.BIN", "cross-linked"),
        ("/D.BIN", "cross-linked"),
    ] {
        let o = exo(&[i, "cat", name]);
        assert_ne!(o.status.code(), Some(0), "{name} read whole");
        assert!(stderr(&o).contains(why), "{name}: {}", stderr(&o));
    }
    let o = exo(&[i, "ls", "/BADDIR"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("/BADDIR/") && stderr(&o).contains("loops"), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("X.TXT"), "{}", stderr(&o));
    assert_eq!(exo(&[i, "cat", "/GOOD.TXT"]).stdout, pattern(1, 5000));
    let bx = Boxed::new(&d);
    let o = exo(&[i, "extract", "/", bx.dest()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    bx.assert_contained();
    for name in ["/LOOP.BIN", "/BIGLOOP.BIN", "/HUGELOOP.BIN", "/SMALOOP.TXT"] {
        assert!(err.contains(&format!("{name}: the cluster chain")), "{name}: {err}");
    }
    assert!(err.contains("9 entries") && !err.contains("--max-output"), "{err}");
    let t = tree_of(&bx.dest);
    let mut names: Vec<&str> = t.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["BADDIR", "BADDIR/X.TXT", "GOOD.TXT", "SUB", "SUB/INNER.TXT"], "{err}");
    assert_eq!(std::fs::read(bx.dest.join("GOOD.TXT")).unwrap(), pattern(1, 5000));
    assert_eq!(std::fs::read(bx.dest.join("SUB/INNER.TXT")).unwrap(), pattern(8, 3000));
}

#[test]
fn fat_directory_cycles_are_entered_once() {
    let d = scratch("fatcycles");
    let (img, mut b) = fat16(&d, &[("TOP.TXT", b"top\n".to_vec()), ("SUB/DEEP/F.TXT", b"f\n".to_vec())]);
    let g = geo(&b);
    let sub = cluster_of(&b, g.entry(&b, None, b"SUB        "));
    let deep = cluster_of(&b, g.entry(&b, Some(sub), b"DEEP       "));
    add_dir_entry(&g, &mut b, sub, b"SELF       ", sub); // itself
    add_dir_entry(&g, &mut b, sub, b"ROOT       ", 0); // cluster 0: the root
    add_dir_entry(&g, &mut b, deep, b"BACK       ", sub); // its parent
    std::fs::write(&img, &b).unwrap();
    let i = img.to_str().unwrap();
    for args in [&["ls", "-R", "/"][..], &["tree", "/"], &["--json", "ls", "-R", "/SUB"]] {
        let o = exo(&[&[i][..], args].concat());
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("directory cycle"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.len() < 4096, "{args:?}: {} bytes of listing", o.stdout.len());
    }
    let bx = Boxed::new(&d);
    let o = exo(&[i, "extract", "/", bx.dest()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    bx.assert_contained();
    let t = tree_of(&bx.dest);
    let mut names: Vec<&str> = t.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["SUB", "SUB/DEEP", "SUB/DEEP/F.TXT", "TOP.TXT"], "{}", stderr(&o));
}

#[test]
fn a_fat_directory_whose_chain_loops_lists_what_comes_before_the_loop() {
    // SUB's chain leads back to its own first cluster: fatfs alone would
    // list it forever. Its entries (one cluster's worth) are listed and
    // extracted, the loop reported, as mtools lists such a directory.
    let d = scratch("fatdirloop");
    let (img, mut b) =
        fat16(&d, &[("TOP.TXT", b"top\n".to_vec()), ("SUB/A.TXT", b"a\n".to_vec()), ("SUB/B.TXT", b"b\n".to_vec())]);
    let g = geo(&b);
    let sub = cluster_of(&b, g.entry(&b, None, b"SUB        "));
    assert!(g.next(&b, sub) >= 0xfff8, "SUB spans one cluster");
    g.set_next(&mut b, sub, sub);
    std::fs::write(&img, &b).unwrap();
    let i = img.to_str().unwrap();
    let o = exo(&[i, "ls", "/SUB"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("loops back after cluster"), "{}", stderr(&o));
    let listed = String::from_utf8(o.stdout).unwrap();
    assert!(listed.contains("A.TXT") && listed.contains("B.TXT"), "{listed}");
    let bx = Boxed::new(&d);
    let o = exo(&[i, "extract", "/", bx.dest()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    bx.assert_contained();
    assert_eq!(std::fs::read(bx.dest.join("SUB/A.TXT")).unwrap(), b"a\n");
    assert_eq!(std::fs::read(bx.dest.join("SUB/B.TXT")).unwrap(), b"b\n");
    assert_eq!(std::fs::read(bx.dest.join("TOP.TXT")).unwrap(), b"top\n");
    // The image itself is never written.
    assert_eq!(std::fs::read(&img).unwrap(), b);
}

/// Bytes of the regular files under `root`.
fn bytes_under(root: &Path) -> u64 {
    tree_of(root).values().filter_map(|v| v.parse::<u64>().ok()).sum()
}

#[test]
fn output_is_bounded_and_the_bound_is_clear() {
    let d = scratch("bound");
    let img = ext4(
        &d,
        "16M",
        |src| {
            std::fs::write(src.join("a.bin"), fill(b'a', 3 << 20)).unwrap();
            std::fs::write(src.join("b.bin"), fill(b'b', 3 << 20)).unwrap();
        },
        // A file that claims a terabyte (all holes).
        &["write /dev/null /huge", "sif /huge size 0x10000000000"],
    );
    let i = img.to_str().unwrap();
    // The default bound (4 x 16 MiB + 64 MiB) stops before the claim.
    let bx = Boxed::new(&d);
    let o = exo(&[i, "extract", "/", bx.dest()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/huge") && err.contains("--max-output"), "{err}");
    bx.assert_contained();
    assert!(bytes_under(&bx.dest) <= 128 << 20);
    assert!(!bx.dest.join("huge").exists(), "a part of /huge was left");
    // A bound given explicitly: stops at the file that passes it, and
    // what was written is whole.
    let small = d.join("small");
    let o = exo(&[i, "--max-output", "4M", "extract", "/", small.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-output"), "{}", stderr(&o));
    assert!(bytes_under(&small) <= 4 << 20);
    for f in ["a.bin", "b.bin"] {
        if let Ok(m) = std::fs::metadata(small.join(f)) {
            assert_eq!(m.len(), 3 << 20, "{f} left in part");
        }
    }
    // Enough room: everything but the claim.
    let sub = d.join("sub");
    let o = exo(&[i, "extract", "--max-output", "7M", "/a.bin", sub.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Sizes take K, M, G, T; anything else is a usage error.
    let o = exo(&[i, "--max-output", "3X", "extract", "/", d.join("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_journal_needing_recovery_is_read_through_as_before() {
    // Not hostile: an image whose last transaction was never replayed
    // (debugfs writes it to the journal, checksums v3, and leaves the
    // file system marked as needing recovery). File data read through
    // the extents must be the journal's copy, as ext4-view reads it.
    const B: usize = 4096;
    let d = scratch("journal");
    std::fs::write(d.join("newer"), fill(b'N', B)).unwrap();
    let img = ext4(&d, "16M", |src| std::fs::write(src.join("data"), fill(b'O', 2 * B)).unwrap(), &[]);
    let o = Command::new("debugfs").args(["-R", "bmap /data 0", img.to_str().unwrap()]).output().unwrap();
    let block = String::from_utf8_lossy(&o.stdout).trim().to_string();
    debugfs(&img, &["jo -c", &format!("jw -b {block} {}", d.join("newer").display()), "jc"]);
    let o = Command::new("dumpe2fs").args(["-h", img.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("needs_recovery"), "the journal was replayed");
    let o = exo(&[img.to_str().unwrap(), "cat", "/data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == [fill(b'N', B), fill(b'O', B)].concat(), "not the journal's copy");
}
