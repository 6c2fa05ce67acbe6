//! A TCP proxy in front of the bench's registry that makes it answer like a distant one (this
//! kernel has no netem): what a client sends reaches the registry one round trip after it was
//! sent, and a connection's first bytes one round trip later still (its handshake); what the
//! registry sends goes back at most at the per-connection rate. The link's total rate is the
//! kernel's (`link`). Plain std threads, three per connection: the client's bytes in, the same
//! bytes out when due, the registry's bytes back at their pace.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes read or written at once.
const CHUNK: usize = 16 * 1024;
/// A connection that carried nothing back for this long counts as idle.
const IDLE: Duration = Duration::from_millis(200);
/// What a connection may send ahead of its pace.
const BURST: f64 = 64.0 * 1024.0;

/// How the proxy shapes a connection.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub latency: Duration,
    /// Bytes per second each connection may carry back, if capped.
    pub per_connection: Option<u64>,
}

/// Connections since the last [`Proxy::take_counts`]: how many were opened, and the most that
/// carried bytes back at once (idle keep-alive connections left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub connections: usize,
    pub most_busy: usize,
}

/// What the proxy's threads share.
#[derive(Default)]
struct Shared {
    stopping: AtomicBool,
    open: Mutex<Open>,
}

/// The open connections (both sockets of each, to close them on stop), how many of them carry
/// bytes back now, and the counts.
#[derive(Default)]
struct Open {
    streams: BTreeMap<u64, (TcpStream, TcpStream)>,
    next: u64,
    busy: usize,
    counts: Counts,
}

/// A running proxy; `stop` (or drop) closes it and every connection.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `ip` (a free port) and forwards each connection to `upstream`.
    pub fn start(ip: IpAddr, upstream: SocketAddr, shape: Shape) -> Result<Proxy> {
        let listener = TcpListener::bind((ip, 0))
            .with_context(|| format!("listening on {ip} for the shaping proxy"))?;
        let addr = listener
            .local_addr()
            .context("the shaping proxy's address")?;
        let shared = Arc::new(Shared::default());
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(client) = client {
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || connection(client, upstream, shape, &shared));
                    }
                }
            })
        };
        Ok(Proxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The connections since the last call.
    pub fn take_counts(&self) -> Counts {
        std::mem::take(&mut lock(&self.shared.open).counts)
    }

    /// Closes the listener and every open connection.
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for (client, upstream) in lock(&self.shared.open).streams.values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One client connection, until both directions have ended.
fn connection(client: TcpStream, upstream: SocketAddr, shape: Shape, shared: &Shared) {
    let opened = Instant::now();
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        return;
    };
    let (Ok(client_out), Ok(server_in), Ok(client_kept), Ok(server_kept)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    let id = {
        let mut open = lock(&shared.open);
        // Registered after `stop` closed the others: close it too.
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let id = open.next;
        open.next += 1;
        open.streams.insert(id, (client_kept, server_kept));
        open.counts.connections += 1;
        id
    };
    let (due_tx, due_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || read_requests(client, &due_tx));
    let writer = std::thread::spawn(move || {
        forward_when_due(&due_rx, server, opened, shape.latency);
    });
    pace_back(server_in, client_out, shape.per_connection, shared);
    let _ = reader.join();
    let _ = writer.join();
    lock(&shared.open).streams.remove(&id);
}

/// The client's bytes as they arrive, with the time they arrived; then the end.
fn read_requests(mut client: TcpStream, due: &mpsc::Sender<(Instant, Vec<u8>)>) {
    let mut buf = vec![0; CHUNK];
    while let Ok(n @ 1..) = client.read(&mut buf) {
        if due.send((Instant::now(), buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// When bytes the client sent at `arrived` reach the registry: one round trip after they were
/// sent, and never before the connection's handshake (one round trip) is over.
pub fn due(opened: Instant, arrived: Instant, latency: Duration) -> Instant {
    arrived.max(opened + latency) + latency
}

/// Writes the client's bytes to the registry when due; closes its sending side at the end.
fn forward_when_due(
    arrivals: &mpsc::Receiver<(Instant, Vec<u8>)>,
    mut server: TcpStream,
    opened: Instant,
    latency: Duration,
) {
    for (arrived, bytes) in arrivals {
        let at = due(opened, arrived, latency);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        if server.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Copies the registry's bytes back to the client at most at `rate` bytes per second, counted
/// busy while bytes come; closes the client's receiving side at the end.
fn pace_back(mut server: TcpStream, mut client: TcpStream, rate: Option<u64>, shared: &Shared) {
    let mut pace = rate.map(|r| Pace::new(r as f64, Instant::now()));
    let mut buf = vec![0; CHUNK];
    let mut busy = false;
    let _ = server.set_read_timeout(Some(IDLE));
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                set_busy(shared, &mut busy, false);
                continue;
            }
            Err(_) => break,
        };
        set_busy(shared, &mut busy, true);
        if let Some(pace) = &mut pace {
            std::thread::sleep(pace.wait(n, Instant::now()));
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    set_busy(shared, &mut busy, false);
    let _ = client.shutdown(Shutdown::Write);
    let _ = server.shutdown(Shutdown::Read);
}

/// Counts a connection busy or idle (`busy`: what it counted as so far).
fn set_busy(shared: &Shared, busy: &mut bool, now: bool) {
    if *busy == now {
        return;
    }
    *busy = now;
    let mut open = lock(&shared.open);
    if now {
        open.busy += 1;
        open.counts.most_busy = open.counts.most_busy.max(open.busy);
    } else {
        open.busy = open.busy.saturating_sub(1);
    }
}

/// A token bucket: `rate` bytes per second, at most [`BURST`] saved up.
#[derive(Debug)]
pub struct Pace {
    rate: f64,
    credit: f64,
    at: Instant,
}

impl Pace {
    pub fn new(rate: f64, now: Instant) -> Pace {
        Pace {
            rate,
            credit: BURST,
            at: now,
        }
    }

    /// How long to wait before sending `n` bytes at `now` (they are counted as sent).
    pub fn wait(&mut self, n: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.credit = (self.credit + elapsed * self.rate).min(BURST) - n as f64;
        self.at = now;
        if self.credit >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.credit / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_waits_one_round_trip_and_a_new_connection_one_more() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(40);
        assert_eq!(due(t0, t0, rtt), t0 + 2 * rtt, "the first request");
        let later = t0 + Duration::from_secs(1);
        assert_eq!(due(t0, later, rtt), later + rtt, "a request on an open one");
        assert_eq!(due(t0, t0, Duration::ZERO), t0);
    }

    #[test]
    fn the_pace_holds_the_rate_after_a_burst() {
        let t0 = Instant::now();
        let mut pace = Pace::new(1_000_000.0, t0);
        // The burst goes at once; then every byte waits for its share of the rate.
        assert_eq!(pace.wait(64 * 1024, t0), Duration::ZERO);
        let wait = pace.wait(100_000, t0);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // Sent at their time, 100 kB more wait 0.1 s again: credit never exceeds the burst.
        let wait = pace.wait(100_000, t0 + Duration::from_secs(10));
        assert!((wait.as_secs_f64() - (100_000.0 - BURST) / 1e6).abs() < 1e-6);
    }

    // Unix only: bench pull runs on Linux, and a closed listener's refusal differs under Wine.
    #[cfg(unix)]
    #[test]
    fn the_proxy_delays_each_request_and_paces_what_comes_back() {
        // An upstream that answers each line with 200 kB.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = server.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in server.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 1];
                    while let Ok(1) = stream.read(&mut buf) {
                        if buf[0] == b'\n' && stream.write_all(&[7u8; 200_000]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let shape = Shape {
            latency: Duration::from_millis(100),
            per_connection: Some(1_000_000),
        };
        let mut proxy = Proxy::start("127.0.0.1".parse().unwrap(), upstream, shape).unwrap();
        let mut client = TcpStream::connect(proxy.addr).unwrap();
        let started = Instant::now();
        client.write_all(b"GET\n").unwrap();
        let mut got = vec![0u8; 200_000];
        client.read_exact(&mut got).unwrap();
        let first = started.elapsed();
        // Handshake and request: 0.2 s; 200 kB at 1 MB/s after a 64 kB burst: 0.136 s.
        assert!(first >= Duration::from_millis(330), "{first:?}");
        let again = Instant::now();
        client.write_all(b"GET\n").unwrap();
        client.read_exact(&mut got).unwrap();
        // The request: 0.1 s; the burst saved up meanwhile, then 136 kB at 1 MB/s.
        assert!(
            again.elapsed() >= Duration::from_millis(230),
            "{:?}",
            again.elapsed()
        );
        assert!(again.elapsed() < first + Duration::from_millis(500));
        assert_eq!(
            proxy.take_counts(),
            Counts {
                connections: 1,
                most_busy: 1
            }
        );
        proxy.stop();
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).unwrap_or(0), 0, "closed");
        assert!(
            TcpStream::connect(proxy.addr).is_err(),
            "no longer listening"
        );
    }
}
