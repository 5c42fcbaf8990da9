import * as fs from 'fs';
import * as path from 'path';

import type { IBackend } from '../api';
import { ApiError } from '../errors';
import { Hy2faModel } from '../model';
import { IAsk, ICluster, IConnection } from '../tokens';
import { FRONTEND_VERSION } from '../version';
import { duration, failureWords, persistWords } from '../words';

const cluster = (name: string, extra: Partial<ICluster> = {}): ICluster => ({
  name,
  label: name,
  host: `${name}.example.org`,
  source: 'builtin',
  state: 'idle',
  ...extra
});

const connection = (
  name: string,
  state: string,
  extra: Partial<IConnection> = {}
): IConnection => ({
  name,
  cluster: name,
  state,
  prompt: null,
  reason: null,
  message: '',
  control_path: `/tmp/cm-${name}`,
  master_pid: null,
  since: null,
  persist: '3600s',
  ...extra
});

class FakeBackend implements IBackend {
  serverVersion = FRONTEND_VERSION;
  versionError: Error | null = null;
  clusterList: ICluster[] = [cluster('saga'), cluster('demo')];
  connectionList: IConnection[] = [];
  answers: Array<[string, string, number | undefined]> = [];

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
  async asks(): Promise<{ asks: IAsk[]; enabled: boolean }> {
    return { asks: [], enabled: true };
  }
  async answerAsk(): Promise<void> {
    return;
  }
  async cancelAsk(): Promise<void> {
    return;
  }
}

describe('Hy2faModel', () => {
  it('takes clusters and connections from a poll', async () => {
    const backend = new FakeBackend();
    backend.connectionList = [
      connection('saga', 'connected', { master_pid: 42 })
    ];
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
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
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
    await model.refresh();
    model.applyEvent({
      name: 'saga',
      cluster: 'saga',
      state: 'prompting',
      prompt_id: 3,
      prompt_kind: 'otp',
      prompt_text: "(ola@saga.sigma2.no) One-time password (OATH) for `ola': ",
      prompt_options: [],
      prompt_secret: true,
      message: 'Wrong code — try again'
    });
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

    model.applyEvent({
      name: 'saga',
      cluster: 'saga',
      state: 'connected',
      master_pid: 7
    });
    expect(model.prompting()).toHaveLength(0);
    expect(model.connection('saga')?.since).not.toBeNull();
    expect(model.liveCount).toBe(1);

    // The master went away and the event was missed: the next poll says so.
    backend.connectionList = [connection('saga', 'disconnected')];
    await model.refresh();
    expect(model.liveCount).toBe(0);
  });

  it('links a user@cluster connection to its cluster row', async () => {
    const model = new Hy2faModel(new FakeBackend(), FRONTEND_VERSION);
    await model.refresh();
    model.applyEvent({ name: 'ola@saga', cluster: 'saga', state: 'starting' });
    expect(model.connectionFor(model.clusters[0])?.name).toBe('ola@saga');
  });

  it('passes answers through without keeping them', async () => {
    const backend = new FakeBackend();
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
    await model.answer('saga', '123456', 3);
    expect(backend.answers).toEqual([['saga', '123456', 3]]);
    expect(JSON.stringify(model.connections)).not.toContain('123456');
    expect(model.connection('saga')?.state).toBe('verifying');
  });

  it('does not let an older reply overwrite a newer event', async () => {
    const backend = new FakeBackend();
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
    // The next prompt's event arrives before the reply to the answer (computed earlier).
    model.applyEvent({
      name: 'saga',
      cluster: 'saga',
      state: 'prompting',
      prompt_id: 2,
      prompt_kind: 'otp',
      prompt_text: 'Verification code: ',
      version: 9
    });
    await model.answer('saga', '123456', 1); // its reply is version 2: verifying
    expect(model.connection('saga')?.state).toBe('prompting');
    expect(model.connection('saga')?.prompt?.id).toBe(2);
  });

  it('does not let an older event overwrite a newer reply', async () => {
    const backend = new FakeBackend();
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
    await model.answer('saga', '123456', 1); // version 2: verifying
    model.applyEvent({
      name: 'saga',
      cluster: 'saga',
      state: 'starting',
      version: 1
    });
    expect(model.connection('saga')?.state).toBe('verifying');
    model.applyEvent({
      name: 'saga',
      cluster: 'saga',
      state: 'connected',
      version: 3
    });
    expect(model.connection('saga')?.state).toBe('connected');
  });

  it('reports a version mismatch', async () => {
    const backend = new FakeBackend();
    backend.serverVersion = '0.0.9';
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
    await model.refresh();
    expect(model.serverStatus).toBe('mismatch');
    expect(model.serverVersion).toBe('0.0.9');
  });

  it('reports a missing server extension and does not poll on', async () => {
    const backend = new FakeBackend();
    backend.versionError = new ApiError('Not Found', 'not_found', 404);
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
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
    const model = new Hy2faModel(backend, FRONTEND_VERSION);
    await model.refresh();
    expect(model.serverStatus).toBe('unreachable');
  });
});

describe('words', () => {
  it('names failures in words with ssh detail', () => {
    const failed = connection('saga', 'failed', {
      reason: 'unreachable',
      message: 'Cannot reach saga.sigma2.no: Connection refused'
    });
    expect(
      failureWords(failed, cluster('saga', { hostname: 'saga.sigma2.no' }))
    ).toBe('Cannot reach saga.sigma2.no. Connection refused');
    const changed = connection('saga', 'failed', { reason: 'hostkey_changed' });
    expect(failureWords(changed)).toMatch(/^Host key changed/);
  });

  it('formats durations and persist values', () => {
    const now = Date.parse('2026-01-01T02:05:00Z');
    expect(duration('2026-01-01T00:00:00Z', now)).toBe('2 h 5 min');
    expect(duration('2026-01-01T02:04:30Z', now)).toBe('less than a minute');
    expect(persistWords('3600s')).toBe('1 h');
    expect(persistWords('600s')).toBe('10 min');
    expect(persistWords('yes')).toBe('until stopped');
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
