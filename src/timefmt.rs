//! Dates: the RFC 5322 3.3 date-time in local time via localtime_r, for
//! `Received:` headers and the log, and calendar arithmetic in UTC (the mbox
//! From_ line, certificate validity).

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Broken-down local time.
struct Tm {
    year: i64,
    mon: usize,
    mday: i32,
    wday: usize,
    hour: i32,
    min: i32,
    sec: i32,
    gmtoff: i64,
}

fn local(t: SystemTime) -> Tm {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as libc::time_t).unwrap_or(0);
    // SAFETY: localtime_r writes into the zeroed struct we own; it is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    if !ok {
        // Cannot happen for times after 1970; fall back to the epoch rather than panic.
        return Tm { year: 1970, mon: 0, mday: 1, wday: 4, hour: 0, min: 0, sec: 0, gmtoff: 0 };
    }
    Tm {
        year: i64::from(tm.tm_year) + 1900,
        mon: (tm.tm_mon as usize).min(11),
        mday: tm.tm_mday,
        wday: (tm.tm_wday as usize).min(6),
        hour: tm.tm_hour,
        min: tm.tm_min,
        sec: tm.tm_sec,
        gmtoff: tm.tm_gmtoff as i64,
    }
}

/// `Sat, 28 Nov 2026 03:48:08 +0000` (RFC 5322 3.3 date-time).
pub fn rfc5322(t: SystemTime) -> String {
    let tm = local(t);
    let sign = if tm.gmtoff < 0 { '-' } else { '+' };
    let off = tm.gmtoff.abs() / 60;
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} {}{:02}{:02}",
        DAYS[tm.wday],
        tm.mday,
        MONTHS[tm.mon],
        tm.year,
        tm.hour,
        tm.min,
        tm.sec,
        sign,
        off / 60,
        off % 60
    )
}

/// `7 Dec 2026 14:05` in local time, for lists.
pub fn short(t: SystemTime) -> String {
    let tm = local(t);
    format!("{} {} {} {:02}:{:02}", tm.mday, MONTHS[tm.mon], tm.year, tm.hour, tm.min)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar, used by the
// mbox From_ line and the certificate validity check.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_have_the_right_shape() {
        // 2026-11-28 03:48:08 UTC; the zone is the machine's, so check shape and fields that do not move far.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_844_888);
        let r = rfc5322(t);
        assert!(r.contains(" 2026 "), "{r}");
        let parts: Vec<&str> = r.split(' ').collect();
        assert_eq!(parts.len(), 6, "{r}");
        assert!(parts[0].ends_with(','));
        assert!(parts[5].len() == 5 && (parts[5].starts_with('+') || parts[5].starts_with('-')), "{r}");
    }
}
