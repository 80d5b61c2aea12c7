//! The control protocol between `ringsipctl` and the daemon.
//!
//! Transport: a Unix stream socket (mode 0600: only the daemon's user may talk to it), or a
//! TCP listener that requires a token. One request per connection:
//!
//! ```text
//! client → daemon   frame: JSON Request            (frame = u32 big-endian length + bytes)
//! client → daemon   frame: snapshot bytes           (only when the request is Push)
//! daemon → client   frame: JSON Response
//! ```
//!
//! A frame is at most [`MAX_FRAME`] bytes (a snapshot of ten million prefixes fits). The
//! daemon answers every well-formed request with a [`Response`]; a malformed one gets
//! `{"ok":false,"kind":"bad_request",...}`. Both sides time out idle connections.

use std::io::{self, Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Largest frame (1 GiB).
pub const MAX_FRAME: usize = 1 << 30;
/// How long either side waits for the other's next bytes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A request. Every request may carry `token` (required on the TCP listener).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The shared secret of the TCP listener; ignored on the Unix socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// What to do.
    #[serde(flatten)]
    pub command: Command,
}

/// The commands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Version, hash, uptime, shards and their load.
    Status,
    /// Install a snapshot; its bytes follow in the next frame.
    Push {
        /// Where it was built from (for the log and `status`).
        source: String,
        /// Length of the snapshot frame that follows.
        bytes: u64,
    },
    /// Go back to the snapshot that ran before the current one.
    Rollback,
    /// Every counter and gauge (the Prometheus series).
    Stats,
    /// Dispatcher sets and their destinations' states.
    DispatcherList,
    /// Change a destination's state.
    DispatcherSetState {
        /// Set id.
        set: u32,
        /// Destination URI as configured, or its `IP:port`.
        destination: String,
        /// `disabled`, `enabled`, `active` or `inactive`.
        state: String,
    },
    /// One htable entry.
    HtableGet {
        /// Table name.
        table: String,
        /// Key.
        key: String,
    },
    /// Write an htable entry.
    HtableSet {
        /// Table name.
        table: String,
        /// Key.
        key: String,
        /// Value: an integer or a string.
        value: Value,
        /// Lifetime in seconds (default: the table's autoexpire).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<u64>,
    },
    /// Remove an htable entry.
    HtableDelete {
        /// Table name.
        table: String,
        /// Key.
        key: String,
    },
    /// Every live entry of a table (or the sizes of every table when `table` is absent).
    HtableDump {
        /// Table name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
    },
    /// Remove every entry of a table.
    HtableFlush {
        /// Table name.
        table: String,
    },
    /// Look a key up in a prefix tree.
    MtreeMatch {
        /// Tree name.
        tree: String,
        /// Key (a number).
        key: String,
        /// Every matching prefix, longest first, instead of the longest only.
        #[serde(default)]
        all: bool,
    },
    /// The trees: name, type, prefixes, nodes, memory.
    MtreeSummary,
    /// The flood detector's busiest sources (`[pike]`).
    PikeTop {
        /// How many (default 20).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
}

/// An htable value on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// Why a request failed, for scripts (`ringsipctl` maps each to an exit status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or names something invalid.
    BadRequest,
    /// Missing or wrong token.
    Unauthorized,
    /// The snapshot was refused (damaged, inconsistent, stale version); the running one
    /// keeps serving.
    Refused,
    /// The table, tree, set, destination or key does not exist (or nothing matched).
    NotFound,
    /// Something failed inside the daemon.
    Internal,
    /// A kind this client does not know (sent by a newer daemon): treated as a failure.
    #[serde(other)]
    Unknown,
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// On failure: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// On failure: a message for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On success: the result (shape depends on the command; see docs/management.md).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub result: serde_json::Value,
}

impl Response {
    /// A success.
    pub fn ok(result: serde_json::Value) -> Response {
        Response { ok: true, kind: None, error: None, result }
    }

    /// A failure.
    pub fn err(kind: ErrorKind, error: impl Into<String>) -> Response {
        Response { ok: false, kind: Some(kind), error: Some(error.into()), result: serde_json::Value::Null }
    }
}

/// Write one frame.
pub fn write_frame(w: &mut (impl Write + ?Sized), bytes: &[u8]) -> io::Result<()> {
    if bytes.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes is too large", bytes.len()),
        ));
    }
    w.write_all(&(bytes.len() as u32).to_be_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

/// Read one frame of at most `max` bytes.
pub fn read_frame(r: &mut (impl Read + ?Sized), max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max.min(MAX_FRAME) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {max}-byte limit"),
        ));
    }
    let mut buf = Vec::new();
    // grow as bytes arrive: a lying length prefix does not make us allocate a gigabyte
    r.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame cut short: {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Largest JSON request frame.
pub const MAX_REQUEST: usize = 1 << 20;

/// Where a client connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket path.
    Unix(std::path::PathBuf),
    /// A TCP address (with a token).
    Tcp(std::net::SocketAddr),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Why a client call failed before a response arrived.
#[derive(Debug)]
pub enum ClientError {
    /// Could not connect.
    Connect(Endpoint, io::Error),
    /// The connection failed midway, or the answer was not a response.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e, err) => write!(
                f,
                "cannot connect to the control socket {e}: {err} (is ringsip running with a control socket there?)"
            ),
            ClientError::Protocol(m) => write!(f, "control protocol error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Send one request (and the snapshot bytes of a push) and read the response.
pub fn call(endpoint: &Endpoint, request: &Request, payload: Option<&[u8]>) -> Result<Response, ClientError> {
    let json = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let proto = |e: io::Error| ClientError::Protocol(e.to_string());
    let exchange = |s: &mut dyn ReadWrite| -> Result<Response, ClientError> {
        write_frame(s, &json).map_err(proto)?;
        if let Some(p) = payload {
            write_frame(s, p).map_err(proto)?;
        }
        let answer = read_frame(s, MAX_FRAME).map_err(proto)?;
        serde_json::from_slice(&answer).map_err(|e| ClientError::Protocol(format!("bad response: {e}")))
    };
    match endpoint {
        Endpoint::Unix(p) => {
            let mut s =
                std::os::unix::net::UnixStream::connect(p).map_err(|e| ClientError::Connect(endpoint.clone(), e))?;
            let _ = s.set_read_timeout(Some(IO_TIMEOUT));
            let _ = s.set_write_timeout(Some(IO_TIMEOUT));
            exchange(&mut s)
        }
        Endpoint::Tcp(a) => {
            let mut s = std::net::TcpStream::connect_timeout(a, Duration::from_secs(5))
                .map_err(|e| ClientError::Connect(endpoint.clone(), e))?;
            let _ = s.set_read_timeout(Some(IO_TIMEOUT));
            let _ = s.set_write_timeout(Some(IO_TIMEOUT));
            exchange(&mut s)
        }
    }
}

/// A byte stream.
pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_json_shape() {
        let r = Request {
            token: None,
            command: Command::HtableSet {
                table: "ipban".into(),
                key: "192.0.2.1".into(),
                value: Value::Int(1),
                expires: Some(300),
            },
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"cmd":"htable_set","table":"ipban","key":"192.0.2.1","value":1,"expires":300}"#);
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r);
        let s: Request = serde_json::from_str(r#"{"cmd":"status","token":"t"}"#).unwrap();
        assert_eq!(s, Request { token: Some("t".into()), command: Command::Status });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
    }

    #[test]
    fn frames_round_trip_and_lying_lengths_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        assert_eq!(read_frame(&mut &buf[..], 100).unwrap(), b"hello");
        assert!(read_frame(&mut &buf[..], 3).is_err(), "over the limit");
        let mut short = buf.clone();
        short.truncate(6);
        assert!(read_frame(&mut &short[..], 100).is_err(), "cut short");
        let huge = [0xffu8, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &huge[..], MAX_FRAME).is_err());
    }
}
