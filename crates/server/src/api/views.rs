//! The server's records as the API shows them ([`dozen_api`] types): config keys, never values,
//! and never a token's secret.

use crate::runtime::PsRow;

/// An app.
pub fn app(a: dozen_store::App) -> dozen_api::App {
    dozen_api::App {
        name: a.name,
        created_at: a.created_at,
        current_release: a.current_release,
    }
}

fn release_status(s: dozen_store::ReleaseStatus) -> dozen_api::ReleaseStatus {
    match s {
        dozen_store::ReleaseStatus::Pending => dozen_api::ReleaseStatus::Pending,
        dozen_store::ReleaseStatus::Succeeded => dozen_api::ReleaseStatus::Succeeded,
        dozen_store::ReleaseStatus::Failed => dozen_api::ReleaseStatus::Failed,
    }
}

/// A release: its config keys, not their values.
pub fn release(r: &dozen_store::Release) -> dozen_api::Release {
    dozen_api::Release {
        app: r.app.clone(),
        version: r.version,
        slug: r.slug.clone(),
        config_keys: r.config_keys().into_iter().map(str::to_string).collect(),
        process_types: r.process_types.clone(),
        description: r.description.clone(),
        status: release_status(r.status),
        failure_reason: r.failure_reason.clone(),
        build_id: r.build_id.clone(),
        created_at: r.created_at.clone(),
        commit: r.commit.clone(),
        created_by: r.created_by.clone(),
    }
}

/// A build.
pub fn build(b: dozen_store::Build) -> dozen_api::Build {
    dozen_api::Build {
        id: b.id,
        app: b.app,
        source_digest: b.source_digest,
        status: match b.status {
            dozen_store::BuildStatus::Pending => dozen_api::BuildStatus::Pending,
            dozen_store::BuildStatus::Succeeded => dozen_api::BuildStatus::Succeeded,
            dozen_store::BuildStatus::Failed => dozen_api::BuildStatus::Failed,
        },
        slug: b.slug,
        process_types: b.process_types,
        error: b.error,
        created_at: b.created_at,
        finished_at: b.finished_at,
    }
}

/// A process.
pub fn process(p: PsRow) -> dozen_api::Process {
    dozen_api::Process {
        name: p.name,
        type_name: p.type_name,
        state: p.state.to_string(),
        pid: p.pid,
        port: p.port,
        release: p.release,
        for_seconds: p.for_seconds,
        restarts: p.restarts,
        size: p.size.to_string(),
        memory: p.memory,
        memory_limit: Some(p.memory_limit),
        cpu_seconds: p.cpu_seconds,
        cpu_percent: p.cpu_percent,
    }
}

/// Processes.
pub fn processes(rows: Vec<PsRow>) -> Vec<dozen_api::Process> {
    rows.into_iter().map(process).collect()
}

/// A token, without its secret.
pub fn token(t: dozen_store::TokenInfo) -> dozen_api::Token {
    dozen_api::Token {
        id: t.id,
        name: t.name,
        scope: t.scope.to_string(),
        app: t.app,
        created_at: t.created_at,
        revoked_at: t.revoked_at,
    }
}
