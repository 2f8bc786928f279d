//! PN532 host-link frames (PN532 User Manual §6.2) as a `tokio_util` codec.
//!
//! ```text
//! information  00 00 FF LEN LCS TFI PD0..PDn DCS 00      LEN+LCS = 0, TFI+PD..+DCS = 0
//! extended     00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00
//! ACK          00 00 FF 00 FF 00
//! NACK         00 00 FF FF 00 00
//! error        00 00 FF 01 FF 7F 81 00
//! ```
//!
//! The decoder resynchronises by itself: bytes before a start code (`00 FF`) are line
//! garbage and dropped, a header whose length checksum fails is a false start and
//! skipped, and a frame whose data checksum fails is reported as
//! [`Frame::Corrupt`] (the caller answers with a NACK) rather than as an error, because
//! a `Framed` stream ends after its first error. Consumed bytes are wiped from the
//! read buffer: frames carry card data.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};
use zeroize::Zeroizing;

/// Frame identifier of host-to-PN532 information frames.
pub const TFI_HOST: u8 = 0xD4;
/// Frame identifier of PN532-to-host information frames.
pub const TFI_PN532: u8 = 0xD5;

/// Longest TFI + data the decoder accepts (the PN532's buffer holds 264 bytes); a
/// longer claimed length is taken for garbage.
pub const MAX_FRAME_DATA: usize = 300;

/// Bytes the host sends to wake a PN532 on HSU out of power-down: a long preamble of
/// 0x55 then zeros (User Manual §7.2.11, "HSU wake up condition").
pub const WAKEUP: [u8; 16] = [
    0x55, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Why an apparent frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// TFI + data + DCS do not sum to zero.
    DataChecksum,
}

/// One unit on the line.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// Acknowledge (also sent by the host to abort the running command).
    Ack,
    /// Negative acknowledge: "send your last frame again".
    Nack,
    /// Information frame.
    Info {
        /// Frame identifier: [`TFI_HOST`] or [`TFI_PN532`].
        tfi: u8,
        /// Command or response code followed by its parameters; wiped on drop.
        data: Zeroizing<Vec<u8>>,
    },
    /// The PN532's application-level error frame (a syntax error in the command).
    ApplicationError,
    /// Decoder only: a frame that failed its data checksum.
    Corrupt(Corruption),
    /// Encoder only: bytes written as they are (the wake-up preamble, test faults).
    Raw(Vec<u8>),
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frame::Ack => write!(f, "Ack"),
            Frame::Nack => write!(f, "Nack"),
            Frame::Info { tfi, data } => write!(
                f,
                "Info(tfi={tfi:02X}, code={:02X?}, {} bytes)",
                data.first(),
                data.len()
            ),
            Frame::ApplicationError => write!(f, "ApplicationError"),
            Frame::Corrupt(c) => write!(f, "Corrupt({c:?})"),
            Frame::Raw(b) => write!(f, "Raw({} bytes)", b.len()),
        }
    }
}

impl Frame {
    /// An information frame from the host.
    pub fn host(data: &[u8]) -> Frame {
        Frame::Info {
            tfi: TFI_HOST,
            data: Zeroizing::new(data.to_vec()),
        }
    }

    /// An information frame from the PN532.
    pub fn pn532(data: &[u8]) -> Frame {
        Frame::Info {
            tfi: TFI_PN532,
            data: Zeroizing::new(data.to_vec()),
        }
    }
}

/// Encodes an information frame (normal or extended form by length) into `out`.
pub fn encode_info(tfi: u8, data: &[u8], out: &mut Vec<u8>) {
    let len = data.len() + 1;
    out.extend_from_slice(&[0x00, 0x00, 0xFF]);
    if let Some(short) = u8::try_from(len).ok().filter(|l| *l < 0xFF) {
        out.extend_from_slice(&[short, short.wrapping_neg()]);
    } else {
        let [m, l] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        out.extend_from_slice(&[0xFF, 0xFF, m, l, m.wrapping_add(l).wrapping_neg()]);
    }
    out.push(tfi);
    out.extend_from_slice(data);
    let sum = data.iter().fold(tfi, |acc, b| acc.wrapping_add(*b));
    out.push(sum.wrapping_neg());
    out.push(0x00);
}

/// The PN532 frame codec. Counts the bytes it has consumed and produced, which the
/// benchmark uses to compute time on the wire.
#[derive(Debug, Default)]
pub struct Pn532Codec {
    bytes_in: u64,
    bytes_out: u64,
    garbage: u64,
}

impl Pn532Codec {
    /// Bytes consumed by the decoder so far (frames and garbage).
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Bytes produced by the encoder so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Bytes the decoder dropped as line garbage so far.
    pub fn garbage(&self) -> u64 {
        self.garbage
    }

    fn consume(&mut self, src: &mut BytesMut, n: usize) {
        let n = n.min(src.len());
        src[..n].fill(0);
        src.advance(n);
        self.bytes_in += n as u64;
    }

    fn drop_garbage(&mut self, src: &mut BytesMut, n: usize) {
        let counted = src[..n.min(src.len())]
            .iter()
            .filter(|b| **b != 0x00)
            .count();
        self.garbage += counted as u64;
        self.consume(src, n);
    }

    /// Consumes the `n` bytes of a frame up to its checksum. The postamble is left
    /// to the start-code scan: it may also be the first byte of the next frame's
    /// start code when a sender omits the preamble, and taking it only when it has
    /// already arrived would make decoding depend on how reads split the stream.
    fn consume_frame(&mut self, src: &mut BytesMut, n: usize) {
        self.consume(src, n);
    }
}

impl Decoder for Pn532Codec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        loop {
            let Some(start) = src.windows(2).position(|w| w == [0x00, 0xFF]) else {
                // Keep a trailing 0x00: it may be the first half of a start code.
                let keep = usize::from(src.last() == Some(&0x00));
                let n = src.len() - keep;
                self.drop_garbage(src, n);
                return Ok(None);
            };
            if start > 0 {
                self.drop_garbage(src, start);
            }
            // src now begins with 00 FF.
            let (Some(&a), Some(&b)) = (src.get(2), src.get(3)) else {
                return Ok(None);
            };
            let (header, len) = match (a, b) {
                (0x00, 0xFF) => {
                    self.consume_frame(src, 4);
                    return Ok(Some(Frame::Ack));
                }
                (0xFF, 0x00) => {
                    self.consume_frame(src, 4);
                    return Ok(Some(Frame::Nack));
                }
                (0xFF, 0xFF) => {
                    let (Some(&m), Some(&l), Some(&lcs)) = (src.get(4), src.get(5), src.get(6))
                    else {
                        return Ok(None);
                    };
                    if m.wrapping_add(l).wrapping_add(lcs) != 0 {
                        self.drop_garbage(src, 1);
                        continue;
                    }
                    (7, usize::from(u16::from_be_bytes([m, l])))
                }
                (len, lcs) => {
                    if len.wrapping_add(lcs) != 0 {
                        self.drop_garbage(src, 1);
                        continue;
                    }
                    (4, usize::from(len))
                }
            };
            if len == 0 || len > MAX_FRAME_DATA {
                self.drop_garbage(src, 1);
                continue;
            }
            let total = header + len + 1;
            if src.len() < total {
                src.reserve(total - src.len() + 1);
                return Ok(None);
            }
            let body = &src[header..header + len];
            let sum = body
                .iter()
                .fold(src[header + len], |acc, x| acc.wrapping_add(*x));
            if sum != 0 {
                // Skip the start code only: a real frame may begin inside.
                self.drop_garbage(src, 2);
                return Ok(Some(Frame::Corrupt(Corruption::DataChecksum)));
            }
            let tfi = body[0];
            let frame = if tfi == 0x7F && len == 1 {
                Frame::ApplicationError
            } else {
                Frame::Info {
                    tfi,
                    data: Zeroizing::new(body[1..].to_vec()),
                }
            };
            self.consume_frame(src, total);
            return Ok(Some(frame));
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        let frame = self.decode(src)?;
        if frame.is_none() {
            let n = src.len();
            self.drop_garbage(src, n);
        }
        Ok(frame)
    }
}

impl Encoder<Frame> for Pn532Codec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        let mut out = Zeroizing::new(Vec::new());
        match &frame {
            Frame::Ack => out.extend_from_slice(&[0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00]),
            Frame::Nack => out.extend_from_slice(&[0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00]),
            Frame::ApplicationError => {
                out.extend_from_slice(&[0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00]);
            }
            Frame::Info { tfi, data } => {
                if data.len() + 1 > MAX_FRAME_DATA {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("PN532 frame data too long: {} bytes", data.len()),
                    ));
                }
                encode_info(*tfi, data, &mut out);
            }
            Frame::Raw(bytes) => out.extend_from_slice(bytes),
            Frame::Corrupt(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a corrupt frame cannot be encoded",
                ));
            }
        }
        self.bytes_out += out.len() as u64;
        dst.extend_from_slice(&out);
        Ok(())
    }
}

/// The fuzzing entry point: decodes `data` in every split into two reads, checking
/// the decoder makes progress and yields the same frames however the bytes arrive.
pub fn fuzz_decode(data: &[u8]) {
    let decode = |chunks: &[&[u8]]| -> Vec<Frame> {
        let mut codec = Pn532Codec::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            // Each frame consumes at least 4 bytes, so this bounds the loop.
            for _ in 0..=data.len() {
                match codec.decode(&mut buf) {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        if let Ok(Some(f)) = codec.decode_eof(&mut buf) {
            frames.push(f);
        }
        frames
    };
    let whole = decode(&[data]);
    let cut = data.len() / 2;
    let split = decode(&[&data[..cut], &data[cut..]]);
    // A corrupt frame may be seen differently when its bytes arrive in pieces, but
    // complete valid frames must be the same.
    let valid = |frames: Vec<Frame>| -> Vec<Frame> {
        frames
            .into_iter()
            .filter(|f| matches!(f, Frame::Info { .. } | Frame::ApplicationError))
            .collect()
    };
    assert_eq!(
        valid(whole),
        valid(split),
        "frames depend on read boundaries"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(codec: &mut Pn532Codec, bytes: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        out.extend(codec.decode_eof(&mut buf).unwrap());
        out
    }

    fn encoded(frame: Frame) -> Vec<u8> {
        let mut buf = BytesMut::new();
        Pn532Codec::default().encode(frame, &mut buf).unwrap();
        buf.to_vec()
    }

    #[test]
    fn user_manual_examples() {
        // GetFirmwareVersion command and response from the PN532 User Manual.
        assert_eq!(
            encoded(Frame::host(&[0x02])),
            [0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00]
        );
        let resp = [
            0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00,
        ];
        let mut c = Pn532Codec::default();
        assert_eq!(
            decode_all(&mut c, &resp),
            vec![Frame::pn532(&[0x03, 0x32, 0x01, 0x06, 0x07])]
        );
        assert_eq!(c.bytes_in(), resp.len() as u64);
        assert_eq!(encoded(Frame::Ack), [0, 0, 0xFF, 0, 0xFF, 0]);
        assert_eq!(encoded(Frame::Nack), [0, 0, 0xFF, 0xFF, 0, 0]);
    }

    #[test]
    fn ack_nack_error_and_frames_back_to_back() {
        let mut bytes = encoded(Frame::Ack);
        bytes.extend(encoded(Frame::ApplicationError));
        bytes.extend(encoded(Frame::pn532(&[0x15])));
        bytes.extend(encoded(Frame::Nack));
        let frames = decode_all(&mut Pn532Codec::default(), &bytes);
        assert_eq!(
            frames,
            vec![
                Frame::Ack,
                Frame::ApplicationError,
                Frame::pn532(&[0x15]),
                Frame::Nack
            ]
        );
    }

    #[test]
    fn extended_frame_roundtrip() {
        let data: Vec<u8> = (0..=255u8).chain(0..20).collect();
        let bytes = encoded(Frame::pn532(&data));
        assert_eq!(&bytes[3..5], &[0xFF, 0xFF]);
        assert_eq!(
            decode_all(&mut Pn532Codec::default(), &bytes),
            vec![Frame::pn532(&data)]
        );
    }

    #[test]
    fn resyncs_after_garbage_and_reports_bad_checksum() {
        let mut c = Pn532Codec::default();
        let mut bytes = vec![0x13, 0x37, 0xFF, 0x00, 0xFF, 0x10, 0xEF, 0x42];
        bytes.extend(encoded(Frame::pn532(&[0x41, 0x00, 0x90, 0x00])));
        let mut bad = encoded(Frame::pn532(&[0x03, 0x01]));
        let dcs_at = bad.len() - 2;
        bad[dcs_at] ^= 0x01;
        bytes.extend(bad);
        bytes.extend([0xAA, 0xBB]);
        bytes.extend(encoded(Frame::Ack));
        let frames = decode_all(&mut c, &bytes);
        assert_eq!(
            frames,
            vec![
                Frame::pn532(&[0x41, 0x00, 0x90, 0x00]),
                Frame::Corrupt(Corruption::DataChecksum),
                Frame::Ack
            ]
        );
        assert!(c.garbage() >= 4, "garbage counted: {}", c.garbage());
    }

    #[test]
    fn frames_without_preamble_back_to_back() {
        // Found by fuzzing: the second frame's start code must not be taken for the
        // first frame's postamble, however the bytes are split into reads.
        let bytes = [
            0x00, 0xFF, 0x02, 0xFE, 0xFF, 0x01, 0x00, 0x00, 0xFF, 0x02, 0xFE, 0xFF, 0x01, 0x00,
            0x00,
        ];
        let frames = decode_all(&mut Pn532Codec::default(), &bytes);
        assert_eq!(frames.len(), 2, "{frames:?}");
        fuzz_decode(&bytes);
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let bytes = encoded(Frame::pn532(&[0x4B, 0x01, 0x01, 0x00, 0x04]));
        let mut c = Pn532Codec::default();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = c.decode(&mut buf).unwrap();
            // The frame is complete once the DCS byte (before the postamble) is in.
            if i == bytes.len() - 2 {
                assert_eq!(got, Some(Frame::pn532(&[0x4B, 0x01, 0x01, 0x00, 0x04])));
            } else {
                assert_eq!(got, None, "byte {i}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut c = Pn532Codec::default();
            let mut buf = BytesMut::from(&bytes[..]);
            let mut n = 0;
            while c.decode(&mut buf).unwrap().is_some() {
                n += 1;
                prop_assert!(n <= bytes.len());
            }
            let _ = c.decode_eof(&mut buf).unwrap();
            fuzz_decode(&bytes);
        }

        #[test]
        fn frames_survive_garbage_prefix(
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
            data in proptest::collection::vec(any::<u8>(), 1..280),
        ) {
            // Garbage, then a NACK, then the frame: the frame must come out last.
            let mut bytes = garbage;
            bytes.extend(encoded(Frame::Nack));
            bytes.extend(encoded(Frame::pn532(&data)));
            let frames = decode_all(&mut Pn532Codec::default(), &bytes);
            let expected = Frame::pn532(&data);
            prop_assert_eq!(frames.last(), Some(&expected));
        }
    }
}
