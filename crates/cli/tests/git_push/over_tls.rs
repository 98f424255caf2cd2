//! `git push` over the API's TLS, with a CA of the test's own: `dozen git:remote` run with
//! `DOZEN_CA_CERT` points git at it (`http.<server>.sslCAInfo`), and git without it refuses the
//! server's certificate.

use super::*;
use support::certs::Certs;

#[test]
fn push_over_https_trusts_the_ca_that_git_remote_sets() {
    if !git_available() {
        return;
    }
    let certs = Certs::make();
    let server = Server::start_with(&[
        ("DOZEN_API_TLS_CERT", &certs.str("cert.pem")),
        ("DOZEN_API_TLS_KEY", &certs.str("key.pem")),
    ]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = certs.path("ca.pem");
    let out = server
        .client_command(&["apps:create", "shop"])
        .env("DOZEN_CA_CERT", &ca)
        .output()
        .expect("dozen");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let v1 = app_files("page over tls");
    let c = Checkout::trusting(&server, "shop", &files(&v1), Some(&ca));
    let origin = server.url.trim_end_matches('/');
    let key = format!("http.{origin}.sslCAInfo");
    let set = c.git_ok(&["config", "--local", "--get", &key]);
    assert_eq!(Path::new(&set), ca.as_path());

    // GIT_SSL_CAINFO, where a host sets it, wins over that setting: git:remote says so.
    let mut again = Command::new(dozen_bin());
    again.args(["git:remote", "-a", "shop"]);
    c.env(&mut again);
    let out = again
        .env("GIT_SSL_CAINFO", "/etc/ssl/certs/ca-certificates.crt")
        .env("DOZEN_CA_CERT", &ca)
        .output()
        .expect("git:remote");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt is set"),
        "{}",
        text(&out.stderr)
    );

    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    assert!(out.contains("v1 is live"), "{out}");
    assert_eq!(page(&server, "shop"), "page over tls");
    // The credential helper answers for the https origin too (the token never is in the URL).
    let remote = c.git_ok(&["remote", "get-url", "dozen"]);
    assert_eq!(remote, format!("{origin}/git/shop.git"));

    // Without the CA, git refuses the server's certificate and nothing is sent.
    c.git_ok(&["config", "--local", "--unset", &key]);
    let second = c.commit(&[("index.html", "second page\n")], "second");
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(!ok, "{out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    assert_eq!(page(&server, "shop"), "page over tls");

    // GIT_SSL_CAINFO is the other way to give git the CA.
    let out = c
        .git_command(&["push", "dozen", "main"])
        .env("GIT_SSL_CAINFO", &ca)
        .stdin(Stdio::null())
        .output()
        .expect("git push");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(page(&server, "shop"), "second page");
    let out = server
        .client_command(&["releases", "-a", "shop", "--json"])
        .env("DOZEN_CA_CERT", &ca)
        .output()
        .expect("dozen releases");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r[0]["commit"], second.as_str(), "{r}");
}
