#![doc = include_str!("../README.md")]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keyseal_issuer::{
    Access, Context, InitOptions, KdfParams, KeyError, LedgerError, Passphrase, Signer, Store,
    Vault,
};

mod api;
mod idempotency;
#[doc(hidden)]
pub use api::fuzz_request_bodies;
/// An address range (`--trusted-proxy`), from the `ipnet` crate.
pub use ipnet::IpNet;
pub mod auth;
mod email;
pub mod metrics;
pub mod openapi;
mod payments;
pub mod problem;
pub mod relay;
pub mod webhooks;
pub use email::smtp_roots;
pub use webhooks::WebhookOptions;

/// Now, in unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub use keyseal_issuer::REVOCATION_LIST_LIFETIME;
/// How long in-flight requests may take after shutdown, by default.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a replica trusts an API token it looked up (5 s): a token
/// revoked through another replica is refused here within this time (at
/// once through this one).
pub const TOKEN_CACHE_SECS: u64 = 5;
/// Longest wait for a request's headers, and for the next request on an
/// idle keep-alive connection (10 s).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for a request's body once its headers arrived (10 s).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest accepted request body (64 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// What the service starts from.
pub struct Options {
    /// The vault directory (created and initialised if missing or empty).
    /// It holds the sealed signing keys, and the ledger unless `database_url`.
    pub vault_dir: PathBuf,
    /// A `postgres://` ledger shared by several replicas, instead of the
    /// vault's embedded SQLite file.
    pub database_url: Option<String>,
    /// The passphrase that opens the signing keys.
    pub passphrase: Passphrase,
    /// Argon2id parameters for a new vault's key (default if `None`).
    pub kdf: Option<KdfParams>,
    /// The clock.
    pub clock: Clock,
    /// Failed authentications one client may make per minute before it is
    /// refused for the rest of the minute ([`auth::MAX_FAILURES`] if `None`).
    pub auth_failures_per_minute: Option<u32>,
    /// How long in-flight requests may take to finish after the shutdown
    /// signal ([`DRAIN_TIMEOUT`] if `None`).
    pub drain_timeout: Option<std::time::Duration>,
    /// Timeouts, the connection limit and the trusted proxies.
    pub network: Network,
    /// How often this replica looks for revocation lists past half their
    /// lifetime and signs them again ([`LIST_REFRESH`] if `None`).
    pub list_refresh: Option<std::time::Duration>,
    /// Where webhooks may go, and how they are sent.
    pub webhooks: WebhookOptions,
}

/// Default of [`Options::list_refresh`]: lists live a week and are signed
/// again past half of it, so a look every ten minutes (one query over the
/// organisations' newest lists) leaves days to spare, even with replicas
/// down for a while.
pub const LIST_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

/// Default of [`Network::public_requests_per_second`]: an app fetches its
/// keyring and list at start and every few hours, so one address behind
/// which hundreds of apps start at once stays well under it, while 16
/// clients reading lists as fast as they can no longer take the service's
/// cores from the organisations that mint (`server/bench/lists.sh`).
pub const PUBLIC_REQUESTS_PER_SECOND: u32 = 20;

/// Default of [`Network::lease_requests_per_license_per_minute`]: a seat
/// checks in once a lease period (an hour to a day, or every few minutes
/// for floating seats), so a license of a hundred floating seats that
/// check in every ten minutes asks ten times a minute.
pub const LEASE_REQUESTS_PER_LICENSE_PER_MINUTE: u32 = 600;

/// Default of [`Network::trial_requests_per_client_per_minute`]: a device
/// asks for a trial once, so ten a minute leave room for an office behind
/// one address, while one client cannot mint thousands of trial licenses
/// with made-up fingerprints.
pub const TRIAL_REQUESTS_PER_CLIENT_PER_MINUTE: u32 = 10;

/// The lease endpoints' per-license limiter (by license id).
pub(crate) type LeaseLimiter = governor::DefaultKeyedRateLimiter<u128>;

/// The public endpoints' per-client limiter.
pub(crate) type PublicLimiter = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// The replica's budget of full list downloads: one cell a KiB.
pub(crate) type ListBytes = governor::DefaultDirectRateLimiter;

/// How the service meets its clients.
#[derive(Debug, Clone)]
pub struct Network {
    /// Longest wait for a request's headers, and for the next request on an
    /// idle keep-alive connection.
    pub header_timeout: std::time::Duration,
    /// Longest wait for a request's body once its headers arrived (then 408).
    pub body_timeout: std::time::Duration,
    /// Most connections open at once ([`max_connections`] if `None`).
    pub max_connections: Option<usize>,
    /// Proxies (load balancers) whose `X-Forwarded-For` says who the client
    /// is. A request from anywhere else is counted under its own address,
    /// whatever it claims.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests a second one client may make to the public endpoints
    /// (keyrings, revocation lists; bursts of five times as many), beyond
    /// which a request waits for the client's turn, up to a second, then
    /// gets 429 with `Retry-After`; 0: no limit (default
    /// [`PUBLIC_REQUESTS_PER_SECOND`]).
    pub public_requests_per_second: u32,
    /// Bytes a second this replica sends as full revocation list files,
    /// over every client and organisation (answers 304 to conditional
    /// requests are not counted, nor files under a thousandth of a second's
    /// budget: 64 KiB by default); a download past it waits up to a second,
    /// then gets 429 with `Retry-After`. 0: no limit (default
    /// [`PUBLIC_LIST_BYTES_PER_SECOND`]).
    pub public_list_bytes_per_second: u64,
    /// Lease requests (activations, check-ins, releases) a minute for one
    /// license, in bursts of as many; beyond, a request waits up to a second,
    /// then gets 429. 0: no limit (default
    /// [`LEASE_REQUESTS_PER_LICENSE_PER_MINUTE`]).
    pub lease_requests_per_license_per_minute: u32,
    /// Trial requests (`POST /v1/public/trials`) a minute from one client,
    /// in bursts of as many, besides the public rate; beyond, a request
    /// waits up to a second for its turn, then gets 429. 0: no limit
    /// (default [`TRIAL_REQUESTS_PER_CLIENT_PER_MINUTE`]).
    pub trial_requests_per_client_per_minute: u32,
}

/// Default of [`Network::public_list_bytes_per_second`], 64 MiB: 100,000
/// apps that each download a new 2 MB list within four hours need 14 MB a
/// second, while many clients that download the whole list as fast as
/// their own limit lets them no longer take the cores from the
/// organisations that mint (`server/bench/lists.sh`).
pub const PUBLIC_LIST_BYTES_PER_SECOND: u64 = 64 << 20;

impl Default for Network {
    fn default() -> Self {
        Network {
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            max_connections: None,
            trusted_proxies: Vec::new(),
            public_requests_per_second: PUBLIC_REQUESTS_PER_SECOND,
            public_list_bytes_per_second: PUBLIC_LIST_BYTES_PER_SECOND,
            lease_requests_per_license_per_minute: LEASE_REQUESTS_PER_LICENSE_PER_MINUTE,
            trial_requests_per_client_per_minute: TRIAL_REQUESTS_PER_CLIENT_PER_MINUTE,
        }
    }
}

impl Network {
    /// The client behind a request from `peer`: `peer` itself, unless it is
    /// a trusted proxy; then the rightmost address of `X-Forwarded-For`
    /// (`forwarded`, every such header joined by commas) that is not a
    /// trusted proxy (the leftmost if all are). Each proxy appends the
    /// address it saw, so only addresses right of the first untrusted one
    /// were written by proxies; anything left of it is the client's claim.
    #[must_use]
    pub fn client(&self, peer: std::net::IpAddr, forwarded: Option<&str>) -> std::net::IpAddr {
        let trusted = |ip: &std::net::IpAddr| {
            let ip = ip.to_canonical();
            self.trusted_proxies.iter().any(|n| n.contains(&ip))
        };
        if !trusted(&peer) {
            return peer;
        }
        let Some(hops) = forwarded else {
            return peer;
        };
        let mut client = peer;
        for hop in hops.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<std::net::IpAddr>() else {
                // A hop that is no address: what lies left of it is not
                // to be believed.
                break;
            };
            client = ip;
            if !trusted(&ip) {
                break;
            }
        }
        client
    }
}

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The vault or ledger failed.
    #[error(transparent)]
    Issuer(#[from] keyseal_issuer::Error),
    /// The OS random generator failed.
    #[error("the OS random generator failed: {0}")]
    Random(getrandom::Error),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    /// A certificate of [`WebhookOptions::smtp_roots`] does not parse.
    #[error("the SMTP root certificates: {0}")]
    SmtpRoots(String),
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}

pub(crate) struct State {
    pub(crate) store: Store,
    /// The vault directory: new signing keys are sealed into its `keys/`.
    pub(crate) vault_dir: PathBuf,
    /// Seals rotated keys and opens sealed ones (on a blocking thread);
    /// wiped on drop.
    pub(crate) passphrase: Arc<Passphrase>,
    pub(crate) kdf: KdfParams,
    /// Each organisation's signer (its active key), loaded from the vault
    /// on first use.
    pub(crate) signers: tokio::sync::RwLock<std::collections::HashMap<String, Signer>>,
    /// One key load (or signer change) at a time per organisation, so one
    /// organisation's unsealing (Argon2id, a while) holds neither the map
    /// nor the others, and concurrent first uses unseal once.
    pub(crate) loading:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Serialises key rotations (sealing a key takes a while: no signer
    /// lock is held meanwhile).
    pub(crate) rotation: tokio::sync::Mutex<()>,
    /// Mint requests for the group-commit task.
    pub(crate) minter: tokio::sync::mpsc::Sender<MintRequest>,
    /// Prepared lease check-ins for their group-commit task.
    pub(crate) checkins: tokio::sync::mpsc::Sender<CheckInRequest>,
    /// Parsed lease check-ins for the task that reads their licenses and
    /// seats in groups.
    pub(crate) lookups: tokio::sync::mpsc::Sender<LookupRequest>,
    /// Tokens recently read from the ledger, so a request under load does
    /// not read the token table; each kept [`TOKEN_CACHE_SECS`] from that
    /// read (never extended).
    pub(crate) tokens: std::sync::Mutex<TokenCache>,
    pub(crate) clock: Clock,
    /// Each organisation's current revocation list file, as served: a
    /// public request checks the list's head (two small reads) and sends
    /// this, whatever the number of revocations.
    pub(crate) lists: std::sync::Mutex<std::collections::HashMap<String, Arc<api::ListFile>>>,
    pub(crate) limiter: auth::FailureLimiter,
    /// Requests to the public endpoints, per client (`None`: no limit).
    pub(crate) public_limiter: Option<PublicLimiter>,
    /// Lease requests, per license (`None`: no limit).
    pub(crate) lease_limiter: Option<LeaseLimiter>,
    /// Trial requests, per client (`None`: no limit).
    pub(crate) trial_limiter: Option<PublicLimiter>,
    /// The budget of full revocation list downloads, in KiB
    /// ([`Network::public_list_bytes_per_second`]).
    pub(crate) list_bytes: Option<ListBytes>,
    /// Public requests seen, to drop idle clients from the limiter now and
    /// then.
    pub(crate) public_seen: AtomicU64,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) minted: AtomicU64,
    /// Timeouts, connection limit, trusted proxies.
    pub(crate) network: Network,
    /// Where webhooks may go.
    pub(crate) webhooks: WebhookOptions,
    pub(crate) webhook_metrics: webhooks::WebhookMetrics,
}

/// API tokens read from the ledger, and how many tokens were revoked
/// through this replica (a request that read its token before a revocation
/// here does not cache it).
#[derive(Default)]
pub(crate) struct TokenCache {
    /// Token hash -> record, and until when it is trusted.
    pub(crate) entries:
        std::collections::HashMap<String, (keyseal_issuer::service::TokenRecord, u64)>,
    /// Revocations through this replica so far.
    pub(crate) revocations: u64,
    /// Hashes of tokens that authenticated here (at most 10,000, then
    /// forgotten at once): they pass a client's failure limit, so the
    /// clients behind one address that hold a good token keep working.
    pub(crate) known: std::collections::HashSet<String>,
}

impl State {
    pub(crate) fn now(&self) -> u64 {
        (self.clock)()
    }

    pub(crate) fn count_mint(&self) {
        self.minted.fetch_add(1, Ordering::Relaxed);
    }

    /// The organisation's signer: its active key, loaded from the vault the
    /// first time.
    pub(crate) async fn signer(&self, org_id: &str) -> keyseal_issuer::Result<Signer> {
        if let Some(s) = self.signers.read().await.get(org_id) {
            return Ok(s.clone());
        }
        self.load_signer(org_id).await
    }

    /// The organisation's lock for loading or changing its signer.
    fn loading(&self, org_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.loading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(org_id.to_owned())
            .or_default()
            .clone()
    }

    /// Loads the organisation's active key from the vault unless it is the
    /// one signing for it now. The key is unsealed on a blocking thread
    /// under this organisation's loading lock only: other organisations'
    /// signers stay available meanwhile.
    async fn load_signer(&self, org_id: &str) -> keyseal_issuer::Result<Signer> {
        let gate = self.loading(org_id);
        let _one_at_a_time = gate.lock().await;
        let active = self
            .store
            .org_active_key(org_id)
            .await?
            .ok_or(keyseal_issuer::Error::Key(KeyError::NoActiveKey))?;
        if let Some(s) = self.signers.read().await.get(org_id)
            && s.key_id() == active.key_id
        {
            return Ok(s.clone());
        }
        let sealed = self.store.sealed_key(active.key_id).await?.ok_or_else(|| {
            keyseal_issuer::Error::Ledger(LedgerError::Corrupt {
                detail: format!(
                    "it holds no sealed copy of key {} (start keyseal serve once with the vault \
                     directory holding its key file)",
                    active.key_id
                ),
            })
        })?;
        let pass = self.passphrase.clone();
        let key = tokio::task::spawn_blocking(move || {
            sealed.open(&pass, std::path::Path::new("the ledger's active key"))
        })
        .await
        .map_err(|e| {
            keyseal_issuer::Error::Ledger(LedgerError::Io {
                doing: "open a signing key in",
                path: self.vault_dir.clone(),
                source: std::io::Error::other(e),
            })
        })??;
        let signer = Signer::new(key);
        self.signers
            .write()
            .await
            .insert(org_id.to_owned(), signer.clone());
        Ok(signer)
    }

    /// Loads the organisation's active key from the vault if it is not the
    /// one signing now (another replica rotated). Whether the signer changed.
    pub(crate) async fn reload_signer(&self, org_id: &str) -> bool {
        let before = self.signers.read().await.get(org_id).map(Signer::key_id);
        match self.load_signer(org_id).await {
            Ok(s) => Some(s.key_id()) != before,
            Err(keyseal_issuer::Error::Key(KeyError::NoActiveKey)) => false,
            Err(e) => {
                tracing::error!(org_id, error = %problem::chain(&e), "cannot load the active signing key");
                false
            }
        }
    }

    /// Makes `signer` the organisation's signer (after a rotation here).
    pub(crate) async fn set_signer(&self, org_id: &str, signer: Signer) {
        // After a load in flight, which may have read the previous key.
        let gate = self.loading(org_id);
        let _one_at_a_time = gate.lock().await;
        self.signers.write().await.insert(org_id.to_owned(), signer);
    }
}

/// A running service's state, ready to serve.
pub struct Service {
    drain: std::time::Duration,
    list_refresh: std::time::Duration,
    mint_rx: tokio::sync::mpsc::Receiver<MintRequest>,
    checkin_rx: tokio::sync::mpsc::Receiver<CheckInRequest>,
    lookup_rx: tokio::sync::mpsc::Receiver<LookupRequest>,
    vault: Vault,
    state: Arc<State>,
    admin_token: Option<String>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("vault", &self.vault.dir())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Opens the vault for writing (initialising an empty one), checks the
    /// passphrase against the vault's active key before writing anything
    /// (a wrong one changes nothing), on first start creates the default
    /// organisation's first admin token (see [`Service::take_admin_token`]), gives
    /// every organisation without a signing key one of its own, publishes a
    /// first revocation list for each organisation without one, and
    /// unlocks the default organisation's active key (checking the
    /// passphrase).
    pub async fn open(opts: Options) -> Result<Service, Error> {
        email::check_smtp_roots(&opts.webhooks.smtp_roots).map_err(Error::SmtpRoots)?;
        let now = (opts.clock)();
        let ctx = Context {
            now,
            actor: "service".into(),
        };
        let vault = match &opts.database_url {
            None => {
                let has_ledger = opts
                    .vault_dir
                    .join(keyseal_issuer::vault::LEDGER_FILE)
                    .is_file();
                if has_ledger {
                    Vault::open(&opts.vault_dir, Access::Write).await?
                } else {
                    let init = InitOptions {
                        products: Vec::new(),
                        kdf: opts.kdf.unwrap_or_default(),
                    };
                    Vault::init(&opts.vault_dir, &opts.passphrase, &init, &ctx).await?
                }
            }
            Some(url) => Self::open_postgres(&opts, url, &ctx).await?,
        };
        // The passphrase must open the default organisation's active key
        // before anything is written: a wrong one must not create its admin
        // token (it would never be printed) or seal a new organisation's
        // key under it.
        vault.unlock(&opts.passphrase).await?;
        let store = vault.store().clone();
        // The default organisation's first admin token, on the first start
        // only (of all replicas: the check and the write are one transaction).
        let token = auth::new_token()?;
        let admin_token = store
            .first_admin_token(&auth::token_hash(&token), &ctx)
            .await?
            .map(|_| token);
        // Keys and secrets the service seals use the vault's Argon2
        // parameters (those of its active key), unless told otherwise.
        let kdf = match opts.kdf {
            Some(k) => k,
            None => vault.kdf_params().await?,
        };
        store.unlock_personal_data(&opts.passphrase, kdf).await?;
        let (minter, mint_rx) = tokio::sync::mpsc::channel(4096);
        let (checkins, checkin_rx) = tokio::sync::mpsc::channel(4096);
        let (lookups, lookup_rx) = tokio::sync::mpsc::channel(4096);
        let state = Arc::new(State {
            minter,
            checkins,
            lookups,
            tokens: std::sync::Mutex::new(TokenCache::default()),
            store,
            vault_dir: opts.vault_dir.clone(),
            passphrase: Arc::new(opts.passphrase),
            kdf,
            signers: tokio::sync::RwLock::new(std::collections::HashMap::new()),
            loading: std::sync::Mutex::new(std::collections::HashMap::new()),
            rotation: tokio::sync::Mutex::new(()),
            clock: opts.clock,
            lists: std::sync::Mutex::new(std::collections::HashMap::new()),
            limiter: auth::FailureLimiter::with_limit(
                opts.auth_failures_per_minute.unwrap_or(auth::MAX_FAILURES),
            )?,
            public_limiter: public_limiter(opts.network.public_requests_per_second),
            lease_limiter: std::num::NonZeroU32::new(
                opts.network.lease_requests_per_license_per_minute,
            )
            .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n))),
            trial_limiter: std::num::NonZeroU32::new(
                opts.network.trial_requests_per_client_per_minute,
            )
            .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n))),
            list_bytes: list_bytes(opts.network.public_list_bytes_per_second),
            public_seen: AtomicU64::new(0),
            metrics: metrics::Metrics::default(),
            minted: AtomicU64::new(0),
            network: opts.network,
            webhooks: opts.webhooks,
            webhook_metrics: webhooks::WebhookMetrics::default(),
        });
        Self::prepare_orgs(&state, &ctx).await?;
        if let Some(default) = state.store.default_org().await? {
            state.signer(&default).await?;
        }
        Ok(Service {
            drain: opts.drain_timeout.unwrap_or(DRAIN_TIMEOUT),
            list_refresh: opts.list_refresh.unwrap_or(LIST_REFRESH),
            vault,
            state,
            admin_token,
            mint_rx,
            checkin_rx,
            lookup_rx,
        })
    }

    /// Gives every organisation that has no signing key (one created before
    /// keys were per organisation) a key of its own, sealed into the vault,
    /// and publishes a first revocation list for every organisation with an
    /// active key and no list yet.
    async fn prepare_orgs(state: &State, ctx: &Context) -> Result<(), Error> {
        for org in state.store.orgs().await? {
            if state.store.org_keys(&org.org_id).await?.is_empty() {
                let (_, sealed) =
                    keyseal_issuer::vault::seal_new_key(&state.passphrase, state.kdf)?;
                // `false`: another replica gave it one first.
                state
                    .store
                    .org_add_first_key(&org.org_id, &sealed, ctx)
                    .await?;
            }
            if state.store.org_latest_list(&org.org_id).await?.is_none()
                && state.store.org_active_key(&org.org_id).await?.is_some()
            {
                let signer = state.signer(&org.org_id).await?;
                let published = state
                    .store
                    .publish_revocations(&signer, ctx.now + REVOCATION_LIST_LIFETIME, ctx)
                    .await;
                // Another replica starting at once may have published it.
                if let Err(e) = published
                    && state.store.org_latest_list(&org.org_id).await?.is_none()
                {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The PostgreSQL ledger: the whole vault (keys sealed in it), so no
    /// file is written. On first use it is initialised, with the active key
    /// of the vault in `opts.vault_dir` if one is there (its passphrase
    /// checked first: a wrong one initialises nothing), else with a new key
    /// sealed under the passphrase. Key files in the vault directory of keys
    /// the database holds no sealed copy of (deployments from before schema
    /// 11) are imported.
    async fn open_postgres(opts: &Options, url: &str, ctx: &Context) -> Result<Vault, Error> {
        let dir = &opts.vault_dir;
        let local = dir.join(keyseal_issuer::vault::LEDGER_FILE).is_file();
        let keys_from = local.then_some(dir.as_path());
        match Vault::connect(url, keys_from).await {
            Err(keyseal_issuer::Error::Ledger(LedgerError::Corrupt { .. })) => {}
            other => return Ok(other?),
        }
        // Not initialised yet.
        let sealed = if local {
            let vault = Vault::open(dir, Access::Read).await?;
            let sealed = async {
                let signer = vault.unlock(&opts.passphrase).await?;
                vault.sealed_key(signer.key_id()).await.map(|(f, _)| f)
            }
            .await;
            vault.close().await;
            sealed?
        } else {
            let kdf = opts.kdf.unwrap_or_default();
            keyseal_issuer::vault::seal_new_key(&opts.passphrase, kdf)?.1
        };
        let store = Store::connect(url).await?;
        let init = async {
            store.migrate().await?;
            store
                .initialize(
                    &sealed,
                    &[],
                    serde_json::json!({ "by": "keyseal serve" }),
                    ctx,
                )
                .await
        }
        .await;
        store.close().await;
        // Another replica may initialise it first: then it opens.
        match (init, Vault::connect(url, keys_from).await) {
            (_, Ok(v)) => Ok(v),
            (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(e.into()),
        }
    }

    /// The one-time admin token created on first start (only once).
    pub fn take_admin_token(&mut self) -> Option<String> {
        self.admin_token.take()
    }

    /// The ledger (for tests and tools).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish and closes the ledger.
    pub async fn serve<F>(self, listener: tokio::net::TcpListener, shutdown: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let restart_log = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = tokio::spawn(mint_worker(
            self.state.store.clone(),
            restart_log.clone(),
            self.mint_rx,
        ));
        let checkin_worker =
            tokio::spawn(checkin_worker(self.state.store.clone(), self.checkin_rx));
        let lookup_worker = tokio::spawn(lookup_worker(self.state.store.clone(), self.lookup_rx));
        let (stop_checkpoints, stop_rx) = tokio::sync::oneshot::channel();
        let checkpoints = self
            .state
            .store
            .checkpoint_separately()
            .await?
            .map(|cp| tokio::spawn(checkpointer(cp, restart_log, stop_rx)));
        let (stop_refresh, refresh_rx) = tokio::sync::oneshot::channel();
        let refresher = tokio::spawn(list_refresher(
            self.state.clone(),
            self.list_refresh,
            refresh_rx,
        ));
        let (stop_webhooks, webhooks_rx) = tokio::sync::watch::channel(false);
        let deliveries = tokio::spawn(webhooks::worker(
            self.state.clone(),
            self.state.webhooks.clone(),
            webhooks_rx,
        ));
        let emails = self.state.webhooks.deliver.then(|| {
            tokio::spawn(email::worker(
                self.state.clone(),
                self.state.webhooks.poll,
                self.state.webhooks.private_networks,
                Arc::new(self.state.webhooks.smtp_roots.clone()),
                stop_webhooks.subscribe(),
            ))
        });
        if !self.state.webhooks.deliver {
            tracing::warn!(
                "this replica sends no webhooks and no emails (--no-delivery): they wait in the outbox for a replica started without it (on the embedded SQLite ledger, for this service restarted without it: no other process can serve the vault)"
            );
        }
        let app = api::router(self.state.clone());
        serve_connections(listener, app, shutdown, self.drain, &self.state.network).await;
        // Deliveries in flight finish (each within its timeout) or are
        // cut; a cut one is sent again later, as after a crash.
        let _ = stop_webhooks.send(true);
        for task in std::iter::once(deliveries).chain(emails) {
            let abort = task.abort_handle();
            if tokio::time::timeout(self.drain, task).await.is_err() {
                abort.abort();
            }
        }
        // A pass in progress finishes within the drain period, or is cut
        // (each publication is its own transaction).
        let _ = stop_refresh.send(());
        let abort = refresher.abort_handle();
        if tokio::time::timeout(self.drain, refresher).await.is_err() {
            abort.abort();
        }
        let store = self.state.store.clone();
        drop(self.state);
        // Once the last sender is gone the worker finishes what it holds;
        // after a cut drain, connections still open keep a sender, so wait
        // no longer than another drain period.
        let _ = tokio::time::timeout(self.drain, worker).await;
        let _ = tokio::time::timeout(self.drain, lookup_worker).await;
        let _ = tokio::time::timeout(self.drain, checkin_worker).await;
        let _ = stop_checkpoints.send(());
        if let Some(c) = checkpoints {
            let _ = c.await;
        }
        store.close().await;
        self.vault.close().await;
        Ok(())
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open requests finish for `drain` and cuts the rest.
///
/// Each connection must send a request's headers within the header timeout
/// ([`HEADER_TIMEOUT`] by default),
/// and an idle keep-alive connection is closed once that passes with no new
/// request (hyper's header read timer starts when the connection waits for
/// a request head). At most [`Network::max_connections`] are open at once; further
/// clients wait in the listen backlog, so idle ones cannot take every file
/// descriptor from valid ones.
async fn serve_connections<F>(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: F,
    drain: std::time::Duration,
    network: &Network,
) where
    F: Future<Output = ()> + Send + 'static,
{
    use tower::ServiceExt as _;
    let permits = Arc::new(tokio::sync::Semaphore::new(
        network
            .max_connections
            .unwrap_or_else(max_connections)
            .max(1),
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(network.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, or the peer gave up: not fatal.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc =
            app.clone()
                .map_request(move |req: axum::http::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                });
        let conn = http.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(svc),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that disconnects or times out ends its connection.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(drain_secs = drain.as_secs(), "requests still open after the drain were cut");
        }
    }
}

/// Most connections open at once: half the process's open-file limit (the
/// other half for the ledger, the vault and the log), at most 4,096 and at
/// least 16; 1,024 where the limit cannot be read.
#[must_use]
pub fn max_connections() -> usize {
    connections_for(std::fs::read_to_string("/proc/self/limits").ok().as_deref())
}

/// [`max_connections`] for a `/proc/self/limits` text (`None` where there
/// is none to read).
#[doc(hidden)]
#[must_use]
pub fn connections_for(limits: Option<&str>) -> usize {
    let soft = limits.and_then(|l| {
        l.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|n| n.parse::<usize>().ok())
    });
    soft.map_or(1024, |n| (n / 2).clamp(16, 4096))
}

/// A signed mint for the group-commit task, and where to send its result.
pub(crate) type MintRequest = (
    keyseal_issuer::service::SignedMint,
    tokio::sync::oneshot::Sender<
        keyseal_issuer::Result<keyseal_issuer::Signed<keyseal_issuer::service::OrgLicense>>,
    >,
);

/// Most mints committed in one transaction.
const MAX_GROUP: usize = 512;

/// Group commit: takes every signed mint waiting (up to [`MAX_GROUP`]),
/// records them in one transaction, then answers each. Signing happens in
/// the request handlers, in parallel; this task does only the database
/// work. While a group commits, the next one gathers, so one fsync serves
/// many mints under load and a lone mint waits for nothing. When the
/// checkpointer asks (`restart_log`), a checkpoint between two groups lets
/// the SQLite log start over.
async fn mint_worker(
    store: Store,
    restart_log: Arc<std::sync::atomic::AtomicBool>,
    mut rx: tokio::sync::mpsc::Receiver<MintRequest>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (mints, replies): (Vec<_>, Vec<_>) = group.drain(..).unzip();
        let results = store.org_record_mints(&mints).await;
        for ((reply, r), m) in replies.into_iter().zip(results).zip(mints) {
            let _ = reply.send(r.map(|signed| match signed {
                keyseal_issuer::Signed::Done(()) => keyseal_issuer::Signed::Done(m.license),
                keyseal_issuer::Signed::KeyRotated { key_id } => {
                    keyseal_issuer::Signed::KeyRotated { key_id }
                }
            }));
        }
        if restart_log.swap(false, Ordering::Relaxed)
            && let Err(e) = store.checkpoint_between_commits().await
        {
            tracing::error!(error = %problem::chain(&e), "checkpoint failed");
        }
    }
}

/// A parsed check-in for the lookup task, and where to send what it read.
pub(crate) type LookupRequest = (
    keyseal_issuer::seats::CheckInAsk,
    tokio::sync::oneshot::Sender<
        keyseal_issuer::Result<(
            keyseal_issuer::seats::CheckInAsk,
            Option<keyseal_issuer::seats::CheckInFound>,
        )>,
    >,
);

/// Check-ins read in groups: the handlers parse their requests in
/// parallel; this task takes every check-in waiting (up to [`MAX_GROUP`])
/// and reads their licenses, policies and seats in one query
/// ([`Store::check_in_lookup`]), so a read's fixed cost (on SQLite, the
/// hand-offs to its connection's thread) is paid once for many
/// heartbeats; the handlers then check the proofs and sign the leases in
/// parallel. If the group's read fails, each is read alone.
async fn lookup_worker(store: Store, mut rx: tokio::sync::mpsc::Receiver<LookupRequest>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (asks, replies): (Vec<_>, Vec<_>) = group.drain(..).unzip();
        match store.check_in_lookup(&asks).await {
            Ok(found) => {
                for ((ask, reply), f) in asks.into_iter().zip(replies).zip(found) {
                    let _ = reply.send(Ok((ask, f)));
                }
            }
            Err(e) if asks.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                for (ask, reply) in asks.into_iter().zip(replies) {
                    let one = store.check_in_lookup(std::slice::from_ref(&ask)).await;
                    let _ = reply.send(one.map(|mut f| (ask, f.pop().flatten())));
                }
            }
        }
    }
}

/// A prepared check-in for its group-commit task: the organisation's
/// signer, the job, the time it was asked at, and where to send the verdict.
pub(crate) type CheckInRequest = (
    keyseal_issuer::Signer,
    keyseal_issuer::seats::CheckInJob,
    u64,
    tokio::sync::oneshot::Sender<keyseal_issuer::Result<keyseal_issuer::seats::CheckedIn>>,
);

/// Group commit of lease check-ins, as [`mint_worker`] does for mints: the
/// handlers find the license and parse the request in parallel; this task
/// takes every check-in waiting (up to [`MAX_GROUP`]) and commits them in
/// one transaction, so one fsync serves many heartbeats. If the group
/// fails, each is tried alone, so one bad check-in fails only itself.
async fn checkin_worker(store: Store, mut rx: tokio::sync::mpsc::Receiver<CheckInRequest>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let now = group.iter().map(|(_, _, t, _)| *t).max().unwrap_or(0);
        let mut replies = Vec::with_capacity(group.len());
        let mut jobs = Vec::with_capacity(group.len());
        for (signer, job, _, reply) in group.drain(..) {
            jobs.push((signer, job));
            replies.push(reply);
        }
        let copies = (jobs.len() > 1).then(|| jobs.clone());
        match (store.check_in_group(jobs, now).await, copies) {
            (Ok(verdicts), _) => {
                for (reply, v) in replies.into_iter().zip(verdicts) {
                    let _ = reply.send(Ok(v));
                }
            }
            (Err(e), None) => {
                if let Some(reply) = replies.pop() {
                    let _ = reply.send(Err(e));
                }
            }
            (Err(_), Some(copies)) => {
                for ((signer, job), reply) in copies.into_iter().zip(replies) {
                    let one = store.check_in_group(vec![(signer, job)], now).await;
                    let _ = reply.send(one.and_then(|mut v| {
                        v.pop().ok_or_else(|| {
                            keyseal_issuer::Error::Ledger(keyseal_issuer::LedgerError::Corrupt {
                                detail: "a check-in got no verdict".into(),
                            })
                        })
                    }));
                }
            }
        }
    }
}

/// The budget of full list downloads in KiB a second (also its burst: a
/// second's worth at once), for `per_second` bytes; none for 0.
pub(crate) fn list_budget_kib(per_second: u64) -> Option<std::num::NonZeroU32> {
    std::num::NonZeroU32::new(u32::try_from(per_second.div_ceil(1024)).unwrap_or(u32::MAX))
}

/// The limiter of [`list_budget_kib`]; none for 0.
fn list_bytes(per_second: u64) -> Option<ListBytes> {
    let kib = list_budget_kib(per_second)?;
    Some(governor::RateLimiter::direct(
        governor::Quota::per_second(kib).allow_burst(kib),
    ))
}

/// Every `every` until `stop` fires, signs again the revocation lists past
/// half their lifetime ([`api::refresh_lists`]), so a list never goes stale
/// while its organisation has an active key, fetched or not (a list served
/// through a CDN, or read only by `keyseal revocations export`). Every
/// replica runs one; the ledger's lock makes them publish each list once.
async fn list_refresher(
    state: Arc<State>,
    every: std::time::Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    // (`interval_at` refuses a zero period.)
    let every = every.max(std::time::Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        // Rows an older replica wrote during an upgrade: filled before the
        // lists are looked at (the lists find them anyway).
        match state.store.fill_upgrade_gaps().await {
            Ok(true) => tracing::info!("filled columns an older replica left empty"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %problem::chain(&e), "filling upgrade gaps"),
        }
        if let Err(e) = api::refresh_lists(&state).await {
            tracing::error!(error = %e.detail, "refreshing revocation lists");
        }
    }
}

/// A limiter of `per_second` requests a second per client, bursts of five
/// times as many; none for 0.
fn public_limiter(per_second: u32) -> Option<PublicLimiter> {
    let rate = std::num::NonZeroU32::new(per_second)?;
    let burst = std::num::NonZeroU32::new(per_second.saturating_mul(5))?;
    Some(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

/// How often the checkpointer copies the SQLite log into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Log pages (16 MiB) after which the log should start over.
const CHECKPOINT_RESTART_PAGES: u64 = 4096;

/// Checkpoints the SQLite log off the request path, on its own connection,
/// until `stop` fires. Commits no longer checkpoint by themselves: one that
/// did waited for up to 32 MiB of copying and an fsync of the database
/// file. Passive checkpoints copy without blocking writers; once the log is
/// long, the mint worker is asked (`restart_log`) to run one more between
/// two groups, which copies only what arrived since and lets the log start
/// over instead of growing.
async fn checkpointer(
    mut cp: keyseal_issuer::store::Checkpointer,
    restart_log: Arc<std::sync::atomic::AtomicBool>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        match cp.passive().await {
            Ok(p) if p.log_pages > CHECKPOINT_RESTART_PAGES => {
                restart_log.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %problem::chain(&e), "checkpoint failed"),
        }
    }
    cp.close().await;
}
