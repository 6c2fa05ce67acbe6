//! The grammar of single values in images.toml and on the command line: sizes, durations, and
//! the `docker run` resource limits, each bounded by what the tool it is handed to accepts.

use anyhow::{bail, Result};
use std::time::Duration;

/// The longest duration docker takes: Go's `time.Duration` is an int64 of nanoseconds.
pub(crate) const DOCKER_MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);
/// `DOCKER_MAX_DURATION` as people read it (2562047h47m16.854775807s).
const DOCKER_MAX_TEXT: &str = "2562047h (about 292 years, Go's int64 nanoseconds)";
/// Docker refuses a health start period below 1 ms ("cannot be less than 1ms").
pub(crate) const DOCKER_MIN_HEALTH_PERIOD: Duration = Duration::from_millis(1);
const UNITS: &str = "ns, us, ms, s, m and h";

/// Parses a duration as Go (and so docker) writes them: `90s`, `2m`, `1m30s`, `1.5h`, `500ms`,
/// with the units ns, us (µs), ms, s, m and h; spaces between the parts are allowed. A number
/// without a unit, a negative duration and one longer than docker takes are errors that say so.
pub(crate) fn parse_duration(s: &str) -> Result<Duration> {
    let text = s.trim();
    if text.is_empty() {
        bail!("empty duration; write e.g. `90s`, `2m` or `1m30s` (units: {UNITS})");
    }
    if text.starts_with('-') {
        bail!("`{text}` is negative; write a duration such as `90s` or `2m`");
    }
    let too_long =
        || anyhow::anyhow!("`{text}` is too long: docker takes at most {DOCKER_MAX_TEXT}");
    let max = DOCKER_MAX_DURATION.as_nanos();
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (whole, after) = rest.split_at(digits(rest));
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(digits(after)),
            None => ("", after),
        };
        if whole.is_empty() && frac.is_empty() {
            bail!("`{text}` is not a duration; write e.g. `90s`, `2m` or `1m30s` (units: {UNITS})");
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() && !next.is_empty() && !next.starts_with(|c: char| c.is_ascii_digit()) {
            bail!("`{text}` is not a duration; write e.g. `90s`, `2m` or `1m30s` (units: {UNITS})");
        }
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                let n = number(whole, frac);
                let what = if n == text {
                    format!("`{text}`")
                } else {
                    format!("`{n}` in `{text}`")
                };
                bail!("{what} has no unit; write e.g. `{n}s` or `{n}m` (units: {UNITS})")
            }
            other => {
                bail!("unknown unit `{other}` in `{text}`; use {UNITS}, e.g. `90s` or `1m30s`")
            }
        };
        // Only digits remain, so a failed parse is an overflow: far beyond the bound anyway.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut part = whole.checked_mul(per_unit).ok_or_else(too_long)?;
        if !frac.is_empty() {
            // 18 digits are finer than a nanosecond of an hour; Go ignores the rest too.
            let frac = &frac[..frac.len().min(18)];
            let scale = 10u128.pow(frac.len() as u32);
            part += frac.parse::<u128>().unwrap_or(0) * per_unit / scale;
        }
        total = total.checked_add(part).ok_or_else(too_long)?;
        if total > max {
            return Err(too_long());
        }
        rest = next.trim_start();
    }
    Ok(Duration::from_nanos(total as u64))
}

fn number(whole: &str, frac: &str) -> String {
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// A health timeout: becomes `docker run --health-start-period`, so 1 ms to docker's maximum.
pub(crate) fn parse_health_timeout(s: &str) -> Result<Duration> {
    let d = parse_duration(s)?;
    if d < DOCKER_MIN_HEALTH_PERIOD {
        bail!(
            "`{}` is shorter than 1ms, the shortest health start period docker takes; \
             write e.g. `120s`",
            s.trim()
        );
    }
    Ok(d)
}

/// Parses a size such as `950 MB`, `2.5 GiB`, `200MB`, `1024` (bytes). Decimal units are powers
/// of 1000 (as registries and `docker image ls` report), binary units powers of 1024.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        anyhow::anyhow!(
            "`{s}` is not a size; write a number and a unit such as `950 MB` or `2.5 GiB`"
        )
    })?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0_f64.powi(4),
        other => {
            bail!("unknown unit `{other}` in `{s}`; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")
        }
    };
    let bytes = (value * mult).round();
    if bytes >= u64::MAX as f64 {
        bail!("`{s}` is too large; sizes go up to 18 EB");
    }
    Ok(bytes as u64)
}

/// Human-readable decimal size, e.g. `949.3 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The smallest memory limit docker's daemon accepts (6 MiB).
const DOCKER_MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// Checks a `docker run --memory` value as docker parses it (`RAMInBytes`: a number, then
/// optionally b, k, m, g, t or p, powers of 1024, with an optional `i`/`b`), at least 6 MiB.
pub(crate) fn check_memory(s: &str) -> Result<()> {
    let shape = || {
        anyhow::anyhow!(
            "`{s}` is not a memory size `docker run --memory` takes; write a number and b, k, m \
             or g (powers of 1024), like `2g` or `512m`"
        )
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(shape());
    }
    let value: f64 = num.parse().map_err(|_| shape())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (letter, suffix) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    if !matches!(suffix, "" | "b" | "i" | "ib") || (letter.is_none() && suffix.starts_with('i')) {
        return Err(shape());
    }
    let power = match letter {
        None => 0,
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        _ => 5,
    };
    let bytes = value * 1024f64.powi(power);
    if bytes >= i64::MAX as f64 {
        bail!("`{s}` is larger than docker takes for --memory (8 EiB)");
    }
    if bytes < DOCKER_MIN_MEMORY as f64 {
        bail!("`{s}` is below 6m, the smallest memory limit docker accepts");
    }
    Ok(())
}

/// Checks a `docker run --cpus` value: a positive decimal number of CPUs from 0.01 (the daemon's
/// floor) with at most 9 decimals (docker counts nano-CPUs).
pub(crate) fn check_cpus(s: &str) -> Result<()> {
    let shape = || {
        anyhow::anyhow!(
            "`{s}` is not a number of CPUs; write a positive number such as \"2\" or \"1.5\""
        )
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || s.ends_with('.') {
        return Err(shape());
    }
    if frac.len() > 9 {
        bail!("`{s}` is too precise: docker counts CPUs in billionths (at most 9 decimals)");
    }
    let value: f64 = s.parse().map_err(|_| shape())?;
    if value < 0.01 {
        bail!("`{s}` is below 0.01, the smallest CPU limit docker accepts");
    }
    if value * 1e9 >= i64::MAX as f64 {
        bail!("`{s}` is more CPUs than docker can count");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn durations_parse_like_go() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("90s"), Duration::from_secs(90));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1m 30s"), Duration::from_secs(90));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(d("2us"), Duration::from_micros(2));
        assert_eq!(d("2µs"), Duration::from_micros(2));
        assert_eq!(d("7ns"), Duration::from_nanos(7));
        assert_eq!(d("+3s"), Duration::from_secs(3));
        assert_eq!(d("1.000000001s"), Duration::new(1, 1));
        // The longest one docker takes, to the nanosecond.
        assert_eq!(d("2562047h47m16.854775807s"), DOCKER_MAX_DURATION);
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        let e = err(parse_duration("90"));
        assert!(
            e.contains("`90` has no unit") && e.contains("ns, us, ms, s, m and h"),
            "{e}"
        );
        let e = err(parse_duration("1m30"));
        assert!(
            e.contains("`30` in `1m30` has no unit; write e.g. `30s`"),
            "{e}"
        );
        let e = err(parse_duration("5 parsecs"));
        assert!(e.contains("unknown unit `parsecs`"), "{e}");
        assert!(err(parse_duration("2d")).contains("unknown unit `d`"));
        assert!(err(parse_duration("-5s")).contains("negative"));
        assert!(err(parse_duration("")).contains("empty duration"));
        assert!(err(parse_duration("s")).contains("not a duration"));
        assert!(err(parse_duration("1..5s")).contains("not a duration"));
        assert!(err(parse_duration("1,5s")).contains("not a duration"));
    }

    #[test]
    fn durations_beyond_docker_are_errors_not_panics() {
        for s in [
            "99999999999999999999h",
            "9999999h",
            "2562048h",
            "2562047h47m16.854775808s",
            "184467440737095516160000000000000000000000000000s",
            "1000000000000000000000000000000000000000ns",
            "2562047h2562047h",
        ] {
            let e = err(parse_duration(s));
            assert!(e.contains("too long") && e.contains("2562047h"), "{s}: {e}");
        }
    }

    #[test]
    fn health_timeouts_are_at_least_a_millisecond() {
        assert_eq!(
            parse_health_timeout("1ms").unwrap(),
            Duration::from_millis(1)
        );
        let e = err(parse_health_timeout("0s"));
        assert!(e.contains("shorter than 1ms"), "{e}");
        assert!(err(parse_health_timeout("999us")).contains("shorter than 1ms"));
        assert!(err(parse_health_timeout("0")).contains("no unit"));
    }

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("950 MB").unwrap(), 950_000_000);
        assert_eq!(parse_size("2.5 GiB").unwrap(), 2_684_354_560);
        assert_eq!(parse_size("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("4.0 GB").unwrap(), 4_000_000_000);
        let e = err(parse_size("3 GX"));
        assert!(e.contains("unknown unit `GX`"), "{e}");
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-3 GB")
            .unwrap_err()
            .to_string()
            .contains("not a size"));
        assert!(err(parse_size("99999999999 TB")).contains("too large"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(949_300_000), "949.3 MB");
        assert_eq!(human_size(2_500_000_000), "2.5 GB");
    }

    #[test]
    fn memory_takes_what_docker_run_takes() {
        for ok in [
            "2g", "512m", "1.5g", "6m", "2G", "2gb", "2GiB", "1 g", "6291456", "1t",
        ] {
            check_memory(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "g", "2 gigs", "-1g", "2x", "1.g", "2gg", "2i"] {
            let e = err(check_memory(bad));
            assert!(e.contains("like `2g` or `512m`"), "{bad}: {e}");
        }
        assert!(err(check_memory("5m")).contains("below 6m"));
        assert!(err(check_memory("1000000000p")).contains("larger than docker takes"));
    }

    #[test]
    fn cpus_are_positive_numbers() {
        for ok in ["2", "1.5", "0.01", "64", "0.123456789"] {
            check_cpus(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["-3", "", "two", "1.", ".5", "1/2", "1e3", " 2"] {
            let e = err(check_cpus(bad));
            assert!(e.contains("positive number"), "{bad}: {e}");
        }
        assert!(err(check_cpus("0")).contains("below 0.01"));
        assert!(err(check_cpus("0.001")).contains("below 0.01"));
        assert!(err(check_cpus("1.0000000001")).contains("too precise"));
        assert!(err(check_cpus("99999999999")).contains("more CPUs"));
    }
}
