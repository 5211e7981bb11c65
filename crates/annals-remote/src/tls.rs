//! `tls_config` (Prometheus's common `TLSConfig`: `ca_file`, `cert_file`, `key_file`,
//! `server_name`, `insecure_skip_verify`) with rustls, and [`Connector`], hyper's HTTP
//! connector that speaks TLS to `https://` URIs. Shared by scrapes and remote write.
//!
//! Files are read when a [`TlsClient`] is built (configuration load and reload), so a missing
//! or broken file is a configuration error. Each new connection then checks whether a file
//! was replaced (size, modification time, inode) and, if so, reads them again, as Prometheus
//! re-reads its CA file per request and its client certificate per handshake: rotated
//! certificates apply without a reload. Files that no longer load keep the previous ones
//! (with a warning), never a failed request for a half-written file.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The `tls_config` block as written in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file of the CAs that sign the server's certificate (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`) for servers that require one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Name to verify the server's certificate against (and to send as SNI) instead of the
    /// URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate (the handshake's signatures are still checked).
    pub insecure_skip_verify: bool,
}

/// A loaded TLS client configuration.
#[derive(Clone)]
pub struct TlsClient {
    inner: Arc<Inner>,
}

struct Inner {
    server_name: Option<ServerName<'static>>,
    settings: TlsSettings,
    /// A hash of the files' contents when loaded: a reload after certificates were replaced
    /// in place must tell the configuration changed.
    files_hash: u64,
    current: parking_lot::Mutex<Loaded>,
}

/// The configuration built from the files as they were when `stamps` were taken.
struct Loaded {
    config: Arc<ClientConfig>,
    stamps: Vec<Stamp>,
    /// Hash of the files' contents `config` was built from.
    files_hash: u64,
}

/// What tells that a file was replaced or rewritten: size, modification time, inode.
type Stamp = Option<(u64, SystemTime, u64)>;

fn stamps(s: &TlsSettings) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    [&s.ca_file, &s.cert_file, &s.key_file]
        .into_iter()
        .flatten()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.len(), m.modified().ok()?, m.ino()))
        })
        .collect()
}

/// Shows the settings and the files' hash, so that comparing the `Debug` text of two
/// configurations tells whether TLS changed.
impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("settings", &self.inner.settings)
            .field(
                "files_hash",
                &format_args!("{:016x}", self.inner.files_hash),
            )
            .finish()
    }
}

/// The ring provider, as the server's web config uses (deprecated by rustls only for lacking
/// post-quantum key exchange, which Prometheus 2.42's Go TLS lacks too; see DESIGN.md).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    pem_certs(&data, path, what)
}

fn pem_certs(data: &[u8], path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut &data[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate found",
            path.display()
        ));
    }
    Ok(certs)
}

/// The system's CA bundle (`SSL_CERT_FILE`, else Debian's, Fedora's or Alpine's path), read
/// once on the first use of a client without `ca_file`. None found: no roots, so every
/// verified handshake fails with an unknown-issuer error naming the problem.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let candidates = std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .into_iter()
                .chain(
                    [
                        "/etc/ssl/certs/ca-certificates.crt",
                        "/etc/pki/tls/certs/ca-bundle.crt",
                        "/etc/ssl/cert.pem",
                    ]
                    .map(PathBuf::from),
                );
            for p in candidates {
                if let Ok(certs) = read_certs(&p, "CA bundle") {
                    roots.add_parsable_certificates(certs);
                    break;
                }
            }
            if roots.is_empty() {
                tracing::warn!("no system CA bundle found; set tls_config.ca_file for https");
            }
            Arc::new(roots)
        })
        .clone()
}

impl TlsClient {
    /// Reads the files of `s` and builds the client configuration; the error names the file
    /// and what is wrong with it.
    pub fn new(s: &TlsSettings) -> Result<TlsClient, String> {
        // Taken before reading: a file replaced meanwhile is read again at the next use.
        let stamps = stamps(s);
        let (config, files_hash) = build(s)?;
        let server_name = match &s.server_name {
            Some(n) if !n.is_empty() => Some(
                ServerName::try_from(n.clone()).map_err(|e| format!("server_name {n:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(TlsClient {
            inner: Arc::new(Inner {
                server_name,
                settings: s.clone(),
                files_hash,
                current: parking_lot::Mutex::new(Loaded {
                    config: Arc::new(config),
                    stamps,
                    files_hash,
                }),
            }),
        })
    }

    /// The configuration for a new connection: read again if a file changed since it was
    /// last read; if the files do not load now, the previous configuration (and a warning).
    fn config(&self) -> Arc<ClientConfig> {
        let s = &self.inner.settings;
        let mut cur = self.inner.current.lock();
        let now = stamps(s);
        if now != cur.stamps {
            match build(s) {
                Ok((config, hash)) => {
                    tracing::info!("tls_config files changed; new connections use them");
                    cur.config = Arc::new(config);
                    cur.files_hash = hash;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "tls_config files changed but do not load; keeping the previous ones"
                ),
            }
            cur.stamps = now;
        }
        cur.config.clone()
    }

    /// The configuration used for `https://` when no `tls_config` is given: system roots.
    pub fn system_default() -> TlsClient {
        static DEFAULT: OnceLock<TlsClient> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                TlsClient::new(&TlsSettings::default())
                    .expect("a configuration without files cannot fail to build")
            })
            .clone()
    }
}

/// Reads the files of `s` and builds the client configuration; also returns a hash of the
/// files' contents.
fn build(s: &TlsSettings) -> Result<(ClientConfig, u64), String> {
    let mut files_hash = 0u64;
    let mut read = |p: &Path, what: &str| {
        let data = std::fs::read(p).map_err(|e| format!("{what} {}: {e}", p.display()))?;
        files_hash = files_hash.rotate_left(7) ^ xxhash_rust::xxh3::xxh3_64(&data);
        Ok::<_, String>(data)
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if s.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider())))
    } else {
        let roots = match &s.ca_file {
            Some(p) => {
                let mut roots = RootCertStore::empty();
                for c in pem_certs(&read(p, "ca_file")?, p, "ca_file")? {
                    roots
                        .add(c)
                        .map_err(|e| format!("ca_file {}: {e}", p.display()))?;
                }
                Arc::new(roots)
            }
            None => system_roots(),
        };
        builder.with_root_certificates(roots)
    };
    let config = match (&s.cert_file, &s.key_file) {
        (Some(c), Some(k)) => {
            let certs = pem_certs(&read(c, "cert_file")?, c, "cert_file")?;
            let data = read(k, "key_file")?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &data[..])
                .map_err(|e| format!("key_file {}: {e}", k.display()))?
                .ok_or_else(|| format!("key_file {}: no PEM private key found", k.display()))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                format!(
                    "cert_file {} and key_file {}: {e}",
                    c.display(),
                    k.display()
                )
            })?
        }
        (Some(_), None) => return Err("client cert file specified without client key file".into()),
        (None, Some(_)) => return Err("client key file specified without client cert file".into()),
        (None, None) => builder.with_no_client_auth(),
    };
    Ok((config, files_hash))
}

/// `insecure_skip_verify`: any certificate, but signatures still checked with the provider's
/// algorithms (as Go's `InsecureSkipVerify`).
#[derive(Debug)]
struct SkipVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// hyper's HTTP connector plus TLS for `https://` URIs (with the given [`TlsClient`], else
/// the system roots, loaded on first use).
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    tls: Option<TlsClient>,
}

impl Connector {
    /// A connector with TCP_NODELAY and an optional connect timeout.
    pub fn new(tls: Option<TlsClient>, connect_timeout: Option<Duration>) -> Connector {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(connect_timeout);
        Connector { http, tls }
    }
}

/// A plain or TLS connection.
pub enum Stream {
    /// `http://`.
    Plain(TokioIo<TcpStream>),
    /// `https://`.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                let msg = format!("unsupported URL scheme {other:?}");
                return Box::pin(async move { Err(msg.into()) });
            }
        };
        let tls = https.then(|| self.tls.clone().unwrap_or_else(TlsClient::system_default));
        let connecting = self.http.call(uri.clone());
        Box::pin(async move {
            let tcp = connecting.await?;
            let Some(tls) = tls else {
                return Ok(Stream::Plain(tcp));
            };
            let name = match tls.inner.server_name.clone() {
                Some(n) => n,
                None => {
                    let host = uri.host().unwrap_or_default();
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    ServerName::try_from(host.to_owned())
                        .map_err(|e| format!("host {host:?}: {e}"))?
                }
            };
            let s = TlsConnector::from(tls.config())
                .connect(name, tcp.into_inner())
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            Ok(Stream::Tls(Box::new(TokioIo::new(s))))
        })
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(s) => s.connected(),
            Stream::Tls(s) => s.inner().get_ref().0.connected(),
        }
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA1: &str = include_str!("../tests/data/ca1.pem");
    const CA2: &str = include_str!("../tests/data/ca2.pem");

    /// The configuration a new connection gets, and the hash of the files it was built from.
    fn current(c: &TlsClient) -> (Arc<ClientConfig>, u64) {
        let config = c.config();
        (config, c.inner.current.lock().files_hash)
    }

    #[test]
    fn replaced_files_apply_to_new_connections_and_broken_ones_keep_the_last_good() {
        let d = tempfile::tempdir().unwrap();
        let ca = d.path().join("ca.pem");
        std::fs::write(&ca, CA1).unwrap();
        let c = TlsClient::new(&TlsSettings {
            ca_file: Some(ca.clone()),
            ..Default::default()
        })
        .unwrap();
        let hash = |pem: &str| xxhash_rust::xxh3::xxh3_64(pem.as_bytes());
        let (first, h) = current(&c);
        assert_eq!(h, hash(CA1));
        assert!(
            Arc::ptr_eq(&first, &current(&c).0),
            "unchanged: not rebuilt"
        );

        // Rotated by rename, as certificate tools do.
        let next = d.path().join("next.pem");
        std::fs::write(&next, CA2).unwrap();
        std::fs::rename(&next, &ca).unwrap();
        let (second, h) = current(&c);
        assert_eq!(h, hash(CA2));
        assert!(!Arc::ptr_eq(&first, &second));

        // Half-written or broken: the last good configuration stays.
        std::fs::write(&ca, &CA1[..100]).unwrap();
        let (third, h) = current(&c);
        assert_eq!(h, hash(CA2));
        assert!(Arc::ptr_eq(&second, &third));

        // Rewritten in place with a good file again.
        std::fs::write(&ca, CA1).unwrap();
        let (fourth, h) = current(&c);
        assert_eq!(h, hash(CA1));
        assert!(!Arc::ptr_eq(&third, &fourth));
    }

    #[test]
    fn bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let missing = TlsSettings {
            ca_file: Some(d.path().join("nope.pem")),
            ..Default::default()
        };
        let e = TlsClient::new(&missing).unwrap_err();
        assert!(e.contains("ca_file") && e.contains("nope.pem"), "{e}");
        let junk = d.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = TlsClient::new(&TlsSettings {
            ca_file: Some(junk.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = TlsClient::new(&TlsSettings {
            cert_file: Some(junk),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("without client key file"), "{e}");
        let e = TlsClient::new(&TlsSettings {
            server_name: Some("bad name!".into()),
            insecure_skip_verify: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("server_name"), "{e}");
        assert!(TlsClient::new(&TlsSettings {
            insecure_skip_verify: true,
            ..Default::default()
        })
        .is_ok());
    }
}
