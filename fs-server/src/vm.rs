//! `--isolation vm`: ExoV6 in QEMU as the file server. The untrusted image
//! is the VM's virtio disk, parsed by ExoV6's native file server in its
//! own process over ExoV6's virtio-blk driver; `fs-bridge` relays the file
//! protocol between the VM's second serial port and that server, so the
//! host's client ([`crate::client::Client`]) talks to the VM exactly as
//! it talks to a sandboxed server process: the same length-prefixed
//! messages on a Unix socket, here QEMU's end of COM2.
//!
//! QEMU runs as the calling user in its own process group, with no
//! network, no display, the image (read-only unless `--rw`), ExoV6's
//! kernel and boot image and nothing else of the host's files, and with
//! its own seccomp sandbox (`-sandbox on`). ExoV6's console (COM1) goes
//! to a file in a private temporary directory; its last lines are shown
//! when the appliance dies.

use crate::codepage::CodePage;
use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The appliance's files, built by `scripts/build` (exokernel.elf and the
/// two boot images).
pub const KERNEL: &str = "exokernel.elf";
/// The boot image for a read-only image.
pub const IMAGE_RO: &str = "exo-img-vm.img";
/// The boot image for `--rw` (a writable FAT file server).
pub const IMAGE_RW: &str = "exo-img-vm-rw.img";
/// The boot image for `--backend netbsd` (NetBSD's file systems in a rump
/// kernel, `fs-rump`; built only with a rump kernel at hand).
pub const IMAGE_NETBSD: &str = "exo-img-vm-netbsd.img";

/// What the appliance's file server is to read, and with what.
#[derive(Clone, Copy, Debug)]
pub struct Volume {
    /// The partition (`--partition`), else the first usable volume.
    pub partition: Option<usize>,
    /// FAT short names' code page (`--codepage`; native server only).
    pub codepage: CodePage,
    /// NetBSD's file systems (`--backend netbsd`) instead of the native server.
    pub netbsd: bool,
}

/// What `fs-bridge` says on COM2 once it listens: the host sends nothing
/// before.
pub const READY: &[u8] = b"exo-bridge-ready\n";
/// How long the appliance may take to boot to its bridge.
const BOOT: Duration = Duration::from_secs(60);

/// How long QEMU may take to connect to the client's socket.
const CONNECT: Duration = Duration::from_secs(20);

/// Where the appliance's files are: `$EXO_IMG_VM_DIR`, else `exov6/` next
/// to this program (an installation), else the source tree's `build/`
/// (`target/*/exo-img` two levels below it).
pub fn appliance_dir() -> Result<PathBuf, String> {
    let has = |d: &Path| d.join(KERNEL).is_file() && d.join(IMAGE_RO).is_file();
    if let Some(d) = std::env::var_os("EXO_IMG_VM_DIR") {
        let d = PathBuf::from(d);
        return if has(&d) {
            Ok(d)
        } else {
            Err(format!("EXO_IMG_VM_DIR={}: no {KERNEL} and {IMAGE_RO} there", d.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let here = exe.parent().unwrap_or(Path::new("."));
    let candidates = [here.join("exov6"), here.join("../../build")];
    candidates.iter().find(|d| has(d)).cloned().ok_or_else(|| {
        format!(
            "the ExoV6 appliance is not built: run scripts/build exokernel/user/exo-img-vm.manifest (and \
             exo-img-vm-rw.manifest for --rw), or set EXO_IMG_VM_DIR to a directory holding {KERNEL} and {IMAGE_RO} \
             (looked in {})",
            candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// A private directory for the socket and the console log, removed with
/// the appliance; and whether that appliance runs on KVM.
pub struct Scratch(PathBuf, bool);

impl Scratch {
    fn new(kvm: bool) -> std::io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = std::env::temp_dir().join(format!("exo-img-vm-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Scratch(dir, kvm))
    }

    /// ExoV6's console output so far: its last `lines` lines.
    pub fn console_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.0.join("console.log")) {
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running appliance: QEMU, the client's end of COM2, the scratch
/// directory.
pub struct Appliance {
    /// QEMU.
    pub child: Child,
    /// The file protocol's stream.
    pub stream: UnixStream,
    /// Socket and console log.
    pub scratch: Scratch,
}

/// A path as one value of a QEMU option (commas doubled).
fn qemu_value(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// How long a boot on KVM may take to reach the bridge before KVM is
/// taken for broken (on some hosts /dev/kvm exists but guests hang).
const KVM_PROBE: Duration = Duration::from_secs(5);

/// The file whose presence says KVM failed here before: later runs go
/// straight to TCG (delete it to try KVM again).
fn kvm_verdict() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("exo-img").join("kvm-failed"))
}

/// Whether to try KVM: `EXO_IMG_ACCEL` is `kvm`, or `auto` (the default)
/// with /dev/kvm usable and no earlier failure recorded (nor a place to
/// record one missing).
fn try_kvm() -> bool {
    match std::env::var("EXO_IMG_ACCEL").as_deref() {
        Ok("tcg") => false,
        Ok("kvm") => true,
        // Only where a failure can be remembered: else a broken KVM
        // would cost every run the probe's bound.
        _ => {
            let Some(verdict) = kvm_verdict() else { return false };
            let remembered = verdict.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok());
            remembered
                && !verdict.exists()
                && std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
        }
    }
}

/// Boots the appliance on `image` (writable if `rw`): QEMU connects to a
/// socket here, which becomes the stream. On KVM when it works (probed by
/// a boot that must reach the bridge within [`KVM_PROBE`]; a failure is
/// remembered), else on TCG. `volume` chooses the boot image (native or
/// NetBSD file server) and reaches that server on the kernel command line
/// (`fs-server+=codepage N partition N`, which the root task adds to the
/// manifest's arguments).
pub fn start(image: &Path, rw: bool, volume: Volume) -> Result<Appliance, String> {
    let dir = appliance_dir()?;
    let (name, how) = match (volume.netbsd, rw) {
        (true, _) => (
            IMAGE_NETBSD,
            "RUMP_SYSROOT=<a rump kernel> scripts/build exokernel/user/exo-img-vm-netbsd.manifest (docs/porting.md)",
        ),
        (false, true) => (IMAGE_RW, "scripts/build exokernel/user/exo-img-vm-rw.manifest"),
        (false, false) => (IMAGE_RO, "scripts/build exokernel/user/exo-img-vm.manifest"),
    };
    let boot = dir.join(name);
    if !boot.is_file() {
        return Err(format!("{} is not built: run {how}", boot.display()));
    }
    let image = std::fs::canonicalize(image).map_err(|e| format!("{}: {e}", image.display()))?;
    if try_kvm() {
        match start_on(&dir, &boot, &image, rw, volume, "kvm", KVM_PROBE) {
            Ok(a) => return Ok(a),
            Err(_) => {
                if let Some(f) = kvm_verdict() {
                    let _ = std::fs::create_dir_all(f.parent().unwrap_or(Path::new(".")));
                    let _ =
                        std::fs::write(&f, "the ExoV6 appliance did not boot on KVM here; delete this to try again\n");
                }
            }
        }
    }
    start_on(&dir, &boot, &image, rw, volume, "tcg", BOOT)
}

/// The boot line that gives the appliance's file server `volume`.
fn boot_line(volume: Volume) -> String {
    let partition = volume.partition.map(|p| format!(" partition {p}")).unwrap_or_default();
    if volume.netbsd {
        format!("fs-rump+={}", partition.trim_start())
    } else {
        format!("fs-server+=codepage {}{partition}", volume.codepage.number())
    }
}

/// [`start`] on accelerator `accel` (`kvm` or `tcg`), the bridge's word
/// awaited at most `ready` after QEMU connects.
fn start_on(
    dir: &Path,
    boot: &Path,
    image: &Path,
    rw: bool,
    volume: Volume,
    accel: &'static str,
    ready: Duration,
) -> Result<Appliance, String> {
    let cpu = if accel == "kvm" { "host" } else { "qemu64,+rdrand,+umip" };
    let scratch = Scratch::new(accel == "kvm").map_err(|e| format!("a private temporary directory: {e}"))?;
    let sock = scratch.0.join("com2.sock");
    let listener = UnixListener::bind(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "q35", "-cpu", cpu, "-m", "256M", "-smp", "1", "-accel", accel])
        .args(["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"])
        .arg("-kernel")
        .arg(dir.join(KERNEL))
        .arg("-initrd")
        .arg(boot)
        .arg("-append")
        .arg(boot_line(volume))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,id=disk,{}",
            qemu_value(image),
            if rw { "readonly=off" } else { "readonly=on" }
        ))
        .args(["-device", "virtio-blk-pci,drive=disk", "-nic", "none", "-display", "none", "-monitor", "none"])
        // ExoV6 powers off through it when its programs have ended.
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .arg("-serial")
        .arg(format!("file:{}", qemu_value(&scratch.0.join("console.log"))))
        .arg("-chardev")
        .arg(format!("socket,id=bridge,path={}", qemu_value(&sock)))
        .args(["-serial", "chardev:bridge", "-no-reboot"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Its own process group: a ^C meant for exo-img's terminal does not
    // reach QEMU past the client's own clean-up.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| format!("qemu-system-x86_64: {e} (install Debian's qemu-system-x86)"))?;
    let deadline = Instant::now() + CONNECT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("QEMU's serial connection: {e}"));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("QEMU ended at once ({status}): {}", err.trim()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("QEMU did not connect within {CONNECT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = std::fs::remove_file(&sock);
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    let mut stream = stream;
    if let Err(e) = wait_ready(&mut stream, ready) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("the appliance did not start: {e}; its console:\n{}", scratch.console_tail(20)));
    }
    Ok(Appliance { child, stream, scratch })
}

/// Reads the bridge's [`READY`] line, within `bound`.
fn wait_ready(stream: &mut UnixStream, bound: Duration) -> Result<(), String> {
    stream.set_read_timeout(Some(bound)).map_err(|e| e.to_string())?;
    let mut got = [0u8; READY.len()];
    stream.read_exact(&mut got).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!("no word from it in {bound:?}"),
        _ => format!("its serial line: {e}"),
    })?;
    if got != READY {
        return Err(format!("it said {:?} first", String::from_utf8_lossy(&got)));
    }
    Ok(())
}

/// Ends the appliance: the goodbye frame (a length of 0: the bridge
/// detaches, so a writable file server leaves its image clean, and ExoV6
/// powers off), then QEMU's end, at most `bound` later, else it is
/// killed.
pub fn stop(child: &mut Child, stream: &mut UnixStream, bound: Duration) {
    use std::io::Write;
    let _ = stream.write_all(&0u32.to_le_bytes());
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Scratch {
    /// What `info` says of the confinement in vm mode, around what the
    /// file server in the appliance says of itself.
    pub fn describe(&self, inner: &str) -> String {
        let accel = if self.1 { "KVM" } else { "TCG" };
        format!("QEMU VM ({accel}, no network, QEMU's seccomp sandbox): {inner}")
    }
}
