//! The framebuffer display on a file-backed framebuffer with explicit
//! geometry: same drawing and flush code as on `/dev/fbN`.

use std::io::Write;

use embedded_graphics::pixelcolor::{Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use hal::Display;
use hal::drivers::fbdev::{FbDisplay, FbError, FbGeometry, FbPixelFormat, parse_spec};
use hal::drivers::{AnyDisplay, DisplayDriver};

use crate::common::show;

fn backing(len: usize, fill: u8) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&vec![fill; len]).unwrap();
    f.flush().unwrap();
    f
}

fn read(f: &tempfile::NamedTempFile) -> Vec<u8> {
    std::fs::read(f.path()).unwrap()
}

#[tokio::test]
async fn rgb565_frame_matches_the_ui_render() {
    let g = FbGeometry::packed(240, 320, FbPixelFormat::Rgb565);
    let file = backing(g.required_len().unwrap(), 0);
    let mut fb = FbDisplay::open_file(file.path(), g).unwrap();
    assert_eq!(fb.panel_size(), Size::new(240, 320));

    for (name, screen) in ui::samples::sample_screens() {
        show(&mut fb, &screen).await.unwrap();
        let mut expected = hal::Framebuffer::new(Size::new(240, 320));
        ui::render(&screen, &mut expected).unwrap();
        let want: Vec<u8> = expected
            .pixels()
            .iter()
            .flat_map(|c| c.into_storage().to_le_bytes())
            .collect();
        assert!(read(&file) == want, "screen {name} differs");
    }
}

#[tokio::test]
async fn xrgb8888_with_padding_and_offset() {
    // 10x4 visible, rows of 64 bytes (24 padding), frame starts 128 bytes in.
    let g = FbGeometry {
        width: 10,
        height: 4,
        stride: 64,
        format: FbPixelFormat::Xrgb8888,
        offset: 128,
    };
    let file = backing(128 + 64 * 4 + 32, 0xAA);
    let mut fb = FbDisplay::open_file(file.path(), g).unwrap();
    fb.clear(Rgb565::BLACK).unwrap();
    let orange = Rgb565::new(31, 40, 4);
    Pixel(Point::new(9, 3), orange).draw(&mut fb).unwrap();
    fb.flush().await.unwrap();

    let bytes = read(&file);
    let c = Rgb888::from(orange);
    let word = (u32::from(c.r()) << 16) | (u32::from(c.g()) << 8) | u32::from(c.b());
    let at = 128 + 3 * 64 + 9 * 4;
    assert_eq!(&bytes[at..at + 4], &word.to_le_bytes());
    assert_eq!(&bytes[128..132], &[0, 0, 0, 0], "black pixel");
    // Nothing outside the visible pixels was touched.
    assert!(bytes[..128].iter().all(|b| *b == 0xAA), "before the frame");
    for row in 0..4 {
        let pad = 128 + row * 64 + 40..128 + (row + 1) * 64;
        assert!(bytes[pad].iter().all(|b| *b == 0xAA), "row {row} padding");
    }
    assert!(
        bytes[128 + 256..].iter().all(|b| *b == 0xAA),
        "after the frame"
    );
}

#[tokio::test]
async fn a_small_change_writes_only_its_region() {
    let g = FbGeometry::packed(64, 48, FbPixelFormat::Rgb565);
    let file = backing(g.required_len().unwrap(), 0);
    let mut fb = FbDisplay::open_file(file.path(), g).unwrap();
    // First flush: the whole frame.
    assert_eq!(
        fb.flush_now(),
        Some(Rectangle::new(Point::zero(), Size::new(64, 48)))
    );
    assert_eq!(fb.flush_now(), None, "nothing drawn, nothing written");

    // Mark the memory so that any write shows.
    std::fs::write(file.path(), vec![0x55; g.required_len().unwrap()]).unwrap();
    let area = Rectangle::new(Point::new(10, 20), Size::new(5, 3));
    fb.fill_solid(&area, Rgb565::RED).unwrap();
    Pixel(Point::new(16, 21), Rgb565::GREEN)
        .draw(&mut fb)
        .unwrap();
    let expect = Rectangle::with_corners(Point::new(10, 20), Point::new(16, 22));
    assert_eq!(fb.pending(), Some(expect));
    fb.flush().await.unwrap();

    let bytes = read(&file);
    for y in 0..48usize {
        for x in 0..64usize {
            let got = [bytes[(y * 64 + x) * 2], bytes[(y * 64 + x) * 2 + 1]];
            let p = Point::new(x as i32, y as i32);
            let want = if area.contains(p) {
                Rgb565::RED.into_storage().to_le_bytes()
            } else if p == Point::new(16, 21) {
                Rgb565::GREEN.into_storage().to_le_bytes()
            } else if expect.contains(p) {
                // Inside the dirty box, unchanged pixels are rewritten.
                [0, 0]
            } else {
                [0x55, 0x55]
            };
            assert_eq!(got, want, "pixel {x},{y}");
        }
    }
}

#[test]
fn geometry_and_device_errors_are_typed() {
    let g = FbGeometry::packed(100, 100, FbPixelFormat::Rgb565);
    let small = backing(100 * 100 * 2 - 1, 0);
    assert!(matches!(
        FbDisplay::open_file(small.path(), g),
        Err(FbError::Geometry { .. })
    ));
    let mut short_stride = g;
    short_stride.stride = 199;
    let ok_len = backing(100 * 100 * 2, 0);
    assert!(matches!(
        FbDisplay::open_file(ok_len.path(), short_stride),
        Err(FbError::Geometry { .. })
    ));
    let zero = FbGeometry::packed(0, 10, FbPixelFormat::Rgb565);
    assert!(matches!(
        FbDisplay::open_file(ok_len.path(), zero),
        Err(FbError::Geometry { .. })
    ));
    assert!(matches!(
        FbDisplay::open_file("/nonexistent/fb", g),
        Err(FbError::Io { .. })
    ));
    // A file is not a framebuffer: the geometry ioctl fails cleanly.
    match FbDisplay::open(ok_len.path()) {
        Err(FbError::Ioctl { what, .. }) => assert_eq!(what, "FBIOGET_VSCREENINFO"),
        other => panic!("expected an ioctl error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_named_in_the_configuration_with_its_geometry() {
    let file = backing(8 * 4 * 4, 0);
    let spec = format!("{}?width=8&height=4&format=xrgb8888", file.path().display());
    let mut d = AnyDisplay::open(DisplayDriver::Fbdev, &spec).await.unwrap();
    assert_eq!(d.describe(), "fbdev xrgb8888 8x4");
    d.clear(Rgb565::WHITE).unwrap();
    d.flush().await.unwrap();
    assert!(read(&file).chunks(4).all(|p| p == [0xFF, 0xFF, 0xFF, 0]));

    let (path, g) =
        parse_spec("/tmp/fb?width=10&height=2&format=rgb565&stride=32&offset=64").unwrap();
    assert_eq!(path, "/tmp/fb");
    assert_eq!(
        g,
        Some(FbGeometry {
            width: 10,
            height: 2,
            stride: 32,
            format: FbPixelFormat::Rgb565,
            offset: 64
        })
    );
    assert_eq!(parse_spec("/dev/fb0").unwrap(), ("/dev/fb0", None));
    for bad in [
        "/f?width=10&height=2",
        "/f?width=10&height=2&format=bgr",
        "/f?width=x&height=2&format=rgb565",
        "/f?depth=3",
        "/f?width",
    ] {
        assert!(
            matches!(parse_spec(bad), Err(FbError::Geometry { .. })),
            "{bad}"
        );
    }
    // Geometry larger than the file is refused at open.
    let spec = format!(
        "{}?width=80&height=4&format=xrgb8888",
        file.path().display()
    );
    assert!(matches!(
        AnyDisplay::open(DisplayDriver::Fbdev, &spec).await,
        Err(hal::drivers::DriverError::Fb(FbError::Geometry { .. }))
    ));
}

#[tokio::test]
async fn redrawing_the_same_screen_writes_nothing() {
    let g = FbGeometry::packed(240, 320, FbPixelFormat::Rgb565);
    let file = backing(g.required_len().unwrap(), 0);
    let mut fb = FbDisplay::open_file(file.path(), g).unwrap();
    let screens = ui::samples::sample_screens();
    let (_, idle) = &screens[1];
    show(&mut fb, idle).await.unwrap();
    std::fs::write(file.path(), vec![0x55; g.required_len().unwrap()]).unwrap();
    show(&mut fb, idle).await.unwrap();
    assert!(read(&file).iter().all(|b| *b == 0x55), "nothing rewritten");
}
