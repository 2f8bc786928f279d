//! Unit tests of the signed client: clock sanity, response classification, skew learning.

#[test]
fn a_clock_before_the_build_is_refused_for_tls() {
    let build = 1_800_000_000;
    let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
    assert!(clock_before_build(at(build - 1), build).is_some());
    assert!(
        clock_before_build(at(0), build)
            .unwrap()
            .contains("TLS refused")
    );
    assert_eq!(clock_before_build(at(build), build), None);
    assert_eq!(clock_before_build(at(build + 86_400), build), None);
    // This build has a real stamp, and the machine's clock is after it.
    assert!(build_epoch() > 1_700_000_000, "{}", build_epoch());
    assert_eq!(clock_before_build(SystemTime::now(), build_epoch()), None);
}

use super::*;

#[test]
fn success_envelope_gives_data() {
    let v: serde_json::Value =
        classify("GET /x", 200, None, br#"{"success":true,"data":{"a":1}}"#).unwrap();
    assert_eq!(v["a"], 1);
    let unit: () = classify("POST /x", 201, None, br#"{"success":true}"#).unwrap();
    assert_eq!(unit, ());
}

#[test]
fn broken_success_bodies_are_invalid_responses() {
    for body in [
        &b"<html>oops</html>"[..],
        br#"{"data":{}}"#,
        br#"{"success":false,"error":{"code":"x","message":"y"}}"#,
        b"",
    ] {
        let r: Result<serde_json::Value, _> = classify("GET /x", 200, None, body);
        let e = r.unwrap_err();
        assert!(
            matches!(e, ClientError::InvalidResponse { status: 200, .. }),
            "{e:?}"
        );
        assert!(e.is_retryable());
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        id: u32,
    }
    let r: Result<Shape, _> = classify(
        "GET /x",
        200,
        None,
        br#"{"success":true,"data":{"id":"no"}}"#,
    );
    assert!(matches!(r, Err(ClientError::InvalidResponse { .. })));
}

#[test]
fn statuses_are_classified() {
    let err = |status: u16, body: &[u8]| {
        classify::<serde_json::Value>("POST /x", status, Some(Duration::from_secs(2)), body)
            .unwrap_err()
    };
    for s in [408, 429, 500, 502, 503, 599] {
        let e = err(s, b"");
        assert!(matches!(e, ClientError::Retryable { .. }), "{s}");
        assert_eq!(e.status(), Some(s));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    }
    let e = err(
        422,
        br#"{"success":false,"error":{"code":"amount_decimals","message":"two decimals"}}"#,
    );
    assert_eq!(e.code(), Some("amount_decimals"));
    assert!(!e.is_retryable());
    let e = err(404, b"not found");
    assert_eq!(e.code(), Some("http_404"));
    assert!(e.to_string().contains("not found"));
    assert!(matches!(err(302, b""), ClientError::InvalidResponse { .. }));
}

#[test]
fn retry_after_forms() {
    let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
    assert_eq!(parse_retry_after("-5", now), None);
    assert_eq!(parse_retry_after("soon", now), None);
}
