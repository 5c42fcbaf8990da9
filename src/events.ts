import type { Event } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

/** How often the manager is looked at while it has no open socket. */
const LOOK_MS = 200;

/** Without a socket to watch (another EventManager), say "live" once after this long. */
const FALLBACK_MS = 3000;

const OPEN = 1; // WebSocket.OPEN, which Node (jest) has no global for

/** What of a WebSocket this needs. */
interface ISocketLike {
  readyState: number;
  addEventListener(type: 'open' | 'close', listener: () => void): void;
  removeEventListener(type: 'open' | 'close', listener: () => void): void;
}

function isSocket(value: unknown): value is ISocketLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ISocketLike).readyState === 'number' &&
    typeof (value as ISocketLike).addEventListener === 'function'
  );
}

/**
 * Says when the server's event stream is live: each time the WebSocket of JupyterLab's
 * `EventManager` (`app.serviceManager.events`) opens, at first and after it reconnects.
 *
 * Events the server sends before that reach nobody, and the `EventManager` does not say
 * when it is subscribed, so this watches its socket (its `_socket`, which every
 * JupyterLab 4 has; not public API). Where there is none to watch (another manager), it
 * emits once after a few seconds, which still repairs what was missed at start-up.
 * While a socket is open nothing runs; while there is none, the manager is looked at
 * every 200 ms.
 */
export class EventStreamWatch implements IDisposable {
  constructor(
    private readonly manager: Event.IManager,
    options: { lookMs?: number; fallbackMs?: number } = {}
  ) {
    this._lookMs = options.lookMs ?? LOOK_MS;
    this._fallbackAt = Date.now() + (options.fallbackMs ?? FALLBACK_MS);
    // Not at once: whoever made this connects to `opened` first.
    this._timer = setTimeout(() => this.look(), 0);
  }

  /** The subscription is live (again). */
  get opened(): ISignal<this, void> {
    return this._opened;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    clearTimeout(this._timer);
    this.unwatch();
    Signal.clearData(this);
  }

  private look(): void {
    if (this._isDisposed) {
      return;
    }
    const socket = (this.manager as unknown as { _socket?: unknown })._socket;
    if (isSocket(socket) && socket !== this._socket) {
      this.watch(socket);
      return;
    }
    if (!('_socket' in this.manager) && Date.now() >= this._fallbackAt) {
      this._opened.emit(); // nothing to watch: once, late enough for most start-ups
      return;
    }
    this._timer = setTimeout(() => this.look(), this._lookMs);
  }

  private watch(socket: ISocketLike): void {
    this.unwatch();
    this._socket = socket;
    socket.addEventListener('open', this._onOpen);
    socket.addEventListener('close', this._onClose);
    if (socket.readyState === OPEN) {
      this._opened.emit();
    }
  }

  private unwatch(): void {
    this._socket?.removeEventListener('open', this._onOpen);
    this._socket?.removeEventListener('close', this._onClose);
  }

  private _onOpen = (): void => {
    if (!this._isDisposed) {
      this._opened.emit();
    }
  };

  /** The manager makes a new socket after a while (its poll backs off): find it. */
  private _onClose = (): void => {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.look(), this._lookMs);
  };

  private _opened = new Signal<this, void>(this);
  private _socket: ISocketLike | null = null;
  private _timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private _isDisposed = false;
  private readonly _lookMs: number;
  private readonly _fallbackAt: number;
}
