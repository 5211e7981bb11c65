//! Sending one request: the [`WriteClient`] seam (tests inject their own) and
//! [`HttpClient`], remote-write 1.0 over hyper's pooled HTTP/1.1 client, classifying answers
//! as Prometheus 2.42's `remote.Client.Store` does (2xx ok; 5xx, 429 and network errors
//! retried; other statuses rejected).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::backoff::parse_retry_after;
use crate::tls::{Connector, TlsClient};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a network error, a timeout, 5xx or 429.
    #[error("{reason}")]
    Recoverable {
        /// What happened.
        reason: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The remote refused the request (4xx other than 429): retrying cannot help, the batch
    /// is dropped and counted.
    #[error("{reason}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// What the server said.
        reason: String,
    },
}

/// Sends one snappy-compressed `WriteRequest`.
pub trait WriteClient: Send + Sync + 'static {
    /// Posts `body` and classifies the answer.
    fn store(&self, body: Bytes) -> BoxFuture<'_, Result<(), SendError>>;
}

/// Longest part of an error body kept in messages (Prometheus's `maxErrMsgLen`).
const MAX_ERR_MSG: usize = 1024;

/// The `User-Agent` of requests.
pub const USER_AGENT: &str = concat!("annals-agent/", env!("CARGO_PKG_VERSION"));

/// Remote write over HTTP/1.1 with keep-alive (`http://` and `https://` URLs).
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

/// A client cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("remote write endpoint {url:?}: {reason}")]
pub struct ClientConfigError {
    /// The URL.
    pub url: String,
    /// What is wrong.
    pub reason: String,
}

impl HttpClient {
    /// A client posting to `url` with extra `headers` (authorization included) and a
    /// per-request `timeout` (Prometheus's `remote_timeout`).
    pub fn new(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpClient, ClientConfigError> {
        HttpClient::with_tls(url, headers, timeout, None)
    }

    /// As [`HttpClient::new`], with the endpoint's `tls_config` for `https://` (`None`: the
    /// system's CAs).
    pub fn with_tls(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
        tls: Option<TlsClient>,
    ) -> Result<HttpClient, ClientConfigError> {
        let err = |reason: String| ClientConfigError {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| err(format!("invalid URL: {e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(s) => {
                return Err(err(format!(
                    "scheme {s:?} is not supported (only http and https)"
                )))
            }
            None => return Err(err("the URL has no scheme".into())),
        }
        if uri.host().is_none() {
            return Err(err("the URL has no host".into()));
        }
        let mut hs = Vec::with_capacity(headers.len());
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| err(format!("header name {k:?}: {e}")))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| err(format!("header {k:?} value: {e}")))?;
            hs.push((name, value));
        }
        let conn = Connector::new(tls, Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(conn);
        Ok(HttpClient {
            client,
            uri,
            headers: hs,
            timeout,
        })
    }

    async fn post(&self, body: Bytes) -> Result<(), SendError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header("Content-Encoding", annals_prompb::CONTENT_ENCODING_SNAPPY)
            .header("Content-Type", annals_prompb::CONTENT_TYPE_PROTOBUF)
            .header("User-Agent", USER_AGENT)
            .header(
                annals_prompb::REMOTE_WRITE_VERSION_HEADER,
                annals_prompb::REMOTE_WRITE_VERSION,
            )
            .body(Full::new(body))
            .expect("method, URI and headers were validated at construction");
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let recoverable = |reason: String| SendError::Recoverable {
            reason,
            retry_after: None,
        };
        let resp = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => return Err(recoverable(format!("no answer within {:?}", self.timeout))),
            Ok(Err(e)) => return Err(recoverable(format!("request failed: {}", error_chain(&e)))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Read the body (to reuse the connection), keeping the start of an error message.
        let body = tokio::time::timeout(self.timeout, resp.into_body().collect()).await;
        if status.is_success() {
            return Ok(());
        }
        let msg = match body {
            Ok(Ok(b)) => {
                let b = b.to_bytes();
                let b = &b[..b.len().min(MAX_ERR_MSG)];
                let line = b.split(|&c| c == b'\n').next().unwrap_or_default();
                String::from_utf8_lossy(line).into_owned()
            }
            _ => String::new(),
        };
        let reason = format!("server returned HTTP status {status}: {msg}");
        if status.is_server_error() || status.as_u16() == 429 {
            Err(SendError::Recoverable {
                reason,
                retry_after,
            })
        } else {
            Err(SendError::Rejected {
                status: status.as_u16(),
                reason,
            })
        }
    }
}

/// `e` and its sources, `: `-separated: hyper's client error alone says only "client error
/// (Connect)", the cause (refused, TLS handshake and why) is in the chain.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl WriteClient for HttpClient {
    fn store(&self, body: Bytes) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(self.post(body))
    }
}
