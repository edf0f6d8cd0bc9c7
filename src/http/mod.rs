//! The transport layer: the router, the websocket endpoint, and auth.
//! Handlers translate between HTTP and the domain; no plan logic lives here.

pub mod api;
pub mod auth;
pub mod rest;
pub mod ws;

use crate::app::App;
use axum::Router;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub fn router(app: App) -> Router {
    let static_files = ServeDir::new(&app.config.static_dir);
    let body_limit = app.config.limits.max_body_bytes;
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes().layer(cors(&app)))
        // The widget's script and styles shrink to a third with gzip.
        .fallback_service(
            tower::ServiceBuilder::new()
                .layer(CompressionLayer::new().gzip(true))
                .service(static_files),
        )
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(app)
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

pub fn unavailable() -> Response {
    let body =
        serde_json::json!({"error": {"code": "unavailable", "message": "storage is unavailable; try again later"}});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}
