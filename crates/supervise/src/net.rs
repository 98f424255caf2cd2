//! Whether a TCP port is being listened on, read from `/proc/net/tcp{,6}` (no connection is
//! made, so the app sees no stray request).

use std::fs;

/// True when some socket on this host listens on TCP `port` (IPv4 or IPv6, any address).
pub fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .any(|path| fs::read_to_string(path).is_ok_and(|table| table_listens(&table, port)))
}

fn table_listens(table: &str, port: u16) -> bool {
    // Each row: sl local_address rem_address st ...; local_address is HEXIP:HEXPORT and the
    // state 0A is LISTEN.
    table.lines().skip(1).any(|row| {
        let mut fields = row.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        state == Some("0A")
            && local
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_rows() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n   0: 0100007F:1388 00000000:0000 0A 00000000:00000000\n   1: 0100007F:1389 0100007F:9C40 01 00000000:00000000\n";
        assert!(table_listens(table, 5000));
        assert!(!table_listens(table, 5001), "established, not listening");
    }

    #[test]
    fn sees_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        assert!(is_listening(port));
    }
}
