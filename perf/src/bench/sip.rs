//! The generator's SIP: a one-pass header scanner for exactly the headers a UAC and UAS need
//! (no allocation, compact forms, folded lines), the UAC's precomputed message templates
//! (per call only a 10-digit call number is patched in at fixed offsets) and the writers of
//! ACK/BYE and of UAS responses (byte copies, no `format!`).
//!
//! The scanner is not a validator: the router under test is. Tests check that everything
//! written here parses and validates with `ringsip_proto::Message`.

use std::net::SocketAddrV4;

/// A header: the whole line (without line end) and its trimmed value, as offsets.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Hdr {
    pub line: (u32, u32),
    pub val: (u32, u32),
}

impl Hdr {
    pub(crate) fn line<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.line.0 as usize..self.line.1 as usize]
    }
    pub(crate) fn val<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.val.0 as usize..self.val.1 as usize]
    }
}

/// Headers of one kind kept per message (more are ignored).
pub(crate) const MAX_LIST: usize = 16;

/// What the scanner found in one datagram.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scan {
    pub request: bool,
    /// response status code (0 for requests)
    pub status: u16,
    pub method: (u32, u32),
    pub ruri: (u32, u32),
    pub call_id: Option<Hdr>,
    pub cseq: Option<Hdr>,
    pub from: Option<Hdr>,
    pub to: Option<Hdr>,
    pub contact: Option<Hdr>,
    pub vias: [Hdr; MAX_LIST],
    pub n_vias: usize,
    pub rrs: [Hdr; MAX_LIST],
    pub n_rrs: usize,
    pub body_start: usize,
}

#[derive(Clone, Copy)]
enum Slot {
    CallId,
    CSeq,
    From,
    To,
    Contact,
    Via,
    RecordRoute,
    Other,
}

fn classify(name: &[u8]) -> Slot {
    let ic = |s: &[u8]| name.eq_ignore_ascii_case(s);
    match name.len() {
        1 => match name[0] | 0x20 {
            b'i' => Slot::CallId,
            b'f' => Slot::From,
            b't' => Slot::To,
            b'm' => Slot::Contact,
            b'v' => Slot::Via,
            _ => Slot::Other,
        },
        2 if ic(b"to") => Slot::To,
        3 if ic(b"via") => Slot::Via,
        4 if ic(b"from") => Slot::From,
        4 if ic(b"cseq") => Slot::CSeq,
        7 if ic(b"call-id") => Slot::CallId,
        7 if ic(b"contact") => Slot::Contact,
        12 if ic(b"record-route") => Slot::RecordRoute,
        _ => Slot::Other,
    }
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn trim(b: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && is_ws(b[s]) {
        s += 1;
    }
    while e > s && is_ws(b[e - 1]) {
        e -= 1;
    }
    (s, e)
}

impl Scan {
    /// Scan a datagram. `None` when it has no parsable start line.
    pub(crate) fn parse(b: &[u8]) -> Option<Scan> {
        let mut sc = Scan::default();
        let nl = memchr::memchr(b'\n', b)?;
        let le = if nl > 0 && b[nl - 1] == b'\r' { nl - 1 } else { nl };
        let first = &b[..le];
        if let Some(rest) = first.strip_prefix(b"SIP/2.0 ") {
            if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
                return None;
            }
            sc.status = rest[..3].iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
        } else {
            let sp = memchr::memchr(b' ', first)?;
            let sp2 = memchr::memchr(b' ', &first[sp + 1..]).map(|p| sp + 1 + p)?;
            sc.request = true;
            sc.method = (0, sp as u32);
            sc.ruri = ((sp + 1) as u32, sp2 as u32);
        }
        let mut pos = nl + 1;
        let mut last: Option<(Slot, usize)> = None;
        sc.body_start = b.len();
        while pos < b.len() {
            let nl = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |p| pos + p);
            let mut end = nl;
            if end > pos && b[end - 1] == b'\r' {
                end -= 1;
            }
            if end == pos {
                sc.body_start = (nl + 1).min(b.len());
                break;
            }
            if is_ws(b[pos]) {
                // folded continuation of the previous header
                if let Some((slot, i)) = last {
                    let (_, ve) = trim(b, pos, end);
                    if let Some(h) = sc.slot_mut(slot, i) {
                        h.line.1 = end as u32;
                        if ve > pos {
                            h.val.1 = ve as u32;
                        }
                    }
                }
            } else if let Some(c) = memchr::memchr(b':', &b[pos..end]) {
                let c = pos + c;
                let (ns, ne) = trim(b, pos, c);
                let (vs, ve) = trim(b, c + 1, end);
                let h = Hdr { line: (pos as u32, end as u32), val: (vs as u32, ve as u32) };
                let slot = classify(&b[ns..ne]);
                last = sc.store(slot, h).map(|i| (slot, i));
            }
            pos = nl + 1;
        }
        Some(sc)
    }

    fn store(&mut self, slot: Slot, h: Hdr) -> Option<usize> {
        let single = |o: &mut Option<Hdr>| {
            if o.is_none() {
                *o = Some(h);
                Some(0)
            } else {
                None
            }
        };
        match slot {
            Slot::CallId => single(&mut self.call_id),
            Slot::CSeq => single(&mut self.cseq),
            Slot::From => single(&mut self.from),
            Slot::To => single(&mut self.to),
            Slot::Contact => single(&mut self.contact),
            Slot::Via if self.n_vias < MAX_LIST => {
                self.vias[self.n_vias] = h;
                self.n_vias += 1;
                Some(self.n_vias - 1)
            }
            Slot::RecordRoute if self.n_rrs < MAX_LIST => {
                self.rrs[self.n_rrs] = h;
                self.n_rrs += 1;
                Some(self.n_rrs - 1)
            }
            _ => None,
        }
    }

    fn slot_mut(&mut self, slot: Slot, i: usize) -> Option<&mut Hdr> {
        match slot {
            Slot::CallId => self.call_id.as_mut(),
            Slot::CSeq => self.cseq.as_mut(),
            Slot::From => self.from.as_mut(),
            Slot::To => self.to.as_mut(),
            Slot::Contact => self.contact.as_mut(),
            Slot::Via => self.vias.get_mut(i),
            Slot::RecordRoute => self.rrs.get_mut(i),
            Slot::Other => None,
        }
    }

    pub(crate) fn method<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.method.0 as usize..self.method.1 as usize]
    }

    pub(crate) fn call_id<'a>(&self, b: &'a [u8]) -> Option<&'a [u8]> {
        self.call_id.map(|h| h.val(b))
    }

    /// The CSeq method (`INVITE` of `1 INVITE`).
    pub(crate) fn cseq_method<'a>(&self, b: &'a [u8]) -> Option<&'a [u8]> {
        let v = self.cseq?.val(b);
        let i = v.iter().position(|c| !c.is_ascii_digit())?;
        let m = &v[i..];
        let s = m.iter().position(|&c| !is_ws(c))?;
        Some(&m[s..])
    }

    pub(crate) fn to_tag<'a>(&self, b: &'a [u8]) -> Option<&'a [u8]> {
        tag_param(self.to?.val(b))
    }
}

/// The `tag` parameter of a From/To value.
pub(crate) fn tag_param(v: &[u8]) -> Option<&[u8]> {
    // parameters follow the closing '>' of a name-addr, else the first ';' of an addr-spec
    let params = match memchr::memrchr(b'>', v) {
        Some(gt) => &v[gt + 1..],
        None => &v[memchr::memchr(b';', v)?..],
    };
    for p in params.split(|&c| c == b';') {
        let (s, e) = trim(p, 0, p.len());
        let p = &p[s..e];
        if p.len() > 4 && p[..4].eq_ignore_ascii_case(b"tag=") {
            let t = &p[4..];
            let end = t.iter().position(|&c| is_ws(c) || c == b',').unwrap_or(t.len());
            return Some(&t[..end]);
        }
    }
    None
}

/// The URI of a Contact value: inside `<>`, else up to the first `;` or blank.
pub(crate) fn contact_uri(v: &[u8]) -> &[u8] {
    if let Some(lt) = memchr::memchr(b'<', v) {
        let rest = &v[lt + 1..];
        return &rest[..memchr::memchr(b'>', rest).unwrap_or(rest.len())];
    }
    let end = v.iter().position(|&c| c == b';' || is_ws(c)).unwrap_or(v.len());
    &v[..end]
}

/// Split a header value at top-level commas (not inside `<>` or quotes), trimmed; calls `f`
/// with (start, end) offsets relative to `v`.
pub(crate) fn split_list(v: &[u8], mut f: impl FnMut(usize, usize)) {
    let (mut start, mut angle, mut quote) = (0, false, false);
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if quote => i += 1,
            b'"' => quote = !quote,
            b'<' if !quote => angle = true,
            b'>' if !quote => angle = false,
            b',' if !quote && !angle => {
                let (s, e) = trim(v, start, i);
                if e > s {
                    f(s, e);
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let (s, e) = trim(v, start, v.len());
    if e > s {
        f(s, e);
    }
}

/// A fast 64-bit hash (for Call-ID lookups).
pub(crate) fn hash64(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = 0u64;
    for (i, &c) in chunks.remainder().iter().enumerate() {
        tail |= u64::from(c) << (8 * i);
    }
    h = (h ^ tail).wrapping_mul(K);
    h ^ (h >> 32)
}

// ------------------------------------------------------------------ number writing

/// Width of the call number in Call-ID, branch and tags.
pub(crate) const NUM_W: usize = 10;

/// `n` as exactly [`NUM_W`] decimal digits (mod 10^10).
pub(crate) fn digits(mut n: u64) -> [u8; NUM_W] {
    let mut d = [b'0'; NUM_W];
    for i in (0..NUM_W).rev() {
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    d
}

/// Parse exactly [`NUM_W`] leading digits.
pub(crate) fn parse_digits(b: &[u8]) -> Option<u64> {
    let d = b.get(..NUM_W)?;
    d.iter().try_fold(0u64, |a, &c| c.is_ascii_digit().then(|| a * 10 + u64::from(c - b'0')))
}

/// Append `n` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(ringsip_proto::proxy::dec(n, &mut [0u8; 20]));
}

/// Append `n` as 16 lowercase hex digits.
pub(crate) fn push_hex16(out: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((n >> (4 * i)) & 0xf) as usize]);
    }
}

// ------------------------------------------------------------------ templates

/// Bytes with [`NUM_W`]-digit holes for the call number.
#[derive(Clone, Debug, Default)]
pub(crate) struct Template {
    bytes: Vec<u8>,
    holes: Vec<usize>,
}

impl Template {
    fn lit(mut self, s: &str) -> Template {
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }
    fn num(mut self) -> Template {
        self.holes.push(self.bytes.len());
        self.bytes.extend_from_slice(&[b'0'; NUM_W]);
        self
    }

    /// Append the template with `num` in every hole.
    pub(crate) fn render(&self, out: &mut Vec<u8>, num: &[u8; NUM_W]) {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        for &h in &self.holes {
            out[base + h..base + h + NUM_W].copy_from_slice(num);
        }
    }
}

/// SDP of sipp's built-in scenarios.
fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// The UAC's messages, exactly sipp `uac.xml`'s (with a fixed-width call number): built once
/// per run target.
#[derive(Clone, Debug)]
pub(crate) struct UacTemplates {
    pub invite: Template,
    /// `ACK ` + R-URI + `ack_a` + To tag + `ack_b` + Route line + `tail`
    pub ack_a: Template,
    pub ack_b: Template,
    pub bye_a: Template,
    pub bye_b: Template,
    /// ACK of a non-2xx final response: `nack_a` + To tag + `ack_b` + `tail` (INVITE's branch)
    pub nack_a: Template,
    pub tail: Vec<u8>,
    pub probe: Template,
}

/// What follows the call number in the UAC's Call-IDs: `-RID@IP`.
pub(crate) fn call_suffix(uac: SocketAddrV4, rid: u32) -> String {
    format!("-{rid}@{}", uac.ip())
}

/// What follows the probe number in readiness probes' Call-IDs.
pub(crate) fn probe_suffix(uac: SocketAddrV4, rid: u32) -> String {
    format!("-{rid}-probe@{}", uac.ip())
}

impl UacTemplates {
    /// sipp's messages: the Request-URI and To user is `service`.
    pub(crate) fn new(uac: SocketAddrV4, target: SocketAddrV4, rid: u32) -> UacTemplates {
        UacTemplates::with_dial(uac, target, rid, None)
    }

    /// With `dial`, the Request-URI and To user of every call is `dial` followed by the call
    /// number ([`NUM_W`] digits): `+4930` dials `+49300000000001`, `+49300000000002`, ...
    /// (an LCR route looks the called number up). `None`: sipp's `service`.
    pub(crate) fn with_dial(uac: SocketAddrV4, target: SocketAddrV4, rid: u32, dial: Option<&str>) -> UacTemplates {
        let ip = uac.ip().to_string();
        let via = |t: Template, k: &str| {
            t.lit(&format!("Via: SIP/2.0/UDP {uac};branch=z9hG4bK-{rid}-")).num().lit(&format!("-{k}\r\n"))
        };
        let from = |t: Template| t.lit(&format!("From: sipp <sip:sipp@{uac}>;tag={rid}SIPpTag00")).num().lit("\r\n");
        let user = |t: Template| match dial {
            Some(d) => t.lit(d).num(),
            None => t.lit("service"),
        };
        // `sip:USER@target`
        let uri = |t: Template| user(t.lit("sip:")).lit(&format!("@{target}"));
        let to = |t: Template| uri(t.lit("To: service <")).lit(">");
        let call_id = |t: Template, suffix: &str| t.lit("Call-ID: ").num().lit(&format!("{suffix}\r\n"));
        let call_suffix = call_suffix(uac, rid);
        let probe_suffix = probe_suffix(uac, rid);
        let body = sdp(&ip, 6000);

        let invite = uri(Template::default().lit("INVITE ")).lit(" SIP/2.0\r\n");
        let invite = from(via(invite, "0"));
        let invite = call_id(to(invite).lit("\r\n"), &call_suffix).lit(&format!(
            "CSeq: 1 INVITE\r\nContact: sip:sipp@{uac}\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        let in_dialog_a = |k: &str| to(from(via(Template::default().lit(" SIP/2.0\r\n"), k))).lit(";tag=");
        let in_dialog_b = |cseq: &str| call_id(Template::default().lit("\r\n"), &call_suffix).lit(cseq);
        let nack_a = to(from(via(uri(Template::default().lit("ACK ")).lit(" SIP/2.0\r\n"), "0"))).lit(";tag=");
        let probe = Template::default().lit(&format!("OPTIONS sip:ping@{target} SIP/2.0\r\n"));
        let probe = from(via(probe, "p"));
        let probe = call_id(to(probe).lit("\r\n"), &probe_suffix).lit(&format!(
            "CSeq: 1 OPTIONS\r\nContact: sip:sipp@{uac}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ));
        UacTemplates {
            invite,
            ack_a: in_dialog_a("1"),
            ack_b: in_dialog_b("CSeq: 1 ACK\r\n"),
            bye_a: in_dialog_a("2"),
            bye_b: in_dialog_b("CSeq: 2 BYE\r\n"),
            nack_a,
            tail: format!(
                "Contact: sip:sipp@{uac}\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            probe,
        }
    }
}

/// Up to [`MAX_LIST`] route entries (offsets into a response).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct RouteSet {
    pub n: usize,
    pub e: [(u32, u32); MAX_LIST],
}

impl RouteSet {
    /// The UAC's route set from a 2xx: the Record-Route entries in reverse order.
    pub(crate) fn from_response(b: &[u8], sc: &Scan) -> RouteSet {
        let mut rs = RouteSet::default();
        for h in &sc.rrs[..sc.n_rrs] {
            let base = h.val.0 as usize;
            split_list(h.val(b), |s, e| {
                if rs.n < MAX_LIST {
                    rs.e[rs.n] = ((base + s) as u32, (base + e) as u32);
                    rs.n += 1;
                }
            });
        }
        rs.e[..rs.n].reverse();
        rs
    }

    /// Append `Route: a, b\r\n` (nothing when empty).
    pub(crate) fn write(&self, b: &[u8], out: &mut Vec<u8>) {
        if self.n == 0 {
            return;
        }
        out.extend_from_slice(b"Route: ");
        for (i, &(s, e)) in self.e[..self.n].iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(&b[s as usize..e as usize]);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The in-dialog requests of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InDialog {
    Ack,
    Bye,
}

/// Append an in-dialog request (ACK or BYE) of call `num` built from a 2xx `resp`:
/// Request-URI = its Contact, To tag = its To tag, Route = its Record-Route reversed.
/// `false` (nothing written) when the 2xx has no Contact or no To tag.
pub(crate) fn write_in_dialog(
    out: &mut Vec<u8>,
    tpl: &UacTemplates,
    which: InDialog,
    num: &[u8; NUM_W],
    resp: &[u8],
    sc: &Scan,
) -> bool {
    let (method, a, b_tpl): (&[u8], _, _) = match which {
        InDialog::Ack => (b"ACK", &tpl.ack_a, &tpl.ack_b),
        InDialog::Bye => (b"BYE", &tpl.bye_a, &tpl.bye_b),
    };
    let (Some(contact), Some(tag)) = (sc.contact, sc.to_tag(resp)) else { return false };
    let ruri = contact_uri(contact.val(resp));
    if ruri.is_empty() {
        return false;
    }
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(ruri);
    a.render(out, num);
    out.extend_from_slice(tag);
    b_tpl.render(out, num);
    RouteSet::from_response(resp, sc).write(resp, out);
    out.extend_from_slice(&tpl.tail);
    true
}

/// What a UAS response carries besides the copied headers.
pub(crate) struct RespSpec<'a> {
    /// e.g. `SIP/2.0 200 OK`
    pub status_line: &'a [u8],
    /// To tag to add when the request's To has none
    pub to_tag: Option<u64>,
    /// copy Record-Route (responses to INVITE)
    pub record_route: bool,
    /// the full Contact line without line end, or empty
    pub contact: &'a [u8],
    /// (Content-Type value, body)
    pub body: Option<(&'a [u8], &'a [u8])>,
}

/// Append a response to request `req`: status line, every Via, From, To (+ tag), Call-ID,
/// CSeq, Record-Route (if asked) copied as received (RFC 3261 §8.2.6.2), then Contact and
/// the body. `false` when a mandatory header is missing.
pub(crate) fn write_response(out: &mut Vec<u8>, req: &[u8], sc: &Scan, spec: &RespSpec<'_>) -> bool {
    let (Some(from), Some(to), Some(cid), Some(cseq)) = (sc.from, sc.to, sc.call_id, sc.cseq) else { return false };
    if sc.n_vias == 0 {
        return false;
    }
    out.extend_from_slice(spec.status_line);
    out.extend_from_slice(b"\r\n");
    for h in &sc.vias[..sc.n_vias] {
        out.extend_from_slice(h.line(req));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(from.line(req));
    out.extend_from_slice(b"\r\n");
    // To: the value ends the line unless folded; append the tag at the value's end
    out.extend_from_slice(&req[to.line.0 as usize..to.val.1 as usize]);
    if let Some(tag) = spec.to_tag {
        if tag_param(to.val(req)).is_none() {
            out.extend_from_slice(b";tag=");
            push_hex16(out, tag);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(cid.line(req));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(cseq.line(req));
    out.extend_from_slice(b"\r\n");
    if spec.record_route {
        for h in &sc.rrs[..sc.n_rrs] {
            out.extend_from_slice(h.line(req));
            out.extend_from_slice(b"\r\n");
        }
    }
    if !spec.contact.is_empty() {
        out.extend_from_slice(spec.contact);
        out.extend_from_slice(b"\r\n");
    }
    match spec.body {
        Some((ctype, body)) => {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ctype);
            out.extend_from_slice(b"\r\nContent-Length: ");
            push_u64(out, body.len() as u64);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
    }
    true
}

/// A UAS's fixed parts: its Contact line and SDP answer.
#[derive(Clone, Debug)]
pub(crate) struct UasParts {
    pub contact: Vec<u8>,
    pub sdp: Vec<u8>,
}

impl UasParts {
    pub(crate) fn new(addr: SocketAddrV4) -> UasParts {
        UasParts {
            contact: format!("Contact: <sip:uas@{addr}>").into_bytes(),
            sdp: sdp(&addr.ip().to_string(), 20000 + addr.port() % 1000).into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringsip_proto::{HeaderName, Message};

    fn uac() -> SocketAddrV4 {
        "127.0.0.1:5100".parse().unwrap()
    }
    fn router() -> SocketAddrV4 {
        "127.0.0.1:5060".parse().unwrap()
    }

    fn render(t: &Template, n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        t.render(&mut v, &digits(n));
        v
    }

    #[test]
    fn invite_template_parses_validates_and_frames() {
        let t = UacTemplates::new(uac(), router(), 4242);
        let raw = render(&t.invite, 1234567);
        let m = Message::parse(&raw).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&raw)));
        m.validate().unwrap();
        assert_eq!(m.end_offset(), raw.len());
        assert_eq!(m.content_length(), Some(m.body().len() as u32));
        assert_eq!(m.call_id().unwrap(), b"0001234567-4242@127.0.0.1");
        assert_eq!(m.cseq().unwrap().number, 1);
        assert_eq!(m.via().unwrap().branch(), Some(&b"z9hG4bK-4242-0001234567-0"[..]));
        assert_eq!(m.from().unwrap().tag(), Some(&b"4242SIPpTag000001234567"[..]));
        assert!(!m.has_to_tag().unwrap());
        assert_eq!(m.max_forwards().unwrap(), Some(70));
        assert!(m.sdp().unwrap().is_some());
        assert_eq!(m.request_uri_bytes(), Some(&b"sip:service@127.0.0.1:5060"[..]));
        // sipp's INVITE is ~ the same size (its call numbers are shorter)
        assert!((500..620).contains(&raw.len()), "{}", raw.len());

        let p = render(&t.probe, 7);
        let m = Message::parse(&p).unwrap();
        m.validate().unwrap();
        assert!(m.call_id().unwrap().ends_with(probe_suffix(uac(), 4242).as_bytes()));
    }

    #[test]
    fn dialled_numbers_carry_the_call_number() {
        // without a dial prefix the bytes are sipp's
        let a = UacTemplates::new(uac(), router(), 4242);
        let b = UacTemplates::with_dial(uac(), router(), 4242, None);
        assert_eq!(render(&a.invite, 5), render(&b.invite, 5));
        assert_eq!(render(&a.nack_a, 5), render(&b.nack_a, 5));
        let t = UacTemplates::with_dial(uac(), router(), 4242, Some("+4930"));
        let raw = render(&t.invite, 1234567);
        let m = Message::parse(&raw).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&raw)));
        m.validate().unwrap();
        assert_eq!(m.request_uri_bytes(), Some(&b"sip:+49300001234567@127.0.0.1:5060"[..]));
        assert!(String::from_utf8_lossy(&raw).contains("\r\nTo: service <sip:+49300001234567@127.0.0.1:5060>\r\n"));
        let nack = render(&t.nack_a, 1234567);
        assert!(nack.starts_with(b"ACK sip:+49300001234567@127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(nack.ends_with(b"To: service <sip:+49300001234567@127.0.0.1:5060>;tag="));
    }

    #[test]
    fn scanner_agrees_with_ringsip_proto() {
        for (name, raw) in crate::samples::ALL {
            let sc = Scan::parse(raw).unwrap();
            let m = Message::parse(raw).unwrap();
            assert_eq!(sc.request, m.is_request(), "{name}");
            assert_eq!(sc.status, m.status().unwrap_or(0), "{name}");
            assert_eq!(sc.call_id(raw), Some(m.call_id().unwrap()), "{name}");
            assert_eq!(sc.n_vias, m.headers_named(HeaderName::Via).count(), "{name}");
            assert_eq!(sc.n_rrs, m.headers_named(HeaderName::RecordRoute).count(), "{name}");
            assert_eq!(sc.to_tag(raw), m.to().unwrap().tag(), "{name}");
            assert_eq!(sc.cseq_method(raw), Some(m.cseq().unwrap().method), "{name}");
            assert_eq!(sc.body_start, m.body_offset(), "{name}");
            if let Some(c) = m.contacts().next() {
                let c = c.unwrap();
                let ContactValue::Addr(na) = c else { panic!() };
                assert_eq!(contact_uri(sc.contact.unwrap().val(raw)), na.uri().as_bytes(), "{name}");
            }
        }
    }

    use ringsip_proto::ContactValue;

    #[test]
    fn scanner_handles_compact_folded_and_lf_only() {
        let raw = b"SIP/2.0 180 Ringing\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\nv: SIP/2.0/UDP 127.0.0.1:5100;branch=z9hG4bKb\n\
t: <sip:x@y>\n ;tag=abc\nf: <sip:a@b>;tag=1\ni: cid-1\nCSEQ:   7   INVITE\nm: sip:uas@127.0.0.1:5080;transport=udp\nl: 0\n\n";
        let sc = Scan::parse(raw).unwrap();
        assert_eq!(sc.status, 180);
        assert_eq!(sc.n_vias, 2);
        assert_eq!(sc.to_tag(raw), Some(&b"abc"[..]));
        assert_eq!(sc.call_id(raw), Some(&b"cid-1"[..]));
        assert_eq!(sc.cseq_method(raw), Some(&b"INVITE"[..]));
        assert_eq!(contact_uri(sc.contact.unwrap().val(raw)), b"sip:uas@127.0.0.1:5080");
        assert_eq!(sc.body_start, raw.len());
        assert!(Scan::parse(b"garbage").is_none());
        assert!(Scan::parse(b"SIP/2.0 2x0 OK\r\n\r\n").is_none());
    }

    #[test]
    fn lists_and_tags() {
        let mut v = Vec::new();
        let s = b"<sip:a;lr>, \"x, y\" <sip:b>,<sip:c,d>";
        split_list(s, |a, b| v.push(s[a..b].to_vec()));
        assert_eq!(v, vec![b"<sip:a;lr>".to_vec(), b"\"x, y\" <sip:b>".to_vec(), b"<sip:c,d>".to_vec()]);
        assert_eq!(tag_param(b"<sip:a;tag=no>;x=1;TAG=yes"), Some(&b"yes"[..]));
        assert_eq!(tag_param(b"sip:a@b;tag=t1"), Some(&b"t1"[..]));
        assert_eq!(tag_param(b"<sip:a@b>"), None);
        assert_eq!(contact_uri(b"\"n\" <sip:u@h:1;transport=udp>;expires=3"), b"sip:u@h:1;transport=udp");
        assert_eq!(digits(42), *b"0000000042");
        assert_eq!(parse_digits(b"0000000042-x"), Some(42));
        assert_eq!(parse_digits(b"00000x0042"), None);
        let mut o = Vec::new();
        push_u64(&mut o, 0);
        push_u64(&mut o, 1200);
        push_hex16(&mut o, 0xabc);
        assert_eq!(o, b"012000000000000000abc");
        assert_ne!(hash64(b"0000000001-1@127.0.0.1"), hash64(b"0000000002-1@127.0.0.1"));
    }

    /// The UAS answer to a canned INVITE (as a proxy that adds a Via and Record-Route sends
    /// it), then the UAC's ACK and BYE built from that 200: all valid, correctly addressed.
    #[test]
    fn uas_answers_and_uac_acks() {
        let t = UacTemplates::new(uac(), router(), 77);
        let invite = render(&t.invite, 5);
        // what a record-routing proxy forwards: its Via and Record-Route on top
        let mut fwd = Vec::new();
        let (first, rest) = invite.split_at(invite.iter().position(|&c| c == b'\n').unwrap() + 1);
        fwd.extend_from_slice(first);
        fwd.extend_from_slice(b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy1\r\n");
        fwd.extend_from_slice(b"Record-Route: <sip:127.0.0.1:5060;lr>\r\nRecord-Route: <sip:10.0.0.9;lr>\r\n");
        fwd.extend_from_slice(rest);
        let sc = Scan::parse(&fwd).unwrap();
        let uas = UasParts::new("127.0.0.1:5080".parse().unwrap());
        let mut out = Vec::new();
        let spec = RespSpec {
            status_line: b"SIP/2.0 200 OK",
            to_tag: Some(0xfeed),
            record_route: true,
            contact: &uas.contact,
            body: Some((b"application/sdp", &uas.sdp)),
        };
        assert!(write_response(&mut out, &fwd, &sc, &spec));
        let ok = Message::parse(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
        ok.validate().unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.vias().count(), 2);
        assert_eq!(ok.via().unwrap().branch(), Some(&b"z9hG4bKproxy1"[..]));
        assert_eq!(ok.to().unwrap().tag(), Some(&b"000000000000feed"[..]));
        assert_eq!(ok.call_id().unwrap(), b"0000000005-77@127.0.0.1");
        assert_eq!(ok.cseq().unwrap().method, b"INVITE");
        assert_eq!(ok.record_routes().count(), 2);
        assert_eq!(ok.content_length(), Some(ok.body().len() as u32));
        assert!(ok.sdp().unwrap().is_some());
        let ContactValue::Addr(c) = ok.contacts().next().unwrap().unwrap() else { panic!() };
        assert_eq!(c.uri().as_bytes(), b"sip:uas@127.0.0.1:5080");

        // the UAC's ACK and BYE from this 200 (as the proxy returns it: its Via popped)
        let sc200 = Scan::parse(&out).unwrap();
        for (which, method, cseq) in [(InDialog::Ack, &b"ACK"[..], 1), (InDialog::Bye, b"BYE", 2)] {
            let mut req = Vec::new();
            assert!(write_in_dialog(&mut req, &t, which, &digits(5), &out, &sc200));
            let m = Message::parse(&req).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&req)));
            m.validate().unwrap();
            assert_eq!(m.method_bytes(), Some(method));
            assert_eq!(m.request_uri_bytes(), Some(&b"sip:uas@127.0.0.1:5080"[..]));
            assert_eq!(m.to().unwrap().tag(), Some(&b"000000000000feed"[..]));
            assert_eq!(m.cseq().unwrap().number, cseq);
            assert_eq!(m.call_id().unwrap(), b"0000000005-77@127.0.0.1");
            // Route = Record-Route reversed
            let routes: Vec<Vec<u8>> = m.routes().map(|r| r.unwrap().uri().as_bytes().to_vec()).collect();
            assert_eq!(routes, vec![b"sip:10.0.0.9;lr".to_vec(), b"sip:127.0.0.1:5060;lr".to_vec()]);
            assert!(m.body().is_empty());
            assert_eq!(m.end_offset(), req.len());
        }

        // 180 without body, and the retransmitted INVITE gets the same 200 back
        let mut ring = Vec::new();
        let spec180 = RespSpec { status_line: b"SIP/2.0 180 Ringing", body: None, ..spec };
        assert!(write_response(&mut ring, &fwd, &sc, &spec180));
        let m = Message::parse(&ring).unwrap();
        m.validate().unwrap();
        assert_eq!(m.content_length(), Some(0));
        let mut again = Vec::new();
        let spec = RespSpec { status_line: b"SIP/2.0 200 OK", ..spec180 };
        let spec = RespSpec { body: Some((b"application/sdp", &uas.sdp)), ..spec };
        assert!(write_response(&mut again, &fwd, &sc, &spec));
        assert_eq!(again, out);

        // no route set: no Route header
        let mut plain = Vec::new();
        let sc_inv = Scan::parse(&invite).unwrap();
        let spec = RespSpec { record_route: true, ..spec };
        assert!(write_response(&mut plain, &invite, &sc_inv, &spec));
        let sc_p = Scan::parse(&plain).unwrap();
        let mut ack = Vec::new();
        assert!(write_in_dialog(&mut ack, &t, InDialog::Ack, &digits(5), &plain, &sc_p));
        let m = Message::parse(&ack).unwrap();
        m.validate().unwrap();
        assert_eq!(m.routes().count(), 0);

        // ACK for a non-2xx: INVITE's branch and R-URI
        let mut nack = Vec::new();
        t.nack_a.render(&mut nack, &digits(5));
        nack.extend_from_slice(b"x1");
        t.ack_b.render(&mut nack, &digits(5));
        nack.extend_from_slice(&t.tail);
        let m = Message::parse(&nack).unwrap();
        m.validate().unwrap();
        assert_eq!(m.via().unwrap().branch(), Some(&b"z9hG4bK-77-0000000005-0"[..]));
    }

    #[test]
    fn responses_need_mandatory_headers() {
        let raw = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a>;tag=1\r\n\r\n";
        let sc = Scan::parse(raw).unwrap();
        let mut out = Vec::new();
        let spec =
            RespSpec { status_line: b"SIP/2.0 200 OK", to_tag: None, record_route: false, contact: b"", body: None };
        assert!(!write_response(&mut out, raw, &sc, &spec));
    }
}
