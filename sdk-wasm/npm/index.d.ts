// Types of the `keyseal` package (the same for its Node and browser entries).
// Times are unix seconds (numbers), as in the license format and every keyseal
// SDK; only the clock speaks milliseconds, like Date.now().

/** Every code a {@link KeysealError} or a {@link Warning} can carry; the same in every keyseal SDK. */
export type KeysealCode =
  // keyseal-core
  | 'malformed'
  | 'unsupported_version'
  | 'unknown_key'
  | 'bad_signature'
  | 'key_not_valid'
  | 'key_revoked'
  | 'not_yet_valid'
  | 'expired'
  | 'wrong_product'
  | 'wrong_device'
  | 'version_not_covered'
  | 'revoked'
  | 'stale_revocation_list'
  | 'rolled_back_revocation_list'
  | 'keyring_full'
  | 'invalid_claims'
  | 'lease_invalid'
  | 'lease_expired'
  // the SDK
  | 'clock_suspect'
  | 'revocation_list_missing'
  | 'state_corrupt'
  | 'state_unavailable'
  | 'license_not_found'
  | 'unreadable'
  | 'device_unavailable'
  | 'invalid_config';

/** Every {@link KeysealCode}, in a fixed order. */
export const CODES: readonly KeysealCode[];

/** Why a lease does not hold (the `fault` of a `lease_invalid` error); the same in every keyseal SDK. */
export type LeaseFault =
  | 'malformed'
  | 'unsupported_version'
  | 'unknown_key'
  | 'bad_signature'
  | 'key_revoked'
  | 'key_not_valid'
  | 'other_license'
  | 'wrong_device'
  | 'not_yet_valid';

/** A problem that did not refuse the license (or, in advisory mode, would have). */
export interface Warning {
  readonly code: KeysealCode;
  /** For developers: lower case, may name key ids and times. */
  readonly message: string;
  /** Plain English for the customer, saying what to do next. */
  readonly customerMessage: string;
  /** For `lease_invalid` (advisory mode), why the lease does not hold; null for every other code. */
  readonly fault: LeaseFault | null;
}

/**
 * Thrown for every refusal and every bad input. `instanceof KeysealError`
 * and `instanceof Error` hold; switch on `code`, show `customerMessage`.
 */
export class KeysealError extends Error {
  readonly name: 'KeysealError';
  readonly code: KeysealCode;
  readonly customerMessage: string;
  /** Other problems found while validating (a suspect clock may explain an expiry). */
  readonly warnings: readonly Warning[];
  /** For `lease_invalid`, why the lease does not hold (another device, another license, a bad signature...); null for every other code. */
  readonly fault: LeaseFault | null;
  constructor(
    code: KeysealCode,
    message: string,
    customerMessage: string,
    warnings?: readonly Warning[],
    fault?: LeaseFault | null,
  );
}

/** Why `verifyWebhook` refused a delivery (the same codes in every keyseal SDK). */
export type WebhookErrorCode = 'malformed' | 'unknown_key' | 'key_not_valid' | 'bad_signature' | 'stale';

/**
 * A webhook delivery `verifyWebhook` refused: `malformed` (a header missing
 * or not as the format says), `unknown_key` (signed by a key the keyring
 * does not hold), `key_not_valid` (the key's window does not cover the
 * delivery's time), `bad_signature` (it does not match the id, timestamp
 * and body) or `stale` (the timestamp is more than 5 minutes from now).
 * Not a KeysealError: a verdict on a delivery, not on a license key.
 */
export class WebhookError extends Error {
  readonly name: 'WebhookError';
  readonly code: WebhookErrorCode;
  /** The key the delivery names, for `unknown_key` and `key_not_valid`; else null. */
  readonly keyId: string | null;
  constructor(code: WebhookErrorCode, message: string, keyId?: string | null);
}

/** `active`, `in_grace`; `expired` and `not_yet_valid` only in advisory mode. */
export type Status = 'active' | 'in_grace' | 'expired' | 'not_yet_valid';

export type DeviceBinding =
  | { readonly kind: 'exact' }
  | { readonly kind: 'tolerant'; readonly required: number; readonly components: number };

/**
 * This device's hold on one seat of a license, which the vendor's service
 * signs at activation and at every check-in: `license.lease` after
 * `validateWithLease()`. Times are unix seconds.
 */
export interface Lease {
  /** The seat this device holds, 32 hex digits; check-ins and releases name it. */
  readonly seatId: string;
  /** The id of the key that signed the lease, 16 hex digits. */
  readonly keyId: string;
  /** Unix seconds: when the service signed it. */
  readonly issuedAt: number;
  /** Unix seconds: when the app should check in. */
  readonly renewAt: number;
  /** Unix seconds: when the lease ends (then `validateWithLease()` throws `lease_expired`). */
  readonly expiresAt: number;
  /** Whether `renewAt` has passed: the lease still holds, and the app should check in now. */
  readonly checkInDue: boolean;
}

/** A license whose signature verified: what `validate()` returns. A plain object. */
export interface License {
  /** 32 hex digits. */
  readonly licenseId: string;
  readonly product: string;
  /** The vendor's opaque customer id. */
  readonly customer: string;
  readonly plan: string;
  /** Unix seconds. */
  readonly issuedAt: number;
  /** Unix seconds, or null. */
  readonly notBefore: number | null;
  /** Unix seconds; null for a perpetual license. */
  readonly expiresAt: number | null;
  /** Grace period after expiry, in seconds (0: none). */
  readonly graceSecs: number;
  readonly status: Status;
  /** When the grace period ends (unix seconds) if `status` is `in_grace`, else null. */
  readonly graceEnds: number | null;
  /** Sorted. */
  readonly entitlements: readonly string[];
  /** The newest app version covered, e.g. `5.x`, or null. */
  readonly maxVersion: string | null;
  /** Vendor extension fields. */
  readonly extensions: Readonly<Record<string, string>>;
  /** The signing key's id, 16 hex digits. */
  readonly keyId: string;
  /** How the license is bound to a device, or null. */
  readonly device: DeviceBinding | null;
  /** The lease it was validated with (`validateWithLease()`), or null. */
  readonly lease: Lease | null;
  readonly warnings: readonly Warning[];
}

/** A verified revocation list. */
export interface RevocationListInfo {
  readonly sequence: number;
  /** Unix seconds. */
  readonly issuedAt: number;
  /** Unix seconds: when the vendor promises the next list. */
  readonly nextUpdate: number;
  /** Id of the key that signed it. */
  readonly signer: string;
  readonly revokedLicenses: readonly string[];
  readonly revokedKeys: readonly string[];
}

/**
 * Where the validator keeps its small state (the clock-rollback guard and the
 * newest revocation list seen). Synchronous; `get()` returns what `set()` was
 * last given, or null. A store that throws gives a `state_unavailable` warning.
 */
export interface StateStore {
  get(): string | Uint8Array | null | undefined;
  set(text: string): void;
}

/** Milliseconds since 1970, like `Date.now`, or a Date. */
export type Clock = () => number | Date;

export type Staleness = 'ignore' | 'warn' | { readonly refuseAfterDays: number };

export interface ValidatorOptions {
  /** The public keyring text the keyseal CLI exports (`key kspub1.… from=…` lines). */
  keyring: string;
  /** The product id licenses must name. */
  product: string;
  /** The app's version, checked against the license's version cap, e.g. `5.2.0`. */
  appVersion?: string;
  /**
   * This device's fingerprint, a `ksfp1.` code. Browsers have no machine id:
   * supply one the app can trust, or leave it out (device-bound licenses are
   * then refused with `wrong_device`). See {@link deviceFingerprint}.
   */
  device?: string;
  /** Default: `Date.now`. */
  clock?: Clock;
  /** Default: in memory (the guard lasts as long as the page or process). */
  state?: StateStore;
  /** Default `enforce`. */
  mode?: 'enforce' | 'advisory';
  /** Seconds of clock difference tolerated on start and expiry. Default 0. */
  leeway?: number;
  /**
   * Build verification tables for the keyring's keys now (215 KiB each plus
   * 215 KiB once; about 2.7 ms for a one-key keyring): every validation then
   * takes about half as long, with the same answers. Default `true`; `false` for
   * a validator that checks one key and is dropped.
   */
  precompute?: boolean;
  /** Seconds the clock may be behind the latest time seen before it is suspect. Default 3600. */
  clockTolerance?: number;
  /** What to do with a stale revocation list. Default `warn`. */
  staleness?: Staleness;
  /** Default `warn`. */
  onClockSuspect?: 'warn' | 'refuse';
  /** Default `warn`. */
  onCorruptState?: 'warn' | 'refuse';
  /** A revocation list to load now (binary or armored). */
  revocationList?: Uint8Array | ArrayBuffer | string;
}

/** Validates license keys offline. Keep one for the life of the app. */
export class Validator {
  /** Throws a {@link KeysealError}: `invalid_config`, `malformed` (keyring, version, device), or the revocation list's refusal. */
  constructor(options: ValidatorOptions);
  /** The license, or throws a {@link KeysealError} saying why not. Takes the key text or an armored license file. */
  validate(key: string): License;
  /**
   * The license with its lease (`kslease1.`) for this validator's `device`, or
   * throws a {@link KeysealError}: the license's own refusal, else
   * `lease_invalid` (with its {@link KeysealError.fault}) or `lease_expired`.
   */
  validateWithLease(key: string, lease: string): License;
  /** Verifies a revocation list (binary or armored) and puts it in force; throws a {@link KeysealError} if refused. */
  loadRevocationList(list: Uint8Array | ArrayBuffer | string): RevocationListInfo;
  /** The revocation list in force, or null. */
  readonly revocationList: RevocationListInfo | null;
  readonly product: string;
  /** Writes the state now (otherwise written when the clock moved a minute, or on vendor-signed news). */
  saveState(): void;
  /** Drops the clock's high-water mark to the latest vendor-signed time (a support action). */
  resetClockMark(): void;
  /** Frees the WebAssembly memory now rather than at garbage collection. */
  free(): void;
}

/** State in Web Storage (`localStorage` unless another Storage is given) under `key`. */
export function localStorageState(key: string, storage?: Pick<Storage, 'getItem' | 'setItem'>): StateStore;

/** One id that names this device or installation, under a kind label. */
export interface DeviceId {
  kind: string;
  id: string | Uint8Array;
}

/**
 * The `ksfp1.` fingerprint of ids the app supplies, salted with the product
 * (the same computation as the Rust SDK's Fingerprinter). Throws
 * `device_unavailable` if no id is usable.
 */
export function deviceFingerprint(product: string, ids: readonly DeviceId[]): string;

/**
 * Checks a webhook delivery from the keyseal issuing service with the
 * organisation's public keyring (its `keyseal-signature` header; no shared
 * secret), as the Rust SDK's `keyseal::webhooks::verify`: the
 * `webhook-id`, `webhook-timestamp` and `keyseal-signature` headers (a
 * missing one, `undefined` or `null`, is `malformed`) and the raw body, at `now` (a
 * Date or milliseconds since the epoch; `Date.now()` by default). Returns
 * the id of the key that signed; throws a `WebhookError`, a KeysealError
 * `malformed` for a keyring that is not one, or `invalid_config` for
 * arguments of the wrong type. A delivery may come twice: drop a
 * `webhook-id` seen before.
 */
export function verifyWebhook(
  keyring: string,
  id: string | null | undefined,
  timestamp: string | null | undefined,
  signature: string | null | undefined,
  body: string | Uint8Array | ArrayBuffer,
  options?: { now?: Date | number },
): string;

/**
 * Strict Ed25519 verification as a `Validator` makes it (canonical, non-weak
 * key; canonical signature): through the key's precomputed tables, built on
 * every call, so no fast path; or with `{ precompute: false }` by the plain
 * strict verify, as a validator checks keys it has no tables for. Both give
 * the same answers. False for keys or signatures of the wrong length.
 */
export function verifyEd25519Strict(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  options?: { precompute?: boolean },
): boolean;
