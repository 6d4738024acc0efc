//! Sealed capabilities end to end: seal and restore a capability, refuse
//! forged and stale tokens, and establish a sealing key with ML-KEM-768 so
//! that this process (standing for a server that verifies user-level
//! handles) checks kernel-sealed tokens itself. Needs console and untyped.
#![no_std]
#![no_main]

use exo_rt::abi::{map_flags, slot, CapKind, Error, Rights};
use exo_rt::caps::{self, Memory, Untyped, SELF};
use exo_rt::println;

exo_rt::entry!(main);

const VA: u64 = 0x6100_0000;
const RESTORED_VA: u64 = 0x6200_0000;

fn rdrand() -> u64 {
    loop {
        let v: u64;
        let ok: u8;
        // SAFETY: RDRAND is available to user mode; it writes a register
        // and CF only. (The test machine's CPU model includes it.)
        unsafe { core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok) };
        if ok == 1 {
            return v;
        }
    }
}

fn main(_args: &str) -> i32 {
    let untyped = Untyped::from_slot(slot::UNTYPED);
    let (mut passed, mut total) = (0, 0);
    let mut check = |name: &str, ok: bool, detail: core::fmt::Arguments| {
        total += 1;
        if ok {
            passed += 1;
        }
        println!("seal: {name}: {detail} {}", if ok { "ok" } else { "FAILED" });
    };

    // Genuine token: seal, restore into a new slot, and use it.
    let mem = untyped.alloc(1).expect("memory");
    SELF.map(mem, VA, map_flags::READ | map_flags::WRITE).expect("map");
    // SAFETY: one page mapped read-write at VA above.
    unsafe { core::ptr::write_volatile(VA as *mut u64, 0x5ea1_ed00_cafe) };
    let token = caps::seal(mem.slot(), 0, 1).expect("seal");
    let restored = caps::unseal(&token, None);
    let same = restored.and_then(|s| SELF.map(Memory::from_slot(s), RESTORED_VA, map_flags::READ)).map(|_| {
        // SAFETY: the restored capability was just mapped read-only.
        unsafe { core::ptr::read_volatile(RESTORED_VA as *const u64) }
    });
    check(
        "genuine token restored",
        same == Ok(0x5ea1_ed00_cafe),
        format_args!("slot {restored:?} maps the same page: {same:x?}"),
    );

    // Sealing needs GRANT: our console capability has only WRITE.
    let r = caps::seal(slot::CONSOLE, 0, 2);
    check("seal without grant", r == Err(Error::NoRights), format_args!("{:?}", r.map(|_| ())));

    // Forged tokens: any flipped bit, or a raised rights field.
    let refused = (0..token.len() * 8).step_by(7).all(|bit| {
        let mut t = token;
        t[bit / 8] ^= 1 << (bit % 8);
        caps::unseal(&t, None) == Err(Error::BadSeal)
    });
    check("forged tokens refused", refused, format_args!("{} altered tokens", (token.len() * 8).div_ceil(7)));

    // A token outlives its object only as a refusal.
    let gone = untyped.alloc(1).expect("memory");
    let stale = caps::seal(gone.slot(), 0, 3).expect("seal");
    caps::delete(gone.slot()).expect("delete");
    let r = caps::unseal(&stale, None);
    check("token of a freed object", r == Err(Error::Dead), format_args!("{r:?}"));

    // Revocation reaches restored copies, and unsealing cannot undo it: a
    // token of a derived capability restores a copy derived from it.
    let original = untyped.alloc(1).expect("memory");
    let derived = SELF.give(original.slot(), None, Rights::ALL, None, None).expect("derive");
    let token = caps::seal(derived, 0, 5).expect("seal the derived copy");
    let restored = caps::unseal(&token, None).expect("unseal while it lives");
    let revoked = caps::revoke(original.slot());
    let gone = caps::info(restored);
    check(
        "revoke reaches a restored copy",
        revoked == Ok(2) && gone.is_err(),
        format_args!("revoke {revoked:?}, restored slot afterwards {:?}", gone.map(|i| i.kind)),
    );
    let r = caps::unseal(&token, None);
    check("token of a revoked capability", r == Err(Error::Dead), format_args!("{r:?}"));

    // ML-KEM-768: agree on a key with the kernel, then verify its tokens
    // here, without the kernel's help or its boot key.
    let mut seed = [0u8; 64];
    for chunk in seed.chunks_mut(8) {
        chunk.copy_from_slice(&rdrand().to_le_bytes());
    }
    let keypair = exo_seal::KemKeypair::from_seed(&seed);
    let (key_id, ct) = caps::establish_seal_key(&keypair.public_key()).expect("establish");
    let key = keypair.decapsulate(&ct).expect("decapsulate");
    let token = caps::seal(mem.slot(), key_id, 4).expect("seal with established key");
    let local = exo_seal::unseal(&key, &token);
    let info = caps::info(mem.slot()).expect("info");
    let matches = local.is_ok_and(|p| {
        p.kind == CapKind::Memory as u8 && p.rights == info.rights.0 && p.key_id == key_id as u32 && p.nonce == 4
    });
    check(
        "ML-KEM key verifies kernel tokens locally",
        matches,
        format_args!("key {key_id}, payload {:?}", local.map(|p| (p.kind, p.rights))),
    );
    let stranger = exo_seal::KemKeypair::from_seed(&[0x42; 64]).decapsulate(&ct).expect("decapsulate");
    let r = exo_seal::unseal(&stranger, &token);
    check("other key pairs cannot", r == Err(exo_seal::SealError::BadMac), format_args!("{r:?}"));
    let r = caps::unseal(&token, None);
    check("kernel accepts it too", r.is_ok(), format_args!("{r:?}"));

    println!("seal: {passed}/{total} checks passed");
    if passed == total {
        0
    } else {
        1
    }
}
