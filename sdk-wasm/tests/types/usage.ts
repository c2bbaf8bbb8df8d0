// A web app's use of the package, type-checked with `tsc --noEmit` against
// the installed package's declarations (never run).
import {
  CODES,
  KeysealError,
  Validator,
  deviceFingerprint,
  localStorageState,
  verifyEd25519Strict,
  verifyWebhook,
  WebhookError,
  type WebhookErrorCode,
  type KeysealCode,
  type Lease,
  type LeaseFault,
  type License,
  type RevocationListInfo,
  type StateStore,
  type ValidatorOptions,
} from 'keyseal';
import { fileState } from 'keyseal/node';
import {
  OfflineRequest,
  Seat,
  SeatClient,
  SeatError,
  Validator as SeatsValidator,
  type SeatErrorCode,
  type Trial,
  type Transport,
  type TransportAnswer,
  type TransportRequest,
} from 'keyseal/seats';

const KEYRING = 'key kspub1.kxKnSbdByxwctUQwckwpVwVJ8l88fRnMui68OX4UOB8 from=1794000000\n';

const options: ValidatorOptions = {
  keyring: KEYRING,
  product: 'acme-cad',
  appVersion: '5.2.0',
  state: localStorageState('acme-cad.keyseal'),
  staleness: { refuseAfterDays: 7 },
};
const validator = new Validator(options);

export function unlock(key: string): string {
  try {
    const license: License = validator.validate(key);
    const pdf: boolean = license.entitlements.includes('export-pdf');
    const expires: Date | null = license.expiresAt === null ? null : new Date(license.expiresAt * 1000);
    const grace: number | null = license.status === 'in_grace' ? license.graceEnds : null;
    for (const w of license.warnings) console.warn(w.code satisfies KeysealCode, w.customerMessage);
    if (license.device?.kind === 'tolerant') console.log(license.device.required, 'of', license.device.components);
    return `${license.customer} ${license.plan} ${pdf} ${expires?.toISOString()} ${grace}`;
  } catch (e) {
    if (e instanceof KeysealError) {
      const code: KeysealCode = e.code;
      if (code === 'expired' || code === 'clock_suspect') return e.customerMessage;
      return `${e.message} (${e.warnings.length} warnings)`;
    }
    throw e;
  }
}

// A seat held with a lease the vendor's service signed for this device.
export function unlockSeat(key: string, leaseText: string): string {
  try {
    const license: License = bound.validateWithLease(key, leaseText);
    const lease: Lease | null = license.lease;
    if (lease === null) return 'advisory: see warnings';
    const ends: Date = new Date(lease.expiresAt * 1000);
    const due: boolean = lease.checkInDue;
    return `${lease.seatId} ${lease.keyId} ${lease.issuedAt} ${lease.renewAt} ${ends.toISOString()} ${due}`;
  } catch (e) {
    if (e instanceof KeysealError && e.code === 'lease_invalid') {
      const fault: LeaseFault | null = e.fault;
      return fault === 'wrong_device' ? 'activate this device again' : `${fault}`;
    }
    if (e instanceof KeysealError && e.code === 'lease_expired') return 'check in';
    throw e;
  }
}

export async function refreshRevocations(): Promise<RevocationListInfo> {
  const response = await fetch('/revocations.bin');
  return validator.loadRevocationList(new Uint8Array(await response.arrayBuffer()));
}

// Clocks and stores the app brings.
const fixed = new Validator({ keyring: KEYRING, product: 'acme-cad', clock: () => Date.UTC(2027, 0, 15) });
const oneShot = new Validator({ keyring: KEYRING, product: 'acme-cad', precompute: false });
const dated = new Validator({ keyring: KEYRING, product: 'acme-cad', clock: () => new Date(), mode: 'advisory' });
let saved: string | null = null;
const custom: StateStore = { get: () => saved, set: (text) => { saved = text; } };
const onDisk = new Validator({ keyring: KEYRING, product: 'acme-cad', state: fileState('/var/lib/acme/acme-cad.state') });
const device = deviceFingerprint('acme-cad', [{ kind: 'install-id', id: 'c0ffee' }]);
const bound = new Validator({ keyring: KEYRING, product: 'acme-cad', device, state: custom, leeway: 300, clockTolerance: 7200, onClockSuspect: 'refuse', onCorruptState: 'warn' });
const ok: boolean = verifyEd25519Strict(new Uint8Array(32), new Uint8Array(0), new Uint8Array(64))
  && verifyEd25519Strict(new Uint8Array(32), new Uint8Array(0), new Uint8Array(64), { precompute: false });
const codes: readonly KeysealCode[] = CODES;
console.log(fixed.product, dated.revocationList?.sequence, onDisk, bound, oneShot, ok, codes);
bound.saveState();
bound.resetClockMark();
bound.free();

// Mistakes the types catch.
// @ts-expect-error product is required
new Validator({ keyring: KEYRING });
// @ts-expect-error mode is enforce or advisory
new Validator({ keyring: KEYRING, product: 'acme-cad', mode: 'strict' });
// @ts-expect-error the clock is a function
new Validator({ keyring: KEYRING, product: 'acme-cad', clock: 1_800_000_000_000 });
// @ts-expect-error verifyEd25519Strict's options are an object
verifyEd25519Strict(new Uint8Array(32), new Uint8Array(0), new Uint8Array(64), false);
// @ts-expect-error precompute is a boolean
new Validator({ keyring: KEYRING, product: 'acme-cad', precompute: 'yes' });
// @ts-expect-error a store needs set()
new Validator({ keyring: KEYRING, product: 'acme-cad', state: { get: () => null } });
// @ts-expect-error validate takes text
validator.validate(new Uint8Array(4));
// @ts-expect-error claims are read-only
validator.validate('ks1.x').plan = 'enterprise';
// @ts-expect-error not a code
const nope: KeysealCode = 'oops';
console.log(nope);
// @ts-expect-error not a lease fault
const notAFault: LeaseFault = 'expired';
console.log(notAFault);
// @ts-expect-error validateWithLease needs the lease
validator.validateWithLease('ks1.x');
// @ts-expect-error the lease is read-only
validator.validate('ks1.x').lease = null;
// @ts-expect-error a lease's times are read-only
validator.validateWithLease('ks1.x', 'kslease1.x').lease!.expiresAt = 0;

// Seats (`keyseal/seats`: the same API plus seats, from one .wasm).
const seats = new SeatClient('https://licensing.example.com');
const viaFetch = new SeatClient('https://licensing.example.com', { transport: fetch, clock: () => new Date() });
const own: Transport = async (url: string, request: TransportRequest): Promise<TransportAnswer> => {
  const body: string = request.body;
  return { status: url.length + body.length, text: async () => '{}' };
};
const seatValidator = new SeatsValidator({ keyring: KEYRING, product: 'acme-cad', device });

export async function holdSeat(key: string, saved: string | null): Promise<string> {
  try {
    const seat: Seat = saved ? Seat.fromText(saved) : await seats.activate(key, device);
    const license: License = seatValidator.validateWithLease(key, seat.lease);
    if (license.lease?.checkInDue) await viaFetch.checkIn(key, device, seat);
    const renew: number = seat.renewAt;
    const ends: number = seat.expiresAt;
    console.log(seat.seatId, renew, ends);
    return seat.toText();
  } catch (e) {
    if (e instanceof SeatError) {
      const code: SeatErrorCode = e.code;
      const status: number | null = e.status;
      if (e.isTransient) return `later: ${code} ${status}`;
      return e.customerMessage;
    }
    if (e instanceof KeysealError) return e.customerMessage;
    throw e;
  }
}

export async function tryOut(orgId: string): Promise<string> {
  try {
    const trial: Trial = await seats.startTrial(orgId, 'acme-cad', device);
    const license: License = seatValidator.validate(trial.licenseKey);
    const ends: number = trial.expiresAt - trial.startedAt;
    const features: readonly string[] = trial.entitlements;
    console.log(trial.licenseId, trial.plan, ends, features, license.expiresAt);
    return trial.licenseKey;
  } catch (e) {
    if (e instanceof SeatError && (e.code === 'trial_used' || e.code === 'trials_disabled')) return e.customerMessage;
    throw e;
  }
}

export async function releaseSeat(key: string, text: string): Promise<void> {
  const seat = Seat.fromText(text);
  await new SeatClient('https://licensing.example.com', { transport: own }).release(key, seat);
  seat.free();
}

export function airGapped(key: string, saved: string | null, response: string | null): string {
  const request = saved ? OfflineRequest.fromText(saved) : new OfflineRequest(key, device);
  if (response === null) return `${request.code}\n${request.toText()}`;
  const seat: Seat = request.install(response);
  request.free();
  return seat.toText();
}

// Mistakes the types catch.
// @ts-expect-error a seat comes from activate, install or fromText
new Seat();
// @ts-expect-error checkIn needs the fingerprint
seats.checkIn('ks1.x', Seat.fromText(''));
// @ts-expect-error the transport resolves to an answer with text()
new SeatClient('https://x', { transport: async () => ({ status: 200 }) });
// @ts-expect-error not an option
new SeatClient('https://x', { timeout: 5 });
// @ts-expect-error not a seat error code
const notASeatCode: SeatErrorCode = 'lease_expired';
console.log(notASeatCode);
// @ts-expect-error startTrial needs the product
seats.startTrial('org_1', device);
declare const aTrial: Trial;
// @ts-expect-error a trial's key is read-only
aTrial.licenseKey = 'ks1.x';
// @ts-expect-error the seat's lease is read-only
Seat.fromText('').lease = 'kslease1.x';

// A backend checking a webhook with the public keyring.
declare const webhookHeaders: Record<string, string | undefined>;
declare const rawBody: Uint8Array;
try {
  const signedBy: string = verifyWebhook(
    'key kspub1.x',
    webhookHeaders['webhook-id'],
    webhookHeaders['webhook-timestamp'],
    webhookHeaders['keyseal-signature'],
    rawBody,
    { now: new Date() },
  );
  console.log(signedBy);
} catch (e) {
  if (e instanceof WebhookError) {
    const why: WebhookErrorCode = e.code;
    const key: string | null = e.keyId;
    console.log(why, key);
  }
}
// Headers as fetch-style servers give them (Headers.get: string | null).
declare const fetchHeaders: Headers;
verifyWebhook(
  'key kspub1.x',
  fetchHeaders.get('webhook-id'),
  fetchHeaders.get('webhook-timestamp'),
  fetchHeaders.get('keyseal-signature'),
  'body',
);
// @ts-expect-error not a webhook error code
const notAWebhookCode: WebhookErrorCode = 'expired';
console.log(notAWebhookCode);
// @ts-expect-error now is a Date or milliseconds
verifyWebhook('', '', '', '', rawBody, { now: '2027-01-01' });
