//! Golden images (pixel-exact) and bounds checks for every screen.
//!
//! Regenerate the golden PNGs with `UPDATE_GOLDEN=1 cargo test -p ui`, then
//! look at every changed image before committing it.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use hal::{Framebuffer, decode_png_rgb888};
use proptest::prelude::*;
use proto::{Currency, Money, Total};
use ui::samples::sample_screens;
use ui::{
    Amount, CancelReason, CardSummary, CatalogLine, DeclineReason, ItemLine, MenuEntry,
    OperatorTag, ReportKind, Screen, ScreenName, SessionTotals, ShiftReport, StatusLine, Tally,
    TipChoice, View, render,
};

const SIZES: [(u32, u32); 2] = [(240, 320), (480, 320)];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn render_frame(screen: &Screen, w: u32, h: u32) -> Framebuffer {
    let mut fb = Framebuffer::new(Size::new(w, h));
    let Ok(()) = render(screen, &mut fb);
    fb
}

#[test]
fn golden_images_match_pixel_for_pixel() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let dir = golden_dir();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden-actual");
    let mut failures = Vec::new();
    let mut expected_files = BTreeSet::new();
    for (name, screen) in sample_screens() {
        for (w, h) in SIZES {
            let file = format!("{name}_{w}x{h}.png");
            expected_files.insert(file.clone());
            let path = dir.join(&file);
            let frame = render_frame(&screen, w, h);
            if update {
                std::fs::write(&path, frame.to_png().unwrap()).unwrap();
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                failures.push(format!("{file}: missing (run with UPDATE_GOLDEN=1)"));
                continue;
            };
            let (gw, gh, golden) = decode_png_rgb888(&bytes).unwrap();
            let actual = frame.to_rgb888();
            if (gw, gh) != (w, h) || golden != actual {
                let differing = golden
                    .chunks(3)
                    .zip(actual.chunks(3))
                    .filter(|(a, b)| a != b)
                    .count();
                std::fs::create_dir_all(&out).unwrap();
                let actual_path = out.join(&file);
                std::fs::write(&actual_path, frame.to_png().unwrap()).unwrap();
                failures.push(format!(
                    "{file}: {differing} pixels differ; actual written to {}",
                    actual_path.display()
                ));
            }
        }
    }
    if !update {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let file = entry.unwrap().file_name().to_string_lossy().into_owned();
            if file.ends_with(".png") && !expected_files.contains(&file) {
                failures.push(format!("{file}: stale golden image with no sample screen"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

/// The QR codes on the golden result screens, decoded as a phone would
/// read them off the panel.
fn qr_codes_in(file: &str) -> Vec<String> {
    let bytes = std::fs::read(golden_dir().join(file)).unwrap();
    let (w, h, rgb) = decode_png_rgb888(&bytes).unwrap();
    let (w, h) = (w as usize, h as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = &rgb[(y * w + x) * 3..][..3];
        ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
    });
    img.detect_grids()
        .iter()
        .map(|g| g.decode().map(|(_, text)| text).unwrap_or_default())
        .collect()
}

#[test]
fn the_receipt_qr_codes_scan_to_their_urls() {
    use ui::samples::{DECLINED_RECEIPT_URL, LONG_RECEIPT_URL, OFFLINE_RECEIPT_URL, RECEIPT_URL};
    for (name, url) in [
        ("approved", RECEIPT_URL),
        ("approved_long_receipt", LONG_RECEIPT_URL),
        ("approved_offline", OFFLINE_RECEIPT_URL),
        ("declined", DECLINED_RECEIPT_URL),
    ] {
        for (w, h) in SIZES {
            let file = format!("{name}_{w}x{h}.png");
            assert_eq!(qr_codes_in(&file), vec![url.to_owned()], "{file}");
        }
    }
    // A result without a receipt shows no code.
    assert!(qr_codes_in("declined_network_480x320.png").is_empty());
}

#[test]
fn every_amount_shows_the_naira_sign() {
    for (name, screen) in sample_screens() {
        if let Some(amount) = screen.amount() {
            assert!(amount.display().starts_with('\u{20A6}'), "{name}");
        }
    }
}

#[test]
fn every_screen_name_has_a_golden_sample() {
    let names: BTreeSet<&str> = sample_screens()
        .iter()
        .map(|(_, s)| s.name().as_str())
        .collect();
    for name in ScreenName::ALL {
        assert!(names.contains(name.as_str()), "no sample for {name}");
    }
}

#[test]
fn result_screens_differ_in_shape_not_only_colour() {
    // Render approved, declined and cancelled, reduce each to black/white by
    // "is this pixel the body's background colour", and check the shapes
    // (icon and word) differ: a colour-blind cashier sees a difference.
    let samples = sample_screens();
    let masks: Vec<Vec<bool>> = ["approved", "declined", "cancelled"]
        .iter()
        .map(|want| {
            let (_, s) = samples.iter().find(|(n, _)| n == want).unwrap();
            let fb = render_frame(s, 240, 320);
            let bg = fb.pixel(Point::new(2, 300)).unwrap();
            fb.pixels().iter().map(|c| *c == bg).collect()
        })
        .collect();
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let differing = masks[i]
            .iter()
            .zip(&masks[j])
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            differing > 2_000,
            "screens {i} and {j} differ in only {differing} pixels"
        );
    }
}

/// A target that records every pixel drawn outside its bounds.
struct BoundsCheck {
    size: Size,
    drawn: usize,
    outside: Vec<Point>,
}

impl OriginDimensions for BoundsCheck {
    fn size(&self) -> Size {
        self.size
    }
}

impl DrawTarget for BoundsCheck {
    type Color = Rgb565;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Rgb565>>,
    {
        let bounds = self.bounding_box();
        for Pixel(p, _) in pixels {
            self.drawn += 1;
            if !bounds.contains(p) && self.outside.len() < 10 {
                self.outside.push(p);
            }
        }
        Ok(())
    }
}

fn assert_in_bounds(screen: &Screen, w: u32, h: u32) {
    let mut t = BoundsCheck {
        size: Size::new(w, h),
        drawn: 0,
        outside: Vec::new(),
    };
    let Ok(()) = render(screen, &mut t);
    assert!(
        t.drawn >= (w * h) as usize,
        "the background was not fully drawn"
    );
    assert!(
        t.outside.is_empty(),
        "{} at {w}x{h} drew outside the screen at {:?}",
        screen.name(),
        t.outside
    );
}

#[test]
fn samples_stay_inside_every_supported_size() {
    for (_, screen) in sample_screens() {
        for (w, h) in [
            (240, 320),
            (480, 320),
            (320, 240),
            (320, 480),
            (480, 272),
            (800, 480),
        ] {
            assert_in_bounds(&screen, w, h);
        }
    }
}

#[test]
fn long_names_are_cut_with_an_ellipsis() {
    // The header of the long-names sample ends its event name with "...":
    // render it twice, with the full name and with the name cut to fit,
    // and the header pixels must be identical.
    let (_, long) = sample_screens()
        .into_iter()
        .find(|(n, _)| *n == "tap_card_long_names")
        .unwrap();
    let mut cut = long.clone();
    // 224 px less the badge: the name is cut after "Aiku", then "...".
    cut.status.event_name = "Felabration Ojo Aiku...".to_owned();
    let a = render_frame(&long, 240, 320);
    let b = render_frame(&cut, 240, 320);
    let header = (240 * 24) as usize;
    assert_eq!(&a.pixels()[..header], &b.pixels()[..header]);
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        "[a-zA-Z ]{0,120}",
        "\\PC{0,80}",
        Just("W".repeat(500)),
    ]
}

fn any_amount() -> impl Strategy<Value = Amount> {
    (1u64..=1_000_000_000).prop_map(|m| Amount::new(Money::from_minor(m).unwrap(), Currency::Ngn))
}

fn any_tally() -> impl Strategy<Value = Tally> {
    (any::<u64>(), any::<u64>()).prop_map(|(count, total)| Tally {
        count,
        total: Total(total),
    })
}

/// A receipt URL of up to the length a backend gives, or none.
fn any_url() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("https://[a-z.]{1,20}/r/[A-Za-z0-9_/-]{0,60}")
}

fn any_message() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any_text())
}

fn any_view() -> impl Strategy<Value = View> {
    let tip = || proptest::option::of(any_amount());
    prop_oneof![
        any_text().prop_map(|message| View::Booting { message }),
        Just(View::Idle),
        (any_amount(), tip()).prop_map(|(amount, tip)| View::TapCard { amount, tip }),
        (any_amount(), any_text(), tip()).prop_map(|(amount, message, tip)| View::Processing {
            amount,
            message,
            tip
        }),
        (
            any_amount(),
            any_text(),
            any_text(),
            any::<bool>(),
            tip(),
            any_url()
        )
            .prop_map(|(amount, brand, last4, offline, tip, receipt_url)| {
                View::Approved {
                    amount,
                    card: Some(CardSummary { brand, last4 }),
                    offline,
                    tip,
                    receipt_url,
                    print_prompt: false,
                    transfer: false,
                }
            }),
        (any_amount(), any_text(), tip(), any_url()).prop_map(|(amount, r, tip, receipt_url)| {
            View::Declined {
                amount,
                reason: DeclineReason::Other(r),
                tip,
                receipt_url,
            }
        }),
        (proptest::option::of(any_amount()), 0..3u8).prop_map(|(amount, r)| View::Cancelled {
            amount,
            reason: [
                CancelReason::Cashier,
                CancelReason::Pos,
                CancelReason::TimedOut
            ][r as usize],
        }),
        any_amount().prop_map(|amount| View::RefundTap { amount }),
        (any_tally(), any_tally(), any_tally()).prop_map(|(sales, refunds, declined)| {
            View::SessionClosed {
                totals: SessionTotals {
                    currency: Currency::Ngn,
                    sales,
                    refunds,
                    declined,
                },
            }
        }),
        any_text().prop_map(|message| View::Error { message }),
        any_cashier_view(),
    ]
}

fn any_cashier_view() -> impl Strategy<Value = View> {
    let choice = (any::<u8>(), any_text(), proptest::option::of(any_amount()))
        .prop_map(|(key, label, tip)| TipChoice { key, label, tip });
    let entry = (proptest::option::of(any::<u8>()), any_text(), any::<bool>()).prop_map(
        |(key, label, enabled)| MenuEntry {
            key,
            label,
            enabled,
        },
    );
    let line = (any::<u32>(), any_text(), any_amount(), any::<u32>()).prop_map(
        |(number, name, price, qty)| CatalogLine {
            number,
            item_id: name.clone(),
            name,
            price,
            qty,
        },
    );
    let report = (
        (any::<bool>(), any::<u64>(), any_text(), any_message()),
        proptest::collection::vec(any_tally(), 6),
        proptest::collection::vec((any_text(), any_tally()), 0..12),
        proptest::collection::vec((any_text(), any::<u64>(), any::<u64>()), 0..12),
    )
        .prop_map(
            |((z, shift_no, opened_at, closed_at), t, by_operator, items)| View::Report {
                report: ShiftReport {
                    kind: if z { ReportKind::Z } else { ReportKind::X },
                    shift_no,
                    currency: Currency::Ngn,
                    opened_at,
                    closed_at,
                    sales: t[0],
                    refunds: t[1],
                    declined: t[2],
                    tips: t[3],
                    online: t[4],
                    offline: t[5],
                    by_operator,
                    by_item: items
                        .into_iter()
                        .map(|(name, qty, total)| ItemLine {
                            name,
                            qty,
                            total: Total(total),
                        })
                        .collect(),
                },
            },
        );
    prop_oneof![
        (any_text(), any_amount(), any_message()).prop_map(|(title, amount, message)| {
            View::AmountEntry {
                title,
                amount,
                message,
            }
        }),
        (
            any_amount(),
            proptest::collection::vec(choice, 0..10),
            proptest::option::of(any_amount()),
            any_message()
        )
            .prop_map(|(amount, choices, custom, message)| View::Tip {
                amount,
                choices,
                custom,
                message,
            }),
        (any::<u8>(), any_message())
            .prop_map(|(pin_len, message)| View::Login { pin_len, message }),
        (any::<u32>(), any_message())
            .prop_map(|(seconds, message)| View::Locked { seconds, message }),
        (
            any_text(),
            proptest::collection::vec(entry, 0..12),
            proptest::option::of(0usize..12),
            any_message()
        )
            .prop_map(|(title, entries, selected, message)| View::Menu {
                title,
                entries,
                selected,
                message,
            }),
        (
            proptest::collection::vec(line, 0..30),
            0usize..40,
            proptest::option::of(any::<u32>()),
            any_amount(),
            any::<u32>(),
            any_message()
        )
            .prop_map(|(items, first, keyed, cart_total, cart_count, message)| {
                View::Catalog {
                    items,
                    first,
                    keyed,
                    cart_total,
                    cart_count,
                    message,
                }
            }),
        report,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn nothing_is_ever_drawn_off_screen(
        event_name in any_text(),
        terminal_label in any_text(),
        offline in any::<bool>(),
        queued in any::<u64>(),
        parked in any::<u64>(),
        operator in proptest::option::of((any_text(), any_text())),
        view in any_view(),
        size in prop_oneof![Just((240u32, 320u32)), Just((480, 320)), (1u32..900, 1u32..700)],
    ) {
        let operator = operator.map(|(id, name)| OperatorTag { id, name });
        let status = StatusLine { event_name, terminal_label, offline, queued, parked, operator, printer_problem: None };
        let screen = Screen::new(status, view);
        assert_in_bounds(&screen, size.0, size.1);
    }
}
