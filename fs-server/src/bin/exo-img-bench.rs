//! `exo-img-bench`: `exo-img` parsing the image in its own process,
//! without the sandboxed server. It exists only as the baseline of
//! `scripts/bench-hosted` (what isolation costs) and is never installed
//! or documented as a tool: it parses untrusted bytes unisolated.
#![forbid(unsafe_code)]

#[path = "exo-img.rs"]
mod exo_img;

fn main() -> std::process::ExitCode {
    exo_img::entry(exo_img::Parse::InProcess)
}
