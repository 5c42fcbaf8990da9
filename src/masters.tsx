import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { LIVE_STATES } from './model';
import { IConnection, IHy2faModel } from './tokens';
import { duration, madeByWords, stateWord } from './words';

/**
 * Masters that some ssh made at a socket of its own (a notebook's, through the askpass
 * bridge, as HSP's `ssh_2fa` does), shown as what they are. A cluster's row shows only its
 * own socket, so such a master, even of a cluster's name, is listed here, with its own
 * Disconnect.
 */
export function MastersSection(props: {
  model: IHy2faModel;
  /** Stop a master (the sidebar shows what went wrong). */
  disconnect: (connection: IConnection) => void;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  const inRows = new Set(
    model.clusters
      .map(cluster => model.connectionFor(cluster)?.id)
      .filter((id): id is string => !!id)
  );
  const masters = model.connections.filter(
    c =>
      !inRows.has(c.id) &&
      c.made_by?.kind === 'ssh' &&
      LIVE_STATES.includes(c.state)
  );
  if (masters.length === 0) {
    return null;
  }
  return (
    <section
      className="jp-hy2fa-section jp-hy2fa-masters"
      aria-labelledby="jp-hy2fa-masters-title"
    >
      <h3 className="jp-hy2fa-section-title" id="jp-hy2fa-masters-title">
        {trans.__('Made by ssh in notebooks')}
      </h3>
      <ul className="jp-hy2fa-rows">
        {masters.map(connection => (
          <MasterRow
            key={connection.id}
            connection={connection}
            onDisconnect={() => props.disconnect(connection)}
            trans={trans}
          />
        ))}
      </ul>
    </section>
  );
}

function MasterRow(props: {
  connection: IConnection;
  onDisconnect: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { connection, trans } = props;
  const labelId = `jp-hy2fa-master-${connection.id}`;
  const where = `${connection.user ? `${connection.user}@` : ''}${connection.host}`;
  return (
    <li
      className="jp-hy2fa-row"
      data-hy2fa-connection={connection.id}
      data-state={connection.state}
      aria-labelledby={labelId}
    >
      <div className="jp-hy2fa-row-head">
        <span className="jp-hy2fa-label" id={labelId}>
          {connection.name}
        </span>
        <span className={`jp-hy2fa-state jp-hy2fa-state-${connection.state}`}>
          {stateWord(connection.state, trans)}
        </span>
      </div>
      <div className="jp-hy2fa-where" title={connection.control_path}>
        {where}
      </div>
      <div className="jp-hy2fa-made-by">{madeByWords(connection, trans)}</div>
      {connection.state === 'connected' && connection.since && (
        <div className="jp-hy2fa-since">
          {trans.__('Connected for %1', duration(connection.since, trans))}
        </div>
      )}
      {connection.state === 'unresponsive' && (
        <div className="jp-hy2fa-error" role="alert">
          {connection.message}
        </div>
      )}
      <div className="jp-hy2fa-actions">
        <button
          className="jp-mod-styled"
          data-action="disconnect"
          aria-label={trans.__('Disconnect %1', connection.name)}
          onClick={props.onDisconnect}
        >
          {trans.__('Disconnect')}
        </button>
      </div>
    </li>
  );
}
