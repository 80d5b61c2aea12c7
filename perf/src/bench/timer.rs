//! Rate pacing and a timer wheel for retransmissions and timeouts.

/// Call `k` (0-based) of a run at `rate` calls/s starts `k / rate` seconds after the start:
/// an absolute schedule, so a late loop catches up instead of drifting.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacer {
    start_ns: u64,
    ns_per_call: f64,
}

impl Pacer {
    pub(crate) fn new(start_ns: u64, rate: f64) -> Pacer {
        Pacer { start_ns, ns_per_call: 1e9 / rate.max(1e-6) }
    }

    /// When call `k` is due (ns on the generator's clock).
    pub(crate) fn due(&self, k: u64) -> u64 {
        self.start_ns + (k as f64 * self.ns_per_call) as u64
    }

    /// With calls started in bursts of `tick` ns (sipp's 1 ms loop): the last instant of the
    /// tick holding `now` (`now` itself when `tick` is 0).
    pub(crate) fn tick_end(&self, now: u64, tick: u64) -> u64 {
        if tick == 0 || now < self.start_ns {
            return now;
        }
        self.start_ns + ((now - self.start_ns) / tick + 1) * tick - 1
    }

    /// When to wake up for call `k`: the start of its tick.
    pub(crate) fn wake_at(&self, k: u64, tick: u64) -> u64 {
        let d = self.due(k);
        if tick == 0 {
            return d;
        }
        self.start_ns + (d - self.start_ns) / tick * tick
    }

    /// How many calls are due at `now` (calls 0..n have `due(k) <= now`).
    pub(crate) fn due_count(&self, now: u64) -> u64 {
        if now < self.start_ns {
            return 0;
        }
        let k = ((now - self.start_ns) as f64 / self.ns_per_call).floor() as u64 + 1;
        // float rounding at the boundary: make `due(k-1) <= now < due(k)` exact
        let mut k = k;
        while k > 0 && self.due(k - 1) > now {
            k -= 1;
        }
        while self.due(k) <= now {
            k += 1;
        }
        k
    }
}

/// Number of calls for `duration_s` at `rate` calls/s (at least 1).
pub(crate) fn calls_for(rate: f64, duration_s: f64) -> u64 {
    ((rate * duration_s).round() as u64).max(1)
}

/// A timer: what to do (`kind`) for which object (`idx`, `seq` to detect staleness: a timer
/// whose object changed is ignored when it fires, so timers are never cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timer {
    pub kind: u8,
    pub idx: u32,
    pub seq: u32,
}

/// A single-level wheel of 1 ms ticks spanning 65.5 s (every timer here is < 35 s away).
pub(crate) struct Wheel {
    slots: Vec<Vec<Timer>>,
    /// last tick processed
    cur: u64,
    pending: usize,
}

const WHEEL_BITS: u32 = 16;
const WHEEL_MASK: u64 = (1 << WHEEL_BITS) - 1;

impl Wheel {
    pub(crate) fn new(now_ms: u64) -> Wheel {
        Wheel { slots: (0..=WHEEL_MASK).map(|_| Vec::new()).collect(), cur: now_ms, pending: 0 }
    }

    /// Fire `t` at tick `at_ms` (clamped to the next tick .. the wheel's span).
    pub(crate) fn add(&mut self, at_ms: u64, t: Timer) {
        let at = at_ms.clamp(self.cur + 1, self.cur + WHEEL_MASK);
        self.slots[(at & WHEEL_MASK) as usize].push(t);
        self.pending += 1;
    }

    /// Move every timer due at or before `now_ms` to `out`.
    pub(crate) fn expire(&mut self, now_ms: u64, out: &mut Vec<Timer>) {
        // after a long stall, do not walk more than one turn
        if now_ms > self.cur + WHEEL_MASK {
            self.cur = now_ms - WHEEL_MASK;
        }
        while self.cur < now_ms {
            self.cur += 1;
            let slot = &mut self.slots[(self.cur & WHEEL_MASK) as usize];
            self.pending -= slot.len();
            out.append(slot);
        }
    }

    /// Milliseconds until the next tick that holds a timer, looking at most `horizon` ticks
    /// ahead (`None`: nothing within the horizon).
    pub(crate) fn next_in(&self, horizon: u64) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        (1..=horizon).find(|d| !self.slots[((self.cur + d) & WHEEL_MASK) as usize].is_empty())
    }

    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_schedule() {
        let p = Pacer::new(1_000, 8000.0);
        assert_eq!(p.due(0), 1_000);
        assert_eq!(p.due(1), 1_000 + 125_000);
        assert_eq!(p.due(8000), 1_000 + 1_000_000_000);
        assert_eq!(p.due_count(999), 0);
        assert_eq!(p.due_count(1_000), 1);
        assert_eq!(p.due_count(1_000 + 124_999), 1);
        assert_eq!(p.due_count(1_000 + 125_000), 2);
        assert_eq!(p.due_count(1_000 + 1_000_000_000), 8001);
        // fractional rates stay exact over long runs
        let p = Pacer::new(0, 3.0);
        assert_eq!(p.due(3), 1_000_000_000);
        for now in [0u64, 1, 333_333_333, 333_333_334, 999_999_999, 1_000_000_000, 7_777_777_777] {
            let k = p.due_count(now);
            assert!(p.due(k - 1) <= now && p.due(k) > now, "{now}");
        }
        // 1 ms ticks at 8000 calls/s: 8 calls per burst, at the tick's start
        let p = Pacer::new(1_000, 8000.0);
        let ms = 1_000_000;
        assert_eq!(p.tick_end(1_000, ms), 1_000 + ms - 1);
        assert_eq!(p.due_count(p.tick_end(1_000, ms)), 8);
        assert_eq!(p.due_count(p.tick_end(1_000 + ms + 5, ms)), 16);
        assert_eq!(p.wake_at(8, ms), 1_000 + ms);
        assert_eq!(p.wake_at(9, ms), 1_000 + ms);
        assert_eq!(p.wake_at(9, 0), p.due(9));
        assert_eq!(p.tick_end(77, 0), 77);
        assert_eq!(calls_for(8000.0, 10.0), 80_000);
        assert_eq!(calls_for(2.5, 1.0), 3);
        assert_eq!(calls_for(0.1, 1.0), 1);
    }

    #[test]
    fn wheel_fires_in_order_and_once() {
        let mut w = Wheel::new(100);
        let t = |i| Timer { kind: 1, idx: i, seq: 0 };
        w.add(600, t(1));
        w.add(101, t(2));
        w.add(50, t(3)); // in the past: next tick
        w.add(100 + 40_000, t(4));
        assert_eq!(w.pending(), 4);
        assert_eq!(w.next_in(1000), Some(1));
        let mut out = Vec::new();
        w.expire(101, &mut out);
        assert_eq!(out, vec![t(2), t(3)]);
        out.clear();
        w.expire(590, &mut out);
        assert!(out.is_empty());
        assert_eq!(w.next_in(5), None);
        assert_eq!(w.next_in(1000), Some(10));
        w.expire(700, &mut out);
        assert_eq!(out, vec![t(1)]);
        out.clear();
        w.expire(100 + 40_000, &mut out);
        assert_eq!(out, vec![t(4)]);
        assert_eq!(w.pending(), 0);
        assert_eq!(w.next_in(1000), None);
    }
}
