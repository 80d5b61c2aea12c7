//! Per-shard counters: written by their shard only, read by anyone, never locked.
//!
//! A [`Counter`] is incremented with a relaxed load and store, not an atomic read-modify-write:
//! only its owning shard writes it, so no increment is lost, and the hot path pays no
//! `lock`-prefixed instruction. Readers (the metrics endpoint) see a recent value and sum
//! the shards.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter owned by one shard.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one. Only the owning shard may call this.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n`. Only the owning shard may call this.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Set a gauge value. Only the owning shard may call this.
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether a metric only goes up or can go down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic.
    Counter,
    /// Current level.
    Gauge,
}

/// One value offered to a [`MetricSink`].
#[derive(Clone, Copy, Debug)]
pub struct Metric<'a> {
    /// Prometheus name (`ringsip_...`).
    pub name: &'a str,
    /// One-line help text.
    pub help: &'a str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Label pairs.
    pub labels: &'a [(&'a str, &'a str)],
    /// The value.
    pub value: u64,
}

/// Anything that can list its metrics (summed over shards by the exporter).
pub trait Metrics: Send + Sync {
    /// Offer every metric to `sink`.
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>));
}

/// The IO counters of one shard.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Shard index.
    pub shard: usize,
    /// Datagrams received.
    pub rx_datagrams: Counter,
    /// `recvmmsg` calls that returned datagrams.
    pub rx_batches: Counter,
    /// Datagrams cut because they exceeded the receive slot (dropped).
    pub rx_truncated: Counter,
    /// Receive errors other than "nothing queued".
    pub rx_errors: Counter,
    /// Datagrams sent.
    pub tx_datagrams: Counter,
    /// Datagrams the kernel refused.
    pub tx_errors: Counter,
    /// `sendmmsg` calls.
    pub tx_calls: Counter,
    /// The media relay's IO counters (exported when `media_on`).
    pub media: std::sync::Arc<MediaStats>,
    /// Whether this shard relays media.
    pub media_on: bool,
}

impl Metrics for ShardStats {
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
        let c = |name, help, v: &Counter| Metric { name, help, kind: Kind::Counter, labels: &[], value: v.get() };
        sink(&c("ringsip_udp_rx_datagrams_total", "UDP datagrams received", &self.rx_datagrams));
        sink(&c("ringsip_udp_rx_batches_total", "recvmmsg calls that returned datagrams", &self.rx_batches));
        sink(&c(
            "ringsip_udp_rx_truncated_total",
            "datagrams dropped as larger than the receive slot",
            &self.rx_truncated,
        ));
        sink(&c("ringsip_udp_rx_errors_total", "receive errors", &self.rx_errors));
        sink(&c("ringsip_udp_tx_datagrams_total", "UDP datagrams sent", &self.tx_datagrams));
        sink(&c("ringsip_udp_tx_errors_total", "datagrams the kernel refused to send", &self.tx_errors));
        sink(&c("ringsip_udp_tx_calls_total", "sendmmsg calls", &self.tx_calls));
        if self.media_on {
            self.media.visit(sink);
        }
    }
}

/// The media IO counters of one shard (the relay's own reasons for drops are the handler's).
#[derive(Debug, Default)]
pub struct MediaStats {
    /// Shard index.
    pub shard: usize,
    /// Media packets received.
    pub rx_packets: Counter,
    /// Media packets queued for sending.
    pub tx_packets: Counter,
    /// Sends the kernel refused.
    pub tx_errors: Counter,
    /// Receive errors.
    pub rx_errors: Counter,
    /// Packets larger than a receive buffer (dropped).
    pub truncated: Counter,
    /// Times a receive found no free buffer (the kernel kept the packet queued).
    pub no_buffers: Counter,
    /// Packets dropped because every send slot was in flight.
    pub send_full: Counter,
    /// Waits for completions (`io_uring_enter`): packets per wait is the batch size.
    pub waits: Counter,
}

impl Metrics for MediaStats {
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
        let c = |name, help, v: &Counter| Metric { name, help, kind: Kind::Counter, labels: &[], value: v.get() };
        sink(&c("ringsip_media_rx_packets_total", "media packets received", &self.rx_packets));
        sink(&c("ringsip_media_tx_packets_total", "media packets queued for sending", &self.tx_packets));
        sink(&c("ringsip_media_tx_errors_total", "media sends refused", &self.tx_errors));
        sink(&c("ringsip_media_rx_errors_total", "media receive errors", &self.rx_errors));
        sink(&c("ringsip_media_truncated_total", "media packets larger than a buffer, dropped", &self.truncated));
        sink(&c(
            "ringsip_media_no_buffers_total",
            "receives that found the buffer ring empty (packets wait in the socket)",
            &self.no_buffers,
        ));
        sink(&c("ringsip_media_send_full_total", "media packets dropped with every send slot busy", &self.send_full));
        sink(&c("ringsip_media_waits_total", "io_uring waits of the media loop", &self.waits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_and_export() {
        let s = ShardStats::default();
        s.rx_datagrams.add(3);
        s.rx_datagrams.inc();
        s.tx_errors.inc();
        let mut seen = Vec::new();
        s.visit(&mut |m| seen.push((m.name.to_string(), m.value)));
        assert!(seen.contains(&("ringsip_udp_rx_datagrams_total".to_string(), 4)));
        assert!(seen.contains(&("ringsip_udp_tx_errors_total".to_string(), 1)));
        assert_eq!(seen.len(), 7);
    }
}
