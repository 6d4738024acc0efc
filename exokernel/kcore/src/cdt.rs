//! The capability derivation tree: which capability was derived from
//! which, so that `revoke` can remove every copy made from one, wherever
//! it went.
//!
//! Nodes carry a location (for the kernel: process and slot). Removing a
//! node hands its children to its parent, so revoking an ancestor still
//! reaches them; revoking a node removes its whole subtree but keeps the
//! node itself (as seL4's revoke does).

use alloc::vec::Vec;

/// A node of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapId(pub u32);

#[derive(Clone, Debug)]
struct Node<L> {
    parent: Option<CapId>,
    children: Vec<CapId>,
    location: L,
}

/// The derivation tree.
pub struct Cdt<L> {
    nodes: Vec<Option<Node<L>>>,
    /// Per slot: how many nodes it has held (see [`Cdt::generation`]).
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl<L: Copy> Default for Cdt<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Copy> Cdt<L> {
    /// An empty tree.
    pub const fn new() -> Self {
        Cdt { nodes: Vec::new(), generations: Vec::new(), free: Vec::new() }
    }

    fn node(&self, id: CapId) -> Option<&Node<L>> {
        self.nodes.get(id.0 as usize)?.as_ref()
    }

    fn alloc(&mut self, node: Node<L>) -> CapId {
        let id = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.generations.push(0);
                self.nodes.len() as u32 - 1
            }
        };
        self.generations[id as usize] = self.generations[id as usize].wrapping_add(1);
        CapId(id)
    }

    /// The generation of live node `id`: different for every node its
    /// slot has held, so `(id, generation)` never names a later node.
    pub fn generation(&self, id: CapId) -> Option<u32> {
        self.node(id)?;
        Some(self.generations[id.0 as usize])
    }

    /// A new node with no parent (an original capability).
    pub fn insert_root(&mut self, location: L) -> CapId {
        self.alloc(Node { parent: None, children: Vec::new(), location })
    }

    /// A new child of `parent`; `None` if `parent` does not exist.
    pub fn derive(&mut self, parent: CapId, location: L) -> Option<CapId> {
        self.node(parent)?;
        let id = self.alloc(Node { parent: Some(parent), children: Vec::new(), location });
        self.nodes[parent.0 as usize].as_mut().expect("checked").children.push(id);
        Some(id)
    }

    /// Where node `id` is, if it exists.
    pub fn location(&self, id: CapId) -> Option<L> {
        self.node(id).map(|n| n.location)
    }

    /// The parent of `id`, if it has one.
    pub fn parent(&self, id: CapId) -> Option<CapId> {
        self.node(id)?.parent
    }

    /// Records that node `id` now lives at `location`.
    pub fn relocate(&mut self, id: CapId, location: L) -> bool {
        match self.nodes.get_mut(id.0 as usize).and_then(Option::as_mut) {
            Some(n) => {
                n.location = location;
                true
            }
            None => false,
        }
    }

    /// Removes node `id`; its children move to its parent (or become
    /// roots). Returns its location.
    pub fn remove(&mut self, id: CapId) -> Option<L> {
        let node = self.nodes.get_mut(id.0 as usize)?.take()?;
        self.free.push(id.0);
        if let Some(p) = node.parent {
            let siblings = &mut self.nodes[p.0 as usize].as_mut().expect("parent exists").children;
            siblings.retain(|c| *c != id);
            siblings.extend_from_slice(&node.children);
        }
        for c in &node.children {
            self.nodes[c.0 as usize].as_mut().expect("child exists").parent = node.parent;
        }
        Some(node.location)
    }

    /// Every node below `id` (not `id` itself), parents before children.
    pub fn descendants(&self, id: CapId) -> Vec<CapId> {
        let mut out = Vec::new();
        if let Some(n) = self.node(id) {
            out.extend_from_slice(&n.children);
            let mut i = 0;
            while i < out.len() {
                let children = &self.node(out[i]).expect("live descendant").children;
                out.extend_from_slice(children);
                i += 1;
            }
        }
        out
    }

    /// Removes every node below `id`, returning `(node, location)` pairs,
    /// deepest first. `id` itself stays.
    pub fn revoke(&mut self, id: CapId) -> Vec<(CapId, L)> {
        let below = self.descendants(id);
        let mut out = Vec::with_capacity(below.len());
        for d in below.into_iter().rev() {
            let loc = self.remove(d).expect("live descendant");
            out.push((d, loc));
        }
        out
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// True if no node is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn revoke_removes_subtree_only() {
        let mut t = Cdt::new();
        let r = t.insert_root('r');
        let a = t.derive(r, 'a').unwrap();
        let b = t.derive(a, 'b').unwrap();
        let c = t.derive(r, 'c').unwrap();
        let mut gone: Vec<char> = t.revoke(a).into_iter().map(|x| x.1).collect();
        gone.sort();
        assert_eq!(gone, ['b']);
        assert!(t.location(a).is_some() && t.location(b).is_none() && t.location(c).is_some());
        let mut gone: Vec<char> = t.revoke(r).into_iter().map(|x| x.1).collect();
        gone.sort();
        assert_eq!(gone, ['a', 'c']);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn remove_hands_children_to_parent() {
        let mut t = Cdt::new();
        let r = t.insert_root(0);
        let a = t.derive(r, 1).unwrap();
        let b = t.derive(a, 2).unwrap();
        assert_eq!(t.remove(a), Some(1));
        assert_eq!(t.parent(b), Some(r));
        assert_eq!(t.revoke(r), vec![(b, 2)]);
        assert_eq!(t.derive(a, 9), None, "removed parent");
        assert_eq!(t.remove(a), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Root,
        Derive(usize),
        Remove(usize),
        Revoke(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Root),
            (0usize..64).prop_map(Op::Derive),
            (0usize..64).prop_map(Op::Derive),
            (0usize..64).prop_map(Op::Remove),
            (0usize..64).prop_map(Op::Revoke),
        ]
    }

    /// Reference model: id -> parent, computed naively.
    fn model_descendants(parent: &BTreeMap<u32, Option<u32>>, id: u32) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        loop {
            let before = out.len();
            for (c, p) in parent {
                if let Some(p) = p {
                    if *p == id || out.contains(p) {
                        out.insert(*c);
                    }
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    #[test]
    fn generations_tell_reused_slots_apart() {
        let mut t: Cdt<u32> = Cdt::new();
        let a = t.insert_root(1);
        let g = t.generation(a).unwrap();
        t.remove(a);
        assert_eq!(t.generation(a), None, "a removed node has no generation");
        let b = t.insert_root(2);
        assert_eq!(b, a, "the slot is reused");
        assert_ne!(t.generation(b), Some(g), "but not its generation");
    }

    proptest! {
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec(op(), 1..200)) {
            let mut t = Cdt::new();
            let mut model: BTreeMap<u32, Option<u32>> = BTreeMap::new();
            for (next_label, op) in (0u32..).zip(ops) {
                let live: Vec<u32> = model.keys().copied().collect();
                let pick = |i: usize| live.get(i % live.len().max(1)).copied();
                match op {
                    Op::Root => {
                        let id = t.insert_root(next_label);
                        model.insert(id.0, None);
                    }
                    Op::Derive(i) => if let Some(p) = pick(i) {
                        let id = t.derive(CapId(p), next_label).unwrap();
                        prop_assert!(!model.contains_key(&id.0));
                        model.insert(id.0, Some(p));
                    },
                    Op::Remove(i) => if let Some(x) = pick(i) {
                        prop_assert!(t.remove(CapId(x)).is_some());
                        let gp = model.remove(&x).unwrap();
                        for p in model.values_mut() {
                            if *p == Some(x) { *p = gp; }
                        }
                    },
                    Op::Revoke(i) => if let Some(x) = pick(i) {
                        let want = model_descendants(&model, x);
                        let got: BTreeSet<u32> = t.revoke(CapId(x)).into_iter().map(|(id, _)| id.0).collect();
                        prop_assert_eq!(&got, &want);
                        for d in want { model.remove(&d); }
                        prop_assert!(model.contains_key(&x), "revoke keeps the node itself");
                    },
                }
                prop_assert_eq!(t.len(), model.len());
                for (id, p) in &model {
                    prop_assert_eq!(t.parent(CapId(*id)).map(|c| c.0), *p);
                }
            }
        }
    }
}
