//! Reader path benchmark: from an emulated card entering the field to the card read
//! delivered through the `CardReader` trait, over a real pseudo-terminal opened with
//! tokio-serial at 115200 baud, for each scripted card profile.
//!
//! A pty moves bytes at memory speed whatever baud rate is set, so the time the same
//! bytes take on a real 115200 baud UART (8N1: 10 bits a byte) is computed from the
//! emulator's byte counts and reported separately. Card-side time (the card's own
//! processing and the 106 kbps RF link) is not modelled.
//!
//! Run: `cargo bench -p hal --bench reader`

use std::time::{Duration, Instant};

use hal::pn532::emulator::{EmulatedCard, Pn532Emulator};
use hal::pn532::{Pn532, Pn532Config, Pn532Reader};
use hal::{CardReader, ReadPurpose, ReadRequest};
use proto::{Currency, Money};
use tokio_util::sync::CancellationToken;

const BAUD: u32 = 115_200;
const ROUNDS: usize = 200;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

async fn run() {
    println!(
        "reader path: card enters field -> CardRead delivered ({ROUNDS} taps per card, pty, {BAUD} baud)"
    );
    println!(
        "{:<10} {:>6} {:>10} {:>10} {:>10} {:>12} {:>12} {:>14}",
        "card",
        "apdus",
        "bytes",
        "p50 host",
        "p95 host",
        "wire@115200",
        "p50+wire",
        "share of 500ms"
    );
    for name in ["visa_ok", "mc_ok", "verve_ok"] {
        let emulator = Pn532Emulator::start().expect("emulator");
        let config = Pn532Config {
            baud: BAUD,
            ..Pn532Config::default()
        };
        let driver = Pn532::open(emulator.path(), config).expect("open pty slave");
        let mut reader = Pn532Reader::start(driver).await.expect("wake up");
        let card = EmulatedCard::named(name).expect("named card");
        let request = ReadRequest {
            amount: Money::from_minor(150_050).expect("amount"),
            currency: Currency::Ngn,
            purpose: ReadPurpose::Sale,
            timeout: Duration::from_secs(5),
        };
        let mut times = Vec::with_capacity(ROUNDS);
        let mut wire = Duration::ZERO;
        let mut bytes = 0;
        let mut apdus = 0;
        for _ in 0..ROUNDS {
            // The previous card leaves the field; the reader sees it go first.
            emulator.remove_card();
            let cancel = CancellationToken::new();
            let read = reader.read_card(request, cancel.clone());
            tokio::pin!(read);
            // Tap once the PN532 waits for a card.
            tokio::select! {
                r = &mut read => panic!("read finished without a card: {r:?}"),
                () = emulator.until_polling() => {}
            }
            let before = emulator.stats();
            let t0 = Instant::now();
            emulator.tap(card.clone());
            let got = read.await.expect("card read");
            let elapsed = t0.elapsed();
            assert_eq!(got.last4(), card.last4());
            let after = emulator.stats();
            let delta = hal::pn532::emulator::LineStats {
                bytes_to_host: after.bytes_to_host - before.bytes_to_host,
                bytes_from_host: after.bytes_from_host - before.bytes_from_host,
                apdus: after.apdus - before.apdus,
            };
            wire = delta.wire_time(BAUD);
            bytes = delta.bytes_to_host + delta.bytes_from_host;
            apdus = delta.apdus;
            times.push(elapsed);
        }
        times.sort();
        let p50 = percentile(&times, 0.5);
        let p95 = percentile(&times, 0.95);
        let total = p50 + wire;
        println!(
            "{:<10} {:>6} {:>10} {:>10.2?} {:>10.2?} {:>12.2?} {:>12.2?} {:>13.1}%",
            name,
            apdus,
            bytes,
            p50,
            p95,
            wire,
            total,
            total.as_secs_f64() / 0.5 * 100.0
        );
    }
    println!(
        "host = measured on the pty (driver, codec, EMV parsing, emulator); wire = bytes x 10 bits / {BAUD} baud, computed;"
    );
    println!(
        "p50+wire estimates one tap on real hardware, without the card's own processing time."
    );
}
