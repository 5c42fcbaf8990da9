import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Signal } from '@lumino/signaling';

import { arrange, matches, rank, remember, togglePin } from '../arrange';
import { ClusterPrefs } from '../prefs';
import type {
  ClusterSource,
  ConnectionState,
  ICluster,
  IConnection,
  IConnectionChange,
  IHy2faModel
} from '../tokens';

const cluster = (
  name: string,
  source: ClusterSource = 'builtin',
  extra: Partial<ICluster> = {}
): ICluster => ({
  name,
  label: `${name[0].toUpperCase()}${name.slice(1)} (Sigma2)`,
  host: `${name}.sigma2.no`,
  source,
  state: 'idle',
  ...extra
});

describe('arranging the sidebar', () => {
  const clusters = [
    cluster('saga'),
    cluster('fram'),
    cluster('betzy'),
    cluster('olivia'),
    cluster('lumi', 'config'),
    cluster('mine', 'ssh_config'),
    cluster('narval', 'builtin', { host: 'narval.alliancecan.ca' })
  ];

  it('puts in-use, pinned, recent and own clusters first, the rest in "more"', () => {
    const states: Record<string, ConnectionState> = {
      olivia: 'prompting',
      betzy: 'connected'
    };
    const { mine, more } = arrange(clusters, c => states[c.name] ?? 'idle', {
      pinned: ['narval'],
      recent: ['fram', 'saga']
    });
    expect(mine.map(c => c.name)).toEqual([
      'olivia', // a login under way
      'betzy', // connected
      'narval', // pinned
      'fram', // recent, newest first
      'saga',
      'lumi', // their Jupyter config
      'mine' // their ~/.ssh/config
    ]);
    expect(more).toEqual([]);
  });

  it('leaves a new person with nothing of their own', () => {
    const builtins = clusters.filter(c => c.source === 'builtin');
    const { mine, more } = arrange(builtins, () => 'idle', {
      pinned: [],
      recent: []
    });
    expect(mine).toEqual([]);
    expect(more.map(c => c.name)).toEqual(builtins.map(c => c.name));
  });

  it('keeps a failed or disconnected login in view', () => {
    const prefs = { pinned: [], recent: [] };
    expect(rank(cluster('saga'), 'failed', prefs)).toBe(1);
    expect(rank(cluster('saga'), 'disconnected', prefs)).toBe(1);
    expect(rank(cluster('saga'), 'idle', prefs)).toBeNull();
    expect(rank(cluster('x', 'host'), 'idle', prefs)).toBe(4);
    expect(
      rank(cluster('x', 'builtin', { source: 'a-newer-source' }), 'idle', prefs)
    ).toBeNull();
  });

  it('filters on name, label and host, every word', () => {
    const narval = clusters[6];
    expect(matches(narval, '')).toBe(true);
    expect(matches(narval, 'NARV')).toBe(true);
    expect(matches(narval, 'alliancecan narval')).toBe(true);
    expect(matches(narval, 'alliancecan saga')).toBe(false);
    expect(matches(clusters[0], 'sigma2')).toBe(true);
  });

  it('remembers recent clusters newest first, each once, up to a limit', () => {
    expect(remember([], 'saga', 3)).toEqual(['saga']);
    expect(remember(['fram', 'saga', 'betzy'], 'saga', 3)).toEqual([
      'saga',
      'fram',
      'betzy'
    ]);
    expect(remember(['a', 'b', 'c'], 'd', 3)).toEqual(['d', 'a', 'b']);
    expect(remember(['a'], 'b', 0)).toEqual([]);
    expect(togglePin(['a'], 'b')).toEqual(['a', 'b']);
    expect(togglePin(['a', 'b'], 'a')).toEqual(['b']);
  });
});

/** The parts of a model the prefs listen to. */
class FakeModel {
  stateChanged = new Signal<this, IConnectionChange>(this);
  up(name: string, previous: ConnectionState | null = 'verifying'): void {
    this.stateChanged.emit({
      connection: { name, cluster: name, state: 'connected' } as IConnection,
      previous
    });
  }
}

/** An `ISettings` of the plugin: what the prefs read and write. */
class FakeSettings {
  values: Record<string, unknown> = {
    pinned: [],
    recent: [],
    recentLimit: 3,
    moreExpanded: false
  };
  changed = new Signal<this, void>(this);
  writes: Array<[string, unknown]> = [];
  get(key: string): { composite: unknown } {
    return { composite: this.values[key] };
  }
  async set(key: string, value: unknown): Promise<void> {
    this.writes.push([key, value]);
    this.values[key] = value;
    this.changed.emit();
  }
}

describe('what the sidebar remembers', () => {
  const make = (): {
    model: FakeModel;
    prefs: ClusterPrefs;
    settings: FakeSettings;
  } => {
    const model = new FakeModel();
    const prefs = new ClusterPrefs(model as unknown as IHy2faModel);
    return { model, prefs, settings: new FakeSettings() };
  };
  const attach = (prefs: ClusterPrefs, settings: FakeSettings): void =>
    prefs.attach(settings as unknown as ISettingRegistry.ISettings);
  const settled = (): Promise<void> =>
    new Promise(resolve => setTimeout(resolve, 0));

  it('remembers each cluster that comes up, before and after the settings load', async () => {
    const { model, prefs, settings } = make();
    model.up('saga', null); // a master already up when the page loaded
    expect(prefs.recent).toEqual(['saga']);
    settings.values.recent = ['fram', 'betzy'];
    attach(prefs, settings);
    await settled();
    expect(prefs.recent).toEqual(['saga', 'fram', 'betzy']);
    expect(settings.values.recent).toEqual(['saga', 'fram', 'betzy']);
    model.up('betzy');
    await settled();
    expect(settings.values.recent).toEqual(['betzy', 'saga', 'fram']);
    // Connected again without going away: nothing new to write.
    const writes = settings.writes.length;
    model.stateChanged.emit({
      connection: { name: 'betzy', cluster: 'betzy', state: 'connected' },
      previous: 'connected'
    } as IConnectionChange);
    await settled();
    expect(settings.writes.length).toBe(writes);
  });

  it('keeps pins and the open "More clusters" in the settings', async () => {
    const { prefs, settings } = make();
    attach(prefs, settings);
    let changes = 0;
    prefs.changed.connect(() => changes++);
    prefs.togglePin('narval');
    expect(prefs.isPinned('narval')).toBe(true);
    prefs.setMoreExpanded(true);
    await settled();
    expect(settings.values.pinned).toEqual(['narval']);
    expect(settings.values.moreExpanded).toBe(true);
    expect(changes).toBeGreaterThanOrEqual(2);
    prefs.togglePin('narval');
    await settled();
    expect(settings.values.pinned).toEqual([]);

    // Changed elsewhere (another tab, the Settings Editor): taken at once.
    settings.values.pinned = ['saga'];
    settings.changed.emit();
    expect(prefs.pinned).toEqual(['saga']);
    prefs.dispose();
    expect(prefs.isDisposed).toBe(true);
  });
});
