//! Capability operations that span processes: install, copy (with rights,
//! labels and badges), delete and revoke, keeping the derivation tree,
//! object reference counts and mappings consistent.

use crate::kernel::Kernel;
use crate::object::*;
use exo_abi::{Error, Rights};
use exo_kcore::captable::Cap;
use exo_kcore::cdt::CapId;
use exo_kcore::lattice::Label;

/// A capability as stored in a table.
pub type KernelCap = Cap<KCap>;

impl Kernel {
    /// Puts a capability to `object` in process `p` (at `slot`, or the first
    /// free slot), derived from `parent` in the derivation tree if given.
    /// The process must dominate `label`.
    pub fn install_cap(
        &mut self,
        p: ProcId,
        slot: Option<u64>,
        object: Object,
        rights: Rights,
        label: Label,
        parent: Option<CapId>,
    ) -> Result<u64, Error> {
        if !self.proc(p).label.dominates(label) {
            return Err(Error::LabelViolation);
        }
        let node = match parent {
            Some(parent) => self.cdt.derive(parent, (p, 0)).ok_or(Error::Dead)?,
            None => self.cdt.insert_root((p, 0)),
        };
        let cap = Cap { object: KCap { object, label, node }, rights };
        let table = &mut self.proc_mut(p).caps;
        let placed = match slot {
            Some(s) => table.insert_at(s, cap).map(|_| s),
            None => table.insert(cap),
        };
        match placed {
            Ok(s) => {
                self.cdt.relocate(node, (p, s));
                self.took_cap(object);
                Ok(s)
            }
            Err(e) => {
                self.cdt.remove(node);
                Err(e)
            }
        }
    }

    /// Copies the capability in `src` of process `from` into process `to`,
    /// keeping the rights in `mask`, at `label` (default: the source's)
    /// and, for an unbadged endpoint, stamping `badge`.
    #[allow(clippy::too_many_arguments)] // each argument is one decoded syscall operand
    pub fn copy_cap(
        &mut self,
        from: ProcId,
        src: u64,
        to: ProcId,
        dst: Option<u64>,
        mask: Rights,
        label: Option<Label>,
        badge: Option<u64>,
    ) -> Result<u64, Error> {
        let source = self.proc(from).caps.get(src)?;
        let (rights, label) =
            exo_kcore::captable::derive_rule(source.rights, source.object.label, mask, label, self.proc(to).label)?;
        let object = match (source.object.object, badge) {
            (o, None) => o,
            (Object::Endpoint(ep, 0), Some(b)) if b != 0 => Object::Endpoint(ep, b),
            _ => return Err(Error::InvalidArgument),
        };
        self.install_cap(to, dst, object, rights, label, Some(source.object.node))
    }

    /// Removes the capability in `slot` of `p`. Its derived copies stay
    /// (re-attached to its parent) and so do mappings it made (their
    /// authority passes to the parent, if any).
    pub fn delete_cap(&mut self, p: ProcId, slot: u64) -> Result<(), Error> {
        let cap = self.proc_mut(p).caps.remove(slot)?;
        let parent = self.cdt.parent(cap.object.node);
        self.cdt.remove(cap.object.node);
        self.reassign_mappings(cap.object.node, parent);
        if cap.object.object.may_bind_hardware() {
            self.release_bindings(cap.object.node);
        }
        self.drop_cap(cap.object.object);
        Ok(())
    }

    /// Deletes every capability derived from the one in `slot` of `p`, in
    /// every process, and unmaps what they mapped. Returns how many went.
    pub fn revoke_cap(&mut self, p: ProcId, slot: u64) -> Result<u64, Error> {
        let node = self.proc(p).caps.get(slot)?.object.node;
        let gone = self.cdt.revoke(node);
        for (n, (q, s)) in &gone {
            self.unmap_via(*n);
            if let Ok(cap) = self.proc_mut(*q).caps.remove(*s) {
                debug_assert_eq!(cap.object.node, *n);
                if cap.object.object.may_bind_hardware() {
                    self.release_bindings(*n);
                }
                self.drop_cap(cap.object.object);
            }
        }
        Ok(gone.len() as u64)
    }

    /// Mappings made through `node` now stand on `parent` instead.
    fn reassign_mappings(&mut self, node: CapId, parent: Option<CapId>) {
        for proc in self.procs.iter_mut() {
            for m in proc.mappings.iter_mut().filter(|m| m.via == Some(node)) {
                m.via = parent;
            }
        }
    }

    /// Unmaps every mapping made through `node`, in every process.
    fn unmap_via(&mut self, node: CapId) {
        for i in 0..self.procs.len() {
            let p = ProcId(i as u32);
            let vas: alloc::vec::Vec<u64> =
                self.procs[i].mappings.iter().filter(|m| m.via == Some(node)).map(|m| m.va).collect();
            for va in vas {
                let _ = self.unmap(p, va);
            }
        }
    }

    /// Removes every capability of an ending process.
    pub fn delete_all_caps(&mut self, p: ProcId) {
        let slots: alloc::vec::Vec<u64> = self.proc(p).caps.iter().map(|(s, _)| s).collect();
        for s in slots {
            let _ = self.delete_cap(p, s);
        }
    }
}
