//! Request counts and latency histograms by route, in Prometheus' text format
//! (`GET /metrics`). Kept by hand: a map under a mutex is enough at HTTP request rates,
//! and the format is a page of text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
}

/// The server's request metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut m = self.inner.lock();
        *m.requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let h = m
            .latency
            .entry((route.to_owned(), method.to_owned()))
            .or_default();
        for (c, le) in h.counts.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *c += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The text exposition, with `extra` lines (gauges the caller computes) appended.
    pub fn render(&self, extra: &str) -> String {
        let m = self.inner.lock();
        let mut out = String::new();
        out.push_str("# HELP nusterdb_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE nusterdb_http_requests_total counter\n");
        for ((route, method, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "nusterdb_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                label(route),
                label(method)
            );
        }
        out.push_str("# HELP nusterdb_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE nusterdb_http_request_duration_seconds histogram\n");
        for ((route, method), h) in &m.latency {
            let (r, me) = (label(route), label(method));
            for (c, le) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "nusterdb_http_request_duration_seconds_bucket{{route=\"{r}\",method=\"{me}\",le=\"{le}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "nusterdb_http_request_duration_seconds_bucket{{route=\"{r}\",method=\"{me}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "nusterdb_http_request_duration_seconds_sum{{route=\"{r}\",method=\"{me}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "nusterdb_http_request_duration_seconds_count{{route=\"{r}\",method=\"{me}\"}} {}",
                h.count
            );
        }
        out.push_str(extra);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_counts_by_status() {
        let m = Metrics::default();
        m.observe("/v1/x", "POST", 200, 0.003);
        m.observe("/v1/x", "POST", 400, 0.3);
        let t = m.render("");
        assert!(t.contains(
            r#"nusterdb_http_requests_total{route="/v1/x",method="POST",status="200"} 1"#
        ));
        assert!(t.contains(
            r#"nusterdb_http_requests_total{route="/v1/x",method="POST",status="400"} 1"#
        ));
        assert!(t.contains(r#"le="0.0025"} 0"#));
        assert!(t.contains(r#"le="0.005"} 1"#));
        assert!(t.contains(r#"le="0.5"} 2"#));
        assert!(t.contains(r#"le="+Inf"} 2"#));
    }
}
