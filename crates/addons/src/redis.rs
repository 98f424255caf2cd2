//! Redis add-ons: an ACL user (Redis 6 and later) allowed the keys `<addon>:*` and the
//! channels `<addon>:*` only, and no dangerous commands (`FLUSHALL`, `KEYS`, `CONFIG`, ...).
//! A server without ACLs is refused with a message saying so.
//!
//! The client is our own: the few commands needed (`AUTH`, `ACL`, `SCAN`, `UNLINK`) over RESP2,
//! about a hundred lines, instead of a Redis crate and its dependencies. A reply larger than
//! [`MAX_REPLY_BYTES`] is refused (the connection is dropped), so a hostile or broken server
//! cannot make dozen buffer without bound.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{AddonError, AdminUrl, Service, target, timed};

const SERVICE: Service = Service::Redis;

/// The largest reply (one bulk string, or all of one array) the client reads.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// The most elements of one array reply.
const MAX_ARRAY: usize = 100_000;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn command(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.io.get_mut().write_all(&out).await?;
        let mut budget = MAX_REPLY_BYTES;
        read_reply(&mut self.io, &mut budget, 0).await
    }
}

fn too_big() -> std::io::Error {
    std::io::Error::other(format!("a reply over {MAX_REPLY_BYTES} bytes"))
}

async fn read_line(io: &mut BufReader<TcpStream>, budget: &mut usize) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut limited = (&mut *io).take(*budget as u64 + 1);
    limited.read_until(b'\n', &mut line).await?;
    if line.len() > *budget {
        return Err(too_big());
    }
    *budget -= line.len();
    if !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection mid-reply",
        ));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn number(s: &str) -> std::io::Result<i64> {
    s.parse()
        .map_err(|_| std::io::Error::other("a malformed reply length"))
}

fn read_reply<'a>(
    io: &'a mut BufReader<TcpStream>,
    budget: &'a mut usize,
    depth: usize,
) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Reply>> + Send + 'a>> {
    Box::pin(async move {
        if depth > 4 {
            return Err(std::io::Error::other("a reply nested too deep"));
        }
        let line = read_line(io, budget).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(number(rest)?),
            "$" => {
                let n = number(rest)?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let n = usize::try_from(n).map_err(|_| too_big())?;
                    if n + 2 > *budget {
                        return Err(too_big());
                    }
                    let mut buf = vec![0u8; n + 2];
                    io.read_exact(&mut buf).await?;
                    *budget -= n + 2;
                    buf.truncate(n);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let n = number(rest)?;
                if n < 0 {
                    Reply::Array(None)
                } else {
                    let n = usize::try_from(n).map_err(|_| too_big())?;
                    if n > MAX_ARRAY {
                        return Err(too_big());
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(read_reply(io, budget, depth + 1).await?);
                    }
                    Reply::Array(Some(items))
                }
            }
            _ => return Err(std::io::Error::other("not a RESP reply")),
        })
    })
}

async fn connect(admin: &AdminUrl) -> Result<Conn, AddonError> {
    let u = target::parse(SERVICE, admin)?;
    if u.scheme() != "redis" {
        return Err(target::bad(
            SERVICE,
            "use a redis:// URL (TLS to Redis, rediss://, is not supported)",
        ));
    }
    let (host, port) = target::host_port(SERVICE, admin, 6379)?;
    let step = "connecting as admin";
    timed(SERVICE, admin, step, async {
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| AddonError::server(SERVICE, admin, step, e))?;
        let mut conn = Conn {
            io: BufReader::new(stream),
        };
        let user = url_decode(u.username());
        let pass = u.password().map(url_decode);
        let auth = match (&pass, user.is_empty()) {
            (Some(p), true) => Some(conn.command(&[b"AUTH", p.as_bytes()]).await),
            (Some(p), false) => Some(
                conn.command(&[b"AUTH", user.as_bytes(), p.as_bytes()])
                    .await,
            ),
            (None, _) => None,
        };
        if let Some(r) = auth {
            expect_ok(r, admin, "authenticating as admin")?;
        }
        Ok(conn)
    })
    .await
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn expect_ok(r: std::io::Result<Reply>, admin: &AdminUrl, step: &str) -> Result<Reply, AddonError> {
    match r {
        Ok(Reply::Error(e)) => Err(AddonError::server(SERVICE, admin, step, e)),
        Ok(reply) => Ok(reply),
        Err(e) => Err(AddonError::server(SERVICE, admin, step, e)),
    }
}

async fn step(
    conn: &mut Conn,
    admin: &AdminUrl,
    step: &str,
    args: &[&[u8]],
) -> Result<Reply, AddonError> {
    timed(SERVICE, admin, step, async {
        let r = conn.command(args).await;
        expect_ok(r, admin, step)
    })
    .await
}

pub(crate) async fn provision(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    let mut conn = connect(admin).await?;
    // Fails on a server without ACLs (before Redis 6), which cannot keep add-ons apart by user.
    step(
        &mut conn,
        admin,
        "checking the server has ACLs",
        &[b"ACL", b"WHOAMI"],
    )
    .await?;
    let exists = step(
        &mut conn,
        admin,
        "looking for the user",
        &[b"ACL", b"GETUSER", name.as_bytes()],
    )
    .await?;
    if exists != Reply::Array(None) && exists != Reply::Bulk(None) {
        return Err(AddonError::server(
            SERVICE,
            admin,
            "creating the user",
            format!("a user {name} already exists"),
        ));
    }
    let pass = format!(">{password}");
    let keys = format!("~{name}:*");
    let channels = format!("&{name}:*");
    step(
        &mut conn,
        admin,
        "creating the user",
        &[
            b"ACL",
            b"SETUSER",
            name.as_bytes(),
            b"reset",
            b"on",
            pass.as_bytes(),
            keys.as_bytes(),
            channels.as_bytes(),
            b"+@all",
            b"-@dangerous",
            b"-@admin",
        ],
    )
    .await?;
    save_acl(&mut conn).await;
    Ok(())
}

/// `ACL SAVE` when the server keeps its users in an ACL file (otherwise they live in memory
/// and in the server's config rewrite, which is the operator's choice).
async fn save_acl(conn: &mut Conn) {
    let _ = conn.command(&[b"ACL", b"SAVE"]).await;
}

pub(crate) async fn set_password(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    let mut conn = connect(admin).await?;
    let pass = format!(">{password}");
    step(
        &mut conn,
        admin,
        "setting the user's password",
        &[
            b"ACL",
            b"SETUSER",
            name.as_bytes(),
            b"resetpass",
            pass.as_bytes(),
        ],
    )
    .await?;
    save_acl(&mut conn).await;
    Ok(())
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    let mut conn = connect(admin).await?;
    // Deleting the user also disconnects its clients.
    step(
        &mut conn,
        admin,
        "deleting the user",
        &[b"ACL", b"DELUSER", name.as_bytes()],
    )
    .await?;
    save_acl(&mut conn).await;
    let pattern = format!("{name}:*");
    let mut cursor = b"0".to_vec();
    loop {
        let reply = step(
            &mut conn,
            admin,
            "finding the add-on's keys",
            &[
                b"SCAN",
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"1000",
            ],
        )
        .await?;
        let Reply::Array(Some(parts)) = reply else {
            return Err(AddonError::server(
                SERVICE,
                admin,
                "finding the add-on's keys",
                "an unexpected reply to SCAN",
            ));
        };
        let mut parts = parts.into_iter();
        let (Some(Reply::Bulk(Some(next))), Some(Reply::Array(Some(keys)))) =
            (parts.next(), parts.next())
        else {
            return Err(AddonError::server(
                SERVICE,
                admin,
                "finding the add-on's keys",
                "an unexpected reply to SCAN",
            ));
        };
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter_map(|k| match k {
                Reply::Bulk(Some(k)) => Some(k),
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            let mut args: Vec<&[u8]> = vec![b"UNLINK"];
            args.extend(keys.iter().map(Vec::as_slice));
            step(&mut conn, admin, "deleting the add-on's keys", &args).await?;
        }
        if next == b"0" {
            return Ok(());
        }
        cursor = next;
    }
}
