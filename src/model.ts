import { ISignal, Signal } from '@lumino/signaling';

import type { IBackend } from './api';
import { ApiError } from './errors';
import {
  IAsk,
  IAskEvent,
  ICluster,
  IConnection,
  IConnectionEvent
} from './tokens';

/** Whether the server extension is there and speaks our version. */
export type ServerStatus =
  'unknown' | 'ok' | 'missing' | 'mismatch' | 'unreachable';

export const PENDING_STATES = ['starting', 'prompting', 'verifying'];

/** How many settled ask ids are remembered, so that a late reply cannot bring one back. */
const GONE_LIMIT = 500;

/**
 * The state of every cluster and connection, from the server's events and from polls.
 *
 * Events are applied at once; a poll replaces everything with the server's view, so a
 * missed event is repaired on the next poll.
 */
export class Hy2faModel {
  constructor(
    private readonly backend: IBackend,
    readonly frontendVersion: string
  ) {}

  /** Anything changed: clusters, connections, the server's status or the asks. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The waiting asks changed (one came, one went). `changed` fires too. */
  get asksChanged(): ISignal<this, void> {
    return this._asksChanged;
  }

  /** Questions of ssh processes that kernels started, waiting for a person; oldest first. */
  get asks(): IAsk[] {
    return [...this._asks.values()].sort(
      (a, b) => a.since - b.since || a.id.localeCompare(b.id)
    );
  }

  /** Whether the server's askpass bridge is on (kernels' ssh asks in Lab). */
  get asksEnabled(): boolean {
    return this._asksEnabled;
  }

  ask(id: string): IAsk | undefined {
    return this._asks.get(id);
  }

  get clusters(): ICluster[] {
    return this._clusters;
  }

  get connections(): IConnection[] {
    return [...this._connections.values()];
  }

  get serverStatus(): ServerStatus {
    return this._serverStatus;
  }

  get serverVersion(): string | null {
    return this._serverVersion;
  }

  /** Live masters, for the status bar. */
  get liveCount(): number {
    return this.connections.filter(c => c.state === 'connected').length;
  }

  connection(name: string): IConnection | undefined {
    return this._connections.get(name);
  }

  /** The connection shown in a cluster's row (its own name, or the one the server named). */
  connectionFor(cluster: ICluster): IConnection | undefined {
    return (
      this._connections.get(cluster.name) ??
      (cluster.connection
        ? this._connections.get(cluster.connection)
        : undefined)
    );
  }

  /** Connections waiting for an answer. */
  prompting(): IConnection[] {
    return this.connections.filter(c => c.state === 'prompting' && c.prompt);
  }

  async checkVersion(): Promise<ServerStatus> {
    try {
      this._serverVersion = await this.backend.version();
      this._serverStatus =
        this._serverVersion === this.frontendVersion ? 'ok' : 'mismatch';
    } catch (error) {
      this._serverStatus = statusOf(error);
    }
    this._changed.emit();
    return this._serverStatus;
  }

  /** Replace the view with the server's (the fallback poll and after every action). */
  async refresh(): Promise<void> {
    if (this._serverStatus === 'unknown' || this._serverStatus === 'missing') {
      const status = await this.checkVersion();
      if (status === 'missing' || status === 'unreachable') {
        return;
      }
    }
    const asks = this.refreshAsks();
    try {
      const [clusters, connections] = await Promise.all([
        this.backend.clusters(),
        this.backend.connections()
      ]);
      this._clusters = clusters;
      this._connections = new Map(connections.map(c => [c.name, c]));
      if (this._serverStatus === 'unreachable') {
        this._serverStatus =
          this._serverVersion === this.frontendVersion ? 'ok' : 'mismatch';
      }
    } catch (error) {
      this._serverStatus = statusOf(error);
    }
    await asks;
    this._changed.emit();
  }

  /**
   * Replace the waiting asks with the server's. A reply older than one already applied is
   * dropped, and an ask known to be settled never comes back from a late reply.
   */
  async refreshAsks(): Promise<void> {
    const seq = ++this._asksRequested;
    let reply: { asks: IAsk[]; enabled: boolean };
    try {
      reply = await this.backend.asks();
    } catch (error) {
      if (
        seq > this._asksApplied &&
        error instanceof ApiError &&
        error.status === 404
      ) {
        // A server without the bridge's routes.
        this._asksApplied = seq;
        this._asksEnabled = false;
        this.setAsks([]);
      }
      return; // unreachable: keep what is known until the server answers again
    }
    if (seq < this._asksApplied) {
      return;
    }
    this._asksApplied = seq;
    this._asksEnabled = reply.enabled;
    this.setAsks(reply.asks.filter(ask => !this._gone.has(ask.id)));
  }

  /**
   * Apply a `ask/v1` event: a new ask is fetched (the event lacks its command line and
   * process), any other action means the ask is gone.
   */
  async applyAskEvent(event: IAskEvent): Promise<void> {
    if (event.action === 'asked') {
      if (!this._gone.has(event.id)) {
        await this.refreshAsks();
      }
      return;
    }
    this.forgetAsk(event.id);
  }

  /** Send `response` to the ssh that asks; it is not kept. */
  async answerAsk(id: string, response: string): Promise<void> {
    try {
      await this.backend.answerAsk(id, response);
    } catch (error) {
      this.forgetIfSettled(id, error);
      throw error;
    }
    this.forgetAsk(id);
  }

  /** Cancel an ask: the ssh that asks ends. */
  async cancelAsk(id: string): Promise<void> {
    try {
      await this.backend.cancelAsk(id);
    } catch (error) {
      this.forgetIfSettled(id, error);
      throw error;
    }
    this.forgetAsk(id);
  }

  /** 404 (gone) and 409 (answered elsewhere): the ask waits no more. */
  private forgetIfSettled(id: string, error: unknown): void {
    if (
      error instanceof ApiError &&
      (error.status === 404 || error.status === 409)
    ) {
      this.forgetAsk(id);
    }
  }

  private forgetAsk(id: string): void {
    this._gone.add(id);
    if (this._gone.size > GONE_LIMIT) {
      this._gone.delete(this._gone.values().next().value as string);
    }
    if (this._asks.delete(id)) {
      this._asksChanged.emit();
      this._changed.emit();
    }
  }

  private setAsks(asks: IAsk[]): void {
    const before = [...this._asks.keys()].sort().join('\n');
    this._asks = new Map(asks.map(ask => [ask.id, ask]));
    if ([...this._asks.keys()].sort().join('\n') !== before) {
      this._asksChanged.emit();
      this._changed.emit();
    }
  }

  /** Apply a `connection/v1` event from the server's event stream. */
  applyEvent(event: IConnectionEvent): void {
    const known = this._connections.get(event.name);
    if (isOlder(event.version, known?.version)) {
      return; // a reply that already told more arrived first
    }
    const prompt =
      event.state === 'prompting' && event.prompt_kind && event.prompt_text
        ? {
            id: event.prompt_id ?? 0,
            kind: event.prompt_kind,
            text: event.prompt_text,
            options: event.prompt_options ?? [],
            secret: event.prompt_secret ?? true
          }
        : null;
    const updated: IConnection = {
      ...(known ?? {
        name: event.name,
        cluster: event.cluster,
        since: null,
        persist: ''
      }),
      state: event.state,
      prompt,
      reason: event.reason ?? null,
      message: event.message ?? '',
      control_path: event.control_path ?? known?.control_path ?? '',
      master_pid: event.master_pid ?? null,
      updated: event.updated ?? known?.updated ?? null,
      version: event.version ?? known?.version
    };
    if (event.state === 'connected' && !known?.since) {
      updated.since = new Date().toISOString();
    }
    if (event.state !== 'connected') {
      updated.since = null;
    }
    this._connections.set(event.name, updated);
    for (const cluster of this._clusters) {
      if (cluster.name === event.cluster && !cluster.connection) {
        cluster.connection = event.name;
      }
    }
    this._changed.emit();
  }

  async connect(cluster: string, user?: string): Promise<IConnection> {
    return this.apply(this.backend.connect(cluster, user));
  }

  async answer(
    name: string,
    response: string,
    promptId?: number
  ): Promise<IConnection> {
    return this.apply(this.backend.answer(name, response, promptId));
  }

  async disconnect(name: string): Promise<IConnection> {
    return this.apply(this.backend.disconnect(name));
  }

  private async apply(call: Promise<IConnection>): Promise<IConnection> {
    const connection = await call;
    const known = this._connections.get(connection.name);
    // An event may already have moved it further on (the reply was computed before it):
    // keep the newer view.
    if (!isOlder(connection.version, known?.version)) {
      this._connections.set(connection.name, connection);
    }
    this._changed.emit();
    return connection;
  }

  private _changed = new Signal<this, void>(this);
  private _asksChanged = new Signal<this, void>(this);
  private _asks = new Map<string, IAsk>();
  private _asksEnabled = false;
  private _asksRequested = 0;
  private _asksApplied = 0;
  private _gone = new Set<string>();
  private _clusters: ICluster[] = [];
  private _connections = new Map<string, IConnection>();
  private _serverStatus: ServerStatus = 'unknown';
  private _serverVersion: string | null = null;
}

function statusOf(error: unknown): ServerStatus {
  if (
    error instanceof ApiError &&
    (error.status === 404 || error.reason === 'not_found')
  ) {
    return 'missing';
  }
  return 'unreachable';
}

/** Whether a view numbered `version` is older than the one numbered `known`. */
function isOlder(version?: number, known?: number): boolean {
  return version !== undefined && known !== undefined && version < known;
}
