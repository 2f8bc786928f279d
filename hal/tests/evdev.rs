//! Recorded `struct input_event` streams through the evdev mapping: keys,
//! touch zones, partial records, end of stream.

use std::time::Duration;

use embedded_graphics::prelude::Size;
use hal::drivers::evdev_input::{
    AxisRange, CANCEL_BAR_HEIGHT, EvdevInput, EventMapper, INPUT_EVENT_LEN, RawEvent,
    RecordedEvents, TouchMap,
};
use hal::{Button, Digit, Input, InputError};
use tokio::io::AsyncWriteExt;

const KEY_1: u16 = 2;
const KEY_0: u16 = 11;
const KEY_ENTER: u16 = 28;
const KEY_ESC: u16 = 1;
const KEY_BACKSPACE: u16 = 14;
const KEY_KP5: u16 = 76;
const KEY_A: u16 = 30;
const BTN_TOUCH: u16 = 0x14a;
const ABS_X: u16 = 0;
const ABS_Y: u16 = 1;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;

fn digit(d: u8) -> Button {
    Button::Digit(Digit::new(d).unwrap())
}

fn record(events: &[RawEvent]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| RecordedEvents::<&[u8]>::encode(*e))
        .collect()
}

/// A press and release as a keyboard sends them, with auto-repeat.
fn key(code: u16, repeats: usize) -> Vec<RawEvent> {
    let mut v = vec![RawEvent::key(code, 1), RawEvent::syn()];
    for _ in 0..repeats {
        v.extend([RawEvent::key(code, 2), RawEvent::syn()]);
    }
    v.extend([RawEvent::key(code, 0), RawEvent::syn()]);
    v
}

/// A resistive touch panel, 0..4095 on both axes, over 240x320.
fn touch_map() -> TouchMap {
    let r = AxisRange { min: 0, max: 4095 };
    TouchMap::new(r, r, Size::new(240, 320))
}

fn tap(x: i32, y: i32, mt: bool) -> Vec<RawEvent> {
    let (cx, cy) = if mt {
        (ABS_MT_POSITION_X, ABS_MT_POSITION_Y)
    } else {
        (ABS_X, ABS_Y)
    };
    vec![
        RawEvent::key(BTN_TOUCH, 1),
        RawEvent::abs(cx, x),
        RawEvent::abs(cy, y),
        RawEvent::syn(),
        // Finger moves a little, then lifts: no second press.
        RawEvent::abs(cx, x + 3),
        RawEvent::syn(),
        RawEvent::key(BTN_TOUCH, 0),
        RawEvent::syn(),
    ]
}

#[tokio::test]
async fn recorded_keyboard_and_touch_stream_from_a_file() {
    let mut events = Vec::new();
    for (code, repeats) in [
        (KEY_1, 3),
        (KEY_A, 0),
        (KEY_0, 0),
        (KEY_KP5, 1),
        (KEY_BACKSPACE, 0),
        (KEY_ENTER, 0),
        (KEY_ESC, 0),
    ] {
        events.extend(key(code, repeats));
    }
    // Bottom edge (inside the cancel bar), then the middle of the screen.
    events.extend(tap(2000, 4095, false));
    events.extend(tap(2000, 2000, true));
    // y just above the bar: 320 - 48 = 272 is the bar's first row.
    let above = (271 * 4095 + 318) / 319;
    events.extend(tap(100, above - 13, false));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), record(&events)).unwrap();
    let f = tokio::fs::File::open(file.path()).await.unwrap();
    let mut input = EvdevInput::new(RecordedEvents::new(f), EventMapper::new(Some(touch_map())));

    let mut got = Vec::new();
    loop {
        match input.next_button().await {
            Ok(b) => got.push(b),
            Err(InputError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        got,
        vec![
            digit(1),
            digit(0),
            digit(5),
            Button::Back,
            Button::Ok,
            Button::Cancel,
            Button::Cancel,
            Button::Ok,
            Button::Ok,
        ]
    );
    assert_eq!(CANCEL_BAR_HEIGHT, 48);
}

#[tokio::test]
async fn keys_only_device_ignores_touch() {
    let mut events = tap(2000, 4095, false);
    events.extend(key(KEY_ENTER, 0));
    let bytes = record(&events);
    let mut input = EvdevInput::new(RecordedEvents::new(&bytes[..]), EventMapper::new(None));
    assert_eq!(input.next_button().await.unwrap(), Button::Ok);
    assert!(matches!(input.next_button().await, Err(InputError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn a_record_split_across_reads_survives_a_dropped_wait() {
    let (mut tx, rx) = tokio::io::duplex(256);
    let mut input = EvdevInput::new(RecordedEvents::new(rx), EventMapper::new(None));
    let bytes = record(&key(KEY_1, 0));
    // Half of the first record arrives; the wait is abandoned (cancelled).
    tx.write_all(&bytes[..INPUT_EVENT_LEN / 2]).await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(50), input.next_button()).await;
    assert!(r.is_err(), "no complete event yet");
    // The rest arrives: the press is still there.
    tx.write_all(&bytes[INPUT_EVENT_LEN / 2..]).await.unwrap();
    assert_eq!(input.next_button().await.unwrap(), digit(1));
    drop(tx);
    assert!(matches!(input.next_button().await, Err(InputError::Closed)));
}

#[test]
fn touch_without_position_is_not_a_press() {
    let mut m = EventMapper::new(Some(touch_map()));
    assert_eq!(m.feed(RawEvent::key(BTN_TOUCH, 1)), None);
    assert_eq!(m.feed(RawEvent::syn()), None);
    assert_eq!(m.feed(RawEvent::abs(ABS_X, 10)), None);
    assert_eq!(m.feed(RawEvent::abs(ABS_Y, 10)), None);
    // Position completes the pending touch at the next report.
    assert_eq!(m.feed(RawEvent::syn()), Some(Button::Ok));
    assert_eq!(m.feed(RawEvent::syn()), None);
}

/// The cancel zone is where the ui draws its CANCEL bar, on both designed
/// panel sizes.
#[test]
fn cancel_zone_matches_the_rendered_cancel_bar() {
    let screens = ui::samples::sample_screens();
    let (_, tap_card) = screens.iter().find(|(n, _)| *n == "tap_card").unwrap();
    for size in [Size::new(240, 320), Size::new(480, 320)] {
        let mut fb = hal::Framebuffer::new(size);
        ui::render(tap_card, &mut fb).unwrap();
        let at = |y: u32| {
            fb.pixel(embedded_graphics::prelude::Point::new(2, y as i32))
                .unwrap()
        };
        let bar = at(size.height - 1);
        let top = size.height - CANCEL_BAR_HEIGHT;
        assert_eq!(at(top), bar, "first row of the zone is the bar");
        assert_ne!(at(top - 1), bar, "the row above is not");
        let r = AxisRange { min: 0, max: 999 };
        let map = TouchMap::new(r, r, size);
        let mut m = EventMapper::new(Some(map));
        for (raw_y, want) in [(999, Button::Cancel), (0, Button::Ok), (500, Button::Ok)] {
            m.feed(RawEvent::key(BTN_TOUCH, 1));
            m.feed(RawEvent::abs(ABS_X, 10));
            m.feed(RawEvent::abs(ABS_Y, raw_y));
            assert_eq!(m.feed(RawEvent::syn()), Some(want), "{size:?} y={raw_y}");
            m.feed(RawEvent::key(BTN_TOUCH, 0));
        }
    }
}
