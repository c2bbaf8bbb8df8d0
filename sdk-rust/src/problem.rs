//! Why a license was refused or carries warnings: one enum, [`Problem`], with
//! a stable [`Problem::code`] shared by every keyseal SDK, a developer message
//! (`Display`) and a plain-language [`Problem::customer_message`].
//!
//! Messages never contain secrets: no key material, no raw hardware ids, no
//! value of an environment variable. They may name files and key ids.

use std::fmt;

use keyseal_core::Error as CoreError;

use crate::state::StateDefect;
use crate::time;

/// Something wrong with a license, its environment or the validator's inputs.
///
/// A validation refused for one problem returns it in a [`Rejection`]; other
/// problems found on the way are warnings ([`crate::License::warnings`],
/// [`Rejection::warnings`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// keyseal-core refused the key, certificate or revocation list; its
    /// [`CoreError::code`] is the code.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The clock is behind the latest time this app has seen (from the clock
    /// itself, license issue times or revocation lists) by more than the
    /// tolerance: it was probably turned back.
    #[error("clock is {behind_by} s behind the latest time seen")]
    ClockSuspect {
        /// By how many seconds.
        behind_by: u64,
    },
    /// A revocation list was seen before (the state remembers it) but none is
    /// loaded now: deleting the list file must not un-revoke a license.
    #[error("no revocation list is loaded, though list {sequence} was seen before")]
    RevocationListMissing {
        /// Sequence number of the newest list seen.
        sequence: u64,
        /// When that list said it would be replaced (unix seconds).
        next_update: u64,
    },
    /// The persisted state (clock mark, revocation sequence) was edited or
    /// damaged. It is reset and rewritten at the next save.
    #[error("state is corrupt: {defect}")]
    StateCorrupt {
        /// What is wrong with it.
        defect: StateDefect,
    },
    /// The persisted state could not be read or written (permissions, disk).
    /// Rollback detection then lasts only as long as the process.
    #[error("state cannot be read or written: {detail}")]
    StateUnavailable {
        /// The operating system's message.
        detail: String,
    },
    /// No license key at the place the app looked (missing or empty file or
    /// environment variable).
    #[error("no license key found: {detail}")]
    LicenseNotFound {
        /// Where the app looked.
        detail: String,
    },
    /// A license or revocation list file exists but cannot be read, or is
    /// not text where text is needed.
    #[error("cannot read {detail}")]
    Unreadable {
        /// What could not be read, and why.
        detail: String,
    },
    /// The license is bound to a device, and this device's fingerprint could
    /// not be determined (no source gave an id).
    #[error("device cannot be identified: {detail}")]
    DeviceUnavailable {
        /// Which sources were tried.
        detail: String,
    },
    /// The validator was configured wrongly (a bug in the app, not the license).
    #[error("invalid configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: &'static str,
    },
}

impl Problem {
    /// The codes this crate adds to [`CoreError::CODES`]; together they are
    /// every code [`Problem::code`] can return.
    pub const SDK_CODES: &'static [&'static str] = &[
        "clock_suspect",
        "revocation_list_missing",
        "state_corrupt",
        "state_unavailable",
        "license_not_found",
        "unreadable",
        "device_unavailable",
        "invalid_config",
    ];

    /// The stable, machine-readable code shared by every keyseal SDK.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Problem::Core(e) => e.code(),
            Problem::ClockSuspect { .. } => "clock_suspect",
            Problem::RevocationListMissing { .. } => "revocation_list_missing",
            Problem::StateCorrupt { .. } => "state_corrupt",
            Problem::StateUnavailable { .. } => "state_unavailable",
            Problem::LicenseNotFound { .. } => "license_not_found",
            Problem::Unreadable { .. } => "unreadable",
            Problem::DeviceUnavailable { .. } => "device_unavailable",
            Problem::InvalidConfig { .. } => "invalid_config",
        }
    }

    /// The keyseal-core error, if that is what this is.
    #[must_use]
    pub const fn core_error(&self) -> Option<&CoreError> {
        match self {
            Problem::Core(e) => Some(e),
            _ => None,
        }
    }

    /// A message the app can show its customer: plain language, what happened
    /// and what to do. English; apps that translate map [`Problem::code`].
    #[must_use]
    pub fn customer_message(&self) -> String {
        match self {
            Problem::Core(e) => core_message(e),
            Problem::ClockSuspect { behind_by } => format!(
                "Your computer's date and time seem to be set back by {}. Set the correct date and time, then try again.",
                time::duration(*behind_by)
            ),
            Problem::RevocationListMissing { .. } => {
                "The app's list of withdrawn licenses is missing, so your license cannot be checked. Connect to the internet so the app can download it again.".into()
            }
            Problem::StateCorrupt { .. } => {
                "The app's license check data was damaged or changed, and has been reset. If this message comes back, contact the vendor.".into()
            }
            Problem::StateUnavailable { .. } => {
                "The app could not save its license check data. Make sure it may write to its data folder.".into()
            }
            Problem::LicenseNotFound { .. } => {
                "No license key was found. Enter your license key, or put your license file where the app expects it.".into()
            }
            Problem::Unreadable { .. } => {
                "The license file could not be read. Make sure it is the file you received and that the app may open it.".into()
            }
            Problem::DeviceUnavailable { .. } => {
                "This license is registered to one computer, but this computer could not be identified. Contact the vendor.".into()
            }
            Problem::InvalidConfig { .. } => {
                "The app's license check is not set up correctly. Contact the vendor.".into()
            }
        }
    }
}

fn core_message(e: &CoreError) -> String {
    match e {
        CoreError::Malformed(_) => "This license key is incomplete or was changed when it was copied. Paste the whole key again exactly as you received it, with no extra characters.".into(),
        CoreError::UnsupportedVersion(_) => "This license key is for a newer version of the app. Update the app, or ask the vendor for a key that works with this version.".into(),
        CoreError::UnknownKey(_) => "This license key was not issued for this app, or the app needs an update to recognize it. Contact the vendor.".into(),
        CoreError::BadSignature => "This license key is not genuine or was altered. Paste it again exactly as you received it; if that does not help, contact the vendor.".into(),
        CoreError::KeyNotValid(_) => "This license key was not issued by an authorized source for this product. Contact the vendor.".into(),
        CoreError::KeyRevoked(_) => "This license key can no longer be accepted because the vendor withdrew the key that signed it. Contact the vendor for a new license.".into(),
        CoreError::NotYetValid { not_before } => format!("This license starts on {} (UTC). Try again then.", time::date(*not_before)),
        CoreError::Expired { expired_at } => format!("This license expired on {} (UTC). Renew it to keep using the app.", time::date(*expired_at)),
        CoreError::WrongProduct => "This license key is for a different product.".into(),
        CoreError::WrongDevice => "This license is registered to a different computer. Contact the vendor to move it to this one.".into(),
        CoreError::VersionNotCovered => "Your license does not cover this version of the app. Use the version your license covers, or upgrade your license.".into(),
        CoreError::Revoked => "This license has been withdrawn by the vendor. Contact the vendor if you think this is a mistake.".into(),
        CoreError::StaleRevocationList { .. } => "The app's list of withdrawn licenses is out of date, so your license cannot be checked. Connect to the internet so the app can update it.".into(),
        CoreError::RolledBackRevocationList { .. } => "An older list of withdrawn licenses was offered than the one the app already has; it was ignored.".into(),
        CoreError::LeaseInvalid(_) => "Your license is fine, but this computer's permission to use it is not valid here. Connect to the internet and activate the app again on this computer.".into(),
        CoreError::LeaseExpired { expired_at } => format!("Your license is fine, but this computer's permission to use it ended on {} (UTC). Connect to the internet so the app can renew it.", time::date(*expired_at)),
        _ => "Something went wrong while checking the license. Contact the vendor.".into(),
    }
}

/// A refused license: the problem that refused it, and any warnings found
/// on the way (a suspect clock, say, which may explain an expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Rejection {
    problem: Problem,
    warnings: Vec<Problem>,
}

impl Rejection {
    pub(crate) fn new(problem: Problem, warnings: Vec<Problem>) -> Self {
        Rejection { problem, warnings }
    }

    /// The problem that refused the license.
    pub const fn problem(&self) -> &Problem {
        &self.problem
    }

    /// The problem's stable code, for example `expired` or `clock_suspect`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        self.problem.code()
    }

    /// What to tell the customer, in plain language.
    #[must_use]
    pub fn customer_message(&self) -> String {
        self.problem.customer_message()
    }

    /// Other problems found while validating.
    #[must_use]
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The problem, dropping the warnings.
    pub fn into_problem(self) -> Problem {
        self.problem
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "license rejected: {}", self.problem)
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.problem)
    }
}

impl From<Problem> for Rejection {
    fn from(problem: Problem) -> Self {
        Rejection::new(problem, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use keyseal_core::{KeyId, Malformed};

    use super::*;

    fn every_problem() -> Vec<Problem> {
        let id = KeyId::from_bytes([1; 8]);
        let core = [
            CoreError::Malformed(Malformed::Base64),
            CoreError::UnsupportedVersion(2),
            CoreError::UnknownKey(id),
            CoreError::BadSignature,
            CoreError::KeyNotValid(id),
            CoreError::KeyRevoked(id),
            CoreError::NotYetValid {
                not_before: 1_800_000_000,
            },
            CoreError::Expired {
                expired_at: 1_800_000_000,
            },
            CoreError::WrongProduct,
            CoreError::WrongDevice,
            CoreError::VersionNotCovered,
            CoreError::Revoked,
            CoreError::StaleRevocationList { next_update: 1 },
            CoreError::RolledBackRevocationList {
                sequence: 1,
                seen: 2,
            },
            CoreError::KeyringFull,
            CoreError::InvalidClaims(Malformed::Text),
            CoreError::LeaseInvalid(keyseal_core::LeaseFault::WrongDevice),
            CoreError::LeaseExpired {
                expired_at: 1_800_000_000,
            },
        ];
        let mut all: Vec<Problem> = core.into_iter().map(Problem::Core).collect();
        all.extend([
            Problem::ClockSuspect { behind_by: 7_200 },
            Problem::RevocationListMissing {
                sequence: 3,
                next_update: 4,
            },
            Problem::StateCorrupt {
                defect: StateDefect::Checksum,
            },
            Problem::StateUnavailable {
                detail: "permission denied".into(),
            },
            Problem::LicenseNotFound {
                detail: "license.txt".into(),
            },
            Problem::Unreadable {
                detail: "license.txt: not text".into(),
            },
            Problem::DeviceUnavailable {
                detail: "no source".into(),
            },
            Problem::InvalidConfig { detail: "product" },
        ]);
        all
    }

    #[test]
    fn codes_are_complete_and_unique() {
        let all = every_problem();
        let codes: Vec<&str> = all.iter().map(Problem::code).collect();
        let listed: Vec<&str> = CoreError::CODES
            .iter()
            .chain(Problem::SDK_CODES)
            .copied()
            .collect();
        assert_eq!(codes, listed);
        for (i, c) in listed.iter().enumerate() {
            assert!(!listed[i + 1..].contains(c), "{c} twice");
        }
    }

    #[test]
    fn messages_are_plain_and_distinct_from_codes() {
        for p in every_problem() {
            let dev = p.to_string();
            assert!(!dev.is_empty() && !dev.ends_with('.'), "{dev}");
            assert!(
                dev.chars().next().is_some_and(|c| !c.is_uppercase()),
                "{dev}"
            );
            let msg = p.customer_message();
            assert!(msg.ends_with('.'), "{msg}");
            assert!(!msg.contains('_'), "customer message shows a code: {msg}");
        }
        let expired = Problem::Core(CoreError::Expired {
            expired_at: 1_800_000_000,
        });
        assert!(expired.customer_message().contains("2027-01-15"));
        let clock = Problem::ClockSuspect { behind_by: 7_200 };
        assert!(clock.customer_message().contains("about 2 hours"));
    }

    #[test]
    fn rejection_reports_its_problem() {
        let r = Rejection::new(
            Problem::Core(CoreError::Revoked),
            vec![Problem::ClockSuspect { behind_by: 5_000 }],
        );
        assert_eq!(r.code(), "revoked");
        assert_eq!(r.to_string(), "license rejected: license is revoked");
        assert_eq!(r.warnings().len(), 1);
        assert!(std::error::Error::source(&r).is_some());
    }
}
