//! Bounded metric windows and the three run-metric evaluations (DESIGN §5, "Window rules").
//!
//! One [`MetricWindow`] is persisted per (run, metric) and shared by every automation that
//! watches that metric; the caller passes the largest `required_capacity_*` of those automations
//! to [`MetricWindow::observe`]. Rules, common to all three event types:
//!
//! - A row whose value is `null` is skipped: it is not counted and does not move the last step.
//! - A row whose step is at or below the last applied step is ignored, so replays change nothing.
//! - An aggregate (MAX, MIN, AVERAGE) of values that include NaN or ±infinity is NaN. Only
//!   `$isnan` matches NaN; every other comparison with it is false, and change and z-score
//!   never fire on it.
//! - AVERAGE is clamped to [MIN, MAX] of its values, so rounding can neither move the average
//!   of a constant window off that constant nor overflow a sum of large finite values.
//!
//! The evaluations are pure functions of the window and are meant to be called right after
//! `observe` returned `true`: they describe the window ending at the row just applied.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::metric::{Agg, ChangeDir, ChangeMetric, ChangeType, Cmp, ThresholdMetric, ZScoreMetric};

/// Persisted per (run, metric). Bounded: keeps at most `capacity` latest values.
///
/// Serialized as `{"last_step": 12, "values": [0.5, "NaN"], "seen": 7}`. JSON has no NaN or
/// infinity, so non-finite values are written as the strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"` and read back from them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetricWindow {
    /// Step of the last applied row; rows at or below it are ignored.
    #[serde(default)]
    last_step: Option<i64>,
    /// The latest applied values, oldest first, at most the capacity last given to `observe`.
    #[serde(default, with = "json_f64_seq")]
    values: Vec<f64>,
    /// Values ever applied, including those since dropped: change blocks are aligned on it.
    #[serde(default)]
    seen: u64,
}

/// Equal when the state is the same, NaN included: a window equals its own round trip.
impl PartialEq for MetricWindow {
    fn eq(&self, other: &Self) -> bool {
        self.last_step == other.last_step
            && self.seen == other.seen
            && self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(&other.values)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }
}

impl Eq for MetricWindow {}

impl MetricWindow {
    /// Applies one history row. Returns false (and changes nothing) when value is None (null is skipped)
    /// or step <= last step seen (replays change nothing). Keeps at most `capacity` values.
    ///
    /// A capacity smaller than an automation's `required_capacity_*` means that automation
    /// never fires; values dropped by a smaller capacity are not recovered by a larger one.
    pub fn observe(&mut self, step: i64, value: Option<f64>, capacity: usize) -> bool {
        let Some(value) = value else {
            return false;
        };
        if self.last_step.is_some_and(|last| step <= last) {
            return false;
        }
        self.last_step = Some(step);
        self.seen = self.seen.saturating_add(1);
        self.values.push(value);
        if self.values.len() > capacity {
            let excess = self.values.len() - capacity;
            self.values.drain(..excess);
        }
        true
    }

    pub fn last_step(&self) -> Option<i64> {
        self.last_step
    }

    /// Values ever applied to this window (not only those it still holds).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The values held, oldest first.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The `n` latest values, or None while fewer are held.
    fn latest(&self, n: usize) -> Option<&[f64]> {
        let start = self.values.len().checked_sub(n)?;
        Some(&self.values[start..])
    }
}

/// Values the window must keep for a threshold metric: its `window`.
pub fn required_capacity_threshold(m: &ThresholdMetric) -> usize {
    m.window as usize
}

/// Values the window must keep for a change metric: `current_window + prior_window`.
pub fn required_capacity_change(m: &ChangeMetric) -> usize {
    m.current_window as usize + m.prior_window_or_current() as usize
}

/// Values the window must keep for a z-score metric: the previous `window` plus the latest.
pub fn required_capacity_zscore(m: &ZScoreMetric) -> usize {
    m.window as usize + 1
}

/// `RUN_METRIC`: the aggregate of the last `window` values when it satisfies `cmp threshold`.
///
/// Checked on every applied row once `window` values are held (so a condition that keeps
/// holding fires on every row; the cooldown stops repeats). `$isnan` fires, returning NaN,
/// when any of those values is NaN or infinite; the other comparisons never fire then, nor
/// when the threshold is missing or not finite (a spec `validate` would have refused).
pub fn evaluate_threshold(w: &MetricWindow, m: &ThresholdMetric) -> Option<f64> {
    let values = w.latest(nonzero(m.window)?)?;
    let agg = aggregate(m.agg, values);
    let fired = match m.cmp {
        Cmp::IsNan => agg.is_nan(),
        cmp => {
            let threshold = m.threshold.filter(|t| t.is_finite())?;
            agg.is_finite()
                && match cmp {
                    Cmp::Gt => agg > threshold,
                    Cmp::Gte => agg >= threshold,
                    Cmp::Lt => agg < threshold,
                    Cmp::Lte => agg <= threshold,
                    Cmp::IsNan => false,
                }
        }
    };
    fired.then_some(agg)
}

/// `RUN_METRIC_CHANGE`: the signed change when it is large enough in the chosen direction.
///
/// Evaluated only when a block of `current_window` values completes: blocks tumble from the
/// first value the window ever applied, so the block ends when `seen % current_window == 0`.
/// The block's aggregate (`cur`) is compared with the aggregate of the `prior_window` values
/// just before it (`prior`), which must still be held. ABSOLUTE change = cur − prior;
/// RELATIVE change = (cur − prior) / |prior| as a fraction, and never fires when prior is 0.
/// INCREASE fires when change ≥ amount, DECREASE when −change ≥ amount, ANY when
/// |change| ≥ amount. A non-finite aggregate or change never fires (nor does an amount that
/// is not a finite number > 0). The returned value is the change itself, negative for a
/// decrease.
pub fn evaluate_change(w: &MetricWindow, m: &ChangeMetric) -> Option<f64> {
    let current_n = nonzero(m.current_window)?;
    let prior_n = nonzero(m.prior_window_or_current())?;
    let amount_is_valid = m.amount.is_finite() && m.amount > 0.0;
    if !amount_is_valid || !w.seen.is_multiple_of(current_n as u64) {
        return None;
    }
    let both = w.latest(current_n + prior_n)?;
    let (prior_values, current_values) = both.split_at(prior_n);
    let current = aggregate(m.agg, current_values);
    let prior = aggregate(m.agg, prior_values);
    if !current.is_finite() || !prior.is_finite() {
        return None;
    }
    let change = match m.change_type {
        ChangeType::Absolute => current - prior,
        ChangeType::Relative if prior == 0.0 => return None,
        ChangeType::Relative => (current - prior) / prior.abs(),
    };
    (change.is_finite() && directed(change, m.change_dir, m.amount)).then_some(change)
}

/// `RUN_METRIC_ZSCORE`: z = (latest − mean) / σ, where mean and σ (population standard
/// deviation) are taken over the `window` values before the latest; returns z when it is far
/// enough in the chosen direction: INCREASE z ≥ threshold, DECREASE z ≤ −threshold,
/// ANY |z| ≥ threshold.
///
/// Needs `window + 1` values. Never fires when σ is 0 (a constant window; the clamped mean
/// makes that exact) or when any of the values, or z itself, is not finite. Values are
/// scaled by a power of two before squaring, which leaves z unchanged but keeps values up to
/// f64::MAX from overflowing the variance.
pub fn evaluate_zscore(w: &MetricWindow, m: &ZScoreMetric) -> Option<f64> {
    let n = nonzero(m.window)?;
    let values = w.latest(n + 1)?;
    let (previous, latest) = values.split_at(n);
    let latest = latest[0];
    if !latest.is_finite() || previous.iter().any(|v| !v.is_finite()) {
        return None;
    }
    if !(m.threshold.is_finite() && m.threshold > 0.0) {
        return None;
    }
    let max_abs = previous.iter().fold(0.0_f64, |acc, v| acc.max(v.abs()));
    if max_abs == 0.0 {
        return None;
    }
    let scale = power_of_two_scale(max_abs);
    let scaled: Vec<f64> = previous.iter().map(|v| v * scale).collect();
    let mean = mean_of_finite(&scaled);
    let variance = scaled.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let sigma = variance.sqrt();
    if sigma == 0.0 || !sigma.is_finite() {
        return None;
    }
    let z = (latest * scale - mean) / sigma;
    (z.is_finite() && directed(z, m.change_dir, m.threshold)).then_some(z)
}

fn nonzero(window: u32) -> Option<usize> {
    (window > 0).then_some(window as usize)
}

fn directed(change: f64, dir: ChangeDir, amount: f64) -> bool {
    match dir {
        ChangeDir::Increase => change >= amount,
        ChangeDir::Decrease => -change >= amount,
        ChangeDir::Any => change.abs() >= amount,
    }
}

/// MAX, MIN or AVERAGE of `values`; NaN when any is NaN or infinite (or there are none).
fn aggregate(agg: Agg, values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    match agg {
        Agg::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Agg::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Agg::Average => mean_of_finite(values),
    }
}

/// Mean of finite, non-empty `values`, clamped to their range: the true mean lies in it, and
/// clamping keeps rounding from moving a constant window's mean off its value (which would
/// give it a tiny non-zero σ) and an overflowing sum from turning the mean infinite.
fn mean_of_finite(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    let mean = if sum.is_finite() { sum / n } else { values.iter().map(|v| v / n).sum() };
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    mean.clamp(min, max)
}

/// 2^-e where 2^e ≤ `max_abs` < 2^(e+1) (e clamped so the factor is a normal number).
/// Multiplying by a power of two is exact, so sums, quotients and square roots of the scaled
/// values round exactly as the unscaled ones would, only without overflow.
fn power_of_two_scale(max_abs: f64) -> f64 {
    const EXPONENT_BIAS: i64 = 1023;
    let biased = ((max_abs.to_bits() >> 52) & 0x7ff) as i64;
    let exponent = if biased == 0 { -1022 } else { biased - EXPONENT_BIAS }.clamp(-1022, 1022);
    f64::from_bits(((EXPONENT_BIAS - exponent) as u64) << 52)
}

/// Serde for a sequence of f64 that keeps NaN and ±infinity, which JSON numbers cannot hold.
mod json_f64_seq {
    use super::*;
    use serde::de::{self, Visitor};
    use std::fmt;

    const NAN: &str = "NaN";
    const INFINITY: &str = "Infinity";
    const NEG_INFINITY: &str = "-Infinity";

    struct JsonF64(f64);

    impl Serialize for JsonF64 {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let v = self.0;
            if v.is_finite() {
                s.serialize_f64(v)
            } else if v.is_nan() {
                s.serialize_str(NAN)
            } else if v > 0.0 {
                s.serialize_str(INFINITY)
            } else {
                s.serialize_str(NEG_INFINITY)
            }
        }
    }

    impl<'de> Deserialize<'de> for JsonF64 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(JsonF64Visitor)
        }
    }

    struct JsonF64Visitor;

    impl Visitor<'_> for JsonF64Visitor {
        type Value = JsonF64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"a number, "NaN", "Infinity" or "-Infinity""#)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonF64, E> {
            Ok(JsonF64(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonF64, E> {
            Ok(JsonF64(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonF64, E> {
            Ok(JsonF64(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonF64, E> {
            match v {
                NAN => Ok(JsonF64(f64::NAN)),
                INFINITY => Ok(JsonF64(f64::INFINITY)),
                NEG_INFINITY => Ok(JsonF64(f64::NEG_INFINITY)),
                other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
            }
        }
    }

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|v| JsonF64(*v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<JsonF64>::deserialize(d)?;
        Ok(values.into_iter().map(|v| v.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAN: f64 = f64::NAN;
    const INF: f64 = f64::INFINITY;

    fn threshold(agg: Agg, window: u32, cmp: Cmp, t: Option<f64>) -> ThresholdMetric {
        ThresholdMetric { name: "loss".into(), agg, window, cmp, threshold: t }
    }

    fn change(current: u32, prior: Option<u32>, change_type: ChangeType, dir: ChangeDir, amount: f64) -> ChangeMetric {
        ChangeMetric {
            name: "loss".into(),
            agg: Agg::Average,
            current_window: current,
            prior_window: prior,
            change_type,
            change_dir: dir,
            amount,
        }
    }

    fn zscore(window: u32, threshold: f64, dir: ChangeDir) -> ZScoreMetric {
        ZScoreMetric { name: "loss".into(), window, threshold, change_dir: dir }
    }

    /// Feeds values at steps 1, 2, 3, … and returns what `eval` said after each row.
    fn run<F>(values: &[f64], capacity: usize, eval: F) -> Vec<Option<f64>>
    where
        F: Fn(&MetricWindow) -> Option<f64>,
    {
        let mut w = MetricWindow::default();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                assert!(w.observe(i as i64 + 1, Some(*v), capacity));
                eval(&w)
            })
            .collect()
    }

    #[test]
    fn replayed_and_older_steps_change_nothing() {
        let mut w = MetricWindow::default();
        assert!(w.observe(10, Some(1.0), 5));
        let before = w.clone();
        assert!(!w.observe(10, Some(2.0), 5));
        assert!(!w.observe(3, Some(2.0), 5));
        assert_eq!(w, before);
        assert_eq!(w.last_step(), Some(10));
        assert!(w.observe(11, Some(2.0), 5));
        assert_eq!(w.values(), [1.0, 2.0]);
        assert_eq!(w.seen(), 2);
    }

    #[test]
    fn negative_and_zero_steps_are_ordinary_steps() {
        let mut w = MetricWindow::default();
        assert!(w.observe(-5, Some(1.0), 5));
        assert!(w.observe(0, Some(1.0), 5));
        assert!(!w.observe(-1, Some(1.0), 5));
        assert_eq!(w.last_step(), Some(0));
    }

    #[test]
    fn null_is_skipped_and_does_not_move_the_last_step() {
        let mut w = MetricWindow::default();
        assert!(!w.observe(1, None, 5));
        assert_eq!(w, MetricWindow::default());
        assert!(w.observe(2, Some(1.0), 5));
        assert!(!w.observe(3, None, 5));
        assert_eq!(w.last_step(), Some(2));
        assert_eq!(w.seen(), 1);
        // The step of a skipped null can still bring a value later.
        assert!(w.observe(3, Some(4.0), 5));
        assert_eq!(w.values(), [1.0, 4.0]);
    }

    #[test]
    fn capacity_bounds_the_values_kept_but_not_the_count_seen() {
        let mut w = MetricWindow::default();
        for step in 0..50 {
            w.observe(step, Some(step as f64), 3);
            assert!(w.values().len() <= 3);
        }
        assert_eq!(w.values(), [47.0, 48.0, 49.0]);
        assert_eq!(w.seen(), 50);
        // A smaller capacity trims at the next applied row.
        w.observe(50, Some(50.0), 1);
        assert_eq!(w.values(), [50.0]);
        w.observe(51, Some(51.0), 0);
        assert!(w.values().is_empty());
    }

    #[test]
    fn required_capacities() {
        assert_eq!(required_capacity_threshold(&threshold(Agg::Max, 7, Cmp::Gt, Some(1.0))), 7);
        let c = change(3, None, ChangeType::Absolute, ChangeDir::Any, 1.0);
        assert_eq!(required_capacity_change(&c), 6);
        let c = change(3, Some(10), ChangeType::Absolute, ChangeDir::Any, 1.0);
        assert_eq!(required_capacity_change(&c), 13);
        assert_eq!(required_capacity_zscore(&zscore(30, 3.0, ChangeDir::Any)), 31);
    }

    #[test]
    fn threshold_waits_for_a_full_window_then_checks_every_row() {
        let m = threshold(Agg::Average, 3, Cmp::Gt, Some(4.0));
        let fired = run(&[9.0, 9.0, 9.0, 9.0, 0.0], 3, |w| evaluate_threshold(w, &m));
        assert_eq!(fired, [None, None, Some(9.0), Some(9.0), Some(6.0)]);
    }

    #[test]
    fn threshold_aggregates_and_comparisons() {
        let values = [1.0, 5.0, 3.0];
        let eval = |agg, cmp, t| {
            let m = threshold(agg, 3, cmp, Some(t));
            run(&values, 3, |w| evaluate_threshold(w, &m))[2]
        };
        assert_eq!(eval(Agg::Max, Cmp::Gte, 5.0), Some(5.0));
        assert_eq!(eval(Agg::Max, Cmp::Gt, 5.0), None);
        assert_eq!(eval(Agg::Min, Cmp::Lte, 1.0), Some(1.0));
        assert_eq!(eval(Agg::Min, Cmp::Lt, 1.0), None);
        assert_eq!(eval(Agg::Average, Cmp::Gte, 3.0), Some(3.0));
        assert_eq!(eval(Agg::Average, Cmp::Lt, 3.0), None);
        assert_eq!(eval(Agg::Average, Cmp::Lt, 3.5), Some(3.0));
    }

    #[test]
    fn average_of_a_constant_window_is_that_constant() {
        // 0.1 + 0.1 + 0.1 = 0.30000000000000004, and / 3 is not 0.1.
        let m = threshold(Agg::Average, 3, Cmp::Lte, Some(0.1));
        let fired = run(&[0.1, 0.1, 0.1], 3, |w| evaluate_threshold(w, &m));
        assert_eq!(fired[2], Some(0.1));
    }

    #[test]
    fn average_of_huge_finite_values_stays_finite() {
        let m = threshold(Agg::Average, 2, Cmp::Gt, Some(1e300));
        let fired = run(&[f64::MAX, f64::MAX], 2, |w| evaluate_threshold(w, &m));
        assert_eq!(fired[1], Some(f64::MAX));
    }

    #[test]
    fn nan_or_infinity_in_the_window_only_matches_isnan() {
        for bad in [NAN, INF, -INF] {
            for agg in [Agg::Max, Agg::Min, Agg::Average] {
                for (cmp, t) in [(Cmp::Gt, -1e300), (Cmp::Gte, -1e300), (Cmp::Lt, 1e300), (Cmp::Lte, 1e300)] {
                    let m = threshold(agg, 3, cmp, Some(t));
                    let fired = run(&[1.0, bad, 1.0, 1.0, 1.0], 3, |w| evaluate_threshold(w, &m));
                    // Rows 2..=4 hold the bad value; row 5's window no longer does.
                    assert_eq!(&fired[..4], [None; 4], "{bad} {agg:?} {cmp:?}");
                    assert_eq!(fired[4], Some(1.0));
                }
                let m = threshold(agg, 3, Cmp::IsNan, None);
                let fired = run(&[1.0, bad, 1.0, 1.0, 1.0], 3, |w| evaluate_threshold(w, &m));
                let fired_nan: Vec<bool> = fired.iter().map(|f| f.is_some_and(f64::is_nan)).collect();
                assert_eq!(fired_nan, [false, false, true, true, false], "{bad} {agg:?}");
                assert_eq!(fired[4], None);
            }
        }
    }

    #[test]
    fn threshold_without_a_threshold_never_fires() {
        let m = threshold(Agg::Max, 1, Cmp::Gt, None);
        assert_eq!(run(&[1.0], 1, |w| evaluate_threshold(w, &m)), [None]);
        let m = threshold(Agg::Max, 1, Cmp::Gt, Some(NAN));
        assert_eq!(run(&[1.0], 1, |w| evaluate_threshold(w, &m)), [None]);
    }

    #[test]
    fn change_fires_only_when_a_current_block_completes() {
        // Blocks of 2 after a prior of 2: rows 4, 6, 8 complete blocks.
        let m = change(2, None, ChangeType::Absolute, ChangeDir::Increase, 1.0);
        let values = [1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 5.0, 5.0];
        let fired = run(&values, 4, |w| evaluate_change(w, &m));
        assert_eq!(fired, [None, None, None, Some(2.0), None, None, None, Some(2.0)]);
    }

    #[test]
    fn change_blocks_align_on_the_first_value_ever_applied() {
        let m = change(3, Some(1), ChangeType::Absolute, ChangeDir::Any, 0.5);
        let mut w = MetricWindow::default();
        let mut fired = Vec::new();
        // Nulls and replays do not shift the blocks; only applied values count.
        let rows = [
            (1, Some(0.0)),
            (2, None),
            (2, Some(0.0)),
            (2, Some(9.0)),
            (3, Some(0.0)),
            (4, Some(1.0)),
            (5, Some(1.0)),
            (6, Some(1.0)),
            (7, Some(1.0)),
        ];
        for (step, value) in rows {
            if w.observe(step, value, required_capacity_change(&m)) {
                fired.push((step, evaluate_change(&w, &m)));
            }
        }
        assert_eq!(
            fired,
            [
                (1, None),
                (2, None),
                (3, None),
                (4, None),
                (5, None),
                // Block {4,5,6} against the prior value at 3: 1 − 0.
                (6, Some(1.0)),
                (7, None),
            ]
        );
    }

    #[test]
    fn change_prior_window_may_differ_from_current() {
        // current 1, prior 3: each row against the average of the three before it.
        let m = change(1, Some(3), ChangeType::Absolute, ChangeDir::Decrease, 2.0);
        let fired = run(&[3.0, 3.0, 3.0, 1.0, 3.0], 4, |w| evaluate_change(w, &m));
        assert_eq!(fired, [None, None, None, Some(-2.0), None]);
    }

    #[test]
    fn change_directions() {
        let eval = |dir, values: [f64; 2]| {
            let m = change(1, None, ChangeType::Absolute, dir, 1.0);
            run(&values, 2, |w| evaluate_change(w, &m))[1]
        };
        assert_eq!(eval(ChangeDir::Increase, [0.0, 1.0]), Some(1.0));
        assert_eq!(eval(ChangeDir::Increase, [1.0, 0.0]), None);
        assert_eq!(eval(ChangeDir::Decrease, [1.0, 0.0]), Some(-1.0));
        assert_eq!(eval(ChangeDir::Decrease, [0.0, 1.0]), None);
        assert_eq!(eval(ChangeDir::Any, [1.0, 0.0]), Some(-1.0));
        assert_eq!(eval(ChangeDir::Any, [0.0, 1.0]), Some(1.0));
        assert_eq!(eval(ChangeDir::Any, [0.0, 0.5]), None);
    }

    #[test]
    fn relative_change_is_a_fraction_of_the_prior_magnitude() {
        let eval = |dir, amount, values: [f64; 2]| {
            let m = change(1, None, ChangeType::Relative, dir, amount);
            run(&values, 2, |w| evaluate_change(w, &m))[1]
        };
        assert_eq!(eval(ChangeDir::Increase, 0.5, [2.0, 3.0]), Some(0.5));
        assert_eq!(eval(ChangeDir::Decrease, 0.5, [2.0, 1.0]), Some(-0.5));
        // |prior|: from −2 up to −1 is an increase of 50 %.
        assert_eq!(eval(ChangeDir::Increase, 0.5, [-2.0, -1.0]), Some(0.5));
        assert_eq!(eval(ChangeDir::Increase, 0.6, [2.0, 3.0]), None);
    }

    #[test]
    fn relative_change_never_fires_when_prior_is_zero() {
        for prior in [0.0, -0.0] {
            for dir in [ChangeDir::Increase, ChangeDir::Decrease, ChangeDir::Any] {
                let m = change(1, None, ChangeType::Relative, dir, 1e-9);
                assert_eq!(run(&[prior, 5.0], 2, |w| evaluate_change(w, &m))[1], None);
                assert_eq!(run(&[prior, -5.0], 2, |w| evaluate_change(w, &m))[1], None);
            }
        }
        // ABSOLUTE from 0 is fine.
        let m = change(1, None, ChangeType::Absolute, ChangeDir::Any, 1.0);
        assert_eq!(run(&[0.0, 5.0], 2, |w| evaluate_change(w, &m))[1], Some(5.0));
    }

    #[test]
    fn change_never_fires_on_non_finite_values() {
        for bad in [NAN, INF, -INF] {
            let m = change(1, None, ChangeType::Absolute, ChangeDir::Any, 1.0);
            assert_eq!(run(&[0.0, bad, 0.0], 2, |w| evaluate_change(w, &m)), [None; 3]);
        }
        // Finite values whose difference overflows.
        let m = change(1, None, ChangeType::Absolute, ChangeDir::Any, 1.0);
        assert_eq!(run(&[-f64::MAX, f64::MAX], 2, |w| evaluate_change(w, &m))[1], None);
    }

    #[test]
    fn change_waits_for_the_prior_values() {
        let m = change(2, Some(5), ChangeType::Absolute, ChangeDir::Any, 1.0);
        let values = [0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 9.0];
        let fired = run(&values, 7, |w| evaluate_change(w, &m));
        // Row 2, 4 and 6 complete blocks but lack 5 prior values; row 7 does not complete one.
        assert_eq!(fired, [None; 7]);
        let fired = run(&[values.as_slice(), &[9.0]].concat(), 7, |w| evaluate_change(w, &m));
        // Row 8: block {7,8} = 9 against rows 2..=6 averaging 1.8.
        assert_eq!(fired[7], Some(9.0 - 1.8));
    }

    #[test]
    fn change_with_too_small_a_capacity_never_fires() {
        let m = change(1, None, ChangeType::Absolute, ChangeDir::Any, 1.0);
        assert_eq!(run(&[0.0, 5.0, 10.0], 1, |w| evaluate_change(w, &m)), [None; 3]);
    }

    #[test]
    fn zscore_of_the_latest_against_the_previous_window() {
        // Previous [1, 3]: mean 2, population σ 1; latest 5 → z = 3.
        let m = zscore(2, 3.0, ChangeDir::Any);
        assert_eq!(run(&[1.0, 3.0, 5.0], 3, |w| evaluate_zscore(w, &m)), [None, None, Some(3.0)]);
        let m = zscore(2, 3.0, ChangeDir::Increase);
        assert_eq!(run(&[1.0, 3.0, 5.0], 3, |w| evaluate_zscore(w, &m))[2], Some(3.0));
        assert_eq!(run(&[1.0, 3.0, -1.0], 3, |w| evaluate_zscore(w, &m))[2], None);
        let m = zscore(2, 3.0, ChangeDir::Decrease);
        assert_eq!(run(&[1.0, 3.0, -1.0], 3, |w| evaluate_zscore(w, &m))[2], Some(-3.0));
        assert_eq!(run(&[1.0, 3.0, 5.0], 3, |w| evaluate_zscore(w, &m))[2], None);
        let m = zscore(2, 3.0001, ChangeDir::Any);
        assert_eq!(run(&[1.0, 3.0, 5.0], 3, |w| evaluate_zscore(w, &m))[2], None);
    }

    #[test]
    fn zscore_never_fires_when_the_standard_deviation_is_zero() {
        for constant in [0.0, 0.1, -7.3, 1e300] {
            let m = zscore(3, 0.001, ChangeDir::Any);
            let values = [constant, constant, constant, constant + 1.0, 1e9];
            assert_eq!(run(&values, 4, |w| evaluate_zscore(w, &m))[3], None, "{constant}");
        }
    }

    #[test]
    fn zscore_never_fires_on_non_finite_values() {
        for bad in [NAN, INF, -INF] {
            let m = zscore(2, 0.1, ChangeDir::Any);
            assert_eq!(run(&[1.0, 2.0, bad], 3, |w| evaluate_zscore(w, &m))[2], None);
            assert_eq!(run(&[1.0, bad, 9.0], 3, |w| evaluate_zscore(w, &m))[2], None);
        }
    }

    #[test]
    fn zscore_handles_values_whose_squares_overflow() {
        let m = zscore(2, 3.0, ChangeDir::Any);
        let values = [1e300, 3e300, 5e300];
        let z = run(&values, 3, |w| evaluate_zscore(w, &m))[2].unwrap();
        assert!((z - 3.0).abs() < 1e-12, "{z}");
    }

    #[test]
    fn power_of_two_scale_is_exact() {
        for x in [1.0, 1.5, 3.0, 1e-300, 5e-324, f64::MAX, 1e300] {
            let s = power_of_two_scale(x);
            assert_eq!(s.to_bits() & ((1 << 52) - 1), 0, "{x}: not a power of two");
            assert!(x * s < 4.0 && x * s > 0.0, "{x} scaled to {}", x * s);
        }
    }

    #[test]
    fn serialized_window_round_trips_nan_and_infinity() {
        let mut w = MetricWindow::default();
        for (step, v) in [(1, 0.5), (2, NAN), (3, INF), (4, -INF), (5, -0.0), (6, 0.1)] {
            w.observe(step, Some(v), 10);
        }
        let text = serde_json::to_string(&w).unwrap();
        assert_eq!(text, r#"{"last_step":6,"values":[0.5,"NaN","Infinity","-Infinity",-0.0,0.1],"seen":6}"#);
        let back: MetricWindow = serde_json::from_str(&text).unwrap();
        assert_eq!(back, w);
        assert!(back.values()[1].is_nan());
        assert_eq!(back.values()[4].to_bits(), (-0.0_f64).to_bits());
        // A NaN with another payload (0/0 on x86) still round-trips as NaN.
        let mut w = MetricWindow::default();
        let zero = std::hint::black_box(0.0_f64);
        w.observe(1, Some(zero / zero), 1);
        let back: MetricWindow = serde_json::from_value(serde_json::to_value(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn empty_and_older_documents_deserialize() {
        let w: MetricWindow = serde_json::from_value(json!({})).unwrap();
        assert_eq!(w, MetricWindow::default());
        let w: MetricWindow =
            serde_json::from_value(json!({"last_step": 3, "values": [1, -2, 0.5], "seen": 9, "v": 2})).unwrap();
        assert_eq!(w.values(), [1.0, -2.0, 0.5]);
        assert!(
            serde_json::from_value::<MetricWindow>(json!({"values": ["nan"]})).is_err(),
            "only the exact spellings are accepted"
        );
    }

    #[test]
    fn nan_windows_compare_equal_to_themselves() {
        let mut w = MetricWindow::default();
        w.observe(1, Some(NAN), 2);
        assert_eq!(w, w.clone());
        let mut other = MetricWindow::default();
        other.observe(1, Some(1.0), 2);
        assert_ne!(w, other);
    }
}

/// Row-by-row evaluation against a reference that recomputes from every accepted value.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Rows as a producer sends them: steps that sometimes repeat or go back, some nulls, and
    /// runs of one value (plateaus make constant windows, ties with thresholds and σ = 0).
    fn rows() -> impl Strategy<Value = Vec<(i64, Option<f64>)>> {
        let value = prop_oneof![
            2 => Just(None),
            1 => Just(Some(f64::NAN)),
            1 => Just(Some(f64::INFINITY)),
            1 => Just(Some(f64::NEG_INFINITY)),
            6 => (-3i32..=3).prop_map(|v| Some(f64::from(v))),
            // Sums of 0.1 are inexact: constant windows must still average to 0.1 and σ 0.
            2 => Just(Some(0.1)),
            8 => (-1e6f64..1e6).prop_map(Some),
        ];
        let run_length = prop_oneof![4 => Just(1usize), 1 => 2usize..8];
        prop::collection::vec((-2i64..=3, value, run_length), 0..60).prop_map(|runs| {
            let mut step = 0;
            let mut rows = Vec::new();
            for (delta, value, length) in runs {
                step += delta;
                rows.push((step, value));
                for _ in 1..length {
                    step += 1;
                    rows.push((step, value));
                }
            }
            rows
        })
    }

    fn agg() -> impl Strategy<Value = Agg> {
        prop_oneof![Just(Agg::Max), Just(Agg::Min), Just(Agg::Average)]
    }

    fn dir() -> impl Strategy<Value = ChangeDir> {
        prop_oneof![Just(ChangeDir::Increase), Just(ChangeDir::Decrease), Just(ChangeDir::Any)]
    }

    fn threshold_metric() -> impl Strategy<Value = ThresholdMetric> {
        let cmp = prop_oneof![Just(Cmp::Gt), Just(Cmp::Gte), Just(Cmp::Lt), Just(Cmp::Lte), Just(Cmp::IsNan)];
        let t = prop_oneof![(-3i32..=3).prop_map(f64::from), -1e6f64..1e6];
        (agg(), 1u32..=12, cmp, t).prop_map(|(agg, window, cmp, t)| ThresholdMetric {
            name: "m".into(),
            agg,
            window,
            cmp,
            threshold: (cmp != Cmp::IsNan).then_some(t),
        })
    }

    fn change_metric() -> impl Strategy<Value = ChangeMetric> {
        let kind = prop_oneof![Just(ChangeType::Absolute), Just(ChangeType::Relative)];
        let amount = prop_oneof![Just(0.5), Just(1.0), Just(2.0), 1e-3f64..1e6];
        (agg(), 1u32..=6, prop::option::of(1u32..=6), kind, dir(), amount).prop_map(
            |(agg, current_window, prior_window, change_type, change_dir, amount)| ChangeMetric {
                name: "m".into(),
                agg,
                current_window,
                prior_window,
                change_type,
                change_dir,
                amount,
            },
        )
    }

    fn zscore_metric() -> impl Strategy<Value = ZScoreMetric> {
        (2u32..=8, 0.1f64..4.0, dir()).prop_map(|(window, threshold, change_dir)| ZScoreMetric {
            name: "m".into(),
            window,
            threshold,
            change_dir,
        })
    }

    /// The rules written out over the whole list of accepted values, without a window.
    mod reference {
        use super::*;

        pub fn accepted(rows: &[(i64, Option<f64>)]) -> Vec<f64> {
            let mut last: Option<i64> = None;
            let mut out = Vec::new();
            for &(step, value) in rows {
                if let Some(v) = value
                    && last.is_none_or(|l| step > l)
                {
                    last = Some(step);
                    out.push(v);
                }
            }
            out
        }

        fn mean(xs: &[f64]) -> f64 {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (xs.iter().sum::<f64>() / xs.len() as f64).clamp(lo, hi)
        }

        fn aggregate(agg: Agg, xs: &[f64]) -> f64 {
            if xs.iter().any(|x| x.is_nan() || x.is_infinite()) {
                return f64::NAN;
            }
            match agg {
                Agg::Max => xs.iter().copied().reduce(f64::max).unwrap_or(f64::NAN),
                Agg::Min => xs.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
                Agg::Average => mean(xs),
            }
        }

        fn wants(dir: ChangeDir, x: f64, amount: f64) -> bool {
            match dir {
                ChangeDir::Increase => x >= amount,
                ChangeDir::Decrease => x <= -amount,
                ChangeDir::Any => x >= amount || x <= -amount,
            }
        }

        pub fn threshold(all: &[f64], m: &ThresholdMetric) -> Option<f64> {
            let n = m.window as usize;
            if all.len() < n {
                return None;
            }
            let a = aggregate(m.agg, &all[all.len() - n..]);
            let hit = match (m.cmp, m.threshold) {
                (Cmp::IsNan, _) => a.is_nan(),
                (_, None) => false,
                (_, Some(_)) if a.is_nan() => false,
                (Cmp::Gt, Some(t)) => a > t,
                (Cmp::Gte, Some(t)) => a >= t,
                (Cmp::Lt, Some(t)) => a < t,
                (Cmp::Lte, Some(t)) => a <= t,
            };
            hit.then_some(a)
        }

        pub fn change(all: &[f64], m: &ChangeMetric) -> Option<f64> {
            let c = m.current_window as usize;
            let p = m.prior_window.unwrap_or(m.current_window) as usize;
            if !all.len().is_multiple_of(c) || all.len() < c + p {
                return None;
            }
            let cur = aggregate(m.agg, &all[all.len() - c..]);
            let prior = aggregate(m.agg, &all[all.len() - c - p..all.len() - c]);
            let delta = match m.change_type {
                ChangeType::Absolute => cur - prior,
                ChangeType::Relative if prior == 0.0 => f64::NAN,
                ChangeType::Relative => (cur - prior) / prior.abs(),
            };
            (delta.is_finite() && wants(m.change_dir, delta, m.amount)).then_some(delta)
        }

        pub fn zscore(all: &[f64], m: &ZScoreMetric) -> Option<f64> {
            let n = m.window as usize;
            if all.len() < n + 1 {
                return None;
            }
            let latest = all[all.len() - 1];
            let prev = &all[all.len() - 1 - n..all.len() - 1];
            if !latest.is_finite() || prev.iter().any(|x| !x.is_finite()) {
                return None;
            }
            let mu = mean(prev);
            let sigma = (prev.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n as f64).sqrt();
            if sigma == 0.0 {
                return None;
            }
            let z = (latest - mu) / sigma;
            (z.is_finite() && wants(m.change_dir, z, m.threshold)).then_some(z)
        }
    }

    /// Same decision and the same value, NaN equal to NaN.
    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// One window shared by three automations, persisted and reloaded after every row,
        /// decides exactly what the reference decides from all accepted values.
        #[test]
        fn shared_window_matches_the_reference(
            rows in rows(),
            t in threshold_metric(),
            c in change_metric(),
            z in zscore_metric(),
            spare in 0usize..4,
            persist in any::<bool>(),
        ) {
            let capacity = required_capacity_threshold(&t)
                .max(required_capacity_change(&c))
                .max(required_capacity_zscore(&z))
                + spare;
            let mut w = MetricWindow::default();
            let mut accepted_rows = Vec::new();
            for (i, &(step, value)) in rows.iter().enumerate() {
                let before = w.clone();
                let applied = w.observe(step, value, capacity);
                prop_assert!(w.values().len() <= capacity);
                if !applied {
                    prop_assert_eq!(&w, &before);
                    continue;
                }
                if persist {
                    let text = serde_json::to_string(&w).unwrap();
                    let back: MetricWindow = serde_json::from_str(&text).unwrap();
                    prop_assert_eq!(&back, &w);
                    w = back;
                }
                accepted_rows.push(i);
                let all = reference::accepted(&rows[..=i]);
                prop_assert_eq!(all.len(), accepted_rows.len());
                prop_assert_eq!(w.seen(), all.len() as u64);
                let got = evaluate_threshold(&w, &t);
                let want = reference::threshold(&all, &t);
                prop_assert!(same(got, want), "threshold row {}: {:?} vs {:?}", i, got, want);
                let got = evaluate_change(&w, &c);
                let want = reference::change(&all, &c);
                prop_assert!(same(got, want), "change row {}: {:?} vs {:?}", i, got, want);
                let got = evaluate_zscore(&w, &z);
                let want = reference::zscore(&all, &z);
                prop_assert!(same(got, want), "zscore row {}: {:?} vs {:?}", i, got, want);
            }
        }

        /// Feeding the same rows again, in any order, changes nothing.
        #[test]
        fn replaying_rows_changes_nothing(rows in rows(), capacity in 0usize..20) {
            let mut w = MetricWindow::default();
            for &(step, value) in &rows {
                w.observe(step, value, capacity);
            }
            let settled = w.clone();
            for &(step, value) in rows.iter().rev().chain(&rows) {
                prop_assert!(!w.observe(step, value, capacity));
            }
            prop_assert_eq!(w, settled);
        }
    }
}
