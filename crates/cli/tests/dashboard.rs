//! The web dashboard in a real headless Chromium (over chromedriver), against a real
//! `dozen server`: logging in, a deploy, live logs, scaling, a rollback through its confirm step,
//! what a read token sees and may do, hostile log lines, CSRF, a session that outlives a server
//! restart and ends with its token, and the add-ons and drains panels (a real Redis add-on).
//!
//! With `DOZEN_DASHBOARD_SCREENSHOTS=DIR`, the main pages are saved as PNGs in DIR
//! (`scripts/dashboard-screenshots` takes the README's).

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::server::{Server, TOKEN};
use webdriver::{Browser, DESKTOP, PHONE};

/// An app with a web process that prints each request's path (decoded) on stdout, and a
/// worker type that runs none by default.
fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("Procfile"),
        "web: python3 -u web.py\nworker: python3 -u worker.py\n",
    )
    .expect("Procfile");
    std::fs::write(
        dir.path().join("web.py"),
        "import http.server, os, urllib.parse\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       print('request ' + urllib.parse.unquote(self.path), flush=True)\n\
         \x20       self.send_response(200)\n\
         \x20       self.end_headers()\n\
         \x20       self.wfile.write(b'ok')\n\
         \x20   def log_message(self, *args):\n\
         \x20       pass\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
    )
    .expect("web.py");
    std::fs::write(
        dir.path().join("worker.py"),
        "import time\nprint('worker ready', flush=True)\nwhile True:\n    time.sleep(3600)\n",
    )
    .expect("worker.py");
    dir
}

fn screenshots() -> Option<PathBuf> {
    std::env::var_os("DOZEN_DASHBOARD_SCREENSHOTS").map(PathBuf::from)
}

fn shoot(browser: &Browser, name: &str) {
    if let Some(dir) = screenshots() {
        // A passing notice ("Scaled shop ...") would cover part of the page.
        browser.script(
            "document.querySelector('#toast')?.setAttribute('hidden', '');",
            json!([]),
        );
        browser.screenshot(&dir.join(format!("{name}.png")));
    }
}

/// Log the browser in with `token` through the login page.
fn log_in(browser: &Browser, server: &Server, token: &str) {
    browser.goto(&format!("{}/", server.url));
    // Without a session the page sends the browser to the login.
    browser.await_true(
        "the login page",
        "return location.pathname === '/login' && !!document.querySelector('#token');",
    );
    browser.type_into("#token", token);
    browser.click("#login-submit");
    browser.await_true(
        "the apps page after the login",
        "return location.pathname === '/' && document.querySelector('#who').textContent !== '';",
    );
}

/// A request through the router to the app's web process.
fn visit(server: &Server, app: &str, path: &str) {
    let (status, _) = server.get(&format!("{app}.localhost"), path);
    assert_eq!(status, 200, "GET {path} of {app}");
}

#[test]
fn an_operator_deploys_follows_logs_scales_and_rolls_back_in_the_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);

    log_in(&browser, &server, TOKEN);
    let session = browser
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "dozen_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_ne!(session["value"], TOKEN, "the cookie is not the token");
    browser.await_element("tr[data-app='shop']");

    // A deploy, watched on the deploy page: the build's log streams, then the rollout.
    browser.goto(&format!("{}/apps/shop/deploy", server.url));
    browser.await_true(
        "the deploy log to be live",
        "return document.querySelector('#log-status')?.textContent === 'live';",
    );
    let dir = app_dir();
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let deploy = server
        .client_command(&["deploy", "-a", "shop", "-d", dir_arg])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("deploy");
    browser.await_true(
        "v1 going live in the deploy log",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => /v1 is live/.test(l.textContent));",
    );
    let deploy = deploy.wait_with_output().expect("deploy");
    assert!(
        deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    browser.await_true(
        "the deploy page to say v1 is live",
        "return /v1 is live/.test(document.querySelector('#deploy-now')?.textContent);",
    );
    browser.await_element("#deploy-processes tr[data-process='web.1']");
    shoot(&browser, "deploy");

    // The apps list shows it up, with its release, web URL and formation.
    browser.goto(&format!("{}/", server.url));
    let row = browser.await_true(
        "shop to be up on v1 in the apps list",
        "const r = document.querySelector(\"tr[data-app='shop']\");
         return r && r.querySelector('.badge').textContent === 'up'
           && r.querySelector('.release').textContent === 'v1' ? r.textContent : null;",
    );
    let row = row.as_str().unwrap_or_default();
    assert!(row.contains("http://shop.localhost"), "{row}");
    assert!(row.contains("web=1"), "{row}");
    shoot(&browser, "apps");

    // Live logs: a line the app prints arrives; a line holding markup is shown as text.
    browser.goto(&format!("{}/apps/shop/logs", server.url));
    browser.await_true(
        "the log stream to be live",
        "return document.querySelector('#log-status')?.textContent === 'live';",
    );
    visit(&server, "shop", "/hello-from-the-test");
    browser.await_true(
        "the app's line in the page",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent === 'request /hello-from-the-test');",
    );
    visit(
        &server,
        "shop",
        "/x?%3Cscript%3Ewindow.pwned%3D1%3C%2Fscript%3E%3Cimg%20src%3Dx%20onerror%3D%22window.pwned%3D2%22%3E",
    );
    browser.await_true(
        "the line with markup, as text",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent.includes('<script>window.pwned=1</script><img src=x'));",
    );
    let injected = browser.script(
        "return [window.pwned === undefined, document.querySelectorAll('#log-lines script, #log-lines img').length];",
        json!([]),
    );
    assert_eq!(injected, json!([true, 0]), "markup in a log line ran");

    // Paused, new lines are held (and counted), and shown on resume.
    browser.click("#log-pause");
    visit(&server, "shop", "/while-paused");
    browser.await_true(
        "the paused page to count the held line",
        "return /paused \\(\\d+ new\\)/.test(document.querySelector('#log-status')?.textContent);",
    );
    let shown = browser.script(
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent === 'request /while-paused');",
        json!([]),
    );
    assert_eq!(shown, json!(false), "a line was shown while paused");
    browser.click("#log-pause");
    browser.await_true(
        "the held line after resuming",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent === 'request /while-paused');",
    );

    // The filter: only platform events.
    browser.script(
        "const s = document.querySelector('#log-source'); s.value = 'dozen'; s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    browser.await_true(
        "only platform events after filtering",
        "const lines = [...document.querySelectorAll('#log-lines .entry')];
         return document.querySelector('#log-status')?.textContent === 'live' && lines.length > 0
           && lines.every(l => l.querySelector('.proc').textContent === 'dozen');",
    );
    browser.script(
        "const s = document.querySelector('#log-source'); s.value = ''; s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    browser.await_true(
        "app lines again",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent === 'request /while-paused');",
    );
    shoot(&browser, "logs");

    // Scale the worker type from the app page, with the keyboard: the new process appears.
    server.ok(&["config:set", "-a", "shop", "GREETING=sesame-8271"]);
    browser.goto(&format!("{}/apps/shop", server.url));
    browser.await_element("#scale-worker");
    browser.await_element("tr[data-release='v2']");
    browser.type_into("#scale-worker", "1");
    browser.keys("\u{E007}");
    browser.await_element("#processes tr[data-process='worker.1']");
    let formation = server.json(&["ps", "-a", "shop"]);
    assert!(
        formation
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "worker.1"),
        "{formation}"
    );

    // Config values stay out of the page until revealed.
    let body = browser.text("body");
    assert!(body.contains("GREETING"), "{body}");
    assert!(!body.contains("sesame-8271"), "a value is in the page");
    browser.click("button[aria-label='Reveal GREETING']");
    browser.await_true(
        "the revealed value",
        "return [...document.querySelectorAll('#config .value')].some(v => v.textContent === 'sesame-8271' && !v.hidden);",
    );
    browser.click("button[aria-label='Reveal GREETING']");
    assert!(
        !browser.text("body").contains("sesame-8271"),
        "hidden again"
    );
    shoot(&browser, "app");

    // A rollback asks first: cancelled, nothing happens; confirmed, v3 is made from v1.
    browser.click("button.rollback[data-version='v1']");
    browser.await_true(
        "the confirm dialog",
        "return document.querySelector('#confirm').open;",
    );
    assert!(browser.text("#confirm-title").contains("v1"));
    browser.click("#confirm-cancel");
    browser.await_true(
        "the dialog to close",
        "return !document.querySelector('#confirm').open;",
    );
    let releases = server.json(&["releases", "-a", "shop"]);
    assert_eq!(
        releases.as_array().map(Vec::len),
        Some(2),
        "a cancelled rollback made a release: {releases}"
    );
    browser.click("button.rollback[data-version='v1']");
    browser.await_true(
        "the confirm dialog",
        "return document.querySelector('#confirm').open;",
    );
    browser.click("#confirm-ok");
    let v3 = browser.await_true(
        "v3, live",
        "const r = document.querySelector(\"tr[data-release='v3']\");
         return r && r.textContent.includes('live') ? r.textContent : null;",
    );
    assert!(v3.as_str().unwrap_or_default().contains("v1"), "{v3}");
    // Made by the session's token, and the table says so.
    assert_eq!(
        browser.text("tr[data-release='v3'] td.by"),
        "bootstrap",
        "the By column of v3"
    );

    if screenshots().is_some() {
        browser.window(PHONE);
        browser.goto(&format!("{}/apps/shop", server.url));
        browser.await_element("tr[data-release='v3']");
        shoot(&browser, "app-phone");
        browser.window(DESKTOP);
        browser.delete_cookies();
        browser.goto(&format!("{}/login", server.url));
        browser.await_element("#token");
        shoot(&browser, "login");
    }
}

/// Open a session as a script would: the cookie header and the CSRF secret.
fn session_of(client: &Client, server: &Server, token: &str) -> (String, String) {
    let r = client
        .post(format!("{}/dashboard/login", server.url))
        .json(&json!({ "token": token }))
        .send()
        .expect("login");
    assert_eq!(r.status(), 200);
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie")
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains(token), "the token is in the cookie");
    let cookie = set_cookie.split(';').next().expect("cookie").to_string();
    let body: Value = r.json().expect("session");
    (cookie, body["csrf"].as_str().expect("csrf").to_string())
}

#[test]
fn a_read_token_sees_no_changing_buttons_and_requests_without_csrf_are_refused() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start();
    server.ok(&["apps:create", "blog"]);
    let dir = app_dir();
    server.deploy("blog", dir.path());
    server.ok(&["config:set", "-a", "blog", "MODE=quiet"]);
    let client = Client::new();
    let made: Value = client
        .post(format!("{}/v1/tokens", server.url))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "viewer", "app": "blog", "scope": "read"}))
        .send()
        .expect("create token")
        .json()
        .expect("token");
    let read_token = made["token"].as_str().expect("token").to_string();

    // The pages carry a policy without inline code.
    let page = client.get(format!("{}/", server.url)).send().expect("page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // The read token's pages: everything to see, nothing to change.
    log_in(&browser, &server, &read_token);
    browser.goto(&format!("{}/apps/blog", server.url));
    browser.await_element("tr[data-release='v2']");
    browser.await_element("#processes tr[data-process='web.1']");
    browser.await_true(
        "the config names",
        "return document.querySelector('#config')?.textContent.includes('MODE');",
    );
    browser.await_true(
        "the add-ons panel (the read token may list them)",
        "return /No add-ons/.test(document.querySelector('#addons')?.textContent);",
    );
    let changing = browser.script(
        "return document.querySelectorAll('[data-changes], button.rollback, button.reveal, #scale-form').length;",
        json!([]),
    );
    assert_eq!(changing, json!(0), "a read token is offered changes");
    // Trying anyway, with the session's CSRF secret: refused by scope.
    let statuses = browser.async_script(
        "const done = arguments[0];
         (async () => {
           const s = await (await fetch('/dashboard/session')).json();
           const h = {'Content-Type': 'application/json', 'X-Dozen-CSRF': s.csrf};
           const scale = await fetch('/v1/apps/blog/formation', {method: 'PATCH', headers: h, body: '{\"web\": 2}'});
           const back = await fetch('/v1/apps/blog/rollback', {method: 'POST', headers: h, body: '{\"version\": \"v1\"}'});
           const config = await fetch('/v1/apps/blog/config');
           return [scale.status, back.status, config.status];
         })().then(done, e => done(String(e)));",
    );
    assert_eq!(statuses, json!([403, 403, 403]));

    // An admin session: without the CSRF secret a state change is refused, with it allowed.
    let (cookie, csrf) = session_of(&client, &server, TOKEN);
    let rollback = |csrf: Option<&str>| {
        let mut r = client
            .post(format!("{}/v1/apps/blog/rollback", server.url))
            .header("cookie", &cookie)
            .json(&json!({"version": "v1"}));
        if let Some(c) = csrf {
            r = r.header("x-dozen-csrf", c);
        }
        let r = r.send().expect("rollback");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let (status, body) = rollback(None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (status, body) = rollback(Some("not-the-secret"));
    assert_eq!(status, 403, "{body}");
    let releases = server.json(&["releases", "-a", "blog"]);
    assert_eq!(releases.as_array().map(Vec::len), Some(2), "{releases}");
    let (status, body) = rollback(Some(&csrf));
    assert_eq!(status, 200, "{body}");
    // Reading needs no CSRF secret; a logout ends the session.
    let read = |path: &str| {
        client
            .get(format!("{}{path}", server.url))
            .header("cookie", &cookie)
            .send()
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(read("/v1/apps/blog"), 200);
    let out = client
        .post(format!("{}/dashboard/logout", server.url))
        .header("cookie", &cookie)
        .header("x-dozen-csrf", &csrf)
        .send()
        .expect("logout");
    assert_eq!(out.status(), 204);
    assert_eq!(read("/v1/apps/blog"), 401);
    assert_eq!(read("/dashboard/session"), 401);

    // The same from the browser: a fetch without the header is refused.
    browser.delete_cookies();
    log_in(&browser, &server, TOKEN);
    let status = browser.async_script(
        "const done = arguments[0];
         fetch('/v1/apps/blog/rollback', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})
           .then(r => done(r.status), e => done(String(e)));",
    );
    assert_eq!(status, json!(403));
}

#[test]
fn a_session_survives_a_server_restart_and_the_log_page_reconnects_until_its_token_is_revoked() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let mut server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let dir = app_dir();
    server.deploy("shop", dir.path());
    server.await_state("shop", "web.1", "up");

    log_in(&browser, &server, TOKEN);
    browser.goto(&format!("{}/apps/shop/logs", server.url));
    browser.await_true(
        "the log stream to be live",
        "return document.querySelector('#log-status')?.textContent === 'live';",
    );
    visit(&server, "shop", "/before-the-restart");
    browser.await_true(
        "the line from before the restart",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent === 'request /before-the-restart');",
    );

    // The server stops: the page notices; it starts again on the same store and port: the page
    // reconnects with the same session, without a login, and the app's new lines arrive.
    server.stop();
    browser.await_true(
        "the page to notice the server is gone",
        "return document.querySelector('#log-status')?.textContent !== 'live';",
    );
    server.boot(std::process::Stdio::inherit());
    server.await_state("shop", "web.1", "up");
    browser.await_true(
        "the log stream to be live again",
        "return document.querySelector('#log-status')?.textContent === 'live';",
    );
    visit(&server, "shop", "/after-the-restart");
    browser.await_true(
        "the line from after the restart",
        "return [...document.querySelectorAll('#log-lines .line')].some(l => l.textContent === 'request /after-the-restart');",
    );
    assert_eq!(browser.path(), "/apps/shop/logs", "sent to the login");

    // A session of a token that is revoked ends at once, for the browser too.
    let made = server
        .admin(&["tokens:create", "laptop"])
        .output()
        .expect("tokens:create");
    assert!(made.status.success(), "{made:?}");
    let laptop = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let client = Client::new();
    let (cookie, _) = session_of(&client, &server, &laptop);
    let who = |cookie: &str| {
        client
            .get(format!("{}/dashboard/session", server.url))
            .header("cookie", cookie)
            .send()
            .expect("session")
            .status()
            .as_u16()
    };
    assert_eq!(who(&cookie), 200);
    browser.delete_cookies();
    log_in(&browser, &server, &laptop);
    browser.goto(&format!("{}/apps/shop/logs", server.url));
    browser.await_true(
        "the log stream to be live",
        "return document.querySelector('#log-status')?.textContent === 'live';",
    );
    let revoked = server
        .admin(&["tokens:revoke", "laptop"])
        .output()
        .expect("tokens:revoke");
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(who(&cookie), 401, "a revoked token's session still works");
    // The open stream ends and its reconnection is refused: the page says so, or its next
    // request is refused and it goes to the login.
    browser.await_true(
        "the page to say the session ended",
        "const s = document.querySelector('#log-status');
         return location.pathname === '/login' || (!!s && /session ended/.test(s.textContent));",
    );
}

#[test]
fn the_app_page_lists_add_ons_and_drains_never_their_secrets() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let server = Server::start_with(&[("DOZEN_ADDON_REDIS_URL", "redis://127.0.0.1:6379")]);
    // A name of its own: add-ons are real users on the host's Redis, shared by tests at once.
    let app = format!("dash{}", support::unique_tag());
    server.ok(&["apps:create", &app]);
    server.ok(&["addons:create", "redis", "-a", &app]);
    let url = server.ok(&["config:get", "-a", &app, "REDIS_URL"]);
    let url = url.trim();
    assert!(url.starts_with("redis://"), "{url}");

    log_in(&browser, &server, TOKEN);
    browser.goto(&format!("{}/apps/{app}", server.url));
    let row = browser.await_true(
        "the add-on in the add-ons panel",
        "const r = document.querySelector('#addons tr[data-addon]');
         return r ? r.textContent : null;",
    );
    let row = row.as_str().unwrap_or_default();
    assert!(
        row.contains(&format!("{app}-redis-1")) && row.contains("REDIS_URL"),
        "{row}"
    );
    let body = browser.text("body");
    assert!(!body.contains(url), "an add-on's URL is in the page");
    assert!(!body.contains("redis://"), "{body}");

    // A drain, with a password in its URL: listed with its numbers, the password hidden.
    server.ok(&[
        "drains:add",
        "https://collector:drain-secret-pw@127.0.0.1:1/logs",
        "-a",
        &app,
    ]);
    let drain = browser.await_true(
        "the drain in the drains panel",
        "const r = document.querySelector('#drains tr[data-drain]');
         return r ? r.textContent : null;",
    );
    let drain = drain.as_str().unwrap_or_default();
    assert!(
        drain.contains("https://collector:***@127.0.0.1:1/logs"),
        "{drain}"
    );
    assert!(!browser.text("body").contains("drain-secret-pw"));
    server.ok(&[
        "addons:destroy",
        &format!("{app}-redis-1"),
        "--confirm",
        &app,
    ]);
}
