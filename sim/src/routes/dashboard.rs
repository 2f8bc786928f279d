//! SPEC 8.4, the dashboard: its page and assets (embedded, no build step),
//! the lists it reads (`GET /v1/sessions`, `GET /v1/payments`) and its
//! event stream (`GET /v1/dashboard/events`), all but the page and assets
//! behind the organisation key.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::SessionId;
use proto::wire::{Page, Timestamp};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{ApiResult, Org, Q, S, ok, page_params};

const PAGE: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/dashboard.js");
const STYLE: &str = include_str!("../dashboard/dashboard.css");

/// Only the sim's own scripts, styles and API: no inline code, no other
/// origin, and no referrer (the page URL may carry the key's fragment,
/// which browsers never send, but be sure).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// A comment line keeps proxies and the browser from timing the stream out.
const PING_EVERY: Duration = Duration::from_secs(15);

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    session_id: Option<SessionId>,
    page: Option<u32>,
    size: Option<u32>,
}

/// `GET /v1/sessions`: every session as `GET /v1/sessions/:id` shows it,
/// newest first.
pub(super) async fn list_sessions(AxState(sim): S, _: Org, Q(q): Q<ListQuery>) -> ApiResult {
    let (page, size) = page_params(q.page, q.size)?;
    let now = Timestamp::now();
    let g = sim.lock();
    let mut all: Vec<_> = g
        .state
        .sessions
        .keys()
        .filter_map(|id| g.state.session_view(id, now, &g.live))
        .collect();
    all.sort_by(|a, b| {
        (b.created_at.unix(), &b.session_id).cmp(&(a.created_at.unix(), &a.session_id))
    });
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

/// `GET /v1/payments?session_id=`: the payments (sales and refunds) of one
/// session, or of all, newest first.
pub(super) async fn list_payments(AxState(sim): S, _: Org, Q(q): Q<ListQuery>) -> ApiResult {
    let (page, size) = page_params(q.page, q.size)?;
    let g = sim.lock();
    if let Some(s) = &q.session_id {
        g.state.known_session(s)?;
    }
    let mut all: Vec<_> = g
        .state
        .payments
        .values()
        .map(|p| &p.payment)
        .filter(|p| q.session_id.as_ref().is_none_or(|s| &p.session_id == s))
        .cloned()
        .collect();
    all.sort_by(|a, b| {
        (b.created_at.unix(), &b.payment_id).cmp(&(a.created_at.unix(), &a.payment_id))
    });
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

struct Events {
    state: watch::Receiver<u64>,
    webhooks: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    pings: Interval,
    first: bool,
}

/// `GET /v1/dashboard/events`: Server-Sent Events, `event: changed` once at
/// the start and then whenever the state or the webhook log changed (changes
/// that come while the client reads are folded into one event), `: ping`
/// every 15 s. It ends only when the sim stops; the page reconnects.
pub(super) async fn events(AxState(sim): S, _: Org) -> Response {
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let events = Events {
        state: sim.changed.subscribe(),
        webhooks: sim.webhooks.changed(),
        shutdown: sim.shutdown.clone(),
        pings,
        first: true,
    };
    let stream = futures_util::stream::unfold(events, |mut e| async move {
        if e.first {
            e.first = false;
            e.state.borrow_and_update();
            e.webhooks.borrow_and_update();
            return Some((Ok::<Bytes, Infallible>(changed(0)), e));
        }
        tokio::select! {
            r = e.state.changed() => {
                r.ok()?;
                let n = *e.state.borrow_and_update();
                Some((Ok(changed(n)), e))
            }
            r = e.webhooks.changed() => {
                r.ok()?;
                let n = *e.state.borrow();
                e.webhooks.borrow_and_update();
                Some((Ok(changed(n)), e))
            }
            _ = e.pings.tick() => Some((Ok(Bytes::from_static(b": ping\n\n")), e)),
            _ = crate::stopped(&mut e.shutdown) => None,
        }
    });
    crate::sse::event_stream(Body::from_stream(stream))
}

fn changed(n: u64) -> Bytes {
    Bytes::from(format!("event: changed\ndata: {n}\n\n"))
}
