//! The command stream (`GET /v1/terminals/:tid/commands/stream`): Server-Sent
//! Events with `id:` = the command's sequence, `: ping` comments, an end
//! after `stream_max`, and resume from `Last-Event-ID`.
//!
//! Pings come on a fixed schedule, every `ping_interval` from the opening
//! ping (SPEC 4.3): commands do not reset it, so a terminal sees a ping at
//! least every interval whatever else the stream carries.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use proto::TerminalId;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::Sim;

/// Keeps the terminal counted as connected while its stream is open.
struct StreamGuard {
    sim: Arc<Sim>,
    terminal: TerminalId,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let last = {
            let mut g = self.sim.lock();
            match g.live.terminals.get_mut(&self.terminal) {
                Some(l) => {
                    l.streams = l.streams.saturating_sub(1);
                    l.streams == 0
                }
                None => false,
            }
        };
        if last {
            self.sim.schedule_offline_check(self.terminal.clone());
        }
        self.sim.touch();
    }
}

struct StreamState {
    sim: Arc<Sim>,
    terminal: TerminalId,
    last: Option<u64>,
    commands: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    deadline: Instant,
    pings: Interval,
    queue: VecDeque<Bytes>,
    _guard: StreamGuard,
}

const PING: &[u8] = b": ping\n\n";

/// Ticks every `every` from now on (the opening ping is sent at once); a
/// tick missed while the stream was busy is sent late, not in a burst.
fn ping_schedule(every: std::time::Duration) -> Interval {
    let mut pings = tokio::time::interval_at(Instant::now() + every, every);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    pings
}

pub fn open(sim: Arc<Sim>, terminal: TerminalId, after: Option<u64>) -> Response {
    let commands = {
        let mut g = sim.lock();
        let now = proto::wire::Timestamp::now();
        g.state.seen(&terminal, now);
        let l = g.live.entry(&terminal);
        l.streams += 1;
        l.online = true;
        g.live.command_receiver(&terminal)
    };
    sim.touch();
    let state = StreamState {
        sim: Arc::clone(&sim),
        terminal: terminal.clone(),
        last: after,
        commands,
        shutdown: sim.shutdown.clone(),
        deadline: Instant::now() + sim.cfg.stream_max,
        pings: ping_schedule(sim.cfg.ping_interval),
        queue: VecDeque::from([Bytes::from_static(PING)]),
        _guard: StreamGuard {
            sim: Arc::clone(&sim),
            terminal,
        },
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(b) = s.queue.pop_front() {
                return Some((Ok::<Bytes, Infallible>(b), s));
            }
            s.commands.borrow_and_update();
            let pending = s.sim.lock().state.commands_for(&s.terminal, s.last);
            for (seq, cmd) in pending {
                s.last = Some(seq);
                match serde_json::to_string(&cmd) {
                    Ok(json) => s.queue.push_back(Bytes::from(format!(
                        "id: {seq}\nevent: command\ndata: {json}\n\n"
                    ))),
                    Err(e) => tracing::error!(error = %e, "command cannot be serialized"),
                }
            }
            if !s.queue.is_empty() {
                continue;
            }
            tokio::select! {
                changed = s.commands.changed() => {
                    if changed.is_err() {
                        return None; // state was reset
                    }
                }
                _ = s.pings.tick() => s.queue.push_back(Bytes::from_static(PING)),
                _ = tokio::time::sleep_until(s.deadline) => return None,
                _ = crate::stopped(&mut s.shutdown) => return None,
            }
        }
    });
    event_stream(Body::from_stream(stream))
}

/// A 200 `text/event-stream` answer with `body`, not cached and not
/// buffered by a proxy (the command stream and the dashboard's events).
pub(crate) fn event_stream(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
