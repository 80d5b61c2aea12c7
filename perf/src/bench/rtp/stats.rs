//! What the receiving legs saw: per stream loss, reordering, duplicates and RFC 3550
//! interarrival jitter, and one-way latency over all packets. Pure: fed with (payload, receive
//! time) and tested on synthetic inputs.

use serde::Serialize;

/// Bytes of the RTP header the sender writes.
pub(crate) const RTP_HDR: usize = 12;
/// Bytes of the benchmark's data after the RTP header: send time (ns, u64), stream id (u32),
/// per-stream counter (u32), big-endian (rtp_bench.py's `META`, `!QII`).
pub(crate) const META: usize = 16;

/// One received stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamRx {
    /// distinct packets
    pub unique: u64,
    pub duplicates: u64,
    /// packets whose counter is below the highest seen before them (duplicates excluded)
    pub reordered: u64,
    highest: Option<u32>,
    /// counters seen (bit set)
    seen: Vec<u64>,
    /// RFC 3550 interarrival jitter estimate, ns
    jitter: f64,
    last_transit: Option<i64>,
}

impl StreamRx {
    /// One packet with per-stream `counter`, sent at `sent_ns`, received at `rx_ns` (packets of
    /// a stream come in arrival order). False for a duplicate.
    #[cfg(test)]
    pub(crate) fn on_packet(&mut self, counter: u32, sent_ns: i64, rx_ns: i64) -> bool {
        self.on_packet_at(counter, Some((sent_ns, rx_ns)))
    }

    /// [`StreamRx::on_packet`] with the times when known (without, no jitter sample).
    pub(crate) fn on_packet_at(&mut self, counter: u32, times: Option<(i64, i64)>) -> bool {
        let (w, bit) = ((counter / 64) as usize, 1u64 << (counter % 64));
        if self.seen.len() <= w {
            self.seen.resize(w + 1, 0);
        }
        if self.seen[w] & bit != 0 {
            self.duplicates += 1;
            return false;
        }
        self.seen[w] |= bit;
        self.unique += 1;
        match self.highest {
            Some(h) if counter < h => self.reordered += 1,
            _ => self.highest = Some(counter),
        }
        // RFC 3550 6.4.1/A.8: D = (Rj - Ri) - (Sj - Si) = transit_j - transit_i; J += (|D| - J)/16
        if let Some((sent_ns, rx_ns)) = times {
            let transit = rx_ns - sent_ns;
            if let Some(prev) = self.last_transit {
                let d = (transit - prev).unsigned_abs() as f64;
                self.jitter += (d - self.jitter) / 16.0;
            }
            self.last_transit = Some(transit);
        }
        true
    }

    /// The jitter estimate after the last packet, ns.
    pub(crate) fn jitter_ns(&self) -> f64 {
        self.jitter
    }
}

/// Everything received on all legs.
#[derive(Clone, Debug)]
pub(crate) struct Rx {
    pub streams: Vec<StreamRx>,
    /// one-way latency of every valid packet, ns
    pub lat_ns: Vec<i64>,
    /// datagrams read (rtp_bench.py's `received`)
    pub datagrams: u64,
    pub bytes: u64,
    /// too short, or a stream id / counter that was never sent
    pub stray: u64,
    /// valid packets of a stream that was not the one addressed to the leg they arrived on
    pub misdirected: u64,
    /// packets without a kernel timestamp (deferred sink): no latency
    pub no_timestamp: u64,
    /// counters above this are stray
    max_counter: u32,
}

impl Rx {
    /// `streams` streams of at most `max_counter + 1` packets each.
    pub(crate) fn new(streams: usize, max_counter: u32) -> Rx {
        Rx {
            streams: vec![StreamRx::default(); streams],
            lat_ns: Vec::new(),
            datagrams: 0,
            bytes: 0,
            stray: 0,
            misdirected: 0,
            no_timestamp: 0,
            max_counter,
        }
    }

    /// One datagram that arrived on the leg expecting stream `expect` at `rx_ns` (`None`: no
    /// receive time known).
    pub(crate) fn on_datagram(&mut self, data: &[u8], expect: u32, rx_ns: Option<i64>) {
        self.datagrams += 1;
        self.bytes += data.len() as u64;
        let Some(m) = data.get(RTP_HDR..RTP_HDR + META) else {
            self.stray += 1;
            return;
        };
        let sent_ns = u64::from_be_bytes(m[0..8].try_into().unwrap_or_default()) as i64;
        let sid = u32::from_be_bytes(m[8..12].try_into().unwrap_or_default());
        let counter = u32::from_be_bytes(m[12..16].try_into().unwrap_or_default());
        if sid as usize >= self.streams.len() || counter > self.max_counter {
            self.stray += 1;
            return;
        }
        if sid != expect {
            self.misdirected += 1;
        }
        // without a receive time still counted for loss and order, with no latency or jitter
        let times = rx_ns.map(|rx| (sent_ns, rx));
        if times.is_none() {
            self.no_timestamp += 1;
        }
        if self.streams[sid as usize].on_packet_at(counter, times) {
            if let Some((sent, rx)) = times {
                self.lat_ns.push(rx - sent);
            }
        }
    }

    /// The totals, given what was sent.
    pub(crate) fn summary(mut self, sent: u64) -> RxSummary {
        self.lat_ns.sort_unstable();
        let unique: u64 = self.streams.iter().map(|s| s.unique).sum();
        let seen: Vec<&StreamRx> = self.streams.iter().filter(|s| s.unique > 0).collect();
        let jit: Vec<f64> = seen.iter().map(|s| s.jitter_ns() / 1e3).collect();
        let us = |v: Option<i64>| v.map(|v| v as f64 / 1e3);
        let lost = sent.saturating_sub(unique);
        RxSummary {
            received: self.datagrams,
            rx_bytes: self.bytes,
            unique,
            duplicates: self.streams.iter().map(|s| s.duplicates).sum(),
            reordered: self.streams.iter().map(|s| s.reordered).sum(),
            lost,
            loss_pct: if sent > 0 { 100.0 * lost as f64 / sent as f64 } else { f64::NAN },
            stray: self.stray,
            misdirected: self.misdirected,
            streams_seen: seen.len(),
            lat_n: self.lat_ns.len() as u64,
            lat_p50_us: us(percentile(&self.lat_ns, 50.0)),
            lat_p99_us: us(percentile(&self.lat_ns, 99.0)),
            lat_p999_us: us(percentile(&self.lat_ns, 99.9)),
            lat_max_us: us(self.lat_ns.last().copied()),
            jitter_mean_us: if jit.is_empty() { None } else { Some(jit.iter().sum::<f64>() / jit.len() as f64) },
            jitter_max_us: jit.iter().copied().reduce(f64::max),
        }
    }
}

/// rtp_bench.py's percentile of a sorted list: `lat[min(len - 1, int(p / 100 * len))]`.
pub(crate) fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0 * sorted.len() as f64) as usize).min(sorted.len() - 1);
    Some(sorted[i])
}

/// The receive side of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RxSummary {
    /// datagrams read on the legs (duplicates and strays included, as rtp_bench.py)
    pub received: u64,
    pub rx_bytes: u64,
    /// distinct packets received
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// sent - unique (= sent - received without duplicates or strays, rtp_bench.py's `lost`)
    pub lost: u64,
    pub loss_pct: f64,
    pub stray: u64,
    pub misdirected: u64,
    pub streams_seen: usize,
    pub lat_n: u64,
    pub lat_p50_us: Option<f64>,
    pub lat_p99_us: Option<f64>,
    pub lat_p999_us: Option<f64>,
    pub lat_max_us: Option<f64>,
    /// RFC 3550 interarrival jitter at the end of each stream, mean and max over the streams, µs
    pub jitter_mean_us: Option<f64>,
    pub jitter_max_us: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(sent_ns: u64, sid: u32, counter: u32) -> Vec<u8> {
        let mut b = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        b.extend_from_slice(&sent_ns.to_be_bytes());
        b.extend_from_slice(&sid.to_be_bytes());
        b.extend_from_slice(&counter.to_be_bytes());
        b.resize(172, 0xff);
        b
    }

    #[test]
    fn rtp_stats_loss_reorder_duplicates() {
        let mut rx = Rx::new(2, 99);
        // stream 0: counters 0 1 3 2 4 4 (one reordered, one duplicate), 5 lost -> sent 6
        for (i, c) in [0u32, 1, 3, 2, 4, 4].into_iter().enumerate() {
            rx.on_datagram(&pkt(1_000_000 * i as u64, 0, c), 0, Some(1_000_000 * i as i64 + 50_000));
        }
        // stream 1: 0..4 in order, arriving on the leg of stream 0 once (misdirected)
        for c in 0..4u32 {
            rx.on_datagram(&pkt(0, 1, c), if c == 2 { 0 } else { 1 }, Some(100_000));
        }
        rx.on_datagram(b"short", 1, Some(0));
        rx.on_datagram(&pkt(0, 7, 0), 1, Some(0)); // unknown stream
        rx.on_datagram(&pkt(0, 1, 100), 1, Some(0)); // counter never sent
        let s = rx.summary(6 + 4);
        assert_eq!(s.received, 13);
        assert_eq!(s.unique, 5 + 4);
        assert_eq!((s.duplicates, s.reordered, s.stray, s.misdirected), (1, 1, 3, 1));
        assert_eq!(s.lost, 1);
        assert!((s.loss_pct - 10.0).abs() < 1e-12);
        assert_eq!(s.streams_seen, 2);
        assert_eq!(s.lat_n, 9);
        assert_eq!(s.lat_p50_us, Some(50.0)); // 5 x 50 us (stream 0), 4 x 100 us (stream 1)
        assert_eq!(s.lat_max_us, Some(100.0));
        // constant transit on both streams: no jitter
        assert_eq!(s.jitter_mean_us, Some(0.0));
        // nothing sent: loss is not a number
        assert!(Rx::new(1, 0).summary(0).loss_pct.is_nan());
    }

    #[test]
    fn rtp_stats_jitter_rfc3550() {
        // transit alternates 100 us / 300 us: |D| = 200 us every packet after the first;
        // J_n = 200 (1 - (15/16)^n)
        let mut s = StreamRx::default();
        for i in 0..50u32 {
            let sent = i64::from(i) * 20_000_000;
            let transit = if i % 2 == 0 { 100_000 } else { 300_000 };
            s.on_packet(i, sent, sent + transit);
        }
        let want = 200_000.0 * (1.0 - (15.0f64 / 16.0).powi(49));
        assert!((s.jitter_ns() - want).abs() < 1e-6, "{} vs {want}", s.jitter_ns());
        // one late packet on a steady stream: J = |D|/16 after it, then decays by 15/16
        let mut s = StreamRx::default();
        for (i, tr) in [100_000, 100_000, 260_000, 100_000].into_iter().enumerate() {
            s.on_packet(i as u32, 0, tr);
        }
        let j1 = 160_000.0 / 16.0;
        let j2 = j1 + (160_000.0 - j1) / 16.0;
        assert!((s.jitter_ns() - j2).abs() < 1e-9);
        assert_eq!((s.unique, s.reordered, s.duplicates), (4, 0, 0));
    }

    #[test]
    fn rtp_percentiles_like_the_script() {
        let v: Vec<i64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), Some(501));
        assert_eq!(percentile(&v, 99.0), Some(991));
        assert_eq!(percentile(&v, 99.9), Some(1000));
        assert_eq!(percentile(&v, 100.0), Some(1000));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }
}
