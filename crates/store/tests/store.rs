//! The store's behaviour, written once and run on SQLite and PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::{Kind, TestDb};
use dozen_store::{
    Backend, BuildStatus, INTERRUPTED, NewAddon, NewRelease, ReleaseStatus, Scope, Store,
    StoreError,
};

on_both_backends!(
    migrations_are_explicit_and_idempotent,
    concurrent_migrations_apply_once,
    connect_opens_the_right_database,
    tokens_are_stored_hashed_and_revocable,
    scoped_tokens_are_for_one_existing_app,
    bootstrap_token_follows_the_environment,
    apps_are_created_once_with_valid_names,
    config_changes_make_numbered_snapshots,
    invalid_config_writes_nothing,
    releases_from_slugs_and_rollback,
    release_status_and_activation,
    formation_scales_within_bounds,
    sizes_are_kept_per_process_type,
    drains_are_kept_per_app_and_go_with_it,
    builds_finish_once_and_recover_after_crash,
    domains_belong_to_one_app,
    destroying_an_app_removes_everything_it_owns,
    concurrent_config_changes_get_consecutive_versions,
    concurrent_mixed_writers_get_consecutive_versions,
    errors_never_contain_config_values,
    killed_writer_leaves_consistent_state,
    config_change_after_a_failed_deploy_keeps_the_good_slug,
    free_text_and_lookups_behave_alike_on_both_backends,
    unused_slugs_can_be_forgotten,
    releases_remember_their_commit,
    addons_attach_detach_and_rotate_as_releases,
    addon_conflicts_write_nothing,
    dashboard_sessions_are_hashed_and_end_with_their_token,
    backup_schedules_and_pruning,
    releases_record_who_made_them,
);

const SECRET: &str = "hunter2-very-secret-value";

/// Every migration this build knows, oldest first.
const ALL_MIGRATIONS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv(pairs).into_iter().collect()
}

fn digest(seed: &str) -> String {
    blake3::hash(seed.as_bytes()).to_hex().to_string()
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound { what: w, .. }) if w == what => {}
        other => panic!("expected NotFound {what}, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) -> StoreError {
    match r {
        Err(e @ StoreError::Invalid { .. }) => {
            assert_eq!(e.http_status(), 422);
            e
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> StoreError {
    match r {
        Err(e @ StoreError::Conflict { .. }) => {
            assert_eq!(e.http_status(), 409);
            e
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
}

async fn migrations_are_explicit_and_idempotent(db: &TestDb) {
    let s = &db.store;
    assert_eq!(
        s.backend(),
        match db.kind {
            Kind::Sqlite => Backend::Sqlite,
            Kind::Postgres => Backend::Postgres,
        }
    );
    assert_eq!(
        s.pending_migrations().await.expect("pending"),
        ALL_MIGRATIONS.to_vec()
    );
    match s.ensure_migrated().await {
        Err(e @ StoreError::NotMigrated { .. }) => {
            assert!(e.to_string().contains("dozen migrate"), "{e}");
            assert_eq!(e.http_status(), 503);
        }
        other => panic!("expected NotMigrated, got {other:?}"),
    }
    // Nothing works before migrating, and nothing is created implicitly.
    assert!(s.create_app("shop").await.is_err());
    assert_eq!(
        s.pending_migrations().await.expect("pending"),
        ALL_MIGRATIONS.to_vec()
    );

    assert_eq!(s.migrate().await.expect("migrate"), ALL_MIGRATIONS);
    assert_eq!(s.migrate().await.expect("migrate again"), Vec::<i64>::new());
    assert!(s.pending_migrations().await.expect("pending").is_empty());
    s.ensure_migrated().await.expect("migrated");
    s.create_app("shop").await.expect("works after migrating");

    // Forget that migration 1 ran: it shows as pending again.
    let mut raw = db.raw().await;
    sqlx::query("DELETE FROM dozen_schema_migrations WHERE version = 1")
        .execute(&mut raw)
        .await
        .expect("delete");
    assert_eq!(s.pending_migrations().await.expect("pending"), vec![1]);
    assert!(matches!(
        s.ensure_migrated().await,
        Err(StoreError::NotMigrated { ref pending, .. }) if pending == &[1]
    ));

    // A schema from a newer dozen is refused, by the server and by migrate.
    sqlx::query(
        "INSERT INTO dozen_schema_migrations (version, description, applied_at) \
         VALUES (1, 'x', 'x'), (99, 'from the future', 'x')",
    )
    .execute(&mut raw)
    .await
    .expect("insert");
    assert!(matches!(
        s.ensure_migrated().await,
        Err(StoreError::SchemaTooNew {
            found: 99,
            known
        }) if Some(&known) == ALL_MIGRATIONS.last()
    ));
    assert!(matches!(
        s.migrate().await,
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

async fn concurrent_migrations_apply_once(db: &TestDb) {
    let (a, b) = (db.store.clone(), db.store.clone());
    let ta = tokio::spawn(async move { a.migrate().await });
    let tb = tokio::spawn(async move { b.migrate().await });
    let mut applied = ta.await.expect("join").expect("migrate a");
    applied.extend(tb.await.expect("join").expect("migrate b"));
    // Each migration is its own transaction, so the two runs may share the
    // work out (a: 1 and 3, b: 2); together they apply each exactly once.
    applied.sort_unstable();
    assert_eq!(applied, ALL_MIGRATIONS);
    db.store.ensure_migrated().await.expect("migrated");
}

async fn connect_opens_the_right_database(db: &TestDb) {
    if db.kind != Kind::Sqlite {
        // The PostgreSQL counterpart: a bad URL is refused without echoing it.
        let e = Store::connect(Some("mysql://user:pw-SECRET@host/db"), &db.data_dir)
            .await
            .expect_err("unsupported scheme");
        assert!(!e.to_string().contains("pw-SECRET"), "{e}");
        let e = Store::connect(
            Some("postgres://user:pw-SECRET@127.0.0.1:1/db"),
            &db.data_dir,
        )
        .await
        .expect_err("nothing listens on port 1");
        assert!(!e.to_string().contains("pw-SECRET"), "{e}");
        assert!(!format!("{e:?}").contains("pw-SECRET"), "{e:?}");
        db.store.ping().await.expect("ping");
        return;
    }
    assert!(db.data_dir.join("dozen.db").is_file());
    let mut raw = db.raw().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    // A nested data dir that does not exist yet is created.
    let nested = db.data_dir.join("a/b");
    let s = Store::connect(None, &nested).await.expect("connect");
    assert_eq!(s.migrate().await.expect("migrate"), ALL_MIGRATIONS);
    assert!(nested.join("dozen.db").is_file());
    s.ping().await.expect("ping");
    // `DATABASE_URL=` (empty) means the default file too.
    let empty = db.data_dir.join("empty");
    let s = Store::connect(Some(""), &empty).await.expect("connect");
    assert_eq!(s.backend(), Backend::Sqlite);
    assert!(empty.join("dozen.db").is_file());
    // Characters that mean something in a URL stay part of the path.
    let odd = db.data_dir.join("with space#and?query");
    let s = Store::connect(None, &odd).await.expect("connect");
    assert_eq!(s.migrate().await.expect("migrate"), ALL_MIGRATIONS);
    assert!(odd.join("dozen.db").is_file());
    // A relative data dir (the server's default is `./.dozen`) works too.
    let cwd = std::env::current_dir().expect("cwd");
    let target = db.data_dir.join("relative");
    let relative = std::path::PathBuf::from("../".repeat(cwd.components().count() - 1))
        .join(target.strip_prefix("/").expect("absolute temp dir"));
    assert!(relative.is_relative());
    let s = Store::connect(None, &relative).await.expect("connect");
    assert_eq!(s.migrate().await.expect("migrate"), ALL_MIGRATIONS);
    assert!(target.join("dozen.db").is_file());
    // A sqlite: URL is taken as given.
    let file = db.data_dir.join("given.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let s = Store::connect(Some(&url), &db.data_dir)
        .await
        .expect("connect");
    assert_eq!(s.backend(), Backend::Sqlite);
    assert_eq!(s.migrate().await.expect("migrate"), ALL_MIGRATIONS);
    assert!(file.is_file());
    assert!(!format!("{s:?}").contains(nested.to_string_lossy().as_ref()));
}

async fn tokens_are_stored_hashed_and_revocable(db: &TestDb) {
    let s = db.ready().await;
    let (info, token) = s.create_token("ci").await.expect("create");
    assert!(token.starts_with(dozen_store::TOKEN_PREFIX), "{token}");
    assert_eq!(token.len(), 68);
    assert_eq!(info.name, "ci");
    assert!(info.id.starts_with("tok_"));
    assert!(info.revoked_at.is_none());

    // The database holds the blake3 hash, and the token appears nowhere.
    let mut raw = db.raw().await;
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id, name, hash, created_at FROM api_tokens")
            .fetch_all(&mut raw)
            .await
            .expect("select");
    assert_eq!(rows.len(), 1);
    let (_, _, hash, _) = &rows[0];
    assert_eq!(hash, &blake3::hash(token.as_bytes()).to_hex().to_string());
    for (a, b, c, d) in &rows {
        for col in [a, b, c, d] {
            assert!(!col.contains(&token[4..]), "token stored in clear");
        }
    }

    assert_eq!(
        s.verify_token(&token).await.expect("verify"),
        Some(info.clone())
    );
    let mut wrong = token.clone();
    wrong.pop();
    wrong.push(if token.ends_with('0') { '1' } else { '0' });
    assert_eq!(s.verify_token(&wrong).await.expect("verify"), None);
    assert_eq!(s.verify_token("").await.expect("verify"), None);
    assert_eq!(s.verify_token("dzn_nope").await.expect("verify"), None);
    assert_eq!(
        s.verify_token(&hash.clone()).await.expect("verify"),
        None,
        "the hash is not a token"
    );

    assert_conflict(s.create_token("ci").await);
    assert_invalid(s.create_token("").await);
    assert_invalid(s.create_token("has space").await);
    let (other, other_token) = s.create_token("laptop").await.expect("create");
    assert_eq!(s.list_tokens().await.expect("list").len(), 2);

    let revoked = s.revoke_token("ci").await.expect("revoke by name");
    assert_eq!(revoked.id, info.id);
    assert!(revoked.revoked_at.is_some());
    assert_eq!(s.verify_token(&token).await.expect("verify"), None);
    assert!(
        s.verify_token(&other_token)
            .await
            .expect("verify")
            .is_some()
    );
    // By id again: unchanged. By name: no live token has it any more.
    assert_eq!(
        s.revoke_token(&info.id).await.expect("revoke by id"),
        revoked
    );
    assert_not_found(s.revoke_token("ci").await, "token");
    assert_not_found(s.revoke_token("tok_0000").await, "token");
    // The name is free again.
    let (again, _) = s.create_token("ci").await.expect("reuse name");
    assert_ne!(again.id, info.id);
    let listed = s.list_tokens().await.expect("list");
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .any(|t| t.id == other.id && t.revoked_at.is_none())
    );
}

async fn scoped_tokens_are_for_one_existing_app(db: &TestDb) {
    let s = db.ready().await;
    // A token written before scopes existed (no scope, no app) is an admin token.
    let mut raw = db.raw().await;
    let old = "dzn_made_before_scopes_0123456789";
    sqlx::query("INSERT INTO api_tokens (id, name, hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind("tok_00000000000000aa")
        .bind("old")
        .bind(blake3::hash(old.as_bytes()).to_hex().as_str())
        .bind("2026-01-01T00:00:00.000000Z")
        .execute(&mut raw)
        .await
        .expect("insert");
    let info = s.verify_token(old).await.expect("verify").expect("live");
    assert_eq!((info.scope, info.app), (Scope::Admin, None));
    let (admin, _) = s.create_token("ops").await.expect("create");
    assert_eq!((admin.scope, admin.app), (Scope::Admin, None));

    assert_not_found(s.create_app_token("ci", "shop", Scope::Deploy).await, "app");
    s.create_app("shop").await.expect("app");
    assert_invalid(s.create_app_token("ci", "shop", Scope::Admin).await);
    assert_invalid(s.create_app_token("ci", "Not An App", Scope::Read).await);
    let (ci, ci_token) = s
        .create_app_token("ci", "shop", Scope::Deploy)
        .await
        .expect("deploy token");
    assert_eq!((ci.scope, ci.app.as_deref()), (Scope::Deploy, Some("shop")));
    let (dash, _) = s
        .create_app_token("dash", "shop", Scope::Read)
        .await
        .expect("read token");
    assert_eq!(dash.scope, Scope::Read);
    assert_eq!(
        s.verify_token(&ci_token).await.expect("verify"),
        Some(ci.clone())
    );
    assert_conflict(s.create_app_token("ci", "shop", Scope::Read).await);
    // An app token can never be the bootstrap token.
    assert_conflict(s.ensure_token("bootstrap", &ci_token).await);

    // Destroying the app revokes its tokens; they stay listed.
    s.destroy_app("shop").await.expect("destroy");
    assert_eq!(s.verify_token(&ci_token).await.expect("verify"), None);
    let listed = s.list_tokens().await.expect("list");
    assert!(
        listed
            .iter()
            .filter(|t| t.app.as_deref() == Some("shop"))
            .all(|t| t.revoked_at.is_some())
    );
    assert!(
        listed
            .iter()
            .any(|t| t.id == admin.id && t.revoked_at.is_none())
    );
    assert_eq!("read".parse::<Scope>().expect("scope"), Scope::Read);
    let e = "root".parse::<Scope>().expect_err("not a scope");
    assert!(e.to_string().contains("admin, deploy or read"), "{e}");
}

async fn bootstrap_token_follows_the_environment(db: &TestDb) {
    let s = db.ready().await;
    let first = "bootstrap-token-0123456789";
    let second = "bootstrap-token-abcdefghij";
    let e = assert_invalid(s.ensure_token("bootstrap", "short").await);
    assert!(!e.to_string().contains("short"));

    let a = s.ensure_token("bootstrap", first).await.expect("ensure");
    assert_eq!(s.ensure_token("bootstrap", first).await.expect("again"), a);
    assert_eq!(s.list_tokens().await.expect("list").len(), 1);
    assert_eq!(
        s.verify_token(first).await.expect("verify"),
        Some(a.clone())
    );

    // Rotated: the old bootstrap token stops working.
    let b = s.ensure_token("bootstrap", second).await.expect("rotate");
    assert_ne!(a.id, b.id);
    assert_eq!(s.verify_token(first).await.expect("verify"), None);
    assert_eq!(s.verify_token(second).await.expect("verify"), Some(b));

    // A revoked secret is not revived.
    let e = assert_conflict(s.ensure_token("bootstrap", first).await);
    assert!(!e.to_string().contains(first), "{e}");
    assert_eq!(s.verify_token(first).await.expect("verify"), None);
}

async fn apps_are_created_once_with_valid_names(db: &TestDb) {
    let s = db.ready().await;
    let shop = s.create_app("shop").await.expect("create");
    assert_eq!(shop.name, "shop");
    assert_eq!(shop.current_release, None);
    assert_conflict(s.create_app("shop").await);
    for bad in ["Shop", "a", "shop_1", "", "1shop", "-shop", &"a".repeat(31)] {
        assert_invalid(s.create_app(bad).await);
    }
    s.create_app("api").await.expect("create");
    let names: Vec<String> = s
        .apps()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["api", "shop"]);
    assert_eq!(s.app("shop").await.expect("get"), shop);
    assert_not_found(s.app("nope").await, "app");
    assert_invalid(s.app("No Such").await);
    assert_not_found(s.destroy_app("nope").await, "app");
    assert_not_found(s.config("nope").await, "app");
    assert_not_found(s.releases("nope").await, "app");
    assert_not_found(s.formation("nope").await, "app");
    assert_not_found(s.domains("nope").await, "app");
    assert_not_found(s.builds("nope").await, "app");
    assert_not_found(s.current_release("nope").await, "app");
    assert_not_found(s.create_build("nope", "abc").await, "app");
    assert_not_found(s.set_config("nope", &kv(&[("A", "1")]), &[]).await, "app");
}

async fn config_changes_make_numbered_snapshots(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    assert!(s.config("shop").await.expect("config").is_empty());
    assert!(s.releases("shop").await.expect("releases").is_empty());

    let v1 = s
        .set_config("shop", &kv(&[("A", "1"), ("B", "2")]), &[])
        .await
        .expect("set");
    assert_eq!(v1.version, 1);
    assert_eq!(v1.description, "Set A, B");
    assert_eq!(v1.config, map(&[("A", "1"), ("B", "2")]));
    assert_eq!(v1.status, ReleaseStatus::Pending);
    assert_eq!(v1.slug, None);
    assert!(v1.process_types.is_empty());

    let v2 = s
        .set_config("shop", &kv(&[("A", "3")]), &["B".to_owned()])
        .await
        .expect("set and unset");
    assert_eq!(v2.version, 2);
    assert_eq!(v2.description, "Set A; unset B");
    assert_eq!(v2.config, map(&[("A", "3")]));
    assert_eq!(s.config("shop").await.expect("config"), map(&[("A", "3")]));

    // Unsetting a key that is not set still makes a release, like Heroku.
    let v3 = s
        .set_config("shop", &[], &["C".to_owned()])
        .await
        .expect("unset");
    assert_eq!((v3.version, v3.description.as_str()), (3, "Unset C"));

    // Older releases keep their snapshot.
    let all = s.releases("shop").await.expect("releases");
    assert_eq!(all.iter().map(|r| r.version).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(all[2], v1);
    assert_eq!(s.release("shop", 1).await.expect("v1"), v1);
    assert_eq!(v1.config_keys(), ["A", "B"]);

    // Numbering is per app.
    s.create_app("api").await.expect("create");
    let api1 = s
        .set_config("api", &kv(&[("X", "1")]), &[])
        .await
        .expect("set");
    assert_eq!(api1.version, 1);
}

async fn invalid_config_writes_nothing(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.set_config("shop", &kv(&[("A", "1")]), &[])
        .await
        .expect("set");
    type Change = (Vec<(String, String)>, Vec<String>);
    let cases: Vec<Change> = vec![
        (vec![], vec![]),
        (kv(&[("1A", "x")]), vec![]),
        (kv(&[("A B", "x")]), vec![]),
        (kv(&[("", "x")]), vec![]),
        (kv(&[("OK", "x"), ("BAD=", "x")]), vec![]),
        (kv(&[("A", "x"), ("A", "y")]), vec![]),
        (kv(&[("A", "x")]), vec!["A".to_owned()]),
        (vec![], vec!["1A".to_owned()]),
        (kv(&[("NUL", "a\0b")]), vec![]),
        (
            kv(&[("K", &"x".repeat(dozen_store::MAX_CONFIG_VALUE_BYTES + 1))]),
            vec![],
        ),
    ];
    for (set, unset) in cases {
        assert_invalid(s.set_config("shop", &set, &unset).await);
    }
    assert_eq!(s.releases("shop").await.expect("releases").len(), 1);
    assert_eq!(s.config("shop").await.expect("config"), map(&[("A", "1")]));
    // Values may hold anything an environment variable can.
    let odd = "multi\nline 'quoted' \"double\" $HOME ünïcode =;";
    let r = s
        .set_config("shop", &kv(&[("ODD", odd)]), &[])
        .await
        .expect("set");
    assert_eq!(r.config["ODD"], odd);
    assert_eq!(s.config("shop").await.expect("config")["ODD"], odd);
}

async fn releases_from_slugs_and_rollback(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.set_config("shop", &kv(&[("A", "1"), ("B", "2")]), &[])
        .await
        .expect("v1");
    s.set_config("shop", &kv(&[("A", "3")]), &["B".to_owned()])
        .await
        .expect("v2");

    let slug = digest("slug-1");
    let web = map(&[("web", "python app.py"), ("worker", "python worker.py")]);
    let deploy = NewRelease {
        slug: Some(slug.clone()),
        process_types: web.clone(),
        description: "Deploy 1".to_owned(),
        build_id: None,
        commit: None,
    };
    // The slug must be recorded first.
    assert_not_found(s.create_release("shop", deploy.clone()).await, "slug");
    s.record_slug(&slug, 1234, r#"{"files": 3}"#)
        .await
        .expect("record");
    s.record_slug(&slug, 1234, r#"{"files": 3}"#)
        .await
        .expect("idempotent");
    let rec = s.slug(&slug).await.expect("slug");
    assert_eq!(
        (rec.size, rec.manifest_json.as_str()),
        (1234, r#"{"files": 3}"#)
    );
    assert_not_found(s.slug(&digest("other")).await, "slug");
    assert_invalid(s.record_slug("../etc", 1, "{}").await);
    assert_invalid(s.record_slug(&digest("x"), -1, "{}").await);
    assert_invalid(s.record_slug(&digest("x"), 1, "not json").await);
    assert_invalid(
        s.create_release(
            "shop",
            NewRelease {
                process_types: map(&[("we b", "x")]),
                description: "bad".to_owned(),
                ..NewRelease::default()
            },
        )
        .await,
    );

    let v3 = s.create_release("shop", deploy).await.expect("deploy");
    assert_eq!(v3.version, 3);
    assert_eq!(v3.slug.as_deref(), Some(slug.as_str()));
    assert_eq!(
        v3.config,
        map(&[("A", "3")]),
        "snapshot of the current config"
    );
    assert_eq!(v3.process_types, web);

    // A config change keeps the slug and process types of the latest release.
    let v4 = s
        .set_config("shop", &kv(&[("C", "4")]), &[])
        .await
        .expect("v4");
    assert_eq!(v4.slug, v3.slug);
    assert_eq!(v4.process_types, web);
    assert_eq!(v4.config, map(&[("A", "3"), ("C", "4")]));

    // Rollback to v1: its (empty) slug and its config, which becomes current.
    let v5 = s.rollback("shop", 1).await.expect("rollback");
    assert_eq!(v5.version, 5);
    assert_eq!(v5.description, "Rollback to v1");
    assert_eq!(v5.slug, None);
    assert_eq!(v5.config, map(&[("A", "1"), ("B", "2")]));
    assert_eq!(s.config("shop").await.expect("config"), v5.config);
    assert_eq!(v5.status, ReleaseStatus::Pending);

    let v6 = s.rollback("shop", 3).await.expect("rollback");
    assert_eq!(v6.slug.as_deref(), Some(slug.as_str()));
    assert_eq!(v6.process_types, web);
    assert_eq!(v6.config, map(&[("A", "3")]));
    assert_eq!(s.config("shop").await.expect("config"), map(&[("A", "3")]));

    assert_not_found(s.rollback("shop", 99).await, "release");
    assert_not_found(s.release("shop", 99).await, "release");
    assert_eq!(s.releases("shop").await.expect("list").len(), 6);
}

async fn release_status_and_activation(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    let new = |d: &str| NewRelease {
        description: d.to_owned(),
        ..NewRelease::default()
    };
    assert_invalid(s.create_release("shop", new(" ")).await);
    let v1 = s.create_release("shop", new("one")).await.expect("v1");
    let v2 = s.create_release("shop", new("two")).await.expect("v2");
    let v3 = s.create_release("shop", new("three")).await.expect("v3");
    assert_eq!((v1.version, v2.version, v3.version), (1, 2, 3));
    assert_eq!(s.current_release("shop").await.expect("current"), None);

    s.activate_release("shop", 1).await.expect("activate");
    let current = s
        .current_release("shop")
        .await
        .expect("current")
        .expect("live");
    assert_eq!(current.version, 1);
    assert_eq!(current.status, ReleaseStatus::Succeeded);
    assert_eq!(s.app("shop").await.expect("app").current_release, Some(1));

    s.set_release_status(
        "shop",
        2,
        ReleaseStatus::Failed,
        Some("release phase exited 1"),
    )
    .await
    .expect("fail v2");
    let v2 = s.release("shop", 2).await.expect("v2");
    assert_eq!(v2.status, ReleaseStatus::Failed);
    assert_eq!(v2.failure_reason.as_deref(), Some("release phase exited 1"));
    s.set_release_status("shop", 2, ReleaseStatus::Failed, None)
        .await
        .expect("same status is a no-op");
    assert_conflict(
        s.set_release_status("shop", 2, ReleaseStatus::Succeeded, None)
            .await,
    );
    assert_conflict(s.activate_release("shop", 2).await);
    assert_invalid(
        s.set_release_status("shop", 3, ReleaseStatus::Pending, None)
            .await,
    );
    assert_not_found(
        s.set_release_status("shop", 9, ReleaseStatus::Failed, None)
            .await,
        "release",
    );
    assert_not_found(s.activate_release("shop", 9).await, "release");
    // The failed release did not touch the live one.
    assert_eq!(s.app("shop").await.expect("app").current_release, Some(1));

    s.set_release_status("shop", 3, ReleaseStatus::Succeeded, None)
        .await
        .expect("succeed");
    assert_eq!(
        s.current_release("shop")
            .await
            .expect("current")
            .map(|r| r.version),
        Some(1),
        "succeeded is not live"
    );
    assert_conflict(
        s.set_release_status("shop", 3, ReleaseStatus::Failed, None)
            .await,
    );
    s.activate_release("shop", 3).await.expect("activate v3");
    s.activate_release("shop", 3).await.expect("again");
    assert_eq!(
        s.current_release("shop")
            .await
            .expect("current")
            .map(|r| r.version),
        Some(3)
    );
    // Previous live release stays Succeeded.
    assert_eq!(
        s.release("shop", 1).await.expect("v1").status,
        ReleaseStatus::Succeeded
    );
}

async fn formation_scales_within_bounds(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    assert!(s.formation("shop").await.expect("formation").is_empty());
    let f = s
        .scale("shop", &[("web".to_owned(), 2), ("worker".to_owned(), 1)])
        .await
        .expect("scale");
    assert_eq!(
        f,
        BTreeMap::from([("web".to_owned(), 2), ("worker".to_owned(), 1)])
    );
    let f = s
        .scale("shop", &[("web".to_owned(), 0)])
        .await
        .expect("scale down");
    assert_eq!(
        f,
        BTreeMap::from([("web".to_owned(), 0), ("worker".to_owned(), 1)])
    );

    // One bad change refuses the whole request.
    assert_invalid(
        s.scale("shop", &[("worker".to_owned(), 5), ("web".to_owned(), -1)])
            .await,
    );
    assert_invalid(s.scale("shop", &[("we b".to_owned(), 1)]).await);
    assert_invalid(
        s.scale("shop", &[("web".to_owned(), dozen_store::MAX_QUANTITY + 1)])
            .await,
    );
    assert_invalid(s.scale("shop", &[]).await);
    assert_not_found(s.scale("nope", &[("web".to_owned(), 1)]).await, "app");
    assert_eq!(s.formation("shop").await.expect("formation"), f);
}

async fn sizes_are_kept_per_process_type(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    assert!(s.sizes("shop").await.expect("sizes").is_empty());
    let sizes = s
        .resize("shop", &kv(&[("web", "2x"), ("worker", "tiny")]))
        .await
        .expect("resize");
    assert_eq!(sizes, map(&[("web", "2x"), ("worker", "tiny")]));
    let sizes = s
        .resize("shop", &kv(&[("web", "1x")]))
        .await
        .expect("resize again");
    assert_eq!(sizes, map(&[("web", "1x"), ("worker", "tiny")]));
    // One bad change refuses the whole request.
    assert_invalid(
        s.resize("shop", &kv(&[("worker", "2x"), ("we b", "1x")]))
            .await,
    );
    assert_invalid(s.resize("shop", &kv(&[("web", "")])).await);
    assert_invalid(s.resize("shop", &[]).await);
    assert_not_found(s.resize("nope", &kv(&[("web", "1x")])).await, "app");
    assert_eq!(s.sizes("shop").await.expect("sizes"), sizes);
    s.destroy_app("shop").await.expect("destroy");
    s.create_app("shop").await.expect("create again");
    assert!(
        s.sizes("shop")
            .await
            .expect("sizes of the new app")
            .is_empty()
    );
}

async fn drains_are_kept_per_app_and_go_with_it(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("blog").await.expect("create");
    assert!(s.drains("shop").await.expect("drains").is_empty());
    let url = format!("https://user:{SECRET}@logs.example.com/in");
    let a = s.add_drain("shop", &url).await.expect("add");
    assert!(a.id.starts_with("drn_"), "{a:?}");
    assert!(!format!("{a:?}").contains(SECRET), "{a:?}");
    let b = s
        .add_drain("shop", "syslog+tls://logs.example.com:6514")
        .await
        .expect("add");
    // The same URL twice on one app is a conflict that names the drain, not the URL.
    let e = assert_conflict(s.add_drain("shop", &url).await);
    assert!(
        e.to_string().contains(&a.id) && !e.to_string().contains(SECRET),
        "{e}"
    );
    // Another app may have the same URL.
    s.add_drain("blog", &url).await.expect("add to blog");
    assert_invalid(s.add_drain("shop", "").await);
    assert_not_found(s.add_drain("nope", &url).await, "app");
    let listed = s.drains("shop").await.expect("drains");
    assert_eq!(listed, vec![a.clone(), b.clone()]);
    assert_eq!(s.all_drains().await.expect("all").len(), 3);
    assert_eq!(s.remove_drain("shop", &a.id).await.expect("remove"), a);
    assert_not_found(s.remove_drain("shop", &a.id).await, "drain");
    assert_not_found(s.remove_drain("blog", &b.id).await, "drain");
    assert_eq!(s.drains("shop").await.expect("drains"), vec![b]);
    for n in 1..dozen_store::MAX_DRAINS_PER_APP {
        s.add_drain("shop", &format!("syslog://h{n}.example.com:514"))
            .await
            .expect("add");
    }
    assert_invalid(s.add_drain("shop", "syslog://one-more.example.com").await);
    s.destroy_app("shop").await.expect("destroy");
    assert_not_found(s.drains("shop").await, "app");
    assert_eq!(s.all_drains().await.expect("all").len(), 1);
}

async fn builds_finish_once_and_recover_after_crash(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("api").await.expect("create");
    let b1 = s
        .create_build("shop", &digest("src-1"))
        .await
        .expect("build");
    assert_eq!(b1.status, BuildStatus::Pending);
    assert_eq!(b1.finished_at, None);
    let b2 = s
        .create_build("shop", &digest("src-2"))
        .await
        .expect("build");
    assert!(b2.id > b1.id, "ids sort by time: {} {}", b1.id, b2.id);
    let ids: Vec<String> = s
        .builds("shop")
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, [b2.id.clone(), b1.id.clone()]);
    assert!(s.builds("api").await.expect("list").is_empty());
    assert_invalid(s.create_build("shop", "").await);

    let slug = digest("slug");
    let types = BTreeMap::from([("web".to_owned(), "./server".to_owned())]);
    assert_not_found(
        s.finish_build(&b1.id, BuildStatus::Succeeded, Some(&slug), &types, None)
            .await,
        "slug",
    );
    assert_invalid(
        s.finish_build(&b1.id, BuildStatus::Succeeded, None, &types, None)
            .await,
    );
    assert_invalid(
        s.finish_build(&b1.id, BuildStatus::Pending, None, &types, None)
            .await,
    );
    s.record_slug(&slug, 10, "{}").await.expect("record");
    let done = s
        .finish_build(&b1.id, BuildStatus::Succeeded, Some(&slug), &types, None)
        .await
        .expect("finish");
    assert_eq!(done.status, BuildStatus::Succeeded);
    assert_eq!(done.slug.as_deref(), Some(slug.as_str()));
    assert_eq!(done.process_types, types);
    assert!(done.finished_at.is_some());
    assert_eq!(s.build(&b1.id).await.expect("get"), done);
    assert_conflict(
        s.finish_build(
            &b1.id,
            BuildStatus::Failed,
            None,
            &BTreeMap::new(),
            Some("x"),
        )
        .await,
    );
    let failed = s
        .finish_build(
            &b2.id,
            BuildStatus::Failed,
            None,
            &BTreeMap::new(),
            Some("npm ci exited 1"),
        )
        .await
        .expect("fail");
    assert_eq!(failed.error.as_deref(), Some("npm ci exited 1"));
    assert_not_found(s.build("nope").await, "build");
    assert_not_found(
        s.finish_build("nope", BuildStatus::Failed, None, &BTreeMap::new(), None)
            .await,
        "build",
    );

    // A release names its build; a build of another app is refused.
    let rel = |build: &str| NewRelease {
        slug: Some(slug.clone()),
        process_types: types.clone(),
        description: "Deploy".to_owned(),
        build_id: Some(build.to_owned()),
        commit: None,
    };
    let live = s
        .create_release("shop", rel(&b1.id))
        .await
        .expect("release");
    assert_eq!(live.build_id.as_deref(), Some(b1.id.as_str()));
    assert_not_found(s.create_release("api", rel(&b1.id)).await, "build");
    s.activate_release("shop", live.version)
        .await
        .expect("activate");

    // A crash mid-deploy: a build and a release left pending.
    let b3 = s
        .create_build("shop", &digest("src-3"))
        .await
        .expect("build");
    let pending = s
        .create_release("shop", rel(&b1.id))
        .await
        .expect("release");
    assert_eq!(s.recover_interrupted().await.expect("recover"), (1, 1));
    let b3 = s.build(&b3.id).await.expect("get");
    assert_eq!(b3.status, BuildStatus::Failed);
    assert_eq!(b3.error.as_deref(), Some(INTERRUPTED));
    assert!(b3.finished_at.is_some());
    let pending = s.release("shop", pending.version).await.expect("get");
    assert_eq!(pending.status, ReleaseStatus::Failed);
    assert_eq!(pending.failure_reason.as_deref(), Some(INTERRUPTED));
    // The live release is untouched.
    let current = s
        .current_release("shop")
        .await
        .expect("current")
        .expect("live");
    assert_eq!(
        (current.version, current.status),
        (live.version, ReleaseStatus::Succeeded)
    );
    assert_eq!(s.recover_interrupted().await.expect("recover"), (0, 0));
}

async fn domains_belong_to_one_app(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("api").await.expect("create");
    s.add_domain("shop", "Shop.Example.COM").await.expect("add");
    s.add_domain("shop", "shop.example.com.")
        .await
        .expect("same app: no-op");
    s.add_domain("shop", "www.shop.example").await.expect("add");
    assert_eq!(
        s.domains("shop").await.expect("list"),
        ["shop.example.com", "www.shop.example"]
    );
    assert_conflict(s.add_domain("api", "shop.example.com").await);
    for bad in ["", "-x.com", "a..b", "a b.com", "10.0.0.1", "*.x.com"] {
        assert_invalid(s.add_domain("api", bad).await);
    }
    assert_not_found(s.add_domain("nope", "x.example").await, "app");
    s.add_domain("api", "api.example.com").await.expect("add");
    assert_eq!(
        s.all_domains().await.expect("all"),
        [
            ("api.example.com".to_owned(), "api".to_owned()),
            ("shop.example.com".to_owned(), "shop".to_owned()),
            ("www.shop.example".to_owned(), "shop".to_owned()),
        ]
    );
    assert_not_found(s.remove_domain("api", "shop.example.com").await, "domain");
    s.remove_domain("shop", "SHOP.example.com")
        .await
        .expect("remove");
    assert_eq!(s.domains("shop").await.expect("list"), ["www.shop.example"]);
    s.add_domain("api", "shop.example.com")
        .await
        .expect("free again");
}

async fn destroying_an_app_removes_everything_it_owns(db: &TestDb) {
    let s = db.ready().await;
    for app in ["shop", "api"] {
        s.create_app(app).await.expect("create");
        s.set_config(app, &kv(&[("A", "1")]), &[])
            .await
            .expect("config");
        let slug = digest(app);
        s.record_slug(&slug, 1, "{}").await.expect("slug");
        let b = s.create_build(app, &digest("src")).await.expect("build");
        s.finish_build(
            &b.id,
            BuildStatus::Succeeded,
            Some(&slug),
            &BTreeMap::new(),
            None,
        )
        .await
        .expect("finish");
        let r = s
            .create_release(
                app,
                NewRelease {
                    slug: Some(slug),
                    description: "Deploy".to_owned(),
                    build_id: Some(b.id),
                    ..NewRelease::default()
                },
            )
            .await
            .expect("release");
        s.activate_release(app, r.version).await.expect("activate");
        s.scale(app, &[("web".to_owned(), 2)]).await.expect("scale");
        s.add_domain(app, &format!("{app}.example.com"))
            .await
            .expect("domain");
    }
    s.destroy_app("shop").await.expect("destroy");
    assert_not_found(s.app("shop").await, "app");
    for table in ["config_vars", "releases", "builds", "formation", "domains"] {
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM {table} WHERE app = 'shop'"))
                .await,
            0,
            "{table}"
        );
        assert!(
            db.count(&format!("SELECT COUNT(*) FROM {table} WHERE app = 'api'"))
                .await
                > 0,
            "{table} of the other app"
        );
    }
    // Slugs are shared by content and stay.
    s.slug(&digest("shop")).await.expect("slug record stays");
    // The name and its domain are free; the new app starts from v1.
    s.create_app("shop").await.expect("recreate");
    assert!(s.config("shop").await.expect("config").is_empty());
    assert!(s.formation("shop").await.expect("formation").is_empty());
    assert_eq!(s.current_release("shop").await.expect("current"), None);
    let v1 = s
        .set_config("shop", &kv(&[("B", "2")]), &[])
        .await
        .expect("set");
    assert_eq!(v1.version, 1);
    s.add_domain("api", "shop.example.com")
        .await
        .expect("domain is free");
}

async fn concurrent_config_changes_get_consecutive_versions(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.set_config("shop", &kv(&[(&format!("K{i:02}"), "v")]), &[])
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        let r = t.await.expect("join").expect("set_config");
        // Each change saw every change before it: vN has N keys.
        assert_eq!(r.config.len() as i64, r.version, "{r:?}");
        versions.push(r.version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<i64>>());
    assert_eq!(s.config("shop").await.expect("config").len(), 20);
    assert_eq!(s.releases("shop").await.expect("releases").len(), 20);
}

async fn concurrent_mixed_writers_get_consecutive_versions(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("api").await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let app = if i % 2 == 0 { "shop" } else { "api" };
            match i % 4 {
                0 | 1 => s
                    .set_config(app, &kv(&[(&format!("K{i}"), "v")]), &[])
                    .await
                    .map(|r| (app, r.version)),
                2 => s
                    .create_release(
                        app,
                        NewRelease {
                            description: format!("Deploy {i}"),
                            ..NewRelease::default()
                        },
                    )
                    .await
                    .map(|r| (app, r.version)),
                _ => {
                    // Scaling takes the same lock but makes no release.
                    s.scale(app, &[("web".to_owned(), i)])
                        .await
                        .map(|_| (app, 0))
                }
            }
        }));
    }
    let mut by_app: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for t in tasks {
        let (app, v) = t.await.expect("join").expect("write");
        if v > 0 {
            by_app.entry(app).or_default().push(v);
        }
    }
    for versions in by_app.values_mut() {
        versions.sort_unstable();
        let n = versions.len() as i64;
        assert_eq!(versions, &(1..=n).collect::<Vec<i64>>());
    }
    assert_eq!(by_app.values().map(Vec::len).sum::<usize>(), 18);
}

async fn errors_never_contain_config_values(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    let r = s
        .set_config("shop", &kv(&[("PASSWORD", SECRET)]), &[])
        .await
        .expect("set");
    assert!(
        !format!("{r:?}").contains(SECRET),
        "Debug of a release shows values"
    );
    assert!(format!("{r:?}").contains("PASSWORD"));

    let mut errors: Vec<StoreError> = Vec::new();
    let bad_sets = [
        kv(&[("1BAD", SECRET)]),
        kv(&[("GOOD", &format!("{SECRET}\0"))]),
        kv(&[("GOOD", SECRET), ("GOOD", SECRET)]),
        kv(&[("GOOD", &SECRET.repeat(5000))]),
    ];
    for set in &bad_sets {
        if let Err(e) = s.set_config("shop", set, &[]).await {
            errors.push(e);
        }
    }
    for r in [
        s.set_config("nope", &kv(&[("PASSWORD", SECRET)]), &[])
            .await,
        s.rollback("shop", 42).await,
    ] {
        if let Err(e) = r {
            errors.push(e);
        }
    }
    s.set_release_status("shop", 1, ReleaseStatus::Failed, Some("boom"))
        .await
        .expect("fail");
    errors.push(s.activate_release("shop", 1).await.expect_err("failed"));
    errors.push(
        s.ensure_token("bootstrap", "short")
            .await
            .expect_err("short"),
    );
    assert_eq!(errors.len(), 8, "every bad call failed: {errors:?}");
    for e in &errors {
        assert!(!e.to_string().contains(SECRET), "{e}");
        assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
    }
    // Nothing of that was written.
    assert_eq!(s.releases("shop").await.expect("releases").len(), 1);
}

/// Tells [`child_writer`] which database to write to.
const CHILD_URL_VAR: &str = "DOZEN_STORE_TEST_CHILD_URL";
/// Times the writer is killed.
const KILL_ROUNDS: i64 = 5;
/// Releases the writer makes in each round before it is killed.
const WRITES_PER_ROUND: i64 = 10;

/// The process `killed_writer_leaves_consistent_state` kills with SIGKILL:
/// it changes config and formation in a loop until it dies. Run alone (no
/// variable set) it does nothing.
#[test]
#[ignore = "a child process of killed_writer_leaves_consistent_state"]
fn child_writer() {
    let Ok(url) = std::env::var(CHILD_URL_VAR) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::connect(Some(&url), dir.path())
            .await
            .expect("connect");
        // Go on from the last release a previous (killed) writer made.
        let done = s.releases("shop").await.expect("releases").len() as i64;
        for i in done + 1.. {
            let n = i.to_string();
            s.set_config(
                "shop",
                &kv(&[(&format!("K{i}"), "x"), ("N", &n), ("M", &n)]),
                &[],
            )
            .await
            .expect("set_config");
            s.scale(
                "shop",
                &[("web".to_owned(), i % 7), ("worker".to_owned(), i % 7)],
            )
            .await
            .expect("scale");
        }
    });
}

async fn killed_writer_leaves_consistent_state(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    // Several kills, each at whatever point the writer happens to be.
    for round in 1..=KILL_ROUNDS {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "child_writer", "--ignored", "--test-threads=1"])
            .env(CHILD_URL_VAR, &db.raw_url)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer");
        // Wait (bounded in polls, not asserted in time) until it is busy writing.
        let target = round * WRITES_PER_ROUND;
        let mut polls = 0;
        loop {
            let n = db
                .count("SELECT COUNT(*) FROM releases WHERE app = 'shop'")
                .await;
            if n >= target {
                break;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("the writer exited by itself ({status}) after {n} releases");
            }
            polls += 1;
            assert!(polls < 6000, "the writer made only {n} releases");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        check_after_crash(db).await;
    }
    // And it goes on from there.
    let n = s.releases("shop").await.expect("releases").len() as i64;
    let next = s
        .set_config("shop", &kv(&[("AFTER", "1")]), &[])
        .await
        .expect("write after the crash");
    assert_eq!(next.version, n + 1);
}

/// Reopen the store as a restarted server would and check every invariant
/// the writer keeps in its transactions.
async fn check_after_crash(db: &TestDb) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Store::connect(Some(&db.raw_url), dir.path())
        .await
        .expect("reconnect after the crash");
    s.ensure_migrated().await.expect("still migrated");
    let releases = s.releases("shop").await.expect("releases");
    let n = releases.len() as i64;
    for (r, expected) in releases.iter().zip((1..=n).rev()) {
        assert_eq!(r.version, expected, "versions are consecutive");
        let v = r.version.to_string();
        assert_eq!(r.config.get("N"), Some(&v), "v{}: N", r.version);
        assert_eq!(r.config.get("M"), Some(&v), "v{}: M", r.version);
        assert_eq!(r.config.len() as i64, r.version + 2, "v{}: keys", r.version);
    }
    // The current config is exactly the latest release's: written together.
    assert_eq!(
        s.config("shop").await.expect("config"),
        releases[0].config,
        "config and release v{n} written apart"
    );
    let f = s.formation("shop").await.expect("formation");
    assert_eq!(
        f.get("web"),
        f.get("worker"),
        "one scale call, one transaction"
    );
    s.close().await;
}

async fn config_change_after_a_failed_deploy_keeps_the_good_slug(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    let (good, bad) = (digest("good"), digest("bad"));
    for d in [&good, &bad] {
        s.record_slug(d, 1, "{}").await.expect("slug");
    }
    let deploy = |slug: &str| NewRelease {
        slug: Some(slug.to_owned()),
        process_types: map(&[("web", "./run")]),
        description: "Deploy".to_owned(),
        build_id: None,
        commit: None,
    };
    let v1 = s.create_release("shop", deploy(&good)).await.expect("v1");
    s.activate_release("shop", v1.version).await.expect("live");
    let v2 = s.create_release("shop", deploy(&bad)).await.expect("v2");
    s.set_release_status(
        "shop",
        v2.version,
        ReleaseStatus::Failed,
        Some("release phase"),
    )
    .await
    .expect("fail");
    let v3 = s
        .set_config("shop", &kv(&[("A", "1")]), &[])
        .await
        .expect("v3");
    assert_eq!(v3.slug.as_deref(), Some(good.as_str()));
    // A deploy in flight (pending) is what a config change builds on.
    let v4 = s.create_release("shop", deploy(&bad)).await.expect("v4");
    let v5 = s
        .set_config("shop", &kv(&[("B", "1")]), &[])
        .await
        .expect("v5");
    assert_eq!(v5.slug, v4.slug);
}

async fn free_text_and_lookups_behave_alike_on_both_backends(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    // PostgreSQL TEXT cannot hold NUL: free text is cleaned the same way on
    // both backends, and lookups by an impossible id find nothing.
    let b = s.create_build("shop", "src").await.expect("build");
    let failed = s
        .finish_build(
            &b.id,
            BuildStatus::Failed,
            None,
            &BTreeMap::new(),
            Some("bad\0byte"),
        )
        .await
        .expect("finish");
    assert_eq!(failed.error.as_deref(), Some("bad\u{FFFD}byte"));
    assert_eq!(s.build(&b.id).await.expect("get").error, failed.error);
    let r = s
        .create_release(
            "shop",
            NewRelease {
                description: "Deploy\0x".to_owned(),
                ..NewRelease::default()
            },
        )
        .await
        .expect("release");
    assert_eq!(r.description, "Deploy\u{FFFD}x");
    assert_eq!(
        s.release("shop", 1).await.expect("get").description,
        r.description
    );
    s.set_release_status("shop", 1, ReleaseStatus::Failed, Some("exit\0 1"))
        .await
        .expect("fail");
    assert_eq!(
        s.release("shop", 1)
            .await
            .expect("get")
            .failure_reason
            .as_deref(),
        Some("exit\u{FFFD} 1")
    );
    assert_not_found(s.build("a\0b").await, "build");
    assert_not_found(s.revoke_token("a\0b").await, "token");
    assert_not_found(
        s.create_release(
            "shop",
            NewRelease {
                description: "x".to_owned(),
                build_id: Some("a\0b".to_owned()),
                ..NewRelease::default()
            },
        )
        .await,
        "build",
    );
    assert_eq!(
        s.verify_token("a\0b-long-enough-token")
            .await
            .expect("verify"),
        None
    );
    assert_invalid(s.create_app("a\0b").await);
    assert_invalid(s.add_domain("shop", "a\0b.com").await);
}

async fn unused_slugs_can_be_forgotten(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    let (used, by_build, unused) = (digest("used"), digest("by-build"), digest("unused"));
    for d in [&used, &by_build, &unused] {
        s.record_slug(d, 1, "{}").await.expect("record");
    }
    s.create_release(
        "shop",
        NewRelease {
            slug: Some(used.clone()),
            description: "Deploy".to_owned(),
            ..NewRelease::default()
        },
    )
    .await
    .expect("release");
    let b = s.create_build("shop", "src").await.expect("build");
    s.finish_build(
        &b.id,
        BuildStatus::Succeeded,
        Some(&by_build),
        &BTreeMap::new(),
        None,
    )
    .await
    .expect("finish");
    assert_eq!(
        s.unreferenced_slugs().await.expect("list"),
        std::slice::from_ref(&unused)
    );
    assert_conflict(s.forget_slug(&used).await);
    assert_conflict(s.forget_slug(&by_build).await);
    s.forget_slug(&unused).await.expect("forget");
    assert_not_found(s.slug(&unused).await, "slug");
    assert_not_found(s.forget_slug(&unused).await, "slug");
    // Destroying the app frees its slugs.
    s.destroy_app("shop").await.expect("destroy");
    let mut free = vec![used, by_build];
    free.sort();
    assert_eq!(s.unreferenced_slugs().await.expect("list"), free);
}

async fn releases_remember_their_commit(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    let slug = digest("built-from-a-commit");
    s.record_slug(&slug, 1, "{}").await.expect("slug");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    assert!(
        s.release_of_commit("shop", commit)
            .await
            .expect("none yet")
            .is_none()
    );
    let new = NewRelease {
        slug: Some(slug.clone()),
        process_types: map(&[("web", "./run")]),
        description: "Deploy 0123456".to_owned(),
        build_id: None,
        commit: Some(commit.to_owned()),
    };
    let v1 = s.create_release("shop", new.clone()).await.expect("v1");
    assert_eq!(v1.commit.as_deref(), Some(commit));
    assert_eq!(
        s.release("shop", 1).await.expect("read").commit.as_deref(),
        Some(commit)
    );
    // A config change and a rollback run the same code: they keep its commit.
    let v2 = s
        .set_config("shop", &kv(&[("A", "1")]), &[])
        .await
        .expect("v2");
    assert_eq!(v2.commit.as_deref(), Some(commit));
    let v3 = s.rollback("shop", 1).await.expect("v3");
    assert_eq!(v3.commit.as_deref(), Some(commit));
    // The newest release of the commit is found, by commit, for this app only.
    let found = s
        .release_of_commit("shop", commit)
        .await
        .expect("found")
        .expect("some");
    assert_eq!((found.version, found.slug), (3, Some(slug)));
    s.create_app("blog").await.expect("blog");
    assert!(
        s.release_of_commit("blog", commit)
            .await
            .expect("other")
            .is_none()
    );
    assert_not_found(s.release_of_commit("nope", commit).await, "app");
    // Only commit ids are accepted, and a bad one writes nothing.
    for bad in [
        "HEAD",
        "0123456",
        "0123456789ABCDEF0123456789ABCDEF01234567",
    ] {
        assert_invalid(s.release_of_commit("shop", bad).await);
        let wrong = NewRelease {
            commit: Some(bad.to_owned()),
            ..new.clone()
        };
        assert_invalid(s.create_release("shop", wrong).await);
    }
    assert_eq!(s.releases("shop").await.expect("list").len(), 3);
    // A release without a commit (a tarball deploy from outside a checkout) has none.
    let plain = s
        .create_release(
            "shop",
            NewRelease {
                commit: None,
                ..new
            },
        )
        .await
        .expect("v4");
    assert_eq!(plain.commit, None);
}

fn pg_addon<'a>(name: &'a str, app: &'a str, url: &'a str) -> NewAddon<'a> {
    NewAddon {
        name,
        service: "postgresql",
        plan: "shared",
        app,
        resource: name,
        url,
    }
}

async fn addons_attach_detach_and_rotate_as_releases(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("worker").await.expect("create");
    s.set_config("shop", &kv(&[("A", "1")]), &[])
        .await
        .expect("config");
    let name = s.next_addon_name("shop", "postgresql").await.expect("name");
    assert_eq!(name, "shop-postgresql-1");
    let url = format!("postgres://u:{SECRET}@127.0.0.1/db");
    let (addon, v2) = s
        .create_addon(pg_addon(&name, "shop", &url), "DATABASE_URL")
        .await
        .expect("create add-on");
    assert_eq!(addon.app, "shop");
    assert_eq!(addon.attachments.len(), 1);
    assert_eq!(addon.attachments[0].var, "DATABASE_URL");
    assert_eq!(v2.version, 2);
    assert_eq!(v2.config.get("DATABASE_URL"), Some(&url));
    assert_eq!(v2.config.get("A").map(String::as_str), Some("1"));
    assert_eq!(v2.description, "Attach shop-postgresql-1 as DATABASE_URL");
    assert!(!format!("{addon:?}").contains(SECRET));
    assert_eq!(s.addon_url(&name).await.expect("url"), url);
    assert_eq!(
        s.next_addon_name("shop", "postgresql").await.expect("name"),
        "shop-postgresql-2"
    );

    // The same database for a second app.
    let w1 = s
        .attach_addon(&name, "worker", "DATABASE_URL")
        .await
        .expect("attach");
    assert_eq!(w1.version, 1);
    assert_eq!(w1.config.get("DATABASE_URL"), Some(&url));
    assert_conflict(s.attach_addon(&name, "worker", "OTHER_URL").await);
    let listed = s.addons_of("worker").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attachments.len(), 2);

    // Rotation: one release per attached app, each with the new URL.
    let new_url = format!("postgres://u:{SECRET}-2@127.0.0.1/db");
    let rotated = s.rotate_addon(&name, &new_url).await.expect("rotate");
    let mut apps: Vec<(&str, i64)> = rotated
        .iter()
        .map(|r| (r.app.as_str(), r.version))
        .collect();
    apps.sort();
    assert_eq!(apps, [("shop", 3), ("worker", 2)]);
    for r in &rotated {
        assert_eq!(r.config.get("DATABASE_URL"), Some(&new_url));
    }
    assert_eq!(
        s.config("worker")
            .await
            .expect("config")
            .get("DATABASE_URL"),
        Some(&new_url)
    );

    // Destroying is refused while attached; the owner cannot detach, the other app can.
    assert_conflict(s.delete_addon(&name).await);
    assert_conflict(s.destroy_app("shop").await);
    assert_conflict(s.detach_addon("shop", "DATABASE_URL", false).await);
    let (detached, w3) = s
        .detach_addon("worker", "DATABASE_URL", false)
        .await
        .expect("detach");
    assert_eq!(detached, name);
    assert!(!w3.config.contains_key("DATABASE_URL"));
    assert_not_found(
        s.detach_addon("worker", "DATABASE_URL", false).await,
        "attachment",
    );

    // Backups are numbered per add-on.
    assert_eq!(
        s.record_backup(&name, 10, None).await.expect("b1").number,
        1
    );
    let in_s3 = "s3://backups/dozen/shop-pg-1/b002.dump";
    assert_eq!(
        s.record_backup(&name, 20, Some(in_s3))
            .await
            .expect("b2")
            .number,
        2
    );
    assert_invalid(s.record_backup(&name, 30, Some("")).await);
    let kept: Vec<(i64, Option<String>)> = s
        .backups(&name)
        .await
        .expect("backups")
        .into_iter()
        .map(|b| (b.size, b.location))
        .collect();
    assert_eq!(kept, [(10, None), (20, Some(in_s3.to_string()))]);

    s.detach_addon("shop", "DATABASE_URL", true)
        .await
        .expect("detach the owner (destroy)");
    s.delete_addon(&name).await.expect("delete");
    assert_not_found(s.addon(&name).await, "add-on");
    assert!(s.addons_of("shop").await.expect("list").is_empty());
    s.destroy_app("shop").await.expect("destroy app");
}

async fn addon_conflicts_write_nothing(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("api").await.expect("create");
    s.set_config("shop", &kv(&[("DATABASE_URL", "by hand")]), &[])
        .await
        .expect("config");
    let before = s.releases("shop").await.expect("releases").len();
    // The var is set by hand: refused, nothing recorded.
    assert_conflict(
        s.create_addon(
            pg_addon("shop-postgresql-1", "shop", "postgres://x"),
            "DATABASE_URL",
        )
        .await,
    );
    assert_eq!(s.releases("shop").await.expect("releases").len(), before);
    assert_not_found(s.addon("shop-postgresql-1").await, "add-on");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM addons").await
            + db.count("SELECT COUNT(*) FROM addon_attachments").await,
        0
    );
    for bad in ["", "Shop-1", "1shop", "shop_pg", &"a".repeat(64)] {
        assert_invalid(
            s.create_addon(pg_addon(bad, "shop", "postgres://x"), "X_URL")
                .await,
        );
    }
    assert_invalid(
        s.create_addon(pg_addon("shop-pg-1", "shop", "x"), "1BAD")
            .await,
    );
    assert_not_found(
        s.create_addon(pg_addon("nope-pg-1", "nope", "x"), "X_URL")
            .await,
        "app",
    );
    s.create_addon(pg_addon("shop-pg-1", "shop", "postgres://x"), "PG_URL")
        .await
        .expect("create");
    // The name is taken; a var another attachment holds is refused.
    assert_conflict(
        s.create_addon(pg_addon("shop-pg-1", "api", "postgres://x"), "PG_URL")
            .await,
    );
    s.create_addon(pg_addon("api-pg-1", "api", "postgres://y"), "PG_URL")
        .await
        .expect("create");
    assert_conflict(s.attach_addon("api-pg-1", "shop", "PG_URL").await);
    assert_not_found(s.attach_addon("nope-1", "shop", "Y_URL").await, "add-on");
    // An app attached to another's add-on can be destroyed: the attachment goes with it.
    s.attach_addon("api-pg-1", "shop", "API_URL")
        .await
        .expect("attach");
    s.detach_addon("shop", "PG_URL", true)
        .await
        .expect("detach");
    s.delete_addon("shop-pg-1").await.expect("delete");
    s.destroy_app("shop").await.expect("destroy");
    assert_eq!(
        s.addon("api-pg-1")
            .await
            .expect("still there")
            .attachments
            .len(),
        1
    );
}

async fn dashboard_sessions_are_hashed_and_end_with_their_token(db: &TestDb) {
    use std::time::Duration;
    let s = db.ready().await;
    let hour = Duration::from_secs(3600);
    let (admin, _) = s.create_token("ops").await.expect("token");
    let (id, opened) = s.open_session(&admin.id, hour).await.expect("open");
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(opened.token, admin);
    assert!(opened.expires_at > opened.created_at);
    assert_eq!(s.session(&id).await.expect("find"), Some(opened.clone()));
    assert_eq!(s.session("").await.expect("find"), None);
    assert_eq!(s.session(&id[1..]).await.expect("find"), None);

    // The store keeps the id's hash, and the id appears nowhere.
    let mut raw = db.raw().await;
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT hash, token_id, created_at, expires_at FROM dashboard_sessions")
            .fetch_all(&mut raw)
            .await
            .expect("select");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, blake3::hash(id.as_bytes()).to_hex().to_string());
    assert_eq!(rows[0].1, admin.id);
    for (a, b, c, d) in &rows {
        for col in [a, b, c, d] {
            assert!(!col.contains(&id), "session id stored in clear");
        }
    }

    // A session that has expired is not found; a logout ends one.
    let (gone, _) = s
        .open_session(&admin.id, Duration::ZERO)
        .await
        .expect("open");
    assert_eq!(s.session(&gone).await.expect("find"), None);
    let (other, _) = s.open_session(&admin.id, hour).await.expect("open");
    assert!(s.close_session(&other).await.expect("close"));
    assert!(!s.close_session(&other).await.expect("close again"));
    assert_eq!(s.session(&other).await.expect("find"), None);
    assert!(
        s.session(&id).await.expect("find").is_some(),
        "other sessions stay"
    );

    // Revoking the token ends its sessions (and deletes them); a revoked token opens none.
    let (viewer, _) = s.create_token("viewer").await.expect("token");
    let (kept, _) = s.open_session(&viewer.id, hour).await.expect("open");
    s.revoke_token("ops").await.expect("revoke");
    assert_eq!(s.session(&id).await.expect("find"), None);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM dashboard_sessions WHERE token_id = $1")
            .bind(&admin.id)
            .fetch_one(&mut raw)
            .await
            .expect("count");
    assert_eq!(left, 0);
    assert_not_found(s.open_session(&admin.id, hour).await, "token");
    assert_not_found(s.open_session("tok_nope", hour).await, "token");
    assert!(s.session(&kept).await.expect("find").is_some());

    // Destroying an app revokes its tokens, and so ends their sessions.
    s.create_app("shop").await.expect("app");
    let (reader, _) = s
        .create_app_token("shop-reader", "shop", Scope::Read)
        .await
        .expect("token");
    let (reading, _) = s.open_session(&reader.id, hour).await.expect("open");
    assert!(s.session(&reading).await.expect("find").is_some());
    s.destroy_app("shop").await.expect("destroy");
    assert_eq!(s.session(&reading).await.expect("find"), None);

    // Bounded: at the limit, the session closest to expiring goes first.
    assert!(s.close_session(&kept).await.expect("close"));
    let (soonest, _) = s.open_session(&viewer.id, hour).await.expect("open");
    let later = Duration::from_secs(7200);
    while s.session_count().await.expect("count") < dozen_store::MAX_SESSIONS as i64 {
        s.open_session(&viewer.id, later).await.expect("open");
    }
    let (newest, _) = s.open_session(&viewer.id, later).await.expect("open");
    assert_eq!(
        s.session_count().await.expect("count"),
        dozen_store::MAX_SESSIONS as i64
    );
    assert_eq!(s.session(&soonest).await.expect("find"), None);
    assert!(s.session(&newest).await.expect("find").is_some());
}

async fn backup_schedules_and_pruning(db: &TestDb) {
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("api").await.expect("create");
    s.create_addon(pg_addon("shop-pg-1", "shop", "postgres://x"), "PG_URL")
        .await
        .expect("create");
    s.create_addon(pg_addon("api-pg-1", "api", "postgres://y"), "PG_URL")
        .await
        .expect("create");

    // Set, replaced (one per add-on), listed per app and in all.
    let first = s
        .set_backup_schedule("shop-pg-1", "02:00", 7, "2026-12-03T02:00:00Z")
        .await
        .expect("schedule");
    assert_eq!((first.app.as_str(), first.keep), ("shop", 7));
    let second = s
        .set_backup_schedule("shop-pg-1", "03:30", 2, "2026-12-03T03:30:00Z")
        .await
        .expect("again");
    assert_eq!(
        s.backup_schedules(Some("shop")).await.expect("list"),
        std::slice::from_ref(&second)
    );
    s.set_backup_schedule("api-pg-1", "04:00", 1, "2026-12-03T04:00:00Z")
        .await
        .expect("schedule");
    assert_eq!(s.backup_schedules(None).await.expect("all").len(), 2);
    assert_invalid(
        s.set_backup_schedule("shop-pg-1", "02:00", 0, "2026-12-03T02:00:00Z")
            .await,
    );
    assert_not_found(
        s.set_backup_schedule("nope-pg-1", "02:00", 1, "x").await,
        "add-on",
    );
    assert_eq!(
        s.backup_schedules(Some("shop")).await.expect("list")[0],
        second
    );

    // Advancing only moves the run it was asked about.
    assert!(
        s.advance_backup_schedule("shop-pg-1", "2026-12-03T03:30:00Z", "2026-12-04T03:30:00Z")
            .await
            .expect("advance")
    );
    assert!(
        !s.advance_backup_schedule("shop-pg-1", "2026-12-03T03:30:00Z", "2026-12-05T03:30:00Z")
            .await
            .expect("stale")
    );
    assert_eq!(
        s.backup_schedules(Some("shop")).await.expect("list")[0].next_run,
        "2026-12-04T03:30:00Z"
    );

    // Pruning keeps the newest; the numbers go on from the highest.
    for size in [1, 2, 3, 4] {
        let location = (size == 2).then_some("s3://b/shop-pg-1/b002.dump");
        s.record_backup("shop-pg-1", size, location)
            .await
            .expect("backup");
    }
    let gone: Vec<(i64, Option<String>)> = s
        .prune_backups("shop-pg-1", 2)
        .await
        .expect("prune")
        .into_iter()
        .map(|b| (b.number, b.location))
        .collect();
    assert_eq!(
        gone,
        [
            (1, None),
            (2, Some("s3://b/shop-pg-1/b002.dump".to_string()))
        ]
    );
    assert!(
        s.prune_backups("shop-pg-1", 2)
            .await
            .expect("again")
            .is_empty()
    );
    assert_invalid(s.prune_backups("shop-pg-1", 0).await);
    let left: Vec<i64> = s
        .backups("shop-pg-1")
        .await
        .expect("backups")
        .iter()
        .map(|b| b.number)
        .collect();
    assert_eq!(left, [3, 4]);
    assert_eq!(
        s.record_backup("shop-pg-1", 5, None)
            .await
            .expect("b5")
            .number,
        5
    );

    // Removed: then gone; and an add-on's schedule and backups go with it.
    assert_eq!(
        s.remove_backup_schedule("shop-pg-1")
            .await
            .expect("remove")
            .at,
        "03:30"
    );
    assert_not_found(
        s.remove_backup_schedule("shop-pg-1").await,
        "backup schedule",
    );
    s.detach_addon("api", "PG_URL", true).await.expect("detach");
    s.delete_addon("api-pg-1").await.expect("delete");
    assert!(s.backup_schedules(None).await.expect("all").is_empty());
    assert_eq!(
        db.count("SELECT COUNT(*) FROM addon_backup_schedules")
            .await,
        0
    );
}

/// Every way of making a release records the actor the caller acts as; a release made outside
/// any is the server's; one from before migration 9 has none.
async fn releases_record_who_made_them(db: &TestDb) {
    use dozen_store::{SERVER_ACTOR, acting_as};
    let s = db.ready().await;
    s.create_app("shop").await.expect("create");
    s.create_app("worker").await.expect("create");
    let v1 = acting_as("ops", s.set_config("shop", &kv(&[("A", "1")]), &[]))
        .await
        .expect("v1");
    assert_eq!(v1.created_by.as_deref(), Some("ops"));
    let slug = digest("made-by-ci");
    s.record_slug(&slug, 1, "{}").await.expect("slug");
    let deploy = NewRelease {
        slug: Some(slug),
        process_types: map(&[("web", "./run")]),
        description: "Deploy".to_owned(),
        ..Default::default()
    };
    let v2 = acting_as("ci", s.create_release("shop", deploy))
        .await
        .expect("v2");
    assert_eq!(v2.created_by.as_deref(), Some("ci"));
    let v3 = acting_as("ci", s.rollback("shop", 1)).await.expect("v3");
    assert_eq!(v3.created_by.as_deref(), Some("ci"));
    // Add-on releases: the owner's on create, the other app's on attach, both on rotate.
    let name = s.next_addon_name("shop", "postgresql").await.expect("name");
    let url = format!("postgres://u:{SECRET}@127.0.0.1/db");
    let (_, v4) = acting_as(
        "ops",
        s.create_addon(pg_addon(&name, "shop", &url), "DATABASE_URL"),
    )
    .await
    .expect("add-on");
    assert_eq!(v4.created_by.as_deref(), Some("ops"));
    let w1 = acting_as("ops", s.attach_addon(&name, "worker", "DATABASE_URL"))
        .await
        .expect("attach");
    assert_eq!(w1.created_by.as_deref(), Some("ops"));
    let new_url = format!("postgres://u:{SECRET}-2@127.0.0.1/db");
    let rotated = acting_as("ci", s.rotate_addon(&name, &new_url))
        .await
        .expect("rotate");
    assert_eq!(rotated.len(), 2);
    assert!(
        rotated
            .iter()
            .all(|r| r.created_by.as_deref() == Some("ci"))
    );
    // Outside any actor: the server's own.
    let v6 = s
        .set_config("shop", &kv(&[("B", "2")]), &[])
        .await
        .expect("v6");
    assert_eq!(v6.created_by.as_deref(), Some(SERVER_ACTOR));
    // What was recorded is what is read back, newest first.
    let by: Vec<Option<String>> = s
        .releases("shop")
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.created_by)
        .collect();
    let want = [SERVER_ACTOR, "ci", "ops", "ci", "ci", "ops"];
    assert_eq!(by, want.map(|w| Some(w.to_owned())));
    // A release from before the column existed reads as made by nobody known.
    let mut raw = db.raw().await;
    sqlx::query("UPDATE releases SET created_by = NULL WHERE app = 'shop' AND version = 1")
        .execute(&mut raw)
        .await
        .expect("update");
    assert_eq!(s.release("shop", 1).await.expect("v1").created_by, None);
}
