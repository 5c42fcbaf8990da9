/**
 * The person's own cluster settings, as the sidebar's forms see them: a pasted ssh line
 * split into its fields, what a form changes, which field a refusal is about. Pure
 * functions (no DOM), tested with jest.
 */
import { ApiError } from './errors';
import type { ICluster, IMineValues } from './tokens';

/** What a pasted `user@host:port` or ssh command line says. */
export interface ISshLine {
  host: string;
  user?: string;
  port?: number;
}

/** ssh's options that take an argument (`ssh -p 2222`, `-p2222`); the rest are flags. */
const WITH_ARGUMENT = new Set('BbcDEeFIiJLlmOoPpQRSWw'.split(''));
const FLAGS = new Set('46AaCfGgKkMNnqsTtVvXxYy'.split(''));

/** Split a command line as a POSIX shell would (quotes and backslashes; no expansion). */
function words(line: string): string[] | null {
  const out: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quote) {
      if (char === quote) {
        quote = null;
      } else if (char === '\\' && quote === '"' && i + 1 < line.length) {
        word = (word ?? '') + line[++i];
      } else {
        word = (word ?? '') + char;
      }
    } else if (char === "'" || char === '"') {
      quote = char;
      word = word ?? '';
    } else if (char === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[++i];
    } else if (/\s/.test(char)) {
      if (word !== null) {
        out.push(word);
        word = null;
      }
    } else {
      word = (word ?? '') + char;
    }
  }
  if (quote) {
    return null;
  }
  if (word !== null) {
    out.push(word);
  }
  return out;
}

function portOf(text: string): number | undefined | null {
  if (!/^\d{1,5}$/.test(text)) {
    return null;
  }
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/**
 * `[user@]host[:port]`, `[user@][v6::addr]:port`, or `ssh://[user@]host[:port][/]`.
 * Null when it is not one (a space, an empty part, a port that is not 1 to 65535).
 */
function destination(text: string): ISshLine | null {
  let rest = text;
  if (/^ssh:\/\//i.test(rest)) {
    rest = rest.slice('ssh://'.length).replace(/\/$/, '');
  }
  if (rest === '' || /\s/.test(rest)) {
    return null;
  }
  const result: ISshLine = { host: '' };
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const user = rest.slice(0, at);
    if (!user) {
      return null;
    }
    result.user = user;
    rest = rest.slice(at + 1);
  }
  let host = rest;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracket) {
    host = bracket[1];
    port = bracket[2];
  } else if (
    rest.indexOf(':') >= 0 &&
    rest.indexOf(':') === rest.lastIndexOf(':')
  ) {
    [host, port] = rest.split(':');
  }
  if (!host || host.includes('/')) {
    return null;
  }
  result.host = host;
  if (port !== undefined) {
    const number = portOf(port);
    if (!number) {
      return null;
    }
    result.port = number;
  }
  return result;
}

/** An `-o` option that names the port or user (`-o Port=2222`, `-oUser=ola`, `-o "Port 22"`). */
function option(text: string, found: ISshLine): boolean {
  const match = /^\s*(\w+)\s*(?:=|\s)\s*(.*?)\s*$/.exec(text);
  if (!match) {
    return true;
  }
  const [, key, value] = match;
  if (key.toLowerCase() === 'port') {
    const port = portOf(value);
    if (!port) {
      return false;
    }
    found.port = port;
  } else if (key.toLowerCase() === 'user') {
    if (!value) {
      return false;
    }
    found.user = value;
  }
  return true;
}

/**
 * An ssh command line: `ssh -p 2222 ola@host`, `ssh ola@host -p 2222`, `ssh -l ola host`,
 * `ssh -o Port=2222 host`, with any other options (skipped) and a command after the host
 * (ignored). Options after the destination count, as OpenSSH takes them.
 */
function command(argv: string[]): ISshLine | null {
  const options: ISshLine = { host: '' };
  let target: ISshLine | null = null;
  let i = 1;
  const take = (flag: string, value: string | undefined): boolean => {
    if (value === undefined) {
      return false;
    }
    if (flag === 'p') {
      const port = portOf(value);
      if (!port) {
        return false;
      }
      options.port = port;
    } else if (flag === 'l') {
      if (!value) {
        return false;
      }
      options.user = value;
    } else if (flag === 'o') {
      return option(value, options);
    }
    return true;
  };
  while (i < argv.length) {
    const arg = argv[i++];
    if (arg === '--') {
      if (!target && i < argv.length) {
        target = destination(argv[i++]);
        if (!target) {
          return null;
        }
      }
      break;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const flag = arg[j];
        if (WITH_ARGUMENT.has(flag)) {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[i++];
          if (!take(flag, value)) {
            return null;
          }
          break;
        }
        if (!FLAGS.has(flag)) {
          return null; // not an ssh option: not an ssh line
        }
      }
      continue;
    }
    if (target) {
      break; // the remote command
    }
    target = destination(arg);
    if (!target) {
      return null;
    }
  }
  if (!target) {
    return null;
  }
  // An option wins over the destination's `user@`, as in ssh (its -l and -p do).
  const user = options.user ?? target.user;
  const port = options.port ?? target.port;
  return {
    host: target.host,
    ...(user !== undefined ? { user } : {}),
    ...(port !== undefined ? { port } : {})
  };
}

/**
 * What a line pasted in the host field says: `user@host`, `user@host:port`, `host:port`,
 * `[::1]:2222`, `ssh://user@host:port`, or an ssh command line (`ssh -p 2222 user@host`,
 * `ssh user@host -p 2222`, `ssh -l user host`, a `$ ` prompt before it). Null when it is
 * none of those (then the field keeps what was typed, and the server says what is wrong).
 */
export function parseSshLine(text: string): ISshLine | null {
  const line = text.trim().replace(/^\$\s+/, '');
  if (!line) {
    return null;
  }
  const argv = words(line);
  if (!argv || argv.length === 0) {
    return null;
  }
  if (argv[0] === 'ssh' || argv[0].endsWith('/ssh')) {
    return command(argv);
  }
  return argv.length === 1 ? destination(argv[0]) : null;
}

/**
 * Whether a field's text is more than a host name (a user, a port, a command line), so the
 * form splits it into its fields.
 */
export function splits(text: string): ISshLine | null {
  const parsed = parseSshLine(text);
  if (!parsed) {
    return null;
  }
  return parsed.host !== text.trim() ||
    parsed.user !== undefined ||
    parsed.port !== undefined
    ? parsed
    : null;
}

/** Words of a host name that say nothing of the cluster (`login.saga...`). */
const GENERIC = /^(login|ssh|gw|gateway|bastion|head|frontend)?\d*$/i;

/**
 * A name for a new cluster from its host: `saga` for `saga.sigma2.no`, `lab` for
 * `login.lab.example.org`; none for an IP address.
 */
export function suggestName(host: string): string {
  const text = host.trim().toLowerCase();
  if (!text || /^[\d.]+$/.test(text) || text.includes(':')) {
    return '';
  }
  const labels = text.split('.').filter(Boolean);
  const chosen = labels.find(label => !GENERIC.test(label)) ?? '';
  return /^[a-z0-9][a-z0-9_-]*$/.test(chosen) ? chosen : '';
}

/** The fields of the forms, as the server's messages name them. */
export type FormField = 'name' | 'host' | 'user' | 'port' | 'persist' | 'label';

/**
 * Which field a refusal of the server (422) is about, from its message: the checks start
 * with the setting's name (`user must not contain whitespace…`, `your settings for saga:
 * port must be a number…`, `a cluster of your own needs a host`). Null for the form.
 */
export function errorField(message: string): FormField | null {
  const text = message.replace(/^your settings for [^:]*:\s*/i, '');
  const match =
    /^(cluster name|host|user|port|persist|label)\b/i.exec(text) ??
    /\b(needs a host|the host of)\b/i.exec(text);
  if (!match) {
    return null;
  }
  const word = match[1].toLowerCase();
  if (word === 'cluster name') {
    return 'name';
  }
  if (word.includes('host')) {
    return 'host';
  }
  return word as FormField;
}

/** Where a form shows what went wrong: beside a field, or for the whole form. */
export type FormErrors = Partial<Record<FormField | 'form', string>>;

/**
 * Where a refused change is said, in the server's own words: a 422 beside the field it
 * names, a taken name (409 `cluster_exists`) beside the name, anything else for the form.
 */
export function refusal(error: unknown): FormErrors {
  const message =
    error instanceof Error ? error.message : String(error ?? 'error');
  if (error instanceof ApiError) {
    if (error.reason === 'cluster_exists') {
      return { name: message };
    }
    if (error.status === 422) {
      const field = errorField(message);
      if (field) {
        return { [field]: message };
      }
    }
  }
  return { form: message };
}

/** A ControlPersist value in a person's words: `1h` for `3600s`, `yes` as it is. */
export function compactPersist(persist: string | null | undefined): string {
  if (!persist) {
    return '';
  }
  const match = /^(\d+)s?$/.exec(persist.trim());
  if (!match) {
    return persist;
  }
  let seconds = Number(match[1]);
  if (seconds === 0) {
    return 'yes';
  }
  let text = '';
  for (const [unit, size] of [
    ['h', 3600],
    ['m', 60]
  ] as const) {
    if (seconds >= size) {
      text += `${Math.floor(seconds / size)}${unit}`;
      seconds %= size;
    }
  }
  return seconds > 0 || !text ? `${text}${seconds}s` : text;
}

/** What the edit form of a cluster holds, as typed. */
export interface IMineForm {
  user: string;
  port: string;
  persist: string;
  label: string;
}

/** The form as it opens: the values in use now (the person's, else the site's). */
export function formOf(cluster: ICluster): IMineForm {
  return {
    user: cluster.user ?? '',
    port: cluster.port ? String(cluster.port) : '',
    persist: compactPersist(cluster.persist),
    label: cluster.label || cluster.name
  };
}

/** Whether the person set `field` for the cluster themselves. */
export function isMine(cluster: ICluster, field: string): boolean {
  return (cluster.mine ?? []).includes(field);
}

/**
 * What saving the form sends (`PATCH`): each field changed, as typed (the server checks
 * it); a field emptied that was the person's is forgotten (`null`: the site's again); one
 * left as it opened is not sent. Empty when nothing changed.
 */
export function mineChanges(
  cluster: ICluster,
  form: IMineForm,
  fields: ReadonlyArray<keyof IMineForm>
): IMineValues {
  const start = formOf(cluster);
  const values: IMineValues = {};
  for (const field of fields) {
    const typed = form[field].trim();
    if (typed === start[field].trim()) {
      continue;
    }
    if (typed === '') {
      if (isMine(cluster, field)) {
        values[field] = null;
      }
      continue;
    }
    if (field === 'port') {
      values.port = /^\d+$/.test(typed) ? Number(typed) : typed;
    } else {
      values[field] = typed;
    }
  }
  return values;
}

/**
 * Whether a Connect should first ask the person's user name on the cluster: a built-in
 * cluster (whose user is this computer's login name unless something sets another) for
 * which the person has set none.
 */
export function needsUserName(cluster: ICluster): boolean {
  return cluster.source === 'builtin' && !isMine(cluster, 'user');
}
