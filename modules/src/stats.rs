//! The stateless proxy's counters, one set per shard (summed by the metrics exporter).

use std::sync::Arc;

use ringsip_runtime::{Counter, Kind, Metric, Metrics};

use crate::dispatcher::Dispatcher;

/// Why a message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// The datagram is not a SIP message (framing or start line).
    Unparsable,
    /// A request too broken to answer (no usable top Via).
    Unanswerable,
    /// A response whose top Via is not ringsip's.
    NotOurVia,
    /// A response with no Via left after ringsip's.
    NoNextVia,
    /// A destination given as a host name (ringsip does no DNS on the hot path).
    Unresolvable,
    /// The route said `drop`.
    Route,
    /// The request route ended without a forward, reply or drop.
    RouteEnd,
    /// An ACK with nowhere to go.
    Ack,
    /// A malformed response.
    BadResponse,
    /// The output would not fit (too many edits or header lines).
    Write,
    /// Only a request can be answered.
    ReplyToResponse,
    /// A response to a stateful branch whose transaction is gone (not a 2xx to an INVITE,
    /// which is forwarded anyway).
    NoTransaction,
    /// A message for another shard's transaction that the hand-off queue had no room for
    /// (the sender retransmits).
    HandoffFull,
}

impl DropReason {
    /// Every reason, for export.
    pub const ALL: [DropReason; 13] = [
        DropReason::Unparsable,
        DropReason::Unanswerable,
        DropReason::NotOurVia,
        DropReason::NoNextVia,
        DropReason::Unresolvable,
        DropReason::Route,
        DropReason::RouteEnd,
        DropReason::Ack,
        DropReason::BadResponse,
        DropReason::Write,
        DropReason::ReplyToResponse,
        DropReason::NoTransaction,
        DropReason::HandoffFull,
    ];

    /// Label value.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Unparsable => "unparsable",
            DropReason::Unanswerable => "unanswerable",
            DropReason::NotOurVia => "not_our_via",
            DropReason::NoNextVia => "no_next_via",
            DropReason::Unresolvable => "unresolvable",
            DropReason::Route => "route",
            DropReason::RouteEnd => "route_end",
            DropReason::Ack => "ack",
            DropReason::BadResponse => "bad_response",
            DropReason::Write => "write",
            DropReason::ReplyToResponse => "reply_to_response",
            DropReason::NoTransaction => "no_transaction",
            DropReason::HandoffFull => "handoff_full",
        }
    }
}

/// Request methods counted separately.
pub const METHODS: [&str; 8] = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "other"];

/// Status codes ringsip generates, counted separately (anything else is `other`).
pub const CODES: [u16; 14] = [100, 200, 400, 404, 408, 416, 420, 480, 482, 483, 487, 500, 503, 504];

/// Per-shard counters of the stateless proxy.
#[derive(Debug)]
pub struct ProxyStats {
    /// Requests received, by [`METHODS`].
    pub requests: [Counter; 8],
    /// Responses received, by class 1xx–6xx.
    pub responses: [Counter; 6],
    /// Requests forwarded, by [`METHODS`].
    pub forwarded_requests: [Counter; 8],
    /// Responses forwarded, by class.
    pub forwarded_responses: [Counter; 6],
    /// Replies generated, by [`CODES`] and one `other`.
    pub replies: [Counter; 15],
    /// Drops, by [`DropReason`].
    pub drops: [Counter; 13],
    /// Messages that failed to parse or validate, by place (first the start line/framing).
    pub parse_errors: Counter,
    /// Probes sent.
    pub probes_sent: Counter,
    /// Probe answers received.
    pub probe_answers: Counter,
    /// Requests sent to each destination of the current snapshot's dispatcher (swapped by
    /// the shard when it adopts a new snapshot).
    pub dests: arc_swap::ArcSwap<DestStats>,
    /// Destination health changes seen by this shard (only the prober's shard changes them).
    pub dest_transitions: Counter,
    /// Snapshots this shard adopted, and how long adopting the last one took (ns): the pause
    /// a push costs the shard.
    pub adopted: Counter,
    /// See `adopted`.
    pub adopt_ns: Counter,
    /// htable writes of routes (`sht_set`, `sht_inc`, `sht_delete`) that did nothing: table
    /// full, `sht_inc` on text or past the `i64` range, key empty or too long, value absent.
    pub htable_write_errors: Counter,
    /// Export the (shared) destination states from this shard.
    export_state: bool,
}

/// Per-destination counters of one shard for one snapshot's dispatcher. The shard holds an
/// `Arc` of the current one for its hot path; the exporter reads it through
/// [`ProxyStats::dests`].
#[derive(Debug)]
pub struct DestStats {
    /// The dispatcher the indices refer to.
    pub dispatcher: Arc<Dispatcher>,
    /// Requests sent, by set index and destination index.
    pub selected: Vec<Vec<Counter>>,
}

impl DestStats {
    /// Counters for `d`, starting from the counts in `carry` for destinations with the same
    /// set id and URI (a config push keeps the totals of the destinations it keeps).
    pub fn new(d: &Arc<Dispatcher>, carry: Option<&DestStats>) -> DestStats {
        let selected = d
            .sets
            .iter()
            .map(|s| {
                s.dests
                    .iter()
                    .map(|dest| {
                        let c = Counter::default();
                        if let Some(old) = carry {
                            for (os, oset) in old.dispatcher.sets.iter().enumerate() {
                                if oset.id != s.id {
                                    continue;
                                }
                                if let Some(od) = oset.dests.iter().position(|o| o.uri == dest.uri) {
                                    c.set(old.selected[os][od].get());
                                }
                            }
                        }
                        c
                    })
                    .collect()
            })
            .collect();
        DestStats { dispatcher: d.clone(), selected }
    }
}

impl ProxyStats {
    /// Counters for a dispatcher of this shape; `export_state` on one shard only exports the
    /// destination states (they are shared, not summed).
    pub fn new(d: &Arc<Dispatcher>, export_state: bool) -> ProxyStats {
        ProxyStats {
            requests: Default::default(),
            responses: Default::default(),
            forwarded_requests: Default::default(),
            forwarded_responses: Default::default(),
            replies: Default::default(),
            drops: Default::default(),
            parse_errors: Counter::default(),
            probes_sent: Counter::default(),
            probe_answers: Counter::default(),
            dests: arc_swap::ArcSwap::from_pointee(DestStats::new(d, None)),
            dest_transitions: Counter::default(),
            adopted: Counter::default(),
            adopt_ns: Counter::default(),
            htable_write_errors: Counter::default(),
            export_state,
        }
    }

    /// Index of a method in [`METHODS`].
    pub fn method_index(m: &[u8]) -> usize {
        METHODS.iter().position(|x| x.as_bytes() == m).unwrap_or(METHODS.len() - 1)
    }

    /// Count a generated reply.
    pub fn reply(&self, code: u16) {
        let i = CODES.iter().position(|&c| c == code).unwrap_or(CODES.len());
        self.replies[i].inc();
    }

    /// Count a drop.
    pub fn dropped(&self, why: DropReason) {
        self.drops[why as usize].inc();
    }
}

impl Metrics for ProxyStats {
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
        let mut c = |name: &str, help: &str, labels: &[(&str, &str)], v: u64| {
            sink(&Metric { name, help, kind: Kind::Counter, labels, value: v });
        };
        for (i, m) in METHODS.iter().enumerate() {
            c("ringsip_requests_received_total", "SIP requests received", &[("method", m)], self.requests[i].get());
            c(
                "ringsip_requests_forwarded_total",
                "SIP requests forwarded",
                &[("method", m)],
                self.forwarded_requests[i].get(),
            );
        }
        const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
        for (i, class) in CLASSES.iter().enumerate() {
            c(
                "ringsip_responses_received_total",
                "SIP responses received",
                &[("class", class)],
                self.responses[i].get(),
            );
            c(
                "ringsip_responses_forwarded_total",
                "SIP responses forwarded",
                &[("class", class)],
                self.forwarded_responses[i].get(),
            );
        }
        let mut buf = [0u8; 20];
        for (i, code) in CODES.iter().enumerate() {
            let text = std::str::from_utf8(crate::route::itoa(*code as i64, &mut buf)).unwrap_or("0").to_string();
            c(
                "ringsip_replies_sent_total",
                "SIP replies generated by ringsip",
                &[("code", &text)],
                self.replies[i].get(),
            );
        }
        c(
            "ringsip_replies_sent_total",
            "SIP replies generated by ringsip",
            &[("code", "other")],
            self.replies[CODES.len()].get(),
        );
        for d in DropReason::ALL {
            c("ringsip_drops_total", "messages dropped", &[("reason", d.name())], self.drops[d as usize].get());
        }
        c("ringsip_parse_errors_total", "messages that failed to parse or validate", &[], self.parse_errors.get());
        c("ringsip_probes_sent_total", "dispatcher health probes sent", &[], self.probes_sent.get());
        c("ringsip_probe_answers_total", "dispatcher health probe answers received", &[], self.probe_answers.get());
        c(
            "ringsip_snapshots_adopted_total",
            "snapshots the shards picked up (each shard counts its own)",
            &[],
            self.adopted.get(),
        );
        c(
            "ringsip_htable_write_errors_total",
            "htable writes of routes (sht_set, sht_inc, sht_delete) that failed (table full, sht_inc on text, key too long, value absent)",
            &[],
            self.htable_write_errors.get(),
        );
        sink(&Metric {
            name: "ringsip_snapshot_adopt_nanoseconds",
            help: "how long the shards paused to adopt the last snapshot, summed over shards",
            kind: Kind::Gauge,
            labels: &[],
            value: self.adopt_ns.get(),
        });
        let dests = self.dests.load();
        let d = &dests.dispatcher;
        for (si, set) in d.sets.iter().enumerate() {
            let set_id = set.id.to_string();
            for (di, dest) in set.dests.iter().enumerate() {
                let labels = [("set", set_id.as_str()), ("destination", dest.uri.as_str())];
                if self.export_state {
                    sink(&Metric {
                        name: "ringsip_dispatcher_destination_up",
                        help: "1 when a destination is active and not disabled",
                        kind: Kind::Gauge,
                        labels: &labels,
                        value: dest.available() as u64,
                    });
                }
                sink(&Metric {
                    name: "ringsip_dispatcher_selected_total",
                    help: "requests sent to a dispatcher destination",
                    kind: Kind::Counter,
                    labels: &labels,
                    value: dests.selected[si][di].get(),
                });
            }
        }
    }
}

/// Per-shard counters of the transaction layer, labelled with the shard.
#[derive(Debug, Default)]
pub struct TxnStats {
    /// The shard, as a label value.
    pub shard: String,
    /// Live transactions (gauge).
    pub live: Counter,
    /// Transactions that only absorb retransmissions (gauge): answered non-INVITEs until
    /// Timer J, answered INVITEs until Timer L.
    pub lingering: Counter,
    /// Transactions created.
    pub created: Counter,
    /// Requests refused with 503 because the shard's table was full.
    pub refused: Counter,
    /// Retransmitted requests (and ACKs of non-2xx responses) absorbed by a transaction.
    pub absorbed: Counter,
    /// Branches started (the first of each transaction and every failover or fork).
    pub branches: Counter,
    /// Branches that ended by a local timeout (Timer B/F or C).
    pub timeouts: Counter,
    /// CANCELs matched to a pending INVITE.
    pub cancels: Counter,
    /// Request retransmissions ringsip sent downstream (Timers A/E) and response
    /// retransmissions upstream (Timer G and retransmitted requests).
    pub retransmissions: Counter,
    /// Messages this shard received for another shard's transaction and passed on.
    pub handoffs: Counter,
    /// Messages another shard passed to this one.
    pub handoffs_in: Counter,
    /// Responses whose transaction was gone.
    pub stray: Counter,
    /// Failure routes run.
    pub failure_routes: Counter,
}

impl Metrics for TxnStats {
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
        let labels = [("shard", self.shard.as_str())];
        let mut put = |name: &str, help: &str, kind: Kind, v: u64| {
            sink(&Metric { name, help, kind, labels: &labels, value: v });
        };
        put("ringsip_transactions", "live transactions", Kind::Gauge, self.live.get());
        put(
            "ringsip_transactions_lingering",
            "answered transactions kept only to absorb retransmissions (Timer J, RFC 6026 Timer L)",
            Kind::Gauge,
            self.lingering.get(),
        );
        put("ringsip_transactions_created_total", "transactions created", Kind::Counter, self.created.get());
        put(
            "ringsip_transactions_refused_total",
            "requests refused with 503 because the shard's transaction table was full",
            Kind::Counter,
            self.refused.get(),
        );
        put(
            "ringsip_retransmissions_absorbed_total",
            "retransmitted requests and non-2xx ACKs absorbed by a transaction",
            Kind::Counter,
            self.absorbed.get(),
        );
        put(
            "ringsip_retransmissions_sent_total",
            "requests and responses ringsip retransmitted (Timers A, E, G and retransmitted requests)",
            Kind::Counter,
            self.retransmissions.get(),
        );
        put(
            "ringsip_branches_total",
            "branches started (first tries, failovers, forks)",
            Kind::Counter,
            self.branches.get(),
        );
        put(
            "ringsip_branch_timeouts_total",
            "branches that ended by a local timeout (Timer B, F or C)",
            Kind::Counter,
            self.timeouts.get(),
        );
        put("ringsip_cancels_total", "CANCELs matched to a pending INVITE", Kind::Counter, self.cancels.get());
        put("ringsip_failure_routes_total", "failure routes run", Kind::Counter, self.failure_routes.get());
        put(
            "ringsip_handoffs_total",
            "messages this shard received for another shard's transaction and passed to it",
            Kind::Counter,
            self.handoffs.get(),
        );
        put(
            "ringsip_handoffs_received_total",
            "messages other shards passed to this shard's transactions",
            Kind::Counter,
            self.handoffs_in.get(),
        );
        put("ringsip_stray_responses_total", "responses whose transaction was gone", Kind::Counter, self.stray.get());
    }
}
