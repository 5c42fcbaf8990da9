import type { TranslationBundle } from '@jupyterlab/translation';
import type { IDisposable } from '@lumino/disposable';

import { IHy2faModel } from './tokens';
import { askTitle } from './words';

/** What of a browser `Notification` this uses. */
export interface IBrowserNotification {
  onclick: ((event: unknown) => void) | null;
  close(): void;
}

/** The browser's `Notification` API (`window.Notification`), or a fake in tests. */
export interface INotificationApi {
  readonly permission: 'default' | 'granted' | 'denied' | string;
  requestPermission(): Promise<string>;
  new (
    title: string,
    options?: {
      body?: string;
      tag?: string;
      requireInteraction?: boolean;
    }
  ): IBrowserNotification;
}

/** The page's `Notification` API; null where the browser has none. */
export function notificationApi(): INotificationApi | null {
  const api = (globalThis as { Notification?: INotificationApi }).Notification;
  return typeof api === 'function' ? api : null;
}

/**
 * Ask the browser's permission to notify, when it was never given or refused (it asks the
 * person once: afterwards the browser answers by itself). What it is now; `unsupported`
 * without the API.
 */
export async function askPermission(
  api: INotificationApi | null = notificationApi()
): Promise<string> {
  if (!api) {
    return 'unsupported';
  }
  if (api.permission !== 'default') {
    return api.permission;
  }
  try {
    return await api.requestPermission();
  } catch {
    return api.permission;
  }
}

/** The last line of ssh's words (the question itself: "Verification code:"). */
function question(text: string): string {
  const lines = text
    .split('\n')
    .map(line => line.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

/**
 * A browser notification for each question that comes while this Lab's tab is hidden (the
 * person is in another tab or window while a long cell waits in `ensure()`): a login's
 * prompt, or a kernel's ssh asking. Clicking it brings the tab forward, where the dialog
 * or the sidebar asks. It goes when the question is answered or gone, or when the tab is
 * shown again. Only while `enabled()` (the `browserNotifications` setting, off by
 * default) and the browser's permission is granted; never with an answer in it.
 */
export class BrowserNotifications implements IDisposable {
  constructor(
    private readonly model: IHy2faModel,
    private readonly options: {
      enabled: () => boolean;
      label: (cluster: string) => string;
      trans: TranslationBundle;
      /** The Notification API (default: the page's). */
      api?: () => INotificationApi | null;
      /** Whether the page is hidden (default: `document.hidden`). */
      hidden?: () => boolean;
      /** Bring this tab forward (default: `window.focus()`). */
      focus?: () => void;
    }
  ) {
    model.changed.connect(this.update, this);
    if (typeof document !== 'undefined') {
      document.addEventListener('visibilitychange', this._onVisibility);
    }
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.model.changed.disconnect(this.update, this);
    if (typeof document !== 'undefined') {
      document.removeEventListener('visibilitychange', this._onVisibility);
    }
    this.closeAll();
  }

  /** Notify of each new question while hidden; close those no longer waiting. */
  update(): void {
    const waiting = this.waiting();
    for (const [key, shown] of [...this._shown]) {
      if (!waiting.has(key)) {
        shown.close();
        this._shown.delete(key);
      }
    }
    for (const key of [...this._seen]) {
      if (!waiting.has(key)) {
        this._seen.delete(key);
      }
    }
    for (const [key, words] of waiting) {
      if (this._seen.has(key)) {
        continue;
      }
      this._seen.add(key); // asked once: never again for the same question
      if (this.hidden() && this.options.enabled()) {
        this.show(key, words);
      }
    }
  }

  /** Each question that waits now: its key, and what a notification says of it. */
  private waiting(): Map<string, { title: string; body: string }> {
    const { trans } = this.options;
    const waiting = new Map<string, { title: string; body: string }>();
    for (const connection of this.model.prompting()) {
      const prompt = connection.prompt!;
      waiting.set(`hy2fa-login-${connection.id}-${prompt.id}`, {
        title: trans.__('Log in to %1', this.options.label(connection.cluster)),
        body: question(prompt.text)
      });
    }
    for (const ask of this.model.asks) {
      waiting.set(`hy2fa-ask-${ask.id}`, {
        title: askTitle(ask, trans),
        body: question(ask.prompt.text)
      });
    }
    return waiting;
  }

  private show(key: string, words: { title: string; body: string }): void {
    const api = (this.options.api ?? notificationApi)();
    if (!api || api.permission !== 'granted') {
      return;
    }
    let shown: IBrowserNotification;
    try {
      // The tag is the question's: several hidden tabs of this Lab show it once.
      shown = new api(words.title, {
        body: words.body,
        tag: key,
        requireInteraction: true
      });
    } catch {
      return; // a browser that notifies only from a service worker (Chrome on Android)
    }
    shown.onclick = () => {
      (this.options.focus ?? (() => window.focus()))();
      shown.close();
      this._shown.delete(key);
    };
    this._shown.set(key, shown);
  }

  private hidden(): boolean {
    if (this.options.hidden) {
      return this.options.hidden();
    }
    return typeof document !== 'undefined' && document.hidden === true;
  }

  private closeAll(): void {
    for (const shown of this._shown.values()) {
      shown.close();
    }
    this._shown.clear();
  }

  /** Back in the tab: the dialog or the sidebar asks; the notifications have said it. */
  private _onVisibility = (): void => {
    if (!this.hidden()) {
      this.closeAll();
    }
  };

  /** Question key -> its notification, while shown. */
  private _shown = new Map<string, IBrowserNotification>();
  /** The questions seen waiting (notified of, or seen while the tab was in view). */
  private _seen = new Set<string>();
  private _isDisposed = false;
}
