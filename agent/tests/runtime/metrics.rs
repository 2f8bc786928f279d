//! `[metrics] listen` (SPEC 8.2): after a payment, `GET /metrics` over
//! loopback is OpenMetrics text a strict parser accepts, with the
//! payment counted, its tap → result observed and the build described;
//! the heartbeat carries the summary to the sim's terminal list.

use openmetrics_parser::{MetricFamily, OpenMetricsType, OpenMetricsValue};

use super::*;

type Family = MetricFamily<OpenMetricsType, OpenMetricsValue>;

/// Scrapes `/metrics` and parses it strictly.
async fn scrape(http: &reqwest::Client, addr: SocketAddr) -> (String, Vec<Family>) {
    let r = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not OpenMetrics text: {e:?}\n{text}"));
    let families = parsed.families.into_values().collect();
    (text, families)
}

fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|f| f.family_name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// The one sample of `f` whose labels include `labels` (name, value).
fn sample<'a>(f: &'a Family, labels: &[(&str, &str)]) -> &'a OpenMetricsValue {
    f.iter_samples()
        .find(|s| {
            let set = s.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| &s.value)
        .unwrap_or_else(|| panic!("no sample {labels:?} in {}", f.family_name))
}

/// The value of a gauge's or counter's sample (all of ours are integers).
fn value(f: &Family, labels: &[(&str, &str)]) -> i64 {
    let n = match sample(f, labels) {
        OpenMetricsValue::Counter(c) => &c.value,
        OpenMetricsValue::Gauge(g) => g,
        other => panic!("not a number: {other:?}"),
    };
    n.as_i64()
        .unwrap_or_else(|| panic!("{} is not an integer: {n:?}", f.family_name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_payment_and_reach_the_sims_terminal_list() {
    let env = Env::new().await;
    let mut config = env.config();
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let agent = env.start_agent_with(config).await;
    let addr = agent.metrics_addr().expect("metrics served");

    let (_, before) = scrape(&env.http, addr).await;
    let counted = before
        .iter()
        .find(|f| f.family_name == "pos_payments")
        .map_or(0, |f| f.iter_samples().count());
    assert_eq!(counted, 0, "no payment yet");
    assert_eq!(value(family(&before, "pos_link_up"), &[]), 1);

    let pid = env.create_payment("1500.00", "POS-M1").await;
    wait_screen(&agent, "tap card", |s| s.screen == ui::ScreenName::TapCard).await;
    tap(&env.http, &agent, "visa_ok").await;
    wait_screen(&agent, "approved", |s| s.screen == ui::ScreenName::Approved).await;
    env.wait_payment_status(&pid, "approved").await;

    let (text, after) = scrape(&env.http, addr).await;
    assert!(text.ends_with("# EOF\n"), "{text}");
    let payments = family(&after, "pos_payments");
    assert_eq!(payments.family_type, OpenMetricsType::Counter);
    assert_eq!(payments.iter_samples().count(), 1, "{text}");
    assert_eq!(
        value(
            payments,
            &[
                ("kind", "sale"),
                ("outcome", "approved"),
                ("decision", "online")
            ]
        ),
        1
    );
    let hist = family(&after, "pos_tap_to_result_seconds");
    assert_eq!(hist.family_type, OpenMetricsType::Histogram);
    let OpenMetricsValue::Histogram(h) = sample(hist, &[]) else {
        panic!("not a histogram: {hist:?}");
    };
    assert_eq!(h.count, Some(1), "{text}");
    let sum = h.sum.as_ref().map(|s| s.as_f64()).unwrap();
    assert!(sum > 0.0 && sum < 10.0, "tap to result took {sum} s");
    assert_eq!(h.buckets.len(), 14, "13 bounds from 1 ms to 10 s, and +Inf");
    let info = family(&after, "pos_build");
    assert_eq!(info.family_type, OpenMetricsType::Info);
    let build = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("commit", env!("BUILD_GIT_COMMIT")),
        ("target", env!("BUILD_TARGET")),
    ];
    assert!(matches!(sample(info, &build), OpenMetricsValue::Info));
    assert_ne!(env!("BUILD_TARGET"), "unknown");
    for gauge in [
        "pos_outbox_queued",
        "pos_outbox_parked",
        "pos_outbox_oldest_age_seconds",
        "pos_link_up",
    ] {
        assert_eq!(family(&after, gauge).family_type, OpenMetricsType::Gauge);
    }
    for counter in ["pos_reader_errors", "pos_printer_errors"] {
        assert_eq!(value(family(&after, counter), &[]), 0);
    }

    // The heartbeat carries the summary; the sim lists it per terminal.
    let shown = eventually("the terminal list to show the payment", || async {
        let (_, v) = env
            .org(
                reqwest::Method::GET,
                &format!("/v1/terminals?session_id={}", env.session_id),
                None,
            )
            .await;
        let m = v["data"]["content"][0]["metrics"].clone();
        (m["payments_approved"] == 1).then_some(m)
    })
    .await;
    assert_eq!(shown["payments_declined"], 0);
    assert_eq!(shown["payments_offline"], 0);
    assert_eq!(shown["link_up"], true);
    let p50 = shown["tap_to_result_p50_ms"].as_u64().unwrap();
    assert!(p50 < 10_000, "{shown}");
    assert_eq!(shown["tap_to_result_p99_ms"].as_u64(), Some(p50));
    agent.shutdown().await.unwrap();
}
