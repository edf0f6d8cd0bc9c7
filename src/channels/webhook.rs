//! Webhooks: notification events POSTed as JSON to the URLs a deployment
//! configures, signed `Steward-Signature: t=<unix seconds>,v1=<hex>` where
//! v1 is HMAC-SHA256 over `"<t>.<body>"` with the webhook's secret (receivers
//! recompute it and reject old timestamps to stop replays).

use super::egress::{self, EgressError};
use super::mailer::SendError;
use super::push::classify_http;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub(crate) const SIGNATURE_HEADER: &str = "steward-signature";

pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

pub(crate) async fn send(
    client: &egress::Client,
    url: &str,
    secret: &str,
    body: &str,
    now: i64,
    timeout: Duration,
) -> Result<(), SendError> {
    let url = url
        .parse()
        .map_err(|e| SendError::Permanent(format!("webhook url: {e}")))?;
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    let signed = reqwest::header::HeaderValue::from_str(&signature(secret, now, body))
        .map_err(|e| SendError::Permanent(format!("webhook signature header: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(SIGNATURE_HEADER, signed);
    *request.body_mut() = Some(body.to_owned().into());
    *request.timeout_mut() = Some(timeout);
    let response = client.execute(request).await.map_err(|e| match e {
        EgressError::Refused(_) => SendError::Permanent(format!("webhook: {e}")),
        EgressError::Http(_) => SendError::transient(format!("webhook: {e}")),
    })?;
    match classify_http(response.status(), response.headers(), "webhook") {
        // A webhook URL that is gone is a configuration problem, not a
        // subscription to drop: report it as permanent.
        Err(SendError::Gone) => Err(SendError::Permanent("webhook answered 404/410".into())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed with openssl:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, "{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
