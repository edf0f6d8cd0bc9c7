//! The transport layer: the router, the websocket endpoint, REST (one file
//! per resource), authentication, and the one error body. Handlers
//! translate between HTTP and the plan service; no plan logic lives here.

mod act;
mod admin;
pub mod auth;
mod conversation;
mod error;
mod extract;
mod links;
mod listen;
mod notifications;
mod openapi;
mod plans;
mod preferences;
mod proposals;
mod rate;
mod ws;

pub(crate) use error::ApiError;

use crate::app::App;
use axum::Router;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

pub(crate) fn router(app: App) -> Router {
    let static_files = ServeDir::new(&app.config.static_dir);
    let body_limit = app.config.limits.max_body_bytes;
    let api = openapi::routes()
        // Unknown routes and methods under /api answer in the same error
        // body as everything else, not with the static files' 404.
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { ApiError::for_status(StatusCode::NOT_FOUND) }),
        )
        .method_not_allowed_fallback(|| async { ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED) })
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::map_response(json_errors))
        .layer(cors(&app));
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(admin::ready))
        .route("/metrics", get(admin::metrics))
        .route("/act/{action}/{plan}/{step}/{state}", get(act::show).post(act::act))
        .route("/admin/users/{user}/plans", get(admin::plans))
        .route("/admin/users/{user}/plans/{plan}", get(admin::plan))
        .route("/admin/steps/stalled", get(admin::stalled))
        .route(
            "/admin/users/{user}/plans/{plan}/steps/{step}/{action}",
            axum::routing::post(admin::act),
        )
        // The widget's script and styles shrink to a third with gzip.
        .fallback_service(
            tower::ServiceBuilder::new()
                .layer(CompressionLayer::new().gzip(true))
                .service(static_files),
        )
        // The API has its own limit, answered in its error body.
        .layer(RequestBodyLimitLayer::new(body_limit))
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(app.clone(), rate::per_address))
        .layer(axum::middleware::map_response(security_headers))
        .layer(RequestBodyTimeoutLayer::new(app.config.limits.read_timeout()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(app)
}

/// Serves until `shutdown` resolves (or the app is stopped); with
/// `config.background`, the scheduler and notifier run alongside. Returns
/// once every task the server spawned has stopped and the store is quiet.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Stops every task however this future ends, aborted included, so
    // none outlives the server and its store.
    let _stop_on_drop = app.stopping().drop_guard();
    if let Err(e) = app.start_relay().await {
        return Err(std::io::Error::other(format!("joining the other instances: {e}")));
    }
    if app.config.background
        && let Err(e) = app.start_background().await
    {
        return Err(std::io::Error::other(format!("starting the scheduler: {e}")));
    }
    let stopping = app.stopping();
    listen::raise_file_limit(app.config.limits.max_connections);
    let listen = listen::Listen {
        max_connections: app.config.limits.max_connections,
        read_timeout: app.config.limits.read_timeout(),
        metrics: app.metrics.clone(),
    };
    let store = app.store.clone();
    let broken = async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if let Some(why) = store.broken().await {
                return why;
            }
        }
    };
    let mut failure = None;
    listen::accept_loop(listen, router(app.clone()), listener, async {
        tokio::select! {
            _ = shutdown => {}
            _ = stopping.cancelled() => {}
            why = broken => {
                tracing::error!(error = %why, "the store takes no more writes; stopping so that a supervisor restarts steward");
                failure = Some(why);
            }
        }
    })
    .await;
    app.shutdown().await;
    match failure {
        // Exits non-zero: sled recovers only by reopening, which a restart
        // does once the disk takes writes again.
        Some(why) => Err(std::io::Error::other(format!(
            "the store stopped taking writes ({why}); every acknowledged change is on disk. Restart steward once \
             the disk has space (a supervisor such as systemd with Restart=on-failure does it)"
        ))),
        None => Ok(()),
    }
}

/// Every answer: `nosniff`. Pages (the demo, the console, the pages links
/// open): a strict Content-Security-Policy (this origin's scripts only, no
/// framing) and no referrer, so a link's token never leaks to another
/// site. The widget's script and styles are not pages: any site may embed
/// them with a `<script>` tag.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    let page = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if page {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
            ),
        );
        headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    }
    response
}

/// Responses made below the handlers (the body limit's 413) carry the
/// error body too.
async fn json_errors(response: Response) -> Response {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE && !json {
        return ApiError::for_status(status).into_response();
    }
    response
}

/// The span of a request names its path, never its query: `?token=`
/// (websockets cannot send headers) must not reach the logs.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
}

/// Cross-origin REST for the widget embedded on another site: the same
/// origins `/ws` accepts, with the bearer token in a header (no cookies).
fn cors(app: &App) -> CorsLayer {
    let config = app.config.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |_, parts| {
            auth::check_origin(&config, &parts.headers).is_ok()
        }))
        .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}
