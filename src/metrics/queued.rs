//! `starling_queued_messages`: messages waiting in session queues, reported by each
//! session as a difference, so that a queue that fills and drains within one turn (a
//! live client keeping up) costs no shared write.

use prometheus_client::metrics::gauge::Gauge;

use super::Metrics;

/// One session's share of the queued-messages gauge; dropping it takes the share back.
#[derive(Debug)]
pub struct QueuedShare {
    gauge: Gauge,
    reported: i64,
}

impl Metrics {
    /// A session's share of `starling_queued_messages`, at zero.
    pub fn queued_share(&self) -> QueuedShare {
        QueuedShare {
            gauge: self.queued.clone(),
            reported: 0,
        }
    }
}

impl Metrics {
    /// The gauge of messages queued in sessions (read by the memory budget's sampler:
    /// whether holding publishers back can free anything).
    pub fn queued_gauge(&self) -> Gauge {
        self.queued.clone()
    }
}

impl QueuedShare {
    /// The session's queue now holds `len` messages.
    #[inline]
    pub fn sync(&mut self, len: usize) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        if len != self.reported {
            self.gauge.inc_by(len - self.reported);
            self.reported = len;
        }
    }
}

impl Drop for QueuedShare {
    fn drop(&mut self) {
        self.gauge.dec_by(self.reported);
    }
}
