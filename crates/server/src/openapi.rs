//! The API's OpenAPI 3.1 description, served at `/openapi.json`. A test checks that every route
//! of the router is described here.

/// The document.
pub const DOCUMENT: &str = r##"{
  "openapi": "3.1.0",
  "info": {"title": "dozen server API", "version": "1", "description": "Apps, builds, releases, config vars, formation, one-off runs and logs. Every /v1 call needs Authorization: Bearer <token>. Errors are {\"error\": {\"status\", \"message\"}}. Streaming endpoints answer application/x-ndjson: one log event per line, then a final result object."},
  "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
  "security": [{"bearer": []}],
  "paths": {
    "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
    "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI"}}}},
    "/v1/apps": {
      "get": {"summary": "List apps", "responses": {"200": {"description": "apps"}}},
      "post": {"summary": "Create an app", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,29}$"}}}}}}, "responses": {"201": {"description": "created"}, "409": {"description": "exists"}, "422": {"description": "invalid name"}}}
    },
    "/v1/apps/{app}": {
      "get": {"summary": "App info: live release, process types, formation, processes", "responses": {"200": {"description": "app"}, "404": {"description": "unknown app"}}},
      "delete": {"summary": "Destroy an app and everything it has", "responses": {"200": {"description": "destroyed"}}}
    },
    "/v1/apps/{app}/config": {
      "get": {"summary": "Config vars", "responses": {"200": {"description": "key -> value"}}},
      "patch": {"summary": "Set and unset config vars (a new release)", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"set": {"type": "object", "additionalProperties": {"type": "string"}}, "unset": {"type": "array", "items": {"type": "string"}}}}}}}, "responses": {"200": {"description": "the new release"}, "422": {"description": "invalid key"}}}
    },
    "/v1/apps/{app}/releases": {"get": {"summary": "Releases, newest first (config keys only)", "responses": {"200": {"description": "releases"}}}},
    "/v1/apps/{app}/releases/{version}": {"get": {"summary": "One release (vN or N), with its slug's manifest (process types in Procfile order, health check, boot timeout)", "responses": {"200": {"description": "release"}, "404": {"description": "unknown"}}}},
    "/v1/apps/{app}/releases/{version}/config": {"get": {"summary": "The config vars of one release, as it was made", "responses": {"200": {"description": "key -> value"}, "404": {"description": "unknown release"}}}},
    "/v1/apps/{app}/releases/{version}/slug": {"get": {"summary": "The slug one release runs (tar.zst; X-Dozen-Slug-Digest is its blake3)", "responses": {"200": {"description": "the slug", "content": {"application/zstd": {"schema": {"type": "string", "format": "binary"}}}}, "404": {"description": "unknown release, or it has no slug"}}}},
    "/v1/apps/{app}/rollback": {"post": {"summary": "A new release copying an earlier one's slug and config", "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"version": {"type": "string"}}}}}}, "responses": {"200": {"description": "the new release"}}}},
    "/v1/apps/{app}/builds": {
      "get": {"summary": "Builds, newest first", "responses": {"200": {"description": "builds"}}},
      "post": {"summary": "Upload source (tar.zst) and deploy it; streams the build log", "requestBody": {"content": {"application/zstd": {"schema": {"type": "string", "format": "binary"}}}}, "responses": {"200": {"description": "NDJSON build log, then {status, release | error}"}, "413": {"description": "too large"}}}
    },
    "/v1/apps/{app}/formation": {
      "get": {"summary": "Process type -> quantity", "responses": {"200": {"description": "formation"}}},
      "patch": {"summary": "Scale", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}}}}, "responses": {"200": {"description": "formation"}}}
    },
    "/v1/apps/{app}/formation/sizes": {
      "get": {"summary": "The size of each process type (memory, cpu, pids), every size available, and how this host enforces them (limits: cgroup v2, cgroup v1 or none; warning when none)", "responses": {"200": {"description": "sizes"}}},
      "patch": {"summary": "Resize process types (stored; the types named restart with the new limits, web with zero downtime)", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": {"type": "string", "description": "a size: tiny, 1x, 2x, performance-m, performance-l"}}}}}, "responses": {"200": {"description": "sizes"}, "422": {"description": "unknown size (the message lists the sizes) or process type"}}}
    },
    "/v1/apps/{app}/ps": {"get": {"summary": "Processes: name, state, pid, port, release, uptime, size, memory (bytes now) and memory_limit", "responses": {"200": {"description": "processes"}}}},
    "/v1/apps/{app}/ps/restart": {"post": {"summary": "Restart all processes or one type", "responses": {"200": {"description": "processes"}}}},
    "/v1/apps/{app}/run": {"post": {"summary": "Run a one-off command in the live release. The command is a command line (command) or the words to run (argv: one word is a command line, several are each shell-quoted, so the program gets them unchanged). With command or argv in the query (argv as a JSON array of strings) the one-off is attached: the request body is streamed to its stdin, and the answer is its output, as frames when the request accepts application/vnd.dozen.frames (kind byte o stdout, e stderr, x exit; 4-byte big-endian length; payload: the exact bytes, or for x JSON {name, exit, error?}), else as NDJSON log lines then {name, exit}. A client that goes away stops its one-off. Otherwise the body is JSON and detached: true runs it with output in the logs.", "parameters": [{"name": "command", "in": "query", "schema": {"type": "string"}}, {"name": "argv", "in": "query", "schema": {"type": "string", "description": "JSON array of strings"}}], "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"command": {"type": "string"}, "argv": {"type": "array", "items": {"type": "string"}}, "detached": {"type": "boolean"}}}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "responses": {"200": {"description": "the one-off's output, then its exit status", "content": {"application/vnd.dozen.frames": {"schema": {"type": "string", "format": "binary"}}, "application/x-ndjson": {}}}, "202": {"description": "detached"}, "422": {"description": "no command, both command and argv, or argv not a JSON array of strings"}}}},
    "/v1/apps/{app}/logs": {"get": {"summary": "Recent log events; tail=true follows live", "parameters": [{"name": "lines", "in": "query", "schema": {"type": "integer"}}, {"name": "tail", "in": "query", "schema": {"type": "boolean"}}, {"name": "ps", "in": "query", "schema": {"type": "string"}}, {"name": "source", "in": "query", "schema": {"type": "string", "enum": ["app", "dozen"]}}], "responses": {"200": {"description": "NDJSON"}}}},
    "/v1/apps/{app}/domains": {
      "get": {"summary": "The app's default hostname (<app>.DOZEN_DOMAIN) and custom domains", "responses": {"200": {"description": "domains"}}},
      "post": {"summary": "Add a custom domain", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["hostname"], "properties": {"hostname": {"type": "string"}}}}}}, "responses": {"201": {"description": "domains"}, "409": {"description": "taken by another app"}, "422": {"description": "invalid hostname"}}}
    },
    "/v1/apps/{app}/domains/{hostname}": {"delete": {"summary": "Remove a custom domain", "responses": {"200": {"description": "domains"}, "404": {"description": "not a domain of the app"}}}},
    "/v1/tokens": {
      "get": {"summary": "API tokens (never their secrets)", "responses": {"200": {"description": "tokens"}}},
      "post": {"summary": "Create a token; the secret is shown once", "responses": {"201": {"description": "token"}}}
    },
    "/v1/tokens/{token}": {"delete": {"summary": "Revoke a token by id or name", "responses": {"200": {"description": "revoked"}}}}
  }
}"##;

#[cfg(test)]
mod tests {
    use super::DOCUMENT;

    #[test]
    fn the_document_is_json_and_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        // Every route the router serves (api.rs), in OpenAPI's {param} form.
        let source = include_str!("api.rs");
        let mut routes = 0;
        for call in source.split(".route(").skip(1) {
            let Some(rest) = call.trim_start().strip_prefix('"') else {
                continue;
            };
            let route = &rest[..rest.find('"').expect("closing quote")];
            routes += 1;
            assert!(
                paths.contains_key(route),
                "route {route} is missing from /openapi.json"
            );
        }
        assert!(routes >= 15, "found only {routes} routes in api.rs");
        assert_eq!(
            paths.len(),
            routes,
            "the document describes a route the router does not serve"
        );
    }
}
