//! The page's series, family by family: the router's, the processes', builds' and drains'.

use dozen_store::BuildStatus;

use super::text::{Kind, Page};
use super::{AppPart, BUILD_BUCKETS, DrainRow};
use crate::runtime::PsRow;

type TrafficValue = fn(&dozen_router::Traffic) -> u64;
type DrainValue = fn(&DrainRow) -> u64;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

pub(super) fn router(page: &mut Page, traffic: &[dozen_router::Traffic]) {
    page.family(
        "dozen_router_requests_total",
        Kind::Counter,
        "Requests the router answered for the app, by the class of the status sent (a client that left before the answer counts as 499).",
    );
    for t in traffic {
        for (class, n) in CLASSES.iter().zip(t.requests) {
            page.sample(
                "dozen_router_requests_total",
                &[("app", &t.app), ("status_class", class)],
                n as f64,
            );
        }
    }
    page.family(
        "dozen_router_request_duration_seconds",
        Kind::Histogram,
        "Time from the request's head being read to the end of its response.",
    );
    for t in traffic {
        let buckets: Vec<(f64, u64)> = dozen_router::LATENCY_BUCKETS
            .iter()
            .copied()
            .zip(t.latency_buckets)
            .collect();
        page.histogram(
            "dozen_router_request_duration_seconds",
            &[("app", &t.app)],
            &buckets,
            t.latency_count,
            t.latency_sum,
        );
    }
    let counters: [(&str, &str, TrafficValue); 2] = [
        (
            "dozen_router_request_body_bytes_total",
            "Request body bytes the router took from clients for the app.",
            |t| t.request_bytes,
        ),
        (
            "dozen_router_response_body_bytes_total",
            "Response body bytes the router sent to clients for the app.",
            |t| t.response_bytes,
        ),
    ];
    for (name, help, value) in counters {
        page.family(name, Kind::Counter, help);
        for t in traffic {
            page.sample(name, &[("app", &t.app)], value(t) as f64);
        }
    }
    page.family(
        "dozen_router_requests_in_flight",
        Kind::Gauge,
        "Requests in flight to the app's processes now (an open WebSocket counts as one).",
    );
    for t in traffic {
        page.sample(
            "dozen_router_requests_in_flight",
            &[("app", &t.app)],
            t.in_flight as f64,
        );
    }
}

pub(super) fn processes(page: &mut Page, parts: &[AppPart]) {
    type Value = fn(&PsRow) -> Option<f64>;
    let families: [(&str, Kind, &str, Value); 5] = [
        (
            "dozen_process_up",
            Kind::Gauge,
            "1 while the process runs (state up, running or starting), else 0.",
            |r| {
                Some(f64::from(u8::from(matches!(
                    r.state,
                    "up" | "running" | "starting"
                ))))
            },
        ),
        (
            "dozen_process_restarts_total",
            Kind::Counter,
            "Times the process was restarted since its release was started.",
            |r| Some(f64::from(r.restarts)),
        ),
        (
            "dozen_process_memory_bytes",
            Kind::Gauge,
            "Memory the process and everything it started use now: its cgroup's charge, else resident memory summed over its process tree.",
            |r| r.memory.map(|m| m as f64),
        ),
        (
            "dozen_process_memory_limit_bytes",
            Kind::Gauge,
            "The most memory the process's size allows.",
            |r| Some(r.memory_limit as f64),
        ),
        (
            "dozen_process_cpu_seconds_total",
            Kind::Counter,
            "CPU time (user and system) the process and everything it started have used.",
            |r| r.cpu_seconds,
        ),
    ];
    for (name, kind, help, value) in families {
        page.family(name, kind, help);
        for part in parts {
            for row in &part.rows {
                if let Some(v) = value(row) {
                    let labels = [
                        ("app", part.app.as_str()),
                        ("process_type", row.type_name.as_str()),
                        ("process", row.name.as_str()),
                    ];
                    page.sample(name, &labels, v);
                }
            }
        }
    }
}

pub(super) fn builds(page: &mut Page, parts: &[AppPart]) {
    page.family(
        "dozen_builds_total",
        Kind::Counter,
        "Finished builds of the app, by how they ended.",
    );
    for part in parts {
        for status in [BuildStatus::Succeeded, BuildStatus::Failed] {
            let n = part.builds.iter().filter(|b| b.status == status).count();
            page.sample(
                "dozen_builds_total",
                &[("app", &part.app), ("status", status.as_str())],
                n as f64,
            );
        }
    }
    page.family(
        "dozen_builds_running",
        Kind::Gauge,
        "Builds of the app under way now.",
    );
    for part in parts {
        let n = part
            .builds
            .iter()
            .filter(|b| b.status == BuildStatus::Pending)
            .count();
        page.sample("dozen_builds_running", &[("app", &part.app)], n as f64);
    }
    page.family(
        "dozen_build_duration_seconds",
        Kind::Histogram,
        "How long the app's finished builds took, from upload to slug (or failure).",
    );
    for part in parts {
        let took: Vec<f64> = part.builds.iter().filter_map(build_seconds).collect();
        let buckets: Vec<(f64, u64)> = BUILD_BUCKETS
            .iter()
            .map(|&bound| (bound, took.iter().filter(|&&t| t <= bound).count() as u64))
            .collect();
        page.histogram(
            "dozen_build_duration_seconds",
            &[("app", &part.app)],
            &buckets,
            took.len() as u64,
            took.iter().sum(),
        );
    }
}

/// Seconds a finished build took.
pub(super) fn build_seconds(b: &dozen_store::Build) -> Option<f64> {
    let started: jiff::Timestamp = b.created_at.parse().ok()?;
    let finished: jiff::Timestamp = b.finished_at.as_deref()?.parse().ok()?;
    let us = finished.as_microsecond() - started.as_microsecond();
    Some((us.max(0) as f64) / 1e6)
}

pub(super) fn drains(page: &mut Page, parts: &[AppPart]) {
    let families: [(&str, Kind, &str, DrainValue); 3] = [
        (
            "dozen_drain_delivered_total",
            Kind::Counter,
            "Log messages the drain delivered since the server started.",
            |d| d.delivered,
        ),
        (
            "dozen_drain_queued",
            Kind::Gauge,
            "Log messages waiting in the drain's queue now.",
            |d| d.queued,
        ),
        (
            "dozen_drain_dropped_total",
            Kind::Counter,
            "Log messages the drain dropped since the server started, its queue being full.",
            |d| d.dropped,
        ),
    ];
    for (name, kind, help, value) in families {
        page.family(name, kind, help);
        for part in parts {
            for d in &part.drains {
                page.sample(
                    name,
                    &[("app", &part.app), ("drain", &d.drain)],
                    value(d) as f64,
                );
            }
        }
    }
}
