//! The webhook delivery worker (see [`keyseal_issuer::webhooks`] for the
//! outbox, the order and the retries): every replica runs one. It looks
//! for endpoints with a delivery due, claims each in the ledger (one
//! replica at a time per endpoint), and sends that endpoint's deliveries
//! one after another, oldest first, on a thread of lower priority (ureq,
//! rustls).
//!
//! Each request carries, beside the Standard Webhooks headers, a
//! `keyseal-signature` by the organisation's active signing key
//! ([`keyseal_issuer::webhooks::keyring_signature`]), which receivers check
//! with the organisation's public keyring and no shared secret
//! (`keyseal::webhooks::verify`).
//!
//! Where deliveries may go: `https://` URLs whose host resolves to public
//! addresses only. Loopback, private, link-local (cloud metadata),
//! carrier-grade NAT, unique-local, multicast and unspecified addresses are
//! refused, when the endpoint is registered and again on every connection
//! (the resolver that connects checks what it resolved, so a name that
//! resolves to a public address at registration and to an internal one
//! later reaches nothing). [`WebhookOptions::private_networks`] (`keyseal
//! serve --webhooks-to-private-networks`) allows private targets and
//! `http://`, for receivers inside the vendor's own network.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyseal_issuer::webhooks::{After, CLAIM_SECS, Job, Outcome};

use crate::State;

/// Most deliveries sent to one endpoint between two records.
const BATCH: u64 = 64;

/// How long an endpoint's run waits after a batch of fewer than half of
/// [`BATCH`] before it looks for the next (a delivery's latency grows by
/// at most this; the ledger's commits for deliveries shrink many times).
const LINGER: Duration = Duration::from_millis(50);

/// How the service delivers webhooks.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Allow endpoints in loopback and private networks, and plain
    /// `http://` (default: public `https://` endpoints only).
    pub private_networks: bool,
    /// Longest a delivery may take, connecting included (default 10 s).
    pub timeout: Duration,
    /// How often a replica looks for due deliveries (default 250 ms).
    pub poll: Duration,
    /// Most endpoints one replica delivers to at once (default 32).
    pub concurrency: usize,
    /// Whether this replica sends webhooks and emails (default: yes).
    /// Without, it still writes every event to the outbox, announces lapsed
    /// leases and prunes old deliveries; replicas that deliver send them.
    /// A deployment can so keep its sending off the replicas that answer
    /// requests.
    pub deliver: bool,
    /// Certificates (DER) trusted for SMTP servers' TLS beside the public
    /// roots (webpki-roots): a mail relay with a private CA. Default: none.
    /// [`crate::smtp_roots`] reads them from a PEM file's text. They are trusted
    /// for every organisation's SMTP host: whoever holds such a CA's key
    /// could pose as any of them, so use a CA that signs only your relays
    /// (name-constrained). Checked when the service opens.
    pub smtp_roots: Vec<Vec<u8>>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            private_networks: false,
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            concurrency: 32,
            deliver: true,
            smtp_roots: Vec::new(),
        }
    }
}

/// The worker's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookMetrics {
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) disabled: AtomicU64,
    pub(crate) payments_processed: AtomicU64,
    pub(crate) payments_refused: AtomicU64,
}

impl WebhookMetrics {
    /// Appends the counters in Prometheus text format.
    pub(crate) fn render(&self, s: &mut String) {
        use std::fmt::Write as _;
        for (name, help, v) in [
            (
                "keyseal_webhook_deliveries_total",
                "Webhook deliveries an endpoint accepted (2xx), through this replica.",
                &self.delivered,
            ),
            (
                "keyseal_webhook_failed_attempts_total",
                "Webhook delivery attempts that got no 2xx answer, through this replica.",
                &self.failed_attempts,
            ),
            (
                "keyseal_webhook_failed_deliveries_total",
                "Webhook deliveries whose retries ran out, through this replica.",
                &self.failed,
            ),
            (
                "keyseal_webhook_endpoints_disabled_total",
                "Webhook endpoints this replica disabled after a delivery's retries ran out.",
                &self.disabled,
            ),
            (
                "keyseal_payment_events_total",
                "Payment provider events acted on (minted, renewed, revoked, ignored), through this replica.",
                &self.payments_processed,
            ),
            (
                "keyseal_payment_events_refused_total",
                "Payment provider events refused (bad or old signature, unknown price...), through this replica.",
                &self.payments_refused,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// Whether an address is one a webhook may reach without
/// [`WebhookOptions::private_networks`]: not loopback, private (RFC 1918,
/// unique-local), link-local, carrier-grade NAT, benchmarking,
/// documentation, multicast, broadcast, unspecified or reserved.
#[must_use]
pub fn public_address(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

/// Checks an endpoint URL against the service's policy at registration:
/// its scheme, and a host written as an address. A name is checked when a
/// delivery connects.
pub(crate) fn check_target(url: &str, opts: &WebhookOptions) -> Result<(), String> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|_| "url: is not a valid URL".to_owned())?;
    let host = uri.host().unwrap_or("");
    if opts.private_networks {
        return Ok(());
    }
    if uri.scheme_str() != Some("https") {
        return Err(
            "url: must be https:// (plain http:// only on a service started with --webhooks-to-private-networks)"
                .into(),
        );
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let local_name = bare.eq_ignore_ascii_case("localhost")
        || bare.to_ascii_lowercase().ends_with(".localhost")
        || !bare.contains('.') && bare.parse::<IpAddr>().is_err();
    let private_ip = bare.parse::<IpAddr>().is_ok_and(|ip| !public_address(ip));
    if local_name || private_ip {
        return Err(format!(
            "url: {host} is a local or private address; endpoints must be public (or start the service with --webhooks-to-private-networks)"
        ));
    }
    Ok(())
}

/// How long the deliveries' resolver keeps an answer.
const RESOLVED_FOR: Duration = Duration::from_secs(30);

/// ureq's resolver for deliveries: the system's, keeping only the
/// addresses deliveries may reach (unless `private_networks`), each answer
/// kept for [`RESOLVED_FOR`]. ureq resolves a request's host before it
/// looks in its pool of open connections, and with a timeout set each
/// lookup runs on a thread of its own: without the cache a batch sent over
/// one kept-alive connection would start a thread per delivery. Only
/// answers are kept, never failures; what is kept was checked.
#[derive(Debug, Default)]
struct Resolver {
    private_networks: bool,
    cache: std::sync::Mutex<
        std::collections::HashMap<
            String,
            (Instant, ureq::unversioned::resolver::ResolvedSocketAddrs),
        >,
    >,
}

impl ureq::unversioned::resolver::Resolver for Resolver {
    fn resolve(
        &self,
        uri: &axum::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |a| a.as_str())
        );
        let cache = || {
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, addrs)) = cache().get(&key)
            && at.elapsed() < RESOLVED_FOR
        {
            return Ok(addrs.clone());
        }
        let all = ureq::unversioned::resolver::DefaultResolver::default()
            .resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        for a in all
            .iter()
            .filter(|a| self.private_networks || public_address(a.ip()))
        {
            kept.push(*a);
        }
        if kept.is_empty() {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the endpoint's host resolves to local or private addresses only",
            )));
        }
        let mut cache = cache();
        if cache.len() >= 1024 {
            cache.retain(|_, (at, _)| at.elapsed() < RESOLVED_FOR);
            if cache.len() >= 1024 {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), kept.clone()));
        Ok(kept)
    }
}

/// The HTTP client deliveries use: no redirects (a 3xx is a failed
/// attempt), the options' timeout, statuses as answers.
pub(crate) fn agent(opts: &WebhookOptions) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        // Never through a proxy from the environment: the resolver that
        // checks addresses would see only the proxy's.
        .proxy(None)
        .user_agent(concat!("keyseal-webhooks/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        Resolver {
            private_networks: opts.private_networks,
            ..Resolver::default()
        },
    )
}

/// Runs `f` on a thread of its own at a lower CPU priority (nice 10, on
/// Linux, where a thread's nice value is its own): sending webhooks then
/// yields the processor to the requests the service answers, and takes
/// what they leave. The thread holds no lock of the ledger (the records are
/// written by the caller), so a mint never waits for it. `None` if no
/// thread could be started.
fn spawn_sender<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<tokio::sync::oneshot::Receiver<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("keyseal-webhooks".into())
        .spawn(move || {
            #[cfg(target_os = "linux")]
            {
                // Best effort: at the default priority if refused.
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
            }
            let _ = tx.send(f());
        })
        .ok()?;
    Some(rx)
}

/// Sends one delivery (blocking). Without `private_networks`, only to an
/// `https://` URL (an endpoint registered through the command line, or
/// before the service's flags changed, may be `http://`).
fn send(
    agent: &ureq::Agent,
    job: &Job,
    timestamp: u64,
    keyring_signature: Option<&str>,
    private_networks: bool,
) -> Outcome {
    let start = Instant::now();
    if !private_networks && !job.url.starts_with("https://") {
        return Outcome {
            status: None,
            error: Some(
                "plain http:// endpoints need a service started with --webhooks-to-private-networks"
                    .into(),
            ),
            millis: 0,
        };
    }
    let mut r = agent
        .post(&job.url)
        .header("content-type", "application/json")
        .header("webhook-id", &job.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", job.signature(timestamp));
    if let Some(sig) = keyring_signature {
        r = r.header("keyseal-signature", sig);
    }
    let r = r.send(job.payload.as_bytes());
    let millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    match r {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            // The answer's body is read (a little of it), so the connection
            // can be kept, and not kept.
            let _ = resp.body_mut().with_config().limit(4096).read_to_vec();
            let error =
                (!(200..300).contains(&status)).then(|| format!("the endpoint answered {status}"));
            Outcome {
                status: Some(status),
                error,
                millis,
            }
        }
        Err(e) => Outcome {
            status: None,
            error: Some(e.to_string()),
            millis,
        },
    }
}

/// Delivers until `stop` fires: every 10 s of the service's clock,
/// announces the leases that lapsed ([`keyseal_issuer::Store::announce_lapsed_leases`]);
/// every hour, prunes old deliveries; and every poll, unless
/// [`WebhookOptions::deliver`] is off, claims the endpoints with a delivery
/// due (at most [`WebhookOptions::concurrency`] at once) and runs each one's
/// queue.
pub(crate) async fn worker(
    state: Arc<State>,
    opts: WebhookOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let me = {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        keyseal_core::hex::encode(&b)
    };
    let agent = agent(&opts);
    let running: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tick = tokio::time::interval(opts.poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = 0u64;
    let mut last_lapse = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let now = state.now();
        if now >= last_lapse + 10 {
            last_lapse = now;
            match state.store.announce_lapsed_leases(now, 500).await {
                Ok(n) if n > 0 => tracing::info!(leases = n, "announced lapsed leases"),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %crate::problem::chain(&e), "announcing lapsed leases")
                }
            }
        }
        if now >= last_prune + 3600 {
            last_prune = now;
            if let Err(e) = state.store.prune_webhooks(now).await {
                tracing::error!(error = %crate::problem::chain(&e), "pruning old webhook deliveries");
            }
        }
        if !opts.deliver {
            continue;
        }
        let due = match state
            .store
            .due_webhook_endpoints(now, opts.concurrency as u64)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %crate::problem::chain(&e), "reading due webhook deliveries");
                continue;
            }
        };
        for endpoint in due {
            let fresh = running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(endpoint.clone());
            if !fresh {
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&endpoint);
                break;
            };
            let (state, agent, me, running, stop) = (
                state.clone(),
                agent.clone(),
                me.clone(),
                running.clone(),
                stop.clone(),
            );
            let (timeout, private) = (opts.timeout, opts.private_networks);
            tokio::spawn(async move {
                if let Err(e) = run(&state, &agent, &me, &endpoint, (timeout, private), stop).await
                {
                    tracing::error!(endpoint_id = %endpoint, error = %crate::problem::chain(&e), "delivering webhooks");
                }
                running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&endpoint);
                drop(slot);
            });
        }
    }
}

/// Claims an endpoint and sends its due deliveries in order, until none is
/// due, the claim is lost or `stop` fires.
async fn run(
    state: &State,
    agent: &ureq::Agent,
    me: &str,
    endpoint: &str,
    (timeout, private): (Duration, bool),
    stop: tokio::sync::watch::Receiver<bool>,
) -> keyseal_issuer::Result<()> {
    let claim = timeout.as_secs() + CLAIM_SECS;
    let now = state.now();
    if !state
        .store
        .claim_webhook_endpoint(endpoint, me, now, now + claim)
        .await?
    {
        return Ok(());
    }
    let mut small = false;
    while !*stop.borrow() {
        // After a small batch, more events gather for a moment, so a steady
        // trickle is sent and recorded many at a time (one commit each)
        // rather than one commit per event beside the mints'.
        if small {
            tokio::time::sleep(LINGER).await;
        }
        let now = state.now();
        let jobs = state
            .store
            .next_webhook_jobs(endpoint, me, now, BATCH)
            .await?;
        let Some(first) = jobs.first() else {
            return Ok(());
        };
        small = (jobs.len() as u64) < BATCH / 2;
        // Signed by the organisation's active key too, when it has one.
        let signer = state.signer(&first.org_id).await.ok();
        // Sent in order, on a thread of lower priority, until one is not accepted
        // or the claim has no room for another; recorded together (one commit for
        // many deliveries). A crash before the record sends them again,
        // with the same ids.
        let sent = {
            let agent = agent.clone();
            // No send may run past the claim: one starts only while a whole
            // timeout (and a margin for the record) still fits in it.
            let budget =
                Duration::from_secs(claim.saturating_sub(CLAIM_SECS / 2)).saturating_sub(timeout);
            spawn_sender(move || {
                let start = Instant::now();
                let mut sent = Vec::with_capacity(jobs.len());
                for job in jobs {
                    if !sent.is_empty() && start.elapsed() >= budget {
                        break;
                    }
                    // The service's clock, moved on by the time sent so far.
                    let ts = now + start.elapsed().as_secs();
                    let keyring_signature = signer.as_ref().map(|s| {
                        keyseal_issuer::webhooks::keyring_signature(
                            s,
                            &job.event_id,
                            ts,
                            job.payload.as_bytes(),
                        )
                    });
                    let outcome = send(&agent, &job, ts, keyring_signature.as_deref(), private);
                    let accepted = outcome.accepted();
                    sent.push((job, outcome));
                    if !accepted {
                        break;
                    }
                }
                sent
            })
        };
        let Some(Ok(sent)) = (match sent {
            Some(rx) => Some(rx.await),
            None => None,
        }) else {
            // Nothing was recorded: the batch goes out again once the
            // claim runs out (with the same ids), said here, not silently.
            tracing::error!(
                endpoint_id = %endpoint,
                "the webhook sender thread could not start or failed; this endpoint's deliveries are retried when its claim runs out"
            );
            return Ok(());
        };
        let now = state.now();
        let afters = state
            .store
            .record_webhook_attempts(&sent, me, now, now + claim)
            .await?;
        let m = &state.webhook_metrics;
        for ((job, outcome), after) in sent.iter().zip(afters) {
            match after {
                After::Delivered => {
                    m.delivered.fetch_add(1, Ordering::Relaxed);
                }
                After::Retry(at) => {
                    m.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        endpoint_id = %job.endpoint_id, delivery_id = %job.delivery_id,
                        attempts = job.attempts + 1, retry_at = at,
                        error = outcome.error.as_deref().unwrap_or(""),
                        "a webhook delivery failed; it will be tried again"
                    );
                }
                After::Failed => {
                    m.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    m.failed.fetch_add(1, Ordering::Relaxed);
                    m.disabled.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        endpoint_id = %job.endpoint_id, delivery_id = %job.delivery_id,
                        attempts = job.attempts + 1,
                        "a webhook delivery failed for good; its endpoint is disabled"
                    );
                    return Ok(());
                }
                After::LostClaim => return Ok(()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_targets_without_the_flag() {
        let strict = WebhookOptions::default();
        for ok in [
            "https://store.example.com/hooks",
            "https://93.184.215.14:8443/x",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x",
        ] {
            assert_eq!(check_target(ok, &strict), Ok(()), "{ok}");
        }
        for bad in [
            "http://store.example.com/hooks",
            "https://localhost/x",
            "https://app.localhost/x",
            "https://intranet/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
        ] {
            assert!(check_target(bad, &strict).is_err(), "{bad}");
        }
        let open = WebhookOptions {
            private_networks: true,
            ..WebhookOptions::default()
        };
        assert_eq!(check_target("http://127.0.0.1:9000/x", &open), Ok(()));
    }

    #[test]
    fn deliveries_connect_to_public_addresses_only() {
        // An address the registration check would also refuse, and a name
        // (localhost) that resolves to loopback: refused by the resolver
        // that connects, before any connection.
        let strict = agent(&WebhookOptions::default());
        for url in ["https://127.0.0.1:9/x", "https://localhost:9/x"] {
            let e = strict.post(url).send("{}").unwrap_err().to_string();
            assert!(e.contains("local or private addresses only"), "{url}: {e}");
        }
    }

    #[test]
    fn the_resolver_keeps_checked_answers_only() {
        use ureq::unversioned::resolver::Resolver as _;
        let config = ureq::config::Config::default();
        let resolve = |r: &Resolver, url: &str| {
            let uri: axum::http::Uri = url.parse().unwrap();
            r.resolve(
                &uri,
                &config,
                ureq::unversioned::transport::NextTimeout::default(),
            )
        };
        let cached = |r: &Resolver| r.cache.lock().unwrap().len();
        // Refused: nothing kept, so it is checked again next time.
        let strict = Resolver::default();
        assert!(resolve(&strict, "https://localhost:9/x").is_err());
        assert!(resolve(&strict, "https://localhost:9/x").is_err());
        assert_eq!(cached(&strict), 0);
        // Allowed: kept, one entry per scheme and authority.
        let private = Resolver {
            private_networks: true,
            ..Resolver::default()
        };
        let first = resolve(&private, "http://127.0.0.1:9/a").unwrap();
        let again = resolve(&private, "http://127.0.0.1:9/b").unwrap();
        assert_eq!(first.as_ref(), again.as_ref());
        assert_eq!(cached(&private), 1);
        resolve(&private, "http://127.0.0.1:10/a").unwrap();
        assert_eq!(cached(&private), 2);
    }
}
