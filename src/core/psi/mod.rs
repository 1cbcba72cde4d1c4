//! The keyless mode: multi-party ECDH-PSI cardinality on ristretto255, exchanged as files
//! (docs/PSI.md). Each party blinds its own canonical values with its secret scalar; every
//! set travels to every other party to be blinded once more; the fully blinded sets, K·H(x)
//! with K the product of all scalars, are a PRF nobody can evaluate alone, so anyone holding
//! them can count overlaps exactly — and nobody can test a guess offline.
//!
//! - `group`: hash to the group and blinding (batched encodings, rayon).
//! - `secret`: a party's secret file.
//! - `message`: the message files and their checks.
//! - here: the protocol steps — the first pass, a further pass, and what a count needs.

pub mod group;
pub mod message;
pub mod secret;

use crate::core::bulk::{map_canonical, Values};
use crate::core::canon::Canon;
use crate::core::error::{Error, Result};
use crate::core::keyed::{now_unix, Holds};
use group::{truncate, Point};
pub use message::{Items, KindSet, Message};
pub use secret::Secret;

/// One kind's first pass: values of `canon` blinded by the secret as batches come, then
/// sorted and de-duplicated into the party's set.
pub struct FirstPass {
    pub canon: Canon,
    points: Vec<Point>,
}

impl FirstPass {
    pub fn new(canon: Canon) -> FirstPass {
        FirstPass {
            canon,
            points: Vec::new(),
        }
    }

    /// Canonicalise and blind `parts`, except the values `holds` holds back (code `HELD`, left
    /// out as `KeyedBloom::add` does; those held by shape are not blinded at all); every
    /// value's code comes back.
    pub fn add<P: Values>(
        &mut self,
        secret: &Secret,
        parts: &[P],
        holds: Holds<'_>,
    ) -> Result<Vec<u8>> {
        let hold = holds.marked;
        let n: usize = parts.iter().map(Values::len).sum();
        if let Some(h) = hold.filter(|h| h.len() != n) {
            return Err(Error::Invalid(format!(
                "hold has {} flags for {n} values",
                h.len()
            )));
        }
        let blinder = secret.blinder();
        let op = secret.operation.as_str();
        let canon = self.canon;
        let mut codes = Vec::with_capacity(n);
        let mut base = 0;
        for part in parts {
            let held = |i: usize| hold.is_some_and(|h| h[base + i]);
            let (mut c, pts) = map_canonical(
                canon,
                part,
                |raw| holds.by_shape(raw),
                |forms| blinder.blind_values(op, canon, forms),
            );
            // Held values were blinded with the rest; leave them out here.
            let mut pts = pts.into_iter();
            for (i, code) in c.iter_mut().enumerate() {
                if *code == 0 {
                    let p = pts.next().expect("one point per used value");
                    if held(i) {
                        *code = crate::core::keyed::HELD;
                    } else {
                        self.points.push(p);
                    }
                }
            }
            codes.extend(c);
            base += part.len();
        }
        Ok(codes)
    }

    /// Distinct values blinded so far (after `finish`; before it, with repeats).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn finish(mut self) -> KindSet {
        sort_dedup(&mut self.points);
        KindSet {
            canon: self.canon,
            items: Items::Points(self.points),
        }
    }
}

fn sort_dedup<T: Ord + Send>(v: &mut Vec<T>) {
    use rayon::slice::ParallelSliceMut;
    v.par_sort_unstable();
    v.dedup();
}

/// This party's first message: its sets, blinded once (by it).
pub fn first_message(secret: &Secret, passes: Vec<FirstPass>) -> Result<Message> {
    let mut sets: Vec<KindSet> = passes.into_iter().map(FirstPass::finish).collect();
    sets.sort_by_key(|s| s.canon.kind.code());
    if sets.windows(2).any(|w| w[0].canon.kind == w[1].canon.kind) {
        return Err(Error::Invalid(
            "one set per identifier kind: a kind is named twice".into(),
        ));
    }
    let me = secret.index();
    Ok(Message {
        operation: secret.operation.clone(),
        parties: secret.parties.clone(),
        origin: me,
        applied: 1 << me,
        created: now_unix(),
        sets,
    })
}

/// Apply this party's scalar to a partner's message: refused for another operation or party
/// list, a message this party has already blinded, a final one, or (with `max_items`) a set
/// larger than the operation allows. The result is sorted; once every party has blinded it,
/// truncated to 64 bits.
pub fn blind(secret: &Secret, msg: &Message, max_items: Option<u64>) -> Result<Message> {
    if msg.operation != secret.operation {
        return Err(Error::Incompatible(format!(
            "this message belongs to operation {:?}, the secret to {:?}",
            msg.operation, secret.operation
        )));
    }
    if msg.parties != secret.parties {
        return Err(Error::Incompatible(format!(
            "this message names the parties {}, the secret {}",
            msg.parties.join(","),
            secret.parties.join(",")
        )));
    }
    let me = secret.index();
    if msg.applied >> me & 1 == 1 {
        return Err(Error::Incompatible(format!(
            "{}'s message has already been blinded by {} (blinded by {}): each party blinds \
             each set once",
            msg.origin_name(),
            secret.party,
            msg.applied_names().join(", ")
        )));
    }
    if let Some(cap) = max_items {
        if let Some(s) = msg.sets.iter().find(|s| s.items.len() as u64 > cap) {
            return Err(Error::Invalid(format!(
                "{}'s {} set holds {} items, more than the {cap} this operation allows",
                msg.origin_name(),
                s.canon.kind.name(),
                s.items.len()
            )));
        }
    }
    let applied = msg.applied | 1 << me;
    let last = applied == message::all_mask(msg.parties.len());
    let blinder = secret.blinder();
    let mut sets = Vec::with_capacity(msg.sets.len());
    for s in &msg.sets {
        let Items::Points(points) = &s.items else {
            unreachable!("a message not blinded by this party is not final");
        };
        let mut out = blinder.blind_points(points).map_err(|b| {
            Error::format(format!(
                "{}'s {} set: item {} is not a valid ristretto255 point",
                msg.origin_name(),
                s.canon.kind.name(),
                b.0 + 1
            ))
        })?;
        let items = if last {
            let mut t: Vec<u64> = out.iter().map(truncate).collect();
            sort_dedup(&mut t);
            Items::Final(t)
        } else {
            sort_dedup(&mut out);
            Items::Points(out)
        };
        sets.push(KindSet {
            canon: s.canon,
            items,
        });
    }
    Ok(Message {
        operation: msg.operation.clone(),
        parties: msg.parties.clone(),
        origin: msg.origin,
        applied,
        created: now_unix(),
        sets,
    })
}

/// Fully blinded messages that can be counted together: one operation and party list, every
/// one blinded by every party, each party's set at most once, at least two.
pub fn check_countable(msgs: &[&Message]) -> Result<()> {
    let Some(first) = msgs.first() else {
        return Err(Error::Invalid(
            "counting needs at least two messages".into(),
        ));
    };
    if msgs.len() < 2 {
        return Err(Error::Invalid(
            "counting needs at least two messages".into(),
        ));
    }
    for m in msgs {
        if m.operation != first.operation || m.parties != first.parties {
            return Err(Error::Incompatible(format!(
                "{}'s message belongs to operation {:?} ({}), {}'s to {:?} ({})",
                m.origin_name(),
                m.operation,
                m.parties.join(","),
                first.origin_name(),
                first.operation,
                first.parties.join(",")
            )));
        }
        if !m.is_final() {
            let missing: Vec<&str> = m
                .parties
                .iter()
                .enumerate()
                .filter(|(i, _)| m.applied >> i & 1 == 0)
                .map(|(_, p)| p.as_str())
                .collect();
            return Err(Error::Incompatible(format!(
                "{}'s message still lacks the blinding of {}: only fully blinded sets can be \
                 counted",
                m.origin_name(),
                missing.join(", ")
            )));
        }
    }
    for (i, m) in msgs.iter().enumerate() {
        if msgs[..i].iter().any(|o| o.origin == m.origin) {
            return Err(Error::Invalid(format!(
                "{}'s set is given twice",
                m.origin_name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::canon::Kind;
    use std::collections::BTreeSet;

    fn values(v: &[&str]) -> crate::core::bulk::Packed {
        let mut p = crate::core::bulk::Packed::with_capacity(v.len(), 64);
        for x in v {
            p.push_str(x);
        }
        p
    }

    /// A three-party ring, messages blinded in different orders, counted exactly; and what
    /// each refusal says.
    #[test]
    fn three_party_ring_counts_exactly() {
        let ps = ["A", "B", "C"];
        let sa = Secret::for_tests("op", "A", &ps, 11);
        let sb = Secret::for_tests("op", "B", &ps, 22);
        let sc = Secret::for_tests("op", "C", &ps, 33);
        let canon = Canon::from(Kind::CnMobile);
        let data = [
            (
                &sa,
                values(&["13800000001", "13800000002", "13800000003", "138 0000 0003"]),
            ),
            (&sb, values(&["13800000003", "13800000004", "bad"])),
            (&sc, values(&["13800000003", "13800000004", "13800000005"])),
        ];
        let mut firsts = Vec::new();
        for (s, v) in &data {
            let mut fp = FirstPass::new(canon);
            let codes = fp
                .add(s, std::slice::from_ref(v), Holds::default())
                .unwrap();
            assert_eq!(
                codes.iter().filter(|&&c| c != 0).count(),
                usize::from(s.party == "B")
            );
            firsts.push(first_message(s, vec![fp]).unwrap());
        }
        // the repeat is one item
        assert_eq!(firsts[0].sets[0].items.len(), 3);
        // A's set: B then C; B's: C then A; C's: A then B
        let a = blind(&sc, &blind(&sb, &firsts[0], None).unwrap(), None).unwrap();
        let b = blind(&sa, &blind(&sc, &firsts[1], None).unwrap(), None).unwrap();
        let c = blind(&sb, &blind(&sa, &firsts[2], None).unwrap(), None).unwrap();
        for m in [&a, &b, &c] {
            assert!(m.is_final());
            let back = Message::from_bytes(&m.to_bytes().unwrap()).unwrap();
            assert_eq!(&back, m);
        }
        check_countable(&[&a, &b, &c]).unwrap();
        let set = |m: &Message| match &m.sets[0].items {
            Items::Final(t) => t.iter().copied().collect::<BTreeSet<u64>>(),
            Items::Points(_) => unreachable!(),
        };
        let (ta, tb, tc) = (set(&a), set(&b), set(&c));
        assert_eq!(ta.intersection(&tb).count(), 1);
        assert_eq!(tb.intersection(&tc).count(), 2);
        assert_eq!(
            ta.union(&tb)
                .chain(tc.iter())
                .collect::<BTreeSet<_>>()
                .len(),
            5
        );

        // refusals, by name
        let e = blind(&sb, &blind(&sb, &firsts[0], None).unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("already been blinded by B"), "{e}");
        let other = Secret::for_tests("op2", "B", &ps, 22);
        let e = blind(&other, &firsts[0], None).unwrap_err();
        assert!(e.to_string().contains("operation \"op\""), "{e}");
        let e = blind(&sb, &firsts[0], Some(2)).unwrap_err();
        assert!(e.to_string().contains("more than the 2"), "{e}");
        let half = blind(&sb, &firsts[0], None).unwrap();
        let e = check_countable(&[&half, &b]).unwrap_err();
        assert!(e.to_string().contains("lacks the blinding of C"), "{e}");
        let e = check_countable(&[&b, &b]).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn messages_refuse_damage_and_keyed_artefacts_refuse_them() {
        let ps = ["A", "B"];
        let sa = Secret::for_tests("op", "A", &ps, 5);
        let mut fp = FirstPass::new(Canon::from(Kind::Email));
        fp.add(
            &sa,
            &[values(&["a@example.com", "b@example.com"])],
            Holds {
                marked: Some(&[false, true]),
                ..Holds::default()
            },
        )
        .unwrap();
        let m = first_message(&sa, vec![fp]).unwrap();
        assert_eq!(m.sets[0].items.len(), 1); // the held value is left out
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Message::from_bytes(&bytes).unwrap(), m);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Message::from_bytes(&b).is_err(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(Message::from_bytes(&bytes[..n]).is_err());
        }
        let e = crate::core::format::Artefact::from_bytes(&bytes).unwrap_err();
        assert!(e.to_string().contains("keyless-mode message"), "{e}");
    }
}
