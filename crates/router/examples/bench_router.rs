//! dozen's router for the benchmark: routes Host `bench.localhost` to the given backends.
//! Access events go through a bounded channel to a task that formats each line, as `dozen server`
//! does with its log stream. Stops on SIGTERM or Ctrl-C.
//!
//! `cargo run --release -p dozen-router --example bench_router -- --listen 127.0.0.1:8080 --backend 127.0.0.1:5001 [--backend ...] [--balance lor|rr] [--threads 2]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dozen_router::{AccessEvent, BackendSpec, Balance, Router, RouterConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let values = |name: &str| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    };
    let listen: SocketAddr = values("--listen")
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let backends: Vec<BackendSpec> = values("--backend")
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.parse()
                .ok()
                .map(|addr| BackendSpec::new(format!("web.{}", i + 1), addr))
        })
        .collect();
    let balance = match values("--balance").first().map(String::as_str) {
        Some("rr") => Balance::RoundRobin,
        _ => Balance::LeastOutstanding,
    };
    let threads: usize = values("--threads")
        .first()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, AccessEvent)>(4096);
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_in_callback = Arc::clone(&dropped);
        let on_access = Arc::new(move |app: &str, event: AccessEvent| {
            if tx.try_send((app.to_owned(), event)).is_err() {
                dropped_in_callback.fetch_add(1, Ordering::Relaxed);
            }
        });
        let lines = tokio::spawn(async move {
            let (mut count, mut bytes) = (0u64, 0usize);
            while let Some((_app, event)) = rx.recv().await {
                count += 1;
                bytes += event.to_line().len();
            }
            (count, bytes)
        });
        let router = Router::new(
            RouterConfig {
                balance,
                ..RouterConfig::default()
            },
            on_access,
        );
        router.set_app("bench", &[], backends);
        let listener = TcpListener::bind(listen).await?;
        println!(
            "router listening on {} ({balance:?})",
            listener.local_addr()?
        );
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        router.serve(listener, stop).await?;
        lines.abort();
        eprintln!(
            "router stopped; access events dropped at the bound: {}",
            dropped.load(Ordering::Relaxed)
        );
        Ok(())
    })
}
