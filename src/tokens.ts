import { Token } from '@lumino/coreutils';
import type { IDisposable } from '@lumino/disposable';
import type { ISignal } from '@lumino/signaling';

/**
 * Where a connection is in its life (the server's `State`, hy2fa_lab/core/types.py).
 */
export type ConnectionState =
  | 'idle'
  | 'starting'
  | 'prompting'
  | 'verifying'
  | 'connected'
  | 'failed'
  | 'disconnected'
  | 'unresponsive';

/**
 * The state of a cluster's row: a connection's, or `error` when the cluster cannot be
 * resolved (its `error` says why).
 */
export type ClusterState = ConnectionState | 'error';

/** What ssh asks for (the server's `PromptKind`). */
export type PromptKind =
  'otp' | 'password' | 'passphrase' | 'duo' | 'hostkey' | 'other';

/** Why a connection failed (the server's `Reason`). */
export type FailureReason =
  | 'auth_failed'
  | 'hostkey_changed'
  | 'hostkey_rejected'
  | 'unreachable'
  | 'timeout'
  | 'cancelled'
  | 'ssh_missing'
  | 'unsafe_socket'
  | 'error';

/**
 * Where a cluster comes from (the server's `ClusterProfile.source`): the built-in table,
 * the person's Jupyter config (`c.Hy2faLab.clusters`), a `Host` alias of their
 * `~/.ssh/config`, a cluster they added themselves (`mine`: in Lab, `hy2fa add`), or a
 * plain host name.
 */
export type ClusterSource =
  'builtin' | 'config' | 'ssh_config' | 'mine' | 'host';

/** A value a person can set for a cluster themselves (the row's `mine` lists theirs). */
export type MineField =
  'host' | 'user' | 'port' | 'persist' | 'label' | 'ssh_options';

/**
 * The person's values for a cluster (`PATCH hy2fa/clusters/<name>`): a field left out
 * stays as it is, `null` forgets the person's value (the site's applies again).
 */
export interface IMineValues {
  user?: string | null;
  port?: number | string | null;
  persist?: string | null;
  label?: string | null;
}

/** A cluster of the person's own (`POST hy2fa/clusters`). */
export interface INewCluster {
  name: string;
  host: string;
  user?: string;
  port?: number | string;
  persist?: string;
  label?: string;
}

/**
 * What "Also use it in terminals" would write (`GET hy2fa/clusters/<name>/config-ssh`):
 * the ssh config file, the managed `Host` block, and whether a block for it is there now.
 */
export interface ISshConfigPreview {
  cluster: string;
  path: string;
  block: string;
  written: boolean;
}

/** The block was written (`POST .../config-ssh`). */
export interface ISshConfigWritten {
  cluster: string;
  path: string;
  /** A copy of the file as it was, when there was one. */
  backup: string | null;
  block: string;
  /** Options ssh takes from a line above the block instead (a global option). */
  overridden: string[];
}

/** What happened to a cluster (`hy2fa_lab/cluster/v1`). */
export type ClusterAction = 'added' | 'changed' | 'removed';

/** The data of a `hy2fa_lab/cluster/v1` event: the cluster's row, and what happened. */
export interface IClusterEvent extends ICluster {
  action: ClusterAction;
}

/**
 * The schema of the events of the person's own cluster settings; their data is an
 * {@link IClusterEvent}.
 */
export const CLUSTER_EVENT_SCHEMA =
  'https://events.hy2fa-lab.org/hy2fa_lab/cluster/v1';

/** Whether the server extension is there and speaks our version. */
export type ServerStatus =
  'unknown' | 'ok' | 'missing' | 'mismatch' | 'unreachable';

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
  /** Where it comes from; a newer server may name a source this frontend does not know. */
  source: ClusterSource | string;
  /**
   * The values the person set themselves (their own settings, on top of the site's);
   * empty or absent when none (an older server).
   */
  mine?: Array<MineField | string>;
  state: ClusterState;
  control_path?: string;
  master_pid?: number | null;
  connection?: string;
  /** The id of the connection shown in this row (absent or null when none is). */
  connection_id?: string | null;
  /** Why the socket is not usable (a master that does not answer, another user's socket). */
  message?: string;
  error?: { message: string; reason: string };
  /**
   * A certificate profile's key and certificate as the files say (no device: that is a
   * login's); absent when the profile has none or an older server.
   */
  certificate?: ICertificate | null;
  /**
   * Where a login of a certificate profile gets its certificate (the issuer's host, or the
   * site's tool), whether or not one is on disk; absent for other profiles.
   */
  certificate_from?: string;
}

/** A certificate as the server describes it (`valid_before` ISO 8601 UTC, null = never). */
export interface ICertificate {
  issuer: string;
  valid_before: string | null;
  principals: string[];
  key: string;
  /** How long before expiry a login renews it (seconds); 600 when the server does not say. */
  renew_before?: number;
  /**
   * Issuer `command`: the link (http or https only, escaped) and code the site's tool
   * printed (device flow), while it waits for the sign-in; null otherwise.
   */
  device?: { url: string; code: string | null } | null;
}

/**
 * A question ssh is waiting on, in its own words (`Prompt.to_json()`,
 * hy2fa_lab/core/types.py).
 */
export interface IAskPrompt {
  kind: PromptKind;
  text: string;
  /** Menu options (Duo), answered by their number. */
  options: string[];
  /** Whether the answer is a secret (a password field). */
  secret: boolean;
}

/** A connection's question: an ask's, numbered; an answer names the prompt it answers. */
export interface IPrompt extends IAskPrompt {
  id: number;
  /** When the login stops waiting for an answer (ISO 8601, the server's clock). */
  expires?: string | null;
  /**
   * The `user@host` the question is for, from OpenSSH's `(user@host)` prefix: through a
   * ProxyJump bastion the jump host asks first, then the cluster. Null when ssh did not say.
   */
  host?: string | null;
}

/** What ssh does with an answer, while the state is `verifying`. */
export interface IVerifying {
  /** When the answer went to ssh (ISO 8601). */
  since: string | null;
  /** The Duo option chosen ("Duo Push to XXX-XXX-1234"); null for a typed code. */
  choice: string | null;
  /** Every line ssh printed since, verbatim ("Pushed a login request to your device..."). */
  lines: string[];
}

/**
 * One connection (`MasterSession.to_json()`, hy2fa_lab/core/session.py): what
 * `GET hy2fa/connections` lists, what the connection calls reply, and the data of a
 * `hy2fa_lab/connection/v2` event.
 */
export interface IConnection {
  /** Its identity: what answers, cancels and events name (two may share a `name`). */
  id: string;
  /** For people: the cluster, or `user@cluster`. */
  name: string;
  /**
   * Who made the master: this server's login, one found running at the server's start, or
   * an ssh a kernel ran with its own socket (through the askpass bridge).
   */
  made_by?: IMadeBy;
  /** The id of the newer login that took this finished one's place: it is dropped. */
  superseded_by?: string | null;
  cluster: string;
  host: string;
  user: string;
  port: number;
  state: ConnectionState;
  /** The question ssh waits on; only while `prompting`. */
  prompt: IPrompt | null;
  /** What ssh does with the answer; only while `verifying` (absent from older servers). */
  verifying?: IVerifying | null;
  reason: FailureReason | null;
  message: string;
  control_path: string;
  master_pid: number | null;
  /** When the master came up (ISO 8601). */
  since: string | null;
  persist: string;
  /** When the state last changed (ISO 8601). */
  updated: string | null;
  /** Grows with every change: of two views, the larger one is newer. */
  version: number;
  /**
   * The certificate a cluster with a certificate issuer logs in with (`valid_before` ISO 8601
   * UTC); null for every other cluster, absent from older servers.
   */
  certificate?: ICertificate | null;
}

/** Who made a connection's master (`made_by` of the connection view). */
export interface IMadeBy {
  kind: 'login' | 'found' | 'ssh' | string;
  /** The notebook whose kernel ran the ssh (kind `ssh`). */
  notebook?: string;
  kernel_id?: string;
}

/** A connection's state changed, as this frontend saw it (an event or a poll). */
export interface IConnectionChange {
  /** The connection as it is now. */
  connection: IConnection;
  /** Its state before; null when this frontend had not seen it yet. */
  previous: ConnectionState | null;
}

/**
 * The schema of the connection events; their data is an {@link IConnection}.
 */
export const EVENT_SCHEMA =
  'https://events.hy2fa-lab.org/hy2fa_lab/connection/v2';

/** Where the ssh that asks comes from: its process, and the kernel and notebook when known. */
export interface IAskOrigin {
  pid: number;
  kernel_id?: string | null;
  notebook?: string | null;
}

/**
 * A question of an ssh that a kernel started (through `hy2fa-askpass`), waiting for a
 * person (`Ask.to_json()`, hy2fa_lab/core/asks.py; `GET hy2fa/asks`).
 */
export interface IAsk {
  id: string;
  prompt: IAskPrompt & {
    /** When the question is refused unanswered (ISO 8601, the server's clock). */
    expires?: string | null;
  };
  host: string | null;
  /** The argv of the ssh that asks (never a secret). */
  command: string[];
  origin: IAskOrigin;
  /** When it was asked, in epoch seconds. */
  since: number;
}

/** What happened to an ask. */
export type AskAction =
  'asked' | 'answered' | 'cancelled' | 'expired' | 'withdrawn';

/** The data of a `hy2fa_lab/ask/v2` event: the ask as `GET hy2fa/asks` lists it, and what happened. */
export interface IAskEvent extends IAsk {
  action: AskAction;
}

/**
 * The schema of the ask events; their data is an {@link IAskEvent}.
 */
export const ASK_EVENT_SCHEMA = 'https://events.hy2fa-lab.org/hy2fa_lab/ask/v2';

/**
 * The DOM class of the notebook widget of `%hy2fa connect` and `ensure()`
 * (hy2fa_lab/kernel/widget.py adds it to the widget's box).
 *
 * The widget ↔ dialog contract: while a widget with this class and the class
 * `WIDGET_FOR_PREFIX + <hex of the UTF-8 bytes of the connection name>` is shown on the
 * page, the Lab dialog stays away from that connection's prompt (the widget shows it
 * already). Both names are shared with the Python side: change them there too.
 */
export const WIDGET_CLASS = 'hy2fa-widget';

/**
 * The prefix of the DOM class that names the connection a notebook widget shows:
 * `hy2fa-for-` and the hex of the name's UTF-8 bytes (`hy2fa-for-73616761` for `saga`),
 * as hy2fa_lab/kernel/widget.py writes it. See {@link WIDGET_CLASS}.
 */
export const WIDGET_FOR_PREFIX = 'hy2fa-for-';

/** Widget id of the sidebar; `shell.activateById` opens it. */
export const SIDEBAR_ID = 'hy2fa-sidebar';

export namespace CommandIDs {
  export const connect = 'hy2fa:connect';
  export const disconnect = 'hy2fa:disconnect';
  export const openSidebar = 'hy2fa:open-sidebar';
}

/**
 * The 2FA connections as this frontend knows them: clusters, connections, the questions
 * of kernels' ssh, and the calls that change them. Kept current from the server's
 * events and a poll.
 */
export interface IHy2faModel extends IDisposable {
  /** Anything changed: clusters, connections, the server's status or the asks. */
  readonly changed: ISignal<IHy2faModel, void>;
  /** The waiting asks changed (one came, one went). `changed` fires too. */
  readonly asksChanged: ISignal<IHy2faModel, void>;
  /** A connection's state changed, or a connection was seen for the first time. */
  readonly stateChanged: ISignal<IHy2faModel, IConnectionChange>;
  /**
   * A live master went away without this person asking (ControlPersist ran out, it was
   * killed, the network dropped): connected, and now disconnected or failed.
   */
  readonly connectionLost: ISignal<IHy2faModel, IConnection>;

  /** The version of this frontend; the server extension's must be the same. */
  readonly frontendVersion: string;
  readonly serverStatus: ServerStatus;
  readonly serverVersion: string | null;

  readonly clusters: ICluster[];
  readonly connections: IConnection[];
  /** Live masters. */
  readonly liveCount: number;
  /**
   * The connection with this id, else the one a name means: a login under way, else one
   * this server's login made, else a live one, else the newest (as the server decides).
   */
  connection(key: string): IConnection | undefined;
  /** The connection shown in a cluster's row (the one the server named, or its login). */
  connectionFor(cluster: ICluster): IConnection | undefined;
  /** Connections waiting for an answer. */
  prompting(): IConnection[];
  /** Connections lost without the person asking, until they reconnect or it is forgotten. */
  readonly lost: IConnection[];
  /** Stop counting a connection (id or name) as lost (the person saw it and let it be). */
  forgetLost(key: string): void;
  /**
   * Why no master can be made with the server's ssh (Windows' OpenSSH, too old a
   * version), in the server's words, once a connect said so (501 `unsupported`); else null.
   */
  readonly unsupported: string | null;

  /** Questions of ssh processes that kernels started, waiting for a person; oldest first. */
  readonly asks: IAsk[];
  /** Whether the server's askpass bridge is on (kernels' ssh asks in Lab). */
  readonly asksEnabled: boolean;
  /** Why the askpass bridge is off, in the server's words; null when it is on or unknown. */
  readonly asksMessage: string | null;
  ask(id: string): IAsk | undefined;

  /** Replace the view with the server's. */
  refresh(): Promise<void>;
  /** Start a login (or join the one under way). */
  connect(cluster: string, user?: string): Promise<IConnection>;
  /** Answer a connection's prompt (by id; a name is taken too); the response is not kept. */
  answer(
    key: string,
    response: string,
    promptId?: number
  ): Promise<IConnection>;
  /** Cancel a login or stop a master (by id; a name is taken too). */
  disconnect(key: string): Promise<IConnection>;
  /** Answer a kernel's ssh; the response is not kept. */
  answerAsk(id: string, response: string): Promise<void>;
  /** Cancel an ask: the ssh that asks ends. */
  cancelAsk(id: string): Promise<void>;

  /** The cluster named `name`, as the server lists it. */
  cluster(name: string): ICluster | undefined;
  /**
   * Set the person's own values for a cluster (`null` forgets one): its row. Refused
   * values (422, with the server's words) change nothing.
   */
  setMine(name: string, values: IMineValues): Promise<ICluster>;
  /** Add a cluster of the person's own (409 `cluster_exists` when the name is taken). */
  addCluster(cluster: INewCluster): Promise<ICluster>;
  /**
   * Forget the person's values for a cluster (back to the site's), or remove a cluster of
   * their own: its row as the site gives it, or null when it is gone.
   */
  forgetMine(name: string): Promise<ICluster | null>;
  /** What "Also use it in terminals" would write into the ssh config; writes nothing. */
  sshConfigPreview(name: string): Promise<ISshConfigPreview>;
  /** Write the managed `Host` block into the ssh config: call only once the person agreed. */
  writeSshConfig(name: string): Promise<ISshConfigWritten>;
  /** Take the managed `Host` block out of the ssh config again. */
  removeSshConfig(name: string): Promise<void>;
}

/**
 * The 2FA connections model, for other extensions (an HSP frontend, say) to require.
 */
export const IHy2faModel = new Token<IHy2faModel>(
  'hy2fa-lab:IHy2faModel',
  'The 2FA SSH ControlMaster connections of this Jupyter server: their state, their prompts, the questions of kernels’ ssh, and the calls to connect, answer and disconnect.'
);
