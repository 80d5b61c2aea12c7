//! The control listeners: a Unix socket (mode 0600) and, optionally, TCP with a token.
//! Each connection carries one request and gets its own thread (at most
//! [`MAX_CONNECTIONS`] at once); the shards never wait for any of this.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::control::{self, Command, ErrorKind, IO_TIMEOUT, MAX_REQUEST, Request, Response};
use crate::plane::Plane;

/// Connections handled at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 16;

/// Bind the Unix control socket at `path` with mode 0600 and serve it until `stop`.
///
/// The socket is bound under a temporary name, given mode 0600, and renamed into place,
/// so it is never reachable at `path` with looser permissions. A stale socket left by a
/// crashed daemon is replaced; a live one (another daemon answers) is an error.
pub fn serve_unix(path: &Path, plane: Arc<Plane>, stop: Arc<AtomicBool>) -> io::Result<()> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use: another ringsip answers there", path.display()),
            ));
        }
        let meta = std::fs::symlink_metadata(path)?;
        if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; refusing to replace it", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let tmp = tmp_name(path);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path)?;
    info!(path = %path.display(), "control socket listening (mode 0600)");
    let owned = path.to_path_buf();
    std::thread::Builder::new().name("ringsip-control".into()).spawn(move || {
        let active = Arc::new(AtomicUsize::new(0));
        // blocking accept: `wake` connects once to let the loop see `stop`
        while !stop.load(Ordering::Acquire) {
            match listener.accept() {
                Ok(_) if stop.load(Ordering::Acquire) => break,
                Ok((s, _)) => spawn(s, plane.clone(), None, &active),
                Err(e) => {
                    warn!(error = %e, "control socket accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        let _ = std::fs::remove_file(&owned);
    })?;
    Ok(())
}

/// Serve the control protocol on TCP; every request must carry `token`.
pub fn serve_tcp(
    addr: std::net::SocketAddr,
    token: String,
    plane: Arc<Plane>,
    stop: Arc<AtomicBool>,
) -> io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    info!(%local, "control TCP listener (token required)");
    let token: Arc<str> = token.into();
    std::thread::Builder::new().name("ringsip-control-tcp".into()).spawn(move || {
        let active = Arc::new(AtomicUsize::new(0));
        while !stop.load(Ordering::Acquire) {
            match listener.accept() {
                Ok(_) if stop.load(Ordering::Acquire) => break,
                Ok((s, peer)) => {
                    debug!(%peer, "control connection");
                    spawn(s, plane.clone(), Some(token.clone()), &active)
                }
                Err(e) => {
                    warn!(error = %e, "control TCP accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    })?;
    Ok(local)
}

/// Wake the listeners after `stop` was set, so their threads end (and the Unix socket file
/// is removed).
pub fn wake(unix: Option<&Path>, tcp: Option<std::net::SocketAddr>) {
    if let Some(p) = unix {
        let _ = UnixStream::connect(p);
    }
    if let Some(a) = tcp {
        let _ = std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200));
    }
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// A stream the listeners can serve.
trait Conn: Read + Write + Send + 'static {
    fn timeouts(&self, t: Duration) -> io::Result<()>;
    fn blocking(&self) -> io::Result<()>;
}

impl Conn for UnixStream {
    fn timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
    fn blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)
    }
}

impl Conn for std::net::TcpStream {
    fn timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
    fn blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)
    }
}

fn spawn<S: Conn>(s: S, plane: Arc<Plane>, token: Option<Arc<str>>, active: &Arc<AtomicUsize>) {
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::AcqRel);
        let mut s = s;
        let _ = s.blocking();
        let _ = s.timeouts(Duration::from_secs(1));
        let r = Response::err(ErrorKind::Internal, "too many control connections at once; try again");
        let _ = control::write_frame(&mut s, &serde_json::to_vec(&r).unwrap_or_default());
        return;
    }
    let active = active.clone();
    let spawned = std::thread::Builder::new().name("ringsip-ctl-conn".into()).spawn(move || {
        serve_one(s, &plane, token.as_deref());
        active.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start a control connection thread");
    }
}

fn serve_one<S: Conn>(mut s: S, plane: &Plane, token: Option<&str>) {
    // checking a big snapshot takes tens of ms: let the shards on this CPU go first
    if let Err(e) = ringsip_runtime::priority::lower_current_thread() {
        debug!(error = %e, "cannot lower the control thread's priority");
    }
    if s.blocking().and_then(|()| s.timeouts(IO_TIMEOUT)).is_err() {
        return;
    }
    let response = match read_request(&mut s, token) {
        Ok((cmd, payload)) => plane.handle(cmd, payload),
        Err(r) => r,
    };
    let bytes = serde_json::to_vec(&response).unwrap_or_else(|_| br#"{"ok":false,"kind":"internal"}"#.to_vec());
    if let Err(e) = control::write_frame(&mut s, &bytes) {
        debug!(error = %e, "control client went away before the response");
    }
}

fn read_request<S: Conn>(s: &mut S, token: Option<&str>) -> Result<(Command, Option<Vec<u8>>), Response> {
    let frame = control::read_frame(s, MAX_REQUEST)
        .map_err(|e| Response::err(ErrorKind::BadRequest, format!("cannot read the request: {e}")))?;
    let req: Request = serde_json::from_slice(&frame)
        .map_err(|e| Response::err(ErrorKind::BadRequest, format!("not a control request: {e}")))?;
    if let Some(want) = token {
        let ok = req.token.as_deref().is_some_and(|t| constant_time_eq(t.as_bytes(), want.as_bytes()));
        if !ok {
            warn!("control request with a missing or wrong token refused");
            return Err(Response::err(ErrorKind::Unauthorized, "missing or wrong token"));
        }
    }
    let payload = match &req.command {
        Command::Push { bytes, .. } => {
            if *bytes as usize > control::MAX_FRAME {
                return Err(Response::err(ErrorKind::BadRequest, format!("a snapshot of {bytes} bytes is too large")));
            }
            let p = control::read_frame(s, *bytes as usize)
                .map_err(|e| Response::err(ErrorKind::BadRequest, format!("cannot read the snapshot: {e}")))?;
            Some(p)
        }
        _ => None,
    };
    Ok((req.command, payload))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
