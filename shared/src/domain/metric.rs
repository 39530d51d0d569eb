//! The `metric` object of the three run-metric event types (DESIGN §5): `RUN_METRIC`
//! (threshold), `RUN_METRIC_CHANGE` and `RUN_METRIC_ZSCORE`.
//!
//! Deserializing checks shape (names, types, unknown fields); `validate` checks values and
//! reports every fault at once, each with its field relative to the `metric` object, so the
//! HTTP layer can prefix `event.metric.` and answer 422 with all of them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest metric name accepted, in characters.
pub const MAX_METRIC_NAME_CHARS: usize = 256;
/// Smallest and largest window (rows) a threshold or change metric may ask for.
pub const MIN_WINDOW: u32 = 1;
pub const MAX_WINDOW: u32 = 100;
/// A z-score needs a standard deviation, so its window holds at least two values.
pub const MIN_ZSCORE_WINDOW: u32 = 2;

/// How the values of a window are reduced to one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Agg {
    #[serde(rename = "MAX")]
    Max,
    #[serde(rename = "MIN")]
    Min,
    #[serde(rename = "AVERAGE")]
    Average,
}

/// Comparison of a threshold metric's aggregate with its threshold. `$isnan` (beyond W&B)
/// matches when a value in the window is NaN or infinite, and takes no threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Cmp {
    #[serde(rename = "$gt")]
    Gt,
    #[serde(rename = "$gte")]
    Gte,
    #[serde(rename = "$lt")]
    Lt,
    #[serde(rename = "$lte")]
    Lte,
    #[serde(rename = "$isnan")]
    IsNan,
}

/// `ABSOLUTE`: current − prior. `RELATIVE`: (current − prior) / |prior|, as a fraction
/// (`amount: 0.1` means 10 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ChangeType {
    #[serde(rename = "ABSOLUTE")]
    Absolute,
    #[serde(rename = "RELATIVE")]
    Relative,
}

/// Which direction of change (or z-score sign) fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ChangeDir {
    #[serde(rename = "INCREASE")]
    Increase,
    #[serde(rename = "DECREASE")]
    Decrease,
    #[serde(rename = "ANY")]
    Any,
}

fn default_agg() -> Agg {
    Agg::Average
}
fn default_threshold_window() -> u32 {
    5
}
fn default_current_window() -> u32 {
    1
}
fn default_zscore_window() -> u32 {
    30
}
fn default_zscore_threshold() -> f64 {
    3.0
}
fn default_change_dir() -> ChangeDir {
    ChangeDir::Any
}

/// `RUN_METRIC`: fires when the aggregate of the last `window` values satisfies
/// `cmp threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdMetric {
    /// Metric key as logged in the run history (`loss`, `train/acc`).
    pub name: String,
    #[serde(default = "default_agg")]
    #[schema(default = "AVERAGE")]
    pub agg: Agg,
    /// Number of latest values aggregated.
    #[serde(default = "default_threshold_window")]
    #[schema(default = 5, minimum = 1, maximum = 100)]
    pub window: u32,
    pub cmp: Cmp,
    /// Required for every `cmp` except `$isnan`, where it must be absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// `RUN_METRIC_CHANGE`: compares the aggregate of each completed block of `current_window`
/// rows with the aggregate of the `prior_window` rows just before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMetric {
    /// Metric key as logged in the run history.
    pub name: String,
    #[serde(default = "default_agg")]
    #[schema(default = "AVERAGE")]
    pub agg: Agg,
    #[serde(default = "default_current_window")]
    #[schema(default = 1, minimum = 1, maximum = 100)]
    pub current_window: u32,
    /// Defaults to `current_window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub prior_window: Option<u32>,
    pub change_type: ChangeType,
    pub change_dir: ChangeDir,
    /// Size of change that fires, > 0; a fraction for `RELATIVE`.
    #[schema(exclusive_minimum = 0.0)]
    pub amount: f64,
}

/// `RUN_METRIC_ZSCORE`: z = (latest − mean) / stddev over the `window` values before the
/// latest (population standard deviation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZScoreMetric {
    /// Metric key as logged in the run history.
    pub name: String,
    #[serde(default = "default_zscore_window")]
    #[schema(default = 30, minimum = 2, maximum = 100)]
    pub window: u32,
    /// |z| (in the chosen direction) that fires, > 0.
    #[serde(default = "default_zscore_threshold")]
    #[schema(default = 3.0, exclusive_minimum = 0.0)]
    pub threshold: f64,
    #[serde(default = "default_change_dir")]
    #[schema(default = "ANY")]
    pub change_dir: ChangeDir,
}

/// One validation fault; `field` is relative to the `metric` object ("window", "threshold", "name").
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFault {
    pub field: &'static str,
    pub message: String,
}

impl MetricFault {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

impl ThresholdMetric {
    pub fn validate(&self) -> Vec<MetricFault> {
        let mut faults = Vec::new();
        check_name(&self.name, &mut faults);
        check_window("window", self.window, MIN_WINDOW, &mut faults);
        match (self.cmp, self.threshold) {
            (Cmp::IsNan, Some(_)) => {
                faults.push(MetricFault::new("threshold", "must be absent or null when cmp is $isnan"))
            }
            (Cmp::IsNan, None) => {}
            (_, None) => faults.push(MetricFault::new("threshold", "is required unless cmp is $isnan")),
            (_, Some(t)) => check_finite("threshold", t, &mut faults),
        }
        faults
    }
}

impl ChangeMetric {
    /// `prior_window`, or `current_window` when it was not given.
    pub fn prior_window_or_current(&self) -> u32 {
        self.prior_window.unwrap_or(self.current_window)
    }

    pub fn validate(&self) -> Vec<MetricFault> {
        let mut faults = Vec::new();
        check_name(&self.name, &mut faults);
        check_window("current_window", self.current_window, MIN_WINDOW, &mut faults);
        if let Some(prior) = self.prior_window {
            check_window("prior_window", prior, MIN_WINDOW, &mut faults);
        }
        check_positive("amount", self.amount, &mut faults);
        faults
    }
}

impl ZScoreMetric {
    pub fn validate(&self) -> Vec<MetricFault> {
        let mut faults = Vec::new();
        check_name(&self.name, &mut faults);
        check_window("window", self.window, MIN_ZSCORE_WINDOW, &mut faults);
        check_positive("threshold", self.threshold, &mut faults);
        faults
    }
}

fn check_name(name: &str, faults: &mut Vec<MetricFault>) {
    if name.trim().is_empty() {
        faults.push(MetricFault::new("name", "must not be empty"));
    } else if name.chars().count() > MAX_METRIC_NAME_CHARS {
        faults.push(MetricFault::new("name", format!("must be at most {MAX_METRIC_NAME_CHARS} characters")));
    }
}

fn check_window(field: &'static str, value: u32, min: u32, faults: &mut Vec<MetricFault>) {
    if !(min..=MAX_WINDOW).contains(&value) {
        faults.push(MetricFault::new(field, format!("must be between {min} and {MAX_WINDOW}")));
    }
}

fn check_finite(field: &'static str, value: f64, faults: &mut Vec<MetricFault>) {
    if !value.is_finite() {
        faults.push(MetricFault::new(field, "must be a finite number"));
    }
}

fn check_positive(field: &'static str, value: f64, faults: &mut Vec<MetricFault>) {
    if !value.is_finite() {
        faults.push(MetricFault::new(field, "must be a finite number"));
    } else if value <= 0.0 {
        faults.push(MetricFault::new(field, "must be greater than 0"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn threshold(value: serde_json::Value) -> ThresholdMetric {
        serde_json::from_value(value).unwrap()
    }

    fn fields(faults: &[MetricFault]) -> Vec<&'static str> {
        faults.iter().map(|f| f.field).collect()
    }

    fn valid_change() -> ChangeMetric {
        ChangeMetric {
            name: "loss".into(),
            agg: Agg::Average,
            current_window: 3,
            prior_window: None,
            change_type: ChangeType::Relative,
            change_dir: ChangeDir::Any,
            amount: 0.1,
        }
    }

    fn valid_zscore() -> ZScoreMetric {
        ZScoreMetric { name: "loss".into(), window: 30, threshold: 3.0, change_dir: ChangeDir::Any }
    }

    #[test]
    fn threshold_defaults_apply_and_serialize_with_design_names() {
        let m = threshold(json!({"name": "loss", "cmp": "$gt", "threshold": 4.0}));
        assert_eq!(m.agg, Agg::Average);
        assert_eq!(m.window, 5);
        assert!(m.validate().is_empty());
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"name": "loss", "agg": "AVERAGE", "window": 5, "cmp": "$gt", "threshold": 4.0})
        );
    }

    #[test]
    fn every_enum_uses_its_design_spelling() {
        for (agg, text) in [(Agg::Max, "MAX"), (Agg::Min, "MIN"), (Agg::Average, "AVERAGE")] {
            assert_eq!(serde_json::to_value(agg).unwrap(), json!(text));
        }
        for (cmp, text) in
            [(Cmp::Gt, "$gt"), (Cmp::Gte, "$gte"), (Cmp::Lt, "$lt"), (Cmp::Lte, "$lte"), (Cmp::IsNan, "$isnan")]
        {
            assert_eq!(serde_json::to_value(cmp).unwrap(), json!(text));
            assert_eq!(serde_json::from_value::<Cmp>(json!(text)).unwrap(), cmp);
        }
        for (t, text) in [(ChangeType::Absolute, "ABSOLUTE"), (ChangeType::Relative, "RELATIVE")] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(text));
        }
        for (d, text) in [(ChangeDir::Increase, "INCREASE"), (ChangeDir::Decrease, "DECREASE"), (ChangeDir::Any, "ANY")]
        {
            assert_eq!(serde_json::to_value(d).unwrap(), json!(text));
        }
        assert!(serde_json::from_value::<Agg>(json!("average")).is_err());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_value::<ThresholdMetric>(
            json!({"name": "loss", "cmp": "$gt", "threshold": 1.0, "windw": 3}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("windw"), "{err}");
        assert!(
            serde_json::from_value::<ChangeMetric>(json!({
                "name": "loss", "change_type": "ABSOLUTE", "change_dir": "ANY", "amount": 1.0,
                "threshold": 2.0
            }))
            .is_err()
        );
        assert!(serde_json::from_value::<ZScoreMetric>(json!({"name": "loss", "agg": "MAX"})).is_err());
    }

    #[test]
    fn change_defaults_and_prior_window_falls_back_to_current() {
        let m: ChangeMetric = serde_json::from_value(json!({
            "name": "acc", "change_type": "ABSOLUTE", "change_dir": "DECREASE", "amount": 0.05
        }))
        .unwrap();
        assert_eq!(m.agg, Agg::Average);
        assert_eq!(m.current_window, 1);
        assert_eq!(m.prior_window, None);
        assert_eq!(m.prior_window_or_current(), 1);
        assert!(m.validate().is_empty());
        let explicit = ChangeMetric { current_window: 4, prior_window: Some(10), ..m };
        assert_eq!(explicit.prior_window_or_current(), 10);
        // An absent prior_window stays absent: "default = current" follows later edits of current.
        assert!(serde_json::to_value(valid_change()).unwrap().get("prior_window").is_none());
    }

    #[test]
    fn change_requires_type_dir_and_amount() {
        for missing in ["change_type", "change_dir", "amount"] {
            let mut doc = json!({
                "name": "acc", "change_type": "ABSOLUTE", "change_dir": "ANY", "amount": 1.0
            });
            doc.as_object_mut().unwrap().remove(missing);
            let err = serde_json::from_value::<ChangeMetric>(doc).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn zscore_defaults() {
        let m: ZScoreMetric = serde_json::from_value(json!({"name": "loss"})).unwrap();
        assert_eq!(m, valid_zscore());
        assert!(m.validate().is_empty());
    }

    #[test]
    fn name_must_be_non_empty_and_at_most_256_chars() {
        for bad in ["", "   "] {
            let m = threshold(json!({"name": bad, "cmp": "$gt", "threshold": 1.0}));
            assert_eq!(m.validate(), vec![MetricFault::new("name", "must not be empty")]);
        }
        // Characters, not bytes: 256 two-byte characters are fine.
        let ok = threshold(json!({"name": "é".repeat(256), "cmp": "$gt", "threshold": 1.0}));
        assert!(ok.validate().is_empty());
        let long = threshold(json!({"name": "a".repeat(257), "cmp": "$gt", "threshold": 1.0}));
        assert_eq!(fields(&long.validate()), ["name"]);
        let change = ChangeMetric { name: String::new(), ..valid_change() };
        assert_eq!(fields(&change.validate()), ["name"]);
        let z = ZScoreMetric { name: "x".repeat(300), ..valid_zscore() };
        assert_eq!(fields(&z.validate()), ["name"]);
    }

    #[test]
    fn threshold_window_is_1_to_100() {
        for (window, ok) in [(0, false), (1, true), (100, true), (101, false)] {
            let m = threshold(json!({"name": "l", "window": window, "cmp": "$lt", "threshold": 0}));
            assert_eq!(m.validate().is_empty(), ok, "window {window}");
            if !ok {
                assert_eq!(m.validate(), vec![MetricFault::new("window", "must be between 1 and 100")]);
            }
        }
        assert!(
            serde_json::from_value::<ThresholdMetric>(json!({"name": "l", "window": -1, "cmp": "$lt", "threshold": 0}))
                .is_err()
        );
    }

    #[test]
    fn threshold_is_required_unless_isnan() {
        for cmp in ["$gt", "$gte", "$lt", "$lte"] {
            let m = threshold(json!({"name": "loss", "cmp": cmp}));
            assert_eq!(m.validate(), vec![MetricFault::new("threshold", "is required unless cmp is $isnan")]);
        }
        let isnan = threshold(json!({"name": "loss", "cmp": "$isnan"}));
        assert!(isnan.validate().is_empty());
        let isnan_null = threshold(json!({"name": "loss", "cmp": "$isnan", "threshold": null}));
        assert!(isnan_null.validate().is_empty());
        assert_eq!(
            serde_json::to_value(&isnan).unwrap(),
            json!({"name": "loss", "agg": "AVERAGE", "window": 5, "cmp": "$isnan"})
        );
    }

    #[test]
    fn isnan_with_a_threshold_is_a_fault() {
        let m = threshold(json!({"name": "loss", "cmp": "$isnan", "threshold": 1.0}));
        assert_eq!(fields(&m.validate()), ["threshold"]);
    }

    #[test]
    fn threshold_must_be_finite() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let m =
                ThresholdMetric { name: "loss".into(), agg: Agg::Max, window: 5, cmp: Cmp::Gte, threshold: Some(bad) };
            assert_eq!(m.validate(), vec![MetricFault::new("threshold", "must be a finite number")]);
        }
        // Negative and zero thresholds are ordinary values.
        let m = threshold(json!({"name": "loss", "cmp": "$lte", "threshold": -3.5}));
        assert!(m.validate().is_empty());
    }

    #[test]
    fn change_windows_are_1_to_100() {
        let m = ChangeMetric { current_window: 0, prior_window: Some(101), ..valid_change() };
        assert_eq!(
            m.validate(),
            vec![
                MetricFault::new("current_window", "must be between 1 and 100"),
                MetricFault::new("prior_window", "must be between 1 and 100"),
            ]
        );
        let edges = ChangeMetric { current_window: 100, prior_window: Some(1), ..valid_change() };
        assert!(edges.validate().is_empty());
    }

    #[test]
    fn change_amount_must_be_positive_and_finite() {
        for (amount, message) in [
            (0.0, "must be greater than 0"),
            (-0.0, "must be greater than 0"),
            (-1.0, "must be greater than 0"),
            (f64::NAN, "must be a finite number"),
            (f64::INFINITY, "must be a finite number"),
        ] {
            let m = ChangeMetric { amount, ..valid_change() };
            assert_eq!(m.validate(), vec![MetricFault::new("amount", message)]);
        }
    }

    #[test]
    fn zscore_window_is_2_to_100() {
        for (window, ok) in [(0, false), (1, false), (2, true), (100, true), (101, false)] {
            let m = ZScoreMetric { window, ..valid_zscore() };
            assert_eq!(m.validate().is_empty(), ok, "window {window}");
            if !ok {
                assert_eq!(m.validate(), vec![MetricFault::new("window", "must be between 2 and 100")]);
            }
        }
    }

    #[test]
    fn zscore_threshold_must_be_positive_and_finite() {
        for (threshold, message) in [
            (0.0, "must be greater than 0"),
            (-3.0, "must be greater than 0"),
            (f64::NAN, "must be a finite number"),
            (f64::NEG_INFINITY, "must be a finite number"),
        ] {
            let m = ZScoreMetric { threshold, ..valid_zscore() };
            assert_eq!(m.validate(), vec![MetricFault::new("threshold", message)]);
        }
    }

    #[test]
    fn all_faults_are_reported_at_once() {
        let m = ThresholdMetric { name: String::new(), agg: Agg::Min, window: 0, cmp: Cmp::Gt, threshold: None };
        assert_eq!(fields(&m.validate()), ["name", "window", "threshold"]);
        let z = ZScoreMetric { name: String::new(), window: 1, threshold: 0.0, change_dir: ChangeDir::Increase };
        assert_eq!(fields(&z.validate()), ["name", "window", "threshold"]);
    }

    #[test]
    fn schemas_carry_defaults_and_bounds() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(ThresholdMetric::schema()).unwrap();
        assert_eq!(schema["properties"]["window"]["default"], json!(5));
        assert_eq!(schema["properties"]["window"]["maximum"], json!(100));
        assert_eq!(schema["required"], json!(["name", "cmp"]));
        let z = serde_json::to_value(ZScoreMetric::schema()).unwrap();
        assert_eq!(z["properties"]["window"]["minimum"], json!(2));
        assert_eq!(z["required"], json!(["name"]));
        assert_eq!(z["properties"]["threshold"]["exclusiveMinimum"], json!(0));
        let cmp = serde_json::to_value(Cmp::schema()).unwrap();
        assert_eq!(cmp["enum"], json!(["$gt", "$gte", "$lt", "$lte", "$isnan"]));
    }
}
