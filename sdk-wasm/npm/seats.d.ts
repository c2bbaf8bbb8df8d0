// Types of `keyseal/seats` (the same for its Node and browser entries):
// everything `keyseal` exports, plus taking, renewing and freeing seats of a
// license from the vendor's licensing service, online or air-gapped, and
// asking it for a product's trial. One
// .wasm holds both (the verifier and the Rust SDK's seats), so an app that
// holds seats imports everything from here and loads one module.
// Times are unix seconds (numbers), as everywhere in keyseal.

import type { Clock } from './index.js';

export * from './index.js';

/**
 * Every code a {@link SeatError} can carry, the Rust SDK's `SeatError::code`:
 * the licensing service's refusals (an on-premises relay's
 * `allotment_ended`; for {@link SeatClient.startTrial} `trial_used`,
 * `trials_disabled` and `unknown_product`), then `unreachable` (no answer) and
 * `bad_answer` (an answer, response code or saved text that is not
 * understood). They are the service's answers, not verdicts on a key:
 * `expired` here is the service refusing a seat to an expired license.
 */
export type SeatErrorCode =
  | 'seat_limit'
  | 'revoked'
  | 'expired'
  | 'not_yet_valid'
  | 'suspended'
  | 'invalid_license_key'
  | 'seat_lapsed'
  | 'seat_released'
  | 'unknown_seat'
  | 'wrong_device'
  | 'bad_proof'
  | 'rate_limited'
  | 'allotment_ended'
  | 'trial_used'
  | 'trials_disabled'
  | 'unknown_product'
  | 'service_error'
  | 'unreachable'
  | 'bad_answer';

/**
 * Thrown (as a rejected promise for {@link SeatClient}'s calls) when a seat
 * request fails. Switch on `code`, show `customerMessage`, retry later if
 * `isTransient`. A bad argument is a `KeysealError` instead: `invalid_config`
 * for a wrong type, `malformed` for a fingerprint that is not one.
 */
export class SeatError extends Error {
  readonly name: 'SeatError';
  readonly code: SeatErrorCode;
  /** Plain English for the customer, saying what to do next (the Rust SDK's `SeatError::customer_message`). */
  readonly customerMessage: string;
  /**
   * Whether trying again later may succeed: no answer (`unreachable`), a full
   * license (`seat_limit`), the rate limit (`rate_limited`, HTTP 429), a
   * server error (HTTP 5xx). A refusal that stands (revoked, wrong device...) is not.
   */
  readonly isTransient: boolean;
  /** The HTTP status of a refusal; null when there was no answer or it was not understood. */
  readonly status: number | null;
  /** For `unreachable`, what the transport threw (fetch's `TypeError`, a timeout's `DOMException`...). */
  readonly cause?: unknown;
  constructor(
    code: SeatErrorCode,
    message: string,
    customerMessage: string,
    isTransient?: boolean,
    status?: number | null,
    options?: { cause?: unknown },
  );
}

/** What a {@link Transport} is asked to send: always a POST of JSON text. */
export interface TransportRequest {
  method: 'POST';
  headers: Record<string, string>;
  /** JSON text (it holds the license key). */
  body: string;
  /** Aborts after 30 s, where the runtime has `AbortSignal.timeout`. */
  signal?: AbortSignal;
}

/** What a {@link Transport} resolves to: any HTTP answer, error statuses included. A fetch `Response` is one. */
export interface TransportAnswer {
  readonly status: number;
  text(): Promise<string>;
}

/**
 * Sends a request to the licensing service, with `fetch`'s shape (so `fetch`
 * itself, or a wrapper adding a proxy or headers, is one). Resolve to every
 * answer the service gave, 4xx and 5xx included; reject when there was none
 * (network, DNS, TLS, timeout): the call then throws a {@link SeatError}
 * `unreachable` whose `cause` is the rejection.
 */
export type Transport = (url: string, request: TransportRequest) => Promise<TransportAnswer>;

export interface SeatClientOptions {
  /** Default: the global `fetch`, looked up at each request. */
  transport?: Transport;
  /** Times the check-in and release proofs (the service accepts 300 s of difference). Default: `Date.now`. */
  clock?: Clock;
}

/**
 * Asks the vendor's licensing service (`keyseal serve`) for this device's
 * seat of a license: activate, check in before the lease ends, release; or,
 * with no license, for the product's trial. Only these calls use the
 * network; validation never does. The requests, their proofs and the reading
 * of the answers are the Rust SDK's.
 */
export class SeatClient {
  /** A client of the service at `baseUrl` (`https://licensing.example.com`, without `/v1`). Throws `invalid_config` for bad options. */
  constructor(baseUrl: string, options?: SeatClientOptions);
  /** The service's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /**
   * Takes a seat of the license for this device (its `ksfp1.` fingerprint, as
   * the {@link Validator}'s `device`), with a key pair made here for this
   * installation; the same device asking again gets its seat back. Save the
   * seat ({@link Seat.toText}) and validate `seat.lease` with the key
   * (`validator.validateWithLease`). Rejects with a {@link SeatError}
   * (`seat_limit` when every seat is held), or a `KeysealError` `malformed`
   * for a fingerprint that is not one.
   */
  activate(licenseKey: string, fingerprint: string): Promise<Seat>;
  /**
   * Renews the seat's lease, signed with the installation's key; `seat` then
   * holds the new lease (save it again). Call it once the lease's `renewAt`
   * has passed (`license.lease.checkInDue`). Rejects with a {@link SeatError}.
   */
  checkIn(licenseKey: string, fingerprint: string, seat: Seat): Promise<void>;
  /** Frees the seat for another device (uninstalling); then delete the saved seat. Rejects with a {@link SeatError}. */
  release(licenseKey: string, seat: Seat): Promise<void>;
  /**
   * Asks for the trial of `product` for this device (its `ksfp1.`
   * fingerprint, as the {@link Validator}'s `device`), from the organisation
   * `orgId` (the `org_...` id in its keyring URL; public, no secret). The
   * device's first ask gets a new trial license bound to it; asking again
   * while it runs gets the same one (a lost answer can be asked for again).
   * Validate `trial.licenseKey` like any key, on this device. Rejects with a
   * {@link SeatError}: `trial_used` (this device had its trial, even after a
   * reinstall or a changed component), `trials_disabled` (the product gives
   * none), `unknown_product` (no such organisation or product),
   * `rate_limited`; or a `KeysealError` `malformed` for a fingerprint that is
   * not one.
   */
  startTrial(orgId: string, product: string, fingerprint: string): Promise<Trial>;
}

/** A trial license for this device, as the service minted it ({@link SeatClient.startTrial}). Times are unix seconds. */
export interface Trial {
  /** The trial license's key (`ks1.`), bound to this device: keep it with the app's data and validate it (`validator.validate`). */
  readonly licenseKey: string;
  /** Its id, 32 hex digits (the validated license's `licenseId`). */
  readonly licenseId: string;
  /** Its plan (`trial` unless the product's trial policy names another). */
  readonly plan: string;
  /** Its entitlements, sorted. */
  readonly entitlements: readonly string[];
  /** Unix seconds: when the trial started. */
  readonly startedAt: number;
  /** Unix seconds: when it ends (the license's `expiresAt`). */
  readonly expiresAt: number;
}

/**
 * This device's seat: its id, its current lease, and the private key of the
 * installation that took it (check-ins and the release are signed with it).
 * From {@link SeatClient.activate}, {@link OfflineRequest.install} or
 * {@link Seat.fromText}.
 */
export class Seat {
  private constructor();
  /** The seat's id, 32 hex digits (the lease's `seatId`). */
  readonly seatId: string;
  /** The current lease (`kslease1.`), to validate with the license key: `validator.validateWithLease(key, seat.lease)`. */
  readonly lease: string;
  /** Unix seconds: when to check in, as the lease says (unverified until validated). */
  readonly renewAt: number;
  /** Unix seconds: when the lease ends, as the lease says (unverified until validated). */
  readonly expiresAt: number;
  /**
   * The seat as text to save (`ksseat1.`, two lines), the Rust SDK's format:
   * a seat saved by any keyseal SDK loads in any other. **A secret**: it holds
   * the installation's private key, so keep it with the app's own data and
   * never log it.
   */
  toText(): string;
  /** A seat saved with `toText` (by any keyseal SDK). Throws a {@link SeatError} `bad_answer` for text that is not one. */
  static fromText(text: string): Seat;
  /** Frees the WebAssembly memory (and wipes the key) now rather than at garbage collection. */
  free(): void;
}

/**
 * An air-gapped activation: the request code this device shows (text, or a
 * QR code in alphanumeric mode) for the vendor to answer
 * (`keyseal activate --request CODE`), and the installation key kept until
 * the response code arrives. Save it with `toText` if the app may be
 * restarted meanwhile.
 */
export class OfflineRequest {
  /**
   * The request of this device (its `ksfp1.` fingerprint) for the license of
   * `licenseKey`, with a new installation key. Throws a {@link SeatError}
   * `bad_answer` for a license key that is not one, a `KeysealError`
   * `malformed` for a fingerprint that is not one.
   */
  constructor(licenseKey: string, fingerprint: string);
  /** The request code (`KSREQ1.`, 189 characters, upper case). */
  readonly code: string;
  /**
   * Installs the vendor's response code (`KSRES1.`): the seat, with its lease
   * (validate it with `validator.validateWithLease`). Case, dashes and spaces
   * do not matter; a typo throws a {@link SeatError} `bad_answer` (the
   * checksum), and the request stays usable.
   */
  install(responseCode: string): Seat;
  /** The pending request as text to save (`ksseatreq1.`), the Rust SDK's format. **A secret**, like {@link Seat.toText}. */
  toText(): string;
  /** A pending request saved with `toText` (by any keyseal SDK). Throws a {@link SeatError} `bad_answer` for text that is not one. */
  static fromText(text: string): OfflineRequest;
  /** Frees the WebAssembly memory (and wipes the key) now rather than at garbage collection. */
  free(): void;
}
