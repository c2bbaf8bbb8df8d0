// The `keyseal/seats` API over the wasm-bindgen glue of the seats .wasm
// (wasm/keyseal_seats.js): the package's whole API plus seats, from one
// .wasm. The entry modules (seats-node.js, seats-browser.js) load it, then
// call setup(). The requests and their proofs, the reading of answers, the
// saved texts, the air-gapped codes, the trial request and every SeatError
// are the Rust SDK's (sdk-rust's `seats`); here is only what a JavaScript
// request needs that Rust cannot do synchronously: sending it and awaiting
// the answer.
import {
  OfflineRequest,
  Seat,
  Validator,
  __Activation,
  __TrialRequest,
  __checkInRequest,
  __finishCheckIn,
  __finishRelease,
  __invalidConfig,
  __releaseRequest,
  __seatUnreachable,
  __setErrorClass,
  __setSeatErrorClass,
  __verifyWebhook,
  codes,
  deviceFingerprint,
  verifyEd25519Strict,
} from './wasm/keyseal_seats.js';
import { KeysealError, WebhookError, localStorageState, webhookVerifier } from './common.js';

/** Checks a webhook delivery with the organisation's public keyring (see index.d.ts). */
export const verifyWebhook = webhookVerifier(__verifyWebhook);

/**
 * A seat request that failed: a real Error with the Rust SDK's stable `code`
 * (the licensing service's refusal, `unreachable` or `bad_answer`), whether
 * trying again later may succeed (`isTransient`), and the HTTP status of a
 * refusal. For `unreachable`, `cause` is what the transport threw.
 */
export class SeatError extends Error {
  constructor(code, message, customerMessage, isTransient = false, status = null, options = undefined) {
    super(message, options);
    this.name = 'SeatError';
    this.code = code;
    this.customerMessage = customerMessage;
    this.isTransient = isTransient;
    this.status = status;
  }
}

/** Every code a KeysealError or a warning can carry; filled by setup(). */
export const CODES = [];

/** Called by each entry module after the .wasm is instantiated. */
export function setup() {
  __setErrorClass(KeysealError);
  __setSeatErrorClass(SeatError);
  // Once, however many entries of the package an app loads (`keyseal`
  // and `keyseal/web` share this module and the .wasm's).
  if (Object.isFrozen(CODES)) return;
  CODES.push(...codes());
  Object.freeze(CODES);
}

/** The time a request may take, from sending to the end of the answer, as the Rust and Python SDKs' 30 s. */
const TIMEOUT_MS = 30_000;
/** The longest answer read (1 MiB), as the Rust and Python SDKs' transports. */
const MAX_ANSWER = 1 << 20;
const OPTIONS = ['transport', 'clock'];

/** The global `fetch`, looked up when a request is sent. */
const fetchTransport = (url, init) => globalThis.fetch(url, init);

/** `Name: message (cause's message)` of what a transport threw. */
function describe(e) {
  if (e instanceof Error) {
    const cause = e.cause instanceof Error && e.cause.message ? ` (${e.cause.message})` : '';
    return `${e.name}: ${e.message}${cause}`;
  }
  return String(e);
}

/** `seat` if it is a Seat, else an `invalid_config` error naming `call`. */
function seatArg(seat, call) {
  if (!(seat instanceof Seat)) {
    throw __invalidConfig(`${call}() takes the Seat that activate(), OfflineRequest.install() or Seat.fromText() gave`);
  }
  return seat;
}

/**
 * Asks the vendor's licensing service (`keyseal serve`) for this device's
 * seat of a license: activate, check in before the lease ends, release; or,
 * with no license, for the product's trial. Only these calls use the
 * network; validation never does.
 */
export class SeatClient {
  #base;
  #transport;
  #clock;

  /**
   * A client of the service at `baseUrl` (`https://licensing.example.com`,
   * without `/v1`). `options.transport` sends the requests: a function with
   * `fetch`'s shape, `(url, { method, headers, body, signal }) =>
   * Promise<{ status, text() }>`, resolving to every HTTP answer (error
   * statuses included) and rejecting when there is none; default: the global
   * `fetch`. `options.clock` (milliseconds or a Date, like `Date.now`) times
   * the check-in and release proofs.
   */
  constructor(baseUrl, options = {}) {
    if (typeof baseUrl !== 'string') {
      throw __invalidConfig('new SeatClient() takes the licensing service URL as a string');
    }
    if (options === null || typeof options !== 'object') {
      throw __invalidConfig('new SeatClient() takes an options object { transport, clock } after the URL');
    }
    for (const name of Object.keys(options)) {
      if (!OPTIONS.includes(name)) throw __invalidConfig(`unknown option \`${name}\``);
    }
    const { transport = fetchTransport, clock = Date.now } = options;
    if (typeof transport !== 'function') {
      throw __invalidConfig('`transport` must be a function (url, init) => Promise<Response>, like fetch');
    }
    if (transport === fetchTransport && typeof globalThis.fetch !== 'function') {
      throw __invalidConfig('this runtime has no fetch: give a `transport`');
    }
    if (typeof clock !== 'function') {
      throw __invalidConfig('`clock` must be a function returning milliseconds');
    }
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#transport = transport;
    this.#clock = clock;
  }

  /** The service's base URL, without a trailing slash. */
  get baseUrl() {
    return this.#base;
  }

  /**
   * Takes a seat of the license for this device (its `ksfp1.` fingerprint),
   * with a key pair made here for this installation: the Seat. The same
   * device asking again gets its seat back.
   */
  async activate(licenseKey, fingerprint) {
    const activation = new __Activation(licenseKey, fingerprint);
    let answer;
    try {
      const [path, body] = activation.request();
      answer = await this.#post(path, body);
    } catch (e) {
      activation.free();
      throw e;
    }
    return activation.finish(answer.status, answer.text);
  }

  /**
   * Asks for the trial of `product` for this device (its `ksfp1.`
   * fingerprint), from the organisation `orgId` (public: the id in its
   * keyring URL): a plain object `{ licenseKey, licenseId, plan,
   * entitlements, startedAt, expiresAt }`, the same trial again while it
   * runs. A device that had its trial is refused (`trial_used`).
   */
  async startTrial(orgId, product, fingerprint) {
    const trial = new __TrialRequest(orgId, product, fingerprint);
    let answer;
    try {
      const [path, body] = trial.request();
      answer = await this.#post(path, body);
    } catch (e) {
      trial.free();
      throw e;
    }
    return trial.finish(answer.status, answer.text);
  }

  /** Renews the seat's lease; `seat` then holds the new one (save it again). */
  async checkIn(licenseKey, fingerprint, seat) {
    seatArg(seat, 'checkIn');
    const [path, body] = __checkInRequest(seat, licenseKey, fingerprint, this.#now());
    const answer = await this.#post(path, body);
    __finishCheckIn(seat, answer.status, answer.text);
  }

  /** Frees the seat for another device; then delete the saved seat. */
  async release(licenseKey, seat) {
    seatArg(seat, 'release');
    const [path, body] = __releaseRequest(seat, licenseKey, this.#now());
    const answer = await this.#post(path, body);
    __finishRelease(seat, answer.status, answer.text);
  }

  /** Milliseconds since 1970, by the client's clock. */
  #now() {
    const t = this.#clock();
    if (t instanceof Date) return t.getTime();
    if (typeof t === 'number') return t;
    throw __invalidConfig('`clock` must return milliseconds (a number) or a Date');
  }

  /** POSTs `body` to the service: `{ status, text }`, or a thrown `unreachable` SeatError. */
  async #post(path, body) {
    const init = {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body,
    };
    if (typeof AbortSignal !== 'undefined' && typeof AbortSignal.timeout === 'function') {
      init.signal = AbortSignal.timeout(TIMEOUT_MS);
    }
    let response;
    try {
      response = await this.#transport(this.#base + path, init);
    } catch (e) {
      throw __seatUnreachable(describe(e), e);
    }
    const status = response?.status;
    if (!Number.isInteger(status) || status < 0 || status > 65535 || typeof response.text !== 'function') {
      throw __invalidConfig('the transport must resolve to a Response, or an object { status, text() }');
    }
    let text;
    try {
      text = await response.text();
    } catch (e) {
      throw __seatUnreachable(describe(e), e);
    }
    if (typeof text !== 'string') {
      throw __invalidConfig("the transport's answer must have text() resolving to a string");
    }
    if (text.length > MAX_ANSWER) {
      throw __seatUnreachable(`the licensing service's answer is over ${MAX_ANSWER} bytes`, undefined);
    }
    return { status, text };
  }
}

export {
  KeysealError,
  OfflineRequest,
  Seat,
  Validator,
  WebhookError,
  deviceFingerprint,
  localStorageState,
  verifyEd25519Strict,
};
