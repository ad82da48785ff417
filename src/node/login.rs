//! The login's abuse limits, in one place for every way a person signs in.

use super::state::Limits;
use std::time::Duration;

/// The login's abuse limits, all keyed by the client address's bucket
/// (`credentials::address::address_bucket`: an IPv6 /64 counts as one address):
/// - failures per (account, address): guessing one account's password from
///   one address is stopped before any password is checked, while the owner
///   signing in from elsewhere is never locked out by it (OWASP
///   Authentication Cheat Sheet, "account lockout" as a denial of service);
/// - failures per address, across accounts: while an address is over it,
///   every attempt from it is answered alike (429, no password checked, the
///   attempt counted), so the answer never tells a right guess from a wrong
///   one and a blocked address stays blocked while it keeps trying;
/// - failures per account from any address: a delay before the password is
///   checked that grows with them and never refuses, so that many addresses
///   together guess slowly while the owner still signs in.
///
/// Every wrong password counts toward all three, whatever the others say.
pub struct LoginLimits<'a> {
    limits: Option<&'a Limits>,
    pair: String,
    address: String,
    account: String,
}

/// Failures of one account (from any address) before its delay starts.
const UNDELAYED_FAILURES: u32 = 5;
/// The longest per-account delay.
const MAX_ACCOUNT_DELAY: Duration = Duration::from_secs(3);

impl<'a> LoginLimits<'a> {
    /// The limits of `email` signing in from the client `address`; `None`:
    /// abuse limits are off.
    pub fn new(limits: Option<&'a Limits>, email: &str, address: &str) -> Self {
        let bucket = crate::credentials::address::address_bucket_of(address);
        LoginLimits {
            limits,
            pair: format!("login:{email}|{bucket}"),
            address: format!("login-ip:{bucket}"),
            account: format!("login-account:{email}"),
        }
    }
    /// Before any password is checked: `Err(seconds)` while the address is
    /// over its limit (the attempt counted) or the pair is locked.
    pub fn before(&self) -> Result<(), u64> {
        let Some(l) = self.limits else {
            return Ok(());
        };
        if let Err(secs) = l.login_address.check(&self.address) {
            l.login_address.failure(&self.address);
            return Err(secs);
        }
        l.login_account.check(&self.pair)
    }
    /// How long to wait before checking the password: 0 for an account's
    /// first failures, then doubling from 250 ms up to `MAX_ACCOUNT_DELAY`.
    pub fn delay(&self) -> Duration {
        let Some(l) = self.limits else {
            return Duration::ZERO;
        };
        let failures = l.login_delay.failures(&self.account);
        if failures < UNDELAYED_FAILURES {
            return Duration::ZERO;
        }
        let doublings = (failures - UNDELAYED_FAILURES).min(8);
        (Duration::from_millis(250) * (1u32 << doublings)).min(MAX_ACCOUNT_DELAY)
    }
    /// After a wrong password: counts it toward every limit; `Err(seconds)`
    /// when the pair or the address is now over its limit.
    pub fn failed(&self) -> Result<(), u64> {
        let Some(l) = self.limits else {
            return Ok(());
        };
        l.login_account.failure(&self.pair);
        l.login_address.failure(&self.address);
        l.login_delay.failure(&self.account);
        l.login_account.check(&self.pair)?;
        l.login_address.check(&self.address)
    }
    pub fn succeeded(&self) {
        if let Some(l) = self.limits {
            l.login_account.success(&self.pair);
            l.login_delay.success(&self.account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimits;

    fn limits() -> Limits {
        let r = RateLimits {
            login_failures: 3,
            ..RateLimits::default()
        };
        Limits::new(&r)
    }

    #[test]
    fn a_blocked_address_counts_every_attempt_and_never_checks() {
        let l = limits();
        // Twelve failures (4 × 3) over made-up accounts arm the address.
        for i in 0..12 {
            let _ = LoginLimits::new(Some(&l), &format!("x{i}@x.test"), "192.0.2.1").failed();
        }
        let victim = LoginLimits::new(Some(&l), "owner@x.test", "192.0.2.1");
        assert!(victim.before().is_err(), "no password is checked");
        // From another address the owner is not held back.
        let owner = LoginLimits::new(Some(&l), "owner@x.test", "198.51.100.1");
        assert!(owner.before().is_ok());
        // The same /64 is the same address.
        let v6 = |a: &str| LoginLimits::new(Some(&l), "owner@x.test", a);
        for _ in 0..3 {
            let _ = v6("2001:db8:1:2::1").failed();
        }
        assert!(v6("2001:db8:1:2::ffff").before().is_err());
        assert!(v6("2001:db8:1:3::1").before().is_ok());
    }

    #[test]
    fn an_accounts_delay_grows_and_a_success_clears_it() {
        let l = limits();
        let at = |i: u32| LoginLimits::new(Some(&l), "owner@x.test", &format!("198.18.{i}.1"));
        for i in 0..UNDELAYED_FAILURES {
            assert_eq!(at(i).delay(), Duration::ZERO);
            let _ = at(i).failed();
        }
        assert_eq!(at(50).delay(), Duration::from_millis(250));
        for i in 0..10 {
            let _ = at(100 + i).failed();
        }
        assert_eq!(at(50).delay(), MAX_ACCOUNT_DELAY);
        at(51).succeeded();
        assert_eq!(at(52).delay(), Duration::ZERO);
        assert_eq!(
            LoginLimits::new(None, "owner@x.test", "x").delay(),
            Duration::ZERO
        );
    }
}
