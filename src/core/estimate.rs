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

/// How many of `n` distinct probed items are really in a filter whose false-positive rate is
/// `eps`, from `hits` positive lookups: (hits − ε·n)/(1 − ε). False positives among the
/// n − t absent items are Binomial(n − t, ε), which gives the interval.
pub fn probe_count(n: u64, hits: u64, eps: f64) -> Estimate {
    let (n, h) = (n as f64, hits as f64);
    if eps >= 1.0 {
        return Estimate {
            value: f64::NAN,
            low: 0.0,
            high: h,
            method: "probe_saturated",
        };
    }
    let t = ((h - eps * n) / (1.0 - eps)).clamp(0.0, h);
    let sd = ((n - t).max(0.0) * eps * (1.0 - eps)).sqrt() / (1.0 - eps);
    let mut e = Estimate::from_sd(t, sd, "probe_fp_corrected");
    e.high = e.high.min(h);
    e
}

/// Items present in both filters (inclusion–exclusion); filters of different sizes are folded
/// to the smaller size first.
pub fn bloom_overlap(a: &Bloom, b: &Bloom) -> Result<Estimate> {
    let (a, b) = Bloom::to_common_size(a, b)?;
    let filters = [a.as_ref(), b.as_ref()];
    let mut e = linear_same_size(
        &filters,
        &[(0b01, 1.0), (0b10, 1.0), (0b11, -1.0)],
        "bloom_inclusion_exclusion",
    );
    // The overlap cannot exceed either set; cap at the smaller set's own upper bound.
    let cap = bloom_count(&a).high.min(bloom_count(&b).high);
    e.high = e.high.min(cap.max(e.value.ceil()));
    Ok(e)
}

/// `Σ coef · n̂(OR of the filters in mask)` with its 95 % interval: unions, overlaps, items
/// unique to one filter, items in two or more, items in exactly one combination — every
/// N-way count is such a linear combination of union counts. Filters are folded to the
/// smallest size first. Bit `i` of a mask stands for `filters[i]`.
pub fn bloom_linear(
    filters: &[&Bloom],
    terms: &[(u64, f64)],
    method: &'static str,
) -> Result<Estimate> {
    let l2 = filters.iter().map(|f| f.log2_blocks()).min().unwrap_or(0);
    let bpk = filters.first().map_or(1, |f| f.blocks_per_key());
    if filters.iter().any(|f| f.blocks_per_key() != bpk) {
        return Err(crate::core::Error::Incompatible(
            "the indices set different numbers of blocks per item".into(),
        ));
    }
    let folded: Vec<std::borrow::Cow<'_, Bloom>> = filters
        .iter()
        .map(|f| {
            if f.log2_blocks() == l2 {
                Ok(std::borrow::Cow::Borrowed(*f))
            } else {
                f.fold(f.log2_blocks() - l2).map(std::borrow::Cow::Owned)
            }
        })
        .collect::<Result<_>>()?;
    let refs: Vec<&Bloom> = folded.iter().map(AsRef::as_ref).collect();
    Ok(linear_same_size(&refs, terms, method))
}

/// The variance is the delta method over the per-bit multinomial: with p_S the share of bits
/// unset in every filter of S and w_S = d n̂_S / d(unset bits of S),
/// Var = m Σ_S Σ_T c_S c_T w_S w_T (p_{S∪T} − p_S p_T), less the Poisson noise of the estimand
/// itself (value / k), scaled by the split-block clustering factor at the union's load.
fn linear_same_size(filters: &[&Bloom], terms: &[(u64, f64)], method: &'static str) -> Estimate {
    let l = Layout::of(filters[0]);
    let mut unset: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
    let mut p_of = |mask: u64| -> f64 {
        *unset.entry(mask).or_insert_with(|| {
            let sel: Vec<&Bloom> = (0..filters.len())
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| filters[i])
                .collect();
            1.0 - Bloom::or_popcount(&sel) as f64 / l.m
        })
    };
    match linear_moments(&l, terms, &mut p_of) {
        Some((value, var)) => Estimate::from_sd(value, var.sqrt(), method),
        None => Estimate {
            value: f64::NAN,
            low: 0.0,
            high: f64::INFINITY,
            method: "bloom_saturated",
        },
    }
}

/// Value and variance of a linear combination of union counts, given the unset share of the
/// union of any mask; None when the filters are full.
fn linear_moments(
    l: &Layout,
    terms: &[(u64, f64)],
    p_of: &mut dyn FnMut(u64) -> f64,
) -> Option<(f64, f64)> {
    let full = terms.iter().fold(0u64, |acc, (m, _)| acc | m);
    let p_full = p_of(full);
    // Below one unset bit in a million the estimate means nothing (and the weights overflow).
    if p_full <= 1e-6 || p_full * l.m < 1.0 {
        return None;
    }
    let c = (-l.k / l.m).ln_1p();
    let n_of = |p: f64| p.ln() / c;
    let ps: Vec<f64> = terms.iter().map(|&(m, _)| p_of(m)).collect();
    let value: f64 = terms
        .iter()
        .zip(&ps)
        .map(|(&(_, coef), &p)| coef * n_of(p))
        .sum();
    let mut quad = 0.0;
    for (i, &(mi, ci)) in terms.iter().enumerate() {
        for (j, &(mj, cj)) in terms.iter().enumerate() {
            let p_union = p_of(mi | mj);
            quad += ci * cj * l.weight(ps[i]) * l.weight(ps[j]) * (p_union - ps[i] * ps[j]);
        }
    }
    let n_full = n_of(p_full);
    let indep = l.var_fixed_indep(p_full, n_full);
    let inflation = if indep > 0.0 {
        (l.var_fixed_sbbf(n_full) / indep).max(1.0)
    } else {
        1.0
    };
    let v = value.max(0.0);
    let var = inflation * (l.m * quad - v / l.k);
    if !var.is_finite() || !v.is_finite() {
        return None;
    }
    Some((v, var.max(0.0)))
}

/// The standard deviation the overlap estimate will have for lists of `na` and `nb` distinct
/// items sharing `shared`, in filters of 2^log2_blocks blocks (the model, not a measurement):
/// for sizing before anything is built.
pub fn overlap_sd_model(na: f64, nb: f64, shared: f64, log2_blocks: u8, blocks_per_key: u8) -> f64 {
    let blocks = (1u64 << log2_blocks) as f64;
    let l = Layout {
        m: blocks * 256.0,
        k: f64::from(8 * blocks_per_key),
        blocks,
        b: f64::from(blocks_per_key),
    };
    let q = (-l.k / l.m).ln_1p();
    let p = |n: f64| (q * n).exp();
    let nu = na + nb - shared;
    let mut p_of = |mask: u64| match mask {
        0b01 => p(na),
        0b10 => p(nb),
        _ => p(nu),
    };
    let terms = [(0b01, 1.0), (0b10, 1.0), (0b11, -1.0)];
    linear_moments(&l, &terms, &mut p_of).map_or(f64::INFINITY, |(_, var)| var.sqrt())
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

    /// Three lists with known Venn cells: union, unique-to-each and in-two-or-more intervals
    /// must cover the truth at the promised rate too.
    #[test]
    fn three_way_coverage() {
        // Cells: only A, only B, only C, AB, AC, BC, ABC.
        let cells = [1500u64, 800, 300, 120, 40, 10, 5];
        let members = [0b001u64, 0b010, 0b100, 0b011, 0b101, 0b110, 0b111];
        let union: u64 = cells.iter().sum();
        let in2: u64 = cells[3..].iter().sum();
        let trials = 150u64;
        let mut cover = [0u32; 5];
        for t in 0..trials {
            let mut f: Vec<Bloom> = (0..3).map(|_| Bloom::new(9, 2).unwrap()).collect();
            let mut item = 0u64;
            for (&n, &mask) in cells.iter().zip(&members) {
                for _ in 0..n {
                    for (i, fi) in f.iter_mut().enumerate() {
                        if mask >> i & 1 == 1 {
                            fi.insert_tag(&tag(item, t + 1000));
                        }
                    }
                    item += 1;
                }
            }
            let refs: Vec<&Bloom> = f.iter().collect();
            let checks = [
                (bloom_linear(&refs, &[(0b111, 1.0)], "u").unwrap(), union),
                (
                    bloom_linear(
                        &refs,
                        &[(0b111, -2.0), (0b110, 1.0), (0b101, 1.0), (0b011, 1.0)],
                        "in2",
                    )
                    .unwrap(),
                    in2,
                ),
                (
                    bloom_linear(&refs, &[(0b111, 1.0), (0b110, -1.0)], "ua").unwrap(),
                    cells[0],
                ),
                (
                    bloom_linear(&refs, &[(0b111, 1.0), (0b011, -1.0)], "uc").unwrap(),
                    cells[2],
                ),
                (
                    bloom_linear(&refs, &[(0b001, 1.0), (0b100, 1.0), (0b101, -1.0)], "ac")
                        .unwrap(),
                    45,
                ),
            ];
            for (k, (e, truth)) in checks.iter().enumerate() {
                cover[k] += u32::from(e.low <= *truth as f64 && *truth as f64 <= e.high);
            }
        }
        for (k, c) in cover.iter().enumerate() {
            let rate = f64::from(*c) / trials as f64;
            assert!(rate >= 0.9, "quantity {k}: coverage {rate}");
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
