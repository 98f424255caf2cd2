//! TLS: certificates from PEM files, picked by the client's SNI name.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsSettings;
use crate::error::RouterError;

/// The rustls server configuration for `tls` (ring provider, ALPN `h2` then `http/1.1`). Call it
/// at start-up to report bad certificate files before serving.
pub fn server_config(tls: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, RouterError> {
    if tls.certs.is_empty() {
        return Err(RouterError::NoCertificates);
    }
    let provider = Arc::new(ring::default_provider());
    let mut by_name = HashMap::new();
    for (domain, cert, key) in &tls.certs {
        let certified = load(domain, cert, key, &provider)?;
        by_name.insert(
            domain.trim_end_matches('.').to_ascii_lowercase(),
            Arc::new(certified),
        );
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| RouterError::Tls {
            domain: "*".into(),
            source,
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { by_name }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn load(
    domain: &str,
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, RouterError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| RouterError::TlsFile {
            what: "certificate",
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(RouterError::TlsFile {
            what: "certificate",
            path: cert.to_owned(),
            reason: "no CERTIFICATE section".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| RouterError::TlsFile {
        what: "private key",
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| RouterError::Tls {
            domain: domain.to_owned(),
            source,
        })?;
    Ok(CertifiedKey::new(certs, signing))
}

/// Exact name, then `*.parent`, then `*`.
#[derive(Debug)]
struct BySni {
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(found) = self.by_name.get(&name) {
                return Some(Arc::clone(found));
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(found) = self.by_name.get(&format!("*.{parent}")) {
                    return Some(Arc::clone(found));
                }
            }
        }
        self.by_name.get("*").cloned()
    }
}
