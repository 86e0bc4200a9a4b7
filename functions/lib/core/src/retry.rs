//! When a failed queue message is tried again: exponential backoff by
//! delivery count, optionally jittered, and released at once on its last
//! allowed receive so it reaches the dead-letter queue without a pointless wait.

use std::time::Duration;

/// When and how often a failed message is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// The queue's `maxReceiveCount`.
    pub max_receives: u32,
    /// Spread retries over the second half of each delay, so receivers that
    /// failed together are not all retried at the same instant.
    pub jitter: bool,
}

impl RetryPolicy {
    /// Exponential backoff by delivery count: `base * 2^(n-1)`, at most `max`.
    /// SQS would otherwise hide a failed message for the whole visibility
    /// timeout (six times the worker's timeout) on every try. After the last
    /// allowed receive the message is released at once, so it reaches the
    /// dead-letter queue (and its quota is returned) without a pointless wait.
    pub fn delay(&self, receive_count: u32) -> Duration {
        if receive_count >= self.max_receives {
            return Duration::ZERO;
        }
        let exponent = receive_count.saturating_sub(1).min(20);
        let delay = self.base.saturating_mul(1u32 << exponent).min(self.max);
        if !self.jitter {
            return delay;
        }
        let mut random = [0u8; 2];
        getrandom::fill(&mut random).expect("the operating system's CSPRNG is available");
        let share = 0.5 + f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX) / 2.0;
        delay.mul_f64(share).max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_receives: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            max_receives,
            jitter: false,
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let retry = RetryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            max_receives: 1000,
            jitter: false,
        };
        assert_eq!(retry.delay(0), Duration::from_secs(2));
        assert_eq!(retry.delay(1), Duration::from_secs(2));
        assert_eq!(retry.delay(2), Duration::from_secs(4));
        assert_eq!(retry.delay(4), Duration::from_secs(16));
        assert_eq!(retry.delay(10), Duration::from_secs(60));
        assert_eq!(retry.delay(999), Duration::from_secs(60));
    }

    #[test]
    fn last_receive_releases_the_message_at_once() {
        let retry = policy(5);
        assert_eq!(retry.delay(4), Duration::from_secs(8));
        assert_eq!(retry.delay(5), Duration::ZERO);
        assert_eq!(retry.delay(9), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_the_second_half_of_the_delay() {
        let retry = RetryPolicy {
            jitter: true,
            ..policy(100)
        };
        for receives in 1..8 {
            let plain = policy(100).delay(receives);
            let jittered = retry.delay(receives);
            assert!(jittered <= plain, "{jittered:?} > {plain:?}");
            assert!(jittered >= (plain / 2).max(Duration::from_secs(1)) - Duration::from_millis(1));
        }
    }
}
