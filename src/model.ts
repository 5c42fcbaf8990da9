import type { Event } from '@jupyterlab/services';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { IAsksReply, IBackend } from './api';
import { ApiError, isUnsupported } from './errors';
import {
  ASK_EVENT_SCHEMA,
  CLUSTER_EVENT_SCHEMA,
  ConnectionState,
  EVENT_SCHEMA,
  IAsk,
  IAskEvent,
  ICluster,
  IClusterEvent,
  IConnection,
  IConnectionChange,
  IHy2faModel,
  IMineValues,
  INewCluster,
  ISshConfigPreview,
  ISshConfigWritten,
  ServerStatus
} from './tokens';

export type { ServerStatus };

/** A login is under way in these states. */
export const PENDING_STATES: readonly ConnectionState[] = [
  'starting',
  'prompting',
  'verifying'
];

/** A master runs (or its socket is there) in these states. */
export const LIVE_STATES: readonly ConnectionState[] = [
  'connected',
  'unresponsive'
];

/** A master that was live and is in one of these states went away. */
export const GONE_STATES: readonly ConnectionState[] = [
  'disconnected',
  'failed'
];

/**
 * The server's message for a master stopped on request (`DELETE hy2fa/connections/<name>`,
 * from any tab or kernel): such a disconnect was asked for, not lost.
 */
const ASKED_DISCONNECT = 'Disconnected';

/** How many settled ask ids are remembered, so that a late reply cannot bring one back. */
const GONE_LIMIT = 500;

/** The poll's interval unless told otherwise: 10 s. */
const DEFAULT_POLL_INTERVAL = 10 * 1000;

/** The longest the poll waits when the server keeps failing (it backs off): 5 min. */
const MAX_POLL_INTERVAL = 300 * 1000;

/**
 * The state of every cluster and connection, from the server's events and from a poll
 * the model owns.
 *
 * Events are applied at once; a poll replaces everything with the server's view, so a
 * missed event is repaired on the next poll. Disposing of the model stops the poll and
 * stops listening to the events.
 */
export class Hy2faModel implements IHy2faModel {
  constructor(options: Hy2faModel.IOptions) {
    this._backend = options.backend;
    this.frontendVersion = options.frontendVersion;
    this._events = options.events ?? null;
    this._events?.connect(this._onEvent, this);
    this._eventsLive = options.eventsLive ?? null;
    this._eventsLive?.connect(this._onEventsLive, this);
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: {
        interval: options.pollInterval ?? DEFAULT_POLL_INTERVAL,
        backoff: true,
        max: MAX_POLL_INTERVAL
      },
      name: 'hy2fa-lab:connections',
      standby: 'when-hidden',
      auto: options.autoStart ?? true
    });
  }

  /** The version of this frontend; the server extension's must be the same. */
  readonly frontendVersion: string;

  /** Anything changed: clusters, connections, the server's status or the asks. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The waiting asks changed (one came, one went). `changed` fires too. */
  get asksChanged(): ISignal<this, void> {
    return this._asksChanged;
  }

  /** A connection's state changed, or a connection was seen for the first time. */
  get stateChanged(): ISignal<this, IConnectionChange> {
    return this._stateChanged;
  }

  /** A live master went away without this person asking. */
  get connectionLost(): ISignal<this, IConnection> {
    return this._connectionLost;
  }

  /** Connections lost without the person asking, until they reconnect or it is forgotten. */
  get lost(): IConnection[] {
    return [...this._lost]
      .map(id => this._connections.get(id))
      .filter((c): c is IConnection => c !== undefined);
  }

  /** Stop counting a connection (its id, or a name) as lost. */
  forgetLost(key: string): void {
    if (this._lost.delete(this.connection(key)?.id ?? key)) {
      this._changed.emit();
    }
  }

  /** Why no master can be made with the server's ssh, once a connect said so; else null. */
  get unsupported(): string | null {
    return this._unsupported;
  }

  /** Why the askpass bridge is off, in the server's words; null when it is on or unknown. */
  get asksMessage(): string | null {
    return this._asksMessage;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** How often the poll asks the server, in milliseconds (it backs off on failures). */
  get pollInterval(): number {
    return this._poll.frequency.interval;
  }

  set pollInterval(interval: number) {
    if (this._isDisposed) {
      return;
    }
    this._poll.frequency = { ...this._poll.frequency, interval };
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

  /**
   * The connection with id `key`, else the one the name `key` means, as the server decides
   * it (two may share a name: a master a notebook's own ssh made, and a login).
   */
  connection(key: string): IConnection | undefined {
    return (
      this._connections.get(key) ??
      preferred(this.connections.filter(c => c.name === key))
    );
  }

  /**
   * The connection shown in a cluster's row: the one the server named for it, or a login
   * of the cluster (by this server, not a master some ssh made at its own socket) that is
   * newer, such as one that just started.
   */
  connectionFor(cluster: ICluster): IConnection | undefined {
    const named = cluster.connection_id
      ? this._connections.get(cluster.connection_id)
      : undefined;
    const logins = this.connections.filter(
      c =>
        c.made_by?.kind !== 'ssh' &&
        (c.name === cluster.name ||
          (!!cluster.connection && c.name === cluster.connection))
    );
    return preferred(named ? [named, ...logins] : logins, false);
  }

  /** Connections waiting for an answer. */
  prompting(): IConnection[] {
    return this.connections.filter(c => c.state === 'prompting' && c.prompt);
  }

  /** Stop the poll, stop listening to the server's events, disconnect every listener. */
  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    this._events?.disconnect(this._onEvent, this);
    this._events = null;
    this._eventsLive?.disconnect(this._onEventsLive, this);
    this._eventsLive = null;
    Signal.clearData(this);
  }

  async checkVersion(): Promise<ServerStatus> {
    try {
      this._serverVersion = await this._backend.version();
      this._serverStatus =
        this._serverVersion === this.frontendVersion ? 'ok' : 'mismatch';
    } catch (error) {
      this._serverStatus = statusOf(error);
    }
    this._changed.emit();
    return this._serverStatus;
  }

  /**
   * Replace the view with the server's (the poll, and after every action).
   *
   * A view that an event or a reply brought while the request was on its way is newer
   * than the reply, unless the reply's own version is larger: it is kept. A reply older
   * than one already applied (two refreshes overlapping) is dropped.
   */
  async refresh(): Promise<void> {
    if (this._serverStatus === 'unknown' || this._serverStatus === 'missing') {
      const status = await this.checkVersion();
      if (status === 'missing' || status === 'unreachable') {
        return;
      }
    }
    const asks = this.refreshAsks();
    const seq = ++this._refreshRequested;
    const mark = this._applied;
    const clusterMark = this._clustersApplied;
    try {
      const [clusters, connections] = await Promise.all([
        this._backend.clusters(),
        this._backend.connections()
      ]);
      if (seq > this._refreshApplied && !this._isDisposed) {
        this._refreshApplied = seq;
        this.replaceClusters(clusters, clusterMark);
        this.replaceConnections(connections, mark);
      }
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
    let reply: IAsksReply;
    try {
      reply = await this._backend.asks();
    } catch (error) {
      if (
        seq > this._asksApplied &&
        error instanceof ApiError &&
        error.status === 404
      ) {
        // A server without the bridge's routes.
        this._asksApplied = seq;
        this._asksEnabled = false;
        this._asksMessage = null;
        this.setAsks([]);
      }
      return; // unreachable: keep what is known until the server answers again
    }
    if (seq < this._asksApplied) {
      return;
    }
    this._asksApplied = seq;
    this._asksEnabled = reply.enabled;
    this._asksMessage = reply.enabled ? null : (reply.message ?? null);
    this.setAsks(reply.asks.filter(ask => !this._gone.has(ask.id)));
  }

  /**
   * Apply an `ask/v2` event: an `asked` one carries the whole ask (as `GET hy2fa/asks`
   * lists it), any other action means the ask is gone.
   */
  applyAskEvent(event: IAskEvent): void {
    const { action, ...ask } = event;
    if (action !== 'asked') {
      this.forgetAsk(ask.id);
      return;
    }
    if (this._gone.has(ask.id)) {
      return; // a replay of an ask settled already
    }
    // Newer than any reply still on its way: those are dropped when they come.
    this._asksApplied = ++this._asksRequested;
    this._asksEnabled = true;
    this._asksMessage = null;
    const known = this._asks.has(ask.id);
    this._asks.set(ask.id, ask);
    if (!known) {
      this._asksChanged.emit();
      this._changed.emit();
    }
  }

  /** Send `response` to the ssh that asks; it is not kept. */
  async answerAsk(id: string, response: string): Promise<void> {
    try {
      await this._backend.answerAsk(id, response);
    } catch (error) {
      this.forgetIfSettled(id, error);
      throw error;
    }
    this.forgetAsk(id);
  }

  /** Cancel an ask: the ssh that asks ends. */
  async cancelAsk(id: string): Promise<void> {
    try {
      await this._backend.cancelAsk(id);
    } catch (error) {
      this.forgetIfSettled(id, error);
      throw error;
    }
    this.forgetAsk(id);
  }

  /**
   * Apply a `connection/v2` event: its data is the connection as the REST API shows it,
   * kept unless a newer view arrived first.
   */
  applyEvent(connection: IConnection): void {
    const known = this._connections.get(connection.id);
    if (
      isOlder(connection.version, known?.version) ||
      this._superseded.has(connection.id)
    ) {
      return; // a reply that already told more arrived first
    }
    if (connection.superseded_by) {
      this.drop(connection.id); // a newer login of its name took its place
      this._changed.emit();
      return;
    }
    this.put(connection);
    for (const cluster of this._clusters) {
      if (
        cluster.name === connection.cluster &&
        !cluster.connection &&
        connection.made_by?.kind !== 'ssh'
      ) {
        cluster.connection = connection.name;
      }
    }
    this._changed.emit();
    this.emitChange(known, connection);
  }

  /**
   * Start a login (or join the one under way). Where the server's ssh cannot make a
   * master (501 `unsupported`), `unsupported` says why from then on, and the call fails.
   */
  async connect(cluster: string, user?: string): Promise<IConnection> {
    try {
      return await this.apply(this._backend.connect(cluster, user));
    } catch (error) {
      if (isUnsupported(error) && this._unsupported !== error.message) {
        this._unsupported = error.message;
        this._changed.emit();
      }
      throw error;
    }
  }

  /** Answer the prompt of the connection `key` (its id; a name is taken too). */
  async answer(
    key: string,
    response: string,
    promptId?: number
  ): Promise<IConnection> {
    const id = this.connection(key)?.id ?? key;
    return this.apply(this._backend.answer(id, response, promptId));
  }

  /**
   * Stop a master or cancel a login (`key`: its id, or a name, also of a cluster whose
   * master this server never saw): asked for, so it is not counted as lost.
   */
  async disconnect(key: string): Promise<IConnection> {
    const id = this.connection(key)?.id ?? key;
    this._leaving.add(id);
    try {
      return await this.apply(this._backend.disconnect(id));
    } finally {
      // Its reply came after the state changed on the server: nothing later is this one.
      this._leaving.delete(id);
    }
  }

  /** The cluster named `name`, as the server lists it. */
  cluster(name: string): ICluster | undefined {
    return this._clusters.find(c => c.name === name);
  }

  /**
   * Apply a `cluster/v1` event: the person's settings of a cluster changed, in this Lab or
   * another. Its data is the cluster's row (for `removed`, its last one).
   */
  applyClusterEvent(event: IClusterEvent): void {
    const { action, ...row } = event;
    if (action === 'removed') {
      this.dropCluster(row.name);
    } else {
      this.putCluster(row);
    }
    this._changed.emit();
  }

  /** Set the person's own values for a cluster (`null` forgets one); its row. */
  async setMine(name: string, values: IMineValues): Promise<ICluster> {
    const row = await this._backend.setMine(name, values);
    this.putCluster(row);
    this._changed.emit();
    return row;
  }

  /** Add a cluster of the person's own; its row. */
  async addCluster(cluster: INewCluster): Promise<ICluster> {
    const row = await this._backend.addCluster(cluster);
    this.putCluster(row);
    this._changed.emit();
    return row;
  }

  /** Forget the person's values for a cluster: its row as the site gives it, or null. */
  async forgetMine(name: string): Promise<ICluster | null> {
    const row = await this._backend.forgetMine(name);
    if (row) {
      this.putCluster(row);
    } else {
      this.dropCluster(name);
    }
    this._changed.emit();
    return row;
  }

  sshConfigPreview(name: string): Promise<ISshConfigPreview> {
    return this._backend.sshConfigPreview(name);
  }

  writeSshConfig(name: string): Promise<ISshConfigWritten> {
    return this._backend.writeSshConfig(name);
  }

  removeSshConfig(name: string): Promise<void> {
    return this._backend.removeSshConfig(name);
  }

  /**
   * An event from the server's stream. jupyter_server sends `{schema_id, ...data}`: all
   * but `schema_id` is the event's data.
   */
  private _onEvent(_: unknown, emission: Event.Emission): void {
    const { schema_id, ...data } = emission;
    if (schema_id === EVENT_SCHEMA) {
      this.applyEvent(data as unknown as IConnection);
    } else if (schema_id === ASK_EVENT_SCHEMA) {
      this.applyAskEvent(data as unknown as IAskEvent);
    } else if (schema_id === CLUSTER_EVENT_SCHEMA) {
      this.applyClusterEvent(data as unknown as IClusterEvent);
    }
  }

  /** The event stream is live (again): what changed before reached nobody, so ask. */
  private _onEventsLive(): void {
    if (!this._isDisposed) {
      void this.refresh();
    }
  }

  private async apply(call: Promise<IConnection>): Promise<IConnection> {
    const connection = await call;
    const known = this._connections.get(connection.id);
    // An event may already have moved it further on (the reply was computed before it):
    // keep the newer view.
    const newer = !isOlder(connection.version, known?.version);
    if (newer) {
      this.put(connection);
    }
    this._changed.emit();
    if (newer) {
      this.emitChange(known, connection);
    }
    return connection;
  }

  private put(connection: IConnection): void {
    this._connections.set(connection.id, connection);
    this._appliedAt.set(connection.id, ++this._applied);
  }

  /** A cluster's new row (an event, a reply): in its place, or after the others. */
  private putCluster(row: ICluster): void {
    const index = this._clusters.findIndex(c => c.name === row.name);
    this._clusters =
      index >= 0
        ? this._clusters.map((c, i) => (i === index ? row : c))
        : [...this._clusters, row];
    this._clusterAt.set(row.name, ++this._clustersApplied);
  }

  private dropCluster(name: string): void {
    this._clusters = this._clusters.filter(c => c.name !== name);
    this._clusterAt.set(name, ++this._clustersApplied);
  }

  /**
   * Take a poll's clusters. `mark` is how many rows were applied when it was asked for: a
   * row changed since (an event, a reply) is kept as it is now, and one removed since
   * stays removed, until a poll asked after it.
   */
  private replaceClusters(polled: ICluster[], mark: number): void {
    const now = new Map(this._clusters.map(c => [c.name, c]));
    const changed = (name: string): boolean =>
      (this._clusterAt.get(name) ?? 0) > mark;
    const next: ICluster[] = [];
    for (const row of polled) {
      if (!changed(row.name)) {
        next.push(row);
      } else if (now.has(row.name)) {
        next.push(now.get(row.name)!);
      }
    }
    const listed = new Set(polled.map(c => c.name));
    for (const row of this._clusters) {
      if (!listed.has(row.name) && changed(row.name)) {
        next.push(row); // added since the poll asked
      }
    }
    this._clusters = next;
    for (const [name, at] of [...this._clusterAt]) {
      if (at <= mark) {
        this._clusterAt.delete(name); // this poll is newer: nothing to keep
      }
    }
  }

  /** Forget a superseded connection; a late view of it is not taken again. */
  private drop(id: string): void {
    this._superseded.add(id);
    if (this._superseded.size > GONE_LIMIT) {
      this._superseded.delete(this._superseded.values().next().value as string);
    }
    this._connections.delete(id);
    this._appliedAt.delete(id);
    this._lost.delete(id);
  }

  /**
   * Take a poll's connections. `mark` is how many views were applied when it was asked
   * for: one applied since (an event, a reply) is kept unless the poll's is newer.
   */
  private replaceConnections(connections: IConnection[], mark: number): void {
    const before = this._connections;
    const next = new Map(connections.map(c => [c.id, c]));
    for (const [id, known] of before) {
      if ((this._appliedAt.get(id) ?? 0) <= mark) {
        continue; // known before the poll asked: the poll's view is newer
      }
      const polled = next.get(id);
      if (!polled || isOlder(polled.version, known.version)) {
        next.set(id, known);
      }
    }
    this._connections = next;
    for (const id of next.keys()) {
      if (next.get(id) !== before.get(id)) {
        this._appliedAt.set(id, ++this._applied);
      }
    }
    for (const [id, connection] of next) {
      this.emitChange(before.get(id), connection);
    }
  }

  /**
   * Say that a connection's state changed, and whether a live master went away without
   * the person asking (lost), or a lost one came back.
   */
  private emitChange(
    before: IConnection | undefined,
    after: IConnection
  ): void {
    const previous = before?.state ?? null;
    if (previous === after.state) {
      return;
    }
    const id = after.id;
    let lost = false;
    if (GONE_STATES.includes(after.state)) {
      const asked = this._leaving.has(id) || after.message === ASKED_DISCONNECT;
      lost = previous !== null && LIVE_STATES.includes(previous) && !asked;
      if (lost) {
        this._lost.add(id);
      }
    } else {
      this._lost.delete(id);
    }
    if (after.state === 'starting' && this._unsupported !== null) {
      // A login began (a kernel, another tab): masters can be made after all.
      this._unsupported = null;
      this._changed.emit();
    }
    this._stateChanged.emit({ connection: after, previous });
    if (lost) {
      this._connectionLost.emit(after);
    }
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

  private readonly _backend: IBackend;
  private readonly _poll: Poll;
  private _events: ISignal<unknown, Event.Emission> | null;
  private _eventsLive: ISignal<unknown, void> | null;
  private _stateChanged = new Signal<this, IConnectionChange>(this);
  private _connectionLost = new Signal<this, IConnection>(this);
  private _lost = new Set<string>();
  private _leaving = new Set<string>();
  private _unsupported: string | null = null;
  private _asksMessage: string | null = null;
  private _refreshRequested = 0;
  private _refreshApplied = 0;
  /** How many views were applied; `_appliedAt` says when each connection's last was. */
  private _applied = 0;
  private _appliedAt = new Map<string, number>();
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
  private _asksChanged = new Signal<this, void>(this);
  private _asks = new Map<string, IAsk>();
  private _asksEnabled = false;
  private _asksRequested = 0;
  private _asksApplied = 0;
  private _gone = new Set<string>();
  private _superseded = new Set<string>();
  private _clusters: ICluster[] = [];
  /** How many cluster rows were applied; `_clusterAt` says when each name's last was. */
  private _clustersApplied = 0;
  private _clusterAt = new Map<string, number>();
  private _connections = new Map<string, IConnection>();
  private _serverStatus: ServerStatus = 'unknown';
  private _serverVersion: string | null = null;
}

export namespace Hy2faModel {
  /** What a model is made of. */
  export interface IOptions {
    /** The REST API (`RestBackend`, or a fake in tests). */
    backend: IBackend;
    /** This frontend's version (`FRONTEND_VERSION`). */
    frontendVersion: string;
    /**
     * The server's event stream (`app.serviceManager.events.stream`). Without it only
     * the poll brings changes.
     */
    events?: ISignal<unknown, Event.Emission>;
    /**
     * Emits whenever the event stream's subscription is live (at first, and after it
     * reconnects): the model then asks the server again, so that a change made before
     * the subscription was live (and never heard as an event) is not missed until the
     * next poll. See `EventStreamWatch`.
     */
    eventsLive?: ISignal<unknown, void>;
    /** How often the poll asks the server, in milliseconds (default 10 s). */
    pollInterval?: number;
    /** Whether the poll starts at once (default true). Off, only `refresh()` asks. */
    autoStart?: boolean;
  }
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

/**
 * Of several connections, the one a name means: a login under way, else one this server's
 * login made (unless `logins` is false), else a live one, else the newest.
 */
function preferred(
  connections: IConnection[],
  logins = true
): IConnection | undefined {
  const rank = (c: IConnection): number[] => [
    PENDING_STATES.includes(c.state) ? 1 : 0,
    logins && (c.made_by?.kind ?? 'login') === 'login' ? 1 : 0,
    LIVE_STATES.includes(c.state) ? 1 : 0,
    c.version
  ];
  let best: IConnection | undefined;
  for (const connection of connections) {
    if (!best || compare(rank(connection), rank(best)) > 0) {
      best = connection;
    }
  }
  return best;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      return a[i] - b[i];
    }
  }
  return 0;
}

/** Whether a view numbered `version` is older than the one numbered `known`. */
function isOlder(version?: number, known?: number): boolean {
  return version !== undefined && known !== undefined && version < known;
}
