import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import type { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IClusterPrefs, remember, togglePin } from './arrange';
import { IConnectionChange, IHy2faModel } from './tokens';

/** The sidebar's defaults until the settings load (schema/plugin.json has the same). */
const DEFAULT_RECENT_LIMIT = 5;

function strings(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

/**
 * What the sidebar remembers of one person's clusters: pinned ones, the last ones
 * connected to (any connection that comes up, from the sidebar, a dialog or a kernel),
 * and whether "More clusters" is open. Kept in the plugin's settings (schema/plugin.json:
 * `pinned`, `recent`, `recentLimit`, `moreExpanded`) once they load, so they persist
 * across reloads and show in the Settings Editor; in memory until then.
 */
export class ClusterPrefs implements IClusterPrefs, IDisposable {
  constructor(private readonly model: IHy2faModel) {
    model.stateChanged.connect(this._onState, this);
  }

  /** Pinned, recent or expanded changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get pinned(): string[] {
    return this._pinned;
  }

  get recent(): string[] {
    return this._recent;
  }

  get moreExpanded(): boolean {
    return this._moreExpanded;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  isPinned(name: string): boolean {
    return this._pinned.includes(name);
  }

  /** Pin a cluster to the top, or unpin it. */
  togglePin(name: string): void {
    this._pinned = togglePin(this._pinned, name);
    this._changed.emit();
    this.save('pinned', this._pinned);
  }

  /** Open or close "More clusters". */
  setMoreExpanded(expanded: boolean): void {
    if (expanded === this._moreExpanded) {
      return;
    }
    this._moreExpanded = expanded;
    this._changed.emit();
    this.save('moreExpanded', expanded);
  }

  /** Remember `cluster` as the most recently connected one. */
  remember(cluster: string): void {
    const recent = remember(this._recent, cluster, this._recentLimit);
    this._remembered = remember(this._remembered, cluster, 50);
    if (same(recent, this._recent)) {
      return;
    }
    this._recent = recent;
    this._changed.emit();
    this.save('recent', recent);
  }

  /**
   * Keep them in `settings` from now on: take what they hold (and whatever changes them
   * later: another tab, the Settings Editor), plus what was remembered before they loaded.
   */
  attach(settings: ISettingRegistry.ISettings): void {
    this._settings = settings;
    const read = (): void => {
      this._pinned = strings(settings.get('pinned').composite);
      this._recentLimit =
        (settings.get('recentLimit').composite as number | undefined) ??
        DEFAULT_RECENT_LIMIT;
      this._moreExpanded = settings.get('moreExpanded').composite === true;
      const stored = strings(settings.get('recent').composite);
      this._recent = stored.slice(0, this._recentLimit);
      this._changed.emit();
    };
    read();
    settings.changed.connect(read, this);
    // Connected before the settings loaded: most recent last, so it ends up first.
    for (const cluster of [...this._remembered].reverse()) {
      this._recent = remember(this._recent, cluster, this._recentLimit);
    }
    const stored = strings(settings.get('recent').composite);
    if (!same(this._recent, stored)) {
      this._changed.emit();
      this.save('recent', this._recent);
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.model.stateChanged.disconnect(this._onState, this);
    Signal.clearData(this);
  }

  private _onState(_: unknown, change: IConnectionChange): void {
    const { connection, previous } = change;
    if (connection.state === 'connected' && previous !== 'connected') {
      this.remember(connection.cluster);
    }
  }

  /** One write at a time, in order: a later value never loses to an earlier one. */
  private save(key: string, value: string[] | boolean): void {
    const settings = this._settings;
    if (!settings) {
      return;
    }
    this._saving = this._saving
      .then(() => settings.set(key, value))
      .catch(reason => {
        console.warn(`hy2fa-lab: could not save the setting ${key}`, reason);
      });
  }

  private _changed = new Signal<this, void>(this);
  private _settings: ISettingRegistry.ISettings | null = null;
  private _saving: Promise<void> = Promise.resolve();
  private _pinned: string[] = [];
  private _recent: string[] = [];
  private _remembered: string[] = [];
  private _recentLimit = DEFAULT_RECENT_LIMIT;
  private _moreExpanded = false;
  private _isDisposed = false;
}
