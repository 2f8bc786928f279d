//! BER-TLV as used by EMV (EMV Book 3, Annex B).
//!
//! The parser is iterative over siblings and recursive over nesting with a hard depth
//! limit, so hostile input can neither overflow the stack nor panic. It accepts the
//! length forms EMV cards use (short form, `0x81`, `0x82`, `0x83`) and rejects the
//! indefinite form (`0x80`) and longer forms. `0x00` bytes before, between or after
//! data objects are padding and skipped, as EMV allows.
//!
//! Every value is wiped from memory when dropped: these buffers carry card data.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Deepest nesting of constructed objects the parser accepts (the outermost object is
/// depth 1). EMV data never nests deeper than 4.
pub const MAX_DEPTH: usize = 8;

/// Longest tag the parser accepts, in bytes (EMV uses at most 2; BER allows more).
pub const MAX_TAG_BYTES: usize = 3;

/// A BER tag, kept as its encoded bytes packed big-endian (`0x9F02`, `0xBF0C`, `0x5A`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Zeroize)]
pub struct Tag(u32);

impl Tag {
    /// Builds a tag from its encoded form packed big-endian; checks that it is a
    /// well-formed BER tag of at most [`MAX_TAG_BYTES`] bytes.
    pub fn new(packed: u32) -> Result<Self, TlvError> {
        let bytes = packed_bytes(packed);
        let (tag, used) = read_tag(&bytes, 0)?;
        if used != bytes.len() {
            return Err(TlvError::BadTag { offset: 0 });
        }
        Ok(tag)
    }

    /// The tag packed big-endian, e.g. `0x9F38`.
    pub fn packed(self) -> u32 {
        self.0
    }

    /// True for constructed tags (bit 6 of the first byte), whose value is more TLV.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    fn first_byte(self) -> u8 {
        packed_bytes(self.0).first().copied().unwrap_or(0)
    }

    /// The encoded bytes of the tag.
    pub fn to_bytes(self) -> Vec<u8> {
        packed_bytes(self.0)
    }
}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tag({:02X})", self.0)
    }
}

fn packed_bytes(packed: u32) -> Vec<u8> {
    let all = packed.to_be_bytes();
    let skip = all.iter().take_while(|b| **b == 0).count().min(3);
    all[skip..].to_vec()
}

/// Well-known EMV tags used by the reader and the emulator.
pub mod tags {
    use super::Tag;
    /// File Control Information template.
    pub const FCI: Tag = Tag(0x6F);
    /// FCI proprietary template.
    pub const FCI_PROPRIETARY: Tag = Tag(0xA5);
    /// FCI issuer discretionary data.
    pub const FCI_ISSUER_DISCRETIONARY: Tag = Tag(0xBF0C);
    /// Directory entry (PPSE).
    pub const DIRECTORY_ENTRY: Tag = Tag(0x61);
    /// Application identifier (card).
    pub const AID: Tag = Tag(0x4F);
    /// Dedicated file name.
    pub const DF_NAME: Tag = Tag(0x84);
    /// Application label.
    pub const APPLICATION_LABEL: Tag = Tag(0x50);
    /// Application preferred name.
    pub const PREFERRED_NAME: Tag = Tag(0x9F12);
    /// Application priority indicator.
    pub const PRIORITY: Tag = Tag(0x87);
    /// Processing options data object list.
    pub const PDOL: Tag = Tag(0x9F38);
    /// Command template (GET PROCESSING OPTIONS data).
    pub const COMMAND_TEMPLATE: Tag = Tag(0x83);
    /// Response message template format 1.
    pub const RESPONSE_FORMAT_1: Tag = Tag(0x80);
    /// Response message template format 2.
    pub const RESPONSE_FORMAT_2: Tag = Tag(0x77);
    /// Application interchange profile.
    pub const AIP: Tag = Tag(0x82);
    /// Application file locator.
    pub const AFL: Tag = Tag(0x94);
    /// READ RECORD response template.
    pub const RECORD_TEMPLATE: Tag = Tag(0x70);
    /// Application primary account number.
    pub const PAN: Tag = Tag(0x5A);
    /// Track 2 equivalent data.
    pub const TRACK2: Tag = Tag(0x57);
    /// Application expiration date (YYMMDD).
    pub const EXPIRY: Tag = Tag(0x5F24);
    /// Cardholder name: never copied out of the parser's buffers.
    pub const CARDHOLDER_NAME: Tag = Tag(0x5F20);
    /// Terminal transaction qualifiers.
    pub const TTQ: Tag = Tag(0x9F66);
    /// Amount, authorised (numeric).
    pub const AMOUNT_AUTHORISED: Tag = Tag(0x9F02);
    /// Amount, other (numeric).
    pub const AMOUNT_OTHER: Tag = Tag(0x9F03);
    /// Terminal country code.
    pub const TERMINAL_COUNTRY: Tag = Tag(0x9F1A);
    /// Transaction currency code.
    pub const CURRENCY: Tag = Tag(0x5F2A);
    /// Terminal verification results.
    pub const TVR: Tag = Tag(0x95);
    /// Transaction date (YYMMDD).
    pub const TRANSACTION_DATE: Tag = Tag(0x9A);
    /// Transaction type.
    pub const TRANSACTION_TYPE: Tag = Tag(0x9C);
    /// Unpredictable number.
    pub const UNPREDICTABLE_NUMBER: Tag = Tag(0x9F37);
    /// Terminal type.
    pub const TERMINAL_TYPE: Tag = Tag(0x9F35);
    /// Terminal capabilities.
    pub const TERMINAL_CAPABILITIES: Tag = Tag(0x9F33);
}

/// What failed while parsing TLV, and where (byte offset in the outermost input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The input ended inside a tag, length or value.
    #[error("TLV truncated at byte {offset}")]
    Truncated {
        /// Where the missing bytes were expected.
        offset: usize,
    },
    /// A tag longer than [`MAX_TAG_BYTES`] or with a reserved encoding.
    #[error("malformed TLV tag at byte {offset}")]
    BadTag {
        /// Where the tag starts.
        offset: usize,
    },
    /// The indefinite length form (`0x80`).
    #[error("indefinite TLV length at byte {offset}")]
    IndefiniteLength {
        /// Where the length starts.
        offset: usize,
    },
    /// A long length form with more than 3 length bytes, or a reserved one.
    #[error("unsupported TLV length form 0x{first:02X} at byte {offset}")]
    BadLength {
        /// Where the length starts.
        offset: usize,
        /// The first length byte.
        first: u8,
    },
    /// Constructed objects nested deeper than [`MAX_DEPTH`].
    #[error("TLV nested deeper than {MAX_DEPTH} at byte {offset}")]
    TooDeep {
        /// Where the too-deep object starts.
        offset: usize,
    },
    /// A DOL entry asking for more than [`MAX_DOL_ENTRY`] bytes.
    #[error("DOL entry at byte {offset} asks for {len} bytes (at most {MAX_DOL_ENTRY})")]
    DolEntryTooLong {
        /// Where the entry's length starts.
        offset: usize,
        /// The length the card asked for.
        len: usize,
    },
    /// A DOL whose entries add up to more than [`MAX_DOL_TOTAL`] bytes.
    #[error("DOL asks for more than {MAX_DOL_TOTAL} bytes in all")]
    DolTooLong,
}

/// Longest value one DOL entry may ask for: a DOL length is one byte in EMV.
pub const MAX_DOL_ENTRY: usize = 255;

/// Longest filled DOL: it travels as the value of tag 83 (`83 81 LL`) in one
/// short APDU, whose data is at most 255 bytes.
pub const MAX_DOL_TOTAL: usize = 252;

/// The value of a data object.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub enum Value {
    /// Raw bytes of a primitive object.
    Primitive(Vec<u8>),
    /// The children of a constructed object, in order.
    Constructed(Vec<Tlv>),
}

/// One BER-TLV data object.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Tlv {
    tag: Tag,
    value: Value,
}

impl std::fmt::Debug for Tlv {
    /// Prints the tree shape and value lengths only: values may be card data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Value::Primitive(bytes) => write!(f, "{:?}[{} bytes]", self.tag, bytes.len()),
            Value::Constructed(children) => f.debug_map().entry(&self.tag, children).finish(),
        }
    }
}

impl Tlv {
    /// A primitive object. Fails if `tag` is a constructed tag.
    pub fn primitive(tag: Tag, bytes: impl Into<Vec<u8>>) -> Result<Self, TlvError> {
        if tag.is_constructed() {
            return Err(TlvError::BadTag { offset: 0 });
        }
        Ok(Tlv {
            tag,
            value: Value::Primitive(bytes.into()),
        })
    }

    /// A constructed object. Fails if `tag` is a primitive tag.
    pub fn constructed(tag: Tag, children: Vec<Tlv>) -> Result<Self, TlvError> {
        if !tag.is_constructed() {
            return Err(TlvError::BadTag { offset: 0 });
        }
        Ok(Tlv {
            tag,
            value: Value::Constructed(children),
        })
    }

    /// The object's tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The object's value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The bytes of a primitive object; `None` for constructed ones.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Primitive(b) => Some(b),
            Value::Constructed(_) => None,
        }
    }

    /// The children of a constructed object (empty for primitive ones).
    pub fn children(&self) -> &[Tlv] {
        match &self.value {
            Value::Primitive(_) => &[],
            Value::Constructed(c) => c,
        }
    }

    /// Appends the encoding of this object to `out` (definite, shortest length form).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_bytes());
        match &self.value {
            Value::Primitive(bytes) => {
                encode_length(bytes.len(), out);
                out.extend_from_slice(bytes);
            }
            Value::Constructed(children) => {
                let mut inner = Vec::new();
                for child in children {
                    child.encode_into(&mut inner);
                }
                encode_length(inner.len(), out);
                out.extend_from_slice(&inner);
                inner.zeroize();
            }
        }
    }

    /// The encoding of this object.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Depth-first search for the first object with `tag`, this object included.
    pub fn find(&self, tag: Tag) -> Option<&Tlv> {
        if self.tag == tag {
            return Some(self);
        }
        find_in(self.children(), tag)
    }
}

/// Depth-first search for the first object with `tag` in a list of objects.
pub fn find_in(objects: &[Tlv], tag: Tag) -> Option<&Tlv> {
    objects.iter().find_map(|o| o.find(tag))
}

/// Encodes a list of objects back to back.
pub fn encode_all(objects: &[Tlv]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in objects {
        o.encode_into(&mut out);
    }
    out
}

fn encode_length(len: usize, out: &mut Vec<u8>) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Parses a sequence of data objects filling all of `input`.
pub fn parse(input: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    parse_level(input, 0, 1)
}

/// Parses the data objects in `input`, which starts at `base` in the outermost input,
/// at nesting depth `depth`.
fn parse_level(input: &[u8], base: usize, depth: usize) -> Result<Vec<Tlv>, TlvError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        // EMV Book 3 B1: '00' bytes may occur before, between or after data objects.
        if input[pos] == 0x00 {
            pos += 1;
            continue;
        }
        let start = pos;
        let (tag, tag_len) = read_tag(&input[pos..], base + pos)?;
        pos += tag_len;
        let (len, len_len) = read_length(&input[pos..], base + pos)?;
        pos += len_len;
        let end = pos
            .checked_add(len)
            .filter(|end| *end <= input.len())
            .ok_or(TlvError::Truncated {
                offset: base + input.len(),
            })?;
        let body = &input[pos..end];
        let value = if tag.is_constructed() {
            if depth >= MAX_DEPTH {
                return Err(TlvError::TooDeep {
                    offset: base + start,
                });
            }
            Value::Constructed(parse_level(body, base + pos, depth + 1)?)
        } else {
            Value::Primitive(body.to_vec())
        };
        out.push(Tlv { tag, value });
        pos = end;
    }
    Ok(out)
}

/// Reads a tag at the start of `input`; returns it and its length in bytes.
fn read_tag(input: &[u8], offset: usize) -> Result<(Tag, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated { offset })?;
    if first == 0x00 || first == 0xFF {
        return Err(TlvError::BadTag { offset });
    }
    let mut packed = u32::from(first);
    let mut used = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *input.get(used).ok_or(TlvError::Truncated {
                offset: offset + used,
            })?;
            // X.690 8.1.2.4.2 c: the first subsequent byte may not be 0x80.
            if used == 1 && b == 0x80 {
                return Err(TlvError::BadTag { offset });
            }
            packed = (packed << 8) | u32::from(b);
            used += 1;
            if b & 0x80 == 0 {
                break;
            }
            if used >= MAX_TAG_BYTES {
                return Err(TlvError::BadTag { offset });
            }
        }
    }
    Ok((Tag(packed), used))
}

/// Reads a length at the start of `input`; returns it and its length in bytes.
fn read_length(input: &[u8], offset: usize) -> Result<(usize, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated { offset })?;
    match first {
        0x00..=0x7F => Ok((usize::from(first), 1)),
        0x80 => Err(TlvError::IndefiniteLength { offset }),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7F);
            let bytes = input.get(1..=n).ok_or(TlvError::Truncated {
                offset: offset + input.len(),
            })?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            Ok((len, 1 + n))
        }
        _ => Err(TlvError::BadLength { offset, first }),
    }
}

/// Reads a Data Object List (tag and length pairs, no values), e.g. a PDOL.
/// Every length the card supplies is bounded here, before anyone allocates
/// for it: an entry asks for at most [`MAX_DOL_ENTRY`] bytes, all entries
/// together for at most [`MAX_DOL_TOTAL`].
pub fn parse_dol(input: &[u8]) -> Result<Vec<(Tag, usize)>, TlvError> {
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut pos = 0;
    while pos < input.len() {
        let (tag, tag_len) = read_tag(&input[pos..], pos)?;
        pos += tag_len;
        let (len, len_len) = read_length(&input[pos..], pos)?;
        if len > MAX_DOL_ENTRY {
            return Err(TlvError::DolEntryTooLong { offset: pos, len });
        }
        pos += len_len;
        total += len;
        if total > MAX_DOL_TOTAL {
            return Err(TlvError::DolTooLong);
        }
        out.push((tag, len));
    }
    Ok(out)
}

/// The fuzzing entry point: parse, and if that succeeds, check that encoding and
/// parsing again is stable. Panics only if the parser breaks its own contract, which
/// is exactly what a fuzzer should report.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(objects) = parse(data) {
        let encoded = encode_all(&objects);
        let again = parse(&encoded);
        assert_eq!(again.as_ref(), Ok(&objects), "re-parse of encoding differs");
    }
    let _ = parse_dol(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_dol_lengths_are_refused_before_allocation() {
        // 9F02 with a 3-byte length of 16 MiB - 1, and one of 256.
        assert_eq!(
            parse_dol(&[0x9F, 0x02, 0x83, 0xFF, 0xFF, 0xFF]),
            Err(TlvError::DolEntryTooLong {
                offset: 2,
                len: 0xFF_FFFF
            })
        );
        assert_eq!(
            parse_dol(&[0x9A, 0x82, 0x01, 0x00]),
            Err(TlvError::DolEntryTooLong {
                offset: 1,
                len: 256
            })
        );
        // One entry of 255 is allowed on its own terms but exceeds the total.
        assert_eq!(
            parse_dol(&[0x9F, 0x02, 0x81, 0xFF]),
            Err(TlvError::DolTooLong)
        );
        // Many entries each within bounds, adding up to more than one APDU.
        let many: Vec<u8> = std::iter::repeat_n([0x9F, 0x02, 0x81, 0x80], 3)
            .flatten()
            .collect();
        assert_eq!(parse_dol(&many), Err(TlvError::DolTooLong));
        // Exactly the largest total is fine.
        let fits = parse_dol(&[0x9F, 0x02, 0x81, 0xFC]).unwrap();
        assert_eq!(fits, vec![(tags::AMOUNT_AUTHORISED, MAX_DOL_TOTAL)]);
    }

    fn tag(p: u32) -> Tag {
        Tag::new(p).unwrap()
    }

    #[test]
    fn parses_nested_fci() {
        // 6F { 84 "AB", A5 { 50 "V", 9F38 "9F6604" } }
        let bytes = [
            0x6F, 0x0F, 0x84, 0x02, b'A', b'B', 0xA5, 0x09, 0x50, 0x01, b'V', 0x9F, 0x38, 0x03,
            0x9F, 0x66, 0x04,
        ];
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.len(), 1);
        let fci = &parsed[0];
        assert_eq!(fci.tag(), tags::FCI);
        assert_eq!(fci.find(tags::DF_NAME).unwrap().bytes(), Some(&b"AB"[..]));
        assert_eq!(
            fci.find(tags::PDOL).unwrap().bytes(),
            Some(&[0x9F, 0x66, 0x04][..])
        );
        assert_eq!(encode_all(&parsed), bytes);
        let dol = parse_dol(&[0x9F, 0x66, 0x04, 0x9A, 0x03]).unwrap();
        assert_eq!(dol, vec![(tag(0x9F66), 4), (tag(0x9A), 3)]);
    }

    #[test]
    fn long_length_forms() {
        for len in [0x7F, 0x80, 0xFF, 0x100, 0x1234, 0x10000] {
            let t = Tlv::primitive(tag(0x5A), vec![0xAB; len]).unwrap();
            let enc = t.encode();
            assert_eq!(parse(&enc).unwrap(), vec![t]);
        }
        // Non-minimal forms are accepted on input.
        assert_eq!(
            parse(&[0x5A, 0x82, 0x00, 0x01, 0x07]).unwrap()[0].bytes(),
            Some(&[0x07][..])
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            parse(&[0x5A, 0x80, 0x00]),
            Err(TlvError::IndefiniteLength { offset: 1 })
        );
        assert_eq!(
            parse(&[0x5A, 0x84, 0, 0, 0, 1, 0]),
            Err(TlvError::BadLength {
                offset: 1,
                first: 0x84
            })
        );
        assert_eq!(
            parse(&[0x5A, 0x05, 1, 2]),
            Err(TlvError::Truncated { offset: 4 })
        );
        assert_eq!(parse(&[0x5A]), Err(TlvError::Truncated { offset: 1 }));
        assert_eq!(parse(&[0x9F]), Err(TlvError::Truncated { offset: 1 }));
        assert_eq!(
            parse(&[0x5A, 0x82, 0x01]),
            Err(TlvError::Truncated { offset: 3 })
        );
        // Tags longer than three bytes.
        assert_eq!(
            parse(&[0x9F, 0x81, 0x81, 0x01, 0x00]),
            Err(TlvError::BadTag { offset: 0 })
        );
        assert_eq!(parse(&[0xFF, 0x00]), Err(TlvError::BadTag { offset: 0 }));
        // A child overrunning its parent is truncation, not a read past the parent.
        assert_eq!(
            parse(&[0x70, 0x03, 0x5A, 0x05, 0x01, 0x99, 0x99]),
            Err(TlvError::Truncated { offset: 5 })
        );
    }

    #[test]
    fn rejects_deep_nesting_without_recursing_far() {
        // 10_000 nested 0x70 templates: must fail cleanly at MAX_DEPTH.
        let n = 10_000usize;
        let mut out = Vec::new();
        let mut inner: Vec<u8> = Vec::new();
        for _ in 0..n {
            let mut o = vec![0x70];
            encode_length(inner.len(), &mut o);
            o.extend_from_slice(&inner);
            inner = o;
        }
        out.extend_from_slice(&inner);
        assert!(matches!(parse(&out), Err(TlvError::TooDeep { .. })));
        // Exactly MAX_DEPTH levels is fine.
        let mut inner: Vec<u8> = vec![0x5A, 0x01, 0x01];
        for _ in 0..MAX_DEPTH {
            let mut o = vec![0x70];
            encode_length(inner.len(), &mut o);
            o.extend_from_slice(&inner);
            inner = o;
        }
        assert!(parse(&inner).is_err());
        let mut inner: Vec<u8> = vec![0x5A, 0x01, 0x01];
        for _ in 0..MAX_DEPTH - 1 {
            let mut o = vec![0x70];
            encode_length(inner.len(), &mut o);
            o.extend_from_slice(&inner);
            inner = o;
        }
        assert!(parse(&inner).is_ok());
    }

    #[test]
    fn debug_hides_values() {
        let t = Tlv::primitive(tags::PAN, vec![0x41, 0x11, 0x11, 0x11]).unwrap();
        let s = format!("{t:?}");
        assert!(!s.contains("41"), "{s}");
        assert!(s.contains("4 bytes"), "{s}");
    }

    fn arb_tag(constructed: bool) -> impl Strategy<Value = Tag> {
        let c = if constructed { 0x20u32 } else { 0 };
        prop_oneof![
            // one byte: class bits free, low five bits not 0x1F, first byte not 0x00
            (0u32..4, 1u32..0x1F).prop_map(move |(class, n)| Tag((class << 6) | c | n)),
            // two bytes
            (0u32..4, 1u32..0x80)
                .prop_map(move |(class, n)| Tag((((class << 6) | c | 0x1F) << 8) | n)),
            // three bytes
            (0u32..4, 1u32..0x80, 0u32..0x80).prop_map(move |(class, a, b)| Tag((((class << 6)
                | c
                | 0x1F)
                << 16)
                | ((0x80 | a) << 8)
                | b)),
        ]
        .prop_filter("0xFF is not a first tag byte", |t| t.first_byte() != 0xFF)
    }

    fn arb_tlv() -> impl Strategy<Value = Tlv> {
        let leaf = (
            arb_tag(false),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(tag, bytes)| Tlv {
                tag,
                value: Value::Primitive(bytes),
            });
        leaf.prop_recursive(MAX_DEPTH as u32 - 1, 64, 6, |inner| {
            (arb_tag(true), proptest::collection::vec(inner, 0..6)).prop_map(|(tag, children)| {
                Tlv {
                    tag,
                    value: Value::Constructed(children),
                }
            })
        })
    }

    proptest! {
        #[test]
        fn roundtrip(objects in proptest::collection::vec(arb_tlv(), 0..4)) {
            let enc = encode_all(&objects);
            prop_assert_eq!(parse(&enc), Ok(objects));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_roundtrip(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_valid_input(
            objects in proptest::collection::vec(arb_tlv(), 1..3),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut enc = encode_all(&objects);
            for (i, b) in flips {
                let at = i.index(enc.len());
                enc[at] = b;
            }
            let keep = cut.index(enc.len() + 1);
            enc.truncate(keep);
            fuzz_roundtrip(&enc);
        }
    }

    /// The fuzz target's entry point, run many more times than the default.
    #[test]
    fn fuzz_entry_under_proptest() {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 20_000,
            ..ProptestConfig::default()
        });
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..64), |bytes| {
                fuzz_roundtrip(&bytes);
                Ok(())
            })
            .unwrap();
    }
}
