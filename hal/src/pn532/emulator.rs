//! An emulated PN532 with scripted contactless cards, on a pseudo-terminal.
//!
//! The emulator owns the master side of a pty and speaks the PN532 host protocol byte
//! for byte; the reader under test opens the slave path ([`Pn532Emulator::path`])
//! exactly as it would open `/dev/ttyS0`. Cards ([`EmulatedCard`]) answer the EMV
//! commands with BER-TLV built here by [`crate::emv::tlv`]; scripted Visa,
//! Mastercard and Verve profiles exercise the format 1 / format 2 GPO responses,
//! track-2-only and 5A cards, PDOL and no PDOL, and PPSE priority selection.
//! [`Fault`]s inject NACKs, bad checksums, garbage, silence and card removal.
//!
//! It is plain library code (no cargo feature, no extra dependency: the pty comes
//! from `tokio-serial`), so the end-to-end tests, the benchmark and a development
//! agent without hardware can all use it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::driver::cmd;
use super::frame::{Frame, Pn532Codec, TFI_HOST, TFI_PN532, encode_info};
use crate::card::CardBrand;
use crate::emv::tlv::{Tag, Tlv, tags};

/// A fault the emulated PN532 (or card) shows once, at the next occasion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer the next command with a NACK instead of an ACK.
    NackCommand,
    /// Ignore the next command entirely: no ACK, no response.
    IgnoreCommand,
    /// Send the next response with a wrong data checksum (a NACK gets a good copy).
    CorruptResponse,
    /// Write these bytes on the line just before the next response.
    GarbageBeforeResponse(Vec<u8>),
    /// Stop answering anything, for good (an unplugged or dead reader).
    GoSilent,
    /// The card leaves the field after answering this many more APDUs.
    RemoveCardAfterApdus(usize),
}

#[derive(Debug, Default)]
struct Faults {
    nack_commands: u32,
    ignore_commands: u32,
    corrupt_responses: u32,
    garbage: VecDeque<Vec<u8>>,
    silent: bool,
    remove_after_apdus: Option<usize>,
}

/// Which scripted card application a card carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProfile {
    /// Visa qVSDC style: PDOL with TTQ, GPO format 2 carrying track 2; expiry in a
    /// record; no tag 5A.
    Visa,
    /// Mastercard M/Chip style: no PDOL, GPO format 1, two SFIs, PPSE listing a
    /// lower-priority Maestro application first.
    Mastercard,
    /// Verve style: PDOL, GPO format 2 with AFL, one record with 5A, 5F24, 57, 5F20.
    Verve,
}

/// A scripted contactless card.
#[derive(Clone)]
pub struct EmulatedCard {
    profile: CardProfile,
    pan: String,
    expiry: (u8, u8),
    holder: String,
    uid: [u8; 4],
    malformed_record: bool,
    sak: u8,
}

impl std::fmt::Debug for EmulatedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedCard")
            .field("profile", &self.profile)
            .field("last4", &self.pan.get(self.pan.len().saturating_sub(4)..))
            .finish()
    }
}

impl EmulatedCard {
    /// A card with `profile` and `pan` (digits), expiring December 2028.
    pub fn new(profile: CardProfile, pan: &str) -> EmulatedCard {
        EmulatedCard {
            profile,
            pan: pan.to_owned(),
            expiry: (28, 12),
            holder: "TEST/CARDHOLDER".to_owned(),
            uid: [0x04, 0xA1, 0xB2, 0xC3],
            malformed_record: false,
            sak: 0x20,
        }
    }

    /// The SPEC's named test cards (`visa_ok`, `mc_ok`, `verve_ok`, `visa_declined`,
    /// `visa_insufficient`).
    pub fn named(name: &str) -> Option<EmulatedCard> {
        let (profile, pan) = match name {
            "visa_ok" => (CardProfile::Visa, "4111111111111111"),
            "mc_ok" => (CardProfile::Mastercard, "5555555555554444"),
            "verve_ok" => (CardProfile::Verve, "5061000000000000007"),
            "visa_declined" => (CardProfile::Visa, "4000000000000002"),
            "visa_insufficient" => (CardProfile::Visa, "4000000000009995"),
            _ => return None,
        };
        Some(EmulatedCard::new(profile, pan))
    }

    /// Sets the expiry (YY, MM).
    pub fn with_expiry(mut self, yy: u8, mm: u8) -> EmulatedCard {
        self.expiry = (yy, mm);
        self
    }

    /// Makes the card's records carry malformed TLV (a length running past the end).
    pub fn with_malformed_record(mut self) -> EmulatedCard {
        self.malformed_record = true;
        self
    }

    /// Makes the card a non-ISO 14443-4 tag (SAK 0x08, like MIFARE Classic).
    pub fn not_iso14443_4(mut self) -> EmulatedCard {
        self.sak = 0x08;
        self
    }

    /// The cardholder name the card holds (tests check it never leaves the reader).
    pub fn holder_name(&self) -> &str {
        &self.holder
    }

    fn aid(&self) -> Vec<u8> {
        match self.profile {
            CardProfile::Visa => vec![0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
            CardProfile::Mastercard => vec![0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
            CardProfile::Verve => vec![0xA0, 0x00, 0x00, 0x03, 0x71, 0x00, 0x01],
        }
    }

    /// The brand a correct reader reports for this card.
    pub fn brand(&self) -> CardBrand {
        match self.profile {
            CardProfile::Visa => CardBrand::Visa,
            CardProfile::Mastercard => CardBrand::Mastercard,
            CardProfile::Verve => CardBrand::Verve,
        }
    }

    /// The last four PAN digits a correct reader reports.
    pub fn last4(&self) -> &str {
        self.pan
            .get(self.pan.len().saturating_sub(4)..)
            .unwrap_or("")
    }

    fn label(&self) -> &'static [u8] {
        match self.profile {
            CardProfile::Visa => b"VISA CREDIT",
            CardProfile::Mastercard => b"MASTERCARD",
            CardProfile::Verve => b"VERVE",
        }
    }

    fn pdol(&self) -> Vec<u8> {
        match self.profile {
            CardProfile::Visa => vec![
                0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05,
                0x5F, 0x2A, 0x02, 0x9A, 0x03, 0x9C, 0x01, 0x9F, 0x37, 0x04,
            ],
            CardProfile::Mastercard => Vec::new(),
            CardProfile::Verve => vec![
                0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9F, 0x1A, 0x02, 0x9F, 0x37, 0x04, 0x9A, 0x03,
                0x9C, 0x01,
            ],
        }
    }

    fn pan_bcd(&self) -> Vec<u8> {
        let mut nibbles: Vec<u8> = self.pan.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        if nibbles.len() % 2 == 1 {
            nibbles.push(0x0F);
        }
        pack(&nibbles)
    }

    fn track2(&self) -> Vec<u8> {
        let mut nibbles: Vec<u8> = self.pan.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        nibbles.push(0x0D);
        let (yy, mm) = self.expiry;
        nibbles.extend([yy / 10, yy % 10, mm / 10, mm % 10]);
        nibbles.extend([2, 0, 1]); // service code
        nibbles.extend([0; 10]); // discretionary data
        if nibbles.len() % 2 == 1 {
            nibbles.push(0x0F);
        }
        pack(&nibbles)
    }

    fn expiry_5f24(&self) -> Vec<u8> {
        let (yy, mm) = self.expiry;
        vec![bcd(yy), bcd(mm), 0x31]
    }

    fn prim(tag: Tag, bytes: impl Into<Vec<u8>>) -> Tlv {
        Tlv::primitive(tag, bytes).expect("primitive tag constant")
    }

    fn cons(tag: Tag, children: Vec<Tlv>) -> Tlv {
        Tlv::constructed(tag, children).expect("constructed tag constant")
    }

    fn tag(packed: u32) -> Tag {
        Tag::new(packed).expect("valid tag constant")
    }

    fn ppse_fci(&self) -> Vec<u8> {
        let entry = |aid: Vec<u8>, label: &[u8], priority: u8| {
            Self::cons(
                tags::DIRECTORY_ENTRY,
                vec![
                    Self::prim(tags::AID, aid),
                    Self::prim(tags::APPLICATION_LABEL, label.to_vec()),
                    Self::prim(tags::PRIORITY, vec![priority]),
                ],
            )
        };
        let mut entries = Vec::new();
        if self.profile == CardProfile::Mastercard {
            // Maestro first in card order but with a lower priority (2).
            entries.push(entry(
                vec![0xA0, 0x00, 0x00, 0x00, 0x04, 0x30, 0x60],
                b"MAESTRO",
                0x02,
            ));
        }
        entries.push(entry(self.aid(), self.label(), 0x01));
        Self::cons(
            tags::FCI,
            vec![
                Self::prim(tags::DF_NAME, b"2PAY.SYS.DDF01".to_vec()),
                Self::cons(
                    tags::FCI_PROPRIETARY,
                    vec![Self::cons(tags::FCI_ISSUER_DISCRETIONARY, entries)],
                ),
            ],
        )
        .encode()
    }

    fn app_fci(&self) -> Vec<u8> {
        let mut prop = vec![
            Self::prim(tags::APPLICATION_LABEL, self.label().to_vec()),
            Self::prim(tags::PRIORITY, vec![0x01]),
        ];
        let pdol = self.pdol();
        if !pdol.is_empty() {
            prop.push(Self::prim(tags::PDOL, pdol));
        }
        Self::cons(
            tags::FCI,
            vec![
                Self::prim(tags::DF_NAME, self.aid()),
                Self::cons(tags::FCI_PROPRIETARY, prop),
            ],
        )
        .encode()
    }

    fn gpo_response(&self) -> Vec<u8> {
        let cryptogram = || Self::prim(Self::tag(0x9F26), vec![0x11; 8]);
        let atc = || Self::prim(Self::tag(0x9F36), vec![0x00, 0x2A]);
        match self.profile {
            CardProfile::Visa => Self::cons(
                tags::RESPONSE_FORMAT_2,
                vec![
                    Self::prim(tags::AIP, vec![0x20, 0x00]),
                    Self::prim(tags::AFL, vec![0x10, 0x01, 0x01, 0x00]),
                    Self::prim(tags::TRACK2, self.track2()),
                    Self::prim(tags::CARDHOLDER_NAME, self.holder.as_bytes().to_vec()),
                    cryptogram(),
                    atc(),
                ],
            )
            .encode(),
            CardProfile::Mastercard => {
                let mut v = vec![0x19, 0x80];
                v.extend([0x08, 0x01, 0x01, 0x00, 0x10, 0x01, 0x02, 0x00]);
                Self::prim(tags::RESPONSE_FORMAT_1, v).encode()
            }
            CardProfile::Verve => Self::cons(
                tags::RESPONSE_FORMAT_2,
                vec![
                    Self::prim(tags::AIP, vec![0x39, 0x00]),
                    Self::prim(tags::AFL, vec![0x08, 0x01, 0x01, 0x00]),
                    cryptogram(),
                    atc(),
                ],
            )
            .encode(),
        }
    }

    fn record(&self, sfi: u8, record: u8) -> Option<Vec<u8>> {
        let name = || Self::prim(tags::CARDHOLDER_NAME, self.holder.as_bytes().to_vec());
        let children = match (self.profile, sfi, record) {
            (CardProfile::Visa, 2, 1) => vec![
                Self::prim(tags::EXPIRY, self.expiry_5f24()),
                name(),
                Self::prim(Self::tag(0x5F28), vec![0x05, 0x66]),
            ],
            (CardProfile::Mastercard, 1, 1) => vec![
                Self::prim(tags::TRACK2, self.track2()),
                name(),
                Self::prim(Self::tag(0x9F6B), self.track2()),
            ],
            (CardProfile::Mastercard, 2, 1) => vec![
                Self::prim(tags::PAN, self.pan_bcd()),
                Self::prim(tags::EXPIRY, self.expiry_5f24()),
                Self::prim(Self::tag(0x5F34), vec![0x01]),
            ],
            (CardProfile::Mastercard, 2, 2) => vec![Self::prim(
                Self::tag(0x8C),
                vec![0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04],
            )],
            (CardProfile::Verve, 1, 1) => vec![
                Self::prim(tags::PAN, self.pan_bcd()),
                Self::prim(tags::EXPIRY, self.expiry_5f24()),
                Self::prim(tags::TRACK2, self.track2()),
                name(),
            ],
            _ => return None,
        };
        let mut bytes = Self::cons(tags::RECORD_TEMPLATE, children).encode();
        if self.malformed_record {
            // Claim one byte more than the template holds.
            if let Some(len) = bytes.get_mut(1).filter(|l| **l < 0x7F) {
                *len += 1;
            }
        }
        Some(bytes)
    }

    /// Answers one command APDU (data followed by SW1 SW2). `pdol_seen` receives the
    /// PDOL data of a GET PROCESSING OPTIONS.
    fn respond(&self, apdu: &[u8], pdol_seen: &mut Option<Vec<u8>>) -> Vec<u8> {
        let ok = |mut data: Vec<u8>| {
            data.extend([0x90, 0x00]);
            data
        };
        let [cla, ins, p1, p2, rest @ ..] = apdu else {
            return vec![0x67, 0x00];
        };
        match (cla, ins, p1, p2) {
            (0x00, 0xA4, 0x04, 0x00) => {
                let Some((&lc, body)) = rest.split_first() else {
                    return vec![0x67, 0x00];
                };
                let Some(name) = body.get(..usize::from(lc)) else {
                    return vec![0x67, 0x00];
                };
                if name == b"2PAY.SYS.DDF01" {
                    ok(self.ppse_fci())
                } else if name == self.aid().as_slice() {
                    ok(self.app_fci())
                } else {
                    vec![0x6A, 0x82]
                }
            }
            (0x80, 0xA8, 0x00, 0x00) => {
                let expected = crate::emv::tlv::parse_dol(&self.pdol())
                    .map(|d| d.iter().map(|(_, l)| l).sum::<usize>())
                    .unwrap_or(0);
                let Some((&lc, body)) = rest.split_first() else {
                    return vec![0x67, 0x00];
                };
                match body.get(..usize::from(lc)) {
                    Some([0x83, len, data @ ..])
                        if usize::from(*len) == expected && data.len() == expected =>
                    {
                        *pdol_seen = Some(data.to_vec());
                        ok(self.gpo_response())
                    }
                    _ => vec![0x67, 0x00],
                }
            }
            (0x00, 0xB2, record, p2) if p2 & 0x07 == 0x04 => match self.record(p2 >> 3, *record) {
                Some(r) => ok(r),
                None => vec![0x6A, 0x83],
            },
            _ => vec![0x6D, 0x00],
        }
    }

    fn activation(&self) -> Vec<u8> {
        // NbTg, Tg, SENS_RES, SEL_RES, NFCIDLength, NFCID1, ATS
        let mut r = vec![0x01, 0x01, 0x00, 0x04, self.sak, 0x04];
        r.extend(self.uid);
        r.extend([0x05, 0x78, 0x80, 0x70, 0x02]);
        r
    }
}

fn pack(nibbles: &[u8]) -> Vec<u8> {
    nibbles
        .chunks(2)
        .map(|c| (c[0] << 4) | c.get(1).copied().unwrap_or(0x0F))
        .collect()
}

fn bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

#[derive(Debug, Default)]
struct Counters {
    bytes_to_host: AtomicU64,
    bytes_from_host: AtomicU64,
    apdus: AtomicU64,
}

struct Shared {
    field: watch::Sender<Option<EmulatedCard>>,
    /// True while an InListPassiveTarget waits for a card.
    polling: watch::Sender<bool>,
    faults: Mutex<Faults>,
    counters: Counters,
    last_pdol_data: Mutex<Option<Vec<u8>>>,
}

/// A running emulated PN532. Dropping it stops the emulator task.
pub struct Pn532Emulator {
    path: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
    // Held open so the pty stays up while the reader reopens the slave.
    _slave: SerialStream,
}

impl Drop for Pn532Emulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Line statistics of the emulator, for the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineStats {
    /// Bytes the PN532 sent to the host.
    pub bytes_to_host: u64,
    /// Bytes the PN532 received from the host.
    pub bytes_from_host: u64,
    /// APDUs the card answered.
    pub apdus: u64,
}

impl LineStats {
    /// Time these bytes take on a UART at `baud` with 8N1 framing (10 bits a byte).
    pub fn wire_time(&self, baud: u32) -> std::time::Duration {
        let bits = (self.bytes_to_host + self.bytes_from_host) * 10;
        std::time::Duration::from_nanos(bits.saturating_mul(1_000_000_000) / u64::from(baud.max(1)))
    }
}

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The pseudo-terminal could not be created.
    #[error("cannot create pseudo-terminal: {0}")]
    Pty(#[from] tokio_serial::Error),
    /// The pty has no slave path.
    #[error("pseudo-terminal has no slave path")]
    NoPath,
}

impl Pn532Emulator {
    /// Creates a pty pair and starts the emulator on its master side, on the current
    /// tokio runtime. The field starts empty.
    pub fn start() -> Result<Pn532Emulator, EmulatorError> {
        let (master, slave) = SerialStream::pair()?;
        let path = slave.name().ok_or(EmulatorError::NoPath)?;
        let (field, field_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            field,
            polling: watch::channel(false).0,
            faults: Mutex::new(Faults::default()),
            counters: Counters::default(),
            last_pdol_data: Mutex::new(None),
        });
        let stop = CancellationToken::new();
        let task = Task {
            io: Framed::new(master, Pn532Codec::default()),
            field: field_rx,
            shared: Arc::clone(&shared),
            last_response: None,
            reported: (0, 0),
        };
        tokio::spawn(task.run(stop.clone()));
        Ok(Pn532Emulator {
            path,
            shared,
            stop,
            _slave: slave,
        })
    }

    /// The serial device path the reader opens.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Puts a card in the field (replacing any card there).
    pub fn tap(&self, card: EmulatedCard) {
        self.shared.field.send_replace(Some(card));
    }

    /// Takes the card out of the field.
    pub fn remove_card(&self) {
        self.shared.field.send_replace(None);
    }

    /// True while a card is in the field.
    pub fn card_in_field(&self) -> bool {
        self.shared.field.borrow().is_some()
    }

    /// Resolves once the PN532 is waiting for a card (an `InListPassiveTarget` is
    /// running), so a test can tap exactly when the reader is ready.
    pub async fn until_polling(&self) {
        let mut rx = self.shared.polling.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close here.
        let _ = rx.wait_for(|p| *p).await;
    }

    /// Arms a fault.
    pub fn inject(&self, fault: Fault) {
        let mut f = lock(&self.shared.faults);
        match fault {
            Fault::NackCommand => f.nack_commands += 1,
            Fault::IgnoreCommand => f.ignore_commands += 1,
            Fault::CorruptResponse => f.corrupt_responses += 1,
            Fault::GarbageBeforeResponse(bytes) => f.garbage.push_back(bytes),
            Fault::GoSilent => f.silent = true,
            Fault::RemoveCardAfterApdus(n) => f.remove_after_apdus = Some(n),
        }
    }

    /// Bytes and APDUs so far.
    pub fn stats(&self) -> LineStats {
        let c = &self.shared.counters;
        LineStats {
            bytes_to_host: c.bytes_to_host.load(Ordering::Relaxed),
            bytes_from_host: c.bytes_from_host.load(Ordering::Relaxed),
            apdus: c.apdus.load(Ordering::Relaxed),
        }
    }

    /// The PDOL data of the last GET PROCESSING OPTIONS the card accepted.
    pub fn last_pdol_data(&self) -> Option<Vec<u8>> {
        lock(&self.shared.last_pdol_data).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data inconsistent
    // (plain counters and queues), so a poisoned lock is used as is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Task {
    io: Framed<SerialStream, Pn532Codec>,
    field: watch::Receiver<Option<EmulatedCard>>,
    shared: Arc<Shared>,
    last_response: Option<Vec<u8>>,
    reported: (u64, u64),
}

enum Next {
    Frame(Frame),
    Stop,
}

impl Task {
    async fn run(mut self, stop: CancellationToken) {
        loop {
            let frame = match self.next(&stop).await {
                Next::Frame(f) => f,
                Next::Stop => return,
            };
            let silent = lock(&self.shared.faults).silent;
            if silent {
                continue;
            }
            let result = match frame {
                Frame::Info { tfi, data } if tfi == TFI_HOST => self.command(&data, &stop).await,
                Frame::Nack => match self.last_response.clone() {
                    Some(bytes) => self.write(Frame::Raw(bytes)).await,
                    None => Ok(()),
                },
                _ => Ok(()),
            };
            if result.is_err() {
                return;
            }
        }
    }

    async fn next(&mut self, stop: &CancellationToken) -> Next {
        let r = tokio::select! {
            f = self.io.next() => f,
            () = stop.cancelled() => return Next::Stop,
        };
        self.account();
        match r {
            Some(Ok(frame)) => Next::Frame(frame),
            _ => Next::Stop,
        }
    }

    fn account(&mut self) {
        let (i, o) = (self.io.codec().bytes_in(), self.io.codec().bytes_out());
        let c = &self.shared.counters;
        c.bytes_from_host
            .fetch_add(i - self.reported.0, Ordering::Relaxed);
        c.bytes_to_host
            .fetch_add(o - self.reported.1, Ordering::Relaxed);
        self.reported = (i, o);
    }

    async fn write(&mut self, frame: Frame) -> std::io::Result<()> {
        let r = self.io.send(frame).await;
        self.account();
        r
    }

    async fn command(&mut self, data: &[u8], stop: &CancellationToken) -> std::io::Result<()> {
        let (ignore, nack) = {
            let mut f = lock(&self.shared.faults);
            if f.ignore_commands > 0 {
                f.ignore_commands -= 1;
                (true, false)
            } else if f.nack_commands > 0 {
                f.nack_commands -= 1;
                (false, true)
            } else {
                (false, false)
            }
        };
        if ignore {
            return Ok(());
        }
        if nack {
            return self.write(Frame::Nack).await;
        }
        self.write(Frame::Ack).await?;
        let Some((&code, params)) = data.split_first() else {
            return self.write(Frame::ApplicationError).await;
        };
        let response = match code {
            cmd::GET_FIRMWARE_VERSION => Some(vec![0x32, 0x01, 0x06, 0x07]),
            cmd::SAM_CONFIGURATION | cmd::RF_CONFIGURATION => Some(Vec::new()),
            cmd::IN_RELEASE => Some(vec![0x00]),
            cmd::DIAGNOSE if params == [0x06] => Some(vec![if self.field.borrow().is_some() {
                0x00
            } else {
                0x01
            }]),
            cmd::IN_LIST_PASSIVE_TARGET if params == [0x01, 0x00] => {
                self.wait_for_card(stop).await.map(|card| card.activation())
            }
            cmd::IN_DATA_EXCHANGE => Some(self.exchange(params)),
            _ => {
                return self.write(Frame::ApplicationError).await;
            }
        };
        let Some(response) = response else {
            return Ok(());
        };
        let mut body = vec![code.wrapping_add(1)];
        body.extend(response);
        let mut bytes = Vec::new();
        encode_info(TFI_PN532, &body, &mut bytes);
        self.last_response = Some(bytes.clone());
        let (garbage, corrupt) = {
            let mut f = lock(&self.shared.faults);
            let corrupt = f.corrupt_responses > 0;
            if corrupt {
                f.corrupt_responses -= 1;
            }
            (f.garbage.pop_front(), corrupt)
        };
        if let Some(g) = garbage {
            self.write(Frame::Raw(g)).await?;
        }
        if corrupt {
            let dcs = bytes.len() - 2;
            bytes[dcs] ^= 0x5A;
        }
        self.write(Frame::Raw(bytes)).await
    }

    /// Waits for a card in the field; `None` if the host aborted with an ACK.
    async fn wait_for_card(&mut self, stop: &CancellationToken) -> Option<EmulatedCard> {
        self.shared.polling.send_replace(true);
        let card = self.wait_for_card_inner(stop).await;
        self.shared.polling.send_replace(false);
        card
    }

    async fn wait_for_card_inner(&mut self, stop: &CancellationToken) -> Option<EmulatedCard> {
        loop {
            if let Some(card) = self.field.borrow_and_update().clone() {
                return Some(card);
            }
            tokio::select! {
                changed = self.field.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                f = self.io.next() => {
                    self.account();
                    match f {
                        // The host aborts the command with an ACK.
                        Some(Ok(Frame::Ack)) | None | Some(Err(_)) => return None,
                        Some(Ok(_)) => {}
                    }
                }
                () = stop.cancelled() => return None,
            }
        }
    }

    fn exchange(&mut self, params: &[u8]) -> Vec<u8> {
        let Some((_tg, apdu)) = params.split_first() else {
            return vec![0x27];
        };
        let card = self.field.borrow().clone();
        let Some(card) = card else {
            return vec![0x01];
        };
        let mut pdol = None;
        let mut r = vec![0x00];
        r.extend(card.respond(apdu, &mut pdol));
        if let Some(p) = pdol {
            *lock(&self.shared.last_pdol_data) = Some(p);
        }
        self.shared.counters.apdus.fetch_add(1, Ordering::Relaxed);
        let leaves = {
            let mut f = lock(&self.shared.faults);
            match f.remove_after_apdus {
                Some(n) if n <= 1 => {
                    f.remove_after_apdus = None;
                    true
                }
                Some(n) => {
                    f.remove_after_apdus = Some(n - 1);
                    false
                }
                None => false,
            }
        };
        if leaves {
            // The card leaves with this answer still in flight: the host gets it,
            // then finds the card gone on the next APDU.
            self.shared.field.send_replace(None);
        }
        r
    }
}
