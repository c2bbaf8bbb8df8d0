//! What the API answers: one typed struct per object, serialised as is and
//! described by the same type in the OpenAPI document. Times are unix
//! seconds (UTC) everywhere, named `*_at`, `valid_from` or `valid_until`.

use std::collections::BTreeMap;

use keyseal_issuer::KeyInfo;
use keyseal_issuer::activation::Activation as ActivationRecord;
use keyseal_issuer::audit::AuditEntry as AuditRecord;
use keyseal_issuer::service::{Customer as CustomerRecord, OrgLicense, Scope, TokenInfo};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Caller;

/// Whether `c` sees license keys (a key is what an app accepts, as good as
/// the license itself): tokens that may mint anyway (`issue`, `admin`) and
/// `read:pii`; a plain `read` token gets `null` with `"redacted": true`.
fn sees_keys(c: &Caller) -> bool {
    c.allows(Scope::Issue) || c.allows(Scope::ReadPii)
}

/// An API token's scope: `admin` everything; `issue` mint, revoke,
/// activate, products and customers; `read` reads (keys and personal data
/// redacted); `read:pii` reads with personal data and keys.
#[derive(ToSchema)]
#[schema(as = Scope)]
#[allow(dead_code)] // The schema of `keyseal_issuer::service::Scope`'s serde form.
pub(crate) enum ScopeSchema {
    #[schema(rename = "admin")]
    Admin,
    #[schema(rename = "issue")]
    Issue,
    #[schema(rename = "read")]
    Read,
    #[schema(rename = "read:pii")]
    ReadPii,
}

/// A license's state in the ledger.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LicenseStatus {
    /// Valid until it expires.
    Active,
    /// Refused by the service's activations until resumed (apps offline
    /// are not told: suspension is not in the revocation list).
    Suspended,
    /// In the organisation's revocation list, for good.
    Revoked,
}

/// A signing key's state: `active` signs what is issued now (one per
/// organisation); `retired` signs nothing new, its licenses stay valid;
/// `revoked` is in the revocation list with every license it signed.
#[derive(ToSchema)]
#[schema(as = KeyStatus)]
#[allow(dead_code)] // The schema of `keyseal_issuer::KeyStatus`'s serde form.
pub(crate) enum KeyStatusSchema {
    #[schema(rename = "active")]
    Active,
    #[schema(rename = "retired")]
    Retired,
    #[schema(rename = "revoked")]
    Revoked,
}

/// A page of a list, oldest or smallest id first.
macro_rules! page {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        #[derive(Serialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            /// At most `limit` items.
            pub(crate) items: Vec<$item>,
            /// Give it as `cursor` for the next page; `null` on the last page.
            #[schema(required = true)]
            pub(crate) next_cursor: Option<String>,
        }

        impl $name {
            /// The answer with the page of `rows` asked with `limit`, each
            /// row seen through `view`; the next cursor is the last row's
            /// (`cursor_of`) when the page is full.
            pub(crate) fn answer<R>(
                rows: Vec<R>,
                limit: u64,
                cursor_of: impl Fn(&R) -> String,
                view: impl FnMut(R) -> $item,
            ) -> axum::response::Response {
                let next_cursor = (rows.len() as u64 == limit)
                    .then(|| rows.last().map(cursor_of))
                    .flatten();
                let items = rows.into_iter().map(view).collect();
                super::json_response(axum::http::StatusCode::OK, &$name { items, next_cursor })
            }
        }
    };
}

page!(ProductPage, Product, "products");
page!(CustomerPage, Customer, "customers");
page!(LicensePage, License, "licenses");
page!(ActivationPage, Activation, "activations");
page!(KeyPage, Key, "signing keys");
page!(TokenPage, Token, "API tokens");
page!(AuditPage, AuditEntry, "audit entries");

/// `{"status": ...}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Status {
    /// `ok` (liveness) or `ready` (the ledger answers).
    #[schema(example = "ok")]
    pub(crate) status: &'static str,
}

/// A product licenses are minted for.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Product {
    /// Its id, written into keys.
    #[schema(example = "acme-cad")]
    pub(crate) product: String,
    /// A name for people.
    #[schema(example = "Acme CAD")]
    pub(crate) name: String,
    /// Unix seconds (UTC).
    #[schema(example = 1_764_806_400)]
    pub(crate) created_at: u64,
    /// Seconds from a lease's signing to its renew time (apps check in
    /// then): the product's lease policy.
    #[schema(example = 86_400)]
    pub(crate) lease_secs: u64,
    /// Seconds from a lease's renew time to its end, for failed check-ins.
    #[schema(example = 259_200)]
    pub(crate) lease_grace_secs: u64,
}

impl From<keyseal_issuer::service::Product> for Product {
    fn from(p: keyseal_issuer::service::Product) -> Self {
        Self {
            product: p.product,
            name: p.name,
            created_at: p.created_at,
            lease_secs: p.lease_secs,
            lease_grace_secs: p.lease_grace_secs,
        }
    }
}

/// A customer. `name`, `email` and `metadata` are personal data (sealed at
/// rest): `null` with `redacted` true unless the token has `admin` or
/// `read:pii`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Customer {
    /// `cus_` and hex digits.
    #[schema(example = "cus_3f9a6c0e1b2d4a58")]
    pub(crate) customer_id: String,
    #[schema(required = true, example = "Ada Lovelace")]
    pub(crate) name: Option<String>,
    #[schema(required = true, example = "ada@example.com")]
    pub(crate) email: Option<String>,
    /// Your key-value references about the customer.
    #[schema(required = true)]
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    /// Unix seconds (UTC).
    #[schema(example = 1_764_806_400)]
    pub(crate) created_at: u64,
    /// Unix seconds (UTC) when its personal fields were erased.
    #[schema(required = true)]
    pub(crate) erased_at: Option<u64>,
    /// True when the personal fields are withheld from this token.
    pub(crate) redacted: bool,
}

impl Customer {
    /// `c`, its personal fields shown when `pii`.
    pub(crate) fn new(c: CustomerRecord, pii: bool) -> Self {
        Self {
            customer_id: c.customer_id,
            name: c.name.filter(|_| pii),
            email: c.email.filter(|_| pii),
            metadata: pii.then_some(c.metadata),
            created_at: c.created_at,
            erased_at: c.erased_at,
            redacted: !pii,
        }
    }

    /// `c` as `caller` may see it.
    pub(crate) fn seen_by(c: CustomerRecord, caller: &Caller) -> Self {
        Self::new(c, caller.allows(Scope::ReadPii))
    }
}

/// A license in the ledger.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct License {
    /// 32 hex digits (also inside the key).
    #[schema(example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")]
    pub(crate) license_id: String,
    #[schema(example = "acme-cad")]
    pub(crate) product: String,
    #[schema(example = "cus_3f9a6c0e1b2d4a58")]
    pub(crate) customer_id: String,
    #[schema(example = "pro")]
    pub(crate) plan: String,
    /// Unix seconds (UTC).
    #[schema(example = 1_764_806_400)]
    pub(crate) issued_at: u64,
    /// Unix seconds (UTC); `null`: never expires.
    #[schema(required = true, example = 1_796_342_400)]
    pub(crate) expires_at: Option<u64>,
    /// The signing key's id (16 hex digits).
    #[schema(example = "9a0b1c2d3e4f5061")]
    pub(crate) key_id: String,
    /// The license key apps validate; `null` (`redacted` true) for tokens
    /// with `read` alone: a key is as good as the license.
    #[schema(required = true)]
    pub(crate) license_key: Option<String>,
    /// True when `license_key` is withheld from this token.
    pub(crate) redacted: bool,
    pub(crate) status: LicenseStatus,
    /// Devices that may hold a seat at once (`POST .../activations`).
    #[schema(example = 3)]
    pub(crate) max_devices: u64,
    /// Unix seconds (UTC).
    #[schema(required = true)]
    pub(crate) suspended_at: Option<u64>,
    /// Unix seconds (UTC).
    #[schema(required = true)]
    pub(crate) revoked_at: Option<u64>,
    /// The revocation's reason (a slug such as `refund`).
    #[schema(required = true)]
    pub(crate) revoke_reason: Option<String>,
    /// Your own id for it (an order number), unique in the organisation.
    #[schema(required = true, example = "order-2026-0042")]
    pub(crate) external_id: Option<String>,
    /// Your key-value references about it; never in the key.
    pub(crate) metadata: BTreeMap<String, String>,
}

impl License {
    /// `l` as `c` may see it.
    pub(crate) fn seen_by(l: OrgLicense, c: &Caller) -> Self {
        let keys = sees_keys(c);
        let r = l.record;
        let status = if r.revoked.is_some() {
            LicenseStatus::Revoked
        } else if l.suspended_at.is_some() {
            LicenseStatus::Suspended
        } else {
            LicenseStatus::Active
        };
        let (revoked_at, revoke_reason) = r
            .revoked
            .map_or((None, None), |(t, why)| (Some(t), Some(why)));
        Self {
            license_id: r.license_id.to_string(),
            product: r.product,
            customer_id: r.customer,
            plan: r.plan,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            key_id: r.key_id.to_string(),
            license_key: keys.then_some(r.license_key),
            redacted: !keys,
            status,
            max_devices: l.max_devices,
            suspended_at: l.suspended_at,
            revoked_at,
            revoke_reason,
            external_id: r.external_id,
            metadata: l.metadata,
        }
    }
}

/// A device's seat on a license.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Activation {
    /// `act_` and hex digits.
    #[schema(example = "act_5d2c9e7f10a3b648")]
    pub(crate) activation_id: String,
    #[schema(example = "7c1e5bd0a2f94c3e8d6b0f1a2c3d4e5f")]
    pub(crate) license_id: String,
    /// The device's `ksfp1.` fingerprint.
    pub(crate) fingerprint: String,
    /// The license signed again for this device; `null` (`redacted` true)
    /// for tokens with `read` alone.
    #[schema(required = true)]
    pub(crate) device_key: Option<String>,
    /// True when `device_key` is withheld from this token.
    pub(crate) redacted: bool,
    /// The key that signed `device_key` (16 hex digits).
    pub(crate) key_id: String,
    /// Unix seconds (UTC).
    pub(crate) created_at: u64,
    /// Unix seconds (UTC); `null` while the seat is held.
    #[schema(required = true)]
    pub(crate) deactivated_at: Option<u64>,
}

impl Activation {
    /// `a` as `c` may see it.
    pub(crate) fn seen_by(a: ActivationRecord, c: &Caller) -> Self {
        let keys = sees_keys(c);
        Self {
            activation_id: a.activation_id,
            license_id: a.license_id,
            fingerprint: a.fingerprint,
            device_key: keys.then_some(a.device_key),
            redacted: !keys,
            key_id: a.key_id,
            created_at: a.created_at,
            deactivated_at: a.deactivated_at,
        }
    }
}

/// One of the organisation's signing keys (its public half).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Key {
    /// 16 hex digits.
    #[schema(example = "9a0b1c2d3e4f5061")]
    pub(crate) key_id: String,
    /// `kspub1.` and the Ed25519 public key.
    pub(crate) public_key: String,
    #[schema(value_type = KeyStatusSchema)]
    pub(crate) status: keyseal_issuer::KeyStatus,
    /// Unix seconds (UTC).
    pub(crate) created_at: u64,
    /// Unix seconds (UTC): it signs licenses issued from then.
    pub(crate) valid_from: u64,
    /// Unix seconds (UTC): it signs nothing issued after then; `null`
    /// while active.
    #[schema(required = true)]
    pub(crate) valid_until: Option<u64>,
    /// Unix seconds (UTC).
    #[schema(required = true)]
    pub(crate) revoked_at: Option<u64>,
}

impl From<KeyInfo> for Key {
    fn from(k: KeyInfo) -> Self {
        Self {
            key_id: k.key_id.to_string(),
            public_key: k.public_key.to_string(),
            status: k.status,
            created_at: k.created_at,
            valid_from: k.valid_from,
            valid_until: k.valid_until,
            revoked_at: k.revoked_at,
        }
    }
}

/// An organisation's public keyring, what its apps embed (the same JSON as
/// `keyseal keys export --json`).
#[derive(ToSchema)]
#[allow(dead_code)] // The schema of the issuer's `Keyring::json`.
pub(crate) struct Keyring {
    /// Always `keyseal-keyring/v1`.
    #[schema(example = "keyseal-keyring/v1", pattern = "^keyseal-keyring/v1$")]
    format: String,
    /// The keyring text every SDK parses (at most 16 keys).
    keyring: String,
    /// The keys in it, oldest first.
    #[schema(max_items = 16)]
    keys: Vec<KeyringKey>,
    /// Ids of keys that are not revoked but did not fit; empty unless the
    /// ledger predates the 16-key rule.
    left_out: Vec<String>,
}

/// A key of a public keyring (never a revoked one).
#[derive(ToSchema)]
#[allow(dead_code)] // The schema of the issuer's `Keyring::json`.
pub(crate) struct KeyringKey {
    /// 16 hex digits.
    key_id: String,
    /// `kspub1.` and the Ed25519 public key.
    public_key: String,
    #[schema(value_type = KeyStatusSchema)]
    status: String,
    /// Unix seconds (UTC): it signs licenses issued from then.
    valid_from: u64,
    /// Unix seconds (UTC): it signs nothing issued after then; `null`
    /// while active.
    #[schema(required = true)]
    valid_until: Option<u64>,
}

/// An API token (never its secret). Its schema is open (no
/// `additionalProperties: false`): a new token's answer adds `token` to it.
#[derive(Serialize, ToSchema)]
pub(crate) struct Token {
    /// `tok_` and hex digits.
    #[schema(example = "tok_0a1b2c3d4e5f6071")]
    pub(crate) token_id: String,
    /// The organisation (its public keyring:
    /// `/v1/public/orgs/{org_id}/keyring`).
    #[schema(example = "org_8e7d6c5b4a392817")]
    pub(crate) org_id: String,
    /// What the token is for.
    #[schema(example = "store backend")]
    pub(crate) name: String,
    #[schema(value_type = Vec<ScopeSchema>)]
    pub(crate) scopes: Vec<Scope>,
    /// Unix seconds (UTC).
    pub(crate) created_at: u64,
    /// Unix seconds (UTC).
    #[schema(required = true)]
    pub(crate) revoked_at: Option<u64>,
}

impl From<TokenInfo> for Token {
    fn from(t: TokenInfo) -> Self {
        Self {
            token_id: t.token_id,
            org_id: t.org_id,
            name: t.name,
            scopes: t.scopes,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new API token with its secret, shown once.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewTokenResult {
    #[serde(flatten)]
    pub(crate) token: Token,
    /// The secret (`ksk_...`): send it as `Authorization: Bearer ...`.
    /// Shown in this response only; the service keeps only its hash.
    #[serde(rename = "token")]
    #[schema(rename = "token")]
    pub(crate) secret: String,
}

/// One entry of the organisation's own hash chain: `seq` counts from 1 per
/// organisation; `hash` = SHA-256("keyseal/audit/v1\0" || seq || at (8-byte
/// big-endian each) || len+actor || len+action || len+details || prev_hash
/// (32 raw bytes)), `details` being the compact JSON of the details
/// object, keys in the order given.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditEntry {
    #[schema(example = 1)]
    pub(crate) seq: u64,
    /// Unix seconds (UTC).
    pub(crate) at: u64,
    /// Who: `org:<org_id>/token:<token_id>`, or the CLI's operator.
    pub(crate) actor: String,
    /// What, such as `license.mint` or `license.revoke`.
    #[schema(example = "license.mint")]
    pub(crate) action: String,
    /// What the action names (ids, reasons); never personal data. Sent
    /// exactly as the ledger hashed it.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "raw_json")]
    pub(crate) details: String,
    /// 64 hex digits.
    pub(crate) prev_hash: String,
    /// 64 hex digits.
    pub(crate) hash: String,
}

impl From<AuditRecord> for AuditEntry {
    fn from(e: AuditRecord) -> Self {
        Self {
            details: e.details,
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// `text`, JSON the ledger wrote, as it is (not parsed into a map, which
/// would reorder its keys and break the hash a client checks).
fn raw_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let raw: &serde_json::value::RawValue =
        serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

/// Everything held about one customer.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerExport {
    pub(crate) customer: Customer,
    pub(crate) licenses: Vec<License>,
    pub(crate) activations: Vec<Activation>,
    pub(crate) audit: Vec<AuditEntry>,
}
