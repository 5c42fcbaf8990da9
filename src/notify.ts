import { Notification } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { IDisposable } from '@lumino/disposable';

import { isUnsupported } from './errors';
import { GONE_STATES } from './model';
import { IConnection, IConnectionChange, IHy2faModel } from './tokens';
import { lostWords } from './words';

/**
 * A JupyterLab notification for each master that went away without the person asking
 * ("Saga disconnected", with the server's why), with a Reconnect action. It stays until
 * dismissed, and goes by itself when the connection comes back (from here or anywhere);
 * dismissed, the connection no longer counts as lost in the status bar.
 */
export class LostNotifications implements IDisposable {
  constructor(
    private readonly model: IHy2faModel,
    private readonly options: {
      label: (cluster: string) => string;
      /** Where a failed Reconnect's reason shows best (the sidebar, for "unsupported"). */
      onUnsupported?: () => void;
      trans: TranslationBundle;
    }
  ) {
    model.connectionLost.connect(this._onLost, this);
    model.stateChanged.connect(this._onState, this);
    Notification.manager.changed.connect(this._onNotification, this);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.model.connectionLost.disconnect(this._onLost, this);
    this.model.stateChanged.disconnect(this._onState, this);
    Notification.manager.changed.disconnect(this._onNotification, this);
  }

  private _onLost(_: unknown, connection: IConnection): void {
    const { trans } = this.options;
    const key = connection.id;
    this.dismiss(key);
    const label = this.options.label(connection.cluster);
    const id = Notification.warning(lostWords(connection, label, trans), {
      autoClose: false,
      actions: [
        {
          label: trans.__('Reconnect'),
          caption: trans.__('Log in to %1 again', label),
          displayType: 'accent',
          callback: () => this.reconnect(connection)
        }
      ]
    });
    this._shown.set(key, id);
  }

  /** Back (connected, or a login under way): the notification has nothing more to say. */
  private _onState(_: unknown, change: IConnectionChange): void {
    if (!GONE_STATES.includes(change.connection.state)) {
      this.dismiss(change.connection.id);
    }
  }

  /** Dismissed by the person: it is not "lost" any more in the status bar. */
  private _onNotification(_: unknown, change: Notification.IChange): void {
    if (change.type !== 'removed') {
      return;
    }
    for (const [key, id] of this._shown) {
      if (id === change.notification.id) {
        this._shown.delete(key);
        this.model.forgetLost(key);
      }
    }
  }

  private reconnect(connection: IConnection): void {
    const { trans } = this.options;
    const user =
      connection.name !== connection.cluster ? connection.user : undefined;
    this.model.connect(connection.cluster, user).catch(error => {
      if (isUnsupported(error)) {
        this.options.onUnsupported?.();
      }
      Notification.error(
        trans.__(
          'Could not reconnect to %1: %2',
          this.options.label(connection.cluster),
          error?.message ?? String(error)
        ),
        { autoClose: 8000 }
      );
    });
  }

  /** Dismiss the notification about the connection `key` (its id), if one is shown. */
  private dismiss(key: string): void {
    const id = this._shown.get(key);
    if (id !== undefined) {
      this._shown.delete(key);
      Notification.dismiss(id);
    }
  }

  /** Connection id -> the id of the notification shown about it. */
  private _shown = new Map<string, string>();
  private _isDisposed = false;
}
