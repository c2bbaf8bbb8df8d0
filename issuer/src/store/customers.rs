//! Customers: their personal fields sealed at rest (`customers`), the
//! data secret that seals them, export and erasure.

use serde_json::json;

use super::audit_log::{AUDIT_OF_SUBJECT, audit_from_row};
use super::licenses::{ORG_LICENSE_SELECT, org_license_from_row};
use super::*;
use crate::error::RequestError;
use crate::privacy::PersonalFields;
use crate::service::{
    Customer, CustomerExport, MAX_METADATA, MAX_METADATA_VALUE, MAX_PAGE, OrgLicense,
};

impl Store {
    /// The keys of customers' personal data; an error until
    /// [`Store::unlock_personal_data`] ran.
    pub(crate) fn data_keys(&self) -> Result<&crate::privacy::DataKeys> {
        self.personal
            .get()
            .ok_or(Error::Request(RequestError::PersonalDataLocked))
    }

    /// Opens the ledger's data secret with the passphrase (making and
    /// sealing one, with `kdf`, on first use; see [`crate::privacy`]), then
    /// seals the personal fields of customers written before schema 9.
    /// Costs one Argon2 run.
    pub async fn unlock_personal_data(
        &self,
        pass: &crate::Passphrase,
        kdf: crate::KdfParams,
    ) -> Result<()> {
        use crate::keyfile::KeyFile;
        const NAME: &str = "data_secret";
        let read = || async {
            sqlx::query("SELECT value FROM meta WHERE name = $1")
                .bind(NAME)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| Error::db("reading the ledger", e))?
                .map(|r| r.try_get::<String, _>(0))
                .transpose()
                .map_err(|e| Error::db("reading the ledger", e))
        };
        let text = match read().await? {
            Some(t) => t,
            None => {
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut())?;
                let key = keyseal_core::SigningKey::from_seed(&seed)
                    .map_err(|_| corrupt("a random seed was refused"))?;
                let sealed = serde_json::to_string(&KeyFile::seal(&key, pass, kdf)?)
                    .map_err(|e| corrupt(&e.to_string()))?;
                // Under the writer lock: two replicas starting at once make
                // one secret, the first.
                let mut tx = self.begin_write().await?;
                let rows = tx
                    .fetch(
                        sqlx::query("SELECT value FROM meta WHERE name = $1").bind(NAME),
                        "reading the ledger",
                    )
                    .await?;
                if rows.is_empty() {
                    tx.set_meta(NAME, &sealed).await?;
                }
                tx.commit().await?;
                read()
                    .await?
                    .ok_or_else(|| corrupt("the data secret was not saved"))?
            }
        };
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|_| corrupt("the data secret is malformed"))?;
        let key = file.open(pass, Path::new("the ledger's data secret"))?;
        let _ = self
            .personal
            .set(crate::privacy::DataKeys::from_secret(&key.to_seed()));
        self.seal_plaintext_customers().await
    }

    /// Seals the fields of customers written in plaintext (before schema
    /// 9), then clears the plaintext, a page of rows per transaction. Once
    /// none is left, `meta` says so and later starts skip the scan (no
    /// write transaction, no walk of `customers`): since schema 9 nothing
    /// writes plaintext.
    pub(crate) async fn seal_plaintext_customers(&self) -> Result<()> {
        const DONE: &str = "customers_sealed";
        let done = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(DONE)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::db("reading the ledger", e))?;
        if done.is_some() {
            return Ok(());
        }
        loop {
            let mut tx = self.begin_write().await?;
            let rows = tx
                .fetch(
                    sqlx::query(
                        "SELECT org_id, customer_id, name, email FROM customers \
                         WHERE name IS NOT NULL OR email IS NOT NULL ORDER BY customer_id LIMIT 500",
                    ),
                    "reading customers",
                )
                .await?;
            if rows.is_empty() {
                tx.set_meta(DONE, "9").await?;
                return tx.commit().await;
            }
            let keys = self.data_keys()?;
            for r in &rows {
                let g = |e| Error::db("reading customers", e);
                let org: String = r.try_get("org_id").map_err(g)?;
                let id: String = r.try_get("customer_id").map_err(g)?;
                let fields = crate::privacy::PersonalFields {
                    name: r.try_get("name").map_err(g)?,
                    email: r.try_get("email").map_err(g)?,
                    metadata: std::collections::BTreeMap::new(),
                };
                let (key, wrapped) = keys.new_customer_key(&org, &id)?;
                let hash = fields.email.as_deref().map(|e| keys.email_hash(&org, e));
                tx.exec(
                    sqlx::query(
                        "UPDATE customers SET data_key = $1, sealed = $2, email_hash = $3, \
                         name = NULL, email = NULL WHERE customer_id = $4",
                    )
                    .bind(wrapped)
                    .bind(key.seal(&org, &id, &fields)?)
                    .bind(hash)
                    .bind(id),
                    "sealing customers",
                )
                .await?;
            }
            tx.commit().await?;
            self.truncate_wal().await;
        }
    }

    /// Creates a customer with an opaque id. Its personal fields are sealed
    /// (see [`crate::privacy`]): the ledger never holds them in plaintext.
    pub async fn org_add_customer(
        &self,
        org_id: &str,
        fields: PersonalFields,
        ctx: &Context,
    ) -> Result<Customer> {
        let customer_id = format!("cus_{}", random_hex(8)?);
        let sealed = self.seal_customer(org_id, &customer_id, &fields)?;
        let mut tx = self.begin_write().await?;
        tx.insert_customer(org_id, &customer_id, sealed, ctx.now)
            .await?;
        // The audit log records the opaque id only, never personal fields.
        tx.audit(
            ctx,
            "customer.create",
            &json!({ "org_id": org_id, "customer_id": customer_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(Customer {
            customer_id,
            name: fields.name,
            email: fields.email,
            metadata: fields.metadata,
            created_at: ctx.now,
            erased_at: None,
        })
    }

    /// A new customer's row: its fields checked and sealed under a new
    /// key of its own (none when it has no fields), and its email's
    /// look-up hash.
    pub(crate) fn seal_customer(
        &self,
        org_id: &str,
        customer_id: &str,
        fields: &PersonalFields,
    ) -> Result<SealedCustomer> {
        check_personal_fields(fields)?;
        let keys = self.data_keys()?;
        let (data_key, sealed) = if *fields == PersonalFields::default() {
            (None, None)
        } else {
            let (key, wrapped) = keys.new_customer_key(org_id, customer_id)?;
            (Some(wrapped), Some(key.seal(org_id, customer_id, fields)?))
        };
        Ok(SealedCustomer {
            data_key,
            sealed,
            email_hash: fields.email.as_deref().map(|e| keys.email_hash(org_id, e)),
        })
    }

    /// One customer of the organisation.
    pub async fn org_customer(&self, org_id: &str, customer_id: &str) -> Result<Option<Customer>> {
        let row = sqlx::query(&format!(
            "{CUSTOMER_SELECT} WHERE org_id = $1 AND customer_id = $2"
        ))
        .bind(org_id.to_owned())
        .bind(customer_id.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err("reading customers"))?;
        row.as_ref()
            .map(|r| self.customer_from_row(org_id, r))
            .transpose()
    }

    /// The organisation's customers after the cursor, by id; or those with
    /// this email address (found by its keyed hash).
    pub async fn org_customers(
        &self,
        org_id: &str,
        after: Option<&str>,
        email: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Customer>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = match email {
            None => sqlx::query(&format!(
                "{CUSTOMER_SELECT} WHERE org_id = $1 AND customer_id > $2 ORDER BY customer_id LIMIT {limit}"
            ))
            .bind(org_id.to_owned())
            .bind(after.unwrap_or("").to_owned())
            .fetch_all(self.pool())
            .await,
            Some(e) => sqlx::query(&format!(
                "{CUSTOMER_SELECT} WHERE org_id = $1 AND email_hash = $2 AND customer_id > $3 \
                 ORDER BY customer_id LIMIT {limit}"
            ))
            .bind(org_id.to_owned())
            .bind(self.data_keys()?.email_hash(org_id, e))
            .bind(after.unwrap_or("").to_owned())
            .fetch_all(self.pool())
            .await,
        }
        .map_err(db_err("reading customers"))?;
        rows.iter()
            .map(|r| self.customer_from_row(org_id, r))
            .collect()
    }

    /// A customer row, its fields opened.
    pub(crate) fn customer_from_row(&self, org_id: &str, r: &AnyRow) -> Result<Customer> {
        /// A row of [`CUSTOMER_SELECT`].
        #[derive(sqlx::FromRow)]
        struct Row {
            customer_id: String,
            data_key: Option<String>,
            sealed: Option<String>,
            created_at: i64,
            erased_at: Option<i64>,
        }
        let Row {
            customer_id,
            data_key,
            sealed,
            created_at,
            erased_at,
        } = read_row(r, "reading customers")?;
        let fields = match (data_key, sealed) {
            (Some(k), Some(s)) => self
                .data_keys()?
                .open_customer_key(org_id, &customer_id, &k)?
                .open(org_id, &customer_id, &s)?,
            _ => PersonalFields::default(),
        };
        Ok(Customer {
            customer_id,
            name: fields.name,
            email: fields.email,
            metadata: fields.metadata,
            created_at: u(created_at),
            erased_at: erased_at.map(u),
        })
    }

    /// Everything the service holds about one customer: its fields, its
    /// licenses, their device activations, and the audit entries about it
    /// or its licenses.
    pub async fn org_export_customer(
        &self,
        org_id: &str,
        customer_id: &str,
    ) -> Result<Option<CustomerExport>> {
        let Some(customer) = self.org_customer(org_id, customer_id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(&format!(
            "{ORG_LICENSE_SELECT} WHERE l.customer = $1 AND o.org_id || '' = $2 ORDER BY l.license_id"
        ))
        .bind(customer_id.to_owned())
        .bind(org_id.to_owned())
        .fetch_all(self.pool())
        .await
        .map_err(db_err("reading licenses"))?;
        let licenses: Vec<OrgLicense> = rows
            .iter()
            .map(org_license_from_row)
            .collect::<Result<_>>()?;
        let mut activations = Vec::new();
        for l in &licenses {
            activations.extend(
                self.org_activations(org_id, &l.record.license_id.to_string(), None, u64::MAX)
                    .await?
                    .into_iter()
                    .flatten(),
            );
        }
        let rows = sqlx::query(AUDIT_OF_SUBJECT)
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned())
            .fetch_all(self.pool())
            .await
            .map_err(db_err("reading the audit log"))?;
        let audit = rows.iter().map(audit_from_row).collect::<Result<_>>()?;
        Ok(Some(CustomerExport {
            customer,
            licenses,
            activations,
            audit,
        }))
    }

    /// Erases a customer's personal data (the opaque id and the licenses
    /// stay): its sealed fields, its data key (so copies of the ciphertext
    /// anywhere open under no key) and its email hash; its activations'
    /// device fingerprints are replaced by `erased`. Then, on SQLite, the
    /// WAL is checkpointed and truncated, so the old row images leave the
    /// disk (deleted content is zeroed: `secure_delete`).
    pub async fn org_erase_customer(
        &self,
        org_id: &str,
        customer_id: &str,
        ctx: &Context,
    ) -> Result<Option<Customer>> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .exec(
                sqlx::query(
                    "UPDATE customers SET name = NULL, email = NULL, data_key = NULL, sealed = NULL, \
                     email_hash = NULL, erased_at = COALESCE(erased_at, $1) \
                     WHERE org_id = $2 AND customer_id = $3",
                )
                .bind(i(ctx.now))
                .bind(org_id.to_owned())
                .bind(customer_id.to_owned()),
                "erasing the customer",
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        tx.exec(
            sqlx::query(
                "UPDATE activations SET fingerprint = 'erased' WHERE org_id = $1 AND license_id IN \
                 (SELECT license_id FROM licenses WHERE customer = $2)",
            )
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned()),
            "erasing the customer's activations",
        )
        .await?;
        // Seats keep only a salted device hash; erased all the same, and
        // released, so an erased customer's devices hold nothing.
        tx.exec(
            sqlx::query(
                "UPDATE seats SET device = 'erased', released_at = COALESCE(released_at, $3)                  WHERE org_id = $1 AND license_id IN (SELECT license_id FROM licenses WHERE customer = $2)",
            )
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned())
            .bind(i(ctx.now)),
            "erasing the customer's seats",
        )
        .await?;
        tx.exec(
            sqlx::query(
                "UPDATE org_licenses SET metadata = NULL WHERE org_id = $1 AND license_id IN \
                 (SELECT license_id FROM licenses WHERE customer = $2)",
            )
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned()),
            "erasing the customer's license metadata",
        )
        .await?;
        // Emails of its keys not sent yet are not sent (their addresses,
        // sealed, go), and a payment provider's customer no longer leads
        // to this one: a new purchase makes a new customer.
        tx.exec(
            sqlx::query(
                "UPDATE email_outbox SET status = 'failed', recipient = NULL, last_error = 'the customer was erased' \
                 WHERE org_id = $1 AND status = 'pending' AND license_id IN \
                 (SELECT license_id FROM licenses WHERE customer = $2)",
            )
            .bind(org_id.to_owned())
            .bind(customer_id.to_owned()),
            "erasing the customer's emails",
        )
        .await?;
        tx.exec(
            sqlx::query("DELETE FROM payment_customers WHERE org_id = $1 AND customer_id = $2")
                .bind(org_id.to_owned())
                .bind(customer_id.to_owned()),
            "erasing the customer's payment reference",
        )
        .await?;
        tx.audit(
            ctx,
            "customer.erase",
            &json!({ "org_id": org_id, "customer_id": customer_id }),
        )
        .await?;
        tx.commit().await?;
        self.truncate_wal().await;
        self.org_customer(org_id, customer_id).await
    }
}

pub(crate) const CUSTOMER_SELECT: &str =
    "SELECT customer_id, data_key, sealed, created_at, erased_at FROM customers";

/// Whether a customer's fields would be taken as they are.
#[must_use]
pub fn personal_fields_ok(f: &PersonalFields) -> bool {
    check_personal_fields(f).is_ok()
}

pub(crate) fn check_personal_fields(f: &PersonalFields) -> Result<()> {
    if let Some(n) = &f.name {
        check_text("name", n, 200)?;
    }
    if let Some(e) = &f.email {
        check_text("email", e, 254)?;
    }
    check_metadata(&f.metadata)
}

/// A metadata map: at most [`MAX_METADATA`] entries, keys of 1 to 40
/// letters, digits or `. _ -`, values text of at most
/// [`MAX_METADATA_VALUE`] bytes.
pub(crate) fn check_metadata(m: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if m.len() > MAX_METADATA {
        return Err(Error::invalid(
            "metadata",
            format!("has more than {MAX_METADATA} entries"),
        ));
    }
    for (k, v) in m {
        if k.is_empty()
            || k.len() > 40
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(Error::invalid(
                "metadata",
                format!(
                    "key `{}` must be 1 to 40 letters, digits or . _ -",
                    k.escape_debug()
                ),
            ));
        }
        check_text("metadata", v, MAX_METADATA_VALUE)?;
    }
    Ok(())
}

/// A customer's sealed row ([`Store::seal_customer`]).
pub(crate) struct SealedCustomer {
    data_key: Option<String>,
    sealed: Option<String>,
    email_hash: Option<String>,
}

impl WriteTx {
    /// Inserts a customer sealed by [`Store::seal_customer`].
    pub(crate) async fn insert_customer(
        &mut self,
        org_id: &str,
        customer_id: &str,
        c: SealedCustomer,
        now: u64,
    ) -> Result<()> {
        self.exec(
            sqlx::query(
                "INSERT INTO customers (customer_id, org_id, created_at, data_key, sealed, email_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(customer_id.to_owned())
            .bind(org_id.to_owned())
            .bind(i(now))
            .bind(c.data_key)
            .bind(c.sealed)
            .bind(c.email_hash),
            "creating the customer",
        )
        .await
        .map(|_| ())
    }
}
