//! Parse errors: small `Copy` values that never allocate.
//!
//! An [`Error`] says *what* went wrong ([`ErrorKind`]), *where* ([`Place`]: the start line,
//! a header, the body or an SDP line) and at which byte offset of the message. Its
//! [`Display`](core::fmt::Display) form is the human-readable reason `sipcheck` prints, and
//! [`Error::status`] is the SIP status code a proxy answers with (RFC 3261 §16.3, §8.2.2).

use core::fmt;

use crate::header::HeaderName;

/// What went wrong. Each kind has a fixed, human-readable reason ([`ErrorKind::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    // --- framing ---
    /// The buffer holds no message (empty or only line breaks).
    Empty,
    /// The header section never ends with an empty line.
    NoEndOfHeaders,
    /// The header section is larger than the parser indexes (64 KiB).
    HeadersTooLarge,
    /// More header lines than the index holds ([`crate::MAX_HEADERS`]).
    TooManyHeaders,
    /// A line ends with CR not followed by LF.
    BareCr,
    /// The body is shorter than Content-Length says.
    BodyTooShort,
    /// A stream message without Content-Length cannot be framed (RFC 3261 §18.3).
    MissingContentLengthOnStream,
    /// A header line does not start with a header name (e.g. leading whitespace on the
    /// first header line, or a name that is not a token).
    BadHeaderName,
    /// A header line has no colon after the name.
    MissingColon,
    // --- start line ---
    /// The start line is not `Method SP Request-URI SP SIP-Version` or
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    BadStartLine,
    /// The method is not a token.
    BadMethod,
    /// Two or more spaces, or other whitespace, where the grammar has exactly one SP.
    ExtraWhitespace,
    /// The SIP version is not of the form `SIP/digits.digits`.
    BadVersion,
    /// The SIP version is well formed but is not 2.0 (answer 505).
    UnsupportedVersion,
    /// The status code is not three digits.
    BadStatusCode,
    /// The status code is outside 100–699.
    StatusCodeOutOfRange,
    /// The reason phrase has a control character.
    BadReasonPhrase,
    /// The Request-URI is enclosed in `<>`, which the grammar does not allow.
    BracketedRequestUri,
    /// The Request-URI carries `?headers`, which RFC 3261 §19.1.1 forbids there.
    HeadersInRequestUri,
    // --- message-level validation ---
    /// A mandatory header is missing (RFC 3261 §8.1.1, §16.3).
    MissingHeader,
    /// A header that takes a single value appears more than once, or holds a list.
    DuplicateHeader,
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    CSeqMethodMismatch,
    // --- generic value grammar ---
    /// The value is empty where the grammar needs something.
    EmptyValue,
    /// A token was expected.
    ExpectedToken,
    /// A number was expected.
    ExpectedNumber,
    /// A number is larger than its grammar allows.
    NumberOutOfRange,
    /// A character that the grammar does not allow here.
    UnexpectedChar,
    /// Characters left over after a complete value.
    TrailingGarbage,
    /// A quoted string has no closing quote.
    UnterminatedQuote,
    /// A `<` has no matching `>`.
    UnterminatedAngle,
    /// A `;` with no parameter name after it.
    EmptyParam,
    /// A parameter value is missing after `=`.
    EmptyParamValue,
    /// A `,` with no value after it, or a list that starts with `,`.
    EmptyListItem,
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
    // --- URIs and hosts ---
    /// The URI has no `scheme:` prefix.
    BadScheme,
    /// A SIP or SIPS URI has no host.
    MissingHost,
    /// The host is neither a host name, an IPv4 address nor an IPv6 reference.
    BadHost,
    /// An IPv6 reference is malformed.
    BadIpv6,
    /// The port is not a decimal number up to 65535.
    BadPort,
    /// The user part of a URI has a character that must be escaped.
    BadUser,
    /// An addr-spec (URI without `<>`) contains `,`, `;` or `?` (RFC 3261 §20).
    UnbracketedUriSpecials,
    /// A name-addr has LWS inside `<>` or junk around the URI.
    BadNameAddr,
    /// A tel URI is malformed (RFC 3966).
    BadTelUri,
    // --- header specifics ---
    /// The Via sent-protocol is not `name/version/transport`.
    BadViaProtocol,
    /// A Via parameter (ttl, maddr, received, rport, branch) has a bad value.
    BadViaParam,
    /// A Contact list mixes `*` with addresses, or `*` is used wrongly.
    BadContactStar,
    /// A `q` value outside 0–1 with up to three decimals.
    BadQValue,
    /// A Date is not an RFC 1123 date in GMT (RFC 3261 §20.17).
    BadDate,
    /// A media type is not `type/subtype *(;param)`.
    BadMediaType,
    /// A credentials or challenge header is malformed.
    BadAuth,
    // --- SDP ---
    /// An SDP line is not `x=value`.
    SdpBadLine,
    /// The SDP does not start with `v=0`.
    SdpBadVersion,
    /// An SDP line type appears where RFC 4566 §5 does not allow it, or twice.
    SdpBadOrder,
    /// A mandatory SDP line (o=, s=, t=) is missing.
    SdpMissingLine,
    /// An `o=` line is malformed.
    SdpBadOrigin,
    /// A `c=` line is malformed.
    SdpBadConnection,
    /// An `m=` line is malformed.
    SdpBadMedia,
    /// An attribute (rtpmap, fmtp, rtcp, ptime) is malformed.
    SdpBadAttribute,
    /// More media sections or attributes than the parser indexes.
    SdpTooMany,
    /// A media section has no connection address, at media or session level.
    SdpNoConnection,
}

impl ErrorKind {
    /// A short, fixed, human-readable reason.
    pub const fn reason(self) -> &'static str {
        use ErrorKind::*;
        match self {
            Empty => "empty message",
            NoEndOfHeaders => "header section has no terminating empty line",
            HeadersTooLarge => "header section larger than 64 KiB",
            TooManyHeaders => "too many header lines",
            BareCr => "CR not followed by LF",
            BodyTooShort => "body shorter than Content-Length",
            MissingContentLengthOnStream => "Content-Length is required on a stream transport",
            BadHeaderName => "header line does not start with a header name",
            MissingColon => "header line has no ':' after the name",
            BadStartLine => "malformed start line",
            BadMethod => "method is not a token",
            ExtraWhitespace => "extra whitespace where the grammar has a single SP",
            BadVersion => "malformed SIP version",
            UnsupportedVersion => "SIP version not supported",
            BadStatusCode => "status code is not three digits",
            StatusCodeOutOfRange => "status code outside 100-699",
            BadReasonPhrase => "control character in reason phrase",
            BracketedRequestUri => "Request-URI enclosed in <>",
            HeadersInRequestUri => "Request-URI carries ?headers",
            MissingHeader => "mandatory header missing",
            DuplicateHeader => "single-value header appears more than once",
            CSeqMethodMismatch => "CSeq method does not match the request method",
            EmptyValue => "empty value",
            ExpectedToken => "expected a token",
            ExpectedNumber => "expected a number",
            NumberOutOfRange => "number out of range",
            UnexpectedChar => "unexpected character",
            TrailingGarbage => "unexpected characters after the value",
            UnterminatedQuote => "quoted string not terminated",
            UnterminatedAngle => "'<' without matching '>'",
            EmptyParam => "empty parameter",
            EmptyParamValue => "parameter has '=' but no value",
            EmptyListItem => "empty list element",
            BadEscape => "'%' not followed by two hex digits",
            BadScheme => "URI has no scheme",
            MissingHost => "URI has no host",
            BadHost => "malformed host",
            BadIpv6 => "malformed IPv6 reference",
            BadPort => "malformed port",
            BadUser => "character not allowed in URI user part",
            UnbracketedUriSpecials => "URI with ',', ';' or '?' must be enclosed in <>",
            BadNameAddr => "malformed name-addr",
            BadTelUri => "malformed tel URI",
            BadViaProtocol => "malformed Via sent-protocol",
            BadViaParam => "malformed Via parameter",
            BadContactStar => "'*' Contact mixed with addresses",
            BadQValue => "q value outside 0..1",
            BadDate => "Date is not an RFC 1123 date in GMT",
            BadMediaType => "malformed media type",
            BadAuth => "malformed credentials or challenge",
            SdpBadLine => "SDP line is not type=value",
            SdpBadVersion => "SDP does not start with v=0",
            SdpBadOrder => "SDP line out of order or repeated",
            SdpMissingLine => "mandatory SDP line missing",
            SdpBadOrigin => "malformed SDP o= line",
            SdpBadConnection => "malformed SDP c= line",
            SdpBadMedia => "malformed SDP m= line",
            SdpBadAttribute => "malformed SDP attribute",
            SdpTooMany => "too many SDP media sections or attributes",
            SdpNoConnection => "SDP media section without a connection address",
        }
    }
}

/// Where in the message an error was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// The message as a whole (framing, header-section structure).
    Message,
    /// The request line or status line.
    StartLine,
    /// A header; [`HeaderName::Other`] for extension headers.
    Header(HeaderName),
    /// The body.
    Body,
    /// An SDP line of the given type letter (`b'm'`, `b'c'`…), or `0` for the SDP as a whole.
    Sdp(u8),
}

/// A parse or validation error. Small, `Copy`, allocation-free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    place: Place,
    offset: u32,
}

impl Error {
    /// An error of `kind` at `place`, `offset` bytes into the parsed input.
    pub const fn new(kind: ErrorKind, place: Place, offset: usize) -> Self {
        Error { kind, place, offset: offset as u32 }
    }

    /// An error found by a value parser; the caller supplies the place and the base offset
    /// with [`Error::located`].
    pub(crate) const fn value(kind: ErrorKind, offset: usize) -> Self {
        Error { kind, place: Place::Message, offset: offset as u32 }
    }

    /// Rebase a value parser's error to the place and absolute offset of its input.
    pub(crate) const fn located(self, place: Place, base: usize) -> Self {
        Error { kind: self.kind, place, offset: self.offset + base as u32 }
    }

    /// Shift the offset only.
    pub(crate) const fn shifted(self, by: usize) -> Self {
        Error { kind: self.kind, place: self.place, offset: self.offset + by as u32 }
    }

    /// What went wrong.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where it went wrong.
    pub const fn place(&self) -> Place {
        self.place
    }

    /// Byte offset into the parsed buffer where the problem was detected.
    pub const fn offset(&self) -> usize {
        self.offset as usize
    }

    /// The SIP status code a server answers a request with this error (RFC 3261 §8.2, §16.3):
    /// 505 for an unsupported version, 416 never (an unknown scheme parses), 400 otherwise.
    /// Responses with errors are dropped, not answered.
    pub const fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::UnsupportedVersion => 505,
            _ => 400,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Message => f.write_str("message"),
            Place::StartLine => f.write_str("start line"),
            Place::Header(HeaderName::Other) => f.write_str("extension header"),
            Place::Header(h) => f.write_str(h.as_str()),
            Place::Body => f.write_str("body"),
            Place::Sdp(0) => f.write_str("SDP"),
            Place::Sdp(t) => write!(f, "SDP {}= line", *t as char),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (byte {})", self.place, self.kind.reason(), self.offset)
    }
}

impl core::error::Error for Error {}

/// Result of the value parsers.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_small_and_readable() {
        assert!(core::mem::size_of::<Error>() <= 8);
        let e = Error::new(ErrorKind::EmptyParam, Place::Header(HeaderName::Via), 217);
        assert_eq!(std::format!("{e}"), "Via: empty parameter (byte 217)");
        let e = Error::new(ErrorKind::SdpBadMedia, Place::Sdp(b'm'), 3);
        assert_eq!(std::format!("{e}"), "SDP m= line: malformed SDP m= line (byte 3)");
        assert_eq!(Error::new(ErrorKind::UnsupportedVersion, Place::StartLine, 0).status(), 505);
    }
}
