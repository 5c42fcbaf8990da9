import * as fs from 'fs';
import * as path from 'path';

import type { Event } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import type { IBackend } from '../api';
import { ApiError } from '../errors';
import { Hy2faModel } from '../model';
import {
  ConnectionState,
  EVENT_SCHEMA,
  ICluster,
  IConnection
} from '../tokens';
import { FRONTEND_VERSION } from '../version';
import { duration, failureWords, persistWords } from '../words';
import {
  quietModel,
  sleep,
  trans,
  waitFor,
  NoClusterSettings
} from './helpers';

const cluster = (name: string, extra: Partial<ICluster> = {}): ICluster => ({
  name,
  label: name,
  host: `${name}.example.org`,
  source: 'builtin',
  state: 'idle',
  ...extra
});

/** A connection as the REST API shows it, and as a `connection/v2` event carries it. */
const connection = (
  name: string,
  state: ConnectionState,
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
  reason: null,
  message: '',
  control_path: `/tmp/cm-${name}`,
  master_pid: null,
  since: null,
  persist: '3600s',
  updated: null,
  version: 0,
  ...extra
});

/** What the server's event stream emits: `{schema_id, ...data}`. */
const emission = (data: IConnection): Event.Emission =>
  ({ schema_id: EVENT_SCHEMA, ...data }) as unknown as Event.Emission;

class FakeBackend extends NoClusterSettings implements IBackend {
  serverVersion = FRONTEND_VERSION;
  versionError: Error | null = null;
  clusterList: ICluster[] = [cluster('saga'), cluster('demo')];
  connectionList: IConnection[] = [];
  answers: Array<[string, string, number | undefined]> = [];
  /** How many times the connections were asked for (each refresh asks once). */
  polls = 0;

  async version(): Promise<string> {
    if (this.versionError) {
      throw this.versionError;
    }
    return this.serverVersion;
  }
  async clusters(): Promise<ICluster[]> {
    return this.clusterList;
  }
  async connections(): Promise<IConnection[]> {
    this.polls++;
    return this.connectionList;
  }
  async connect(name: string): Promise<IConnection> {
    return connection(name, 'starting', {
      updated: '2026-01-01T00:00:01',
      version: 1
    });
  }
  async answer(
    name: string,
    response: string,
    promptId?: number
  ): Promise<IConnection> {
    this.answers.push([name, response, promptId]);
    return connection(name, 'verifying', {
      updated: '2026-01-01T00:00:02',
      version: 2
    });
  }
  async disconnect(name: string): Promise<IConnection> {
    return connection(name, 'disconnected');
  }
}

describe('Hy2faModel', () => {
  it('takes clusters and connections from a poll', async () => {
    const backend = new FakeBackend();
    backend.connectionList = [
      connection('saga', 'connected', { master_pid: 42 })
    ];
    const model = quietModel(backend);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(model.serverStatus).toBe('ok');
    expect(model.clusters.map(c => c.name)).toEqual(['saga', 'demo']);
    expect(model.connection('saga')?.master_pid).toBe(42);
    expect(model.liveCount).toBe(1);
    expect(changes).toBeGreaterThan(0);
  });

  it('applies events at once, prompt included, and a poll repairs a missed one', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    await model.refresh();
    model.applyEvent(
      connection('saga', 'prompting', {
        prompt: {
          id: 3,
          kind: 'otp',
          text: "(ola@saga.sigma2.no) One-time password (OATH) for `ola': ",
          options: [],
          secret: true
        },
        message: 'Wrong code — try again',
        version: 1
      })
    );
    const prompting = model.prompting();
    expect(prompting).toHaveLength(1);
    expect(prompting[0].prompt).toEqual({
      id: 3,
      kind: 'otp',
      text: "(ola@saga.sigma2.no) One-time password (OATH) for `ola': ",
      options: [],
      secret: true
    });
    expect(model.connectionFor(model.clusters[0])?.message).toBe(
      'Wrong code — try again'
    );

    model.applyEvent(
      connection('saga', 'connected', {
        master_pid: 7,
        since: '2026-01-01T00:00:03+00:00',
        version: 2
      })
    );
    expect(model.prompting()).toHaveLength(0);
    expect(model.connection('saga')?.since).toBe('2026-01-01T00:00:03+00:00');
    expect(model.liveCount).toBe(1);

    // The master went away and the event was missed: the next poll says so.
    backend.connectionList = [connection('saga', 'disconnected')];
    await model.refresh();
    expect(model.liveCount).toBe(0);
  });

  it('tells two connections of one name apart by their id', async () => {
    const backend = new FakeBackend();
    const disconnected: string[] = [];
    backend.disconnect = async (key: string) => {
      disconnected.push(key);
      return connection('saga', 'failed', { id: key, version: 9 });
    };
    // A master a notebook's own ssh made at its own socket, and a login from the sidebar.
    const notebooks = connection('saga', 'connected', {
      id: 'hsp',
      made_by: { kind: 'ssh', notebook: 'Analysis.ipynb' },
      control_path: '/tmp/hsp.sock',
      version: 3
    });
    const login = connection('saga', 'prompting', { id: 'login', version: 4 });
    backend.connectionList = [notebooks, login];
    const model = quietModel(backend);
    await model.refresh();
    expect(model.connections.map(c => c.id).sort()).toEqual(['hsp', 'login']);
    expect(model.connection('saga')?.id).toBe('login');
    expect(model.connection('hsp')?.made_by?.notebook).toBe('Analysis.ipynb');
    expect(model.connectionFor(model.clusters[0])?.id).toBe('login');
    await model.disconnect('saga');
    expect(disconnected).toEqual(['login']); // never the notebook's master
    await model.answer('saga', '123456');
    expect(backend.answers[0][0]).toBe('login');
  });

  it('drops a connection another login superseded, and a late view of it too', async () => {
    const backend = new FakeBackend();
    const events = new Signal<unknown, Event.Emission>({});
    const old = connection('saga', 'failed', { id: 'old', version: 2 });
    backend.connectionList = [old];
    const model = quietModel(backend, { events });
    await model.refresh();
    events.emit(emission({ ...old, superseded_by: 'new', version: 5 }));
    events.emit(
      emission(connection('saga', 'starting', { id: 'new', version: 6 }))
    );
    expect(model.connections.map(c => c.id)).toEqual(['new']);
    events.emit(emission({ ...old, version: 7 })); // a late view of the superseded one
    expect(model.connections.map(c => c.id)).toEqual(['new']);
    expect(model.connectionFor(model.clusters[0])?.id).toBe('new');
  });

  it('takes an event of the server stream as the REST view of the connection', async () => {
    const backend = new FakeBackend();
    const events = new Signal<unknown, Event.Emission>({});
    const model = quietModel(backend, { events });
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);
    const view = connection('ola@saga', 'prompting', {
      cluster: 'saga',
      host: 'saga.sigma2.no',
      prompt: {
        id: 1,
        kind: 'duo',
        text: 'Duo two-factor login\n 1. Duo Push\nPasscode or option (1-1): ',
        options: ['Duo Push'],
        secret: true
      },
      updated: '2026-01-01T00:00:01+00:00',
      version: 5
    });
    events.emit(emission(view));
    expect(changes).toBe(1);
    expect(model.connection('ola@saga')).toEqual(view);
    expect(model.connectionFor(model.clusters[0])?.name).toBe('ola@saga');
    expect(model.prompting().map(c => c.prompt?.options)).toEqual([
      ['Duo Push']
    ]);

    // Another schema's events are none of its business.
    events.emit({
      schema_id:
        'https://events.jupyter.org/jupyter_server/contents_service/v1',
      action: 'save',
      path: 'x.ipynb'
    } as unknown as Event.Emission);
    expect(changes).toBe(1);
  });

  it('links a user@cluster connection to its cluster row', async () => {
    const model = quietModel(new FakeBackend());
    await model.refresh();
    model.applyEvent(
      connection('ola@saga', 'starting', { cluster: 'saga', version: 1 })
    );
    expect(model.connectionFor(model.clusters[0])?.name).toBe('ola@saga');
  });

  it('passes answers through without keeping them', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    await model.answer('saga', '123456', 3);
    expect(backend.answers).toEqual([['saga', '123456', 3]]);
    expect(JSON.stringify(model.connections)).not.toContain('123456');
    expect(model.connection('saga')?.state).toBe('verifying');
  });

  it('does not let an older reply overwrite a newer event', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    // The next prompt's event arrives before the reply to the answer (computed earlier).
    model.applyEvent(
      connection('saga', 'prompting', {
        prompt: {
          id: 2,
          kind: 'otp',
          text: 'Verification code: ',
          options: [],
          secret: true
        },
        version: 9
      })
    );
    await model.answer('saga', '123456', 1); // its reply is version 2: verifying
    expect(model.connection('saga')?.state).toBe('prompting');
    expect(model.connection('saga')?.prompt?.id).toBe(2);
  });

  it('does not let an older event overwrite a newer reply', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    await model.answer('saga', '123456', 1); // version 2: verifying
    model.applyEvent(connection('saga', 'starting', { version: 1 }));
    expect(model.connection('saga')?.state).toBe('verifying');
    model.applyEvent(connection('saga', 'connected', { version: 3 }));
    expect(model.connection('saga')?.state).toBe('connected');
  });

  it('reports a version mismatch', async () => {
    const backend = new FakeBackend();
    backend.serverVersion = '0.0.9';
    const model = quietModel(backend);
    await model.refresh();
    expect(model.serverStatus).toBe('mismatch');
    expect(model.serverVersion).toBe('0.0.9');
  });

  it('reports a missing server extension and does not poll on', async () => {
    const backend = new FakeBackend();
    backend.versionError = new ApiError('Not Found', 'not_found', 404);
    const model = quietModel(backend);
    await model.refresh();
    expect(model.serverStatus).toBe('missing');
    expect(model.clusters).toEqual([]);
    backend.versionError = null;
    await model.refresh();
    expect(model.serverStatus).toBe('ok');
  });

  it('reports an unreachable server', async () => {
    const backend = new FakeBackend();
    backend.versionError = new TypeError('Failed to fetch');
    const model = quietModel(backend);
    await model.refresh();
    expect(model.serverStatus).toBe('unreachable');
  });
  it('owns its poll, which dispose() stops, with the event listener and the signals', async () => {
    const backend = new FakeBackend();
    const events = new Signal<unknown, Event.Emission>({});
    const model = new Hy2faModel({
      backend,
      frontendVersion: FRONTEND_VERSION,
      events,
      pollInterval: 10
    });
    // Nobody calls refresh(): the poll does, again and again.
    await waitFor(() => backend.polls >= 2);
    expect(model.serverStatus).toBe('ok');
    let changes = 0;
    model.changed.connect(() => changes++);
    model.asksChanged.connect(() => changes++);

    model.dispose();
    expect(model.isDisposed).toBe(true);
    await sleep(0); // a poll already under way ends
    const polls = backend.polls;
    await sleep(60);
    expect(backend.polls).toBe(polls);

    // The event stream reaches it no more.
    events.emit(emission(connection('saga', 'connected', { version: 1 })));
    expect(model.connection('saga')).toBeUndefined();
    // Nor does anything it would still say reach its former listeners.
    model.applyEvent(connection('saga', 'connected', { version: 2 }));
    expect(changes).toBe(0);

    model.dispose(); // twice is harmless
    model.pollInterval = 20;
    expect(model.isDisposed).toBe(true);
  });

  it('changes its poll interval when told', () => {
    const model = quietModel(new FakeBackend(), { pollInterval: 10000 });
    expect(model.pollInterval).toBe(10000);
    model.pollInterval = 30000;
    expect(model.pollInterval).toBe(30000);
    model.dispose();
  });
});

describe('words', () => {
  it('names failures in words with ssh detail', () => {
    const failed = connection('saga', 'failed', {
      reason: 'unreachable',
      message: 'Cannot reach saga.sigma2.no: Connection refused'
    });
    expect(
      failureWords(
        failed,
        trans,
        cluster('saga', { hostname: 'saga.sigma2.no' })
      )
    ).toBe('Cannot reach saga.sigma2.no. Connection refused');
    const changed = connection('saga', 'failed', { reason: 'hostkey_changed' });
    expect(failureWords(changed, trans)).toBe(
      'Host key changed for saga.example.org: not connecting'
    );
    const refused = connection('saga', 'failed', {
      reason: 'auth_failed',
      message: 'Login refused: the code or password was not accepted'
    });
    expect(failureWords(refused, trans)).toBe(
      'Login refused: the code or password was not accepted'
    );
  });

  it('formats durations and persist values', () => {
    const now = Date.parse('2026-01-01T02:05:00Z');
    expect(duration('2026-01-01T00:00:00Z', trans, now)).toBe('2 h 5 min');
    expect(duration('2026-01-01T01:55:00Z', trans, now)).toBe('10 min');
    expect(duration('2026-01-01T02:04:30Z', trans, now)).toBe(
      'less than a minute'
    );
    expect(persistWords('3600s', trans)).toBe('1 h');
    expect(persistWords('600s', trans)).toBe('10 min');
    expect(persistWords('45s', trans)).toBe('45 s');
    expect(persistWords('yes', trans)).toBe('until stopped');
  });
});

describe('version', () => {
  it('matches package.json', () => {
    const pkg = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')
    );
    expect(FRONTEND_VERSION).toBe(pkg.version);
  });
});
