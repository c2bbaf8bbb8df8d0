// The demo page: a keyring and a key in, the verdict and the claims out.
// All checking is the package's; this file only reads the form and shows
// the result.
import { KeysealError, Validator } from 'keyseal';

const $ = (id) => document.getElementById(id);

function date(secs) {
  return secs === null ? '—' : `${new Date(secs * 1000).toISOString().replace('.000Z', 'Z')} (${secs})`;
}

function showClaims(l) {
  const rows = [
    ['License id', l.licenseId],
    ['Product', l.product],
    ['Customer', l.customer],
    ['Plan', l.plan],
    ['Status', l.status === 'in_grace' ? `in grace until ${date(l.graceEnds)}` : l.status],
    ['Issued', date(l.issuedAt)],
    ['Not before', date(l.notBefore)],
    ['Expires', l.expiresAt === null ? 'never' : date(l.expiresAt)],
    ['Entitlements', l.entitlements.join(', ') || '—'],
    ['Max version', l.maxVersion ?? 'any'],
    ['Extensions', Object.entries(l.extensions).map(([k, v]) => `${k}=${v}`).join(', ') || '—'],
    ['Device binding', l.device === null ? 'none' : l.device.kind === 'exact' ? 'exact' : `${l.device.required} of ${l.device.components}`],
    ['Signing key', l.keyId],
  ];
  if (l.lease !== null) {
    rows.push(
      ['Seat', l.lease.seatId],
      ['Lease signed', date(l.lease.issuedAt)],
      ['Check in by', `${date(l.lease.renewAt)}${l.lease.checkInDue ? ': due now' : ''}`],
      ['Lease ends', date(l.lease.expiresAt)],
    );
  }
  const body = $('claims').tBodies[0];
  body.replaceChildren(
    ...rows.map(([name, value]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      const td = document.createElement('td');
      th.textContent = name;
      td.textContent = value;
      tr.dataset.field = name.toLowerCase().replace(/ /g, '-');
      tr.append(th, td);
      return tr;
    }),
  );
  $('claims').hidden = false;
}

function showWarnings(warnings) {
  $('warnings').replaceChildren(
    ...warnings.map((w) => {
      const li = document.createElement('li');
      li.textContent = `${w.customerMessage} (${w.code})`;
      return li;
    }),
  );
}

function check(event) {
  event.preventDefault();
  const asOf = $('as-of').value;
  const options = {
    keyring: $('keyring').value,
    product: $('product').value.trim(),
    appVersion: $('app-version').value.trim() || undefined,
    device: $('device').value.trim() || undefined,
  };
  if (asOf) options.clock = () => Date.parse(`${asOf}Z`);
  const verdict = $('verdict');
  $('result').hidden = false;
  $('claims').hidden = true;
  try {
    const validator = new Validator(options);
    const lease = $('lease').value.trim();
    let license;
    try {
      license = lease ? validator.validateWithLease($('key').value, lease) : validator.validate($('key').value);
    } finally {
      validator.free();
    }
    verdict.className = 'valid';
    verdict.textContent = `Valid: ${license.plan} license for ${license.customer}`;
    const state = license.status === 'in_grace' ? 'The license has expired and is in its grace period.' : 'The license is genuine and in force.';
    const seat = license.lease === null ? '' : license.lease.checkInDue ? ' This device holds a seat; it should check in now.' : ' This device holds a seat.';
    $('message').textContent = state + seat;
    $('detail').textContent = '';
    showClaims(license);
    showWarnings(license.warnings);
  } catch (e) {
    if (!(e instanceof KeysealError)) throw e;
    verdict.className = 'refused';
    verdict.textContent = `Refused: ${e.code}`;
    $('message').textContent = e.customerMessage;
    $('detail').textContent = e.message;
    showWarnings(e.warnings);
  }
}

$('form').addEventListener('submit', check);
$('check').disabled = false;
$('loading').hidden = true;
