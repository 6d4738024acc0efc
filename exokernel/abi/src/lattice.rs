//! The security lattice: labels ordered by dominance, with join and meet.
//!
//! A label is a level (0..=5) and a set of categories, ordered as in
//! Denning's lattice model: `a` dominates `b` when `a`'s level is at least
//! `b`'s and `a`'s categories include `b`'s. Join takes the higher level
//! and the union, meet the lower level and the intersection, so the laws
//! of a bounded lattice hold by construction (and are checked by property
//! tests below). The named labels of the original design sit in it as:
//!
//! ```text
//!                 ROOT (top)
//!                   |
//!                 SYSTEM
//!           /       |       \
//!       NETWORK    FILE     MEM
//!        /   \
//!      TCP   UDP
//!        \   /
//!        USER
//!          |
//!        GUEST
//!          |
//!     SANDBOX (bottom)
//! ```
//! (FILE and MEM also dominate USER.)

/// A point in the lattice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    level: u8,
    categories: u16,
}

/// Category bits.
mod cat {
    pub const NET: u16 = 1 << 0;
    pub const FILE: u16 = 1 << 1;
    pub const MEM: u16 = 1 << 2;
    pub const TCP: u16 = 1 << 3;
    pub const UDP: u16 = 1 << 4;
    pub const ALL: u16 = 0x1f;
}

/// Highest level.
pub const MAX_LEVEL: u8 = 5;

impl Label {
    /// The least label: dominated by every label.
    pub const BOTTOM: Label = Label { level: 0, categories: 0 };
    /// The greatest label: dominates every label.
    pub const TOP: Label = Label { level: MAX_LEVEL, categories: cat::ALL };
    /// The root task and the kernel.
    pub const ROOT: Label = Label::TOP;
    /// System servers.
    pub const SYSTEM: Label = Label { level: 4, categories: cat::ALL };
    /// The network stack.
    pub const NETWORK: Label = Label { level: 3, categories: cat::NET | cat::TCP | cat::UDP };
    /// File servers.
    pub const FILE: Label = Label { level: 3, categories: cat::FILE };
    /// Memory services.
    pub const MEM: Label = Label { level: 3, categories: cat::MEM };
    /// TCP endpoints.
    pub const TCP: Label = Label { level: 2, categories: cat::NET | cat::TCP };
    /// UDP endpoints.
    pub const UDP: Label = Label { level: 2, categories: cat::NET | cat::UDP };
    /// Ordinary applications.
    pub const USER: Label = Label { level: 2, categories: 0 };
    /// Less trusted applications.
    pub const GUEST: Label = Label { level: 1, categories: 0 };
    /// Untrusted code: the bottom.
    pub const SANDBOX: Label = Label::BOTTOM;

    /// The named labels, with their names.
    pub const NAMED: [(&'static str, Label); 10] = [
        ("root", Label::ROOT),
        ("system", Label::SYSTEM),
        ("network", Label::NETWORK),
        ("file", Label::FILE),
        ("mem", Label::MEM),
        ("tcp", Label::TCP),
        ("udp", Label::UDP),
        ("user", Label::USER),
        ("guest", Label::GUEST),
        ("sandbox", Label::SANDBOX),
    ];

    /// A label from its parts; `None` if the level or a category is out
    /// of range.
    pub fn new(level: u8, categories: u16) -> Option<Label> {
        (level <= MAX_LEVEL && categories & !cat::ALL == 0).then_some(Label { level, categories })
    }

    /// True if `self` is at least as high as `other` in the lattice.
    pub fn dominates(self, other: Label) -> bool {
        self.level >= other.level && self.categories & other.categories == other.categories
    }

    /// Least upper bound.
    pub fn join(self, other: Label) -> Label {
        Label { level: self.level.max(other.level), categories: self.categories | other.categories }
    }

    /// Greatest lower bound.
    pub fn meet(self, other: Label) -> Label {
        Label { level: self.level.min(other.level), categories: self.categories & other.categories }
    }

    /// Encoding for system-call arguments: `level << 16 | categories`.
    pub fn encode(self) -> u64 {
        (self.level as u64) << 16 | self.categories as u64
    }

    /// Decodes [`Label::encode`]; `None` for anything else.
    pub fn decode(v: u64) -> Option<Label> {
        if v >> 24 != 0 {
            return None;
        }
        Label::new((v >> 16) as u8, v as u16)
    }

    /// The label called `name` (lower case), if any.
    pub fn from_name(name: &str) -> Option<Label> {
        Label::NAMED.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
    }

    /// The name of this label, if it is a named one.
    pub fn name(self) -> Option<&'static str> {
        Label::NAMED.iter().find(|(_, l)| *l == self).map(|(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = Label> {
        (0..=MAX_LEVEL, 0..=cat::ALL).prop_map(|(l, c)| Label::new(l, c).unwrap())
    }

    proptest! {
        #[test]
        fn join_meet_laws(a in label(), b in label(), c in label()) {
            prop_assert_eq!(a.join(b), b.join(a));
            prop_assert_eq!(a.meet(b), b.meet(a));
            prop_assert_eq!(a.join(b).join(c), a.join(b.join(c)));
            prop_assert_eq!(a.meet(b).meet(c), a.meet(b.meet(c)));
            prop_assert_eq!(a.join(a), a);
            prop_assert_eq!(a.meet(a), a);
            prop_assert_eq!(a.join(a.meet(b)), a, "absorption");
            prop_assert_eq!(a.meet(a.join(b)), a, "absorption");
        }

        #[test]
        fn dominance_is_a_partial_order_matching_join_and_meet(a in label(), b in label(), c in label()) {
            prop_assert!(a.dominates(a));
            if a.dominates(b) && b.dominates(a) { prop_assert_eq!(a, b); }
            if a.dominates(b) && b.dominates(c) { prop_assert!(a.dominates(c)); }
            prop_assert_eq!(a.dominates(b), a.join(b) == a);
            prop_assert_eq!(a.dominates(b), a.meet(b) == b);
            prop_assert!(a.join(b).dominates(a) && a.join(b).dominates(b));
            prop_assert!(a.dominates(a.meet(b)) && b.dominates(a.meet(b)));
            // Least upper bound: anything above both is above the join.
            if c.dominates(a) && c.dominates(b) { prop_assert!(c.dominates(a.join(b))); }
            if a.dominates(c) && b.dominates(c) { prop_assert!(a.meet(b).dominates(c)); }
        }

        #[test]
        fn bounded(a in label()) {
            prop_assert!(Label::TOP.dominates(a));
            prop_assert!(a.dominates(Label::BOTTOM));
            prop_assert_eq!(a.join(Label::BOTTOM), a);
            prop_assert_eq!(a.meet(Label::TOP), a);
        }

        #[test]
        fn encoding_round_trips(a in label(), junk in any::<u64>()) {
            prop_assert_eq!(Label::decode(a.encode()), Some(a));
            if let Some(l) = Label::decode(junk) { prop_assert_eq!(l.encode(), junk); }
        }
    }

    #[test]
    fn named_labels_sit_as_designed() {
        let above = |a: Label, b: Label| a.dominates(b) && a != b;
        assert!(above(Label::ROOT, Label::SYSTEM));
        for l in [Label::NETWORK, Label::FILE, Label::MEM] {
            assert!(above(Label::SYSTEM, l));
            assert!(above(l, Label::USER));
        }
        assert!(above(Label::NETWORK, Label::TCP) && above(Label::NETWORK, Label::UDP));
        assert!(!Label::TCP.dominates(Label::UDP) && !Label::UDP.dominates(Label::TCP));
        assert!(Label::NETWORK.dominates(Label::TCP.join(Label::UDP)));
        assert!(!Label::FILE.dominates(Label::NETWORK) && !Label::NETWORK.dominates(Label::FILE));
        assert_eq!(Label::FILE.meet(Label::NETWORK), Label::new(3, 0).unwrap());
        assert!(above(Label::FILE.meet(Label::NETWORK), Label::USER));
        assert!(above(Label::USER, Label::GUEST) && above(Label::GUEST, Label::SANDBOX));
        for (name, l) in Label::NAMED {
            assert_eq!(Label::from_name(name), Some(l));
            assert_eq!(l.name(), Some(name));
        }
        assert_eq!(Label::new(6, 0), None);
        assert_eq!(Label::new(0, 1 << 5), None);
        assert_eq!(Label::decode(1 << 40), None);
    }
}
