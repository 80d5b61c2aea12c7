//! RFC 3261 §17 transactions as sans-IO state machines: events and a time in, actions out.
//!
//! A transaction never touches a socket or a clock. The shard that owns it feeds it what
//! happened — a message arrived ([`Event::Request`], [`Event::Response`]), the transaction
//! user (the proxy core) wants something sent ([`Event::TuResponse`]), a timer it asked for
//! fired ([`Event::Timer`]) — together with the current time in milliseconds ("now", from any
//! monotonic clock, virtual in tests). It answers with [`Action`]s pushed into an
//! [`Actions`] list: send the original request or the last response again, start or stop a
//! timer, hand a message up to the transaction user, report a timeout or a transport error,
//! or say that the transaction is over and its state can be freed.
//!
//! Messages themselves are not stored here (the crate does not allocate): the owner keeps the
//! bytes of the request and of the last response it sent, and an action like
//! [`Action::Retransmit`] tells it which to send again. The state machines only keep state,
//! counters and deadlines, so a transaction costs a few dozen bytes plus the owner's buffers.
//!
//! * [`client`]: INVITE client (Timers A, B, D; §17.1.1) and non-INVITE client (E, F, K;
//!   §17.1.2);
//! * [`server`]: INVITE server (G, H, I; §17.2.1, 100 Trying from the TU after 200 ms per
//!   §17.2.1 is the proxy's choice) and non-INVITE server (J; §17.2.2).
//!
//! Every timer is in virtual milliseconds from [`Timers`] (T1, T2, T4 configurable) and
//! reliable transports skip the retransmission timers (§17.1.1.2, §17.1.2.2).

pub mod client;
pub mod server;

use arrayvec::ArrayVec;

/// RFC 3261's timer base values (Table 4), in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// T1: the round-trip estimate (default 500 ms).
    pub t1: u64,
    /// T2: the longest retransmit interval for non-INVITE requests and INVITE responses
    /// (default 4 s).
    pub t2: u64,
    /// T4: the longest a message stays in the network (default 5 s).
    pub t4: u64,
    /// Timer C for proxies (§16.6 step 11): longer than 3 minutes (default 180 s).
    pub c: u64,
    /// Timers B and F: how long a client transaction waits for any response. RFC 3261 sets
    /// them to 64·T1 (the default, 32 s); carriers shorten them so a silent gateway fails
    /// over in seconds (Kamailio's `fr_timer`). Never above 64·T1 in a checked config.
    pub no_reply: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1: 500, t2: 4000, t4: 5000, c: 180_000, no_reply: 32_000 }
    }
}

impl Timers {
    /// 64·T1: the limit of Timers B, F, H and J (default 32 s).
    pub fn t1x64(&self) -> u64 {
        self.t1.saturating_mul(64)
    }
}

/// The timers of RFC 3261 §17 (and C of §16.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client: request retransmit (unreliable transports).
    A,
    /// INVITE client: transaction timeout.
    B,
    /// Proxy: INVITE branch timeout (§16.6 step 11, §16.8).
    C,
    /// INVITE client: wait time for response retransmits after a non-2xx final response.
    D,
    /// Non-INVITE client: request retransmit (unreliable transports).
    E,
    /// Non-INVITE client: transaction timeout.
    F,
    /// INVITE server: final response retransmit (unreliable transports).
    G,
    /// INVITE server: wait time for the ACK.
    H,
    /// INVITE server: wait time for ACK retransmits.
    I,
    /// Non-INVITE server: wait time for request retransmits.
    J,
    /// Non-INVITE client: wait time for response retransmits.
    K,
}

/// Whether the transport under the transaction is reliable (TCP, TLS) or not (UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: the transaction retransmits.
    Unreliable,
    /// TCP, TLS: the transport retransmits; retransmission timers are not used and the
    /// wait timers (D, I, J, K) are zero.
    Reliable,
}

/// A response as the state machines see it: its status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub u16);

impl Code {
    /// 100–199.
    pub fn is_provisional(self) -> bool {
        (100..200).contains(&self.0)
    }
    /// 200–299.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }
    /// 300–699.
    pub fn is_final_failure(self) -> bool {
        (300..700).contains(&self.0)
    }
}

/// What happened, fed to a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Server transactions: the request arrived again (a retransmission); for an INVITE
    /// server transaction also the ACK of a non-2xx final response (`ack: true`).
    Request {
        /// The request is the ACK matched to this INVITE server transaction.
        ack: bool,
    },
    /// Client transactions: a response to the request arrived.
    Response(Code),
    /// Server transactions: the transaction user sends a response (the owner has stored its
    /// bytes as the last response).
    TuResponse(Code),
    /// A timer this transaction started has fired.
    Timer(Timer),
    /// The transport reported that a send failed (§17.1.4, §17.2.4).
    TransportError,
}

/// What the owner must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Client: send the request (again). Server: send the last response (again).
    Retransmit,
    /// Client: pass this response to the transaction user.
    PassUp(Code),
    /// INVITE client: send an ACK for this non-2xx final response (§17.1.1.3), built by the
    /// owner from the original request — on the first such response and on each
    /// retransmission of it while Completed. (The ACK of a 2xx is end to end, not part of
    /// the transaction.)
    SendAck(Code),
    /// Start (or restart) `timer` to fire at `at` (absolute ms); a timer of the same kind
    /// that was running is replaced.
    Start {
        /// Which timer.
        timer: Timer,
        /// When it fires (ms, same clock as "now").
        at: u64,
    },
    /// Stop `timer` (it may already have fired; ignore it if it does).
    Stop(Timer),
    /// The transaction timed out (Timer B or F, or H for a server): the TU treats it as a
    /// 408 (§16.7 step 2, §16.8).
    Timeout,
    /// The transport failed: the TU treats it as a 503 (§16.7 step 2).
    TransportFailed,
    /// The transaction is over (Terminated): free it and its buffers.
    Terminated,
}

/// The actions of one call; a transaction never produces more than this many at once.
pub type Actions = ArrayVec<Action, 8>;

/// What a transaction reports when an event does not apply in its current state (a
/// response to a server transaction, a timer that is not running, …): nothing was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ignored;
