//! `--web.config.file`: Prometheus's web configuration (the exporter-toolkit format): TLS
//! server settings, HTTP response headers, and basic-auth users with bcrypt-hashed passwords.
//! Unknown keys are refused, as exporter-toolkit's strict YAML decoding does.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::Mutex;

use axum::http;
use serde::Deserialize;

/// What is wrong with a web configuration.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("parsing {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value is invalid or unsupported.
    #[error("{0}")]
    Invalid(String),
}

/// The file's top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    /// TLS settings; absent or empty: plain HTTP.
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    /// HTTP settings.
    #[serde(default)]
    pub http_server_config: Option<HttpServerConfig>,
    /// user name → bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain.
    #[serde(default)]
    pub cert_file: String,
    /// PEM private key.
    #[serde(default)]
    pub key_file: String,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven`, `RequireAndVerifyClientCert`.
    #[serde(default)]
    pub client_auth_type: String,
    /// PEM CA bundle to verify client certificates.
    #[serde(default)]
    pub client_ca_file: String,
    /// `TLS12` or `TLS13`.
    #[serde(default)]
    pub min_version: String,
    /// `TLS12` or `TLS13`.
    #[serde(default)]
    pub max_version: String,
    /// Go cipher-suite names; refused if set (rustls chooses its own safe suites).
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Go curve names; refused if set.
    #[serde(default)]
    pub curve_preferences: Vec<String>,
    /// Accepted for compatibility; rustls always prefers its own order.
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Whether HTTP/2 is offered over TLS (default true).
    #[serde(default)]
    pub http2: Option<bool>,
    /// Headers added to every response.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A loaded web configuration, ready to serve with.
pub struct WebConfig {
    /// The TLS acceptor configuration, if TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Headers added to every response.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Basic-auth checking, if users are configured.
    pub auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("auth", &self.auth.as_ref().map(|a| a.users.len()))
            .finish()
    }
}

/// Headers exporter-toolkit refuses to let the configuration set.
const FORBIDDEN_HEADERS: [&str; 3] = ["authorization", "www-authenticate", "content-type"];

impl WebConfig {
    /// Reads and validates the file at `path`; relative paths in it are relative to its
    /// directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: WebConfigFile = if text.trim().is_empty() {
            WebConfigFile::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| WebConfigError::Parse {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        WebConfig::from_file(file, base)
    }

    /// Validates a parsed file.
    pub fn from_file(file: WebConfigFile, base: &Path) -> Result<WebConfig, WebConfigError> {
        let http2 = file
            .http_server_config
            .as_ref()
            .and_then(|h| h.http2)
            .unwrap_or(true);
        let tls = match file.tls_server_config {
            Some(t)
                if !(t.cert_file.is_empty()
                    && t.key_file.is_empty()
                    && t.client_ca_file.is_empty()) =>
            {
                Some(Arc::new(tls_config(&t, base, http2)?))
            }
            _ => None,
        };
        let mut headers = Vec::new();
        if let Some(h) = &file.http_server_config {
            for (k, v) in &h.headers {
                if FORBIDDEN_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                    return Err(WebConfigError::Invalid(format!(
                        "HTTP header {k:?} can not be configured"
                    )));
                }
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| WebConfigError::Invalid(format!("header name {k:?}: {e}")))?;
                let value = http::HeaderValue::from_str(v)
                    .map_err(|e| WebConfigError::Invalid(format!("header {k:?} value: {e}")))?;
                headers.push((name, value));
            }
        }
        let auth = if file.basic_auth_users.is_empty() {
            None
        } else {
            for (user, hash) in &file.basic_auth_users {
                hash.parse::<bcrypt::HashParts>().map_err(|e| {
                    WebConfigError::Invalid(format!(
                        "basic_auth_users: the password of {user:?} is not a bcrypt hash: {e}"
                    ))
                })?;
            }
            Some(Arc::new(BasicAuth::new(file.basic_auth_users)))
        };
        Ok(WebConfig { tls, headers, auth })
    }
}

fn tls_version(
    v: &str,
) -> Result<Option<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    match v {
        "" => Ok(None),
        "TLS12" => Ok(Some(&rustls::version::TLS12)),
        "TLS13" => Ok(Some(&rustls::version::TLS13)),
        "TLS10" | "TLS11" => Err(WebConfigError::Invalid(format!(
            "TLS version {v} is not supported by annals (TLS12 and TLS13 are)"
        ))),
        _ => Err(WebConfigError::Invalid(format!("unknown TLS version: {v}"))),
    }
}

fn read_pem(base: &Path, file: &str, what: &str) -> Result<Vec<u8>, WebConfigError> {
    let path = base.join(file);
    std::fs::read(&path)
        .map_err(|e| WebConfigError::Invalid(format!("reading {what} {}: {e}", path.display())))
}

fn tls_config(
    t: &TlsServerConfig,
    base: &Path,
    http2: bool,
) -> Result<rustls::ServerConfig, WebConfigError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if t.cert_file.is_empty() {
        return Err(WebConfigError::Invalid("missing cert_file".into()));
    }
    if t.key_file.is_empty() {
        return Err(WebConfigError::Invalid("missing key_file".into()));
    }
    if !t.cipher_suites.is_empty() || !t.curve_preferences.is_empty() {
        return Err(WebConfigError::Invalid(
            "cipher_suites and curve_preferences are not supported by annals: rustls offers only its own safe suites and curves".into(),
        ));
    }
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut read_pem(base, &t.cert_file, "cert_file")?.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| WebConfigError::Invalid(format!("cert_file: {e}")))?;
    if certs.is_empty() {
        return Err(WebConfigError::Invalid(format!(
            "cert_file {}: no certificate found",
            t.cert_file
        )));
    }
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut read_pem(base, &t.key_file, "key_file")?.as_slice())
            .map_err(|e| WebConfigError::Invalid(format!("key_file: {e}")))?
            .ok_or_else(|| {
                WebConfigError::Invalid(format!("key_file {}: no private key found", t.key_file))
            })?;

    let (min, max) = (tls_version(&t.min_version)?, tls_version(&t.max_version)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |x: &rustls::SupportedProtocolVersion| {
                    if x.version == rustls::ProtocolVersion::TLSv1_2 {
                        0
                    } else {
                        1
                    }
                };
                min.is_none_or(|m| rank(v) >= rank(m)) && max.is_none_or(|m| rank(v) <= rank(m))
            })
            .collect();
    if versions.is_empty() {
        return Err(WebConfigError::Invalid(
            "min_version is above max_version".into(),
        ));
    }
    // ring: pure Rust and assembly, no C toolchain or cmake in the build. rustls deprecates
    // it only for lacking post-quantum key exchange, which Prometheus's Go TLS 1.20 lacks too.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::Invalid(format!("TLS versions: {e}")))?;

    let client_auth = if t.client_auth_type.is_empty() {
        "NoClientCert"
    } else {
        t.client_auth_type.as_str()
    };
    let builder = match client_auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            if t.client_ca_file.is_empty() {
                return Err(WebConfigError::Invalid(format!(
                    "client_auth_type {client_auth} needs client_ca_file"
                )));
            }
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut read_pem(base, &t.client_ca_file, "client_ca_file")?.as_slice()) {
                let c = c.map_err(|e| WebConfigError::Invalid(format!("client_ca_file: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| WebConfigError::Invalid(format!("client_ca_file: {e}")))?;
            }
            let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if client_auth == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            let verifier = v
                .build()
                .map_err(|e| WebConfigError::Invalid(format!("client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(WebConfigError::Invalid(format!(
                "client_auth_type {client_auth} (accepting unverified client certificates) is not supported by annals; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
            )))
        }
        other => {
            return Err(WebConfigError::Invalid(format!("invalid client_auth_type: {other}")))
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| WebConfigError::Invalid(format!("cert_file/key_file: {e}")))?;
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

/// Basic-auth users and a cache of credentials already verified (bcrypt costs tens of ms per
/// check, so exporter-toolkit caches successes too). The cache holds a keyed hash of the
/// credentials, never the password.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<u64>>,
    keys: std::collections::hash_map::RandomState,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> BasicAuth {
        BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    fn key(&self, user: &str, password: &str, hash: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write(user.as_bytes());
        h.write_u8(0);
        h.write(password.as_bytes());
        h.write_u8(0);
        h.write(hash.as_bytes());
        h.finish()
    }

    /// Whether `Authorization` header value `header` names a configured user with the right
    /// password. Blocking: bcrypt runs here when the credentials are not cached.
    pub fn check(&self, header: Option<&str>) -> bool {
        use base64::Engine as _;
        let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        // A dummy hash for unknown users, so both cases cost a bcrypt (no user enumeration by
        // timing), as exporter-toolkit does.
        const DUMMY: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY, false),
        };
        let key = self.key(user, password, hash);
        if known && self.verified.lock().is_ok_and(|c| c.contains(&key)) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            if let Ok(mut c) = self.verified.lock() {
                if c.len() > 10_000 {
                    c.clear();
                }
                c.insert(key);
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, yaml).unwrap();
        WebConfig::load(&p)
    }

    #[test]
    fn basic_auth_checks_bcrypt_hashes() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let cfg = load(&format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
        let auth = cfg.auth.unwrap();
        use base64::Engine as _;
        let hdr = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(auth.check(Some(&hdr("alice", "secret"))));
        assert!(auth.check(Some(&hdr("alice", "secret"))), "cached");
        assert!(!auth.check(Some(&hdr("alice", "wrong"))));
        assert!(!auth.check(Some(&hdr("bob", "secret"))));
        assert!(!auth.check(Some("Basic !!!")));
        assert!(!auth.check(Some("Bearer x")));
        assert!(!auth.check(None));
    }

    #[test]
    fn bad_configurations_are_refused_with_a_reason() {
        assert!(matches!(
            load("unknown_key: 1\n"),
            Err(WebConfigError::Parse { .. })
        ));
        let e = load("basic_auth_users:\n  alice: plaintext\n").unwrap_err();
        assert!(e.to_string().contains("not a bcrypt hash"), "{e}");
        let e = load("tls_server_config:\n  cert_file: a.pem\n").unwrap_err();
        assert!(e.to_string().contains("missing key_file"), "{e}");
        let e = load("tls_server_config:\n  cert_file: a.pem\n  key_file: b.pem\n").unwrap_err();
        assert!(e.to_string().contains("a.pem"), "{e}");
        let e = load("http_server_config:\n  headers:\n    Content-Type: x\n").unwrap_err();
        assert!(e.to_string().contains("can not be configured"), "{e}");
        let cfg = load("").unwrap();
        assert!(cfg.tls.is_none() && cfg.auth.is_none());
    }
}
