import type { Event } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import type { IBackend } from '../api';
import { arrange, rank } from '../arrange';
import { ApiError } from '../errors';
import {
  compactPersist,
  errorField,
  formOf,
  mineChanges,
  needsUserName,
  parseSshLine,
  refusal,
  splits,
  suggestName
} from '../mine';
import {
  CLUSTER_EVENT_SCHEMA,
  ICluster,
  IClusterEvent,
  IConnection,
  IMineValues,
  INewCluster,
  ISshConfigPreview,
  ISshConfigWritten
} from '../tokens';
import { NoAsks, quietModel } from './helpers';

const cluster = (name: string, extra: Partial<ICluster> = {}): ICluster => ({
  name,
  label: `${name[0].toUpperCase()}${name.slice(1)} (Sigma2)`,
  host: `${name}.sigma2.no`,
  hostname: `${name}.sigma2.no`,
  user: 'ola',
  port: 22,
  persist: '3600s',
  source: 'builtin',
  mine: [],
  state: 'idle',
  ...extra
});

describe('a pasted ssh line', () => {
  it.each([
    ['saga.sigma2.no', { host: 'saga.sigma2.no' }],
    ['olan@saga.sigma2.no', { host: 'saga.sigma2.no', user: 'olan' }],
    [
      'olan@login.lab.org:2222',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    ['login.lab.org:2222', { host: 'login.lab.org', port: 2222 }],
    ['  olan@saga.sigma2.no \n', { host: 'saga.sigma2.no', user: 'olan' }],
    ['[::1]:2222', { host: '::1', port: 2222 }],
    ['olan@[fe80::1]', { host: 'fe80::1', user: 'olan' }],
    ['::1', { host: '::1' }],
    [
      'ssh://olan@login.lab.org:2222/',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    ['ssh olan@saga.sigma2.no', { host: 'saga.sigma2.no', user: 'olan' }],
    [
      'ssh -p 2222 olan@login.lab.org',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    [
      'ssh olan@login.lab.org -p 2222',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    ['ssh -l olan login.lab.org', { host: 'login.lab.org', user: 'olan' }],
    [
      'ssh -lolan -p2222 login.lab.org',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    [
      '$ ssh -i ~/.ssh/id_lab -A -J jump.lab.org -p 2222 olan@login.lab.org squeue -u olan',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    ['ssh -vp 2222 login.lab.org', { host: 'login.lab.org', port: 2222 }],
    [
      'ssh -o Port=2222 -o "User olan" login.lab.org',
      { host: 'login.lab.org', user: 'olan', port: 2222 }
    ],
    // An option wins over the destination's user, as in ssh.
    ['ssh -l kari olan@login.lab.org', { host: 'login.lab.org', user: 'kari' }],
    ['/usr/bin/ssh -- olan@saga', { host: 'saga', user: 'olan' }],
    ['ssh -- saga -p 2222', { host: 'saga' }] // after --, -p is the command
  ])('%s', (line, expected) => {
    expect(parseSshLine(line)).toEqual(expected);
  });

  it.each([
    '',
    '   ',
    'olan@',
    '@saga',
    'saga:0',
    'saga:70000',
    'saga:ssh',
    'ssh',
    'ssh -p',
    'ssh -p 99999 saga',
    'ssh -Z saga', // not an ssh option
    'ssh "saga',
    'two words',
    'scp file saga:',
    'http://saga.sigma2.no/x'
  ])('not a line: %j', line => {
    expect(parseSshLine(line)).toBeNull();
  });

  it('splits only what is more than a host name', () => {
    expect(splits('saga.sigma2.no')).toBeNull();
    expect(splits('  saga.sigma2.no ')).toBeNull(); // trimmed when sent
    expect(splits('olan@saga.sigma2.no')).toEqual({
      host: 'saga.sigma2.no',
      user: 'olan'
    });
    expect(splits('ssh saga')).toEqual({ host: 'saga' });
    expect(splits('not a host')).toBeNull();
  });

  it('suggests a name from the host', () => {
    expect(suggestName('saga.sigma2.no')).toBe('saga');
    expect(suggestName('login.lab.example.org')).toBe('lab');
    expect(suggestName('login2.hpc.uni.no')).toBe('hpc');
    expect(suggestName('Mylab')).toBe('mylab');
    expect(suggestName('127.0.0.1')).toBe('');
    expect(suggestName('::1')).toBe('');
    expect(suggestName('')).toBe('');
  });
});

describe('refusals of the server', () => {
  it('are said beside the field they name', () => {
    expect(
      errorField("user must not contain '@', ':', '/' or '%': 'a@b'")
    ).toBe('user');
    expect(
      errorField(
        'your settings for saga: port must be a number from 1 to 65535, not 0'
      )
    ).toBe('port');
    expect(
      errorField(
        "persist must be seconds, a duration like 10m, 2h or 1h40m, or 'yes', not 'x'"
      )
    ).toBe('persist');
    expect(errorField('label must not be empty')).toBe('label');
    expect(
      errorField(
        "cluster name may hold letters, digits, '.', '_' and '-' only: 'a b'"
      )
    ).toBe('name');
    expect(
      errorField("host contains characters ssh does not accept: 'a;b'")
    ).toBe('host');
    expect(errorField('a cluster of your own needs a host')).toBe('host');
    expect(
      errorField('at most 500 clusters can have your settings')
    ).toBeNull();
  });

  it('a 422 goes to its field, a taken name to the name, the rest to the form', () => {
    expect(
      refusal(new ApiError('user must not contain whitespace', 'invalid', 422))
    ).toEqual({ user: 'user must not contain whitespace' });
    expect(
      refusal(
        new ApiError('There is a cluster named saga', 'cluster_exists', 409)
      )
    ).toEqual({ name: 'There is a cluster named saga' });
    expect(
      refusal(new ApiError('cannot write the file', 'clusters_file', 502))
    ).toEqual({ form: 'cannot write the file' });
    expect(refusal(new ApiError('strange', 'invalid', 422))).toEqual({
      form: 'strange'
    });
  });
});

describe('the edit form', () => {
  it('opens with the values in use, persist in a person’s words', () => {
    expect(formOf(cluster('saga'))).toEqual({
      user: 'ola',
      port: '22',
      persist: '1h',
      label: 'Saga (Sigma2)'
    });
    expect(compactPersist('5400s')).toBe('1h30m');
    expect(compactPersist('90s')).toBe('1m30s');
    expect(compactPersist('45s')).toBe('45s');
    expect(compactPersist('yes')).toBe('yes');
    expect(compactPersist('0')).toBe('yes');
    expect(compactPersist(null)).toBe('');
  });

  it('sends what changed, forgets a value of theirs emptied, keeps the rest', () => {
    const saga = cluster('saga', { mine: ['label'], label: 'My Saga' });
    const form = { ...formOf(saga) };
    const fields = ['user', 'persist', 'label'] as const;
    expect(mineChanges(saga, form, fields)).toEqual({});
    expect(mineChanges(saga, { ...form, user: ' olan ' }, fields)).toEqual({
      user: 'olan'
    });
    // Emptied: theirs goes back to the site's; the site's own cannot be emptied here.
    expect(mineChanges(saga, { ...form, label: '' }, fields)).toEqual({
      label: null
    });
    expect(mineChanges(saga, { ...form, user: '' }, fields)).toEqual({});
    expect(mineChanges(saga, { ...form, persist: '2h' }, fields)).toEqual({
      persist: '2h'
    });
    const own = cluster('lab', { source: 'mine', mine: ['host', 'port'] });
    expect(
      mineChanges(own, { ...formOf(own), port: '2222' }, ['user', 'port'])
    ).toEqual({ port: 2222 });
    // Not a number: sent as typed, so the server's words say what is wrong.
    expect(
      mineChanges(own, { ...formOf(own), port: 'x' }, ['user', 'port'])
    ).toEqual({ port: 'x' });
  });

  it('asks the user name only on a built-in cluster whose user name is not theirs', () => {
    expect(needsUserName(cluster('saga'))).toBe(true);
    expect(needsUserName(cluster('saga', { mine: ['label'] }))).toBe(true);
    expect(needsUserName(cluster('saga', { mine: ['user'] }))).toBe(false);
    expect(needsUserName(cluster('lab', { source: 'config' }))).toBe(false);
    expect(needsUserName(cluster('lab', { source: 'mine' }))).toBe(false);
    expect(needsUserName(cluster('lab', { source: 'ssh_config' }))).toBe(false);
  });

  it('puts a cluster with settings of theirs, or of their own, with their clusters', () => {
    const prefs = { pinned: [], recent: [] };
    expect(rank(cluster('saga'), 'idle', prefs)).toBeNull();
    expect(rank(cluster('saga', { mine: ['user'] }), 'idle', prefs)).toBe(4);
    expect(rank(cluster('lab', { source: 'mine' }), 'idle', prefs)).toBe(4);
    const { mine, more } = arrange(
      [cluster('saga', { mine: ['user'] }), cluster('fram')],
      () => 'idle',
      prefs
    );
    expect(mine.map(c => c.name)).toEqual(['saga']);
    expect(more.map(c => c.name)).toEqual(['fram']);
  });
});

class Deferred<T> {
  promise: Promise<T>;
  resolve!: (value: T) => void;
  constructor() {
    this.promise = new Promise<T>(resolve => (this.resolve = resolve));
  }
}

/** A server of the person's settings: rows kept by name, calls recorded. */
class SettingsBackend extends NoAsks implements IBackend {
  rows: ICluster[] = [cluster('saga'), cluster('fram')];
  calls: string[] = [];
  /** When set, the next GET clusters waits for the test. */
  held: Deferred<void> | null = null;

  async version(): Promise<string> {
    const { FRONTEND_VERSION } = await import('../version');
    return FRONTEND_VERSION;
  }
  async clusters(): Promise<ICluster[]> {
    const rows = this.rows.map(row => ({ ...row }));
    if (this.held) {
      const held = this.held;
      this.held = null;
      await held.promise;
    }
    return rows;
  }
  async connections(): Promise<IConnection[]> {
    return [];
  }
  async connect(): Promise<IConnection> {
    throw new Error('not expected');
  }
  async answer(): Promise<IConnection> {
    throw new Error('not expected');
  }
  async disconnect(): Promise<IConnection> {
    throw new Error('not expected');
  }
  async setMine(name: string, values: IMineValues): Promise<ICluster> {
    this.calls.push(`PATCH ${name} ${JSON.stringify(values)}`);
    if (values.user === 'o la') {
      throw new ApiError(
        "user must not contain whitespace or control characters: 'o la'",
        'invalid',
        422
      );
    }
    const row = this.rows.find(r => r.name === name)!;
    Object.assign(row, values, { mine: Object.keys(values) });
    return { ...row };
  }
  async addCluster(values: INewCluster): Promise<ICluster> {
    this.calls.push(`POST ${JSON.stringify(values)}`);
    const row = cluster(values.name, {
      host: values.host,
      hostname: values.host,
      user: values.user ?? 'ola',
      port: Number(values.port ?? 22),
      source: 'mine',
      mine: Object.keys(values).filter(key => key !== 'name')
    });
    this.rows.push(row);
    return { ...row };
  }
  async forgetMine(name: string): Promise<ICluster | null> {
    this.calls.push(`DELETE ${name}`);
    const row = this.rows.find(r => r.name === name)!;
    if (row.source === 'mine') {
      this.rows = this.rows.filter(r => r !== row);
      return null;
    }
    Object.assign(row, cluster(name));
    return { ...row };
  }
  async sshConfigPreview(name: string): Promise<ISshConfigPreview> {
    this.calls.push(`GET config-ssh ${name}`);
    return {
      cluster: name,
      path: '/h/.ssh/config',
      block: 'Host saga',
      written: false
    };
  }
  async writeSshConfig(name: string): Promise<ISshConfigWritten> {
    this.calls.push(`POST config-ssh ${name}`);
    return {
      cluster: name,
      path: '/h/.ssh/config',
      backup: null,
      block: 'Host saga',
      overridden: []
    };
  }
  async removeSshConfig(name: string): Promise<void> {
    this.calls.push(`DELETE config-ssh ${name}`);
  }
}

const clusterEvent = (
  row: ICluster,
  action: IClusterEvent['action']
): Event.Emission =>
  ({
    schema_id: CLUSTER_EVENT_SCHEMA,
    action,
    ...row
  }) as unknown as Event.Emission;

describe('the model and the person’s settings', () => {
  it('applies cluster events: added, changed, removed', async () => {
    const backend = new SettingsBackend();
    const events = new Signal<unknown, Event.Emission>({});
    const model = quietModel(backend, { events });
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);

    events.emit(
      clusterEvent(cluster('saga', { user: 'olan', mine: ['user'] }), 'changed')
    );
    expect(model.cluster('saga')?.user).toBe('olan');
    expect(model.cluster('saga')?.mine).toEqual(['user']);
    expect(model.clusters.map(c => c.name)).toEqual(['saga', 'fram']);

    events.emit(
      clusterEvent(cluster('lab', { source: 'mine', mine: ['host'] }), 'added')
    );
    expect(model.clusters.map(c => c.name)).toEqual(['saga', 'fram', 'lab']);
    expect(model.cluster('lab')?.source).toBe('mine');

    events.emit(clusterEvent(cluster('lab', { source: 'mine' }), 'removed'));
    expect(model.clusters.map(c => c.name)).toEqual(['saga', 'fram']);
    expect(changes).toBe(3);
    // The event's action is not kept on the row.
    expect('action' in model.cluster('saga')!).toBe(false);
    model.dispose();
  });

  it('keeps a change an event brought over a poll that was asked before it', async () => {
    const backend = new SettingsBackend();
    const events = new Signal<unknown, Event.Emission>({});
    const model = quietModel(backend, { events });
    await model.refresh();
    backend.held = new Deferred<void>();
    const held = backend.held;
    const polling = model.refresh(); // its rows are the old ones
    await new Promise(resolve => setTimeout(resolve, 0));
    events.emit(
      clusterEvent(cluster('saga', { user: 'olan', mine: ['user'] }), 'changed')
    );
    events.emit(clusterEvent(cluster('lab', { source: 'mine' }), 'added'));
    events.emit(clusterEvent(cluster('fram'), 'removed'));
    held.resolve();
    await polling;
    expect(model.cluster('saga')?.user).toBe('olan');
    expect(model.clusters.map(c => c.name)).toEqual(['saga', 'lab']);
    // A poll asked after them is the server's word again.
    await model.refresh();
    expect(model.clusters.map(c => c.name)).toEqual(['saga', 'fram']);
    expect(model.cluster('saga')?.user).toBe('ola');
    model.dispose();
  });

  it('sets, adds and forgets through the server, and shows the rows at once', async () => {
    const backend = new SettingsBackend();
    const model = quietModel(backend);
    await model.refresh();

    const row = await model.setMine('saga', { user: 'olan' });
    expect(row.user).toBe('olan');
    expect(model.cluster('saga')?.mine).toEqual(['user']);

    await expect(model.setMine('saga', { user: 'o la' })).rejects.toMatchObject(
      {
        status: 422
      }
    );
    expect(model.cluster('saga')?.user).toBe('olan'); // refused: nothing changed

    await model.addCluster({
      name: 'lab',
      host: '127.0.0.1',
      user: 'kari',
      port: 2222
    });
    expect(model.cluster('lab')).toMatchObject({
      source: 'mine',
      user: 'kari',
      port: 2222
    });

    expect(await model.forgetMine('saga')).toMatchObject({
      user: 'ola',
      mine: []
    });
    expect(model.cluster('saga')?.mine).toEqual([]);
    expect(await model.forgetMine('lab')).toBeNull();
    expect(model.cluster('lab')).toBeUndefined();

    await model.sshConfigPreview('saga');
    await model.writeSshConfig('saga');
    await model.removeSshConfig('saga');
    expect(backend.calls).toEqual([
      'PATCH saga {"user":"olan"}',
      'PATCH saga {"user":"o la"}',
      'POST {"name":"lab","host":"127.0.0.1","user":"kari","port":2222}',
      'DELETE saga',
      'DELETE lab',
      'GET config-ssh saga',
      'POST config-ssh saga',
      'DELETE config-ssh saga'
    ]);
    model.dispose();
  });
});
