//! What `/metrics` reports, in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use regard_store::stats::LatencyHistogram;
use regard_store::Engine;

use crate::error::ErrorCode;

/// The routes whose latency is measured separately; anything else counts as `other`.
pub const MEASURED_ROUTES: [&str; 25] = [
    "/v1/identify",
    "/v1/track",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
    "/v1/import",
    "/v1/consent",
    "/v1/catalog",
    "/v1/profiles/{id}",
    "/v1/profiles/{id}/events",
    "/healthz",
    "/metrics",
    "/v1/stats/reduced",
    "/v1/segments/preview",
    "/v1/segments",
    "/v1/segments/{id}",
    "/v1/segments/{id}/members",
    "/v1/segments/{id}/status",
    "/v1/profiles/{id}/segments",
    "/v1/decide",
    "/v1/decisions/{id}/why",
    "/v1/slots",
    "other",
];

/// Counters of the HTTP edge.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    rejected: [AtomicU64; ErrorCode::ALL.len()],
    latency: [LatencyHistogram; MEASURED_ROUTES.len()],
    decisions: AtomicU64,
}

impl ServerMetrics {
    /// Counts `n` messages rejected for `code`.
    pub fn reject(&self, code: ErrorCode, n: u64) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.rejected[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts slot decisions taken.
    pub fn count_decisions(&self, n: u64) {
        self.decisions.fetch_add(n, Ordering::Relaxed);
    }

    /// Records a request's latency under its route.
    pub fn observe(&self, route: &str, elapsed: std::time::Duration) {
        let i = MEASURED_ROUTES.iter().position(|r| *r == route).unwrap_or(MEASURED_ROUTES.len() - 1);
        self.latency[i].record(elapsed);
    }

    /// Renders everything, the engine's counters included.
    pub fn render(&self, engine: &Engine) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let stats = engine.stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# HELP regard_events_accepted_total Messages acknowledged, by what became of them.\n");
        out.push_str("# TYPE regard_events_accepted_total counter\n");
        let _ = writeln!(out, "regard_events_accepted_total{{outcome=\"stored\"}} {}", load(&stats.events_stored));
        let _ = writeln!(out, "regard_events_accepted_total{{outcome=\"reduced\"}} {}", load(&stats.events_reduced));
        let _ =
            writeln!(out, "regard_events_accepted_total{{outcome=\"duplicate\"}} {}", load(&stats.events_duplicate));
        out.push_str("# HELP regard_events_reduced_total Messages kept only as anonymous daily counts, by reason.\n");
        out.push_str("# TYPE regard_events_reduced_total counter\n");
        let _ = writeln!(
            out,
            "regard_events_reduced_total{{reason=\"no_analytics_consent\"}} {}",
            load(&stats.events_reduced)
        );
        out.push_str("# HELP regard_events_rejected_total Messages or requests refused, by error code.\n");
        out.push_str("# TYPE regard_events_rejected_total counter\n");
        for (code, count) in ErrorCode::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(out, "regard_events_rejected_total{{reason=\"{}\"}} {}", code.as_str(), load(count));
        }
        out.push_str("# HELP regard_decisions_total Slot decisions taken.\n# TYPE regard_decisions_total counter\n");
        let _ = writeln!(out, "regard_decisions_total {}", load(&self.decisions));
        out.push_str("# HELP regard_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE regard_http_request_duration_seconds histogram\n");
        for (route, histogram) in MEASURED_ROUTES.iter().zip(&self.latency) {
            if histogram.count() > 0 {
                histogram.render(&mut out, "regard_http_request_duration_seconds", &format!("route=\"{route}\""));
            }
        }
        out.push_str("# HELP regard_store_commit_duration_seconds Time to apply and durably commit one group.\n");
        out.push_str("# TYPE regard_store_commit_duration_seconds histogram\n");
        stats.commit_latency.render(&mut out, "regard_store_commit_duration_seconds", "");
        out.push_str("# HELP regard_store_commits_total Group commits.\n# TYPE regard_store_commits_total counter\n");
        let _ = writeln!(out, "regard_store_commits_total {}", load(&stats.commits));
        out.push_str("# HELP regard_store_committed_messages_total Messages in group commits.\n");
        out.push_str("# TYPE regard_store_committed_messages_total counter\n");
        let _ = writeln!(out, "regard_store_committed_messages_total {}", load(&stats.messages_committed));
        let state = engine.state();
        out.push_str("# HELP regard_profiles Profiles in memory.\n# TYPE regard_profiles gauge\n");
        let _ = writeln!(out, "regard_profiles {}", state.profile_count());
        out.push_str("# HELP regard_catalog_products Products in the catalog.\n# TYPE regard_catalog_products gauge\n");
        let _ = writeln!(out, "regard_catalog_products {}", state.product_count());
        out.push_str("# HELP regard_dedup_message_ids messageIds remembered for de-duplication.\n");
        out.push_str("# TYPE regard_dedup_message_ids gauge\n");
        let _ = writeln!(out, "regard_dedup_message_ids {}", state.remembered_message_ids());
        out.push_str("# HELP regard_segment_members Profiles in each saved segment now.\n");
        out.push_str("# TYPE regard_segment_members gauge\n");
        for segment in state.segments() {
            let id = segment.definition.id().as_str();
            let size = state.segment_size(id).unwrap_or(0);
            let _ = writeln!(out, "regard_segment_members{{segment=\"{id}\"}} {size}");
        }
        out.push_str("# HELP regard_segment_checks_scheduled Profiles waiting for a time-driven segment check.\n");
        out.push_str("# TYPE regard_segment_checks_scheduled gauge\n");
        let _ = writeln!(out, "regard_segment_checks_scheduled {}", state.scheduled_segment_checks());
        drop(state);
        out.push_str("# HELP regard_writer_up 1 while the writer accepts work.\n# TYPE regard_writer_up gauge\n");
        let _ = writeln!(out, "regard_writer_up {}", u8::from(engine.is_healthy()));
        out
    }
}
