//! The audit never fails or panics because of what is inside the repository.

use std::fs;

use dozen_doctor::{Options, audit};

#[test]
fn odd_files_do_not_break_the_audit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    fs::create_dir_all(root.join(".git")).expect(".git");
    // Not UTF-8, with a credential-looking tail.
    fs::write(
        root.join("latin1.py"),
        b"PASSWORD = '\xe9t\xe9-S3cr3t-\xff\xfe'\n",
    )
    .expect("write");
    // Binary (NUL bytes) with a token inside: skipped.
    let mut bin = vec![0u8, 1, 2, 3];
    bin.extend_from_slice(concat!("AKIA", "Z3MXQ7PLR2VD4KTB").as_bytes());
    fs::write(root.join("blob.dat"), bin).expect("write");
    // Larger than the bound: not read.
    let big = "x = 1\n".repeat(400_000);
    fs::write(root.join("big.py"), big).expect("write");
    // Broken manifests and start files.
    fs::write(root.join("package.json"), "{ not json").expect("write");
    fs::write(root.join("Procfile"), "web\n:\n: nothing\nweb: \n\u{0}\n").expect("write");
    fs::write(
        root.join("Dockerfile"),
        "FROM\nCMD [\"unterminated\nENTRYPOINT \\\n",
    )
    .expect("write");
    fs::write(
        root.join("twelve-factor.toml"),
        b"\xff\xfe[[deviation]]\nrule = 3\n",
    )
    .expect("write");
    fs::write(root.join("docker-compose.yml"), "image:\nimage: :\n").expect("write");
    fs::write(
        root.join("config.yaml"),
        "apiVersion: v1\nkind: Secret\ndata:\n",
    )
    .expect("write");
    fs::write(root.join("empty.rb"), "").expect("write");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("missing-target"), root.join("dangling"))
            .expect("symlink");
        // A FIFO must not be opened (reading it would block).
        if dozen_testkit::tool("mkfifo", "apt-get install coreutils").is_some() {
            let made = std::process::Command::new("mkfifo")
                .arg(root.join("pipe"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(made, "mkfifo could not make a FIFO");
        }
    }
    let report = audit(&Options::new(root)).expect("audit succeeds on odd files");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == "TF00-DEVIATIONS-INVALID")
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.file.as_deref() == Some("blob.dat"))
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.file.as_deref() == Some("big.py"))
    );
    let mut out = Vec::new();
    report
        .render_human(&mut out, true, dozen_doctor::FailOn::default())
        .expect("human");
    report.render_json(&mut out).expect("json");
    report.render_sarif(&mut out).expect("sarif");
}

#[test]
fn a_missing_or_file_root_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = audit(&Options::new(tmp.path().join("nope"))).expect_err("missing root");
    assert!(missing.to_string().contains("nope"), "{missing}");
    let file = tmp.path().join("f");
    fs::write(&file, "x").expect("write");
    let not_dir = audit(&Options::new(&file)).expect_err("file root");
    assert!(not_dir.to_string().contains("not a directory"), "{not_dir}");
}
