//! Bencode (BitTorrent's encoding, which rtpengine's ng protocol carries): a reader that
//! indexes a message into a fixed-size token array without copying or allocating, and a
//! writer into a caller's buffer.
//!
//! Grammar: `i<decimal>e` integers, `<len>:<bytes>` strings, `l ... e` lists, `d ... e`
//! dictionaries whose keys are strings. The reader accepts at most [`MAX_TOKENS`] values and
//! [`MAX_DEPTH`] levels of nesting (a control message has a few dozen values and three
//! levels), refuses leading zeros and `-0` in integers as the format requires, and reports
//! the offset of the first error. It never panics on any input.

use arrayvec::ArrayVec;
use core::fmt;

/// Most values one message may hold.
pub const MAX_TOKENS: usize = 256;

/// Deepest nesting of lists and dictionaries.
pub const MAX_DEPTH: usize = 8;

/// Longest string accepted (an SDP body fits many times over).
pub const MAX_STRING: usize = 65_536;

/// One value, in document order. A container records how many direct children it has and
/// the index just past its last descendant (so siblings can be skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// `i42e`
    Int(i64),
    /// `3:abc`
    Bytes(&'a [u8]),
    /// `l ... e`
    List {
        /// Direct children.
        len: u16,
        /// Index past the last descendant.
        end: u16,
    },
    /// `d ... e`; children alternate key, value.
    Dict {
        /// Direct children (twice the number of entries).
        len: u16,
        /// Index past the last descendant.
        end: u16,
    },
}

/// Why a message is not bencode ringsip reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a value here, at this offset.
    Syntax(usize),
    /// More than [`MAX_DEPTH`] levels of nesting, at this offset.
    TooDeep(usize),
    /// More than [`MAX_TOKENS`] values.
    TooMany,
    /// An integer out of the `i64` range or with a leading zero, at this offset.
    BadInt(usize),
    /// A string longer than [`MAX_STRING`] or than the input, at this offset.
    BadLength(usize),
    /// A dictionary key that is not a string, at this offset.
    KeyNotString(usize),
    /// Bytes after the top-level value, at this offset.
    Trailing(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("bencode: the message ends inside a value"),
            Error::Syntax(at) => write!(f, "bencode: unexpected byte at offset {at}"),
            Error::TooDeep(at) => write!(f, "bencode: nested deeper than {MAX_DEPTH} levels at offset {at}"),
            Error::TooMany => write!(f, "bencode: more than {MAX_TOKENS} values"),
            Error::BadInt(at) => write!(f, "bencode: bad integer at offset {at}"),
            Error::BadLength(at) => write!(f, "bencode: bad string length at offset {at}"),
            Error::KeyNotString(at) => write!(f, "bencode: dictionary key is not a string at offset {at}"),
            Error::Trailing(at) => write!(f, "bencode: bytes after the value at offset {at}"),
        }
    }
}

impl std::error::Error for Error {}

/// An indexed bencode value (the whole message).
#[derive(Clone, Debug)]
pub struct Doc<'a> {
    tokens: ArrayVec<Token<'a>, MAX_TOKENS>,
}

/// A value inside a [`Doc`].
#[derive(Clone, Copy, Debug)]
pub struct Node<'d, 'a> {
    doc: &'d Doc<'a>,
    at: usize,
}

impl<'a> Doc<'a> {
    /// Index `input`, which must hold exactly one value.
    pub fn parse(input: &'a [u8]) -> Result<Doc<'a>, Error> {
        let mut tokens: ArrayVec<Token<'a>, MAX_TOKENS> = ArrayVec::new();
        // open containers: token index
        let mut open: ArrayVec<usize, MAX_DEPTH> = ArrayVec::new();
        let mut pos = 0;
        loop {
            let Some(&c) = input.get(pos) else { return Err(Error::Truncated) };
            // a dictionary expects a string key at even positions
            if let Some(&top) = open.last()
                && let Token::Dict { len, .. } = tokens[top]
                && len % 2 == 0
                && c != b'e'
                && !c.is_ascii_digit()
            {
                return Err(Error::KeyNotString(pos));
            }
            let token = match c {
                b'i' => {
                    let end = pos + 1 + input[pos + 1..].iter().position(|&b| b == b'e').ok_or(Error::Truncated)?;
                    let v = int(&input[pos + 1..end]).ok_or(Error::BadInt(pos))?;
                    pos = end + 1;
                    Some(Token::Int(v))
                }
                b'0'..=b'9' => {
                    let colon = pos + input[pos..].iter().position(|&b| b == b':').ok_or(Error::Truncated)?;
                    let digits = &input[pos..colon];
                    if digits.len() > 6 || (digits.len() > 1 && digits[0] == b'0') {
                        return Err(Error::BadLength(pos));
                    }
                    let n = digits
                        .iter()
                        .try_fold(0usize, |n, &d| d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0')));
                    let n = n.ok_or(Error::Syntax(pos))?;
                    if n > MAX_STRING {
                        return Err(Error::BadLength(pos));
                    }
                    let start = colon + 1;
                    let bytes = input.get(start..start + n).ok_or(Error::Truncated)?;
                    pos = start + n;
                    Some(Token::Bytes(bytes))
                }
                b'l' | b'd' => {
                    if open.is_full() {
                        return Err(Error::TooDeep(pos));
                    }
                    pos += 1;
                    Some(if c == b'l' { Token::List { len: 0, end: 0 } } else { Token::Dict { len: 0, end: 0 } })
                }
                b'e' => {
                    let Some(top) = open.pop() else { return Err(Error::Syntax(pos)) };
                    let end = tokens.len() as u16;
                    match &mut tokens[top] {
                        Token::List { end: e, .. } => *e = end,
                        Token::Dict { len, end: e } => {
                            if *len % 2 == 1 {
                                return Err(Error::Syntax(pos));
                            }
                            *e = end;
                        }
                        _ => return Err(Error::Syntax(pos)),
                    }
                    pos += 1;
                    None
                }
                _ => return Err(Error::Syntax(pos)),
            };
            if let Some(t) = token {
                if let Some(&top) = open.last() {
                    match &mut tokens[top] {
                        Token::List { len, .. } | Token::Dict { len, .. } => *len += 1,
                        _ => {}
                    }
                }
                let is_container = matches!(t, Token::List { .. } | Token::Dict { .. });
                tokens.try_push(t).map_err(|_| Error::TooMany)?;
                if is_container {
                    open.push(tokens.len() - 1);
                }
            }
            if open.is_empty() {
                break;
            }
        }
        if pos != input.len() {
            return Err(Error::Trailing(pos));
        }
        Ok(Doc { tokens })
    }

    /// The top-level value.
    pub fn root(&self) -> Node<'_, 'a> {
        Node { doc: self, at: 0 }
    }
}

/// `i...e` contents: optional `-`, digits, no leading zero, no `-0`.
fn int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || (neg && digits == b"0") {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

impl<'d, 'a> Node<'d, 'a> {
    /// The token.
    pub fn token(&self) -> Token<'a> {
        self.doc.tokens[self.at]
    }

    /// A string value.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.token() {
            Token::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// An integer value.
    pub fn int(&self) -> Option<i64> {
        match self.token() {
            Token::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The index just past this value and its descendants.
    fn next(&self) -> usize {
        match self.token() {
            Token::List { end, .. } | Token::Dict { end, .. } => usize::from(end),
            _ => self.at + 1,
        }
    }

    /// The direct children of a list or dictionary (keys and values alternate in a
    /// dictionary); nothing for a scalar.
    pub fn children(&self) -> impl Iterator<Item = Node<'d, 'a>> + 'd {
        let (doc, n) = match self.token() {
            Token::List { len, .. } | Token::Dict { len, .. } => (self.doc, usize::from(len)),
            _ => (self.doc, 0),
        };
        let mut at = self.at + 1;
        (0..n).map(move |_| {
            let node = Node { doc, at };
            at = node.next();
            node
        })
    }

    /// In a dictionary: the value of `key` (the first one, should a key repeat).
    pub fn get(&self, key: &[u8]) -> Option<Node<'d, 'a>> {
        if !matches!(self.token(), Token::Dict { .. }) {
            return None;
        }
        let mut it = self.children();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if k.bytes() == Some(key) {
                return Some(v);
            }
        }
        None
    }
}

/// Writes bencode into a buffer; every method returns `None` once the buffer is full (and
/// the writer stays full).
pub struct Writer<'b> {
    out: &'b mut [u8],
    len: usize,
    full: bool,
}

impl<'b> Writer<'b> {
    /// A writer filling `out` from the start.
    pub fn new(out: &'b mut [u8]) -> Writer<'b> {
        Writer { out, len: 0, full: false }
    }

    /// Raw bytes (the ng cookie and its space, say).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        if !self.full {
            match self.out.get_mut(self.len..self.len + b.len()) {
                Some(dst) => {
                    dst.copy_from_slice(b);
                    self.len += b.len();
                }
                None => self.full = true,
            }
        }
        self
    }

    /// `<len>:<bytes>`.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let mut n = [0u8; 20];
        self.raw(dec(b.len() as u64, &mut n)).raw(b":").raw(b)
    }

    /// `i<v>e`.
    pub fn int(&mut self, v: i64) -> &mut Self {
        let mut n = [0u8; 20];
        self.raw(b"i");
        if v < 0 {
            self.raw(b"-");
        }
        self.raw(dec(v.unsigned_abs(), &mut n)).raw(b"e")
    }

    /// Open a list.
    pub fn list(&mut self) -> &mut Self {
        self.raw(b"l")
    }

    /// Open a dictionary (write keys in order, each followed by its value).
    pub fn dict(&mut self) -> &mut Self {
        self.raw(b"d")
    }

    /// Close the innermost list or dictionary.
    pub fn end(&mut self) -> &mut Self {
        self.raw(b"e")
    }

    /// A dictionary entry with a string value.
    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.bytes(key).bytes(value)
    }

    /// The length written, or `None` if it did not fit.
    pub fn finish(&self) -> Option<usize> {
        (!self.full).then_some(self.len)
    }
}

fn dec(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_nest_and_dictionaries_find_their_keys() {
        let d = Doc::parse(b"d7:command5:offer3:sdpi-3e7:replacel6:origin18:session-connectionee").unwrap();
        let r = d.root();
        assert_eq!(r.get(b"command").and_then(|n| n.bytes()), Some(&b"offer"[..]));
        assert_eq!(r.get(b"sdp").and_then(|n| n.int()), Some(-3));
        let replace: Vec<_> = r.get(b"replace").unwrap().children().filter_map(|n| n.bytes()).collect();
        assert_eq!(replace, vec![&b"origin"[..], &b"session-connection"[..]]);
        assert!(r.get(b"missing").is_none());
        assert_eq!(r.children().count(), 6);
    }

    #[test]
    fn malformed_input_is_refused_with_the_offset() {
        assert_eq!(Doc::parse(b"").unwrap_err(), Error::Truncated);
        assert_eq!(Doc::parse(b"d3:abc").unwrap_err(), Error::Truncated);
        assert_eq!(Doc::parse(b"x").unwrap_err(), Error::Syntax(0));
        assert_eq!(Doc::parse(b"i01e").unwrap_err(), Error::BadInt(0));
        assert_eq!(Doc::parse(b"i-0e").unwrap_err(), Error::BadInt(0));
        assert_eq!(Doc::parse(b"i99999999999999999999e").unwrap_err(), Error::BadInt(0));
        assert_eq!(Doc::parse(b"di1e1:ae").unwrap_err(), Error::KeyNotString(1));
        assert_eq!(Doc::parse(b"d1:ae").unwrap_err(), Error::Syntax(4), "a key without a value");
        assert_eq!(Doc::parse(b"i1ei2e").unwrap_err(), Error::Trailing(3));
        assert_eq!(Doc::parse(b"5:abc").unwrap_err(), Error::Truncated);
        assert_eq!(Doc::parse(b"01:a").unwrap_err(), Error::BadLength(0));
        let deep = [b"l".repeat(MAX_DEPTH + 1), b"e".repeat(MAX_DEPTH + 1)].concat();
        assert_eq!(Doc::parse(&deep).unwrap_err(), Error::TooDeep(MAX_DEPTH));
        let many = [b"l".to_vec(), b"i1e".repeat(MAX_TOKENS), b"e".to_vec()].concat();
        assert_eq!(Doc::parse(&many).unwrap_err(), Error::TooMany);
    }

    #[test]
    fn the_writer_writes_what_the_reader_reads() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        w.dict().entry(b"result", b"ok").bytes(b"n").int(-42).bytes(b"l").list().bytes(b"x").int(7).end().end();
        let n = w.finish().unwrap();
        let d = Doc::parse(&buf[..n]).unwrap();
        assert_eq!(d.root().get(b"result").and_then(|v| v.bytes()), Some(&b"ok"[..]));
        assert_eq!(d.root().get(b"n").and_then(|v| v.int()), Some(-42));
        assert_eq!(d.root().get(b"l").unwrap().children().count(), 2);
        // a buffer too small says so
        let mut small = [0u8; 4];
        let mut w = Writer::new(&mut small);
        assert_eq!(w.entry(b"result", b"ok").finish(), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_panicking(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(d) = Doc::parse(&data) {
                // every node can be walked
                fn walk(n: Node<'_, '_>, depth: usize) -> usize {
                    assert!(depth <= MAX_DEPTH);
                    1 + n.children().map(|c| walk(c, depth + 1)).sum::<usize>()
                }
                proptest::prop_assert!(walk(d.root(), 0) <= MAX_TOKENS);
            }
        }

        #[test]
        fn mutated_messages_never_panic(cut in 0usize..80, flip in 0usize..80, byte in proptest::num::u8::ANY) {
            let mut m = b"d7:command5:offer7:call-id3:abc5:flagsl13:trust-addresse3:sdp9:v=0\r\no=-\re".to_vec();
            if flip < m.len() { m[flip] = byte; }
            m.truncate(cut.max(1).min(m.len()));
            let _ = Doc::parse(&m);
        }
    }
}
