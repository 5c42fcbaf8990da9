import type { Event } from '@jupyterlab/services';

import { EventStreamWatch } from '../events';
import type { ConnectionState, IConnection } from '../tokens';
import {
  isPush,
  lostWords,
  menuTitle,
  progressSince,
  progressWords,
  promptHostWords,
  secondsSince,
  secondsUntil,
  secondsWords
} from '../words';
import { sleep, trans, waitFor } from './helpers';

const view = (
  state: ConnectionState,
  extra: Partial<IConnection> = {}
): IConnection => ({
  id: 'c-saga',
  name: 'saga',
  cluster: 'saga',
  host: 'saga.sigma2.no',
  user: 'ola',
  port: 22,
  state,
  prompt: null,
  verifying: null,
  reason: null,
  message: '',
  control_path: '/tmp/cm-saga',
  master_pid: null,
  since: null,
  persist: '3600s',
  updated: '2026-01-01T00:00:00+00:00',
  version: 1,
  ...extra
});

describe('seconds', () => {
  const now = Date.parse('2026-01-01T00:01:05.400Z');

  it('counts the seconds since a time, never below zero', () => {
    expect(secondsSince('2026-01-01T00:00:00+00:00', now)).toBe(65);
    expect(secondsSince('2026-01-01T00:01:10Z', now)).toBe(0); // a clock ahead
    expect(secondsSince(null, now)).toBeNull();
    expect(secondsSince('not a time', now)).toBeNull();
  });

  it('counts the seconds left, capped by the whole wait', () => {
    expect(secondsUntil('2026-01-01T00:02:00Z', now)).toBe(55);
    expect(secondsUntil('2026-01-01T00:01:00Z', now)).toBe(0);
    // The browser's clock is behind the server's: never more than the prompt's wait.
    expect(
      secondsUntil(
        '2026-01-01T00:02:00Z',
        Date.parse('2026-01-01T00:00:00Z'),
        '2026-01-01T00:01:00Z'
      )
    ).toBe(60);
    expect(secondsUntil(undefined, now)).toBeNull();
  });

  it('says a short wait in words', () => {
    expect(secondsWords(0, trans)).toBe('0 s');
    expect(secondsWords(59.9, trans)).toBe('59 s');
    expect(secondsWords(60, trans)).toBe('1 min');
    expect(secondsWords(125, trans)).toBe('2 min 5 s');
    expect(secondsWords(3725, trans)).toBe('1 h 2 min');
  });
});

describe('progress words', () => {
  it('says where a login connects while it starts, since when its state changed', () => {
    const starting = view('starting');
    expect(progressWords(starting, trans)).toBe(
      'Connecting to saga.sigma2.no…'
    );
    expect(progressSince(starting)).toBe('2026-01-01T00:00:00+00:00');
  });

  it('asks to approve on the phone after a push, with the time of the answer', () => {
    const push = view('verifying', {
      verifying: {
        since: '2026-01-01T00:00:30+00:00',
        choice: 'Duo Push to XXX-XXX-1234',
        lines: ['Pushed a login request to your device...']
      }
    });
    expect(isPush('Duo Push to XXX-XXX-1234')).toBe(true);
    expect(isPush('Passcode')).toBe(false);
    expect(progressWords(push, trans)).toBe(
      'Approve the request on your phone'
    );
    expect(progressSince(push)).toBe('2026-01-01T00:00:30+00:00');
    const call = view('verifying', {
      verifying: { since: null, choice: 'Phone call to XXX', lines: [] }
    });
    expect(progressWords(call, trans)).toBe('Answer the call on your phone');
    expect(progressSince(call)).toBe('2026-01-01T00:00:00+00:00');
  });

  it('says "Checking…" after a typed code (and from an older server)', () => {
    expect(
      progressWords(
        view('verifying', {
          verifying: { since: null, choice: null, lines: [] }
        }),
        trans
      )
    ).toBe('Checking…');
    const older = view('verifying');
    delete older.verifying;
    expect(progressWords(older, trans)).toBe('Checking…');
  });

  it('names the host a prompt is for, and a menu title without it', () => {
    expect(promptHostWords('hopper@bastion', trans)).toBe('for hopper@bastion');
    expect(promptHostWords(null, trans)).toBe('');
    expect(
      menuTitle(
        '(ola@saga) Duo two-factor login for ola\n\n 1. Duo Push\n',
        'ola@saga'
      )
    ).toBe('Duo two-factor login for ola');
    expect(menuTitle('\nDuo two-factor login for ola\n', null)).toBe(
      'Duo two-factor login for ola'
    );
  });

  it('says a master went away, with the server’s why', () => {
    const gone = view('disconnected', {
      message: 'The master exited (idle past ControlPersist, or stopped)'
    });
    expect(lostWords(gone, 'Saga', trans)).toBe(
      'Saga disconnected: The master exited (idle past ControlPersist, or stopped)'
    );
    expect(lostWords(view('disconnected'), 'Saga', trans)).toBe(
      'Saga disconnected'
    );
  });
});

/** A WebSocket as the EventManager keeps it: what the watch looks at. */
class FakeSocket {
  readyState = 0;
  listeners: Record<string, Array<() => void>> = {};
  addEventListener(type: string, listener: () => void): void {
    (this.listeners[type] ??= []).push(listener);
  }
  removeEventListener(type: string, listener: () => void): void {
    this.listeners[type] = (this.listeners[type] ?? []).filter(
      l => l !== listener
    );
  }
  fire(type: 'open' | 'close'): void {
    this.readyState = type === 'open' ? 1 : 3;
    for (const listener of this.listeners[type] ?? []) {
      listener();
    }
  }
}

describe('the event stream watch', () => {
  it('says "live" each time the manager’s socket opens, reconnections included', async () => {
    const manager = { _socket: null as FakeSocket | null };
    const watch = new EventStreamWatch(manager as unknown as Event.IManager, {
      lookMs: 5
    });
    let opened = 0;
    watch.opened.connect(() => opened++);
    await sleep(20);
    expect(opened).toBe(0); // no socket yet
    const first = new FakeSocket();
    manager._socket = first;
    await sleep(20);
    expect(opened).toBe(0); // connecting
    first.fire('open');
    expect(opened).toBe(1);
    first.fire('close');
    const second = new FakeSocket();
    second.readyState = 1; // already open when found
    manager._socket = second;
    await waitFor(() => opened === 2, 500);
    watch.dispose();
    second.fire('open');
    expect(opened).toBe(2);
    expect(second.listeners.open).toEqual([]);
  });

  it('says "live" for a socket open already, once listened to', async () => {
    const socket = new FakeSocket();
    socket.readyState = 1;
    const watch = new EventStreamWatch({
      _socket: socket
    } as unknown as Event.IManager);
    let opened = 0;
    watch.opened.connect(() => opened++);
    await waitFor(() => opened === 1, 500);
    watch.dispose();
  });

  it('says "live" once, late, when there is no socket to watch', async () => {
    const watch = new EventStreamWatch({} as Event.IManager, {
      lookMs: 5,
      fallbackMs: 30
    });
    let opened = 0;
    watch.opened.connect(() => opened++);
    await sleep(10);
    expect(opened).toBe(0);
    await waitFor(() => opened === 1, 500);
    await sleep(30);
    expect(opened).toBe(1);
    watch.dispose();
  });
});
