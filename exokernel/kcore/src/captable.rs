//! A process's capability table: numbered slots, each empty or holding a
//! capability (an object plus rights).

use crate::lattice::Label;
use alloc::vec::Vec;
use exo_abi::{slot, Error, Rights};

/// The derivation rule, in one place: a copy of a capability with
/// `parent_rights` at `parent_label`, asked to keep `mask` at `label`
/// (`None`: the parent's), for a process at `holder`. Rights only shrink;
/// the label only moves down; the holder must dominate the result.
pub fn derive_rule(
    parent_rights: Rights,
    parent_label: Label,
    mask: Rights,
    label: Option<Label>,
    holder: Label,
) -> Result<(Rights, Label), Error> {
    if !parent_rights.contains(Rights::GRANT) {
        return Err(Error::NoRights);
    }
    let label = label.unwrap_or(parent_label);
    if !parent_label.dominates(label) || !holder.dominates(label) {
        return Err(Error::LabelViolation);
    }
    Ok((parent_rights.intersect(mask), label))
}

/// A capability: authority over `object` limited to `rights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap<O> {
    /// What it names.
    pub object: O,
    /// What it allows.
    pub rights: Rights,
}

/// Fixed-size table of capability slots. The slots never move: no method
/// grows or shrinks the table, so their address (see
/// [`CapTable::slots_ptr`]) holds for the table's whole life.
pub struct CapTable<O> {
    slots: Vec<Option<Cap<O>>>,
}

impl<O: Copy + PartialEq> CapTable<O> {
    /// A table of `slots` empty slots.
    pub fn new(slots: usize) -> Self {
        CapTable { slots: alloc::vec![None; slots] }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if the table has no slots at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn index(&self, slot: u64) -> Result<usize, Error> {
        usize::try_from(slot).ok().filter(|i| *i < self.slots.len()).ok_or(Error::InvalidCap)
    }

    /// Where the slots are, for as long as the table lives (the kernel's
    /// threads keep it, so that the IPC fast path finds a capability
    /// without looking up the process first).
    pub fn slots_ptr(&self) -> *const [Option<Cap<O>>] {
        self.slots.as_slice()
    }

    /// The capability in `slot`, by reference (no copy).
    #[inline]
    pub fn get_ref(&self, slot: u64) -> Option<&Cap<O>> {
        self.slots.get(usize::try_from(slot).ok()?)?.as_ref()
    }

    /// The capability in `slot`.
    pub fn get(&self, slot: u64) -> Result<Cap<O>, Error> {
        self.slots[self.index(slot)?].ok_or(Error::InvalidCap)
    }

    /// Puts `cap` in `slot`, which must be empty.
    pub fn insert_at(&mut self, slot: u64, cap: Cap<O>) -> Result<(), Error> {
        let i = self.index(slot)?;
        if self.slots[i].is_some() {
            return Err(Error::SlotInUse);
        }
        self.slots[i] = Some(cap);
        Ok(())
    }

    /// Puts `cap` in the first free slot at or above
    /// [`slot::FIRST_FREE`]; returns the slot.
    pub fn insert(&mut self, cap: Cap<O>) -> Result<u64, Error> {
        let start = (slot::FIRST_FREE as usize).min(self.slots.len());
        let i = self.slots[start..].iter().position(|s| s.is_none()).ok_or(Error::Exhausted)? + start;
        self.slots[i] = Some(cap);
        Ok(i as u64)
    }

    /// Empties `slot`, returning what it held.
    pub fn remove(&mut self, slot: u64) -> Result<Cap<O>, Error> {
        let i = self.index(slot)?;
        self.slots[i].take().ok_or(Error::InvalidCap)
    }

    /// A copy of the capability in `slot` with only the rights also in
    /// `mask`. Copying needs [`Rights::GRANT`].
    pub fn derive(&self, slot: u64, mask: Rights) -> Result<Cap<O>, Error> {
        let cap = self.get(slot)?;
        if !cap.rights.contains(Rights::GRANT) {
            return Err(Error::NoRights);
        }
        Ok(Cap { object: cap.object, rights: cap.rights.intersect(mask) })
    }

    /// Every occupied slot.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Cap<O>)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.map(|c| (i as u64, c)))
    }

    /// Removes every capability whose object matches; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&O) -> bool) -> usize {
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if s.is_some_and(|c| pred(&c.object)) {
                *s = None;
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(o: u32, r: Rights) -> Cap<u32> {
        Cap { object: o, rights: r }
    }

    #[test]
    fn get_insert_remove_errors() {
        let mut t = CapTable::new(16);
        assert_eq!(t.get(3), Err(Error::InvalidCap));
        assert_eq!(t.get(16), Err(Error::InvalidCap));
        assert_eq!(t.get(u64::MAX), Err(Error::InvalidCap));
        t.insert_at(3, cap(7, Rights::READ)).unwrap();
        assert_eq!(t.insert_at(3, cap(8, Rights::READ)), Err(Error::SlotInUse));
        assert_eq!(t.insert_at(16, cap(8, Rights::READ)), Err(Error::InvalidCap));
        assert_eq!(t.get(3), Ok(cap(7, Rights::READ)));
        assert_eq!(t.remove(3), Ok(cap(7, Rights::READ)));
        assert_eq!(t.remove(3), Err(Error::InvalidCap));
    }

    #[test]
    fn insert_skips_reserved_slots_and_fills_up() {
        let mut t = CapTable::new(slot::FIRST_FREE as usize + 2);
        assert_eq!(t.insert(cap(1, Rights::ALL)), Ok(slot::FIRST_FREE));
        assert_eq!(t.insert(cap(2, Rights::ALL)), Ok(slot::FIRST_FREE + 1));
        assert_eq!(t.insert(cap(3, Rights::ALL)), Err(Error::Exhausted));
        assert_eq!(t.get(0), Err(Error::InvalidCap), "low slots untouched");
        assert_eq!(CapTable::<u32>::new(0).insert(cap(1, Rights::ALL)), Err(Error::Exhausted));
    }

    #[test]
    fn derive_only_narrows_and_needs_grant() {
        let mut t = CapTable::new(16);
        t.insert_at(1, cap(5, Rights::READ.union(Rights::GRANT))).unwrap();
        t.insert_at(2, cap(6, Rights::ALL.intersect(Rights(!Rights::GRANT.0)))).unwrap();
        let d = t.derive(1, Rights::ALL).unwrap();
        assert_eq!(d.rights, Rights::READ.union(Rights::GRANT), "rights never grow");
        assert_eq!(t.derive(1, Rights::WRITE).unwrap().rights, Rights::NONE);
        assert_eq!(t.derive(2, Rights::READ), Err(Error::NoRights));
        assert_eq!(t.derive(9, Rights::READ), Err(Error::InvalidCap));
    }

    mod rule {
        use super::*;
        use proptest::prelude::*;

        fn label() -> impl Strategy<Value = Label> {
            (0u8..=5, 0u16..32).prop_map(|(l, c)| Label::new(l, c).unwrap())
        }

        proptest! {
            #[test]
            fn derivation_never_raises_rights_or_label(
                parent in 0u32..32, mask in 0u32..32, pl in label(), want in proptest::option::of(label()), holder in label()
            ) {
                let (parent, mask) = (Rights(parent), Rights(mask));
                match derive_rule(parent, pl, mask, want, holder) {
                    Ok((r, l)) => {
                        prop_assert!(parent.contains(r), "rights grew");
                        prop_assert!(mask.contains(r), "rights beyond the mask");
                        prop_assert!(pl.dominates(l), "label rose");
                        prop_assert!(holder.dominates(l), "holder cannot hold it");
                        prop_assert!(parent.contains(Rights::GRANT));
                    }
                    Err(Error::NoRights) => prop_assert!(!parent.contains(Rights::GRANT)),
                    Err(Error::LabelViolation) => {
                        let l = want.unwrap_or(pl);
                        prop_assert!(!pl.dominates(l) || !holder.dominates(l));
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
            }

            #[test]
            fn chains_of_derivations_stay_below_the_original(
                steps in proptest::collection::vec((0u32..32, label(), label()), 1..12), top in label()
            ) {
                let (mut rights, mut lab) = (Rights::ALL, top);
                for (mask, want, holder) in steps {
                    if let Ok((r, l)) = derive_rule(rights, lab, Rights(mask | Rights::GRANT.0), Some(want), holder) {
                        rights = r;
                        lab = l;
                    }
                    prop_assert!(Rights::ALL.contains(rights) && top.dominates(lab));
                }
            }
        }
    }

    #[test]
    fn remove_where_and_iter() {
        let mut t = CapTable::new(16);
        for (s, o) in [(1, 10), (2, 20), (9, 10)] {
            t.insert_at(s, cap(o, Rights::READ)).unwrap();
        }
        assert_eq!(t.remove_where(|o| *o == 10), 2);
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![(2, cap(20, Rights::READ))]);
    }
}
