//! The issuing service's objects (`keyseal serve`): organisations (tenants),
//! API tokens and their scopes, products, customers, licenses and their
//! suspension, mint jobs, and [`sign_mint`]. Their queries are the store's
//! (`store::orgs`, `tokens`, `catalog`, `customers`, `licenses`).
//!
//! Every read and write takes the organisation's id and puts it in the
//! `WHERE` clause, so one tenant's token can never reach another's objects;
//! an object of another organisation looks exactly like one that does not
//! exist. Every mutation appends its audit entry in the same transaction,
//! with the actor `org:<org id>/token:<token id>`.
//!
//! Every organisation has its own signing keys (their sealed halves are in
//! the ledger) and its own revocation lists. The first organisation is the
//! default one: the command line acts on it unless given `--org`.

use keyseal_core::license;

use crate::Context;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::request::RequestFields;
use crate::store::{LicenseRecord, Store, check_metadata};
use crate::vault::Signer;

/// Page size when none is asked for, and the most a page holds.
pub const MAX_PAGE: u64 = 500;

/// Most products one organisation may register. Every product request is
/// an index look-up whatever the number, and lists are paged; the bound
/// keeps a registration's count (under the writer lock, shared by every
/// tenant) small, and is far beyond any real catalogue.
pub const MAX_PRODUCTS: u64 = 10_000;

/// An API token's scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything, including signing keys and customers' personal data.
    Admin,
    /// Mint, revoke, suspend, activate; manage products and customers.
    Issue,
    /// Read only, customers' personal data left out.
    Read,
    /// Read, and customers' personal data too (names, emails, metadata,
    /// exports).
    #[serde(rename = "read:pii")]
    ReadPii,
}

impl Scope {
    /// The scope's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Issue => "issue",
            Scope::Read => "read",
            Scope::ReadPii => "read:pii",
        }
    }

    /// The scope named `s` (`admin`, `issue`, `read` or `read:pii`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "issue" => Some(Scope::Issue),
            "read" => Some(Scope::Read),
            "read:pii" => Some(Scope::ReadPii),
            _ => None,
        }
    }
}

/// A stored API token (its hash, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id of the token (appears in the audit log).
    pub token_id: String,
    /// The organisation it acts for.
    pub org_id: String,
    /// Lower-case hex SHA-256 of the secret token.
    pub token_hash: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

impl TokenRecord {
    /// Whether the token may do what `need` allows (admin may do everything,
    /// issue also reads; personal data needs admin or `read:pii`).
    #[must_use]
    pub fn allows(&self, need: Scope) -> bool {
        self.scopes.iter().any(|s| match need {
            Scope::Admin => *s == Scope::Admin,
            Scope::Issue => matches!(s, Scope::Admin | Scope::Issue),
            Scope::Read => true,
            Scope::ReadPii => matches!(s, Scope::Admin | Scope::ReadPii),
        })
    }

    /// The audit actor for this token.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("org:{}/token:{}", self.org_id, self.token_id)
    }
}

/// An API token as an admin sees it: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Public id (appears in the audit log).
    pub token_id: String,
    /// The organisation it acts for.
    pub org_id: String,
    /// What it is for (free text).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

/// An organisation (a tenant of the service).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrgInfo {
    /// Its id.
    pub org_id: String,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: u64,
}

/// Most API tokens an organisation may have (revoked ones included).
pub const MAX_TOKENS: u64 = 1000;

/// A product of an organisation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Product {
    /// The product id written into keys.
    pub product: String,
    /// Display name.
    pub name: String,
    /// When it was registered.
    pub created_at: u64,
    /// Its leases' renew interval (seconds; [`crate::seats::DEFAULT_LEASE_SECS`] unless set).
    pub lease_secs: u64,
    /// Its leases' grace for failed check-ins (seconds;
    /// [`crate::seats::DEFAULT_LEASE_GRACE_SECS`] unless set).
    pub lease_grace_secs: u64,
}

/// A customer: an opaque id (what keys carry) and personal fields kept here only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Customer {
    /// Opaque id, `cus_` and 16 hex digits.
    pub customer_id: String,
    /// Name, if the vendor stores one (erased on request).
    pub name: Option<String>,
    /// Email, if the vendor stores one (erased on request).
    pub email: Option<String>,
    /// The vendor's key-value data about the customer (erased on request).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// When it was created.
    pub created_at: u64,
    /// When its personal fields were erased.
    pub erased_at: Option<u64>,
}

/// A license as the service shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgLicense {
    /// The ledger's record.
    pub record: LicenseRecord,
    /// Most devices that may be active at once.
    pub max_devices: u64,
    /// When it was suspended, if it is.
    pub suspended_at: Option<u64>,
    /// The vendor's key-value references about it (at most
    /// [`MAX_METADATA`] entries; never in the key; erased with the
    /// customer). Not for personal data: that goes on the customer, whose
    /// fields are sealed.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Filters of [`Store::org_licenses`].
#[derive(Debug, Clone, Default)]
pub struct OrgLicenseFilter {
    /// Only this product.
    pub product: Option<String>,
    /// Only this customer.
    pub customer: Option<String>,
    /// Only licenses with an id after this one (the cursor).
    pub after: Option<String>,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: u64,
}

/// One mint request (see [`sign_mint`] and [`Store::org_record_mints`]).
#[derive(Debug, Clone)]
pub struct MintJob {
    /// The organisation.
    pub org_id: String,
    /// What to mint.
    pub fields: RequestFields,
    /// Device seats.
    pub max_devices: u64,
    /// The license's metadata (see [`OrgLicense::metadata`]).
    pub metadata: std::collections::BTreeMap<String, String>,
    /// When and by whom.
    pub ctx: Context,
}

/// A mint request and its signed license, ready for [`Store::org_record_mints`].
#[derive(Debug, Clone)]
pub struct SignedMint {
    /// The request.
    pub job: MintJob,
    /// The license signed for it (not yet in the ledger).
    pub license: OrgLicense,
    /// The response to record for the request's idempotency key, in the
    /// transaction that records the license.
    pub record: Option<crate::idempotency::Recorded>,
}

/// Resolves a mint request and signs its license, with no database access
/// (so a service can sign many in parallel, outside its commit). The result
/// is not a license until [`Store::org_record_mints`] has committed it: that
/// checks the product, the customer and that `signer` is still the active key.
pub fn sign_mint(signer: &Signer, job: &MintJob) -> Result<OrgLicense> {
    let req = job.fields.resolve(job.ctx.now)?;
    if !(1..=1000).contains(&job.max_devices) {
        return Err(Error::invalid("max_devices", "must be from 1 to 1000"));
    }
    check_metadata(&job.metadata)?;
    if let Some((k, _)) = job
        .metadata
        .iter()
        .find(|(_, v)| crate::request::looks_like_email(v))
    {
        return Err(Error::invalid(
            "metadata",
            format!(
                "`{k}` looks like an email address: personal data goes on the customer \
                 (POST /v1/customers), whose fields are sealed"
            ),
        ));
    }
    let id = crate::ops::license_ids(1)?[0];
    let key_text = license::to_text(&crate::ops::sign_request(
        signer.key(),
        id,
        &req,
        job.ctx.now,
    )?);
    Ok(OrgLicense {
        record: LicenseRecord {
            license_id: id,
            key_id: signer.key_id(),
            product: req.product,
            customer: req.customer,
            plan: req.plan,
            issued_at: job.ctx.now,
            expires_at: req.expires_at,
            license_key: key_text,
            batch_id: None,
            batch_row: None,
            revoked: None,
            external_id: req.external_id,
        },
        max_devices: job.max_devices,
        suspended_at: None,
        metadata: job.metadata.clone(),
    })
}

/// One customer's records, for a data export.
#[derive(Debug, Clone)]
pub struct CustomerExport {
    /// The customer.
    pub customer: Customer,
    /// Every license minted for them.
    pub licenses: Vec<OrgLicense>,
    /// Every device activation of those licenses.
    pub activations: Vec<crate::activation::Activation>,
    /// The audit entries about them or their licenses.
    pub audit: Vec<AuditEntry>,
}

/// Most metadata entries on one customer or license.
pub const MAX_METADATA: usize = 20;
/// The longest metadata value (bytes).
pub const MAX_METADATA_VALUE: usize = 500;

impl Store {
    // ---- organisations and tokens ------------------------------------------

    // ---- products -------------------------------------------------------------

    // ---- customers ------------------------------------------------------------

    // ---- licenses -------------------------------------------------------------

    // ---- audit ----------------------------------------------------------------
}
