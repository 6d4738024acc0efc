//! Sealed capabilities: export a capability as an HMAC-SHA256 token and
//! import it back; establish extra sealing keys with ML-KEM-768.
//!
//! The boot key comes from RDRAND when the CPU has it. Without RDRAND the
//! kernel derives it from TSC readings taken around variable-latency
//! device accesses, which an attacker who can replay the boot could
//! predict: the kernel says so on the console.

use crate::arch::cpu;
use crate::kernel::Kernel;
use crate::object::*;
use crate::usercopy::{user_bytes, user_bytes_mut};
use exo_abi::{CapKind, Error, Rights, KEM_CIPHERTEXT_LEN, KEM_PUBLIC_LEN, NO_CAP, SEALED_TOKEN_LEN};
use exo_kcore::lattice::Label;
use exo_kcore::pci::Bdf;
use exo_seal::{Payload, SealKey};

/// Most sealing keys one process may have established at a time.
const MAX_KEYS_PER_PROCESS: usize = 8;

/// Makes the boot sealing key; the flag says whether RDRAND supplied it.
pub fn boot_key() -> (SealKey, bool) {
    let mut material = [0u8; 64];
    let mut hardware = true;
    for chunk in material.chunks_mut(8) {
        let v = match cpu::rdrand() {
            Some(v) => v,
            None => {
                hardware = false;
                // Fallback: TSC around a serial-port read, whose latency
                // varies under emulation and on hardware.
                let t0 = cpu::rdtsc();
                let _ = cpu::inb(0x3fd);
                t0.rotate_left(17) ^ cpu::rdtsc()
            }
        };
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    (exo_seal::derive_key(&material, b"ExoV6 boot sealing key v1"), hardware)
}

impl Kernel {
    /// 32 bytes from the kernel's random bit generator: HMAC-SHA256 under
    /// the boot key over a counter, the TSC and RDRAND when present.
    pub fn random_32(&mut self) -> [u8; 32] {
        self.drbg_counter += 1;
        let mut input = [0u8; 24];
        input[..8].copy_from_slice(&self.drbg_counter.to_le_bytes());
        input[8..16].copy_from_slice(&cpu::rdtsc().to_le_bytes());
        input[16..].copy_from_slice(&cpu::rdrand().unwrap_or(0).to_le_bytes());
        let boot = &self.seal_keys[0].as_ref().expect("the boot key stays").key;
        exo_seal::derive_key(&input, &boot.0).0
    }

    /// Index and generation of the object a capability names, for tokens.
    fn object_identity(&self, o: Object) -> (u32, u32, u64) {
        match o {
            Object::Process(p) => (p.0, self.procs[p.0 as usize].generation, 0),
            Object::Memory(m) => (m.0, self.mems[m.0 as usize].as_ref().map_or(0, |x| x.generation), 0),
            Object::Untyped(u) => (u, 0, 0),
            Object::Console | Object::Power | Object::PciBus | Object::Platform => (0, 0, 0),
            Object::PciFunction(f) => (f.raw() as u32, 0, 0),
            Object::IoPorts(first, count) => (u32::from(first) | u32::from(count) << 16, 0, 0),
            Object::IrqLine(line) => (u32::from(line), 0, 0),
            Object::Endpoint(e, badge) => {
                (e.0, self.endpoints[e.0 as usize].as_ref().map_or(0, |x| x.generation), badge)
            }
            Object::Notification(n) => (n.0, self.notifications[n.0 as usize].as_ref().map_or(0, |x| x.generation), 0),
        }
    }

    /// The object a token names, if it still exists with that generation.
    fn object_from_token(&self, t: &Payload) -> Result<Object, Error> {
        let kind = CapKind::from_u32(t.kind as u32).ok_or(Error::BadSeal)?;
        let i = t.object as usize;
        let live = |generation: Option<u32>| if generation == Some(t.generation) { Ok(()) } else { Err(Error::Dead) };
        Ok(match kind {
            CapKind::Process => {
                let p = self.procs.get(i).ok_or(Error::Dead)?;
                // A free entry is an ended one (until it is reused, with a
                // new generation).
                if p.state != ProcState::Alive || p.generation != t.generation {
                    return Err(Error::Dead);
                }
                Object::Process(ProcId(t.object))
            }
            CapKind::Memory => {
                live(self.mems.get(i).and_then(|m| m.as_ref()).map(|m| m.generation))?;
                Object::Memory(MemId(t.object))
            }
            CapKind::Endpoint => {
                live(self.endpoints.get(i).and_then(|m| m.as_ref()).map(|m| m.generation))?;
                Object::Endpoint(EpId(t.object), t.badge)
            }
            CapKind::Notification => {
                live(self.notifications.get(i).and_then(|m| m.as_ref()).map(|m| m.generation))?;
                Object::Notification(NtfnId(t.object))
            }
            CapKind::Untyped if i < self.untyped.len() => Object::Untyped(t.object),
            CapKind::Untyped => return Err(Error::Dead),
            CapKind::Console => Object::Console,
            CapKind::Power => Object::Power,
            CapKind::PciBus => Object::PciBus,
            CapKind::PciFunction => Object::PciFunction(Bdf::from_raw(t.object as u64).ok_or(Error::BadSeal)?),
            CapKind::Platform => Object::Platform,
            CapKind::IoPorts => {
                let (first, count) = (t.object & 0xffff, t.object >> 16);
                if !exo_abi::ioports_allowed(first.into(), count.into()) {
                    return Err(Error::BadSeal);
                }
                Object::IoPorts(first as u16, count as u16)
            }
            CapKind::IrqLine if exo_abi::irq_line_allowed(t.object.into()) => Object::IrqLine(t.object as u8),
            CapKind::IrqLine => return Err(Error::BadSeal),
        })
    }

    /// `cap_seal`: writes a token for the capability in `slot` of `p`.
    pub fn cap_seal(&mut self, p: ProcId, slot: u64, out: u64, key_id: u64, nonce: u64) -> Result<u64, Error> {
        let cap = self.proc(p).caps.get(slot)?;
        if !cap.rights.contains(Rights::GRANT) {
            return Err(Error::NoRights);
        }
        let key = self.seal_key(key_id as usize).ok_or(Error::InvalidArgument)?.clone();
        let (object, generation, badge) = self.object_identity(cap.object.object);
        let payload = Payload {
            kind: cap.object.object.kind() as u8,
            object,
            generation,
            rights: cap.rights.0,
            label: cap.object.label.encode() as u32,
            badge,
            key_id: key_id as u32,
            nonce,
            node: cap.object.node.0,
            node_generation: self.cdt.generation(cap.object.node).expect("a live capability has a node"),
        };
        let token = exo_seal::seal(&key, &payload);
        user_bytes_mut(self.proc(p).pml4, out, SEALED_TOKEN_LEN as u64)?.copy_from_slice(&token.0);
        Ok(0)
    }

    /// `cap_unseal`: checks the token at `ptr` and installs its capability,
    /// derived from the sealed one (`Dead` once that was deleted or
    /// revoked, or its object is gone).
    pub fn cap_unseal(&mut self, p: ProcId, ptr: u64, dst: u64) -> Result<u64, Error> {
        let bytes = user_bytes(self.proc(p).pml4, ptr, SEALED_TOKEN_LEN as u64)?;
        // The key id is inside the MACed payload: try the key it names,
        // and trust nothing else in the payload until the MAC verifies.
        let key_id = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes")) as usize;
        let key = self.seal_key(key_id).ok_or(Error::BadSeal)?;
        let t = exo_seal::unseal(key, bytes).map_err(|_| Error::BadSeal)?;
        let rights = Rights::from_bits(t.rights as u64).ok_or(Error::BadSeal)?;
        let label = Label::decode(t.label as u64).ok_or(Error::BadSeal)?;
        let object = self.object_from_token(&t)?;
        let node = exo_kcore::cdt::CapId(t.node);
        if self.cdt.generation(node) != Some(t.node_generation) {
            return Err(Error::Dead);
        }
        let dst = (dst != NO_CAP).then_some(dst);
        self.install_cap(p, dst, object, rights, label, Some(node))
    }

    /// `seal_key_establish`: ML-KEM-768 encapsulation to the caller's key.
    /// Charged to the caller's budget; at most [`MAX_KEYS_PER_PROCESS`]
    /// live at once per process; dropped when the process ends.
    pub fn seal_key_establish(&mut self, p: ProcId, public_key: u64, ct_out: u64) -> Result<u64, Error> {
        let mine = self.seal_keys.iter().flatten().filter(|s| s.owner.is_some_and(|(o, _)| o == p)).count();
        if mine >= MAX_KEYS_PER_PROCESS {
            return Err(Error::Exhausted);
        }
        let pml4 = self.proc(p).pml4;
        let pk = user_bytes(pml4, public_key, KEM_PUBLIC_LEN as u64)?;
        let m = self.random_32();
        let (ct, key) = exo_seal::kem_encapsulate(pk, &m).map_err(|_| Error::InvalidArgument)?;
        user_bytes_mut(pml4, ct_out, KEM_CIPHERTEXT_LEN as u64)?.copy_from_slice(&ct);
        let budget = self.proc(p).charged_to;
        self.charge_kernel(budget, crate::kernel::cost::SEAL_KEY)?;
        let slot = crate::kernel::SealKeySlot { key, owner: Some((p, budget)) };
        Ok(crate::kernel::insert_in_free_slot(&mut self.seal_keys, slot) as u64)
    }

    /// Live sealing key `id`.
    fn seal_key(&self, id: usize) -> Option<&SealKey> {
        self.seal_keys.get(id)?.as_ref().map(|s| &s.key)
    }

    /// Drops the sealing keys process `p` established: tokens sealed with
    /// them no longer verify (a later key in the same slot is another
    /// key).
    pub fn free_seal_keys_of(&mut self, p: ProcId) {
        for i in 0..self.seal_keys.len() {
            if let Some((owner, budget)) = self.seal_keys[i].as_ref().and_then(|s| s.owner) {
                if owner == p {
                    self.seal_keys[i] = None;
                    self.credit_kernel(budget, crate::kernel::cost::SEAL_KEY);
                }
            }
        }
    }
}
