//! INVITE and non-INVITE server transactions (RFC 3261 §17.2).
//!
//! A [`ServerTransaction`] is created when a request arrives that matches no existing
//! transaction (§17.2.3). From then on the owner feeds it:
//!
//! * [`Event::Request`] for every retransmission of the request (and, for an INVITE, the ACK
//!   matched to it, `ack: true`);
//! * [`Event::TuResponse`] for every response the transaction user sends through it;
//! * [`Event::Timer`] when a timer the transaction started fires;
//! * [`Event::TransportError`] when sending failed.
//!
//! **Who sends what.** The owner sends each response the transaction user gives it, right
//! away, and stores its bytes as the last response; the transaction only keeps track that it
//! was sent and never answers a [`Event::TuResponse`] with [`Action::Retransmit`]. The
//! transaction asks for a *re*transmission of the last response ([`Action::Retransmit`]) when
//! the request is retransmitted (§17.2.1, §17.2.2) or Timer G fires (§17.2.1).
//!
//! **100 Trying.** An INVITE server transaction does not generate 100 Trying itself: the TU
//! (the proxy) decides (§17.2.1 allows the 200 ms rule; a stateful proxy sends it at once per
//! §16.2), and sends it as an ordinary [`Event::TuResponse`]. Until some provisional
//! response has gone out, a retransmitted INVITE is absorbed without an action;
//! [`ServerTransaction::responded`] tells the TU whether anything was sent yet.
//!
//! **Timers.** The transaction starts timers with [`Action::Start`] and stops them with
//! [`Action::Stop`]; it honours an [`Event::Timer`] only for a timer it considers running
//! (a stale or foreign timer returns [`Ignored`]). [`Action::Terminated`] implies that every
//! timer of the transaction is dead: no [`Action::Stop`] precedes it, the owner drops the
//! transaction's timers together with its state.
//!
//! **2xx to an INVITE.** As in RFC 3261 §17.2.1, a 2xx sent in Proceeding terminates the
//! transaction; retransmissions of the 2xx and its ACK are the TU's (core's) business. RFC
//! 6026's Accepted state (Timer L) is not implemented.

use super::{Action, Actions, Code, Event, Ignored, Timer, Timers, Transport};

/// Which state machine a server transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// INVITE server transaction (§17.2.1, Figure 7).
    Invite,
    /// Non-INVITE server transaction (§17.2.2, Figure 8); never for ACK, which has no
    /// transaction of its own.
    NonInvite,
}

/// The states of Figures 7 and 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// INVITE: from creation until a final response. Non-INVITE: after a provisional
    /// response, until a final one.
    Proceeding,
    /// Non-INVITE only: from creation until the TU's first response.
    Trying,
    /// A final response (INVITE: 300–699) was sent; INVITE waits for the ACK (G, H),
    /// non-INVITE for request retransmissions (J).
    Completed,
    /// INVITE only: the ACK arrived; absorbing ACK retransmissions (I).
    Confirmed,
    /// Over: the owner frees the transaction.
    Terminated,
}

/// Bit of each server timer in [`ServerTransaction::running`].
fn bit(timer: Timer) -> Option<u8> {
    match timer {
        Timer::G => Some(1),
        Timer::H => Some(2),
        Timer::I => Some(4),
        Timer::J => Some(8),
        _ => None,
    }
}

/// A server transaction's state: a few dozen bytes, no message (the owner keeps the request
/// and the last response).
#[derive(Clone, Debug)]
pub struct ServerTransaction {
    kind: ServerKind,
    transport: Transport,
    timers: Timers,
    state: ServerState,
    /// A provisional or final response was sent.
    responded: bool,
    /// Timer G's current interval (INVITE, unreliable, Completed).
    g_interval: u64,
    /// Running timers, one bit each (see [`bit`]).
    running: u8,
}

impl ServerTransaction {
    /// Created when a request that matches no transaction arrives (§17.2.3): an INVITE
    /// starts in Proceeding, any other request in Trying. No timer runs yet and nothing is
    /// pushed onto `out` (it is taken for symmetry with the client transactions); the TU
    /// sends 100 Trying if it wants to (§17.2.1).
    pub fn new(
        kind: ServerKind,
        transport: Transport,
        timers: Timers,
        now: u64,
        out: &mut Actions,
    ) -> ServerTransaction {
        let _ = (now, out);
        let state = match kind {
            // §17.2.1: "the server transaction MUST ... enter the Proceeding state".
            ServerKind::Invite => ServerState::Proceeding,
            // §17.2.2: "The state machine is initialized in the Trying state".
            ServerKind::NonInvite => ServerState::Trying,
        };
        ServerTransaction { kind, transport, timers, state, responded: false, g_interval: timers.t1, running: 0 }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Which state machine this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Whether the transaction has sent a provisional or final response yet (for the TU's
    /// 100 Trying decision).
    pub fn responded(&self) -> bool {
        self.responded
    }

    /// Feeds one event at time `now` (ms); actions are appended to `out`. Returns
    /// [`Ignored`], with nothing pushed and nothing changed, when the event does not apply:
    /// a response ([`Event::Response`] is for clients), a timer that is not running, an ACK
    /// to a non-INVITE transaction or before a final response, a TU response after the final
    /// one or with a code outside 100–699, anything after Terminated.
    pub fn handle(&mut self, ev: Event, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        if self.state == ServerState::Terminated {
            return Err(Ignored);
        }
        match ev {
            Event::Response(_) => Err(Ignored),
            // §17.2.4: a transport failure is reported to the TU and the transaction ends.
            Event::TransportError => {
                out.push(Action::TransportFailed);
                self.terminate(out);
                Ok(())
            }
            Event::Timer(timer) => {
                let b = bit(timer).ok_or(Ignored)?;
                if self.running & b == 0 {
                    return Err(Ignored);
                }
                self.running &= !b;
                match self.kind {
                    ServerKind::Invite => self.invite_timer(timer, now, out),
                    ServerKind::NonInvite => self.non_invite_timer(timer, out),
                }
                Ok(())
            }
            Event::Request { ack } => match self.kind {
                ServerKind::Invite => self.invite_request(ack, now, out),
                ServerKind::NonInvite if ack => Err(Ignored),
                ServerKind::NonInvite => self.non_invite_request(out),
            },
            Event::TuResponse(code) => match self.kind {
                ServerKind::Invite => self.invite_response(code, now, out),
                ServerKind::NonInvite => self.non_invite_response(code, now, out),
            },
        }
    }

    fn start(&mut self, timer: Timer, at: u64, out: &mut Actions) {
        if let Some(b) = bit(timer) {
            self.running |= b;
        }
        out.push(Action::Start { timer, at });
    }

    fn stop(&mut self, timer: Timer, out: &mut Actions) {
        let b = bit(timer).unwrap_or(0);
        if self.running & b != 0 {
            self.running &= !b;
            out.push(Action::Stop(timer));
        }
    }

    fn terminate(&mut self, out: &mut Actions) {
        self.state = ServerState::Terminated;
        self.running = 0;
        out.push(Action::Terminated);
    }

    // ----- INVITE server, §17.2.1 -----

    fn invite_request(&mut self, ack: bool, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        match (self.state, ack) {
            // §17.2.1: "If a request retransmission is received while in the "Proceeding"
            // state, the most recent provisional response that was received from the TU MUST
            // be passed to the transport layer for retransmission." None sent yet: absorbed.
            (ServerState::Proceeding, false) => {
                if self.responded {
                    out.push(Action::Retransmit);
                }
                Ok(())
            }
            // §17.2.1: "while in the "Completed" state, if a request retransmission is
            // received, the server SHOULD pass the response to the transport for
            // retransmission."
            (ServerState::Completed, false) => {
                out.push(Action::Retransmit);
                Ok(())
            }
            // §17.2.1: "If an ACK is received while the server transaction is in the
            // "Completed" state, the server transaction MUST transition to the "Confirmed"
            // state. As Timer G is ignored in this state, any retransmissions of the
            // response will cease." Timer I is T4 for unreliable transports, zero for
            // reliable ones.
            (ServerState::Completed, true) => {
                self.stop(Timer::G, out);
                self.stop(Timer::H, out);
                match self.transport {
                    Transport::Unreliable => {
                        self.state = ServerState::Confirmed;
                        self.start(Timer::I, now.saturating_add(self.timers.t4), out);
                    }
                    Transport::Reliable => self.terminate(out),
                }
                Ok(())
            }
            // §17.2.1: "The purpose of the "Confirmed" state is to absorb any additional ACK
            // messages that arrive" — and INVITE retransmissions that cross the ACK (Figure 7
            // has no transition for them, the response was already acknowledged).
            (ServerState::Confirmed, _) => Ok(()),
            // An ACK in Proceeding acknowledges nothing this transaction sent.
            _ => Err(Ignored),
        }
    }

    fn invite_response(&mut self, code: Code, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        if self.state != ServerState::Proceeding {
            // §17.2.1: the TU passes responses only while Proceeding; after the final
            // response there is nothing more to send.
            return Err(Ignored);
        }
        if code.is_provisional() {
            // §17.2.1: "The TU passes any number of provisional responses to the server
            // transaction. So long as the server transaction is in the "Proceeding" state,
            // each of these MUST be passed to the transport layer for transmission." The
            // owner sends it; remembered for retransmissions.
            self.responded = true;
            Ok(())
        } else if code.is_success() {
            // §17.2.1: "If, while in the "Proceeding" state, the TU passes a 2xx response to
            // the server transaction, the server transaction MUST pass this response to the
            // transport layer for transmission. ... The server transaction MUST then
            // transition to the "Terminated" state."
            self.responded = true;
            self.terminate(out);
            Ok(())
        } else if code.is_final_failure() {
            // §17.2.1: "While in the "Proceeding" state, if the TU passes a response with
            // status code from 300 to 699 to the server transaction, the response MUST be
            // passed to the transport layer for transmission, and the state machine MUST
            // enter the "Completed" state. For unreliable transports, timer G is set to fire
            // in T1 seconds ... When the "Completed" state is entered, timer H MUST be set
            // to fire in 64*T1 seconds for all transports."
            self.responded = true;
            self.state = ServerState::Completed;
            if self.transport == Transport::Unreliable {
                self.g_interval = self.timers.t1;
                self.start(Timer::G, now.saturating_add(self.g_interval), out);
            }
            self.start(Timer::H, now.saturating_add(self.timers.t1x64()), out);
            Ok(())
        } else {
            Err(Ignored)
        }
    }

    fn invite_timer(&mut self, timer: Timer, now: u64, out: &mut Actions) {
        match timer {
            // §17.2.1: "If timer G fires, the response is passed to the transport layer once
            // more for retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds.
            // From then on, when timer G fires, the response is passed to the transport
            // again for transmission, and timer G is reset with a value that doubles, unless
            // that value exceeds T2, in which case it is reset with the value of T2."
            Timer::G => {
                out.push(Action::Retransmit);
                self.g_interval = self.g_interval.saturating_mul(2).min(self.timers.t2);
                self.start(Timer::G, now.saturating_add(self.g_interval), out);
            }
            // §17.2.1: "If timer H fires while in the "Completed" state, it implies that the
            // ACK was never received. In this case, the server transaction MUST transition
            // to the "Terminated" state, and MUST indicate to the TU that a transaction
            // failure has occurred."
            Timer::H => {
                out.push(Action::Timeout);
                self.terminate(out);
            }
            // §17.2.1: "Once timer I fires, the server MUST transition to the "Terminated"
            // state." (J never runs for an INVITE; `handle` only gets here for G, H, I.)
            _ => self.terminate(out),
        }
    }

    // ----- non-INVITE server, §17.2.2 -----

    fn non_invite_request(&mut self, out: &mut Actions) -> Result<(), Ignored> {
        match self.state {
            // §17.2.2: "Once in the "Trying" state, any further request retransmissions are
            // discarded."
            ServerState::Trying => Ok(()),
            // §17.2.2: "If a retransmission of the request is received while in the
            // "Proceeding" state, the most recently sent provisional response MUST be passed
            // to the transport layer for retransmission." And: "While in the "Completed"
            // state, the server transaction MUST pass the final response to the transport
            // layer for retransmission whenever a retransmission of the request is
            // received."
            ServerState::Proceeding | ServerState::Completed => {
                out.push(Action::Retransmit);
                Ok(())
            }
            _ => Err(Ignored),
        }
    }

    fn non_invite_response(&mut self, code: Code, now: u64, out: &mut Actions) -> Result<(), Ignored> {
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            // §17.2.2: "Any other final responses passed by the TU to the server transaction
            // MUST be discarded while in the "Completed" state."
            return Err(Ignored);
        }
        if code.is_provisional() {
            // §17.2.2: "While in the "Trying" state, if the TU passes a provisional response
            // to the server transaction, the server transaction MUST enter the "Proceeding"
            // state. ... Any further provisional responses that are received from the TU
            // while in the "Proceeding" state MUST be passed to the transport layer."
            self.responded = true;
            self.state = ServerState::Proceeding;
            Ok(())
        } else if code.is_success() || code.is_final_failure() {
            // §17.2.2: "If the TU passes a final response (status codes 200-699) to the
            // server while in the "Proceeding" state, the transaction MUST enter the
            // "Completed" state ... When the server transaction enters the "Completed"
            // state, it MUST set Timer J to fire in 64*T1 seconds for unreliable transports,
            // and zero seconds for reliable transports." (Trying → Completed likewise, Figure
            // 8.)
            self.responded = true;
            match self.transport {
                Transport::Unreliable => {
                    self.state = ServerState::Completed;
                    self.start(Timer::J, now.saturating_add(self.timers.t1x64()), out);
                }
                Transport::Reliable => self.terminate(out),
            }
            Ok(())
        } else {
            Err(Ignored)
        }
    }

    fn non_invite_timer(&mut self, _timer: Timer, out: &mut Actions) {
        // Only J runs here. §17.2.2: "The server transaction remains in this state until
        // Timer J fires, at which point it MUST transition to the "Terminated" state."
        self.terminate(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const ACK: Event = Event::Request { ack: true };
    const REQ: Event = Event::Request { ack: false };

    /// Owns one transaction and its pending timers; time is virtual.
    struct Driver {
        tx: ServerTransaction,
        now: u64,
        pending: Vec<(Timer, u64)>,
        /// Every action with the time it was pushed.
        log: Vec<(u64, Action)>,
        done: bool,
    }

    impl Driver {
        fn new(kind: ServerKind, transport: Transport, timers: Timers) -> Driver {
            let mut out = Actions::new();
            let tx = ServerTransaction::new(kind, transport, timers, 0, &mut out);
            let mut d = Driver { tx, now: 0, pending: Vec::new(), log: Vec::new(), done: false };
            d.apply(out);
            d
        }

        fn apply(&mut self, out: Actions) {
            for a in out {
                match a {
                    Action::Start { timer, at } => {
                        assert!(at >= self.now, "{timer:?} started in the past");
                        self.pending.retain(|&(t, _)| t != timer);
                        self.pending.push((timer, at));
                    }
                    Action::Stop(timer) => self.pending.retain(|&(t, _)| t != timer),
                    Action::Terminated => {
                        assert!(!self.done, "terminated twice");
                        self.done = true;
                        self.pending.clear();
                    }
                    _ => {}
                }
                self.log.push((self.now, a));
            }
        }

        /// Feeds `ev` at the current time.
        fn feed(&mut self, ev: Event) -> Result<(), Ignored> {
            let mut out = Actions::new();
            let r = self.tx.handle(ev, self.now, &mut out);
            if r.is_err() {
                assert!(out.is_empty(), "Ignored with actions {out:?}");
            }
            self.apply(out);
            r
        }

        /// Fires the timers due up to `until` (inclusive), in order, then sets now = `until`.
        fn run_until(&mut self, until: u64) {
            while let Some(&(timer, at)) =
                self.pending.iter().filter(|&&(_, at)| at <= until).min_by_key(|&&(_, at)| at)
            {
                self.pending.retain(|&(t, _)| t != timer);
                self.now = at;
                self.feed(Event::Timer(timer)).expect("running timer honoured");
            }
            self.now = until;
        }

        /// Fires timers until none is left.
        fn run(&mut self) {
            self.run_until(u64::MAX / 2);
        }

        fn times(&self, want: Action) -> Vec<u64> {
            self.log.iter().filter(|&&(_, a)| a == want).map(|&(t, _)| t).collect()
        }

        /// When the transaction terminated.
        fn end(&self) -> Option<u64> {
            self.times(Action::Terminated).first().copied()
        }
    }

    fn udp(kind: ServerKind) -> Driver {
        Driver::new(kind, Transport::Unreliable, Timers::default())
    }

    fn tcp(kind: ServerKind) -> Driver {
        Driver::new(kind, Transport::Reliable, Timers::default())
    }

    #[test]
    fn initial_states() {
        let d = udp(ServerKind::Invite);
        assert_eq!(d.tx.state(), ServerState::Proceeding);
        assert_eq!(d.tx.kind(), ServerKind::Invite);
        assert!(!d.tx.responded());
        assert!(d.log.is_empty());
        let d = udp(ServerKind::NonInvite);
        assert_eq!(d.tx.state(), ServerState::Trying);
        assert!(!d.tx.responded());
        assert!(d.log.is_empty());
    }

    #[test]
    fn invite_udp_no_ack_g_doubles_to_t2_until_h() {
        let mut d = udp(ServerKind::Invite);
        d.feed(Event::TuResponse(Code(486))).unwrap();
        assert_eq!(d.tx.state(), ServerState::Completed);
        assert!(d.tx.responded());
        assert_eq!(
            d.log,
            [(0, Action::Start { timer: Timer::G, at: 500 }), (0, Action::Start { timer: Timer::H, at: 32_000 }),]
        );
        d.run();
        assert_eq!(
            d.times(Action::Retransmit),
            [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
        );
        assert_eq!(d.times(Action::Timeout), [32_000]);
        assert_eq!(d.end(), Some(32_000));
        assert_eq!(d.tx.state(), ServerState::Terminated);
        // Timeout comes right before Terminated.
        let n = d.log.len();
        assert_eq!(d.log[n - 2..], [(32_000, Action::Timeout), (32_000, Action::Terminated)]);
    }

    #[test]
    fn invite_udp_ack_confirms_then_i() {
        let mut d = udp(ServerKind::Invite);
        d.feed(Event::TuResponse(Code(486))).unwrap();
        d.run_until(2000);
        assert_eq!(d.times(Action::Retransmit), [500, 1500]);
        d.feed(ACK).unwrap();
        assert_eq!(d.tx.state(), ServerState::Confirmed);
        let n = d.log.len();
        assert_eq!(
            d.log[n - 3..],
            [
                (2000, Action::Stop(Timer::G)),
                (2000, Action::Stop(Timer::H)),
                (2000, Action::Start { timer: Timer::I, at: 7000 }),
            ]
        );
        // ACK and INVITE retransmissions are absorbed in Confirmed.
        d.run_until(3000);
        d.feed(ACK).unwrap();
        d.feed(REQ).unwrap();
        assert_eq!(d.log.len(), n);
        d.run();
        assert_eq!(d.times(Action::Retransmit), [500, 1500]);
        assert_eq!(d.times(Action::Timeout), []);
        assert_eq!(d.end(), Some(7000));
        assert_eq!(d.tx.state(), ServerState::Terminated);
    }

    #[test]
    fn invite_reliable_no_g_and_i_zero() {
        let mut d = tcp(ServerKind::Invite);
        d.feed(Event::TuResponse(Code(603))).unwrap();
        assert_eq!(d.log, [(0, Action::Start { timer: Timer::H, at: 32_000 })]);
        d.run_until(1000);
        assert_eq!(d.times(Action::Retransmit), []);
        d.feed(ACK).unwrap();
        assert_eq!(d.log[1..], [(1000, Action::Stop(Timer::H)), (1000, Action::Terminated)]);
        assert_eq!(d.tx.state(), ServerState::Terminated);
        // Reliable without ACK: H alone at 64·T1.
        let mut d = tcp(ServerKind::Invite);
        d.feed(Event::TuResponse(Code(404))).unwrap();
        d.run();
        assert_eq!(d.times(Action::Retransmit), []);
        assert_eq!(d.times(Action::Timeout), [32_000]);
        assert_eq!(d.end(), Some(32_000));
    }

    #[test]
    fn invite_request_retransmissions() {
        let mut d = udp(ServerKind::Invite);
        // Nothing sent yet: absorbed (the TU sends 100 Trying itself).
        d.feed(REQ).unwrap();
        assert!(d.log.is_empty());
        d.feed(Event::TuResponse(Code(180))).unwrap();
        assert!(d.log.is_empty(), "the owner sends TU responses itself");
        assert!(d.tx.responded());
        assert_eq!(d.tx.state(), ServerState::Proceeding);
        d.now = 100;
        d.feed(REQ).unwrap();
        assert_eq!(d.log, [(100, Action::Retransmit)]);
        d.feed(Event::TuResponse(Code(183))).unwrap();
        d.feed(Event::TuResponse(Code(480))).unwrap();
        d.log.clear();
        d.now = 200;
        d.feed(REQ).unwrap();
        assert_eq!(d.log, [(200, Action::Retransmit)]);
        d.feed(ACK).unwrap();
        d.log.clear();
        d.feed(REQ).unwrap();
        assert!(d.log.is_empty());
        assert_eq!(d.tx.state(), ServerState::Confirmed);
    }

    #[test]
    fn invite_2xx_terminates() {
        for transport in [Transport::Unreliable, Transport::Reliable] {
            let mut d = Driver::new(ServerKind::Invite, transport, Timers::default());
            d.feed(Event::TuResponse(Code(100))).unwrap();
            d.feed(Event::TuResponse(Code(200))).unwrap();
            assert_eq!(d.log, [(0, Action::Terminated)]);
            assert_eq!(d.tx.state(), ServerState::Terminated);
            assert_eq!(d.feed(ACK), Err(Ignored));
            assert_eq!(d.feed(REQ), Err(Ignored));
        }
    }

    #[test]
    fn invite_ignored_events() {
        let mut d = udp(ServerKind::Invite);
        // Proceeding: an ACK, a response, timers that are not running, bad codes.
        assert_eq!(d.feed(ACK), Err(Ignored));
        assert_eq!(d.feed(Event::Response(Code(200))), Err(Ignored));
        for t in [Timer::A, Timer::B, Timer::C, Timer::D, Timer::E, Timer::F] {
            assert_eq!(d.feed(Event::Timer(t)), Err(Ignored));
        }
        for t in [Timer::G, Timer::H, Timer::I, Timer::J, Timer::K] {
            assert_eq!(d.feed(Event::Timer(t)), Err(Ignored));
        }
        assert_eq!(d.feed(Event::TuResponse(Code(99))), Err(Ignored));
        assert_eq!(d.feed(Event::TuResponse(Code(700))), Err(Ignored));
        assert!(!d.tx.responded());
        // Completed: no second final response, I and J are not running.
        d.feed(Event::TuResponse(Code(500))).unwrap();
        d.log.clear();
        assert_eq!(d.feed(Event::TuResponse(Code(503))), Err(Ignored));
        assert_eq!(d.feed(Event::TuResponse(Code(180))), Err(Ignored));
        assert_eq!(d.feed(Event::TuResponse(Code(200))), Err(Ignored));
        assert_eq!(d.feed(Event::Timer(Timer::I)), Err(Ignored));
        assert_eq!(d.feed(Event::Timer(Timer::J)), Err(Ignored));
        // Confirmed: G and H were stopped; a late fire is ignored.
        d.feed(ACK).unwrap();
        d.log.clear();
        assert_eq!(d.feed(Event::Timer(Timer::G)), Err(Ignored));
        assert_eq!(d.feed(Event::Timer(Timer::H)), Err(Ignored));
        assert_eq!(d.feed(Event::TuResponse(Code(200))), Err(Ignored));
        assert!(d.log.is_empty());
        assert_eq!(d.tx.state(), ServerState::Confirmed);
        // Terminated: everything.
        d.run();
        d.log.clear();
        for ev in [REQ, ACK, Event::TransportError, Event::Timer(Timer::I)] {
            assert_eq!(d.feed(ev), Err(Ignored));
        }
        assert!(d.log.is_empty());
    }

    #[test]
    fn transport_error_terminates() {
        // INVITE, in Proceeding and in Completed.
        let mut d = udp(ServerKind::Invite);
        d.feed(Event::TransportError).unwrap();
        assert_eq!(d.log, [(0, Action::TransportFailed), (0, Action::Terminated)]);
        let mut d = udp(ServerKind::Invite);
        d.feed(Event::TuResponse(Code(486))).unwrap();
        d.log.clear();
        d.feed(Event::TransportError).unwrap();
        assert_eq!(d.log, [(0, Action::TransportFailed), (0, Action::Terminated)]);
        assert_eq!(d.tx.state(), ServerState::Terminated);
        // Non-INVITE, in Trying, Proceeding and Completed.
        for responses in [&[][..], &[Code(100)][..], &[Code(100), Code(200)][..]] {
            let mut d = udp(ServerKind::NonInvite);
            for &c in responses {
                d.feed(Event::TuResponse(c)).unwrap();
            }
            d.log.clear();
            d.feed(Event::TransportError).unwrap();
            assert_eq!(d.log, [(0, Action::TransportFailed), (0, Action::Terminated)]);
            assert_eq!(d.tx.state(), ServerState::Terminated);
        }
    }

    #[test]
    fn non_invite_udp() {
        let mut d = udp(ServerKind::NonInvite);
        // Trying: absorbed.
        d.feed(REQ).unwrap();
        d.feed(REQ).unwrap();
        assert!(d.log.is_empty());
        d.now = 300;
        d.feed(Event::TuResponse(Code(100))).unwrap();
        assert_eq!(d.tx.state(), ServerState::Proceeding);
        assert!(d.tx.responded());
        assert!(d.log.is_empty());
        d.feed(REQ).unwrap();
        assert_eq!(d.log, [(300, Action::Retransmit)]);
        d.feed(Event::TuResponse(Code(100))).unwrap();
        assert_eq!(d.tx.state(), ServerState::Proceeding);
        d.now = 1000;
        d.feed(Event::TuResponse(Code(200))).unwrap();
        assert_eq!(d.tx.state(), ServerState::Completed);
        assert_eq!(d.log[1..], [(1000, Action::Start { timer: Timer::J, at: 33_000 })]);
        d.run_until(5000);
        d.feed(REQ).unwrap();
        d.run_until(32_999);
        d.feed(REQ).unwrap();
        assert_eq!(d.times(Action::Retransmit), [300, 5000, 32_999]);
        d.run();
        assert_eq!(d.end(), Some(33_000));
        assert_eq!(d.tx.state(), ServerState::Terminated);
        assert_eq!(d.feed(REQ), Err(Ignored));
    }

    #[test]
    fn non_invite_final_from_trying() {
        let mut d = udp(ServerKind::NonInvite);
        d.feed(Event::TuResponse(Code(404))).unwrap();
        assert_eq!(d.tx.state(), ServerState::Completed);
        assert_eq!(d.log, [(0, Action::Start { timer: Timer::J, at: 32_000 })]);
        d.feed(REQ).unwrap();
        assert_eq!(d.times(Action::Retransmit), [0]);
        d.run();
        assert_eq!(d.end(), Some(32_000));
    }

    #[test]
    fn non_invite_reliable_j_zero() {
        let mut d = tcp(ServerKind::NonInvite);
        d.feed(Event::TuResponse(Code(180))).unwrap();
        d.now = 10;
        d.feed(Event::TuResponse(Code(202))).unwrap();
        assert_eq!(d.log, [(10, Action::Terminated)]);
        assert_eq!(d.tx.state(), ServerState::Terminated);
    }

    #[test]
    fn non_invite_ignored_events() {
        let mut d = udp(ServerKind::NonInvite);
        assert_eq!(d.feed(ACK), Err(Ignored));
        assert_eq!(d.feed(Event::Response(Code(200))), Err(Ignored));
        for t in [Timer::G, Timer::H, Timer::I, Timer::J, Timer::K, Timer::A] {
            assert_eq!(d.feed(Event::Timer(t)), Err(Ignored));
        }
        assert_eq!(d.feed(Event::TuResponse(Code(42))), Err(Ignored));
        assert_eq!(d.tx.state(), ServerState::Trying);
        d.feed(Event::TuResponse(Code(200))).unwrap();
        d.log.clear();
        // A TU response after the final one.
        assert_eq!(d.feed(Event::TuResponse(Code(200))), Err(Ignored));
        assert_eq!(d.feed(Event::TuResponse(Code(500))), Err(Ignored));
        assert_eq!(d.feed(Event::TuResponse(Code(100))), Err(Ignored));
        assert_eq!(d.feed(ACK), Err(Ignored));
        assert_eq!(d.feed(Event::Timer(Timer::G)), Err(Ignored));
        assert!(d.log.is_empty());
        assert_eq!(d.tx.state(), ServerState::Completed);
    }

    #[test]
    fn custom_timers_scale() {
        let timers = Timers { t1: 100, t2: 300, t4: 1000, ..Timers::default() };
        let mut d = Driver::new(ServerKind::Invite, Transport::Unreliable, timers);
        d.feed(Event::TuResponse(Code(486))).unwrap();
        d.run();
        // G: 100, 200, 300 (cap), 300, ... ; H at 6400.
        let mut want = std::vec![100, 300];
        let mut t = 600;
        while t < 6400 {
            want.push(t);
            t += 300;
        }
        assert_eq!(d.times(Action::Retransmit), want);
        assert_eq!(d.times(Action::Timeout), [6400]);
        assert_eq!(d.end(), Some(6400));

        let mut d = Driver::new(ServerKind::Invite, Transport::Unreliable, timers);
        d.feed(Event::TuResponse(Code(486))).unwrap();
        d.run_until(250);
        d.feed(ACK).unwrap();
        d.run();
        assert_eq!(d.times(Action::Retransmit), [100]);
        assert_eq!(d.end(), Some(1250));

        let mut d = Driver::new(ServerKind::NonInvite, Transport::Unreliable, timers);
        d.now = 7;
        d.feed(Event::TuResponse(Code(200))).unwrap();
        d.run();
        assert_eq!(d.end(), Some(6407));
    }

    #[test]
    fn stopped_timer_firing_late_is_ignored() {
        // G fires and is restarted at now + 2·T1; after the ACK stops it, a late fire (the
        // owner's Stop raced with the timer) is ignored.
        let mut d = udp(ServerKind::Invite);
        d.feed(Event::TuResponse(Code(486))).unwrap();
        d.run_until(500);
        assert_eq!(d.pending.iter().find(|p| p.0 == Timer::G), Some(&(Timer::G, 1500)));
        d.feed(ACK).unwrap();
        assert_eq!(d.feed(Event::Timer(Timer::G)), Err(Ignored));
    }

    #[test]
    fn action_counts_fit() {
        // The largest single call pushes three actions (ACK: Stop G, Stop H, Start I).
        let mut tx = ServerTransaction::new(
            ServerKind::Invite,
            Transport::Unreliable,
            Timers::default(),
            0,
            &mut Actions::new(),
        );
        let mut out = Actions::new();
        tx.handle(Event::TuResponse(Code(486)), 0, &mut out).unwrap();
        tx.handle(ACK, 1, &mut out).unwrap();
        assert_eq!(out.len(), 5);
        assert!(core::mem::size_of::<ServerTransaction>() <= 64);
    }
}
