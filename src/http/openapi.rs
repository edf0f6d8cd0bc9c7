//! The `/api` routes, each registered together with its OpenAPI
//! description, so the router and `/api/openapi.json` cannot disagree.

use super::{conversation, links, notifications, plans, preferences, proposals};
use crate::app::App;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "steward",
        description = "REST API of steward. Authentication as on /ws: `Authorization: Bearer <token>` or \
                       `?token=`; in loopback dev mode `?user=<name>`. Errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    tags(
        (name = "plans", description = "The user's plans and their history"),
        (name = "proposals", description = "Changes waiting for the user's yes or no"),
        (name = "conversation", description = "The conversation as the widget shows it"),
        (name = "preferences", description = "Time zone, email, quiet hours, digest, channels"),
        (name = "notifications", description = "Notifications, web push, email links, calendar feed")
    )
)]
struct ApiDoc;

/// Every `/api` route, with the document at `/api/openapi.json`.
pub(crate) fn routes() -> Router<App> {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(plans::list_plans))
        .routes(routes!(plans::get_plan))
        .routes(routes!(plans::plan_history))
        .routes(routes!(proposals::open_proposals))
        .routes(routes!(proposals::confirm_proposal))
        .routes(routes!(conversation::conversation))
        .routes(routes!(preferences::get_preferences, preferences::put_preferences))
        .routes(routes!(notifications::notifications))
        .routes(routes!(notifications::push_key))
        .routes(routes!(notifications::subscribe, notifications::unsubscribe_push))
        .routes(routes!(links::verify_email))
        .routes(routes!(links::unsubscribe_page, links::unsubscribe))
        .routes(routes!(links::calendar_link))
        .routes(routes!(links::calendar_feed))
        .split_for_parts();
    let doc = std::sync::Arc::new(doc);
    router.route(
        "/api/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}
