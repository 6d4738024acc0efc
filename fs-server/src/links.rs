//! Symbolic links extracted from an image: created last, and only where
//! they resolve inside the destination.
//!
//! A link's target cannot be judged on its own: `dot -> .` and
//! `esc -> dot/..` each look harmless, together `esc` is the parent of
//! the destination. So `exo-img extract` writes every file and directory
//! first (no link exists yet that a write could follow) and hands the
//! links to [`create_links`], which decides them one by one, in path
//! order, by resolving each target the way the kernel will, component by
//! component against the destination as it is:
//!
//! * a component that is a symlink there (one created before, or one
//!   that was already in the destination) is followed: its target is read
//!   back and resolved in turn, at most [`MAX_HOPS`] of them;
//! * a component that is one of the links still to be created is decided
//!   first (a loop among them refuses the link being decided);
//! * anything else (a directory, a file, nothing) is entered by name;
//! * `..` above the destination, or an absolute target, refuses the link.
//!
//! Nothing but these links is created from here on, so what a decision
//! saw stays true: a name that was neither there nor still to come never
//! appears, and a link is created only after every link it goes through.
//! A destination that folds names (case-insensitive file systems) could
//! still make two names one; so once all are created every link is
//! resolved again from scratch and any that now leads out is removed,
//! until none does.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Most symlinks one resolution follows (Linux's limit).
pub const MAX_HOPS: u32 = 40;
/// Most path components one resolution walks, links' targets included.
const MAX_STEPS: u32 = 1 << 14;

/// A link to create: where (relative to the destination), its target,
/// and its path in the image (for messages).
#[derive(Clone, Debug)]
pub struct Link {
    /// Where it goes, relative to the destination (no `.`, `..` or
    /// links in it: the directories extracted).
    pub rel: PathBuf,
    /// Its target, the exact bytes the image holds.
    pub target: Vec<u8>,
    /// Its path in the image.
    pub src: String,
}

/// A link that was not created, and why.
#[derive(Debug)]
pub struct Refused {
    /// The link.
    pub link: Link,
    /// Why not.
    pub why: String,
}

/// What became of a link so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Deciding,
    Created,
    Refused,
}

/// Why a resolution failed.
enum Fail {
    /// It leads out of the destination.
    Out(&'static str),
    /// It goes through a link being decided (a loop among new links).
    Loop,
}

struct Linker<'a> {
    dest: &'a Path,
    links: BTreeMap<PathBuf, (Link, State)>,
    refused: Vec<Refused>,
}

impl Linker<'_> {
    /// Decides the link at `rel` (creating it if safe); true if it exists
    /// now.
    fn decide(&mut self, rel: &Path, nesting: u32) -> Result<bool, Fail> {
        let (link, state) = match self.links.get(rel) {
            Some((l, s)) => (l.clone(), *s),
            None => return Ok(false),
        };
        match state {
            State::Created => return Ok(true),
            State::Refused => return Ok(false),
            State::Deciding => return Err(Fail::Loop),
            State::Waiting => {}
        }
        self.set(rel, State::Deciding);
        let from = parent_components(rel);
        let verdict = if nesting > MAX_HOPS {
            Err("it goes through too many symlinks".to_string())
        } else {
            let mut budget = (0, 0);
            match self.walk(from, &link.target, &mut budget, Some(nesting)) {
                Ok(_) => std::os::unix::fs::symlink(OsStr::from_bytes(&link.target), self.dest.join(rel))
                    .map_err(|e| e.to_string()),
                Err(Fail::Out(why)) => Err(why.to_string()),
                Err(Fail::Loop) => Err("it is part of a loop of symlinks".to_string()),
            }
        };
        match verdict {
            Ok(()) => {
                self.set(rel, State::Created);
                Ok(true)
            }
            Err(why) => {
                self.set(rel, State::Refused);
                self.refused.push(Refused { link, why });
                Ok(false)
            }
        }
    }

    fn set(&mut self, rel: &Path, state: State) {
        if let Some(e) = self.links.get_mut(rel) {
            e.1 = state;
        }
    }

    /// Resolves `target` from directory `stack` (components under the
    /// destination) as the kernel will: the directory it ends in, or why
    /// it leaves the destination. `budget` counts (links followed, steps);
    /// `nesting` is `Some` while deciding (links still to come are decided
    /// on the way), `None` when checking what exists.
    fn walk(
        &mut self,
        mut stack: Vec<OsString>,
        target: &[u8],
        budget: &mut (u32, u32),
        nesting: Option<u32>,
    ) -> Result<Vec<OsString>, Fail> {
        const OUT: &str = "it points outside the destination";
        if target.is_empty() {
            return Err(Fail::Out("its target is empty"));
        }
        if target.starts_with(b"/") {
            return Err(Fail::Out(OUT));
        }
        for c in target.split(|&b| b == b'/') {
            match c {
                b"" | b"." => continue,
                b".." => {
                    stack.pop().ok_or(Fail::Out(OUT))?;
                    continue;
                }
                _ => {}
            }
            budget.1 += 1;
            if budget.1 > MAX_STEPS {
                return Err(Fail::Out("its target is too long to check"));
            }
            let name = OsStr::from_bytes(c);
            let rel: PathBuf = stack.iter().map(PathBuf::from).collect::<PathBuf>().join(name);
            if let Some(nesting) = nesting {
                self.decide(&rel, nesting + 1)?;
            }
            let here = self.dest.join(&rel);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() => {
                    budget.0 += 1;
                    if budget.0 > MAX_HOPS {
                        return Err(Fail::Out("it goes through too many symlinks"));
                    }
                    let t = std::fs::read_link(&here).map_err(|_| Fail::Out("a symlink on its way cannot be read"))?;
                    stack = self.walk(stack, t.as_os_str().as_bytes(), budget, nesting)?;
                }
                _ => stack.push(name.to_os_string()),
            }
        }
        Ok(stack)
    }
}

fn parent_components(rel: &Path) -> Vec<OsString> {
    rel.parent().map_or_else(Vec::new, |p| p.iter().map(OsStr::to_os_string).collect())
}

/// Creates `links` under `dest` where they stay inside it (see the
/// module's comment); returns those refused, with why. Call it only when
/// everything else has been extracted: nothing may be written after.
pub fn create_links(dest: &Path, links: Vec<Link>) -> Vec<Refused> {
    let mut l = Linker {
        dest,
        links: links.into_iter().map(|k| (k.rel.clone(), (k, State::Waiting))).collect(),
        refused: Vec::new(),
    };
    let all: Vec<PathBuf> = l.links.keys().cloned().collect();
    for rel in &all {
        // A loop is refused inside `decide`: nothing is left to report.
        let _ = l.decide(rel, 0);
    }
    // Again from scratch, now that all exist, until none leads out.
    loop {
        let mut removed = false;
        for rel in &all {
            let Some((link, State::Created)) = l.links.get(rel).cloned() else { continue };
            let mut budget = (0, 0);
            let why = match l.walk(parent_components(rel), &link.target, &mut budget, None) {
                Ok(_) => continue,
                Err(Fail::Out(why)) => why,
                Err(Fail::Loop) => "it is part of a loop of symlinks",
            };
            let _ = std::fs::remove_file(dest.join(rel));
            l.set(rel, State::Refused);
            l.refused.push(Refused { link, why: why.to_string() });
            removed = true;
        }
        if !removed {
            break;
        }
    }
    l.refused
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own for each call (tests run in parallel).
    fn scratch(name: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("exo-links-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("out/dir/sub")).unwrap();
        d
    }

    fn link(rel: &str, target: &str) -> Link {
        Link { rel: rel.into(), target: target.as_bytes().to_vec(), src: format!("/{rel}") }
    }

    fn refused(links: &[(&str, &str)]) -> Vec<String> {
        let d = scratch(&links.len().to_string());
        let out = d.join("out");
        let mut r: Vec<String> = create_links(&out, links.iter().map(|(a, b)| link(a, b)).collect())
            .into_iter()
            .map(|r| r.link.rel.display().to_string())
            .collect();
        r.sort();
        // Whatever was created resolves inside.
        for (rel, _) in links {
            if let Ok(p) = std::fs::canonicalize(out.join(rel)) {
                assert!(p.starts_with(std::fs::canonicalize(&out).unwrap()), "{rel} -> {}", p.display());
            }
        }
        let _ = std::fs::remove_dir_all(&d);
        r
    }

    #[test]
    fn chains_that_leave_are_refused() {
        assert_eq!(refused(&[("dot", "."), ("esc", "dot/..")]), ["esc"]);
        assert_eq!(refused(&[("dir/up", ".."), ("esc2", "dir/up/..")]), ["esc2"]);
        // The chain decided in the other order: the link it needs first.
        assert_eq!(refused(&[("a", "z/.."), ("z", ".")]), ["a"]);
        assert_eq!(refused(&[("dir/sub/l", "../../x"), ("dir/m", "sub/l/../..")]), ["dir/m"]);
        assert_eq!(refused(&[("abs", "/etc/passwd"), ("up", "..")]), ["abs", "up"]);
    }

    #[test]
    fn links_that_stay_inside_are_created() {
        assert!(refused(&[("in", "dir/sub"), ("via", "in/../sub2"), ("dir/x", "../dir/./sub")]).is_empty());
        assert!(refused(&[("dangling", "nowhere/at/all")]).is_empty());
        assert!(refused(&[("dir/back", "../dir/sub/..")]).is_empty());
    }

    #[test]
    fn loops_are_refused_not_followed_forever() {
        // `b` would close the loop; `a` stays, pointing at nothing.
        assert_eq!(refused(&[("a", "b"), ("b", "a")]), ["b"]);
        assert_eq!(refused(&[("self", "self/x")]), ["self"]);
    }
}
