import { Signal } from '@lumino/signaling';

import type { IAsksReply, IBackend } from '../api';
import { ApiError } from '../errors';
import {
  ConnectionState,
  ICluster,
  IConnection,
  IConnectionChange
} from '../tokens';
import { quietModel, sleep, NoClusterSettings } from './helpers';

const cluster = (name: string, extra: Partial<ICluster> = {}): ICluster => ({
  name,
  label: name,
  host: `${name}.example.org`,
  source: 'builtin',
  state: 'idle',
  ...extra
});

const view = (
  name: string,
  state: ConnectionState,
  version: number,
  extra: Partial<IConnection> = {}
): IConnection => ({
  id: `c-${name}`,
  name,
  cluster: name,
  host: `${name}.example.org`,
  user: 'ola',
  port: 22,
  state,
  prompt: null,
  verifying: null,
  reason: null,
  message: '',
  control_path: `/tmp/cm-${name}`,
  master_pid: state === 'connected' ? 42 : null,
  since: null,
  persist: '3600s',
  updated: null,
  version,
  ...extra
});

/** A reply the test releases when it wants. */
class Deferred<T> {
  promise: Promise<T>;
  resolve!: (value: T) => void;
  constructor() {
    this.promise = new Promise<T>(resolve => {
      this.resolve = resolve;
    });
  }
}

class Backend extends NoClusterSettings implements IBackend {
  clusterList: ICluster[] = [cluster('saga')];
  connectionList: IConnection[] = [];
  /** When set, the next GET connections waits for the test. */
  hold: Deferred<IConnection[]> | null = null;
  connectError: Error | null = null;
  disconnectReply: IConnection | null = null;
  asksReply: IAsksReply = { asks: [], enabled: true, message: null };
  polls = 0;

  async version(): Promise<string> {
    return (await import('../version')).FRONTEND_VERSION;
  }
  async clusters(): Promise<ICluster[]> {
    return this.clusterList;
  }
  async connections(): Promise<IConnection[]> {
    this.polls++;
    const hold = this.hold;
    if (hold) {
      this.hold = null;
      return hold.promise;
    }
    return this.connectionList;
  }
  async connect(name: string): Promise<IConnection> {
    if (this.connectError) {
      throw this.connectError;
    }
    return view(name, 'starting', 100);
  }
  async answer(name: string): Promise<IConnection> {
    return view(name, 'verifying', 101);
  }
  async disconnect(name: string): Promise<IConnection> {
    return (
      this.disconnectReply ??
      view(name, 'disconnected', 102, { message: 'Disconnected' })
    );
  }
  async asks(): Promise<IAsksReply> {
    return this.asksReply;
  }
}

function watch(model: ReturnType<typeof quietModel>): {
  changes: IConnectionChange[];
  lost: IConnection[];
} {
  const changes: IConnectionChange[] = [];
  const lost: IConnection[] = [];
  model.stateChanged.connect((_, change) => changes.push(change));
  model.connectionLost.connect((_, connection) => lost.push(connection));
  return { changes, lost };
}

describe('a master that goes away', () => {
  it('is lost when it goes from connected to disconnected on its own (an event)', async () => {
    const backend = new Backend();
    backend.connectionList = [view('saga', 'connected', 1)];
    const model = quietModel(backend);
    const { changes, lost } = watch(model);
    await model.refresh();
    expect(changes).toEqual([
      { connection: model.connection('saga'), previous: null }
    ]);
    expect(lost).toEqual([]); // first seen: nothing went away while watched

    const gone = view('saga', 'disconnected', 2, {
      message: 'The master exited (idle past ControlPersist, or stopped)'
    });
    model.applyEvent(gone);
    expect(lost).toEqual([gone]);
    expect(model.lost.map(c => c.name)).toEqual(['saga']);
    expect(changes[1]).toEqual({ connection: gone, previous: 'connected' });
    expect(model.liveCount).toBe(0);

    // Back (a reconnect from anywhere): not lost any more.
    model.applyEvent(view('saga', 'starting', 3));
    expect(model.lost).toEqual([]);
  });

  it('is lost when a poll finds it gone (failed counts too), once', async () => {
    const backend = new Backend();
    backend.connectionList = [
      view('saga', 'connected', 1),
      view('fram', 'unresponsive', 2, { cluster: 'fram' })
    ];
    const model = quietModel(backend);
    const { lost } = watch(model);
    await model.refresh();
    backend.connectionList = [
      view('saga', 'failed', 3, { reason: 'error', message: 'broken pipe' }),
      view('fram', 'disconnected', 4, { cluster: 'fram' })
    ];
    await model.refresh();
    expect(lost.map(c => c.name).sort()).toEqual(['fram', 'saga']);
    await model.refresh(); // the same views again: nothing new
    expect(lost).toHaveLength(2);
    model.forgetLost('saga');
    expect(model.lost.map(c => c.name)).toEqual(['fram']);
  });

  it('is not lost when the person disconnected it, here or anywhere', async () => {
    const backend = new Backend();
    backend.connectionList = [
      view('saga', 'connected', 1),
      view('fram', 'connected', 2)
    ];
    const model = quietModel(backend);
    const { lost } = watch(model);
    await model.refresh();
    // Here: the model's own disconnect (its reply even says something else).
    backend.disconnectReply = view('saga', 'disconnected', 5, {
      message: 'stopped'
    });
    await model.disconnect('saga');
    // Another tab or a kernel: the server's words for a disconnect asked for.
    model.applyEvent(
      view('fram', 'disconnected', 6, { message: 'Disconnected' })
    );
    expect(lost).toEqual([]);
    expect(model.lost).toEqual([]);
    // A later loss of the same master, unasked, counts again.
    model.applyEvent(view('saga', 'connected', 7));
    model.applyEvent(view('saga', 'disconnected', 8, { message: 'gone' }));
    expect(lost.map(c => c.name)).toEqual(['saga']);
  });

  it('a login that fails was never live: not lost', async () => {
    const model = quietModel(new Backend());
    const { lost } = watch(model);
    model.applyEvent(view('saga', 'prompting', 1));
    model.applyEvent(view('saga', 'failed', 2, { reason: 'timeout' }));
    expect(lost).toEqual([]);
  });
});

describe('refresh and the event stream', () => {
  it('keeps a view an event brought while a poll was on its way', async () => {
    const backend = new Backend();
    const model = quietModel(backend);
    await model.refresh();
    const hold = new Deferred<IConnection[]>();
    backend.hold = hold;
    const polling = model.refresh();
    await sleep(0);
    // The event arrives first; the poll's reply was computed before it.
    model.applyEvent(view('saga', 'prompting', 10));
    hold.resolve([view('saga', 'starting', 9)]);
    await polling;
    expect(model.connection('saga')?.state).toBe('prompting');
  });

  it('takes a poll newer than an event that came meanwhile', async () => {
    const backend = new Backend();
    const model = quietModel(backend);
    await model.refresh();
    const hold = new Deferred<IConnection[]>();
    backend.hold = hold;
    const polling = model.refresh();
    await sleep(0);
    model.applyEvent(view('saga', 'prompting', 10));
    hold.resolve([view('saga', 'verifying', 11)]);
    await polling;
    expect(model.connection('saga')?.state).toBe('verifying');
  });

  it('drops the reply of a poll older than one already applied', async () => {
    const backend = new Backend();
    const model = quietModel(backend);
    await model.refresh();
    const hold = new Deferred<IConnection[]>();
    backend.hold = hold;
    const first = model.refresh();
    await sleep(0);
    backend.connectionList = [view('saga', 'connected', 20)];
    await model.refresh(); // asked later, answered first
    hold.resolve([view('saga', 'starting', 19)]);
    await first;
    expect(model.connection('saga')?.state).toBe('connected');
  });

  it('asks the server again once the event stream is live', async () => {
    const backend = new Backend();
    const live = new Signal<unknown, void>({});
    const model = quietModel(backend, { eventsLive: live });
    await model.refresh();
    expect(model.connection('saga')).toBeUndefined();
    // A login started between the first poll and the subscription: no event came.
    backend.connectionList = [
      view('saga', 'prompting', 3, {
        prompt: {
          id: 1,
          kind: 'otp',
          text: 'Verification code: ',
          options: [],
          secret: true,
          expires: '2026-01-01T00:01:00+00:00',
          host: null
        }
      })
    ];
    const polls = backend.polls;
    live.emit();
    await sleep(10);
    expect(backend.polls).toBe(polls + 1);
    expect(model.prompting().map(c => c.name)).toEqual(['saga']);
    model.dispose();
    live.emit(); // no longer heard
    await sleep(10);
    expect(backend.polls).toBe(polls + 1);
  });
});

describe('what cannot work here', () => {
  it('remembers why no master can be made after a 501 unsupported', async () => {
    const backend = new Backend();
    const model = quietModel(backend);
    expect(model.unsupported).toBeNull();
    const message =
      "Windows' OpenSSH (OpenSSH_for_Windows_8.1p1) has no ControlMaster, which hy2fa-lab needs to keep a login open. Run JupyterLab in WSL (the Windows Subsystem for Linux), where OpenSSH has it.";
    backend.connectError = new ApiError(message, 'unsupported', 501);
    let changes = 0;
    model.changed.connect(() => changes++);
    await expect(model.connect('saga')).rejects.toThrow(message);
    expect(model.unsupported).toBe(message);
    expect(changes).toBe(1);
    await expect(model.connect('saga')).rejects.toThrow(message);
    expect(changes).toBe(1); // said once
    // A login that begins after all (the server's ssh was fixed): no longer said.
    model.applyEvent(view('saga', 'starting', 5));
    expect(model.unsupported).toBeNull();

    // Another failure says nothing of the kind.
    const other = quietModel(backend);
    backend.connectError = new ApiError('no such cluster', 'not_found', 404);
    await expect(other.connect('saga')).rejects.toThrow();
    expect(other.unsupported).toBeNull();
  });

  it('says why the askpass bridge is off, and forgets it when it is on', async () => {
    const backend = new Backend();
    backend.asksReply = {
      asks: [],
      enabled: false,
      message:
        'OpenSSH_7.4p1 cannot ask in JupyterLab: that needs OpenSSH 8.4 or newer'
    };
    const model = quietModel(backend);
    await model.refresh();
    expect(model.asksEnabled).toBe(false);
    expect(model.asksMessage).toContain('OpenSSH_7.4p1');
    backend.asksReply = { asks: [], enabled: true, message: null };
    await model.refresh();
    expect(model.asksMessage).toBeNull();
  });
});
