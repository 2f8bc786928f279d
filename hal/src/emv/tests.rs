//! Unit tests of the EMV kernel: track 2, DOL parsing, filling and bounds, brands.

use super::*;

#[test]
fn track2_parsing() {
    // 4111111111111111 D 2812 201 ... F
    let t2 = [
        0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0xD2, 0x81, 0x22, 0x01, 0x00, 0x00, 0x0F,
    ];
    let (pan, exp) = parse_track2(&t2).unwrap();
    assert_eq!(pan.expose(), "4111111111111111");
    assert_eq!(exp, Expiry::new(2028, 12).unwrap());
    assert!(parse_track2(&[0x41, 0x11]).is_err(), "no separator");
    assert!(parse_track2(&[0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0xD2]).is_err());
    let bad_month = [
        0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0xD2, 0x81, 0x32, 0x01,
    ];
    assert!(matches!(
        parse_track2(&bad_month),
        Err(EmvError::CardData(CardDataError::InvalidExpiry { .. }))
    ));
}

#[test]
fn pdol_filling() {
    let t = TerminalData {
        amount: Money::from_minor(150_050).unwrap(),
        currency: Currency::Ngn,
        country: 566,
        ttq: [0x36, 0x00, 0x40, 0x00],
        unpredictable_number: [1, 2, 3, 4],
        date: (26, 11, 21),
        transaction_type: 0,
    };
    let dol = tlv::parse_dol(&[
        0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9F, 0x1A, 0x02, 0x9A, 0x03, 0x9C,
        0x01, 0x9F, 0x37, 0x04, 0xDF, 0x01, 0x02, 0x9F, 0x02, 0x04,
    ])
    .unwrap();
    assert_eq!(
        *t.fill_dol(&dol).unwrap(),
        vec![
            0x36, 0x00, 0x40, 0x00, // TTQ
            0x00, 0x00, 0x00, 0x15, 0x00, 0x50, // amount 1500.50
            0x05, 0x66, // NGN
            0x05, 0x66, // Nigeria
            0x26, 0x11, 0x21, // date
            0x00, // purchase
            1, 2, 3, 4, // UN
            0x00, 0x00, // unknown tag: zeros
            0x00, 0x15, 0x00, 0x50, // numeric truncated on the left
        ]
    );
}

/// Answers APDUs from a script of (expected APDU, response) pairs, in order.
struct Script {
    steps: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl ApduTransport for Script {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        let (expected, response) = self.steps.get(self.next).expect("script too short");
        assert_eq!(apdu, expected.as_slice(), "APDU #{}", self.next);
        self.next += 1;
        Ok(Zeroizing::new(response.clone()))
    }
}

fn t(tag: u32) -> Tag {
    Tag::new(tag).unwrap()
}

fn prim(tag: u32, v: &[u8]) -> Tlv {
    Tlv::primitive(t(tag), v.to_vec()).unwrap()
}

fn cons(tag: u32, c: Vec<Tlv>) -> Tlv {
    Tlv::constructed(t(tag), c).unwrap()
}

fn with_sw(mut data: Vec<u8>, sw: [u8; 2]) -> Vec<u8> {
    data.extend(sw);
    data
}

const VISA: [u8; 7] = [0xA0, 0, 0, 0, 3, 0x10, 0x10];
const MC: [u8; 7] = [0xA0, 0, 0, 0, 4, 0x10, 0x10];

fn ppse(entries: Vec<Tlv>) -> Vec<u8> {
    cons(
        0x6F,
        vec![prim(0x84, PPSE), cons(0xA5, vec![cons(0xBF0C, entries)])],
    )
    .encode()
}

fn entry(aid: &[u8], priority: Option<u8>) -> Tlv {
    let mut c = vec![prim(0x4F, aid)];
    if let Some(p) = priority {
        c.push(prim(0x87, &[p]));
    }
    cons(0x61, c)
}

fn terminal() -> TerminalData {
    TerminalData {
        amount: Money::from_minor(100).unwrap(),
        currency: Currency::Ngn,
        country: 566,
        ttq: TerminalData::DEFAULT_TTQ,
        unpredictable_number: [9; 4],
        date: (26, 1, 2),
        transaction_type: 0x20,
    }
}

/// PPSE split over 61XX, priority choice, 6CXX on GPO, PAN from 5A.
#[tokio::test]
async fn get_response_wrong_le_and_priority() {
    let directory = ppse(vec![
        entry(&[0xA0, 0, 0, 0, 0x99, 1], Some(1)), // unknown scheme: skipped
        entry(&VISA, None),                        // no priority: after MC
        entry(&MC, Some(2)),
    ]);
    let (a, b) = directory.split_at(10);
    let fci = cons(
        0x6F,
        vec![prim(0x84, &MC), cons(0xA5, vec![prim(0x50, b"MC")])],
    );
    let gpo = prim(0x80, &[0x19, 0x80, 0x08, 0x01, 0x01, 0x00]).encode();
    let record = cons(
        0x70,
        vec![
            prim(0x5A, &[0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x44, 0x44]),
            prim(0x5F24, &[0x30, 0x07, 0x31]),
            prim(0x5F20, b"SECRET/NAME"),
        ],
    );
    let mut select_ppse = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
    select_ppse.extend(PPSE);
    select_ppse.push(0x00);
    let mut select_mc = vec![0x00, 0xA4, 0x04, 0x00, 0x07];
    select_mc.extend(MC);
    select_mc.push(0x00);
    let mut script = Script {
        steps: vec![
            (select_ppse, with_sw(a.to_vec(), [0x61, b.len() as u8])),
            (
                vec![0x00, 0xC0, 0x00, 0x00, b.len() as u8],
                with_sw(b.to_vec(), [0x90, 0x00]),
            ),
            (select_mc, with_sw(fci.encode(), [0x90, 0x00])),
            (
                vec![0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00],
                vec![0x6C, 0x06],
            ),
            (
                vec![0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x06],
                with_sw(gpo, [0x90, 0x00]),
            ),
            (
                vec![0x00, 0xB2, 0x01, 0x0C, 0x00],
                with_sw(record.encode(), [0x90, 0x00]),
            ),
        ],
        next: 0,
    };
    let card = read_card(&mut script, &terminal()).await.unwrap();
    assert_eq!(script.next, script.steps.len());
    assert_eq!(card.brand(), crate::CardBrand::Mastercard);
    assert_eq!(card.last4(), "4444");
    assert_eq!(card.expiry(), Expiry::new(2030, 7).unwrap());
    assert_eq!(card.application().label.as_deref(), Some("MC"));
    assert!(!format!("{card:?}").contains("SECRET"));
}

/// A card whose PDOL asks for 16 MiB per entry (64 entries: 1 GiB) is
/// refused at the DOL, before anything is allocated or sent.
#[tokio::test]
async fn hostile_pdol_lengths_are_refused_before_allocation() {
    let hostile: Vec<u8> = std::iter::repeat_n([0x9F, 0x02, 0x83, 0xFF, 0xFF, 0xFF], 64)
        .flatten()
        .collect();
    let fci = cons(
        0x6F,
        vec![
            prim(0x84, &VISA),
            cons(0xA5, vec![prim(0x50, b"VISA"), prim(0x9F38, &hostile)]),
        ],
    );
    let mut select_ppse = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
    select_ppse.extend(PPSE);
    select_ppse.push(0x00);
    let mut select_visa = vec![0x00, 0xA4, 0x04, 0x00, 0x07];
    select_visa.extend(VISA);
    select_visa.push(0x00);
    let mut script = Script {
        steps: vec![
            (
                select_ppse,
                with_sw(ppse(vec![entry(&VISA, None)]), [0x90, 0x00]),
            ),
            (select_visa, with_sw(fci.encode(), [0x90, 0x00])),
        ],
        next: 0,
    };
    let err = read_card(&mut script, &terminal()).await.unwrap_err();
    assert_eq!(
        err,
        EmvError::Tlv {
            command: "SELECT AID",
            source: TlvError::DolEntryTooLong {
                offset: 2,
                len: 0xFF_FFFF
            },
        }
    );
    assert_eq!(script.next, 2, "nothing sent after the hostile FCI");
}

#[test]
fn fill_dol_bounds_lengths_it_did_not_parse() {
    let t = terminal();
    let huge = [(tags::AMOUNT_AUTHORISED, usize::MAX)];
    assert!(matches!(
        t.fill_dol(&huge),
        Err(TlvError::DolEntryTooLong { offset: 0, .. })
    ));
    let over = [(tags::TVR, 200), (tags::TTQ, 53)];
    assert_eq!(t.fill_dol(&over), Err(TlvError::DolTooLong));
    let filled = t.fill_dol(&[(tags::TVR, 200), (tags::TTQ, 52)]).unwrap();
    assert_eq!(filled.len(), tlv::MAX_DOL_TOTAL);
    assert_eq!(filled.capacity(), tlv::MAX_DOL_TOTAL, "sized once");
}

#[test]
fn fuzz_dol_entry_on_samples() {
    for sample in [
        &[][..],
        &[0x9F, 0x02, 0x06, 0x9A, 0x03, 0xDF, 0x01, 0x81, 0xF0],
        &[0x9F, 0x02, 0x83, 0xFF, 0xFF, 0xFF],
        &[0x9F, 0x02, 0x81, 0xFC],
        &[0x9F],
    ] {
        fuzz_dol(sample);
    }
}

#[test]
fn append_wiped_moves_card_data_to_a_larger_buffer() {
    let mut buf = Zeroizing::new(Vec::with_capacity(4));
    append_wiped(&mut buf, &[1, 2, 3]);
    let first = buf.as_ptr();
    append_wiped(&mut buf, &[4, 5, 6]);
    assert_eq!(buf.as_slice(), &[1, 2, 3, 4, 5, 6]);
    assert_ne!(buf.as_ptr(), first, "moved to a new buffer");
    assert!(buf.capacity() >= 8);
}

#[test]
fn pan_in_5a_and_track2_must_agree() {
    let records = vec![vec![cons(
        0x70,
        vec![
            prim(0x5A, &[0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11]),
            prim(
                0x57,
                &[
                    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x44, 0x44, 0xD3, 0x00, 0x72, 0x01,
                ],
            ),
        ],
    )]];
    assert!(matches!(
        extract_pan_and_expiry(&records),
        Err(EmvError::InvalidPan { .. })
    ));
    let none = vec![vec![cons(0x70, vec![prim(0x5F24, &[0x30, 0x07, 0x31])])]];
    assert_eq!(
        extract_pan_and_expiry(&none).unwrap_err(),
        EmvError::InvalidPan { len: 0 }
    );
}

#[tokio::test]
async fn error_status_and_no_application() {
    let mut select_ppse = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
    select_ppse.extend(PPSE);
    select_ppse.push(0x00);
    let mut script = Script {
        steps: vec![(select_ppse.clone(), vec![0x6A, 0x82])],
        next: 0,
    };
    assert_eq!(
        read_card(&mut script, &terminal()).await.unwrap_err(),
        EmvError::Status {
            command: "SELECT PPSE",
            sw: 0x6A82
        }
    );
    let only_unknown = ppse(vec![entry(&[0xA0, 0, 0, 0, 0x25, 1], Some(1))]);
    let mut script = Script {
        steps: vec![(select_ppse, with_sw(only_unknown, [0x90, 0x00]))],
        next: 0,
    };
    assert_eq!(
        read_card(&mut script, &terminal()).await.unwrap_err(),
        EmvError::NoApplication
    );
}

#[test]
fn afl_expansion() {
    assert_eq!(
        afl_records(&[0x08, 1, 2, 0, 0x10, 1, 1, 0]).unwrap(),
        vec![(1, 1), (1, 2), (2, 1)]
    );
    assert_eq!(afl_records(&[0x08, 1, 2]), Err(EmvError::BadAfl));
    assert_eq!(afl_records(&[0x08, 0, 2, 0]), Err(EmvError::BadAfl));
    assert_eq!(afl_records(&[0x08, 3, 2, 0]), Err(EmvError::BadAfl));
    assert_eq!(afl_records(&[0x00, 1, 1, 0]), Err(EmvError::BadAfl));
    assert_eq!(afl_records(&[0x08, 1, 255, 0]), Err(EmvError::BadAfl));
}
