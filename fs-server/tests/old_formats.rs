//! Old and uncommon ext2/3/4 formats, built at test time (mke2fs -d,
//! debugfs -w), read through `exo-img` exactly as debugfs reads them: ext2
//! without the filetype feature, 128-byte inodes, inline data, EA inodes,
//! meta_bg, casefold directories, 1 KiB blocks, 32-bit and external
//! journals. A journal needing recovery reads as e2fsck leaves the file
//! system after replaying it (the newest commit wins, revokes hold, an
//! uncommitted or corrupt transaction ends the replay).

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{debugfs_script, exo, scratch, stderr, tool, Scratch};

/// A name of 255 bytes, the longest a directory entry holds.
fn long_name() -> String {
    format!("{}.txt", "L".repeat(251))
}

/// `n` bytes that differ from block to block (xorshift from `seed`), so a
/// block read from the wrong place shows.
fn pattern(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Writes `bytes` to `root/rel`, making its directories.
fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Fills `src` with the tree every image of these tests holds: files
/// small and large (indirect and double-indirect blocks, over 1 MiB), an
/// empty file and directory, nested directories, a 255-byte name, inline
/// candidates (under 60 bytes, and 60..160 bytes for system.data), fast
/// and slow symlinks either side of 60 bytes, a sparse file, and `many`
/// files in one directory.
fn source_tree(src: &Path, many: usize) {
    put(src, "big", &pattern(1, (5 << 20) + 123));
    put(src, "dir/mid", &pattern(2, 70_000));
    put(src, "empty", b"");
    put(src, "dir/sub/deep/leaf", b"leaf\n");
    put(src, &format!("dir/{}", long_name()), b"a name of 255 bytes\n");
    put(src, "dir/na\u{ef}ve-\u{fc}n\u{ef}c\u{f6}d\u{e9}.txt", "Unicode name\n".as_bytes());
    put(src, "inl/x59", &pattern(3, 59));
    put(src, "inl/x100", &pattern(4, 100));
    put(src, "inl/x120", &pattern(5, 120));
    put(src, "inl/sm/a", b"a\n");
    put(src, "inl/sm/b", b"bb\n");
    std::fs::create_dir_all(src.join("emptydir")).unwrap();
    let link = |target: &str, name: &str| std::os::unix::fs::symlink(target, src.join(name)).unwrap();
    link("dir/mid", "fast");
    link(&format!("{}dir/mid", "./".repeat(26)), "fast59");
    link(&format!("{}dir//mid", "./".repeat(26)), "slow60");
    link(&format!("{}dir/sub/deep/leaf", "./".repeat(50)), "slow");
    let sparse = std::fs::File::create(src.join("sparse")).unwrap();
    sparse.set_len((3 << 20) + 5).unwrap();
    sparse.write_all_at(b"head", 100).unwrap();
    sparse.write_all_at(&pattern(6, 5000), 1 << 20).unwrap();
    sparse.write_all_at(b"tail\n", 3 << 20).unwrap();
    for i in 0..many {
        put(src, &format!("many/file-{i}"), format!("file number {i}\n").as_bytes());
    }
}

/// Files `exo-img cat` must give exactly as the source holds them.
fn cat_list() -> Vec<String> {
    let mut v: Vec<String> =
        ["big", "dir/mid", "dir/sub/deep/leaf", "empty", "inl/x59", "inl/x100", "inl/x120", "inl/sm/a", "sparse"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    v.push(format!("dir/{}", long_name()));
    v
}

/// An image of `size` (sparse) made by `mke2fs -q -F OPTS -d SRC`.
fn mkfs(img: &Path, size: &str, opts: &[&str], src: &Path) {
    let _ = std::fs::remove_file(img);
    tool("truncate", &["-s", size, img.to_str().unwrap()]);
    let mut args = vec!["-q", "-F"];
    args.extend_from_slice(opts);
    args.extend(["-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    tool("mke2fs", &args);
}

/// A scratch directory holding `src` (the source tree, with `many` files
/// in `many/`) and `img`, made from it by mke2fs with `opts`.
fn build(name: &str, size: &str, opts: &[&str], many: usize) -> (Scratch, PathBuf, PathBuf) {
    let d = scratch(name);
    let src = d.join("src");
    source_tree(&src, many);
    let img = d.join("fs.img");
    mkfs(&img, size, opts, &src);
    (d, src, img)
}

/// Runs the debugfs commands `cmds` read-write on `img`.
fn debugfs_w(img: &Path, cmds: &[String]) {
    debugfs_script(img, true, cmds);
}

/// What the one read-only debugfs request `req` prints about `img`.
fn ask(img: &Path, req: &str) -> Vec<u8> {
    let o = Command::new("debugfs").args(["-R", req, img.to_str().unwrap()]).output().expect("debugfs");
    o.stdout
}

/// The same, as text.
fn ask_text(img: &Path, req: &str) -> String {
    String::from_utf8_lossy(&ask(img, req)).into_owned()
}

/// The physical block of block `n` of the file at `path`.
fn bmap(img: &Path, path: &str, n: usize) -> u64 {
    let s = ask_text(img, &format!("bmap {path} {n}"));
    s.trim().parse().unwrap_or_else(|_| panic!("bmap {path} {n}: {s:?}"))
}

/// The `dumpe2fs -h` line `field: value`'s value.
fn header(img: &Path, field: &str) -> Option<String> {
    let o = Command::new("dumpe2fs").args(["-h", img.to_str().unwrap()]).output().expect("dumpe2fs");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
}

/// The inode flags in the output of debugfs `stat` (its `Flags:`).
fn flags(stat: &str) -> u32 {
    let at = stat.find("Flags: 0x").unwrap_or_else(|| panic!("no flags in {stat}"));
    let hex: String = stat[at + 9..].chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&hex, 16).unwrap()
}

/// Runs e2fsck -fy on `img`, which may fix what mke2fs or debugfs left
/// (exit 0 or 1); then it must be clean.
fn fsck_fix(img: &Path) {
    let o = Command::new("e2fsck").args(["-fy", img.to_str().unwrap()]).output().expect("e2fsck");
    assert!(matches!(o.status.code(), Some(0 | 1)), "e2fsck -fy: {}", String::from_utf8_lossy(&o.stdout));
    tool("e2fsck", &["-fn", img.to_str().unwrap()]);
}

/// A node of an extracted tree.
#[derive(PartialEq)]
enum Node {
    Dir,
    Link(PathBuf),
    File(Vec<u8>),
}

impl Node {
    fn describe(&self) -> String {
        match self {
            Node::Dir => "a directory".into(),
            Node::Link(t) => format!("a symlink to {}", t.display()),
            Node::File(b) => format!("a file of {} bytes", b.len()),
        }
    }
}

/// Every path under `root` (relative) and what it is, without the top
/// `lost+found` (exo-img and debugfs may treat it differently).
fn read_tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_str().expect("UTF-8 names").to_string();
            if rel == "lost+found" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.insert(rel, Node::Link(std::fs::read_link(&p).unwrap()));
            } else if m.is_dir() {
                out.insert(rel, Node::Dir);
                walk(root, &p, out);
            } else {
                out.insert(rel, Node::File(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// debugfs 1.47 dumps a file kept in the inode's 60-byte block map
/// (inline data) as all 60 bytes, whatever its size: `a` and `b` are the
/// same file if one is that padding of the other.
fn inline_padding_of(a: &[u8], b: &[u8]) -> bool {
    const INLINE: usize = 60;
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    long.len() == INLINE && long.starts_with(short) && long[short.len()..].iter().all(|&x| x == 0)
}

/// Fails, naming the differences, unless `got` and `want` hold the same
/// paths with the same types, contents and symlink targets (`inline`:
/// allowing debugfs' inline-data padding).
fn assert_same_tree(what: &str, got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>, inline: bool) {
    let mut diffs = Vec::new();
    for (path, w) in want {
        match got.get(path) {
            None => diffs.push(format!("{path}: missing (want {})", w.describe())),
            Some(g) if g == w => {}
            Some(Node::File(g)) if inline && matches!(w, Node::File(w) if inline_padding_of(g, w)) => {}
            Some(Node::File(g)) if matches!(w, Node::File(w) if w.len() == g.len()) => {
                let Node::File(w) = w else { unreachable!() };
                let at = g.iter().zip(w).position(|(a, b)| a != b).unwrap();
                diffs.push(format!("{path}: {} bytes, differing from byte {at}", g.len()));
            }
            Some(g) => diffs.push(format!("{path}: {} (want {})", g.describe(), w.describe())),
        }
    }
    diffs.extend(
        got.iter().filter(|(p, _)| !want.contains_key(*p)).map(|(p, g)| format!("{p}: extra, {}", g.describe())),
    );
    assert!(diffs.is_empty(), "{what}: {} differences:\n{}", diffs.len(), diffs[..diffs.len().min(12)].join("\n"));
}

/// `exo-img IMG extract / OUT` into `d/name`, which must succeed.
fn exo_extract(d: &Path, img: &Path, name: &str) -> BTreeMap<String, Node> {
    let out = d.join(name);
    let o = exo(&[img.to_str().unwrap(), "extract", "/", out.to_str().unwrap()]);
    assert!(o.status.success(), "exo-img extract / refused the image: {}", stderr(&o));
    read_tree(&out)
}

/// `debugfs -R 'rdump / OUT' IMG` into `d/name`.
fn debugfs_rdump(d: &Path, img: &Path, name: &str) -> BTreeMap<String, Node> {
    let out = d.join(name);
    std::fs::create_dir_all(&out).unwrap();
    tool("debugfs", &["-R", &format!("rdump / {}", out.display()), img.to_str().unwrap()]);
    read_tree(&out)
}

/// `img` (made from `src`) reads through exo-img as through debugfs:
/// `extract /` gives what `rdump /` gives (and what went in), `cat` gives
/// the source's bytes, `info` names an ext file system.
fn reads_like_debugfs(d: &Path, img: &Path, src: &Path, inline: bool) {
    let source = read_tree(src);
    let theirs = debugfs_rdump(d, img, "debugfs-out");
    assert_same_tree(
        "debugfs rdump against the source (the image is not what the test means)",
        &theirs,
        &source,
        inline,
    );
    let ours = exo_extract(d, img, "exo-out");
    assert_same_tree("exo-img extract against debugfs rdump", &ours, &theirs, inline);
    assert_same_tree("exo-img extract against the source", &ours, &source, false);
    let i = img.to_str().unwrap();
    for rel in cat_list() {
        let o = exo(&[i, "cat", &format!("/{rel}")]);
        assert!(o.status.success(), "cat /{rel}: {}", stderr(&o));
        assert!(o.stdout == std::fs::read(src.join(&rel)).unwrap(), "cat /{rel}: not the bytes put in");
    }
    let o = exo(&[i, "info"]);
    assert!(o.status.success(), "info: {}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ext"), "info: {}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn old_ext2_without_filetype_reads_like_debugfs() {
    let opts = ["-t", "ext2", "-O", "^filetype,^dir_index,^ext_attr,^resize_inode,^sparse_super,^large_file"];
    let (d, src, img) = build("ext2old", "64M", &opts, 100);
    let features = header(&img, "Filesystem features").unwrap();
    assert!(!features.contains("filetype") && !features.contains("extent"), "{features}");
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn ext3_with_128_byte_inodes_reads_like_debugfs() {
    let (d, src, img) = build("ext3i128", "64M", &["-t", "ext3", "-I", "128"], 100);
    assert_eq!(header(&img, "Inode size").as_deref(), Some("128"));
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn ext4_with_128_byte_inodes_reads_like_debugfs() {
    let (d, src, img) = build("ext4i128", "64M", &["-t", "ext4", "-b", "4096", "-I", "128"], 100);
    assert_eq!(header(&img, "Inode size").as_deref(), Some("128"));
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn ext4_with_1k_blocks_reads_like_debugfs() {
    let (d, src, img) = build("ext4b1k", "64M", &["-t", "ext4", "-b", "1024"], 100);
    assert_eq!(header(&img, "Block size").as_deref(), Some("1024"));
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn ext3_with_a_32_bit_journal_reads_like_debugfs() {
    let (d, src, img) = build("ext3j32", "64M", &["-t", "ext3", "-b", "4096", "-O", "^64bit"], 100);
    let journal = header(&img, "Journal features").unwrap();
    assert!(!journal.contains("64bit"), "{journal}");
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn inline_data_files_and_directories_read_like_debugfs() {
    let (d, src, img) = build("inline", "64M", &["-t", "ext4", "-b", "4096", "-O", "inline_data"], 100);
    // What the test means: data in the block map (under 60 bytes, files
    // and a directory) and beyond it in the system.data attribute.
    const INLINE_DATA_FL: u32 = 0x1000_0000;
    for (path, inline_size) in
        [("/inl/x59", 60), ("/inl/x100", 100), ("/inl/x120", 120), ("/inl/sm", 60), ("/dir/sub/deep/leaf", 60)]
    {
        let stat = ask_text(&img, &format!("stat {path}"));
        assert!(flags(&stat) & INLINE_DATA_FL != 0, "{path} is not inline: {stat}");
        assert!(stat.contains(&format!("Size of inline data: {inline_size}")), "{path}: {stat}");
    }
    let stat = ask_text(&img, "stat /slow");
    assert!(flags(&stat) & INLINE_DATA_FL != 0, "the slow symlink is not inline: {stat}");
    reads_like_debugfs(&d, &img, &src, true);
}

#[test]
fn ea_inode_file_systems_read_like_debugfs() {
    // 1 KiB blocks: a 1 KiB value does not fit an attribute block, and
    // goes to an inode of its own.
    let (d, src, img) = build("eainode", "64M", &["-t", "ext4", "-b", "1024", "-O", "ea_inode"], 100);
    let value = d.join("value");
    std::fs::write(&value, pattern(7, 1024)).unwrap();
    debugfs_w(&img, &[format!("ea_set -f {} /dir/mid user.big", value.display())]);
    // debugfs leaves the file's i_blocks short of the value inode's quota.
    fsck_fix(&img);
    const EA_INODE_FL: u32 = 0x20_0000;
    let used: u32 = header(&img, "Inode count").unwrap().parse::<u32>().unwrap()
        - header(&img, "Free inodes").unwrap().parse::<u32>().unwrap();
    let stats = debugfs_script(&img, false, &(11..=used + 11).map(|i| format!("stat <{i}>")).collect::<Vec<_>>());
    let stats = String::from_utf8_lossy(&stats);
    assert!(
        stats.split("Inode: ").skip(1).any(|s| flags(s) & EA_INODE_FL != 0),
        "no EA inode was made: {}",
        ask_text(&img, "stat /dir/mid")
    );
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn meta_bg_groups_past_the_first_meta_group_read_like_debugfs() {
    // 1 KiB blocks, 1024 blocks and 16 inodes a group: 300 files fill
    // inodes of groups whose descriptors live in the second meta group
    // and later, far from the first.
    let opts = ["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "4096", "-O", "meta_bg,^resize_inode"];
    let (d, src, img) = build("metabg", "256M", &opts, 300);
    let features = header(&img, "Filesystem features").unwrap();
    assert!(features.contains("meta_bg") && !features.contains("resize_inode"), "{features}");
    let per_group: u64 = header(&img, "Inodes per group").unwrap().parse().unwrap();
    let desc: u64 = header(&img, "Group descriptor size").map_or(32, |s| s.parse().unwrap());
    let first_meta_group_inodes = per_group * (1024 / desc);
    let listing = ask_text(&img, "ls -l /many");
    let (ino, name) = listing
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let ino: u64 = w.next()?.parse().ok()?;
            Some((ino, w.last()?.to_string()))
        })
        .max()
        .unwrap();
    assert!(ino > first_meta_group_inodes, "inode {ino}: all in the first meta group");
    reads_like_debugfs(&d, &img, &src, false);
    let o = exo(&[img.to_str().unwrap(), "cat", &format!("/many/{name}")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, std::fs::read(src.join("many").join(&name)).unwrap());
}

#[test]
fn casefold_directories_look_up_exact_names_and_read_like_debugfs() {
    let (d, src, img) = build("casefold", "64M", &["-t", "ext4", "-b", "4096", "-O", "casefold"], 20);
    // A casefolded directory (mkfs -d makes none), holding mixed-case and
    // non-ASCII names (casefolding turns ß into ss), hashed by e2fsck -D
    // over the folded names.
    let mut names: Vec<String> = (0..300).map(|i| format!("Entry-Number-{i}.Txt")).collect();
    names.extend(
        ["Stra\u{df}e.TXT", "\u{c4}\u{d6}\u{dc}-MiXeD.md", "UPPER", "lower", "\u{3a3}\u{3b9}\u{3b3}\u{3bc}\u{3b1}"]
            .map(String::from),
    );
    let mut cmds = vec!["mkdir /Fold".to_string(), "sif /Fold flags 0x40080000".to_string()];
    for (k, name) in names.iter().enumerate() {
        put(&src, &format!("Fold/{name}"), format!("{k}: {name}\n").as_bytes());
        cmds.push(format!("write {} /Fold/{name}", src.join("Fold").join(name).display()));
    }
    debugfs_w(&img, &cmds);
    tool("e2fsck", &["-fyD", img.to_str().unwrap()]);
    tool("e2fsck", &["-fn", img.to_str().unwrap()]);
    const CASEFOLD_FL: u32 = 0x4000_0000;
    let stat = ask_text(&img, "stat /Fold");
    assert!(flags(&stat) & CASEFOLD_FL != 0, "{stat}");
    assert!(ask_text(&img, "htree /Fold").contains("Root node dump"), "/Fold is not indexed");
    reads_like_debugfs(&d, &img, &src, false);
    let i = img.to_str().unwrap();
    for name in names.iter().rev().take(12) {
        let o = exo(&[i, "cat", &format!("/Fold/{name}")]);
        assert!(o.status.success(), "cat /Fold/{name}: {}", stderr(&o));
        assert_eq!(o.stdout, std::fs::read(src.join("Fold").join(name)).unwrap(), "/Fold/{name}");
    }
}

/// An ext4 image (4 KiB blocks) of the source tree whose journal lives on
/// a separate journal device image. mke2fs -J device= takes block devices
/// only, so the file system is made without a journal and given the
/// device's UUID and a device number, as mke2fs would; e2fsck -j accepts
/// the pair.
fn with_external_journal(name: &str) -> (Scratch, PathBuf, PathBuf, PathBuf) {
    let (d, src, img) = build(name, "64M", &["-t", "ext4", "-b", "4096", "-O", "^has_journal"], 20);
    let jdev = d.join("journal.img");
    tool("truncate", &["-s", "8M", jdev.to_str().unwrap()]);
    tool("mke2fs", &["-q", "-F", "-O", "journal_dev", "-b", "4096", jdev.to_str().unwrap()]);
    let uuid = header(&jdev, "Filesystem UUID").unwrap();
    debugfs_w(
        &img,
        &["feature has_journal".into(), format!("ssv journal_uuid {uuid}"), "ssv journal_dev 0x0700".into()],
    );
    tool("e2fsck", &["-fn", "-j", jdev.to_str().unwrap(), img.to_str().unwrap()]);
    assert_eq!(header(&img, "Journal UUID").as_deref(), Some(uuid.as_str()));
    (d, src, img, jdev)
}

#[test]
fn an_external_journal_is_read_like_debugfs() {
    let (d, src, img, _) = with_external_journal("extjournal");
    reads_like_debugfs(&d, &img, &src, false);
}

#[test]
fn an_external_journal_needing_recovery_is_read_unreplayed_like_debugfs() {
    // The journal device is not in the image: exo-img cannot replay it,
    // and reads the file system as it is, as debugfs does.
    let (d, src, img, jdev) = with_external_journal("extrecovery");
    let newer = d.join("newer");
    std::fs::write(&newer, vec![b'N'; 4096]).unwrap();
    let block = bmap(&img, "/big", 0);
    debugfs_w(&img, &[format!("jo -f {}", jdev.display()), format!("jw -b {block} {}", newer.display()), "jc".into()]);
    assert!(header(&img, "Filesystem features").unwrap().contains("needs_recovery"));
    // What the journal holds is real: e2fsck with the device replays it.
    let (rimg, rjdev) = (d.join("recovered.img"), d.join("recovered-journal.img"));
    std::fs::copy(&img, &rimg).unwrap();
    std::fs::copy(&jdev, &rjdev).unwrap();
    tool("e2fsck", &["-fy", "-j", rjdev.to_str().unwrap(), rimg.to_str().unwrap()]);
    assert!(ask(&rimg, "cat /big").starts_with(&[b'N'; 4096]), "e2fsck did not replay the external journal");
    reads_like_debugfs(&d, &img, &src, false);
}

/// A journal scenario: how the file system is made, its block size, the
/// `jo` options, and whether to lose the fourth transaction's commit
/// block.
struct Journal<'a> {
    name: &'a str,
    mkfs: &'a [&'a str],
    block: usize,
    jo: &'a str,
    lose_fourth_commit: bool,
}

/// Each block of `bytes` by its one repeated byte (`?` if mixed): the
/// journal tests' files read as, say, `b,c,d,3,e`.
fn blocks_of(bytes: &[u8], block: usize) -> String {
    bytes
        .chunks(block)
        .map(|c| if c.iter().all(|&x| x == c[0]) { (c[0] as char).to_string() } else { "?".into() })
        .collect::<Vec<_>>()
        .join(",")
}

/// Makes `/f` of five blocks (block k filled with the digit k), writes
/// these transactions to the journal with debugfs and leaves it needing
/// recovery:
///
/// 1. blocks 0-4 := b
/// 2. blocks 1, 2 := c
/// 3. block 2 := d
/// 4. revokes blocks 3 and 4
/// 5. block 4 := e
/// 6. blocks 0, 1 := x, never committed
///
/// Then exo-img on that image must read what debugfs reads after e2fsck
/// has replayed the journal on a copy: `/f` and the whole tree. Returns
/// `/f` as e2fsck left it (see [`blocks_of`]).
fn replays_like_e2fsck(j: Journal) -> String {
    let bs = j.block;
    let d = scratch(j.name);
    let src = d.join("src");
    put(&src, "f", &(0..5u8).flat_map(|k| vec![b'0' + k; bs]).collect::<Vec<_>>());
    put(&src, "other/g", &pattern(8, 3 * bs + 17));
    let img = d.join("fs.img");
    let mut opts = vec!["-b".to_string(), bs.to_string()];
    opts.extend(j.mkfs.iter().map(|s| s.to_string()));
    mkfs(&img, "32M", &opts.iter().map(String::as_str).collect::<Vec<_>>(), &src);
    let b: Vec<u64> = (0..5).map(|k| bmap(&img, "/f", k)).collect();
    let data = |name: &str, fills: &str| -> String {
        let p = d.join(name);
        std::fs::write(&p, fills.bytes().flat_map(|c| vec![c; bs]).collect::<Vec<_>>()).unwrap();
        p.display().to_string()
    };
    debugfs_w(
        &img,
        &[
            format!("jo {}", j.jo),
            format!("jw -b {},{},{},{},{} {}", b[0], b[1], b[2], b[3], b[4], data("t1", "bbbbb")),
            format!("jw -b {},{} {}", b[1], b[2], data("t2", "cc")),
            format!("jw -b {} {}", b[2], data("t3", "d")),
            format!("jw -r {},{} /dev/null", b[3], b[4]),
            format!("jw -b {} {}", b[4], data("t5", "e")),
            format!("jw -b {},{} -c {}", b[0], b[1], data("t6", "xx")),
            "jc".into(),
        ],
    );
    assert!(header(&img, "Filesystem features").unwrap().contains("needs_recovery"), "nothing to recover");
    if j.lose_fourth_commit {
        let log = ask_text(&img, "logdump");
        let commits: Vec<u64> =
            log.lines().filter_map(|l| l.split("(commit block) at block ").nth(1)?.trim().parse().ok()).collect();
        assert!(commits.len() >= 5, "{log}");
        let at = bmap(&img, "<8>", commits[3] as usize);
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.write_all_at(&vec![0; bs], at * bs as u64).unwrap();
    }
    let i = img.to_str().unwrap();
    assert_eq!(blocks_of(&ask(&img, "cat /f"), bs), "0,1,2,3,4", "debugfs read through the journal");
    let recovered = d.join("recovered.img");
    std::fs::copy(&img, &recovered).unwrap();
    tool("e2fsck", &["-E", "journal_only", "-y", recovered.to_str().unwrap()]);
    tool("e2fsck", &["-fn", recovered.to_str().unwrap()]);
    let want = ask(&recovered, "cat /f");
    let o = exo(&[i, "cat", "/f"]);
    assert!(o.status.success(), "exo-img cat /f: {}", stderr(&o));
    assert!(
        o.stdout == want,
        "/f through exo-img reads {} where e2fsck replays it to {}",
        blocks_of(&o.stdout, bs),
        blocks_of(&want, bs)
    );
    let theirs = debugfs_rdump(&d, &recovered, "debugfs-out");
    let ours = exo_extract(&d, &img, "exo-out");
    assert_same_tree("exo-img extract against debugfs rdump after e2fsck", &ours, &theirs, false);
    blocks_of(&want, bs)
}

#[test]
fn journal_replay_matches_e2fsck_newest_commit_wins_and_revokes_hold() {
    let got = replays_like_e2fsck(Journal {
        name: "jcsum3",
        mkfs: &["-t", "ext4"],
        block: 4096,
        jo: "-c",
        lose_fourth_commit: false,
    });
    assert_eq!(got, "b,c,d,3,e", "the scenario is not what e2fsck replays");
}

#[test]
fn journal_replay_of_a_32_bit_journal_without_checksums_matches_e2fsck() {
    let got = replays_like_e2fsck(Journal {
        name: "j32",
        mkfs: &["-t", "ext3", "-O", "^64bit"],
        block: 1024,
        jo: "",
        lose_fourth_commit: false,
    });
    assert_eq!(got, "b,c,d,3,e", "the scenario is not what e2fsck replays");
}

#[test]
fn journal_replay_without_metadata_csum_matches_e2fsck() {
    let got = replays_like_e2fsck(Journal {
        name: "jnocsum",
        mkfs: &["-t", "ext4", "-O", "^metadata_csum"],
        block: 4096,
        jo: "",
        lose_fourth_commit: false,
    });
    assert_eq!(got, "b,c,d,3,e", "the scenario is not what e2fsck replays");
}

#[test]
fn journal_replay_stops_at_a_v1_checksum_mismatch_like_e2fsck() {
    // Without metadata_csum, `jo -c` makes version 1 (crc32) commit
    // checksums; debugfs 1.47 checksums the revoke-only fourth
    // transaction in a way e2fsck rejects ("Journal transaction 4 was
    // corrupt, replay was aborted"): replay ends before it.
    let got = replays_like_e2fsck(Journal {
        name: "jcsum1",
        mkfs: &["-t", "ext4", "-O", "^metadata_csum"],
        block: 4096,
        jo: "-c",
        lose_fourth_commit: false,
    });
    assert_eq!(got, "b,c,d,b,b", "the scenario is not what e2fsck replays");
}

#[test]
fn journal_replay_stops_at_a_lost_commit_block_like_e2fsck() {
    // The fourth transaction's commit block zeroed: it and the committed
    // fifth after it are not replayed.
    let got = replays_like_e2fsck(Journal {
        name: "jlost",
        mkfs: &["-t", "ext4"],
        block: 4096,
        jo: "-c",
        lose_fourth_commit: true,
    });
    assert_eq!(got, "b,c,d,b,b", "the scenario is not what e2fsck replays");
}
