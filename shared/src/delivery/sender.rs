//! The one HTTP sender, shared by webhook/Slack delivery and the webhook test endpoint.
//!
//! Every connection goes to an address the SSRF guard checked: host names are resolved by the
//! guard itself (the client's DNS hook), IP literals are checked before sending. Redirects are
//! not followed, proxies are not used (a proxy would resolve names itself), and no error text
//! ever carries the URL, which may be a secret (Slack incoming webhooks).

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::{Host, Url};

use super::retry::{TransportErrorKind, parse_retry_after};
use super::ssrf::{SsrfError, SsrfGuard};

/// Response bytes kept (and read) per attempt.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024;
/// Total time per attempt (connect, send, headers and the body we read).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("could not build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// A POST to send. The sender adds only the User-Agent; the caller sets everything else.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What happened, in the terms [`super::retry::classify`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: Option<u16>,
    /// At most 16 KiB, lossy UTF-8, cut on a char boundary.
    pub body: String,
    pub duration: Duration,
    /// Set when no status came back, or when reading the body failed after the status.
    pub error: Option<TransportErrorKind>,
    /// Human-readable detail of `error`; never contains the URL.
    pub error_message: Option<String>,
    pub retry_after: Option<Duration>,
}

/// One `reqwest::Client` (rustls, connection pool) behind the SSRF guard.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

impl Sender {
    /// `timeout` is the total per attempt ([`DEFAULT_TIMEOUT`] in production; tests shorten it).
    pub fn new(guard: SsrfGuard, timeout: Duration, user_agent: &str) -> Result<Self, SenderError> {
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .no_proxy()
            .user_agent(user_agent)
            .dns_resolver(GuardedResolver { guard: Arc::clone(&guard) })
            .build()
            .map_err(|e| SenderError::Build(e.without_url()))?;
        Ok(Sender { client, guard })
    }

    pub fn guard(&self) -> &SsrfGuard {
        &self.guard
    }

    /// Sends `req` as a POST. Never fails: every outcome is described in the result.
    pub async fn send(&self, req: &OutgoingRequest) -> SendResult {
        let started = Instant::now();
        let result = self.send_inner(req, started).await;
        tracing::debug!(
            status = result.status,
            error = result.error.as_ref().map(ToString::to_string),
            duration_ms = u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            "outgoing request finished"
        );
        result
    }

    async fn send_inner(&self, req: &OutgoingRequest, started: Instant) -> SendResult {
        let failed = |kind: TransportErrorKind, message: String| SendResult {
            status: None,
            body: String::new(),
            duration: started.elapsed(),
            error: Some(kind),
            error_message: Some(redact(message, &req.url)),
            retry_after: None,
        };

        // Names are checked by the DNS hook when the client connects; everything else (IP
        // literals, which the client never resolves, odd schemes, no host) is checked here.
        let name_host = matches!(req.url.host(), Some(Host::Domain(_))) && matches!(req.url.scheme(), "http" | "https");
        if !name_host && let Err(e) = self.guard.check(&req.url).await {
            return failed(ssrf_kind(&e), e.to_string());
        }

        let headers = match header_map(&req.headers) {
            Ok(headers) => headers,
            Err(reason) => {
                return failed(TransportErrorKind::Refused { reason: reason.clone() }, reason);
            }
        };

        let response = self.client.post(req.url.clone()).headers(headers).body(req.body.clone()).send().await;
        let mut response = match response {
            Ok(response) => response,
            Err(e) => {
                let (kind, message) = describe(e);
                return failed(kind, message);
            }
        };

        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));

        let mut body = Vec::new();
        let mut body_error = None;
        // Read chunk by chunk and stop at the limit: a huge answer costs us 16 KiB, not memory.
        while body.len() < MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => {
                    body_error = Some(describe(e));
                    break;
                }
            }
        }

        let (error, error_message) = match body_error {
            Some((kind, message)) => {
                (Some(kind), Some(redact(format!("reading the response body: {message}"), &req.url)))
            }
            None => (None, None),
        };
        SendResult {
            status: Some(status),
            body: body_text(&body),
            duration: started.elapsed(),
            error,
            error_message,
            retry_after,
        }
    }
}

/// The client's DNS hook: resolution goes through the guard, so only checked addresses are
/// ever connected to.
struct GuardedResolver {
    guard: Arc<SsrfGuard>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            // Port 0: the client puts the URL's port on every address.
            let addrs = guard.check_host(name.as_str(), 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "invalid header name".to_owned())?;
        // The value may be a token: name the header, never print the value.
        let header_value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {header_name}"))?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

fn ssrf_kind(e: &SsrfError) -> TransportErrorKind {
    if e.is_refusal() { TransportErrorKind::Refused { reason: e.to_string() } } else { TransportErrorKind::Connect }
}

/// Maps a reqwest error to a kind and a message free of the URL.
fn describe(e: reqwest::Error) -> (TransportErrorKind, String) {
    let e = e.without_url();
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(ssrf) = cause.downcast_ref::<SsrfError>() {
            return (ssrf_kind(ssrf), ssrf.to_string());
        }
        source = cause.source();
    }
    let kind = if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Other
    };
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    (kind, message)
}

/// Belt and braces: should any layer ever quote the URL, its secret parts go.
fn redact(message: String, url: &Url) -> String {
    let mut message = message.replace(url.as_str(), "[url]");
    let path = url.path();
    if path.len() > 1 {
        message = message.replace(path, "/[redacted]");
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        message = message.replace(query, "[redacted]");
    }
    message
}

/// Lossy UTF-8 of at most [`MAX_RESPONSE_BODY`] bytes, cut on a char boundary.
fn body_text(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_RESPONSE_BODY)];
    // A multi-byte char cut by the limit is dropped rather than turned into U+FFFD.
    let bytes = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() && bytes.len() == MAX_RESPONSE_BODY => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    // Replacement chars are 3 bytes for 1 invalid byte, so the lossy text can grow past the limit.
    if text.len() > MAX_RESPONSE_BODY {
        let mut end = MAX_RESPONSE_BODY;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::super::retry::{Verdict, classify};
    use super::super::ssrf::{AllowedNetworks, StaticResolver};
    use super::*;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[derive(Default)]
    struct Seen {
        requests: AtomicUsize,
        last: Mutex<Option<(AxumHeaders, Bytes)>>,
    }

    /// A receiver on 127.0.0.1:0 that counts every request it gets.
    async fn receiver() -> (SocketAddr, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let record = |seen: Arc<Seen>| {
            move |headers: AxumHeaders, body: Bytes| {
                seen.requests.fetch_add(1, Ordering::SeqCst);
                *seen.last.lock().unwrap() = Some((headers, body));
                std::future::ready(())
            }
        };
        let s = Arc::clone(&seen);
        let app = Router::new()
            .route(
                "/ok",
                post({
                    let r = record(Arc::clone(&s));
                    move |h: AxumHeaders, b: Bytes| async move {
                        r(h, b).await;
                        "ok"
                    }
                }),
            )
            .route(
                "/big",
                post({
                    let r = record(Arc::clone(&s));
                    move |h: AxumHeaders, b: Bytes| async move {
                        r(h, b).await;
                        "a".repeat(40_000)
                    }
                }),
            )
            .route(
                "/utf8",
                post({
                    let r = record(Arc::clone(&s));
                    move |h: AxumHeaders, b: Bytes| async move {
                        r(h, b).await;
                        format!("a{}", "é".repeat(20_000))
                    }
                }),
            )
            .route(
                "/redirect",
                post({
                    let r = record(Arc::clone(&s));
                    move |h: AxumHeaders, b: Bytes| async move {
                        r(h, b).await;
                        (StatusCode::FOUND, [(header::LOCATION, "/ok")], "moved")
                    }
                }),
            )
            .route(
                "/slow",
                post({
                    let r = record(Arc::clone(&s));
                    move |h: AxumHeaders, b: Bytes| async move {
                        r(h, b).await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "late"
                    }
                }),
            )
            .route(
                "/busy",
                post({
                    let r = record(Arc::clone(&s));
                    move |h: AxumHeaders, b: Bytes| async move {
                        r(h, b).await;
                        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")], "slow down").into_response()
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, seen)
    }

    fn sender_with(allowed: AllowedNetworks, timeout: Duration) -> Sender {
        let resolver = StaticResolver::new().with("receiver.test", [LOCALHOST]);
        Sender::new(SsrfGuard::new(allowed, Arc::new(resolver)), timeout, "automations/test").unwrap()
    }

    fn sender() -> Sender {
        sender_with(AllowedNetworks::loopback(), Duration::from_secs(5))
    }

    fn request(url: &str) -> OutgoingRequest {
        OutgoingRequest {
            url: Url::parse(url).unwrap(),
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("webhook-id".to_owned(), "exec_1".to_owned()),
            ],
            body: br#"{"hello":"world"}"#.to_vec(),
        }
    }

    #[tokio::test]
    async fn posts_and_records_status_and_body() {
        let (addr, seen) = receiver().await;
        let result = sender().send(&request(&format!("http://{addr}/ok"))).await;
        assert_eq!(result.status, Some(200));
        assert_eq!(result.body, "ok");
        assert_eq!(result.error, None);
        assert_eq!(result.error_message, None);
        assert_eq!(classify(result.status, result.error.as_ref(), result.retry_after), Verdict::Delivered);

        let (headers, body) = seen.last.lock().unwrap().clone().unwrap();
        assert_eq!(&body[..], br#"{"hello":"world"}"#);
        assert_eq!(headers["user-agent"], "automations/test");
        assert_eq!(headers["webhook-id"], "exec_1");
        assert_eq!(headers["content-type"], "application/json");
    }

    #[tokio::test]
    async fn names_connect_to_the_address_the_guard_resolved() {
        let (addr, seen) = receiver().await;
        let result = sender().send(&request(&format!("http://receiver.test:{}/ok", addr.port()))).await;
        assert_eq!(result.status, Some(200), "{result:?}");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn response_body_is_cut_at_16_kib() {
        let (addr, _) = receiver().await;
        let result = sender().send(&request(&format!("http://{addr}/big"))).await;
        assert_eq!(result.status, Some(200));
        assert_eq!(result.body.len(), MAX_RESPONSE_BODY);
        assert!(result.body.bytes().all(|b| b == b'a'));
    }

    #[tokio::test]
    async fn response_body_is_cut_on_a_char_boundary() {
        let (addr, _) = receiver().await;
        let result = sender().send(&request(&format!("http://{addr}/utf8"))).await;
        assert_eq!(result.status, Some(200));
        // "a" + 2-byte chars: byte 16384 falls inside a char, which is dropped whole.
        assert_eq!(result.body.len(), MAX_RESPONSE_BODY - 1);
        assert!(!result.body.contains('\u{FFFD}'));
    }

    #[tokio::test]
    async fn redirects_are_recorded_not_followed() {
        let (addr, seen) = receiver().await;
        let result = sender().send(&request(&format!("http://{addr}/redirect"))).await;
        assert_eq!(result.status, Some(302));
        assert_eq!(result.body, "moved");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 1, "the Location was not requested");
        assert!(matches!(classify(result.status, None, None), Verdict::Failed { .. }));
    }

    #[tokio::test]
    async fn a_slow_receiver_times_out() {
        let (addr, _) = receiver().await;
        let sender = sender_with(AllowedNetworks::loopback(), Duration::from_millis(300));
        let result = sender.send(&request(&format!("http://{addr}/slow"))).await;
        assert_eq!(result.status, None);
        assert_eq!(result.error, Some(TransportErrorKind::Timeout), "{result:?}");
        assert!(result.duration < Duration::from_secs(3), "{:?}", result.duration);
        assert!(matches!(classify(result.status, result.error.as_ref(), None), Verdict::Retry { .. }));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_without_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/services/T0/B0/SECRETTOKEN?token=QUERYSECRET");
        let result = sender().send(&request(&url)).await;
        assert_eq!(result.status, None);
        assert_eq!(result.error, Some(TransportErrorKind::Connect), "{result:?}");
        let message = result.error_message.unwrap();
        assert!(!message.contains("SECRETTOKEN") && !message.contains("QUERYSECRET"), "{message}");
        assert!(!message.contains("127.0.0.1:"), "{message}");
    }

    #[tokio::test]
    async fn retry_after_is_parsed() {
        let (addr, _) = receiver().await;
        let result = sender().send(&request(&format!("http://{addr}/busy"))).await;
        assert_eq!(result.status, Some(429));
        assert_eq!(result.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            classify(result.status, result.error.as_ref(), result.retry_after),
            Verdict::Retry { retry_after: Some(Duration::from_secs(7)) }
        );
    }

    /// A bare TCP listener: a refusal must not even open a connection.
    async fn assert_no_connection(listener: &tokio::net::TcpListener) {
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was opened");
    }

    #[tokio::test]
    async fn refused_destinations_are_never_connected_to() {
        let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sender = sender_with(AllowedNetworks::none(), Duration::from_secs(5));

        for url in [
            format!("http://127.0.0.1:{port}/services/SECRETTOKEN"),
            format!("http://receiver.test:{port}/services/SECRETTOKEN"),
            format!("http://[::ffff:127.0.0.1]:{port}/services/SECRETTOKEN"),
        ] {
            let result = sender.send(&request(&url)).await;
            assert_eq!(result.status, None);
            let Some(TransportErrorKind::Refused { reason }) = &result.error else {
                panic!("{url}: {result:?}");
            };
            assert!(reason.contains("loopback"), "{reason}");
            let message = result.error_message.clone().unwrap();
            assert!(message.contains("loopback") && !message.contains("SECRETTOKEN"), "{message}");
            assert!(matches!(classify(result.status, result.error.as_ref(), None), Verdict::Failed { .. }));
        }
        assert_no_connection(&listener).await;
    }

    #[tokio::test]
    async fn refusal_also_covers_the_http_receiver() {
        let (addr, seen) = receiver().await;
        let sender = sender_with(AllowedNetworks::none(), Duration::from_secs(5));
        let result = sender.send(&request(&format!("http://{addr}/ok"))).await;
        assert!(matches!(result.error, Some(TransportErrorKind::Refused { .. })), "{result:?}");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn unresolvable_names_are_connect_errors() {
        let result = sender().send(&request("http://nowhere.test/hook")).await;
        assert_eq!(result.error, Some(TransportErrorKind::Connect), "{result:?}");
    }

    #[tokio::test]
    async fn bad_headers_are_refused_without_printing_the_value() {
        let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut req = request(&format!("http://127.0.0.1:{port}/"));
        req.headers.push(("authorization".to_owned(), "Bearer SECRET\nX: y".to_owned()));
        let result = sender().send(&req).await;
        let Some(TransportErrorKind::Refused { reason }) = &result.error else {
            panic!("{result:?}");
        };
        assert!(reason.contains("authorization") && !reason.contains("SECRET"), "{reason}");
        assert_no_connection(&listener).await;
    }

    #[test]
    fn body_text_handles_invalid_utf8_within_the_limit() {
        assert_eq!(body_text(b"ok\xffok"), "ok\u{FFFD}ok");
        let text = body_text(&vec![0xff; MAX_RESPONSE_BODY]);
        assert!(text.len() <= MAX_RESPONSE_BODY);
    }
}
