//! The link a shaped pull goes through: a network namespace of the run's own, where the pulling
//! engines run, joined to the host by a veth pair whose host end sends at most the link's rate
//! (`tc` `tbf`; this kernel has no netem, so latency and per-connection caps are the proxy's).
//! Deleting the namespace deletes the pair and its qdisc: that is the cleanup, on every path
//! (written in the run's ledger before it is made).

use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;

use super::ledger::Ledger;
use super::network::Network;
use xtask::cleanup::Guard;
use xtask::process::Cmd;

/// A /30 of this block per run, chosen by pid, skipping any in use.
const BLOCK: [u8; 2] = [10, 254];

/// How much the qdisc may hold back before it drops: TCP then settles at the rate.
const QUEUE_MS: u32 = 50;

/// A made link; dropping it deletes the namespace, the pair and the qdisc.
pub struct Link {
    /// The namespace the engines run in.
    pub netns: String,
    /// The host end's address: where the proxies listen.
    pub host_ip: Ipv4Addr,
    /// The pair's /30, which the engines pull from over plain HTTP (`insecure-registries`).
    pub subnet: String,
    _guard: Guard,
}

/// The names a run's link gets from its pid: the namespace and the pair's two ends (interface
/// names have at most 15 bytes).
pub fn names(pid: u32) -> (String, String, String) {
    (
        format!("xtask-pull-{pid}"),
        format!("xtp{pid:x}h"),
        format!("xtp{pid:x}n"),
    )
}

/// The /30 for `pid`: host end, namespace end, and the prefix for `insecure-registries`; the
/// next one when a host address is in it.
pub fn subnet(pid: u32, in_use: &[Ipv4Addr]) -> (Ipv4Addr, Ipv4Addr, String) {
    let blocks = 1u32 << 14;
    (0..blocks)
        .map(|k| (pid + k) % blocks * 4)
        .map(|base| {
            let [c, d] = [(base >> 8) as u8, (base & 0xff) as u8];
            let [a, b] = BLOCK;
            (
                Ipv4Addr::new(a, b, c, d + 1),
                Ipv4Addr::new(a, b, c, d + 2),
                format!("{a}.{b}.{c}.{d}/30"),
            )
        })
        .find(|(host, ns, _)| !in_use.iter().any(|u| same_30(u, host) || same_30(u, ns)))
        .expect("a free /30 among 16384")
}

fn same_30(a: &Ipv4Addr, b: &Ipv4Addr) -> bool {
    u32::from(*a) >> 2 == u32::from(*b) >> 2
}

/// tbf's arguments for `rate` bits per second: a bucket of 5 ms at the rate, never less than a
/// 64 kB segment (veth hands whole GSO segments to the qdisc).
pub fn tbf_args(rate_bits: u64) -> Vec<String> {
    let burst = (rate_bits / 8 / 200).max(64 * 1024 + 1514);
    vec![
        "rate".into(),
        format!("{rate_bits}bit"),
        "burst".into(),
        format!("{burst}b"),
        "latency".into(),
        format!("{QUEUE_MS}ms"),
    ]
}

impl Link {
    /// Makes the namespace, the pair (addressed, up) and the host end's qdisc.
    pub fn make(ledger: &Ledger, network: &Network) -> Result<Link> {
        let pid = std::process::id();
        let (netns, host_if, ns_if) = names(pid);
        let (host_ip, ns_ip, prefix) = subnet(pid, &host_addresses()?);
        ledger.netns(&netns)?;
        let deleting = netns.clone();
        let link = Link {
            _guard: Guard::new(move || {
                let _ = Cmd::new("ip").args(["netns", "del", &deleting]).run();
            }),
            netns,
            host_ip,
            subnet: prefix,
        };
        let tbf = tbf_args(network.rate_bits);
        let ns = link.netns.as_str();
        let (host_cidr, ns_cidr) = (format!("{host_ip}/30"), format!("{ns_ip}/30"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", ns],
            vec![
                "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", ns,
            ],
            vec!["ip", "addr", "add", &host_cidr, "dev", &host_if],
            vec!["ip", "link", "set", &host_if, "up"],
            vec!["ip", "-n", ns, "addr", "add", &ns_cidr, "dev", &ns_if],
            vec!["ip", "-n", ns, "link", "set", &ns_if, "up"],
            vec!["ip", "-n", ns, "link", "set", "lo", "up"],
            [
                vec!["tc", "qdisc", "add", "dev", &host_if, "root", "tbf"],
                tbf.iter().map(String::as_str).collect(),
            ]
            .concat(),
        ];
        for step in steps {
            Cmd::new(step[0]).args(&step[1..]).run().with_context(|| {
                format!(
                    "making the shaped link ({}): this needs root, network namespaces, veth and \
                     tc's tbf",
                    network.argument
                )
            })?;
        }
        Ok(link)
    }
}

/// The host's IPv4 addresses.
fn host_addresses() -> Result<Vec<Ipv4Addr>> {
    let out = Cmd::new("ip").args(["-o", "-4", "addr", "show"]).read()?;
    let found: Vec<Ipv4Addr> = out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect();
    if found.is_empty() {
        bail!("`ip -o -4 addr show` listed no address");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gets_a_30_of_its_own_and_short_interface_names() {
        let (host, ns, prefix) = subnet(5, &[]);
        assert_eq!(
            (host, ns, prefix.as_str()),
            (
                Ipv4Addr::new(10, 254, 0, 21),
                Ipv4Addr::new(10, 254, 0, 22),
                "10.254.0.20/30"
            )
        );
        let (host, _, _) = subnet(5, &[Ipv4Addr::new(10, 254, 0, 22)]);
        assert_eq!(host, Ipv4Addr::new(10, 254, 0, 25), "the next /30");
        let (host, _, _) = subnet(4_194_303, &[]);
        assert_eq!(host, Ipv4Addr::new(10, 254, 255, 253));
        let (netns, h, n) = names(4_194_304);
        assert_eq!((h.as_str(), n.as_str()), ("xtp400000h", "xtp400000n"));
        assert!(h.len() <= 15 && netns.ends_with("4194304"));
    }

    #[test]
    fn the_bucket_holds_5_ms_at_the_rate_and_at_least_a_segment() {
        assert_eq!(
            tbf_args(200_000_000).join(" "),
            "rate 200000000bit burst 125000b latency 50ms"
        );
        assert_eq!(tbf_args(8_000_000)[3], "67050b");
    }
}
