//! A bounded Server-Sent Events parser (the `text/event-stream` format of
//! the HTML standard, section 9.2.6), for the command stream of SPEC 4.3.
//!
//! Pure: bytes in, events out, no I/O and no clock. It is fed whatever the
//! transport delivered and returns one event at a time, so it never holds
//! more than one line and one event. Both are bounded by [`SseLimits`]
//! *before* anything is buffered: a line or an event over its bound is an
//! [`SseError`] for that event, whose remaining bytes are then skipped
//! without being kept; the events after it come as usual (one oversized
//! command cannot wedge a stream that a server replays on every
//! reconnect). Comments (`: ping`) produce no event; the caller counts the
//! bytes it fed as a sign of life.
//!
//! Lines end in LF, CR or CRLF (also split across chunks). A leading BOM is
//! skipped. `retry:` and unknown fields are ignored. Invalid UTF-8 is
//! replaced, as the standard says.

/// The bounds of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseLimits {
    /// Longest line, without its line ending.
    pub max_line: usize,
    /// Largest event: the sum of its `event`, `id` and `data` values.
    pub max_event: usize,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("event stream line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("event stream event larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `id:` field of this event, if it had one (not validated).
    pub id: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// The parser's state between two chunks.
#[derive(Debug)]
pub struct SseParser {
    limits: SseLimits,
    /// The current line so far (never longer than `max_line`).
    line: Vec<u8>,
    /// The last byte seen was a CR: a LF right after it ends nothing.
    after_cr: bool,
    /// Nothing seen yet: a BOM may follow.
    at_start: bool,
    bom_seen: usize,
    event: Option<String>,
    id: Option<String>,
    data: String,
    /// Whether any `data:` line arrived for the current event.
    has_data: bool,
    /// Bytes of the current event's field values so far.
    event_bytes: usize,
    /// An oversized event is being skipped up to its blank line.
    skipping: bool,
    /// While skipping: the current line has content (so its end is not
    /// the event's end).
    skip_line_open: bool,
}

const BOM: &[u8] = "\u{FEFF}".as_bytes();

impl SseParser {
    pub fn new(limits: SseLimits) -> SseParser {
        SseParser {
            limits,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            bom_seen: 0,
            event: None,
            id: None,
            data: String::new(),
            has_data: false,
            event_bytes: 0,
            skipping: false,
            skip_line_open: false,
        }
    }

    /// Consumes bytes from the front of `input` until one event is complete
    /// (returned, `input` left at the byte after it) or `input` is used up
    /// (`Ok(None)`). An error refuses the current event: feed the parser
    /// the rest of `input` again and it skips what is left of that event.
    pub fn next_event(&mut self, input: &mut &[u8]) -> Result<Option<SseEvent>, SseError> {
        while !input.is_empty() {
            if self.skipping {
                self.skip(input);
                continue;
            }
            if self.at_start {
                if let Some(rest) = self.skip_bom(input) {
                    *input = rest;
                    continue;
                }
            }
            if self.after_cr {
                self.after_cr = false;
                if input[0] == b'\n' {
                    *input = &input[1..];
                    continue;
                }
            }
            let end = input.iter().position(|b| *b == b'\n' || *b == b'\r');
            let take = end.unwrap_or(input.len());
            // The bound is checked before the bytes are copied.
            if self.line.len() + take > self.limits.max_line {
                self.refuse_event(true);
                return Err(SseError::LineTooLong {
                    limit: self.limits.max_line,
                });
            }
            let needed = self.line.len() + take;
            if needed > self.line.capacity() {
                let grown = needed
                    .max(2 * self.line.capacity())
                    .min(self.limits.max_line);
                self.line.reserve_exact(grown - self.line.len());
            }
            self.line.extend_from_slice(&input[..take]);
            let Some(end) = end else {
                *input = &[];
                return Ok(None);
            };
            self.after_cr = input[end] == b'\r';
            *input = &input[end + 1..];
            match self.end_line() {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(e) => {
                    self.refuse_event(false);
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// Drops the current event and skips the rest of it; `mid_line` when
    /// the refusal came inside a line.
    fn refuse_event(&mut self, mid_line: bool) {
        self.line.clear();
        self.event = None;
        self.id = None;
        self.data.clear();
        self.has_data = false;
        self.event_bytes = 0;
        self.skipping = true;
        self.skip_line_open = mid_line;
    }

    /// Skips bytes of a refused event, up to and including the blank line
    /// that ends it; nothing is kept.
    fn skip(&mut self, input: &mut &[u8]) {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    if !self.skip_line_open {
                        self.skipping = false;
                        return;
                    }
                    self.skip_line_open = false;
                }
                _ => self.skip_line_open = true,
            }
        }
    }

    /// While at the start of the stream: eats the bytes of a BOM. Returns
    /// the rest of `input` when it did, `None` when the stream has no BOM.
    fn skip_bom<'a>(&mut self, input: &'a [u8]) -> Option<&'a [u8]> {
        let want = &BOM[self.bom_seen..];
        let n = want.len().min(input.len());
        if input[..n] == want[..n] {
            self.bom_seen += n;
            if self.bom_seen == BOM.len() {
                self.at_start = false;
            }
            return Some(&input[n..]);
        }
        self.at_start = false;
        if self.bom_seen > 0 {
            // A partial BOM is ordinary line content.
            self.line.extend_from_slice(&BOM[..self.bom_seen]);
        }
        None
    }

    fn end_line(&mut self) -> Result<Option<SseEvent>, SseError> {
        self.at_start = false;
        // The line's buffer is kept for the next line.
        let mut line = std::mem::take(&mut self.line);
        let result = self.field(&line);
        line.clear();
        self.line = line;
        result
    }

    fn field(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None); // a comment, e.g. `: ping`
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => {
                self.charge(value.len(), self.event.as_ref().map_or(0, String::len))?;
                self.event = Some(value.into_owned());
            }
            b"data" => {
                self.charge(value.len() + usize::from(self.has_data), 0)?;
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => {
                self.charge(value.len(), self.id.as_ref().map_or(0, String::len))?;
                self.id = Some(value.into_owned());
            }
            _ => {} // `retry` and unknown fields
        }
        Ok(None)
    }

    /// Counts `add` more bytes for the current event, of which `replaced`
    /// are released (a field given twice); refuses past the bound.
    fn charge(&mut self, add: usize, replaced: usize) -> Result<(), SseError> {
        let total = self.event_bytes - replaced + add;
        if total > self.limits.max_event {
            return Err(SseError::EventTooLarge {
                limit: self.limits.max_event,
            });
        }
        self.event_bytes = total;
        Ok(())
    }

    /// A blank line: the event so far, if it had data; fields reset.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let id = self.id.take();
        let data = std::mem::take(&mut self.data);
        let has_data = std::mem::replace(&mut self.has_data, false);
        self.event_bytes = 0;
        has_data.then(|| SseEvent {
            event: event.unwrap_or_else(|| "message".into()),
            id,
            data,
        })
    }

    /// Bytes held for the current line (for tests of the bound).
    pub fn buffered(&self) -> usize {
        self.line.capacity()
    }
}

/// The fuzzing entry point: feeds `data` in chunks whose sizes come from the
/// input itself, and checks what the parser promises: no panic, no line or
/// event over its bound, and the same events whatever the chunking.
pub fn fuzz_parse(data: &[u8]) {
    let limits = SseLimits {
        max_line: 64,
        max_event: 128,
    };
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let whole = collect(limits, body, body.len().max(1));
    let chunked = collect(limits, body, usize::from(split % 16) + 1);
    assert_eq!(whole, chunked, "events depend on chunking");
}

/// Every event and refusal of `body` fed in pieces of `chunk` bytes.
fn collect(limits: SseLimits, body: &[u8], chunk: usize) -> Vec<Result<SseEvent, SseError>> {
    let mut parser = SseParser::new(limits);
    let mut out = Vec::new();
    for mut piece in body.chunks(chunk) {
        loop {
            match parser.next_event(&mut piece) {
                Ok(None) => break,
                Ok(Some(ev)) => {
                    let size = ev.data.len() + ev.id.as_ref().map_or(0, String::len);
                    assert!(size <= limits.max_event, "event over its bound");
                    assert!(
                        ev.event.len() <= limits.max_event.max(7),
                        "event over its bound"
                    );
                    out.push(Ok(ev));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        assert!(parser.buffered() <= limits.max_line, "line over its bound");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SseLimits = SseLimits {
        max_line: 32,
        max_event: 48,
    };

    fn all(parser: &mut SseParser, mut input: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        while let Some(ev) = parser.next_event(&mut input)? {
            out.push(ev);
        }
        Ok(out)
    }

    /// Events and refusals, feeding on after each refusal.
    fn each(parser: &mut SseParser, mut input: &[u8]) -> Vec<Result<SseEvent, SseError>> {
        let mut out = Vec::new();
        loop {
            match parser.next_event(&mut input) {
                Ok(None) => return out,
                Ok(Some(ev)) => out.push(Ok(ev)),
                Err(e) => out.push(Err(e)),
            }
        }
    }

    /// A refused event is skipped to its blank line, nothing of it kept;
    /// the events before and after it come through.
    #[test]
    fn the_event_after_an_oversized_one_comes_through() {
        let long_line = format!("id: 2\ndata: {}\nid: 9\n\n", "x".repeat(100));
        let big_event = "data: 0123456789012345678901\n".repeat(3) + "id: 8\n\n";
        for (refused, err) in [
            (long_line, SseError::LineTooLong { limit: 32 }),
            (big_event, SseError::EventTooLarge { limit: 48 }),
        ] {
            for ending in ["\n", "\r\n", "\r"] {
                let stream =
                    format!("id: 1\ndata: a\n\n{refused}id: 3\ndata: b\n\n").replace('\n', ending);
                let mut p = SseParser::new(LIMITS);
                assert_eq!(
                    each(&mut p, stream.as_bytes()),
                    vec![
                        Ok(ev("message", Some("1"), "a")),
                        Err(err),
                        Ok(ev("message", Some("3"), "b")),
                    ],
                    "{stream:?}"
                );
                assert!(p.buffered() <= 32);
                // The same whatever the chunking.
                for chunk in 1..8 {
                    assert_eq!(
                        collect(LIMITS, stream.as_bytes(), chunk),
                        collect(LIMITS, stream.as_bytes(), stream.len()),
                        "chunks of {chunk}"
                    );
                }
            }
        }
    }

    fn ev(event: &str, id: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            id: id.map(String::from),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_line_endings() {
        let mut p = SseParser::new(LIMITS);
        let got = all(
            &mut p,
            b"\xEF\xBB\xBF: ping\n\nid: 7\nevent: command\ndata: {\"a\":1}\n\n\
              data:x\r\ndata: y\r\rretry: 5\nid\n: ping\n\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ev("command", Some("7"), "{\"a\":1}"),
                ev("message", None, "x\ny"),
            ]
        );
    }

    #[test]
    fn events_split_across_chunks_at_every_byte() {
        let stream: &[u8] = b"id: 12\r\nevent: command\r\ndata: abc\r\n\r\n: ping\r\n\r\n";
        for cut in 0..stream.len() {
            let mut p = SseParser::new(LIMITS);
            let mut got = all(&mut p, &stream[..cut]).unwrap();
            got.extend(all(&mut p, &stream[cut..]).unwrap());
            assert_eq!(got, vec![ev("command", Some("12"), "abc")], "cut at {cut}");
        }
    }

    #[test]
    fn an_oversized_line_is_refused_without_being_buffered() {
        let mut p = SseParser::new(LIMITS);
        let huge = vec![b'x'; 1 << 20];
        assert_eq!(all(&mut p, &huge), Err(SseError::LineTooLong { limit: 32 }));
        assert_eq!(p.buffered(), 0, "nothing of the line was copied");
        // Also when the line grows over several chunks.
        let mut p = SseParser::new(LIMITS);
        assert_eq!(all(&mut p, b"data: 0123456789"), Ok(vec![]));
        assert_eq!(
            all(&mut p, b"0123456789012345678901234567890123456789"),
            Err(SseError::LineTooLong { limit: 32 })
        );
        assert!(p.buffered() <= 32);
        // A line of exactly the bound is fine.
        let mut p = SseParser::new(LIMITS);
        let line = format!("data: {}\n\n", "y".repeat(26));
        assert_eq!(all(&mut p, line.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn an_oversized_event_is_refused_before_it_grows() {
        let mut p = SseParser::new(LIMITS);
        let many = "data: 0123456789012345678901\n".repeat(3);
        assert_eq!(
            all(&mut p, many.as_bytes()),
            Err(SseError::EventTooLarge { limit: 48 })
        );
        assert!(p.data.len() <= 48);
        // Repeating a field replaces it, it does not add up.
        let mut p = SseParser::new(LIMITS);
        let ids = "id: 0123456789012345678901\n".repeat(5) + "data: x\n\n";
        assert_eq!(all(&mut p, ids.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn fuzz_entry_on_samples() {
        for sample in [
            &b""[..],
            b"\x03data: a\n\n",
            b"\x00\xEF\xBB",
            b"\x07\r\r\n\n:\nid:\0\ndata\n\n",
        ] {
            fuzz_parse(sample);
        }
    }
}
