import type { TranslationBundle } from '@jupyterlab/translation';

import {
  ConnectionState,
  FailureReason,
  ICertificate,
  IAsk,
  ICluster,
  IConnection
} from './tokens';

/** The state word a row shows. */
export function stateWord(
  state: ConnectionState,
  trans: TranslationBundle
): string {
  switch (state) {
    case 'idle':
      return trans.__('Not connected');
    case 'starting':
      return trans.__('Starting…');
    case 'prompting':
      return trans.__('Waiting for you');
    case 'verifying':
      return trans.__('Checking…');
    case 'connected':
      return trans.__('Connected');
    case 'failed':
      return trans.__('Failed');
    case 'disconnected':
      return trans.__('Disconnected');
    case 'unresponsive':
      return trans.__('Not responding');
    default:
      return state; // a state of a newer server
  }
}

/** Why a connection failed, in words; `host` is where it was going. */
function reasonWords(
  reason: FailureReason,
  host: string,
  trans: TranslationBundle
): string {
  switch (reason) {
    case 'auth_failed':
      return trans.__('Login refused: the code or password was not accepted');
    case 'hostkey_changed':
      return trans.__('Host key changed for %1: not connecting', host);
    case 'hostkey_rejected':
      return trans.__('Host key rejected');
    case 'unreachable':
      return trans.__('Cannot reach %1', host);
    case 'timeout':
      return trans.__('Nobody answered in time');
    case 'cancelled':
      return trans.__('Cancelled');
    case 'ssh_missing':
      return trans.__(
        'The OpenSSH client (ssh) is not installed where Jupyter runs'
      );
    case 'unsafe_socket':
      return trans.__('Refusing to use the control socket');
    case 'error':
      return trans.__('ssh failed');
    default:
      return trans.__('Failed'); // a reason of a newer server
  }
}

/** A failure in words: what went wrong, then ssh's own detail. */
export function failureWords(
  connection: IConnection,
  trans: TranslationBundle,
  cluster?: ICluster
): string {
  const host = cluster?.hostname ?? (connection.host || connection.cluster);
  const first = reasonWords(connection.reason ?? 'error', host, trans);
  // The server's message repeats what and where ("Cannot reach h: ..."): keep ssh's part.
  const detail = (connection.message || '')
    .trim()
    .replace(
      /^(Login refused by|Cannot reach|Host key changed for) [^:]+: /,
      ''
    );
  if (!detail || detail === first) {
    return first;
  }
  return trans.__('%1. %2', first, detail);
}

/** "3 min", "2 h 5 min": how long a master has been up. */
export function duration(
  sinceIso: string | null,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  if (!sinceIso) {
    return '';
  }
  const seconds = Math.max(0, Math.round((now - Date.parse(sinceIso)) / 1000));
  if (seconds < 60) {
    return trans.__('less than a minute');
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return trans.__('%1 min', minutes);
  }
  const hours = Math.floor(minutes / 60);
  return trans.__('%1 h %2 min', hours, minutes % 60);
}

/** ControlPersist in words: "3600s" → "1 h", "yes" → "until stopped". */
export function persistWords(
  persist: string | null | undefined,
  trans: TranslationBundle
): string {
  if (!persist) {
    return '';
  }
  if (persist === 'yes') {
    return trans.__('until stopped');
  }
  const seconds = parseInt(persist, 10);
  if (Number.isNaN(seconds)) {
    return persist;
  }
  if (seconds % 3600 === 0) {
    return trans.__('%1 h', seconds / 3600);
  }
  if (seconds % 60 === 0) {
    return trans.__('%1 min', seconds / 60);
  }
  return trans.__('%1 s', seconds);
}

const SHELL_SAFE = /^[\w@%+=:,./~-]+$/;

/** An argv as a shell would show it: `ssh -o 'ProxyCommand=nc %h 22' saga squeue`. */
export function commandLine(argv: string[]): string {
  return argv
    .map(arg =>
      SHELL_SAFE.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
    )
    .join(' ');
}

/** The host an ask is for, once: ssh names a host key's host as "[h]:p ([h]:p)". */
export function askHost(ask: IAsk): string | null {
  const host = ask.host?.trim();
  return host ? once(host) : null;
}

/** OpenSSH's "(user@host) " in front of a keyboard-interactive question. */
const ASKED_FOR = /^\(([^()\s]+@[^()\s]+)\) /;

/** The host of OpenSSH's host-key question: "The authenticity of host 'h (a)' …". */
const HOSTKEY_HOST = /authenticity of host '([^']+)'/;

/**
 * Which host a question is for, the same way from either source: the server's word when it
 * gave one (a connection's `prompt.host`), else ssh's own text: the host a host key is for,
 * or the last "(user@host)" prefix (through a bastion, the jump host asks first).
 */
export function questionHost(prompt: {
  kind: string;
  text: string;
  host?: string | null;
}): string | null {
  if (prompt.host) {
    return prompt.host;
  }
  if (prompt.kind === 'hostkey') {
    const match = HOSTKEY_HOST.exec(prompt.text);
    return match ? once(match[1]) : null;
  }
  let last: string | null = null;
  for (const line of prompt.text.split('\n')) {
    const match = ASKED_FOR.exec(line);
    last = match ? match[1] : last;
  }
  return last;
}

/** ssh names a host key's host as "[h]:p ([h]:p)": the same name twice is said once. */
function once(host: string): string {
  const twice = /^(\S+) \((\S+)\)$/.exec(host.trim());
  return twice && twice[1] === twice[2] ? twice[1] : host.trim();
}

/** How a host-key question is answered: the same two buttons wherever it is asked. */
export interface IHostKeyAnswer {
  /** What ssh is sent. */
  response: 'yes' | 'no';
  /** The button's `data-action`. */
  action: 'trust' | 'reject';
  label: string;
  caption: string;
}

/** Trust and Reject, in that order (a dialog's footer puts the accepting one last). */
export function hostKeyAnswers(trans: TranslationBundle): IHostKeyAnswer[] {
  return [
    {
      response: 'yes',
      action: 'trust',
      label: trans.__('Trust'),
      caption: trans.__('Trust this host key and connect')
    },
    {
      response: 'no',
      action: 'reject',
      label: trans.__('Reject'),
      caption: trans.__('Do not trust this host key: ssh stops')
    }
  ];
}

/** The dialog's title for an ask. */
export function askTitle(ask: IAsk, trans: TranslationBundle): string {
  const host = askHost(ask);
  if (ask.prompt.kind === 'hostkey') {
    return host
      ? trans.__('Unknown host key for %1', host)
      : trans.__('Unknown host key');
  }
  return host ? trans.__('ssh to %1 asks', host) : trans.__('ssh asks');
}

/** When an ask was asked, as the server's other times are said (ISO 8601). */
export function askedAt(ask: IAsk): string {
  return new Date(ask.since * 1000).toISOString();
}

/** Where an ask comes from: "from Analysis.ipynb", a kernel, or a process. */
export function originWords(ask: IAsk, trans: TranslationBundle): string {
  const { origin } = ask;
  if (origin.notebook) {
    return trans.__('from %1', origin.notebook);
  }
  if (origin.kernel_id) {
    return trans.__('from kernel %1', origin.kernel_id.slice(0, 8));
  }
  return trans.__('from process %1', origin.pid);
}

/** Whole seconds from `sinceIso` to `now` (never below 0); null without a time. */
export function secondsSince(
  sinceIso: string | null | undefined,
  now: number = Date.now()
): number | null {
  const since = sinceIso ? Date.parse(sinceIso) : NaN;
  if (Number.isNaN(since)) {
    return null;
  }
  return Math.max(0, Math.floor((now - since) / 1000));
}

/**
 * Whole seconds from `now` until `untilIso` (never below 0); null without a time. The
 * time is the server's clock: `fromIso` (when the wait began, same clock) caps the result
 * at the whole wait, so a browser clock that is behind never shows more than that.
 */
export function secondsUntil(
  untilIso: string | null | undefined,
  now: number = Date.now(),
  fromIso?: string | null
): number | null {
  const until = untilIso ? Date.parse(untilIso) : NaN;
  if (Number.isNaN(until)) {
    return null;
  }
  let left = Math.max(0, Math.ceil((until - now) / 1000));
  const from = fromIso ? Date.parse(fromIso) : NaN;
  if (!Number.isNaN(from) && until >= from) {
    left = Math.min(left, Math.ceil((until - from) / 1000));
  }
  return left;
}

/** "7 s", "1 min 5 s", "1 h 2 min": a short wait, to the second. */
export function secondsWords(
  seconds: number,
  trans: TranslationBundle
): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return trans.__('%1 s', s);
  }
  if (s < 3600) {
    return s % 60 === 0
      ? trans.__('%1 min', s / 60)
      : trans.__('%1 min %2 s', Math.floor(s / 60), s % 60);
  }
  return trans.__('%1 h %2 min', Math.floor(s / 3600), Math.floor(s / 60) % 60);
}

/** Whether a Duo option sends a push to the phone ("Duo Push to XXX-XXX-1234"). */
export function isPush(choice: string | null | undefined): boolean {
  return !!choice && /\bpush\b/i.test(choice);
}

/** Whether a Duo option calls the phone ("Phone call to XXX-XXX-1234"). */
function isCall(choice: string): boolean {
  return /\bcall\b/i.test(choice);
}

/**
 * What the person waits for while a login is under way and nobody is asked: "Connecting
 * to saga.sigma2.no…" while ssh starts; while ssh works on an answer, "Approve the
 * request on your phone" after a Duo push, else "Checking…".
 */
export function progressWords(
  connection: IConnection,
  trans: TranslationBundle
): string {
  if (connection.certificate?.device) {
    return trans.__('Waiting for you to approve in the browser…');
  }
  if (connection.state === 'starting') {
    const host = connection.host || connection.cluster;
    return trans.__('Connecting to %1…', host);
  }
  const choice = connection.verifying?.choice ?? null;
  if (choice && isPush(choice)) {
    return trans.__('Approve the request on your phone');
  }
  if (choice && isCall(choice)) {
    return trans.__('Answer the call on your phone');
  }
  if (choice) {
    return trans.__('Waiting for “%1”…', choice);
  }
  return trans.__('Checking…');
}

/** Since when the person waits: the answer's time while verifying, else the state's. */
export function progressSince(connection: IConnection): string | null {
  if (connection.state === 'verifying' && connection.verifying?.since) {
    return connection.verifying.since;
  }
  return connection.updated;
}

/** "for hopper@bastion": which host a prompt is for (through a bastion, the jump host first). */
export function promptHostWords(
  host: string | null | undefined,
  trans: TranslationBundle
): string {
  return host ? trans.__('for %1', host) : '';
}

/** The notification of a master that went away: "Saga disconnected: <the server's why>". */
export function lostWords(
  connection: IConnection,
  label: string,
  trans: TranslationBundle
): string {
  const why = (connection.message || '').trim();
  if (connection.state === 'failed') {
    return trans.__(
      '%1 disconnected: %2',
      label,
      failureWords(connection, trans)
    );
  }
  return why
    ? trans.__('%1 disconnected: %2', label, why)
    : trans.__('%1 disconnected', label);
}

/**
 * The first line of a menu prompt, its title ("Duo two-factor login for ola"), without
 * OpenSSH's "(user@host) " prefix, which the question's host line shows already.
 */
export function menuTitle(text: string, host?: string | null): string {
  const first =
    text
      .split('\n')
      .map(line => line.trim())
      .find(line => line.length > 0) ?? '';
  if (host && first.startsWith(`(${host}) `)) {
    return first.slice(host.length + 3);
  }
  // An ask's prompt names no host: OpenSSH's prefix goes all the same.
  return first.replace(/^\([^()\s]+@[^()\s]+\) /, '');
}

/**
 * Who made a connection's master, for people: "made by ssh in Analysis.ipynb" (a
 * notebook's own ssh, through the askpass bridge); '' for a login of this server.
 */
export function madeByWords(
  connection: IConnection,
  trans: TranslationBundle
): string {
  const made = connection.made_by;
  if (made?.kind === 'ssh') {
    if (made.notebook) {
      return trans.__('made by ssh in %1', made.notebook);
    }
    return made.kernel_id
      ? trans.__('made by ssh in a kernel')
      : trans.__('made by ssh');
  }
  if (made?.kind === 'found') {
    return trans.__('running before the server started');
  }
  return '';
}

/** The renew window when the server does not say: 10 min. */
export const DEFAULT_RENEW_BEFORE = 600;

/** "23 h 12 min", "5 min", "less than a minute": a certificate's time, to the minute. */
export function minutesWords(
  seconds: number,
  trans: TranslationBundle
): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  if (minutes < 1) {
    return trans.__('less than a minute');
  }
  if (minutes < 60) {
    return trans.__('%1 min', minutes);
  }
  const hours = Math.floor(minutes / 60);
  if (hours >= 48) {
    return trans.__('%1 days', Math.floor(hours / 24));
  }
  return trans.__('%1 h %2 min', hours, minutes % 60);
}

/** Seconds a certificate has left (negative: expired that long ago); null: never expires. */
export function certificateLeft(
  certificate: ICertificate,
  now: number = Date.now()
): number | null {
  if (!certificate.valid_before) {
    return null;
  }
  const until = Date.parse(certificate.valid_before);
  if (Number.isNaN(until)) {
    return null;
  }
  return Math.floor((until - now) / 1000);
}

/**
 * A certificate's validity in words: "certificate valid for 23 h 12 min", "certificate
 * expired 5 min ago", "certificate never expires". `expired` says which.
 */
export function certificateWords(
  certificate: ICertificate,
  trans: TranslationBundle,
  now: number = Date.now()
): { text: string; expired: boolean } {
  const left = certificateLeft(certificate, now);
  if (left === null) {
    return { text: trans.__('certificate never expires'), expired: false };
  }
  if (left > 0) {
    return {
      text: trans.__('certificate valid for %1', minutesWords(left, trans)),
      expired: false
    };
  }
  return {
    text: trans.__('certificate expired %1 ago', minutesWords(-left, trans)),
    expired: true
  };
}

/**
 * A master that still runs on an expired certificate: it goes on (ssh checked the
 * certificate at login), the next login needs the site's sign-in again.
 */
export function expiredMasterWords(
  certificate: ICertificate,
  trans: TranslationBundle
): string {
  return certificate.issuer === 'command'
    ? trans.__(
        'The master still runs; a new login will ask you to sign in with the site again'
      )
    : trans.__(
        'The master still runs; a new login will ask for your password + OTP'
      );
}

/** The words of the device flow: what to do with the link and the code. */
export function deviceWords(trans: TranslationBundle): string {
  return trans.__(
    'Open the link, enter the code, and approve: the login goes on by itself'
  );
}

/**
 * The link of a device flow if it is an http(s) URL, as the browser parses it; null for
 * anything else (javascript:, data:, a relative path, garbage). The server checks too:
 * this is the frontend's own check.
 */
export function safeLink(url: string | null | undefined): string | null {
  if (typeof url !== 'string' || !url.trim()) {
    return null;
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return null;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    return null;
  }
  if (!parsed.hostname) {
    return null;
  }
  return parsed.href;
}

/** The warning before a certificate expires, and what Renew does. */
export function renewWords(
  label: string,
  certificate: ICertificate,
  connected: boolean,
  trans: TranslationBundle,
  now: number = Date.now()
): string {
  const left = certificateLeft(certificate, now) ?? 0;
  const when =
    left > 0
      ? trans.__(
          'The certificate for %1 expires in %2.',
          label,
          minutesWords(left, trans)
        )
      : trans.__('The certificate for %1 has expired.', label);
  return connected
    ? trans.__(
        '%1 The master goes on; the certificate is renewed at the next login (Renew asks before it disconnects).',
        when
      )
    : trans.__('%1 Renew logs in again for a new one.', when);
}

/** The question before Renew ends a live master. */
export function renewConfirmWords(
  label: string,
  trans: TranslationBundle
): { title: string; body: string; ok: string } {
  return {
    title: trans.__('Renew the certificate for %1?', label),
    body: trans.__(
      'A certificate is renewed at login. Renew disconnects %1 (ssh sessions and kernels using it lose their connection), then logs in again.',
      label
    ),
    ok: trans.__('Disconnect and log in')
  };
}

/** Which certificate a warning is about: its key and its end. */
export function certificateId(certificate: ICertificate): string {
  return `${certificate.key}\u0000${certificate.valid_before ?? ''}`;
}

/**
 * Whether to warn about a certificate now: it expires, and less than its renew window
 * (10 min when the server does not say) is left. An expired one is warned about too.
 */
export function shouldWarn(
  certificate: ICertificate,
  now: number = Date.now()
): boolean {
  const left = certificateLeft(certificate, now);
  if (left === null) {
    return false;
  }
  const window =
    typeof certificate.renew_before === 'number' &&
    certificate.renew_before >= 0
      ? certificate.renew_before
      : DEFAULT_RENEW_BEFORE;
  return left < window;
}
