import type { Event } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import type { IBackend } from '../api';
import { ApiError } from '../errors';
import { Hy2faModel } from '../model';
import {
  ASK_EVENT_SCHEMA,
  IAsk,
  IAskEvent,
  ICluster,
  IConnection
} from '../tokens';
import { FRONTEND_VERSION } from '../version';
import { askTitle, commandLine, originWords } from '../words';
import { quietModel, trans, NoClusterSettings } from './helpers';

const HOSTKEY_TEXT =
  "The authenticity of host '[127.0.0.1]:2222 ([127.0.0.1]:2222)' can't be established.\n" +
  'ED25519 key fingerprint is SHA256:Pn0Tq5Lm7VgA0lC5rPzJ3vZ0cYc0b7cR4l4d6V9mFkQ.\n' +
  'This key is not known by any other names.\n' +
  'Are you sure you want to continue connecting (yes/no/[fingerprint])? ';

const ask = (id: string, extra: Partial<IAsk> = {}): IAsk => ({
  id,
  prompt: {
    kind: 'otp',
    text: '(ola@saga.sigma2.no) Verification code: ',
    secret: true,
    options: []
  },
  host: 'saga.sigma2.no',
  command: ['ssh', '-o', 'ControlPath=/tmp/x.sock', 'saga', 'squeue'],
  origin: { pid: 4242, kernel_id: 'k-1', notebook: 'Analysis.ipynb' },
  since: 1000,
  ...extra
});

/** A reply the test releases when it wants: to reorder concurrent fetches. */
class Deferred<T> {
  promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

class FakeBackend extends NoClusterSettings implements IBackend {
  waiting: IAsk[] = [];
  enabled = true;
  asksError: Error | null = null;
  /** When set, each GET asks waits for the test to release it. */
  held: Array<Deferred<{ asks: IAsk[]; enabled: boolean }>> | null = null;
  answerError: Error | null = null;
  calls: string[] = [];
  answered: Array<[string, string]> = [];

  async version(): Promise<string> {
    return FRONTEND_VERSION;
  }
  async clusters(): Promise<ICluster[]> {
    return [];
  }
  async connections(): Promise<IConnection[]> {
    return [];
  }
  connect(): Promise<IConnection> {
    throw new Error('not used');
  }
  answer(): Promise<IConnection> {
    throw new Error('not used');
  }
  disconnect(): Promise<IConnection> {
    throw new Error('not used');
  }
  async asks(): Promise<{ asks: IAsk[]; enabled: boolean }> {
    this.calls.push('GET asks');
    if (this.asksError) {
      throw this.asksError;
    }
    const reply = { asks: [...this.waiting], enabled: this.enabled };
    if (this.held) {
      const deferred = new Deferred<{ asks: IAsk[]; enabled: boolean }>();
      this.held.push(deferred);
      return deferred.promise.then(() => reply);
    }
    return reply;
  }
  async answerAsk(id: string, response: string): Promise<void> {
    this.calls.push(`POST asks/${id}/answer`);
    if (this.answerError) {
      throw this.answerError;
    }
    this.answered.push([id, response]);
    this.waiting = this.waiting.filter(a => a.id !== id);
  }
  async cancelAsk(id: string): Promise<void> {
    this.calls.push(`DELETE asks/${id}`);
    if (this.answerError) {
      throw this.answerError;
    }
    this.waiting = this.waiting.filter(a => a.id !== id);
  }
}

/** An `ask/v2` event: the ask as `GET hy2fa/asks` lists it, and what happened. */
const event = (id: string, action: IAskEvent['action']): IAskEvent => ({
  action,
  ...ask(id)
});

const ids = (model: Hy2faModel): string[] => model.asks.map(a => a.id);

describe('Hy2faModel asks', () => {
  it('takes the waiting asks from the poll, oldest first, and says so', async () => {
    const backend = new FakeBackend();
    backend.waiting = [
      ask('2-b', { since: 2000 }),
      ask('1-a', { since: 1000 })
    ];
    const model = quietModel(backend);
    let asksChanged = 0;
    let changed = 0;
    model.asksChanged.connect(() => asksChanged++);
    model.changed.connect(() => changed++);
    await model.refresh();
    expect(ids(model)).toEqual(['1-a', '2-b']);
    expect(model.asksEnabled).toBe(true);
    expect(model.ask('1-a')?.origin.notebook).toBe('Analysis.ipynb');
    expect(asksChanged).toBe(1);
    expect(changed).toBeGreaterThan(0);

    // The same asks again: nothing to tell.
    await model.refresh();
    expect(asksChanged).toBe(1);

    // Both went away and their events were missed: the next poll repairs it.
    backend.waiting = [];
    await model.refresh();
    expect(ids(model)).toEqual([]);
    expect(asksChanged).toBe(2);
  });

  it('takes the ask from an `asked` event and drops it on any other action', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    let asksChanged = 0;
    model.asksChanged.connect(() => asksChanged++);
    model.applyAskEvent(event('1-a', 'asked'));
    expect(backend.calls).toEqual([]); // the event says it all
    expect(model.ask('1-a')).toEqual(ask('1-a'));
    expect(model.asksEnabled).toBe(true);
    expect(asksChanged).toBe(1);
    model.applyAskEvent(event('1-a', 'asked')); // a replay: nothing new
    expect(asksChanged).toBe(1);

    for (const action of [
      'answered',
      'cancelled',
      'expired',
      'withdrawn'
    ] as const) {
      const id = `x-${action}`;
      model.applyAskEvent(event(id, 'asked'));
      expect(ids(model)).toContain(id);
      model.applyAskEvent(event(id, action));
      expect(ids(model)).not.toContain(id);
    }
    expect(backend.calls).toEqual([]);
  });

  it('hears ask events on the server stream', () => {
    const backend = new FakeBackend();
    const events = new Signal<unknown, Event.Emission>({});
    const model = quietModel(backend, { events });
    const emit = (data: IAskEvent): void =>
      events.emit({
        schema_id: ASK_EVENT_SCHEMA,
        ...data
      } as unknown as Event.Emission);
    emit(event('1-a', 'asked'));
    expect(model.ask('1-a')?.command).toEqual(ask('1-a').command);
    expect(model.ask('1-a')?.origin.notebook).toBe('Analysis.ipynb');
    expect(model.ask('1-a')).not.toHaveProperty('action');
    emit(event('1-a', 'answered'));
    expect(ids(model)).toEqual([]);
    model.dispose();
    emit(event('2-b', 'asked'));
    expect(ids(model)).toEqual([]);
  });

  it('never brings back an ask settled while a poll was on its way', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.waiting = [ask('1-a')];
    backend.held = [];
    const polling = model.refreshAsks();
    model.applyAskEvent(event('1-a', 'asked'));
    // Answered in another tab before the reply (which still lists it) arrives.
    model.applyAskEvent(event('1-a', 'answered'));
    backend.held[0].resolve({ asks: [], enabled: true });
    await polling;
    expect(ids(model)).toEqual([]);
    // Nor does a later `asked` replay for the same id, or a later poll that lists it.
    model.applyAskEvent(event('1-a', 'asked'));
    expect(ids(model)).toEqual([]);
    backend.held = null;
    await model.refreshAsks();
    expect(ids(model)).toEqual([]);
  });

  it('drops a reply older than an event already applied', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.held = [];
    backend.waiting = [];
    const poll = model.refreshAsks(); // a poll, sent before the ask came
    model.applyAskEvent(event('1-a', 'asked'));
    expect(ids(model)).toEqual(['1-a']);
    backend.held[0].resolve({ asks: [], enabled: true });
    await poll;
    expect(ids(model)).toEqual(['1-a']); // the older, empty reply changed nothing
  });

  it('drops a reply older than one already applied', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.held = [];
    backend.waiting = [];
    const first = model.refreshAsks(); // sent before the ask came
    backend.waiting = [ask('1-a')];
    const second = model.refreshAsks();
    backend.held[1].resolve({ asks: [], enabled: true });
    await second;
    expect(ids(model)).toEqual(['1-a']);
    backend.held[0].resolve({ asks: [], enabled: true });
    await first;
    expect(ids(model)).toEqual(['1-a']);
  });

  it('passes an answer through without keeping it, and forgets the ask', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.waiting = [ask('1-a'), ask('2-b', { since: 2000 })];
    await model.refreshAsks();
    let asksChanged = 0;
    model.asksChanged.connect(() => asksChanged++);
    await model.answerAsk('1-a', '424242');
    expect(backend.answered).toEqual([['1-a', '424242']]);
    expect(ids(model)).toEqual(['2-b']);
    expect(asksChanged).toBe(1);
    expect(JSON.stringify(model.asks)).not.toContain('424242');
    // A poll reply sent before the answer does not bring it back.
    backend.waiting = [ask('1-a'), ask('2-b', { since: 2000 })];
    await model.refreshAsks();
    expect(ids(model)).toEqual(['2-b']);
  });

  it('cancels with DELETE and forgets the ask', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.waiting = [ask('1-a')];
    await model.refreshAsks();
    await model.cancelAsk('1-a');
    expect(backend.calls).toContain('DELETE asks/1-a');
    expect(ids(model)).toEqual([]);
  });

  it('forgets an ask that is gone or answered elsewhere, keeps one whose answer was refused', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.waiting = [ask('1-a'), ask('2-b'), ask('3-c')];
    await model.refreshAsks();

    backend.answerError = new ApiError('No question', 'unknown_ask', 404);
    await expect(model.answerAsk('1-a', '1')).rejects.toThrow('No question');
    backend.answerError = new ApiError('already answered', 'no_prompt', 409);
    await expect(model.cancelAsk('2-b')).rejects.toThrow('already answered');
    backend.answerError = new ApiError('one line', 'invalid_input', 422);
    await expect(model.answerAsk('3-c', 'x')).rejects.toThrow('one line');
    expect(ids(model)).toEqual(['3-c']);

    backend.answerError = new TypeError('Failed to fetch');
    await expect(model.answerAsk('3-c', 'x')).rejects.toThrow();
    expect(ids(model)).toEqual(['3-c']);
  });

  it('keeps the asks while the server is unreachable; a server without the bridge has none', async () => {
    const backend = new FakeBackend();
    const model = quietModel(backend);
    backend.waiting = [ask('1-a')];
    await model.refreshAsks();
    backend.asksError = new TypeError('Failed to fetch');
    await model.refreshAsks();
    expect(ids(model)).toEqual(['1-a']);
    backend.asksError = new ApiError('Not Found', 'not_found', 404);
    await model.refreshAsks();
    expect(ids(model)).toEqual([]);
    expect(model.asksEnabled).toBe(false);

    backend.asksError = null;
    backend.enabled = false;
    backend.waiting = [];
    await model.refreshAsks();
    expect(model.asksEnabled).toBe(false);
  });
});

describe('ask words', () => {
  it('shows the command line as a shell would', () => {
    expect(commandLine(ask('1').command)).toBe(
      'ssh -o ControlPath=/tmp/x.sock saga squeue'
    );
    expect(
      commandLine(['ssh', '-o', 'ProxyCommand=nc %h 22', "it's", ''])
    ).toBe(`ssh -o 'ProxyCommand=nc %h 22' 'it'\\''s' ''`);
    expect(commandLine([])).toBe('');
  });

  it('names the notebook, else the kernel, else the process', () => {
    expect(originWords(ask('1'), trans)).toBe('from Analysis.ipynb');
    expect(
      originWords(
        ask('1', { origin: { pid: 7, kernel_id: 'abcdef0123' } }),
        trans
      )
    ).toBe('from kernel abcdef01');
    expect(originWords(ask('1', { origin: { pid: 7 } }), trans)).toBe(
      'from process 7'
    );
  });

  it('titles host-key asks apart from the others', () => {
    const hostkey = ask('1', {
      prompt: {
        kind: 'hostkey',
        text: HOSTKEY_TEXT,
        secret: false,
        options: []
      },
      host: '[127.0.0.1]:2222 ([127.0.0.1]:2222)'
    });
    expect(askTitle(hostkey, trans)).toBe(
      'Unknown host key for [127.0.0.1]:2222'
    );
    hostkey.host = 'saga.sigma2.no (10.1.2.3)';
    expect(askTitle(hostkey, trans)).toBe(
      'Unknown host key for saga.sigma2.no (10.1.2.3)'
    );
    expect(askTitle(ask('1'), trans)).toBe('ssh to saga.sigma2.no asks');
    expect(askTitle(ask('1', { host: null }), trans)).toBe('ssh asks');
  });
});
