//! 7.7 pay by bank transfer: the terminal's registrations (signed), the
//! sandbox bank's credit, and the collection account's balance and
//! statement (organisation key).

use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use proto::wire::{
    CreditStatus, Page, PageQuery, SandboxTransfer, StatementFilter, TransferRegistration,
};
use proto::{Currency, Reference};
use serde_json::Value;

use crate::body::{RawBody, decode};
use crate::error::ApiErr;

use super::{ApiResult, Org, P, Q, S, ok, page_params, session_id, verify_terminal};

/// Longest `reference` a statement filter takes.
const MAX_FILTER_REFERENCE: usize = 64;

pub(super) async fn register(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P(tid): P<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, &body, tid).await?;
    let req: TransferRegistration = decode(&body)?;
    let r = sim
        .mutate(|st, _, now| st.register_transfer(&tid, req, now))
        .await?;
    if r.replayed {
        let mut resp = ok(StatusCode::OK, r.expected);
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }
    tracing::info!(
        terminal = %tid,
        reference = %r.expected.reference,
        "transfer registered"
    );
    Ok(ok(StatusCode::CREATED, r.expected))
}

pub(super) async fn cancel(
    AxState(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    P((tid, r)): P<(String, String)>,
) -> ApiResult {
    let tid = verify_terminal(&sim, &method, &uri, &headers, b"", tid).await?;
    let r = Reference::new(r.clone()).map_err(|_| ApiErr::not_found("transfer", &r))?;
    let e = sim
        .mutate(|st, _, now| st.cancel_transfer(&tid, &r, now))
        .await?;
    Ok(ok(StatusCode::OK, e))
}

pub(super) async fn sandbox_credit(AxState(sim): S, _: Org, RawBody(body): RawBody) -> ApiResult {
    let req: SandboxTransfer = decode(&body)?;
    let entry = sim.mutate(|st, _, now| st.sandbox_credit(req, now)).await?;
    Ok(ok(StatusCode::CREATED, entry))
}

pub(super) async fn balance(AxState(sim): S, _: Org, P(id): P<String>) -> ApiResult {
    let id = session_id(id)?;
    let b = sim.lock().state.account_balance(&id)?;
    Ok(ok(StatusCode::OK, b))
}

pub(super) async fn statement(
    AxState(sim): S,
    _: Org,
    P(id): P<String>,
    Q(q): Q<PageQuery>,
    RawBody(body): RawBody,
) -> ApiResult {
    let id = session_id(id)?;
    let (page, size) = page_params(q.page, q.size)?;
    let filter = statement_filter(&body)?;
    let all = sim.lock().state.account_statement(&id, &filter)?;
    Ok(ok(StatusCode::OK, Page::slice(all, page, size)))
}

fn invalid(field: &str, expected: &str) -> ApiErr {
    ApiErr::bad_request(
        format!("invalid_{field}"),
        format!("{field}: expected {expected}"),
    )
}

/// The statement's filter, field by field so that each error names its
/// field and what it takes. An empty body, `{}` and `null` fields are no
/// filter; unknown fields are ignored.
pub(crate) fn statement_filter(body: &[u8]) -> Result<StatementFilter, ApiErr> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StatementFilter::default());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiErr::bad_request(
            proto::wire::codes::MALFORMED_JSON,
            format!("malformed JSON: {e}"),
        )
    })?;
    let Value::Object(map) = v else {
        return Err(ApiErr::bad_request(
            proto::wire::codes::MALFORMED_JSON,
            "the filter must be a JSON object",
        ));
    };
    let field = |name: &str| map.get(name).filter(|v| !v.is_null());
    let currency = match field("currency") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| Currency::parse(s).ok())
                .ok_or_else(|| invalid("currency", "\"NGN\""))?,
        ),
    };
    let status = match field("status") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| s.parse::<CreditStatus>().ok())
                .ok_or_else(|| invalid("status", "one of matched, partial, unmatched"))?,
        ),
    };
    let reference = match field("reference") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .filter(|s| s.chars().count() <= MAX_FILTER_REFERENCE)
                .map(str::to_owned)
                .ok_or_else(|| {
                    invalid(
                        "reference",
                        &format!("a string of at most {MAX_FILTER_REFERENCE} characters"),
                    )
                })?,
        ),
    };
    Ok(StatementFilter {
        currency,
        status,
        reference,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_filter_is_read_field_by_field() {
        assert_eq!(statement_filter(b"").unwrap(), StatementFilter::default());
        assert_eq!(
            statement_filter(b" {} ").unwrap(),
            StatementFilter::default()
        );
        let f = statement_filter(
            br#"{"status":"partial","currency":"NGN","reference":"trf_1","other":1}"#,
        )
        .unwrap();
        assert_eq!(f.status, Some(CreditStatus::Partial));
        assert_eq!(f.currency, Some(Currency::Ngn));
        assert_eq!(f.reference.as_deref(), Some("trf_1"));
        let cases: [(&[u8], &str, &str); 6] = [
            (
                br#"{"status":"bogus"}"#,
                "invalid_status",
                "status: expected one of matched, partial, unmatched",
            ),
            (
                br#"{"status":3}"#,
                "invalid_status",
                "status: expected one of",
            ),
            (
                br#"{"currency":"USD"}"#,
                "invalid_currency",
                "currency: expected",
            ),
            (
                br#"{"reference":7}"#,
                "invalid_reference",
                "reference: expected",
            ),
            (br#"[]"#, "malformed_json", "object"),
            (b"{nope", "malformed_json", "malformed JSON"),
        ];
        for (body, code, msg) in cases {
            let e = statement_filter(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.code, code, "{}", String::from_utf8_lossy(body));
            assert!(e.message.contains(msg), "{}", e.message);
        }
        let long = format!(r#"{{"reference":"{}"}}"#, "r".repeat(65));
        assert_eq!(
            statement_filter(long.as_bytes()).unwrap_err().code,
            "invalid_reference"
        );
    }
}
