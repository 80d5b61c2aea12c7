//! INVITE and non-INVITE client transactions (RFC 3261 §17.1).
//!
//! A [`ClientTransaction`] is created by [`ClientTransaction::start`] when the owner sends a
//! request, then fed [`Event::Response`], [`Event::Timer`] and [`Event::TransportError`]
//! through [`ClientTransaction::handle`].
//!
//! **The first send is the owner's job.** `start` only pushes the timers to start; the owner
//! sends the request itself, right away. Every later send of the request is an
//! [`Action::Retransmit`], so counting `Retransmit` actions counts retransmissions.
//!
//! Timers: the transaction pushes [`Action::Start`] with an absolute deadline and
//! [`Action::Stop`] when a running timer is no longer wanted while the transaction goes on.
//! As for server transactions, [`Action::Terminated`] implies that every timer of the
//! transaction is dead: no [`Action::Stop`] precedes it, the owner drops the transaction's
//! timers together with its state. An [`Event::Timer`] is honoured only for a timer the
//! transaction considers running (a stopped or foreign timer returns [`Ignored`]); the next
//! interval of A or E counts from the `now` it fired at.
//!
//! Deviations and choices, all within RFC 3261:
//!
//! * INVITE, Proceeding: Figure 5 defines Timer B in Calling only, so B is stopped on the
//!   first provisional response. Proceeding is then bounded by the proxy core's Timer C
//!   (§16.6 step 11), not by the transaction.
//! * INVITE, 2xx: the transaction goes straight to Terminated as in RFC 3261 §17.1.1.2. RFC
//!   6026's Accepted state (Timer M) is not implemented ([`Timer`] has no M): retransmitted
//!   2xx responses then match no transaction and the owner forwards them as stray 2xx
//!   (§16.7, §18.1.2).
//! * Timer D is 32 s on unreliable transports regardless of T1 (Table 4: "at least 32 s").
//! * A transport error (§17.1.4) is honoured while the transaction itself sends the request:
//!   INVITE Calling, non-INVITE Trying and Proceeding. In the other states the TU already has
//!   a response (or, INVITE Proceeding, Timer C bounds the wait) and it is [`Ignored`].

use super::{Action, Actions, Code, Event, Ignored, Timer, Timers, Transport};

/// Timer D on unreliable transports: "at least 32 seconds" (§17.1.1.2, Table 4).
const TIMER_D_UNRELIABLE: u64 = 32_000;

/// Which client transaction: INVITE (§17.1.1) or any other method (§17.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// INVITE client transaction: Timers A, B, D (Figure 5).
    Invite,
    /// Non-INVITE client transaction: Timers E, F, K (Figure 6).
    NonInvite,
}

/// The states of Figures 5 and 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE: the request is sent, no response yet.
    Calling,
    /// Non-INVITE: the request is sent, no response yet.
    Trying,
    /// A provisional response has arrived.
    Proceeding,
    /// A final response has arrived (non-2xx for INVITE); absorbing its retransmissions.
    Completed,
    /// Over: the owner frees the transaction.
    Terminated,
}

/// An RFC 3261 §17.1 client transaction: state, the current retransmit interval and the
/// deadlines of its running timers. No message bytes: the owner keeps the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTransaction {
    kind: ClientKind,
    state: ClientState,
    transport: Transport,
    timers: Timers,
    /// The current Timer A / E interval (ms).
    interval: u64,
    /// Deadline of Timer A (INVITE) or E (non-INVITE) while running.
    retransmit_at: Option<u64>,
    /// Deadline of Timer B (INVITE) or F (non-INVITE) while running.
    timeout_at: Option<u64>,
    /// Deadline of Timer D (INVITE) or K (non-INVITE) while running.
    wait_at: Option<u64>,
}

/// One of the three timer slots of a client transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// A or E.
    Retransmit,
    /// B or F.
    Timeout,
    /// D or K.
    Wait,
}

impl ClientTransaction {
    /// Creates a client transaction for a request the owner sends right now (the first send
    /// is the owner's job, not an action) and pushes the timers to start: Timer A (INVITE) or
    /// E (non-INVITE) at `now + T1` on unreliable transports only, and Timer B or F at
    /// `now + 64·T1` (§17.1.1.2, §17.1.2.2; [`Timers::no_reply`], which may be shorter).
    /// Pushes at most 2 actions.
    pub fn start(
        kind: ClientKind,
        transport: Transport,
        timers: Timers,
        now: u64,
        out: &mut Actions,
    ) -> ClientTransaction {
        let mut tx = ClientTransaction {
            kind,
            state: match kind {
                ClientKind::Invite => ClientState::Calling,
                ClientKind::NonInvite => ClientState::Trying,
            },
            transport,
            timers,
            interval: timers.t1,
            retransmit_at: None,
            timeout_at: None,
            wait_at: None,
        };
        // §17.1.1.2 / §17.1.2.2: "If an unreliable transport is being used, the client
        // transaction MUST start timer A [E] with a value of T1."
        if transport == Transport::Unreliable {
            tx.set(Slot::Retransmit, now.saturating_add(timers.t1), out);
        }
        // §17.1.1.2 / §17.1.2.2: "the client transaction MUST set timer B [F] to fire after
        // 64*T1 seconds", for any transport (Timers::no_reply: 64·T1 unless shortened).
        tx.set(Slot::Timeout, now.saturating_add(timers.no_reply), out);
        tx
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// INVITE or non-INVITE.
    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// The running timer that fires first and its deadline (ms), if any: what the owner
    /// must wake up for next. Feeding [`Event::Timer`] of it at or after that time is what
    /// the transaction expects; an owner needs no bookkeeping of [`Action::Start`] and
    /// [`Action::Stop`] when it uses this.
    pub fn next_timer(&self) -> Option<(Timer, u64)> {
        [(Slot::Retransmit, self.retransmit_at), (Slot::Timeout, self.timeout_at), (Slot::Wait, self.wait_at)]
            .into_iter()
            .filter_map(|(slot, at)| at.map(|at| (self.timer_of(slot), at)))
            .min_by_key(|&(_, at)| at)
    }

    /// Feeds `ev`, which happened at `now`, and pushes what the owner must do into `out`
    /// (at most 5 actions).
    ///
    /// Returns [`Ignored`], having pushed nothing and changed nothing, when `ev` does not
    /// apply: [`Event::Request`] and [`Event::TuResponse`] (server events), a status code
    /// outside 100–699, a timer that is not running, a timer of the other kind, a 2xx to an INVITE transaction in Completed, and anything once Terminated.
    pub fn handle(&mut self, ev: Event, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        if self.state == ClientState::Terminated {
            return Err(Ignored);
        }
        match ev {
            Event::Response(code) if (100..700).contains(&code.0) => match self.kind {
                ClientKind::Invite => self.invite_response(code, now, out),
                ClientKind::NonInvite => self.non_invite_response(code, now, out),
            },
            Event::Timer(timer) => self.timer(timer, now, out),
            Event::TransportError => self.transport_error(out),
            Event::Response(_) | Event::Request { .. } | Event::TuResponse(_) => Err(Ignored),
        }
    }

    /// A response to an INVITE (§17.1.1.2, Figure 5).
    fn invite_response(&mut self, code: Code, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        match self.state {
            ClientState::Calling | ClientState::Proceeding => {
                if code.is_provisional() {
                    // §17.1.1.2: "If the client transaction receives a provisional response
                    // while in the "Calling" state, it transitions to the "Proceeding" state.
                    // In the "Proceeding" state, the client transaction SHOULD NOT
                    // retransmit the request any longer." Timer B is defined in Calling only
                    // (Figure 5); Timer C of the proxy core bounds Proceeding.
                    self.clear(Slot::Retransmit, out);
                    self.clear(Slot::Timeout, out);
                    self.state = ClientState::Proceeding;
                    // §17.1.1.2: "the provisional response MUST be passed to the TU. Any
                    // further provisional responses MUST be passed up to the TU while in the
                    // "Proceeding" state."
                    out.push(Action::PassUp(code));
                } else if code.is_success() {
                    // §17.1.1.2: "When in either the "Calling" or "Proceeding" states,
                    // reception of a 2xx response MUST cause the client transaction to enter
                    // the "Terminated" state, and the response MUST be passed up to the TU."
                    out.push(Action::PassUp(code));
                    self.terminate(out);
                } else {
                    // §17.1.1.2: "When in either the "Calling" or "Proceeding" states,
                    // reception of a response with status code from 300-699 MUST cause the
                    // client transaction to transition to "Completed". The client
                    // transaction MUST pass the received response up to the TU, and the
                    // client transaction MUST generate an ACK request" (§17.1.1.3).
                    out.push(Action::PassUp(code));
                    out.push(Action::SendAck(code));
                    // §17.1.1.2: "The client transaction SHOULD start timer D when it enters
                    // the "Completed" state, with a value of at least 32 seconds for
                    // unreliable transports, and a value of zero seconds for reliable
                    // transports."
                    self.complete(TIMER_D_UNRELIABLE, now, out);
                }
                Ok(())
            }
            ClientState::Completed => {
                if code.is_final_failure() {
                    // §17.1.1.2: "Any retransmissions of the final response that are received
                    // while in the "Completed" state MUST cause the ACK to be re-passed to
                    // the transport layer for retransmission, but the newly received response
                    // MUST NOT be passed up to the TU."
                    out.push(Action::SendAck(code));
                    Ok(())
                } else if code.is_provisional() {
                    // A late, reordered provisional response: absorbed.
                    Ok(())
                } else {
                    // A 2xx after a non-2xx final response matches no state of Figure 5:
                    // left to the owner (a stray 2xx, §18.1.2).
                    Err(Ignored)
                }
            }
            ClientState::Trying | ClientState::Terminated => Err(Ignored),
        }
    }

    /// A response to a non-INVITE request (§17.1.2.2, Figure 6).
    fn non_invite_response(&mut self, code: Code, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if code.is_provisional() {
                    // §17.1.2.2: "If a provisional response is received while in the "Trying"
                    // state, the response MUST be passed to the TU, and then the client
                    // transaction SHOULD move to the "Proceeding" state." Further
                    // provisionals in Proceeding are passed up too. Timer E keeps its
                    // deadline; it is reset to T2 when it next fires.
                    self.state = ClientState::Proceeding;
                    out.push(Action::PassUp(code));
                } else {
                    // §17.1.2.2: "If a final response (status codes 200-699) is received
                    // while in the "Trying" [or "Proceeding"] state, the response MUST be
                    // passed to the TU, and the client transaction MUST transition to the
                    // "Completed" state."
                    out.push(Action::PassUp(code));
                    // §17.1.2.2: "Once the client transaction enters the "Completed" state,
                    // it MUST set Timer K to fire in T4 seconds for unreliable transports,
                    // and zero seconds for reliable transports."
                    self.complete(self.timers.t4, now, out);
                }
                Ok(())
            }
            // §17.1.2.2: the "Completed" state buffers any additional response
            // retransmissions that may be received: absorbed.
            ClientState::Completed => Ok(()),
            ClientState::Calling | ClientState::Terminated => Err(Ignored),
        }
    }

    /// A timer fired.
    fn timer(&mut self, timer: Timer, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        let slot = match (self.kind, timer) {
            (ClientKind::Invite, Timer::A) | (ClientKind::NonInvite, Timer::E) => Slot::Retransmit,
            (ClientKind::Invite, Timer::B) | (ClientKind::NonInvite, Timer::F) => Slot::Timeout,
            (ClientKind::Invite, Timer::D) | (ClientKind::NonInvite, Timer::K) => Slot::Wait,
            _ => return Err(Ignored),
        };
        // It fired: no longer running, nothing to stop.
        if self.deadline(slot).take().is_none() {
            return Err(Ignored);
        }
        match slot {
            Slot::Retransmit => {
                // Runs only in Calling (A) or Trying/Proceeding (E): every transition out of
                // those states clears it.
                self.interval = match (self.kind, self.state) {
                    // §17.1.1.2: "When timer A fires, the client transaction MUST retransmit
                    // the request by passing it to the transport layer, and MUST reset the
                    // timer with a value of 2*T1." (Doubling on each firing, no T2 cap.)
                    (ClientKind::Invite, _) => self.interval.saturating_mul(2),
                    // §17.1.2.2: "If timer E fires while still in this state [Trying], the
                    // timer is reset, but this time with a value of MIN(2*T1, T2)." (The
                    // interval doubles up to T2.)
                    (ClientKind::NonInvite, ClientState::Trying) => self.interval.saturating_mul(2).min(self.timers.t2),
                    // §17.1.2.2: "If Timer E fires while in the "Proceeding" state, the
                    // request MUST be passed to the transport layer for retransmission, and
                    // Timer E MUST be reset with a value of T2 seconds."
                    (ClientKind::NonInvite, _) => self.timers.t2,
                };
                out.push(Action::Retransmit);
                self.set(Slot::Retransmit, now.saturating_add(self.interval), out);
            }
            Slot::Timeout => {
                // §17.1.1.2: "If the client transaction is still in the "Calling" state when
                // timer B fires, the client transaction SHOULD inform the TU that a timeout
                // has occurred. The client transaction MUST NOT generate an ACK."
                // §17.1.2.2: "If Timer F fires while the client transaction is still in the
                // "Trying" [or "Proceeding"] state, the client transaction SHOULD inform the
                // TU about the timeout, and then it SHOULD enter the "Terminated" state."
                out.push(Action::Timeout);
                self.terminate(out);
            }
            Slot::Wait => {
                // §17.1.1.2: "If timer D fires while the client transaction is in the
                // "Completed" state, the client transaction MUST move to the "Terminated"
                // state." §17.1.2.2: "If Timer K fires while in this state [Completed], the
                // client transaction MUST transition to the "Terminated" state."
                self.terminate(out);
            }
        }
        Ok(())
    }

    /// §17.1.4: "If a fatal transport error is reported by the transport layer (generally,
    /// due to fatal ICMP errors in UDP or connection failures in TCP), the condition MUST be
    /// treated as a 503 (Service Unavailable) status code": inform the TU and terminate
    /// (§17.1.1.2 and §17.1.2.2 for the states where the transaction sends the request).
    fn transport_error(&mut self, out: &mut Actions) -> Result<(), Ignored> {
        match (self.kind, self.state) {
            (ClientKind::Invite, ClientState::Calling)
            | (ClientKind::NonInvite, ClientState::Trying | ClientState::Proceeding) => {
                out.push(Action::TransportFailed);
                self.terminate(out);
                Ok(())
            }
            _ => Err(Ignored),
        }
    }

    /// Stops the retransmit and timeout timers and enters Completed with the wait timer (D
    /// or K) at `now + unreliable` on unreliable transports, or goes straight to Terminated
    /// on reliable ones (the timer is zero).
    fn complete(&mut self, unreliable: u64, now: u64, out: &mut Actions) {
        match self.transport {
            Transport::Unreliable => {
                self.clear(Slot::Retransmit, out);
                self.clear(Slot::Timeout, out);
                self.state = ClientState::Completed;
                self.set(Slot::Wait, now.saturating_add(unreliable), out);
            }
            Transport::Reliable => self.terminate(out),
        }
    }

    /// Enters Terminated: every timer is dead without an [`Action::Stop`].
    fn terminate(&mut self, out: &mut Actions) {
        self.retransmit_at = None;
        self.timeout_at = None;
        self.wait_at = None;
        self.state = ClientState::Terminated;
        out.push(Action::Terminated);
    }

    /// Starts (or restarts) the timer of `slot` at `at`.
    fn set(&mut self, slot: Slot, at: u64, out: &mut Actions) {
        *self.deadline(slot) = Some(at);
        out.push(Action::Start { timer: self.timer_of(slot), at });
    }

    /// Stops the timer of `slot` if it is running.
    fn clear(&mut self, slot: Slot, out: &mut Actions) {
        if self.deadline(slot).take().is_some() {
            out.push(Action::Stop(self.timer_of(slot)));
        }
    }

    fn deadline(&mut self, slot: Slot) -> &mut Option<u64> {
        match slot {
            Slot::Retransmit => &mut self.retransmit_at,
            Slot::Timeout => &mut self.timeout_at,
            Slot::Wait => &mut self.wait_at,
        }
    }

    fn timer_of(&self, slot: Slot) -> Timer {
        match (self.kind, slot) {
            (ClientKind::Invite, Slot::Retransmit) => Timer::A,
            (ClientKind::Invite, Slot::Timeout) => Timer::B,
            (ClientKind::Invite, Slot::Wait) => Timer::D,
            (ClientKind::NonInvite, Slot::Retransmit) => Timer::E,
            (ClientKind::NonInvite, Slot::Timeout) => Timer::F,
            (ClientKind::NonInvite, Slot::Wait) => Timer::K,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A tiny owner: keeps the pending timers with their deadlines, logs every other action
    /// with the virtual time it happened at, and advances time to the next timer.
    struct Driver {
        tx: ClientTransaction,
        now: u64,
        pending: Vec<(Timer, u64)>,
        log: Vec<(u64, Action)>,
    }

    impl Driver {
        fn start(kind: ClientKind, transport: Transport, timers: Timers) -> Driver {
            let mut out = Actions::new();
            let tx = ClientTransaction::start(kind, transport, timers, 0, &mut out);
            let mut d = Driver { tx, now: 0, pending: Vec::new(), log: Vec::new() };
            d.apply(&out);
            d
        }

        fn apply(&mut self, out: &Actions) {
            for &a in out {
                match a {
                    Action::Start { timer, at } => {
                        assert!(at >= self.now, "{timer:?} started in the past");
                        self.pending.retain(|&(t, _)| t != timer);
                        self.pending.push((timer, at));
                    }
                    Action::Stop(timer) => {
                        let before = self.pending.len();
                        self.pending.retain(|&(t, _)| t != timer);
                        assert_eq!(before, self.pending.len() + 1, "stopped idle {timer:?}");
                    }
                    other => {
                        if other == Action::Terminated {
                            // Terminated implies every timer is dead.
                            assert_eq!(self.tx.state(), ClientState::Terminated);
                            self.pending.clear();
                        }
                        self.log.push((self.now, other));
                    }
                }
            }
        }

        /// Feeds `ev` at time `at`, expecting it to be handled.
        fn feed(&mut self, at: u64, ev: Event) {
            assert!(at >= self.now);
            self.now = at;
            let mut out = Actions::new();
            self.tx.handle(ev, at, &mut out).unwrap();
            self.apply(&out);
        }

        /// Fires the next pending timer (earliest deadline) if it is due by `until`.
        fn step(&mut self, until: u64) -> bool {
            let Some(&(timer, at)) = self.pending.iter().min_by_key(|&&(_, at)| at) else {
                return false;
            };
            if at > until {
                return false;
            }
            self.pending.retain(|&(t, _)| t != timer);
            self.feed(at, Event::Timer(timer));
            true
        }

        /// Fires timers until none is due by `until` and moves the clock there.
        fn run_until(&mut self, until: u64) {
            while self.step(until) {}
            self.now = self.now.max(until);
        }

        /// Fires timers until none is left.
        fn run(&mut self) {
            self.run_until(u64::MAX);
        }

        fn times_of(&self, action: Action) -> Vec<u64> {
            self.log.iter().filter(|&&(_, a)| a == action).map(|&(t, _)| t).collect()
        }

        fn count(&self, pred: impl Fn(Action) -> bool) -> usize {
            self.log.iter().filter(|&&(_, a)| pred(a)).count()
        }

        fn timer_at(&self, timer: Timer) -> Option<u64> {
            self.pending.iter().find(|&&(t, _)| t == timer).map(|&(_, at)| at)
        }
    }

    fn udp(kind: ClientKind) -> Driver {
        Driver::start(kind, Transport::Unreliable, Timers::default())
    }

    fn tcp(kind: ClientKind) -> Driver {
        Driver::start(kind, Transport::Reliable, Timers::default())
    }

    fn resp(code: u16) -> Event {
        Event::Response(Code(code))
    }

    /// Feeds `ev` expecting [`Ignored`], nothing pushed and nothing changed.
    fn assert_ignored(tx: &mut ClientTransaction, ev: Event, now: u64) {
        let before = tx.clone();
        let mut out = Actions::new();
        assert_eq!(tx.handle(ev, now, &mut out), Err(Ignored), "{ev:?} at {now}");
        assert!(out.is_empty(), "{ev:?} pushed {out:?}");
        assert_eq!(*tx, before);
    }

    #[test]
    fn start_pushes_only_timers() {
        let mut out = Actions::new();
        let t = Timers::default();
        let tx = ClientTransaction::start(ClientKind::Invite, Transport::Unreliable, t, 1000, &mut out);
        assert_eq!(tx.state(), ClientState::Calling);
        assert_eq!(tx.kind(), ClientKind::Invite);
        assert_eq!(
            out.as_slice(),
            [Action::Start { timer: Timer::A, at: 1500 }, Action::Start { timer: Timer::B, at: 33_000 }]
        );
        out.clear();
        let tx = ClientTransaction::start(ClientKind::NonInvite, Transport::Reliable, t, 1000, &mut out);
        assert_eq!(tx.state(), ClientState::Trying);
        assert_eq!(out.as_slice(), [Action::Start { timer: Timer::F, at: 33_000 }]);
    }

    #[test]
    fn invite_udp_no_answer_retransmits_then_times_out() {
        let mut d = udp(ClientKind::Invite);
        d.run();
        assert_eq!(d.times_of(Action::Retransmit), [500, 1500, 3500, 7500, 15_500, 31_500]);
        assert_eq!(
            d.log.iter().filter(|&&(_, a)| a != Action::Retransmit).copied().collect::<Vec<_>>(),
            [(32_000, Action::Timeout), (32_000, Action::Terminated)]
        );
        assert_eq!(d.tx.state(), ClientState::Terminated);
    }

    #[test]
    fn invite_late_timer_counts_from_when_it_fired() {
        let mut d = udp(ClientKind::Invite);
        d.pending.clear();
        d.feed(600, Event::Timer(Timer::A));
        assert_eq!(d.timer_at(Timer::A), Some(1600));
    }

    #[test]
    fn invite_provisional_stops_retransmissions() {
        let mut d = udp(ClientKind::Invite);
        d.run_until(1000);
        d.feed(1000, resp(100));
        assert_eq!(d.tx.state(), ClientState::Proceeding);
        assert!(d.pending.is_empty(), "A and B stop in Proceeding: {:?}", d.pending);
        d.feed(2000, resp(180));
        d.run_until(200_000);
        assert_eq!(d.times_of(Action::Retransmit), [500]);
        assert_eq!(d.times_of(Action::PassUp(Code(100))), [1000]);
        assert_eq!(d.times_of(Action::PassUp(Code(180))), [2000]);
        assert_eq!(d.tx.state(), ClientState::Proceeding, "Timer C of the proxy ends this");
        d.feed(200_000, resp(200));
        assert_eq!(d.times_of(Action::PassUp(Code(200))), [200_000]);
        assert_eq!(d.times_of(Action::Terminated), [200_000]);
    }

    #[test]
    fn invite_failure_acks_each_copy_and_passes_up_once() {
        let mut d = udp(ClientKind::Invite);
        d.run_until(1000);
        d.feed(1000, resp(486));
        assert_eq!(d.tx.state(), ClientState::Completed);
        assert_eq!(d.pending, [(Timer::D, 33_000)]);
        d.feed(2000, resp(486));
        d.feed(2500, resp(180));
        assert_ignored(&mut d.tx, resp(200), 2600);
        d.run();
        assert_eq!(
            d.log,
            [
                (500, Action::Retransmit),
                (1000, Action::PassUp(Code(486))),
                (1000, Action::SendAck(Code(486))),
                (2000, Action::SendAck(Code(486))),
                (33_000, Action::Terminated),
            ]
        );
    }

    #[test]
    fn invite_failure_from_proceeding() {
        let mut d = udp(ClientKind::Invite);
        d.feed(100, resp(183));
        d.feed(5000, resp(603));
        assert_eq!(d.pending, [(Timer::D, 37_000)]);
        d.run();
        assert_eq!(d.count(|a| matches!(a, Action::PassUp(_))), 2);
        assert_eq!(d.times_of(Action::SendAck(Code(603))), [5000]);
        assert_eq!(d.times_of(Action::Terminated), [37_000]);
    }

    #[test]
    fn invite_2xx_terminates() {
        let mut d = udp(ClientKind::Invite);
        d.run_until(2000);
        d.feed(2000, resp(200));
        assert_eq!(
            d.log,
            [
                (500, Action::Retransmit),
                (1500, Action::Retransmit),
                (2000, Action::PassUp(Code(200))),
                (2000, Action::Terminated)
            ]
        );
        assert_ignored(&mut d.tx, resp(200), 2100);
        // After a 1xx too.
        let mut d = udp(ClientKind::Invite);
        d.feed(10, resp(180));
        d.feed(20, resp(200));
        assert_eq!(d.times_of(Action::Terminated), [20]);
    }

    #[test]
    fn invite_reliable_has_no_a_and_zero_d() {
        let mut d = tcp(ClientKind::Invite);
        assert_eq!(d.pending, [(Timer::B, 32_000)]);
        d.feed(3000, resp(404));
        assert_eq!(
            d.log,
            [(3000, Action::PassUp(Code(404))), (3000, Action::SendAck(Code(404))), (3000, Action::Terminated)]
        );
        let mut d = tcp(ClientKind::Invite);
        d.run();
        assert_eq!(d.log, [(32_000, Action::Timeout), (32_000, Action::Terminated)]);
    }

    #[test]
    fn invite_transport_error() {
        let mut d = udp(ClientKind::Invite);
        d.run_until(600);
        d.feed(600, Event::TransportError);
        assert_eq!(d.log, [(500, Action::Retransmit), (600, Action::TransportFailed), (600, Action::Terminated)]);
        let mut d = udp(ClientKind::Invite);
        d.feed(10, resp(100));
        assert_ignored(&mut d.tx, Event::TransportError, 20);
        d.feed(30, resp(500));
        assert_ignored(&mut d.tx, Event::TransportError, 40);
    }

    #[test]
    fn non_invite_udp_no_answer_retransmits_capped_at_t2() {
        let mut d = udp(ClientKind::NonInvite);
        d.run();
        assert_eq!(
            d.times_of(Action::Retransmit),
            [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
        );
        assert_eq!(
            d.log.iter().filter(|&&(_, a)| a != Action::Retransmit).copied().collect::<Vec<_>>(),
            [(32_000, Action::Timeout), (32_000, Action::Terminated)]
        );
    }

    #[test]
    fn non_invite_provisional_retransmits_every_t2() {
        let mut d = udp(ClientKind::NonInvite);
        d.run_until(600);
        d.feed(600, resp(100));
        assert_eq!(d.tx.state(), ClientState::Proceeding);
        assert_eq!(d.timer_at(Timer::E), Some(1500), "E keeps its deadline");
        d.run();
        assert_eq!(d.times_of(Action::Retransmit), [500, 1500, 5500, 9500, 13_500, 17_500, 21_500, 25_500, 29_500]);
        assert_eq!(d.times_of(Action::Timeout), [32_000]);
        assert_eq!(d.times_of(Action::PassUp(Code(100))), [600]);
        // A provisional before the first retransmission.
        let mut d = udp(ClientKind::NonInvite);
        d.feed(100, resp(100));
        d.feed(200, resp(100));
        d.run_until(13_000);
        assert_eq!(d.times_of(Action::Retransmit), [500, 4500, 8500, 12_500]);
        assert_eq!(d.times_of(Action::PassUp(Code(100))), [100, 200]);
    }

    #[test]
    fn non_invite_final_then_k_and_absorbs() {
        let mut d = udp(ClientKind::NonInvite);
        d.run_until(2000);
        d.feed(2000, resp(200));
        assert_eq!(d.tx.state(), ClientState::Completed);
        assert_eq!(d.pending, [(Timer::K, 7000)]);
        let before = d.log.len();
        d.feed(2500, resp(200));
        d.feed(2600, resp(100));
        d.feed(2700, resp(500));
        assert_eq!(d.log.len(), before, "absorbed");
        d.run();
        assert_eq!(
            d.log,
            [
                (500, Action::Retransmit),
                (1500, Action::Retransmit),
                (2000, Action::PassUp(Code(200))),
                (7000, Action::Terminated)
            ]
        );
        // From Proceeding, with a failure.
        let mut d = udp(ClientKind::NonInvite);
        d.feed(10, resp(180));
        d.feed(20, resp(404));
        d.run();
        assert_eq!(d.times_of(Action::PassUp(Code(404))), [20]);
        assert_eq!(d.times_of(Action::Terminated), [5020]);
    }

    #[test]
    fn non_invite_reliable_has_no_e_and_zero_k() {
        let mut d = tcp(ClientKind::NonInvite);
        assert_eq!(d.pending, [(Timer::F, 32_000)]);
        d.feed(700, resp(202));
        assert_eq!(d.log, [(700, Action::PassUp(Code(202))), (700, Action::Terminated)]);
        let mut d = tcp(ClientKind::NonInvite);
        d.run();
        assert_eq!(d.log, [(32_000, Action::Timeout), (32_000, Action::Terminated)]);
    }

    #[test]
    fn non_invite_transport_error() {
        for provisional in [false, true] {
            let mut d = udp(ClientKind::NonInvite);
            if provisional {
                d.feed(10, resp(100));
            }
            d.feed(20, Event::TransportError);
            assert_eq!(d.times_of(Action::TransportFailed), [20]);
            assert_eq!(d.times_of(Action::Terminated), [20]);
        }
        let mut d = udp(ClientKind::NonInvite);
        d.feed(10, resp(200));
        assert_ignored(&mut d.tx, Event::TransportError, 20);
    }

    #[test]
    fn custom_timers_scale_the_schedule() {
        let t = Timers { t1: 100, t2: 1000, t4: 2500, c: 180_000, no_reply: 6400 };
        let mut d = Driver::start(ClientKind::Invite, Transport::Unreliable, t);
        d.run();
        assert_eq!(d.times_of(Action::Retransmit), [100, 300, 700, 1500, 3100, 6300]);
        assert_eq!(d.times_of(Action::Timeout), [6400]);

        let mut d = Driver::start(ClientKind::Invite, Transport::Unreliable, t);
        d.feed(50, resp(500));
        d.run();
        assert_eq!(d.times_of(Action::Terminated), [32_050], "Timer D stays 32 s");

        let mut d = Driver::start(ClientKind::NonInvite, Transport::Unreliable, t);
        d.run();
        assert_eq!(d.times_of(Action::Retransmit), [100, 300, 700, 1500, 2500, 3500, 4500, 5500]);
        assert_eq!(d.times_of(Action::Timeout), [6400]);

        let mut d = Driver::start(ClientKind::NonInvite, Transport::Unreliable, t);
        d.feed(50, resp(200));
        d.run();
        assert_eq!(d.times_of(Action::Terminated), [2550], "Timer K is T4");

        let t = Timers { t1: 1000, t2: 1500, t4: 5000, c: 180_000, no_reply: 64_000 };
        let mut d = Driver::start(ClientKind::NonInvite, Transport::Unreliable, t);
        d.run_until(7000);
        assert_eq!(d.times_of(Action::Retransmit), [1000, 2500, 4000, 5500, 7000]);
    }

    #[test]
    fn ignored_events_push_nothing() {
        let mut d = udp(ClientKind::Invite);
        let tx = &mut d.tx;
        for ev in [
            Event::Request { ack: false },
            Event::Request { ack: true },
            Event::TuResponse(Code(200)),
            Event::Timer(Timer::C),
            Event::Timer(Timer::D),
            Event::Timer(Timer::E),
            Event::Timer(Timer::F),
            Event::Timer(Timer::G),
            Event::Timer(Timer::K),
            resp(99),
            resp(700),
            resp(0),
        ] {
            assert_ignored(tx, ev, 10);
        }
        // Stopped by a provisional.
        let mut out = Actions::new();
        tx.handle(resp(100), 100, &mut out).unwrap();
        assert_ignored(tx, Event::Timer(Timer::A), 500);
        assert_ignored(tx, Event::Timer(Timer::B), 32_000);

        let mut d = udp(ClientKind::NonInvite);
        let tx = &mut d.tx;
        for t in [Timer::A, Timer::B, Timer::C, Timer::D, Timer::H, Timer::K] {
            assert_ignored(tx, Event::Timer(t), 100_000);
        }
        assert_ignored(tx, Event::TuResponse(Code(100)), 10);
        // Completed: E and F are stopped.
        let mut out = Actions::new();
        tx.handle(resp(200), 100, &mut out).unwrap();
        assert_ignored(tx, Event::Timer(Timer::E), 500);
        assert_ignored(tx, Event::Timer(Timer::F), 32_000);

        // Terminated: everything.
        let mut d = udp(ClientKind::NonInvite);
        d.run();
        for ev in [
            resp(100),
            resp(200),
            Event::TransportError,
            Event::Timer(Timer::E),
            Event::Timer(Timer::F),
            Event::Timer(Timer::K),
        ] {
            assert_ignored(&mut d.tx, ev, 100_000);
        }
    }

    #[test]
    fn terminated_comes_without_stops() {
        let t = Timers::default();
        let mut out = Actions::new();
        let mut tx = ClientTransaction::start(ClientKind::Invite, Transport::Unreliable, t, 0, &mut out);
        out.clear();
        tx.handle(resp(200), 1, &mut out).unwrap();
        assert_eq!(out.as_slice(), [Action::PassUp(Code(200)), Action::Terminated]);
        out.clear();
        let mut tx = ClientTransaction::start(ClientKind::Invite, Transport::Unreliable, t, 0, &mut out);
        out.clear();
        tx.handle(Event::Timer(Timer::B), 32_000, &mut out).unwrap();
        assert_eq!(out.as_slice(), [Action::Timeout, Action::Terminated]);
        out.clear();
        let mut tx = ClientTransaction::start(ClientKind::NonInvite, Transport::Reliable, t, 0, &mut out);
        out.clear();
        tx.handle(resp(404), 1, &mut out).unwrap();
        assert_eq!(out.as_slice(), [Action::PassUp(Code(404)), Action::Terminated]);
        out.clear();
        let mut tx = ClientTransaction::start(ClientKind::NonInvite, Transport::Unreliable, t, 0, &mut out);
        out.clear();
        tx.handle(Event::TransportError, 1, &mut out).unwrap();
        assert_eq!(out.as_slice(), [Action::TransportFailed, Action::Terminated]);
    }

    #[test]
    fn at_most_five_actions() {
        // The largest push: INVITE failure in Calling over UDP (PassUp, SendAck, Stop A,
        // Stop B, Start D).
        let mut out = Actions::new();
        let mut tx =
            ClientTransaction::start(ClientKind::Invite, Transport::Unreliable, Timers::default(), 0, &mut out);
        out.clear();
        tx.handle(resp(486), 1, &mut out).unwrap();
        assert_eq!(
            out.as_slice(),
            [
                Action::PassUp(Code(486)),
                Action::SendAck(Code(486)),
                Action::Stop(Timer::A),
                Action::Stop(Timer::B),
                Action::Start { timer: Timer::D, at: 32_001 },
            ]
        );
    }
}
