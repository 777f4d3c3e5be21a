//! Sends counted by a session in plain fields and added to the shared counters once per
//! batch: a subscriber sending a burst pays two atomic adds per QoS for the burst, not
//! two per message.

use crate::protocol::QoS;

use super::Metrics;

/// PUBLISH packets (and their payload bytes) a session sent since the last
/// [`Metrics::add_sent_tally`].
#[derive(Debug, Default)]
pub struct SentTally {
    count: [u64; 3],
    bytes: [u64; 3],
}

impl SentTally {
    /// One PUBLISH sent.
    #[inline]
    pub fn add(&mut self, qos: QoS, payload: usize) {
        self.count[qos as usize] += 1;
        self.bytes[qos as usize] += payload as u64;
    }
}

impl Metrics {
    /// Adds what `tally` counted to the shared counters and empties it.
    #[inline]
    pub fn add_sent_tally(&self, tally: &mut SentTally) {
        for qos in 0..3 {
            if tally.count[qos] > 0 {
                self.sent[qos].inc_by(tally.count[qos]);
                self.sent_bytes[qos].inc_by(tally.bytes[qos]);
            }
        }
        *tally = SentTally::default();
    }
}
