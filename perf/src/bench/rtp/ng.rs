//! rtpengine's ng control protocol, as `shared/bench/rtp/rtp_bench.py` speaks it: one UDP
//! datagram `<cookie> <bencoded dict>` per command, the reply `<cookie> <bencoded dict>`;
//! and the SDP of the benchmark's calls (one audio stream, PCMU, on 127.0.0.1).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// A bencoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Bval {
    Int(i64),
    Str(Vec<u8>),
    List(Vec<Bval>),
    /// keys in the order given (encoded as given, not sorted: rtpengine does not care)
    Dict(Vec<(Vec<u8>, Bval)>),
}

/// Nesting limit of [`decode`] (the ng replies are 2-3 levels deep).
const MAX_DEPTH: u32 = 32;

impl Bval {
    /// A string value.
    pub(crate) fn s(v: impl AsRef<[u8]>) -> Bval {
        Bval::Str(v.as_ref().to_vec())
    }

    /// A dictionary from `(key, value)` pairs.
    pub(crate) fn dict<const N: usize>(pairs: [(&str, Bval); N]) -> Bval {
        Bval::Dict(pairs.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)).collect())
    }

    /// Append the encoding of `self` to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bval::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Bval::Str(s) => put_str(out, s),
            Bval::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Bval::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    put_str(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The value of `key` in a dictionary.
    pub(crate) fn get(&self, key: &str) -> Option<&Bval> {
        match self {
            Bval::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Bval::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `self[key]` as text (lossy), or "" when absent or not a string.
    pub(crate) fn text(&self, key: &str) -> String {
        self.get(key).and_then(Bval::as_bytes).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(s);
}

/// Decode one value that fills `b` (trailing ASCII whitespace allowed).
pub(crate) fn decode(b: &[u8]) -> Result<Bval, String> {
    let mut i = 0;
    let v = decode_at(b, &mut i, 0)?;
    if b[i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err(format!("trailing bytes after the value at offset {i}"));
    }
    Ok(v)
}

fn decode_at(b: &[u8], i: &mut usize, depth: u32) -> Result<Bval, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    let c = *b.get(*i).ok_or("truncated")?;
    match c {
        b'i' => {
            let end = b[*i..].iter().position(|&c| c == b'e').ok_or("unterminated integer")? + *i;
            let v = std::str::from_utf8(&b[*i + 1..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad integer at offset {i}"))?;
            *i = end + 1;
            Ok(Bval::Int(v))
        }
        b'l' | b'd' => {
            *i += 1;
            let mut list = Vec::new();
            let mut dict = Vec::new();
            loop {
                match b.get(*i) {
                    None => return Err("unterminated list or dictionary".into()),
                    Some(b'e') => {
                        *i += 1;
                        break;
                    }
                    Some(_) if c == b'l' => list.push(decode_at(b, i, depth + 1)?),
                    Some(_) => {
                        let Bval::Str(k) = decode_at(b, i, depth + 1)? else {
                            return Err("dictionary key is not a string".into());
                        };
                        dict.push((k, decode_at(b, i, depth + 1)?));
                    }
                }
            }
            Ok(if c == b'l' { Bval::List(list) } else { Bval::Dict(dict) })
        }
        b'0'..=b'9' => {
            let colon = b[*i..].iter().position(|&c| c == b':').ok_or("string without ':'")? + *i;
            let n: usize = std::str::from_utf8(&b[*i..colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad string length at offset {i}"))?;
            let start = colon + 1;
            let end = start.checked_add(n).filter(|&e| e <= b.len()).ok_or("string runs past the end")?;
            *i = end;
            Ok(Bval::Str(b[start..end].to_vec()))
        }
        c => Err(format!("unexpected byte {:?} at offset {i}", c as char)),
    }
}

/// An ng client: one UDP socket on 127.0.0.1, connected to the relay's control address.
pub(crate) struct Ng {
    sock: UdpSocket,
    rng: u64,
    buf: Vec<u8>,
}

impl Ng {
    pub(crate) fn new(addr: SocketAddrV4) -> io::Result<Ng> {
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        sock.connect(addr)?;
        Ok(Ng { sock, rng: seed(), buf: vec![0; 65536] })
    }

    /// Send `d` and wait `timeout` for the reply with the same cookie, `tries` times (the
    /// same cookie each time, so the relay can answer a retransmission from its cache).
    pub(crate) fn cmd(&mut self, d: &Bval, tries: u32, timeout: Duration) -> Result<Bval, String> {
        self.rng = xorshift(self.rng);
        let cookie = format!("{:08x}", self.rng as u32);
        let mut msg = cookie.clone().into_bytes();
        msg.push(b' ');
        d.encode(&mut msg);
        let what = d.text("command");
        let mut last = String::from("no reply");
        for _ in 0..tries.max(1) {
            if let Err(e) = self.sock.send(&msg) {
                last = e.to_string();
                std::thread::sleep(timeout.min(Duration::from_millis(100)));
                continue;
            }
            let end = Instant::now() + timeout;
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = self.sock.set_read_timeout(Some(left));
                match self.sock.recv(&mut self.buf) {
                    Ok(n) => {
                        let data = &self.buf[..n];
                        let Some(sp) = data.iter().position(|&c| c == b' ') else { continue };
                        if &data[..sp] != cookie.as_bytes() {
                            continue; // a late reply to an earlier command
                        }
                        return decode(&data[sp + 1..]).map_err(|e| format!("ng {what}: bad reply: {e}"));
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                    Err(e) => {
                        // ECONNREFUSED: nothing listens (yet)
                        last = e.to_string();
                        std::thread::sleep(left.min(Duration::from_millis(50)));
                        break;
                    }
                }
            }
        }
        Err(format!("ng {what}: {last} ({tries} tries, {} ms each)", timeout.as_millis()))
    }

    /// `ping` answered with `pong`?
    pub(crate) fn ping(&mut self, timeout: Duration) -> Result<(), String> {
        let r = self.cmd(&Bval::dict([("command", Bval::s("ping"))]), 1, timeout)?;
        match r.text("result").as_str() {
            "pong" => Ok(()),
            other => Err(format!("ng ping: result {other:?}")),
        }
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// xorshift64: cookies, SSRCs and sequence numbers need no more.
pub(crate) fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A fresh seed for [`xorshift`].
pub(crate) fn random_seed() -> u64 {
    xorshift(seed())
}

/// The SDP of one leg (rtp_bench.py's `sdp`): PCMU on 127.0.0.1:`port`.
pub(crate) fn sdp(port: u16, sess: u64) -> String {
    format!(
        "v=0\r\no=- {sess} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// The media address of an SDP (rtp_bench.py's `sdp_media`): the port of the first
/// `m=audio` line, the address of the first `c=IN IP4` line (127.0.0.1 when there is none).
/// Anything but 127.0.0.1 is refused: the benchmark sends only on loopback.
pub(crate) fn sdp_media(sdp: &[u8]) -> Result<SocketAddrV4, String> {
    let text = std::str::from_utf8(sdp).map_err(|_| "SDP is not UTF-8".to_string())?;
    let mut port = None;
    let mut ip = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if port.is_none() {
            if let Some(rest) = line.strip_prefix("m=audio ") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                port = Some(digits.parse::<u16>().map_err(|_| format!("bad m= line {line:?}"))?);
            }
        }
        if ip.is_none() {
            if let Some(rest) = line.strip_prefix("c=IN IP4 ") {
                ip = rest.split_ascii_whitespace().next().map(str::to_string);
            }
        }
    }
    let port = port.ok_or("no m=audio line in the SDP")?;
    let ip = ip.unwrap_or_else(|| "127.0.0.1".into());
    if ip != "127.0.0.1" {
        return Err(format!("relay answered with non-loopback media address {ip}; refusing to send"));
    }
    if port == 0 {
        return Err("the relay's SDP has media port 0 (stream rejected)".into());
    }
    Ok(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_bencode_round_trip() {
        let d = Bval::dict([
            ("command", Bval::s("offer")),
            ("call-id", Bval::s("bench-1-0@127.0.0.1")),
            ("replace", Bval::List(vec![Bval::s("origin"), Bval::s("session-connection")])),
            ("n", Bval::Int(-42)),
            ("e", Bval::s("")),
        ]);
        let mut out = Vec::new();
        d.encode(&mut out);
        assert_eq!(
            out,
            b"d7:command5:offer7:call-id19:bench-1-0@127.0.0.17:replacel6:origin18:session-connectione\
              1:ni-42e1:e0:e"
                .to_vec()
        );
        assert_eq!(decode(&out).unwrap(), d);
        assert_eq!(d.text("command"), "offer");
        assert_eq!(d.text("missing"), "");
        assert_eq!(d.get("n"), Some(&Bval::Int(-42)));
    }

    #[test]
    fn rtp_bencode_decodes_replies_and_rejects_garbage() {
        let r = decode(b"d6:result2:ok3:sdp5:v=0\r\n7:warning3:hm!e\n").unwrap();
        assert_eq!(r.text("result"), "ok");
        assert_eq!(r.get("sdp").and_then(Bval::as_bytes), Some(&b"v=0\r\n"[..]));
        assert_eq!(decode(b"d6:result4:ponge").unwrap().text("result"), "pong");
        assert_eq!(decode(b"le").unwrap(), Bval::List(vec![]));
        assert_eq!(decode(b"i0e").unwrap(), Bval::Int(0));
        for bad in [
            &b""[..],
            b"d",
            b"d6:result",
            b"5:abc",
            b"i12",
            b"ixe",
            b"di1ei2ee",
            b"x",
            b"4:pongjunk",
            b"99999999999999999999999:a",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert!(decode(&deep).is_err());
    }

    #[test]
    fn rtp_sdp_port_extraction() {
        let s = sdp(40000, 1000);
        assert_eq!(sdp_media(s.as_bytes()).unwrap(), "127.0.0.1:40000".parse::<SocketAddrV4>().unwrap());
        // rtpengine's answer: c= at media level, other lines around
        let r = "v=0\r\no=- 1545997027 1 IN IP4 127.0.0.1\r\ns=tester\r\nt=0 0\r\n\
                 m=audio 30018 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp:30019\r\n";
        assert_eq!(sdp_media(r.as_bytes()).unwrap().port(), 30018);
        // no c= line: loopback assumed (as the script)
        assert_eq!(sdp_media(b"v=0\nm=audio 31000 RTP/AVP 0\n").unwrap().port(), 31000);
        let e = sdp_media(b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 30000 RTP/AVP 0\r\n").unwrap_err();
        assert!(e.contains("non-loopback") && e.contains("192.0.2.1"), "{e}");
        assert!(sdp_media(b"v=0\r\nm=video 30000 RTP/AVP 96\r\n").is_err());
        assert!(sdp_media(b"v=0\r\nm=audio 0 RTP/AVP 0\r\n").is_err());
        assert!(sdp_media(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
        assert!(sdp_media(&[0xff, 0xfe]).is_err());
    }
}
