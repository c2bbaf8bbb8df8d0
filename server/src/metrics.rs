//! Prometheus text-format metrics, rendered by hand: request counts by
//! route and status, and a latency histogram by route.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Debug, Default)]
struct Route {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A method as a label: any token is an HTTP method, so only the standard
/// ones are labels (anything else is "other") and clients cannot grow the
/// exposition or the log.
fn label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// The label of a request's method: the standard methods by name, any
/// other "other" (clients cannot grow the exposition or the log).
#[must_use]
pub fn method_label(m: &axum::http::Method) -> &'static str {
    label(m.as_str())
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), Route>>,
}

impl Metrics {
    /// Records one request.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut m = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let method = label(method);
        let r = m.entry((method.to_owned(), route.to_owned())).or_default();
        *r.by_status.entry(status).or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                r.buckets[i] += 1;
            }
        }
        r.count += 1;
        r.sum += secs;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, licenses_minted: u64) -> String {
        let m = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut s = String::new();
        s.push_str("# HELP keyseal_http_requests_total HTTP requests by route and status.\n# TYPE keyseal_http_requests_total counter\n");
        for ((method, route), r) in m.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    s,
                    "keyseal_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        s.push_str("# HELP keyseal_http_request_duration_seconds Request latency by route.\n# TYPE keyseal_http_request_duration_seconds histogram\n");
        for ((method, route), r) in m.iter() {
            let l = format!("method=\"{method}\",route=\"{route}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "keyseal_http_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {}",
                    r.buckets[i]
                );
            }
            let _ = writeln!(
                s,
                "keyseal_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                s,
                "keyseal_http_request_duration_seconds_sum{{{l}}} {}",
                r.sum
            );
            let _ = writeln!(
                s,
                "keyseal_http_request_duration_seconds_count{{{l}}} {}",
                r.count
            );
        }
        s.push_str("# HELP keyseal_licenses_minted_total Licenses minted by this process.\n# TYPE keyseal_licenses_minted_total counter\n");
        let _ = writeln!(s, "keyseal_licenses_minted_total {licenses_minted}");
        s
    }
}

/// Appends the revocation lists' health at `now`, over every
/// organisation's newest list (`lists`: organisation, issued at, next
/// update): the oldest one's age, the least time left before one goes
/// stale (negative: stale), and how many are stale. Aggregates only: the
/// endpoint is public, and organisation ids are not for everyone to list.
pub fn render_lists(s: &mut String, now: u64, lists: &[(String, u64, u64)]) {
    let oldest = lists
        .iter()
        .map(|(_, issued_at, _)| i128::from(now) - i128::from(*issued_at))
        .max();
    let least_left = lists
        .iter()
        .map(|(_, _, next_update)| i128::from(*next_update) - i128::from(now))
        .min();
    let stale = lists.iter().filter(|(_, _, n)| *n < now).count();
    if let Some(age) = oldest {
        s.push_str("# HELP keyseal_revocation_list_max_age_seconds Age of the oldest of the organisations' newest revocation lists.\n# TYPE keyseal_revocation_list_max_age_seconds gauge\n");
        let _ = writeln!(s, "keyseal_revocation_list_max_age_seconds {age}");
    }
    if let Some(left) = least_left {
        s.push_str("# HELP keyseal_revocation_list_min_fresh_seconds Least time before one of the organisations' newest revocation lists goes stale (negative: stale).\n# TYPE keyseal_revocation_list_min_fresh_seconds gauge\n");
        let _ = writeln!(s, "keyseal_revocation_list_min_fresh_seconds {left}");
    }
    s.push_str("# HELP keyseal_revocation_lists_stale Organisations whose newest revocation list is stale.\n# TYPE keyseal_revocation_lists_stale gauge\n");
    let _ = writeln!(s, "keyseal_revocation_lists_stale {stale}");
}
