import type { TranslationBundle } from '@jupyterlab/translation';

import { IAsk, ICluster, IConnection } from './tokens';

/** The state word a row shows. */
export function stateWord(state: string): string {
  switch (state) {
    case 'idle':
      return 'Not connected';
    case 'starting':
      return 'Starting…';
    case 'prompting':
      return 'Waiting for you';
    case 'verifying':
      return 'Checking…';
    case 'connected':
      return 'Connected';
    case 'failed':
      return 'Failed';
    case 'disconnected':
      return 'Disconnected';
    case 'unresponsive':
      return 'Not responding';
    default:
      return state;
  }
}

/** A failure in words: what went wrong, then ssh's own detail. */
export function failureWords(
  connection: IConnection,
  cluster?: ICluster
): string {
  const host = cluster?.hostname ?? connection.host ?? connection.cluster;
  const lead: Record<string, string> = {
    auth_failed: 'Login refused: the code or password was not accepted',
    hostkey_changed: `Host key changed for ${host}: not connecting`,
    hostkey_rejected: 'Host key rejected',
    unreachable: `Cannot reach ${host}`,
    timeout: 'Nobody answered in time',
    cancelled: 'Cancelled',
    ssh_missing: 'The OpenSSH client (ssh) is not installed where Jupyter runs',
    unsafe_socket: 'Refusing to use the control socket',
    error: 'ssh failed'
  };
  const first = lead[connection.reason ?? 'error'] ?? 'Failed';
  // The server's message repeats what and where ("Cannot reach h: ..."): keep ssh's part.
  const detail = (connection.message ?? '')
    .trim()
    .replace(
      /^(Login refused by|Cannot reach|Host key changed for) [^:]+: /,
      ''
    );
  if (!detail || detail === first) {
    return first;
  }
  return `${first}. ${detail}`;
}

/** "3 min", "2 h 5 min": how long a master has been up. */
export function duration(
  sinceIso: string | null,
  now: number = Date.now()
): string {
  if (!sinceIso) {
    return '';
  }
  const seconds = Math.max(0, Math.round((now - Date.parse(sinceIso)) / 1000));
  if (seconds < 60) {
    return 'less than a minute';
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes % 60} min`;
}

/** ControlPersist in words: "3600s" → "1 h", "yes" → "until stopped". */
export function persistWords(persist: string | null | undefined): string {
  if (!persist) {
    return '';
  }
  if (persist === 'yes') {
    return 'until stopped';
  }
  const seconds = parseInt(persist, 10);
  if (Number.isNaN(seconds)) {
    return persist;
  }
  if (seconds % 3600 === 0) {
    return `${seconds / 3600} h`;
  }
  if (seconds % 60 === 0) {
    return `${seconds / 60} min`;
  }
  return `${seconds} s`;
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
  if (!host) {
    return null;
  }
  const twice = /^(\S+) \((\S+)\)$/.exec(host);
  return twice && twice[1] === twice[2] ? twice[1] : host;
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
