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
}

/// A running proxy. Dropping it stops accepting.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<watch::Sender<LinkState>>,
    task: JoinHandle<()>,
    sent: Option<Arc<Mutex<Vec<u8>>>>,
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
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut rx = st.subscribe();
                let tee = tee.clone();
                tokio::spawn(async move {
                    let now = *rx.borrow_and_update();
                    match now {
                        LinkState::Up => forward(client, upstream, rx, tee).await,
                        LinkState::Refuse => drop(client),
                        LinkState::Blackhole => {
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
        })
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

/// Copies `from` to `to`, appending every byte to `tee`.
async fn copy_tee(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    tee: &Mutex<Vec<u8>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Ok(mut t) = tee.lock() {
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
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let pipe = async {
        match &tee {
            None => {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
            Some(tee) => {
                let (cr, mut cw) = client.split();
                let (mut sr, sw) = server.split();
                tokio::join!(copy_tee(cr, sw, tee), async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
            }
        }
    };
    tokio::select! {
        _ = pipe => {}
        _ = async {
            loop {
                if rx.changed().await.is_err() || *rx.borrow() != LinkState::Up {
                    break;
                }
            }
        } => {
            // The link went down: drop both ends so neither side can finish
            // what it was sending.
            let _ = client.shutdown().await;
        }
    }
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
}
