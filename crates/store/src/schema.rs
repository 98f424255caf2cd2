//! The schema, as an ordered list of migrations embedded in the binary.
//!
//! Each migration is a list of statements that run in one transaction,
//! written in the SQL both SQLite and PostgreSQL accept: TEXT, BIGINT
//! (INTEGER affinity on SQLite, int8 on PostgreSQL), no serial columns, no
//! JSON types (JSON lives in TEXT). A released migration never changes; a
//! schema change is a new migration appended at the end.

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Increasing from 1, never reused.
    pub version: i64,
    /// What it does, stored beside the version.
    pub description: &'static str,
    /// Statements, run in order.
    pub statements: &'static [&'static str],
}

/// Table recording which migrations ran. Created by `migrate` itself.
pub(crate) const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS dozen_schema_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Every migration, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "apps, config vars, slugs, builds, releases, formation, domains, api tokens",
        statements: &[
            "CREATE TABLE apps (
            name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            current_release BIGINT
        )",
            "CREATE TABLE config_vars (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (app, key)
        )",
            "CREATE TABLE slugs (
            digest TEXT PRIMARY KEY,
            size BIGINT NOT NULL CHECK (size >= 0),
            manifest TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
            "CREATE TABLE builds (
            id TEXT PRIMARY KEY,
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            source_digest TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
            slug TEXT REFERENCES slugs (digest),
            process_types TEXT NOT NULL,
            error TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        )",
            "CREATE INDEX builds_by_app ON builds (app, created_at)",
            "CREATE INDEX builds_by_status ON builds (status)",
            "CREATE TABLE releases (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            version BIGINT NOT NULL CHECK (version >= 1),
            slug TEXT REFERENCES slugs (digest),
            config TEXT NOT NULL,
            process_types TEXT NOT NULL,
            description TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
            failure_reason TEXT,
            build_id TEXT REFERENCES builds (id),
            created_at TEXT NOT NULL,
            PRIMARY KEY (app, version)
        )",
            "CREATE INDEX releases_by_status ON releases (status)",
            "CREATE TABLE formation (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            process_type TEXT NOT NULL,
            quantity BIGINT NOT NULL CHECK (quantity >= 0),
            PRIMARY KEY (app, process_type)
        )",
            "CREATE TABLE domains (
            hostname TEXT PRIMARY KEY,
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            created_at TEXT NOT NULL
        )",
            "CREATE INDEX domains_by_app ON domains (app)",
            "CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )",
            "CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL",
        ],
    },
    Migration {
        version: 2,
        description: "token scopes: admin, or deploy/read on one app (existing tokens stay admin)",
        statements: &[
            "ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin' \
         CHECK (scope IN ('admin', 'deploy', 'read'))",
            "ALTER TABLE api_tokens ADD COLUMN app TEXT",
            "CREATE INDEX api_tokens_by_app ON api_tokens (app)",
        ],
    },
    Migration {
        version: 3,
        description: "process sizes (ps:resize)",
        statements: &["CREATE TABLE process_sizes (
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            process_type TEXT NOT NULL,
            size TEXT NOT NULL,
            PRIMARY KEY (app, process_type)
        )"],
    },
    Migration {
        version: 4,
        description: "add-ons, their attachments to apps, and their backups",
        statements: &[
            "CREATE TABLE addons (
            name TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            plan TEXT NOT NULL,
            app TEXT NOT NULL REFERENCES apps (name),
            resource TEXT NOT NULL,
            url TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
            "CREATE INDEX addons_by_app ON addons (app)",
            "CREATE TABLE addon_attachments (
            addon TEXT NOT NULL REFERENCES addons (name),
            app TEXT NOT NULL REFERENCES apps (name),
            var TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (addon, app),
            UNIQUE (app, var)
        )",
            "CREATE TABLE addon_backups (
            addon TEXT NOT NULL REFERENCES addons (name),
            number BIGINT NOT NULL CHECK (number >= 1),
            size BIGINT NOT NULL CHECK (size >= 0),
            created_at TEXT NOT NULL,
            PRIMARY KEY (addon, number)
        )",
        ],
    },
    Migration {
        version: 5,
        description: "log drains (drains:add)",
        statements: &[
            "CREATE TABLE drains (
            id TEXT PRIMARY KEY,
            app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
            url TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
            "CREATE INDEX drains_by_app ON drains (app)",
        ],
    },
    Migration {
        version: 6,
        description: "the git commit a release was built from (git push, deploy from a checkout)",
        statements: &[
            "ALTER TABLE releases ADD COLUMN source_commit TEXT",
            "CREATE INDEX releases_by_commit ON releases (app, source_commit)",
        ],
    },
    Migration {
        version: 7,
        description: "dashboard sessions (kept as hashes, so that they survive a server restart)",
        statements: &[
            "CREATE TABLE dashboard_sessions (
            hash TEXT PRIMARY KEY,
            token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )",
            "CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at)",
            "CREATE INDEX dashboard_sessions_by_token ON dashboard_sessions (token_id)",
        ],
    },
    Migration {
        version: 8,
        description: "daily backup schedules of add-ons, with how many backups to keep",
        statements: &["CREATE TABLE addon_backup_schedules (
            addon TEXT PRIMARY KEY REFERENCES addons (name),
            at TEXT NOT NULL,
            keep BIGINT NOT NULL CHECK (keep >= 1),
            next_run TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"],
    },
    Migration {
        version: 9,
        description: "who made a release (the API token's name, or dozen for the server)",
        statements: &["ALTER TABLE releases ADD COLUMN created_by TEXT"],
    },
    Migration {
        version: 10,
        description: "where an add-on backup is kept when not in the data directory (S3)",
        statements: &["ALTER TABLE addon_backups ADD COLUMN location TEXT"],
    },
];

/// Highest version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
