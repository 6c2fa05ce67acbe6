//! `--network LATENCY,RATE[,PER_CONNECTION]` (pure): the link between the registry and the
//! pulling engine, as the bench models it — a round trip before every request reaches the
//! registry and one more for every new connection (its handshake), every byte to the engine
//! through one link of RATE, and each connection's bytes at most PER_CONNECTION.

use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The longest round trip the bench models.
const MAX_LATENCY: Duration = Duration::from_secs(10);

/// A shaped link, as `--network` gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    /// The argument, as given.
    pub argument: String,
    /// Round trip, in milliseconds.
    pub latency_ms: f64,
    /// The link's rate, in bits per second.
    pub rate_bits: u64,
    /// The most one connection gets, in bits per second.
    pub per_connection_bits: Option<u64>,
}

impl Network {
    /// Parses `40ms,200mbit[,25mbit]` (checked as clap parses it, before any work).
    pub fn parse(s: &str) -> Result<Network, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let (latency, rate, per_connection) = match parts[..] {
            [l, r] => (l, r, None),
            [l, r, c] => (l, r, Some(c)),
            _ => {
                return Err(format!(
                    "`{s}` is not LATENCY,RATE[,PER_CONNECTION]: give two or three values, e.g. \
                     40ms,200mbit,25mbit"
                ))
            }
        };
        let latency = parse_latency(latency)?;
        let rate_bits = parse_rate(rate)?;
        let per_connection_bits = per_connection.map(parse_rate).transpose()?;
        if let Some(cap) = per_connection_bits.filter(|c| *c > rate_bits) {
            return Err(format!(
                "the per-connection cap {} is above the link's rate {}: it would never apply; \
                 give PER_CONNECTION at most RATE, or leave it out",
                human_rate(cap),
                human_rate(rate_bits)
            ));
        }
        Ok(Network {
            argument: s.to_string(),
            latency_ms: latency.as_secs_f64() * 1000.0,
            rate_bits,
            per_connection_bits,
        })
    }

    pub fn latency(&self) -> Duration {
        Duration::from_secs_f64(self.latency_ms / 1000.0)
    }

    /// Bytes per second one connection may carry, if capped.
    pub fn per_connection_bytes(&self) -> Option<u64> {
        self.per_connection_bits.map(|b| b / 8)
    }
}

impl fmt::Display for Network {
    /// `40 ms round trip, 200 Mbit/s, 25 Mbit/s per connection`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ms round trip, {}",
            self.latency_ms,
            human_rate(self.rate_bits)
        )?;
        if let Some(cap) = self.per_connection_bits {
            write!(f, ", {} per connection", human_rate(cap))?;
        }
        Ok(())
    }
}

/// `40ms`, `0.5s`, `0ms`: a round trip of at most 10 s.
fn parse_latency(s: &str) -> Result<Duration, String> {
    let lower = s.to_ascii_lowercase();
    let (number, scale) = if let Some(n) = lower.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = lower.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!(
            "`{s}` is not a latency: give a round trip in ms or s, e.g. 40ms"
        ));
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * scale <= MAX_LATENCY.as_secs_f64() => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        _ => Err(format!(
            "`{s}` is not a latency: give a round trip from 0ms to {}s, e.g. 40ms",
            MAX_LATENCY.as_secs()
        )),
    }
}

/// `200mbit`, `1.5gbit`, `800kbit`: bits per second, as tc writes them (at least 8 kbit).
fn parse_rate(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let unit = [("kbit", 1e3), ("mbit", 1e6), ("gbit", 1e9)]
        .into_iter()
        .find_map(|(unit, scale)| Some((lower.strip_suffix(unit)?, scale)));
    let bits = unit.and_then(|(number, scale)| {
        let n = number.trim().parse::<f64>().ok()?;
        let bits = n * scale;
        (n.is_finite() && (8e3..=1e11).contains(&bits)).then_some(bits as u64)
    });
    bits.ok_or_else(|| {
        format!(
            "`{s}` is not a rate: give bits per second with kbit, mbit or gbit, from 8kbit to \
             100gbit, e.g. 200mbit"
        )
    })
}

/// `200 Mbit/s`, `1.5 Gbit/s`, `800 kbit/s`.
pub fn human_rate(bits: u64) -> String {
    let (value, unit) = match bits {
        b if b >= 1_000_000_000 => (b as f64 / 1e9, "Gbit/s"),
        b if b >= 1_000_000 => (b as f64 / 1e6, "Mbit/s"),
        b => (b as f64 / 1e3, "kbit/s"),
    };
    format!("{} {unit}", (value * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_has_a_latency_a_rate_and_maybe_a_cap_per_connection() {
        let n = Network::parse("40ms,200mbit,25mbit").unwrap();
        assert_eq!(n.latency(), Duration::from_millis(40));
        assert_eq!(n.rate_bits, 200_000_000);
        assert_eq!(n.per_connection_bits, Some(25_000_000));
        assert_eq!(n.per_connection_bytes(), Some(3_125_000));
        assert_eq!(
            n.to_string(),
            "40 ms round trip, 200 Mbit/s, 25 Mbit/s per connection"
        );
        let n = Network::parse("0.5s, 1.5Gbit").unwrap();
        assert_eq!(n.latency_ms, 500.0);
        assert_eq!(n.to_string(), "500 ms round trip, 1.5 Gbit/s");
        assert_eq!(n.per_connection_bits, None);
        assert_eq!(
            Network::parse("0ms,800kbit").unwrap().to_string(),
            "0 ms round trip, 800 kbit/s"
        );
    }

    #[test]
    fn a_bad_setting_says_what_is_wrong_in_one_line() {
        for (bad, says) in [
            ("40ms", "give two or three values"),
            ("40ms,200mbit,25mbit,1", "give two or three values"),
            ("40,200mbit", "not a latency"),
            ("-5ms,200mbit", "not a latency"),
            ("11s,200mbit", "from 0ms to 10s"),
            ("40ms,200", "not a rate"),
            ("40ms,200mbps", "not a rate"),
            ("40ms,0mbit", "not a rate"),
            ("40ms,nanmbit", "not a rate"),
            ("40ms,200mbit,", "not a rate"),
            ("40ms,25mbit,200mbit", "above the link's rate 25 Mbit/s"),
        ] {
            let err = Network::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
    }
}
