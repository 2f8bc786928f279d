//! Reads Server-Sent Events from a response body with the bounded parser
//! ([`proto::sse`]) and a silence timeout.
//!
//! **Liveness.** Every chunk of bytes the transport delivers restarts the
//! silence timer, whatever it holds: a `: ping` comment keeps an idle
//! stream open exactly as a command does. The timer is the only wake-up: no
//! polling.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use proto::sse::{SseEvent, SseLimits, SseParser};

/// Why a stream ended other than by the server closing it.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("no bytes for {0:?}")]
    Silent(Duration),
    #[error("event stream connection broke: {0}")]
    Transport(String),
}

/// The events of one open stream.
pub struct EventReader<S> {
    body: S,
    parser: SseParser,
    /// What is left of the last chunk.
    chunk: Bytes,
    silence: Duration,
}

impl<S, E> EventReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub fn new(body: S, limits: SseLimits, silence: Duration) -> EventReader<S> {
        EventReader {
            body,
            parser: SseParser::new(limits),
            chunk: Bytes::new(),
            silence,
        }
    }

    /// The next event; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, StreamError> {
        loop {
            if !self.chunk.is_empty() {
                let mut rest: &[u8] = &self.chunk;
                let event = self.parser.next_event(&mut rest);
                let used = self.chunk.len() - rest.len();
                let _ = self.chunk.split_to(used);
                match event {
                    Ok(Some(event)) => return Ok(Some(event)),
                    Ok(None) => {}
                    // The parser skips the rest of that event, unbuffered;
                    // the stream goes on with the next one.
                    Err(e) => tracing::warn!(error = %e, "command stream: oversized event skipped"),
                }
                continue;
            }
            match tokio::time::timeout(self.silence, self.body.next()).await {
                Err(_) => return Err(StreamError::Silent(self.silence)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(StreamError::Transport(e.to_string())),
                Ok(Some(Ok(bytes))) => self.chunk = bytes,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::time::Instant;

    const LIMITS: SseLimits = SseLimits {
        max_line: 256,
        max_event: 256,
    };
    const SILENCE: Duration = Duration::from_secs(45);

    /// A server that sends `pings` pings `every` apart, then one command,
    /// then ends the stream (on the paused, virtual clock).
    fn pinging(
        pings: u32,
        every: Duration,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
        Box::pin(futures_util::stream::unfold(0u32, move |n| async move {
            if n > pings {
                return None;
            }
            tokio::time::sleep(every).await;
            let bytes = if n < pings {
                Bytes::from_static(b": ping\n\n")
            } else {
                Bytes::from_static(b"id: 1\nevent: command\ndata: {}\n\n")
            };
            Some((Ok(bytes), n + 1))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_with_pings_stays_open_past_the_silence_timeout() {
        let start = Instant::now();
        let mut reader = EventReader::new(pinging(20, Duration::from_secs(15)), LIMITS, SILENCE);
        let event = reader.next().await.unwrap().unwrap();
        assert_eq!(event.id.as_deref(), Some("1"));
        // 20 pings 15 s apart: 5 minutes without an event, never silent.
        assert!(start.elapsed() >= Duration::from_secs(300));
        assert!(
            reader.next().await.unwrap().is_none(),
            "then the server ends it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_times_out() {
        let start = Instant::now();
        let mut reader = EventReader::new(pinging(1, Duration::from_secs(50)), LIMITS, SILENCE);
        assert!(matches!(reader.next().await, Err(StreamError::Silent(_))));
        assert_eq!(start.elapsed(), SILENCE);
    }

    #[tokio::test]
    async fn an_oversized_line_is_skipped_and_the_stream_goes_on() {
        let mut huge = b"data: ".to_vec();
        huge.extend(vec![b'x'; 1 << 20]);
        huge.extend(b"\n\nid: 5\nevent: command\ndata: next\n\n");
        let body = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from(huge))]);
        let mut reader = EventReader::new(body, LIMITS, SILENCE);
        let ev = reader.next().await.unwrap().expect("the next event");
        assert_eq!((ev.id.as_deref(), ev.data.as_str()), (Some("5"), "next"));
        assert!(reader.parser.buffered() <= 256);
        assert!(matches!(reader.next().await, Ok(None)));
    }
}
