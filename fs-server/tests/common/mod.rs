//! What the hosted-mode integration tests share: the `exo-img` under
//! test, scratch directories, running the Debian tools that build images,
//! running `exo-img` within a time limit.
#![allow(dead_code)] // each test file uses its own part of it

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `exo-img` under test.
pub const EXO_IMG: &str = env!("CARGO_BIN_EXE_exo-img");
/// What any one run of `exo-img` may take: hostile images must not stall
/// it.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A fresh, empty directory for one test, of this test file and process
/// alone (tests run in parallel). It is removed when the test passes and
/// kept, its path printed, when the test fails: a suite run thousands of
/// times must not fill the disk with images.
pub struct Scratch(Option<tempfile::TempDir>);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.as_ref().expect("scratch directory").path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!("scratch directory kept for the failed test: {}", d.keep().display());
            }
        }
    }
}

/// A xorshift64 generator started at `seed`: the tests' seeded bytes and
/// choices, the same on every run.
pub fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A [`Scratch`] directory for test `name`.
pub fn scratch(name: &str) -> Scratch {
    let file = env!("CARGO_CRATE_NAME");
    let d = tempfile::Builder::new().prefix(&format!("exo-{file}-{name}-")).tempdir().expect("scratch directory");
    Scratch(Some(d))
}

/// Runs a tool that builds or checks an image; it must succeed.
pub fn tool(cmd: &str, args: &[&str]) {
    let out =
        Command::new(cmd).args(args).env("LC_ALL", "C.UTF-8").env("MTOOLS_SKIP_CHECK", "1").output().unwrap_or_else(
            |e| panic!("{cmd} not runnable ({e}): scripts/test installs e2fsprogs, dosfstools and mtools"),
        );
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `exo-img` with `args`, within [`RUN_LIMIT`].
pub fn exo(args: &[&str]) -> Output {
    let start = Instant::now();
    let o = Command::new(EXO_IMG).args(args).output().expect("run exo-img");
    assert!(start.elapsed() < RUN_LIMIT, "exo-img {args:?} took {:?}", start.elapsed());
    o
}

/// Its standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the debugfs commands `cmds` on `img` (read-write with `write`:
/// links with any target, inode fields, journal transactions ...),
/// returning what they printed. debugfs exits 0 whatever happens, so
/// anything on its standard error but its banner fails the test.
pub fn debugfs_script(img: &Path, write: bool, cmds: &[impl AsRef<str>]) -> Vec<u8> {
    let mut args = vec!["-f", "-", img.to_str().unwrap()];
    if write {
        args.insert(0, "-w");
    }
    let mut child = Command::new("debugfs")
        .args(&args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("debugfs (Debian package e2fsprogs)");
    let script: Vec<&str> = cmds.iter().map(AsRef::as_ref).collect();
    child.stdin.take().unwrap().write_all(script.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = err.lines().filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty()).collect();
    assert!(out.status.success() && complaints.is_empty(), "debugfs {script:?}: {err}");
    out.stdout
}

/// The host's view: relative path -> (is_dir, contents for files).
pub fn host_view(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = format!("/{}", e.path().strip_prefix(root).unwrap().display());
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(rel, None);
                walk(root, &e.path(), out);
            } else if t.is_file() {
                out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}
