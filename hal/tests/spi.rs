//! SPI panels through mipidsi against recording SPI/pin fakes: the init
//! sequence, full-frame and partial pixel writes, bus errors.

use std::sync::{Arc, Mutex};

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, OutputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};
use hal::drivers::spi_panel::{PanelOptions, SpiPanel, SpiPanelError, SpidevWiring};
use hal::{Display, DisplayError};
use mipidsi::models::{ILI9341Rgb565, ST7789};

use crate::common::show;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Pin(&'static str, bool),
    Write(Vec<u8>),
    Delay,
}

type Log = Arc<Mutex<Vec<Ev>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BusFault;

impl spi::Error for BusFault {
    fn kind(&self) -> spi::ErrorKind {
        spi::ErrorKind::Other
    }
}

struct RecSpi {
    log: Log,
    /// Fail the write after this many more (None: never).
    fail_after: Arc<Mutex<Option<usize>>>,
}

impl spi::ErrorType for RecSpi {
    type Error = BusFault;
}

impl SpiDevice for RecSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), BusFault> {
        for op in ops {
            match op {
                Operation::Write(bytes) => {
                    let mut f = self.fail_after.lock().unwrap();
                    if let Some(n) = f.as_mut() {
                        if *n == 0 {
                            return Err(BusFault);
                        }
                        *n -= 1;
                    }
                    self.log.lock().unwrap().push(Ev::Write(bytes.to_vec()));
                }
                other => panic!("the panel only writes, got {other:?}"),
            }
        }
        Ok(())
    }
}

struct RecPin {
    name: &'static str,
    log: Log,
}

impl digital::ErrorType for RecPin {
    type Error = core::convert::Infallible;
}

impl OutputPin for RecPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.log.lock().unwrap().push(Ev::Pin(self.name, false));
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.log.lock().unwrap().push(Ev::Pin(self.name, true));
        Ok(())
    }
}

struct RecDelay(Log);

impl DelayNs for RecDelay {
    fn delay_ns(&mut self, _ns: u32) {
        self.0.lock().unwrap().push(Ev::Delay);
    }
}

/// A controller command with its parameter bytes, as decoded from the DC
/// line and the bytes written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cmd {
    op: u8,
    data: Vec<u8>,
}

/// Decodes the SPI traffic into commands (DC low) and their data (DC high).
fn commands(log: &[Ev]) -> Vec<Cmd> {
    let mut dc = false;
    let mut out: Vec<Cmd> = Vec::new();
    for ev in log {
        match ev {
            Ev::Pin("dc", level) => dc = *level,
            Ev::Write(bytes) if !dc => {
                for b in bytes {
                    out.push(Cmd {
                        op: *b,
                        data: Vec::new(),
                    });
                }
            }
            Ev::Write(bytes) => out
                .last_mut()
                .expect("data before any command")
                .data
                .extend_from_slice(bytes),
            _ => {}
        }
    }
    out
}

struct Rig {
    log: Log,
    fail_after: Arc<Mutex<Option<usize>>>,
}

type TestPanel<M> = SpiPanel<RecSpi, RecPin, M, RecPin, RecPin>;

fn panel<M: mipidsi::models::Model<ColorFormat = Rgb565>>(
    model: M,
    options: PanelOptions,
) -> (TestPanel<M>, Rig) {
    let log: Log = Arc::default();
    let fail_after = Arc::new(Mutex::new(None));
    let pin = |name| RecPin {
        name,
        log: log.clone(),
    };
    let p = SpiPanel::init(
        model,
        RecSpi {
            log: log.clone(),
            fail_after: fail_after.clone(),
        },
        pin("dc"),
        Some(pin("reset")),
        Some(pin("backlight")),
        options,
        &mut RecDelay(log.clone()),
    )
    .unwrap();
    (p, Rig { log, fail_after })
}

impl Rig {
    fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

const CASET: u8 = 0x2A;
const RASET: u8 = 0x2B;
const RAMWR: u8 = 0x2C;

fn window(x0: u16, x1: u16) -> Vec<u8> {
    [x0.to_be_bytes(), x1.to_be_bytes()].concat()
}

#[test]
fn st7789_init_sequence() {
    let (_panel, rig) = panel(ST7789, PanelOptions::st7789());
    let log = rig.take();
    let pins: Vec<_> = log
        .iter()
        .filter(|e| matches!(e, Ev::Pin("reset" | "backlight", _)))
        .cloned()
        .collect();
    // Hardware reset pulse first, backlight on last.
    assert_eq!(
        pins,
        vec![
            Ev::Pin("reset", false),
            Ev::Pin("reset", true),
            Ev::Pin("backlight", true)
        ]
    );
    assert_eq!(log.last(), Some(&Ev::Pin("backlight", true)));
    let ops: Vec<u8> = commands(&log).iter().map(|c| c.op).collect();
    // SLPOUT, MADCTL, INVON (ST7789 modules), COLMOD, NORON, DISPON.
    assert_eq!(ops, vec![0x11, 0x36, 0x21, 0x3A, 0x13, 0x29]);
    let colmod = commands(&log).into_iter().find(|c| c.op == 0x3A).unwrap();
    assert_eq!(colmod.data, vec![0x55], "16 bits per pixel");
    assert!(log.iter().filter(|e| **e == Ev::Delay).count() >= 3);
}

#[test]
fn without_a_reset_line_the_controller_gets_swreset() {
    let log: Log = Arc::default();
    let pin = |name| RecPin {
        name,
        log: log.clone(),
    };
    let p = SpiPanel::<_, _, _, RecPin, RecPin>::init(
        ST7789,
        RecSpi {
            log: log.clone(),
            fail_after: Arc::default(),
        },
        pin("dc"),
        None,
        None,
        PanelOptions::st7789(),
        &mut RecDelay(log.clone()),
    )
    .unwrap();
    let log = log.lock().unwrap().clone();
    let ops: Vec<u8> = commands(&log).iter().map(|c| c.op).collect();
    assert_eq!(ops, vec![0x01, 0x11, 0x36, 0x21, 0x3A, 0x13, 0x29]);
    // A wait between SWRESET and the next command.
    let first_write = log.iter().position(|e| matches!(e, Ev::Write(_))).unwrap();
    assert_eq!(log[first_write + 1], Ev::Delay);
    let (_, _, rst, bl) = p.release();
    assert!(rst.is_none() && bl.is_none());
}

#[test]
fn ili9341_is_not_inverted_and_bgr() {
    let (_panel, rig) = panel(ILI9341Rgb565, PanelOptions::ili9341());
    let cmds = commands(&rig.take());
    assert!(cmds.iter().any(|c| c.op == 0x20), "INVOFF");
    assert!(!cmds.iter().any(|c| c.op == 0x21), "no INVON");
    let madctl = cmds.iter().find(|c| c.op == 0x36).unwrap();
    assert_eq!(madctl.data[0] & 0x08, 0x08, "BGR bit set");
    assert_eq!(cmds.last().unwrap().op, 0x29, "display on");
}

#[tokio::test]
async fn first_flush_sends_the_whole_frame_as_rendered() {
    let (mut p, rig) = panel(ST7789, PanelOptions::st7789());
    rig.take();
    let screens = ui::samples::sample_screens();
    let (_, screen) = &screens[1];
    show(&mut p, screen).await.unwrap();
    let cmds = commands(&rig.take());
    let ops: Vec<u8> = cmds.iter().map(|c| c.op).collect();
    assert_eq!(ops, vec![CASET, RASET, RAMWR]);
    assert_eq!(cmds[0].data, window(0, 239));
    assert_eq!(cmds[1].data, window(0, 319));
    let mut expected = hal::Framebuffer::new(Size::new(240, 320));
    ui::render(screen, &mut expected).unwrap();
    let mut want = Vec::new();
    expected.write_rgb565_be(&mut want);
    assert_eq!(cmds[2].data.len(), 240 * 320 * 2);
    assert!(cmds[2].data == want, "pixels differ from the ui render");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_change_sends_only_its_window() {
    let (mut p, rig) = panel(ST7789, PanelOptions::st7789());
    p.flush().await.unwrap();
    rig.take();
    p.flush().await.unwrap();
    assert!(rig.take().is_empty(), "nothing drawn, nothing sent");

    let area = Rectangle::new(Point::new(10, 300), Size::new(5, 3));
    p.fill_solid(&area, Rgb565::RED).unwrap();
    assert_eq!(p.pending(), Some(area));
    p.flush().await.unwrap();
    let log = rig.take();
    assert!(
        log.iter()
            .all(|e| !matches!(e, Ev::Write(b) if b.len() > hal::drivers::spi_panel::SPI_CHUNK))
    );
    let cmds = commands(&log);
    assert_eq!(cmds.len(), 3);
    assert_eq!(
        cmds[0],
        Cmd {
            op: CASET,
            data: window(10, 14)
        }
    );
    assert_eq!(
        cmds[1],
        Cmd {
            op: RASET,
            data: window(300, 302)
        }
    );
    assert_eq!(cmds[2].op, RAMWR);
    let red = Rgb565::RED.into_storage().to_be_bytes();
    assert_eq!(cmds[2].data, red.repeat(15));
}

#[tokio::test]
async fn rotated_panel_is_landscape() {
    let options = PanelOptions {
        rotation: 90,
        ..PanelOptions::ili9341()
    };
    let (mut p, rig) = panel(ILI9341Rgb565, options);
    assert_eq!(p.panel_size(), Size::new(320, 240));
    rig.take();
    p.flush().await.unwrap();
    let cmds = commands(&rig.take());
    assert_eq!(
        cmds[0].data,
        window(0, 319),
        "columns run along the long side"
    );
    assert_eq!(cmds[1].data, window(0, 239));
    assert_eq!(cmds[2].data.len(), 240 * 320 * 2);
}

#[tokio::test]
async fn a_bus_error_is_reported_and_the_next_flush_resends_everything() {
    let (mut p, rig) = panel(ST7789, PanelOptions::st7789());
    p.flush().await.unwrap();
    rig.take();
    Pixel(Point::new(1, 1), Rgb565::BLUE).draw(&mut p).unwrap();
    *rig.fail_after.lock().unwrap() = Some(2);
    assert!(matches!(p.flush().await, Err(DisplayError::Bus(_))));
    *rig.fail_after.lock().unwrap() = None;
    rig.take();
    p.flush().await.unwrap();
    let cmds = commands(&rig.take());
    assert_eq!(cmds[0].data, window(0, 239));
    assert_eq!(cmds[1].data, window(0, 319));
}

#[test]
fn bad_rotation_is_refused() {
    let log: Log = Arc::default();
    let pin = |name| RecPin {
        name,
        log: log.clone(),
    };
    let r = SpiPanel::<_, _, _, _, RecPin>::init(
        ST7789,
        RecSpi {
            log: log.clone(),
            fail_after: Arc::default(),
        },
        pin("dc"),
        Some(pin("reset")),
        None,
        PanelOptions {
            rotation: 45,
            ..PanelOptions::st7789()
        },
        &mut RecDelay(log.clone()),
    );
    assert!(matches!(r, Err(SpiPanelError::Option { .. })));
}

#[test]
fn wiring_parses_and_validates() {
    let w = SpidevWiring::parse("/dev/spidev0.0", PanelOptions::st7789()).unwrap();
    assert_eq!(w.spi.to_str(), Some("/dev/spidev0.0"));
    assert_eq!((w.dc, w.reset, w.backlight), (25, Some(27), Some(18)));
    let w = SpidevWiring::parse(
        "/dev/spidev1.0?dc=5&reset=none&backlight=none&chip=/dev/gpiochip4&hz=40000000&width=240&height=240&yoff=80&rotate=180&invert=0&bgr=1",
        PanelOptions::st7789(),
    )
    .unwrap();
    assert_eq!((w.dc, w.reset, w.backlight), (5, None, None));
    assert_eq!(w.gpiochip.to_str(), Some("/dev/gpiochip4"));
    assert_eq!(w.hz, 40_000_000);
    assert_eq!(
        w.options,
        PanelOptions {
            width: 240,
            height: 240,
            x_offset: 0,
            y_offset: 80,
            rotation: 180,
            invert: false,
            bgr: true
        }
    );
    for bad in [
        "spidev0.0",
        "/dev/spidev0.0?dc=x",
        "/dev/spidev0.0?dc=5000",
        "/dev/spidev0.0?color=red",
        "/dev/spidev0.0?width=0",
        "/dev/spidev0.0?invert=yes",
        "/dev/spidev0.0?hz=10",
        "/dev/spidev0.0?chip=gpiochip0",
        "/dev/spidev0.0?rotate=300",
    ] {
        assert!(
            matches!(
                SpidevWiring::parse(bad, PanelOptions::st7789()),
                Err(SpiPanelError::Option { .. })
            ),
            "{bad}"
        );
    }
}

/// The bounding box of the pixels that differ between two renders.
fn changed_box(a: &hal::Framebuffer, b: &hal::Framebuffer, size: Size) -> Option<Rectangle> {
    let (mut min, mut max) = (Point::new(i32::MAX, i32::MAX), Point::new(-1, -1));
    for y in 0..size.height as i32 {
        for x in 0..size.width as i32 {
            let p = Point::new(x, y);
            if a.pixel(p) != b.pixel(p) {
                min = Point::new(min.x.min(x), min.y.min(y));
                max = Point::new(max.x.max(x), max.y.max(y));
            }
        }
    }
    (max.x >= 0).then(|| Rectangle::with_corners(min, max))
}

#[tokio::test]
async fn a_screen_redraw_sends_only_what_changed() {
    let size = Size::new(240, 320);
    let (mut p, rig) = panel(ST7789, PanelOptions::st7789());
    let screens = ui::samples::sample_screens();
    let (_, before) = screens.iter().find(|(n, _)| *n == "idle_offline").unwrap();
    show(&mut p, before).await.unwrap();
    rig.take();

    // The same screen again: nothing goes over the bus.
    show(&mut p, before).await.unwrap();
    assert!(commands(&rig.take()).is_empty());

    // Only the outbox counter changes (7 to 8 items to send).
    let mut after = before.clone();
    after.status.queued += 1;
    show(&mut p, &after).await.unwrap();
    let cmds = commands(&rig.take());

    let mut fa = hal::Framebuffer::new(size);
    let mut fb = hal::Framebuffer::new(size);
    ui::render(before, &mut fa).unwrap();
    ui::render(&after, &mut fb).unwrap();
    let area = changed_box(&fa, &fb, size).expect("the counter is drawn");
    assert!(
        area.size.width * area.size.height < size.width * size.height / 4,
        "a small region: {area:?}"
    );
    let br = area.bottom_right().unwrap();
    let (x0, y0) = (area.top_left.x as u16, area.top_left.y as u16);
    assert_eq!(
        cmds[0],
        Cmd {
            op: CASET,
            data: window(x0, br.x as u16)
        }
    );
    assert_eq!(
        cmds[1],
        Cmd {
            op: RASET,
            data: window(y0, br.y as u16)
        }
    );
    let mut want = Vec::new();
    for y in area.rows() {
        for x in area.columns() {
            let c = fb.pixel(Point::new(x, y)).unwrap();
            want.extend_from_slice(&c.into_storage().to_be_bytes());
        }
    }
    assert!(cmds[2].op == RAMWR && cmds[2].data == want);
}
