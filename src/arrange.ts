import { LIVE_STATES, PENDING_STATES } from './model';
import { ConnectionState, ICluster } from './tokens';

/** What the sidebar remembers of one person's clusters (schema/plugin.json). */
export interface IClusterPrefs {
  /** Clusters kept at the top, by name, in the order they were pinned. */
  pinned: string[];
  /** The clusters last connected to, newest first. */
  recent: string[];
}

/** The sidebar's clusters: the person's own first, the rest under "More clusters". */
export interface IArranged {
  /** In use, pinned, recently used, or from the person's own config, best first. */
  mine: ICluster[];
  /** Everything else (unused built-ins), in the server's order. */
  more: ICluster[];
}

/**
 * Sources that are the person's own: their Jupyter config, ~/.ssh/config, a cluster they
 * added, a host they named.
 */
const OWN_SOURCES: ReadonlySet<string> = new Set([
  'config',
  'ssh_config',
  'mine',
  'host'
]);

/**
 * Where a cluster goes, best first: a login under way (0); a master, or a login that just
 * ended, to see (1); pinned (2); recently used (3); from the person's own config, added
 * by them, or with settings of theirs (their user name on it) (4); anything else is
 * "more" (null).
 */
export function rank(
  cluster: ICluster,
  state: ConnectionState,
  prefs: IClusterPrefs
): number | null {
  if (PENDING_STATES.includes(state)) {
    return 0;
  }
  if (
    LIVE_STATES.includes(state) ||
    state === 'failed' ||
    state === 'disconnected'
  ) {
    return 1;
  }
  if (prefs.pinned.includes(cluster.name)) {
    return 2;
  }
  if (prefs.recent.includes(cluster.name)) {
    return 3;
  }
  if (OWN_SOURCES.has(cluster.source) || (cluster.mine ?? []).length > 0) {
    return 4;
  }
  return null;
}

/**
 * Split the clusters into the person's own (ranked; recent ones newest first; else the
 * server's order) and the rest.
 */
export function arrange(
  clusters: readonly ICluster[],
  stateOf: (cluster: ICluster) => ConnectionState,
  prefs: IClusterPrefs
): IArranged {
  const mine: Array<{ cluster: ICluster; rank: number; index: number }> = [];
  const more: ICluster[] = [];
  clusters.forEach((cluster, index) => {
    const where = rank(cluster, stateOf(cluster), prefs);
    if (where === null) {
      more.push(cluster);
    } else {
      const order = where === 3 ? prefs.recent.indexOf(cluster.name) : index;
      mine.push({ cluster, rank: where, index: order });
    }
  });
  mine.sort((a, b) => a.rank - b.rank || a.index - b.index);
  return { mine: mine.map(item => item.cluster), more };
}

/** Whether a cluster matches what the person typed in the filter (name, label or host). */
export function matches(cluster: ICluster, filter: string): boolean {
  const words = filter.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return true;
  }
  const text = [
    cluster.name,
    cluster.label,
    cluster.host,
    cluster.hostname ?? '',
    cluster.user ?? ''
  ]
    .join(' ')
    .toLowerCase();
  return words.every(word => text.includes(word));
}

/** `recent` with `name` first, once, and at most `limit` long. */
export function remember(
  recent: readonly string[],
  name: string,
  limit: number
): string[] {
  const max = Math.max(0, Math.floor(limit));
  return [name, ...recent.filter(other => other !== name)].slice(0, max);
}

/** `pinned` with `name` added (at the end) or taken out. */
export function togglePin(pinned: readonly string[], name: string): string[] {
  return pinned.includes(name)
    ? pinned.filter(other => other !== name)
    : [...pinned, name];
}
