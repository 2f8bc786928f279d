//! A loopback TCP proxy that can cut the network between an agent and the
//! simulator: the demo's "outage" and the end-to-end tests' link failures are
//! real broken connections, not a flag inside the agent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Forward both ways.
    Up,
    /// Cut every open connection and refuse new ones at once (cable pulled
    /// at the router: connection refused / reset).
    Refuse,
    /// Cut every open connection; accept new ones but never answer (a
    /// black hole: the client's own timeouts fire).
    Blackhole,
    /// A dead uplink: open connections stay open but nothing more gets
    /// through either way (what a client sends never reaches the server);
    /// new ones are accepted and never answered. Leaving this state cuts
    /// the stalled connections.
    Stall,
}

/// A running proxy. Dropping it stops accepting.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<watch::Sender<LinkState>>,
    task: JoinHandle<()>,
    sent: Option<Arc<Mutex<Vec<u8>>>>,
    /// How many open connections are held stalled right now.
    stalled: Arc<watch::Sender<usize>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        FaultProxy::start_with(upstream, false).await
    }

    /// Like [`FaultProxy::start`]; with `record`, every byte the client
    /// sends (requests and their bodies) is kept, see [`FaultProxy::sent`].
    pub async fn start_with(upstream: SocketAddr, record: bool) -> std::io::Result<FaultProxy> {
        let sent = record.then(|| Arc::new(Mutex::new(Vec::new())));
        let tee = sent.clone();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, _) = watch::channel(LinkState::Up);
        let state = Arc::new(tx);
        let st = state.clone();
        let stalled = Arc::new(watch::Sender::new(0usize));
        let held = stalled.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut rx = st.subscribe();
                let tee = tee.clone();
                let held = held.clone();
                tokio::spawn(async move {
                    let now = *rx.borrow_and_update();
                    match now {
                        LinkState::Up => forward(client, upstream, rx, tee, &held).await,
                        LinkState::Refuse => drop(client),
                        LinkState::Blackhole | LinkState::Stall => {
                            // Hold the socket silently until the link changes.
                            let _ = rx.changed().await;
                            drop(client);
                        }
                    }
                });
            }
        });
        Ok(FaultProxy {
            addr,
            state,
            task,
            sent,
            stalled,
        })
    }

    /// Resolves once at least `n` open connections are held stalled
    /// ([`LinkState::Stall`]): from then on nothing they carry gets
    /// through.
    pub async fn until_stalled(&self, n: usize) {
        let mut rx = self.stalled.subscribe();
        let _ = rx.wait_for(|held| *held >= n).await;
    }

    /// Everything clients sent through the proxy so far (empty unless
    /// started with `record`).
    pub fn sent(&self) -> Vec<u8> {
        self.sent
            .as_ref()
            .map(|s| s.lock().map(|g| g.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// The address agents should use as their backend.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, state: LinkState) {
        self.state.send_replace(state);
    }

    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` while the link is up, appending what it forwards
/// to `tee`. Bytes read once the link is no longer up are lost on the way:
/// the copy then waits for the caller to cut the connection.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    gate: &watch::Receiver<LinkState>,
    tee: Option<&Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if *gate.borrow() != LinkState::Up {
            std::future::pending::<()>().await;
        }
        if let Some(Ok(mut t)) = tee.map(Mutex::lock) {
            t.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut rx: watch::Receiver<LinkState>,
    tee: Option<Arc<Mutex<Vec<u8>>>>,
    held: &watch::Sender<usize>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let gate = rx.clone();
    let stalled = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let pipe = async {
            tokio::join!(
                pump(cr, sw, &gate, tee.as_deref()),
                pump(sr, cw, &gate, None)
            )
        };
        tokio::select! {
            _ = pipe => return,
            stalled = async {
                loop {
                    if rx.changed().await.is_err() {
                        return false;
                    }
                    match *rx.borrow() {
                        LinkState::Up => {}
                        LinkState::Stall => return true,
                        LinkState::Refuse | LinkState::Blackhole => return false,
                    }
                }
            } => stalled,
        }
    };
    if stalled {
        // Nothing is copied any more; both sockets stay open and silent
        // until the link changes again.
        held.send_modify(|n| *n += 1);
        let _ = rx.changed().await;
        held.send_modify(|n| *n -= 1);
    }
    // The link went down: drop both ends so neither side can finish what it
    // was sending.
    let _ = client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn forwards_then_cuts_then_recovers() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set(LinkState::Refuse);
        // The open connection is cut: reading ends (EOF or reset).
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest).await;
        assert!(r.is_err() || rest.is_empty());
        // A new connection is closed straight away.
        let mut c2 = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut one = [0u8; 1];
        let n = c2.read(&mut one).await.unwrap_or(0);
        assert_eq!(n, 0);

        proxy.set(LinkState::Up);
        let mut c3 = TcpStream::connect(proxy.addr()).await.unwrap();
        c3.write_all(b"back").await.unwrap();
        c3.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");
    }

    #[tokio::test]
    async fn a_stalled_link_keeps_connections_open_and_delivers_nothing() {
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let server = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let upstream = server.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = server.accept().await {
                let seen_tx = seen_tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let _ = seen_tx.send(buf[..n].to_vec());
                        if s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = FaultProxy::start(upstream).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(seen.recv().await.unwrap(), b"ping");

        proxy.set(LinkState::Stall);
        proxy.until_stalled(1).await;
        c.write_all(b"lost").await.unwrap();
        // Back up: the stalled connection is cut, and the server never saw
        // what was sent during the stall.
        proxy.set(LinkState::Up);
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest).await;
        assert!(r.is_err() || rest.is_empty(), "{rest:?}");
        let mut c2 = TcpStream::connect(proxy.addr()).await.unwrap();
        c2.write_all(b"next").await.unwrap();
        c2.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"next");
        assert_eq!(
            seen.recv().await.unwrap(),
            b"next",
            "bytes of the stall arrived"
        );
    }
}
