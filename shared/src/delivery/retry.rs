//! Retry policy: what an attempt's result means and how long to wait before the next one.
//!
//! Everything here is deterministic: randomness comes in as `rand01`, time as `now`.

use std::fmt;
use std::time::Duration;

/// The longest wait we ever schedule: SQS cannot hide a message for longer
/// (ChangeMessageVisibility ≤ 12 h) and the local queue keeps the same limit.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 60 * 60);
/// The shortest `Retry-After` we honour.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How an attempt failed before any HTTP status came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// DNS failure, connection refused or reset while connecting, TLS handshake failure.
    Connect,
    /// The attempt's total timeout passed.
    Timeout,
    /// The request was not sent: the SSRF guard refused the destination, or the request could
    /// not be built. Never retried.
    Refused { reason: String },
    /// Any other failure on the wire (connection closed mid-request, protocol error).
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportErrorKind::Connect => f.write_str("connection failed"),
            TransportErrorKind::Timeout => f.write_str("timed out"),
            TransportErrorKind::Refused { reason } => write!(f, "not sent: {reason}"),
            TransportErrorKind::Other => f.write_str("request failed"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetryError {
    #[error("RETRY_SCHEDULE entry {entry:?}: {problem}")]
    InvalidEntry { entry: String, problem: &'static str },
}

/// Delays between automatic attempts, after the first try (`RETRY_SCHEDULE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        RetrySchedule(
            [5, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl RetrySchedule {
    pub fn new(entries: Vec<Duration>) -> Self {
        RetrySchedule(entries)
    }

    /// Parses a comma-separated list of durations: a whole number and one of the units
    /// `ms`, `s`, `m`, `h`, `d` (`"1s,2s,5m,2h"`). An empty string means no automatic retries.
    pub fn parse(s: &str) -> Result<Self, RetryError> {
        if s.trim().is_empty() {
            return Ok(RetrySchedule(Vec::new()));
        }
        s.split(',').map(parse_duration).collect::<Result<Vec<_>, _>>().map(RetrySchedule)
    }

    /// Automatic attempts an execution gets: the first try plus one per entry.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX - 1) + 1
    }

    pub fn entries(&self) -> &[Duration] {
        &self.0
    }
}

fn parse_duration(raw: &str) -> Result<Duration, RetryError> {
    let entry = raw.trim();
    let invalid = |problem| RetryError::InvalidEntry { entry: entry.to_owned(), problem };
    if entry.is_empty() {
        return Err(invalid("empty entry"));
    }
    let split = entry.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| invalid("missing unit (ms, s, m, h or d)"))?;
    let (digits, unit) = entry.split_at(split);
    if digits.is_empty() {
        return Err(invalid("expected a whole number followed by ms, s, m, h or d"));
    }
    let n: u64 = digits.parse().map_err(|_| invalid("number too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid("unknown unit (expected ms, s, m, h or d)")),
    };
    let millis = n.checked_mul(millis_per_unit).ok_or_else(|| invalid("number too large"))?;
    Ok(Duration::from_millis(millis))
}

/// What one attempt's result means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry { retry_after: Option<Duration> },
    Failed { reason: String },
}

/// Classifies one attempt. A refusal (SSRF guard) fails; otherwise an HTTP status, when there is
/// one, decides: it is what the receiver answered even if reading the body failed afterwards.
/// 2xx delivered; 408, 425, 429 and 5xx retry; 3xx (redirects are not followed) and other 4xx
/// fail. Without a status, connect errors, timeouts and other transport errors retry.
pub fn classify(
    status: Option<u16>,
    transport_error: Option<&TransportErrorKind>,
    retry_after: Option<Duration>,
) -> Verdict {
    if let Some(TransportErrorKind::Refused { reason }) = transport_error {
        return Verdict::Failed { reason: format!("not sent: {reason}") };
    }
    match (status, transport_error) {
        (Some(status), _) => classify_status(status, retry_after),
        (None, Some(_)) => Verdict::Retry { retry_after: None },
        (None, None) => Verdict::Failed { reason: "no response and no error recorded".to_owned() },
    }
}

fn classify_status(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 | 500..=599 => Verdict::Retry { retry_after },
        300..=399 => Verdict::Failed {
            reason: format!(
                "HTTP {status}: redirect not followed (webhook redirects are not followed; use the final URL)"
            ),
        },
        400..=499 => Verdict::Failed { reason: format!("HTTP {status}: the receiver rejected the request") },
        _ => Verdict::Failed { reason: format!("HTTP {status}: unexpected status") },
    }
}

/// Schedule plus jitter. `Default` is the built-in schedule with ±20 % jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    /// Fraction of the scheduled delay added or removed at random (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { schedule: RetrySchedule::default(), jitter: 0.2 }
    }
}

impl RetryPolicy {
    pub fn new(schedule: RetrySchedule) -> Self {
        RetryPolicy { schedule, jitter: 0.2 }
    }

    pub fn max_attempts(&self) -> u32 {
        self.schedule.max_attempts()
    }

    /// Delay before attempt `attempt + 1` after attempt number `attempt` (1-based) failed
    /// retryably, or None when attempts are exhausted. The scheduled delay gets ±`jitter`
    /// (`rand01` = 0 is the shortest, 1 the longest); a `Retry-After` is clamped to
    /// [1 s, 12 h] and the later of it and the jittered delay wins. Never more than 12 h.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>, rand01: f64) -> Option<Duration> {
        let index = usize::try_from(attempt.max(1) - 1).ok()?;
        let scheduled = *self.schedule.entries().get(index)?;
        let rand01 = if rand01.is_finite() { rand01.clamp(0.0, 1.0) } else { 0.5 };
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 1.0) } else { 0.0 };
        let factor = 1.0 + jitter * (2.0 * rand01 - 1.0);
        let jittered = Duration::try_from_secs_f64(scheduled.as_secs_f64() * factor).unwrap_or(MAX_DELAY);
        let delay = match retry_after {
            Some(ra) => jittered.max(ra.clamp(MIN_RETRY_AFTER, MAX_DELAY)),
            None => jittered,
        };
        Some(delay.min(MAX_DELAY))
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date (IMF-fixdate, and the obsolete
/// RFC 850 and asctime forms). A date in the past gives zero.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers saturate; next_delay clamps to 12 h anyway.
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    let delta = at.duration_since(now);
    if delta.is_negative() {
        return Some(Duration::ZERO);
    }
    Duration::try_from(delta).ok()
}

fn parse_http_date(value: &str) -> Option<jiff::Timestamp> {
    static RFC2822: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    if let Ok(ts) = RFC2822.parse_timestamp(value) {
        return Some(ts);
    }
    // Obsolete forms RFC 9110 §5.6.7 still asks recipients to accept; both are GMT.
    const OBSOLETE: [&str; 2] = ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"];
    OBSOLETE.iter().find_map(|format| {
        jiff::civil::DateTime::strptime(format, value)
            .ok()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|zoned| zoned.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn default_schedule_is_the_documented_one() {
        let s = RetrySchedule::default();
        assert_eq!(s.entries(), &[S(5), S(300), S(1800), S(7200), S(18000), S(36000), S(36000)]);
        assert_eq!(s.max_attempts(), 8);
    }

    #[test]
    fn schedule_parses_all_units() {
        let s = RetrySchedule::parse("1s, 2s,5m,2h,250ms,1d").unwrap();
        assert_eq!(s.entries(), &[S(1), S(2), S(300), S(7200), Duration::from_millis(250), S(86400)]);
        assert_eq!(s.max_attempts(), 7);
    }

    #[test]
    fn empty_schedule_means_one_attempt() {
        let s = RetrySchedule::parse("").unwrap();
        assert!(s.entries().is_empty());
        assert_eq!(s.max_attempts(), 1);
    }

    #[test]
    fn schedule_errors_name_the_bad_entry() {
        for (input, bad) in [
            ("1s,5x,2h", "5x"),
            ("1s,,2h", ""),
            ("10", "10"),
            ("s", "s"),
            ("1.5s", "1.5s"),
            ("-1s", "-1s"),
            ("1s,99999999999999999999d", "99999999999999999999d"),
            ("1s,999999999999999d", "999999999999999d"),
        ] {
            let err = RetrySchedule::parse(input).unwrap_err();
            let RetryError::InvalidEntry { entry, .. } = &err;
            assert_eq!(entry, bad, "{input}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    fn policy(schedule: &str) -> RetryPolicy {
        RetryPolicy::new(RetrySchedule::parse(schedule).unwrap())
    }

    #[test]
    fn next_delay_follows_the_schedule_without_jitter_at_midpoint() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, None, 0.5), Some(S(5)));
        assert_eq!(p.next_delay(2, None, 0.5), Some(S(300)));
        assert_eq!(p.next_delay(7, None, 0.5), Some(S(36000)));
    }

    #[test]
    fn next_delay_jitter_stays_within_twenty_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(2, None, 0.0), Some(S(240)));
        assert_eq!(p.next_delay(2, None, 1.0), Some(S(360)));
        for i in 0..=100 {
            let d = p.next_delay(3, None, f64::from(i) / 100.0).unwrap();
            assert!(d >= S(1440) && d <= S(2160), "{d:?}");
        }
        // Out-of-range randomness is clamped rather than trusted.
        assert_eq!(p.next_delay(2, None, 7.0), Some(S(360)));
        assert_eq!(p.next_delay(2, None, -1.0), Some(S(240)));
    }

    #[test]
    fn next_delay_is_none_when_attempts_are_exhausted() {
        let p = RetryPolicy::default();
        assert!(p.next_delay(7, None, 0.5).is_some());
        assert_eq!(p.next_delay(8, None, 0.5), None);
        assert_eq!(p.next_delay(9, Some(S(10)), 0.5), None);
        assert_eq!(policy("").next_delay(1, None, 0.5), None);
        let p = policy("1s,2s");
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.next_delay(2, None, 0.5), Some(S(2)));
        assert_eq!(p.next_delay(3, None, 0.5), None);
    }

    #[test]
    fn retry_after_wins_when_later_than_the_schedule() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, Some(S(60)), 0.5), Some(S(60)));
        // Earlier than the schedule: the schedule wins.
        assert_eq!(p.next_delay(2, Some(S(60)), 0.5), Some(S(300)));
    }

    #[test]
    fn retry_after_is_clamped_to_one_second_and_twelve_hours() {
        let p = policy("100ms");
        assert_eq!(p.next_delay(1, Some(Duration::ZERO), 0.5), Some(S(1)));
        assert_eq!(p.next_delay(1, None, 0.5), Some(Duration::from_millis(100)));
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, Some(S(48 * 3600)), 0.5), Some(MAX_DELAY));
    }

    #[test]
    fn delays_never_exceed_twelve_hours() {
        let p = policy("2d");
        assert_eq!(p.next_delay(1, None, 1.0), Some(MAX_DELAY));
        assert_eq!(RetryPolicy::default().next_delay(7, None, 1.0), Some(MAX_DELAY));
    }

    #[test]
    fn classify_table() {
        let ra = Some(S(30));
        let retry = |retry_after| Verdict::Retry { retry_after };
        assert_eq!(classify(Some(200), None, None), Verdict::Delivered);
        assert_eq!(classify(Some(204), None, None), Verdict::Delivered);
        assert_eq!(classify(Some(408), None, None), retry(None));
        assert_eq!(classify(Some(425), None, None), retry(None));
        assert_eq!(classify(Some(429), None, ra), retry(ra));
        assert_eq!(classify(Some(500), None, None), retry(None));
        assert_eq!(classify(Some(503), None, ra), retry(ra));
        assert_eq!(classify(None, Some(&TransportErrorKind::Connect), None), retry(None));
        assert_eq!(classify(None, Some(&TransportErrorKind::Timeout), None), retry(None));
        assert_eq!(classify(None, Some(&TransportErrorKind::Other), None), retry(None));

        let Verdict::Failed { reason } = classify(Some(301), None, None) else { panic!("301") };
        assert!(reason.contains("301") && reason.contains("redirect") && reason.contains("not followed"), "{reason}");
        let Verdict::Failed { reason } = classify(Some(302), None, None) else { panic!("302") };
        assert!(reason.contains("302"), "{reason}");
        let Verdict::Failed { reason } = classify(Some(400), None, None) else { panic!("400") };
        assert!(reason.contains("400"), "{reason}");
        let Verdict::Failed { reason } = classify(Some(404), None, ra) else { panic!("404") };
        assert!(reason.contains("404"), "{reason}");

        let refused = TransportErrorKind::Refused { reason: "destination address is loopback".to_owned() };
        let Verdict::Failed { reason } = classify(None, Some(&refused), None) else { panic!("refused") };
        assert!(reason.contains("loopback"), "{reason}");
    }

    #[test]
    fn a_status_outranks_a_later_body_error() {
        assert_eq!(classify(Some(200), Some(&TransportErrorKind::Timeout), None), Verdict::Delivered);
        assert!(matches!(classify(Some(404), Some(&TransportErrorKind::Other), None), Verdict::Failed { .. }));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:28:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(S(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(S(0)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(S(120)));
        assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:30:00 GMT", now), Some(S(120)));
        assert_eq!(parse_retry_after("Wed Oct 21 07:30:00 2015", now), Some(S(120)));
        // In the past: retry now (next_delay raises it to the minimum).
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(S(0)));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        for bad in ["", "-5", "1.5", "soon", "Wed, 32 Oct 2015 07:30:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
