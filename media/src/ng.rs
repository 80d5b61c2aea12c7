//! rtpengine's "ng" control protocol, sans-IO: a UDP datagram `cookie SP dictionary` where
//! the dictionary (bencode) holds `command` and its arguments; the reply is
//! `cookie SP dictionary` with `result` (`ok`, `pong`, `error` with `error-reason`) and the
//! command's data. The cookie is echoed so the client matches replies to requests (and a
//! relay can answer a retransmitted request from a cache).
//!
//! [`Request::parse`] reads what Kamailio's `rtpengine` module and the shared benchmark
//! send for `ping`, `offer`, `answer`, `delete`, `query`, `list` and `statistics`, with the
//! common keys and flags; keys it does not know are ignored, as rtpengine does. [`reply_ok`],
//! [`reply_error`] and [`Reply`] write the answers.

use core::fmt;
use core::net::IpAddr;

use crate::bencode::{self, Doc, Node, Writer};

/// The commands ringsip's media plane answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `ping` → `pong`.
    Ping,
    /// `offer`: an SDP offer to rewrite (allocates the call's ports).
    Offer,
    /// `answer`: the SDP answer to rewrite.
    Answer,
    /// `delete`: end a call (or one leg of it by tags).
    Delete,
    /// `query`: one call's state and counters.
    Query,
    /// `list`: the call-ids of the calls held.
    List,
    /// `statistics`: totals of the relay.
    Statistics,
}

impl Command {
    fn from_bytes(b: &[u8]) -> Option<Command> {
        Some(match b {
            b"ping" => Command::Ping,
            b"offer" => Command::Offer,
            b"answer" => Command::Answer,
            b"delete" => Command::Delete,
            b"query" => Command::Query,
            b"list" => Command::List,
            b"statistics" => Command::Statistics,
            _ => return None,
        })
    }

    /// The command as the protocol spells it.
    pub fn name(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Offer => "offer",
            Command::Answer => "answer",
            Command::Delete => "delete",
            Command::Query => "query",
            Command::List => "list",
            Command::Statistics => "statistics",
        }
    }
}

/// What the ICE key asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ice {
    /// Not given: leave ICE attributes as they are.
    #[default]
    Default,
    /// `ICE=remove`: strip ICE candidates and attributes.
    Remove,
    /// `ICE=force`: replace them with the relay's own.
    Force,
}

/// The flags of a request (from `flags`, `replace`, `ICE` and friends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `replace` has `origin`: rewrite the o= line's address.
    pub replace_origin: bool,
    /// `replace` has `session-connection`: rewrite the session-level c= line.
    pub replace_session_connection: bool,
    /// ICE handling.
    pub ice: Ice,
    /// `symmetric`: latch each side to where its media comes from (the default).
    pub symmetric: bool,
    /// `asymmetric`: send to the SDP's address even if media comes from elsewhere.
    pub asymmetric: bool,
    /// `trust-address`: use the SDP's address, not the signalling source, as the first
    /// guess of where a side is.
    pub trust_address: bool,
    /// `strict-source`: after latching, drop media from any other source.
    pub strict_source: bool,
    /// `port-latching`: latch the port only, keep the address.
    pub port_latching: bool,
    /// `record-call`, `media-handover`, ... : flags ringsip does not act on, counted.
    pub other: u8,
}

/// Why a request is refused (sent back as `error-reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No space between cookie and dictionary.
    NoCookie,
    /// The dictionary is not bencode.
    Bencode(bencode::Error),
    /// The top-level value is not a dictionary.
    NotADictionary,
    /// No `command` key.
    NoCommand,
    /// A command ringsip does not implement.
    UnknownCommand,
    /// A key the command needs is missing.
    Missing(&'static str),
    /// A key has the wrong type or an unreadable value.
    Invalid(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoCookie => f.write_str("no cookie: a request is 'cookie dictionary'"),
            Error::Bencode(e) => write!(f, "{e}"),
            Error::NotADictionary => f.write_str("the message is not a dictionary"),
            Error::NoCommand => f.write_str("no command"),
            Error::UnknownCommand => f.write_str("unknown command"),
            Error::Missing(k) => write!(f, "missing key '{k}'"),
            Error::Invalid(k) => write!(f, "invalid value of '{k}'"),
        }
    }
}

impl std::error::Error for Error {}

/// A parsed request; strings borrow from the datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The cookie, echoed in the reply.
    pub cookie: &'a [u8],
    /// The command.
    pub command: Command,
    /// `call-id` (required by offer, answer, delete, query).
    pub call_id: Option<&'a [u8]>,
    /// `from-tag` (required by offer and answer).
    pub from_tag: Option<&'a [u8]>,
    /// `to-tag` (required by answer).
    pub to_tag: Option<&'a [u8]>,
    /// `via-branch`: tells apart the offers of one call (forking).
    pub via_branch: Option<&'a [u8]>,
    /// `sdp` (required by offer and answer).
    pub sdp: Option<&'a [u8]>,
    /// `received-from`: where the SIP message came from (`["IP4", "1.2.3.4"]`).
    pub received_from: Option<IpAddr>,
    /// `direction`: the two interfaces of the call, caller's side first.
    pub direction: [Option<&'a [u8]>; 2],
    /// `limit` of `list`.
    pub limit: Option<i64>,
    /// The flags.
    pub flags: Flags,
}

impl<'a> Request<'a> {
    /// A request built in process (the SIP route's anchoring uses the same operations as the
    /// ng port): no cookie, no keys, default flags.
    pub fn new(command: Command) -> Request<'a> {
        Request {
            cookie: b"",
            command,
            call_id: None,
            from_tag: None,
            to_tag: None,
            via_branch: None,
            sdp: None,
            received_from: None,
            direction: [None, None],
            limit: None,
            flags: Flags::default(),
        }
    }

    /// Read a request datagram.
    pub fn parse(datagram: &'a [u8]) -> Result<Request<'a>, Error> {
        let sp = datagram.iter().position(|&b| b == b' ').ok_or(Error::NoCookie)?;
        let (cookie, body) = (&datagram[..sp], &datagram[sp + 1..]);
        if cookie.is_empty() {
            return Err(Error::NoCookie);
        }
        let doc = Doc::parse(body).map_err(Error::Bencode)?;
        let root = doc.root();
        if !matches!(root.token(), bencode::Token::Dict { .. }) {
            return Err(Error::NotADictionary);
        }
        let command = root.get(b"command").ok_or(Error::NoCommand)?;
        let command =
            Command::from_bytes(command.bytes().ok_or(Error::Invalid("command"))?).ok_or(Error::UnknownCommand)?;
        let text = |key: &'static str| -> Result<Option<&'a [u8]>, Error> {
            match root.get(key.as_bytes()) {
                None => Ok(None),
                Some(n) => n.bytes().map(Some).ok_or(Error::Invalid(key)),
            }
        };
        let mut r = Request {
            cookie,
            command,
            call_id: text("call-id")?,
            from_tag: text("from-tag")?,
            to_tag: text("to-tag")?,
            via_branch: text("via-branch")?,
            sdp: text("sdp")?,
            received_from: None,
            direction: [None, None],
            limit: match root.get(b"limit") {
                None => None,
                Some(n) => Some(n.int().ok_or(Error::Invalid("limit"))?),
            },
            flags: Flags::default(),
        };
        if let Some(rf) = root.get(b"received-from") {
            let mut it = rf.children();
            let (family, addr) = (it.next().and_then(|n| n.bytes()), it.next().and_then(|n| n.bytes()));
            let ip = addr.and_then(|a| core::str::from_utf8(a).ok()).and_then(|a| a.parse::<IpAddr>().ok());
            match (family, ip) {
                (Some(b"IP4"), Some(ip @ IpAddr::V4(_))) | (Some(b"IP6"), Some(ip @ IpAddr::V6(_))) => {
                    r.received_from = Some(ip)
                }
                _ => return Err(Error::Invalid("received-from")),
            }
        }
        if let Some(dir) = root.get(b"direction") {
            for (slot, n) in r.direction.iter_mut().zip(dir.children()) {
                *slot = Some(n.bytes().ok_or(Error::Invalid("direction"))?);
            }
        }
        read_flags(&root, &mut r.flags)?;
        let needs: &[(&'static str, bool)] = match command {
            Command::Offer => {
                &[("call-id", r.call_id.is_some()), ("from-tag", r.from_tag.is_some()), ("sdp", r.sdp.is_some())]
            }
            Command::Answer => &[
                ("call-id", r.call_id.is_some()),
                ("from-tag", r.from_tag.is_some()),
                ("to-tag", r.to_tag.is_some()),
                ("sdp", r.sdp.is_some()),
            ],
            Command::Delete | Command::Query => &[("call-id", r.call_id.is_some())],
            Command::Ping | Command::List | Command::Statistics => &[],
        };
        if let Some((k, _)) = needs.iter().find(|(_, present)| !present) {
            return Err(Error::Missing(k));
        }
        Ok(r)
    }
}

/// `flags`, `replace`, `ICE` (and the flag-like keys `symmetric`... given as flags).
fn read_flags(root: &Node<'_, '_>, f: &mut Flags) -> Result<(), Error> {
    if let Some(list) = root.get(b"flags") {
        for n in list.children() {
            match n.bytes().ok_or(Error::Invalid("flags"))? {
                b"symmetric" => f.symmetric = true,
                b"asymmetric" => f.asymmetric = true,
                b"trust-address" => f.trust_address = true,
                b"strict-source" => f.strict_source = true,
                b"port-latching" => f.port_latching = true,
                _ => f.other = f.other.saturating_add(1),
            }
        }
    }
    if let Some(list) = root.get(b"replace") {
        for n in list.children() {
            match n.bytes().ok_or(Error::Invalid("replace"))? {
                b"origin" => f.replace_origin = true,
                b"session-connection" | b"session connection" => f.replace_session_connection = true,
                _ => f.other = f.other.saturating_add(1),
            }
        }
    }
    if let Some(ice) = root.get(b"ICE") {
        f.ice = match ice.bytes().ok_or(Error::Invalid("ICE"))? {
            b"remove" => Ice::Remove,
            b"force" => Ice::Force,
            _ => Ice::Default,
        };
    }
    Ok(())
}

/// A reply being written: `cookie SP d` ... `e`.
pub struct Reply<'b> {
    w: Writer<'b>,
}

impl<'b> Reply<'b> {
    /// Start a reply to `cookie` with `result` (`ok`, `pong`).
    pub fn new(out: &'b mut [u8], cookie: &[u8], result: &[u8]) -> Reply<'b> {
        let mut w = Writer::new(out);
        w.raw(cookie).raw(b" ").dict().entry(b"result", result);
        Reply { w }
    }

    /// The writer, to add entries (keys in the order the client expects nothing of; rtpengine
    /// writes them sorted, clients look them up).
    pub fn writer(&mut self) -> &mut Writer<'b> {
        &mut self.w
    }

    /// Close the dictionary: the length, or `None` if `out` was too small.
    pub fn finish(mut self) -> Option<usize> {
        self.w.end();
        self.w.finish()
    }
}

/// `cookie d6:result2:oke` (or `pong` for ping).
pub fn reply_ok(out: &mut [u8], cookie: &[u8], command: Command) -> Option<usize> {
    Reply::new(out, cookie, if command == Command::Ping { b"pong" } else { b"ok" }).finish()
}

/// `cookie d6:result5:error12:error-reason...e`.
pub fn reply_error(out: &mut [u8], cookie: &[u8], reason: &[u8]) -> Option<usize> {
    let mut r = Reply::new(out, cookie, b"error");
    r.writer().entry(b"error-reason", reason);
    r.finish()
}

/// A request as a client sends it: `cookie SP` and a dictionary of string values (keys sorted,
/// as bencode wants). For tests, benchmarks and tools that drive an ng port.
pub fn request(cookie: &str, pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    let size = cookie.len() + 3 + sorted.iter().map(|(k, v)| k.len() + v.len() + 12).sum::<usize>();
    let mut out = vec![0u8; size];
    let mut w = Writer::new(&mut out);
    w.raw(cookie.as_bytes()).raw(b" ").dict();
    for (k, v) in sorted {
        w.entry(k.as_bytes(), v.as_bytes());
    }
    w.end();
    let n = w.finish().unwrap_or(0);
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_request_parses_back() {
        let r = request("c9", &[("sdp", "v=0"), ("command", "offer"), ("call-id", "x"), ("from-tag", "f")]);
        assert!(r.starts_with(b"c9 d7:call-id1:x7:command5:offer"), "{}", String::from_utf8_lossy(&r));
        let q = Request::parse(&r).unwrap();
        assert_eq!(
            (q.command, q.call_id, q.from_tag, q.sdp),
            (Command::Offer, Some(&b"x"[..]), Some(&b"f"[..]), Some(&b"v=0"[..]))
        );
    }

    fn offer() -> Vec<u8> {
        let sdp =
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
        let mut buf = vec![0u8; 1024];
        let mut w = Writer::new(&mut buf);
        w.raw(b"5323_1 ").dict();
        w.entry(b"ICE", b"remove").entry(b"call-id", b"c1@host").entry(b"command", b"offer");
        w.bytes(b"flags").list().bytes(b"trust-address").bytes(b"symmetric").bytes(b"record-call").end();
        w.entry(b"from-tag", b"ft1");
        w.bytes(b"received-from").list().bytes(b"IP4").bytes(b"192.0.2.7").end();
        w.bytes(b"replace").list().bytes(b"origin").bytes(b"session-connection").end();
        w.entry(b"sdp", sdp).entry(b"via-branch", b"z9hG4bK1");
        w.bytes(b"direction").list().bytes(b"external").bytes(b"internal").end();
        w.end();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn an_offer_as_kamailio_sends_it() {
        let d = offer();
        let r = Request::parse(&d).unwrap();
        assert_eq!(r.cookie, b"5323_1");
        assert_eq!(r.command, Command::Offer);
        assert_eq!(r.call_id, Some(&b"c1@host"[..]));
        assert_eq!(r.from_tag, Some(&b"ft1"[..]));
        assert_eq!(r.via_branch, Some(&b"z9hG4bK1"[..]));
        assert!(r.sdp.unwrap().starts_with(b"v=0\r\n"));
        assert_eq!(r.received_from, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(r.direction, [Some(&b"external"[..]), Some(&b"internal"[..])]);
        let f = r.flags;
        assert!(f.replace_origin && f.replace_session_connection && f.trust_address && f.symmetric);
        assert_eq!((f.ice, f.asymmetric, f.other), (Ice::Remove, false, 1));
    }

    #[test]
    fn each_command_checks_its_required_keys() {
        assert_eq!(Request::parse(b"1 d7:command4:pinge").unwrap().command, Command::Ping);
        assert_eq!(Request::parse(b"1 d7:command4:liste").unwrap().command, Command::List);
        assert_eq!(Request::parse(b"1 d7:command6:answer7:call-id1:ae").unwrap_err(), Error::Missing("from-tag"));
        assert_eq!(
            Request::parse(b"1 d7:call-id1:a7:command6:answer8:from-tag1:f3:sdp1:xe").unwrap_err(),
            Error::Missing("to-tag")
        );
        assert_eq!(Request::parse(b"1 d7:command6:deletee").unwrap_err(), Error::Missing("call-id"));
        assert_eq!(Request::parse(b"1 d7:command3:fooe").unwrap_err(), Error::UnknownCommand);
        assert_eq!(Request::parse(b"1 d4:calli1ee").unwrap_err(), Error::NoCommand);
        assert_eq!(Request::parse(b"1 li1ee").unwrap_err(), Error::NotADictionary);
        assert_eq!(Request::parse(b"d7:command4:pinge").unwrap_err(), Error::NoCookie);
        assert_eq!(Request::parse(b" d7:command4:pinge").unwrap_err(), Error::NoCookie);
        assert!(matches!(Request::parse(b"1 d7:command4:ping"), Err(Error::Bencode(bencode::Error::Truncated))));
        assert_eq!(Request::parse(b"1 d7:commandi1ee").unwrap_err(), Error::Invalid("command"));
        assert_eq!(
            Request::parse(b"1 d7:call-id1:a7:command6:delete13:received-froml3:IP49:not-an-ipee").unwrap_err(),
            Error::Invalid("received-from")
        );
    }

    #[test]
    fn replies_echo_the_cookie() {
        let mut out = [0u8; 128];
        let n = reply_ok(&mut out, b"42_7", Command::Ping).unwrap();
        assert_eq!(&out[..n], b"42_7 d6:result4:ponge");
        let n = reply_ok(&mut out, b"42_7", Command::Delete).unwrap();
        assert_eq!(&out[..n], b"42_7 d6:result2:oke");
        let n = reply_error(&mut out, b"x", Error::Missing("call-id").to_string().as_bytes()).unwrap();
        assert_eq!(&out[..n], b"x d6:result5:error12:error-reason21:missing key 'call-id'e");
        let mut r = Reply::new(&mut out, b"c", b"ok");
        r.writer().entry(b"sdp", b"v=0");
        let n = r.finish().unwrap();
        let d = Doc::parse(&out[2..n]).unwrap();
        assert_eq!(d.root().get(b"sdp").and_then(|v| v.bytes()), Some(&b"v=0"[..]));
        assert!(reply_ok(&mut [0u8; 5], b"cookie", Command::Ping).is_none(), "too small: None");
    }

    proptest::proptest! {
        #[test]
        fn any_datagram_is_parsed_or_refused_without_panicking(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            cut in 0usize..600,
        ) {
            let _ = Request::parse(&data);
            let o = offer();
            let _ = Request::parse(&o[..cut.min(o.len())]);
        }
    }
}
