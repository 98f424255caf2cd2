//! The HTTP API of a real `dozen server` against its own description: every route's live
//! answers validate against the schemas `/openapi.json` publishes (with Python's jsonschema).

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::api::{AUTH, Answer, JSON, gated_app, required, send, source_archive};
use support::server::{Server, pg_admin_url};
use support::{processes_matching, unique_tag};

/// One recorded call for the schema check.
struct Recorder {
    port: u16,
    calls: Vec<Value>,
}

impl Recorder {
    /// Call `route` (its template, for the record) at `target` and record the answer, which
    /// must have `status`.
    #[track_caller]
    fn call(
        &mut self,
        method: &str,
        route: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        status: u16,
    ) -> Answer {
        let answer = send(self.port, method, target, headers, body, true)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        assert_eq!(
            answer.status,
            status,
            "{method} {target}: {}",
            answer.text()
        );
        self.calls.push(json!({
            "method": method,
            "path": route,
            "status": answer.status,
            "content_type": answer.content_type,
            "body": if answer.content_type.starts_with("application/zstd") { String::new() } else { answer.text() },
        }));
        answer
    }

    #[track_caller]
    fn json(&mut self, method: &str, route: &str, target: &str, body: Value, status: u16) -> Value {
        let bytes = body.to_string();
        self.call(
            method,
            route,
            target,
            &[AUTH, JSON],
            bytes.as_bytes(),
            status,
        )
        .json()
    }

    #[track_caller]
    fn get(&mut self, route: &str, target: &str, status: u16) -> Answer {
        self.call("GET", route, target, &[AUTH], b"", status)
    }
}

#[test]
fn every_route_answers_as_its_openapi_schema_says() {
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_jsonschema {
        assert!(
            !required(),
            "CI is set: the Python package jsonschema must be installed (pip install jsonschema)"
        );
        eprintln!("skipped: the Python package jsonschema is not installed");
        return;
    }
    let server = Server::start_with(&[("DOZEN_ADDON_POSTGRESQL_URL", &pg_admin_url())]);
    let mut r = Recorder {
        port: server.port,
        calls: Vec::new(),
    };
    let tag = unique_tag();
    let app = gated_app(&tag);
    let archive = source_archive(app.path());

    let doc = r.get("/openapi.json", "/openapi.json", 200).json();
    r.get("/healthz", "/healthz", 200);
    r.get("/metrics", "/metrics", 200);
    r.call("GET", "/metrics", "/metrics", &[], b"", 401);
    r.call("GET", "/v1/apps", "/v1/apps", &[], b"", 401);
    r.json("POST", "/v1/apps", "/v1/apps", json!({"name": "shop"}), 201);
    r.json("POST", "/v1/apps", "/v1/apps", json!({"name": "shop"}), 409);
    r.json(
        "POST",
        "/v1/apps",
        "/v1/apps",
        json!({"name": "Not A Name"}),
        422,
    );
    r.call("POST", "/v1/apps", "/v1/apps", &[AUTH, JSON], b"{", 400);
    r.call(
        "POST",
        "/v1/apps",
        "/v1/apps",
        &[AUTH],
        br#"{"name":"x"}"#,
        415,
    );
    r.get("/v1/apps", "/v1/apps", 200);
    r.json(
        "PATCH",
        "/v1/apps/{app}/config",
        "/v1/apps/shop/config",
        json!({"set": {"GREETING": "hello"}}),
        200,
    );
    r.json(
        "PATCH",
        "/v1/apps/{app}/config",
        "/v1/apps/shop/config",
        json!({}),
        422,
    );
    // The source says which commit it is (as `dozen deploy` from a clean checkout does).
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let deploy = r.call(
        "POST",
        "/v1/apps/{app}/builds",
        &format!("/v1/apps/shop/builds?commit={commit}"),
        &[AUTH, ("Content-Type", "application/zstd")],
        &archive,
        200,
    );
    assert!(
        deploy.text().contains("\"status\":\"succeeded\""),
        "{}",
        deploy.text()
    );
    assert!(deploy.text().contains(commit), "{}", deploy.text());
    for (query, status) in [
        ("?commit=HEAD", 422),
        ("?dirty=true", 422),
        (&format!("?commit={commit}&dirty=maybe") as &str, 400),
    ] {
        let bad = r.call(
            "POST",
            "/v1/apps/{app}/builds",
            &format!("/v1/apps/shop/builds{query}"),
            &[AUTH, ("Content-Type", "application/zstd")],
            &archive,
            status,
        );
        let word = if query.contains("maybe") {
            "dirty"
        } else {
            query[1..].split('=').next().unwrap_or_default()
        };
        assert!(bad.text().contains(word), "{query}: {}", bad.text());
    }
    r.call(
        "POST",
        "/v1/apps/{app}/builds",
        "/v1/apps/shop/builds",
        &[AUTH, ("Content-Type", "application/zstd")],
        b"",
        422,
    );
    r.get("/v1/apps/{app}", "/v1/apps/shop", 200);
    r.get("/v1/apps/{app}", "/v1/apps/nope", 404);
    r.get("/v1/apps/{app}/config", "/v1/apps/shop/config", 200);
    r.get("/v1/apps/{app}/releases", "/v1/apps/shop/releases", 200);
    r.get(
        "/v1/apps/{app}/releases/{version}",
        "/v1/apps/shop/releases/v2",
        200,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}",
        "/v1/apps/shop/releases/v99",
        404,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}",
        "/v1/apps/shop/releases/latest",
        422,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}/config",
        "/v1/apps/shop/releases/1/config",
        200,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}/slug",
        "/v1/apps/shop/releases/v2/slug",
        200,
    );
    r.get(
        "/v1/apps/{app}/releases/{version}/slug",
        "/v1/apps/shop/releases/v1/slug",
        404,
    );
    r.get("/v1/apps/{app}/builds", "/v1/apps/shop/builds", 200);
    r.get("/v1/apps/{app}/formation", "/v1/apps/shop/formation", 200);
    r.json(
        "PATCH",
        "/v1/apps/{app}/formation",
        "/v1/apps/shop/formation",
        json!({"web": 1}),
        200,
    );
    r.json(
        "PATCH",
        "/v1/apps/{app}/formation",
        "/v1/apps/shop/formation",
        json!({"nope": 1}),
        422,
    );
    r.get(
        "/v1/apps/{app}/formation/sizes",
        "/v1/apps/shop/formation/sizes",
        200,
    );
    r.json(
        "PATCH",
        "/v1/apps/{app}/formation/sizes",
        "/v1/apps/shop/formation/sizes",
        json!({"web": "2x"}),
        200,
    );
    r.json(
        "PATCH",
        "/v1/apps/{app}/formation/sizes",
        "/v1/apps/shop/formation/sizes",
        json!({"web": "huge"}),
        422,
    );
    r.get("/v1/apps/{app}/ps", "/v1/apps/shop/ps", 200);
    r.json(
        "POST",
        "/v1/apps/{app}/ps/restart",
        "/v1/apps/shop/ps/restart",
        json!({}),
        200,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/ps/restart",
        "/v1/apps/shop/ps/restart",
        json!({"type": "nope"}),
        422,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run",
        json!({"command": "echo hi", "detached": true}),
        202,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run",
        json!({"command": "echo hi", "argv": ["echo"]}),
        422,
    );
    let attached = r.call(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run?command=echo%20attached",
        &[AUTH, ("Content-Type", "application/octet-stream")],
        b"",
        200,
    );
    assert!(
        attached.text().contains("\"exit\":0"),
        "{}",
        attached.text()
    );
    r.call(
        "POST",
        "/v1/apps/{app}/run",
        "/v1/apps/shop/run?command=echo%20framed",
        &[
            AUTH,
            ("Content-Type", "application/octet-stream"),
            ("Accept", "application/vnd.dozen.frames"),
        ],
        b"",
        200,
    );
    r.get("/v1/apps/{app}/logs", "/v1/apps/shop/logs?lines=50", 200);
    r.get(
        "/v1/apps/{app}/logs",
        "/v1/apps/shop/logs?source=neither",
        422,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/rollback",
        "/v1/apps/shop/rollback",
        json!({"version": "v2"}),
        200,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/rollback",
        "/v1/apps/shop/rollback",
        json!({"version": "v99"}),
        404,
    );
    r.get("/v1/apps/{app}/domains", "/v1/apps/shop/domains", 200);
    r.json(
        "POST",
        "/v1/apps/{app}/domains",
        "/v1/apps/shop/domains",
        json!({"hostname": "shop.example.test"}),
        201,
    );
    r.json(
        "POST",
        "/v1/apps/{app}/domains",
        "/v1/apps/shop/domains",
        json!({"hostname": "not a hostname"}),
        422,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}/domains/{hostname}",
        "/v1/apps/shop/domains/shop.example.test",
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}/domains/{hostname}",
        "/v1/apps/shop/domains/shop.example.test",
        &[AUTH],
        b"",
        404,
    );
    addon_routes(&mut r, &tag);
    drain_routes(&mut r);
    r.get("/v1/tokens", "/v1/tokens", 200);
    r.json(
        "POST",
        "/v1/tokens",
        "/v1/tokens",
        json!({"name": "ci"}),
        201,
    );
    r.call(
        "DELETE",
        "/v1/tokens/{token}",
        "/v1/tokens/ci",
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        "/v1/tokens/{token}",
        "/v1/tokens/never-made",
        &[AUTH],
        b"",
        404,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}",
        "/v1/apps/shop",
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        "/v1/apps/{app}",
        "/v1/apps/shop",
        &[AUTH],
        b"",
        404,
    );

    let dir = tempfile::tempdir().expect("tmp");
    let doc_path = dir.path().join("openapi.json");
    let calls_path = dir.path().join("calls.json");
    std::fs::write(&doc_path, doc.to_string()).expect("write");
    std::fs::write(&calls_path, Value::Array(r.calls).to_string()).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/openapi_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&doc_path)
        .arg(&calls_path)
        .output()
        .expect("python3");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "live answers that /openapi.json does not describe:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        processes_matching(&tag).is_empty(),
        "the destroyed app left processes"
    );
}

/// The drain routes on app shop: a drain added (to a port where nothing listens: it is down,
/// and that is an answer too), listed, refused twice and with bad URLs, removed.
fn drain_routes(r: &mut Recorder) {
    let drains = "/v1/apps/{app}/drains";
    let target = "/v1/apps/shop/drains";
    let url = format!("syslog://127.0.0.1:{}", support::free_port());
    let added = r.json("POST", drains, target, json!({ "url": url }), 201);
    let id = added["id"].as_str().expect("id").to_string();
    r.json("POST", drains, target, json!({ "url": url }), 409);
    r.json("POST", drains, target, json!({"url": "ftp://h"}), 422);
    r.call("POST", drains, target, &[AUTH, JSON], b"{", 400);
    r.call("POST", drains, target, &[AUTH], b"{\"url\":\"x\"}", 415);
    r.get(drains, target, 200);
    r.get(drains, "/v1/apps/nope/drains", 404);
    let drain = "/v1/apps/{app}/drains/{drain}";
    r.call(
        "DELETE",
        drain,
        &format!("{target}/{id}"),
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        drain,
        &format!("{target}/{id}"),
        &[AUTH],
        b"",
        404,
    );
}

/// The add-on routes, on two apps of their own (a PostgreSQL add-on made, attached, rotated,
/// backed up, restored, detached and destroyed).
fn addon_routes(r: &mut Recorder, tag: &str) {
    let (owner, other) = (format!("adn{tag}"), format!("adw{tag}"));
    for app in [&owner, &other] {
        r.json("POST", "/v1/apps", "/v1/apps", json!({ "name": app }), 201);
    }
    r.get("/v1/addon-services", "/v1/addon-services", 200);
    let addons = "/v1/apps/{app}/addons";
    let owned = format!("/v1/apps/{owner}/addons");
    r.get(addons, &owned, 200);
    r.get(addons, "/v1/apps/nope/addons", 404);
    let made = r.json(
        "POST",
        addons,
        &owned,
        json!({"service": "postgresql"}),
        201,
    );
    let name = made["addon"]["name"].as_str().expect("name").to_string();
    r.json(
        "POST",
        addons,
        &owned,
        json!({"service": "postgresql"}),
        409,
    );
    r.json("POST", addons, &owned, json!({"service": "nope"}), 422);
    r.json(
        "POST",
        addons,
        "/v1/apps/nope/addons",
        json!({"service": "postgresql"}),
        404,
    );
    r.call("POST", addons, &owned, &[AUTH, JSON], b"{", 400);
    r.call(
        "POST",
        addons,
        &owned,
        &[AUTH],
        br#"{"service":"postgresql"}"#,
        415,
    );
    r.get(addons, &owned, 200);

    let attach = "/v1/apps/{app}/attachments";
    let attach_other = format!("/v1/apps/{other}/attachments");
    r.json("POST", attach, &attach_other, json!({ "addon": name }), 201);
    r.json(
        "POST",
        attach,
        &attach_other,
        json!({ "addon": name, "as": "SECOND" }),
        409,
    );
    r.json(
        "POST",
        attach,
        &attach_other,
        json!({ "addon": name, "as": "1x" }),
        422,
    );
    r.json(
        "POST",
        attach,
        &attach_other,
        json!({ "addon": "nope-postgresql-1" }),
        404,
    );
    r.call("POST", attach, &attach_other, &[AUTH, JSON], b"{", 400);
    r.call("POST", attach, &attach_other, &[AUTH], b"{}", 415);

    let rotate = "/v1/apps/{app}/addons/{addon}/rotate";
    r.json(
        "POST",
        rotate,
        &format!("{owned}/{name}/rotate"),
        json!({}),
        200,
    );
    r.json(
        "POST",
        rotate,
        &format!("{owned}/nope-postgresql-9/rotate"),
        json!({}),
        404,
    );

    let backups = "/v1/apps/{app}/addons/{addon}/backups";
    let owned_backups = format!("{owned}/{name}/backups");
    r.get(backups, &owned_backups, 200);
    r.get(backups, &format!("{owned}/nope-postgresql-9/backups"), 404);
    r.json("POST", backups, &owned_backups, json!({}), 201);
    r.json(
        "POST",
        backups,
        &format!("{owned}/nope-postgresql-9/backups"),
        json!({}),
        404,
    );
    r.get(backups, &owned_backups, 200);
    let restore = "/v1/apps/{app}/addons/{addon}/backups/{backup}/restore";
    r.json(
        "POST",
        restore,
        &format!("{owned_backups}/b001/restore"),
        json!({}),
        200,
    );
    r.json(
        "POST",
        restore,
        &format!("{owned_backups}/b009/restore"),
        json!({}),
        404,
    );
    r.json(
        "POST",
        restore,
        &format!("{owned_backups}/latest/restore"),
        json!({}),
        422,
    );
    r.json(
        "POST",
        restore,
        &format!("{owned_backups}/b001/restore"),
        json!({ "into": "nope-postgresql-9" }),
        404,
    );
    let schedules = "/v1/apps/{app}/backup-schedules";
    let schedule = "/v1/apps/{app}/addons/{addon}/backup-schedule";
    let owned_schedule = format!("{owned}/{name}/backup-schedule");
    r.json(
        "PUT",
        schedule,
        &owned_schedule,
        json!({ "at": "02:00", "keep": 3 }),
        200,
    );
    r.json(
        "PUT",
        schedule,
        &owned_schedule,
        json!({ "at": "2am" }),
        422,
    );
    r.json(
        "PUT",
        schedule,
        &format!("{owned}/nope-postgresql-9/backup-schedule"),
        json!({ "at": "02:00" }),
        404,
    );
    r.get(
        schedules,
        &format!("/v1/apps/{owner}/backup-schedules"),
        200,
    );
    r.get(schedules, "/v1/apps/nope/backup-schedules", 404);
    r.call("DELETE", schedule, &owned_schedule, &[AUTH], b"", 200);
    r.call("DELETE", schedule, &owned_schedule, &[AUTH], b"", 404);

    let addon = "/v1/apps/{app}/addons/{addon}";
    let detach = "/v1/apps/{app}/attachments/{attachment}";
    r.call(
        "DELETE",
        addon,
        &format!("{owned}/{name}"),
        &[AUTH],
        b"",
        409,
    );
    r.call(
        "DELETE",
        detach,
        &format!("/v1/apps/{owner}/attachments/DATABASE"),
        &[AUTH],
        b"",
        409,
    );
    r.call(
        "DELETE",
        detach,
        &format!("{attach_other}/DATABASE"),
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        detach,
        &format!("{attach_other}/DATABASE"),
        &[AUTH],
        b"",
        404,
    );
    r.call(
        "DELETE",
        addon,
        &format!("{owned}/{name}"),
        &[AUTH],
        b"",
        200,
    );
    r.call(
        "DELETE",
        addon,
        &format!("{owned}/{name}"),
        &[AUTH],
        b"",
        404,
    );
    for app in [&owner, &other] {
        r.call(
            "DELETE",
            "/v1/apps/{app}",
            &format!("/v1/apps/{app}"),
            &[AUTH],
            b"",
            200,
        );
    }
}
