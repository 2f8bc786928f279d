//! EMV contactless card read over ISO 7816-4 APDUs.
//!
//! This reads the card data this system needs to tokenize a card and approve a tap:
//! SELECT PPSE, choose the application by priority, SELECT AID, GET PROCESSING
//! OPTIONS with the PDOL filled from [`TerminalData`], READ RECORD for each AFL entry,
//! and extraction of PAN, expiry and label. It is NOT certified EMV level 2
//! processing: no cryptogram verification, cardholder verification or terminal risk
//! management. A certified kernel or reader plugs in behind the same reader trait.
//!
//! Card data handling: every response buffer is wiped on drop, the PAN lives only in
//! a zeroizing [`SecretPan`], track-2 equivalent data is parsed and wiped, and the
//! cardholder name (tag 5F20) is never copied out of the parsed records.

pub mod tlv;

use std::future::Future;

use proto::{Currency, Money};
use tlv::{Tag, Tlv, TlvError, tags};
use zeroize::{Zeroize, Zeroizing};

use crate::card::{Application, CardDataError, CardRead, Expiry, SecretPan, brand_of_aid};

/// Terminal data used to fill the card's PDOL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalData {
    /// Amount authorised (9F02).
    pub amount: Money,
    /// Transaction currency (5F2A); NGN is 566.
    pub currency: Currency,
    /// Terminal country code (9F1A), ISO 3166 numeric; Nigeria is 566.
    pub country: u16,
    /// Terminal transaction qualifiers (9F66).
    pub ttq: [u8; 4],
    /// Unpredictable number (9F37), fresh for every read.
    pub unpredictable_number: [u8; 4],
    /// Transaction date (9A) as (YY, MM, DD).
    pub date: (u8, u8, u8),
    /// Transaction type (9C): 0x00 purchase, 0x20 refund.
    pub transaction_type: u8,
}

impl TerminalData {
    /// Terminal transaction qualifiers for an online-capable contactless-only EMV
    /// mode reader without CVM support: EMV mode supported, online capable.
    pub const DEFAULT_TTQ: [u8; 4] = [0x20, 0x00, 0x00, 0x00];

    /// A purchase in NGN in Nigeria with a random unpredictable number.
    pub fn purchase(amount: Money, date: (u8, u8, u8)) -> TerminalData {
        TerminalData {
            amount,
            currency: Currency::Ngn,
            country: 566,
            ttq: Self::DEFAULT_TTQ,
            unpredictable_number: rand::random(),
            date,
            transaction_type: 0x00,
        }
    }

    /// The value this terminal supplies for a PDOL entry, and whether it is numeric
    /// (format n, padded and truncated on the left) rather than binary.
    fn value_for(&self, tag: Tag) -> Option<(Vec<u8>, bool)> {
        let v = match tag {
            tags::TTQ => (self.ttq.to_vec(), false),
            tags::AMOUNT_AUTHORISED => (bcd(self.amount.minor(), 6), true),
            tags::AMOUNT_OTHER => (vec![0; 6], true),
            tags::TERMINAL_COUNTRY => (bcd(u64::from(self.country), 2), true),
            tags::CURRENCY => (bcd(u64::from(self.currency.numeric()), 2), true),
            tags::TVR => (vec![0; 5], false),
            tags::TRANSACTION_DATE => {
                let (y, m, d) = self.date;
                (vec![bcd_byte(y), bcd_byte(m), bcd_byte(d)], true)
            }
            tags::TRANSACTION_TYPE => (vec![self.transaction_type], true),
            tags::UNPREDICTABLE_NUMBER => (self.unpredictable_number.to_vec(), false),
            // Unattended, online only, operated by merchant... 0x22: attended, online
            // with offline capability, operated by merchant.
            tags::TERMINAL_TYPE => (vec![0x22], true),
            // No CVM, no card data input other than contactless.
            tags::TERMINAL_CAPABILITIES => (vec![0x00, 0x08, 0x08], false),
            _ => return None,
        };
        Some(v)
    }

    /// Fills a PDOL: each entry gets the terminal value fitted to the requested
    /// length, or zeros for data this terminal does not have. The lengths are
    /// checked against [`tlv::MAX_DOL_ENTRY`] and [`tlv::MAX_DOL_TOTAL`] before
    /// anything is allocated (whoever built `dol`), and the buffer is sized
    /// once, so it never reallocates and leaves no unwiped copy behind.
    pub fn fill_dol(&self, dol: &[(Tag, usize)]) -> Result<Zeroizing<Vec<u8>>, TlvError> {
        let mut total = 0usize;
        for (i, (_, len)) in dol.iter().enumerate() {
            if *len > tlv::MAX_DOL_ENTRY {
                return Err(TlvError::DolEntryTooLong {
                    offset: i,
                    len: *len,
                });
            }
            total += len;
            if total > tlv::MAX_DOL_TOTAL {
                return Err(TlvError::DolTooLong);
            }
        }
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        for (tag, len) in dol {
            let len = *len;
            match self.value_for(*tag) {
                Some((v, numeric)) => {
                    let v = Zeroizing::new(v);
                    if v.len() >= len {
                        if numeric {
                            out.extend_from_slice(&v[v.len() - len..]);
                        } else {
                            out.extend_from_slice(&v[..len]);
                        }
                    } else if numeric {
                        out.extend(std::iter::repeat_n(0, len - v.len()));
                        out.extend_from_slice(&v);
                    } else {
                        out.extend_from_slice(&v);
                        out.extend(std::iter::repeat_n(0, len - v.len()));
                    }
                }
                None => out.extend(std::iter::repeat_n(0, len)),
            }
        }
        Ok(out)
    }
}

/// The fuzzing entry point of the DOL parser and filler: any bytes as a
/// card's PDOL. Panics only if they break their contract: a parsed DOL stays
/// within the bounds, and filling it gives exactly the bytes it asks for.
pub fn fuzz_dol(data: &[u8]) {
    let Ok(dol) = tlv::parse_dol(data) else {
        return;
    };
    let asked: usize = dol.iter().map(|(_, len)| len).sum();
    assert!(asked <= tlv::MAX_DOL_TOTAL, "DOL over its total bound");
    assert!(dol.iter().all(|(_, len)| *len <= tlv::MAX_DOL_ENTRY));
    let terminal = TerminalData {
        amount: Money::from_minor(123_456).unwrap_or(Money::ZERO),
        currency: Currency::Ngn,
        country: 566,
        ttq: TerminalData::DEFAULT_TTQ,
        unpredictable_number: [1, 2, 3, 4],
        date: (26, 12, 3),
        transaction_type: 0,
    };
    match terminal.fill_dol(&dol) {
        Ok(filled) => assert_eq!(filled.len(), asked, "filled DOL of the wrong length"),
        Err(e) => panic!("a parsed DOL was refused by the filler: {e}"),
    }
}

fn bcd_byte(v: u8) -> u8 {
    ((v / 10 % 10) << 4) | (v % 10)
}

/// `value` as packed BCD in `len` bytes (leftmost digits dropped if it does not fit).
fn bcd(mut value: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for byte in out.iter_mut().rev() {
        let lo = (value % 10) as u8;
        value /= 10;
        let hi = (value % 10) as u8;
        value /= 10;
        *byte = (hi << 4) | lo;
    }
    out
}

/// A failure to exchange one APDU with the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The card left the field (or stopped answering) during the exchange.
    #[error("card removed or not responding")]
    CardRemoved,
    /// The reader failed; the text says how (never contains card data).
    #[error("reader failure: {0}")]
    Reader(String),
}

/// Sends command APDUs to the card in the field and returns its response APDU
/// (data followed by SW1 SW2).
pub trait ApduTransport {
    /// Exchanges one APDU.
    fn transmit(
        &mut self,
        apdu: &[u8],
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, TransportError>> + Send;
}

/// Why a card could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmvError {
    /// The APDU exchange failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered a command with an error status word.
    #[error("card answered {command} with status {sw:04X}")]
    Status {
        /// Which command.
        command: &'static str,
        /// SW1 SW2.
        sw: u16,
    },
    /// A response shorter than a status word.
    #[error("card response to {command} has no status word")]
    ShortResponse {
        /// Which command.
        command: &'static str,
    },
    /// A response whose TLV could not be parsed.
    #[error("malformed TLV in response to {command}: {source}")]
    Tlv {
        /// Which command.
        command: &'static str,
        /// The parse error.
        source: TlvError,
    },
    /// A mandatory data object is missing or has the wrong shape.
    #[error("{what} missing or malformed in response to {command}")]
    Missing {
        /// Which command.
        command: &'static str,
        /// What was expected.
        what: &'static str,
    },
    /// The PPSE lists no application.
    #[error("no contactless application on the card")]
    NoApplication,
    /// The application's scheme is none of those this terminal accepts.
    #[error("unsupported card scheme")]
    UnsupportedBrand,
    /// The AFL is malformed (length not a multiple of 4, bad SFI or record range).
    #[error("malformed application file locator")]
    BadAfl,
    /// No usable PAN (wrong length, non-digits, failed Luhn, or 5A and 57 disagree).
    #[error("invalid PAN ({len} digits)")]
    InvalidPan {
        /// How many characters the rejected PAN had.
        len: usize,
    },
    /// The PAN or expiry failed the card data checks.
    #[error(transparent)]
    CardData(#[from] CardDataError),
    /// No usable expiry date.
    #[error("invalid or missing expiry date")]
    InvalidExpiry,
    /// Too many 61XX / 6CXX round trips.
    #[error("card asked for too many GET RESPONSE round trips")]
    TooManyRoundTrips,
}

/// How many AFL records a read may ask for at most (EMV cards hold a handful).
const MAX_RECORDS: usize = 32;

const PPSE: &[u8] = b"2PAY.SYS.DDF01";

/// Reads the card in the field: the whole EMV contactless read flow. The brand comes
/// from the selected AID (only applications of accepted schemes are selected).
pub async fn read_card<T: ApduTransport>(
    transport: &mut T,
    terminal: &TerminalData,
) -> Result<CardRead, EmvError> {
    // 1. SELECT PPSE.
    let ppse = exchange(transport, "SELECT PPSE", &select_apdu(PPSE)).await?;
    let ppse = parse_response("SELECT PPSE", &ppse)?;
    let aid = choose_application(&ppse)?;

    // 2. SELECT AID.
    let fci = exchange(transport, "SELECT AID", &select_apdu(&aid)).await?;
    let fci = parse_response("SELECT AID", &fci)?;
    let label = tlv::find_in(&fci, tags::APPLICATION_LABEL)
        .and_then(Tlv::bytes)
        .and_then(printable_label);
    let pdol = match tlv::find_in(&fci, tags::PDOL).and_then(Tlv::bytes) {
        Some(bytes) => tlv::parse_dol(bytes).map_err(|source| EmvError::Tlv {
            command: "SELECT AID",
            source,
        })?,
        None => Vec::new(),
    };

    // 3. GET PROCESSING OPTIONS.
    let pdol_data = terminal.fill_dol(&pdol).map_err(|source| EmvError::Tlv {
        command: "SELECT AID",
        source,
    })?;
    let command_template = Zeroizing::new(
        Tlv::primitive(tags::COMMAND_TEMPLATE, pdol_data.to_vec())
            .map_err(|source| EmvError::Tlv {
                command: "GET PROCESSING OPTIONS",
                source,
            })?
            .encode(),
    );
    let gpo_apdu = Zeroizing::new(case4_apdu(0x80, 0xA8, 0x00, 0x00, &command_template).ok_or(
        EmvError::Missing {
            command: "GET PROCESSING OPTIONS",
            what: "PDOL short enough for one APDU",
        },
    )?);
    let gpo = exchange(transport, "GET PROCESSING OPTIONS", &gpo_apdu).await?;
    let gpo = parse_response("GET PROCESSING OPTIONS", &gpo)?;
    let afl = gpo_afl(&gpo)?;

    // 4. READ RECORD for every AFL entry.
    let mut records: Vec<Vec<Tlv>> = vec![gpo];
    for (sfi, record) in afl_records(&afl)? {
        let apdu = [0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00];
        let resp = exchange(transport, "READ RECORD", &apdu).await?;
        let parsed = parse_response("READ RECORD", &resp)?;
        if parsed.first().map(Tlv::tag) != Some(tags::RECORD_TEMPLATE) {
            return Err(EmvError::Missing {
                command: "READ RECORD",
                what: "record template 70",
            });
        }
        records.push(parsed);
    }

    // 5. Extract PAN, expiry; decide brand.
    let (pan, expiry) = extract_pan_and_expiry(&records)?;
    let brand = brand_of_aid(&aid).ok_or(EmvError::UnsupportedBrand)?;
    Ok(CardRead::new(
        pan,
        expiry,
        brand,
        Application {
            label,
            aid: Some(aid),
        },
    ))
}

/// SELECT by name, first or only occurrence, with Le = 00.
fn select_apdu(name: &[u8]) -> Vec<u8> {
    case4_apdu(0x00, 0xA4, 0x04, 0x00, name).unwrap_or_default()
}

/// A short case-4 APDU (`CLA INS P1 P2 Lc data 00`), or `None` if data is too long.
fn case4_apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Option<Vec<u8>> {
    let lc = u8::try_from(data.len()).ok()?;
    let mut apdu = Vec::with_capacity(data.len() + 6);
    apdu.extend_from_slice(&[cla, ins, p1, p2, lc]);
    apdu.extend_from_slice(data);
    apdu.push(0x00);
    Some(apdu)
}

/// Sends an APDU and returns the response data once the status is 9000, following
/// 61XX (GET RESPONSE) and 6CXX (resend with the right Le) a bounded number of times.
async fn exchange<T: ApduTransport>(
    transport: &mut T,
    command: &'static str,
    apdu: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EmvError> {
    // Sized for the usual case (four short responses); a longer answer is
    // moved to a larger buffer and the old one wiped (`append_wiped`).
    let mut data = Zeroizing::new(Vec::with_capacity(4 * 256));
    let mut next: Vec<u8> = apdu.to_vec();
    for _ in 0..4 {
        let mut resp = transport.transmit(&next).await?;
        if resp.len() < 2 {
            return Err(EmvError::ShortResponse { command });
        }
        let sw_at = resp.len() - 2;
        let (sw1, sw2) = (resp[sw_at], resp[sw_at + 1]);
        resp.truncate(sw_at);
        append_wiped(&mut data, &resp);
        match sw1 {
            0x90 if sw2 == 0x00 => return Ok(data),
            0x61 => next = vec![0x00, 0xC0, 0x00, 0x00, sw2],
            0x6C => {
                if let Some(le) = next.last_mut() {
                    *le = sw2;
                }
            }
            _ => {
                return Err(EmvError::Status {
                    command,
                    sw: u16::from_be_bytes([sw1, sw2]),
                });
            }
        }
    }
    Err(EmvError::TooManyRoundTrips)
}

/// Appends `more` to a card-data buffer without letting `Vec` reallocate it:
/// when it does not fit, the data moves to a new buffer of twice the size and
/// the old one is wiped as it drops, so no unwiped copy is ever freed.
fn append_wiped(buf: &mut Zeroizing<Vec<u8>>, more: &[u8]) {
    let needed = buf.len() + more.len();
    if needed > buf.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(2 * buf.capacity())));
        bigger.extend_from_slice(buf);
        std::mem::swap(buf, &mut bigger);
    }
    buf.extend_from_slice(more);
}

fn parse_response(command: &'static str, data: &[u8]) -> Result<Vec<Tlv>, EmvError> {
    tlv::parse(data).map_err(|source| EmvError::Tlv { command, source })
}

/// Picks the application from the PPSE directory: the lowest non-zero priority
/// (tag 87, low nibble) wins; entries without priority come after those with one;
/// ties keep card order. Entries of schemes we do not accept are skipped.
fn choose_application(ppse: &[Tlv]) -> Result<Vec<u8>, EmvError> {
    let fci = tlv::find_in(ppse, tags::FCI).ok_or(EmvError::Missing {
        command: "SELECT PPSE",
        what: "FCI template 6F",
    })?;
    let directory = fci
        .find(tags::FCI_ISSUER_DISCRETIONARY)
        .ok_or(EmvError::NoApplication)?;
    let mut best: Option<(u8, Vec<u8>)> = None;
    for entry in directory
        .children()
        .iter()
        .filter(|c| c.tag() == tags::DIRECTORY_ENTRY)
    {
        let Some(aid) = entry.find(tags::AID).and_then(Tlv::bytes) else {
            continue;
        };
        if !(5..=16).contains(&aid.len()) || brand_of_aid(aid).is_none() {
            continue;
        }
        let priority = entry
            .find(tags::PRIORITY)
            .and_then(Tlv::bytes)
            .and_then(|b| b.first())
            .map(|p| p & 0x0F)
            .filter(|p| *p != 0)
            .unwrap_or(16);
        if best.as_ref().is_none_or(|(bp, _)| priority < *bp) {
            best = Some((priority, aid.to_vec()));
        }
    }
    best.map(|(_, aid)| aid).ok_or(EmvError::NoApplication)
}

fn printable_label(bytes: &[u8]) -> Option<String> {
    let s: String = bytes
        .iter()
        .filter(|b| (0x20..0x7F).contains(*b))
        .map(|b| char::from(*b))
        .collect();
    let s = s.trim().to_owned();
    (!s.is_empty() && s.len() <= 16).then_some(s)
}

/// The AFL from a GET PROCESSING OPTIONS response in format 1 (80: AIP then AFL) or
/// format 2 (77 with 82 and 94). A missing AFL is an empty one (format 2 responses
/// may carry the card data directly).
fn gpo_afl(gpo: &[Tlv]) -> Result<Vec<u8>, EmvError> {
    const CMD: &str = "GET PROCESSING OPTIONS";
    match gpo.first() {
        Some(t) if t.tag() == tags::RESPONSE_FORMAT_1 => {
            let bytes = t.bytes().ok_or(EmvError::Missing {
                command: CMD,
                what: "AIP and AFL",
            })?;
            if bytes.len() < 2 {
                return Err(EmvError::Missing {
                    command: CMD,
                    what: "AIP",
                });
            }
            Ok(bytes[2..].to_vec())
        }
        Some(t) if t.tag() == tags::RESPONSE_FORMAT_2 => {
            if t.find(tags::AIP).and_then(Tlv::bytes).map(<[u8]>::len) != Some(2) {
                return Err(EmvError::Missing {
                    command: CMD,
                    what: "AIP",
                });
            }
            Ok(t.find(tags::AFL)
                .and_then(Tlv::bytes)
                .map(<[u8]>::to_vec)
                .unwrap_or_default())
        }
        _ => Err(EmvError::Missing {
            command: CMD,
            what: "response template 80 or 77",
        }),
    }
}

/// Expands the AFL into (SFI, record number) pairs.
fn afl_records(afl: &[u8]) -> Result<Vec<(u8, u8)>, EmvError> {
    if afl.len() % 4 != 0 {
        return Err(EmvError::BadAfl);
    }
    let mut out = Vec::new();
    for entry in afl.chunks_exact(4) {
        let sfi = entry[0] >> 3;
        let (first, last) = (entry[1], entry[2]);
        if entry[0] & 0x07 != 0 || !(1..=30).contains(&sfi) || first == 0 || last < first {
            return Err(EmvError::BadAfl);
        }
        for record in first..=last {
            if out.len() >= MAX_RECORDS {
                return Err(EmvError::BadAfl);
            }
            out.push((sfi, record));
        }
    }
    Ok(out)
}

/// Finds PAN and expiry in the GPO response and records: 5A and 5F24 preferred,
/// track-2 equivalent (57) otherwise; if both carry a PAN they must agree.
fn extract_pan_and_expiry(records: &[Vec<Tlv>]) -> Result<(SecretPan, Expiry), EmvError> {
    let find = |tag: Tag| records.iter().find_map(|r| tlv::find_in(r, tag));
    let track2 = match find(tags::TRACK2).and_then(Tlv::bytes) {
        Some(bytes) => Some(parse_track2(bytes)?),
        None => None,
    };
    let pan_5a = match find(tags::PAN).and_then(Tlv::bytes) {
        Some(bytes) => {
            let digits = Zeroizing::new(bcd_digits(bytes, true).ok_or(EmvError::InvalidPan {
                len: bytes.len() * 2,
            })?);
            Some(SecretPan::new(&digits)?)
        }
        None => None,
    };
    let expiry_5f24 = match find(tags::EXPIRY).and_then(Tlv::bytes) {
        Some([yy, mm, _dd]) => {
            let yy = from_bcd(*yy).ok_or(EmvError::InvalidExpiry)?;
            let mm = from_bcd(*mm).ok_or(EmvError::InvalidExpiry)?;
            Some(Expiry::from_yymm(yy, mm)?)
        }
        Some(_) => return Err(EmvError::InvalidExpiry),
        None => None,
    };
    let pan = match (pan_5a, &track2) {
        (Some(a), Some((b, _))) if a != *b => {
            return Err(EmvError::InvalidPan {
                len: a.expose().len(),
            });
        }
        (Some(a), _) => a,
        (None, Some((b, _))) => b.clone(),
        (None, None) => return Err(EmvError::InvalidPan { len: 0 }),
    };
    let expiry = expiry_5f24
        .or(track2.map(|(_, e)| e))
        .ok_or(EmvError::InvalidExpiry)?;
    Ok((pan, expiry))
}

/// Track-2 equivalent data: PAN digits, separator 'D', YYMM expiry, service code and
/// discretionary data (dropped), 'F' padding. The nibble copy is wiped.
fn parse_track2(bytes: &[u8]) -> Result<(SecretPan, Expiry), EmvError> {
    let mut nibbles = Zeroizing::new(Vec::with_capacity(bytes.len() * 2));
    for b in bytes {
        nibbles.push(b >> 4);
        nibbles.push(b & 0x0F);
    }
    let sep = nibbles
        .iter()
        .position(|n| *n == 0x0D)
        .ok_or(EmvError::InvalidPan { len: 0 })?;
    let mut digits = Zeroizing::new(String::with_capacity(sep));
    for n in &nibbles[..sep] {
        if *n > 9 {
            return Err(EmvError::InvalidPan { len: sep });
        }
        digits.push(char::from(b'0' + n));
    }
    let pan = SecretPan::new(&digits)?;
    let exp = nibbles
        .get(sep + 1..sep + 5)
        .ok_or(EmvError::InvalidExpiry)?;
    if exp.iter().any(|n| *n > 9) {
        return Err(EmvError::InvalidExpiry);
    }
    let expiry = Expiry::from_yymm(exp[0] * 10 + exp[1], exp[2] * 10 + exp[3])?;
    Ok((pan, expiry))
}

/// Decodes BCD digits; with `f_padding`, trailing 'F' nibbles end the number.
fn bcd_digits(bytes: &[u8], f_padding: bool) -> Option<String> {
    let mut s = String::with_capacity(bytes.len() * 2);
    let mut ended = false;
    for n in bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match n {
            0..=9 if !ended => s.push(char::from(b'0' + n)),
            0x0F if f_padding => ended = true,
            _ => {
                s.zeroize();
                return None;
            }
        }
    }
    Some(s)
}

fn from_bcd(b: u8) -> Option<u8> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    (hi <= 9 && lo <= 9).then_some(hi * 10 + lo)
}

#[cfg(test)]
mod tests;
