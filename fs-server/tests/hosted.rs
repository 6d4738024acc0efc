//! Hosted mode end to end: images built at test time with Debian's tools
//! (mkfs.ext4 -d, mkfs.vfat + mtools, sfdisk), read through `exo-img` and
//! its sandboxed server, compared with the host's own view of the files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{host_view, scratch, xorshift, EXO_IMG};

fn tool(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).env("LC_ALL", "C.UTF-8").output().unwrap_or_else(|e| {
        panic!("{cmd} not runnable ({e}): scripts/test installs e2fsprogs, dosfstools, mtools and fdisk")
    });
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn exo(args: &[&str]) -> Output {
    Command::new(EXO_IMG).args(args).output().expect("run exo-img")
}

fn exo_ok(args: &[&str]) -> Vec<u8> {
    let o = exo(args);
    assert!(o.status.success(), "exo-img {args:?} failed ({:?}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// A tree with the awkward cases: long and Unicode names, deep nesting,
/// a sparse file, a multi-megabyte file, and (for ext4) symlinks.
fn make_tree(root: &Path, symlinks: bool) {
    let deep = root.join("a/b/c/d/e");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("deep.txt"), b"at the bottom\n").unwrap();
    std::fs::write(root.join("a file with a rather long name indeed.txt"), b"long\n").unwrap();
    std::fs::write(root.join("ünïcödé-名前.txt"), "unicode ✓\n").unwrap();
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let big: Vec<u8> = (0..3 << 20).map(|_| next() as u8).collect();
    std::fs::write(root.join("a/big.bin"), &big).unwrap();
    let sparse = std::fs::File::create(root.join("a/b/sparse.img")).unwrap();
    sparse.set_len(5 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"end", (5 << 20) - 3).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    if symlinks {
        std::os::unix::fs::symlink("a/big.bin", root.join("link-in")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("a/escape")).unwrap();
    }
}

/// Compares every file and directory of `src` with what exo-img reports.
fn compare(img: &Path, src: &Path, extra: &[&str]) {
    compare_with(img, src, extra, &[], false);
}

/// As [`compare`], with more exo-img options (a backend), and comparing
/// names without case when `fold_case` (NetBSD's msdosfs shows 8.3 names
/// in capitals: FAT names are case-insensitive).
fn compare_with(img: &Path, src: &Path, extra: &[&str], opts: &[&str], fold_case: bool) {
    let img = img.to_str().unwrap();
    let exo_ok = |args: &[&str]| exo_ok(&[&[img], opts, &args[1..]].concat());
    let listing = String::from_utf8(exo_ok(&[img, "--json", "ls", "-R", "/"])).unwrap();
    let mut listed: Vec<String> = listing
        .lines()
        .map(|l| l.split("\"path\":\"").nth(1).unwrap().split('"').next().unwrap().to_string())
        .collect();
    listed.sort();
    let mut want: Vec<String> = host_view(src).keys().cloned().collect();
    want.extend(extra.iter().map(|s| s.to_string()));
    want.sort();
    // Symlinks are listed too; the host view holds files and directories.
    listed.retain(|p| want.contains(p) || !p.contains("link-in") && !p.contains("escape"));
    if fold_case {
        for v in [&mut listed, &mut want] {
            *v = v.iter().map(|p| p.to_lowercase()).collect();
            v.sort();
        }
    }
    assert_eq!(listed, want, "listing differs");
    for (path, content) in host_view(src) {
        let stat = String::from_utf8(exo_ok(&[img, "--json", "stat", &path])).unwrap();
        match content {
            None => assert!(stat.contains("\"kind\":\"dir\""), "{path}: {stat}"),
            Some(bytes) => {
                assert!(stat.contains(&format!("\"kind\":\"file\",\"size\":{}", bytes.len())), "{path}: {stat}");
                assert_eq!(exo_ok(&[img, "cat", &path]), bytes, "{path}: contents differ");
            }
        }
    }
}

fn ext4_image(dir: &Path, src: &Path, size: &str) -> PathBuf {
    let img = dir.join("ext4.img");
    tool("truncate", &["-s", size, img.to_str().unwrap()]);
    tool("mkfs.ext4", &["-q", "-L", "EXOTEST", "-d", src.to_str().unwrap(), img.to_str().unwrap()]);
    img
}

fn fat_image(dir: &Path, src: &Path, size: &str) -> PathBuf {
    let img = dir.join("fat.img");
    tool("truncate", &["-s", size, img.to_str().unwrap()]);
    tool("mkfs.vfat", &["-F", "32", "-n", "EXOFAT", img.to_str().unwrap()]);
    let items: Vec<String> =
        std::fs::read_dir(src).unwrap().map(|e| e.unwrap().path().to_str().unwrap().to_string()).collect();
    let mut args = vec!["-s", "-i", img.to_str().unwrap()];
    args.extend(items.iter().map(String::as_str));
    args.push("::/");
    tool("mcopy", &args);
    img
}

#[test]
fn ext4_listing_stat_and_bytes_match_the_host() {
    let d = scratch("ext4");
    let src = d.join("src");
    make_tree(&src, true);
    let img = ext4_image(&d, &src, "64M");
    let info = String::from_utf8(exo_ok(&[img.to_str().unwrap(), "info"])).unwrap();
    assert!(info.contains("file system: ext4") && info.contains("label:       EXOTEST"), "{info}");
    assert!(info.contains("seccomp allow-list"), "{info}");
    compare(&img, &src, &["/lost+found", "/link-in", "/a/escape"]);
    let link = String::from_utf8(exo_ok(&[img.to_str().unwrap(), "--json", "stat", "/link-in"])).unwrap();
    assert!(link.contains("\"kind\":\"symlink\""), "{link}");
}

#[test]
fn fat_listing_stat_and_bytes_match_the_host() {
    let d = scratch("fat");
    let src = d.join("src");
    make_tree(&src, false);
    // A name that fits 8.3 in lower case: mtools (as Linux and Windows)
    // writes it as a short name only, in capitals, with the case byte
    // saying "lower case"; it must read back as written, Ü and ß too
    // (fatfs alone lowers ASCII letters only: grÜße.txt).
    std::fs::write(src.join("grüße.txt"), b"a short name in lower case\n").unwrap();
    let img = fat_image(&d, &src, "48M");
    let info = String::from_utf8(exo_ok(&[img.to_str().unwrap(), "info"])).unwrap();
    assert!(info.contains("file system: fat32") && info.contains("EXOFAT"), "{info}");
    compare(&img, &src, &[]);
    // FAT names are found whatever their case, in any script.
    assert_eq!(exo_ok(&[img.to_str().unwrap(), "cat", "/GRÜßE.TXT"]), b"a short name in lower case\n");
}

#[test]
fn gpt_disk_partitions_are_chosen_explicitly() {
    let d = scratch("gpt");
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("on-ext4.txt"), b"ext4 partition\n").unwrap();
    let disk = d.join("disk.img");
    tool("truncate", &["-s", "40M", disk.to_str().unwrap()]);
    let layout = "label: gpt\nstart=2048, size=20480, type=L\nstart=24576, size=40960, type=L\n";
    let mut child = Command::new("sfdisk")
        .arg(disk.to_str().unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sfdisk (Debian package fdisk)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), layout.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    // Partition 2: ext4 made in a file and copied in at 24576 * 512.
    let part = ext4_image(&d, &src, "20M");
    tool(
        "dd",
        &[
            &format!("if={}", part.display()),
            &format!("of={}", disk.display()),
            "bs=512",
            "seek=24576",
            "conv=notrunc",
            "status=none",
        ],
    );
    let disk_s = disk.to_str().unwrap();
    let o = exo(&[disk_s, "ls", "/"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 partitions: choose one with --partition (1 to 2)"));
    let listing = String::from_utf8(exo_ok(&[disk_s, "--partition", "2", "ls", "/"])).unwrap();
    assert!(listing.contains("on-ext4.txt"), "{listing}");
    let info = String::from_utf8(exo_ok(&[disk_s, "--partition", "2", "info"])).unwrap();
    assert!(info.contains("partition:   GPT 2"), "{info}");
    let o = exo(&[disk_s, "--partition", "1", "ls", "/"]);
    assert_eq!(o.status.code(), Some(3), "empty partition: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("GPT 1: no file system"));
    let o = exo(&[disk_s, "--partition", "7", "ls", "/"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no partition 7: the image has 2"));
}

#[test]
fn extract_copies_the_tree_and_refuses_escapes() {
    let d = scratch("extract");
    let src = d.join("src");
    make_tree(&src, true);
    let img = ext4_image(&d, &src, "64M");
    let out = d.join("out");
    let o = exo(&[img.to_str().unwrap(), "extract", "/", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "one entry is refused: {}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refusing symlink /a/escape -> ../../../../etc/passwd"), "{err}");
    assert!(std::fs::symlink_metadata(out.join("a/escape")).is_err(), "escaping link was created");
    assert_eq!(std::fs::read_link(out.join("link-in")).unwrap(), Path::new("a/big.bin"));
    let mut want = host_view(&src);
    want.insert("/lost+found".into(), None);
    assert_eq!(host_view(&out), want);
    // One large file on its own (read ahead in pieces of the shared buffer).
    let one = d.join("one");
    exo_ok(&[img.to_str().unwrap(), "extract", "/a/big.bin", one.to_str().unwrap()]);
    assert_eq!(std::fs::read(one.join("big.bin")).unwrap(), std::fs::read(src.join("a/big.bin")).unwrap());
    // Extracting again never overwrites: the first file hits an existing one.
    let o = exo(&[img.to_str().unwrap(), "extract", "/empty", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("File exists"));
}

#[test]
fn sandbox_kills_a_server_that_opens_connects_or_executes() {
    let d = scratch("sandbox");
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let img = ext4_image(&d, &src, "8M");
    for what in ["open", "connect", "exec"] {
        let o = exo(&["--test-violate", what, img.to_str().unwrap(), "info"]);
        assert_eq!(o.status.code(), Some(4), "{what}: {:?}", o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("file-system server died on this image: killed by SIGSYS (sandbox violation)"),
            "{what}: {err}"
        );
    }
    // Signalling another process is refused too; a crash of its own is
    // reported as a crash (abort() may signal the server itself).
    let o = exo(&["--test-violate", "kill", img.to_str().unwrap(), "info"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("killed by SIGSYS"), "kill: {o:?}");
    let o = exo(&["--test-violate", "panic", img.to_str().unwrap(), "info"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("aborted (SIGABRT"), "panic: {o:?}");
    // A server that never answers is stopped (the timeout, or its CPU
    // limit, whichever comes first), through the processes that relay
    // its end out of its PID namespace.
    let start = Instant::now();
    let o = exo(&["--test-violate", "hang", "--timeout", "1", img.to_str().unwrap(), "info"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "hang: {o:?}");
    assert!(
        err.contains("no answer within") || err.contains("SIGXCPU") || err.contains("killed (timeout"),
        "hang: {err}"
    );
    assert!(start.elapsed() < Duration::from_secs(10), "hang took {:?}", start.elapsed());
    // Where namespaces are allowed, the server has a PID namespace too.
    let info = String::from_utf8(exo_ok(&[img.to_str().unwrap(), "info"])).unwrap();
    if info.contains("namespaces user") {
        assert!(info.contains("namespaces user+pid+"), "{info}");
    }
}

#[test]
fn garbage_and_missing_images_give_clear_errors() {
    let d = scratch("garbage");
    let junk = d.join("junk.img");
    std::fs::write(&junk, vec![0x5au8; 1 << 20]).unwrap();
    let o = exo(&[junk.to_str().unwrap(), "ls", "/"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no file system and no partition table found"));
    let o = exo(&[d.join("nope.img").to_str().unwrap(), "ls", "/"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such file or directory"));
    let o = exo(&["x.img", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "usage errors");
}

/// Decodes the JSON string at the start of `s` (as `exo-img --json`
/// writes them); returns it and the rest of `s`.
fn json_string(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[1 + i + 1..])),
            '\\' => match chars.next()?.1 {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// One line of `exo-img --json ls` or `stat`: the path and its stat
/// object, as text.
fn json_entry(line: &str) -> Option<(String, String)> {
    let (path, rest) = json_string(line.strip_prefix("{\"path\":")?)?;
    let stat = rest.strip_prefix(",\"stat\":")?.strip_suffix('}')?;
    (stat.starts_with('{') && stat.ends_with('}')).then(|| (path, stat.to_string()))
}

/// The kind and size in a stat object.
fn kind_and_size(stat: &str) -> Option<(&str, u64)> {
    let rest = stat.strip_prefix("{\"kind\":\"")?;
    let (kind, rest) = rest.split_once("\",\"size\":")?;
    let size = rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    Some((kind, size))
}

/// Checks a failed run's report: its last line (the server's own last
/// words may come before) is `exo-img: PATH: WHY` or `exo-img: WHY (while
/// reading PATH)`, WHY not empty, PATH one of the `asked` paths (what the
/// CLI asked the server about).
fn assert_clear_error(o: &Output, asked: &[String], ctx: &str) {
    assert!(!o.status.success(), "{ctx}: not a failure");
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or("");
    let msg = last.strip_prefix("exo-img: ").unwrap_or_else(|| panic!("{ctx}: unclear error {err:?}"));
    let says_why = |why: &str| !why.trim().is_empty();
    let names = asked.iter().any(|p| {
        msg.strip_prefix(&format!("{p}: ")).is_some_and(says_why)
            || msg.strip_suffix(&format!(" (while reading {p})")).is_some_and(says_why)
    });
    assert!(names, "{ctx}: the error {last:?} names none of {asked:?}");
}

/// Seconds each request of the mutation test may take (`--timeout`).
const MUTANT_TIMEOUT: u64 = 5;
/// What a run may take beyond that: starting the server, killing it.
const MUTANT_MARGIN: Duration = Duration::from_secs(3);

/// Runs `exo-img --json --timeout MUTANT_TIMEOUT IMG ARGS` and checks
/// what must hold for any image: it ends within the timeout plus a
/// margin, by exiting with a documented status (0, 1, 3 or 4: no signal,
/// no usage error) and leaves the image as it was.
fn exo_mutant(img: &Path, args: &[&str], ctx: &str) -> Output {
    let before = std::fs::metadata(img).unwrap();
    let timeout = MUTANT_TIMEOUT.to_string();
    let start = Instant::now();
    let o = exo(&[&["--json", "--timeout", &timeout, img.to_str().unwrap()], args].concat());
    let took = start.elapsed();
    let limit = Duration::from_secs(MUTANT_TIMEOUT) + MUTANT_MARGIN;
    assert!(took < limit, "{ctx}: exo-img {args:?} took {took:?}, more than its timeout and {MUTANT_MARGIN:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3 | 4)), "{ctx}: exo-img {args:?} ended with {:?}: {err}", o.status);
    let after = std::fs::metadata(img).unwrap();
    assert_eq!((before.len(), before.modified().ok()), (after.len(), after.modified().ok()), "{ctx}: image changed");
    o
}

/// Seeded mutation of real ext4 and FAT images, 1000 per run. Whatever
/// the server meets, each run (see [`exo_mutant`]) ends in time with a
/// documented status and leaves the image alone; an error says what it
/// was reading; a listing is well formed, holds only what the file system
/// can hold, and agrees with `stat` of up to three of its entries and
/// with `cat` of one small file.
#[test]
fn mutated_images_never_crash_or_hang_the_cli() {
    let d = scratch("mutate");
    let src = d.join("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("dir/f{i}.txt")), format!("file {i}\n").repeat(i * 50)).unwrap();
    }
    std::fs::write(src.join("dir/sub/x"), b"x").unwrap();
    // (pristine bytes, working copy mutated in place, is FAT)
    let images: Vec<(Vec<u8>, PathBuf, bool)> =
        [(ext4_image(&d, &src, "4M"), false), (fat_image(&d, &src, "34M"), true)]
            .into_iter()
            .map(|(img, fat)| {
                let work = d.join(format!("mutant-{}", img.file_name().unwrap().to_str().unwrap()));
                std::fs::copy(&img, &work).unwrap();
                (std::fs::read(&img).unwrap(), work, fat)
            })
            .collect();
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64 ^ 20240601);
    // Which entries are checked has its own sequence: the mutations stay
    // those of the seed whatever the listings hold.
    let mut pick = xorshift(0x2545_f491_4f6c_dd1d);
    let (mut ok, mut errors, mut died) = (0, 0, 0);
    let (mut stats, mut refused, mut cats, mut unreadable) = (0, 0, 0, 0);
    for round in 0..1000 {
        let (pristine, img, fat) = &images[round % 2];
        let file = std::fs::OpenOptions::new().write(true).open(img).unwrap();
        // Metadata lives near the start: superblocks, group descriptors,
        // inode tables, FAT and root directory.
        let hot = pristine.len().min(if next().is_multiple_of(2) { 64 << 10 } else { 1 << 20 });
        let mut touched = Vec::new();
        for _ in 0..1 + next() % 24 {
            let at = (next() as usize) % hot;
            std::os::unix::fs::FileExt::write_at(&file, &[next() as u8], at as u64).unwrap();
            touched.push(at);
        }
        let ctx = format!("round {round} ({})", if *fat { "FAT" } else { "ext4" });
        let o = exo_mutant(img, &["ls", "-R", "/"], &ctx);
        let listing = String::from_utf8(o.stdout.clone()).unwrap_or_else(|e| panic!("{ctx}: listing not UTF-8: {e}"));
        // Every line is an entry of "/" or of a directory listed before.
        let mut dirs = vec!["/".to_string()];
        let mut entries = Vec::new();
        for line in listing.lines() {
            let (path, stat) = json_entry(line).unwrap_or_else(|| panic!("{ctx}: bad listing line {line:?}"));
            let (kind, size) = kind_and_size(&stat).unwrap_or_else(|| panic!("{ctx}: bad stat in {line:?}"));
            let parent = match path.rsplit_once('/') {
                Some(("", _)) => "/",
                Some((p, _)) => p,
                None => panic!("{ctx}: relative path in {line:?}"),
            };
            assert!(dirs.iter().any(|d| d == parent), "{ctx}: {path} is in no listed directory");
            match kind {
                // FAT has no links, and sizes of 32 bits.
                "file" | "dir" => assert!(!fat || size <= u64::from(u32::MAX), "{ctx}: {line}"),
                "symlink" | "other" => assert!(!fat, "{ctx}: FAT has no {kind}: {line}"),
                _ => panic!("{ctx}: unknown kind in {line:?}"),
            }
            if kind == "dir" {
                dirs.push(path.clone());
            }
            entries.push((path, stat));
        }
        match o.status.code() {
            Some(0) => ok += 1,
            Some(4) => died += 1,
            _ => errors += 1,
        }
        if o.status.code() != Some(0) {
            assert_clear_error(&o, &dirs, &ctx);
        } else {
            // `stat` of up to three entries, each the only one of its name
            // in its directory (FAT finds names without case): the same
            // answer as the listing's. ext4 may refuse (a directory's hash
            // index can be corrupt where a listing does not read it), but
            // only with a clear error.
            let once = |p: &String| entries.iter().filter(|(q, _)| q.eq_ignore_ascii_case(p)).count() == 1;
            let mut sample: Vec<&(String, String)> = entries.iter().filter(|(p, _)| once(p)).collect();
            for _ in 0..sample.len().min(3) {
                let (path, stat) = sample.swap_remove(pick() as usize % sample.len());
                let sctx = format!("{ctx}, stat {path}");
                let s = exo_mutant(img, &["stat", path], &sctx);
                if s.status.success() {
                    let out = String::from_utf8_lossy(&s.stdout);
                    let got = json_entry(out.trim_end()).unwrap_or_else(|| panic!("{sctx}: bad output {out:?}"));
                    assert_eq!(&got, &(path.clone(), stat.clone()), "{sctx}: stat disagrees with the listing");
                    stats += 1;
                } else {
                    assert!(!fat, "{sctx}: listed but not found: {}", String::from_utf8_lossy(&s.stderr));
                    assert_clear_error(&s, std::slice::from_ref(path), &sctx);
                    refused += 1;
                }
            }
            // `cat` of one small file gives as many bytes as listed, or a
            // clear error (its data may be what is corrupt).
            let small: Vec<(&String, u64)> = entries
                .iter()
                .filter(|(p, _)| once(p))
                .filter_map(|(p, st)| match kind_and_size(st) {
                    Some(("file", size)) if size <= 64 << 10 => Some((p, size)),
                    _ => None,
                })
                .collect();
            if !small.is_empty() {
                let (path, size) = small[pick() as usize % small.len()];
                let cctx = format!("{ctx}, cat {path}");
                let c = exo_mutant(img, &["cat", path], &cctx);
                if c.status.success() {
                    assert_eq!(c.stdout.len() as u64, size, "{cctx}: listed with {size} bytes");
                    cats += 1;
                } else {
                    assert_clear_error(&c, std::slice::from_ref(path), &cctx);
                    unreadable += 1;
                }
            }
        }
        for at in touched {
            std::os::unix::fs::FileExt::write_at(&file, &pristine[at..at + 1], at as u64).unwrap();
        }
    }
    eprintln!(
        "mutated images: {ok} listed, {errors} clean errors, {died} server deaths (contained); \
         {stats} stats agreed with their listing, {refused} refused; {cats} files read whole, {unreadable} refused"
    );
    // The mutations reach both outcomes (most images stay readable: the
    // reader falls back past damage debugfs reads past), and the sample
    // checks ran.
    assert!(ok > 100 && errors + died > 10, "{ok} listed, {} failed", errors + died);
    assert!(stats > 500 && cats > 300, "only {stats} entries compared with stat, {cats} files read");
}

#[test]
fn fat_changes_are_read_back_by_mtools_and_pass_fsck() {
    let d = scratch("fatrw");
    let src = d.join("src");
    make_tree(&src, false);
    let img = fat_image(&d, &src, "48M");
    let img_s = img.to_str().unwrap();
    let upload = d.join("upload.bin");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&upload, &data).unwrap();

    let o = exo(&[img_s, "put", upload.to_str().unwrap(), "/x.bin"]);
    assert_eq!(o.status.code(), Some(2), "writes need --rw");
    exo_ok(&["--rw", img_s, "mkdir", "/New Folder"]);
    exo_ok(&["--rw", img_s, "put", upload.to_str().unwrap(), "/New Folder/Big Upload ✓.bin"]);
    exo_ok(&["--rw", img_s, "mv", "/empty", "/New Folder/renamed"]);
    exo_ok(&["--rw", img_s, "rm", "/a file with a rather long name indeed.txt"]);

    // mtools, which shares no code with the server, sees the same.
    let back = d.join("back.bin");
    tool("mcopy", &["-n", "-i", img_s, "::/New Folder/Big Upload ✓.bin", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let listing =
        Command::new("mdir").args(["-b", "-i", img_s, "::/New Folder"]).env("LC_ALL", "C.UTF-8").output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("renamed"), "{listing}");
    let root = Command::new("mdir").args(["-b", "-i", img_s, "::/"]).env("LC_ALL", "C.UTF-8").output().unwrap();
    assert!(!String::from_utf8_lossy(&root.stdout).contains("rather long"), "removed file still listed");
    let fsck = Command::new("fsck.fat").args(["-n", img_s]).output().expect("fsck.fat (dosfstools)");
    assert!(fsck.status.success(), "fsck.fat -n: {}", String::from_utf8_lossy(&fsck.stdout));

    // ext4 stays read-only, whatever the flags.
    let e = ext4_image(&d, &src, "32M");
    let o = exo(&["--rw", e.to_str().unwrap(), "mkdir", "/x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("read-only in this server"));
}

/// Where `fatfs` falls short of POSIX, the server makes up for it: a
/// directory does not move into itself, a file renamed over another
/// replaces it, `mkdir` of a name that is there fails, a full FAT16 root
/// directory refuses a new name without leaving long-name slots behind,
/// and a file whose cluster chain is broken is not removed (removing it
/// would free the clusters and leave the entry naming them).
#[test]
fn fat_changes_keep_their_posix_meaning_and_the_image_sound() {
    let d = scratch("fatposix");
    let img = d.join("posix.img");
    let img_s = img.to_str().unwrap();
    // 32 root directory entries.
    tool("mkfs.fat", &["-F", "16", "-r", "32", "-C", img_s, "32768"]);
    let file = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (x, y, inner) = (file("x.txt", "the x file\n"), file("y.txt", "the y file\n"), file("in.txt", "inside\n"));
    exo_ok(&["--rw", img_s, "mkdir", "/a"]);
    exo_ok(&["--rw", img_s, "mkdir", "/a/b"]);
    exo_ok(&["--rw", img_s, "put", &inner, "/a/b/in.txt"]);
    exo_ok(&["--rw", img_s, "put", &x, "/x.txt"]);
    exo_ok(&["--rw", img_s, "put", &y, "/y.txt"]);
    let into_itself = exo(&["--rw", img_s, "mv", "/a", "/a/b/c"]);
    assert_eq!(into_itself.status.code(), Some(1), "{into_itself:?}");
    assert_eq!(exo_ok(&[img_s, "cat", "/a/b/in.txt"]), b"inside\n");
    exo_ok(&["--rw", img_s, "mv", "/x.txt", "/y.txt"]);
    assert_eq!(exo_ok(&[img_s, "cat", "/y.txt"]), b"the x file\n");
    let again = exo(&["--rw", img_s, "mkdir", "/a"]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    // Names of 20 characters take 3 slots: the root fills up.
    let mut made = 0;
    let refused = loop {
        let o = exo(&["--rw", img_s, "put", &x, &format!("/a_long_root_name_{made:03}")]);
        if !o.status.success() {
            break o;
        }
        made += 1;
        assert!(made < 32, "the root directory never filled");
    };
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("root directory is full"), "{why}");
    let fsck = Command::new("fsck.fat").args(["-n", img_s]).output().expect("fsck.fat (dosfstools)");
    assert!(fsck.status.success(), "after {made} names: {}", String::from_utf8_lossy(&fsck.stdout));

    // A broken chain: y.txt's (a reserved value in both FATs), then the
    // removal refused and a new file written.
    let big = d.join("big.bin");
    std::fs::write(&big, vec![0x5a; 20_000]).unwrap();
    let img2 = d.join("chain.img");
    let img2_s = img2.to_str().unwrap();
    tool("mkfs.fat", &["-F", "16", "-C", img2_s, "32768"]);
    exo_ok(&["--rw", img2_s, "put", big.to_str().unwrap(), "/big.bin"]);
    let mut raw = std::fs::read(&img2).unwrap();
    let le = |at: usize| usize::from(u16::from_le_bytes([raw[at], raw[at + 1]]));
    let (bytes, reserved, fats, fat_sectors) = (le(0x0b), le(0x0e), usize::from(raw[0x10]), le(0x16));
    for f in 0..fats {
        let at = (reserved + f * fat_sectors) * bytes + 2 * 4; // cluster 4 of big.bin's 2..
        raw[at..at + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
    }
    std::fs::write(&img2, &raw).unwrap();
    let rm = exo(&["--rw", img2_s, "rm", "/big.bin"]);
    assert_eq!(rm.status.code(), Some(3), "{rm:?}");
    exo_ok(&["--rw", img2_s, "put", &y, "/new.txt"]);
    let fsck = Command::new("fsck.fat").args(["-n", img2_s]).output().unwrap();
    let said = String::from_utf8_lossy(&fsck.stdout);
    assert!(!said.contains("share"), "{said}");
}

#[test]
fn fuse_mount_shows_the_same_tree_read_only() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: FUSE mounts cannot be tested here (load the fuse module)"
    );
    let d = scratch("fuse");
    let src = d.join("src");
    make_tree(&src, true);
    let img = ext4_image(&d, &src, "64M");
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut child =
        Command::new(EXO_IMG).args([img.to_str().unwrap(), "mount", mnt.to_str().unwrap()]).spawn().unwrap();
    let start = Instant::now();
    while !mnt.join("a").exists() {
        assert!(start.elapsed() < Duration::from_secs(15), "mount did not appear");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exo-img mount exited early: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = host_view(&mnt);
    let unmount = || Command::new("fusermount3").args(["-u", mnt.to_str().unwrap()]).status();
    let mut want = host_view(&src);
    want.insert("/lost+found".into(), None);
    let write = std::fs::write(mnt.join("new"), b"x");
    let link = std::fs::read_link(mnt.join("link-in"));
    assert!(unmount().unwrap().success(), "fusermount3 -u failed");
    let status = child.wait().unwrap();
    assert!(status.success(), "exo-img mount ended with {status:?}");
    assert_eq!(seen, want, "mounted tree differs");
    assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));
    assert_eq!(link.unwrap(), Path::new("a/big.bin"));
}

#[test]
fn fuse_mount_rw_changes_a_fat_image_that_fsck_accepts() {
    assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: FUSE mounts cannot be tested here");
    let d = scratch("fuserw");
    let src = d.join("src");
    make_tree(&src, false);
    let img = fat_image(&d, &src, "48M");
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut child =
        Command::new(EXO_IMG).args(["--rw", img.to_str().unwrap(), "mount", mnt.to_str().unwrap()]).spawn().unwrap();
    let start = Instant::now();
    while !mnt.join("a").exists() {
        assert!(start.elapsed() < Duration::from_secs(15), "mount did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let ops = (|| -> std::io::Result<()> {
        std::fs::create_dir(mnt.join("made here"))?;
        std::fs::write(mnt.join("made here/copied.bin"), &data)?;
        std::fs::rename(mnt.join("empty"), mnt.join("made here/moved"))?;
        std::fs::remove_file(mnt.join("a/big.bin"))?;
        assert_eq!(std::fs::read(mnt.join("made here/copied.bin"))?, data);
        // Lengths change both ways: cut, then extended with zeros.
        std::fs::write(mnt.join("resized"), &data[..100_000])?;
        let f = std::fs::OpenOptions::new().write(true).open(mnt.join("resized"))?;
        f.set_len(70_000)?;
        f.set_len(90_000)?;
        drop(f);
        Ok(())
    })();
    assert!(Command::new("fusermount3").args(["-u", mnt.to_str().unwrap()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    ops.expect("file operations through the mount");
    let back = d.join("back.bin");
    tool("mcopy", &["-n", "-i", img.to_str().unwrap(), "::/made here/copied.bin", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let resized = d.join("resized.bin");
    tool("mcopy", &["-n", "-i", img.to_str().unwrap(), "::/resized", resized.to_str().unwrap()]);
    let mut want = data[..70_000].to_vec();
    want.resize(90_000, 0);
    assert_eq!(std::fs::read(&resized).unwrap(), want);
    let fsck = Command::new("fsck.fat").args(["-n", img.to_str().unwrap()]).output().unwrap();
    assert!(fsck.status.success(), "fsck.fat -n: {}", String::from_utf8_lossy(&fsck.stdout));
}

/// NetBSD's own ext2fs, ffs and msdosfs, in a rump kernel inside the
/// sandboxed server, read the same trees as the host (ext2 and FAT images
/// from Debian's tools, FFS v1 and v2 from makefs).
#[cfg(rump_sysroot)]
#[test]
fn netbsd_backend_reads_ext2_ffs_and_msdos() {
    let root = env!("RUMP_SYSROOT");
    let opts = ["--backend", "netbsd", "--rump-sysroot", root];
    let dir = scratch("netbsd");
    let src = dir.join("src");
    make_tree(&src, true);
    let ext2 = dir.join("ext2.img");
    tool("truncate", &["-s", "32M", ext2.to_str().unwrap()]);
    tool("mkfs.ext2", &["-q", "-d", src.to_str().unwrap(), ext2.to_str().unwrap()]);
    compare_with(&ext2, &src, &["/lost+found"], &opts, false);
    for version in ["1", "2"] {
        let ffs = dir.join(format!("ffs{version}.img"));
        tool(
            "makefs",
            &[
                "-t",
                "ffs",
                "-s",
                "32m",
                "-o",
                &format!("version={version}"),
                ffs.to_str().unwrap(),
                src.to_str().unwrap(),
            ],
        );
        compare_with(&ffs, &src, &[], &opts, false);
        let info = String::from_utf8(exo_ok(&[ffs.to_str().unwrap(), "--backend", "netbsd", "info"])).unwrap();
        assert!(info.contains("ffs (NetBSD rump kernel)") && info.contains("threads, no processes"), "{info}");
    }
    let fat_src = dir.join("fat-src");
    make_tree(&fat_src, false);
    let fat = fat_image(&dir, &fat_src, "64M");
    compare_with(&fat, &fat_src, &[], &opts, true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(not(rump_sysroot))]
#[test]
#[ignore = "needs RUMP_SYSROOT naming a NetBSD rump kernel installation (lib/librump.so ...) at build time"]
fn netbsd_backend_reads_ext2_ffs_and_msdos() {
    panic!("built without RUMP_SYSROOT");
}

/// Without a rump kernel, the netbsd backend says what it needs.
#[test]
fn netbsd_backend_without_a_rump_kernel_says_so() {
    let o = Command::new(EXO_IMG)
        .args(["/nonexistent.img", "--backend", "netbsd", "ls"])
        .env_remove("RUMP_SYSROOT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a NetBSD rump kernel"), "{o:?}");
    let o = exo(&["/nonexistent.img", "--backend", "netbsd", "--rump-sysroot", "/", "ls"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no lib/librump.so"), "{o:?}");
}
