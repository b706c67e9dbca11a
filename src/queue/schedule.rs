//! The retry schedule, as Postfix's queue manager does it: the first retry `min_backoff` after the
//! first attempt, each later one twice as far, capped at `max_backoff`; a message older than
//! `lifetime` is bounced (RFC 5321 4.5.4.1: give up after at least 4-5 days); an optional delay
//! warning (RFC 3464 Action: delayed) once it is older than `delay_warning`.

use std::time::{Duration, SystemTime};

use super::Envelope;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub lifetime: Duration,
    /// None: no warnings (Postfix's default delay_warning_time = 0).
    pub delay_warning: Option<Duration>,
}

impl Default for Schedule {
    /// 5 minutes, doubling to at most 1 hour, for 5 days; no delay warnings.
    fn default() -> Schedule {
        Schedule {
            min_backoff: Duration::from_secs(300),
            max_backoff: Duration::from_secs(3600),
            lifetime: Duration::from_secs(5 * 24 * 3600),
            delay_warning: None,
        }
    }
}

impl Schedule {
    /// The time of the next attempt after `env.attempts` attempts (call it after counting the one
    /// that just failed): now with no attempt yet, else `min_backoff * 2^(attempts-1)` from now, at
    /// most `max_backoff`, and never later than the expiry, so the last try happens at expiry.
    pub fn next_attempt(&self, env: &Envelope, now: SystemTime) -> SystemTime {
        if env.attempts == 0 {
            return now;
        }
        let shift = (env.attempts - 1).min(31);
        let wait =
            self.min_backoff.checked_mul(1u32 << shift).unwrap_or(self.max_backoff).min(self.max_backoff);
        // A max below the min is a configuration slip: the min wins.
        let wait = wait.max(self.min_backoff);
        let next = now.checked_add(wait).unwrap_or(now);
        match self.expiry(env) {
            Some(end) if next > end => end.max(now),
            _ => next,
        }
    }

    fn expiry(&self, env: &Envelope) -> Option<SystemTime> {
        env.arrival.checked_add(self.lifetime)
    }

    /// The message has been queued for `lifetime` or longer: bounce what is still open.
    pub fn expired(&self, env: &Envelope, now: SystemTime) -> bool {
        self.expiry(env).is_some_and(|end| now >= end)
    }

    /// A delay warning is due: enabled, not sent yet, older than `delay_warning`, something still
    /// open, and not about to be bounced anyway.
    pub fn warn_due(&self, env: &Envelope, now: SystemTime) -> bool {
        let Some(after) = self.delay_warning else { return false };
        !env.warned
            && !env.is_done()
            && !self.expired(env, now)
            && env.arrival.checked_add(after).is_some_and(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::RcptState;
    use std::time::UNIX_EPOCH;

    const MIN: u64 = 60;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn env(attempts: u32) -> Envelope {
        let mut e = Envelope::new("0123456789ABCDEF", "a@b", &["c@d".into()], at(1_000_000));
        e.attempts = attempts;
        e
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Schedule::default();
        let now = at(1_000_000);
        let want = [
            (0, 0),
            (1, 300),
            (2, 600),
            (3, 1200),
            (4, 2400),
            (5, 3600),
            (6, 3600),
            (40, 3600),
            (u32::MAX, 3600),
        ];
        for (attempts, wait) in want {
            let got = s.next_attempt(&env(attempts), now).duration_since(now).unwrap();
            assert_eq!(got, Duration::from_secs(wait), "attempts={attempts}");
        }
        let odd =
            Schedule { min_backoff: Duration::from_secs(MIN), max_backoff: Duration::from_secs(1), ..s };
        assert_eq!(odd.next_attempt(&env(3), now), now + Duration::from_secs(MIN));
    }

    #[test]
    fn expiry_and_the_last_attempt() {
        let s = Schedule::default();
        let e = env(20);
        let end = at(1_000_000 + 5 * 86400);
        assert!(!s.expired(&e, end - Duration::from_secs(1)));
        assert!(s.expired(&e, end));
        // Twenty minutes before expiry the next try is at expiry, not an hour later.
        let now = end - Duration::from_secs(1200);
        assert_eq!(s.next_attempt(&e, now), end);
        // Past expiry (the runner bounces): never in the past.
        let later = end + Duration::from_secs(10);
        assert_eq!(s.next_attempt(&e, later), later);
    }

    #[test]
    fn delay_warning() {
        let mut s = Schedule::default();
        let e = env(3);
        let t = |h: u64| at(1_000_000 + h * 3600);
        assert!(!s.warn_due(&e, t(10)), "off by default");
        s.delay_warning = Some(Duration::from_secs(4 * 3600));
        assert!(!s.warn_due(&e, t(3)));
        assert!(s.warn_due(&e, t(4)));
        let mut warned = e.clone();
        warned.warned = true;
        assert!(!s.warn_due(&warned, t(5)));
        let mut done = e.clone();
        done.recipients[0].state = RcptState::Sent { relay: "x".into(), reply: "250".into() };
        assert!(!s.warn_due(&done, t(5)));
        assert!(!s.warn_due(&e, t(24 * 5)), "expired: bounce, no warning");
    }
}
