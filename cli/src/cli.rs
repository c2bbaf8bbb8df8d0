//! The command line: every command, flag and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keyseal_issuer::time::When;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (verify: the license is valid; audit verify: the chain is intact)
  1  verify: the license is invalid; audit verify: the chain is broken
  2  usage error: unknown flag, missing or malformed argument
  3  wrong passphrase
  4  the vault is locked by another keyseal process
  5  input refused: unknown product, license or key; a bad field or batch row
  6  vault or system error: no vault, damaged ledger or key file, disk full, I/O

Environment:
  KEYSEAL_VAULT       vault directory (default ./keyseal-vault)
  KEYSEAL_PASSPHRASE  the vault passphrase (otherwise keyseal prompts for it); prefer
                      --passphrase-file or --passphrase-fd: a process's environment stays
                      readable (/proc/PID/environ) for its whole life
  KEYSEAL_DATABASE_URL  a PostgreSQL ledger instead of the vault's SQLite file (every command)
  KEYSEAL_ACTOR       who to record in the audit log (default: $USER)";

/// Mint, rotate and revoke keyseal license keys.
#[derive(Debug, Parser)]
#[command(
    name = "keyseal",
    version,
    about = "Mint, verify, rotate and revoke keyseal license keys",
    long_about = "Mint, verify, rotate and revoke keyseal license keys.\n\n\
        The vault (a directory) holds the signing keys, encrypted with your passphrase, \
        and the ledger of every license issued, every revocation and an append-only audit log.",
    after_help = "Examples:\n  \
        keyseal init --product acme-cad\n  \
        keyseal issue --product acme-cad --customer cus_42 --plan pro --expires 365d\n  \
        keyseal verify ks1.AQ...\n\n\
        Run `keyseal help COMMAND` for a command's flags and examples.",
    after_long_help = EXIT_CODES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The vault directory.
    #[arg(
        long,
        global = true,
        env = "KEYSEAL_VAULT",
        default_value = "keyseal-vault",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub vault: PathBuf,

    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// The organisation (tenant) to act on, as `org list` shows it; by default the ledger's
    /// default organisation, the one the vault was created with.
    #[arg(
        long,
        global = true,
        env = "KEYSEAL_ORG",
        value_name = "ORG_ID",
        help_heading = "Global options"
    )]
    pub org: Option<String>,

    /// A PostgreSQL ledger (postgres://...) instead of the vault directory's SQLite file; it
    /// holds the sealed keys too, so `keyseal serve` replicas need only it and the passphrase.
    #[arg(
        long,
        global = true,
        env = "KEYSEAL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Global options"
    )]
    pub database_url: Option<String>,

    /// Read the vault passphrase from this file (its first line) rather than KEYSEAL_PASSPHRASE
    /// or a prompt; keep it readable by you alone.
    #[arg(
        long,
        global = true,
        env = "KEYSEAL_PASSPHRASE_FILE",
        value_name = "FILE",
        conflicts_with = "passphrase_fd",
        help_heading = "Global options"
    )]
    pub passphrase_file: Option<PathBuf>,

    /// Read the vault passphrase from this inherited file descriptor (its first line), as in
    /// `keyseal --passphrase-fd 3 serve 3<secret`.
    #[arg(
        long,
        global = true,
        value_name = "FD",
        help_heading = "Global options"
    )]
    pub passphrase_fd: Option<i32>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Command {
    /// Create a vault: the first signing key and an empty ledger.
    #[command(after_help = "Examples:\n  \
        keyseal init --product acme-cad\n  \
        KEYSEAL_PASSPHRASE=... keyseal --vault /secure/vault init --product acme-cad --product acme-viewer\n\n\
        The passphrase encrypts the signing keys (Argon2id, then XChaCha20-Poly1305). \
        Nobody can recover it: keep it in your password manager, and back up the vault directory.")]
    Init(InitArgs),

    /// Mint a license key (or many, from a batch file) and record it in the ledger.
    #[command(after_help = "Examples:\n  \
        keyseal issue --product acme-cad --customer cus_42 --plan pro --expires 365d \\\n      \
        --entitlement export --entitlement sso --max-version 5.x\n  \
        keyseal issue --product acme-cad --customer cus_42 --plan pro --expires 2027-01-31 --grace 14d \\\n      \
        --device ksfp1.AAAA... --device-match 2 --out cus_42.license\n  \
        keyseal issue --batch customers.csv --out minted.jsonl\n\n\
        Times: RFC 3339 (2027-01-31T12:00:00Z), a date (2027-01-31, midnight UTC), a duration from now \
        (365d, 12h, 2w) or `never`.\n\n\
        Batch files: CSV with a header row, or JSONL, with the fields product, customer, plan, expires, \
        not_before, grace, device, device_match, entitlements, max_version, ext (and ext.KEY columns), \
        external_id (a row whose external id was minted before, by an earlier run, is skipped and \
        reported, so a batch run twice mints each row once). \
        Rows are minted in transactions of --chunk-size rows; each committed chunk is appended to --out \
        and synced before the next. A bad row stops the batch: the rows before it stay minted, and \
        --start-row resumes after the fix.")]
    Issue(IssueArgs),

    /// Check a license key's signature and claims against this vault's keys.
    #[command(after_help = "Examples:\n  \
        keyseal verify ks1.AQ...\n  \
        keyseal verify cus_42.license --product acme-cad --app-version 5.2.0\n  \
        keyseal verify - --json < key.txt\n\n\
        The verdict is VALID (exit 0) or INVALID with the reason (exit 1). Revocations recorded in the \
        ledger count even before they are published. Without --product, the license is checked \
        for the product it names, which must be one this vault issues for.")]
    Verify(VerifyArgs),

    /// Decode a license key WITHOUT verifying it, to see what it claims.
    #[command(after_help = "Examples:\n  \
        keyseal inspect ks1.AQ...\n  \
        keyseal inspect cus_42.license --json\n\n\
        Nothing is checked: anyone can write any claims into a key. Use `keyseal verify` to trust one. \
        Needs no vault.")]
    Inspect(InspectArgs),

    /// Signing keys: list, rotate, retire, revoke, export the public keyring or a sealed key.
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Products this vault issues licenses for.
    #[command(subcommand)]
    Products(ProductsCommand),

    /// Licenses in the ledger.
    #[command(subcommand)]
    Licenses(LicensesCommand),

    /// Answer an air-gapped device's activation request code with a response code (its lease).
    #[command(after_help = "Examples:\n  \
        keyseal activate --request KSREQ1.0A1B2-C3D4E-...\n  \
        keyseal activate --request \"$(cat request.txt)\" --json\n\n\
        A device with no network shows a request code (from the SDK: its license, a proof that it holds \
        the key, its device binding and an installation key). This takes one of the license's seats \
        for that device and prints the response code, which carries the lease the device installs. \
        Both codes fit a QR code; a typo is caught by the checksum. The lease lasts as the product's \
        lease policy says; answer a new request to renew it.")]
    Activate(ActivateArgs),

    /// Allot some of a license's seats to an on-premises relay's key (`keyseal relay`).
    #[command(after_help = "Examples:\n  \
        keyseal allot 5f0c7e0b6a8f4c1d9e2a3b4c5d6e7f80 --relay-key kspub1.... --seats 20 --out allotment.txt\n  \
        keyseal allot 5f0c7e0b6a8f4c1d9e2a3b4c5d6e7f80 --relay-key kspub1.... --seats 10 --days 30 --json\n\n\
        Signs a seat allotment (ksallot1.) for the relay whose public key `keyseal relay init` printed: \
        the relay leases that many seats on its LAN, with no internet, and apps verify its leases with \
        your keyring. The relay's seats count against the license's like leases until the allotment ends. \
        Renew it before it ends (the same command); a smaller one shrinks the relay at its next renewal, \
        and `keyseal allot --revoke-relay KEY_ID` refuses it further allotments and puts its key on the next \
        revocation list (`keyseal revocations publish`), so apps that load it refuse the relay's leases.")]
    Allot(AllotArgs),

    /// An on-premises relay: lease a license's seats on a LAN with no internet.
    #[command(subcommand)]
    Relay(RelayCommand),

    /// Revoke a license: the next published revocation list rejects it.
    #[command(after_help = "Examples:\n  \
        keyseal revoke 5f0c7e0b6a8f4c1d9e2a3b4c5d6e7f80 --reason refund\n  \
        keyseal revocations publish --out revocations.txt\n\n\
        Apps reject the license once they load a revocation list published after this.")]
    Revoke(RevokeArgs),

    /// Signed revocation lists: publish the next one, list or re-export them.
    #[command(subcommand)]
    Revocations(RevocationsCommand),

    /// Print this machine's device fingerprint for a product.
    #[command(after_help = "Examples:\n  \
        keyseal fingerprint --product acme-cad\n\n\
        A customer runs this and sends the ksfp1. line to the vendor, who binds a license to it with \
        `keyseal issue --device`. The fingerprint holds salted hashes only: no serial numbers or \
        names, and it differs per product. Needs no vault.")]
    Fingerprint(FingerprintArgs),

    /// The audit log: every change to the vault, who made it and when.
    #[command(after_help = "Examples:\n  \
        keyseal audit\n  \
        keyseal audit list --limit 20\n  \
        keyseal audit verify\n\n\
        Each entry is chained to the one before by SHA-256; `audit verify` finds the first edited, \
        inserted or deleted entry.")]
    Audit(AuditArgs),

    /// Run the issuing service: an HTTP API to mint, revoke and manage licenses.
    #[command(after_help = "Examples:\n  \
        KEYSEAL_PASSPHRASE=... keyseal serve\n  \
        keyseal --vault /srv/keyseal serve --listen 127.0.0.1:8080\n  \
        keyseal serve --database-url postgres://keyseal@db/keyseal   # several replicas, one database\n\n\
        On first start with an empty vault directory, serve initialises the vault and prints a one-time \
        admin API token (ksk_...): store it in your secret manager, it is never shown again. \
        Each organisation signs with its own keys; its apps embed /v1/public/orgs/ORG_ID/keyring \
        (/v1/public/keyring is the default organisation's, the one `keyseal init` made: the keys the \
        other keyseal commands use unless given --org). \
        The API is described at /v1/openapi.json. Stop with Ctrl-C or SIGTERM: in-flight requests finish.")]
    Serve(ServeArgs),

    /// Organisations (tenants) of the issuing service: create one (with its first admin token), list.
    #[command(subcommand)]
    Org(OrgCommand),

    /// Offline root keys: make one, certify signing keys with it, print the keyring that pins it.
    #[command(subcommand)]
    Root(RootCommand),

    /// API tokens of the issuing service: create one for an organisation.
    #[command(subcommand)]
    Token(TokenCommand),

    /// Webhook endpoints of the issuing service: register, list, enable, replay.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),

    /// Selling through Stripe: the endpoint secret, what each price buys, the events acted on,
    /// the SMTP server keys are emailed through.
    #[command(subcommand)]
    Payments(PaymentsCommand),

    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        keyseal completions bash > ~/.local/share/bash-completion/completions/keyseal\n  \
        keyseal completions zsh > ~/.zfunc/_keyseal\n  \
        keyseal completions fish > ~/.config/fish/completions/keyseal.fish")]
    Completions(CompletionsArgs),
}

/// `keyseal serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// Failed authentications one client may make per minute before it is refused for the rest
    /// of the minute.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub auth_failures_per_minute: u32,

    /// Requests a second one client may make to the public endpoints (keyrings, revocation
    /// lists), in bursts of five times as many; beyond, a request waits up to a second for its
    /// turn, then gets 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = keyseal_server::PUBLIC_REQUESTS_PER_SECOND, value_name = "N")]
    pub public_requests_per_second: u32,

    /// MiB a second this replica sends as full revocation list files, over every client
    /// (answers to If-None-Match are not counted); past it, a download waits up to a second,
    /// then gets 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = keyseal_server::PUBLIC_LIST_BYTES_PER_SECOND >> 20, value_name = "MIB")]
    pub public_list_mib_per_second: u64,

    /// Lease requests (seat activations, check-ins, releases) a minute for one license, in
    /// bursts of as many; beyond, a request waits up to a second for its turn, then gets 429.
    /// 0: no limit.
    #[arg(long, default_value_t = keyseal_server::LEASE_REQUESTS_PER_LICENSE_PER_MINUTE, value_name = "N")]
    pub lease_requests_per_license_per_minute: u32,

    /// Trial requests (POST /v1/public/trials) a minute from one client, in bursts of as many,
    /// besides the public rate; beyond, a request waits up to a second for its turn, then gets
    /// 429. 0: no limit.
    #[arg(long, default_value_t = keyseal_server::TRIAL_REQUESTS_PER_CLIENT_PER_MINUTE, value_name = "N")]
    pub trial_requests_per_client_per_minute: u32,

    /// How often to look for revocation lists past half their lifetime (a week) and sign them
    /// again, so no list goes stale while its organisation has an active key.
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = duration)]
    pub list_refresh: std::time::Duration,

    /// Let webhook endpoints be on loopback or private networks (10/8, 192.168/16, fc00::/7,
    /// link-local...) and plain http://, for receivers inside your own network. Without it,
    /// endpoints must be https:// on public addresses, checked on every connection.
    #[arg(long)]
    pub webhooks_to_private_networks: bool,

    /// Longest one webhook delivery may take, connecting included; a slower endpoint's attempt
    /// fails and is retried.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = duration)]
    pub webhook_timeout: std::time::Duration,

    /// Send no webhooks and no emails from this replica: it still writes them to the outbox
    /// (in the transaction of each change), and replicas started without this flag send them.
    /// Keeps the sending off the replicas that answer requests; at least one replica must run
    /// without it. On the embedded SQLite ledger (one process), nothing is sent until the
    /// service runs without it again.
    #[arg(long)]
    pub no_delivery: bool,

    /// Also trust these CA certificates (a PEM file) for SMTP servers' TLS, beside the public
    /// roots: a mail relay whose certificate a private CA signed. The server's name is still
    /// checked against its certificate. They are trusted for every organisation's SMTP host,
    /// so use a CA that signs only your relays (name-constrained).
    #[arg(long, value_name = "FILE")]
    pub smtp_ca_file: Option<PathBuf>,

    /// The log on stderr: `text`, or `json` (one object a line). KEYSEAL_LOG filters it
    /// (`info` by default; `warn` drops the access log; tracing's EnvFilter syntax).
    #[arg(long, env = "KEYSEAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// On first start, write the one-time admin API token to this new file (mode 0600) instead
    /// of printing it.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Longest wait for a request's headers, and for the next request on an idle keep-alive
    /// connection (a duration: 10s, 1m).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = duration)]
    pub header_timeout: std::time::Duration,

    /// Longest wait for a request's body once its headers arrived; then 408.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = duration)]
    pub body_timeout: std::time::Duration,

    /// Most connections open at once [default: half the open-file limit, 16 to 4096].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: Option<u32>,

    /// A load balancer or proxy (an address or CIDR range, repeatable) whose X-Forwarded-For
    /// names the client; authentication limits then count that client, not the proxy.
    #[arg(
        long = "trusted-proxy",
        env = "KEYSEAL_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR",
        value_parser = cidr
    )]
    pub trusted_proxies: Vec<keyseal_server::IpNet>,
}

/// How `keyseal serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// A duration for a timeout: 1 second to 1 hour.
fn duration(s: &str) -> Result<std::time::Duration, String> {
    let secs = keyseal_issuer::time::parse_duration(s)?;
    if !(1..=3600).contains(&secs) {
        return Err(format!("`{s}` must be from 1s to 1h"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// A span of time such as `90s`, `10m`, `14d`, in seconds (the policy
/// that takes it checks its bounds).
fn span(s: &str) -> Result<u64, String> {
    keyseal_issuer::time::parse_duration(s)
}

/// An address (a one-address range) or a CIDR range.
fn cidr(s: &str) -> Result<keyseal_server::IpNet, String> {
    let s = s.trim();
    s.parse::<keyseal_server::IpNet>()
        .or_else(|_| {
            s.parse::<std::net::IpAddr>()
                .map(keyseal_server::IpNet::from)
        })
        .map_err(|_| format!("`{s}` is not an IP address or a CIDR range such as 10.0.0.0/8"))
}

/// `keyseal org`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation and print its first admin API token (shown once).
    #[command(after_help = "Examples:\n  \
        keyseal org create \"Acme Corp\"\n  \
        keyseal org create beta-tenant --database-url postgres://keyseal@db/keyseal\n\n\
        An operator's command: it works on the vault (or the service's PostgreSQL ledger) directly and \
        needs the vault passphrase. The organisation's admin then makes more tokens with POST /v1/tokens.\n\n\
        The vault comes with the default organisation (named `default`: what the other keyseal \
        commands act on unless given --org ORG_ID). A new one gets a signing key of its own, sealed \
        in the ledger under the vault passphrase, and its first revocation list. Its apps embed /v1/public/orgs/ORG_ID/keyring.")]
    Create {
        /// The organisation's name.
        name: String,
    },
    /// List organisations.
    #[command(after_help = "Examples:\n  \
        keyseal org list\n  \
        keyseal org list --json --database-url postgres://keyseal@db/keyseal")]
    List,
}

/// `keyseal token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for an organisation (--org, or the default one) and print it (shown
    /// once).
    #[command(after_help = "Examples:\n  \
        keyseal token create --org org_1a2b3c4d5e6f7a8b --scopes issue --name \"store backend\"\n  \
        keyseal token create --org org_1a2b3c4d5e6f7a8b --scopes admin --name ops\n\n\
        Scopes: admin (everything), issue (mint, revoke, activate, products, customers), read. \
        Tokens are revoked through the API (POST /v1/tokens/{id}/revoke).")]
    Create {
        /// Comma-separated scopes: admin, issue, read, read:pii.
        #[arg(long, value_delimiter = ',', required = true, value_name = "SCOPES")]
        scopes: Vec<TokenScope>,
        /// What the token is for.
        #[arg(long, value_name = "NAME")]
        name: String,
    },
}

/// `keyseal webhooks`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint that gets the organisation's events (--org, or the default one).
    #[command(after_help = "Examples:\n  \
        keyseal webhooks add https://store.example.com/keyseal/events --event license.created --event license.revoked\n  \
        keyseal webhooks add https://ops.example.com/hooks --description \"ops alerts\" --json\n\n\
        Events: license.created, license.revoked, license.suspended, license.resumed, license.renewed, activation.created, \
        activation.released, lease.lapsed, key.rotated, key.revoked, revocation_list.published, \
        webhook_endpoint.disabled (none given: all). The running service (every replica) sends them as \
        Standard Webhooks, signed with the endpoint's secret (`keyseal webhooks secret ID`), one at a \
        time in order, retried for 4 days; then the endpoint is disabled. Endpoints must be https:// on \
        public addresses unless the service runs with --webhooks-to-private-networks.")]
    Add {
        /// Where events are posted.
        url: String,
        /// An event type to send (repeatable; none: every type).
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        /// What the endpoint is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    #[command(after_help = "Examples:\n  \
        keyseal webhooks list\n  \
        keyseal webhooks list --json --org org_1a2b3c4d5e6f7a8b")]
    /// List the organisation's endpoints.
    List,
    #[command(after_help = "Examples:\n  \
        keyseal webhooks show whe_0a1b2c3d4e5f6071\n  \
        keyseal webhooks show whe_0a1b2c3d4e5f6071 --deliveries 100 --json")]
    /// Show an endpoint and its latest deliveries.
    Show {
        /// The endpoint id (`whe_...`).
        id: String,
        /// Deliveries to show, newest first.
        #[arg(long, default_value_t = 20, value_name = "N")]
        deliveries: u64,
    },
    #[command(after_help = "Examples:\n  \
        keyseal webhooks secret whe_0a1b2c3d4e5f6071 > receiver-secret.txt")]
    /// Print an endpoint's signing secret (for the receiver's configuration).
    Secret {
        /// The endpoint id.
        id: String,
    },
    #[command(after_help = "Examples:\n  \
        keyseal webhooks rotate-secret whe_0a1b2c3d4e5f6071 && keyseal webhooks secret whe_0a1b2c3d4e5f6071")]
    /// Give an endpoint a new secret; the old one also signs for a day.
    RotateSecret {
        /// The endpoint id.
        id: String,
    },
    #[command(after_help = "Examples:\n  \
        keyseal webhooks enable whe_0a1b2c3d4e5f6071\n  \
        keyseal webhooks replay whe_0a1b2c3d4e5f6071 --since 2026-12-01   # then what it missed")]
    /// Enable an endpoint (its queue resumes where it stopped).
    Enable {
        /// The endpoint id.
        id: String,
    },
    #[command(after_help = "Examples:\n  \
        keyseal webhooks disable whe_0a1b2c3d4e5f6071")]
    /// Disable an endpoint (its deliveries wait).
    Disable {
        /// The endpoint id.
        id: String,
    },
    #[command(after_help = "Examples:\n  \
        keyseal webhooks remove whe_0a1b2c3d4e5f6071")]
    /// Delete an endpoint and its deliveries.
    Remove {
        /// The endpoint id.
        id: String,
    },
    /// Send events to an endpoint again: one (--event) or what it missed since a time (--since).
    #[command(after_help = "Examples:\n  \
        keyseal webhooks replay whe_0a1b2c3d4e5f6071 --event evt_7d0e...\n  \
        keyseal webhooks replay whe_0a1b2c3d4e5f6071 --since 2026-12-01")]
    Replay {
        /// The endpoint id.
        id: String,
        /// One event id (`evt_...`).
        #[arg(
            long,
            value_name = "EVENT",
            conflicts_with = "since",
            required_unless_present = "since"
        )]
        event: Option<String>,
        /// Every event since this time (RFC 3339, a date, or unix seconds) the endpoint was not
        /// delivered, or whose delivery failed.
        #[arg(long, value_name = "TIME", value_parser = keyseal_issuer::time::parse_time)]
        since: Option<u64>,
    },
}

/// `keyseal payments`.
#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Set the signing secret of the Stripe endpoint (read from standard input or --secret-file,
    /// never from the command line).
    #[command(after_help = "Examples:\n  \
        keyseal payments stripe-secret < whsec.txt\n  \
        keyseal payments stripe-secret --secret-file /run/secrets/stripe-whsec\n\n\
        In Stripe's dashboard, add an endpoint at https://YOUR-SERVICE/v1/public/orgs/ORG_ID/payments/stripe \
        for the events checkout.session.completed, checkout.session.async_payment_succeeded, invoice.paid, \
        charge.refunded and customer.subscription.deleted, then give its signing secret here. The secret it \
        replaces still checks events for a day.")]
    StripeSecret {
        /// A file holding the secret (default: standard input).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// What a Stripe price buys: set (create or replace), list, remove.
    #[command(subcommand)]
    Price(PriceCommand),
    #[command(after_help = "Examples:\n  \
        keyseal payments events\n  \
        keyseal payments events --limit 500 --json")]
    /// The latest payment events and what each did.
    Events {
        /// How many, newest first.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u64,
    },
    /// The SMTP server license keys are emailed through (the password from --password-file).
    #[command(after_help = "Examples:\n  \
        keyseal payments email --host smtp.example.com --port 587 --security starttls \\\n      \
        --username licenses@acme.example --password-file /run/secrets/smtp --from \"Acme <licenses@acme.example>\"")]
    Email {
        /// The SMTP server.
        #[arg(long)]
        host: String,
        /// Its port.
        #[arg(long, default_value_t = 587)]
        port: u16,
        /// starttls, tls or none (none only for a service started with
        /// --webhooks-to-private-networks).
        #[arg(long, default_value = "starttls", value_parser = ["starttls", "tls", "none"])]
        security: String,
        /// The user to authenticate as.
        #[arg(long, requires = "password_file")]
        username: Option<String>,
        /// A file holding the password.
        #[arg(long, value_name = "FILE", requires = "username")]
        password_file: Option<PathBuf>,
        /// The sender.
        #[arg(long)]
        from: String,
        /// Where replies go.
        #[arg(long)]
        reply_to: Option<String>,
    },
}

/// `keyseal payments price`.
#[derive(Debug, Subcommand)]
pub enum PriceCommand {
    /// Map a Stripe price to the license a payment of it mints.
    #[command(after_help = "Examples:\n  \
        keyseal payments price set price_1QxYz --product acme-cad --plan pro --duration 365d --seats 3 --entitlement export\n  \
        keyseal payments price set price_monthly --product acme-cad --plan pro --duration 31d --on-cancel revoke")]
    Set {
        /// Stripe's price id.
        price_id: String,
        /// The product licensed.
        #[arg(long)]
        product: String,
        /// The plan.
        #[arg(long)]
        plan: String,
        /// The license's length from the purchase; a subscription's renewal extends it by as much.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_secs)]
        duration: u64,
        /// Device seats.
        #[arg(long, default_value_t = 1)]
        seats: u64,
        /// An entitlement (repeatable).
        #[arg(long = "entitlement", value_name = "NAME")]
        entitlements: Vec<String>,
        /// On a full refund: revoke or lapse.
        #[arg(long, default_value = "revoke", value_parser = ["revoke", "lapse"])]
        on_refund: String,
        /// When a subscription ends: lapse or revoke.
        #[arg(long, default_value = "lapse", value_parser = ["revoke", "lapse"])]
        on_cancel: String,
        /// Do not email the key to the buyer.
        #[arg(long)]
        no_email: bool,
    },
    #[command(after_help = "Examples:\n  \
        keyseal payments price list\n  \
        keyseal payments price list --json")]
    /// List the price mappings.
    List,
    #[command(after_help = "Examples:\n  \
        keyseal payments price remove price_1QxYz")]
    /// Remove a price mapping (its payments are refused until it is set again).
    Remove {
        /// Stripe's price id.
        price_id: String,
    },
}

fn parse_duration_secs(s: &str) -> Result<u64, String> {
    keyseal_issuer::time::parse_duration(s)
}

/// An API token scope.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenScope {
    /// Everything, including signing keys and tokens.
    Admin,
    /// Mint, revoke, suspend, activate; products and customers.
    Issue,
    /// Read only, customers' personal fields left out.
    Read,
    /// Read, and customers' personal data (names, emails, metadata, exports).
    #[value(name = "read:pii")]
    ReadPii,
}

/// `keyseal init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// A product to issue licenses for (repeatable; more later with `keyseal products add`).
    #[arg(long = "product", value_name = "NAME")]
    pub products: Vec<String>,
}

/// `keyseal issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Product id (registered with `keyseal products add`).
    #[arg(long, value_name = "NAME", required_unless_present = "batch")]
    pub product: Option<String>,
    /// Opaque customer id from your systems (never an email address or a name).
    #[arg(long, value_name = "ID", required_unless_present = "batch")]
    pub customer: Option<String>,
    /// Plan name.
    #[arg(long, value_name = "NAME", required_unless_present = "batch")]
    pub plan: Option<String>,
    /// Expiry: a time, a date, a duration from now (365d) or `never`.
    #[arg(long, value_name = "WHEN", value_parser = parse_when, required_unless_present = "batch")]
    pub expires: Option<String>,
    /// Not valid before this time.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub not_before: Option<String>,
    /// Grace period after expiry during which the license still works (14d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<String>,
    /// Bind to a device fingerprint (from `keyseal fingerprint`).
    #[arg(long, value_name = "ksfp1.…")]
    pub device: Option<String>,
    /// Accept the device if at least K of its fingerprint components match (default: all).
    #[arg(long, value_name = "K", requires = "device")]
    pub device_match: Option<String>,
    /// An entitlement (feature) the license grants (repeatable, or comma-separated).
    #[arg(long = "entitlement", value_name = "NAME")]
    pub entitlements: Vec<String>,
    /// Newest app version covered: 5.x, 5.2.x or 5.2.3.
    #[arg(long, value_name = "CAP")]
    pub max_version: Option<String>,
    /// A vendor extension field (repeatable).
    #[arg(long = "ext", value_name = "KEY=VALUE")]
    pub ext: Vec<String>,
    /// Your own id for the license (an order number), unique in the organisation: a second
    /// issue with it is refused and names the first license. In the ledger, never in the key.
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,

    /// Mint every row of a CSV or JSONL file instead.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["product", "customer", "plan", "expires", "not_before", "grace", "device", "device_match", "entitlements", "max_version", "ext", "external_id"],
        requires = "out"
    )]
    pub batch: Option<PathBuf>,
    /// Format of the batch file (default: from its extension).
    #[arg(long, value_enum, requires = "batch")]
    pub format: Option<BatchFormat>,
    /// Rows per transaction (each one a commit and an fsync of the ledger and of --out).
    #[arg(long, default_value_t = 5000, requires = "batch", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub chunk_size: u32,
    /// Skip the rows before this one (to resume a batch that stopped).
    #[arg(long, default_value_t = 1, requires = "batch", value_parser = clap::value_parser!(u64).range(1..))]
    pub start_row: u64,
    /// No progress bar.
    #[arg(long, requires = "batch")]
    pub no_progress: bool,

    /// Write the license file (single) or append the results (batch; .csv or JSONL) here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Batch file formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BatchFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// `keyseal verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The license key, a license file, or - for standard input.
    #[arg(value_name = "KEY|FILE|-")]
    pub key: String,
    /// The product the app is (default: the product the license names).
    #[arg(long, value_name = "NAME")]
    pub product: Option<String>,
    /// This device's fingerprint, for device-bound licenses.
    #[arg(long, value_name = "ksfp1.…")]
    pub device: Option<String>,
    /// The app version to check against the license's version cap.
    #[arg(long, value_name = "VERSION")]
    pub app_version: Option<String>,
    /// Check as of this time instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    pub at: Option<String>,
    /// Check against this public keyring (the text or JSON `keyseal keys export` writes) instead
    /// of the vault: no vault and no passphrase, as an app checks it.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// With --keyring: a signed revocation list to honour (as `keyseal revocations publish`
    /// writes it, checked against the keyring).
    #[arg(long, value_name = "FILE", requires = "keyring")]
    pub revocations: Option<PathBuf>,
}

/// `keyseal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The license key, a license file, or - for standard input.
    #[arg(value_name = "KEY|FILE|-")]
    pub key: String,
}

/// `keyseal keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys and their windows.
    #[command(after_help = "Examples:\n  keyseal keys list\n  keyseal keys list --json")]
    List,
    /// Make a new active signing key and retire the current one.
    #[command(after_help = "Examples:\n  \
        keyseal keys rotate\n  \
        keyseal keys export --format rust --out src/keyring.rs\n\n\
        The old key stays in the exported keyring with until=<now>, so licenses it signed stay valid. \
        Ship the new keyring in your app before you hand out keys signed by the new key.")]
    Rotate,
    /// End a key's signing window (licenses it signed before then stay valid).
    #[command(after_help = "Examples:\n  \
        keyseal keys retire 3f2a9c1e\n  \
        keyseal keys retire 3f2a9c1e --at 2027-01-01\n\n\
        Retiring the active key leaves the vault without one until `keyseal keys rotate`.")]
    Retire {
        /// Key id (or a unique prefix of at least 4 hex digits).
        key: String,
        /// End the window at this time instead of now (only ever moves it earlier).
        #[arg(long, value_name = "TIME", value_parser = parse_when)]
        at: Option<String>,
    },
    /// Revoke a compromised key: the next revocation list rejects everything it signed.
    #[command(after_help = "Examples:\n  \
        keyseal keys revoke 3f2a9c1e --reason key-leaked\n  \
        keyseal keys rotate\n  \
        keyseal revocations publish --out revocations.txt")]
    Revoke {
        /// Key id (or a unique prefix of at least 4 hex digits).
        key: String,
        /// Why, as a short slug (key-leaked, laptop-lost).
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Print the public keyring for apps to embed.
    #[command(after_help = "Examples:\n  \
        keyseal keys export > keyring.txt\n  \
        keyseal keys export --format rust --out src/keyring.rs\n  \
        keyseal keys export --format json --out keyring.json\n\n\
        Public keys only: safe to publish. Revoked keys are left out.")]
    Export {
        /// text (the keyring text every SDK parses), rust (a const), json (for JS and Python).
        #[arg(long, value_enum, default_value = "text")]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write a signing key, still sealed, to a key file (for the Python wheel).
    ///
    /// The file is what the Python wheel's `SigningKey.from_key_file` opens with the vault's
    /// passphrase (the wheel reads no ledger).
    #[command(
        name = "export-sealed",
        after_help = "Examples:\n  \
        keyseal keys export-sealed --out signing.key\n  \
        keyseal keys export-sealed 3f2a9c1e --out old-signing.key\n\n\
        The file is written readable by its owner only. It opens only with the vault's passphrase; \
        keys minted with it from Python are not in the ledger (record them with `keyseal issue` \
        or the service if they must be listed, revoked by id or audited)."
    )]
    ExportSealed {
        /// Key id (or a unique prefix of at least 4 hex digits); default: the active key.
        key: Option<String>,
        /// The key file to write (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Keyring export forms.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// The keyring text form.
    Text,
    /// A Rust `const KEYSEAL_KEYRING: &str`.
    Rust,
    /// JSON with the keyring text and each key.
    Json,
}

/// `keyseal products ...`.
#[derive(Debug, Subcommand)]
pub enum ProductsCommand {
    /// Register a product.
    #[command(after_help = "Examples:\n  keyseal products add acme-viewer")]
    Add {
        /// Product id: letters, digits and . _ : - (at most 32).
        name: String,
    },
    /// List the products.
    #[command(after_help = "Examples:\n  keyseal products list")]
    List,
    /// Set a product's lease policy: how often apps check in, and how long a lease holds past that.
    #[command(after_help = "Examples:\n  \
        keyseal products lease-policy acme-cad --renew 1d --grace 3d     # node-locked seats\n  \
        keyseal products lease-policy acme-cad --renew 10m --grace 2m    # floating seats\n\n\
        Leases signed from then on follow it; leases in force keep their terms.")]
    LeasePolicy {
        /// Product id.
        product: String,
        /// Time from a lease's signing to its check-in (at least 60s).
        #[arg(long, value_name = "DURATION", value_parser = span)]
        renew: u64,
        /// Time a lease holds past its check-in time when check-ins fail (renew plus grace: a year at most).
        #[arg(long, value_name = "DURATION", value_parser = span)]
        grace: u64,
    },
    /// Set a product's trial policy: one trial per device, asked by apps with no license.
    #[command(after_help = "Examples:\n  \
        keyseal products trial-policy acme-cad --length 14d --entitlement export-pdf\n  \
        keyseal products trial-policy acme-cad --length 30d --plan eval --device-match 3\n  \
        keyseal products trial-policy acme-cad --disable\n\n\
        Apps ask `keyseal serve` (POST /v1/public/trials) with the organisation's id, the product and \
        the device's fingerprint; the first ask of a device gets a license bound to it, a later one (the \
        same device: --device-match of its fingerprint components equal) is refused.")]
    TrialPolicy {
        /// Product id.
        product: String,
        /// Turn the product's trials off (running trials keep their licenses).
        #[arg(long, conflicts_with_all = ["length", "plan", "entitlement", "device_match"])]
        disable: bool,
        /// How long a trial license lasts (an hour to a year).
        #[arg(long, value_name = "DURATION", value_parser = span, default_value = "14d")]
        length: u64,
        /// The trial license's plan.
        #[arg(long, value_name = "PLAN", default_value = "trial")]
        plan: String,
        /// An entitlement of the trial license (repeat for several).
        #[arg(long, value_name = "NAME")]
        entitlement: Vec<String>,
        /// How many fingerprint components must equal an earlier trial device's to be that device (1 to 8).
        #[arg(long, value_name = "K", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
        device_match: u8,
    },
}

/// `keyseal licenses ...`.
#[derive(Debug, Subcommand)]
pub enum LicensesCommand {
    /// List licenses in the ledger, newest first.
    #[command(after_help = "Examples:\n  \
        keyseal licenses list --customer cus_42\n  \
        keyseal licenses list --batch b-1a2b3c4d5e6f7a8b --json   # recover a batch's keys")]
    List {
        /// Only this product.
        #[arg(long)]
        product: Option<String>,
        /// Only this customer.
        #[arg(long)]
        customer: Option<String>,
        /// Only this batch (in row order).
        #[arg(long, value_name = "BATCH-ID")]
        batch: Option<String>,
        /// Only the license with this external id.
        #[arg(long, value_name = "ID")]
        external_id: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Show one license, with its key.
    #[command(after_help = "Examples:\n  keyseal licenses show 5f0c7e0b6a8f4c1d9e2a3b4c5d6e7f80")]
    Show {
        /// License id (32 hex digits), or the license key or file.
        #[arg(value_name = "LICENSE-ID")]
        id: String,
    },
}

/// `keyseal activate`.
#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// The device's request code (`KSREQ1.`; case, dashes and spaces do not matter).
    #[arg(long, value_name = "CODE")]
    pub request: String,
}

/// `keyseal allot`.
#[derive(Debug, Args)]
pub struct AllotArgs {
    /// License id (32 hex digits), or the license key or file.
    #[arg(value_name = "LICENSE-ID")]
    pub license_id: String,
    /// The relay's public key (`kspub1.`, as `keyseal relay init` prints it).
    #[arg(long, value_name = "KEY", required_unless_present = "revoke_relay")]
    pub relay_key: Option<String>,
    /// Seats the relay may lease at once.
    #[arg(long, value_name = "N", required_unless_present = "revoke_relay")]
    pub seats: Option<u64>,
    /// Days the allotment holds (a week by default; 90 at most).
    #[arg(long, default_value_t = 7, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=90))]
    pub days: u64,
    /// Write the allotment to this file (never over an existing one) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Instead: refuse this relay key (its key id, 16 hex digits) further allotments of the license.
    #[arg(long, value_name = "KEY_ID", conflicts_with_all = ["relay_key", "seats", "out"])]
    pub revoke_relay: Option<String>,
}

/// `keyseal relay`.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Make the relay's key pair in its directory and print its public key for the vendor.
    #[command(after_help = "Examples:\n  \
        keyseal relay init --dir /var/lib/keyseal-relay\n\n\
        The key file (relay.key) is owner-only and never leaves the machine; send the printed \
        kspub1. key to the vendor, who answers with an allotment (`keyseal allot`).")]
    Init(RelayInitArgs),
    /// Serve leases to apps on the LAN under the vendor's allotment.
    #[command(after_help = "Examples:\n  \
        keyseal relay serve --dir /var/lib/keyseal-relay --keyring keyring.txt --license license.txt \\\n      --allotment allotment.txt --listen 0.0.0.0:8390\n  \
        keyseal relay serve --dir /var/lib/keyseal-relay --keyring keyring.txt --license license.txt \\\n      --allotment allotment.txt --renew-from https://licensing.example.com\n\n\
        Apps use it as they use the vendor's service (the SDKs' seat clients, with the relay's address). \
        Its leases carry the allotment and verify with the vendor's keyring. With --renew-from the relay \
        renews its allotment from the vendor's service once half of it has run (the vendor's last \
        allotment to it: a smaller one shrinks it, a revoked relay or license stops it); without, replace \
        the allotment file with the vendor's renewal before it ends. Either way the relay loads the file \
        at its next request. \
        Stop with Ctrl-C or SIGTERM; the seats it leased are kept in its directory.")]
    Serve(RelayServeArgs),
}

/// `keyseal relay init`.
#[derive(Debug, Args)]
pub struct RelayInitArgs {
    /// The relay's directory (its key and the seats it leased).
    #[arg(long, value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

/// `keyseal relay serve`.
#[derive(Debug, Args)]
pub struct RelayServeArgs {
    /// The relay's directory, as given to `keyseal relay init`.
    #[arg(long, value_name = "DIR")]
    pub dir: std::path::PathBuf,
    /// The vendor's keyring file (what apps embed).
    #[arg(long, value_name = "FILE")]
    pub keyring: std::path::PathBuf,
    /// The license whose seats the relay leases: its key (`ks1.`) or a file holding it.
    #[arg(long, value_name = "KEY|FILE")]
    pub license: String,
    /// The vendor's allotment file (`ksallot1.`).
    #[arg(long, value_name = "FILE")]
    pub allotment: std::path::PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8390", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Seconds between check-ins (a lease's renew interval).
    #[arg(long, default_value_t = keyseal_server::relay::DEFAULT_RELAY_LEASE_SECS, value_name = "SECS", value_parser = clap::value_parser!(u64).range(60..))]
    pub lease_secs: u64,
    /// Seconds a lease holds past its renew time when check-ins fail.
    #[arg(long, default_value_t = keyseal_server::relay::DEFAULT_RELAY_GRACE_SECS, value_name = "SECS")]
    pub grace_secs: u64,
    /// The vendor's service (base URL): renew the allotment online once half of it has run,
    /// into the --allotment file. Without it, the vendor's new allotment file replaces the old.
    #[arg(long, value_name = "URL")]
    pub renew_from: Option<String>,
    /// The log on stderr (renewals, allotments loaded, refusals): `text`, or `json` (one
    /// object a line). KEYSEAL_LOG filters it (`info` by default).
    #[arg(long, env = "KEYSEAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `keyseal revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// License id (32 hex digits, as `keyseal issue` prints), or the license key or file.
    #[arg(value_name = "LICENSE-ID")]
    pub license_id: String,
    /// Why, as a short slug (refund, chargeback, fraud, superseded).
    #[arg(long, default_value = "unspecified")]
    pub reason: String,
}

/// `keyseal root ...`.
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Make an offline root key, sealed in its own file (never in the vault or the ledger).
    #[command(after_help = "Examples:\n  \
        KEYSEAL_ROOT_PASSPHRASE=... keyseal root create --out /media/usb/acme-root.key\n  \
        keyseal root keyring --root /media/usb/acme-root.key --out keyring.txt\n  \
        keyseal root certify --root /media/usb/acme-root.key <key id>\n\n\
        Apps that embed the keyring pinning only the root trust every signing key the root \
        certifies: rotate, certify the new key, and apps follow with no update; after a leak, \
        revoke the key, rotate and certify, and the next revocation list (signed by the newer key) \
        supersedes anything the leaked key signed. The root never signs licenses or lists: keep its \
        file offline, its passphrase (KEYSEAL_ROOT_PASSPHRASE, or a prompt) apart from the vault's, \
        and a backup. It is made once: losing it means shipping apps a new keyring.")]
    Create {
        /// Where to write the sealed root (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Certify one of the organisation's signing keys with the root.
    #[command(after_help = "Examples:\n  \
        keyseal keys rotate\n  \
        keyseal root certify --root /media/usb/acme-root.key 3f2a9c1e\n  \
        keyseal root certify --root /media/usb/acme-root.key 3f2a9c1e --products acme-cad\n\n\
        The certificate covers the key's window from its start (later keys outrank earlier ones), \
        to --until or the key's own end. It is stored in the ledger and published: every revocation \
        list file (the service's and `keyseal revocations publish`) starts with the certificates \
        of the keys not revoked, so apps learn a new key before it signs. Certifying again \
        replaces it.")]
    Certify {
        /// The sealed root file (`keyseal root create`).
        #[arg(long, value_name = "FILE")]
        root: PathBuf,
        /// Key id (or a unique prefix of at least 4 hex digits).
        key: String,
        /// End the certified window at this time (default: the key's own end, if any).
        #[arg(long, value_name = "TIME", value_parser = parse_when)]
        until: Option<String>,
        /// Only these products (comma-separated, at most 4; default all).
        #[arg(long, value_name = "PRODUCTS", value_delimiter = ',')]
        products: Vec<String>,
    },
    /// Print the keyring that pins only the root: what apps embed.
    #[command(after_help = "Examples:\n  \
        keyseal root keyring --root /media/usb/acme-root.key\n  \
        keyseal root keyring --root /media/usb/acme-root.key --out keyring.txt\n\n\
        Needs no passphrase and no vault: only the root's public key is read.")]
    Keyring {
        /// The sealed root file.
        #[arg(long, value_name = "FILE")]
        root: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `keyseal revocations ...`.
#[derive(Debug, Subcommand)]
pub enum RevocationsCommand {
    /// Sign the next revocation list (sequence + 1) and write it out.
    #[command(after_help = "Examples:\n  \
        keyseal revocations publish --out revocations.txt\n  \
        keyseal revocations publish --out revocations.bin --binary --next-update 30d\n\n\
        The list holds every revoked license and key. Apps treat it as stale after --next-update: \
        publish again before then, even if nothing changed. The text form starts with the \
        certificates of the keys an offline root certified (`keyseal root certify`), so apps \
        that pin only the root verify the list and learn each new key.")]
    Publish {
        /// Where to write the list.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// When apps should expect the next list.
        #[arg(long, value_name = "WHEN", default_value = "7d", value_parser = parse_when)]
        next_update: String,
        /// Raw bytes of the list alone instead of the armored text form (which also carries the
        /// key certificates, if any).
        #[arg(long)]
        binary: bool,
    },
    /// List the published revocation lists.
    #[command(after_help = "Examples:\n  keyseal revocations list")]
    List,
    /// Write a published list again (the newest, or --sequence N).
    #[command(
        after_help = "Examples:\n  keyseal revocations export --out revocations.txt\n  keyseal revocations export --sequence 3 --out old.txt"
    )]
    Export {
        /// Which list (default: the newest).
        #[arg(long)]
        sequence: Option<u64>,
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Raw bytes of the list alone instead of the armored text form (which also carries the
        /// key certificates, if any).
        #[arg(long)]
        binary: bool,
    },
}

/// `keyseal fingerprint`.
#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// The product the fingerprint is for (fingerprints differ per product).
    #[arg(long, value_name = "NAME")]
    pub product: String,
    /// Include network and disk ids (for apps that fingerprint with hardware, for k-of-n bindings).
    #[arg(long)]
    pub hardware: bool,
}

/// `keyseal audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do (default: list).
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
}

/// `keyseal audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the entries, oldest first.
    #[command(
        after_help = "Examples:\n  keyseal audit list --limit 20\n  keyseal audit list --json"
    )]
    List {
        /// Only the last N entries.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Check the hash chain; names the first broken entry.
    #[command(
        after_help = "Examples:\n  keyseal audit verify\n\nExit 0 if the chain is intact, 1 if it is broken."
    )]
    Verify,
}

/// `keyseal completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

fn parse_when(s: &str) -> Result<String, String> {
    s.parse::<When>().map(|_| s.to_owned())
}

fn parse_duration(s: &str) -> Result<String, String> {
    keyseal_issuer::time::parse_duration(s).map(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every command a user can run has examples in its help.
    #[test]
    fn every_command_has_examples() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let name = format!("{path} {}", cmd.get_name());
            let subs: Vec<_> = cmd
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            let help = cmd
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            let leaf = subs.is_empty();
            if leaf && !help.contains("Examples:") {
                missing.push(name.clone());
            }
            for s in subs {
                walk(s, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "no examples in the help of: {missing:?}"
        );
    }
}
