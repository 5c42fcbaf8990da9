import { ISignal, Signal } from '@lumino/signaling';

import type { IBackend } from './api';
import { ApiError } from './errors';
import { ICluster, IConnection, IConnectionEvent } from './tokens';

/** Whether the server extension is there and speaks our version. */
export type ServerStatus =
  'unknown' | 'ok' | 'missing' | 'mismatch' | 'unreachable';

export const PENDING_STATES = ['starting', 'prompting', 'verifying'];

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

  get changed(): ISignal<this, void> {
    return this._changed;
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
    this._changed.emit();
  }

  /** Apply a `connection/v1` event from the server's event stream. */
  applyEvent(event: IConnectionEvent): void {
    const known = this._connections.get(event.name);
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
      master_pid: event.master_pid ?? null
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
    // An event may already have moved it further on: keep the newer view.
    if (
      !known ||
      !known.updated ||
      !connection.updated ||
      connection.updated >= known.updated
    ) {
      this._connections.set(connection.name, connection);
    }
    this._changed.emit();
    return connection;
  }

  private _changed = new Signal<this, void>(this);
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
