//! Add-on backups kept in an S3-compatible bucket (`DOZEN_BACKUP_S3_URL`): a real S3 server
//! (moto's, from PyPI, with authentication on, so every request's Signature Version 4 is
//! checked by botocore's signer), a PostgreSQL add-on big enough to go up in parts, restored
//! from the bucket, refused with a wrong key, and removed with its add-on.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::support::server::{Server, pg_admin_url};
use super::support::unique_tag;
use super::{config_get, psql, tool};

/// The S3 server of `support/s3_peer.py`, stopped when dropped (its stdin closes).
struct S3Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
}

impl S3Peer {
    fn start() -> Option<S3Peer> {
        let has_moto = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_moto {
            dozen_testkit::unavailable(
                "the Python package moto[server]",
                "it is not installed",
                "python3 -m pip install 'moto[server]'",
            );
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/s3_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 s3_peer.py");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the S3 server's first line");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the S3 server did not start ({e}): {line:?}"));
        let field = |k: &str| v[k].as_str().expect(k).to_string();
        Some(S3Peer {
            endpoint: field("endpoint"),
            bucket: field("bucket"),
            access_key_id: field("access_key_id"),
            secret_access_key: field("secret_access_key"),
            child,
            stdin,
            stdout,
        })
    }

    fn ask(&mut self, command: &str) -> serde_json::Value {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("to the S3 server");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("from the S3 server");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{command}: {e}: {line:?}"))
    }

    /// The bucket's objects: (key, size).
    fn objects(&mut self) -> Vec<(String, i64)> {
        self.ask("list")
            .as_array()
            .expect("a list")
            .iter()
            .map(|o| {
                (
                    o[0].as_str().expect("key").to_string(),
                    o[1].as_i64().expect("size"),
                )
            })
            .collect()
    }
}

impl Drop for S3Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn server_with_bucket(peer: &S3Peer, secret: &str) -> Server {
    Server::start_with(&[
        ("DOZEN_ADDON_POSTGRESQL_URL", &pg_admin_url()),
        (
            "DOZEN_BACKUP_S3_URL",
            &format!("{}/{}/one-server", peer.endpoint, peer.bucket),
        ),
        ("DOZEN_BACKUP_S3_ACCESS_KEY_ID", &peer.access_key_id),
        ("DOZEN_BACKUP_S3_SECRET_ACCESS_KEY", secret),
        // The smallest S3 allows, so that a dump of some MiB goes up in several parts.
        ("DOZEN_BACKUP_S3_PART_SIZE", "5MiB"),
    ])
}

#[test]
fn postgresql_backups_go_to_an_s3_bucket_and_come_back_from_it() {
    let (Some(_), Some(_), Some(_)) = (
        tool("psql", "apt-get install postgresql-client"),
        tool("pg_dump", "apt-get install postgresql-client"),
        tool("pg_restore", "apt-get install postgresql-client"),
    ) else {
        return;
    };
    let Some(mut peer) = S3Peer::start() else {
        return;
    };
    let server = server_with_bucket(&peer, &peer.secret_access_key.clone());
    let app = format!("s3b{}", unique_tag());
    server.ok(&["apps:create", &app]);
    server.ok(&["addons:create", "postgresql", "-a", &app]);
    let addon = format!("{app}-postgresql-1");
    let url = config_get(&server, &app, "DATABASE_URL");

    // Data, and 12 MiB of random bytes (the dump cannot compress them): three parts of 5 MiB.
    let (ok, out) = psql(
        &url,
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL); \
         INSERT INTO kv VALUES ('colour', 'blue'); \
         CREATE TABLE blobs (id INT PRIMARY KEY, data BYTEA NOT NULL); \
         INSERT INTO blobs SELECT i, decode(string_agg(md5(random()::text || j), ''), 'hex') \
           FROM generate_series(1, 12) i, generate_series(1, 65536) j GROUP BY i",
    );
    assert!(ok, "{out}");
    let (ok, digest) = psql(
        &url,
        "SELECT md5(string_agg(data, '' ORDER BY id)) FROM blobs",
    );
    assert!(ok, "{digest}");

    let captured = server.ok(&["pg:backups:capture", "-a", &app]);
    assert!(captured.contains("b001"), "{captured}");
    let key = format!("one-server/{addon}/b001.dump");
    let location = format!("s3://{}/{key}", peer.bucket);
    let listed = server.json(&["pg:backups", "-a", &app]);
    assert_eq!(listed[0]["location"], location.as_str(), "{listed}");
    let size = listed[0]["size"].as_i64().expect("size");
    assert!(size > 12 << 20, "{listed}");
    assert_eq!(
        peer.objects(),
        [(key.clone(), size)],
        "the dump is in the bucket, whole"
    );
    assert_eq!(
        peer.ask("uploads"),
        serde_json::json!([]),
        "no upload left open"
    );
    let table = server.ok(&["pg:backups", "-a", &app]);
    assert!(table.contains(&location), "{table}");
    let dir = server.data.path().join("backups").join(&addon);
    let local: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        local.is_empty(),
        "nothing is kept in the data directory: {local:?}"
    );
    server.await_log(&app, &format!("captured ({size} bytes) to {location}"));

    // Damage, then restore from the bucket.
    let (ok, out) = psql(
        &url,
        "UPDATE kv SET v = 'damaged'; DELETE FROM blobs WHERE id > 6",
    );
    assert!(ok, "{out}");
    server.ok(&["pg:backups:restore", "b001", "-a", &app, "--confirm", &app]);
    assert_eq!(psql(&url, "SELECT v FROM kv WHERE k = 'colour'").1, "blue");
    assert_eq!(
        psql(
            &url,
            "SELECT md5(string_agg(data, '' ORDER BY id)) FROM blobs"
        )
        .1,
        digest
    );
    server.await_log(&app, &format!("restored {addon} from backup b001"));
    let local: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        local.is_empty(),
        "the download is removed after the restore: {local:?}"
    );

    // A server with a wrong secret: the bucket refuses its signature, nothing is recorded, and
    // neither secret is in what the user sees.
    let wrong_secret = "not-the-secret-0123456789";
    let wrong = server_with_bucket(&peer, wrong_secret);
    let other = format!("s3w{}", unique_tag());
    wrong.ok(&["apps:create", &other]);
    wrong.ok(&["addons:create", "postgresql", "-a", &other]);
    let refused = wrong.client(&["pg:backups:capture", "-a", &other]);
    assert_ne!(refused.code(), Some(0));
    assert!(
        refused.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        refused.stderr
    );
    for secret in [wrong_secret, peer.secret_access_key.as_str()] {
        assert!(!refused.stderr.contains(secret), "{}", refused.stderr);
    }
    assert_eq!(
        wrong.json(&["pg:backups", "-a", &other]),
        serde_json::json!([])
    );
    assert_eq!(peer.objects().len(), 1, "nothing reached the bucket");
    wrong.ok(&[
        "addons:destroy",
        &format!("{other}-postgresql-1"),
        "--confirm",
        &other,
    ]);

    // Destroying the add-on removes its backups from the bucket too.
    server.ok(&["addons:destroy", &addon, "--confirm", &app]);
    assert_eq!(peer.objects(), [], "the add-on's backups went with it");
}
