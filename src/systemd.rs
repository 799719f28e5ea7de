//! systemd integration without a library: `sd_notify` is one datagram to the socket named in
//! `NOTIFY_SOCKET` (a path, or an abstract name starting with `@`). The daemon says `READY=1` once it
//! listens, `STOPPING=1` when it begins to stop, and, when the unit sets `WatchdogSec=`
//! (`WATCHDOG_USEC`), `WATCHDOG=1` at half that interval for as long as the store answers a read:
//! a daemon whose store hangs is restarted by systemd. Without `NOTIFY_SOCKET` all of it does
//! nothing (the daemon run by hand, in tests, in containers).

use std::time::Duration;

/// Sends `state` (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=…`) to systemd; false when not
/// run by systemd or the datagram could not be sent (logged).
pub fn notify(state: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
            return false;
        };
        let sent = (|| -> std::io::Result<()> {
            use std::os::unix::net::{SocketAddr, UnixDatagram};
            let s = socket.to_string_lossy();
            let addr = match s.strip_prefix('@') {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    SocketAddr::from_abstract_name(name.as_bytes())?
                }
                None => SocketAddr::from_pathname(s.as_ref())?,
            };
            UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
            Ok(())
        })();
        if let Err(e) = &sent {
            tracing::warn!(error = %e, state, "could not notify systemd");
        }
        sent.is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = state;
        false
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`, for this process), halved: how often
/// to say `WATCHDOG=1`.
pub fn watchdog_every() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
