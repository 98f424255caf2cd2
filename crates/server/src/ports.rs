//! The `PORT` each process gets: free on loopback, and never the port of another live process.
//!
//! The kernel names a free port when asked to bind port 0, and can name the same one again as
//! soon as that socket is closed, before the process given it has bound it. Two processes
//! started together could get the same `PORT` (seen in the crash tests: a worker given web.1's
//! port, then reported `up` because web.1 listened on it; a second web process would have
//! failed to bind). A [`Lease`] keeps its port out of reach of every other process of this
//! server until it is dropped, with the process.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::platform::PlatformError;

/// Ports leased now, by every runtime of this server process.
static LEASED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How often the kernel may name a leased port before we give up.
const TRIES: usize = 64;

fn leased() -> std::sync::MutexGuard<'static, BTreeSet<u16>> {
    LEASED.lock().unwrap_or_else(|p| p.into_inner())
}

/// A port given to one process; free again for others once dropped.
#[derive(Debug)]
pub struct Lease {
    port: u16,
}

impl Lease {
    /// A free loopback port that no live process of this server was given.
    pub fn take() -> Result<Lease, PlatformError> {
        Lease::take_from(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            Ok(l.local_addr()?.port())
        })
    }

    /// The first port `free` names that is not leased; `free` is asked at most [`TRIES`] times.
    fn take_from(mut free: impl FnMut() -> std::io::Result<u16>) -> Result<Lease, PlatformError> {
        for _ in 0..TRIES {
            let port = free().map_err(|e| PlatformError::internal("finding a free port", e))?;
            if leased().insert(port) {
                return Ok(Lease { port });
            }
        }
        Err(PlatformError::internal(
            "finding a free port",
            format!("the kernel named {TRIES} ports in a row that other processes were given"),
        ))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        leased().remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_named_twice_is_leased_once() {
        // The kernel's answer, repeated as it was in the crash test. Ports far below the
        // ephemeral range, so that the kernel-backed test cannot hold them.
        let named = [1001u16, 1001, 1001, 1002];
        let mut next = named.iter().copied();
        let mut free = || Ok(next.next().unwrap_or(1001));
        let first = Lease::take_from(&mut free).unwrap();
        let second = Lease::take_from(&mut free).unwrap();
        assert_eq!((first.port(), second.port()), (1001, 1002));
        // Only 1001 from now on: taken, so no lease.
        assert!(Lease::take_from(&mut free).is_err());
        drop(first);
        assert_eq!(Lease::take_from(&mut free).unwrap().port(), 1001);
    }

    #[test]
    fn a_leased_port_is_not_given_again_until_it_is_dropped() {
        // Many at once: the kernel reuses a closed port readily, so without the lease some of
        // these would collide.
        let leases: Vec<Lease> = (0..2000).map(|_| Lease::take().unwrap()).collect();
        let ports: BTreeSet<u16> = leases.iter().map(Lease::port).collect();
        assert_eq!(ports.len(), leases.len());
        let one = leases[0].port();
        assert!(leased().contains(&one));
        drop(leases);
        assert!(!leased().contains(&one));
    }
}
