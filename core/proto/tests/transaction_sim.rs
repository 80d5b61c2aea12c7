//! A deterministic simulation of a client and a server transaction talking over a lossy,
//! duplicating, reordering datagram network, in virtual milliseconds (RFC 3261 §17).
//!
//! For many seeds and loss rates it checks what must hold whatever the network does: the
//! client passes exactly one final response up or reports one timeout (never both, never
//! twice), a non-2xx INVITE answer is acknowledged, both transactions terminate within the
//! bounds of their timers, and with a perfect network nothing is retransmitted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ringsip_proto::transaction::client::{ClientKind, ClientState, ClientTransaction};
use ringsip_proto::transaction::server::{ServerKind, ServerState, ServerTransaction};
use ringsip_proto::transaction::{Action, Actions, Code, Event, Timer, Timers, Transport};

/// xorshift64*: reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Msg {
    Request,
    Ack,
    Response(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// A datagram reaches the server (`true`) or the client.
    Deliver(bool, Msg),
    /// A timer of the client (`false`) or the server, with the generation it was started in.
    Fire(bool, TimerKey, u64),
    /// The server's TU answers.
    Answer,
}

/// `Timer` as an orderable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey(u8);

fn key(t: Timer) -> TimerKey {
    TimerKey(t as u8)
}

const ALL: [Timer; 11] =
    [Timer::A, Timer::B, Timer::C, Timer::D, Timer::E, Timer::F, Timer::G, Timer::H, Timer::I, Timer::J, Timer::K];

fn timer(k: TimerKey) -> Timer {
    ALL[k.0 as usize]
}

struct Net {
    rng: Rng,
    loss: u64,
    dup: u64,
    queue: BinaryHeap<Reverse<(u64, u64, What)>>,
    seq: u64,
    sent: [u32; 2],
}

impl Net {
    fn at(&mut self, t: u64, w: What) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, w)));
    }
    /// Send `m` towards the server (`to_server`) or the client: lost, delayed 5–60 ms (so
    /// datagrams overtake each other), maybe duplicated.
    fn send(&mut self, now: u64, to_server: bool, m: Msg) {
        self.sent[usize::from(to_server)] += 1;
        let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            if self.rng.chance(self.loss) {
                continue;
            }
            let delay = 5 + self.rng.below(56);
            self.at(now + delay, What::Deliver(to_server, m));
        }
    }
}

#[derive(Default, Debug)]
struct Outcome {
    finals_up: u32,
    provisionals_up: u32,
    timeouts: u32,
    acks_sent: u32,
    client_end: Option<u64>,
    server_end: Option<u64>,
    server_timeout: bool,
    server_confirmed: bool,
    answered: bool,
    client_state: Option<ClientState>,
}

/// One transaction pair: the client sends at t=0; the server's TU answers `code` 100 ms after
/// the request first arrives (an INVITE gets a 180 first).
fn run(seed: u64, loss: u64, dup: u64, invite: bool, code: u16, timers: Timers) -> (Outcome, [u32; 2]) {
    let mut net = Net { rng: Rng(seed | 1), loss, dup, queue: BinaryHeap::new(), seq: 0, sent: [0, 0] };
    let mut out = Outcome::default();
    let mut gen_c = [0u64; 11];
    let mut gen_s = [0u64; 11];
    let mut acts = Actions::new();
    let ckind = if invite { ClientKind::Invite } else { ClientKind::NonInvite };
    let mut client = ClientTransaction::start(ckind, Transport::Unreliable, timers, 0, &mut acts);
    net.send(0, true, Msg::Request);
    let mut server: Option<ServerTransaction> = None;
    let mut last_response: Option<u16> = None;

    // apply actions of the client (false) or the server (true)
    fn apply(
        side_server: bool,
        acts: &mut Actions,
        now: u64,
        net: &mut Net,
        gens: &mut [u64; 11],
        out: &mut Outcome,
        last_response: Option<u16>,
    ) {
        for a in acts.drain(..) {
            match a {
                Action::Retransmit => {
                    if side_server {
                        if let Some(c) = last_response {
                            net.send(now, false, Msg::Response(c));
                        }
                    } else {
                        net.send(now, true, Msg::Request);
                    }
                }
                Action::SendAck(_) => {
                    out.acks_sent += 1;
                    net.send(now, true, Msg::Ack);
                }
                Action::PassUp(c) => {
                    if c.is_provisional() {
                        out.provisionals_up += 1;
                    } else {
                        out.finals_up += 1;
                    }
                }
                Action::Start { timer, at } => {
                    gens[timer as usize] += 1;
                    let g = gens[timer as usize];
                    net.at(at, What::Fire(side_server, key(timer), g));
                }
                Action::Stop(timer) => gens[timer as usize] += 1,
                Action::Timeout => {
                    if side_server {
                        out.server_timeout = true;
                    } else {
                        out.timeouts += 1;
                    }
                }
                Action::TransportFailed => panic!("no transport errors in this simulation"),
                Action::Terminated => {
                    let end = if side_server { &mut out.server_end } else { &mut out.client_end };
                    assert!(end.is_none(), "terminated twice");
                    *end = Some(now);
                }
            }
        }
    }
    apply(false, &mut acts, 0, &mut net, &mut gen_c, &mut out, None);

    while let Some(Reverse((now, _, what))) = net.queue.pop() {
        assert!(now < 200_000, "the simulation did not settle");
        match what {
            What::Deliver(true, m) => match (m, server.as_mut()) {
                (Msg::Request, None) => {
                    let kind = if invite { ServerKind::Invite } else { ServerKind::NonInvite };
                    server = Some(ServerTransaction::new(kind, Transport::Unreliable, timers, now, &mut acts));
                    apply(true, &mut acts, now, &mut net, &mut gen_s, &mut out, last_response);
                    if invite {
                        // the TU's provisional goes out at once
                        let s = server.as_mut().unwrap();
                        s.handle(Event::TuResponse(Code(180)), now, &mut acts).unwrap();
                        last_response = Some(180);
                        net.send(now, false, Msg::Response(180));
                        apply(true, &mut acts, now, &mut net, &mut gen_s, &mut out, last_response);
                    }
                    net.at(now + 100, What::Answer);
                }
                (Msg::Request, Some(s)) => {
                    let _ = s.handle(Event::Request { ack: false }, now, &mut acts);
                    apply(true, &mut acts, now, &mut net, &mut gen_s, &mut out, last_response);
                }
                (Msg::Ack, Some(s)) => {
                    if s.handle(Event::Request { ack: true }, now, &mut acts).is_ok()
                        && s.state() == ServerState::Confirmed
                    {
                        out.server_confirmed = true;
                    }
                    apply(true, &mut acts, now, &mut net, &mut gen_s, &mut out, last_response);
                }
                (Msg::Ack, None) => panic!("an ACK before any request reached the server"),
                (Msg::Response(_), _) => unreachable!(),
            },
            What::Deliver(false, Msg::Response(c)) => {
                let _ = client.handle(Event::Response(Code(c)), now, &mut acts);
                apply(false, &mut acts, now, &mut net, &mut gen_c, &mut out, None);
            }
            What::Deliver(false, m) => unreachable!("{m:?} to the client"),
            What::Answer => {
                let s = server.as_mut().unwrap();
                if s.handle(Event::TuResponse(Code(code)), now, &mut acts).is_ok() {
                    out.answered = true;
                    last_response = Some(code);
                    net.send(now, false, Msg::Response(code));
                }
                apply(true, &mut acts, now, &mut net, &mut gen_s, &mut out, last_response);
            }
            What::Fire(side_server, k, g) => {
                let gens = if side_server { &gen_s } else { &gen_c };
                if gens[k.0 as usize] != g {
                    continue; // stopped or restarted since
                }
                if side_server {
                    let s = server.as_mut().unwrap();
                    let _ = s.handle(Event::Timer(timer(k)), now, &mut acts);
                    apply(true, &mut acts, now, &mut net, &mut gen_s, &mut out, last_response);
                } else {
                    let _ = client.handle(Event::Timer(timer(k)), now, &mut acts);
                    apply(false, &mut acts, now, &mut net, &mut gen_c, &mut out, None);
                }
            }
        }
    }
    if let Some(s) = &server {
        assert_eq!(s.state(), ServerState::Terminated);
    }
    out.client_state = Some(client.state());
    (out, net.sent)
}

#[test]
fn a_perfect_network_needs_no_retransmission() {
    let t = Timers::default();
    for (invite, code) in [(true, 200), (true, 486), (false, 200), (false, 404)] {
        let (o, sent) = run(7, 0, 0, invite, code, t);
        assert_eq!((o.finals_up, o.timeouts), (1, 0), "invite {invite} {code}: {o:?}");
        // client: the request (+ one ACK for a non-2xx INVITE answer); server: responses
        let acks = u32::from(invite && code >= 300);
        assert_eq!(sent[1], 1 + acks, "invite {invite} {code}: requests sent");
        assert_eq!(o.acks_sent, acks);
        assert_eq!(sent[0], if invite { 2 } else { 1 }, "invite {invite} {code}: responses sent");
        if invite && code >= 300 {
            assert!(o.server_confirmed && !o.server_timeout);
            // D = 32 s after the final response reached the client
            let end = o.client_end.unwrap();
            assert!((32_000..32_300).contains(&end), "client ended at {end}");
            // I = T4 after the ACK arrived
            let s_end = o.server_end.unwrap();
            assert!((5_000..5_400).contains(&s_end), "server ended at {s_end}");
        }
    }
}

#[test]
fn whatever_the_network_does_each_side_ends_once_and_in_time() {
    let t = Timers::default();
    let mut timeouts = 0;
    let mut runs = 0;
    let mut left_to_timer_c = 0;
    for seed in 1..=300u64 {
        for (loss, dup) in [(10, 10), (30, 20), (60, 0)] {
            for (invite, code) in [(true, 486), (true, 200), (false, 200)] {
                let (o, _) = run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), loss, dup, invite, code, t);
                runs += 1;
                let ctx = format!("seed {seed} loss {loss} dup {dup} invite {invite} code {code}: {o:?}");
                if o.client_state == Some(ClientState::Proceeding) {
                    // an INVITE client past a provisional has no timer of its own (§17.1.1.2):
                    // when every copy of the final answer is lost (the server gives up on
                    // Timer H, or a 2xx is the UAS core's to retransmit), the proxy's Timer C
                    // ends the wait (§16.6 step 11), outside the transaction
                    assert!(invite && o.provisionals_up >= 1, "{ctx}");
                    assert_eq!((o.finals_up, o.timeouts), (0, 0), "{ctx}");
                    left_to_timer_c += 1;
                    continue;
                }
                assert_eq!(o.client_state, Some(ClientState::Terminated), "{ctx}");
                // exactly one outcome for the client's TU
                assert_eq!(o.finals_up + o.timeouts, 1, "{ctx}");
                timeouts += o.timeouts;
                if o.finals_up == 1 && invite && code >= 300 {
                    assert!(o.acks_sent >= 1, "a non-2xx final answer is acknowledged: {ctx}");
                }
                // the client ends by Timer B/F, or D/K after the final response, which comes
                // at the latest when the server last retransmits it: the request's first
                // arrival (within 64·T1) + the answer's 100 ms + Timer H/J (64·T1)
                let c_end = o.client_end.unwrap();
                assert!(c_end <= 2 * t.t1x64() + 100 + 32_000 + 200, "{ctx}");
                if let Some(s_end) = o.server_end {
                    // the request first reaches the server within 64·T1 (the client stops
                    // sending then); the TU answers 100 ms later; then H or J (64·T1), or
                    // I (T4) after an ACK, plus network delay
                    assert!(s_end <= 2 * t.t1x64() + 100 + t.t4 + 200, "{ctx}");
                    if invite && code >= 300 {
                        assert!(o.server_confirmed != o.server_timeout, "ACK or Timer H, exactly one: {ctx}");
                    }
                }
            }
        }
    }
    // at 60 % loss some transactions must time out: the simulation is not too kind
    assert!(timeouts > 0, "no timeout in {runs} runs");
    // and most INVITEs still complete inside the transaction
    assert!(left_to_timer_c * 10 < runs, "{left_to_timer_c} of {runs} runs were left to Timer C");
}
