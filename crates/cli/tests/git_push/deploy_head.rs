//! `dozen deploy` from a git checkout records its HEAD, as a push would: the release's commit,
//! the `releases` table's COMMIT column, and a later push of that commit reusing the slug.

use super::*;

/// The row of `releases` (the table) for `vN`, split into its columns.
fn release_row(server: &Server, app: &str, version: i64) -> Vec<String> {
    let table = server.ok(&["releases", "-a", app]);
    let header = table.lines().next().expect("a header");
    assert!(header.contains("COMMIT"), "{table}");
    let v = format!("v{version}");
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.contains(&v))
        .unwrap_or_else(|| panic!("no row for {v} in {table}"))
}

#[test]
fn deploy_from_a_checkout_records_its_head_unless_it_has_changes() {
    if !git_available() {
        return;
    }
    let server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let v1 = app_files("committed page");
    let c = Checkout::new(&server, "shop", &files(&v1));
    let head = c.head();
    let short = &head[..7];

    // A clean checkout: the release is HEAD's, and says so.
    let out = c.dozen(&["deploy", "-a", "shop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(page(&server, "shop"), "committed page");
    let r = releases(&server, "shop");
    assert_eq!(r[0]["commit"], head.as_str(), "{r:?}");
    assert_eq!(r[0]["description"], format!("Deploy {short}"));
    let row = release_row(&server, "shop", 1);
    assert!(row.contains(&short.to_string()), "{row:?}");

    // A push of that commit deploys the slug `dozen deploy` built, without a build.
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    assert!(out.contains("was built before (v1)"), "{out}");
    let r = releases(&server, "shop");
    assert_eq!(r[0]["commit"], head.as_str());
    assert_eq!(r[0]["slug"], r[1]["slug"]);

    // Changes not committed (a new file too): deployed as they are, named after HEAD with
    // `-dirty`, and no commit recorded, so no later push of HEAD reuses this slug.
    std::fs::write(c.path().join("index.html"), "work in progress\n").expect("write");
    std::fs::write(c.path().join("notes.txt"), "untracked\n").expect("write");
    let out = c.dozen(&["deploy", "-a", "shop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("changes not committed") && err.contains(&format!("{short}-dirty")),
        "{err}"
    );
    assert_eq!(page(&server, "shop"), "work in progress");
    let r = releases(&server, "shop");
    assert!(r[0].get("commit").is_none(), "{:?}", r[0]);
    assert_eq!(r[0]["description"], format!("Deploy {short}-dirty"));
    let version = r[0]["version"].as_i64().expect("version");
    let row = release_row(&server, "shop", version);
    assert!(row.contains(&"-".to_string()), "{row:?}");
    assert!(!row.contains(&short.to_string()), "{row:?}");

    // A directory inside the checkout is not the commit's tree: no commit, and a note why.
    std::fs::create_dir(c.path().join("site")).expect("mkdir");
    for (name, content) in app_files("the site's page") {
        std::fs::write(c.path().join("site").join(name), content).expect("write");
    }
    c.commit(&[], "the site");
    let out = c.dozen(&["deploy", "-a", "shop", "-d", "site"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("inside the git checkout"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(page(&server, "shop"), "the site's page");
    assert!(releases(&server, "shop")[0].get("commit").is_none());

    // git:remote names the push that deploys the branch checked out: master deploys as main
    // does, another branch goes to main.
    let hint = |c: &Checkout| {
        let out = c.dozen(&["git:remote", "-a", "shop"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    c.git_ok(&["checkout", "--quiet", "-b", "master"]);
    assert!(hint(&c).contains("git push dozen master\n"), "{}", hint(&c));
    c.git_ok(&["checkout", "--quiet", "-b", "feature"]);
    assert!(
        hint(&c).contains("git push dozen feature:main"),
        "{}",
        hint(&c)
    );
}
