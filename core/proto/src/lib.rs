//! # ringsip-proto — the SIP protocol core
//!
//! Sans-IO: this crate takes bytes (and, later, a time) and returns views and actions. It is
//! `no_std` without `alloc`, so the compiler itself guarantees it opens no socket, reads no
//! clock and never allocates.
//!
//! * [`Message`] indexes a SIP message in one pass: start line and every header as byte
//!   ranges into the caller's buffer. Typed values (Via, URIs, CSeq, …) are parsed on first
//!   use and cached. [`Message::validate`] runs a proxy's receive checks (RFC 3261 §16.3).
//! * [`sdp`] indexes SDP bodies with byte ranges for later rewriting.
//! * [`edit`] writes a forwarded message from the original buffer plus an edit list.
//!
//! ```
//! use ringsip_proto::{Message, HeaderName};
//!
//! let raw = b"OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
//!             Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n\
//!             Max-Forwards: 70\r\n\
//!             To: <sip:bob@biloxi.example.com>\r\n\
//!             From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
//!             Call-ID: a84b4c76e66710\r\n\
//!             CSeq: 63104 OPTIONS\r\n\
//!             Content-Length: 0\r\n\r\n";
//! let msg = Message::parse(raw).unwrap();
//! assert_eq!(msg.via().unwrap().branch(), Some(&b"z9hG4bKhjhs8ass877"[..]));
//! assert_eq!(msg.max_forwards().unwrap(), Some(70));
//! assert_eq!(msg.cseq().unwrap().number, 63104);
//! assert_eq!(msg.header(HeaderName::CallId), Some(&b"a84b4c76e66710"[..]));
//! msg.validate().unwrap();
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod addr;
pub mod chars;
pub mod edit;
pub mod error;
pub mod header;
pub mod message;
pub mod params;
pub mod proxy;
pub mod sdp;
pub mod transaction;
pub mod uri;
pub mod values;

pub use addr::NameAddr;
pub use edit::{Edits, WriteError};
pub use error::{Error, ErrorKind, Place};
pub use header::HeaderName;
pub use message::{Elements, Header, HeaderEntry, MAX_HEADERS, Message, Method, StartLine, Status};
pub use params::Params;
pub use uri::{Host, Scheme, Uri};
pub use values::{CSeq, ContactValue, MediaType, Transport, Via};
