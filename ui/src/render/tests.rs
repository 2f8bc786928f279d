//! Unit tests of the layout: panes, fitting, compact columns.

use super::*;
use crate::samples::sample_screens;

#[test]
fn every_sample_fits_whole_on_common_panels() {
    // No element is left out on these panels: the full or the compact
    // column fits the body.
    for (name, screen) in sample_screens() {
        for (w, h) in [(240, 320), (480, 320), (480, 272), (320, 240), (320, 480)] {
            let (body, _) = body_area(&screen, Size::new(w, h));
            for (area, col) in
                panes(&screen, body, Language::En, receipt_qr(&screen).as_ref()).panes
            {
                assert!(
                    col.height() <= area.size.height,
                    "{name} at {w}x{h}: {} px of content in a {} px body",
                    col.height(),
                    area.size.height
                );
            }
        }
    }
}

#[test]
fn compact_is_used_only_when_needed() {
    let (_, screen) = sample_screens()
        .into_iter()
        .find(|(n, _)| *n == "declined")
        .expect("declined sample");
    let (body, _) = body_area(&screen, Size::new(480, 320));
    assert!(
        !layout(&screen, body, Language::En, receipt_qr(&screen).as_ref())
            .0
            .compact
    );
    let (body, _) = body_area(&screen, Size::new(480, 240));
    assert!(
        layout(&screen, body, Language::En, receipt_qr(&screen).as_ref())
            .0
            .compact
    );
}

fn sample(name: &str) -> Screen {
    sample_screens()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no sample {name}"))
}

fn frame(screen: &Screen, w: u32, h: u32) -> hal::Framebuffer {
    let mut fb = hal::Framebuffer::new(Size::new(w, h));
    let Ok(()) = render(screen, &mut fb);
    fb
}

#[test]
fn the_operator_is_named_in_the_header_only_when_logged_in() {
    let with = sample("amount_entry");
    let mut without = with.clone();
    without.status.operator = None;
    for (w, h) in [(240, 320), (480, 320)] {
        let (a, b) = (frame(&with, w, h), frame(&without, w, h));
        let header = (w * HEADER_ROW1) as usize;
        assert_ne!(a.pixels()[..header], b.pixels()[..header], "{w}x{h}");
        assert_eq!(a.pixels()[header..], b.pixels()[header..], "{w}x{h}");
    }
}

#[test]
fn the_cart_stays_at_the_bottom_of_a_long_catalog() {
    let mut screen = sample("catalog");
    if let View::Catalog { items, first, .. } = &mut screen.view {
        let more: Vec<_> = (0..100u32)
            .map(|i| crate::model::CatalogLine {
                number: i + 20,
                ..items[0].clone()
            })
            .collect();
        items.extend(more);
        *first = 5;
    }
    for (w, h) in [(240, 320), (480, 320), (480, 272), (320, 240)] {
        let (body, _) = body_area(&screen, Size::new(w, h));
        let (col, _) = layout(&screen, body, Language::En, receipt_qr(&screen).as_ref());
        assert_eq!(col.height(), body.size.height, "{w}x{h}");
        assert!(
            matches!(col.items().last(), Some(Item::Hint(..))),
            "{w}x{h}: the keys are the last line"
        );
    }
}

#[test]
fn a_report_takes_two_panes_on_a_wide_body() {
    let screen = sample("report_x");
    for (w, h, n) in [(240, 320, 1), (320, 240, 1), (480, 320, 2), (480, 272, 2)] {
        let (body, _) = body_area(&screen, Size::new(w, h));
        assert_eq!(
            panes(&screen, body, Language::En, receipt_qr(&screen).as_ref())
                .panes
                .len(),
            n,
            "{w}x{h}"
        );
    }
}

#[test]
fn the_receipt_code_is_shown_whole_on_common_panels() {
    let long = format!("https://api.kler.africa/r/{}", "x".repeat(100));
    for name in ["approved", "approved_offline", "declined"] {
        let mut screen = sample(name);
        for url in [None, Some(long.clone())] {
            if let Some(url) = &url {
                if let View::Approved { receipt_url, .. } | View::Declined { receipt_url, .. } =
                    &mut screen.view
                {
                    *receipt_url = Some(url.clone());
                }
            }
            let qr = receipt_qr(&screen);
            for (w, h) in [(240, 320), (480, 320), (480, 272), (320, 240), (320, 480)] {
                let (body, _) = body_area(&screen, Size::new(w, h));
                let panes = panes(&screen, body, Language::En, qr.as_ref()).panes;
                let codes = panes
                    .iter()
                    .flat_map(|(_, col)| col.items())
                    .filter(|i| matches!(i, Item::Qr(..)))
                    .count();
                assert_eq!(codes, 1, "{name} at {w}x{h}");
                for (area, col) in &panes {
                    assert!(col.height() <= area.size.height, "{name} at {w}x{h}");
                }
            }
        }
    }
}

#[test]
fn a_tip_adds_a_line_to_the_payment_screens() {
    let with = sample("tap_card_tip");
    let mut without = with.clone();
    if let View::TapCard { tip, .. } = &mut without.view {
        *tip = None;
    }
    let (body, _) = body_area(&with, Size::new(240, 320));
    let lines = |s: &Screen| layout(s, body, Language::En, None).0.items().len();
    assert_eq!(lines(&with), lines(&without) + 2);
}
