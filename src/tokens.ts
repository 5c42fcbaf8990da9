/** What the server says about one cluster (`GET hy2fa/clusters`). */
export interface ICluster {
  name: string;
  label: string;
  host: string;
  hostname?: string;
  user?: string | null;
  port?: number | null;
  persist?: string | null;
  asks?: string;
  docs?: string;
  source: string;
  state: string;
  control_path?: string;
  master_pid?: number | null;
  connection?: string;
  demo_code?: string;
  /** Why the socket is not usable (a master that does not answer, another user's socket). */
  message?: string;
  error?: { message: string; reason: string };
}

/** A question ssh is waiting on, in the cluster's own words. */
export interface IPrompt {
  id: number;
  kind: 'otp' | 'password' | 'passphrase' | 'duo' | 'hostkey' | 'other';
  text: string;
  options: string[];
  secret: boolean;
}

/** One connection (`GET hy2fa/connections`). */
export interface IConnection {
  name: string;
  cluster: string;
  host?: string;
  user?: string;
  port?: number;
  state: string;
  prompt: IPrompt | null;
  reason: string | null;
  message: string;
  control_path: string;
  master_pid: number | null;
  since: string | null;
  persist: string;
  updated?: string | null;
  /** Grows with every change: of two views, the larger one is newer. */
  version?: number;
}

/** The data of a `hy2fa_lab/connection/v1` event. */
export interface IConnectionEvent {
  name: string;
  cluster: string;
  state: string;
  prompt_id?: number;
  prompt_kind?: IPrompt['kind'] | null;
  prompt_text?: string | null;
  prompt_options?: string[];
  prompt_secret?: boolean;
  reason?: string | null;
  message?: string;
  control_path?: string;
  master_pid?: number | null;
  updated?: string | null;
  version?: number;
}

export const EVENT_SCHEMA =
  'https://events.hy2fa-lab.org/hy2fa_lab/connection/v1';

/** Where the ssh that asks comes from: its process, and the kernel and notebook when known. */
export interface IAskOrigin {
  pid: number;
  kernel_id?: string | null;
  notebook?: string | null;
}

/**
 * A question of an ssh that a kernel started (through `hy2fa-askpass`), waiting for a
 * person (`GET hy2fa/asks`).
 */
export interface IAsk {
  id: string;
  prompt: Omit<IPrompt, 'id'>;
  host: string | null;
  /** The argv of the ssh that asks (never a secret). */
  command: string[];
  origin: IAskOrigin;
  /** When it was asked, in epoch seconds. */
  since: number;
}

export type AskAction =
  'asked' | 'answered' | 'cancelled' | 'expired' | 'withdrawn';

/** The data of a `hy2fa_lab/ask/v1` event. */
export interface IAskEvent {
  id: string;
  action: AskAction;
  prompt_kind?: IPrompt['kind'] | null;
  prompt_text?: string | null;
  host?: string | null;
  kernel_id?: string | null;
  notebook?: string | null;
}

export const ASK_EVENT_SCHEMA = 'https://events.hy2fa-lab.org/hy2fa_lab/ask/v1';

/** Widget id of the sidebar; `shell.activateById` opens it. */
export const SIDEBAR_ID = 'hy2fa-sidebar';

export namespace CommandIDs {
  export const connect = 'hy2fa:connect';
  export const disconnect = 'hy2fa:disconnect';
  export const openSidebar = 'hy2fa:open-sidebar';
}
