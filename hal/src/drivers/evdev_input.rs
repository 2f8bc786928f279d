//! Linux input devices (keypads, keyboards, touch screens) as buttons.
//!
//! Events come from an [`EventSource`]: a real device through the `evdev`
//! crate ([`open_evdev`]), or recorded raw `struct input_event` records from
//! any byte stream ([`RecordedEvents`], used by the tests). Both go through
//! the same [`EventMapper`]:
//!
//! | event | button |
//! | --- | --- |
//! | `KEY_ENTER`, `KEY_KPENTER`, `KEY_OK` | ok |
//! | `KEY_ESC`, `KEY_CANCEL` | cancel |
//! | `KEY_BACKSPACE`, `KEY_DELETE` | back |
//! | `KEY_MENU`, `KEY_COMPOSE` | menu |
//! | `KEY_UP`, `KEY_DOWN` | up, down |
//! | `KEY_0`..`KEY_9`, `KEY_KP0`..`KEY_KP9` | digits |
//! | touch in the bottom [`CANCEL_BAR_HEIGHT`] pixels | cancel |
//! | touch anywhere else | ok |
//!
//! Keys count when pressed (value 1); auto-repeat (2) and release (0) are
//! ignored. A touch counts once, at the first `SYN_REPORT` after the finger
//! went down (`BTN_TOUCH` or `BTN_LEFT` = 1), at the position of `ABS_X`/
//! `ABS_Y` (or the multi-touch `ABS_MT_POSITION_X`/`_Y`) scaled from the
//! device's axis range to the panel size.

use std::future::Future;

use bytes::{Buf, BytesMut};
use embedded_graphics::prelude::{Point, Size};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::traits::{Button, Digit, Input, InputError};

/// Height of the red cancel bar at the bottom of the tap-card screens
/// (`ui`'s footer, 48 px); a touch there is [`Button::Cancel`].
pub const CANCEL_BAR_HEIGHT: u32 = 48;

const EV_SYN: u16 = 0x00;
const EV_KEY: u16 = 0x01;
const EV_ABS: u16 = 0x03;
const SYN_REPORT: u16 = 0;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;
const BTN_LEFT: u16 = 0x110;
const BTN_TOUCH: u16 = 0x14a;

/// One input event (type, code, value), without its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl RawEvent {
    pub fn key(code: u16, value: i32) -> RawEvent {
        RawEvent {
            kind: EV_KEY,
            code,
            value,
        }
    }
    pub fn abs(code: u16, value: i32) -> RawEvent {
        RawEvent {
            kind: EV_ABS,
            code,
            value,
        }
    }
    pub fn syn() -> RawEvent {
        RawEvent {
            kind: EV_SYN,
            code: SYN_REPORT,
            value: 0,
        }
    }
}

/// The button a key code stands for (see the module table).
pub fn key_button(code: u16) -> Option<Button> {
    let digit = |d: u8| Digit::new(d).map(Button::Digit);
    match code {
        28 | 96 | 352 => Some(Button::Ok), // KEY_ENTER, KEY_KPENTER, KEY_OK
        1 | 223 => Some(Button::Cancel),   // KEY_ESC, KEY_CANCEL
        14 | 111 => Some(Button::Back),    // KEY_BACKSPACE, KEY_DELETE
        139 | 127 => Some(Button::Menu),   // KEY_MENU, KEY_COMPOSE
        103 => Some(Button::Up),           // KEY_UP
        108 => Some(Button::Down),         // KEY_DOWN
        2..=10 => digit((code - 1) as u8), // KEY_1..KEY_9
        11 => digit(0),                    // KEY_0
        71..=73 => digit((code - 64) as u8), // KEY_KP7..KEY_KP9
        75..=77 => digit((code - 71) as u8), // KEY_KP4..KEY_KP6
        79..=81 => digit((code - 78) as u8), // KEY_KP1..KEY_KP3
        82 => digit(0),                    // KEY_KP0
        _ => None,
    }
}

/// An absolute axis' range as the device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisRange {
    pub min: i32,
    pub max: i32,
}

impl AxisRange {
    /// `value` scaled to `0..pixels`, clamped.
    fn scale(self, value: i32, pixels: u32) -> i32 {
        let span = i64::from(self.max) - i64::from(self.min);
        if span <= 0 || pixels == 0 {
            return 0;
        }
        let v = (i64::from(value) - i64::from(self.min)).clamp(0, span);
        (v * (i64::from(pixels) - 1) / span) as i32
    }
}

/// How touch coordinates map onto the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TouchMap {
    pub x: AxisRange,
    pub y: AxisRange,
    pub panel: Size,
    /// The touch controller's X runs along the panel's Y (rotated panel).
    pub swap_xy: bool,
    /// Mirror the panel X / Y after swapping.
    pub invert_x: bool,
    pub invert_y: bool,
}

impl TouchMap {
    /// Unrotated: touch X/Y are panel X/Y.
    pub fn new(x: AxisRange, y: AxisRange, panel: Size) -> TouchMap {
        TouchMap {
            x,
            y,
            panel,
            swap_xy: false,
            invert_x: false,
            invert_y: false,
        }
    }

    /// The panel pixel of a raw touch position.
    pub fn to_panel(&self, raw_x: i32, raw_y: i32) -> Point {
        let (w, h) = (self.panel.width, self.panel.height);
        let (mut px, mut py) = if self.swap_xy {
            (self.y.scale(raw_y, w), self.x.scale(raw_x, h))
        } else {
            (self.x.scale(raw_x, w), self.y.scale(raw_y, h))
        };
        if self.invert_x {
            px = w.saturating_sub(1) as i32 - px;
        }
        if self.invert_y {
            py = h.saturating_sub(1) as i32 - py;
        }
        Point::new(px, py)
    }

    /// The button for a touch at panel pixel `p`.
    pub fn zone(&self, p: Point) -> Button {
        let bar_top = self.panel.height.saturating_sub(CANCEL_BAR_HEIGHT);
        if p.y >= bar_top as i32 {
            Button::Cancel
        } else {
            Button::Ok
        }
    }
}

/// Turns an event stream into button presses.
#[derive(Debug, Clone)]
pub struct EventMapper {
    touch: Option<TouchMap>,
    raw_x: Option<i32>,
    raw_y: Option<i32>,
    touch_started: bool,
}

impl EventMapper {
    /// `touch`: the axis ranges and panel size of a touch screen, or `None`
    /// for keys only (touch events are then ignored).
    pub fn new(touch: Option<TouchMap>) -> EventMapper {
        EventMapper {
            touch,
            raw_x: None,
            raw_y: None,
            touch_started: false,
        }
    }

    /// Feeds one event; returns the button it completes, if any.
    pub fn feed(&mut self, ev: RawEvent) -> Option<Button> {
        match (ev.kind, ev.code) {
            (EV_KEY, BTN_TOUCH | BTN_LEFT) => {
                self.touch_started = ev.value == 1;
                None
            }
            (EV_KEY, code) if ev.value == 1 => key_button(code),
            (EV_ABS, ABS_X | ABS_MT_POSITION_X) => {
                self.raw_x = Some(ev.value);
                None
            }
            (EV_ABS, ABS_Y | ABS_MT_POSITION_Y) => {
                self.raw_y = Some(ev.value);
                None
            }
            (EV_SYN, SYN_REPORT) if self.touch_started => {
                let (Some(map), Some(x), Some(y)) = (self.touch, self.raw_x, self.raw_y) else {
                    return None;
                };
                self.touch_started = false;
                Some(map.zone(map.to_panel(x, y)))
            }
            _ => None,
        }
    }
}

/// Where input events come from.
pub trait EventSource: Send {
    /// The next event. Must be cancel-safe (dropping the future loses no
    /// event).
    fn next_event(&mut self) -> impl Future<Output = Result<RawEvent, InputError>> + Send;
}

impl EventSource for evdev::raw_stream::EventStream {
    async fn next_event(&mut self) -> Result<RawEvent, InputError> {
        let ev = evdev::raw_stream::EventStream::next_event(self).await?;
        Ok(RawEvent {
            kind: ev.event_type().0,
            code: ev.code(),
            value: ev.value(),
        })
    }
}

/// Size of the kernel's `struct input_event` on this machine: a `struct
/// timeval` (two `long`s), type, code and value.
pub const INPUT_EVENT_LEN: usize = 2 * std::mem::size_of::<std::ffi::c_long>() + 8;

/// Raw `struct input_event` records (native layout and byte order, as read
/// from `/dev/input/eventN` or recorded from it) from any byte stream.
#[derive(Debug)]
pub struct RecordedEvents<R> {
    reader: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin + Send> RecordedEvents<R> {
    pub fn new(reader: R) -> Self {
        RecordedEvents {
            reader,
            buf: BytesMut::with_capacity(INPUT_EVENT_LEN * 16),
        }
    }

    /// Encodes one record as the kernel would (timestamp zero), for
    /// recordings and tests.
    pub fn encode(ev: RawEvent) -> Vec<u8> {
        let mut out = vec![0u8; INPUT_EVENT_LEN - 8];
        out.extend_from_slice(&ev.kind.to_ne_bytes());
        out.extend_from_slice(&ev.code.to_ne_bytes());
        out.extend_from_slice(&ev.value.to_ne_bytes());
        out
    }
}

impl<R: AsyncRead + Unpin + Send> EventSource for RecordedEvents<R> {
    async fn next_event(&mut self) -> Result<RawEvent, InputError> {
        // `read_buf` is cancel-safe and partial records stay in `buf`.
        while self.buf.len() < INPUT_EVENT_LEN {
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Err(InputError::Closed);
            }
        }
        let rec = self.buf.split_to(INPUT_EVENT_LEN);
        let mut tail = &rec[INPUT_EVENT_LEN - 8..];
        let kind = tail.get_u16_ne();
        let code = tail.get_u16_ne();
        let value = tail.get_i32_ne();
        Ok(RawEvent { kind, code, value })
    }
}

/// Buttons from an input device.
#[derive(Debug)]
pub struct EvdevInput<S> {
    source: S,
    mapper: EventMapper,
}

impl<S: EventSource> EvdevInput<S> {
    pub fn new(source: S, mapper: EventMapper) -> Self {
        EvdevInput { source, mapper }
    }
}

impl<S: EventSource> Input for EvdevInput<S> {
    async fn next_button(&mut self) -> Result<Button, InputError> {
        loop {
            let ev = self.source.next_event().await?;
            if let Some(b) = self.mapper.feed(ev) {
                return Ok(b);
            }
        }
    }
}

/// Options after the device path: `/dev/input/event0?swap_xy=1&invert_y=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvdevOptions {
    pub swap_xy: bool,
    pub invert_x: bool,
    pub invert_y: bool,
    /// Take the device for this process alone (`EVIOCGRAB`), so key presses
    /// do not also reach a console. On by default.
    pub grab: bool,
}

impl Default for EvdevOptions {
    fn default() -> Self {
        EvdevOptions {
            swap_xy: false,
            invert_x: false,
            invert_y: false,
            grab: true,
        }
    }
}

impl EvdevOptions {
    /// Splits `<path>[?key=0|1&...]`; keys `swap_xy`, `invert_x`,
    /// `invert_y`, `grab`.
    pub fn parse(spec: &str) -> Result<(&str, EvdevOptions), InputError> {
        let (path, query) = spec.split_once('?').unwrap_or((spec, ""));
        let mut o = EvdevOptions::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let bad = || {
                InputError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "bad input option {:?}: expected swap_xy, invert_x, invert_y or grab =0|1",
                        pair.chars().take(40).collect::<String>()
                    ),
                ))
            };
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let on = match value {
                "0" => false,
                "1" => true,
                _ => return Err(bad()),
            };
            match key {
                "swap_xy" => o.swap_xy = on,
                "invert_x" => o.invert_x = on,
                "invert_y" => o.invert_y = on,
                "grab" => o.grab = on,
                _ => return Err(bad()),
            }
        }
        Ok((path, o))
    }
}

/// Opens `/dev/input/eventN` (with [`EvdevOptions`] after a `?`). If it
/// has `ABS_X` and `ABS_Y` axes it is taken as a touch screen over a panel
/// of `panel` pixels.
pub fn open_evdev(
    spec: &str,
    panel: Size,
) -> Result<EvdevInput<evdev::raw_stream::EventStream>, InputError> {
    let (path, options) = EvdevOptions::parse(spec)?;
    let mut device = evdev::raw_stream::RawDevice::open(path)?;
    let mut x = None;
    let mut y = None;
    if device
        .supported_absolute_axes()
        .is_some_and(|a| a.contains(evdev::AbsoluteAxisCode::ABS_X))
    {
        for (axis, info) in device.get_absinfo()? {
            let range = AxisRange {
                min: info.minimum(),
                max: info.maximum(),
            };
            match axis.0 {
                ABS_X => x = Some(range),
                ABS_Y => y = Some(range),
                _ => {}
            }
        }
    }
    let touch = match (x, y) {
        (Some(x), Some(y)) => Some(TouchMap {
            swap_xy: options.swap_xy,
            invert_x: options.invert_x,
            invert_y: options.invert_y,
            ..TouchMap::new(x, y, panel)
        }),
        _ => None,
    };
    if options.grab {
        device.grab()?;
    }
    tracing::info!(
        device = %path,
        name = device.name().unwrap_or("?"),
        touch = touch.is_some(),
        grabbed = options.grab,
        "input device opened"
    );
    let stream = device.into_event_stream()?;
    Ok(EvdevInput::new(stream, EventMapper::new(touch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table() {
        let d = |n| Some(Button::Digit(Digit::new(n).unwrap()));
        assert_eq!(key_button(28), Some(Button::Ok));
        assert_eq!(key_button(1), Some(Button::Cancel));
        assert_eq!(key_button(14), Some(Button::Back));
        assert_eq!(key_button(139), Some(Button::Menu));
        assert_eq!(key_button(127), Some(Button::Menu));
        assert_eq!(key_button(103), Some(Button::Up));
        assert_eq!(key_button(108), Some(Button::Down));
        assert_eq!(key_button(105), None); // KEY_LEFT
        assert_eq!(key_button(2), d(1));
        assert_eq!(key_button(10), d(9));
        assert_eq!(key_button(11), d(0));
        assert_eq!(key_button(82), d(0));
        assert_eq!(key_button(79), d(1));
        assert_eq!(key_button(77), d(6));
        assert_eq!(key_button(73), d(9));
        assert_eq!(key_button(30), None); // KEY_A
        assert_eq!(key_button(74), None); // KEY_KPMINUS
    }

    #[test]
    fn axis_scaling_clamps() {
        let r = AxisRange {
            min: 100,
            max: 4000,
        };
        assert_eq!(r.scale(100, 240), 0);
        assert_eq!(r.scale(4000, 240), 239);
        assert_eq!(r.scale(-5, 240), 0);
        assert_eq!(r.scale(9999, 240), 239);
        assert_eq!(AxisRange { min: 5, max: 5 }.scale(5, 240), 0);
    }

    #[test]
    fn rotated_touch_maps_onto_the_panel() {
        let r = AxisRange { min: 0, max: 1000 };
        let mut m = TouchMap::new(r, r, Size::new(240, 320));
        assert_eq!(m.to_panel(0, 1000), Point::new(0, 319));
        m.swap_xy = true;
        assert_eq!(m.to_panel(0, 1000), Point::new(239, 0));
        m.invert_x = true;
        m.invert_y = true;
        assert_eq!(m.to_panel(0, 1000), Point::new(0, 319));
    }

    #[test]
    fn options_parse() {
        let (p, o) = EvdevOptions::parse("/dev/input/event2").unwrap();
        assert_eq!((p, o), ("/dev/input/event2", EvdevOptions::default()));
        let (p, o) = EvdevOptions::parse("/dev/input/event2?swap_xy=1&invert_y=1&grab=0").unwrap();
        assert_eq!(p, "/dev/input/event2");
        assert!(o.swap_xy && !o.invert_x && o.invert_y && !o.grab);
        for bad in ["/d?swap_xy", "/d?swap_xy=2", "/d?rotate=1"] {
            assert!(EvdevOptions::parse(bad).is_err(), "{bad}");
        }
    }
}
