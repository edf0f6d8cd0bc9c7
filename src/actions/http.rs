//! Calling a tool over HTTP and classifying what came back: 2xx is the
//! result; 408, 409, 425, 429 and 5xx, a timeout or a refused connection
//! are transient (with the server's Retry-After); 400 and 422 say the input
//! is wrong (the user is asked); any other answer is permanent. Calls go
//! through `channels::egress`, so only public addresses are reached unless
//! the operator allowed the host (or dev mode).

use super::HttpTool;
use crate::channels::egress::{Client, EgressError};
use crate::execution::ErrorClass;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// Largest answer read from a tool.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Unreserved characters stay as they are in a path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallError {
    pub class: ErrorClass,
    pub message: String,
    /// What the tool asked to wait (Retry-After).
    pub retry_after: Option<chrono::Duration>,
    /// The request may have been carried out (a timeout, a 500): a tool
    /// that takes no key cannot be asked again without risking a second
    /// effect.
    pub may_have_run: bool,
}

impl CallError {
    pub(crate) fn new(class: ErrorClass, message: impl Into<String>) -> CallError {
        CallError {
            class,
            message: message.into(),
            retry_after: None,
            may_have_run: false,
        }
    }

    fn ran_maybe(mut self) -> CallError {
        self.may_have_run = true;
        self
    }
}

/// One request to make.
pub(crate) struct Request<'a> {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub body: Option<&'a Value>,
    /// The idempotency key and the header that carries it.
    pub key: Option<(&'a HeaderName, &'a str)>,
    pub timeout: Duration,
    /// May reach loopback and private addresses.
    pub internal_ok: bool,
}

/// The HTTP clients tools are called with.
#[derive(Clone)]
pub(crate) struct Caller {
    public: Client,
    internal: Client,
}

impl Caller {
    pub(crate) fn new(dev_mode: bool) -> Result<Caller, reqwest::Error> {
        Ok(Caller {
            public: Client::new(dev_mode)?,
            internal: Client::new(true)?,
        })
    }

    /// Calls a declared tool with `args`, sending `key` in its idempotency
    /// header if it has one.
    pub(crate) async fn declared(
        &self,
        tool: &HttpTool,
        args: &Value,
        key: &str,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let (url, used) = fill_url(&tool.url, args)?;
        let has_body = matches!(
            tool.method,
            reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
        );
        let url = if has_body { url } else { with_query(url, args, &used) };
        self.send(Request {
            method: tool.method.clone(),
            url,
            headers: &tool.headers,
            body: has_body.then_some(args),
            key: tool.idempotency_header.as_ref().map(|h| (h, key)),
            timeout,
            internal_ok: tool.internal_ok,
        })
        .await
    }

    /// Makes one request and classifies the answer.
    pub(crate) async fn send(&self, r: Request<'_>) -> Result<Value, CallError> {
        let client = if r.internal_ok { &self.internal } else { &self.public };
        let url: reqwest::Url = r
            .url
            .parse()
            .map_err(|e| CallError::new(ErrorClass::User, format!("`{}` is not a URL: {e}", r.url)))?;
        let mut request = reqwest::Request::new(r.method, url);
        *request.timeout_mut() = Some(r.timeout);
        let headers = request.headers_mut();
        headers.insert(reqwest::header::USER_AGENT, HeaderValue::from_static("steward"));
        for (name, value) in r.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some((name, key)) = r.key
            && let Ok(value) = HeaderValue::from_str(key)
        {
            headers.insert(name.clone(), value);
        }
        if let Some(body) = r.body {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            *request.body_mut() = Some(body.to_string().into());
        }
        let response = client.execute(request).await.map_err(|e| match e {
            EgressError::Refused(host) => CallError::new(
                ErrorClass::Permanent,
                format!("{host} is a local or private address the operator has not allowed"),
            ),
            EgressError::Http(e) if e.is_timeout() => {
                CallError::new(ErrorClass::Transient, format!("no answer within {:?}", r.timeout)).ran_maybe()
            }
            EgressError::Http(e) if e.is_connect() => {
                CallError::new(ErrorClass::Transient, format!("could not reach the tool: {e}"))
            }
            EgressError::Http(e) => {
                CallError::new(ErrorClass::Transient, format!("the call broke off: {e}")).ran_maybe()
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, Utc::now()));
        let body = read_limited(response).await?;
        if status.is_success() {
            return Ok(match serde_json::from_slice::<Value>(&body) {
                Ok(json) => json,
                Err(_) if body.is_empty() => Value::Null,
                Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
            });
        }
        let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        let class = match status.as_u16() {
            408 | 409 | 425 | 429 | 500..=599 => ErrorClass::Transient,
            400 | 422 => ErrorClass::User,
            _ => ErrorClass::Permanent,
        };
        Err(CallError {
            class,
            message: format!("the tool answered {status}: {}", snippet.trim()),
            retry_after,
            // These say the request was not carried out; any other 5xx may
            // have been.
            may_have_run: class == ErrorClass::Transient && !matches!(status.as_u16(), 408 | 409 | 425 | 429 | 503),
        })
    }
}

/// The URL with each `{arg}` replaced by the argument, percent-encoded;
/// and the arguments used.
fn fill_url(template: &str, args: &Value) -> Result<(String, Vec<String>), CallError> {
    let mut out = String::with_capacity(template.len());
    let mut used = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        let value = match args.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => {
                return Err(CallError::new(
                    ErrorClass::User,
                    format!("the URL needs `{name}` as a string or a number"),
                ));
            }
        };
        out.extend(utf8_percent_encode(&value, SEGMENT));
        used.push(name.to_owned());
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok((out, used))
}

/// A GET or DELETE carries the arguments the URL did not use as its query.
fn with_query(mut url: String, args: &Value, used: &[String]) -> String {
    let Some(map) = args.as_object() else { return url };
    let mut first = !url.contains('?');
    for (name, value) in map.iter().filter(|(k, _)| !used.contains(k)) {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        url.push(if first { '?' } else { '&' });
        first = false;
        url.extend(utf8_percent_encode(name, SEGMENT));
        url.push('=');
        url.extend(utf8_percent_encode(&text, SEGMENT));
    }
    url
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(CallError::new(
                        ErrorClass::Permanent,
                        format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(CallError::new(ErrorClass::Transient, format!("the answer broke off: {e}")).ran_maybe());
            }
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<chrono::Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u32>() {
        return Some(chrono::Duration::seconds(i64::from(secs)));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).max(chrono::Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_are_filled_with_encoded_arguments_and_the_rest_go_in_the_query() {
        let args = json!({"queue": "it ops/2", "id": 7, "title": "a&b", "skip": null});
        let (url, used) = fill_url("https://h.example/{queue}/t/{id}", &args).unwrap();
        assert_eq!(url, "https://h.example/it%20ops%2F2/t/7");
        assert_eq!(used, ["queue", "id"]);
        assert_eq!(
            with_query(url, &args, &used),
            "https://h.example/it%20ops%2F2/t/7?title=a%26b"
        );
        assert!(fill_url("https://h.example/{missing}", &args).is_err());
        assert!(fill_url("https://h.example/{queue}", &json!({"queue": {"a": 1}})).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().unwrap();
        assert_eq!(retry_after("3", now), Some(chrono::Duration::seconds(3)));
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 10:00:30 GMT", now),
            Some(chrono::Duration::seconds(30))
        );
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 09:00:00 GMT", now),
            Some(chrono::Duration::zero())
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
