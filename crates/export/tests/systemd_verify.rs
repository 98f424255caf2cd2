//! The units `dozen export systemd` writes pass `systemd-analyze verify` without a warning.

use std::process::Command;

use dozen_export::systemd::{SystemdOptions, units};
use dozen_export::{ProcessType, ReleaseSpec, output};

#[test]
fn exported_units_pass_systemd_analyze_verify() {
    let Some(systemd_analyze) = dozen_testkit::tool("systemd-analyze", "apt-get install systemd")
    else {
        return;
    };
    let release = ReleaseSpec {
        app: "shop".into(),
        version: 12,
        process_types: vec![
            ProcessType::new("web", "python3 -m http.server $PORT"),
            ProcessType::new("release", "./migrate"),
            ProcessType::new(
                "worker",
                "while true; do echo \"100% $(date)\"; sleep 1; done",
            ),
            ProcessType::new("clock_2", "./clock --every 5s # comment"),
        ],
        config: [
            (
                "DATABASE_URL".to_string(),
                "postgres://u:p@db/shop".to_string(),
            ),
            ("QUOTED".to_string(), "a \"b\" $c `d` \\e % 'f'".to_string()),
        ]
        .into(),
        formation: [
            ("web".to_string(), 2),
            ("worker".to_string(), 1),
            ("clock_2".to_string(), 1),
        ]
        .into(),
        grace_seconds: 20,
        health_check: None,
        boot_timeout: None,
        run_env: Default::default(),
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("units");
    let mut opts = SystemdOptions::new(tmp.path().join("app"), dir.join("shop.env"));
    opts.user = Some("shop".into());
    let files = units(&release, &opts).expect("units");
    output::write_into(&dir, &files).expect("written");

    let mut unit_files: Vec<_> = files
        .iter()
        .filter(|f| f.name.ends_with(".service") || f.name.ends_with(".target"))
        .map(|f| dir.join(&f.name))
        .collect();
    unit_files.sort();
    assert_eq!(unit_files.len(), 5, "a target and four instances");
    let out = Command::new(&systemd_analyze)
        .arg("verify")
        .args(&unit_files)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .output()
        .expect("runs systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stdout}{stderr}"
    );
    // Unknown keys and bad quoting are only warnings for verify: any output is a failure here.
    let complaints: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:#?}"
    );
}
