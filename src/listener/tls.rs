//! TLS listeners with mandatory client certificates, the way `dockerd --tlsverify` works.
//!
//! The server certificate, its key and the client CA are loaded when the configuration is
//! validated, so `sockwarden check` reports an unreadable or mismatched file. Every client
//! must present a certificate that chains to the configured CA; its subject common name and
//! subject alternative names are what `[[client]]` entries match (`cert_cn`, `cert_san`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::error::ConfigError;

/// A TLS listener's settings: the files as configured and the server config built from them.
#[derive(Clone)]
pub struct TlsSettings {
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server private key (PEM).
    pub key: PathBuf,
    /// The CA that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
    /// The rustls configuration built from the files.
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

/// Two settings are equal when they name the same files.
impl PartialEq for TlsSettings {
    fn eq(&self, other: &Self) -> bool {
        self.cert == other.cert && self.key == other.key && self.client_ca == other.client_ca
    }
}

impl Eq for TlsSettings {}

fn error(name: &str, key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{name}.{key}: {message}"))
}

fn read(name: &str, key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    if !path.is_absolute() {
        return Err(error(name, key, "must be an absolute path"));
    }
    std::fs::read(path)
        .map_err(|e| error(name, key, format!("cannot read {}: {e}", path.display())))
}

fn certificates(
    name: &str,
    key: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(name, key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(name, key, format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(error(
            name,
            key,
            format!("no CERTIFICATE found in {}", path.display()),
        ));
    }
    Ok(certs)
}

/// Loads and checks the three files of listener `name` (`listen[1]`).
pub fn load(
    name: &str,
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
) -> Result<TlsSettings, ConfigError> {
    let chain = certificates(name, "tls_cert", &cert)?;
    let key_pem = read(name, "tls_key", &key)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        error(
            name,
            "tls_key",
            format!("no usable private key in {}: {e}", key.display()),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for ca in certificates(name, "tls_client_ca", &client_ca)? {
        roots.add(ca).map_err(|e| {
            error(
                name,
                "tls_client_ca",
                format!("{}: unusable CA certificate: {e}", client_ca.display()),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| error(name, "tls_client_ca", e))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(name, "tls_cert", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            error(
                name,
                "tls_key",
                format!("does not fit the certificate in {}: {e}", cert.display()),
            )
        })?;
    Ok(TlsSettings {
        cert,
        key,
        client_ca,
        config: Arc::new(config),
    })
}

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject distinguished name, as text (`CN=ci-bot, O=example`).
    pub subject: String,
    /// The subject's common names.
    pub common_names: Vec<String>,
    /// Subject alternative names: DNS names, email addresses, URIs and IP addresses, as text.
    pub sans: Vec<String>,
}

impl ClientCert {
    /// Reads the end-entity certificate (already verified by rustls).
    pub fn parse(der: &[u8]) -> Option<ClientCert> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject().to_string();
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for general in &ext.value.general_names {
                match general {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        sans.push((*s).to_owned())
                    }
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            sans.push(std::net::Ipv4Addr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            sans.push(std::net::Ipv6Addr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(ClientCert {
            subject,
            common_names,
            sans,
        })
    }
}
