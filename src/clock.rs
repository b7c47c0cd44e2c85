//! Deadlines from durations that may come from the command line: an absurd
//! duration means "no deadline worth mentioning", never an overflow of
//! `Instant + Duration` (which panics).

use std::time::Duration;

/// Longer than any run; every deadline is capped here (about 100 years).
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + after`, saturating at `now + FOREVER`.
pub fn deadline(after: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(after.min(FOREVER)).unwrap_or(now)
}

/// The same for tokio's clock.
pub fn tokio_deadline(after: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(after.min(FOREVER)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let d = deadline(Duration::MAX);
        assert!(d > std::time::Instant::now() + Duration::from_secs(3600));
        let t = tokio_deadline(Duration::from_secs(u64::MAX));
        assert!(t > tokio::time::Instant::now() + Duration::from_secs(3600));
    }
}
