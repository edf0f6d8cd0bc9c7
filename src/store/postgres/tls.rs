//! TLS to PostgreSQL. Whenever a connection is encrypted (`sslmode=prefer`,
//! the default, when the server offers it; `sslmode=require`), the server's
//! certificate is verified against the Mozilla roots and, for a private CA
//! (a cloud provider's bundle, a company CA), the PEM certificates in
//! `database.ca_file`. `sslmode=disable` in the URL connects in plain text.

use crate::store::StoreError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector every connection of the store uses.
pub(super) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |reason: String| {
            StoreError::Backend(format!(
                "database.ca_file {}: {reason}; expected PEM certificates (-----BEGIN CERTIFICATE-----)",
                path.display()
            ))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_not_pem_certificates_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let Err(StoreError::Backend(message)) = connector(Some(&path)) else {
            panic!("a file without certificates was accepted");
        };
        assert!(message.contains("no certificate in it"), "{message}");
        let missing = dir.path().join("missing.pem");
        let Err(StoreError::Backend(message)) = connector(Some(&missing)) else {
            panic!("a missing file was accepted");
        };
        assert!(message.contains("missing.pem") && message.contains("PEM"), "{message}");
    }
}
