import { Signal } from '@lumino/signaling';

import {
  askPermission,
  BrowserNotifications,
  INotificationApi
} from '../browsernotify';
import type { IAsk, IConnection, IHy2faModel } from '../tokens';
import { trans } from './helpers';

/** The browser's `Notification`, as a page sees it: every one made is recorded. */
class FakeNotification {
  static permission = 'granted';
  static requested = 0;
  static answer = 'granted';
  static made: FakeNotification[] = [];

  static async requestPermission(): Promise<string> {
    FakeNotification.requested++;
    FakeNotification.permission = FakeNotification.answer;
    return FakeNotification.permission;
  }

  constructor(
    readonly title: string,
    readonly options: { body?: string; tag?: string } = {}
  ) {
    FakeNotification.made.push(this);
  }

  onclick: ((event: unknown) => void) | null = null;
  closed = false;

  close(): void {
    this.closed = true;
  }
}

/** A `document` with the visibility the test sets, and its visibilitychange listeners. */
class FakeDocument {
  hidden = true;
  listeners: Array<() => void> = [];
  addEventListener(type: string, listener: () => void): void {
    if (type === 'visibilitychange') {
      this.listeners.push(listener);
    }
  }
  removeEventListener(type: string, listener: () => void): void {
    this.listeners = this.listeners.filter(l => l !== listener);
  }
  show(): void {
    this.hidden = false;
    this.listeners.forEach(listener => listener());
  }
}

const prompting = (id: string, promptId = 1): IConnection =>
  ({
    id,
    name: 'saga',
    cluster: 'saga',
    state: 'prompting',
    prompt: {
      id: promptId,
      kind: 'otp',
      text: 'Welcome to Saga\n(olan@saga.sigma2.no) Verification code: ',
      options: [],
      secret: true
    }
  }) as unknown as IConnection;

const ask = (id: string): IAsk => ({
  id,
  prompt: {
    kind: 'password',
    text: "olan@fram's password: ",
    options: [],
    secret: true
  },
  host: 'fram.sigma2.no',
  command: ['ssh', 'fram', 'squeue'],
  origin: { pid: 7, notebook: 'Analysis.ipynb' },
  since: 1
});

/** What of the model the notifications read: its prompts, its asks, its signal. */
class FakeModel {
  readonly changed = new Signal<this, void>(this);
  waiting: IConnection[] = [];
  asks: IAsk[] = [];
  prompting(): IConnection[] {
    return this.waiting;
  }
}

describe('browser notifications of a question while the tab is hidden', () => {
  const globals = globalThis as unknown as {
    Notification?: unknown;
    document?: unknown;
    window?: unknown;
  };
  let doc: FakeDocument;
  let focused: number;

  beforeEach(() => {
    FakeNotification.permission = 'granted';
    FakeNotification.requested = 0;
    FakeNotification.answer = 'granted';
    FakeNotification.made = [];
    doc = new FakeDocument();
    focused = 0;
    globals.Notification = FakeNotification;
    globals.document = doc;
    globals.window = { focus: () => focused++ };
  });

  afterEach(() => {
    delete globals.Notification;
    delete globals.document;
    delete globals.window;
  });

  const watch = (model: FakeModel, enabled = true): BrowserNotifications =>
    new BrowserNotifications(model as unknown as IHy2faModel, {
      enabled: () => enabled,
      label: cluster => (cluster === 'saga' ? 'Saga (Sigma2)' : cluster),
      trans
    });

  it('notifies once per question, with ssh’s question and no answer', () => {
    const model = new FakeModel();
    const notifications = watch(model);
    model.waiting = [prompting('c-1')];
    model.changed.emit();
    model.changed.emit(); // the same question: no second notification
    expect(FakeNotification.made).toHaveLength(1);
    const [shown] = FakeNotification.made;
    expect(shown.title).toBe('Log in to Saga (Sigma2)');
    expect(shown.options.body).toBe('(olan@saga.sigma2.no) Verification code:');
    expect(shown.options.tag).toBe('hy2fa-login-c-1-1');

    // A kernel's ssh asks: one more.
    model.asks = [ask('a-1')];
    model.changed.emit();
    expect(FakeNotification.made).toHaveLength(2);
    expect(FakeNotification.made[1].options.body).toBe("olan@fram's password:");
    expect(FakeNotification.made[1].options.tag).toBe('hy2fa-ask-a-1');

    // The next prompt of the same login (a wrong code): a new question.
    model.waiting = [prompting('c-1', 2)];
    model.changed.emit();
    expect(FakeNotification.made).toHaveLength(3);
    expect(shown.closed).toBe(true); // the first one's question is gone
    notifications.dispose();
  });

  it('clicking one brings the tab forward and closes it', () => {
    const model = new FakeModel();
    const notifications = watch(model);
    model.waiting = [prompting('c-1')];
    model.changed.emit();
    const [shown] = FakeNotification.made;
    shown.onclick!({});
    expect(focused).toBe(1);
    expect(shown.closed).toBe(true);
    notifications.dispose();
  });

  it('says nothing while the tab is in view, or when the setting is off', () => {
    const model = new FakeModel();
    doc.hidden = false;
    const notifications = watch(model);
    model.waiting = [prompting('c-1')];
    model.changed.emit();
    expect(FakeNotification.made).toHaveLength(0);
    // Seen in view: hiding the tab later does not bring it up.
    doc.hidden = true;
    model.changed.emit();
    expect(FakeNotification.made).toHaveLength(0);
    notifications.dispose();

    const off = watch(new FakeModel(), false);
    const other = new FakeModel();
    const offToo = watch(other, false);
    other.asks = [ask('a-2')];
    other.changed.emit();
    expect(FakeNotification.made).toHaveLength(0);
    off.dispose();
    offToo.dispose();
  });

  it('says nothing without the browser’s permission, or without the API', () => {
    FakeNotification.permission = 'denied';
    const model = new FakeModel();
    const notifications = watch(model);
    model.waiting = [prompting('c-1')];
    model.changed.emit();
    expect(FakeNotification.made).toHaveLength(0);
    notifications.dispose();

    delete globals.Notification;
    const other = new FakeModel();
    const without = watch(other);
    other.asks = [ask('a-1')];
    expect(() => other.changed.emit()).not.toThrow();
    without.dispose();
  });

  it('closes them when the question is answered, or the tab is shown again', () => {
    const model = new FakeModel();
    const notifications = watch(model);
    model.waiting = [prompting('c-1')];
    model.asks = [ask('a-1')];
    model.changed.emit();
    const [login, asked] = FakeNotification.made;
    model.asks = []; // answered (here or anywhere)
    model.changed.emit();
    expect(asked.closed).toBe(true);
    expect(login.closed).toBe(false);
    doc.show();
    expect(login.closed).toBe(true);
    notifications.dispose();
  });

  it('asks the browser’s permission only while it was never given or refused', async () => {
    FakeNotification.permission = 'default';
    expect(
      await askPermission(FakeNotification as unknown as INotificationApi)
    ).toBe('granted');
    expect(FakeNotification.requested).toBe(1);
    expect(
      await askPermission(FakeNotification as unknown as INotificationApi)
    ).toBe('granted');
    expect(FakeNotification.requested).toBe(1); // asked once
    FakeNotification.permission = 'denied';
    expect(await askPermission()).toBe('denied'); // the page's API: the fake global
    expect(FakeNotification.requested).toBe(1);
    expect(await askPermission(null)).toBe('unsupported');
  });
});
