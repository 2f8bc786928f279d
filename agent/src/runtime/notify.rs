//! systemd notifications (`Type=notify`, watchdog). Every call is a no-op
//! when `NOTIFY_SOCKET` is unset (not under systemd, tests).
//!
//! Sends never block: they run on the core loop, and a notify socket whose
//! reader is slow or gone (the kernel queues only `net.unix.max_dgram_qlen`
//! datagrams, 10 by default) must not stall payments. A notification that
//! would block is dropped; a missed `WATCHDOG=1` is repeated at the next tick.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The watchdog period to feed at: half of `WATCHDOG_USEC`, or `None`
/// when systemd runs no watchdog for us. As `sd_watchdog_enabled(3)`:
/// `WATCHDOG_PID`, when set, must be this process.
pub fn watchdog_period() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    watchdog_period_from(
        &usec,
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_period`] on given values.
pub fn watchdog_period_from(usec: &str, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// Sends `state` to `$NOTIFY_SOCKET` without blocking. `Ok(false)` when
/// there is no socket (not under systemd).
fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    send_to(path.as_bytes(), state)?;
    Ok(true)
}

/// [`notify`] to a given socket: a path, or `@name` for an abstract socket.
fn send_to(socket: &[u8], state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    match socket.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            sock.send_to(state.as_bytes(), std::ffi::OsStr::from_bytes(socket))?;
        }
    }
    Ok(())
}

fn report(what: &str, r: io::Result<bool>) {
    match r {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            tracing::debug!("systemd is not reading notifications; {what} dropped")
        }
        Err(e) => tracing::warn!(error = %e, "cannot send {what} to systemd"),
    }
}

/// `READY=1`: the first screen after booting is up.
pub fn ready() {
    tracing::info!("ready: first screen shown");
    report("READY=1", notify("READY=1"));
}

/// `WATCHDOG=1`, sent from the core loop (a stuck loop stops feeding it).
pub fn watchdog() {
    report("WATCHDOG=1", notify("WATCHDOG=1"));
}

/// `STOPPING=1`.
pub fn stopping() {
    report("STOPPING=1", notify("STOPPING=1"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_notify_socket_never_blocks_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let reader = UnixDatagram::bind(&path).unwrap();
        let socket = path.as_os_str().as_bytes();
        // Nobody reads: the queue fills, then sends fail at once with
        // WouldBlock instead of waiting.
        let mut would_block = false;
        for _ in 0..10_000 {
            match send_to(socket, "WATCHDOG=1") {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    would_block = true;
                    break;
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert!(would_block, "the queue never filled");
        let mut buf = [0u8; 64];
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn abstract_sockets_are_addressed_by_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("pos-agent-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let reader = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(format!("@{name}").as_bytes(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn watchdog_period_is_half_the_interval_for_this_process_only() {
        assert_eq!(
            watchdog_period_from("30000000", None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_period_from("200000", Some("7"), 7),
            Some(Duration::from_millis(100))
        );
        assert_eq!(watchdog_period_from("200000", Some("8"), 7), None);
        assert_eq!(watchdog_period_from("0", None, 7), None);
        assert_eq!(watchdog_period_from("soon", None, 7), None);
    }
}
