//! Web push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload
//! encryption (RFC 8291), through web-push-native; the VAPID key is made
//! on first start and kept in the store.

use super::MAX_RETRY_AFTER;
use super::egress::{self, EgressError};
use super::mailer::SendError;
use crate::notification::PushSubscription;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder, p256};

/// Largest push payload before encryption (one aes128gcm record).
pub(crate) const MAX_PAYLOAD: usize = 3000;

#[derive(Clone)]
pub(crate) struct Pusher {
    key: Arc<ES256KeyPair>,
    /// `mailto:` or `https:` contact sent to push services.
    contact: String,
    client: egress::Client,
}

/// Why a subscription was refused, or the stored key is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("endpoint must be an absolute URL")]
    NotAUrl,
    #[error("endpoint must be an https URL of at most 1024 characters")]
    Endpoint,
    #[error("endpoint must be a public push service, not a local or private address")]
    InternalEndpoint,
    #[error("endpoint must be a push service's public name on the default https port (like fcm.googleapis.com)")]
    NotAPushService,
    #[error("keys.p256dh must be base64url")]
    KeyEncoding,
    #[error("keys.p256dh is not a P-256 public key")]
    Key,
    #[error("keys.auth must be 16 bytes, base64url")]
    Auth,
    #[error("the stored VAPID key is unusable ({0}); remove the vapid-key secret to make a new one")]
    StoredKey(String),
}

/// Decodes base64url with or without padding (browsers differ).
fn b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// Checks a subscription a browser sent: an https endpoint (plain http
/// only when `allow_http`, i.e. loopback dev mode), a P-256 public key and
/// a 16-byte auth secret. Push services are public https hosts; anything
/// else would let a user make the server call arbitrary addresses.
pub(crate) fn validate(sub: &PushSubscription, allow_http: bool) -> Result<(), PushError> {
    let endpoint: reqwest::Url = sub.endpoint.parse().map_err(|_| PushError::NotAUrl)?;
    let scheme_ok = endpoint.scheme() == "https" || (allow_http && endpoint.scheme() == "http");
    if !scheme_ok || sub.endpoint.len() > 1024 || !endpoint.username().is_empty() {
        return Err(PushError::Endpoint);
    }
    if !allow_http && crate::net::internal_host(&endpoint) {
        return Err(PushError::InternalEndpoint);
    }
    // Push services are public names on the default https port: a
    // single-label name (an intranet host) or another port is not one.
    let single_label = endpoint
        .domain()
        .is_some_and(|d| !d.trim_end_matches('.').contains('.'));
    if !allow_http && (single_label || endpoint.port().is_some()) {
        return Err(PushError::NotAPushService);
    }
    let key = b64(&sub.p256dh).ok_or(PushError::KeyEncoding)?;
    p256::PublicKey::from_sec1_bytes(&key).map_err(|_| PushError::Key)?;
    match b64(&sub.auth) {
        Some(a) if a.len() == 16 => Ok(()),
        _ => Err(PushError::Auth),
    }
}

impl Pusher {
    /// `stored`: the 32-byte VAPID private key from the store.
    pub(crate) fn new(stored: &[u8], contact: &str, client: egress::Client) -> Result<Pusher, PushError> {
        if stored.len() != 32 {
            return Err(PushError::StoredKey(format!("{} bytes, not 32", stored.len())));
        }
        let key = ES256KeyPair::from_bytes(stored).map_err(|e| PushError::StoredKey(e.to_string()))?;
        Ok(Pusher {
            key: Arc::new(key),
            contact: contact.to_owned(),
            client,
        })
    }

    /// A fresh VAPID private key (32 bytes) for first start.
    pub(crate) fn generate_key() -> Vec<u8> {
        ES256KeyPair::generate().to_bytes()
    }

    /// The `applicationServerKey` browsers subscribe with: the uncompressed
    /// public point, base64url.
    pub(crate) fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.public_key().public_key().to_bytes_uncompressed())
    }

    pub(crate) async fn send(&self, sub: &PushSubscription, body: &str, timeout: Duration) -> Result<(), SendError> {
        let bad = |m: &str| SendError::Permanent(format!("push subscription: {m}"));
        let ua_public = b64(&sub.p256dh)
            .and_then(|k| p256::PublicKey::from_sec1_bytes(&k).ok())
            .ok_or_else(|| bad("bad p256dh"))?;
        let auth = match b64(&sub.auth) {
            Some(a) if a.len() == 16 => Auth::clone_from_slice(&a),
            _ => return Err(bad("bad auth")),
        };
        let endpoint = sub.endpoint.parse().map_err(|_| bad("bad endpoint"))?;
        let request = WebPushBuilder::new(endpoint, ua_public, auth)
            .with_valid_duration(Duration::from_secs(12 * 3600))
            .with_vapid(&self.key, &self.contact)
            .build(body.as_bytes().to_vec())
            .map_err(|e| SendError::Permanent(format!("encrypting the push payload: {e}")))?;
        let mut request =
            reqwest::Request::try_from(request).map_err(|e| SendError::Permanent(format!("push request: {e}")))?;
        request
            .headers_mut()
            .insert("urgency", reqwest::header::HeaderValue::from_static("normal"));
        *request.timeout_mut() = Some(timeout);
        let response = self.client.execute(request).await.map_err(|e| match e {
            EgressError::Refused(_) => SendError::Permanent(format!("push service: {e}")),
            EgressError::Http(_) => SendError::transient(format!("push service: {e}")),
        })?;
        classify_http(response.status(), response.headers(), "push service")
    }
}

/// Maps an HTTP answer to the retry policy shared by push and webhooks:
/// 2xx ok; 404/410 gone; 408, 429 and 5xx temporary (Retry-After
/// honoured); other 4xx permanent.
pub(crate) fn classify_http(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    who: &str,
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    if code == 404 || code == 410 {
        return Err(SendError::Gone);
    }
    if code == 408 || code == 429 || status.is_server_error() {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        return Err(SendError::Transient {
            message: format!("{who} answered {code}"),
            retry_after,
        });
    }
    Err(SendError::Permanent(format!("{who} answered {code}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_push_services_are_accepted_outside_dev_mode() {
        let key = {
            use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
            let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
            URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes())
        };
        let sub = |endpoint: &str| PushSubscription {
            endpoint: endpoint.into(),
            p256dh: key.clone(),
            auth: URL_SAFE_NO_PAD.encode([1u8; 16]),
        };
        assert!(validate(&sub("https://fcm.googleapis.com/fcm/send/abc"), false).is_ok());
        assert_eq!(
            validate(&sub("https://pushgateway/x"), false),
            Err(PushError::NotAPushService)
        );
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://127.0.0.1/x",
            "https://10.0.0.5/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            "https://100.64.1.1/x",
            "https://198.18.0.1/x",
            "https://0.0.0.0/x",
            "https://localhost/x",
            "https://user@push.example.com/x",
            "https://pushgateway/x",
            "https://push.example.com:8443/x",
        ] {
            assert!(validate(&sub(bad), false).is_err(), "{bad}");
        }
        assert!(
            validate(&sub("http://127.0.0.1:9000/push"), true).is_ok(),
            "dev mode allows loopback"
        );
    }
}
