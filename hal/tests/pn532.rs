//! The PN532 reader against the emulated PN532 on a real pseudo-terminal: the reader
//! opens the pty slave with tokio-serial exactly as it opens `/dev/ttyS0`.

use std::time::Duration;

use hal::emv::{EmvError, TerminalData};
use hal::pn532::emulator::{EmulatedCard, Fault, Pn532Emulator};
use hal::pn532::{Pn532, Pn532Config, Pn532Error, Pn532Reader, ReadError};
use hal::{CardBrand, CardReader, ReadPurpose, ReadRequest, ReaderError};
use proto::{Currency, Money};
use tokio_util::sync::CancellationToken;

/// Short timeouts keep fault tests fast; tokio's clock is real here (pty I/O), so
/// they keep some slack for a loaded CI machine.
fn fast_config() -> Pn532Config {
    Pn532Config {
        baud: 115_200,
        ack_timeout: Duration::from_millis(100),
        response_timeout: Duration::from_millis(300),
        retries: 3,
        removal_poll: Duration::from_millis(10),
    }
}

async fn setup() -> (Pn532Emulator, Pn532Reader<tokio_serial::SerialStream>) {
    let emulator = Pn532Emulator::start().expect("emulator on a pty");
    let driver = Pn532::open(emulator.path(), fast_config()).expect("open pty slave");
    let reader = Pn532Reader::start(driver).await.expect("wake-up");
    (emulator, reader)
}

fn terminal() -> TerminalData {
    let mut t = TerminalData::purchase(Money::from_minor(150_050).expect("amount"), (26, 11, 21));
    t.unpredictable_number = [0xDE, 0xAD, 0xBE, 0xEF];
    t
}

/// Starts a read, taps `card` once the PN532 waits for it, returns the result.
async fn tap_and_read(
    emulator: &Pn532Emulator,
    reader: &mut Pn532Reader<tokio_serial::SerialStream>,
    card: EmulatedCard,
) -> Result<hal::CardRead, ReadError> {
    let cancel = CancellationToken::new();
    let t = terminal();
    let read = reader.read_emv(&t, Some(Duration::from_secs(5)), &cancel);
    tokio::pin!(read);
    tokio::select! {
        r = &mut read => return r,
        () = emulator.until_polling() => {}
    }
    emulator.tap(card);
    read.await
}

#[tokio::test]
async fn firmware_version_after_wakeup() {
    let (_emulator, mut reader) = setup().await;
    let fw = reader.firmware_version().await.unwrap();
    assert_eq!((fw.ic, fw.version, fw.revision), (0x32, 1, 6));
    assert_eq!(fw.to_string(), "PN532 firmware 1.6");
    let info = reader.info().await.unwrap();
    assert_eq!(
        (info.model.as_str(), info.firmware.as_str()),
        ("PN532", "1.6")
    );
}

#[tokio::test]
async fn reads_visa_mastercard_and_verve() {
    let (emulator, mut reader) = setup().await;
    for (name, brand, last4, label) in [
        ("visa_ok", CardBrand::Visa, "1111", "VISA CREDIT"),
        ("mc_ok", CardBrand::Mastercard, "4444", "MASTERCARD"),
        ("verve_ok", CardBrand::Verve, "0007", "VERVE"),
    ] {
        emulator.remove_card();
        let card = EmulatedCard::named(name).unwrap().with_expiry(29, 3);
        let read = tap_and_read(&emulator, &mut reader, card.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read.brand(), brand, "{name}");
        assert_eq!(read.last4(), last4, "{name}");
        assert_eq!((read.expiry().year(), read.expiry().month()), (2029, 3));
        assert_eq!(read.application().label.as_deref(), Some(label));
        // Mastercard lists Maestro first with lower priority: the MC AID wins.
        assert_eq!(
            hal::brand_of_aid(read.application().aid.as_deref().unwrap()),
            Some(brand)
        );
        // The PAN is complete and never printed; the cardholder name never leaves.
        assert_eq!(
            read.pan().expose().len(),
            if name == "verve_ok" { 19 } else { 16 }
        );
        let debug = format!("{read:?}");
        assert!(!debug.contains(read.pan().expose()), "{debug}");
        assert!(!debug.contains(card.holder_name()), "{debug}");
    }
}

#[tokio::test]
async fn pdol_carries_amount_currency_country_and_date() {
    let (emulator, mut reader) = setup().await;
    tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("verve_ok").unwrap(),
    )
    .await
    .unwrap();
    // Verve PDOL: 9F02(6) 5F2A(2) 9F1A(2) 9F37(4) 9A(3) 9C(1)
    assert_eq!(
        emulator.last_pdol_data().unwrap(),
        vec![
            0x00, 0x00, 0x00, 0x15, 0x00, 0x50, 0x05, 0x66, 0x05, 0x66, 0xDE, 0xAD, 0xBE, 0xEF,
            0x26, 0x11, 0x21, 0x00
        ]
    );
}

#[tokio::test]
async fn same_card_is_not_read_twice_until_removed() {
    let (emulator, mut reader) = setup().await;
    let card = EmulatedCard::named("visa_ok").unwrap();
    tap_and_read(&emulator, &mut reader, card.clone())
        .await
        .unwrap();
    // The card stays on the reader: a second read must not return it again.
    let cancel = CancellationToken::new();
    let t = terminal();
    let second = reader
        .read_emv(&t, Some(Duration::from_millis(200)), &cancel)
        .await;
    assert!(matches!(second, Err(ReadError::NoCard(_))), "{second:?}");
    emulator.remove_card();
    let third = tap_and_read(&emulator, &mut reader, card).await.unwrap();
    assert_eq!(third.last4(), "1111");
}

#[tokio::test]
async fn cancel_while_waiting_for_a_card() {
    let (emulator, mut reader) = setup().await;
    let cancel = CancellationToken::new();
    let t = terminal();
    let r = {
        let read = reader.read_emv(&t, None, &cancel);
        tokio::pin!(read);
        tokio::select! {
            r = &mut read => panic!("finished early: {r:?}"),
            () = emulator.until_polling() => {}
        }
        cancel.cancel();
        read.await
    };
    assert!(
        matches!(r, Err(ReadError::Reader(Pn532Error::Cancelled))),
        "{r:?}"
    );
    // The abort reached the PN532, which is usable again at once.
    assert_eq!(reader.firmware_version().await.unwrap().ic, 0x32);
    let read = tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("mc_ok").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(read.last4(), "4444");
}

#[tokio::test]
async fn card_reader_trait_timeout_and_cancel() {
    let (_emulator, mut reader) = setup().await;
    let request = ReadRequest {
        amount: Money::from_minor(100).unwrap(),
        currency: Currency::Ngn,
        purpose: ReadPurpose::Sale,
        timeout: Duration::from_millis(100),
    };
    let r = reader.read_card(request, CancellationToken::new()).await;
    assert!(matches!(r, Err(ReaderError::Timeout(_))), "{r:?}");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let r = reader
        .read_card(
            ReadRequest {
                timeout: Duration::from_secs(30),
                ..request
            },
            cancel,
        )
        .await;
    assert!(matches!(r, Err(ReaderError::Cancelled)), "{r:?}");
}

#[tokio::test]
async fn recovers_from_nacks_bad_checksums_and_garbage() {
    let (emulator, mut reader) = setup().await;
    emulator.inject(Fault::NackCommand);
    emulator.inject(Fault::NackCommand);
    emulator.inject(Fault::CorruptResponse);
    emulator.inject(Fault::GarbageBeforeResponse(vec![
        0xFF, 0x00, 0x13, 0x00, 0xFF, 0x42,
    ]));
    emulator.inject(Fault::GarbageBeforeResponse(vec![0x00; 7]));
    let before = reader.driver().line_health();
    let read = tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("visa_ok").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((read.brand(), read.last4()), (CardBrand::Visa, "1111"));
    let after = reader.driver().line_health();
    assert_eq!(
        after.commands_resent - before.commands_resent,
        2,
        "{after:?}"
    );
    assert_eq!(after.nacks_sent - before.nacks_sent, 1, "{after:?}");
    // At least 0xFF, 0x13, 0xFF, 0x42 (zero bytes are not counted: they may be
    // preamble); the body of the corrupt frame is dropped as garbage too.
    assert!(after.garbage_bytes - before.garbage_bytes >= 4, "{after:?}");
}

#[tokio::test]
async fn recovers_from_an_ignored_command() {
    let (emulator, mut reader) = setup().await;
    emulator.inject(Fault::IgnoreCommand);
    assert_eq!(reader.firmware_version().await.unwrap().ic, 0x32);
    assert_eq!(reader.driver().line_health().commands_resent, 1);
    emulator.inject(Fault::IgnoreCommand);
    let read = tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("verve_ok").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(read.last4(), "0007");
}

#[tokio::test]
async fn silent_reader_is_a_bounded_error() {
    let (emulator, mut reader) = setup().await;
    emulator.inject(Fault::GoSilent);
    let started = std::time::Instant::now();
    let r = reader.firmware_version().await;
    assert!(
        matches!(
            r,
            Err(Pn532Error::NoAck {
                command: 0x02,
                attempts: 4
            })
        ),
        "{r:?}"
    );
    // 4 attempts x 100 ms ACK timeout, with slack for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = reader.info().await;
    assert!(matches!(r, Err(ReaderError::Fault(_))), "{r:?}");
}

#[tokio::test]
async fn card_removed_mid_read() {
    let (emulator, mut reader) = setup().await;
    // PPSE and SELECT AID answered, then the card is gone.
    emulator.inject(Fault::RemoveCardAfterApdus(2));
    let r = tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("mc_ok").unwrap(),
    )
    .await;
    let err = r.unwrap_err();
    assert!(err.is_card_removed(), "{err:?}");
    assert!(matches!(
        ReaderError::from(err),
        ReaderError::RemovedTooEarly
    ));
    // The next tap reads normally.
    let read = tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("mc_ok").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(read.last4(), "4444");
}

#[tokio::test]
async fn malformed_tlv_is_a_misread() {
    let (emulator, mut reader) = setup().await;
    let card = EmulatedCard::named("verve_ok")
        .unwrap()
        .with_malformed_record();
    let r = tap_and_read(&emulator, &mut reader, card).await;
    assert!(
        matches!(
            r,
            Err(ReadError::Emv(EmvError::Tlv {
                command: "READ RECORD",
                ..
            }))
        ),
        "{r:?}"
    );
    emulator.remove_card();
    let read = tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("visa_ok").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(read.last4(), "1111");
}

#[tokio::test]
async fn non_payment_tag_is_unsupported() {
    let (emulator, mut reader) = setup().await;
    let card = EmulatedCard::named("visa_ok").unwrap().not_iso14443_4();
    let r = tap_and_read(&emulator, &mut reader, card).await;
    assert!(matches!(r, Err(ReadError::NotPaymentCard)), "{r:?}");
}

#[tokio::test]
async fn wait_for_removal_sees_the_card_leave() {
    let (emulator, mut reader) = setup().await;
    tap_and_read(
        &emulator,
        &mut reader,
        EmulatedCard::named("visa_ok").unwrap(),
    )
    .await
    .unwrap();
    let cancel = CancellationToken::new();
    let wait = reader.wait_for_removal(&cancel);
    tokio::pin!(wait);
    // Still on the reader: the wait must not finish on its own.
    tokio::select! {
        r = &mut wait => panic!("removal reported while the card is present: {r:?}"),
        () = tokio::time::sleep(Duration::from_millis(60)) => {}
    }
    emulator.remove_card();
    wait.await.unwrap();
}
