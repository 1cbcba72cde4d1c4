//! Counts from Bloom indices, always with a 95 % interval (docs/FORMAT.md §6 gives the
//! formulas; docs/COUNTING.md will collect their sources).
//!
//! Single filter with m bits, k bits set per item, X bits set:
//!   n̂ = ln(1 - X/m) / ln(1 - k/m)              (≈ -(m/k) ln(1 - X/m))
//! Its variance comes from the split-block model: block loads J ~ Poisson(λ = n·b/blocks),
//! each of a block's 8 words holds J uniform bits out of 32. That gives Var(X) in closed form
//! under Poissonisation; the delta method turns it into Var(n̂), and subtracting n removes
//! the Poisson noise of the block-hit count itself (n is fixed, not random).
//!
//! Overlap of two filters of one size: ô = n̂A + n̂B - n̂(A∪B), with its variance from the
//! per-bit multinomial of (set in A, set in B) by the delta method, scaled by the ratio of the
//! split-block to the independent-bit variance at the union's load, after the same
//! de-Poissonisation.

use super::bloom::Bloom;
use super::error::Result;

pub const Z95: f64 = 1.959_963_984_540_054;

#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub method: &'static str,
}

impl Estimate {
    pub fn exact(n: u64) -> Estimate {
        let v = n as f64;
        Estimate {
            value: v,
            low: v,
            high: v,
            method: "exact",
        }
    }

    /// value ± z·sd, rounded outward to whole items (counts are integers), low clipped at 0.
    fn from_sd(value: f64, sd: f64, method: &'static str) -> Estimate {
        let value = value.max(0.0);
        let sd = if sd.is_finite() {
            sd.max(0.0)
        } else {
            f64::INFINITY
        };
        Estimate {
            value,
            low: (value - Z95 * sd).floor().max(0.0),
            high: (value + Z95 * sd).ceil(),
            method,
        }
    }
}

const A: f64 = 1.0 / 32.0;

struct Layout {
    m: f64,
    k: f64,
    blocks: f64,
    b: f64,
}

impl Layout {
    fn of(f: &Bloom) -> Layout {
        Layout {
            m: f.num_bits() as f64,
            k: f64::from(f.bits_per_item()),
            blocks: f.num_blocks() as f64,
            b: f64::from(f.blocks_per_key()),
        }
    }

    /// n̂ from the number of set bits; infinite when the filter is full.
    fn n_hat(&self, set: u64) -> f64 {
        let frac_unset = 1.0 - set as f64 / self.m;
        if frac_unset <= 0.0 {
            return f64::INFINITY;
        }
        frac_unset.ln() / (-self.k / self.m).ln_1p()
    }

    /// Poissonised Var(X) / (dE[X]/dn)^2 under the split-block model, at load n.
    fn var_pois_sbbf(&self, n: f64) -> f64 {
        let lambda = n * self.b / self.blocks;
        let e1 = (-lambda * A).exp();
        let e2a = (-2.0 * lambda * A).exp();
        let g = (lambda * A * A).exp_m1();
        // 8·(992·E3 + 32·E1 − 1024·E2) + 65536·(E2 − E1²), rewritten without cancellation.
        let within = -992.0 * e2a * g - 32.0 * e1 * (-lambda * A * (1.0 - A)).exp_m1();
        let between = e2a * g;
        let var_y = 8.0 * within + 65536.0 * between;
        let slope = self.k * e1;
        self.blocks * var_y / (slope * slope)
    }

    /// Var(n̂) for a fixed number of items n, split-block model. The Poissonised model draws
    /// each block's load independently, i.e. Poisson(n·b) block-hits in all; removing that
    /// noise subtracts (dE[X]/dn)²·n/b from Var(X), so n/b from Var(n̂).
    fn var_fixed_sbbf(&self, n: f64) -> f64 {
        (self.var_pois_sbbf(n) - n / self.b).max(0.0)
    }

    /// Var(n̂) for fixed n if each bit were hit independently (the classic Bloom model):
    /// Poissonised per bit-hit, so Poisson(n·k) hits, minus n/k.
    fn var_fixed_indep(&self, p: f64, n: f64) -> f64 {
        let w = self.weight(p);
        (self.m * p * (1.0 - p) * w * w - n / self.k).max(0.0)
    }

    /// d n̂ / d(unset bits) at unset fraction p.
    fn weight(&self, p: f64) -> f64 {
        1.0 / ((-self.k / self.m).ln_1p() * self.m * p)
    }
}

/// Distinct items in one filter.
pub fn bloom_count(f: &Bloom) -> Estimate {
    count_from_bits(f, f.popcount())
}

fn count_from_bits(f: &Bloom, set: u64) -> Estimate {
    let l = Layout::of(f);
    let n = l.n_hat(set);
    if !n.is_finite() {
        // Every bit is set: at least as many items as a filter one bit short of full.
        let low = l.n_hat(set.saturating_sub(1)).floor();
        return Estimate {
            value: f64::INFINITY,
            low,
            high: f64::INFINITY,
            method: "bloom_popcount_saturated",
        };
    }
    Estimate::from_sd(n, l.var_fixed_sbbf(n).sqrt(), "bloom_popcount")
}

/// Items present in both filters (inclusion–exclusion); filters of different sizes are folded
/// to the smaller size first.
pub fn bloom_overlap(a: &Bloom, b: &Bloom) -> Result<Estimate> {
    let (a, b) = Bloom::to_common_size(a, b)?;
    let (xa, xb) = (a.popcount(), b.popcount());
    let xu = Bloom::union_popcount(&a, &b);
    let l = Layout::of(&a);
    let (na, nb, nu) = (l.n_hat(xa), l.n_hat(xb), l.n_hat(xu));
    if !nu.is_finite() {
        return Ok(Estimate {
            value: f64::NAN,
            low: 0.0,
            high: na.min(nb),
            method: "bloom_inclusion_exclusion_saturated",
        });
    }
    let o = na + nb - nu;
    let (pa, pb, pu) = (
        1.0 - xa as f64 / l.m,
        1.0 - xb as f64 / l.m,
        1.0 - xu as f64 / l.m,
    );
    let (wa, wb, wu) = (l.weight(pa), l.weight(pb), l.weight(pu));
    let var_l = wa * wa * pa * (1.0 - pa)
        + wb * wb * pb * (1.0 - pb)
        + wu * wu * pu * (1.0 - pu)
        + 2.0 * wa * wb * (pu - pa * pb)
        - 2.0 * wa * wu * pu * (1.0 - pa)
        - 2.0 * wb * wu * pu * (1.0 - pb);
    // Split-block filters cluster bits in blocks; scale the independent-bit variance by how
    // much that clustering widens the union's own count.
    let indep_u = l.var_fixed_indep(pu, nu);
    let inflation = if indep_u > 0.0 {
        (l.var_fixed_sbbf(nu) / indep_u).max(1.0)
    } else {
        1.0
    };
    let o_clip = o.clamp(0.0, na.min(nb));
    // Hit-level Poissonisation again: the shared items' own noise is ô/k.
    let var = (inflation * (l.m * var_l - o_clip / l.k)).max(0.0);
    let mut e = Estimate::from_sd(o_clip, var.sqrt(), "bloom_inclusion_exclusion");
    // The overlap cannot exceed either set; cap at the smaller set's own upper bound.
    let cap = count_from_bits(&a, xa)
        .high
        .min(count_from_bits(&b, xb).high);
    e.high = e.high.min(cap.max(e.value.ceil()));
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn tag(i: u64, salt: u64) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(i.to_le_bytes());
        h.update(salt.to_le_bytes());
        h.finalize().into()
    }

    /// Over many independent trials the 95 % intervals must cover the truth ≥ 90 % of the
    /// time, for counts and overlaps, at light and heavy loads.
    #[test]
    fn interval_coverage() {
        let trials = 200u64;
        for &(log2, bpk, na, nb, shared) in &[
            (8u8, 1u8, 3000u64, 2000u64, 50u64),
            (8, 2, 4000, 4000, 2000),
            (10, 2, 300, 20000, 10),
            (6, 1, 100, 100, 0),
            (8, 2, 3000, 500, 500),
        ] {
            let (mut cover_a, mut cover_o) = (0, 0);
            for t in 0..trials {
                let mut a = Bloom::new(log2, bpk).unwrap();
                let mut b = Bloom::new(log2, bpk).unwrap();
                for i in 0..na {
                    a.insert_tag(&tag(i, t));
                }
                for i in (na - shared)..(na - shared + nb) {
                    b.insert_tag(&tag(i, t));
                }
                let ea = bloom_count(&a);
                let eo = bloom_overlap(&a, &b).unwrap();
                cover_a += u32::from(ea.low <= na as f64 && na as f64 <= ea.high);
                cover_o += u32::from(eo.low <= shared as f64 && shared as f64 <= eo.high);
            }
            let (ra, ro) = (
                f64::from(cover_a) / trials as f64,
                f64::from(cover_o) / trials as f64,
            );
            assert!(ra >= 0.9, "count coverage {ra} for {log2} {bpk} {na}");
            assert!(
                ro >= 0.9,
                "overlap coverage {ro} for {log2} {bpk} {na} {nb} {shared}"
            );
        }
    }

    #[test]
    fn empty_and_full() {
        let f = Bloom::new(4, 1).unwrap();
        assert_eq!(
            bloom_count(&f),
            Estimate::from_sd(0.0, 0.0, "bloom_popcount")
        );
        let mut g = Bloom::new(0, 1).unwrap();
        for i in 0..100_000 {
            g.insert_tag(&tag(i, 0));
        }
        let e = bloom_count(&g);
        assert!(e.value.is_infinite() && e.low > 100.0, "{e:?}");
    }
}
