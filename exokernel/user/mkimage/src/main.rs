//! `exo-mkimage OUT NAME=PATH [NAME=PATH ...]`: builds a boot image.
//!
//! If a file named `manifest` is included, it must parse, and every
//! program's binary must be in the image and be a loadable ELF file;
//! otherwise nothing is written. The image is written to a temporary file
//! and renamed, so a failed run never leaves half an image behind.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Checks the files and returns the image bytes.
fn make_image(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    if let Some((_, text)) = files.iter().find(|(n, _)| n == "manifest") {
        let text = std::str::from_utf8(text).map_err(|_| "manifest is not UTF-8".to_string())?;
        let manifest = exo_manifest::parse(text).map_err(|e| e.to_string())?;
        for p in &manifest.programs {
            let (_, data) = files.iter().find(|(n, _)| *n == p.binary).ok_or_else(|| {
                format!("program `{}` needs binary `{}`, which is not in the image", p.name, p.binary)
            })?;
            exo_elf::plan(data, exo_abi::USER_START, exo_abi::USER_END)
                .map_err(|e| format!("binary `{}` (program `{}`): {e}", p.binary, p.name))?;
        }
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    exo_bootimg::build(&refs).map_err(|e| e.to_string())
}

fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))
}

fn run(args: &[String]) -> Result<String, String> {
    let (out, specs) = args.split_first().ok_or("usage: exo-mkimage OUT NAME=PATH [NAME=PATH ...]")?;
    let mut files = Vec::new();
    for spec in specs {
        let (name, path) = spec.split_once('=').ok_or_else(|| format!("`{spec}` is not NAME=PATH"))?;
        let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        files.push((name.to_string(), data));
    }
    let image = make_image(&files)?;
    write_atomically(Path::new(out), &image)?;
    Ok(format!("wrote {out} ({} files, {} bytes)", files.len(), image.len()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(msg) => {
            println!("exo-mkimage: {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("exo-mkimage: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid static x86_64 executable: one RX segment.
    fn tiny_elf() -> Vec<u8> {
        let mut b = vec![0u8; 0x2000];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16] = 2; // ET_EXEC
        b[18] = 62; // x86_64
        b[20] = 1;
        b[24..32].copy_from_slice(&0x40_0000u64.to_le_bytes());
        b[32] = 64;
        b[52] = 64;
        b[54] = 56;
        b[56] = 1;
        b[58] = 64;
        let p = 64;
        b[p] = 1; // PT_LOAD
        b[p + 4] = 5; // R+X
        b[p + 8..p + 16].copy_from_slice(&0x1000u64.to_le_bytes());
        b[p + 16..p + 24].copy_from_slice(&0x40_0000u64.to_le_bytes());
        b[p + 32..p + 40].copy_from_slice(&0x10u64.to_le_bytes());
        b[p + 40..p + 48].copy_from_slice(&0x10u64.to_le_bytes());
        b
    }

    fn manifest(text: &str) -> (String, Vec<u8>) {
        ("manifest".into(), text.as_bytes().to_vec())
    }

    #[test]
    fn good_image_parses_back() {
        let files = vec![manifest("[program p]\nbinary = prog\n"), ("prog".into(), tiny_elf())];
        let img = make_image(&files).unwrap();
        let parsed = exo_bootimg::BootImage::parse(&img).unwrap();
        assert_eq!(parsed.find("prog").unwrap().data, &tiny_elf()[..]);
    }

    #[test]
    fn missing_binary_is_refused() {
        let e = make_image(&[manifest("[program p]\nbinary = prog\n")]).unwrap_err();
        assert!(e.contains("needs binary `prog`"), "{e}");
    }

    #[test]
    fn non_elf_binary_is_refused() {
        let e = make_image(&[manifest("[program p]\nbinary = prog\n"), ("prog".into(), b"#!/bin/sh".to_vec())])
            .unwrap_err();
        assert!(e.contains("binary `prog` (program `p`): not an ELF file"), "{e}");
    }

    #[test]
    fn bad_manifest_is_refused() {
        let e = make_image(&[manifest("[program p]\nbinary = prog\ncolour = red\n")]).unwrap_err();
        assert!(e.starts_with("manifest line 3: unknown key `colour`"), "{e}");
    }

    #[test]
    fn failed_run_writes_nothing() {
        let dir = std::env::temp_dir().join(format!("exo-mkimage-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.img");
        let r = run(&[out.display().to_string(), format!("manifest={}", dir.join("missing").display())]);
        assert!(r.unwrap_err().contains("missing"));
        assert!(!out.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
