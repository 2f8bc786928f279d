//! GPIO buttons (debounced), buzzer and LEDs on the Linux GPIO character
//! device (`gpio-cdev`).
//!
//! Buttons: [`GpioButtons`] reads edges from an [`EdgeSource`] (real lines
//! through [`open_buttons`], or any test source) and debounces them in time:
//! a line counts as pressed once it has stayed active for the debounce time
//! (30 ms by default) with no further edge, and as released once it has
//! stayed inactive as long. Each debounced press is one button. Timing uses
//! tokio timers, so nothing polls and tests run on paused time.
//!
//! Indicator: [`GpioIndicator`] plays [`Signal`]s on a buzzer and a green
//! and a red LED (any of them may be absent):
//!
//! | signal | buzzer | LED |
//! | --- | --- | --- |
//! | card read | one short beep (80 ms) | green during the beep |
//! | success | two short beeps (80 ms, 80 ms apart) | green for 1 s |
//! | failure | one long beep (400 ms) | red for 1 s |

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use embedded_hal::digital::OutputPin;
use futures_util::StreamExt;
use futures_util::stream::{BoxStream, SelectAll};
use tokio::time::{Instant, sleep, sleep_until};

use crate::traits::{Button, Indicator, IndicatorError, Input, InputError, Signal};

/// Default time a button must be stable before it counts.
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// A change of one button line, already in logical terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Index into the button list given to [`GpioButtons::new`].
    pub line: usize,
    /// Whether the line is now at its active (pressed) level.
    pub active: bool,
}

/// Where button edges come from.
pub trait EdgeSource: Send {
    /// The next edge; cancel-safe.
    fn next_edge(&mut self) -> impl Future<Output = Result<Edge, InputError>> + Send;
}

#[derive(Debug, Clone, Copy)]
struct LineState {
    raw: bool,
    stable: bool,
    settle_at: Option<Instant>,
}

/// Debounced GPIO buttons.
#[derive(Debug)]
pub struct GpioButtons<S> {
    source: S,
    buttons: Vec<Button>,
    lines: Vec<LineState>,
    debounce: Duration,
}

impl<S: EdgeSource> GpioButtons<S> {
    /// `buttons[i]` is the button of edge line `i`. All lines start
    /// released.
    pub fn new(source: S, buttons: Vec<Button>, debounce: Duration) -> Self {
        let lines = vec![
            LineState {
                raw: false,
                stable: false,
                settle_at: None,
            };
            buttons.len()
        ];
        GpioButtons {
            source,
            buttons,
            lines,
            debounce,
        }
    }

    fn on_edge(&mut self, edge: Edge) {
        let Some(l) = self.lines.get_mut(edge.line) else {
            return;
        };
        l.raw = edge.active;
        l.settle_at = (l.raw != l.stable).then(|| Instant::now() + self.debounce);
    }

    /// Settles every line whose time has come; returns a new press, if any.
    fn settle(&mut self) -> Option<Button> {
        let now = Instant::now();
        let mut pressed = None;
        for (i, l) in self.lines.iter_mut().enumerate() {
            if l.settle_at.is_some_and(|t| t <= now) {
                l.settle_at = None;
                l.stable = l.raw;
                if l.stable && pressed.is_none() {
                    pressed = Some(self.buttons[i]);
                } else if l.stable {
                    // Two presses settled at once: report this one next time.
                    l.stable = false;
                    l.settle_at = Some(now);
                }
            }
        }
        pressed
    }
}

impl<S: EdgeSource> Input for GpioButtons<S> {
    async fn next_button(&mut self) -> Result<Button, InputError> {
        loop {
            if let Some(b) = self.settle() {
                return Ok(b);
            }
            let next = self.lines.iter().filter_map(|l| l.settle_at).min();
            tokio::select! {
                edge = self.source.next_edge() => self.on_edge(edge?),
                _ = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {}
            }
        }
    }
}

/// Edges from GPIO character device lines.
pub struct CdevEdges {
    events: SelectAll<BoxStream<'static, (usize, Result<gpio_cdev::LineEvent, gpio_cdev::Error>)>>,
    active_low: bool,
}

impl std::fmt::Debug for CdevEdges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdevEdges")
            .field("lines", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl EdgeSource for CdevEdges {
    async fn next_edge(&mut self) -> Result<Edge, InputError> {
        let Some((line, ev)) = self.events.next().await else {
            return Err(InputError::Closed);
        };
        let ev = ev.map_err(|e| InputError::Io(std::io::Error::other(e.to_string())))?;
        let high = matches!(ev.event_type(), gpio_cdev::EventType::RisingEdge);
        Ok(Edge {
            line,
            active: high != self.active_low,
        })
    }
}

/// Which lines of which chip do what: the part of `gpio:` after the colon,
/// `/dev/gpiochip0?ok=17&cancel=27&back=22&buzzer=23&green=24&red=25`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioWiring {
    pub chip: PathBuf,
    /// (line offset, button)
    pub buttons: Vec<(u32, Button)>,
    /// Buttons pull the line low when pressed (pull-ups; the default).
    pub active_low: bool,
    pub debounce: Duration,
    pub buzzer: Option<u32>,
    pub green: Option<u32>,
    pub red: Option<u32>,
}

/// Why a GPIO specification or line could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("bad GPIO specification {spec:?}: {problem}")]
    Spec { spec: String, problem: String },
    #[error("GPIO {chip} line {line}: {message}")]
    Line {
        chip: PathBuf,
        line: u32,
        message: String,
    },
}

impl GpioWiring {
    /// Parses `<chip path>?key=line&...`. Keys: `ok`, `cancel`, `back`,
    /// `menu`, `up`, `down`, `0`..`9` (buttons), `buzzer`, `green`, `red` (outputs), `active`
    /// (`low` or `high`), `debounce_ms` (1–1000).
    pub fn parse(spec: &str) -> Result<GpioWiring, GpioError> {
        let bad = |problem: String| GpioError::Spec {
            spec: spec.chars().take(200).collect(),
            problem,
        };
        let (chip, query) = spec.split_once('?').unwrap_or((spec, ""));
        if !chip.starts_with("/dev/") {
            return Err(bad("expected a /dev/gpiochipN path first".into()));
        }
        let mut w = GpioWiring {
            chip: PathBuf::from(chip),
            buttons: Vec::new(),
            active_low: true,
            debounce: DEBOUNCE,
            buzzer: None,
            green: None,
            red: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} is not key=value")))?;
            let line = || {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v < 1024)
                    .ok_or_else(|| bad(format!("{key}: {value:?} is not a line offset")))
            };
            match key {
                "active" => {
                    w.active_low = match value {
                        "low" => true,
                        "high" => false,
                        _ => return Err(bad("active must be low or high".into())),
                    }
                }
                "debounce_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .ok()
                        .filter(|v| (1..=1000).contains(v))
                        .ok_or_else(|| bad("debounce_ms must be 1-1000".into()))?;
                    w.debounce = Duration::from_millis(ms);
                }
                "buzzer" => w.buzzer = Some(line()?),
                "green" => w.green = Some(line()?),
                "red" => w.red = Some(line()?),
                _ => {
                    let button =
                        Button::parse(key).map_err(|_| bad(format!("unknown key {key:?}")))?;
                    w.buttons.push((line()?, button));
                }
            }
        }
        let mut used: Vec<u32> = w.buttons.iter().map(|(l, _)| *l).collect();
        used.extend(w.buzzer.iter().chain(&w.green).chain(&w.red));
        let n = used.len();
        used.sort_unstable();
        used.dedup();
        if used.len() != n {
            return Err(bad("a line is used twice".into()));
        }
        Ok(w)
    }
}

/// Requests the button lines of `wiring` for edge events. Must be called
/// inside a tokio runtime.
pub fn open_buttons(wiring: &GpioWiring) -> Result<GpioButtons<CdevEdges>, GpioError> {
    let err = |line: u32, e: gpio_cdev::Error| GpioError::Line {
        chip: wiring.chip.clone(),
        line,
        message: e.to_string(),
    };
    let mut chip = gpio_cdev::Chip::new(&wiring.chip).map_err(|e| err(0, e))?;
    let mut events = SelectAll::new();
    for (i, (line, _)) in wiring.buttons.iter().enumerate() {
        let handle = chip
            .get_line(*line)
            .and_then(|l| {
                l.events(
                    gpio_cdev::LineRequestFlags::INPUT,
                    gpio_cdev::EventRequestFlags::BOTH_EDGES,
                    "pos-agent",
                )
            })
            .and_then(gpio_cdev::AsyncLineEventHandle::new)
            .map_err(|e| err(*line, e))?;
        events.push(handle.map(move |ev| (i, ev)).boxed());
    }
    let buttons = wiring.buttons.iter().map(|(_, b)| *b).collect();
    Ok(GpioButtons::new(
        CdevEdges {
            events,
            active_low: wiring.active_low,
        },
        buttons,
        wiring.debounce,
    ))
}

/// One step of a pattern: outputs held for a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub buzzer: bool,
    pub green: bool,
    pub red: bool,
    pub hold: Duration,
}

const fn step(buzzer: bool, green: bool, red: bool, ms: u64) -> Step {
    Step {
        buzzer,
        green,
        red,
        hold: Duration::from_millis(ms),
    }
}

/// The steps a signal plays; everything is switched off after the last.
pub fn pattern(signal: Signal) -> &'static [Step] {
    const CARD_READ: [Step; 1] = [step(true, true, false, 80)];
    const SUCCESS: [Step; 4] = [
        step(true, true, false, 80),
        step(false, true, false, 80),
        step(true, true, false, 80),
        step(false, true, false, 760),
    ];
    const FAILURE: [Step; 2] = [step(true, false, true, 400), step(false, false, true, 600)];
    match signal {
        Signal::CardRead => &CARD_READ,
        Signal::Success => &SUCCESS,
        Signal::Failure => &FAILURE,
    }
}

/// Buzzer and LEDs on output pins.
#[derive(Debug)]
pub struct GpioIndicator<P> {
    buzzer: Option<P>,
    green: Option<P>,
    red: Option<P>,
}

impl<P: OutputPin + Send> GpioIndicator<P> {
    pub fn new(buzzer: Option<P>, green: Option<P>, red: Option<P>) -> Self {
        GpioIndicator { buzzer, green, red }
    }

    fn set(&mut self, s: Step) -> Result<(), IndicatorError> {
        for (pin, on) in [
            (&mut self.buzzer, s.buzzer),
            (&mut self.green, s.green),
            (&mut self.red, s.red),
        ] {
            if let Some(p) = pin.as_mut() {
                let r = if on { p.set_high() } else { p.set_low() };
                r.map_err(|e| IndicatorError::Io(std::io::Error::other(format!("{e:?}"))))?;
            }
        }
        Ok(())
    }

    /// Gives the pins back (tests inspect them).
    pub fn into_pins(self) -> (Option<P>, Option<P>, Option<P>) {
        (self.buzzer, self.green, self.red)
    }
}

impl<P: OutputPin + Send> Indicator for GpioIndicator<P> {
    async fn signal(&mut self, signal: Signal) -> Result<(), IndicatorError> {
        // Switches off even if this future is dropped half-way.
        let guard = OffOnDrop(self);
        for s in pattern(signal) {
            guard.0.set(*s)?;
            sleep(s.hold).await;
        }
        guard.0.set(step(false, false, false, 0))
    }
}

struct OffOnDrop<'a, P: OutputPin + Send>(&'a mut GpioIndicator<P>);

impl<P: OutputPin + Send> Drop for OffOnDrop<'_, P> {
    fn drop(&mut self) {
        let _ = self.0.set(step(false, false, false, 0));
    }
}

/// The indicator outputs of `wiring`, or `None` when it names none.
pub fn open_indicator(
    wiring: &GpioWiring,
) -> Result<Option<GpioIndicator<linux_embedded_hal::CdevPin>>, GpioError> {
    if wiring.buzzer.is_none() && wiring.green.is_none() && wiring.red.is_none() {
        return Ok(None);
    }
    let err = |line: u32, message: String| GpioError::Line {
        chip: wiring.chip.clone(),
        line,
        message,
    };
    let mut chip = gpio_cdev::Chip::new(&wiring.chip).map_err(|e| err(0, e.to_string()))?;
    let mut output = |line: Option<u32>| -> Result<Option<linux_embedded_hal::CdevPin>, GpioError> {
        let Some(line) = line else { return Ok(None) };
        let handle = chip
            .get_line(line)
            .and_then(|l| l.request(gpio_cdev::LineRequestFlags::OUTPUT, 0, "pos-agent"))
            .map_err(|e| err(line, e.to_string()))?;
        linux_embedded_hal::CdevPin::new(handle)
            .map(Some)
            .map_err(|e| err(line, e.to_string()))
    };
    Ok(Some(GpioIndicator::new(
        output(wiring.buzzer)?,
        output(wiring.green)?,
        output(wiring.red)?,
    )))
}
