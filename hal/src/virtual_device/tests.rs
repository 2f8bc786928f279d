use std::time::Duration;

use embedded_graphics::prelude::Size;
use proto::{Currency, Money};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::traits::ReadPurpose;

fn request(timeout: Duration) -> ReadRequest {
    ReadRequest {
        amount: Money::parse("2000.00").unwrap(),
        currency: Currency::Ngn,
        purpose: ReadPurpose::Sale,
        timeout,
    }
}

#[tokio::test]
async fn tap_reaches_the_waiting_read() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    assert_eq!(
        device.tap(TestCard::VisaOk),
        Err(TapError::ReaderNotWaiting)
    );

    let read = tokio::spawn(async move {
        parts
            .reader
            .read_card(request(Duration::from_secs(60)), CancellationToken::new())
            .await
    });
    device.reader_ready().await;
    assert!(device.reader_waiting());
    device.tap(TestCard::VerveOk).unwrap();
    let card = read.await.unwrap().unwrap();
    assert_eq!(card.brand(), crate::CardBrand::Verve);
    assert_eq!(card.last4(), "0007");
    assert!(!device.reader_waiting());
    // Nobody waits any more.
    assert_eq!(
        device.tap(TestCard::VisaOk),
        Err(TapError::ReaderNotWaiting)
    );
}

#[tokio::test]
async fn every_test_card_reads_as_specified() {
    let expected = [
        (TestCard::VisaOk, crate::CardBrand::Visa, "1111"),
        (TestCard::McOk, crate::CardBrand::Mastercard, "4444"),
        (TestCard::VerveOk, crate::CardBrand::Verve, "0007"),
        (TestCard::VisaDeclined, crate::CardBrand::Visa, "0002"),
        (TestCard::VisaInsufficient, crate::CardBrand::Visa, "9995"),
    ];
    for (card, brand, last4) in expected {
        let read = card.read().unwrap();
        assert_eq!((read.brand(), read.last4()), (brand, last4), "{card:?}");
        assert_eq!(read.pan().expose(), card.pan().unwrap());
        assert_eq!(TestCard::parse(card.name()), Ok(card));
        assert!(read.expiry().year() > 2026);
    }
    assert!(matches!(
        TestCard::Misread.read(),
        Err(ReaderError::Misread(_))
    ));
    assert!(TestCard::parse("amex_ok").is_err());
}

#[tokio::test]
async fn misread_reaches_the_read_as_an_error() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    let read = tokio::spawn(async move {
        parts
            .reader
            .read_card(request(Duration::from_secs(60)), CancellationToken::new())
            .await
    });
    device.reader_ready().await;
    device.tap(TestCard::Misread).unwrap();
    assert!(matches!(read.await.unwrap(), Err(ReaderError::Misread(_))));
}

#[tokio::test(start_paused = true)]
async fn read_times_out_and_frees_the_reader() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    let result = parts
        .reader
        .read_card(request(Duration::from_secs(60)), CancellationToken::new())
        .await;
    assert!(matches!(result, Err(ReaderError::Timeout(t)) if t == Duration::from_secs(60)));
    assert!(!device.reader_waiting());
    assert_eq!(
        device.tap(TestCard::VisaOk),
        Err(TapError::ReaderNotWaiting)
    );
}

#[tokio::test]
async fn read_is_cancellable() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let read = tokio::spawn(async move {
        parts
            .reader
            .read_card(request(Duration::from_secs(3600)), token)
            .await
    });
    device.reader_ready().await;
    cancel.cancel();
    assert!(matches!(read.await.unwrap(), Err(ReaderError::Cancelled)));
    assert!(!device.reader_waiting());
}

#[tokio::test]
async fn dropped_read_frees_the_reader() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    let read = tokio::spawn(async move {
        parts
            .reader
            .read_card(request(Duration::from_secs(3600)), CancellationToken::new())
            .await
    });
    device.reader_ready().await;
    read.abort();
    assert!(read.await.unwrap_err().is_cancelled());
    assert!(!device.reader_waiting());
    assert_eq!(
        device.tap(TestCard::VisaOk),
        Err(TapError::ReaderNotWaiting)
    );
}

#[tokio::test]
async fn presses_arrive_in_order_and_overflow_is_refused() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    device.press(Button::Ok).unwrap();
    device.press(Button::parse("7").unwrap()).unwrap();
    assert_eq!(parts.input.next_button().await.unwrap(), Button::Ok);
    assert_eq!(parts.input.next_button().await.unwrap().as_str(), "7");
    for _ in 0..BUTTON_QUEUE {
        device.press(Button::Cancel).unwrap();
    }
    assert_eq!(device.press(Button::Cancel), Err(PressError::QueueFull));
    drop(parts.input);
    assert_eq!(device.press(Button::Cancel), Err(PressError::Closed));
}

#[tokio::test]
async fn display_publishes_frames_and_state() {
    let (empty, _) = VirtualDevice::new(Size::new(480, 320));
    assert_eq!(empty.screen_state(), ScreenStateJson::empty());
    let (device, mut parts) =
        VirtualDevice::with_state(Size::new(480, 320), &ui::ScreenState::booting());
    assert_eq!(device.frame().seq, 0);
    let booting: ui::ScreenState = device.screen_state().parse().unwrap();
    assert_eq!(booting.screen, ui::ScreenName::Booting);
    let (_, screen) = ui::samples::sample_screens()
        .into_iter()
        .find(|(name, _)| *name == "tap_card")
        .unwrap();
    let mut frames = device.subscribe_frames();
    ui::render(&screen, &mut parts.display).unwrap();
    parts.display.set_state(&screen.state());
    parts.display.flush().await.unwrap();
    frames.changed().await.unwrap();
    let flushed = device.frame();
    assert_eq!(flushed.seq, 1);
    let mut expected = crate::Framebuffer::new(Size::new(480, 320));
    ui::render(&screen, &mut expected).unwrap();
    assert_eq!(flushed.frame, expected);
    assert_eq!(
        device.screen_state().parse::<ui::ScreenState>().unwrap(),
        screen.state()
    );
    assert_eq!(
        device.screen_state().as_str(),
        serde_json::to_string(&screen.state()).unwrap()
    );
    // Only a JSON object can be a screen state; anything else leaves it.
    let v = device.version();
    parts.display.set_state("tap_card");
    parts.display.set_state(&[1, 2]);
    assert_eq!(device.version(), v);
    assert_eq!(
        device.screen_state().parse::<ui::ScreenState>().unwrap(),
        screen.state()
    );
    assert!(ScreenStateJson::new(&3).is_err());
    assert_eq!(parts.display.panel_size(), Size::new(480, 320));
}

#[tokio::test]
async fn indicator_records_signals() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    parts.indicator.signal(Signal::CardRead).await.unwrap();
    parts.indicator.signal(Signal::Success).await.unwrap();
    let log = device.indicator();
    assert_eq!(log.last, Some(Signal::Success));
    assert_eq!(
        (log.count, log.card_read, log.success, log.failure),
        (2, 1, 1, 0)
    );
}

#[tokio::test]
async fn reader_info_is_virtual() {
    let (_device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    assert_eq!(parts.reader.info().await.unwrap().model, "virtual");
}

#[tokio::test]
async fn every_observable_change_bumps_the_version() {
    let (device, mut parts) = VirtualDevice::new(Size::new(240, 320));
    let v0 = device.version();
    parts.indicator.signal(Signal::Failure).await.unwrap();
    let v1 = device.version();
    assert!(v1 > v0);
    let waiter = device.clone();
    let waited = tokio::spawn(async move { waiter.changed_since(v1).await });
    let read = tokio::spawn(async move {
        parts
            .reader
            .read_card(request(Duration::from_secs(60)), CancellationToken::new())
            .await
    });
    waited.await.unwrap();
    device.reader_ready().await;
    let v2 = device.version();
    device.tap(TestCard::VisaOk).unwrap();
    read.await.unwrap().unwrap();
    assert!(device.version() > v2);
}
