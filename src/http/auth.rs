//! Who is on the other end of a request, decided before any upgrade: a
//! signed token (HS256, `exp` required, no other algorithm accepted), or in
//! loopback dev mode the `?user=` parameter. Browser origins are checked too.

use crate::config::Config;
use crate::user::UserId;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthQuery {
    pub(crate) user: Option<String>,
    pub(crate) token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("authentication required: pass a signed token as ?token= or an Authorization: Bearer header")]
    MissingToken,
    #[error("dev mode: say who you are with ?user=<name>")]
    MissingDevUser,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("{0}")]
    BadUser(String),
    #[error("origin {0} is not allowed")]
    ForbiddenOrigin(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        super::ApiError::from(self).into_response()
    }
}

/// Signs a token for `user`, valid for `ttl_secs`.
pub fn issue_token(secret: &str, user: &UserId, ttl_secs: u64) -> Result<String, jsonwebtoken::errors::Error> {
    let exp = chrono::Utc::now().timestamp().max(0) as u64 + ttl_secs;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &Claims {
            sub: user.to_string(),
            exp,
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub(crate) fn authenticate(config: &Config, headers: &HeaderMap, query: &AuthQuery) -> Result<UserId, AuthError> {
    session(config, headers, query).map(|s| s.user)
}

/// Who a request is from, and until when their token lets them stay.
pub(crate) struct Session {
    pub(crate) user: UserId,
    /// When the token stops being accepted (its `exp` plus the leeway);
    /// none in dev mode.
    pub(crate) ends: Option<std::time::SystemTime>,
}

/// The user of a request, decided from the signed token (or in loopback
/// dev mode `?user=`), never from anything the client writes elsewhere.
pub(crate) fn session(config: &Config, headers: &HeaderMap, query: &AuthQuery) -> Result<Session, AuthError> {
    match &config.auth_secret {
        Some(secret) => {
            let bearer = bearer(headers).map(str::to_owned);
            // Two different tokens for one request: refuse rather than pick.
            if let (Some(q), Some(b)) = (&query.token, &bearer)
                && q != b
            {
                return Err(AuthError::InvalidToken(
                    "the token in the query and the one in the Authorization header differ".into(),
                ));
            }
            let token = query.token.clone().or(bearer).ok_or(AuthError::MissingToken)?;
            let mut validation = Validation::new(Algorithm::HS256);
            validation.validate_nbf = true;
            validation.leeway = config.auth_leeway_secs;
            let data = jsonwebtoken::decode::<Claims>(
                &token,
                &DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                &validation,
            )
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
            let user = UserId::parse(&data.claims.sub).map_err(|e| AuthError::BadUser(e.to_string()))?;
            // Accepted through the whole second `exp + leeway` (the check
            // is `exp + leeway < now` in whole seconds).
            let last = data.claims.exp.saturating_add(config.auth_leeway_secs);
            let ends = std::time::UNIX_EPOCH + std::time::Duration::from_secs(last.saturating_add(1));
            Ok(Session { user, ends: Some(ends) })
        }
        None => {
            let name = query.user.as_deref().ok_or(AuthError::MissingDevUser)?;
            let user = UserId::parse(name).map_err(|e| AuthError::BadUser(e.to_string()))?;
            Ok(Session { user, ends: None })
        }
    }
}

/// The host name of a `Host` header or an origin's authority, without port.
fn hostname(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(authority, |(h, _)| h);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Browsers send Origin; other clients do not. A browser page may connect
/// if its origin is listed, or (with no list) if it is this server's own
/// host, or in dev mode any loopback page. In dev mode (no authentication)
/// the request must also be addressed to a loopback name: a page on
/// another site that rebinds its DNS name to 127.0.0.1 is refused, even
/// for same-origin requests that carry no Origin.
pub(crate) fn check_origin(config: &Config, headers: &HeaderMap) -> Result<(), AuthError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if config.dev_mode() && !host.is_empty() && !is_loopback_name(hostname(host)) {
        return Err(AuthError::ForbiddenOrigin(format!(
            "host {host} (dev mode answers loopback names only)"
        )));
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    // The server's own pages are always allowed.
    if origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    if !config.allowed_origins.is_empty() {
        let listed = crate::config::origins::normalize(origin)
            .is_ok_and(|o| config.allowed_origins.iter().any(|allowed| allowed == &o));
        return if listed {
            Ok(())
        } else {
            Err(AuthError::ForbiddenOrigin(origin.to_owned()))
        };
    }
    if config.dev_mode() && is_loopback_name(hostname(origin_host)) {
        return Ok(());
    }
    Err(AuthError::ForbiddenOrigin(origin.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn secured() -> Config {
        Config {
            auth_secret: Some("s".repeat(32).into()),
            ..Config::default()
        }
    }

    fn query(token: &str) -> AuthQuery {
        AuthQuery {
            user: Some("mallory".into()),
            token: Some(token.into()),
        }
    }

    #[test]
    fn tokens_name_the_user_and_bad_ones_are_refused() {
        let config = secured();
        let ana = UserId::parse("ana").unwrap();
        let good = issue_token(config.auth_secret.as_ref().unwrap().expose_secret(), &ana, 60).unwrap();
        // ?user= is ignored once tokens are on.
        assert_eq!(authenticate(&config, &HeaderMap::new(), &query(&good)).unwrap(), ana);

        let forged = issue_token(&"x".repeat(32), &ana, 60).unwrap();
        assert!(matches!(
            authenticate(&config, &HeaderMap::new(), &query(&forged)),
            Err(AuthError::InvalidToken(_))
        ));

        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "ana".into(),
                exp: 1_000,
            },
            &EncodingKey::from_secret(config.auth_secret.as_ref().unwrap().expose_secret().as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            authenticate(&config, &HeaderMap::new(), &query(&expired)),
            Err(AuthError::InvalidToken(_))
        ));

        // alg:none, signature stripped.
        let parts: Vec<&str> = good.split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(matches!(
            authenticate(&config, &HeaderMap::new(), &query(&unsigned)),
            Err(AuthError::InvalidToken(_))
        ));

        let no_token = AuthQuery {
            user: Some("ana".into()),
            token: None,
        };
        assert!(matches!(
            authenticate(&config, &HeaderMap::new(), &no_token),
            Err(AuthError::MissingToken)
        ));
    }

    #[test]
    fn dev_mode_takes_the_user_from_the_query() {
        let config = Config::default();
        let q = AuthQuery {
            user: Some("ana".into()),
            token: None,
        };
        assert_eq!(authenticate(&config, &HeaderMap::new(), &q).unwrap().as_str(), "ana");
        let bad = AuthQuery {
            user: Some("../etc".into()),
            token: None,
        };
        assert!(matches!(
            authenticate(&config, &HeaderMap::new(), &bad),
            Err(AuthError::BadUser(_))
        ));
    }

    #[test]
    fn dev_mode_refuses_a_rebound_name_even_without_an_origin() {
        let mut headers = HeaderMap::new();
        // A page on rebind.example whose name now points at 127.0.0.1: its
        // same-origin GETs carry Host rebind.example and no Origin.
        headers.insert(header::HOST, HeaderValue::from_static("rebind.example:8080"));
        assert!(check_origin(&Config::default(), &headers).is_err());
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://rebind.example:8080"));
        assert!(check_origin(&Config::default(), &headers).is_err());
        headers.insert(header::HOST, HeaderValue::from_static("localhost:8080"));
        headers.remove(header::ORIGIN);
        assert!(check_origin(&Config::default(), &headers).is_ok());
        // With authentication the host name is the operator's business.
        headers.insert(header::HOST, HeaderValue::from_static("rebind.example:8080"));
        assert!(check_origin(&secured(), &headers).is_ok());
    }

    #[test]
    fn foreign_origins_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("steward.example:443"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(check_origin(&secured(), &headers).is_err());
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://steward.example:443"));
        assert!(check_origin(&secured(), &headers).is_ok());
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://localhost:3000"));
        assert!(check_origin(&secured(), &headers).is_err());
        // Dev mode answers requests addressed to loopback names only.
        assert!(check_origin(&Config::default(), &headers).is_err());
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(check_origin(&Config::default(), &headers).is_ok());
        headers.insert(header::HOST, HeaderValue::from_static("[::1]:8080"));
        assert!(check_origin(&Config::default(), &headers).is_ok());
        let listed = Config {
            allowed_origins: vec!["https://intranet.example".into()],
            ..secured()
        };
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://intranet.example"));
        assert!(check_origin(&listed, &headers).is_ok());
    }
}
