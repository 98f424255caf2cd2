//! The slowdown of bad tokens: an address that presents [`LIMIT`] wrong tokens within
//! [`WINDOW`] gets `429 Too Many Requests` (with `Retry-After`) for every request that carries
//! a token, good or bad, until the window has passed. Answering a good token normally would tell
//! a guesser when it had found one.
//!
//! The table holds at most [`MAX_ADDRESSES`] addresses; when it is full, expired entries go
//! first, then the one whose window began longest ago. IPv6 addresses count per /64, the block
//! one host usually has, so that one host cannot spread its guesses over many addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Bad tokens one address may present within [`WINDOW`] before it is refused.
pub const LIMIT: u32 = 5;
/// How long failures count, and how long an address is refused once it reached [`LIMIT`].
pub const WINDOW: Duration = Duration::from_secs(60);
/// The most addresses remembered at once.
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// Bad tokens per address, bounded.
#[derive(Debug, Default)]
pub struct BadTokens {
    by_address: HashMap<IpAddr, Failures>,
}

/// What counts as one address.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

impl BadTokens {
    /// How long `ip` must wait before its next request is looked at, when it is refused now.
    pub fn refused_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let f = self.by_address.get(&key(ip))?;
        let age = now.saturating_duration_since(f.since);
        (f.count >= LIMIT && age < WINDOW).then(|| WINDOW - age)
    }

    /// Count a bad token from `ip`. True when this failure is the one that reached the limit.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> bool {
        let k = key(ip);
        if !self.by_address.contains_key(&k) && self.by_address.len() >= MAX_ADDRESSES {
            self.make_room(now);
        }
        let f = self.by_address.entry(k).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now.saturating_duration_since(f.since) >= WINDOW {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count = f.count.saturating_add(1);
        f.count == LIMIT
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    /// True when no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        self.by_address
            .retain(|_, f| now.saturating_duration_since(f.since) < WINDOW);
        while self.by_address.len() >= MAX_ADDRESSES {
            let oldest = self
                .by_address
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => self.by_address.remove(&k),
                None => break,
            };
        }
    }
}

/// The address a request without a known peer (a test calling the router directly) counts as.
pub const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_limit_refuses_an_address_for_the_rest_of_the_window() {
        let mut t = BadTokens::default();
        let start = Instant::now();
        let a = ip("192.0.2.1");
        for n in 1..LIMIT {
            assert!(!t.failed(a, start), "failure {n}");
            assert_eq!(t.refused_for(a, start), None);
        }
        assert!(t.failed(a, start));
        let later = start + Duration::from_secs(20);
        assert_eq!(t.refused_for(a, later), Some(Duration::from_secs(40)));
        // Others are not affected.
        assert_eq!(t.refused_for(ip("192.0.2.2"), later), None);
        // The window passes: the address starts afresh.
        let after = start + WINDOW;
        assert_eq!(t.refused_for(a, after), None);
        assert!(!t.failed(a, after));
        assert_eq!(t.refused_for(a, after), None);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let mut t = BadTokens::default();
        let now = Instant::now();
        for n in 0..LIMIT {
            t.failed(ip(&format!("2001:db8:1:2::{n:x}")), now);
        }
        assert!(t.refused_for(ip("2001:db8:1:2::ffff"), now).is_some());
        assert!(t.refused_for(ip("2001:db8:1:3::1"), now).is_none());
        for _ in 0..LIMIT {
            t.failed(ip("::ffff:198.51.100.7"), now);
        }
        assert!(t.refused_for(ip("198.51.100.7"), now).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut t = BadTokens::default();
        let start = Instant::now();
        let blocked = ip("203.0.113.9");
        for _ in 0..LIMIT {
            t.failed(blocked, start + Duration::from_secs(1));
        }
        for n in 0..(MAX_ADDRESSES as u32 * 3) {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            t.failed(addr, start + Duration::from_secs(2));
            assert!(t.len() <= MAX_ADDRESSES);
        }
        assert_eq!(t.len(), MAX_ADDRESSES);
    }
}
