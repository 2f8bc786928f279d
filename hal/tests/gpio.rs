//! GPIO buttons (debounce on recorded edge scripts, paused tokio time) and
//! buzzer/LED patterns on recording pins.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_hal::digital::{self, OutputPin};
use hal::drivers::gpio::{
    DEBOUNCE, Edge, EdgeSource, GpioButtons, GpioError, GpioIndicator, GpioWiring,
};
use hal::{Button, Digit, Indicator, Input, InputError, Signal};
use tokio::time::{Instant, sleep_until};

/// Edges at fixed times after the start (a recording of a real button).
struct Script {
    start: Instant,
    edges: Vec<(u64, Edge)>,
    next: usize,
}

impl Script {
    fn new(edges: &[(u64, usize, bool)]) -> Script {
        Script {
            start: Instant::now(),
            edges: edges
                .iter()
                .map(|&(ms, line, active)| (ms, Edge { line, active }))
                .collect(),
            next: 0,
        }
    }
}

impl EdgeSource for Script {
    async fn next_edge(&mut self) -> Result<Edge, InputError> {
        let Some(&(ms, edge)) = self.edges.get(self.next) else {
            return std::future::pending().await;
        };
        // Restartable: dropping this future loses nothing.
        sleep_until(self.start + Duration::from_millis(ms)).await;
        self.next += 1;
        Ok(edge)
    }
}

fn ms(t: Instant, start: Instant) -> u64 {
    (t - start).as_millis() as u64
}

/// Presses until the script is exhausted and nothing more settles.
async fn presses(buttons: &mut GpioButtons<Script>, start: Instant) -> Vec<(u64, Button)> {
    let mut out = Vec::new();
    while let Ok(b) = tokio::time::timeout(Duration::from_secs(5), buttons.next_button()).await {
        out.push((ms(Instant::now(), start), b.unwrap()));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_bouncing_press_counts_once_after_it_settles() {
    let start = Instant::now();
    let script = Script::new(&[
        (0, 0, true),
        (2, 0, false),
        (4, 0, true),
        (5, 0, false),
        (7, 0, true),
        // Held, with release bounce.
        (300, 0, false),
        (301, 0, true),
        (303, 0, false),
    ]);
    let mut b = GpioButtons::new(script, vec![Button::Ok], DEBOUNCE);
    assert_eq!(DEBOUNCE, Duration::from_millis(30));
    assert_eq!(presses(&mut b, start).await, vec![(37, Button::Ok)]);
}

#[tokio::test(start_paused = true)]
async fn a_glitch_shorter_than_the_debounce_is_ignored() {
    let start = Instant::now();
    let script = Script::new(&[
        (0, 0, true),
        (20, 0, false),
        (100, 0, true),
        (129, 0, false),
    ]);
    let mut b = GpioButtons::new(script, vec![Button::Cancel], DEBOUNCE);
    assert_eq!(presses(&mut b, start).await, vec![]);
}

#[tokio::test(start_paused = true)]
async fn a_chattering_held_button_is_one_press_and_repeated_presses_count() {
    let start = Instant::now();
    let script = Script::new(&[
        (0, 0, true),
        // A 5 ms dropout while held is not a release.
        (100, 0, false),
        (105, 0, true),
        (400, 0, false),
        // Pressed again after a clean release.
        (500, 0, true),
        (600, 0, false),
    ]);
    let mut b = GpioButtons::new(script, vec![Button::Ok], DEBOUNCE);
    assert_eq!(
        presses(&mut b, start).await,
        vec![(30, Button::Ok), (530, Button::Ok)]
    );
}

#[tokio::test(start_paused = true)]
async fn two_buttons_settling_together_are_both_reported() {
    let start = Instant::now();
    let five = Button::Digit(Digit::new(5).unwrap());
    let script = Script::new(&[(0, 0, true), (0, 1, true), (10, 2, true)]);
    let mut b = GpioButtons::new(script, vec![Button::Back, five, Button::Ok], DEBOUNCE);
    assert_eq!(
        presses(&mut b, start).await,
        vec![(30, Button::Back), (30, five), (40, Button::Ok)]
    );
}

type PinLog = Arc<Mutex<Vec<(u64, &'static str, bool)>>>;

struct RecPin {
    name: &'static str,
    start: Instant,
    log: PinLog,
    /// Lines are requested low.
    level: bool,
}

impl digital::ErrorType for RecPin {
    type Error = core::convert::Infallible;
}

impl OutputPin for RecPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.record(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.record(true);
        Ok(())
    }
}

impl RecPin {
    /// Records changes only (patterns set every pin at every step).
    fn record(&mut self, level: bool) {
        if level != self.level {
            self.level = level;
            let t = ms(Instant::now(), self.start);
            self.log.lock().unwrap().push((t, self.name, level));
        }
    }
}

fn indicator() -> (GpioIndicator<RecPin>, PinLog, Instant) {
    let log: PinLog = Arc::default();
    let start = Instant::now();
    let pin = |name| {
        Some(RecPin {
            name,
            start,
            log: log.clone(),
            level: false,
        })
    };
    (
        GpioIndicator::new(pin("buzzer"), pin("green"), pin("red")),
        log,
        start,
    )
}

fn of(log: &PinLog, name: &str) -> Vec<(u64, bool)> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(_, n, _)| *n == name)
        .map(|(t, _, l)| (*t, *l))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn patterns_play_on_the_pins() {
    let (mut ind, log, start) = indicator();
    ind.signal(Signal::CardRead).await.unwrap();
    assert_eq!(of(&log, "buzzer"), vec![(0, true), (80, false)]);
    assert_eq!(of(&log, "green"), vec![(0, true), (80, false)]);
    assert_eq!(ms(Instant::now(), start), 80);

    log.lock().unwrap().clear();
    let t0 = ms(Instant::now(), start);
    ind.signal(Signal::Success).await.unwrap();
    let rel = |v: Vec<(u64, bool)>| v.into_iter().map(|(t, l)| (t - t0, l)).collect::<Vec<_>>();
    assert_eq!(
        rel(of(&log, "buzzer")),
        vec![(0, true), (80, false), (160, true), (240, false)]
    );
    assert_eq!(rel(of(&log, "green")), vec![(0, true), (1000, false)]);
    assert_eq!(of(&log, "red"), vec![]);

    log.lock().unwrap().clear();
    let t0 = ms(Instant::now(), start);
    ind.signal(Signal::Failure).await.unwrap();
    let rel = |v: Vec<(u64, bool)>| v.into_iter().map(|(t, l)| (t - t0, l)).collect::<Vec<_>>();
    assert_eq!(rel(of(&log, "buzzer")), vec![(0, true), (400, false)]);
    assert_eq!(rel(of(&log, "red")), vec![(0, true), (1000, false)]);
    assert_eq!(of(&log, "green"), vec![]);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_pattern_switches_everything_off() {
    let (mut ind, log, _start) = indicator();
    let r = tokio::time::timeout(Duration::from_millis(100), ind.signal(Signal::Failure)).await;
    assert!(r.is_err());
    assert_eq!(of(&log, "buzzer"), vec![(0, true), (100, false)]);
    assert_eq!(of(&log, "red"), vec![(0, true), (100, false)]);
    let (buzzer, green, red) = ind.into_pins();
    assert!(buzzer.is_some() && green.is_some() && red.is_some());
}

#[test]
fn wiring_parses_and_validates() {
    let w = GpioWiring::parse(
        "/dev/gpiochip0?ok=17&cancel=27&back=22&1=5&menu=6&up=12&down=13&buzzer=23&green=24&red=25&debounce_ms=50",
    )
    .unwrap();
    assert_eq!(w.chip.to_str(), Some("/dev/gpiochip0"));
    assert_eq!(
        w.buttons,
        vec![
            (17, Button::Ok),
            (27, Button::Cancel),
            (22, Button::Back),
            (5, Button::Digit(Digit::new(1).unwrap())),
            (6, Button::Menu),
            (12, Button::Up),
            (13, Button::Down),
        ]
    );
    assert!(w.active_low);
    assert_eq!(w.debounce, Duration::from_millis(50));
    assert_eq!((w.buzzer, w.green, w.red), (Some(23), Some(24), Some(25)));
    let w = GpioWiring::parse("/dev/gpiochip1?ok=3&active=high").unwrap();
    assert!(!w.active_low);
    assert_eq!(w.buzzer, None);
    for bad in [
        "gpiochip0?ok=1",
        "/dev/gpiochip0?ok",
        "/dev/gpiochip0?ok=x",
        "/dev/gpiochip0?ok=2000",
        "/dev/gpiochip0?enter=1",
        "/dev/gpiochip0?ok=1&cancel=1",
        "/dev/gpiochip0?ok=1&buzzer=1",
        "/dev/gpiochip0?active=sideways",
        "/dev/gpiochip0?debounce_ms=0",
    ] {
        assert!(
            matches!(GpioWiring::parse(bad), Err(GpioError::Spec { .. })),
            "{bad}"
        );
    }
}
