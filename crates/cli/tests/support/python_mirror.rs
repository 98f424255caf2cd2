//! A Python download mirror on loopback for tests/server_apps.rs: uv's downloads list
//! (`UV_PYTHON_DOWNLOADS_JSON_URL`) naming one CPython archive, both served over HTTP by a
//! thread of the test, which counts what it served.
//!
//! The archive stands in for a python-build-standalone `install_only` build, which builds reach
//! on GitHub and this machine cannot: it is made from one of the host's pyenv CPythons (3.12 or
//! newer) in the same layout (`python/bin`, `python/lib`), with the executable's library path
//! made relative (`$ORIGIN/../lib`, as those builds have it) by patchelf.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The mirror: where uv reads its list, and how often each path was fetched.
pub struct Mirror {
    pub json_url: String,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    _dir: tempfile::TempDir,
}

impl Mirror {
    /// How many times the archive was downloaded.
    pub fn archive_downloads(&self) -> usize {
        let hits = self.hits.lock().expect("hits");
        hits.iter()
            .filter(|(p, _)| p.ends_with(".tar.gz"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The newest pyenv CPython of 3.12 or later under `$PYENV_ROOT` (or `~/.pyenv`): its
/// directory and version. None when there is none.
pub fn pyenv_python() -> Option<(PathBuf, String)> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")))?;
    let mut found: Vec<((u32, u32, u32), PathBuf)> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let [a, b, c] = v[..] else { return None };
            let ok = a == 3 && b >= 12 && e.path().join(format!("bin/python{a}.{b}")).is_file();
            ok.then(|| ((a, b, c), e.path()))
        })
        .collect();
    found.sort();
    let ((a, b, c), dir) = found.pop()?;
    Some((dir, format!("{a}.{b}.{c}")))
}

/// Make the stand-in archive from the pyenv install `from` (version `version`) and serve it.
pub fn start(from: &Path, version: &str) -> Mirror {
    let dir = tempfile::tempdir().expect("tmp");
    let (major, minor) = {
        let mut p = version.split('.');
        (p.next().expect("major"), p.next().expect("minor"))
    };
    let lib = format!("python{major}.{minor}");
    let archive = format!("cpython-{version}-standin-install_only.tar.gz");
    // The test suite, caches and static libraries are left out (as in the stripped builds),
    // and so is what pyenv installed into site-packages.
    let script = format!(
        "set -e; mkdir -p stage/python; \
         tar -C {from} --exclude=./lib/{lib}/test --exclude=__pycache__ --exclude='*.a' \
           --exclude='./lib/{lib}/site-packages/*' -cf - . | tar -C stage/python -xf -; \
         patchelf --set-rpath '$ORIGIN/../lib' stage/python/bin/{lib}; \
         tar -C stage -cf - python | gzip -1 > {archive}; rm -rf stage",
        from = from.display(),
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "making the stand-in archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.path().join(&archive)).expect("archive");
    let sha = format!("{:x}", Sha256::digest(&bytes));

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (a, b, c) = {
        let v: Vec<u32> = version
            .split('.')
            .map(|p| p.parse().expect("num"))
            .collect();
        (v[0], v[1], v[2])
    };
    let key = format!("cpython-{version}-linux-x86_64-gnu");
    let json = serde_json::json!({
        key: {
            "name": "cpython",
            "arch": {"family": "x86_64", "variant": null},
            "os": "linux",
            "libc": "gnu",
            "major": a, "minor": b, "patch": c,
            "prerelease": "",
            "url": format!("http://127.0.0.1:{port}/{archive}"),
            "sha256": sha,
            "variant": null,
            "build": "20990101",
        }
    })
    .to_string();
    let files: Arc<BTreeMap<String, Vec<u8>>> = Arc::new(BTreeMap::from([
        ("/downloads.json".to_string(), json.into_bytes()),
        (format!("/{archive}"), bytes),
    ]));
    let hits = Arc::new(Mutex::new(BTreeMap::new()));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (files, hits) = (files.clone(), counted.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                // The rest of the head.
                loop {
                    let mut h = String::new();
                    match reader.read_line(&mut h) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if h == "\r\n" || h == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let mut out = &stream;
                match files.get(&path) {
                    Some(body) => {
                        *hits.lock().expect("hits").entry(path).or_insert(0) += 1;
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = out.write_all(body);
                    }
                    None => {
                        let _ = out.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                }
            });
        }
    });
    Mirror {
        json_url: format!("http://127.0.0.1:{port}/downloads.json"),
        hits,
        _dir: dir,
    }
}
