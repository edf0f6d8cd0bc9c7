//! Webhooks: notification events POSTed as JSON to the URLs a deployment
//! configures, signed `Steward-Signature: t=<unix seconds>,v1=<hex>` where
//! v1 is HMAC-SHA256 over "<t>.<body>" with the webhook's secret (receivers
//! recompute it and reject old timestamps to stop replays).

use super::mailer::SendError;
use super::push::classify_http;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "steward-signature";

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

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &str,
    now: i64,
    timeout: Duration,
) -> Result<(), SendError> {
    let response = client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(secret, now, body))
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| SendError::transient(format!("webhook: {e}")))?;
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
